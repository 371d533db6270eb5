"""COCO protocol against pycocotools, computed in the test itself."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from cocoref import assert_same, build, hotcoco_stats, reference

from slicewise.errors import MetricsError
from slicewise.metrics import coco_eval


@pytest.mark.parametrize("iou_type,results", [("bbox", "instances_val2014_fakebbox100_results.json"),
                                              ("segm", "instances_val2014_fakesegm100_results.json")])
def test_coco_val2014_100_identical_to_pycocotools(ws, shared_data, iou_type, results):
    d = shared_data / "coco-val2014-100"
    gt = json.loads((d / "instances_val2014_100.json").read_text())
    res = json.loads((d / results).read_text())
    run = build(ws, gt, res, iou_type)
    ours = coco_eval(ws, run, iou_type)
    ref = reference(gt, res, iou_type)
    assert_same(ours, ref)
    np.testing.assert_allclose(ours.stats, hotcoco_stats(gt, res, iou_type), atol=1e-9, rtol=0)
    # per-class AP = mean of pycocotools' precision over the class's slice
    p = ref.eval["precision"]
    for k, cat in enumerate(sorted(gt["categories"], key=lambda c: c["id"])):
        s = p[:, :, k, 0, -1]
        expect = float(np.mean(s[s > -1])) if (s > -1).any() else None
        got = ours.per_class_ap[cat["name"]]
        assert (got is None and expect is None) or abs(got - expect) < 1e-9


def _random_set(seed: int, n_img: int = 30, n_cat: int = 4):
    rng = random.Random(seed)
    images = [{"id": i + 1, "width": 200, "height": 160} for i in range(n_img)]
    cats = [{"id": c + 1, "name": f"c{c + 1}"} for c in range(n_cat)]
    anns, results = [], []
    aid = 1
    for im in images:
        if rng.random() < 0.15:
            continue  # empty image (or only predictions below)
        for _ in range(rng.randint(0, 8)):
            w, h = rng.uniform(2, 120), rng.uniform(2, 100)
            x, y = rng.uniform(0, 200 - w), rng.uniform(0, 160 - h)
            crowd = rng.random() < 0.1
            anns.append({"id": aid, "image_id": im["id"], "category_id": rng.randint(1, n_cat),
                         "bbox": [round(x, 2), round(y, 2), round(w, 2), round(h, 2)], "area": round(w * h * rng.uniform(0.5, 1), 2),
                         "iscrowd": int(crowd), "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]]})
            aid += 1
    by_img: dict[int, list] = {}
    for a in anns:
        by_img.setdefault(a["image_id"], []).append(a)
    for im in images:
        n = 130 if im["id"] == 2 else rng.randint(0, 12)  # image 2: more than 100 detections
        for _ in range(n):
            if by_img.get(im["id"]) and rng.random() < 0.6:
                a = rng.choice(by_img[im["id"]])
                x, y, w, h = a["bbox"]
                j = lambda v: v + rng.uniform(-6, 6)  # noqa: E731
                box = [max(j(x), 0), max(j(y), 0), max(w + rng.uniform(-5, 5), 1), max(h + rng.uniform(-5, 5), 1)]
                cat = a["category_id"] if rng.random() < 0.8 else rng.randint(1, n_cat)
            else:
                w, h = rng.uniform(2, 90), rng.uniform(2, 90)
                box = [rng.uniform(0, 200 - w), rng.uniform(0, 160 - h), w, h]
                cat = rng.randint(1, n_cat)
            score = round(rng.choice([rng.random(), 0.5, 0.25]), 3)  # ties on purpose
            results.append({"image_id": im["id"], "category_id": cat, "bbox": [round(v, 2) for v in box],
                            "score": score})
    return {"images": images, "categories": cats, "annotations": anns}, results


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_sets_bbox_identical(ws, seed):
    gt, res = _random_set(seed)
    run = build(ws, gt, res, "bbox")
    ours = coco_eval(ws, run, "bbox")
    assert_same(ours, reference(gt, res, "bbox"))
    np.testing.assert_allclose(ours.stats, hotcoco_stats(gt, res, "bbox"), atol=1e-9, rtol=0)


def test_random_set_segm_identical(ws):
    from pycocotools import mask as mask_utils

    gt, res = _random_set(7, n_img=12)
    for r in res:  # box-shaped masks as segm results
        x, y, w, h = r["bbox"]
        rle = mask_utils.merge(mask_utils.frPyObjects([[x, y, x + w, y, x + w, y + h, x, y + h]], 160, 200))
        r["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode()}
        del r["bbox"]
    run = build(ws, gt, res, "segm")
    assert_same(coco_eval(ws, run, "segm"), reference(gt, res, "segm"))


def test_unknown_iou_type(ws):
    gt, res = _random_set(1, n_img=2)
    run = build(ws, gt, res, "bbox")
    with pytest.raises(MetricsError, match="iou_type"):
        coco_eval(ws, run, "keypoints")


@pytest.mark.parametrize("iou_type,results", [("bbox", "instances_val2014_fakebbox100_results.json"),
                                              ("segm", "instances_val2014_fakesegm100_results.json")])
def test_coco_through_the_importer_identical(ws, shared_data, iou_type, results):
    """Polygon labels with crowd RLEs and mask (or box) results, as slicewise.io stores them."""
    io = pytest.importorskip("slicewise.io")
    d = shared_data / "coco-val2014-100"
    io.import_coco(ws, d / "instances_val2014_100.json")
    io.import_coco_results(ws, d / results, f"fake/{iou_type}")
    run = ws.run(f"fake/{iou_type}")
    ws.add_run_rows(run, [r.global_key for r in ws.data_rows()])
    ours = coco_eval(ws, run, iou_type)
    ref = reference(json.loads((d / "instances_val2014_100.json").read_text()),
                    json.loads((d / results).read_text()), iou_type)
    assert_same(ours, ref)
