"""The web app against the real server on the indoor-85 workspace (real photos, real detector output).

Each test drives what a user does and checks what the page shows against the library's own answer.
Screenshots are saved under artifacts/screenshots/."""

from __future__ import annotations

import json
import re
import time

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from slicewise import metrics, query

pytestmark = pytest.mark.browser


def total(page) -> int:
    return int(re.sub(r"\D", "", page.get_by_test_id("total").inner_text()))


def wait_total(page, want: int) -> None:
    page.wait_for_function(
        "want => (document.querySelector('[data-testid=total]')?.innerText || '').replace(/\\D/g, '') === String(want)",
        arg=want)


def keys_shown(page, n: int) -> list[str]:
    return page.eval_on_selector_all(".tile[data-key]", "els => els.map(e => e.dataset.key)")[:n]


def test_runs_list_and_gallery(page, live, snap):
    page.goto(live.url + "/")
    page.get_by_text("detector").first.wait_for()
    snap(page, "runs")
    page.locator("tr.run").first.click()
    page.wait_for_url("**/runs/1/gallery")
    wait_total(page, query.count(live.ws, 1))
    page.wait_for_function("document.querySelectorAll('.tile img').length >= 10 && "
                           "[...document.querySelectorAll('.tile img')].slice(0, 10).every(i => i.complete && i.naturalWidth > 0)")
    assert page.locator(".tile").first.locator("svg rect").count() > 0  # boxes drawn over the thumbnail
    snap(page, "gallery")


def test_filter_sort_save_slice_and_reload(page, live, snap):
    ws = live.ws
    page.goto(live.url + "/runs/1/gallery")
    box = page.get_by_label("Filter query")
    box.fill("iou < 0.5")
    box.press("Enter")
    page.get_by_label("Sort by").select_option("confidence.max")  # ascending first
    want = query.search(ws, 1, "iou < 0.5", sort="confidence.max", limit=20)
    wait_total(page, want.total)
    page.wait_for_function("k => document.querySelector('.tile[data-key]')?.dataset.key === k",
                           arg=want.rows[0].global_key)
    assert keys_shown(page, 20) == [r.global_key for r in want.rows]
    assert "q=iou" in page.url and "sort=confidence.max" in page.url
    assert page.get_by_test_id("filter-chips").inner_text().startswith("iou < 0.5")
    snap(page, "gallery-filtered")
    # descending flips the order
    page.get_by_label("Sort order").click()
    desc = query.search(ws, 1, "iou < 0.5", sort="-confidence.max", limit=5)
    page.wait_for_function("k => document.querySelector('.tile[data-key]')?.dataset.key === k",
                           arg=desc.rows[0].global_key)
    # save as a slice, reload, and find it with the same count
    page.get_by_role("button", name="Save as slice").click()
    page.get_by_label("Slice name").fill("low iou rows")
    page.get_by_role("dialog").get_by_role("button", name="Save").click()
    item = page.locator('.left button[data-slice="low iou rows"]')
    item.wait_for()
    page.reload()
    item.wait_for()
    page.wait_for_function("() => /\\d/.test(document.querySelector('.left button[data-slice=\"low iou rows\"] .count').innerText)")
    assert int(item.locator(".count").inner_text()) == query.count(ws, 1, "iou < 0.5") == want.total
    # the saved slice is open: its id in the URL, its filter and sort kept by the slice, not copied to q
    assert re.search(r"[?&]slice=\d+", page.url) and "q=" not in page.url and "sort=" not in page.url
    page.locator("[data-source=slice]").first.wait_for()
    assert "iou < 0.5" in page.locator("[data-source=slice]").first.locator("button.txt").inner_text()
    assert page.get_by_label("Sort by").input_value() == "confidence.max"
    wait_total(page, want.total)
    snap(page, "slice-saved")
    # a bad filter shows the parser's message
    box.fill("iou <")
    box.press("Enter")
    err = page.get_by_test_id("filter-error")
    err.wait_for()
    assert "cannot parse filter" in err.inner_text()
    # delete the slice from the left panel
    from slicewise import slices

    page.once("dialog", lambda d: d.accept())
    item.hover()
    page.get_by_label("delete slice low iou rows").click()
    item.wait_for(state="detached")
    assert [s.name for s in slices.list_slices(ws)] == []


