"""The API of the metrics page's new pieces answers what the library computes: per-class metrics, the run
ontology (read and set), auto-slice parameters (set; an off-grid mislabel confidence refused with 422)."""

from __future__ import annotations

import json

import pytest

import slicewise
from slicewise import metrics, slices


@pytest.fixture
def api(tmp_path):
    from fastapi.testclient import TestClient

    from slicewise.server import create_app

    path = tmp_path / "w.duckdb"
    with slicewise.open(path) as ws:
        ws.add_data_rows("d", [{"global_key": f"r{i}", "row_data": "x", "width": 100, "height": 100} for i in range(4)])
        ws.create_feature("cat", "bbox")
        ws.create_feature("weather", "radio", ["sun", "rain"])
        ws.add_annotations([{"data_row": "r0", "feature": "cat", "bbox": [0, 0, 10, 10]},
                            {"data_row": "r1", "feature": "weather", "answer": "sun"},
                            {"data_row": "r2", "feature": "weather", "answer": "rain"}])
        run = ws.create_run("det", "v1")
        ws.add_predictions(run, [{"data_row": "r0", "feature": "cat", "bbox": [0, 0, 10, 9], "confidence": 0.9},
                                 {"data_row": "r1", "feature": "weather", "answer": "rain", "confidence": 0.95},
                                 {"data_row": "r2", "feature": "weather", "answer": "rain", "confidence": 0.7}])
        ws.add_run_rows(run, [f"r{i}" for i in range(4)])
        metrics.compute_metrics(ws, run)
    with TestClient(create_app(path)) as c:
        yield c, c.app.state.sw.ws


def test_classes_endpoint_equals_the_library(api):
    client, ws = api
    body = client.get("/api/runs/1/metrics/classes", params={"confidence": 0.5, "iou": 0.5}).json()
    ref = json.loads(json.dumps(metrics.class_metrics(ws, 1, 0.5, 0.5).to_dict()))
    assert body["classes"] == ref["classes"] and body["overall"] == ref["overall"]
    rows = {r["name"]: r for r in body["classes"]}
    assert (rows["weather: rain"]["tp"], rows["weather: rain"]["fp"], rows["weather: sun"]["fn"]) == (1, 1, 1)


def test_ontology_endpoints(api):
    client, ws = api
    onto = client.get("/api/runs/1/ontology").json()
    assert not onto["explicit"] and {f["feature"]: f["media_types"] for f in onto["features"]} == {
        "cat": ["image"], "weather": ["image"]}
    res = client.put("/api/runs/1/ontology", json={"features": {"cat": ["image"]}})
    assert res.status_code == 200 and res.json()["explicit"]
    tn = dict(ws.sql(f"SELECT data_row_id, tn FROM {metrics.row_metrics_table(ws, 1, 0.5, 0.5)} ORDER BY 1").fetchall())
    assert list(tn.values()) == [0, 1, 1, 1]  # only cat counts now: r1..r3 have none
    bad = client.put("/api/runs/1/ontology", json={"features": {"cat": ["video"]}})
    assert bad.status_code == 422 and "media types" in bad.text
    assert client.put("/api/runs/1/ontology", json={"features": None}).json()["explicit"] is False


def test_auto_params_endpoint(api):
    client, ws = api
    res = client.put("/api/runs/1/auto-slices/params", json={"mislabel_confidence": 0.8})
    assert res.status_code == 200
    cm = next(s for s in res.json() if s["auto_key"] == "candidate-mislabels")
    assert cm["filter"] == "fp@0.8 > 0" and cm["description"].startswith("FP with confidence >= 0.8")
    assert cm["count"] == slices.slice_count(ws, slices.auto_slice(ws, 1, "candidate-mislabels"), 1)  # r1
    bad = client.put("/api/runs/1/auto-slices/params", json={"mislabel_confidence": 0.85})
    assert bad.status_code == 422 and "not on the run's confidence grid" in bad.text
    assert slices.auto_params(ws, 1)["mislabel_confidence"] == 0.8


def test_calibration_endpoint(api):
    client, ws = api
    body = client.get("/api/runs/1/metrics/calibration", params={"confidence": 0.5, "iou": 0.5, "bins": 5}).json()
    ref = json.loads(json.dumps(metrics.calibration(ws, 1, 0.5, 0.5, n_bins=5).to_dict()))
    assert body["overall"] == ref["overall"] and body["classes"] == ref["classes"] and body["n_bins"] == 5
    assert body["overall"]["n"] == 3  # cat 0.9 (TP), rain 0.95 (wrong), rain 0.7 (right)
