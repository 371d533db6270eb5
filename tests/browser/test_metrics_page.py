"""The metrics page on indoor-85: a histogram bar and a table number open the gallery on exactly the rows
the library says; the table sorts, has micro / macro overall rows and one number format."""

from __future__ import annotations

import math
import re

import pytest

from slicewise import metrics

pytestmark = pytest.mark.browser


def _wait_total(page, want: int) -> None:
    page.wait_for_function(
        "want => (document.querySelector('[data-testid=total]')?.innerText || '').replace(/\\D/g, '') === String(want)",
        arg=want)


def _keys(page) -> set[str]:
    return set(page.eval_on_selector_all(".tile[data-key]", "els => els.map(e => e.dataset.key)"))


def test_histogram_bar_opens_exactly_its_rows(page, live, snap):
    ws = live.ws
    page.goto(live.url + "/runs/1/metrics?hist=iou&by=split")
    chart = page.get_by_test_id("histogram")
    chart.wait_for()
    page.wait_for_function("() => document.querySelector('[data-testid=histogram]').__chart?.getOption()?.series?.length")
    # the library's answer, from the per-row table itself: rows of the first split shown whose iou is in bin i
    table = metrics.row_metrics_table(ws, 1, 0.5, 0.5)
    rows = ws.sql(f"SELECT d.global_key, d.split, m.iou FROM {table} m JOIN data_rows d ON d.id = m.data_row_id "
                  "WHERE m.iou IS NOT NULL").fetchall()
    names = page.evaluate("() => document.querySelector('[data-testid=histogram]').__chart.getOption().series.map(s => s.name)")
    split = names[0].split(" (")[0]
    by_bin: dict[int, set[str]] = {}
    for key, sp, v in rows:
        if sp == split:
            by_bin.setdefault(min(int(math.floor(v * 10)), 9), set()).add(key)
    i = max(by_bin, key=lambda b: (len(by_bin[b]) <= 60, len(by_bin[b])))  # a full bar that fits a page
    want = by_bin[i]
    page.wait_for_timeout(600)  # the entrance animation
    box = page.evaluate("i => { const c = document.querySelector('[data-testid=histogram]').__chart;"
                        " const l = c.getModel().getSeriesByIndex(0).getData().getItemLayout(i);"
                        " return [l.x + l.width / 2, l.y + l.height / 2]; }", i)
    page.evaluate("y => window.scrollTo(0, document.querySelector('[data-testid=histogram]')"
                  ".getBoundingClientRect().top + window.scrollY + y - 400)", box[1])
    bb = chart.bounding_box()
    page.mouse.click(bb["x"] + box[0], bb["y"] + box[1])
    page.wait_for_url("**/runs/1/gallery?**")
    assert "iou" in page.url and ("between" in page.url or "%3E%3D" in page.url or ">=" in page.url)
    _wait_total(page, len(want))
    page.wait_for_function("n => document.querySelectorAll('.tile[data-key]').length === n", arg=len(want))
    assert _keys(page) == want
    snap(page, "histogram-bar")


def test_feature_table_sorts_and_opens_its_rows(page, live, snap):
    ws = live.ws
    page.goto(live.url + "/runs/1/metrics")
    table = page.get_by_test_id("feature-table")
    table.locator("tr[data-feature]").first.wait_for()
    fm = metrics.feature_metrics(ws, 1, 0.5, 0.5)
    # one number format: ratios always with three decimals
    cells = table.locator("tr[data-feature] td.num").all_inner_texts()
    assert all(re.fullmatch(r"–|\d+|\d\.\d{3}", c.strip()) for c in cells), cells
    # overall rows: micro from the summed counts
    o = fm.overall()
    micro = table.locator("tr[data-overall=micro] td").all_inner_texts()
    assert micro[0] == "overall (micro)" and micro[5] == f"{o.micro_precision:.3f}" and micro[6] == f"{o.micro_recall:.3f}"
    macro = table.locator("tr[data-overall=macro] td").all_inner_texts()
    assert macro[6] == f"{o.macro_recall:.3f}"
    # sort by recall, lowest first after a second click
    table.locator("button.sort[data-col=recall]").click()
    table.locator("button.sort[data-col=recall]").click()
    shown = table.locator("tr[data-feature]").evaluate_all("els => els.map(e => e.dataset.feature)")
    want = [f.feature for f in sorted((f for f in fm if f.recall is not None), key=lambda f: f.recall)]
    assert shown[:len(want)] == want or [fm.get(n).recall for n in shown[:len(want)]] == [fm.get(n).recall for n in want]
    snap(page, "metrics-table-sorted")
    # the TP number opens the rows with at least one TP of the feature, as the library's per-(row, feature) table says
    name = want[0]
    table.locator(f"tr[data-feature='{name}'] td[data-col=tp] button").click()
    page.wait_for_url("**/runs/1/gallery?**")
    _wait_total(page, len(_feature_rows(ws, name, 0.5, "tp > 0")))


