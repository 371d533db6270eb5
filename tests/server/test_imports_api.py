"""``POST /api/imports`` and ``GET /api/imports/{id}``: upload, poll, result; a bad file reports its rejected
records and changes nothing; folder formats take a zip (its images are kept for the data rows)."""

from __future__ import annotations

import io
import json
import time
import zipfile

import pytest
from served_workspace import write_coco, write_pngs, write_results

import slicewise


@pytest.fixture
def client(tmp_path):
    from fastapi.testclient import TestClient

    from slicewise.server import create_app

    path = tmp_path / "ws" / "ws.duckdb"
    path.parent.mkdir()
    slicewise.open(path).close()
    with TestClient(create_app(path)) as c:
        yield c


def upload(client, path_or_name, data: bytes | None = None, fmt: str = "coco", headers=None, **options):
    name = getattr(path_or_name, "name", path_or_name)
    body = data if data is not None else path_or_name.read_bytes()
    return client.post("/api/imports", files={"file": (name, body)},
                       data={"format": fmt, "options": json.dumps(options)}, headers=headers or {})


def finished(client, job_id: int) -> dict:
    deadline = time.time() + 60
    while time.time() < deadline:
        job = client.get(f"/api/imports/{job_id}").json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError("the import did not finish")


def uploads_left(client) -> list:
    folder = client.app.state.imports.uploads
    return list(folder.iterdir()) if folder.exists() else []


def test_upload_poll_result(client, tmp_path):
    keys = [f"a{i}" for i in range(5)]
    res = upload(client, write_coco(tmp_path, "animals.json", keys))
    assert res.status_code == 202, res.text
    assert res.json()["state"] in ("queued", "running", "done") and res.json()["filename"] == "animals.json"
    job = finished(client, res.json()["id"])
    assert job["state"] == "done", job
    r = job["result"]
    assert (r["data_rows"], r["annotations"], r["features_created"]) == (5, 10, ["cat", "dog"])
    assert r["summary"] == "imported 5 data rows, 10 annotations, 2 new features"
    assert job["done"] >= 1 and job["error"] is None
    # the new rows are what the gallery lists now, under the dataset named after the file (as the CLI names it)
    page = client.get("/api/rows", params={"dataset": "animals", "limit": 50}).json()
    assert sorted(row["global_key"] for row in page["rows"]) == [f"{k}.png" for k in keys]
    assert uploads_left(client) == []  # the uploaded file is gone
    # predictions with the format's options
    res = upload(client, write_results(tmp_path, "preds.json", keys), fmt="coco-results", run="det/v1")
    job = finished(client, res.json()["id"])
    assert job["state"] == "done" and job["result"]["predictions"] == 12 and job["result"]["run"] == "det/v1"
    assert job["result"]["run_rows"] == 5


def test_a_bad_file_lists_its_rejected_records_and_changes_nothing(client, tmp_path, table_snapshot):
    ws = client.app.state.sw.ws
    before = table_snapshot(ws)
    job = finished(client, upload(client, write_coco(tmp_path, "bad.json", ["x0", "x1"], bad=True)).json()["id"])
    assert job["state"] == "failed" and job["result"] is None
    err = job["error"]
    assert err["error"] == "ValidationError" and err["problems_count"] == 1
    (p,) = err["problems"]
    assert p["location"].startswith("bad.json") and p["field"] == "bbox" and p["fix"], p  # no server path
    assert str(client.app.state.imports.uploads) not in json.dumps(job)
    assert table_snapshot(ws) == before
    assert uploads_left(client) == []
    # --skip-invalid: the rest is imported, the rejected record listed
    job = finished(client, upload(client, tmp_path / "bad.json", skip_invalid=True).json()["id"])
    assert job["state"] == "done" and job["result"]["rejected_count"] == 1
    assert job["result"]["rejected"][0]["location"].startswith("bad.json")
    assert job["result"]["annotations"] == 3


def test_options_are_checked_before_the_upload_is_kept(client, tmp_path):
    f = write_coco(tmp_path, "a.json", ["a"])
    res = upload(client, f, run="m/r")  # coco takes no run
    assert res.status_code == 422 and "has no option 'run'" in res.text
    res = upload(client, write_results(tmp_path, "p.json", ["a"]), fmt="coco-results")  # needs a run
    assert res.status_code == 422 and "needs the option 'run'" in res.text
    res = upload(client, f, fmt="nope")
    assert res.status_code == 422
    res = client.post("/api/imports", files={"file": ("a.json", b"{}")}, data={"format": "coco", "options": "{x"})
    assert res.status_code == 422
    res = upload(client, f, headers={"Origin": "http://evil.example"})  # a cross-site form
    assert res.status_code == 403
    assert upload(client, f, headers={"Origin": "http://testserver"}).status_code == 202  # the app's own page
    assert client.get("/api/imports/999").status_code == 404


def test_a_folder_format_takes_a_zip_and_keeps_its_images(client, tmp_path):
    src = tmp_path / "indoor-small"
    (src / "ground-truth").mkdir(parents=True)
    (src / "images").mkdir()
    keys = ["r0", "r1", "r2"]
    write_pngs(src / "images", keys, size=100)
    for k in keys:
        (src / "ground-truth" / f"{k}.txt").write_text("chair 10 10 50 60\ntable 40 40 90 90\n")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted(src.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(tmp_path))
    job = finished(client, upload(client, "indoor-small.zip", buf.getvalue(), fmt="indoor").json()["id"])
    assert job["state"] == "done", job
    assert job["result"]["data_rows"] == 3 and job["result"]["annotations"] == 6
    ws = client.app.state.sw.ws
    rows = ws.data_rows(dataset="indoor-small")
    assert len(rows) == 3
    media = client.app.state.imports.media
    for r in rows:
        assert r.row_data.startswith(str(media)) and r.row_data.endswith(".png")
        assert client.get(f"/api/thumbs/{r.id}", params={"size": 128}).status_code == 200
    assert not any(p.suffix == ".txt" for p in media.rglob("*"))  # only the images were kept
    assert uploads_left(client) == []
    # a folder format needs a zip; a zip must not leave its folder
    job = finished(client, upload(client, "gt.txt", b"chair 1 1 2 2\n", fmt="voc").json()["id"])
    assert job["state"] == "failed" and "upload it as a zip" in job["error"]["message"]
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../escape.txt", "x")
    job = finished(client, upload(client, "evil.zip", evil.getvalue(), fmt="indoor").json()["id"])
    assert job["state"] == "failed" and "leaves its folder" in job["error"]["message"]
    assert not (media.parent / "escape.txt").exists() and not (tmp_path / "escape.txt").exists()


def test_every_import_command_has_its_format():
    import typer.main

    from slicewise.cli import app
    from slicewise.server.imports import FORMATS
    from slicewise.server.routers.imports import Format

    group = typer.main.get_command(app).commands["import"]  # type: ignore[attr-defined]
    assert set(group.commands) == set(FORMATS) == set(Format.__args__)  # type: ignore[attr-defined]
