"""Views derived from the match records by aggregation (no re-matching when a threshold moves).

At (c, t): the records of the pass at confidence c; a recorded pair is a match when its IoU > t.
A match of the same class is a TP; of different classes an FP for the predicted feature and an FN
for the true one; every other kept prediction is an FP and every other annotation an FN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from slicewise.errors import MetricsError, NotFoundError
from slicewise.metrics.engine import RunRef, Settings, require_ready

if TYPE_CHECKING:
    from slicewise.workspace import Workspace

Rows = tuple[str, list[Any]] | None


def conf_index(s: Settings, confidence: float, run_ref: str) -> int:
    """Index of ``confidence`` in the grid the records were computed with."""
    for k, v in enumerate(s.confidence):
        if abs(v - float(confidence)) <= 1e-9:
            return k
    raise MetricsError(f"confidence {confidence} is not on the run's confidence grid {list(s.confidence)}",
                       where=f"run {run_ref}", fix="pick a grid value, or change the grid with set_grids and recompute")


def _check_iou(iou: float) -> float:
    t = float(iou)
    if not (math.isfinite(t) and 0.0 <= t <= 1.0):
        raise MetricsError(f"IoU threshold {iou} is outside [0, 1]", where="iou", fix="use a value between 0 and 1")
    return t


def _rows_clause(rows: Rows, col: str = "data_row_id") -> tuple[str, list[Any]]:
    if rows is None:
        return "", []
    sql, params = rows
    return f" AND {col} IN (SELECT data_row_id FROM ({sql}))", list(params)


def view_topics(run_id: int) -> list[str]:
    """What a run's metrics views are made of: its stored records, and the ontology (TN counts features)."""
    return [f"metrics:{run_id}", "features"]


def _materialise(ws: Workspace, run: RunRef, view: str, confidence: float, iou: float) -> str:
    """A table of the workspace's cache database (see :mod:`slicewise.state`) holding the view at (c, t),
    named after the run, its metrics job generation, the conf index and the IoU."""
    r, s, gen = require_ready(ws, run)
    k = conf_index(s, confidence, r.ref)
    t = _check_iou(iou)

    def build(name: str) -> None:
        from slicewise.metrics import fast

        cur = ws.state.cursor()
        if view == "row":
            data = fast.row_arrow(ws, r.id, gen, k, t, _n_features(cur))
        else:
            data = fast.row_feature_arrow(ws, r.id, gen, k, t)
        cur.register("_sw_view", data)
        try:
            cur.execute(f"CREATE TABLE {name} AS SELECT * FROM _sw_view")
        finally:
            cur.unregister("_sw_view")

    return ws.state.table(f"metrics-{view}", f"r{r.id}_g{gen}_c{k}_t{round(t * 1e9)}", view_topics(r.id), build)


def _n_features(cur: Any) -> int:
    return int(cur.execute("SELECT count(*) FROM features").fetchone()[0])


def row_feature_metrics_table(ws: Workspace, run: RunRef, confidence: float, iou: float) -> str:
    """Name of the table of metrics per (data row, feature) at (c, t); built on first use, then cached."""
    return _materialise(ws, run, "rowfeature", confidence, iou)


def row_metrics_table(ws: Workspace, run: RunRef, confidence: float, iou: float) -> str:
    """Name of the table of metrics per data row of the run at (c, t); built on first use, then cached.

    Counts are summed over the row's features; precision, recall, f1 and iou are their mean over the
    features where defined (NULL when none is)."""
    return _materialise(ws, run, "row", confidence, iou)


def _prf(tp: int, fp: int, fn: int) -> tuple[float | None, float | None, float | None]:
    p = tp / (tp + fp) if tp + fp else None
    r = tp / (tp + fn) if tp + fn else None
    f = 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else None
    return p, r, f


def feature_metrics(ws: Workspace, run: RunRef, confidence: float, iou: float, rows: Rows = None) -> list[dict[str, Any]]:
    """Per-feature totals at (c, t) (over ``rows`` when given), sorted by feature name."""
    rf = row_feature_metrics_table(ws, run, confidence, iou)
    clause, params = _rows_clause(rows, "f.data_row_id")
    out = []
    for fid, name, kind, tp, fp, fn, miou, n_rows, n_pred, n_ann in ws.store.cursor().execute(f"""
            SELECT f.feature_id, ft.name, ft.kind, sum(tp), sum(fp), sum(fn), avg(iou), count(*),
                   sum(n_predictions), sum(n_annotations)
            FROM {rf} f JOIN features ft ON ft.id = f.feature_id WHERE TRUE {clause}
            GROUP BY ALL ORDER BY ft.name""", params).fetchall():
        p, r, f1 = _prf(int(tp), int(fp), int(fn))
        out.append({"feature_id": fid, "feature": name, "kind": kind, "tp": int(tp), "fp": int(fp), "fn": int(fn),
                    "precision": p, "recall": r, "f1": f1, "iou": miou, "n_rows": int(n_rows),
                    "n_predictions": int(n_pred), "n_annotations": int(n_ann)})
    return out