def test_confusion_cell_opens_exactly_its_rows(page, live, snap):
    ws = live.ws
    page.goto(live.url + "/runs/1/metrics")
    chart = page.get_by_test_id("confusion")
    chart.wait_for()
    page.wait_for_function("() => document.querySelector('[data-testid=confusion]').__chart?.getOption()?.series?.length")
    cm = metrics.confusion_matrix(ws, 1, 0.5, 0.5)
    assert cm.counts[cm.classes.index("chair")][-1] > 0  # true chair, predicted None: missed chairs
    # the page orders the classes by name (as its table) and hides empty ones: find the cell in its order
    shown = page.evaluate("() => document.querySelector('[data-testid=confusion]').__chart.getOption().xAxis[0].data")
    t, p = shown.index("chair"), shown.index("None")
    x, y = page.evaluate("([p, t]) => document.querySelector('[data-testid=confusion]').__chart"
                         ".convertToPixel({seriesIndex: 0}, [p, t])", [p, t])
    page.wait_for_timeout(600)  # let the charts finish their entrance animation
    snap(page, "metrics", full_page=True)
    # bring the cell into the viewport, then click it where a user would
    page.evaluate("y => window.scrollTo(0, document.querySelector('[data-testid=confusion]')"
                  ".getBoundingClientRect().top + window.scrollY + y - 400)", y)
    bb = chart.bounding_box()
    page.mouse.click(bb["x"] + x, bb["y"] + y)
    page.wait_for_url("**/runs/1/gallery?**")
    sql, params = metrics.confusion_cell_rows(ws, 1, 0.5, 0.5, "chair", "None")
    want = {r.global_key for r in ws.data_rows(ids=[r[0] for r in ws.sql(sql, params).fetchall()])}
    wait_total(page, len(want))
    page.get_by_test_id("cell-chip").wait_for()
    page.wait_for_function("n => document.querySelectorAll('.tile[data-key]').length === n", arg=len(want))
    assert set(keys_shown(page, 10_000)) == want
    assert json.loads(re.search(r"cell=([^&]+)", page.url).group(1).replace("%22", '"').replace("%2C", ",")
                      .replace("%5B", "[").replace("%5D", "]")) == ["chair", "None"]
    snap(page, "confusion-cell")


def test_confidence_threshold_changes_counts(page, live, snap):
    ws = live.ws
    # the library's answers first (the test does not query while the page does)
    want = {c: query.count(ws, 1, "fp > 0", confidence=c, iou=0.5) for c in (0.5, 0.6, 0.7, 0.8)}
    assert len(set(want.values())) > 1  # the counts really move with the threshold
    page.goto(live.url + "/runs/1/gallery?q=fp%20%3E%200")
    wait_total(page, want[0.5])
    slider = page.get_by_label("Confidence threshold")
    slider.focus()
    for c in (0.6, 0.7, 0.8):
        slider.press("ArrowRight")
        page.wait_for_function("c => document.querySelector('[data-testid=conf-value]').innerText === c", arg=f"{c:.2f}")
        wait_total(page, want[c])
    assert "c=0.8" in page.url
    snap(page, "threshold")


