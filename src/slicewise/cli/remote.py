"""CLI commands through the server that holds the workspace ("the server as the single writer").

DuckDB lets one process open a workspace file, so while ``slicewise serve`` runs, the CLI cannot open
it. Instead, :func:`slicewise.cli.common.open_workspace` finds the server (:mod:`slicewise.discovery`)
and calls :func:`forward`, which sends the command being run (its path and its already parsed
parameters, path parameters made absolute) to ``POST /api/cli`` with the server's secret token. The
server runs the SAME Typer command (:func:`execute`) in a worker thread against its own workspace
object, so its caches, and the browser, see the writes at once. The command's Rich output is rendered
there for the client's terminal (width, colours, encoding) and streamed back as NDJSON events:

- ``{"type": "out" | "err", "text": ...}``: text for stdout / stderr, in order;
- ``{"type": "progress", "id", "description", "total"}``, ``{"type": "advance", "id", "n", "total"}``,
  ``{"type": "end", "id"}``: a ``progress()`` bar, which the client draws;
- ``{"type": "usage_error" | "click_error", "message", "exit_code"}``, ``{"type": "abort"}``: raised again
  by the client, so Typer prints them as it would have;
- ``{"type": "exit", "code"}``: last; the client exits with it (a slicewise error: its message and 2).

A command runs again from its start in the server, so commands do nothing before opening the workspace
but check their arguments. Commands that replace the server's workspace (``serve``, ``demo``) are
refused (:data:`REFUSED`). Closing the connection (Ctrl+C) cancels the command at its next progress
step, as Ctrl+C would have: its transaction rolls back.
"""

from __future__ import annotations

import enum
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path, PurePath
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from slicewise.discovery import ServerInfo
    from slicewise.workspace import Workspace

