"""Per-(c, t) tables in tens of milliseconds: summaries built once per job, counted in NumPy per t.

At compute time :func:`build_summaries` aggregates the match records into ``metric_rf`` (one line per
conf index, data row and feature: counts, confidence stats, iou) and ``metric_tp`` (the IoU of every
same-class recorded pair). For a chosen (c, t), tp of a (row, feature) is the number of its pair IoUs
above t; fp = predictions - tp; fn = annotations - tp. The arrays of a conf index are cached by
the workspace (a few at a time, see :mod:`slicewise.state`), so moving t, or coming back to a c, costs
only the counting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from slicewise.workspace import Workspace


def build_summaries(con: Any, run_id: int) -> None:
    """(Re)build metric_rf and metric_tp of a run from its match records (inside the job's transaction)."""
    con.execute("DELETE FROM metric_rf WHERE run_id = ?", [run_id])
    con.execute("DELETE FROM metric_tp WHERE run_id = ?", [run_id])
    con.execute("""
        INSERT INTO metric_rf
        WITH ev AS (
          SELECT conf_idx, data_row_id, pred_feature AS feature_id, 1 AS np_, 0 AS ng_, confidence
          FROM match_records WHERE run_id = ? AND pred_id IS NOT NULL
          UNION ALL
          SELECT conf_idx, data_row_id, true_feature, 0, 1, NULL
          FROM match_records WHERE run_id = ? AND gt_id IS NOT NULL),
        agg AS (
          SELECT conf_idx, data_row_id, feature_id, sum(np_)::INTEGER AS n_pred, sum(ng_)::INTEGER AS n_gt,
                 min(confidence) AS cmin, max(confidence) AS cmax, sum(confidence) AS csum
          FROM ev GROUP BY conf_idx, data_row_id, feature_id)
        SELECT ?, a.conf_idx,
               (row_number() OVER (PARTITION BY a.conf_idx ORDER BY a.data_row_id, a.feature_id) - 1)::INTEGER,
               a.data_row_id, a.feature_id, a.n_pred, a.n_gt, a.cmin, a.cmax, a.csum, q.iou
        FROM agg a LEFT JOIN metric_feature_iou q ON q.run_id = ? AND q.conf_idx = a.conf_idx
             AND q.data_row_id = a.data_row_id AND q.feature_id = a.feature_id
        ORDER BY a.conf_idx, a.data_row_id, a.feature_id""", [run_id, run_id, run_id, run_id])
    con.execute("""
        INSERT INTO metric_tp
        SELECT ?, m.conf_idx, f.rf_ord, m.iou
        FROM match_records m JOIN metric_rf f ON f.run_id = ? AND f.conf_idx = m.conf_idx
             AND f.data_row_id = m.data_row_id AND f.feature_id = m.pred_feature
        WHERE m.run_id = ? AND m.pred_id IS NOT NULL AND m.gt_id IS NOT NULL AND m.pred_class = m.true_class
        ORDER BY m.conf_idx, f.rf_ord""", [run_id, run_id, run_id])


@dataclass
class _Level:
    """The arrays of one conf index: (row, feature) lines ordered by rf_ord, their TP pairs, and the
    per-row constants in the order of the run's rows."""

    row_pos: np.ndarray  # position of each line's data row among the run's rows
    n_pred: np.ndarray
    n_gt: np.ndarray
    tp_rf: np.ndarray
    tp_iou: np.ndarray
    rowc: dict[str, np.ndarray]


MAX_LEVELS = 4  # conf indexes whose arrays a workspace keeps


def _rows(ws: Workspace, run_id: int, gen: int) -> np.ndarray:
    def make() -> np.ndarray:
        r = ws.store.cursor().execute("SELECT data_row_id FROM run_rows WHERE run_id = ? ORDER BY data_row_id",
                                      [run_id]).fetchnumpy()["data_row_id"]
        return np.asarray(r, np.int64)

    return ws.state.lru("metric-rows", (run_id, gen), make, MAX_LEVELS)


def _num(t: pa.Table, c: str, dtype: Any) -> np.ndarray:
    import pyarrow.compute as pc

    col = t.column(c)
    if col.null_count:
        col = pc.fill_null(col, np.nan)
    return col.to_numpy().astype(dtype, copy=False)


def _by_ord(t: pa.Table) -> pa.Table:
    order = t.column("rf_ord").to_numpy()
    if len(order) and not np.all(order[1:] > order[:-1]):
        t = t.take(pa.array(np.argsort(order)))
    return t


def _level(ws: Workspace, run_id: int, gen: int, k: int) -> _Level:
    def make() -> _Level:
        cur = ws.store.cursor()
        rf = _by_ord(cur.execute("SELECT rf_ord, data_row_id, n_pred, n_gt FROM metric_rf WHERE run_id = ? "
                                 "AND conf_idx = ?", [run_id, k]).to_arrow_table())
        tp = cur.execute("SELECT rf_ord, iou FROM metric_tp WHERE run_id = ? AND conf_idx = ?", [run_id, k]).to_arrow_table()
        rc = cur.execute("""SELECT data_row_id, n_pred, n_gt, n_feat, n_p, n_r, n_f, iou, conf_min, conf_max, conf_mean
                            FROM metric_row_const WHERE run_id = ? AND conf_idx = ?""", [run_id, k]).to_arrow_table()
        rows = _rows(ws, run_id, gen)
        nr = len(rows)
        drid = _num(rf, "data_row_id", np.int64)
        # lines are sorted by data row: look each distinct row up once
        if len(drid):
            starts = np.r_[0, np.flatnonzero(drid[1:] != drid[:-1]) + 1]
            pos = np.repeat(np.searchsorted(rows, drid[starts]), np.diff(np.r_[starts, len(drid)]))
        else:
            pos = np.zeros(0, np.int64)
        rpos = np.searchsorted(rows, _num(rc, "data_row_id", np.int64))
        ok = rpos < nr
        rowc: dict[str, np.ndarray] = {}
        for c, fill in (("n_pred", 0.0), ("n_gt", 0.0), ("n_feat", 0.0), ("n_p", 0.0), ("n_r", 0.0), ("n_f", 0.0),
                        ("iou", np.nan), ("conf_min", np.nan), ("conf_max", np.nan), ("conf_mean", np.nan)):
            v = np.full(nr, fill)
            v[rpos[ok]] = _num(rc, c, np.float64)[ok]
            rowc[c] = v
        return _Level(pos, _num(rf, "n_pred", np.float64), _num(rf, "n_gt", np.float64), _num(tp, "rf_ord", np.int64),
                      _num(tp, "iou", np.float64), rowc)

    return ws.state.lru("metric-level", (run_id, gen, k), make, MAX_LEVELS)


def _extras(ws: Workspace, run_id: int, gen: int, k: int) -> dict[str, np.ndarray]:
    """The per-(row, feature) columns only the per-feature table needs."""
    def make() -> dict[str, np.ndarray]:
        t = _by_ord(ws.store.cursor().execute(
            """SELECT rf_ord, data_row_id, feature_id, conf_min, conf_max, conf_sum, iou FROM metric_rf
               WHERE run_id = ? AND conf_idx = ?""", [run_id, k]).to_arrow_table())
        return {"data_row_id": _num(t, "data_row_id", np.int64), "feature_id": _num(t, "feature_id", np.int32),
                **{c: _num(t, c, np.float64) for c in ("conf_min", "conf_max", "conf_sum", "iou")}}

    return ws.state.lru("metric-extras", (run_id, gen, k), make, MAX_LEVELS)


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)


