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
           g_area: np.ndarray, g_crowd: np.ndarray, area_rng: np.ndarray, thrs: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """COCOeval.evaluateImg for every group and area range: dtm, dtIg (A, T, ND) and gtIg (A, NG)."""
    A, T = area_rng.shape[0], len(thrs)
    ND, NG = d0[-1], g0[-1]
    dtm = np.zeros((A, T, ND), np.bool_)
    dtig = np.zeros((A, T, ND), np.bool_)
    gtig_out = np.zeros((A, NG), np.bool_)
    for q in numba.prange(len(d0) - 1):
        nd, ng = d0[q + 1] - d0[q], g0[q + 1] - g0[q]
        for a in range(A):
            lo, hi = area_rng[a, 0], area_rng[a, 1]
            ign = np.zeros(ng, np.int64)
            for j in range(ng):
                ga = g_area[g0[q] + j]
                if g_crowd[g0[q] + j] or ga < lo or ga > hi:
                    ign[j] = 1
            gtind = np.argsort(ign, kind="mergesort")
            gig = ign[gtind]
            for j in range(ng):
                gtig_out[a, g0[q] + j] = gig[j] == 1
            if ng == 0 or nd == 0:
                for i in range(nd):
                    da = d_area[d0[q] + i]
                    if da < lo or da > hi:
                        for t in range(T):
                            dtig[a, t, d0[q] + i] = True
                continue
            for t in range(T):
                gtm = np.zeros(ng, np.bool_)
                for i in range(nd):
                    best = min(thrs[t], 1 - 1e-10)
                    m = -1
                    for j in range(ng):
                        if gtm[j] and not g_crowd[g0[q] + gtind[j]]:
                            continue
                        if m > -1 and gig[m] == 0 and gig[j] == 1:
                            break
                        v = ious[off[q] + i * ng + gtind[j]]
                        if v < best:
                            continue
                        best = v
                        m = j
                    if m == -1:
                        continue
                    dtig[a, t, d0[q] + i] = gig[m] == 1
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
    """COCOeval.accumulate: precision (T, R, K, A, M) and recall (T, K, A, M); -1 where undefined."""
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
            for q in range(start, end):
                for j in range(g0[q], g0[q + 1]):
                    if not gtig[a, j]:
                        npig[a] += 1
        for mi in range(M):
            # the detections of this category, cut per image to max_dets[mi], ranked once for every area
            md = max_dets[mi]
            n = 0
            for q in range(start, end):
                n += min(d0[q + 1] - d0[q], md)
            idx = np.empty(n, np.int64)
            p = 0
            for q in range(start, end):
                for i in range(min(d0[q + 1] - d0[q], md)):
                    idx[p] = d0[q] + i
                    p += 1
            neg = np.empty(n)
            for i in range(n):
                neg[i] = -score[idx[i]]
            order = np.argsort(neg, kind="mergesort")
            ranked = idx[order]
            for a in range(A):
                if npig[a] == 0:
                    continue
                for t in range(T):
                    tp_sum = np.zeros(n)
                    fp_sum = np.zeros(n)
                    ctp = 0
                    cfp = 0
                    for i in range(n):
                        d = ranked[i]
                        if not dtig[a, t, d]:
                            if dtm[a, t, d]:
                                ctp += 1
                            else:
                                cfp += 1
                        tp_sum[i] = ctp
                        fp_sum[i] = cfp
                    nd = n
                    rc = tp_sum / npig[a]
                    pr = tp_sum / (fp_sum + tp_sum + eps)
                    recall[t, k, a, mi] = rc[nd - 1] if nd else 0.0
                    for i in range(nd - 1, 0, -1):
                        if pr[i] > pr[i - 1]:
                            pr[i - 1] = pr[i]
                    inds = np.searchsorted(rc, rec_thrs)
                    for ri in range(R):
                        precision[t, ri, k, a, mi] = 0.0
                    for ri in range(R):
                        if inds[ri] >= nd:
                            break
                        precision[t, ri, k, a, mi] = pr[inds[ri]]
    return precision, recall