#: commands that cannot run inside a server: they would open (or build) the workspace themselves
REFUSED = {"serve": "start a server", "demo": "build the demo workspace"}
#: environment variables through which Rich reads the terminal (sent with each command)
RICH_ENV = ("TERM", "COLORTERM", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS", "LINES")
ADVANCE_EVERY = 0.1  # seconds between two progress events of one bar

Emit = Callable[[dict[str, Any]], None]


def click_module() -> ModuleType:
    """The click that Typer uses: recent Typer bundles its own (``typer._click``)."""
    try:
        import typer._click as bundled  # type: ignore[import-not-found]

        return bundled  # type: ignore[no-any-return]
    except ImportError:
        import click

        return click


def current_context() -> Any:
    return click_module().globals.get_current_context(silent=True)


# -- the client -----------------------------------------------------------------------------------
def forward(server: ServerInfo) -> None:
    """Run the current command in ``server``, print its output and raise ``typer.Exit`` with its exit
    code. Returns only when nothing answers at the server's address (a stale discovery file)."""
    import httpx

    from slicewise.cli.common import console, err_console, progress
    from slicewise.errors import StoreError

    ctx = current_context()
    if ctx is None:
        raise StoreError(f"{server.describe()} is serving this workspace", where=server.workspace,
                         fix="run the command from the slicewise CLI, which goes through the server, or stop it")
    names, params, typed = command_of(ctx)
    body = {"command": names, "params": params, "cwd": os.getcwd(), "typed": typed,
            "stdout": terminal_of(console), "stderr": terminal_of(err_console)}
    bars: dict[int, tuple[Any, Callable[..., None]]] = {}
    code = 0
    try:
        with httpx.Client(timeout=httpx.Timeout(10.0, read=None), trust_env=False) as client, client.stream(
                "POST", f"{server.url}/api/cli", json=body, headers={"Authorization": f"Bearer {server.token}"}) as res:
            if res.status_code != 200:
                res.read()
                raise StoreError(f"{server.describe()} serves this workspace but refused the command "
                                 f"(HTTP {res.status_code}): {_detail(res)}", where=server.workspace,
                                 fix="stop the server to run it on the file itself")
            for line in res.iter_lines():
                if not line:
                    continue
                event = _json(line)
                kind = event.get("type")
                if kind == "out":
                    _write(False, event["text"])
                elif kind == "err":
                    _write(True, event["text"])
                elif kind == "progress":
                    cm = progress(event["description"], event.get("total"))
                    bars[event["id"]] = (cm, cm.__enter__())
                elif kind == "advance" and event["id"] in bars:
                    bars[event["id"]][1](event["n"], total=event.get("total"))
                elif kind == "end" and event["id"] in bars:
                    bars.pop(event["id"])[0].__exit__(None, None, None)
                elif kind in ("usage_error", "click_error", "abort"):
                    _raise_again(ctx, event)
                elif kind == "exit":
                    code = int(event["code"])
                    break
            else:
                raise StoreError(f"{server.describe()} stopped before the command finished", where=server.workspace,
                                 fix="check what the command did (e.g. `slicewise info`) and run it again")
    except httpx.ConnectError:
        return  # nobody listens there any more: open the file as usual
    except httpx.HTTPError as exc:
        raise StoreError(f"lost {server.describe()} while it ran the command: {exc}", where=server.workspace,
                         fix="check what the command did (e.g. `slicewise info`) and run it again") from None
    finally:
        for cm, _ in bars.values():
            cm.__exit__(None, None, None)
    raise typer.Exit(code)


def command_of(ctx: Any) -> tuple[list[str], dict[str, Any], dict[str, str]]:
    """(the command's names below the root, its parameters as JSON with relative paths made absolute,
    {absolute path: as typed})."""
    names = []
    c = ctx
    while c.parent is not None:
        names.append(c.info_name)
        c = c.parent
    names.reverse()
    path_params = {p.name for p in ctx.command.params if type(getattr(p, "type", None)).__name__ == "Path"}
    typed: dict[str, str] = {}

    def plain(value: Any, is_path: bool) -> Any:
        if isinstance(value, PurePath) or (is_path and isinstance(value, str)):
            full = os.path.abspath(value)
            if full != str(value):
                typed[full] = str(value)
            return full
        if isinstance(value, enum.Enum):
            return value.value
        if isinstance(value, list | tuple):
            return [plain(v, is_path) for v in value]
        if isinstance(value, datetime | date):
            return value.isoformat()
        if value is None or isinstance(value, str | int | float | bool):
            return value
        raise TypeError(f"cannot send a {type(value).__name__} parameter to the server")

    params = {name: plain(v, name in path_params) for name, v in ctx.params.items()}
    return names, params, typed


def terminal_of(con: Console) -> dict[str, Any]:
    """What Rich knows of a terminal, so that the server renders for it."""
    return {"width": con.width, "height": con.height, "color_system": con.color_system,
            "is_terminal": con.is_terminal, "encoding": con.encoding, "no_color": con.no_color,
            "env": {k: os.environ[k] for k in RICH_ENV if k in os.environ}}


def _write(err: bool, text: str) -> None:
    import sys

    stream = sys.stderr if err else sys.stdout  # looked up now: a live progress bar redirects them
    stream.write(text)
    stream.flush()


def _raise_again(ctx: Any, event: dict[str, Any]) -> NoReturn:
    exc = click_module().exceptions
    if event["type"] == "abort":
        raise typer.Abort()
    if event["type"] == "usage_error":
        err = exc.UsageError(event["message"], ctx)
    else:
        err = exc.ClickException(event["message"])
    err.exit_code = int(event.get("exit_code", 1))
    raise err


def _json(line: str) -> dict[str, Any]:
    import json

    return json.loads(line)  # type: ignore[no-any-return]


def _detail(res: Any) -> str:
    try:
        body = res.json()
        return str(body.get("detail") or body)
    except ValueError:
        return res.text[:300]


# -- the server -----------------------------------------------------------------------------------
class _Stream:
    """The file a forwarded command's console writes to: each write becomes an event."""

    def __init__(self, emit: Emit, kind: str, encoding: str) -> None:
        self._emit, self._kind, self.encoding = emit, kind, encoding

    def write(self, text: str) -> int:
        if text:
            self._emit({"type": self._kind, "text": text})
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def console_for(emit: Emit, kind: str, term: dict[str, Any]) -> Console:
    """A Rich console that renders as the client's would, writing ``kind`` events."""
    from rich.console import Console

    return Console(file=_Stream(emit, kind, str(term.get("encoding") or "utf-8")),  # type: ignore[arg-type]
                   width=int(term.get("width") or 80), height=int(term.get("height") or 25),
                   color_system=term.get("color_system"), force_terminal=bool(term.get("is_terminal")),
                   force_interactive=False, no_color=bool(term.get("no_color")), legacy_windows=False,
                   _environ=dict(term.get("env") or {}))


@dataclass
class _Lent:
    """The server's workspace lent to a command: ``with`` gives the workspace and does not close it."""

    ws: Workspace

    def __enter__(self) -> Workspace:
        return self.ws

    def __exit__(self, *exc: object) -> None:
        return None

    def close(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ws, name)


@dataclass
class Forwarded:
    """A command running inside the server for a client: its workspace, streams and progress."""

    ws: Workspace
    emit: Emit
    cancel: threading.Event
    cwd: str
    typed: dict[str, str]  # absolute path -> as the user typed it
    console: Console
    err_console: Console
    _bars: list[int] = field(default_factory=lambda: [0])

    def open(self, path: Path) -> Workspace:
        from slicewise.errors import StoreError

        if Path(path).resolve() != Path(self.ws.path).resolve():
            raise StoreError(f"this server serves {self.ws.path}, not {self.untyped(str(path))}", where=str(path),
                             fix="run the command against the other workspace's own server, or without one")
        return _Lent(self.ws)  # type: ignore[return-value]

    def untyped(self, text: str) -> str:
        """``text`` with the absolute paths made from the user's arguments written as they were typed."""
        for full, typed in sorted(self.typed.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(full, typed)
        return text

    @contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[Callable[..., None]]:
        self._bars[0] += 1
        bar = self._bars[0]
        self.emit({"type": "progress", "id": bar, "description": description, "total": total})
        pending = [0, None, time.monotonic()]  # steps not sent yet, their total, when the last were sent

        def send() -> None:
            if pending[0] or pending[1] is not None:
                self.emit({"type": "advance", "id": bar, "n": pending[0], "total": pending[1]})
            pending[0], pending[1], pending[2] = 0, None, time.monotonic()

        def advance(n: int = 1, total: int | None = None) -> None:
            if self.cancel.is_set():
                raise KeyboardInterrupt("the client of this command went away")
            pending[0] += n  # type: ignore[operator]
            if total is not None:
                pending[1] = total
            if time.monotonic() - pending[2] >= ADVANCE_EVERY:  # type: ignore[operator]
                send()

        try:
            yield advance
        finally:
            send()
            self.emit({"type": "end", "id": bar})


def find_command(names: list[str]) -> tuple[Any, Any]:
    """(command, its click context) for ``["import", "coco"]``; LookupError when there is none."""
    from slicewise.cli import app

    root = typer.main.get_command(app)  # built per call: Typer's callback wrappers are not thread-safe
    ctx = root.context_class(root, info_name="slicewise")
    cmd = root
    for name in names:
        sub = cmd.get_command(ctx, name) if hasattr(cmd, "get_command") else None
        if sub is None:
            raise LookupError(f"no command `slicewise {' '.join(names)}`")
        cmd, ctx = sub, sub.context_class(sub, info_name=name, parent=ctx)
    if hasattr(cmd, "get_command") or cmd.callback is None:
        raise LookupError(f"`slicewise {' '.join(names)}` is a group of commands, not a command")
    return cmd, ctx


def execute(ws: Workspace, emit: Emit, cancel: threading.Event, *, command: list[str], params: dict[str, Any],
            cwd: str, typed: dict[str, str], stdout: dict[str, Any], stderr: dict[str, Any]) -> None:
    """Run a forwarded command in this thread against ``ws``, emitting its events; the last is its exit."""
    from slicewise.cli.common import FORWARDED, print_error
    from slicewise.errors import SlicewiseError

    fwd = Forwarded(ws, emit, cancel, cwd, typed, console_for(emit, "out", stdout), console_for(emit, "err", stderr))
    token = FORWARDED.set(fwd)
    exc_mod = click_module().exceptions
    code: int = 0
    try:
        cmd, ctx = find_command(command)
        with ctx:
            unknown = set(params) - {p.name for p in cmd.params}
            if unknown:
                raise exc_mod.UsageError(f"unknown parameter(s) {sorted(unknown)}", ctx)
            values = {p.name: p.process_value(ctx, params[p.name]) if p.name in params else p.get_default(ctx)
                      for p in cmd.params if p.name and p.expose_value}
            ctx.invoke(cmd.callback, **values)
    except SlicewiseError as exc:
        print_error(exc)
        code = 2
    except exc_mod.UsageError as exc:
        emit({"type": "usage_error", "message": fwd.untyped(exc.format_message()), "exit_code": exc.exit_code})
        code = exc.exit_code
    except exc_mod.ClickException as exc:
        emit({"type": "click_error", "message": fwd.untyped(exc.format_message()), "exit_code": exc.exit_code})
        code = exc.exit_code
    except typer.Exit as exc:
        code = int(exc.exit_code)
    except typer.Abort:
        emit({"type": "abort"})
        code = 1
    except SystemExit as exc:
        if isinstance(exc.code, str):
            fwd.err_console.print(exc.code, markup=False, highlight=False)
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        code = 130
    except Exception:  # noqa: BLE001 - a bug: the client shows the traceback the CLI would have printed
        fwd.err_console.print(traceback.format_exc(), markup=False, highlight=False, soft_wrap=True)
        code = 1
    finally:
        FORWARDED.reset(token)
        emit({"type": "exit", "code": code})
