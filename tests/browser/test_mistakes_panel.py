"""The metrics page's label-mistakes panel on indoor-85 (real detector output): each detector's flagged
count is the library's, a click opens exactly those rows, and a verdict in the detail view shows up
(or from the selection bar) as the measured precision."""

from __future__ import annotations

import pytest

from slicewise import mistakes

pytestmark = pytest.mark.browser


def test_flagged_rows_verdict_and_precision(page, live, snap):
    ws = live.ws
    res = mistakes.result(ws, 1)
    page.goto(live.url + "/runs/1/metrics")
    panel = page.get_by_test_id("mistakes-panel")
    panel.wait_for()
    for name, s in res.detectors.items():
        cell = panel.locator(f"tr[data-detector={name}] [data-testid=flagged]")
        assert cell.inner_text().replace(",", "") == str(int(s.flagged.sum()))
    comb = res.detectors["combined"]
    want = {r.global_key for r in ws.data_rows(ids=[int(i) for i in comb.ids[comb.flagged]])}
    assert 0 < len(want) <= 50, "pick a detector whose flagged rows fit a page"
    panel.scroll_into_view_if_needed()
    snap(page, "mistakes-panel")
    panel.locator("tr[data-detector=combined] [data-testid=flagged]").click()
    page.wait_for_url("**/runs/1/gallery?**")
    page.wait_for_function("n => document.querySelectorAll('.tile[data-key]').length === n", arg=len(want))
    keys = page.eval_on_selector_all(".tile[data-key]", "els => els.map(e => e.dataset.key)")
    assert set(keys) == want
    top = ws.data_rows(ids=[comb.top(1)[0][0]])[0].global_key
    assert keys[0] == top  # most likely mistake first
    # the first row's detail: its scores, and the reviewer's verdict
    page.locator(".tile[data-key]").first.click()
    box = page.get_by_test_id("mistake-verdict")
    box.wait_for()
    assert box.locator("[data-flagged=combined]").count() == 1
    box.get_by_test_id("confirm-mistake").click()
    page.wait_for_function("() => document.querySelector('[data-testid=verdict]')?.innerText === 'verdict: confirmed'")
    assert ws.tags().get("mistake-confirmed") == 1
    snap(page, "mistake-verdict")
    page.goto(live.url + "/runs/1/metrics")
    prec = page.locator("[data-testid=mistakes-panel] tr[data-detector=combined] [data-testid=precision]")
    prec.wait_for()
    page.wait_for_function("() => document.querySelector('[data-testid=mistakes-panel] tr[data-detector=combined] "
                           "[data-testid=precision]')?.innerText === '100.0%'")
    # the selection bar: a second flagged row judged right -> 1 confirmed, 1 rejected: 50%
    page.goto(live.url + "/runs/1/gallery?q=mistake.combined.flagged%20%3D%201&sort=-mistake.combined")
    second = page.locator(".tile[data-key]").nth(1)
    second.wait_for()
    other = second.get_attribute("data-key")
    second.hover()
    second.locator(".check").click()
    page.get_by_test_id("selection-label-right").click()
    for _ in range(50):
        if ws.tags().get("mistake-rejected") == 1:
            break
        page.wait_for_timeout(100)
    assert ws.tags() == {"mistake-confirmed": 1, "mistake-rejected": 1}
    page.goto(live.url + "/runs/1/metrics")
    page.wait_for_function("() => document.querySelector('[data-testid=mistakes-panel] tr[data-detector=combined] "
                           "[data-testid=precision]')?.innerText === '50.0%'")
    mistakes.set_verdict(ws, [top, other], "clear")
