"""Metrics of a slice for a run (next to the same for all rows), and slice checks for CI gates.

``check(ws, run, "night", minimums={"recall": 0.8, "recall[person]": 0.7})`` compares the slice's
metrics at the thresholds viewed with bounds; ``CheckResult.passed`` is False when any falls below its
minimum (or above its maximum) or is undefined, and ``report()`` explains each bound.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from slicewise.errors import MetricsError, NotFoundError, QueryError
from slicewise.query import count, row_ids_sql, thresholds
from slicewise.query.compiler import quote_table
from slicewise.query.search import fresh_run
from slicewise.slices.store import Slice, get_slice

OVERALL = ("count", "tp", "fp", "fn", "precision", "recall", "f1", "iou")
PER_FEATURE = ("tp", "fp", "fn", "precision", "recall", "f1", "iou")


class SliceMetrics(BaseModel):
    slice: Slice
    run_id: int
    confidence: float
    iou: float
    count: int
    total: int  # rows of the run
    overall: dict[str, Any]  # the slice's tp, fp, fn, precision, recall, f1 (micro), iou (mean over rows)
    overall_all: dict[str, Any]  # the same over every row of the run
    features: list[dict[str, Any]]  # metrics.feature_metrics restricted to the slice
    features_all: list[dict[str, Any]]
    confusion: Any = None  # metrics.confusion_matrix restricted to the slice
    confusion_all: Any = None


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


def _overall(ws: Any, run: Any, c: float, t: float, rows: tuple[str, list[Any]] | None) -> dict[str, Any]:
    from slicewise import metrics

    try:
        table = quote_table(metrics.row_metrics_table(ws, run, c, t))
    except MetricsError as exc:
        raise QueryError(f"slice metrics: {exc.message}", where=exc.where,
                         fix=exc.fix or "compute the run's metrics first (`slicewise metrics compute RUN`)") from None
    sql, params = rows if rows is not None else ("SELECT data_row_id FROM run_rows WHERE run_id = ?", [ws.run(run).id])
    tp, fp, fn, iou, n = ws.store.cursor().execute(
        f"SELECT coalesce(sum(tp), 0), coalesce(sum(fp), 0), coalesce(sum(fn), 0), avg(iou), count(*) FROM {table} "
        f"WHERE data_row_id IN ({sql})", params).fetchone()
    p = tp / (tp + fp) if tp + fp else None
    r = tp / (tp + fn) if tp + fn else None
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    return {"count": int(n), "tp": int(tp), "fp": int(fp), "fn": int(fn), "precision": p, "recall": r, "f1": f1,
            "iou": None if iou is None else float(iou)}


def slice_metrics(ws: Any, ref: str | int | Slice, run: Any, confidence: float | None = None,
                  iou: float | None = None, *, with_confusion: bool = True) -> SliceMetrics:
    """Count, per-feature metrics and confusion matrix of the slice's rows, next to those of all rows."""
    from slicewise import metrics

    r = fresh_run(ws, run)
    s = resolve_slice(ws, ref, r)
    c, t = thresholds(ws, r, confidence, iou)
    rows = row_ids_sql(ws, r, s.query.get("filter"), c, t)
    try:
        feats = metrics.feature_metrics(ws, r, c, t, rows=rows)
        feats_all = metrics.feature_metrics(ws, r, c, t)
        conf = metrics.confusion_matrix(ws, r, c, t, rows=rows) if with_confusion else None
        conf_all = metrics.confusion_matrix(ws, r, c, t) if with_confusion else None
    except MetricsError as exc:
        raise QueryError(f"slice metrics: {exc.message}", where=exc.where, fix=exc.fix) from None
    return SliceMetrics(slice=s, run_id=r.id, confidence=c, iou=t, count=count(ws, r, s.query.get("filter"), c, t),
                        total=count(ws, r, None, c, t), overall=_overall(ws, r, c, t, rows),
                        overall_all=_overall(ws, r, c, t, None), features=list(feats), features_all=list(feats_all),
                        confusion=conf, confusion_all=conf_all)


class CheckItem(BaseModel):
    metric: str  # e.g. recall or recall[person]
    bound: float
    kind: str  # min | max
    value: float | None
    passed: bool


class CheckResult(BaseModel):
    slice: str
    run: str
    confidence: float
    iou: float
    count: int
    items: list[CheckItem]

    @property
    def passed(self) -> bool:
        return all(i.passed for i in self.items)

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
          iou: float | None = None) -> CheckResult:
    """Compare a slice's metrics with bounds (``{"recall": 0.8, "f1[person]": 0.6, "count": 10}``)."""
    bounds = _parse_bounds(minimums, "min") + _parse_bounds(maximums, "max")
    if not bounds:
        raise QueryError("no bound to check", fix="give at least one, e.g. --min recall=0.8")
    needs_features = any(f is not None for _, f, _, _ in bounds)
    sm = slice_metrics(ws, slice, run, confidence, iou, with_confusion=False) if (
        needs_features or any(n != "count" for n, _, _, _ in bounds)) else None
    r = fresh_run(ws, run)
    s = resolve_slice(ws, slice, r)
    c, t = thresholds(ws, r, confidence, iou)
    n = sm.count if sm else count(ws, r, s.query.get("filter"), c, t)
    items = []
    for name, feature, bound, kind in bounds:
        value: float | None
        if feature is None:
            value = float(n) if name == "count" else (sm.overall.get(name) if sm else None)
            label = name
        else:
            assert sm is not None
            row = next((f for f in sm.features if f.get("feature") == feature), None)
            if row is None and feature not in {f.name for f in ws.features()}:
                from slicewise.query.fields import did_you_mean

                raise QueryError(f"unknown feature {feature!r}", where=f"{name}[{feature}]",
                                 fix=did_you_mean(feature, [f.name for f in ws.features()]))
            value = None if row is None else row.get(name)
            label = f"{name}[{feature}]"
        ok = value is not None and (value >= bound if kind == "min" else value <= bound)
        items.append(CheckItem(metric=label, bound=bound, kind=kind, value=value, passed=ok))
    return CheckResult(slice=s.name, run=r.ref, confidence=c, iou=t, count=n, items=items)
