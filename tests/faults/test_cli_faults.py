"""Faults met by the CLI: a read-only folder, a full disk (a file size limit on the process), Ctrl-C, two
writers. Each ends in one ``error:`` (or ``interrupted:``) line and the documented exit code, never a
traceback, and leaves the workspace as it was. And every message reaches the user character for
character (Rich markup would eat ``[bbox]``)."""

from __future__ import annotations

import io
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from . import harness as h

CLI = [sys.executable, "-m", "slicewise"]


def cli(*args: str, env: dict[str, str] | None = None, preexec=None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, preexec_fn=preexec,
                          env={**os.environ, "COLUMNS": "300", **(env or {})})


def no_traceback(p: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in p.stderr + p.stdout, p.stderr
    assert "cannot rollback" not in p.stderr


def state(path: Path) -> dict[str, tuple[int, str]]:
    return h.content(h.fingerprint(path), h.BOOKKEEPING)


@pytest.fixture
def small_ws(tmp_path) -> Path:
    """A workspace in a folder of its own (mode 755, so that an unprivileged child can read it)."""
    d = Path(tempfile.mkdtemp(prefix="sw-faults-"))
    os.chmod(d, 0o755)
    import slicewise

    ws_path = d / "ws.duckdb"
    with slicewise.open(ws_path) as ws:
        ws.add_data_rows("d", [{"global_key": f"k{i}", "row_data": f"k{i}.jpg", "width": 10, "height": 10}
                               for i in range(50)])
    yield ws_path
    os.chmod(d, 0o755)
    shutil.rmtree(d, ignore_errors=True)


def test_read_only_folder(small_ws):
    """The file is writable, its folder is not: COMMIT cannot create the write-ahead log. (As root, whom
    permissions do not stop, the log's place is taken by a folder instead: the same failed COMMIT.)"""
    before = state(small_ws)
    wal = small_ws.with_name(small_ws.name + ".wal")
    if os.geteuid() == 0:
        wal.mkdir()
    else:
        os.chmod(small_ws.parent, 0o555)
    try:
        p = cli("tag", "re-label", "k1", "k2", "-w", str(small_ws))
    finally:
        os.chmod(small_ws.parent, 0o755)
        if wal.is_dir():
            wal.rmdir()
    assert p.returncode == 2, p.stderr
    no_traceback(p)
    assert p.stderr.startswith("error: ") and p.stderr.count("\n") == 1, p.stderr
    if os.geteuid() != 0:
        assert "cannot be written" in p.stderr and "writable" in p.stderr, p.stderr
    assert state(small_ws) == before


def _file_limit(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG), not the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_disk_full(base, tmp_path):
    ws = h.copy(base[0], tmp_path / "full.duckdb")
    before = state(ws)
    p = cli("import", "coco-results", str(base[1]), "--run", "det/full", "-w", str(ws),
            preexec=_file_limit(ws.stat().st_size + 256 * 1024))
    assert p.returncode == 2, p.stderr
    no_traceback(p)
    assert p.stderr.startswith("error: ") and "no room to write" in p.stderr and "free disk space" in p.stderr, p.stderr
    assert state(ws) == before


MSG_INT = "interrupted: the operation stopped; a write it had not completed was rolled back"


@pytest.mark.parametrize("when", ["start", "import"])
def test_ctrl_c(base, tmp_path, when):
    """Ctrl-C while the CLI starts, and once the import runs: exit 130, one line, no traceback; the workspace
    holds the state before the import (or, when the signal came after its commit, the whole import)."""
    ws = h.copy(base[0], tmp_path / "int.duckdb")
    before = state(ws)
    proc = subprocess.Popen([*CLI, "import", "coco-results", str(base[1]), "--run", "det/int", "-w", str(ws)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "SLICEWISE_PROGRESS": "1", "COLUMNS": "200"},
                            # Ctrl-C as in a terminal, whatever this test process inherited (an ignored SIGINT
                            # is inherited by the child, which would then run the whole import)
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stderr is not None
    seen = ""
    if when == "start":
        time.sleep(0.3)
    else:  # wait until the import runs (its progress bar appears)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "import" not in seen.lower():
            seen += os.read(proc.stderr.fileno(), 1024).decode(errors="replace")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    err = (seen + err).replace("\r", "\n")
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.count("interrupted") == 1 and err.rstrip().endswith(MSG_INT), err  # (after the progress bar, if any)
    # the run, its model, its predictions and its rows are one transaction: all there or none
    now = state(ws)
    if when == "start" or now["predictions"][0] == 0:
        assert now == before
    else:
        assert [now[t][0] for t in ("models", "model_runs", "predictions", "run_rows")] == [1, 1, 200_000, 2_000]


def test_two_writers(small_ws):
    holder = subprocess.Popen([sys.executable, "-c", "import slicewise, sys, time; ws = slicewise.open(sys.argv[1]); "
                               "print('open', flush=True); time.sleep(60)", str(small_ws)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        p = cli("tag", "x", "k1", "-w", str(small_ws), env={"SLICEWISE_WAIT": "0.5"})
    finally:
        holder.kill()
        holder.wait()
    assert p.returncode == 2
    no_traceback(p)
    assert "in use by" in p.stderr and "waited 0.5 s" in p.stderr and f"kill {holder.pid}" in p.stderr, p.stderr


def test_a_bad_flag_and_a_missing_file_are_one_message(tmp_path):
    p = cli("import", "coco", str(tmp_path / "nope.json"), "-w", str(tmp_path / "ws.duckdb"))
    assert p.returncode == 2
    no_traceback(p)
    assert p.stderr.startswith("error: ")
    assert cli("--debug", "import", "coco", str(tmp_path / "nope.json"), "-w", str(tmp_path / "ws.duckdb")
               ).stderr.startswith("Traceback")


# -- messages verbatim --------------------------------------------------------------------------------
MESSAGES = [
    ("bbox must be 4 numbers", "a.json#3", "fix: write [x, y, width, height] in pixels"),
    ("unknown class 'cat'", "a.json#4 [category_id]", "use one of [cat, dog]"),
    ("bad value [bbox]", "labels/1.txt:2", "[confidence] must be in [0, 1]"),
    ("[bold red]not styled[/]", "[red]", "[/] [link=x]y[/link] \\[escaped]"),
    ("a tag named [re-label]", "slice [low]", "names may hold [ and ]"),
]


@pytest.mark.parametrize("what,where,fix", MESSAGES)
def test_error_text_reaches_the_user_verbatim(what, where, fix):
    from rich.console import Console

    from slicewise.cli import common
    from slicewise.errors import Problem, SlicewiseError, ValidationError

    for exc in (SlicewiseError(what, where=where, fix=fix), ValidationError([Problem(what, where, "bbox", fix)])):
        buf = io.StringIO()
        local = common.err_console.target()  # type: ignore[attr-defined]
        common.err_console._local = Console(file=buf, width=80)  # type: ignore[attr-defined]
        try:
            common.print_error(exc)
        finally:
            common.err_console._local = local  # type: ignore[attr-defined]
        assert str(exc) in buf.getvalue().replace("\n  ", "\n  "), (str(exc), buf.getvalue())
    # and in a table cell, a title, a problem line
    buf = io.StringIO()
    t = common.Table(title=what)
    t.add_column("x")
    t.add_row(fix)
    Console(file=buf, width=300).print(t)
    assert what in buf.getvalue() and fix in buf.getvalue()


def test_cli_prints_the_library_message_of_a_bad_import(tmp_path):
    """A real refusal: the CLI's stderr holds the library's message, character for character."""
    import slicewise
    from slicewise.errors import SlicewiseError
    from slicewise.io import import_coco

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}],
                               "categories": [{"id": 1, "name": "[cat, dog]"}],
                               "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3]},
                                               {"id": 2, "image_id": 1, "category_id": 1, "bbox": "[bbox]"}]}))
    with slicewise.open(tmp_path / "lib.duckdb") as ws, pytest.raises(SlicewiseError) as info:
        import_coco(ws, bad)
    message = str(info.value)
    assert "[" in message
    p = cli("import", "coco", str(bad), "-w", str(tmp_path / "cli.duckdb"))
    assert p.returncode == 2
    no_traceback(p)
    assert message.replace(str(bad), "") in p.stderr.replace(str(bad), ""), (message, p.stderr)
