"""``POST /api/cli`` in-process: concurrent forwarded commands keep their output apart (each request has its
own consoles), progress comes as events, and a command whose client went away stops and rolls back."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from served_workspace import write_coco

import slicewise

TOKEN = "test-token"
TERM = {"width": 100, "height": 25, "color_system": None, "is_terminal": False, "encoding": "utf-8",
        "no_color": False, "env": {}}


@pytest.fixture
def client(tmp_path):
    from fastapi.testclient import TestClient

    from slicewise.server import create_app

    path = tmp_path / "ws.duckdb"
    with slicewise.open(path) as ws:
        for d in range(4):
            ws.add_data_rows(f"d{d}", [{"global_key": f"d{d}-k{i}", "row_data": f"{i}.png"} for i in range(d + 1)])
    app = create_app(path)
    with TestClient(app) as c:
        yield c


def run(client, *command: str, token: str = TOKEN, **params) -> list[dict]:
    client.app.state.cli_token = token
    ws = client.app.state.sw.ws
    body = {"command": list(command), "params": {"workspace": str(ws.path), **params}, "cwd": str(ws.path.parent),
            "stdout": TERM, "stderr": TERM}
    res = client.post("/api/cli", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert res.status_code == 200, res.text
    return [json.loads(line) for line in res.text.splitlines()]


def text(events: list[dict], kind: str = "out") -> str:
    return "".join(e["text"] for e in events if e["type"] == kind)


def test_a_server_without_a_token_takes_no_command(client):
    client.app.state.cli_token = None
    res = client.post("/api/cli", json={"command": ["info"], "cwd": "/", "stdout": TERM, "stderr": TERM},
                      headers={"Authorization": "Bearer "})
    assert res.status_code == 403 and "not started by `slicewise serve`" in res.text


def test_concurrent_commands_do_not_mix_their_output(client):
    alone = {d: text(run(client, "rows", dataset=f"d{d}", as_json=True)) for d in range(4)}
    assert all(f"d{d}-k{d}" in alone[d] and f"d{(d + 1) % 4}-k0" not in alone[d] for d in range(4))
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda d: (d, text(run(client, "rows", dataset=f"d{d}", as_json=True))), [0, 1, 2, 3] * 6))
    for d, out in got:
        assert out == alone[d]


def test_progress_events_and_exit(client, tmp_path):
    f = write_coco(tmp_path, "more.json", [f"m{i}" for i in range(3)])
    events = run(client, "import", "coco", path=str(f), dataset=None, images=None, split="none",
                 skip_invalid=False, rejects=None)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "progress" and events[0]["description"] == "importing more.json"
    assert "end" in kinds and kinds[-1] == "exit" and events[-1]["code"] == 0
    assert text(events).startswith("imported 3 data rows, 6 annotations")


def test_a_command_whose_client_went_away_stops_and_rolls_back(client, tmp_path, table_snapshot):
    from slicewise.cli import remote

    ws = client.app.state.sw.ws
    f = write_coco(tmp_path, "more.json", [f"m{i}" for i in range(3)])
    before = table_snapshot(ws)
    events: list[dict] = []
    cancel = threading.Event()
    cancel.set()  # the connection closed before the command's first step
    remote.execute(ws, events.append, cancel, command=["import", "coco"],
                   params={"path": str(f), "workspace": str(ws.path)}, cwd=str(tmp_path), typed={},
                   stdout=TERM, stderr=TERM)
    assert events[-1] == {"type": "exit", "code": 130}
    assert table_snapshot(ws) == before
