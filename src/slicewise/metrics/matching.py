"""Greedy matching of a run's predictions to ground truth, one pass per confidence threshold: pure
kernels, NumPy arrays in and out (the stored tables' layout is :mod:`slicewise.metrics.records`'s).

Pairs are formed per data row between objects of comparable kind (class-agnostic by default, same
feature in within-class mode), scored by the kind's IoU kernel, and visited in decreasing IoU
(ties: see :func:`visit_order`). The pass at confidence c ignores predictions
with confidence below c; the matches at IoU threshold t are the pairs of that pass with IoU > t.
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np

from slicewise import geometry
from slicewise.metrics.objects import FAMILY, Objects, as_rles
from slicewise.metrics.tally import Matched, Pass, tally


def cross_pairs(key_p: np.ndarray, key_g: np.ndarray, ordered: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Every (i, j) with ``key_p[i] == key_g[j]``, vectorised (no loop over keys), sorted by (i, j); with
    ``ordered=False`` in (key, i, j) order (for callers that put the pairs in an order of their own).

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
    if not ordered:
        return pi.astype(np.int64), gi.astype(np.int64)
    order = np.lexsort((gi, pi))
    return pi[order].astype(np.int64), gi[order].astype(np.int64)


def group_keys(o: Objects, within_class: bool, codes: dict[str, int]) -> np.ndarray:
    """A code per object: objects pair only with objects of the same code (its kind's family; radio by
    question, checklist by option; within-class mode adds the feature). ``codes`` is shared by both sides."""
    if not len(o):
        return np.zeros(0, np.int64)
    idx, kinds = o.kind_codes()
    if not within_class and not {"radio", "checklist"} & set(kinds):  # the common case, vectorised
        # codes are handed out in the order of the families' names, as np.unique would list them
        fams = sorted({FAMILY[k] for k in kinds})
        for g in fams:
            codes.setdefault(g, len(codes))
        return np.array([codes[FAMILY[k]] for k in kinds], np.int64)[idx]
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


def comparable_pairs(P: Objects, G: Objects, within_class: bool, radius: float,
                     by_row: bool = True, ordered: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(index into P, index into G, IoU) of every comparable pair (on the same data row), sorted by (P, G)
    index unless ``ordered=False`` (see :func:`cross_pairs`)."""
    codes: dict[str, int] = {}
    kp, kg = group_keys(P, within_class, codes), group_keys(G, within_class, codes)
    if by_row:
        maxrow = int(max(P.row.max(initial=0), G.row.max(initial=0))) + 1
        kp, kg = kp * maxrow + P.row, kg * maxrow + G.row
    pi, gi = cross_pairs(kp, kg, ordered)
    return pi, gi, pair_ious(P, G, pi, gi, radius)


def pair_ious(P: Objects, G: Objects, pi: np.ndarray, gi: np.ndarray, radius: float) -> np.ndarray:
    """IoU of each pair (P[pi[i]], G[gi[i]]); pairs are of one family each."""
    import shapely

    iou = np.zeros(len(pi))
    if not len(pi):
        return iou
    # kinds as small integers, compared once per distinct kind (not per object or pair, as strings)
    p_kind, p_names = P.kind_codes()
    g_kind, g_names = G.kind_codes()
    families = sorted({FAMILY[k] for k in p_names})
    fam_code = {f: i for i, f in enumerate(families)}
    fam = np.array([fam_code[FAMILY[k]] for k in p_names], np.int64)[p_kind][pi]  # pairs are of one family: the prediction's

    def of_family(name: str) -> np.ndarray:
        return fam == fam_code.get(name, -1)

    def is_kind(idx: np.ndarray, names: list[str], kind: str) -> np.ndarray:
        return np.array([n == kind for n in names], bool)[idx] if names else np.zeros(len(idx), bool)

    # boxes and polygons
    sel = np.flatnonzero(of_family("area"))
    if len(sel):
        p_box, g_box = is_kind(p_kind, p_names, "bbox")[pi[sel]], is_kind(g_kind, g_names, "bbox")[gi[sel]]
        both_box = p_box & g_box
        any_mask = is_kind(p_kind, p_names, "mask")[pi[sel]] | is_kind(g_kind, g_names, "mask")[gi[sel]]
        s = sel[both_box]
        iou[s] = geometry.box_iou(P.box, G.box, pi[s], gi[s])
        s = sel[~both_box & ~any_mask]
        if len(s):
            iou[s] = geometry.polygon_iou(_shapes(P, pi[s]), _shapes(G, gi[s]))
        s = sel[any_mask]  # a mask with a mask, box or polygon: by pixels, as COCO compares them
        if len(s):
            iou[s] = geometry.mask_iou_pairs(as_rles(P, pi[s]), as_rles(G, gi[s]), P.row[pi[s]])
    for name in ("point", "line"):
        s = np.flatnonzero(of_family(name))
        if len(s):
            iou[s] = geometry.buffered_iou(shapely.from_wkb(P.geometry[pi[s]]), shapely.from_wkb(G.geometry[gi[s]]),
                                           radius)
    s = np.flatnonzero(of_family("ner"))
    if len(s):
        iou[s] = geometry.span_iou(P.span[pi[s], 0], P.span[pi[s], 1], G.span[gi[s], 0], G.span[gi[s], 1])
    s = np.flatnonzero(of_family("radio") | of_family("checklist"))
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


def greedy_pass(P: Objects, G: Objects, pi: np.ndarray, gi: np.ndarray, iou: np.ndarray,
                thresholds: np.ndarray) -> Pass:
    """The greedy matching of the pairs with a positive IoU, at every threshold."""
    pos = iou > 0
    pi, gi, iou = pi[pos], gi[pos], iou[pos]
    order = visit_order(P, G, pi, gi, iou)
    pi, gi, iou = pi[order], gi[order], iou[order]
    return Pass(pi, gi, iou, greedy(pi, gi, len(P), len(G), P.confidence, thresholds))


def match_rows(P: Objects, G: Objects, thresholds: np.ndarray, *, within_class: bool, radius: float,
               class_of: Callable[[Objects], np.ndarray]) -> Matched:
    """Match records and the per-(row, feature) and per-row summaries for every confidence threshold, as
    arrays (:class:`~slicewise.metrics.tally.Matched`)."""
    # the greedy passes visit the pairs in an order of their own (a total order: see visit_order)
    pi, gi, iou = comparable_pairs(P, G, within_class, radius, ordered=False)
    protocol = greedy_pass(P, G, pi, gi, iou, thresholds)  # the protocol's matching
    # overlap quality within each feature: pairs of the same feature (a radio pair overlaps when the answers agree)
    same = P.feature[pi] == G.feature[gi]
    qp, qg, qiou = pi[same], gi[same], iou[same]
    radio = P.kind[qp] == "radio"
    if radio.any():
        qiou = qiou.copy()
        qiou[radio] = (P.answer[qp[radio]] == G.answer[qg[radio]]).astype(np.float64)
    quality = greedy_pass(P, G, qp, qg, qiou, thresholds)
    return tally(P, G, thresholds, protocol, quality, class_of(P), class_of(G))