@dataclass
class ConfusionMatrix:
    """``counts[i][j]``: objects of true class ``classes[i]`` predicted as ``classes[j]``; the last class
    is ``"None"`` (unmatched predictions are in its row, unmatched annotations in its column)."""

    classes: list[str]
    class_ids: list[int | None]
    counts: list[list[int]]
    confidence: float
    iou: float

    def to_dict(self) -> dict[str, Any]:
        return {"classes": self.classes, "class_ids": self.class_ids, "counts": self.counts,
                "confidence": self.confidence, "iou": self.iou}


_CELLS_SQL = """
WITH r AS (SELECT * FROM match_records WHERE run_id = ? AND conf_idx = ? {rows}),
cells AS (
  SELECT CASE WHEN gt_id IS NOT NULL AND iou > ? THEN true_class END AS tc, pred_class AS pc, data_row_id
  FROM r WHERE pred_id IS NOT NULL
  UNION ALL
  SELECT true_class, NULL, data_row_id FROM r WHERE gt_id IS NOT NULL AND (pred_id IS NULL OR NOT iou > ?))
"""


def _classes(ws: Workspace, run_id: int) -> list[tuple[int, str]]:
    return [(int(c), str(n)) for c, n in ws.store.cursor().execute(
        "SELECT class_id, name FROM metric_classes WHERE run_id = ? ORDER BY feature_id, answer NULLS FIRST",
        [run_id]).fetchall()]


def confusion_matrix(ws: Workspace, run: RunRef, confidence: float, iou: float, rows: Rows = None) -> ConfusionMatrix:
    r, s, _ = require_ready(ws, run)
    k, t = conf_index(s, confidence, r.ref), _check_iou(iou)
    clause, params = _rows_clause(rows)
    cells = ws.store.cursor().execute(_CELLS_SQL.format(rows=clause) + "SELECT tc, pc, count(*) FROM cells GROUP BY ALL",
                                      [r.id, k, *params, t, t]).fetchall()
    classes = _classes(ws, r.id)
    index: dict[int | None, int] = {c: i for i, (c, _) in enumerate(classes)}
    index[None] = len(classes)
    n = len(classes) + 1
    counts = [[0] * n for _ in range(n)]
    for tc, pc, cnt in cells:
        counts[index[tc]][index[pc]] += int(cnt)
    return ConfusionMatrix([name for _, name in classes] + ["None"], [c for c, _ in classes] + [None], counts,
                           float(s.confidence[k]), t)


def _class_id(ws: Workspace, run_id: int, cls: str | int | None) -> int | None:
    if cls is None or cls == "None":
        return None
    for c, name in _classes(ws, run_id):
        if cls in (c, name):
            return c
    raise NotFoundError(f"no class {cls!r} in this run's confusion matrix", where=f"run {run_id}",
                        fix="use a class name as shown by confusion_matrix, or 'None'")


def confusion_cell_rows(ws: Workspace, run: RunRef, confidence: float, iou: float, true_class: str | int | None,
                        pred_class: str | int | None, rows: Rows = None) -> tuple[str, list[Any]]:
    """``(sql, params)`` selecting the ``data_row_id`` of the rows in one confusion-matrix cell."""
    r, s, _ = require_ready(ws, run)
    k, t = conf_index(s, confidence, r.ref), _check_iou(iou)
    tc, pc = _class_id(ws, r.id, true_class), _class_id(ws, r.id, pred_class)
    clause, params = _rows_clause(rows)
    cond = ("tc IS NULL" if tc is None else "tc = ?") + " AND " + ("pc IS NULL" if pc is None else "pc = ?")
    sql = _CELLS_SQL.format(rows=clause) + f"SELECT DISTINCT data_row_id FROM cells WHERE {cond}"
    return sql, [r.id, k, *params, t, t] + [v for v in (tc, pc) if v is not None]


