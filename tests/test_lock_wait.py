"""Two processes on one workspace without a server: DuckDB lets one open the file, so the second waits
(bounded by SLICEWISE_WAIT, saying once what it waits for) and then succeeds, or fails with a message that
names the process holding the workspace and how to proceed, never with DuckDB's raw lock error."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from served_workspace import cli

import slicewise
from slicewise.errors import StoreError

# opens the workspace, then closes it after argv[2] seconds or as soon as a line comes on stdin
HOLD = ("import select, sys, slicewise; from slicewise.discovery import write_server_file\n"
        "ws = slicewise.open(sys.argv[1])\n"
        "if len(sys.argv) > 3: write_server_file(sys.argv[1], sys.argv[3], 'token')\n"
        "print('ready', flush=True); select.select([sys.stdin], [], [], float(sys.argv[2])); ws.close()")


@pytest.fixture
def workspace(tmp_path):
    path = tmp_path / "w.duckdb"
    with slicewise.open(path) as ws:
        ws.add_data_rows("d", [{"global_key": f"k{i}", "row_data": f"{i}.png"} for i in range(3)])
    return path


def hold(path, seconds: float, *server_url: str) -> subprocess.Popen[str]:
    """A process that opens the workspace for ``seconds`` (posing as a server at ``server_url``)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(seconds), *server_url],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def test_the_second_writer_waits_then_succeeds(workspace):
    holder = hold(workspace, 60)
    env = {**os.environ, "SLICEWISE_WAIT": "60", "COLUMNS": "200"}
    second = subprocess.Popen([sys.executable, "-m", "slicewise", "tag", "later", "k0", "-w", workspace.name],
                              cwd=workspace.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert second.stderr is not None and holder.stdin is not None
        first = second.stderr.readline()  # the second says what it waits for, and waits...
        assert first.startswith(f"waiting for process {holder.pid} (python"), first
        time.sleep(0.5)
        assert second.poll() is None
        holder.stdin.write("done\n")  # ...until the first closes the workspace
        holder.stdin.flush()
        out, err = second.communicate(timeout=60)
    finally:
        holder.kill()
        second.kill()
    assert second.returncode == 0, err
    assert "tagged 1 data row(s)" in out and "waiting" not in err  # said once
    with slicewise.open(workspace, read_only=True) as ws:
        assert ws.tags() == {"later": 1}


def test_with_a_short_bound_it_fails_with_a_clear_message(workspace):
    holder = hold(workspace, 60)
    try:
        res = cli("metrics", "status", "x/y", "-w", workspace.name, cwd=workspace.parent, env={"SLICEWISE_WAIT": "1"})
    finally:
        holder.kill()
        holder.wait(10)
    assert res.returncode == 2
    msg = " ".join(res.stderr.split())
    assert f"the workspace is in use by process {holder.pid} (python" in msg and "(waited 1 s)" in msg, msg
    assert f"kill {holder.pid}" in msg and "slicewise serve" in msg
    assert "IO Error" not in msg and "Conflicting lock" not in msg and "Traceback" not in msg


def test_the_library_does_not_wait_or_print_unless_asked(workspace):
    holder = hold(workspace, 60)
    told: list[str] = []
    try:
        started = time.monotonic()
        with pytest.raises(StoreError, match=f"in use by process {holder.pid}"):
            slicewise.open(workspace)
        assert time.monotonic() - started < 5
        with pytest.raises(StoreError, match=r"waited 0.5 s"):
            slicewise.open(workspace, read_only=True, wait=0.5, on_wait=told.append)
    finally:
        holder.kill()
        holder.wait(10)
    assert len(told) == 1 and told[0].startswith(f"waiting for process {holder.pid}")


def test_a_server_holder_is_named_and_not_waited_for(workspace):
    """The holder has a live discovery file but does not answer: the CLI cannot go through it, and says so."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    holder = hold(workspace, 60, url)
    try:
        started = time.monotonic()
        res = cli("tag", "x", "k0", "-w", workspace.name, cwd=workspace.parent, env={"SLICEWISE_WAIT": "60"})
        took = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait(10)
    assert res.returncode == 2
    msg = " ".join(res.stderr.split())
    assert f"a slicewise server (PID {holder.pid}) at {url} is serving this workspace" in msg, msg
    assert "the slicewise CLI sends its commands through that server" in msg and "waiting" not in msg
    assert took < 20, "it waited for a server, which holds the workspace as long as it runs"
    assert os.path.exists(workspace)
