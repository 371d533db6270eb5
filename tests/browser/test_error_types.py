"""The metrics page's error-types chart on indoor-85: a bar opens the gallery on exactly the rows the
library says have an error of that type (TIDE, at the page's thresholds)."""

from __future__ import annotations

import pytest

from slicewise.metrics.tide import FP_TYPES, error_rows_table, error_types

pytestmark = pytest.mark.browser


def test_error_type_bar_opens_exactly_its_rows(page, live, snap):
    ws = live.ws
    page.goto(live.url + "/runs/1/metrics")
    chart = page.get_by_test_id("error-types-chart")
    chart.wait_for()
    page.wait_for_function("() => document.querySelector('[data-testid=error-types-chart]').__chart?.getOption()?.series?.length")
    res = error_types(ws, 1, 0.5, 0.5)
    shown = page.evaluate("() => document.querySelector('[data-testid=error-types-chart]').__chart.getOption()"
                          ".series[1].data")
    assert shown == [res.overall.counts[t] for t in res.to_dict()["types"]]
    # the library's answer: the rows with at least one error of the type (the one with the most rows that fits a page)
    table = error_rows_table(ws, 1, 0.5, 0.5)
    by_type = {t: {k for (k,) in ws.sql(f'SELECT d.global_key FROM {table} e JOIN data_rows d ON d.id = e.data_row_id '
                                         f'WHERE e."{t}" > 0').fetchall()} for t in FP_TYPES}
    name = max(FP_TYPES, key=lambda t: (0 < len(by_type[t]) <= 60, len(by_type[t])))
    want = by_type[name]
    assert want
    i = res.to_dict()["types"].index(name)
    page.wait_for_timeout(600)  # the entrance animation
    box = page.evaluate("i => { const c = document.querySelector('[data-testid=error-types-chart]').__chart;"
                        " const l = c.getModel().getSeriesByIndex(1).getData().getItemLayout(i);"
                        " return [l.x + l.width / 2, l.y + l.height / 2]; }", i)
    page.evaluate("y => window.scrollTo(0, document.querySelector('[data-testid=error-types-chart]')"
                  ".getBoundingClientRect().top + window.scrollY + y - 400)", box[1])
    bb = chart.bounding_box()
    page.mouse.click(bb["x"] + box[0], bb["y"] + box[1])
    page.wait_for_url("**/runs/1/gallery?**")
    assert f"error%3A{name}" in page.url or f"error:{name}" in page.url
    page.wait_for_function(
        "want => (document.querySelector('[data-testid=total]')?.innerText || '').replace(/\\D/g, '') === String(want)",
        arg=len(want))
    page.wait_for_function("n => document.querySelectorAll('.tile[data-key]').length === n", arg=len(want))
    keys = set(page.eval_on_selector_all(".tile[data-key]", "els => els.map(e => e.dataset.key)"))
    assert keys == want
    snap(page, "error-type-bar")
