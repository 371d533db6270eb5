"""Metrics of a slice for a run (next to the same for all rows), and slice checks for CI gates.

``check(ws, run, "night", minimums={"recall": 0.8, "recall[person]": 0.7})`` compares the slice's
metrics at the thresholds viewed with bounds; ``CheckResult.passed`` is False when any falls below its
minimum (or above its maximum) or is undefined, and ``report()`` explains each bound.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slicewise.errors import MetricsError, NotFoundError, QueryError
from slicewise.query import count, row_ids_sql, thresholds
from slicewise.query.compiler import quote_table
from slicewise.query.search import fresh_run
from slicewise.slices.store import Slice, get_slice

if TYPE_CHECKING:
    from slicewise.metrics import ConfusionMatrix, FeatureMetrics, JobStatus

OVERALL = ("count", "tp", "fp", "fn", "precision", "recall", "f1", "iou")
PER_FEATURE = ("tp", "fp", "fn", "precision", "recall", "f1", "iou")


@dataclass(frozen=True)
class Totals:
    """A set of rows' totals at (c, t): counts summed, precision / recall / F1 of the sums (micro; None
    when undefined), ``iou`` the mean over the rows where defined."""

    count: int
    tp: int
    fp: int
    fn: int
    precision: float | None
    recall: float | None
    f1: float | None
    iou: float | None

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in OVERALL}


@dataclass(frozen=True)
class SliceMetrics:
    """A slice's metrics at (confidence, iou) next to the same over every row of the run."""

    slice: Slice
    run_id: int
    confidence: float
    iou: float
    count: int
    total: int  # rows of the run
    overall: Totals  # the slice's
    overall_all: Totals  # every row's
    features: FeatureMetrics  # metrics.feature_metrics restricted to the slice
    features_all: FeatureMetrics
    confusion: ConfusionMatrix | None  # metrics.confusion_matrix restricted to the slice
    confusion_all: ConfusionMatrix | None
    job: JobStatus  # the run's metrics job: are these numbers up to date?

    def to_dict(self) -> dict[str, Any]:
        return {"slice": self.slice.model_dump(mode="json"), "run_id": self.run_id, "confidence": self.confidence,
                "iou": self.iou, "count": self.count, "total": self.total, "overall": self.overall.to_dict(),
                "overall_all": self.overall_all.to_dict(), "features": self.features.to_dict()["features"],
                "features_all": self.features_all.to_dict()["features"],
                "confusion": self.confusion.to_dict() if self.confusion is not None else None,
                "confusion_all": self.confusion_all.to_dict() if self.confusion_all is not None else None,
                "job": self.job.to_dict()}


def resolve_slice(ws: Any, ref: str | int | Slice, run: Any = None) -> Slice:
    """A user slice by id or name, else (with a run) one of the run's auto slices by key or name."""
    if isinstance(ref, Slice):
        return ref
    try:
        return get_slice(ws, ref)
    except NotFoundError:
        if run is None or not isinstance(ref, str):
            raise
        from slicewise.slices.auto import auto_slice

        try:
            return auto_slice(ws, run, ref)
        except QueryError:
            raise NotFoundError(f"no slice {ref!r} (neither a saved slice nor an auto slice of this run)",
                                where="slice", fix="list them with `slicewise slice list --run RUN`") from None


def _totals(ws: Any, run: Any, c: float, t: float, rows: tuple[str, list[Any]] | None) -> Totals:
    from slicewise import metrics
    from slicewise.metrics.reduce import prf

    try:
        table = quote_table(metrics.row_metrics_table(ws, run, c, t))
    except MetricsError as exc:
        raise QueryError(f"slice metrics: {exc.message}", where=exc.where,
                         fix=exc.fix or "compute the run's metrics first (`slicewise metrics compute RUN`)") from None
    sql, params = rows if rows is not None else ("SELECT data_row_id FROM run_rows WHERE run_id = ?", [ws.run(run).id])
    tp, fp, fn, iou, n = ws.store.cursor().execute(
        f"SELECT coalesce(sum(tp), 0), coalesce(sum(fp), 0), coalesce(sum(fn), 0), avg(iou), count(*) FROM {table} "
        f"WHERE data_row_id IN ({sql})", params).fetchone()
    tp, fp, fn = int(tp), int(fp), int(fn)
    return Totals(int(n), tp, fp, fn, *prf(tp, fp, fn), None if iou is None else float(iou))


def slice_metrics(ws: Any, ref: str | int | Slice, run: Any, confidence: float | None = None,
                  iou: float | None = None, *, with_confusion: bool = True, warn: bool = True) -> SliceMetrics:
    """Count, per-feature metrics and confusion matrix of the slice's rows, next to those of all rows;
    ``job`` says whether they are up to date (a StaleMetricsWarning when not, unless ``warn=False``)."""
    from slicewise import metrics
    from slicewise.metrics.results import warn_if_outdated

    r = fresh_run(ws, run)
    s = resolve_slice(ws, ref, r)
    c, t = thresholds(ws, r, confidence, iou)
    rows = row_ids_sql(ws, r, s.query.get("filter"), c, t)
    try:
        feats = metrics.feature_metrics(ws, r, c, t, rows=rows, warn=False)
        feats_all = metrics.feature_metrics(ws, r, c, t, warn=False)
        conf = metrics.confusion_matrix(ws, r, c, t, rows=rows, warn=False) if with_confusion else None
        conf_all = metrics.confusion_matrix(ws, r, c, t, warn=False) if with_confusion else None
    except MetricsError as exc:
        raise QueryError(f"slice metrics: {exc.message}", where=exc.where, fix=exc.fix) from None
    if warn:  # once, here (the metrics functions above were told not to)
        warn_if_outdated(feats.job, r.ref, stacklevel=3)
    return SliceMetrics(slice=s, run_id=r.id, confidence=c, iou=t, count=count(ws, r, s.query.get("filter"), c, t),
                        total=count(ws, r, None, c, t), overall=_totals(ws, r, c, t, rows),
                        overall_all=_totals(ws, r, c, t, None), features=feats, features_all=feats_all,
                        confusion=conf, confusion_all=conf_all, job=feats.job)


