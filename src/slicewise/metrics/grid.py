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
        parts = []
        for k in range(K):
            lv = fast.level(ws, r.id, gen, k)
            tp_all = reduce.tp_at_levels(lv.tp_line, lv.tp_iou, len(lv.n_pred), tgrid)  # (lines, T)
            tn = fast.row_tn(ws, r.id, gen, k)
            for ti in range(T):
                cols = fast.row_arrays(lv, rows, tp_all[:, ti].astype(np.float64), tn)
                parts.append({"conf_idx": np.full(NR, k, np.int16), "iou_idx": np.full(NR, ti, np.int16), **cols})
        records.cache_table(cur, name, {c: np.concatenate([p[c] for p in parts]) for c in parts[0]})

    name = ws.state.table("metrics-grid", f"r{r.id}_g{gen}", fast.view_topics(r.id), build, limit=2)
    classes = records.classes(cur, r.id)
    cm = confusion_grid(records.record_arrays(cur, r.id), np.array([c for c, _ in classes], np.int64), K, tgrid)
    return GridMetrics(tuple(s.confidence), tuple(s.iou), name, tuple(n for _, n in classes) + ("None",),
                       frozen_array(cm), job)


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
