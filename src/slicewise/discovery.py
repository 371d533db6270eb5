"""Which process holds a workspace: the discovery file of a running server, and the process DuckDB names.

DuckDB lets one process open a file for writing, and while it does no other process can open it at all.
So while ``slicewise serve`` holds a workspace, it is the single writer: it records where it listens in
``.<name>.cache/server.json`` beside the workspace (the folder of :func:`slicewise.state.cache_path`),
and the CLI sends its commands there instead of opening the file (see :mod:`slicewise.cli.remote`).

The file holds the URL, the PID, the host, the workspace's resolved path and a random secret token (the
``Authorization: Bearer`` of ``POST /api/cli``); it is written with mode 0600, so only its owner can
read the token, and removed when the server stops. A file whose process is gone, that names another
workspace or host, or that cannot be read is ignored (:func:`find_server`); a server that does not
answer is treated the same by its callers.

Only the standard library is imported here: the CLI, the store and the server all use it.

>>> import tempfile
>>> ws = Path(tempfile.mkdtemp()) / "w.duckdb"
>>> info = write_server_file(ws, "http://127.0.0.1:8765", "secret")
>>> find_server(ws) == info, oct(discovery_path(ws).stat().st_mode & 0o777)
(True, '0o600')
>>> remove_server_file(ws, "secret"); find_server(ws) is None
True
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

FILE_NAME = "server.json"
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<exe>.*?) \(PID (?P<pid>\d+)\)")


@dataclass(frozen=True)
class ServerInfo:
    """A running ``slicewise serve`` as its discovery file describes it."""

    url: str
    pid: int
    workspace: str  # resolved path
    token: str
    host: str  # socket.gethostname() of the server's machine
    started: float = 0.0

    def describe(self) -> str:
        return f"a slicewise server (PID {self.pid}) at {self.url}"

    def answers(self, timeout: float = 1.0) -> bool:
        """Whether something accepts connections at the server's address."""
        parts = urlsplit(self.url)
        try:
            with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=timeout):
                return True
        except OSError:
            return False


def discovery_path(workspace: str | Path) -> Path:
    """``.<name>.cache/server.json`` beside the workspace (the cache folder of :mod:`slicewise.state`)."""
    ws = Path(workspace).resolve()
    return ws.parent / f".{ws.name}.cache" / FILE_NAME


def write_server_file(workspace: str | Path, url: str, token: str) -> ServerInfo:
    """Record that this process serves ``workspace`` at ``url`` (mode 0600, replaced atomically)."""
    ws = Path(workspace).resolve()
    info = ServerInfo(url=url, pid=os.getpid(), workspace=str(ws), token=token, host=socket.gethostname(),
                      started=time.time())
    path = discovery_path(ws)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(asdict(info), fh)
    os.replace(tmp, path)
    return info


def remove_server_file(workspace: str | Path, token: str) -> None:
    """Remove the discovery file if it is still this server's (same token)."""
    path = discovery_path(workspace)
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text()).get("token") == token:
            path.unlink()


def read_server_file(workspace: str | Path) -> ServerInfo | None:
    """The discovery file as written, whether or not its server still runs (None: none, or unreadable)."""
    try:
        data = json.loads(discovery_path(workspace).read_text())
        return ServerInfo(url=str(data["url"]), pid=int(data["pid"]), workspace=str(data["workspace"]),
                          token=str(data["token"]), host=str(data["host"]), started=float(data.get("started", 0)))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def find_server(workspace: str | Path) -> ServerInfo | None:
    """The server holding ``workspace`` on this machine, from its discovery file; None when there is no
    file, it is unreadable, it names another workspace or host, or its process is gone. (Whether the
    server answers is for the caller to find out: see :meth:`ServerInfo.answers`.)"""
    info = read_server_file(workspace)
    if info is None or info.workspace != str(Path(workspace).resolve()) or info.host != socket.gethostname():
        return None
    return info if pid_alive(info.pid) else None


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def lock_holder(error: BaseException) -> tuple[int, str] | None:
    """(PID, executable) of the process DuckDB names in a lock-conflict error, else None."""
    m = _LOCK_HOLDER.search(str(error))
    return (int(m["pid"]), m["exe"]) if m else None


def describe_process(pid: int, exe: str = "") -> str:
    """``process 123 (slicewise import coco a.json)``: the PID with its command line where it can be read."""
    cmd = ""
    with contextlib.suppress(OSError):
        argv = [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
        if argv:
            cmd = " ".join([os.path.basename(argv[0]), *argv[1:]])
    cmd = cmd or os.path.basename(exe)
    if len(cmd) > 120:
        cmd = cmd[:117] + "..."
    return f"process {pid}" + (f" ({cmd})" if cmd else "")
