"""The Compare page: the biggest regression first; a click opens the gallery on the rows where it dropped, each
tile with both runs' predictions (side by side, or overlaid)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from .conftest import CHROMIUM, STATIC, LiveServer, _free_port, open_page

pytestmark = pytest.mark.browser
N, FOUND = 30, 10  # rows with a cat; the run finds the first 10 (the baseline all): recall 1.0 -> 0.33


@pytest.fixture(scope="module")
def clive(tmp_path_factory):
    if not STATIC.exists():
        pytest.skip("the web app is not built (run `make web`)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (run `make browser`)")
    import slicewise
    from slicewise import metrics
    from slicewise.server import create_app

    d = tmp_path_factory.mktemp("compare")
    keys = [f"r{i:02d}" for i in range(N)]
    for i, k in enumerate(keys):
        Image.new("RGB", (160, 120), (40 + 5 * i, 70, 90)).save(d / f"{k}.png")
    with slicewise.open(d / "cmp.duckdb") as ws:
        ws.add_data_rows("hand", [{"global_key": k, "row_data": str(d / f"{k}.png"), "width": 160, "height": 120}
                                  for k in keys])
        ws.create_feature("cat", "bbox")
        ws.add_annotations([{"data_row": k, "feature": "cat", "bbox": [20, 20, 60, 50]} for k in keys])
        base = ws.create_run("det", "v1")
        ws.add_predictions(base, [{"data_row": k, "feature": "cat", "bbox": [22, 20, 60, 50], "confidence": 0.9}
                                  for k in keys])
        new = ws.create_run("det", "v2")  # misses 20 cats, and puts a box on the background there instead
        ws.add_predictions(new, [{"data_row": k, "feature": "cat", "confidence": 0.8,
                                  "bbox": [22, 20, 60, 50] if i < FOUND else [100, 60, 40, 40]} for i, k in enumerate(keys)])
        for r in (base, new):
            metrics.compute_metrics(ws, r)
    with LiveServer(create_app(d / "cmp.duckdb"), _free_port()) as srv:
        yield srv


@pytest.fixture
def cpage(clive, browser):
    yield from open_page(browser)


def test_compare_regression_opens_both_runs(cpage, clive, snap):
    base, new = sorted(clive.ws.runs(), key=lambda r: r.id)
    pg = cpage
    pg.goto(f"{clive.url}/runs/{new.id}/compare?c=0.5&t=0.5")  # the baseline defaults to the earlier run det/v1
    first = pg.locator("[data-testid=regression]").first
    first.wait_for()
    assert "cat" in first.inner_text() and "recall" in pg.locator("[data-testid=regressions]").inner_text()
    assert pg.locator("[data-testid=flip-tp-\\>fn] strong").inner_text() == str(N - FOUND)
    snap(pg, "compare-page")
    pg.locator("[data-testid=regression]", has_text="recall").first.click()
    pg.wait_for_url("**/gallery?**")
    assert f"baseline={base.id}" in pg.url
    pg.wait_for_function(f"document.querySelector('[data-testid=total]')?.textContent.startsWith('{N - FOUND} ')")
    tiles = pg.locator("[data-testid=gallery] .tile")
    pg.wait_for_function(f"document.querySelectorAll('[data-testid=gallery] .tile').length === {N - FOUND}")
    keys = set(tiles.evaluate_all("ts => ts.map(t => t.dataset.key)"))
    assert keys == {f"r{i:02d}" for i in range(FOUND, N)}
    # side by side: each tile draws the baseline's prediction (a TP) and the run's (an FP elsewhere)
    for t in tiles.all()[:5]:
        b, r = t.locator("[data-testid=baseline-pane]"), t.locator("[data-testid=run-pane]")
        assert b.get_attribute("data-n") == "1" and r.get_attribute("data-n") == "1"
        assert b.locator("svg.ov g.pred").count() == 1 and r.locator("svg.ov g.pred").count() == 1
        assert b.locator("svg.ov g.pred").get_attribute("data-outcome") == "TP"
        assert r.locator("svg.ov g.pred").get_attribute("data-outcome") == "FP"
    snap(pg, "compare-gallery-side-by-side")
    pg.locator("[data-testid=overlaid]").click()
    pg.wait_for_url("**cmp=overlay**")
    t = tiles.first
    t.locator("[data-testid=baseline-overlay] svg.ov g.pred").wait_for()
    assert t.locator("svg.ov g.pred").count() == 2  # the run's and the baseline's, one image
    snap(pg, "compare-gallery-overlaid")
