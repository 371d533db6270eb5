"""Views derived from the match records by aggregation (no re-matching when a threshold moves).

At (c, t): the records of the pass at confidence c; a recorded pair is a match when its IoU > t.
A match of the same class is a TP; of different classes an FP for the predicted feature and an FN
for the true one; every other kept prediction is an FP and every other annotation an FN.

Every result carries the metrics job's state (``job``) and the functions warn with
:class:`~slicewise.metrics.results.StaleMetricsWarning` when it is not ``ready`` (``warn=False``: the caller
says so itself).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from slicewise.errors import MetricsError, NotFoundError
from slicewise.metrics import fast, levelfiles, ontologies, records, reduce
from slicewise.metrics.engine import RunRef, Settings, check_iou, conf_index, job_of, require_ready
from slicewise.metrics.records import Rows
from slicewise.metrics.results import (
    ConfusionMatrix,
    F1Optimal,
    FeatureMetrics,
    FeatureRow,
    FineCurve,
    JobStatus,
    PRCurve,
    frozen_mapping,
    warn_if_outdated,
)
from slicewise.types.domain import ModelRun

if TYPE_CHECKING:
    from slicewise.workspace import Workspace

def _materialise(ws: Workspace, run: RunRef, view: str, confidence: float, iou: float,
                 ready: tuple[ModelRun, Settings, int] | None = None) -> str:
    """A table of the workspace's cache database (see :mod:`slicewise.state`) holding the view at (c, t),
    named after the run, its metrics job generation, the conf index and the IoU."""
    r, s, gen = ready or require_ready(ws, run)
    k = conf_index(s, confidence, r.ref)
    t = check_iou(iou)

    def build(name: str) -> None:
        cur = ws.state.cursor()
        if view == "row":
            cols = fast.row_columns(ws, r.id, gen, k, t)
        else:  # lines of one feature together: a filter on one feature's metric reads only its row groups (DuckDB
            # skips the others by their min and max): at 10M rows a page filtered by recall[person] 85 -> 52 ms
            cols = fast.row_feature_columns(ws, r.id, gen, k, t)
            # (ids in 16 bits or fewer sort stably by radix: 17M in 0.1 s, against 1.5 s as int64)
            order = np.argsort(levelfiles.smallest_ints(np.asarray(cols["feature_id"])), kind="stable")
            for c in list(cols):  # (one column at a time: each unsorted one goes as its sorted copy comes)
                cols[c] = cols[c][order]
        records.cache_table(cur, name, cols)

    key = f"r{r.id}_g{gen}_c{k}_t{round(t * 1e9)}" + ("_byfeature" if view == "rowfeature" else "")
    return ws.state.table(f"metrics-{view}", key, fast.view_topics(r.id), build)


def row_metrics_source(ws: Workspace, run: RunRef, confidence: float, iou: float
                       ) -> tuple[str, Callable[[], dict[str, np.ndarray]]]:
    """The per-row metrics at (c, t) without a table: (a key that changes whenever they may (the run, its
    metrics job generation, the conf index, the IoU and the stored versions of what they are made of),
    a function computing their columns as :func:`row_metrics_table` holds them but the confidence ones and the
    counts of predictions and labels, rows by data row id, and the ratios' validity bitmaps, see
    :func:`slicewise.metrics.fast.row_arrays`).
    The query engine's row cache keeps its own copy of them, in its rows' order."""
    r, s, gen = require_ready(ws, run)
    k, t = conf_index(s, confidence, r.ref), check_iou(iou)
    fp = hashlib.sha1(ws.state.fingerprint(fast.view_topics(r.id)).encode()).hexdigest()[:12]
    key = f"r{r.id}_g{gen}_c{k}_t{round(t * 1e9)}_{fp}"
    return key, lambda: fast.row_columns(ws, r.id, gen, k, t, conf=False, validity=True)


def row_feature_metrics_table(ws: Workspace, run: RunRef, confidence: float, iou: float) -> str:
    """Name of the table of metrics per (data row, feature) at (c, t); built on first use, then cached."""
    return _materialise(ws, run, "rowfeature", confidence, iou)


def row_metrics_table(ws: Workspace, run: RunRef, confidence: float, iou: float) -> str:
    """Name of the table of metrics per data row of the run at (c, t); built on first use, then cached.

    Counts are summed over the row's features; precision, recall, f1 and iou are their mean over the
    features where defined (NULL when none is)."""
    return _materialise(ws, run, "row", confidence, iou)


def _ready(ws: Workspace, run: RunRef, warn: bool) -> tuple[tuple[ModelRun, Settings, int], JobStatus]:
    """((run, the settings its records were computed with, generation), the job's state), warning when it
    is not up to date."""
    ready = require_ready(ws, run)
    job = job_of(ws, ready[0])
    if warn:
        warn_if_outdated(job, ready[0].ref, stacklevel=4)
    return ready, job


def feature_metrics(ws: Workspace, run: RunRef, confidence: float, iou: float, rows: Rows = None, *,
                    warn: bool = True) -> FeatureMetrics:
    """Per-feature totals at (c, t) (over ``rows`` when given), sorted by feature name."""
    ready, job = _ready(ws, run, warn)
    r, s, _ = ready
    rf = _materialise(ws, r, "rowfeature", confidence, iou, ready)
    cur = ws.store.cursor()
    clause, params = records.rows_clause(rows, "rr.data_row_id")
    tns = {int(f): int(n) for f, n in cur.execute(ontologies.feature_tn_sql(r.id, rf, clause), params).fetchall()}
    out = []
    for fid, name, kind, tp, fp, fn, miou, n_rows, n_pred, n_ann in records.feature_totals(cur, rf, rows):
        p, rc, f1 = reduce.prf(int(tp), int(fp), int(fn))
        out.append(FeatureRow(int(fid), str(name), str(kind), int(tp), int(fp), int(fn), p, rc, f1,
                              None if miou is None else reduce.round_ratio(float(miou)), int(n_rows), int(n_pred), int(n_ann),
                              tns.get(int(fid))))
    return FeatureMetrics(tuple(out), float(s.confidence[conf_index(s, confidence, r.ref)]), check_iou(iou), job)


def confusion_matrix(ws: Workspace, run: RunRef, confidence: float, iou: float, rows: Rows = None, *,
                     warn: bool = True) -> ConfusionMatrix:
    """Objects per (true class, predicted class) at (c, t), with the ``None`` row and column."""
    (r, s, _), job = _ready(ws, run, warn)
    k, t = conf_index(s, confidence, r.ref), check_iou(iou)
    cur = ws.store.cursor()
    cells = records.confusion_cells(cur, r.id, k, t, rows)
    classes = records.classes(cur, r.id)
    index: dict[int | None, int] = {c: i for i, (c, _) in enumerate(classes)}
    index[None] = len(classes)
    n = len(classes) + 1
    counts = [[0] * n for _ in range(n)]
    for tc, pc, cnt in cells:
        counts[index[tc]][index[pc]] += cnt
    return ConfusionMatrix(tuple(name for _, name in classes) + ("None",), tuple(c for c, _ in classes) + (None,),
                           tuple(tuple(row) for row in counts), float(s.confidence[k]), t, job)


def _class_id(ws: Workspace, run_id: int, cls: str | int | None) -> int | None:
    if cls is None or cls == "None":
        return None
    for c, name in records.classes(ws.store.cursor(), run_id):
        if cls in (c, name):
            return c
    raise NotFoundError(f"no class {cls!r} in this run's confusion matrix", where=f"run {run_id}",
                        fix="use a class name as shown by confusion_matrix, or 'None'")


def confusion_cell_rows(ws: Workspace, run: RunRef, confidence: float, iou: float, true_class: str | int | None,
                        pred_class: str | int | None, rows: Rows = None) -> tuple[str, list[Any]]:
    """``(sql, params)`` selecting the ``data_row_id`` of the rows in one confusion-matrix cell."""
    r, s, _ = require_ready(ws, run)
    k, t = conf_index(s, confidence, r.ref), check_iou(iou)
    return records.cell_rows_sql(r.id, k, t, _class_id(ws, r.id, true_class), _class_id(ws, r.id, pred_class), rows)


def _curve(ws: Workspace, r: ModelRun, s: Settings, job: JobStatus, feature: str | int | None, rows: Rows,
           t: float) -> PRCurve:
    fid: int | None = None
    fname: str | None = None
    if feature is not None:
        f = next((f for f in ws.features() if f.name == feature or f.id == feature), None)
        if f is None:
            raise NotFoundError(f"no feature {feature!r}", fix="use a feature name of the ontology")
        fid, fname = f.id, f.name
    cur = ws.store.cursor()
    by_k = records.pr_counts(cur, r.id, fid, t, rows)
    counts = [by_k.get(k, (0, 0, 0)) for k in range(len(s.confidence))]
    tps = tuple(tp for tp, _, _ in counts)
    fps = tuple(npred - tp for tp, npred, _ in counts)
    fns = tuple(nann - tp for tp, _, nann in counts)
    prf = [reduce.prf(tp, fp, fn) for tp, fp, fn in zip(tps, fps, fns, strict=True)]
    f1s = tuple(v[2] for v in prf)
    best_c, best_f = reduce.best_f1(s.confidence, f1s)
    conf, is_tp = records.ranked_predictions(cur, r.id, fid, t, rows)
    fine = FineCurve()
    if len(conf):
        fc, fp_, fr = reduce.ranking_curve(conf, is_tp, by_k.get(0, (0, 0, 0))[2])
        fine = FineCurve(tuple(fc.tolist()), tuple(fp_.tolist()), tuple(fr.tolist()))
    return PRCurve(fname, t, tuple(s.confidence), tuple(v[0] for v in prf), tuple(v[1] for v in prf), f1s,
                   tps, fps, fns, best_c, best_f, fine, job)


def pr_curve(ws: Workspace, run: RunRef, feature: str | int | None = None, rows: Rows = None,
             iou: float = 0.5, *, warn: bool = True) -> PRCurve:
    """Precision-recall curve of one feature (or all) at IoU threshold ``iou``.

    The grid points are exact (one matching per grid confidence). The fine curve ranks the predictions
    kept at the lowest grid confidence by decreasing confidence, with the matches of that pass, and
    gives precision and recall after each distinct confidence value (the usual ranking curve)."""
    (r, s, _), job = _ready(ws, run, warn)
    return _curve(ws, r, s, job, feature, rows, check_iou(iou))


def export_row_metrics(ws: Workspace, run: RunRef, confidence: float, iou: float, path: str | Any, *,
                       per_feature: bool = False) -> int:
    """Write the per-row (or per-row-per-feature) metrics at (c, t), with global keys and feature names,
    to ``path`` (.parquet or .csv). Returns the number of rows written."""
    from pathlib import Path

    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    p = Path(path)
    if p.suffix.lower() not in (".parquet", ".csv"):
        raise MetricsError(f"cannot export to {p.name!r}", where=str(p), fix="name the file .parquet or .csv")
    table = row_feature_metrics_table(ws, run, confidence, iou) if per_feature else \
        row_metrics_table(ws, run, confidence, iou)
    t = records.with_keys(ws.store.cursor(), table, per_feature)
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.suffix.lower() == ".parquet":
        pq.write_table(t, p)
    else:
        pacsv.write_csv(t, p)
    return t.num_rows


def f1_optimal_confidences(ws: Workspace, run: RunRef, iou: float = 0.5, rows: Rows = None, *,
                           warn: bool = True) -> F1Optimal:
    """The F1-optimal confidence of the grid for every feature of the run (None when F1 is never defined)."""
    (r, s, _), job = _ready(ws, run, warn)
    t = check_iou(iou)
    names = {f.id: f.name for f in ws.features()}
    best = {names[f]: _curve(ws, r, s, job, f, rows, t).best_confidence
            for f in records.class_features(ws.store.cursor(), r.id)}
    return F1Optimal(frozen_mapping(best), t, job)
