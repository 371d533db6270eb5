"""The curation API: a batch from a selection, its export as a download, labels back as an upload (metrics
recompute in the background), rework on a filter, and batch:/queue: in the gallery's filters and facets."""

from __future__ import annotations

import json
import time

import pytest

from slicewise import metrics


@pytest.fixture
def client(ws, scene):
    from fastapi.testclient import TestClient

    from slicewise.server import create_app

    path = ws.path
    ws.close()
    with TestClient(create_app(path)) as c:
        yield c


def test_batches_api(client):
    ws = client.app.state.sw.ws
    ids = [ws.data_row(k).id for k in ("b", "d")]
    r = client.post("/api/batches", json={"name": "from gallery", "ids": ids, "priority": 1, "note": "check"})
    assert r.status_code == 201, r.text
    assert (r.json()["count"], r.json()["status"], r.json()["states"]) == (2, "new", {"to_label": 2})
    r = client.post("/api/batches", json={"name": "lowest", "run": "det/v1", "sort": "confidence.max", "top": 1})
    assert r.json()["count"] == 1 and r.json()["source"] == "sort:confidence.max run:det/v1"
    assert client.post("/api/batches", json={"name": "lowest", "ids": ids}).status_code == 409
    assert [b["name"] for b in client.get("/api/batches").json()] == ["from gallery", "lowest"]
    rows = client.get("/api/rows", params={"run": "det/v1", "q": "batch:\"from gallery\""}).json()
    assert [x["global_key"] for x in rows["rows"]] == ["b", "d"]
    f = client.get("/api/facets", params={"run": "det/v1"}).json()
    assert f["batches"] == {"from gallery": 2, "lowest": 1} and f["queue"] == {"to_label": 3}

    r = client.get("/api/batches/from gallery/export", params={"format": "labelstudio", "run": "det/v1"})
    assert r.status_code == 200 and r.headers["content-disposition"] == 'attachment; filename="from_gallery.labelstudio.json"'
    tasks = r.json()
    for t in tasks:  # the labeller accepts every pre-annotation
        t["annotations"] = [{"completed_by": 5, "result": t["predictions"][0]["result"]}]
    r = client.post("/api/batches/from gallery/labels", files={"file": ("export.json", json.dumps(tasks).encode())},
                    data={"to": "in_review"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["rows"], out["annotations"], out["moved"], out["recomputing"]) == (2, 2, {"in_review": 2}, ["det/v1"])
    for _ in range(200):
        if metrics.job_status(ws, "det/v1").state == "ready":
            break
        time.sleep(0.05)
    fm = metrics.feature_metrics(ws, "det/v1", confidence=0.5, iou=0.5)
    assert {f.feature: (f.tp, f.fp, f.fn) for f in fm.features} == {"car": (2, 0, 1), "person": (1, 0, 0)}
    assert client.get("/api/batches/from gallery").json()["status"] == "in progress"

    ws.add_tags(["a"], ["re-label"])
    r = client.post("/api/queue/move", json={"q": "tag:re-label", "state": "rework", "note": "too wide"})
    assert r.json() == {"counts": {"to_label": 1, "in_review": 2, "rework": 1}, "moved": 1}
    assert client.get("/api/rows", params={"q": "queue:rework"}).json()["total"] == 1
    bad = client.post("/api/batches/from gallery/labels", files={"file": ("x.json", b"[{\"data\": {}}]")})
    assert bad.status_code == 422 and "x.json task[0]" in bad.text
    assert client.delete("/api/batches/lowest").status_code == 200
    assert client.get("/api/batches/lowest").status_code == 404