def test_detail_view_lists_the_objects(page, live, snap):
    ws = live.ws
    row = ws.data_rows(limit=1)[0]
    page.goto(live.url + f"/runs/1/gallery?row={row.id}")
    table = page.get_by_test_id("objects")
    table.wait_for()
    anns, preds = ws.annotations(row.global_key), ws.predictions(1, row.global_key)
    page.wait_for_function("n => document.querySelectorAll('[data-testid=objects] tbody tr').length === n",
                           arg=len(anns) + len(preds))
    shown = page.eval_on_selector_all("[data-testid=objects] tbody tr",
                                      "rs => rs.map(r => [r.dataset.feature, r.dataset.source, r.children[2].innerText])")
    assert [s[0] for s in shown if s[1] == "label"] == [a["feature"] for a in anns]
    assert [(s[0], float(s[2])) for s in shown if s[1] == "prediction"] == \
        [(p["feature"], round(p["confidence"], 2)) for p in preds]
    # the Match / IoU / Outcome columns are the library's row_matches at the thresholds shown
    c, t = (float(v) for v in re.findall(r"\d+\.\d+", page.locator("h4 .muted").first.inner_text()))
    want = metrics.row_matches(ws, 1, row.id, c, t)
    got = page.eval_on_selector_all("[data-testid=objects] tbody tr", """rs => rs.map(r => [r.dataset.source,
        Number(r.dataset.objectId), r.dataset.outcome, r.dataset.matchId, r.children[4].innerText, r.children[5].innerText])""")
    assert [g[:4] for g in got] == [[o["source"], o["object_id"], o["outcome"] or "",
                                     "" if o["match_id"] is None else str(o["match_id"])] for o in want]
    for g, o in zip(got, want, strict=True):
        assert g[4] == ("–" if o["iou"] is None else f"{o['iou']:.2f}")
        assert g[5] == ({"confusion": f"confused with {o['match_class']}", None: "–"}.get(o["outcome"], o["outcome"]))
    assert {o["outcome"] for o in want} & {"TP", "confusion"}, "pick a row with a match for this test"
    # hovering a matched object's line highlights it and its match on the image, and fades the others
    i = next(i for i, o in enumerate(want) if o["match_id"] is not None and o["source"] == "prediction")
    page.locator("[data-testid=objects] tbody tr").nth(i).hover()
    keys = {f"prediction:{want[i]['object_id']}", f"label:{want[i]['match_id']}"}
    page.wait_for_function("ks => ks.every(k => document.querySelector(`.viewer g[data-key='${k}']`)?.getAttribute('opacity') === '1')",
                           arg=sorted(keys))
    faded = page.eval_on_selector_all(".viewer g[data-key]", "gs => gs.filter(g => g.getAttribute('opacity') !== '1').length")
    assert faded == page.eval_on_selector_all(".viewer g[data-key]", "gs => gs.length") - 2 > 0
    page.mouse.move(5, 5)
    page.wait_for_function("() => document.querySelector('.viewer img')?.naturalWidth > 0")
    snap(page, "detail")
    page.get_by_role("button", name="Next").click()
    nxt = query.search(ws, 1, limit=2).rows[1]
    page.wait_for_function("k => document.querySelector('.drawer h3')?.innerText === k", arg=nxt.global_key)
    assert f"row={nxt.data_row_id}" in page.url
    page.keyboard.press("Escape")
    assert "row=" not in page.url


def test_failed_job_is_retried_from_the_banner(page, live, snap, monkeypatch):
    from slicewise.metrics import engine

    def broken(*args, **kwargs):
        raise RuntimeError("injected failure: the matcher crashed")

    monkeypatch.setattr(engine, "_compute", broken)
    with pytest.raises(RuntimeError):
        metrics.retry(live.ws, 1)
    assert metrics.job_status(live.ws, 1).state == "failed"
    page.goto(live.url + "/runs/1/gallery")
    banner = page.get_by_test_id("job-banner")
    banner.wait_for()
    assert banner.get_attribute("data-state") == "failed"
    assert "injected failure" in banner.inner_text()
    snap(page, "job-failed")
    monkeypatch.undo()
    banner.get_by_role("button", name="Retry").click()
    page.wait_for_selector("[data-testid=job-banner]", state="detached", timeout=30_000)
    assert metrics.job_status(live.ws, 1).state == "ready"


