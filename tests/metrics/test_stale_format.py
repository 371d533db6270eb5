"""Records written by an older metrics schema are reported stale and recomputed, never read half-filled."""

from __future__ import annotations

import json

from slicewise import metrics


def test_job_from_an_older_metrics_format_is_stale_until_recomputed(ws):
    ws.add_data_rows("d", [{"global_key": "a", "row_data": "a.png"}])
    ws.add_annotations([{"data_row": "a", "feature": "car", "bbox": [0, 0, 10, 10]}], create_features=True)
    run = ws.create_run("m", "r")
    ws.add_predictions(run, [{"data_row": "a", "feature": "car", "bbox": [0, 0, 10, 10], "confidence": 0.9}])
    assert metrics.compute_metrics(ws, run).state == "ready"
    with ws.store.transaction() as con:  # as a job written before the last metrics migration left it
        con.execute("UPDATE metric_jobs SET settings = ?", [json.dumps({"mode": "class-agnostic", "radius": 70.0})])
        ws.store.touch("metric_job", run=run.id)  # a write says what it changed (job_status is remembered)
    assert metrics.job_status(ws, run).state == "stale"
    assert metrics.compute_metrics(ws, run).state == "ready"
