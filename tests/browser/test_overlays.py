"""Overlays coloured by outcome on a hand-built row: one TP (a cat box and its prediction), one FP (a cat
prediction on nothing) and one FN (a dog label nothing predicts). The colours are the outcome colours of
web/src/lib/overlay.ts; "only errors" hides the TP pair; a class toggle hides a class; the choices live in
the URL and the detail view draws the same."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from .conftest import CHROMIUM, STATIC, LiveServer, _free_port, open_page

pytestmark = pytest.mark.browser

TP, FP, FN = "#12b76a", "#f04438", "#f79009"  # lib/overlay.ts OUTCOME_COLOURS


@pytest.fixture(scope="module")
def olive(tmp_path_factory):
    if not STATIC.exists():
        pytest.skip("the web app is not built (run `make web`)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (run `make browser`)")
    import slicewise
    from slicewise import metrics
    from slicewise.server import create_app

    d = tmp_path_factory.mktemp("overlays")
    Image.new("RGB", (320, 240), (70, 70, 70)).save(d / "a.png")
    with slicewise.open(d / "ov.duckdb") as ws:
        ws.add_data_rows("hand", [{"global_key": "a", "row_data": str(d / "a.png"), "width": 320, "height": 240}])
        ws.create_feature("cat", "bbox")
        ws.create_feature("dog", "bbox")
        ws.add_annotations([{"data_row": "a", "feature": "cat", "bbox": [20, 20, 120, 100]},
                            {"data_row": "a", "feature": "dog", "bbox": [200, 130, 90, 90]}])
        run = ws.create_run("hand", "v1")
        ws.add_predictions(run, [{"data_row": "a", "feature": "cat", "bbox": [24, 22, 118, 100], "confidence": 0.9},
                                 {"data_row": "a", "feature": "cat", "bbox": [200, 10, 100, 80], "confidence": 0.8}])
        metrics.compute_metrics(ws, run)
    with LiveServer(create_app(d / "ov.duckdb"), _free_port()) as srv:
        yield srv


@pytest.fixture
def opage(olive, browser):
    yield from open_page(browser)


def _strokes(page, scope: str) -> dict[str, tuple[str, str]]:
    """{data-key: (stroke colour, outcome)} of the shapes drawn in ``scope``."""
    return {k: (c, o) for k, c, o in page.eval_on_selector_all(
        f"{scope} svg.ov g[data-key]", "els => els.map(e => [e.dataset.key, e.getAttribute('stroke'), e.dataset.outcome])")}


def test_colour_by_outcome_and_only_errors(opage, olive):
    ws = olive.ws
    (run,) = ws.runs()
    labels = {o["feature"]: o["id"] for o in ws.annotations("a")}
    preds = sorted(ws.predictions(run, "a"), key=lambda o: -o["confidence"])
    want = {f"label:{labels['cat']}": (TP, "TP"), f"prediction:{preds[0]['id']}": (TP, "TP"),
            f"prediction:{preds[1]['id']}": (FP, "FP"), f"label:{labels['dog']}": (FN, "FN")}
    opage.goto(olive.url + f"/runs/{run.id}/gallery?c=0.5&t=0.5")
    opage.wait_for_function("document.querySelectorAll('.tile svg.ov g[data-key]').length === 4")
    assert {c for c, _ in _strokes(opage, ".tile").values()} != {TP, FP, FN}  # by class at first
    opage.get_by_test_id("colour-by").select_option("outcome")
    opage.wait_for_url("**colour=outcome**")
    opage.wait_for_function(f"document.querySelector('.tile svg.ov g[data-outcome=FP]')?.getAttribute('stroke') === '{FP}'")
    assert _strokes(opage, ".tile") == want
    # labels solid, predictions dashed
    dashed = dict(opage.eval_on_selector_all(".tile svg.ov g[data-key]", "els => els.map(e => [e.dataset.key, e.hasAttribute('stroke-dasharray')])"))
    assert {k for k, v in dashed.items() if v} == {k for k in want if k.startswith("prediction:")}
    opage.get_by_test_id("errors-only").check()
    opage.wait_for_url("**errors=1**")
    opage.wait_for_function("document.querySelectorAll('.tile svg.ov g[data-key]').length === 2")
    assert _strokes(opage, ".tile") == {k: v for k, v in want.items() if v[1] != "TP"}
    # the detail view draws the same from the URL; hiding the class dog leaves the FP only
    opage.locator(".tile").first.click()
    opage.get_by_test_id("detail").locator("svg.ov g[data-key]").first.wait_for()
    assert _strokes(opage, "[data-testid=detail]") == {k: v for k, v in want.items() if v[1] != "TP"}
    legend = opage.get_by_test_id("detail").get_by_test_id("overlay-legend")
    legend.locator("summary").click()
    assert legend.locator("[data-outcome=FN]").is_visible()
    legend.locator("label[data-class=dog] input").uncheck()
    opage.wait_for_url("**hide=**")
    opage.wait_for_function("document.querySelectorAll('[data-testid=detail] svg.ov g[data-key]').length === 1")
    assert _strokes(opage, "[data-testid=detail]") == {f"prediction:{preds[1]['id']}": (FP, "FP")}


def test_colour_by_error_type(opage, olive):
    """By TIDE error type: the cat prediction on nothing is a background error, the dog label nothing
    predicts is missed (lib/overlay.ts ERROR_COLOURS), the TP pair stays green; the legend names the types."""
    ws = olive.ws
    (run,) = ws.runs()
    labels = {o["feature"]: o["id"] for o in ws.annotations("a")}
    preds = sorted(ws.predictions(run, "a"), key=lambda o: -o["confidence"])
    background, missed = "#f04438", "#eab308"
    opage.goto(olive.url + f"/runs/{run.id}/gallery?c=0.5&t=0.5&colour=error")
    opage.wait_for_function("document.querySelector('.tile svg.ov g[data-error=missed]') !== null")
    got = {k: (c, e) for k, c, e in opage.eval_on_selector_all(
        ".tile svg.ov g[data-key]", "els => els.map(e => [e.dataset.key, e.getAttribute('stroke'), e.dataset.error])")}
    assert got == {f"label:{labels['cat']}": (TP, ""), f"prediction:{preds[0]['id']}": (TP, ""),
                   f"prediction:{preds[1]['id']}": (background, "background"), f"label:{labels['dog']}": (missed, "missed")}
    legend = opage.get_by_test_id("overlay-legend").first
    legend.locator("summary").click()
    assert legend.locator("[data-error=background]").is_visible() and legend.locator("[data-error=missed]").is_visible()
