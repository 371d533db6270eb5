"""`make demo` again and again: each time the app serves the gallery, facets, slices and auto slices with
rows, whether the demo is built in the serving process (what `slicewise demo --serve` does) or the
server is a process of its own, and whether the demo is built or reused."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

ROWS = "30"


def _check(get) -> None:  # noqa: ANN001 - a client's get
    runs = get("/api/runs").json()
    assert len(runs) == 4 and all(r["job"]["state"] == "ready" for r in runs)
    for r in runs:
        page = get("/api/rows", params={"run": r["id"]}).json()
        assert page["total"] > 0 and page["rows"], r["ref"]
        facets = get("/api/facets", params={"run": r["id"]}).json()
        assert facets["total"] == page["total"] and facets["split"], r["ref"]
        autos = get(f"/api/runs/{r['id']}/auto-slices").json()
        # (the label-mistake slices are counted once their detectors ran: slicewise.mistakes.results.ready)
        assert autos and all(a["count"] is not None for a in autos if not a["auto_key"].startswith("mistakes-")), r["ref"]
        assert any(a["count"] > 0 for a in autos), r["ref"]
        fp = next(a for a in autos if a["auto_key"] == "false-positive")
        rows = get("/api/rows", params={"run": r["id"], "slice": fp["id"]}).json()
        assert rows["total"] == fp["count"], r["ref"]
    assert get("/api/slices", params={"run": runs[0]["id"]}).status_code == 200


def test_demo_serve_three_times_in_one_process(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    import slicewise.server
    from slicewise.cli import app
    from slicewise.server import create_app

    def serve(path, host, port) -> None:  # noqa: ANN001 - what `slicewise demo --serve` calls, minus the socket
        with TestClient(create_app(path)) as client:
            _check(client.get)

    monkeypatch.setattr(slicewise.server, "serve", serve)
    path = tmp_path / "demo-workspace" / "demo.duckdb"
    for _ in range(3):
        res = CliRunner().invoke(app, ["demo", "--workspace", str(path), "--rows", ROWS, "--serve"])
        assert res.exit_code == 0, res.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_demo_serve_three_times_as_a_user_runs_it(tmp_path):
    """The CLI entry point in a process of its own, as `make demo` runs it, stopped and started again."""
    path = tmp_path / "demo-workspace" / "demo.duckdb"
    code = "import sys; from slicewise.cli import main; sys.argv[0] = 'slicewise'; main()"
    for _ in range(3):
        port = _free_port()
        proc = subprocess.Popen([sys.executable, "-c", code, "demo", "--workspace", str(path), "--rows", ROWS,
                                 "--serve", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, cwd=Path(__file__).parent)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
                deadline = time.monotonic() + 240
                while True:
                    assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                    try:
                        if client.get("/api/workspace").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert time.monotonic() < deadline, "the demo did not come up"
                    time.sleep(0.3)
                _check(client.get)
        finally:
            proc.terminate()
            proc.wait(30)