def test_select_and_tag(page, live, snap):
    ws = live.ws
    page.goto(live.url + "/runs/1/gallery?q=fp%20%3E%200")
    wait_total(page, query.count(ws, 1, "fp > 0"))
    tiles = page.locator(".tile[data-key]")
    keys = [tiles.nth(i).get_attribute("data-key") for i in range(2)]
    for i in range(2):
        tiles.nth(i).hover()
        tiles.nth(i).locator("input.check").check()
    bar = page.get_by_test_id("selection-bar")
    assert "2 selected" in bar.inner_text()
    page.get_by_label("Tag name").fill("re-label")
    page.get_by_role("button", name="Add tag").click()
    page.wait_for_function("() => document.querySelector('.left')?.innerText.includes('#re-label')")
    assert {r.global_key for r in ws.data_rows(keys=keys)} == set(keys)
    assert all("re-label" in r.tags for r in ws.data_rows(keys=keys)) and ws.tags()["re-label"] == 2
    snap(page, "selection")
    # select every matching row, then take the tag off them all
    bar.get_by_role("button", name=re.compile("Select all")).click()
    page.wait_for_function("n => document.querySelector('[data-testid=selection-bar]').innerText.includes(n + ' selected')",
                           arg=query.count(ws, 1, "fp > 0"))
    page.get_by_label("Tag name").fill("re-label")
    page.get_by_role("button", name="Remove tag").click()
    page.wait_for_function("() => !document.querySelector('.left')?.innerText.includes('#re-label')")
    assert ws.tags().get("re-label", 0) == 0


def test_threshold_grid_settings(page, live, snap):
    page.goto(live.url + "/runs/1/gallery")
    page.get_by_label("Threshold settings").click()
    dialog = page.get_by_role("dialog", name="Threshold grids")
    dialog.get_by_label("Confidence values").fill("0.5 to 0.6 step 0.05")
    snap(page, "grid-settings")
    dialog.get_by_role("button", name="Save grids").click()
    dialog.wait_for(state="detached")
    assert metrics.grids(live.ws, 1)[0] == (0.5, 0.55, 0.6)
    # the grid edit recomputes in the background (no "Update metrics" to press); the slider snaps into the grid
    page.wait_for_function("() => ['0.50', '0.55', '0.60'].includes(document.querySelector('[data-testid=conf-value]')?.innerText)")
    deadline = time.time() + 30
    while metrics.job_status(live.ws, 1).state != "ready" and time.time() < deadline:
        time.sleep(0.1)
    assert metrics.job_status(live.ws, 1).state == "ready"
    page.wait_for_function("() => !document.querySelector('[data-testid=job-banner]')", timeout=30_000)


def _server_total(live, **params) -> int:
    from urllib.parse import urlencode
    from urllib.request import urlopen

    with urlopen(f"{live.url}/api/rows?{urlencode({**params, 'limit': 1, 'overlays': 'false'})}") as r:
        return int(json.load(r)["total"])


