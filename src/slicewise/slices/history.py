"""Slice history: every slice's metrics for every run of a model, in the model's run order, with the
drops beyond noise marked.

``slice_history(ws, model, slices=None, metric="f1", confidence=None, iou=None) -> list[SliceHistory]``:
one history per slice: the user slices (all, or those named) and the auto slices (by key: each run's own
auto slice of that key, ``auto:KEY`` or the key names one). Each point is one run: the slice's rows
in that run, TP / FP / FN summed over them and precision, recall and F1 of the sums (micro, as
:func:`slicewise.slices.slice_metrics` gives them), at the run's own chosen thresholds unless
``confidence`` / ``iou`` are given.

**The order** of a model's runs is the order set with :func:`set_run_order` (stored in each run's config
as ``history_order``), then creation order for the runs it does not list.

**Noise.** The metric of a slice is a ratio of sums over its rows (F1 = 2TP / (2TP + FP + FN), recall =
TP / (TP + FN), precision = TP / (TP + FP)); its standard error is that of a ratio estimator with the
rows as units (row-clustered, linearised variance: :func:`slicewise.slices.lattice.ratio_interval`), and
``ci_low`` / ``ci_high`` is the 95% normal interval. A point is a **regression** when its value is below
the previous run's by more than noise: ``(v_b - v_a) / sqrt(se_a^2 + se_b^2) < -1.96`` (treating the runs
as independent samples, which overstates the noise of two runs over the same rows: a conservative test).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from pydantic import BaseModel

from slicewise.errors import NotFoundError, QueryError, SlicewiseError
from slicewise.slices.lattice import ratio_interval

HISTORY_METRICS = ("f1", "recall", "precision")
Z95 = 1.959963984540054


class HistoryPoint(BaseModel):
    run: str
    run_id: int
    position: int  # 1-based place in the model's run order
    created_at: datetime
    confidence: float | None = None
    iou: float | None = None
    rows: int | None = None  # the slice's rows in this run
    tp: int | None = None
    fp: int | None = None
    fn: int | None = None
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    value: float | None = None  # the history's metric
    ci_low: float | None = None  # 95% interval of value
    ci_high: float | None = None
    delta: float | None = None  # value - the previous run's value
    regression: bool = False  # the drop from the previous run is beyond noise
    note: str | None = None  # why there is no value (e.g. metrics not computed)


class SliceHistory(BaseModel):
    slice: str  # the slice's name
    slice_id: int | None = None  # user slices
    kind: str = "user"  # user | auto
    auto_key: str | None = None
    filter: str = ""  # user slices: the filter (auto slices: each run has its own)
    model: str
    metric: str
    points: list[HistoryPoint]
    regressions: int  # points marked as regressions


def model_runs(ws: Any, model: str) -> list[Any]:
    """A model's runs in history order (``history_order`` in the run config, then creation order)."""
    runs = [r for r in ws.runs() if r.model == model]
    if not runs:
        from slicewise.query.fields import did_you_mean

        names = sorted({r.model for r in ws.runs()})
        raise NotFoundError(f"no model {model!r} with runs", where="model",
                            fix=did_you_mean(model, names) or ("models: " + ", ".join(names) if names else
                                                               "create a run first"))
    big = float("inf")
    return sorted(runs, key=lambda r: (r.config.get("history_order", big), r.created_at, r.id))


def set_run_order(ws: Any, model: str, runs: list[str]) -> list[Any]:
    """Set the order of a model's runs for the history (run names or ``model/run`` refs; the runs not
    listed follow in creation order). Returns the runs in the new order."""
    have = {r.name: r for r in model_runs(ws, model)}
    names = []
    for ref in runs:
        name = ref.split("/", 1)[1] if ref.startswith(model + "/") else ref
        if name not in have:
            from slicewise.query.fields import did_you_mean

            raise NotFoundError(f"model {model!r} has no run {ref!r}", where="runs",
                                fix=did_you_mean(name, list(have)) or "runs: " + ", ".join(have))
        if name in names:
            raise QueryError(f"run {ref!r} is listed twice", where="runs", fix="list each run once")
        names.append(name)
    with ws.store.transaction() as con:
        for r in have.values():
            cfg = dict(r.config)
            cfg.pop("history_order", None)
            if r.name in names:
                cfg["history_order"] = names.index(r.name)
            if cfg != r.config:
                con.execute("UPDATE model_runs SET config = ? WHERE id = ?", [json.dumps(cfg), r.id])
                ws.store.touch("runs", run=r.id)
    return model_runs(ws, model)