def _feature_rows(ws, feature: str, c: float, cond: str) -> dict[str, float | None]:
    """The library's answer: {global key: recall} of the rows whose (row, feature) metrics at (c, 0.5) meet cond."""
    t = metrics.row_feature_metrics_table(ws, 1, c, 0.5)
    return dict(ws.sql(f"SELECT d.global_key, m.recall FROM {t} m JOIN data_rows d ON d.id = m.data_row_id "
                       f"JOIN features f ON f.id = m.feature_id WHERE f.name = ? AND ({cond})", [feature]).fetchall())


def _small_feature(ws) -> str:
    """A box feature with a few rows (all on one gallery page) and recall values below 1."""
    fm = metrics.feature_metrics(ws, 1, 0.5, 0.5)
    ok = [f.feature for f in fm if f.kind == "bbox" and re.fullmatch(r"[A-Za-z_][\w-]*", f.feature)
          and 3 <= len(_feature_rows(ws, f.feature, 0.5, "recall IS NOT NULL")) <= 40
          and min(v for v in _feature_rows(ws, f.feature, 0.5, "recall IS NOT NULL").values()) < 1]
    assert ok, "indoor-85 has no small box feature with errors"
    return ok[0]


def test_recall_number_opens_exactly_its_rows_lowest_first(page, live, snap):
    """The seed: clicking a recall value of a class opens the gallery on the rows of that class that the
    recall is computed over (the rows with a label of it), lowest recall first."""
    ws = live.ws
    name = _small_feature(ws)
    want = _feature_rows(ws, name, 0.5, "recall IS NOT NULL")
    page.goto(live.url + "/runs/1/metrics")
    cell = page.get_by_test_id("feature-table").locator(f"tr[data-feature='{name}'] td[data-col=recall] button")
    assert cell.inner_text() == f"{metrics.feature_metrics(ws, 1, 0.5, 0.5).get(name).recall:.3f}"
    cell.click()
    page.wait_for_url("**/runs/1/gallery?**")
    _wait_total(page, len(want))
    page.wait_for_function("n => document.querySelectorAll('.tile[data-key]').length === n", arg=len(want))
    assert _keys(page) == set(want)
    first = page.eval_on_selector(".tile[data-key]", "e => e.dataset.key")
    assert want[first] == min(want.values())
    snap(page, "recall-number")


def test_pr_point_opens_exactly_its_rows(page, live, snap):
    """A grid point of a feature's PR curve opens, at its confidence, the rows with a TP, FP or FN of the feature."""
    ws = live.ws
    name = _small_feature(ws)
    page.goto(live.url + f"/runs/1/metrics?pr={name}")
    chart = page.get_by_test_id("pr-curve")
    chart.wait_for()
    page.wait_for_function("() => document.querySelector('[data-testid=pr-curve]').__chart?.getOption()?.series?.[1]?.data?.length")
    page.wait_for_timeout(600)  # the entrance animation
    pts = page.evaluate("() => document.querySelector('[data-testid=pr-curve]').__chart.getOption().series[1].data")
    curve = metrics.pr_curve(ws, 1, feature=name, iou=0.5)
    # a point below the current confidence (0.5), so that the click also moves the threshold
    i = next(k for k, p in enumerate(pts) if p[2] < 0.45)
    c = pts[i][2]
    k = list(curve.confidence).index(c)
    assert abs(pts[i][0] - curve.recall[k]) < 1e-9 and abs(pts[i][1] - curve.precision[k]) < 1e-9
    want = _feature_rows(ws, name, c, "tp > 0 OR fp > 0 OR fn > 0")
    xy = page.evaluate("p => document.querySelector('[data-testid=pr-curve]').__chart.convertToPixel({seriesIndex: 1}, p)", pts[i][:2])
    chart.scroll_into_view_if_needed()
    bb = chart.bounding_box()
    page.mouse.click(bb["x"] + xy[0], bb["y"] + xy[1])
    page.wait_for_url("**/runs/1/gallery?**")
    assert f"c={c}" in page.url
    _wait_total(page, len(want))
    page.wait_for_function("n => document.querySelectorAll('.tile[data-key]').length === n", arg=len(want))
    assert _keys(page) == set(want)
    snap(page, "pr-point")
