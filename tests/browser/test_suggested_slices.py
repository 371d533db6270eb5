"""The Slices tab on a workspace with a planted slice (night rows misclassified far more often): the
suggested slices list it without being told, one click saves it as a slice whose filter selects exactly
the suggestion's rows, and the slice history charts it over the model's three runs, with its drops marked."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .conftest import CHROMIUM, STATIC, LiveServer, _free_port, open_page

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def planted(planted_world, tmp_path_factory):
    if not STATIC.exists():
        pytest.skip("the web app is not built (run `make web`)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (run `make browser`)")
    from slicewise.server import create_app

    path = tmp_path_factory.mktemp("planted-live") / "planted.duckdb"
    shutil.copy(planted_world[0], path)
    world = planted_world[1]
    with LiveServer(create_app(path), _free_port()) as srv:
        yield srv, world


def test_suggested_slice_saved_in_one_click(planted, browser, snap):
    from slicewise import slices
    from slicewise.slices.suggest import discover

    srv, world = planted
    pg = next(gen := open_page(browser))
    pg.goto(srv.url + "/runs/1/slices")
    row = pg.get_by_test_id("suggestion").first
    row.wait_for()
    assert row.get_attribute("data-filter") == "metadata.lighting = night"
    row.get_by_test_id("save-suggestion").click()
    pg.get_by_test_id("saved").first.wait_for()
    saved = [s for s in slices.list_slices(srv.ws, run=1) if s.filter == "metadata.lighting = night"
             and (s.description or "").startswith("suggested by slice discovery")]
    assert len(saved) == 1
    # the saved filter selects exactly the suggestion's rows: the planted night rows
    ids = {r.id for r in srv.ws.data_rows() if r.metadata["lighting"] == "night"}
    got = {r.data_row_id for r in slices.slice_rows(srv.ws, saved[0].id, 1, limit=10_000).rows}
    assert got == ids
    sug = discover(srv.ws, 1).suggestions[0]
    assert sug.rows == len(ids)
    # the left panel lists the new slice, and the history shows it over both runs
    pg.locator(".left", has_text=saved[0].name).first.wait_for()
    chart = pg.locator(f"[data-testid=history-chart][data-slice='{saved[0].name}']")
    chart.wait_for()
    assert chart.get_by_test_id("regressions").inner_text() == "▼ 2"  # night gets worse in v2 and v3
    snap(pg, "suggested-slices", full_page=True)
    next(gen, None)
