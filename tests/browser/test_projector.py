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
    assert page.get_by_test_id("projector").get_attribute("data-renderer") == "webgl"  # (small: regl-scatterplot)
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


# -- the density raster (big 2D projections; `render=raster` forces it on this small one) -------------------------
# the raster's camera and colours (web/src/lib/density-raster.ts), written out here: the 2D layout is the bounding
# box's centre and one scale (the longer side spans [-0.95, 0.95]); at the first view the layout square's height
# fills the canvas's, centred; a pixel of one point in the view is its colour at alpha 0.45 over the background, a
# dimmed one at 0.12
BACKGROUND = np.array([0x0F, 0x17, 0x2A])
RASTERED = "document.querySelector('[data-testid=projector]')?.dataset.rasterView === document.querySelector('[data-testid=projector]')?.dataset.view"


def layout_2d(coords: np.ndarray) -> np.ndarray:
    c = coords.astype(np.float64)
    lo, hi = c.min(0), c.max(0)
    return (c - (lo + hi) / 2) * (0.95 / ((hi - lo).max() / 2))


def on_screen(page, coords: np.ndarray, view=(0.0, 0.0, 1.0)) -> np.ndarray:
    """The points' positions in the page (CSS pixels) at a raster view (cx, cy, zoom)."""
    box = page.get_by_test_id("projector").bounding_box()
    cx, cy, zoom = view
    s = zoom * box["height"] / 2
    xy = layout_2d(coords)
    return np.stack([box["x"] + box["width"] / 2 + (xy[:, 0] - cx) * s, box["y"] + box["height"] / 2 - (xy[:, 1] - cy) * s], axis=1)


def pixel(page, x: float, y: float) -> np.ndarray:
    return np.array(page.evaluate("""([x, y]) => { const c = document.querySelector('[data-testid=raster]'),
        r = document.querySelector('[data-testid=projector]').getBoundingClientRect();
        return Array.from(c.getContext('2d').getImageData(Math.floor(x - r.left), Math.floor(y - r.top), 1, 1).data); }""", [x, y]))


def canvas_pixels(page) -> np.ndarray:
    """The raster canvas's pixels (height x width x RGBA), read once."""
    import base64
    import io

    from PIL import Image

    url = page.evaluate("() => document.querySelector('[data-testid=raster]').toDataURL('image/png')")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGBA")).astype(int)


def open_raster(page, url: str) -> None:
    page.goto(url)
    page.wait_for_function("document.querySelector('[data-testid=projector]')?.dataset.settled === '1'")
    assert page.get_by_test_id("projector").get_attribute("data-renderer") == "raster"
    page.wait_for_function(RASTERED)


def isolated(xy: np.ndarray, apart: float, exclude: np.ndarray | None = None) -> np.ndarray:
    """The points at least `apart` pixels from every other (nearest first by how isolated)."""
    d = np.linalg.norm(xy[:, None] - xy[None], axis=2)
    np.fill_diagonal(d, np.inf)
    gap = d.min(1)
    ok = np.flatnonzero(gap >= apart)
    return ok[np.argsort(-gap[ok])]


def test_raster_colours_dims_hovers_and_clicks_the_rows_where_the_layout_puts_them(page, live, space):
    ws = live.ws
    q = 'metadata.camera = "cam-1"'
    from urllib.parse import quote

    from slicewise.view import View

    open_raster(page, f"{live.url}/catalog/projector?space={space}&render=raster&q={quote(q)}")
    p = P.project(ws, space, "pca", 2)
    gt = P.colors(ws, p.ids, "gt")
    inside = np.isin(p.ids, View(filter=q).resolve(ws).ids(10_000)[1])
    assert 0 < inside.sum() < len(p)
    xy = on_screen(page, p.coords)
    alone = isolated(xy, 12)  # a point's square is 7 px: these pixels hold one point each
    swatches = dict(zip(legend(page), page.eval_on_selector_all(
        "[data-testid=legend] .li i", "els => els.map(e => getComputedStyle(e).backgroundColor)"), strict=True))

    def want(k: int) -> np.ndarray:
        code = int(gt.codes[k])
        rgb = re.findall(r"\d+", swatches[gt.legend[code]] if code >= 0 else swatches["none"])
        alpha = 0.45 if inside[k] else 0.12
        return np.round(BACKGROUND + (np.array(rgb[:3], dtype=float) - BACKGROUND) * alpha)

    checked = {True: 0, False: 0}
    for k in alone:
        if checked[bool(inside[k])] >= 2:
            continue
        got = pixel(page, *xy[k])
        assert np.abs(got[:3] - want(k)).max() <= 1, (k, got, want(k))
        checked[bool(inside[k])] += 1
    assert checked == {True: 2, False: 2}, "not enough isolated points in and out of the view"
    assert (pixel(page, xy[:, 0].min() - 30, xy[:, 1].min() - 30)[:3] == BACKGROUND).all()
    # hover shows the row under the mouse, a click opens it
    k = int(alone[0])
    page.mouse.move(*xy[k])
    page.locator(".hovercard span").filter(has_text=f"row {p.ids[k]}").wait_for()
    page.mouse.click(*xy[k])
    page.wait_for_url(re.compile(rf"row={p.ids[k]}(&|$)"))


