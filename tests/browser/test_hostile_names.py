"""Names from imported files are untrusted: class (feature), slice, tag, metadata names and values and global
keys that are HTML must show as text on every page and never run script (issue 14, item 6).

A small workspace is built through the SDK with such names; the test visits every page, hovers every chart
(each confusion-matrix cell, each histogram bar, each PR-curve point) and every table row, and checks after
each step that ``window.__pwned`` is still undefined and that the names appear verbatim as text.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest
from PIL import Image

from .conftest import CHROMIUM, STATIC, LiveServer, _free_port, open_page, shot

pytestmark = pytest.mark.browser

HOSTILE = [
    '<img src=x onerror="window.__pwned=1">',
    '"><script>window.__pwned=2</script>',
    "'><img src=x onerror=window.__pwned=3>",
]
MODEL = "<img src=y onerror=window.__pwned=4>"
SLICES = ["<img src=x onerror=__pwned=5>", '"><script>__pwned=6</script>']  # slice names: 3 to 30 characters
PWNED = "() => window.__pwned === undefined"


def build(path: Path, media: Path) -> None:
    import slicewise
    from slicewise import metrics, slices

    rows, anns, preds = [], [], []
    for i in range(6):
        f = media / f"img{i}.png"
        Image.new("RGB", (200, 150), (120, 130, 140)).save(f)
        key = HOSTILE[i % 3] + f" #{i}"
        rows.append({"global_key": key, "row_data": str(f), "width": 200, "height": 150,
                     "split": ["train", "valid"][i % 2],
                     "metadata": {HOSTILE[0]: HOSTILE[(i + 1) % 3], HOSTILE[1]: float(i)}})
        true, pred = HOSTILE[i % 3], HOSTILE[(i + i // 3) % 3]  # rows 3-5 predict another class: confusions
        anns.append({"data_row": key, "feature": true, "bbox": [20, 20, 60, 50]})
        anns.append({"data_row": key, "feature": HOSTILE[2], "bbox": [120, 80, 40, 40]})  # a miss on some rows
        preds.append({"data_row": key, "feature": pred, "bbox": [22, 18, 60, 52], "confidence": 0.5 + i / 20})
        if i % 2:
            preds.append({"data_row": key, "feature": HOSTILE[2], "bbox": [118, 82, 40, 40], "confidence": 0.8})
    with slicewise.open(path) as ws:
        ws.add_data_rows("shapes", rows)
        for name in HOSTILE:
            ws.create_feature(name, "bbox", exist_ok=True)
        ws.add_annotations(anns)
        run = ws.create_run(MODEL, HOSTILE[0])  # ('/' separates model and run, so no closing tags here)
        ws.add_predictions(run, preds)
        metrics.compute_metrics(ws, run)
        ws.add_tags([r["global_key"] for r in rows[:3]], HOSTILE[:2])
        slices.create_slice(ws, SLICES[0], "split = valid", description=HOSTILE[1])
        slices.create_slice(ws, SLICES[1], f"has:{json.dumps(HOSTILE[0])}")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    if not STATIC.exists():
        pytest.skip("the web app is not built (run `make web`)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (run `make browser`)")
    from slicewise.server import create_app

    d = tmp_path_factory.mktemp("hostile")
    path = d / "hostile.duckdb"
    build(path, d)
    with LiveServer(create_app(path), _free_port()) as srv:
        yield srv


@pytest.fixture
def page(hostile, browser):
    yield from open_page(browser)


def safe(page) -> None:
    assert page.evaluate(PWNED), "a name from the workspace ran as script"


def chart_js(testid: str, body: str) -> str:
    return f"(a) => {{ const c = document.querySelector('[data-testid={testid}]').__chart; {body} }}"


def hover_points(page, testid: str, points: list[list[float]], series: int = 0) -> list[str]:
    """Hover each data point of a chart; the tooltip texts seen."""
    chart = page.get_by_test_id(testid)
    chart.scroll_into_view_if_needed()
    page.wait_for_timeout(300)  # entrance animation
    texts = []
    for p in points:
        x, y = page.evaluate(chart_js(testid, "return c.convertToPixel({seriesIndex: a[0]}, a[1]);"), [series, p])
        bb = chart.bounding_box()  # (each time: the page's layout may still move the chart, e.g. as a panel loads)
        page.mouse.move(bb["x"] + x, bb["y"] + y)
        page.wait_for_timeout(60)
        texts.append(page.evaluate(f"() => [...document.querySelectorAll('[data-testid={testid}] div')]"
                                   ".filter(d => d.style.zIndex === '9999999' || d.className.includes('tooltip'))"
                                   ".map(d => d.textContent).join(' | ')"))
        safe(page)
    return texts


def wait_chart(page, testid: str) -> None:
    page.get_by_test_id(testid).wait_for()
    page.wait_for_function(f"() => document.querySelector('[data-testid={testid}]').__chart?.getOption()?.series?.length")


def test_hostile_names_show_as_text_everywhere(page, hostile):
    ws = hostile.ws
    run = ws.runs()[0]
    page.add_init_script("window.__pwned = undefined")

    # the runs list: model and run names
    page.goto(hostile.url + "/")
    page.locator("tr.run").first.wait_for()
    safe(page)
    assert MODEL in page.locator("tr.run").first.inner_text()
    assert HOSTILE[0] in page.locator("tr.run").first.inner_text()
    page.locator("tr.run").first.hover()
    safe(page)

    # all data rows without a run, then the run's gallery: global keys, tags, slices and features in the left
    # panel, metadata in the filter panel
    page.goto(hostile.url + "/data")
    page.locator(".tile[data-key]").first.wait_for()
    safe(page)
    assert HOSTILE[2] + " #5" in page.locator("body").inner_text()
    page.goto(hostile.url + f"/runs/{run.id}/gallery")
    page.locator(".tile[data-key]").first.wait_for()
    page.wait_for_timeout(300)
    safe(page)
    text = page.locator("body").inner_text()
    for name in HOSTILE + SLICES:
        assert name in text, f"{name!r} is not shown as text on the gallery page"
    for tile in page.locator(".tile[data-key]").all():
        tile.hover()
    for item in page.locator("aside button").all():
        item.hover()
    safe(page)

    # a hostile slice (its name in the slice chip), a hostile tag as the filter
    page.locator(f"[data-slice={json.dumps(SLICES[0])}]").first.click()
    page.wait_for_url("**slice=**")
    page.locator(".tile[data-key]").first.wait_for()
    safe(page)
    assert SLICES[0] in page.get_by_test_id("filter-chips").inner_text()
    page.goto(hostile.url + f"/runs/{run.id}/gallery?q=" + quote(f"tag:{json.dumps(HOSTILE[1])}"))
    page.locator(".tile[data-key]").first.wait_for()
    safe(page)
    assert HOSTILE[1] in page.get_by_test_id("filter-chips").inner_text()

    # the detail view: objects table with class names, matches and outcomes
    page.locator(".tile[data-key]").first.click()
    page.get_by_test_id("objects").wait_for()
    for tr in page.locator("[data-testid=objects] tbody tr").all():
        tr.hover()
    safe(page)
    assert any(n in page.get_by_test_id("detail").inner_text() for n in HOSTILE)
    page.keyboard.press("Escape")

    # the metrics page: feature table, every confusion cell, every histogram bar (by split, slice and
    # feature), every PR point (all features, then a hostile one)
    from slicewise import metrics

    cm = metrics.confusion_matrix(ws, run, 0.5, 0.5)
    assert sum(cm.counts[t][p] for t in range(len(cm.classes)) for p in range(len(cm.classes)) if t != p) > 0
    for by in ("split", "slice", "feature"):
        page.goto(hostile.url + f"/runs/{run.id}/metrics?by={by}&pr=" + quote(HOSTILE[0] if by == "feature" else ""))
        page.get_by_test_id("feature-table").locator("tbody tr").first.wait_for()
        safe(page)
        table = page.get_by_test_id("feature-table").inner_text()
        assert all(n in table for n in HOSTILE)
        for tr in page.get_by_test_id("feature-table").locator("tbody tr").all():
            tr.hover()
        safe(page)
        if by == "split":
            wait_chart(page, "confusion")
            # the page's classes (sorted by name, the empty ones hidden): every hostile one is there
            shown = page.evaluate(chart_js("confusion", "return c.getOption().yAxis[0].data;"))
            assert set(shown) <= set(cm.classes) and all(n in shown for n in HOSTILE if n in cm.classes)
            cells = [[p, t] for t in range(len(shown)) for p in range(len(shown))]
            tips = hover_points(page, "confusion", cells)
            for (p, t), tip in zip(cells, tips, strict=True):
                assert shown[t] in tip and shown[p] in tip, (shown[t], shown[p], tip)
        wait_chart(page, "histogram")
        n_bins = page.evaluate(chart_js("histogram", "return c.getOption().xAxis[0].data.length;"))
        tips = hover_points(page, "histogram", [[i, 0] for i in range(n_bins)])
        if by != "split":
            names = [n for n in HOSTILE + SLICES if n in " ".join(tips)]
            assert names, f"no hostile {by} name in the histogram tooltips: {tips[:2]}"
        wait_chart(page, "pr-curve")
        pts = page.evaluate(chart_js("pr-curve", "return c.getOption().series[1].data.map(p => [p[0], p[1]]);"))
        assert pts
        hover_points(page, "pr-curve", pts, series=1)
        shot(page, f"hostile-metrics-{by}", full_page=True)
    safe(page)