def _point(ws: Any, r: Any, position: int, flt: Any, metric: str, confidence: float | None,
           iou: float | None) -> tuple[HistoryPoint, float]:
    """(the slice's point for run ``r``, the standard error of its value)."""
    from slicewise import metrics
    from slicewise.metrics.reduce import prf
    from slicewise.query import row_ids_sql, thresholds
    from slicewise.query.compiler import quote_table

    head = {"run": r.ref, "run_id": r.id, "position": position, "created_at": r.created_at}
    try:
        c, t = thresholds(ws, r, confidence, iou)
        head |= {"confidence": c, "iou": t}
        table = quote_table(metrics.row_metrics_table(ws, r, c, t))
        sql, params = row_ids_sql(ws, r, flt, c, t)
        got = ws.store.cursor().execute(
            f"SELECT coalesce(m.tp, 0), coalesce(m.fp, 0), coalesce(m.fn, 0) FROM ({sql}) s "
            f"LEFT JOIN {table} m ON m.data_row_id = s.data_row_id", params).fetchnumpy()
    except SlicewiseError as exc:
        return HistoryPoint(**head, note=exc.message), 0.0
    tp, fp, fn = (np.asarray(got[k], dtype=np.float64) for k in list(got)[:3])
    stp, sfp, sfn = int(tp.sum()), int(fp.sum()), int(fn.sum())
    p, rc, f1 = prf(stp, sfp, sfn)
    e, n = {"f1": (2 * tp, 2 * tp + fp + fn), "recall": (tp, tp + fn), "precision": (tp, tp + fp)}[metric]
    value, lo, hi = ratio_interval(e, n)
    point = HistoryPoint(**head, rows=len(tp), tp=stp, fp=sfp, fn=sfn, precision=p, recall=rc, f1=f1, value=value,
                         ci_low=None if value is None else max(lo, 0.0), ci_high=None if value is None else min(hi, 1.0),
                         note=None if value is not None else "nothing to measure: no TP, FP or FN in the slice")
    return point, 0.0 if value is None else (hi - lo) / (2 * Z95)


def _mark(points: list[tuple[HistoryPoint, float]]) -> list[HistoryPoint]:
    """Deltas from the previous run with a value, and the drops beyond noise (see the module docstring)."""
    out: list[HistoryPoint] = []
    prev: tuple[HistoryPoint, float] | None = None
    for p, se_b in points:
        if p.value is not None and prev is not None and prev[0].value is not None:
            delta = p.value - prev[0].value
            se = math.sqrt(prev[1] ** 2 + se_b ** 2)
            reg = delta < 0 and (delta / se < -Z95 if se > 0 else True)
            p = p.model_copy(update={"delta": delta, "regression": bool(reg)})
        out.append(p)
        if p.value is not None:
            prev = (p, se_b)
    return out


def slice_history(ws: Any, model: str, slices: Sequence[str | int] | None = None, metric: str = "f1",
                  confidence: float | None = None, iou: float | None = None) -> list[SliceHistory]:
    """See the module docstring. ``slices``: names or ids of user slices, or auto slice keys (``auto:KEY``
    or the key, e.g. ``false-negative``); None: every user slice, then every auto slice key that some run
    of the model has (runs without ground truth have none)."""
    from slicewise.slices.auto import auto_slice, keys_for
    from slicewise.slices.store import get_slice, list_slices

    if metric not in HISTORY_METRICS:
        from slicewise.query.fields import did_you_mean

        raise QueryError(f"unknown history metric {metric!r}", where="metric",
                         fix=did_you_mean(metric, list(HISTORY_METRICS)) or "use f1, recall or precision")
    runs = model_runs(ws, model)
    keys = keys_for(ws)
    targets: list[tuple[str, Any]] = []  # ("user", Slice) | ("auto", key)
    if slices is None:
        targets = [("user", s) for s in list_slices(ws)] + [("auto", k) for k in keys]
    else:
        for ref in slices:
            key = ref[5:] if isinstance(ref, str) and ref.startswith("auto:") else ref
            try:
                targets.append(("user", get_slice(ws, key)))
            except NotFoundError:
                if key in keys:
                    targets.append(("auto", key))
                else:
                    raise
    out = []
    for kind, s in targets:
        pts: list[tuple[HistoryPoint, float]] = []
        name, flt, sid = (s.name, s.query.get("filter"), s.id) if kind == "user" else (str(s), None, None)
        for i, r in enumerate(runs):
            f = flt
            if kind == "auto":
                try:
                    a = auto_slice(ws, r, s)
                except QueryError as exc:  # a run without ground truth has no auto slices
                    pts.append((HistoryPoint(run=r.ref, run_id=r.id, position=i + 1, created_at=r.created_at,
                                             note=exc.message), 0.0))
                    continue
                name, f = a.name, a.query.get("filter")
            memo_key = ("slice-history", r.id, json.dumps(f, sort_keys=True), metric, confidence, iou)
            topics = [f"metrics:{r.id}", f"runs:{r.id}", f"run_rows:{r.id}", f"predictions:{r.id}", "runs", "labels",
                      "metadata", "metadata_fields", "tags", "split", "rows", "features", "datasets", "custom_metrics",
                      "embeddings"]
            pts.append(ws.state.memo(memo_key, topics, lambda r=r, i=i, f=f: _point(ws, r, i + 1, f, metric,
                                                                              confidence, iou)))
        marked = _mark(pts)
        if kind == "auto" and slices is None and all(p.rows is None for p in marked):
            continue  # (no run of the model has this auto slice: runs without ground truth)
        out.append(SliceHistory(slice=name, slice_id=sid, kind=kind, auto_key=None if kind == "user" else str(s),
                                filter=s.filter if kind == "user" else "", model=model, metric=metric,
                                points=marked, regressions=sum(p.regression for p in marked)))
    return out