def test_raster_lasso_pan_and_zoom(page, live, space):
    ws = live.ws
    open_raster(page, f"{live.url}/catalog/projector?space={space}&render=raster")
    p = P.project(ws, space, "pca", 2)
    box = page.get_by_test_id("projector").bounding_box()
    xy = on_screen(page, p.coords)
    # a lasso: a triangle; the rows inside it are the ones the test finds inside the same polygon
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    # (a triangle with no point within 2 px of its sides: the test and the page may round differently there)
    tri = next(t for t in (np.array([[cx - 300 + o, cy - 330], [cx + 60 + o, cy + 10], [cx - 330 + o, cy + 300]])
                           for o in range(0, 200, 7)) if segment_distance(xy, t).min() > 2)
    want = set(p.ids[in_polygon(xy, tri)].tolist())
    assert 0 < len(want) < len(p)
    edges = np.concatenate([tri[i] + (tri[(i + 1) % 3] - tri[i]) * t[:, None] for i in range(3) for t in [np.linspace(0, 1, 12)[:-1]]])
    page.get_by_role("button", name="Lasso").click()
    page.mouse.move(*edges[0])
    page.mouse.down()
    for e in edges[1:]:
        page.mouse.move(*e)
    page.mouse.move(*edges[0])
    page.mouse.up()
    bar = page.get_by_test_id("projector-selection")
    bar.wait_for()
    assert int(re.sub(r"\D", "", bar.locator("strong").inner_text())) == len(want)
    page.wait_for_function(RASTERED + " && Number(document.querySelector('[data-testid=projector]').dataset.rasters) >= 2")
    k = int(np.flatnonzero(np.isin(p.ids, list(want)))[0])
    box = page.get_by_test_id("projector").bounding_box()  # (the selection's bar moved the stage down)
    xy = on_screen(page, p.coords)
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.wait_for_function("([x, y]) => { const c = document.querySelector('[data-testid=raster]'),"
                           " r = document.querySelector('[data-testid=projector]').getBoundingClientRect();"
                           " return !c.style.transform && c.getContext('2d').getImageData(Math.floor(x - r.left), Math.floor(y - r.top), 1, 1).data[0] === 255; }",
                           arg=list(xy[k]))  # the selection is drawn white
    page.get_by_role("button", name="Lasso").click()
    # a pan drag moves every pixel by the drag (the overlap of before and after is the same picture)
    page.evaluate("""() => { const c = document.querySelector('[data-testid=raster]');
        window.__before = c.getContext('2d').getImageData(0, 0, c.width, c.height); }""")
    dx, dy = -150, 60
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + dx / 2, cy + dy / 2)
    page.mouse.move(cx + dx, cy + dy)
    page.mouse.up()
    page.wait_for_function(RASTERED)
    view = json_view(page)
    assert view == pytest.approx((-dx / (box["height"] / 2), dy / (box["height"] / 2), 1.0))
    same = page.evaluate("""([dx, dy]) => { const c = document.querySelector('[data-testid=raster]'), a = window.__before.data,
        b = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, W = c.width, H = c.height; let n = 0, eq = 0, lit = 0;
        for (let y = Math.max(0, -dy); y < Math.min(H, H - dy); y++) for (let x = Math.max(0, -dx); x < Math.min(W, W - dx); x++) {
          const i = 4 * (y * W + x), j = 4 * ((y + dy) * W + x + dx); n++;
          if (a[i] === b[j] && a[i + 1] === b[j + 1] && a[i + 2] === b[j + 2]) eq++;
          if (a[i] !== 15 || a[i + 1] !== 23) lit++; }
        return [eq / n, lit]; }""", [dx, dy])
    assert same[1] > 500 and same[0] > 0.999, same
    # the wheel zooms about the mouse: the point under it stays, the others move away from it by the zoom
    k = int(isolated(xy, 12)[0])
    at = on_screen(page, p.coords, view)[k]
    page.mouse.move(*at)
    page.mouse.wheel(0, -300)
    page.wait_for_function(RASTERED + " && JSON.parse(document.querySelector('[data-testid=projector]').dataset.view).zoom > 1.5")
    zoomed = json_view(page)
    now = on_screen(page, p.coords, zoomed)
    assert now[k] == pytest.approx(at, abs=0.5)
    page.mouse.move(*now[k])
    page.locator(".hovercard span").filter(has_text=f"row {p.ids[k]}").wait_for()
    # Reset view: back to the first view
    page.get_by_role("button", name="Reset view").click()
    page.wait_for_function(RASTERED + " && JSON.parse(document.querySelector('[data-testid=projector]').dataset.view).zoom === 1")
    assert json_view(page) == (0.0, 0.0, 1.0)