def test_slice_and_added_clause_are_anded(page, live, snap):
    from slicewise import slices

    ws = live.ws
    s = slices.create_slice(ws, "chairs on valid", "has:chair and split = valid")
    try:
        own = query.count(ws, 1, s.filter)
        both = query.count(ws, 1, f"({s.filter}) and fp > 0")
        edited = query.count(ws, 1, "has:chair and fp > 0")
        assert len({own, both, edited, query.count(ws, 1, "fp > 0")}) == 4  # each step shows other rows
        assert _server_total(live, run=1, slice=s.id, q="fp > 0") == both  # the server ANDs the slice with q

        page.goto(live.url + "/runs/1/gallery")
        for attempt in range(3):  # (the auto slices, listed above it, may load as it is clicked and move it)
            page.locator('.left button[data-slice="chairs on valid"]').click()
            try:
                page.wait_for_url(re.compile(rf"[?&]slice={s.id}(&|$)"), timeout=5_000)
                break
            except PlaywrightTimeout:
                if attempt == 2:
                    raise
        assert "q=" not in page.url  # opening a slice puts its id in the URL, not its filter
        wait_total(page, own)
        chips = page.locator("[data-source=slice]")
        page.wait_for_function("() => document.querySelectorAll('[data-source=slice]').length === 2")
        assert "has:chair" in chips.first.inner_text()
        # + Add filter: fp > 0
        page.get_by_role("button", name="+ Add filter").click()
        pop = page.get_by_role("dialog", name="Add filter")
        pop.get_by_label("Filter kind").select_option("metric")
        pop.get_by_label("Metric").select_option("fp")
        pop.locator(".pair select").select_option(">")
        pop.locator(".pair input").fill("0")
        assert pop.locator(".preview").inner_text() == "fp > 0"
        pop.get_by_role("button", name="Add", exact=True).click()
        page.wait_for_url(re.compile(r"q=fp"))
        assert f"slice={s.id}" in page.url and "edit=" not in page.url
        page.locator("[data-source=query]").first.wait_for()
        assert page.locator("[data-source=query]").all_inner_texts()[0].startswith("fp > 0")
        assert chips.count() == 2  # the slice's own clauses stay, marked as the slice's
        wait_total(page, both)
        snap(page, "slice-and-clause")

        # removing one of the slice's own clauses leaves the slice: the whole edited filter goes to q
        chips.nth(1).get_by_role("button", name=re.compile("remove slice filter")).click()
        page.wait_for_url(re.compile(rf"edit={s.id}"))
        assert "slice=" not in page.url
        page.get_by_test_id("editing-slice").wait_for()
        wait_total(page, edited)
        assert page.get_by_label("Filter query").input_value() == "has:chair and fp > 0"
        # ...and "Update slice" saves it into the slice being edited, which then opens with nothing added
        page.get_by_role("button", name="Update slice").click()
        dialog = page.get_by_role("dialog", name="Update slice")
        page.wait_for_function("() => document.querySelector('[aria-label=\"Slice name\"]')?.value === 'chairs on valid'")
        dialog.get_by_role("button", name="Update").click()
        page.wait_for_url(re.compile(rf"[?&]slice={s.id}(&|$)"))
        assert "edit=" not in page.url and "q=" not in page.url
        assert query.count(ws, 1, slices.get_slice(ws, s.id).filter) == edited
        wait_total(page, edited)
        # back, forward and reload replay the URL's state
        page.go_back()
        page.wait_for_url(re.compile(rf"edit={s.id}"))
        page.get_by_test_id("editing-slice").wait_for()
        wait_total(page, edited)
        page.go_back()
        page.wait_for_url(re.compile(rf"slice={s.id}.*q=fp|q=fp.*slice={s.id}"))
        page.reload()
        page.wait_for_function("() => document.querySelectorAll('[data-source=slice]').length === 2")
        assert page.get_by_label("Filter query").input_value() == "fp > 0"
        wait_total(page, query.count(ws, 1, "has:chair and fp > 0 and fp > 0"))
    finally:
        slices.delete_slice(ws, s.id)


def test_thresholds_are_the_runs_own(page, live, snap):
    ws = live.ws
    # the run's own view thresholds: grid values other than the ones nearest 0.5 (the old UI's pick)
    cg, tg = metrics.grids(ws, 1)
    c, t = max(v for v in cg if v <= 0.8), max(v for v in tg if v <= 0.7)
    assert (c, t) != query.thresholds(ws, 1)
    ws.update_run_config(1, view_confidence=c, view_iou=t)
    try:
        want = query.count(ws, 1, "fp > 0")  # at the run's own thresholds
        assert query.thresholds(ws, 1) == (c, t) and want != query.count(ws, 1, "fp > 0", confidence=0.5, iou=0.5)
        page.goto(live.url + "/runs/1/gallery?q=fp%20%3E%200")
        page.wait_for_function("c => document.querySelector('[data-testid=conf-value]')?.innerText === c", arg=f"{c:.2f}")
        assert page.get_by_test_id("iou-value").inner_text() == f"{t:.2f}"
        wait_total(page, want)
        assert "c=" not in page.url and "t=" not in page.url
        snap(page, "run-thresholds")
        page.get_by_role("tab", name="Metrics").click()
        page.wait_for_function("s => document.querySelector('[data-testid=metrics-thresholds]')?.innerText.startsWith(s)",
                               arg=f"confidence {c:.2f} · IoU {t:.2f}")
    finally:
        ws.update_run_config(1, view_confidence=None, view_iou=None)
