"""The Catalog (every data row of the workspace, labelled or not) and Find similar, against the real server on
the indoor-85 workspace plus an unlabeled pool: select rows -> Find similar -> filter `annotation is none` ->
save as a slice; the rows shown and saved are what the library's `similar` answers for the same request."""

from __future__ import annotations

import re

import numpy as np
import pytest

from slicewise import embeddings, slices
from slicewise.view import View

pytestmark = pytest.mark.browser

POOL = 40  # unlabeled rows added to the catalog (copies of labelled images under new keys)


@pytest.fixture(scope="module")
def pool(live):
    ws = live.ws
    rows = ws.data_rows()
    src = rows[:POOL]
    ws.add_data_rows("unlabeled-pool", [{"global_key": f"pool-{i}", "row_data": r.row_data, "width": r.width,
                                         "height": r.height} for i, r in enumerate(src)])
    every = ws.data_rows()
    rng = np.random.default_rng(7)
    vecs = rng.normal(size=(len(every), 32)).astype(np.float32)
    by_key = {r.global_key: i for i, r in enumerate(every)}
    for i, r in enumerate(src):  # a pool row looks like the labelled row it copies
        vecs[by_key[f"pool-{i}"]] = vecs[by_key[r.global_key]] + 0.3 * rng.normal(size=32)
    embeddings.add_vectors(ws, "look", [r.global_key for r in every], vecs)
    return every


def total(page) -> int:
    return int(re.sub(r"\D", "", page.get_by_test_id("total").inner_text()))


def wait_total(page, want: int) -> None:
    page.wait_for_function(
        "want => (document.querySelector('[data-testid=total]')?.innerText || '').replace(/\\D/g, '') === String(want)",
        arg=want)


def test_catalog_is_in_the_navigation_and_holds_every_row(page, live, pool, snap):
    page.goto(live.url + "/")
    page.get_by_role("link", name="Catalog", exact=True).click()
    page.wait_for_url("**/catalog")
    wait_total(page, len(pool))
    box = page.get_by_label("Filter query")
    box.fill("annotation is none")
    box.press("Enter")
    wait_total(page, POOL)
    snap(page, "catalog")


def test_find_similar_then_unlabeled_then_save_slice(page, live, pool, snap):
    ws = live.ws
    page.goto(live.url + "/runs/1/gallery")
    tiles = page.locator(".tile[data-key]")
    tiles.first.wait_for()
    anchors_keys = [tiles.nth(i).get_attribute("data-key") for i in range(3)]
    for i in range(3):
        tiles.nth(i).hover()
        tiles.nth(i).locator("input.check").check()
    bar = page.get_by_test_id("selection-bar")
    assert "3 selected" in bar.inner_text()
    bar.get_by_test_id("find-similar").click()
    # the catalog, sorted by similarity to the anchors, with the score on each tile
    page.wait_for_url(re.compile(r"/catalog\?.*similar_space=look"))
    page.get_by_test_id("similar-chip").wait_for()
    by_key = {r.global_key: r.id for r in pool}
    anchors = [by_key[k] for k in anchors_keys]
    top = embeddings.similar(ws, "look", anchors, k=50)
    wait_total(page, len(top))
    page.wait_for_function("k => document.querySelector('.tile[data-key]')?.dataset.key === k",
                           arg=next(r.global_key for r in pool if r.id == top[0][0]))
    shown = page.eval_on_selector_all(".tile[data-id]", "els => els.map(e => Number(e.dataset.id))")
    assert shown == [i for i, _ in top][: len(shown)]
    first_score = float(page.locator(".tile .simv").first.inner_text())
    assert first_score == pytest.approx(top[0][1], abs=1e-3)
    snap(page, "find-similar")
    # keep only unlabeled look-alikes
    box = page.get_by_label("Filter query")
    box.fill("annotation is none")
    box.press("Enter")
    want = embeddings.similar(ws, "look", anchors, k=50, view=View(filter="annotation is none"))
    got_ids = [i for i, _ in want]
    wait_total(page, len(got_ids))
    page.wait_for_function("ids => [...document.querySelectorAll('.tile[data-id]')].map(e => Number(e.dataset.id)).join() === ids.join()",
                           arg=got_ids)
    assert all(k.startswith("pool-") for k in page.eval_on_selector_all(".tile[data-key]", "els => els.map(e => e.dataset.key)"))
    # save as a slice: it keeps the anchors (and so picks up future similar rows)
    page.get_by_role("button", name="Save as slice").click()
    page.get_by_label("Slice name").fill("night look-alikes")
    page.get_by_role("dialog").get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"slice=\d+"))
    saved = next(s for s in slices.list_slices(ws) if s.name == "night look-alikes")
    rows = View(slice=saved.id).resolve(ws).ids(1000)[1]
    assert rows == got_ids
    wait_total(page, len(got_ids))
    snap(page, "find-similar-slice")


def test_open_in_catalog_shows_exactly_the_selection(page, live, pool):
    page.goto(live.url + "/runs/1/gallery")
    tiles = page.locator(".tile[data-key]")
    tiles.first.wait_for()
    keys = [tiles.nth(i).get_attribute("data-key") for i in (0, 2)]
    for i in (0, 2):
        tiles.nth(i).hover()
        tiles.nth(i).locator("input.check").check()
    page.get_by_test_id("open-in-catalog").click()
    page.wait_for_url(re.compile(r"/catalog\?q=global_key"))
    wait_total(page, 2)
    assert sorted(page.eval_on_selector_all(".tile[data-key]", "els => els.map(e => e.dataset.key)")) == sorted(keys)
    assert "2 selected" in page.get_by_test_id("selection-bar").inner_text()
