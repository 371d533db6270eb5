"""The metrics job through the API: grids, stale state, compute in the background, failure and retry."""

from __future__ import annotations

import time

import pytest

from slicewise import metrics


def _wait(client, run_id: int, states: set[str], timeout: float = 30) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = client.get(f"/api/runs/{run_id}/job").json()
        if job["state"] in states:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job never reached {states}: {job}")


def test_grids_stale_and_compute(client, app_ws):
    res = client.put("/api/runs/1/grids", json={"confidence": [0.5, 0.55, 0.6], "iou": [0.5, 0.75]})
    assert res.status_code == 200
    assert res.json()["grids"] == {"confidence": [0.5, 0.55, 0.6], "iou": [0.5, 0.75]}
    assert metrics.grids(app_ws, 1) == ((0.5, 0.55, 0.6), (0.5, 0.75))
    # a grid edit starts the recomputation in the background at once (nobody calls compute below)
    assert res.json()["job"]["state"] in ("stale", "running", "ready")
    assert client.put("/api/runs/1/grids", json={"confidence": [0.6, 0.5]}).status_code == 422
    assert client.put("/api/runs/1/grids", json={"iou": [1.5]}).status_code == 422
    assert client.put("/api/runs/1/grids", json={"iou": []}).status_code == 422
    job = _wait(client, 1, {"ready", "failed"})
    assert job["state"] == "ready"
    assert client.get("/api/runs/1/metrics/features", params={"confidence": 0.55}).status_code == 200


def test_failed_job_and_retry(client, app_ws, monkeypatch):
    from slicewise.metrics import engine

    def broken(*args, **kwargs):
        raise RuntimeError("injected failure")

    monkeypatch.setattr(engine, "_compute", broken)
    client.post("/api/runs/1/job/retry")
    job = _wait(client, 1, {"failed"})
    assert "injected failure" in job["error"]
    assert client.get("/api/runs").json()[0]["job"]["state"] == "failed"
    monkeypatch.undo()
    client.post("/api/runs/1/job/retry")
    assert _wait(client, 1, {"ready"})["state"] == "ready"


def test_a_started_job_reads_running_at_once(client, app_ws, monkeypatch):
    """The banner polls only a job that answers "running": the answer to compute (and to a grid edit)
    says so even while the job's thread has not yet written its state (it waits for the writer here)."""
    import threading

    from slicewise.metrics import engine

    gate = threading.Event()
    real = engine._compute_job

    def held(*args, **kwargs):
        gate.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "_compute_job", held)
    try:
        assert client.post("/api/runs/1/job/retry").json()["state"] == "running"
        assert client.get("/api/runs/1/job").json()["state"] == "running"
        assert client.get("/api/runs/1").json()["job"]["state"] == "running"
    finally:
        gate.set()
    assert _wait(client, 1, {"ready", "failed"})["state"] == "ready"
    res = client.put("/api/runs/1/grids", json={"confidence": [0.5, 0.7]})
    assert res.json()["job"]["state"] in ("running", "ready")
    assert _wait(client, 1, {"ready", "failed"})["state"] == "ready"


def test_a_job_that_cannot_start_is_not_left_running(client, app_ws, monkeypatch):
    from slicewise.metrics import engine

    def refuse(*args, **kwargs):
        raise RuntimeError("refused before the job started")

    monkeypatch.setattr(engine, "_compute_job", refuse)
    client.post("/api/runs/1/job/retry")
    job = _wait(client, 1, {"ready", "stale", "pending", "failed"})
    assert job["state"] != "running"


def test_job_of_unknown_run(client):
    assert client.get("/api/runs/77/job").status_code == 404
    assert client.post("/api/runs/77/job/retry").status_code == 404


@pytest.fixture(autouse=True)
def _settle(client):
    yield
    # leave no background job running into the next test
    for th in list(client.app.state.sw.jobs.values()):
        th.join(30)

