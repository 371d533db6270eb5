"""The server as the single writer: while a real ``slicewise serve`` subprocess holds a workspace, real CLI
subprocesses on it run through the server, print exactly what they print on a copy of the workspace with
no server, and the server's API (what the browser reads) shows their writes at once."""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import stat
import subprocess
import sys

import httpx
import pytest
from served_workspace import ServerProcess, cli, write_coco, write_results

from slicewise.discovery import read_server_file

BASE = [f"b{i}" for i in range(6)]
MORE = [f"m{i}" for i in range(4)]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """(served folder, alone folder, server): the same files and workspace ``ws.duckdb`` in both folders;
    the first is served (by a server whose working directory is elsewhere), the second is not."""
    root = tmp_path_factory.mktemp("writer")
    served, alone = root / "served", root / "alone"
    for d in (served, alone):
        d.mkdir()
        write_coco(d, "base.json", BASE)
        write_coco(d, "more.json", MORE)
        write_results(d, "more-preds.json", MORE)
        write_coco(d, "bad.json", ["x0", "x1"], bad=True)
        (d / "keys.txt").write_text("b0.png\nb1.png\nb2.png\n")
    res = cli("import", "coco", "base.json", "-w", "ws.duckdb", cwd=served)
    assert res.returncode == 0, res.stderr
    shutil.copy(served / "ws.duckdb", alone / "ws.duckdb")
    server = ServerProcess(served / "ws.duckdb", cwd=root)
    yield served, alone, server
    server.stop()
    assert not server.discovery_file.exists(), "the server left its discovery file behind"


def both(pair, args: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], ...]:
    """Run ``slicewise ARGS -w ws.duckdb`` in the served folder (through the server; SLICEWISE_WAIT=0 so
    that opening the file instead would fail at once) and in the other folder, at the same time."""
    served, alone, _ = pair
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        a = pool.submit(cli, *args, "-w", "ws.duckdb", cwd=served, env={"SLICEWISE_WAIT": "0", **(env or {})})
        b = pool.submit(cli, *args, "-w", "ws.duckdb", cwd=alone, env=env)
        return a.result(), b.result()


def same(pair, args: list[str], code: int = 0, env: dict[str, str] | None = None, stderr: bool = True) -> str:
    through, alone = both(pair, args, env)
    assert alone.returncode == code, (args, alone.stdout, alone.stderr)
    assert (through.returncode, through.stdout) == (alone.returncode, alone.stdout), (args, through.stderr)
    if stderr:
        assert through.stderr == alone.stderr, args
    return through.stdout


def api(pair, path: str, **params) -> object:
    res = httpx.get(pair[2].url + path, params=params, timeout=30, trust_env=False)
    assert res.status_code == 200, res.text
    return res.json()


def test_commands_through_the_server_print_what_they_print_on_the_file(pair):
    served, alone, server = pair
    before = api(pair, "/api/workspace")["counts"]["data_rows"]

    out = same(pair, ["import", "coco", "more.json"])
    assert out.startswith("imported 4 data rows, 8 annotations")
    page = api(pair, "/api/rows", dataset="more", limit=50)  # what the gallery asks for: no restart
    assert page["total"] == 4 and sorted(r["global_key"] for r in page["rows"]) == [f"{k}.png" for k in MORE]
    assert api(pair, "/api/workspace")["counts"]["data_rows"] == before + 4

    same(pair, ["import", "coco-results", "more-preds.json", "--run", "det/v1"])
    run = next(r for r in api(pair, "/api/runs") if r["ref"] == "det/v1")

    through, local = both(pair, ["metrics", "compute", "det/v1"], env={"SLICEWISE_PROGRESS": "1"})
    assert through.returncode == local.returncode == 0 and through.stdout == local.stdout
    assert "matching rows" in through.stderr and "matching rows" in local.stderr  # the client drew the bar
    assert api(pair, f"/api/runs/{run['id']}/job")["state"] == "ready"

    assert "dog" in same(pair, ["metrics", "show", "det/v1"], env={"COLUMNS": "60"})  # the client's width
    assert "4 matching data row(s)" in same(pair, ["query", "det/v1", "fn > 0", "--sort=-confidence.max"])

    same(pair, ["tag", "reviewed", "m0.png", "m1.png"])
    same(pair, ["tag", "todo", "--from-file", "keys.txt"])  # a relative path, from the client's folder
    assert api(pair, "/api/tags") == {"reviewed": 2, "todo": 3}

    same(pair, ["slice", "create", "Misses", "fn > 0"])
    assert [s["name"] for s in api(pair, "/api/slices")] == ["Misses"]
    assert "Misses" in same(pair, ["slice", "list", "--run", "det/v1"])
    assert json.loads(same(pair, ["query", "-", "tag:reviewed", "--json"]))["total"] == 2
    same(pair, ["check", "det/v1", "--slice", "Misses", "--min", "recall=0.9"], code=1)
    assert "workspace ws.duckdb" in same(pair, ["info"])  # paths are shown as typed

    # errors: a slicewise error (2), a usage error raised by the command (2), a bad file (nothing imported)
    same(pair, ["tag", "x", "nope.png"], code=2)
    same(pair, ["tag", "x"], code=2)
    rows = api(pair, "/api/workspace")["counts"]["data_rows"]
    same(pair, ["import", "coco", "bad.json"], code=2)
    assert api(pair, "/api/workspace")["counts"]["data_rows"] == rows
    # --skip-invalid writes its rejects file in the client's folder, not the server's
    same(pair, ["import", "coco", "bad.json", "--skip-invalid"])
    assert (served / "bad.json.rejects.jsonl").read_text() == (alone / "bad.json.rejects.jsonl").read_text()
    assert not (served.parent / "bad.json.rejects.jsonl").exists()
    same(pair, ["export", "coco", "gt.json"])
    assert json.loads((served / "gt.json").read_text()) == json.loads((alone / "gt.json").read_text())


