"""IoU kernels, one per annotation kind, vectorised over many (a, b) pairs.

Every kernel takes two parallel sequences (pair i is ``a[i]`` with ``b[i]``) and returns a float64
array of IoUs. No Python loop per pair except where the reference library only offers per-image
matrices (pycocotools' RLE IoU: one call per data row).

>>> import numpy as np
>>> box_iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 10, 10]])).round(4).tolist()
[0.3333]
>>> span_iou(np.array([0]), np.array([10]), np.array([5]), np.array([15])).tolist()
[0.3333333333333333]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["box_iou", "polygon_iou", "buffered_iou", "mask_iou_pairs", "span_iou", "repair"]

DEFAULT_RADIUS = 70.0  # px, as in Labelbox's open-source reference code


def box_iou(a: np.ndarray, b: np.ndarray, ai: np.ndarray | None = None, bi: np.ndarray | None = None) -> np.ndarray:
    """IoU of boxes ``[x, y, w, h]``: of rows of ``a`` with rows of ``b``, or (given indexes) of ``a[ai[i]]``
    with ``b[bi[i]]``, by area."""
    from slicewise.geometry.boxes import box_iou_pairs

    a = np.ascontiguousarray(a, np.float64).reshape(-1, 4)
    b = np.ascontiguousarray(b, np.float64).reshape(-1, 4)
    if ai is None or bi is None:
        ai = bi = np.arange(len(a))
    return box_iou_pairs(a, b, np.asarray(ai, np.int64), np.asarray(bi, np.int64))


def repair(geoms: np.ndarray) -> np.ndarray:
    """Invalid polygons made valid (``make_valid``, keeping only the polygonal parts)."""
    import shapely

    geoms = np.asarray(geoms, dtype=object)
    bad = ~shapely.is_valid(geoms)
    if bad.any():
        fixed = shapely.make_valid(geoms[bad])
        # keep the area: drop the lines and points make_valid may leave next to polygons
        fixed = np.array([_polygonal(g) for g in fixed], dtype=object)
        geoms = geoms.copy()
        geoms[bad] = fixed
    return geoms


def _polygonal(g: Any) -> Any:
    import shapely
    from shapely.geometry import GeometryCollection, MultiPolygon, Polygon

    if isinstance(g, Polygon | MultiPolygon):
        return g
    if isinstance(g, GeometryCollection):
        polys = [p for p in g.geoms if isinstance(p, Polygon | MultiPolygon)]
        return shapely.union_all(polys) if polys else Polygon()
    return Polygon()


def polygon_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Area IoU of shapely geometries, pairwise; invalid polygons are repaired first."""
    import shapely

    a, b = repair(np.asarray(a, dtype=object)), repair(np.asarray(b, dtype=object))
    if not len(a):
        return np.zeros(0)
    inter = shapely.area(shapely.intersection(a, b))
    union = shapely.area(a) + shapely.area(b) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        # clip: area sums can round above the union of identical shapes (IoU 1 must not exceed t = 1)
        return np.clip(np.where(union > 0, inter / union, 0.0), 0.0, 1.0)


def buffered_iou(a: np.ndarray, b: np.ndarray, radius: float = DEFAULT_RADIUS) -> np.ndarray:
    """Points and polylines: the area IoU of the shapes buffered by ``radius`` pixels."""
    import shapely

    if not len(a):
        return np.zeros(0)
    # quad_segs=16: the default of shapely's .buffer() method, which Labelbox's reference code uses
    ba = shapely.buffer(np.asarray(a, dtype=object), radius, quad_segs=16)
    bb = shapely.buffer(np.asarray(b, dtype=object), radius, quad_segs=16)
    return polygon_iou(ba, bb)


def span_iou(s1: np.ndarray, e1: np.ndarray, s2: np.ndarray, e2: np.ndarray) -> np.ndarray:
    """Character IoU of spans [start, end), as Labelbox's reference ``_ner_iou`` computes it."""
    s1, e1, s2, e2 = (np.asarray(v, np.float64) for v in (s1, e1, s2, e2))
    i0, i1 = np.maximum(s1, s2), np.minimum(e1, e2)
    u0, u1 = np.minimum(s1, s2), np.maximum(e1, e2)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(i0 > i1, 0.0, (i1 - i0) / (u1 - u0))
    return np.where(u0 == u1, 1.0, out)


def mask_iou_pairs(rles_a: Sequence[dict[str, Any]], rles_b: Sequence[dict[str, Any]],
                   groups: np.ndarray) -> np.ndarray:
    """Pixel IoU of RLE masks, pairwise; ``groups`` (e.g. the data row) batches the pycocotools calls:
    pairs of one group are computed from one IoU matrix."""
    from pycocotools import mask as mask_utils

    n = len(rles_a)
    out = np.zeros(n)
    if not n:
        return out
    groups = np.asarray(groups)
    order = np.argsort(groups, kind="stable")
    bounds = np.flatnonzero(np.diff(groups[order])) + 1
    for idx in np.split(order, bounds):
        ka: dict[int, int] = {}
        kb: dict[int, int] = {}
        la: list[Any] = []
        lb: list[Any] = []
        ia = np.empty(len(idx), np.int64)
        ib = np.empty(len(idx), np.int64)
        for j, i in enumerate(idx):
            key_a, key_b = id(rles_a[i]), id(rles_b[i])
            if key_a not in ka:
                ka[key_a] = len(la)
                la.append(rles_a[i])
            if key_b not in kb:
                kb[key_b] = len(lb)
                lb.append(rles_b[i])
            ia[j], ib[j] = ka[key_a], kb[key_b]
        m = np.asarray(mask_utils.iou(la, lb, [0] * len(lb)), np.float64).reshape(len(la), len(lb))
        out[idx] = m[ia, ib]
    return out