def _col(v: np.ndarray) -> pa.Array:
    return pa.array(v, mask=np.isnan(v))


def _tp(lv: _Level, t: float) -> np.ndarray:
    return np.bincount(lv.tp_rf[lv.tp_iou > t], minlength=len(lv.n_pred)).astype(np.float64)


def row_feature_arrow(ws: Workspace, run_id: int, gen: int, k: int, t: float) -> pa.Table:
    lv = _level(ws, run_id, gen, k)
    ex = _extras(ws, run_id, gen, k)
    n = len(lv.n_pred)
    tp = _tp(lv, t)
    fp, fn = lv.n_pred - tp, lv.n_gt - tp
    return pa.table({
        "data_row_id": ex["data_row_id"], "feature_id": ex["feature_id"], "tp": tp.astype(np.int32),
        "fp": fp.astype(np.int32), "fn": fn.astype(np.int32), "tn": np.zeros(n, np.int32),
        "precision": _col(_div(tp, tp + fp)), "recall": _col(_div(tp, tp + fn)), "f1": _col(_div(2 * tp, 2 * tp + fp + fn)),
        "iou": _col(ex["iou"]), "conf_min": _col(ex["conf_min"]), "conf_max": _col(ex["conf_max"]),
        "conf_mean": _col(_div(ex["conf_sum"], lv.n_pred)),
        "n_predictions": lv.n_pred.astype(np.int32), "n_annotations": lv.n_gt.astype(np.int32)})


def _weights(lv: _Level) -> dict[str, np.ndarray]:
    """Whether a feature's precision / recall / F1 is defined does not depend on t (tp + fp is its number of
    predictions, tp + fn its number of labels), so each per-row mean is one weighted sum of tp."""
    got = lv.__dict__.get("_w")
    if got is None:
        inv = lambda v: np.divide(1.0, v, out=np.zeros_like(v), where=v > 0)  # noqa: E731
        got = lv.__dict__["_w"] = {"p": inv(lv.n_pred), "r": inv(lv.n_gt), "f": 2 * inv(lv.n_pred + lv.n_gt)}
    return got  # type: ignore[no-any-return]


def row_arrays(lv: _Level, rows: np.ndarray, tp: np.ndarray, n_features: int) -> dict[str, np.ndarray]:
    """Per-row columns (in ``rows`` order) given the tp of every (row, feature) of a conf index.

    precision, recall, f1 and iou are means over the row's features where defined."""
    nr = len(rows)
    c = lv.rowc
    w = _weights(lv)
    pos = lv.row_pos
    tp_r = np.bincount(pos, weights=tp, minlength=nr)
    return {
        "data_row_id": rows, "tp": tp_r.astype(np.int32), "fp": (c["n_pred"] - tp_r).astype(np.int32),
        "fn": (c["n_gt"] - tp_r).astype(np.int32), "tn": np.maximum(n_features - c["n_feat"], 0).astype(np.int32),
        "precision": _div(np.bincount(pos, weights=tp * w["p"], minlength=nr), c["n_p"]),
        "recall": _div(np.bincount(pos, weights=tp * w["r"], minlength=nr), c["n_r"]),
        "f1": _div(np.bincount(pos, weights=tp * w["f"], minlength=nr), c["n_f"]),
        "iou": c["iou"], "conf_min": c["conf_min"], "conf_max": c["conf_max"], "conf_mean": c["conf_mean"],
        "n_predictions": c["n_pred"].astype(np.int32), "n_annotations": c["n_gt"].astype(np.int32)}


def row_arrow(ws: Workspace, run_id: int, gen: int, k: int, t: float, n_features: int) -> pa.Table:
    lv = _level(ws, run_id, gen, k)
    cols = row_arrays(lv, _rows(ws, run_id, gen), _tp(lv, t), n_features)
    return pa.table({c: (_col(v) if v.dtype == np.float64 else v) for c, v in cols.items()})
