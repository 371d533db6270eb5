"""The run view's "Select for labelling" dialog on indoor-85 (real detector output): least confidence over the
run's rows makes a batch of exactly the rows the library picks, and "Open the batch" shows them."""

from __future__ import annotations

import pytest

from slicewise.curation.active import select_rows

pytestmark = pytest.mark.browser


def test_select_for_labelling_makes_a_batch(page, live, snap):
    want = select_rows(live.ws, "", 6, strategy="least_confidence", run=1)
    assert len(want.rows) == 6
    page.goto(live.url + "/runs/1/gallery")
    page.get_by_role("button", name="Select for labelling").click()
    dlg = page.get_by_role("dialog", name="Select for labelling")
    dlg.get_by_label("Pool filter").fill("")
    dlg.get_by_label("Strategy").select_option("least_confidence")
    dlg.get_by_label("Rows to select").fill("6")
    dlg.get_by_label("Batch name").fill("uncertain six")
    dlg.get_by_role("button", name="Create batch").click()
    dlg.get_by_text("Batch uncertain six: 6 of").wait_for()
    keys = dlg.locator("td.key").all_inner_texts()
    assert keys == want.keys
    snap(page, "select-for-labelling")
    from slicewise.curation.batches import batch_keys, get_batch

    assert batch_keys(live.ws, "uncertain six") == want.keys
    assert get_batch(live.ws, "uncertain six").source.startswith("select least_confidence run:")
    dlg.get_by_role("button", name="Open the batch").click()
    page.wait_for_url("**/runs/1/gallery?**")
    page.wait_for_function("() => document.querySelectorAll('.tile[data-key]').length === 6")
    shown = set(page.eval_on_selector_all(".tile[data-key]", "els => els.map(e => e.dataset.key)"))
    assert shown == set(want.keys)


def test_catalog_diversity_batch(page, live):
    import numpy as np

    from slicewise import embeddings

    ws = live.ws
    keys = [r.global_key for r in ws.data_rows()]
    embeddings.add_vectors(ws, "px", keys, np.random.default_rng(4).normal(size=(len(keys), 6)))
    want = select_rows(ws, "", 4, strategy="diversity", space="px")
    page.goto(live.url + "/catalog")
    page.get_by_role("button", name="Select for labelling").click()
    dlg = page.get_by_role("dialog", name="Select for labelling")
    assert dlg.get_by_label("Strategy").locator("option").all_inner_texts() == ["Diversity (k-center)", "Random"]
    dlg.get_by_label("Pool filter").fill("")
    dlg.get_by_label("Rows to select").fill("4")
    dlg.get_by_label("Embedding space").select_option("px")
    dlg.get_by_label("Batch name").fill("spread four")
    dlg.get_by_role("button", name="Create batch").click()
    dlg.get_by_text("Batch spread four: 4 of").wait_for()
    assert dlg.locator("td.key").all_inner_texts() == want.keys
