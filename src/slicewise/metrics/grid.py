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
        # a view over two companion tables: per (k, row) what does not depend on t, and per (k, t, row) what
        # does (a line per (k, t, row) of everything was 2-3 times the bytes to write)
        n = K * NR
        line = np.arange(n, dtype=np.int32)  # the (k, row) line: k * NR + row position
        per_k: dict[str, np.ndarray] = {"line": line, "conf_idx": np.repeat(np.arange(K, dtype=np.int16), NR),
                                        "data_row_id": np.tile(rows, K)}
        per_t: dict[str, np.ndarray] = {"line": np.tile(line.reshape(K, 1, NR), (1, T, 1)).ravel(),
                                        "iou_idx": np.tile(np.repeat(np.arange(T, dtype=np.int16), NR), K)}
        for c, dtype in _PER_K.items():
            per_k[c] = np.empty(n, dtype)
        for c, dtype in _PER_T.items():
            per_t[c] = np.empty(n * T, dtype)
        for k, lv in enumerate(fast.levels(ws, r.id, gen, range(K))):
            tp_all = reduce.tp_at_levels(lv.tp_line, lv.tp_iou, len(lv.n_pred), tgrid)  # (lines, T)
            for c, v in level_columns(lv, NR, tp_all, fast.row_tn(ws, r.id, gen, k, lv)).items():
                if c in per_k:
                    per_k[c][k * NR:(k + 1) * NR] = v
                else:
                    per_t[c][k * T * NR:(k + 1) * T * NR] = v
        view = name.rpartition(".")[2]
        records.cache_table(cur, f"{name}__rows", per_k)
        records.cache_table(cur, f"{name}__t", per_t)
        # (names inside the cache database unqualified: a later process may attach it under another name)
        cur.execute(f"""CREATE VIEW {name} AS SELECT r.conf_idx, t.iou_idx, r.data_row_id, t.tp,
                            r.n_predictions - t.tp AS fp, r.n_annotations - t.tp AS fn, r.tn, t.precision, t.recall,
                            t.f1, r.iou, r.conf_min, r.conf_max, r.conf_mean, r.n_predictions, r.n_annotations
                        FROM "{view}__t" t JOIN "{view}__rows" r ON r.line = t.line""")

    name = ws.state.table("metrics-grid", f"r{r.id}_g{gen}", fast.view_topics(r.id), build, limit=2)
    classes = records.classes(cur, r.id)
    cm = confusion_grid(records.record_arrays(cur, r.id), np.array([c for c, _ in classes], np.int64), K, tgrid)
    return GridMetrics(tuple(s.confidence), tuple(s.iou), name, tuple(n for _, n in classes) + ("None",),
                       frozen_array(cm), job)


#: the grid view's columns from its per-(k, row) table and its per-(k, t, row) table (fp and fn are computed
#: in the view), as fast.row_arrays makes them
_PER_K = {"tn": np.int32, "iou": np.float64, "conf_min": np.float64, "conf_max": np.float64,
          "conf_mean": np.float64, "n_predictions": np.int32, "n_annotations": np.int32}
_PER_T = {"tp": np.int32, "precision": np.float64, "recall": np.float64, "f1": np.float64}


def level_columns(lv: fast.Level, nr: int, tp_all: np.ndarray, tn: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`slicewise.metrics.fast.row_arrays` at every IoU threshold of a conf index at once: ``tp_all`` is
    the (lines, T) tp of every line at every t; the columns of :data:`_PER_T` are (T * rows), t-major, those
    of :data:`_PER_K` (rows). The sums run over the lines in the same order as row_arrays' bincount, so every
    value is the same."""
    T = tp_all.shape[1]
    c, w = lv.rowc, lv.weights
    sums = fast.row_sums(lv.row_pos, tp_all, w["p"], w["r"], w["f"], nr).reshape(4, T * nr)

    def tile(v: np.ndarray) -> np.ndarray:
        return np.tile(v, T)

    return {
        "tp": sums[0].astype(np.int32), "tn": tn,
        "precision": reduce.ratio(sums[1], tile(c["n_p"])), "recall": reduce.ratio(sums[2], tile(c["n_r"])),
        "f1": reduce.ratio(sums[3], tile(c["n_f"])),
        "iou": reduce.round_ratio(c["iou"]), "conf_min": c["conf_min"], "conf_max": c["conf_max"],
        "conf_mean": c["conf_mean"], "n_predictions": c["n_pred"].astype(np.int32),
        "n_annotations": c["n_gt"].astype(np.int32)}


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
