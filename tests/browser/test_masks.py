"""Masks (COCO RLE) drawn in the browser: a small generated workspace built through the SDK with
pycocotools-encoded masks on generated PNGs.

The browser's RLE decoder (web/src/lib/rle.ts) writes each mask's pixel count and box on its layer
(``data-area``, ``data-bbox``); they are checked against pycocotools' ``area`` / ``toBbox`` computed here.
Screenshots are saved under artifacts/screenshots/."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from .conftest import CHROMIUM, STATIC, LiveServer, _free_port, open_page, shot

pytestmark = pytest.mark.browser

GREY = (128, 128, 128)


def _masks(h: int, w: int, rng: np.random.Generator) -> list[np.ndarray]:
    yy, xx = np.mgrid[:h, :w]
    ellipse = ((xx - w * 0.3) / (w * 0.2)) ** 2 + ((yy - h * 0.5) / (h * 0.3)) ** 2 <= 1
    ring = (((xx - w * 0.7) ** 2 + (yy - h * 0.4) ** 2) <= (min(h, w) * 0.25) ** 2) & \
        (((xx - w * 0.7) ** 2 + (yy - h * 0.4) ** 2) > (min(h, w) * 0.12) ** 2)
    blobs = (rng.random((h, w)) < 0.02) & (yy >= h // 2)  # many short runs: the delta coding both ways
    pixel = np.zeros((h, w), bool)
    pixel[h - 1, w - 1] = True  # one pixel in the last corner
    full_columns = np.zeros((h, w), bool)
    full_columns[:, w // 2: w // 2 + 3] = True  # one run across several columns
    return [ellipse, ring, blobs, pixel, full_columns]


def _encode(m: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode()}


def build_masks(path: Path, media: Path) -> Path:
    import slicewise

    rng = np.random.default_rng(7)
    sizes = [(80, 120), (300, 200), (1200, 1600)]  # (h, w); the last has runs needing five 5-bit groups
    rows, anns, preds = [], [], []
    for i, (h, w) in enumerate(sizes):
        f = media / f"img{i}.png"
        Image.new("RGB", (w, h), GREY).save(f)
        key = f"img{i}"
        rows.append({"global_key": key, "row_data": str(f), "width": w, "height": h})
        for j, m in enumerate(_masks(h, w, rng)):
            anns.append({"data_row": key, "feature": ["cat", "dog"][j % 2], "mask": _encode(m)})
        pm = np.roll(_masks(h, w, rng)[0], w // 20, axis=1)
        preds.append({"data_row": key, "feature": "cat", "mask": _encode(pm), "confidence": 0.9})
    with slicewise.open(path) as ws:
        ws.add_data_rows("shapes", rows)
        ws.create_feature("cat", "mask", exist_ok=True)
        ws.create_feature("dog", "mask", exist_ok=True)
        ws.add_annotations(anns)
        run = ws.create_run("segmenter", "v1")
        ws.add_predictions(run, preds)
    return path


@pytest.fixture(scope="module")
def mlive(tmp_path_factory):
    if not STATIC.exists():
        pytest.skip("the web app is not built (run `make web`)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (run `make browser`)")
    from slicewise.server import create_app

    d = tmp_path_factory.mktemp("masks")
    path = build_masks(d / "masks.duckdb", d)
    with LiveServer(create_app(path), _free_port()) as srv:
        yield srv


@pytest.fixture
def mpage(mlive, browser):
    yield from open_page(browser)


def _layers(page, scope: str) -> dict[str, tuple[int, list[int]]]:
    got = page.eval_on_selector_all(f"{scope} g[data-key] image.mask", """ims => ims.map(i => [
        i.closest('g').dataset.key, Number(i.dataset.area), i.dataset.bbox, i.getAttribute('href') || ''])""")
    assert all(g[3].startswith("data:image/png;base64,") and len(g[3]) > 40 for g in got)
    return {k: (a, [int(v) for v in b.split(",")]) for k, a, b, _ in got}


def test_gallery_draws_masks_decoded_like_pycocotools(mpage, mlive):
    ws = mlive.ws
    run = ws.runs()[0]
    mpage.goto(mlive.url + f"/runs/{run.id}/gallery")
    want = _want_masks(ws, run)
    mpage.wait_for_function("n => document.querySelectorAll('.tile image.mask').length === n", arg=len(want))
    assert _layers(mpage, ".tile") == want
    mpage.wait_for_function("[...document.querySelectorAll('.tile img')].every(i => i.complete && i.naturalWidth > 0)")
    shot(mpage, "gallery-masks")
    # the existing toggles hide and show the mask layers
    mpage.get_by_label("Labels").uncheck()
    mpage.wait_for_function("document.querySelectorAll('.tile g[data-key^=\"label:\"] image.mask').length === 0")
    assert mpage.locator(".tile g[data-key^='prediction:'] image.mask").count() == len(ws.predictions(run))
    mpage.get_by_label("Predictions").uncheck()
    mpage.wait_for_function("document.querySelectorAll('.tile image.mask').length === 0")
    mpage.get_by_label("Labels").check()
    mpage.wait_for_function("n => document.querySelectorAll('.tile image.mask').length === n",
                            arg=len(ws.annotations()))


def test_detail_view_paints_the_mask_in_its_class_colour(mpage, mlive):
    ws = mlive.ws
    run = ws.runs()[0]
    row = ws.data_row("img1")
    mpage.goto(mlive.url + f"/runs/{run.id}/gallery?row={row.id}")
    mpage.wait_for_function("() => document.querySelector('.viewer img')?.naturalWidth > 0")
    keys = {k: v for k, v in _want_masks(ws, run).items()
            if k in {f"label:{o['id']}" for o in ws.annotations("img1")}
            | {f"prediction:{o['id']}" for o in ws.predictions(run, "img1")}}
    mpage.wait_for_function("n => document.querySelectorAll('.viewer image.mask').length === n", arg=len(keys))
    assert _layers(mpage, ".viewer") == keys
    # the ellipse label (the first annotation) is painted: its centre is no longer the photo's grey,
    # while a pixel far from every mask stays grey
    ell = ws.annotations("img1")[0]
    assert ell["kind"] == "mask"
    box = mpage.locator(".viewer svg.ov").bounding_box()
    assert box is not None
    w, h = row.width, row.height
    s = min(box["width"] / w, box["height"] / h)
    ox, oy = box["x"] + (box["width"] - w * s) / 2, box["y"] + (box["height"] - h * s) / 2
    png = Image.open(io.BytesIO(mpage.screenshot())).convert("RGB")
    bx, by, bw, bh = ell["bbox"]
    centre = png.getpixel((round(ox + (bx + bw / 2) * s), round(oy + (by + bh / 2) * s)))
    outside = png.getpixel((round(ox + 0.02 * w * s), round(oy + 0.05 * h * s)))
    assert max(abs(a - b) for a, b in zip(outside, GREY, strict=True)) <= 3, outside
    assert max(abs(a - b) for a, b in zip(centre, GREY, strict=True)) > 25, centre
    shot(mpage, "detail-masks")


def test_coco_segm_results_decoded_like_pycocotools(browser, shared_data, tmp_path):
    """pycocotools' own fake segmentation results (COCO val2014, 100 images): every mask layer of the
    first gallery page has pycocotools' area and box (the photos are not shipped: the layers are drawn
    over empty tiles)."""
    import slicewise
    from slicewise.io import import_coco
    from slicewise.io.coco import import_coco_results
    from slicewise.server import create_app

    d = shared_data / "coco-val2014-100"
    with slicewise.open(tmp_path / "coco.duckdb") as ws:
        import_coco(ws, d / "instances_val2014_100.json")
        import_coco_results(ws, d / "instances_val2014_fakesegm100_results.json", "fake/segm", create_features=True)
    with LiveServer(create_app(tmp_path / "coco.duckdb"), _free_port()) as srv:
        run = srv.ws.runs()[0]
        want = _want_masks(srv.ws, run)
        ctx = browser.new_context(viewport={"width": 1440, "height": 900})
        pg = ctx.new_page()
        try:
            pg.goto(srv.url + f"/runs/{run.id}/gallery")
            pg.wait_for_function("document.querySelectorAll('.tile').length > 0")
            tiles = pg.eval_on_selector_all(".tile[data-key]", "ts => ts.map(t => t.dataset.key)")
            on_page = {f"{src}:{o['id']}" for src, objs in (("label", srv.ws.annotations(tiles)),
                                                             ("prediction", srv.ws.predictions(run, tiles)))
                       for o in objs if o["kind"] == "mask" and (src == "label" or o["confidence"] >= 0.5)}
            assert len(on_page) > 100
            pg.wait_for_function("n => document.querySelectorAll('.tile image.mask').length === n", arg=len(on_page))
            assert _layers(pg, ".tile") == {k: want[k] for k in on_page}
        finally:
            ctx.close()


def _want_masks(ws, run) -> dict[str, tuple[int, list[int]]]:
    out = {}
    for src, objs in (("label", ws.annotations()), ("prediction", ws.predictions(run))):
        for o in objs:
            if o["kind"] == "mask":
                rle = {"size": o["mask"]["size"], "counts": o["mask"]["counts"].encode()}
                out[f"{src}:{o['id']}"] = (int(mask_utils.area(rle)), [int(v) for v in mask_utils.toBbox(rle)])
    return out
