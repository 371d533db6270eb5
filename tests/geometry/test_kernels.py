"""IoU kernels against reference implementations computed here (pycocotools, shapely one by one)."""

from __future__ import annotations

import numpy as np
import shapely
from pycocotools import mask as mask_utils

from slicewise import geometry


def test_box_iou_equals_pycocotools():
    rng = np.random.default_rng(0)
    a = np.column_stack([rng.uniform(0, 50, 300), rng.uniform(0, 50, 300), rng.uniform(0.5, 40, 300), rng.uniform(0.5, 40, 300)])
    b = np.column_stack([rng.uniform(0, 50, 300), rng.uniform(0, 50, 300), rng.uniform(0.5, 40, 300), rng.uniform(0.5, 40, 300)])
    ref = np.array([mask_utils.iou([list(x)], [list(y)], [0])[0][0] for x, y in zip(a, b, strict=True)])
    np.testing.assert_allclose(geometry.box_iou(a, b), ref, rtol=0, atol=1e-12)
    assert geometry.box_iou(np.array([[0, 0, 1, 1]]), np.array([[5, 5, 1, 1]])).tolist() == [0.0]
    # by indexes: the same as the gathered boxes, with edges touching (0), empty boxes (0) and equal boxes (1)
    a[:3] = [[0, 0, 10, 10], [0, 0, 0, 0], [3, 3, 4, 4]]
    b[:3] = [[10, 0, 5, 5], [0, 0, 0, 0], [3, 3, 4, 4]]
    ai, bi = rng.integers(0, 300, 1000), rng.integers(0, 300, 1000)
    ai[:3] = bi[:3] = [0, 1, 2]
    got = geometry.box_iou(a, b, ai, bi)
    assert got[:3].tolist() == [0.0, 0.0, 1.0]
    ref = np.array([mask_utils.iou([list(a[i])], [list(b[j])], [0])[0][0] for i, j in zip(ai, bi, strict=True)])
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)


def test_polygon_iou_repairs_invalid_polygons():
    square = shapely.Polygon([(0, 0), (10, 0), (10, 10), (0, 10)])
    half = shapely.Polygon([(0, 0), (5, 0), (5, 10), (0, 10)])
    bowtie = shapely.Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])  # self-intersecting: two triangles
    out = geometry.polygon_iou(np.array([square, bowtie], dtype=object), np.array([half, square], dtype=object))
    assert out[0] == 0.5
    assert abs(out[1] - 0.5) < 1e-12  # make_valid keeps both triangles: area 50 of 100


def test_buffered_iou_and_spans():
    p = np.array([shapely.Point(0, 0)], dtype=object)
    assert geometry.buffered_iou(p, p, 70)[0] == 1.0
    assert geometry.buffered_iou(p, np.array([shapely.Point(200, 0)], dtype=object), 70)[0] == 0.0
    iou = geometry.span_iou(np.array([0, 0, 3]), np.array([10, 10, 3]), np.array([5, 10, 3]), np.array([15, 20, 3]))
    assert iou.tolist() == [5 / 15, 0.0, 1.0]


def test_mask_pairs_match_pycocotools():
    rng = np.random.default_rng(1)
    masks = []
    for _ in range(6):
        m = np.zeros((30, 40), np.uint8)
        y, x = rng.integers(0, 20), rng.integers(0, 30)
        m[y:y + rng.integers(3, 10), x:x + rng.integers(3, 10)] = 1
        masks.append(mask_utils.encode(np.asfortranarray(m)))
    a = [masks[i] for i in (0, 1, 2, 3)]
    b = [masks[i] for i in (4, 5, 4, 0)]
    groups = np.array([1, 1, 2, 2])
    ref = [mask_utils.iou([x], [y], [0])[0][0] for x, y in zip(a, b, strict=True)]
    np.testing.assert_allclose(geometry.mask_iou_pairs(a, b, groups), ref, rtol=0, atol=1e-15)