def post_cli(server: ServerProcess, body: dict, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(server.url + "/api/cli", json=body, headers=headers, timeout=30, trust_env=False)


def test_the_cli_endpoint_wants_the_token_and_no_browser(pair):
    served, _, server = pair
    term = {"width": 80}
    body = {"command": ["info"], "params": {"workspace": str(served / "ws.duckdb")}, "cwd": str(served),
            "stdout": term, "stderr": term}
    assert post_cli(server, body, {}).status_code == 401
    assert post_cli(server, body, {"Authorization": "Bearer nope"}).status_code == 403
    assert post_cli(server, body, {"Authorization": "Basic " + server.info.token}).status_code == 401
    good = {"Authorization": f"Bearer {server.info.token}"}
    assert post_cli(server, body, {**good, "Origin": server.url}).status_code == 403  # never from a page
    res = post_cli(server, body, good)
    assert res.status_code == 200 and res.headers["content-type"].startswith("application/x-ndjson")
    events = [json.loads(line) for line in res.text.splitlines()]
    assert events[-1] == {"type": "exit", "code": 0} and any("data rows" in e.get("text", "") for e in events)
    for name in ("serve", "demo"):
        res = post_cli(server, {**body, "command": [name]}, good)
        assert res.status_code == 409 and "cannot run inside the server" in res.json()["detail"]
    assert post_cli(server, {**body, "command": ["nope"]}, good).status_code == 404
    assert post_cli(server, {**body, "command": ["import"]}, good).status_code == 404  # a group


def test_serve_and_demo_refuse_a_served_workspace(pair):
    served, _, server = pair
    for args in (["serve", "ws.duckdb"], ["demo", "-w", "ws.duckdb"]):
        res = cli(*args, cwd=served)
        assert res.returncode == 2, res.stdout
        msg = " ".join(res.stderr.split())
        assert f"PID {server.info.pid}" in msg and server.url in msg and "stop it first" in msg, msg


def test_discovery_file_is_private_and_removed_on_ctrl_c(tmp_path):
    import slicewise

    ws = tmp_path / "w.duckdb"
    slicewise.open(ws).close()
    server = ServerProcess(ws, cwd=tmp_path)
    try:
        info = read_server_file(ws)
        assert info is not None and info.pid == server.proc.pid and info.workspace == str(ws.resolve())
        assert stat.S_IMODE(os.stat(server.discovery_file).st_mode) == 0o600
        assert server.discovery_file.parent == ws.parent / ".w.duckdb.cache"
    finally:
        printed = server.stop()
    assert "slicewise is serving" in printed and f":{info.url.rsplit(':', 1)[1]}/" in printed
    assert not server.discovery_file.exists()
    res = cli("info", "-w", "w.duckdb", cwd=tmp_path, env={"SLICEWISE_WAIT": "0"})  # opens the file itself
    assert res.returncode == 0, res.stderr


def test_a_stale_discovery_file_is_ignored(tmp_path):
    """A dead PID, or a live one where nothing answers: the CLI opens the file itself."""
    import socket

    import slicewise
    from slicewise.discovery import write_server_file

    ws = tmp_path / "w.duckdb"
    with slicewise.open(ws) as w:
        w.add_data_rows("d", [{"global_key": "k0", "row_data": "0.png"}])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    write_server_file(ws, f"http://127.0.0.1:{closed_port}", "t")  # this (live) process, nothing listening
    res = cli("tag", "a", "k0", "-w", "w.duckdb", cwd=tmp_path, env={"SLICEWISE_WAIT": "0"})
    assert res.returncode == 0 and "tagged 1 data row(s)" in res.stdout, res.stderr
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    path = tmp_path / ".w.duckdb.cache" / "server.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "pid": int(dead.stdout)}))  # a server gone
    res = cli("tag", "b", "k0", "-w", "w.duckdb", cwd=tmp_path, env={"SLICEWISE_WAIT": "0"})
    assert res.returncode == 0 and "tagged 1 data row(s)" in res.stdout, res.stderr
