"""The numba kernels of the COCO protocol (see :mod:`slicewise.metrics.coco`): pycocotools' box IoU,
``COCOeval.evaluateImg`` and ``COCOeval.accumulate``, over every (category, image) group at once. Groups are
given by offsets: the detections of group q are ``d0[q]:d0[q + 1]``, its labels ``g0[q]:g0[q + 1]``, their
IoU matrix (row-major D x G) ``off[q]:off[q + 1]`` of a flat array.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def box_ious(d_box: np.ndarray, g_box: np.ndarray, g_crowd: np.ndarray, d0: np.ndarray, g0: np.ndarray,
              off: np.ndarray) -> np.ndarray:
    """pycocotools' bbIou for every group, flattened (row-major D x G per group)."""
    out = np.zeros(off[-1])
    for q in range(len(d0) - 1):
        nd, ng = d0[q + 1] - d0[q], g0[q + 1] - g0[q]
        for i in range(nd):
            D = d_box[d0[q] + i]
            da = D[2] * D[3]
            for j in range(ng):
                G = g_box[g0[q] + j]
                w = min(D[2] + D[0], G[2] + G[0]) - max(D[0], G[0])
                if w <= 0:
                    continue
                h = min(D[3] + D[1], G[3] + G[1]) - max(D[1], G[1])
                if h <= 0:
                    continue
                inter = w * h
                u = da if g_crowd[g0[q] + j] else da + G[2] * G[3] - inter
                out[off[q] + i * ng + j] = inter / u
    return out


