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


# -- 3D: the orbit camera -------------------------------------------------------------------------------------------
# the camera of web/src/lib/orbit.ts, written out here: the bounding box's centre, one scale (the farthest point
# from it lies at 0.95), yaw about the vertical axis, then pitch about the horizontal one
DEFAULT_YAW, DEFAULT_PITCH, RADIANS_PER_PIXEL = 0.6, 0.35, 0.01


def laid_out(coords: np.ndarray, yaw: float, pitch: float) -> np.ndarray:
    c = coords.astype(np.float64)
    lo, hi = c.min(0), c.max(0)
    s = 0.95 / np.sqrt(max(((c - (lo + hi) / 2) ** 2).sum(1).max(), 1e-18))
    x, y, z = ((c - (lo + hi) / 2) * s).T
    z1 = np.cos(yaw) * z - np.sin(yaw) * x
    return np.stack([np.cos(yaw) * x + np.sin(yaw) * z, np.cos(pitch) * y - np.sin(pitch) * z1], axis=1)


def camera(page) -> tuple[float, float]:
    page.wait_for_function("document.querySelector('[data-testid=projector]')?.dataset.settled === '1'")
    st = page.get_by_test_id("projector")
    return float(st.get_attribute("data-yaw")), float(st.get_attribute("data-pitch"))


def test_orbit_turns_the_3d_view_and_the_lasso_selects_what_is_drawn(page, live, space, snap):
    ws = live.ws
    page.goto(f"{live.url}/catalog/projector?space={space}&dims=3")
    assert camera(page) == (DEFAULT_YAW, DEFAULT_PITCH)
    p = P.project(ws, space, "pca", 3)
    assert p.coords.shape[1] == 3
    orbit = page.get_by_role("button", name="Orbit")
    assert orbit.get_attribute("aria-pressed") == "true"  # 3D opens in orbit mode, and says so
    assert "Drag to turn" in page.get_by_test_id("orbit-hint").inner_text()
    stage = page.get_by_test_id("projector").bounding_box()
    cx, cy = stage["x"] + stage["width"] / 2, stage["y"] + stage["height"] / 2

    # an orbit drag: right turns (yaw), down tilts (pitch); the sliders and the URL follow
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 130, cy + 40, steps=4)
    page.mouse.up()
    yaw, pitch = camera(page)
    assert yaw == pytest.approx(DEFAULT_YAW + 130 * RADIANS_PER_PIXEL, abs=2e-3)
    assert pitch == pytest.approx(DEFAULT_PITCH + 40 * RADIANS_PER_PIXEL, abs=2e-3)
    assert float(page.get_by_role("slider", name="Turn").input_value()) == pytest.approx(yaw, abs=0.006)
    assert float(page.get_by_role("slider", name="Tilt").input_value()) == pytest.approx(pitch, abs=0.006)
    page.wait_for_url(re.compile(rf"yaw={yaw:.3f}&pitch={pitch:.3f}"))
    assert page.get_by_test_id("projector-selection").count() == 0  # a drag is no click: nothing selected or opened
    assert "row=" not in page.url

    # a lasso (Shift+drag) after the turn selects exactly the points drawn left of its right edge, placed from the
    # projection's 3D coordinates and the camera here (screen: the [-1, 1] square's height fills the stage's)
    xy = laid_out(p.coords, yaw, pitch)
    sx = stage["x"] + stage["width"] / 2 + xy[:, 0] * stage["height"] / 2
    before = stage["x"] + stage["width"] / 2 + laid_out(p.coords, DEFAULT_YAW, DEFAULT_PITCH)[:, 0] * stage["height"] / 2
    xs = np.sort(sx)
    gaps = [(xs[i + 1] - xs[i], (xs[i] + xs[i + 1]) / 2) for i in range(len(xs) - 1)
            if len(xs) * 0.15 <= i <= len(xs) * 0.5 and ((sx < (xs[i] + xs[i + 1]) / 2) != (before < (xs[i] + xs[i + 1]) / 2)).any()]
    width, edge = max(gaps)
    assert width >= 4, "no clear gap to put the lasso's edge in"
    want = set(p.ids[sx < edge].tolist())
    assert want != set(p.ids[before < edge].tolist())  # the turn moved points across the edge
    left, top, bottom = stage["x"] + 4, stage["y"] + 4, stage["y"] + stage["height"] - 4
    corners = [(left, top), (edge, top), (edge, bottom), (left, bottom), (left, top + 2)]
    page.keyboard.down("Shift")
    page.mouse.move(left, top)
    page.mouse.down()
    for (x0, y0), (x1, y1) in zip(corners[:-1], corners[1:], strict=True):
        for t in (0.5, 1):  # the lasso takes a point every 15 ms or more
            page.mouse.move(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t)
            page.wait_for_timeout(20)
    page.mouse.up()
    page.keyboard.up("Shift")
    bar = page.get_by_test_id("projector-selection")
    bar.wait_for()
    assert int(re.sub(r"\D", "", bar.locator("strong").inner_text())) == len(want)
    snap(page, "projector-3d-orbit")
    assert camera(page) == (yaw, pitch)  # the lasso did not turn the view

    # arrow keys turn the focused plot; Reset view goes back to the first camera (and out of the URL)
    page.get_by_test_id("projector").focus()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowUp")
    page.wait_for_function("y => Number(document.querySelector('[data-testid=projector]').dataset.yaw) < y", arg=yaw - 0.05)
    assert camera(page) == pytest.approx((yaw - 0.1, pitch - 0.1), abs=2e-3)
    page.get_by_role("button", name="Reset view").click()
    page.wait_for_function("y => Number(document.querySelector('[data-testid=projector]').dataset.yaw) === y", arg=DEFAULT_YAW)
    assert camera(page) == (DEFAULT_YAW, DEFAULT_PITCH)
    page.wait_for_function("() => !location.search.includes('yaw=')")
    # ... and the selection is the lasso's: filter to it and read the keys back from the filter
    bar.get_by_role("button", name="Filter to selection").click()
    page.wait_for_url(re.compile(r"/catalog\?.*q="))
    from urllib.parse import parse_qs, urlparse

    q = parse_qs(urlparse(page.url).query)["q"][0]
    keys = set(re.findall(r'"([^"]+)"', q))
    by_key = {r.global_key: r.id for r in ws.data_rows()}
    assert {by_key[k] for k in keys} == want


