"""COCO AP / AP50 / AP75 / AR per feature (the metrics table's columns): equal to pycocotools' COCOeval run
in the test for each category on its own, the mean equal to COCOeval's mAP / mAR, kept in the workspace's
state until the predictions change; and the per-object outcomes of a page of rows (rows_outcomes) equal
to row_matches' outcomes row by row."""

from __future__ import annotations

import random

import numpy as np
from cocoref import build, reference

from slicewise import metrics


def _random_set(seed: int, n_img: int = 14, n_cat: int = 3):
    rng = random.Random(seed)
    images = [{"id": i + 1, "width": 200, "height": 160} for i in range(n_img)]
    cats = [{"id": c + 1, "name": f"c{c + 1}"} for c in range(n_cat)]
    anns, results = [], []
    for im in images:
        for _ in range(rng.randint(0, 4)):
            w, h = rng.uniform(4, 80), rng.uniform(4, 80)
            box = [rng.uniform(0, 200 - w), rng.uniform(0, 160 - h), w, h]
            anns.append({"id": len(anns) + 1, "image_id": im["id"], "category_id": rng.randint(1, n_cat - 1),
                         "bbox": [round(v, 2) for v in box], "area": round(w * h, 2), "iscrowd": 0})
    for a in anns:  # most labels detected with a jittered box, some missed; and some spurious boxes
        if rng.random() < 0.8:
            x, y, w, h = a["bbox"]
            box = [max(x + rng.uniform(-5, 5), 0), max(y + rng.uniform(-5, 5), 0), w + rng.uniform(-4, 4), h]
            results.append({"image_id": a["image_id"], "category_id": a["category_id"],
                            "bbox": [round(v, 2) for v in box], "score": round(rng.random(), 3)})
    for im in images:
        if rng.random() < 0.5:
            results.append({"image_id": im["id"], "category_id": rng.randint(1, n_cat),
                            "bbox": [10.0, 10.0, 30.0, 30.0], "score": round(rng.random(), 3)})
    return {"images": images, "categories": cats, "annotations": anns}, results


def _ref_one(gt, res, cat_id):
    """pycocotools' AP, AP50, AP75, AR@100 of one category (COCOeval restricted to it)."""
    import contextlib
    import copy
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = copy.deepcopy(gt)
        cg.createIndex()
        e = COCOeval(cg, cg.loadRes(copy.deepcopy(res)), "bbox")
        e.params.catIds = [cat_id]
        e.evaluate()
        e.accumulate()
        e.summarize()
    return [e.stats[i] for i in (0, 1, 2, 8)]


def test_feature_ap_equals_pycocotools(ws):
    gt, res = _random_set(11)
    run = build(ws, gt, res, "bbox")
    per, mean = metrics.feature_ap(ws, run)
    full = reference(gt, res, "bbox")
    for c in gt["categories"]:
        ref = _ref_one(gt, res, c["id"])
        got = per[c["name"]]
        if ref[0] < 0:  # no ground truth of the category: undefined
            assert got.ap is None and got.ar is None
            continue
        np.testing.assert_allclose([got.ap, got.ap50, got.ap75, got.ar], ref, atol=1e-12)
    assert mean is not None
    np.testing.assert_allclose([mean.ap, mean.ap50, mean.ap75, mean.ar], [full.stats[i] for i in (0, 1, 2, 8)], atol=1e-12)
    # computed once, kept until the run's predictions change
    assert metrics.feature_ap(ws, run) is metrics.feature_ap(ws, run)
    before = per["c1"].ap
    ws.add_predictions(run, [{"data_row": str(a["image_id"]), "feature": "c1", "bbox": a["bbox"], "confidence": 0.99}
                             for a in gt["annotations"] if a["category_id"] == 1])
    assert metrics.feature_ap(ws, run)[0]["c1"].ap != before


def test_rows_outcomes_equal_row_matches(ws):
    gt, res = _random_set(5, n_img=8)
    run = build(ws, gt, res, "bbox")
    metrics.compute_metrics(ws, run)
    ids = [r.id for r in ws.data_rows()]
    seen = set()
    for c, t in ((0.5, 0.5), (0.0, 0.1), (0.9, 0.9)):
        got = metrics.rows_outcomes(ws, run, ids, c, t)
        want = {(o["source"], o["object_id"]): o["outcome"] for i in ids
                for o in metrics.row_matches(ws, run, i, c, t, best_iou=False) if o["outcome"] is not None}
        assert got == want
        seen |= set(want.values())
    assert {"TP", "FP", "FN", "dropped"} <= seen
    assert metrics.rows_outcomes(ws, run, [], 0.5, 0.5) == {}
