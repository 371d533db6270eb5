"""Greedy matching of a run's predictions to ground truth, one pass per confidence threshold.

Pairs are formed per data row between objects of comparable kind (class-agnostic by default, same
feature in within-class mode), scored by the kind's IoU kernel, and visited in decreasing IoU
(ties: see :func:`visit_order`). The pass at confidence c ignores predictions
with confidence below c; the matches at IoU threshold t are the pairs of that pass with IoU > t.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import pyarrow as pa

from slicewise import geometry
from slicewise.errors import MetricsError

#: kinds compared with each other (class-agnostic matching pairs objects of one family)
FAMILY = {"bbox": "area", "polygon": "area", "mask": "area", "point": "point", "polyline": "line",
          "ner": "ner", "radio": "radio", "checklist": "checklist"}
CLASSIFICATION = ("radio", "checklist")
CLASS_OFFSET = 1_000_000_000  # class ids of (feature, answer) classes; object classes are feature ids


@dataclass
class Objects:
    """Annotations or predictions of some data rows, as parallel arrays (sorted by id)."""

    id: np.ndarray
    row: np.ndarray
    feature: np.ndarray
    kind: np.ndarray  # object (str)
    answer: np.ndarray  # object
    box: np.ndarray  # (n, 4)
    geometry: np.ndarray  # object: WKB or None
    mask: np.ndarray  # object: RLE string or None
    span: np.ndarray  # (n, 2)
    size: np.ndarray  # (n, 2) height, width of the row
    confidence: np.ndarray  # 1.0 for annotations

    def __len__(self) -> int:
        return len(self.id)

    @classmethod
    def from_arrow(cls, t: pa.Table) -> Objects:
        def col(name: str, dtype: Any = None) -> np.ndarray:
            c = t.column(name)
            if dtype is None:
                return np.array(c.to_pylist(), dtype=object)
            return c.to_numpy(zero_copy_only=False).astype(dtype)

        n = t.num_rows
        box = np.column_stack([np.nan_to_num(col(c, np.float64), nan=0.0) for c in "xywh"]) if n else np.zeros((0, 4))
        span = np.column_stack([col(c, np.float64) for c in ("span_start", "span_end")]) if n else np.zeros((0, 2))
        size = np.column_stack([np.nan_to_num(col(c, np.float64)) for c in ("height", "width")]) if n \
            else np.zeros((0, 2))
        return cls(id=col("id", np.int64), row=col("data_row_id", np.int64), feature=col("feature_id", np.int64),
                   kind=col("kind"), answer=col("answer"), box=box, geometry=col("geometry"), mask=col("mask_rle"),
                   span=span, size=size, confidence=col("confidence", np.float64))


def load_objects(con: Any, table: str, run_id: int | None, rows_table: str) -> Objects:
    """Objects of the rows listed in the registered table ``rows_table`` (column data_row_id)."""
    assert table in ("annotations", "predictions") and rows_table.isidentifier()
    conf = "o.confidence" if table == "predictions" else "1.0::DOUBLE AS confidence"
    cond = "o.run_id = ? AND " if table == "predictions" else ""
    t = con.execute(f"""
        SELECT o.id, o.data_row_id, o.feature_id, o.kind, o.answer, o.x, o.y, o.w, o.h,
               CASE WHEN o.kind IN ('polygon', 'point', 'polyline') THEN o.geometry END AS geometry,
               o.mask_rle, o.span_start, o.span_end, {conf}, d.height, d.width
        FROM {table} o JOIN data_rows d ON d.id = o.data_row_id
        WHERE {cond} o.data_row_id IN (SELECT data_row_id FROM {rows_table})
        ORDER BY o.id""", [run_id] if table == "predictions" else []).to_arrow_table()
    return Objects.from_arrow(t)


def cross_pairs(key_p: np.ndarray, key_g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (i, j) with ``key_p[i] == key_g[j]``, vectorised (no loop over keys).

    >>> cross_pairs(np.array([1, 2, 1]), np.array([1, 1, 3]))
    (array([0, 0, 2, 2]), array([0, 1, 0, 1]))
    """
    op = np.argsort(key_p, kind="stable")
    og = np.argsort(key_g, kind="stable")
    kp, kg = key_p[op], key_g[og]
    up, sp, cp = np.unique(kp, return_index=True, return_counts=True)
    ug, sg, cg = np.unique(kg, return_index=True, return_counts=True)
    common, ip, ig = np.intersect1d(up, ug, assume_unique=True, return_indices=True)
    sizes = cp[ip] * cg[ig]
    total = int(sizes.sum())
    if not total:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    block = np.repeat(np.arange(len(common)), sizes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    off = np.arange(total) - starts[block]
    ng = cg[ig][block]
    pi = op[sp[ip][block] + off // ng]
    gi = og[sg[ig][block] + off % ng]
    order = np.lexsort((gi, pi))
    return pi[order].astype(np.int64), gi[order].astype(np.int64)


def _map(values: np.ndarray, mapping: dict[str, str]) -> np.ndarray:
    """``mapping[v]`` for every v, with one lookup per distinct value."""
    if not len(values):
        return np.array([], dtype=object)
    uniq, inv = np.unique(values.astype(str), return_inverse=True)
    return np.array([mapping[u] for u in uniq], dtype=object)[inv]


def _group_keys(o: Objects, within_class: bool, codes: dict[str, int]) -> np.ndarray:
    if not within_class and not np.isin(o.kind, ["radio", "checklist"]).any():  # the common case, vectorised
        fams = _map(o.kind, FAMILY)
        return np.array([codes.setdefault(str(g), len(codes)) for g in np.unique(fams)], np.int64)[
            np.unique(fams, return_inverse=True)[1]] if len(fams) else np.zeros(0, np.int64)
    fam: list[int] = []
    for k, f, a in zip(o.kind, o.feature, o.answer, strict=True):
        g = FAMILY[k]
        if g == "radio":
            g = f"radio:{f}"
        elif g == "checklist":
            g = f"checklist:{f}:{a}"
        elif within_class:
            g = f"{g}:{f}"
        fam.append(codes.setdefault(g, len(codes)))
    return np.asarray(fam, np.int64)


def pair_ious(P: Objects, G: Objects, pi: np.ndarray, gi: np.ndarray, radius: float) -> np.ndarray:
    """IoU of each pair (P[pi[i]], G[gi[i]]); pairs are of one family each."""
    import shapely

    iou = np.zeros(len(pi))
    if not len(pi):
        return iou
    kp = P.kind[pi]
    fam = _map(kp, FAMILY)
    # boxes and polygons
    sel = np.flatnonzero(fam == "area")
    if len(sel):
        kg = G.kind[gi[sel]]
        both_box = (kp[sel] == "bbox") & (kg == "bbox")
        any_mask = (kp[sel] == "mask") | (kg == "mask")
        s = sel[both_box]
        iou[s] = geometry.box_iou(P.box[pi[s]], G.box[gi[s]])
        s = sel[~both_box & ~any_mask]
        if len(s):
            iou[s] = geometry.polygon_iou(_shapes(P, pi[s]), _shapes(G, gi[s]))
        s = sel[any_mask]  # a mask with a mask, box or polygon: by pixels, as COCO compares them
        if len(s):
            iou[s] = geometry.mask_iou_pairs(_rles(P, pi[s]), _rles(G, gi[s]), P.row[pi[s]])
    for name in ("point", "line"):
        s = np.flatnonzero(fam == name)
        if len(s):
            iou[s] = geometry.buffered_iou(shapely.from_wkb(P.geometry[pi[s]]), shapely.from_wkb(G.geometry[gi[s]]),
                                           radius)
    s = np.flatnonzero(fam == "ner")
    if len(s):
        iou[s] = geometry.span_iou(P.span[pi[s], 0], P.span[pi[s], 1], G.span[gi[s], 0], G.span[gi[s], 1])
    s = np.flatnonzero((fam == "radio") | (fam == "checklist"))
    iou[s] = 1.0
    return iou


def _shapes(o: Objects, idx: np.ndarray) -> np.ndarray:
    import shapely

    out = np.empty(len(idx), dtype=object)
    isbox = o.kind[idx] == "bbox"
    b = o.box[idx[isbox]]
    out[isbox] = shapely.box(b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3])
    out[~isbox] = shapely.from_wkb(o.geometry[idx[~isbox]])
    return out


_RLE_CACHE_KEY = "_rle_objs"


def _rles(o: Objects, idx: np.ndarray) -> list[dict[str, Any]]:
    """Objects as COCO RLEs at their row's size (boxes and polygons rasterised as pycocotools does)."""
    cache: dict[int, dict[str, Any]] = o.__dict__.setdefault(_RLE_CACHE_KEY, {})
    out = []
    for i in idx:
        r = cache.get(int(i))
        if r is None:
            r = cache[int(i)] = _to_rle(o, int(i))
        out.append(r)
    return out


def _to_rle(o: Objects, i: int) -> dict[str, Any]:
    from pycocotools import mask as mask_utils

    h, w = int(o.size[i, 0]), int(o.size[i, 1])
    if o.kind[i] == "mask":
        return {"size": [h, w], "counts": o.mask[i].encode()}
    if h <= 0 or w <= 0:
        raise MetricsError(f"a {o.kind[i]} is compared with a mask on a data row without width and height",
                           where=f"data row {int(o.row[i])}", fix="give the data row its width and height")
    if o.kind[i] == "polygon":
        import shapely

        g = shapely.from_wkb(o.geometry[i])
        polys = list(g.geoms) if hasattr(g, "geoms") else [g]
        rings = [np.asarray(p.exterior.coords[:-1], np.float64).ravel().tolist() for p in polys]
    else:
        x, y, bw, bh = (float(v) for v in o.box[i])
        rings = [[x, y, x, y + bh, x + bw, y + bh, x + bw, y]]
    return dict(mask_utils.merge(mask_utils.frPyObjects(rings, h, w)))


@numba.njit(cache=True)
def greedy(pair_p: np.ndarray, pair_g: np.ndarray, n_pred: int, n_gt: int, conf: np.ndarray,
           thresholds: np.ndarray) -> np.ndarray:
    """For each threshold k, ``match[k, p]`` = index of the pair that matched prediction p, or -1.

    Pairs must be sorted in visiting order (decreasing IoU, then the tie-breakers)."""
    K = len(thresholds)
    match = np.full((K, n_pred), -1, np.int64)
    for k in range(K):
        c = thresholds[k]
        used = np.zeros(n_gt, np.bool_)
        for q in range(len(pair_p)):
            p = pair_p[q]
            g = pair_g[q]
            if conf[p] < c or match[k, p] >= 0 or used[g]:
                continue
            match[k, p] = q
            used[g] = True
    return match


def visit_order(P: Objects, G: Objects, pi: np.ndarray, gi: np.ndarray, iou: np.ndarray) -> np.ndarray:
    """Decreasing IoU. Ties: higher confidence first, then by feature ids, then by the boxes' coordinates,
    then by ids, so that the outcome does not depend on the order objects were added in (objects equal
    in all of these are interchangeable)."""
    order = np.argsort(-iou, kind="stable")
    srt = iou[order]
    if not np.any(srt[1:] == srt[:-1]):
        return order  # no ties: decreasing IoU decides alone
    keys = [G.id[gi], P.id[pi]]
    keys += [G.box[gi, j] for j in (3, 2, 1, 0)] + [P.box[pi, j] for j in (3, 2, 1, 0)]
    keys += [G.feature[gi], P.feature[pi], -P.confidence[pi], -iou]
    return np.lexsort(keys)


@dataclass
class Matched:
    records: pa.Table
    feature_iou: pa.Table
    summary: pa.Table  # metric_rf lines; rf_ord local to this batch (the caller adds its offsets)
    tp: pa.Table  # metric_tp lines, same numbering
    row_const: pa.Table  # metric_row_const lines


def match_rows(P: Objects, G: Objects, thresholds: np.ndarray, *, within_class: bool, radius: float,
               class_of: Any, run_id: int) -> Matched:
    """Match records and per-(row, feature) overlap quality for every confidence threshold."""
    codes: dict[str, int] = {}
    maxrow = int(max(P.row.max(initial=0), G.row.max(initial=0))) + 1
    kp = _group_keys(P, within_class, codes) * maxrow + P.row
    kg = _group_keys(G, within_class, codes) * maxrow + G.row
    pi, gi = cross_pairs(kp, kg)
    iou = pair_ious(P, G, pi, gi, radius)
    K = len(thresholds)
    pclass, gclass = class_of(P), class_of(G)

    # -- the protocol's matching
    pos = iou > 0
    mp, mg, miou = pi[pos], gi[pos], iou[pos]
    order = visit_order(P, G, mp, mg, miou)
    mp, mg, miou = mp[order], mg[order], miou[order]
    match = greedy(mp, mg, len(P), len(G), P.confidence, thresholds)
    # sentinels: "no match" indexes one past the end of these
    mg_x, miou_x = np.append(mg, len(G)), np.append(miou, np.nan)
    gid_x, gcls_x, gfeat_x = np.append(G.id, 0), np.append(gclass, 0), np.append(G.feature, 0)

    # -- overlap quality within each feature
    same = P.feature[pi] == G.feature[gi]
    qp, qg, qiou = pi[same], gi[same], iou[same]
    radio = P.kind[qp] == "radio"
    if radio.any():
        qiou = qiou.copy()
        qiou[radio] = (P.answer[qp[radio]] == G.answer[qg[radio]]).astype(np.float64)
    qpos = qiou > 0
    qp, qg, qiou = qp[qpos], qg[qpos], qiou[qpos]
    order = visit_order(P, G, qp, qg, qiou)
    qp, qg, qiou = qp[order], qg[order], qiou[order]
    qmatch = greedy(qp, qg, len(P), len(G), P.confidence, thresholds)

    rf = np.unique(np.concatenate([np.stack([P.row, P.feature], 1), np.stack([G.row, G.feature], 1)]), axis=0) \
        if len(P) + len(G) else np.zeros((0, 2), np.int64)
    rf_key = rf[:, 0] * (int(rf[:, 1].max(initial=0)) + 1) + rf[:, 1] if len(rf) else np.zeros(0, np.int64)
    mult = int(rf[:, 1].max(initial=0)) + 1 if len(rf) else 1
    rf_p = np.searchsorted(rf_key, P.row * mult + P.feature)
    rf_g = np.searchsorted(rf_key, G.row * mult + G.feature)
    n_rf = len(rf)
    rf_kind = np.empty(n_rf, dtype=object)
    rf_kind[rf_g] = G.kind
    rf_kind[rf_p] = P.kind
    ng = np.bincount(rf_g, minlength=n_rf).astype(np.float64)
    mask_rf = np.flatnonzero(rf_kind == "mask")

    rec: dict[str, list[np.ndarray]] = {c: [] for c in ("conf_idx", "data_row_id", "pred_id", "gt_id", "pred_class",
                                                         "true_class", "pred_feature", "true_feature", "iou",
                                                         "confidence", "has_p", "has_g")}
    fi: dict[str, list[np.ndarray]] = {"conf_idx": [], "data_row_id": [], "feature_id": [], "iou": []}
    sm: dict[str, list[np.ndarray]] = {c: [] for c in ("conf_idx", "rf_ord", "data_row_id", "feature_id", "n_pred",
                                                        "n_gt", "conf_min", "conf_max", "conf_sum", "iou")}
    tpl: dict[str, list[np.ndarray]] = {"conf_idx": [], "rf_ord": [], "iou": []}
    rc: dict[str, list[np.ndarray]] = {c: [] for c in ("conf_idx", "data_row_id", "n_pred", "n_gt", "n_feat", "n_p",
                                                        "n_r", "n_f", "iou", "conf_min", "conf_max", "conf_mean")}
    mask_cache: dict[tuple[int, tuple[int, ...]], float] = {}
    for k in range(K):
        kept = np.flatnonzero(P.confidence >= thresholds[k])
        q = match[k, kept]
        has = q >= 0
        q = np.where(has, q, len(mg))  # index of a sentinel appended below
        g = mg_x[q]
        gt_matched = np.zeros(len(G) + 1, bool)
        gt_matched[g[has]] = True
        gt_matched = gt_matched[:-1]
        un = np.flatnonzero(~gt_matched)
        n1, n2 = len(kept), len(un)
        rec["conf_idx"].append(np.full(n1 + n2, k, np.int16))
        rec["data_row_id"].append(np.concatenate([P.row[kept], G.row[un]]))
        rec["pred_id"].append(np.concatenate([P.id[kept], np.zeros(n2, np.int64)]))
        rec["has_p"].append(np.concatenate([np.ones(n1, bool), np.zeros(n2, bool)]))
        rec["gt_id"].append(np.concatenate([gid_x[g], G.id[un]]))
        rec["has_g"].append(np.concatenate([has, np.ones(n2, bool)]))
        rec["pred_class"].append(np.concatenate([pclass[kept], np.zeros(n2, np.int64)]))
        rec["true_class"].append(np.concatenate([gcls_x[g], gclass[un]]))
        rec["pred_feature"].append(np.concatenate([P.feature[kept], np.zeros(n2, np.int64)]))
        rec["true_feature"].append(np.concatenate([gfeat_x[g], G.feature[un]]))
        rec["iou"].append(np.concatenate([miou_x[q], np.full(n2, np.nan)]))
        rec["confidence"].append(np.concatenate([P.confidence[kept], np.full(n2, np.nan)]))

        # overlap quality
        npk = np.bincount(rf_p[kept], minlength=n_rf).astype(np.float64)
        qq = qmatch[k, kept]
        qh = qq >= 0
        s = np.bincount(rf_p[kept[qh]], weights=qiou[qq[qh]], minlength=n_rf)
        present = (npk + ng) > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            val = s / np.maximum(npk, ng)
            chk = rf_kind == "checklist"
            val[chk] = s[chk] / (npk[chk] + ng[chk] - s[chk])
        for j in mask_rf:
            if present[j]:
                val[j] = _union_mask_iou(P, G, int(j), kept[rf_p[kept] == j], np.flatnonzero(rf_g == j), mask_cache)
        idx = np.flatnonzero(present)
        # summaries for fast per-(c, t) views: lines in (row, feature) order, numbered per conf index
        ordmap = np.full(n_rf, -1, np.int64)
        ordmap[idx] = np.arange(len(idx))
        ck = P.confidence[kept]
        cmin = np.full(n_rf, np.inf)
        np.minimum.at(cmin, rf_p[kept], ck)
        cmax = np.full(n_rf, -np.inf)
        np.maximum.at(cmax, rf_p[kept], ck)
        csum = np.bincount(rf_p[kept], weights=ck, minlength=n_rf).astype(np.float64)
        none = npk == 0
        cmin[none], cmax[none], csum[none] = np.nan, np.nan, np.nan
        sm["conf_idx"].append(np.full(len(idx), k, np.int16))
        sm["rf_ord"].append(np.arange(len(idx), dtype=np.int32))
        sm["data_row_id"].append(rf[idx, 0])
        sm["feature_id"].append(rf[idx, 1])
        sm["n_pred"].append(npk[idx])
        sm["n_gt"].append(ng[idx])
        sm["conf_min"].append(cmin[idx])
        sm["conf_max"].append(cmax[idx])
        sm["conf_sum"].append(csum[idx])
        sm["iou"].append(val[idx])
        # per row, what does not depend on t (lines are in row order)
        r_ids = rf[idx, 0]
        if len(idx):
            starts = np.r_[0, np.flatnonzero(r_ids[1:] != r_ids[:-1]) + 1]
            ends = np.r_[starts[1:], len(idx)]
            grp = np.repeat(np.arange(len(starts)), ends - starts)
            nrow = len(starts)

            def tot(v: np.ndarray, grp: np.ndarray = grp, nrow: int = nrow) -> np.ndarray:
                return np.bincount(grp, weights=v, minlength=nrow)

            a_np, a_ng, a_iou = npk[idx], ng[idx], val[idx]
            has_iou = ~np.isnan(a_iou)
            with np.errstate(divide="ignore", invalid="ignore"):
                miou_r = tot(np.where(has_iou, a_iou, 0.0)) / tot(has_iou.astype(np.float64))
                npred_r = tot(a_np)
                cmean_r = tot(np.nan_to_num(csum[idx])) / npred_r
            rc["conf_idx"].append(np.full(nrow, k, np.int16))
            rc["data_row_id"].append(r_ids[starts])
            rc["n_pred"].append(npred_r)
            rc["n_gt"].append(tot(a_ng))
            rc["n_feat"].append((ends - starts).astype(np.float64))
            rc["n_p"].append(tot((a_np > 0).astype(np.float64)))
            rc["n_r"].append(tot((a_ng > 0).astype(np.float64)))
            rc["n_f"].append(tot((a_np + a_ng > 0).astype(np.float64)))
            rc["iou"].append(miou_r)
            rc["conf_min"].append(np.fmin.reduceat(cmin[idx], starts))
            rc["conf_max"].append(np.fmax.reduceat(cmax[idx], starts))
            rc["conf_mean"].append(cmean_r)
        same = has & (pclass[kept] == gcls_x[g])
        tpl["conf_idx"].append(np.full(int(same.sum()), k, np.int16))
        tpl["rf_ord"].append(ordmap[rf_p[kept[same]]])
        tpl["iou"].append(miou_x[q[same]])
        fi["conf_idx"].append(np.full(len(idx), k, np.int16))
        fi["data_row_id"].append(rf[idx, 0])
        fi["feature_id"].append(rf[idx, 1])
        fi["iou"].append(val[idx])

    def cat(name: str, d: dict[str, list[np.ndarray]], dtype: Any) -> np.ndarray:
        parts = d[name]
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    hp, hg = cat("has_p", rec, bool), cat("has_g", rec, bool)
    n = len(hp)
    iou_arr = cat("iou", rec, np.float64)
    conf_arr = cat("confidence", rec, np.float64)
    records = pa.table({
        "run_id": pa.array(np.full(n, run_id, np.int32)),
        "conf_idx": pa.array(cat("conf_idx", rec, np.int16)),
        "data_row_id": pa.array(cat("data_row_id", rec, np.int64)),
        "pred_id": pa.array(cat("pred_id", rec, np.int64), mask=~hp),
        "gt_id": pa.array(cat("gt_id", rec, np.int64), mask=~hg),
        "pred_class": pa.array(cat("pred_class", rec, np.int32), mask=~hp),
        "true_class": pa.array(cat("true_class", rec, np.int32), mask=~hg),
        "pred_feature": pa.array(cat("pred_feature", rec, np.int32), mask=~hp),
        "true_feature": pa.array(cat("true_feature", rec, np.int32), mask=~hg),
        "iou": pa.array(iou_arr, mask=np.isnan(iou_arr)),
        "confidence": pa.array(conf_arr, mask=np.isnan(conf_arr)),
    })
    fiou = cat("iou", fi, np.float64)
    feature_iou = pa.table({
        "run_id": pa.array(np.full(len(fiou), run_id, np.int32)),
        "conf_idx": pa.array(cat("conf_idx", fi, np.int16)),
        "data_row_id": pa.array(cat("data_row_id", fi, np.int64)),
        "feature_id": pa.array(cat("feature_id", fi, np.int32)),
        "iou": pa.array(fiou, mask=np.isnan(fiou)),
    })
    def f64(name: str) -> pa.Array:
        v = cat(name, sm, np.float64)
        return pa.array(v, mask=np.isnan(v))

    summary = pa.table({
        "run_id": pa.array(np.full(len(cat("rf_ord", sm, np.int32)), run_id, np.int32)),
        "conf_idx": pa.array(cat("conf_idx", sm, np.int16)), "rf_ord": pa.array(cat("rf_ord", sm, np.int32)),
        "data_row_id": pa.array(cat("data_row_id", sm, np.int64)), "feature_id": pa.array(cat("feature_id", sm, np.int32)),
        "n_pred": pa.array(cat("n_pred", sm, np.int32)), "n_gt": pa.array(cat("n_gt", sm, np.int32)),
        "conf_min": f64("conf_min"), "conf_max": f64("conf_max"), "conf_sum": f64("conf_sum"), "iou": f64("iou")})
    tp_ord = cat("rf_ord", tpl, np.int32)
    tp = pa.table({"run_id": pa.array(np.full(len(tp_ord), run_id, np.int32)),
                   "conf_idx": pa.array(cat("conf_idx", tpl, np.int16)), "rf_ord": pa.array(tp_ord),
                   "iou": pa.array(cat("iou", tpl, np.float64))})
    nrc = len(cat("data_row_id", rc, np.int64))

    def rcf(name: str) -> pa.Array:
        v = cat(name, rc, np.float64)
        return pa.array(v, mask=np.isnan(v))

    row_const = pa.table({
        "run_id": pa.array(np.full(nrc, run_id, np.int32)), "conf_idx": pa.array(cat("conf_idx", rc, np.int16)),
        "data_row_id": pa.array(cat("data_row_id", rc, np.int64)),
        **{c: pa.array(cat(c, rc, np.int32)) for c in ("n_pred", "n_gt", "n_feat", "n_p", "n_r", "n_f")},
        "iou": rcf("iou"), "conf_min": rcf("conf_min"), "conf_max": rcf("conf_max"), "conf_mean": rcf("conf_mean")})
    return Matched(records, feature_iou, summary, tp, row_const)


def _union_mask_iou(P: Objects, G: Objects, j: int, pk: np.ndarray, gk: np.ndarray,
                    cache: dict[tuple[int, tuple[int, ...]], float]) -> float:
    """Pixel IoU of the union of a feature's kept predicted masks with the union of its labelled masks."""
    from pycocotools import mask as mask_utils

    key = (j, tuple(int(i) for i in pk))
    if key in cache:
        return cache[key]
    if not len(pk) or not len(gk):
        cache[key] = 0.0
        return 0.0
    up = mask_utils.merge(_rles(P, pk), intersect=0)
    ug = mask_utils.merge(_rles(G, gk), intersect=0)
    v = float(np.asarray(mask_utils.iou([up], [ug], [0])).reshape(-1)[0])
    cache[key] = v
    return v
