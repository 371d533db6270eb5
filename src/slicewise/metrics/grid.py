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


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)


def grid_metrics(ws: Workspace, run: RunRef) -> GridMetrics:
    """Per-row metrics and confusion matrices at every (c, t) of the run's grids (cached per process)."""
    from slicewise.metrics.views import CACHE_DB, _classes, _cursor, _exists

    r, s, gen = require_ready(ws, run)
    K, T = len(s.confidence), len(s.iou)
    tgrid = np.asarray(s.iou, np.float64)
    cur = _cursor(ws)
    name = f"mv_grid_r{r.id}_g{gen}"
    rec = cur.execute("""SELECT conf_idx, data_row_id, pred_id IS NOT NULL AS hp, gt_id IS NOT NULL AS hg,
                                coalesce(pred_class, -1) AS pc, coalesce(true_class, -1) AS tc,
                                coalesce(pred_feature, true_feature) AS pf, coalesce(true_feature, -1) AS tf,
                                coalesce(iou, -1.0) AS iou, confidence
                         FROM match_records WHERE run_id = ?""", [r.id]).fetchnumpy()
    k = np.asarray(rec["conf_idx"], np.int64)
    hp, hg = np.asarray(rec["hp"], bool), np.asarray(rec["hg"], bool)
    pc, tc = np.asarray(rec["pc"], np.int64), np.asarray(rec["tc"], np.int64)
    iou = np.asarray(rec["iou"], np.float64)
    conf = rec["confidence"]
    conf = conf.filled(np.nan) if isinstance(conf, np.ma.MaskedArray) else np.asarray(conf, np.float64)
    level = np.where(hp & hg, np.searchsorted(tgrid, iou, side="left"), 0)  # matched at ti < level

    rows = cur.execute("SELECT data_row_id FROM run_rows WHERE run_id = ? ORDER BY data_row_id",
                       [r.id]).fetchnumpy()["data_row_id"]
    rows = np.asarray(rows, np.int64)
    NR = len(rows)
    ri = np.searchsorted(rows, np.asarray(rec["data_row_id"], np.int64))
    # the feature a record counts for: the predicted feature on the pred side, the true one on the gt side
    pfeat = np.where(hp, np.asarray(rec["pf"], np.int64), -1)
    tfeat = np.asarray(rec["tf"], np.int64)

    # -- (k, row, feature) groups
    feats = np.unique(np.concatenate([pfeat[hp], tfeat[hg]]))
    NF = max(len(feats), 1)
    fp_idx = np.searchsorted(feats, pfeat)
    ft_idx = np.searchsorted(feats, tfeat)
    key_p = (k * NR + ri) * NF + fp_idx
    key_g = (k * NR + ri) * NF + ft_idx
    keys = np.unique(np.concatenate([key_p[hp], key_g[hg]]))
    G = len(keys)
    gp = np.searchsorted(keys, key_p)
    gg = np.searchsorted(keys, key_g)
    n_pred = np.bincount(gp[hp], minlength=G).astype(np.float64)
    n_gt = np.bincount(gg[hg], minlength=G).astype(np.float64)
    same = hp & hg & (pc == tc)
    hist = np.bincount(gp[same] * (T + 1) + level[same], minlength=G * (T + 1)).reshape(G, T + 1)
    suffix = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1]  # suffix[:, j] = count(level >= j)
    tp = suffix[:, 1:T + 1].astype(np.float64)  # (G, T): matched at ti iff level > ti
    fp = n_pred[:, None] - tp
    fn = n_gt[:, None] - tp
    prec = _safe_div(tp, tp + fp)
    recall = _safe_div(tp, tp + fn)
    f1 = _safe_div(2 * tp, 2 * tp + fp + fn)
    # iou per (k, row, feature) from the stored overlap quality
    fi = cur.execute("SELECT conf_idx, data_row_id, feature_id, iou FROM metric_feature_iou WHERE run_id = ?",
                     [r.id]).fetchnumpy()
    fkey = (np.asarray(fi["conf_idx"], np.int64) * NR + np.searchsorted(rows, np.asarray(fi["data_row_id"], np.int64))) \
        * NF + np.searchsorted(feats, np.asarray(fi["feature_id"], np.int64))
    fval = fi["iou"]
    fval = fval.filled(np.nan) if isinstance(fval, np.ma.MaskedArray) else np.asarray(fval, np.float64)
    giou = np.full(G, np.nan)
    pos = np.searchsorted(keys, fkey)
    ok = (pos < G) & (keys[np.minimum(pos, G - 1)] == fkey) if G else np.zeros(len(fkey), bool)
    giou[pos[ok]] = fval[ok]

    # -- per (k, row) then per (k, t, row)
    kr = keys // NF  # = k * NR + row index
    NKR = K * NR
    out_idx = (np.arange(T)[None, :] * NR + (kr % NR)[:, None] + (kr // NR)[:, None] * T * NR)  # (G, T)

    def tsum(v: np.ndarray) -> np.ndarray:
        return np.bincount(out_idx.ravel(), weights=v.ravel(), minlength=NKR * T)

    def tmean(v: np.ndarray) -> np.ndarray:
        d = ~np.isnan(v)
        return _safe_div(tsum(np.where(d, v, 0.0)), tsum(d.astype(np.float64)))

    tp_r, fp_r, fn_r = tsum(tp), tsum(fp), tsum(fn)
    p_r, rc_r, f1_r = tmean(prec), tmean(recall), tmean(f1)
    iou_r = tmean(np.broadcast_to(giou[:, None], (G, T)))
    n_feat_r = np.bincount(kr, minlength=NKR)
    nfeat = int(cur.execute("SELECT count(*) FROM features").fetchone()[0])  # type: ignore[index]
    # confidence stats and counts per (k, row): independent of t
    krp = (k * NR + ri)[hp]
    cp = conf[hp]
    npr = np.bincount(krp, minlength=NKR)
    csum = np.bincount(krp, weights=cp, minlength=NKR)
    cmin = np.full(NKR, np.inf)
    np.minimum.at(cmin, krp, cp)
    cmax = np.full(NKR, -np.inf)
    np.maximum.at(cmax, krp, cp)
    nan_if = npr == 0
    cmin[nan_if], cmax[nan_if] = np.nan, np.nan
    cmean = _safe_div(csum, npr.astype(np.float64))
    nan_r = np.bincount((k * NR + ri)[hg], minlength=NKR)

    def per_t(v: np.ndarray) -> np.ndarray:  # (K*NR,) -> (K*T*NR,) in (k, t, row) order
        return np.repeat(v.reshape(K, 1, NR), T, axis=1).ravel()

    def col(v: np.ndarray) -> pa.Array:
        return pa.array(v, mask=np.isnan(v))

    kk = np.repeat(np.arange(K, dtype=np.int16), T * NR)
    tt = np.tile(np.repeat(np.arange(T, dtype=np.int16), NR), K)
    table = pa.table({
        "conf_idx": kk, "iou_idx": tt, "data_row_id": np.tile(rows, K * T),
        "tp": tp_r.astype(np.int32), "fp": fp_r.astype(np.int32), "fn": fn_r.astype(np.int32),
        "tn": per_t(np.maximum(nfeat - n_feat_r, 0)).astype(np.int32),
        "precision": col(p_r), "recall": col(rc_r), "f1": col(f1_r), "iou": col(iou_r),
        "conf_min": col(per_t(cmin)), "conf_max": col(per_t(cmax)), "conf_mean": col(per_t(cmean)),
        "n_predictions": per_t(npr).astype(np.int32), "n_annotations": per_t(nan_r).astype(np.int32)})
    if not _exists(cur, name):
        cur.register("_sw_grid", table)
        try:
            cur.execute(f"CREATE OR REPLACE TABLE {CACHE_DB}.{name} AS SELECT * FROM _sw_grid")
        finally:
            cur.unregister("_sw_grid")

    # -- confusion matrices at every (k, t)
    cls = _classes(ws, r.id)
    cid = np.array([c for c, _ in cls], np.int64)
    order = np.argsort(cid)
    C = len(cls)

    def cindex(v: np.ndarray) -> np.ndarray:
        return order[np.searchsorted(cid[order], v)] if C else np.zeros(len(v), np.int64)

    pcx = np.where(hp, cindex(np.where(hp, pc, cid[0] if C else 0)), C)
    tcx = np.where(hg, cindex(np.where(hg, tc, cid[0] if C else 0)), C)
    pair = hp & hg
    H = np.bincount(((k[pair] * (C + 1) + tcx[pair]) * (C + 1) + pcx[pair]) * (T + 1) + level[pair],
                    minlength=K * (C + 1) * (C + 1) * (T + 1)).reshape(K, C + 1, C + 1, T + 1)
    Hs = np.cumsum(H[..., ::-1], axis=3)[..., ::-1][..., 1:T + 1]  # matched (true, pred) at ti
    cm = np.moveaxis(Hs, 3, 1).copy()  # (K, T, C+1, C+1)
    n_pred_c = np.bincount(k[hp] * (C + 1) + pcx[hp], minlength=K * (C + 1)).reshape(K, C + 1)
    n_gt_c = np.bincount(k[hg] * (C + 1) + tcx[hg], minlength=K * (C + 1)).reshape(K, C + 1)
    cm[:, :, C, :] = n_pred_c[:, None, :] - cm[:, :, :C, :].sum(axis=2)
    cm[:, :, :, C] = n_gt_c[:, None, :] - cm[:, :, :, :C].sum(axis=3)
    cm[:, :, C, C] = 0
    return GridMetrics(s.confidence, s.iou, f"{CACHE_DB}.{name}", [n for _, n in cls] + ["None"], cm)
