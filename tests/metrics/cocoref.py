"""Helpers for the COCO tests: build a workspace from a COCO dataset + results through the SDK, and
compute pycocotools' reference numbers in the test itself."""

from __future__ import annotations

import contextlib
import copy
import io
from typing import Any

import numpy as np


def reference(gt: dict[str, Any], results: list[dict[str, Any]], iou_type: str) -> Any:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = copy.deepcopy(gt)
        cg.createIndex()
        cd = cg.loadRes(copy.deepcopy(results)) if results else COCO()
        if not results:
            cd.dataset = {"images": gt["images"], "categories": gt["categories"], "annotations": []}
            cd.createIndex()
        e = COCOeval(cg, cd, iou_type)
        e.evaluate()
        e.accumulate()
        e.summarize()
    return e


def hotcoco_stats(gt: dict[str, Any], results: list[dict[str, Any]], iou_type: str) -> np.ndarray:
    """The 12 stats by hotcoco (Rust), the second oracle: an independent implementation of the protocol."""
    import pytest

    hotcoco = pytest.importorskip("hotcoco")
    with contextlib.redirect_stdout(io.StringIO()):
        cg = hotcoco.COCO(copy.deepcopy(gt))
        e = hotcoco.COCOeval(cg, cg.load_res(copy.deepcopy(results)), iou_type)
        e.evaluate()
        e.accumulate()
        e.summarize()
    return np.asarray(e.stats[:12], np.float64)


def build(ws: Any, gt: dict[str, Any], results: list[dict[str, Any]], iou_type: str) -> Any:
    """Images in id order, categories in id order, annotations and results in file order."""
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = copy.deepcopy(gt)
        cg.createIndex()
    kind = "bbox" if iou_type == "bbox" else "mask"
    images = sorted(gt["images"], key=lambda im: im["id"])
    ws.add_data_rows("coco", [{"global_key": str(im["id"]), "row_data": str(im["id"]), "width": im["width"],
                               "height": im["height"]} for im in images])
    cats = sorted(gt["categories"], key=lambda c: c["id"])
    name = {c["id"]: c["name"] for c in cats}
    for c in cats:
        ws.create_feature(c["name"], kind)
    sizes = {im["id"]: (im["height"], im["width"]) for im in images}

    def geom(a: dict[str, Any], is_gt: bool) -> dict[str, Any]:
        if kind == "bbox":
            return {"bbox": list(a["bbox"])}
        if is_gt:
            rle = cg.annToRLE(a)
        else:
            rle = a["segmentation"]
            if isinstance(rle.get("counts"), list):
                h, w = sizes[a["image_id"]]
                rle = mask_utils.frPyObjects(rle, h, w)
        c = rle["counts"]
        return {"mask": {"size": list(rle["size"]), "counts": c.decode() if isinstance(c, bytes) else c}}

    anns = [{"data_row": str(a["image_id"]), "feature": name[a["category_id"]], "area": a["area"],
             "iscrowd": bool(a.get("iscrowd", 0)), **geom(a, True)} for a in gt["annotations"]]
    ws.add_annotations(anns)
    run = ws.create_run("coco", iou_type)
    preds = [{"data_row": str(r["image_id"]), "feature": name[r["category_id"]], "confidence": r["score"],
              **geom(r, False)} for r in results]
    if preds:
        ws.add_predictions(run, preds)
    ws.add_run_rows(run, [str(im["id"]) for im in images])
    return run


def assert_same(ours: Any, ref: Any) -> None:
    np.testing.assert_allclose(ours.stats, ref.stats, atol=1e-9, rtol=0)
    np.testing.assert_allclose(ours.precision, ref.eval["precision"], atol=1e-9, rtol=0)
    np.testing.assert_allclose(ours.recall, ref.eval["recall"], atol=1e-9, rtol=0)