@numba.njit(cache=True, parallel=True)
def match_images(ious: np.ndarray, off: np.ndarray, d0: np.ndarray, g0: np.ndarray, d_area: np.ndarray,
                 g_area: np.ndarray, g_crowd: np.ndarray, area_rng: np.ndarray, thrs: np.ndarray,
                 n_threads: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """COCOeval.evaluateImg for every group and area range: dtm, dtIg (A, T, ND) and gtIg (A, NG).

    Groups are taken in chunks (a few per thread), each with its scratch arrays allocated once: the
    work per group is small (most hold a handful of objects), so allocating per group cost more than
    matching. ``n_threads``: numba's thread count (read by the caller: a cached kernel cannot ask)."""
    A, T = area_rng.shape[0], len(thrs)
    ND, NG = d0[-1], g0[-1]
    dtm = np.zeros((A, T, ND), np.bool_)
    dtig = np.zeros((A, T, ND), np.bool_)
    gtig_out = np.zeros((A, NG), np.bool_)
    n_groups = len(d0) - 1
    maxg = 0
    for q in range(n_groups):
        maxg = max(maxg, g0[q + 1] - g0[q])
    n_chunks = min(n_groups, 64 * n_threads)
    for c in numba.prange(n_chunks):
        gtind = np.empty(maxg, np.int64)
        gig = np.empty(maxg, np.bool_)
        gtm = np.empty(maxg, np.bool_)
        for q in range(c * n_groups // n_chunks, (c + 1) * n_groups // n_chunks):
            nd, ng = d0[q + 1] - d0[q], g0[q + 1] - g0[q]
            for a in range(A):
                lo, hi = area_rng[a, 0], area_rng[a, 1]
                # labels ordered not-ignored first (a stable partition, as argsort(kind="mergesort") of 0/1)
                p = 0
                for j in range(ng):
                    ga = g_area[g0[q] + j]
                    ig = g_crowd[g0[q] + j] or ga < lo or ga > hi
                    gtig_out[a, g0[q] + j] = ig
                    if not ig:
                        gtind[p] = j
                        gig[p] = False
                        p += 1
                for j in range(ng):
                    if gtig_out[a, g0[q] + j]:
                        gtind[p] = j
                        gig[p] = True
                        p += 1
                # gtIg is stored in the sorted order, as evaluateImg returns it
                for j in range(ng):
                    gtig_out[a, g0[q] + j] = gig[j]
                if ng > 0 and nd > 0:
                    for t in range(T):
                        gtm[:ng] = False
                        thr = min(thrs[t], 1 - 1e-10)
                        for i in range(nd):
                            best = thr
                            m = -1
                            base = off[q] + i * ng
                            for j in range(ng):
                                if gtm[j] and not g_crowd[g0[q] + gtind[j]]:
                                    continue
                                if m > -1 and not gig[m] and gig[j]:
                                    break
                                v = ious[base + gtind[j]]
                                if v < best:
                                    continue
                                best = v
                                m = j
                            if m == -1:
                                continue
                            dtig[a, t, d0[q] + i] = gig[m]
                            dtm[a, t, d0[q] + i] = True
                            gtm[m] = True
                for i in range(nd):
                    da = d_area[d0[q] + i]
                    if da < lo or da > hi:
                        for t in range(T):
                            if not dtm[a, t, d0[q] + i]:
                                dtig[a, t, d0[q] + i] = True
    return dtm, dtig, gtig_out


@numba.njit(cache=True, parallel=True)
def accumulate(group_cat: np.ndarray, d0: np.ndarray, g0: np.ndarray, score: np.ndarray, dtm: np.ndarray,
               dtig: np.ndarray, gtig: np.ndarray, K: int, max_dets: np.ndarray, rec_thrs: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """COCOeval.accumulate: precision (T, R, K, A, M) and recall (T, K, A, M); -1 where undefined.

    The same numbers as pycocotools' cumulative sums and ``searchsorted``, from one pass per (area, IoU
    threshold, max detections) that keeps only the precision at each true positive."""
    A, T = dtm.shape[0], dtm.shape[1]
    R, M = len(rec_thrs), len(max_dets)
    precision = -np.ones((T, R, K, A, M))
    recall = -np.ones((T, K, A, M))
    eps = np.spacing(1.0)
    n_groups = len(group_cat)
    n_runs = 0
    for q in range(n_groups):
        if q == 0 or group_cat[q] != group_cat[q - 1]:
            n_runs += 1
    run_start = np.empty(n_runs + 1, np.int64)
    r = 0
    for q in range(n_groups):
        if q == 0 or group_cat[q] != group_cat[q - 1]:
            run_start[r] = q
            r += 1
    run_start[n_runs] = n_groups
    for ri_ in numba.prange(n_runs):
        start = run_start[ri_]
        end = run_start[ri_ + 1]
        k = group_cat[start]
        npig = np.zeros(A, np.int64)
        for a in range(A):
            for j in range(g0[start], g0[end]):
                if not gtig[a, j]:
                    npig[a] += 1
        # one stable ranking by score of the category's detections (each group's are in rank order, at
        # most max_dets[-1]); a smaller max_dets keeps the same order (a stable sort of a subsequence)
        n_all = d0[end] - d0[start]
        neg = np.empty(n_all)
        for i in range(n_all):
            neg[i] = -score[d0[start] + i]
        order_all = np.argsort(neg, kind="mergesort")
        rank_in_img = np.empty(n_all, np.int64)
        for q in range(start, end):
            for i in range(d0[q + 1] - d0[q]):
                rank_in_img[d0[q] - d0[start] + i] = i
        ranked = np.empty(n_all, np.int64)
        tpr = np.empty(n_all)
        for mi in range(M):
            md = max_dets[mi]
            n = 0
            for i in range(n_all):
                o = order_all[i]
                if rank_in_img[o] < md:
                    ranked[n] = d0[start] + o
                    n += 1
            for a in range(A):
                if npig[a] == 0:
                    continue
                for t in range(T):
                    # precision at each true positive (the curve's only rises); interpolated precision at a
                    # recall threshold is the largest at or after the first position reaching it, which is
                    # a true positive's (after it only false positives and ignored ones: no higher value)
                    ctp = 0
                    cfp = 0
                    for i in range(n):
                        d = ranked[i]
                        if not dtig[a, t, d]:
                            if dtm[a, t, d]:
                                tpr[ctp] = (ctp + 1) / (cfp + ctp + 1 + eps)
                                ctp += 1
                            else:
                                cfp += 1
                    recall[t, k, a, mi] = ctp / npig[a]
                    for j in range(ctp - 1, 0, -1):
                        if tpr[j] > tpr[j - 1]:
                            tpr[j - 1] = tpr[j]
                    j = 0
                    for ri in range(R):
                        while j < ctp and (j + 1) / npig[a] < rec_thrs[ri]:
                            j += 1
                        precision[t, ri, k, a, mi] = tpr[j] if j < ctp else 0.0
    return precision, recall


@numba.njit(cache=True)
def sort_within_groups(order: np.ndarray, group: np.ndarray, neg_score: np.ndarray, ids: np.ndarray) -> None:
    """Reorder ``order`` (positions already sorted by ``group``, stably) in place so that within each group
    the positions run by (``neg_score``, ``ids``) ascending: ``np.lexsort((ids, neg_score, group))`` for
    groups of a few objects, by insertion sort (a group rarely holds more than a few dozen)."""
    n = len(order)
    start = 0
    while start < n:
        g = group[order[start]]
        end = start + 1
        while end < n and group[order[end]] == g:
            end += 1
        for i in range(start + 1, end):
            p = order[i]
            s, d = neg_score[p], ids[p]
            j = i - 1
            while j >= start and (neg_score[order[j]] > s or (neg_score[order[j]] == s and ids[order[j]] > d)):
                order[j + 1] = order[j]
                j -= 1
            order[j + 1] = p
        start = end
