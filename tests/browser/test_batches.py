"""The curation loop in the browser (indoor-85, real detector output): select rows in the gallery -> "+ Add to
batch" -> the Batches page lists the batch with its count -> export it for Label Studio (a download whose
tasks carry the run's predictions); "Send to rework" moves the selection to the rework queue."""

from __future__ import annotations

import json

import pytest

from slicewise import query
from slicewise.curation import batches, queue

pytestmark = pytest.mark.browser


def test_add_to_batch_and_export(page, live, snap, tmp_path):
    ws = live.ws
    page.goto(live.url + "/runs/1/gallery?q=fp%20%3E%200&sort=-confidence.max")
    want = query.search(ws, 1, "fp > 0", sort="-confidence.max", limit=3)
    page.wait_for_function("k => document.querySelector('.tile[data-key]')?.dataset.key === k",
                           arg=want.rows[0].global_key)
    tiles = page.locator(".tile[data-key]")
    for i in range(3):
        tiles.nth(i).hover()
        tiles.nth(i).locator("input.check").check()
    page.get_by_test_id("add-to-batch").click()
    dialog = page.get_by_role("dialog", name="Add to batch")
    dialog.get_by_label("Batch name").fill("confident FPs")
    dialog.get_by_label("Batch priority").fill("2")
    dialog.get_by_label("Batch note").fill("check the boxes")
    snap(page, "batch-dialog")
    dialog.get_by_role("button", name="Create batch").click()
    page.get_by_test_id("curation-note").filter(has_text="3 row(s) added").wait_for()
    snap(page, "batch-added")
    b = batches.get_batch(ws, "confident FPs")
    assert (b.count, b.priority, b.note) == (3, 2, "check the boxes")
    assert batches.batch_keys(ws, b.id) == [r.global_key for r in want.rows]
    # the left panel lists the batch; the gallery filter batch:NAME shows exactly its rows
    page.locator(".left [data-batch='confident FPs']").click()
    page.wait_for_function("() => (document.querySelector('[data-testid=total]')?.innerText || '').replace(/\\D/g, '') === '3'")
    assert "batch%3A%22confident+FPs%22" in page.url or "batch:" in page.url

    # "Send to rework" on one selected row
    page.get_by_test_id("selection-bar").get_by_role("button", name="Clear", exact=True).click()
    page.locator(".tile[data-key]").first.hover()
    page.locator(".tile[data-key]").first.locator("input.check").check()
    page.get_by_test_id("send-to-rework").click()
    page.get_by_test_id("curation-note").filter(has_text="1 row(s) sent to rework").wait_for()
    assert queue.queue_counts(ws) == {"to_label": 2, "rework": 1}

    # the Batches page: the batch with its count, status and queue states; export downloads the tasks
    page.get_by_role("link", name="Batches").click()
    page.wait_for_url("**/batches")
    row = page.locator("tr[data-batch='confident FPs']")
    row.wait_for()
    assert row.get_by_test_id("batch-count").inner_text() == "3"
    cells = row.locator("td").all_inner_texts()
    assert cells[1:8] == ["3", "in progress", "2", "2", "0", "1", "0"]  # rows, status, priority, per queue state
    counts = page.get_by_test_id("queue-counts")
    assert [counts.locator(f"[data-state={s}] .count").inner_text() for s in queue.STATES] == ["2", "0", "1", "0"]
    snap(page, "batches")
    with page.expect_download() as dl:
        row.get_by_test_id("export").click()
    path = tmp_path / dl.value.suggested_filename
    dl.value.save_as(path)
    assert dl.value.suggested_filename == "confident_FPs.labelstudio.json"
    tasks = json.loads(path.read_text())
    assert [t["data"]["global_key"] for t in tasks] == [r.global_key for r in want.rows]
    assert all(t["predictions"][0]["model_version"] == ws.run(1).ref for t in tasks)
    assert sum(len(t["predictions"][0]["result"]) for t in tasks) > 0
    assert batches.get_batch(ws, "confident FPs").exported_as == "labelstudio"

    # the dialog's other choice: the first N rows of the view, in its order (the top N of a sort)
    page.goto(live.url + "/runs/1/gallery?sort=confidence.max")
    lowest = query.search(ws, 1, None, sort="confidence.max", limit=5)
    page.wait_for_function("k => document.querySelector('.tile[data-key]')?.dataset.key === k",
                           arg=lowest.rows[0].global_key)
    page.locator(".tile[data-key]").first.hover()
    page.locator(".tile[data-key]").first.locator("input.check").check()
    page.get_by_test_id("add-to-batch").click()
    dialog = page.get_by_role("dialog", name="Add to batch")
    dialog.get_by_label("First rows of the view").check()
    dialog.get_by_label("How many rows").fill("5")
    dialog.get_by_label("Batch name").fill("least sure")
    dialog.get_by_role("button", name="Create batch").click()
    page.wait_for_function("() => !document.querySelector('[role=dialog]')")
    b = batches.get_batch(ws, "least sure")
    assert batches.batch_keys(ws, b.id) == [r.global_key for r in lowest.rows]
    assert b.source == "top 5 of: sort confidence.max"