def test_a_camera_link_alt_and_right_drag_then_hover_and_click_find_the_turned_point(page, live, space):
    page.goto(f"{live.url}/catalog/projector?space={space}&dims=3&yaw=-2.5&pitch=0.9")
    assert camera(page) == (-2.5, 0.9)
    assert float(page.get_by_role("slider", name="Turn").input_value()) == pytest.approx(-2.5, abs=0.006)
    # Alt+drag turns in pan mode too; the pitch stops short of straight above
    page.get_by_role("button", name="Orbit").click()
    assert page.get_by_role("button", name="Orbit").get_attribute("aria-pressed") == "false"
    stage = page.get_by_test_id("projector").bounding_box()
    cx, cy = stage["x"] + stage["width"] / 2, stage["y"] + stage["height"] / 2
    page.keyboard.down("Alt")
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx - 50, cy + 200, steps=3)
    page.mouse.up()
    page.keyboard.up("Alt")
    page.wait_for_function("() => location.search.includes('yaw=-3.000')")
    assert camera(page) == (-3.0, 1.5)
    # ... and so does a right-drag (no context menu); turning past -pi comes round to +pi
    page.mouse.move(cx, cy)
    page.mouse.down(button="right")
    page.mouse.move(cx - 30, cy - 100, steps=3)
    page.mouse.up(button="right")
    page.wait_for_function("() => location.search.includes('pitch=0.500')")
    yaw, pitch = camera(page)
    assert (yaw, pitch) == pytest.approx((-3.3 + 2 * np.pi, 0.5), abs=2e-3)
    # hover and click find the point drawn where the camera put it: the most isolated one on the screen
    p = P.project(live.ws, space, "pca", 3)
    xy = laid_out(p.coords, yaw, pitch) * [1, -1] * stage["height"] / 2 + [cx, cy]
    gap = np.sort(np.linalg.norm(xy[:, None] - xy[None], axis=2), axis=1)[:, 1]
    k = int(np.argmax(gap))
    assert gap[k] > 12
    page.mouse.move(*xy[k])
    page.locator(".hovercard span").filter(has_text=f"row {p.ids[k]}").wait_for()
    page.mouse.click(*xy[k])
    page.wait_for_url(re.compile(rf"row={p.ids[k]}(&|$)"))
