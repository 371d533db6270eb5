"""The Projector tab against the real server on the indoor-85 workspace: colour-by switches (the legend is the
library's answer), a lasso selects exactly the points on one side of it (checked against the projection's own
coordinates) and becomes the gallery's selection and filter, the view's filter dims the other points."""

from __future__ import annotations

import re

import numpy as np
import pytest

from slicewise import embeddings
from slicewise.embeddings import projection as P

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def space(live):
    """A space over every row: vectors near one centre per ground-truth class (so classes form clusters)."""
    ws = live.ws
    rows = ws.data_rows()
    gt = P.colors(ws, [r.id for r in rows], "gt")
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(len(gt.legend) + 1, 24)) * 5
    vecs = (centres[gt.codes.astype(int) + 1] + rng.normal(size=(len(rows), 24))).astype(np.float32)
    embeddings.add_vectors(ws, "pixels", [r.global_key for r in rows], vecs)
    return "pixels"


def legend(page) -> list[str]:
    return page.eval_on_selector_all("[data-testid=legend] .li span:first-of-type", "els => els.map(e => e.innerText)")


def wait_drawn(page) -> None:
    page.wait_for_function("Number(document.querySelector('[data-testid=projector]')?.dataset.frames || 0) > 0",
                           timeout=30_000)


def test_colour_by_switch(page, live, space, snap):
    ws = live.ws
    page.goto(f"{live.url}/runs/1/projector?space={space}")
    wait_drawn(page)
    p = P.project(ws, space, "pca", 2)
    gt = P.colors(ws, p.ids, "gt")
    page.wait_for_function("n => document.querySelectorAll('[data-testid=legend] .li').length === n", arg=len(gt.legend) + 1)
    assert legend(page) == gt.legend + ["none"]
    assert page.get_by_test_id("projector-count").inner_text().startswith(f"{len(p)} points")
    snap(page, "projector-gt")
    # metadata: the camera field, three values with their counts
    page.get_by_label("Colour by").select_option("metadata.camera")
    cam = P.colors(ws, p.ids, "metadata.camera")
    page.wait_for_function("want => [...document.querySelectorAll('[data-testid=legend] .li span:first-of-type')]"
                           ".map(e => e.innerText).join('|') === want", arg="|".join(cam.legend + ["none"]))
    counts = page.eval_on_selector_all("[data-testid=legend] .li .n", "els => els.map(e => Number(e.innerText.replace(/\\D/g, '')))")
    assert counts == cam.counts and "by=metadata.camera" in page.url
    # predicted class at the run's thresholds, and a metric (a colour ramp between its min and max)
    page.get_by_label("Colour by").select_option("pred")
    pred = P.colors(ws, p.ids, "pred", run=1)
    page.wait_for_function("want => [...document.querySelectorAll('[data-testid=legend] .li span:first-of-type')]"
                           ".map(e => e.innerText).join('|') === want", arg="|".join(pred.legend + ["none"]))
    page.get_by_label("Colour by").select_option("metric:iou")
    page.locator("[data-testid=legend] .ramp").wait_for()
    snap(page, "projector-iou")


def test_lasso_becomes_the_gallery_selection_and_filter(page, live, space, snap):
    ws = live.ws
    page.goto(f"{live.url}/catalog/projector?space={space}")
    wait_drawn(page)
    p = P.project(ws, space, "pca", 2)
    page.get_by_role("button", name="Lasso").click()
    stage = page.get_by_test_id("projector").bounding_box()
    left, top, right, bottom = stage["x"] + 4, stage["y"] + 4, stage["x"] + stage["width"] / 2, stage["y"] + stage["height"] - 4
    corners = [(left, top), (right, top), (right, bottom), (left, bottom), (left, top + 2)]
    page.mouse.move(left, top)
    page.mouse.down()
    for (x0, y0), (x1, y1) in zip(corners[:-1], corners[1:], strict=True):
        for t in np.linspace(0, 1, 8)[1:]:  # the lasso takes a point every 15 ms or more
            page.mouse.move(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t)
            page.wait_for_timeout(25)
    page.mouse.up()
    bar = page.get_by_test_id("projector-selection")
    bar.wait_for()
    n = int(re.sub(r"\D", "", bar.locator("strong").inner_text()))
    assert 0 < n < len(p)
    snap(page, "projector-lasso")
    # the lasso's right edge is a vertical line: the selected points are exactly those left of it
    bar.get_by_role("button", name="Filter to selection").click()
    page.wait_for_url(re.compile(r"/catalog\?.*q="))
    page.wait_for_function("n => (document.querySelector('[data-testid=total]')?.innerText || '').replace(/\\D/g, '') === String(n)",
                           arg=n)
    keys = set(page.eval_on_selector_all(".tile[data-key]", "els => els.map(e => e.dataset.key)"))
    by_key = {r.global_key: r.id for r in ws.data_rows()}
    chosen = np.isin(p.ids, [by_key[k] for k in keys])
    assert chosen.sum() == n
    assert p.coords[chosen, 0].max() < p.coords[~chosen, 0].min()
    # ... and they are the gallery's selection
    gallery_bar = page.get_by_test_id("selection-bar")
    assert f"{n} selected" in gallery_bar.inner_text()


def test_filter_dims_the_rows_it_excludes(page, live, space):
    ws = live.ws
    from slicewise.view import View

    page.goto(f"{live.url}/catalog/projector?space={space}&q=metadata.camera%20%3D%20%22cam-1%22")
    wait_drawn(page)
    want = View(filter='metadata.camera = "cam-1"').resolve(ws).count()
    page.wait_for_function("t => document.querySelector('[data-testid=projector-count]')?.innerText.includes(t)",
                           arg=f"{want} in view")