@dataclass
class PRCurve:
    """Precision and recall at every grid confidence, and a fine curve at every distinct confidence."""

    feature: str | None
    iou: float
    confidence: list[float]
    precision: list[float | None]
    recall: list[float | None]
    f1: list[float | None]
    tp: list[int]
    fp: list[int]
    fn: list[int]
    best_confidence: float | None  # F1-optimal confidence of the grid
    best_f1: float | None
    fine: dict[str, list[float]] = field(default_factory=dict)  # confidence, precision, recall

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def pr_curve(ws: Workspace, run: RunRef, feature: str | int | None = None, rows: Rows = None,
             iou: float = 0.5) -> PRCurve:
    """Precision-recall curve of one feature (or all) at IoU threshold ``iou``.

    The grid points are exact (one matching per grid confidence). The fine curve ranks the predictions
    kept at the lowest grid confidence by decreasing confidence, with the matches of that pass, and
    gives precision and recall after each distinct confidence value (the usual ranking curve)."""
    r, s, _ = require_ready(ws, run)
    t = _check_iou(iou)
    fid: int | None = None
    fname: str | None = None
    if feature is not None:
        f = next((f for f in ws.features() if f.name == feature or f.id == feature), None)
        if f is None:
            raise NotFoundError(f"no feature {feature!r}", fix="use a feature name of the ontology")
        fid, fname = f.id, f.name
    clause, params = _rows_clause(rows)
    pf = "" if fid is None else " AND pred_feature = ?"
    tf = "" if fid is None else " AND true_feature = ?"
    fp_ = [] if fid is None else [fid]
    agg = ws.store.cursor().execute(f"""
        WITH r AS (SELECT * FROM match_records WHERE run_id = ? {clause})
        SELECT conf_idx,
          count(*) FILTER (WHERE pred_id IS NOT NULL {pf} AND gt_id IS NOT NULL AND iou > ? AND pred_class = true_class),
          count(*) FILTER (WHERE pred_id IS NOT NULL {pf}),
          count(*) FILTER (WHERE gt_id IS NOT NULL {tf})
        FROM r GROUP BY conf_idx ORDER BY conf_idx""", [r.id, *params, *fp_, t, *fp_, *fp_]).fetchall()
    by_k = {int(k): (int(a), int(b), int(c)) for k, a, b, c in agg}
    conf, prec, rec, f1s, tps, fps, fns = [], [], [], [], [], [], []
    for k, c in enumerate(s.confidence):
        tp, npred, nann = by_k.get(k, (0, 0, 0))
        p, rc, f1 = _prf(tp, npred - tp, nann - tp)
        conf.append(c)
        prec.append(p)
        rec.append(rc)
        f1s.append(f1)
        tps.append(tp)
        fps.append(npred - tp)
        fns.append(nann - tp)
    best = max(((f, c) for f, c in zip(f1s, conf, strict=True) if f is not None), default=None)
    fine_rel = ws.store.cursor().execute(f"""
        WITH r AS (SELECT * FROM match_records WHERE run_id = ? AND conf_idx = 0 {clause})
        SELECT confidence, (gt_id IS NOT NULL AND iou > ? AND pred_class = true_class) AS tp
        FROM r WHERE pred_id IS NOT NULL {pf} ORDER BY confidence DESC""", [r.id, *params, t, *fp_]).fetchnumpy()
    npos = by_k.get(0, (0, 0, 0))[2]
    fine: dict[str, list[float]] = {"confidence": [], "precision": [], "recall": []}
    if len(fine_rel["confidence"]):
        cv = np.asarray(fine_rel["confidence"], np.float64)
        ctp = np.cumsum(np.asarray(fine_rel["tp"], bool))
        last = np.flatnonzero(np.r_[cv[1:] != cv[:-1], True])
        fine["confidence"] = cv[last].tolist()
        fine["precision"] = (ctp[last] / (last + 1)).tolist()
        fine["recall"] = (ctp[last] / npos).tolist() if npos else [0.0] * len(last)
    return PRCurve(fname, t, conf, prec, rec, f1s, tps, fps, fns, best[1] if best else None,
                   best[0] if best else None, fine)


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
    feat = ", f.name AS feature" if per_feature else ""
    join = " JOIN features f ON f.id = m.feature_id" if per_feature else ""
    t = ws.store.cursor().execute(f"""SELECT d.global_key{feat}, m.* FROM {table} m
        JOIN data_rows d ON d.id = m.data_row_id{join} ORDER BY m.data_row_id""").to_arrow_table()
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.suffix.lower() == ".parquet":
        pq.write_table(t, p)
    else:
        pacsv.write_csv(t, p)
    return t.num_rows


def f1_optimal_confidences(ws: Workspace, run: RunRef, iou: float = 0.5, rows: Rows = None) -> dict[str, float | None]:
    """The F1-optimal confidence of the grid for every feature of the run (None when F1 is never defined)."""
    r, _, _ = require_ready(ws, run)
    fids = [int(v[0]) for v in ws.store.cursor().execute(
        "SELECT DISTINCT feature_id FROM metric_classes WHERE run_id = ? ORDER BY 1", [r.id]).fetchall()]
    names = {f.id: f.name for f in ws.features()}
    return {names[f]: pr_curve(ws, r, feature=f, rows=rows, iou=iou).best_confidence for f in fids}
