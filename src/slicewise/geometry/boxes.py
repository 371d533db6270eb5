"""The box IoU kernel (compiled: one pass over the pairs, no gathered copies of the boxes)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def box_iou_pairs(a: np.ndarray, b: np.ndarray, ai: np.ndarray, bi: np.ndarray) -> np.ndarray:
    """IoU of boxes ``[x, y, w, h]`` ``a[ai[i]]`` and ``b[bi[i]]`` for every i, by area (COCO's formula)."""
    out = np.zeros(len(ai))
    for i in range(len(ai)):
        p, q = a[ai[i]], b[bi[i]]
        iw = min(p[0] + p[2], q[0] + q[2]) - max(p[0], q[0])
        ih = min(p[1] + p[3], q[1] + q[3]) - max(p[1], q[1])
        inter = iw * ih if iw > 0 and ih > 0 else 0.0
        union = p[2] * p[3] + q[2] * q[3] - inter
        if union > 0:
            out[i] = inter / union
    return out