@dataclass(frozen=True)
class CheckItem:
    metric: str  # e.g. recall or recall[person]
    bound: float
    kind: str  # min | max
    value: float | None
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "bound": self.bound, "kind": self.kind, "value": self.value,
                "passed": self.passed}


@dataclass(frozen=True)
class CheckResult:
    slice: str
    run: str
    confidence: float
    iou: float
    count: int
    items: tuple[CheckItem, ...]
    job: JobStatus  # the run's metrics job: a check of stale metrics says so

    @property
    def passed(self) -> bool:
        return all(i.passed for i in self.items)

    def to_dict(self) -> dict[str, Any]:
        return {"slice": self.slice, "run": self.run, "confidence": self.confidence, "iou": self.iou,
                "count": self.count, "items": [i.to_dict() for i in self.items], "passed": self.passed,
                "job": self.job.to_dict()}

    def report(self) -> str:
        head = (f"slice {self.slice!r} on run {self.run} ({self.count} rows, confidence {self.confidence:g}, "
                f"IoU {self.iou:g}): {'PASSED' if self.passed else 'FAILED'}")
        lines = [head]
        for i in self.items:
            v = "undefined" if i.value is None else (f"{i.value:,.0f}" if float(i.value).is_integer() else f"{i.value:.4g}")
            rel = ">=" if i.kind == "min" else "<="
            mark = "ok  " if i.passed else "FAIL"
            why = "" if i.passed else (" (no value: nothing to measure in this slice)" if i.value is None else
                                       f" ({'below' if i.kind == 'min' else 'above'} the bound)")
            lines.append(f"  {mark} {i.metric} = {v}, needs {rel} {i.bound:g}{why}")
        if self.job.outdated:
            lines.append(f"  note: {self.job.describe(self.run)}")
        return "\n".join(lines)


_KEY = re.compile(r"\s*([A-Za-z_0-9]+)\s*(?:\[\s*(.+?)\s*\])?\s*\Z")


def _parse_bounds(bounds: dict[str, float] | None, kind: str) -> list[tuple[str, str | None, float, str]]:
    out = []
    for key, val in (bounds or {}).items():
        m = _KEY.match(str(key))
        name = m.group(1).lower() if m else ""
        feature = m.group(2).strip("\"'") if m and m.group(2) else None
        allowed = PER_FEATURE if feature is not None else OVERALL
        if not m or name not in allowed:
            from slicewise.query.fields import did_you_mean

            raise QueryError(f"unknown check metric {key!r}", where=f"--{kind}",
                             fix=did_you_mean(name, list(allowed)) or f"use one of {', '.join(allowed)}, "
                             "optionally with [feature] (e.g. recall[person])")
        if isinstance(val, bool) or not isinstance(val, int | float):
            raise QueryError(f"bound for {key!r} is not a number: {val!r}", where=f"--{kind}", fix="e.g. recall=0.8")
        out.append((name, feature, float(val), kind))
    return out


def check(ws: Any, run: Any, slice: str | int | Slice, minimums: dict[str, float] | None = None,
          maximums: dict[str, float] | None = None, confidence: float | None = None,
          iou: float | None = None, *, warn: bool = True) -> CheckResult:
    """Compare a slice's metrics with bounds (``{"recall": 0.8, "f1[person]": 0.6, "count": 10}``). The
    result's ``job`` says whether the run's metrics are up to date (``report()`` and a StaleMetricsWarning
    say so when they are not)."""
    from slicewise import metrics
    from slicewise.metrics.results import warn_if_outdated

    bounds = _parse_bounds(minimums, "min") + _parse_bounds(maximums, "max")
    if not bounds:
        raise QueryError("no bound to check", fix="give at least one, e.g. --min recall=0.8")
    needs_features = any(f is not None for _, f, _, _ in bounds)
    sm = slice_metrics(ws, slice, run, confidence, iou, with_confusion=False, warn=False) if (
        needs_features or any(n != "count" for n, _, _, _ in bounds)) else None
    r = fresh_run(ws, run)
    s = resolve_slice(ws, slice, r)
    c, t = thresholds(ws, r, confidence, iou)
    n = sm.count if sm else count(ws, r, s.query.get("filter"), c, t)
    items = []
    for name, feature, bound, kind in bounds:
        value: float | None
        if feature is None:
            value = float(n) if name == "count" else (getattr(sm.overall, name) if sm else None)
            label = name
        else:
            assert sm is not None
            row = sm.features.get(feature)
            if row is None and feature not in {f.name for f in ws.features()}:
                from slicewise.query.fields import did_you_mean

                raise QueryError(f"unknown feature {feature!r}", where=f"{name}[{feature}]",
                                 fix=did_you_mean(feature, [f.name for f in ws.features()]))
            value = None if row is None else getattr(row, name)
            label = f"{name}[{feature}]"
        ok = value is not None and (value >= bound if kind == "min" else value <= bound)
        items.append(CheckItem(metric=label, bound=bound, kind=kind, value=value, passed=ok))
    job = sm.job if sm else metrics.job_status(ws, r)
    if warn:
        warn_if_outdated(job, r.ref, stacklevel=3)
    return CheckResult(slice=s.name, run=r.ref, confidence=c, iou=t, count=n, items=tuple(items), job=job)