def in_polygon(pts: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd rule, written out (numpy)."""
    inside = np.zeros(len(pts), dtype=bool)
    for a, b in zip(poly, np.roll(poly, -1, axis=0), strict=True):
        crosses = (a[1] > pts[:, 1]) != (b[1] > pts[:, 1])
        with np.errstate(divide="ignore", invalid="ignore"):
            x = (b[0] - a[0]) * (pts[:, 1] - a[1]) / (b[1] - a[1]) + a[0]
        inside ^= crosses & (pts[:, 0] < x)
    return inside


def segment_distance(pts: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Each point's distance to the nearest side of a closed polygon."""
    out = np.full(len(pts), np.inf)
    for a, b in zip(poly, np.roll(poly, -1, axis=0), strict=True):
        t = np.clip(((pts - a) @ (b - a)) / ((b - a) @ (b - a)), 0, 1)
        out = np.minimum(out, np.linalg.norm(pts - (a + t[:, None] * (b - a)), axis=1))
    return out


def json_view(page) -> tuple[float, float, float]:
    import json

    v = json.loads(page.get_by_test_id("projector").get_attribute("data-view"))
    return (v["cx"], v["cy"], v["zoom"])


def test_raster_pixel_is_its_points_majority_class_at_their_density(page, live, space):
    ws = live.ws
    open_raster(page, f"{live.url}/catalog/projector?space={space}&render=raster&by=metadata.camera")
    p = P.project(ws, space, "pca", 2)
    cam = P.colors(ws, p.ids, "metadata.camera")
    page.wait_for_function("n => document.querySelectorAll('[data-testid=legend] .li').length === n", arg=len(cam.legend) + 1)
    page.wait_for_function(RASTERED)
    swatches = dict(zip(legend(page), page.eval_on_selector_all(
        "[data-testid=legend] .li i", "els => els.map(e => getComputedStyle(e).backgroundColor)"), strict=True))
    rgb = [np.array(re.findall(r"\d+", swatches[label])[:3], dtype=float) for label in cam.legend]
    _, cover = covering(page, p.coords)
    img = canvas_pixels(page)
    checked = mixed = 0
    for (x, y), pts in cover.items():
        if len(pts) < 2:
            continue
        codes = cam.codes[pts].astype(int)
        values, counts = np.unique(codes, return_counts=True)
        if counts.max() * 2 <= len(pts) or values[counts.argmax()] < 0:
            continue  # no strict majority: the vote may settle on any of them
        alpha = 0.45 + 0.55 * min(1.0, np.log2(len(pts)) / 6)
        want = np.round(BACKGROUND + (rgb[values[counts.argmax()]] - BACKGROUND) * alpha)
        got = img[y, x, :3]
        assert np.abs(got - want).max() <= 1, ((x, y), pts, codes, got, want)
        checked += 1
        mixed += len(values) > 1
    assert checked > 50 and mixed > 0, (checked, mixed)


def covering(page, coords: np.ndarray) -> tuple[dict, dict[tuple[int, int], list[int]]]:
    """The stage's box, and the points covering each canvas pixel at the first view (pixels of points whose square's
    corner lies within 1e-3 of a pixel edge left out: the page computes in float32 there)."""
    box = page.get_by_test_id("projector").bounding_box()
    width, height = page.evaluate("() => { const c = document.querySelector('[data-testid=raster]'); return [c.width, c.height]; }")
    # each point covers a 7 x 7 square whose top-left pixel is floor(x * s + W / 2 - 3), floor(H / 2 - 3 - y * s)
    s = height / 2
    xy = layout_2d(coords)
    gx, gy = xy[:, 0] * s + width / 2 - 3, height / 2 - 3 - xy[:, 1] * s
    near_edge = (np.abs(gx - np.round(gx)) < 1e-3) | (np.abs(gy - np.round(gy)) < 1e-3)
    cover: dict[tuple[int, int], list[int]] = {}
    for i in range(len(coords)):
        for dy in range(7):
            for dx in range(7):
                cover.setdefault((int(np.floor(gx[i])) + dx, int(np.floor(gy[i])) + dy), []).append(i)
    return box, {xy: pts for xy, pts in cover.items()
                 if 0 <= xy[0] < width and 0 <= xy[1] < height and not near_edge[pts].any()}


def test_raster_pixel_is_its_points_mean_value_on_the_ramp(page, live, space):
    ws = live.ws
    open_raster(page, f"{live.url}/runs/1/projector?space={space}&render=raster&by=metric:iou")
    page.locator("[data-testid=legend] .ramp").wait_for()
    page.wait_for_function(RASTERED + " && Number(document.querySelector('[data-testid=projector]').dataset.rasters) >= 1")
    p = P.project(ws, space, "pca", 2)
    iou = P.colors(ws, p.ids, "metric:iou", run=1)
    assert iou.kind == "number" and iou.values is not None
    lo, span = iou.min or 0.0, ((iou.max or 1.0) - (iou.min or 0.0)) or 1.0
    norm = np.clip((iou.values.astype(np.float64) - lo) / span, 0, 1)
    # the ramp of the WebGL path: 32 steps from hsl(250deg 75% 45%) to hsl(40deg 75% 55%); none: #cbd5e1
    import colorsys

    ramp = [np.round(np.array(colorsys.hls_to_rgb((250 - i / 31 * 210) / 360, (45 + i / 31 * 10) / 100, 0.75)) * 255)
            for i in range(32)]
    _, cover = covering(page, p.coords)
    img = canvas_pixels(page)
    checked = nan = 0
    for (x, y), pts in cover.items():
        vals = norm[pts][~np.isnan(norm[pts])]
        if len(vals):
            step = vals.mean() * 32
            if abs(step - round(step)) < 1e-4 and not (vals == vals[0]).all():
                continue  # on a step's edge: float32 / float64 sums may fall either side
            colour = ramp[min(31, int(np.floor(step)))]
        else:
            colour, nan = np.array([0xCB, 0xD5, 0xE1]), nan + 1
        alpha = 0.45 + 0.55 * min(1.0, np.log2(len(pts)) / 6)
        want = BACKGROUND + (colour - BACKGROUND) * alpha
        got = img[y, x, :3]
        assert np.abs(got - want).max() <= 1.6, ((x, y), pts, got, want)
        checked += 1
    assert checked > 500, checked


def test_a_slow_webgl_frame_hands_a_50k_projection_to_the_raster(browser, tmp_path):
    """From 50,000 points the page measures a WebGL redraw and draws with the raster when it is slower than 50 ms
    (software WebGL in headless Chromium: it is); `render=webgl` keeps WebGL. In 3D the frames while the cloud turns
    are rasters (where a WebGL frame is slower than 100 ms, as here)."""
    from pathlib import Path

    import slicewise
    from slicewise.server import create_app

    from .conftest import CHROMIUM, STATIC, LiveServer, _free_port, open_page

    if not STATIC.exists() or not Path(CHROMIUM).exists():
        pytest.skip("the web app is not built (run `make web`) or Chromium is missing (run `make browser`)")

    n = 50_000
    rng = np.random.default_rng(3)
    path = tmp_path / "fifty.duckdb"
    with slicewise.open(path) as ws:
        ws.add_data_rows("many", [{"global_key": f"m{i}", "row_data": "none.jpg"} for i in range(n)])
        embeddings.add_vectors(ws, "many", [f"m{i}" for i in range(n)], rng.normal(size=(n, 8)).astype(np.float32))
    with LiveServer(create_app(path), _free_port()) as srv:
        for extra, forced in (("", False), ("&render=webgl", True)):
            gen = open_page(browser)
            page = next(gen)
            page.goto(f"{srv.url}/catalog/projector?space=many{extra}")
            st = page.get_by_test_id("projector")
            if forced:
                page.wait_for_function("Number(document.querySelector('[data-testid=projector]')?.dataset.frames || 0) > 0",
                                       timeout=60_000)
                assert st.get_attribute("data-renderer") == "webgl" and st.get_attribute("data-webgl-frame-ms") is None
            else:
                page.wait_for_function("document.querySelector('[data-testid=projector]')?.dataset.webglFrameMs",
                                       timeout=60_000)
                slow = float(st.get_attribute("data-webgl-frame-ms")) > 50
                want = "raster" if slow else "webgl"
                page.wait_for_function("r => document.querySelector('[data-testid=projector]').dataset.renderer === r", arg=want)
                if slow:
                    page.wait_for_function(RASTERED)
            gen.close()
        # 3D: the frames while the cloud turns are rasters too (WebGL is slow here), at regl-scatterplot's camera;
        # once the view settles it is WebGL's again
        gen = open_page(browser)
        page = next(gen)
        page.goto(f"{srv.url}/catalog/projector?space=many&dims=3")
        page.wait_for_function("document.querySelector('[data-testid=projector]')?.dataset.settled === '1'", timeout=60_000)
        box = page.get_by_test_id("projector").bounding_box()
        cx, cy = box["x"] + 30, box["y"] + 30  # (a corner with no point: no hover, which WebGL would redraw slowly)
        page.mouse.move(cx, cy)
        page.mouse.down()
        page.mouse.move(cx + 90, cy + 30, steps=3)
        st = page.get_by_test_id("projector")
        page.wait_for_function("() => { const d = document.querySelector('[data-testid=projector]').dataset;"
                               " return d.rasterTurn && d.rasterTurn === `${d.yaw},${d.pitch}`; }", timeout=30_000)
        yaw, pitch = (float(v) for v in st.get_attribute("data-raster-turn").split(","))
        assert (yaw, pitch) == pytest.approx((DEFAULT_YAW + 0.9, DEFAULT_PITCH + 0.3), abs=2e-3)
        assert st.get_attribute("data-landed") == str(n)
        assert "off" not in (page.locator(".rwrap").get_attribute("class") or "")
        # the lit pixels are those the test lays out: 2-pixel squares at the turned positions
        p = P.project(srv.ws, "many", "pca", 3)
        img = canvas_pixels(page)
        height, width = img.shape[:2]
        xy = laid_out(p.coords, yaw, pitch) * [1, -1] * height / 2 + [width / 2, height / 2]
        want = np.zeros((height, width), dtype=bool)
        for dx in (0, 1):
            for dy in (0, 1):
                want[np.floor(xy[:, 1]).astype(int) + dy, np.floor(xy[:, 0]).astype(int) + dx] = True
        lit = (img[:, :, :3] != BACKGROUND).any(axis=2)
        assert (lit & want).sum() / (lit | want).sum() > 0.97
        page.mouse.up()
        page.wait_for_function("() => document.querySelector('[data-testid=projector]').dataset.settled === '1'"
                               " && document.querySelector('.rwrap').classList.contains('off')", timeout=60_000)
        page.wait_for_url(re.compile(rf"yaw={yaw:.3f}&pitch={pitch:.3f}"))
        gen.close()
