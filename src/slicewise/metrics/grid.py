"""The whole confidence x IoU grid at once: per-row metrics and confusion matrices for every (c, t).

One read of the summaries and the match records, then NumPy: a pair's *level* is the number of IoU-grid
values below its IoU (the pair is a match exactly at the first ``level`` thresholds), so counts at every
t are suffix sums of a histogram of levels (:func:`slicewise.metrics.reduce.tp_at_levels`). Per-row
precision, recall, F1 and iou are means over the row's features where defined, as in
:func:`slicewise.metrics.row_metrics_table`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from slicewise.metrics import fast, records, reduce
from slicewise.metrics.engine import RunRef, job_of, require_ready
from slicewise.metrics.results import GridMetrics, frozen_array, warn_if_outdated

if TYPE_CHECKING:
    from slicewise.workspace import Workspace


def grid_metrics(ws: Workspace, run: RunRef, *, warn: bool = True) -> GridMetrics:
    """Per-row metrics and confusion matrices at every (c, t) of the run's grids (the table is cached)."""
    r, s, gen = require_ready(ws, run)
    job = job_of(ws, r)
    if warn:
        warn_if_outdated(job, r.ref)
    K, T = len(s.confidence), len(s.iou)
    tgrid = np.asarray(s.iou, np.float64)
    cur = ws.state.cursor()
    rows = fast.run_row_ids(ws, r.id, gen)
    NR = len(rows)

    def build(name: str) -> None:
        n = K * T * NR
        cols: dict[str, np.ndarray] = {
            "conf_idx": np.repeat(np.arange(K, dtype=np.int16), T * NR),
            "iou_idx": np.tile(np.repeat(np.arange(T, dtype=np.int16), NR), K),
            "data_row_id": np.tile(rows, K * T)}
        for c, dtype in _COLUMNS.items():
            cols[c] = np.empty(n, dtype)
        for k in range(K):
            lv = fast.level(ws, r.id, gen, k)
            tp_all = reduce.tp_at_levels(lv.tp_line, lv.tp_iou, len(lv.n_pred), tgrid)  # (lines, T)
            part = level_columns(lv, NR, tp_all, fast.row_tn(ws, r.id, gen, k))
            for c, v in part.items():
                cols[c][k * T * NR:(k + 1) * T * NR] = v
        records.cache_table(cur, name, cols)

    name = ws.state.table("metrics-grid", f"r{r.id}_g{gen}", fast.view_topics(r.id), build, limit=2)
    classes = records.classes(cur, r.id)
    cm = confusion_grid(records.record_arrays(cur, r.id), np.array([c for c, _ in classes], np.int64), K, tgrid)
    return GridMetrics(tuple(s.confidence), tuple(s.iou), name, tuple(n for _, n in classes) + ("None",),
                       frozen_array(cm), job)


#: the per-row columns of the grid table after (conf_idx, iou_idx, data_row_id), as fast.row_arrays makes them
_COLUMNS = {"tp": np.int32, "fp": np.int32, "fn": np.int32, "tn": np.int32, "precision": np.float64,
            "recall": np.float64, "f1": np.float64, "iou": np.float64, "conf_min": np.float64, "conf_max": np.float64,
            "conf_mean": np.float64, "n_predictions": np.int32, "n_annotations": np.int32}


def level_columns(lv: fast.Level, nr: int, tp_all: np.ndarray, tn: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`slicewise.metrics.fast.row_arrays` at every IoU threshold of a conf index at once: ``tp_all`` is
    the (lines, T) tp of every line at every t; each column is (T * rows), t-major. The sums run over the
    lines in the same order as row_arrays' (one bincount per t, side by side), so every value is the same."""
    T = tp_all.shape[1]
    c, w = lv.rowc, lv.weights
    at = (np.arange(T)[:, None] * nr + lv.row_pos[None, :]).ravel()  # (t, line) -> bin of (t, row)
    tpt = np.ascontiguousarray(tp_all.T, np.float64)  # (T, lines)

    def per_row(v: np.ndarray) -> np.ndarray:
        return np.bincount(at, weights=v.ravel(), minlength=T * nr)

    def tile(v: np.ndarray) -> np.ndarray:
        return np.tile(v, T)

    tp_r = per_row(tpt)
    return {
        "tp": tp_r.astype(np.int32), "fp": (tile(c["n_pred"]) - tp_r).astype(np.int32),
        "fn": (tile(c["n_gt"]) - tp_r).astype(np.int32), "tn": tile(tn),
        "precision": reduce.ratio(per_row(tpt * w["p"]), tile(c["n_p"])),
        "recall": reduce.ratio(per_row(tpt * w["r"]), tile(c["n_r"])),
        "f1": reduce.ratio(per_row(tpt * w["f"]), tile(c["n_f"])),
        "iou": tile(reduce.round_ratio(c["iou"])), "conf_min": tile(c["conf_min"]), "conf_max": tile(c["conf_max"]),
        "conf_mean": tile(c["conf_mean"]), "n_predictions": tile(c["n_pred"].astype(np.int32)),
        "n_annotations": tile(c["n_gt"].astype(np.int32))}


def confusion_grid(rec: dict[str, np.ndarray], class_ids: np.ndarray, K: int, tgrid: np.ndarray) -> np.ndarray:
    """Confusion matrices at every (k, t) from the match records' arrays (``records.record_arrays``): a
    (K, T, C + 1, C + 1) array over ``class_ids`` and "None" last, [k, t, true, pred]."""
    T, C = len(tgrid), len(class_ids)
    kx, hp, hg = rec["conf_idx"], rec["has_pred"], rec["has_gt"]
    level = np.where(hp & hg, np.searchsorted(tgrid, rec["iou"], side="left"), 0)
    order = np.argsort(class_ids)

    def cindex(v: np.ndarray, has: np.ndarray) -> np.ndarray:
        if not C:
            return np.full(len(v), C, np.int64)
        return np.where(has, order[np.minimum(np.searchsorted(class_ids[order], v), C - 1)], C)

    pcx, tcx = cindex(rec["pred_class"], hp), cindex(rec["true_class"], hg)
    pair = hp & hg
    H = np.bincount(((kx[pair] * (C + 1) + tcx[pair]) * (C + 1) + pcx[pair]) * (T + 1) + level[pair],
                    minlength=K * (C + 1) * (C + 1) * (T + 1)).reshape(K, C + 1, C + 1, T + 1)
    Hs = np.cumsum(H[..., ::-1], axis=3)[..., ::-1][..., 1:T + 1]  # matched (true, pred) at ti
    cm = np.moveaxis(Hs, 3, 1).copy()  # (K, T, C+1, C+1)
    n_pred_c = np.bincount(kx[hp] * (C + 1) + pcx[hp], minlength=K * (C + 1)).reshape(K, C + 1)
    n_gt_c = np.bincount(kx[hg] * (C + 1) + tcx[hg], minlength=K * (C + 1)).reshape(K, C + 1)
    cm[:, :, C, :] = n_pred_c[:, None, :] - cm[:, :, :C, :].sum(axis=2)
    cm[:, :, :, C] = n_gt_c[:, None, :] - cm[:, :, :, :C].sum(axis=3)
    cm[:, :, C, C] = 0
    return cm
