"""The whole confidence x IoU grid at once: per-row metrics and confusion matrices for every (c, t).

One read of the match records, then NumPy: a record's *level* is the number of IoU-grid values below
its IoU (the pair is a match exactly at the first ``level`` thresholds), so counts at every t are
suffix sums of a histogram of levels. Per-row precision, recall, F1 and iou are means over the row's
features where defined, as in :func:`slicewise.metrics.row_metrics_table`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from slicewise.metrics.engine import RunRef, require_ready

if TYPE_CHECKING:
    from slicewise.workspace import Workspace


@dataclass
class GridMetrics:
    confidence: tuple[float, ...]
    iou: tuple[float, ...]
    table: str  # per-row metrics at every grid point: conf_idx, iou_idx, data_row_id, tp, fp, fn, tn, ...
    classes: list[str]  # confusion classes, "None" last
    confusion: np.ndarray  # (K, T, C + 1, C + 1): [k, t, true, pred]


def grid_metrics(ws: Workspace, run: RunRef) -> GridMetrics:
    """Per-row metrics and confusion matrices at every (c, t) of the run's grids (cached per process)."""
    from slicewise.metrics.fast import _level, _rows, row_arrays
    from slicewise.metrics.views import _classes, _n_features, view_topics

    r, s, gen = require_ready(ws, run)
    K, T = len(s.confidence), len(s.iou)
    tgrid = np.asarray(s.iou, np.float64)
    cur = ws.state.cursor()
    rows = _rows(ws, r.id, gen)
    NR = len(rows)
    nfeat = _n_features(cur)

    def build(name: str) -> None:
        parts = []
        for k in range(K):
            lv = _level(ws, r.id, gen, k)
            n = len(lv.n_pred)
            # a same-class pair is a TP at the first `level` thresholds of the grid
            level = np.searchsorted(tgrid, lv.tp_iou, side="left")
            hist = np.bincount(lv.tp_rf * (T + 1) + level, minlength=n * (T + 1)).reshape(n, T + 1)
            tp_all = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1][:, 1:]  # (n, T)
            for ti in range(T):
                cols = row_arrays(lv, rows, tp_all[:, ti].astype(np.float64), nfeat)
                cols["conf_idx"] = np.full(NR, k, np.int16)
                cols["iou_idx"] = np.full(NR, ti, np.int16)
                parts.append(cols)
        data = {c: np.concatenate([p[c] for p in parts]) for c in parts[0]}
        table = pa.table({c: (pa.array(v, mask=np.isnan(v)) if v.dtype == np.float64 else v)
                          for c, v in ((c, data[c]) for c in ("conf_idx", "iou_idx", *[c for c in parts[0]
                                                                                         if c not in ("conf_idx", "iou_idx")]))})
        cur.register("_sw_grid", table)
        try:
            cur.execute(f"CREATE TABLE {name} AS SELECT * FROM _sw_grid")
        finally:
            cur.unregister("_sw_grid")

    name = ws.state.table("metrics-grid", f"r{r.id}_g{gen}", view_topics(r.id), build, limit=2)

    # -- confusion matrices at every (k, t), from the records
    rec = cur.execute("""SELECT conf_idx, pred_id IS NOT NULL AS hp, gt_id IS NOT NULL AS hg,
                                coalesce(pred_class, -1) AS pc, coalesce(true_class, -1) AS tc, coalesce(iou, -1.0) AS iou
                         FROM match_records WHERE run_id = ?""", [r.id]).fetchnumpy()
    kx = np.asarray(rec["conf_idx"], np.int64)
    hp, hg = np.asarray(rec["hp"], bool), np.asarray(rec["hg"], bool)
    pc, tc = np.asarray(rec["pc"], np.int64), np.asarray(rec["tc"], np.int64)
    iou = np.asarray(rec["iou"], np.float64)
    level = np.where(hp & hg, np.searchsorted(tgrid, iou, side="left"), 0)
    cls = _classes(ws, r.id)
    cid = np.array([c for c, _ in cls], np.int64)
    order = np.argsort(cid)
    C = len(cls)

    def cindex(v: np.ndarray, has: np.ndarray) -> np.ndarray:
        if not C:
            return np.full(len(v), C, np.int64)
        return np.where(has, order[np.minimum(np.searchsorted(cid[order], v), C - 1)], C)

    pcx, tcx = cindex(pc, hp), cindex(tc, hg)
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
    return GridMetrics(s.confidence, s.iou, name, [n for _, n in cls] + ["None"], cm)
