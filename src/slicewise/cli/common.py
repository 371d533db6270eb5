"""What the CLI areas share: the workspace option, error printing, Rich console and progress.

**One entry to a workspace.** Commands open their workspace with ``with open_workspace(path) as ws:``
and do nothing before that but check their arguments. When a ``slicewise serve`` holds the workspace
(its discovery file, see :mod:`slicewise.discovery`), ``open_workspace`` does not open the file (DuckDB
would refuse): it sends the command to the server, which runs the same command against its own
workspace, prints what the server streams back and exits with the command's exit code (see
:mod:`slicewise.cli.remote`). When another process has the file open, it waits for it up to
``SLICEWISE_WAIT`` seconds (default 30), saying once what it waits for.

``console`` and ``err_console`` are proxies: inside the server they print to the forwarded command's
streams (one per request), elsewhere to this process's stdout and stderr.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

if TYPE_CHECKING:
    from slicewise.cli.remote import Forwarded
    from slicewise.workspace import Workspace

#: the forwarded command this thread runs inside the server, if any (see slicewise.cli.remote)
FORWARDED: ContextVar[Forwarded | None] = ContextVar("slicewise_forwarded", default=None)
WAIT_DEFAULT = 30.0


class _ConsoleProxy:
    """A Rich console that is the forwarded command's when there is one (see :data:`FORWARDED`)."""

    def __init__(self, local: Console, stream: str) -> None:
        self._local = local
        self._stream = stream

    def target(self) -> Console:
        fwd = FORWARDED.get()
        return self._local if fwd is None else getattr(fwd, self._stream)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target(), name)


console = cast(Console, _ConsoleProxy(Console(), "console"))
err_console = cast(Console, _ConsoleProxy(Console(stderr=True), "err_console"))

WorkspaceOpt = Annotated[
    Path,
    typer.Option("--workspace", "-w", envvar="SLICEWISE_WORKSPACE",
                 help="Workspace file (DuckDB). Env: SLICEWISE_WORKSPACE. While `slicewise serve` holds it, "
                      "the command runs in that server; while another command has it open, this one waits "
                      "up to SLICEWISE_WAIT seconds (default 30)."),
]
DEFAULT_WORKSPACE = Path("slicewise.duckdb")


def open_workspace(path: Path, *, read_only: bool = False) -> Workspace:
    """The workspace of a command, to use as ``with open_workspace(path) as ws:``.

    Inside the server, the server's own workspace (not closed by the ``with``). When a live server
    holds ``path``, the command is sent there instead and this raises ``typer.Exit`` with its exit code.
    """
    fwd = FORWARDED.get()
    if fwd is not None:
        return fwd.open(path)
    from slicewise.discovery import find_server

    server = find_server(path)
    if server is not None:
        from slicewise.cli.remote import forward

        forward(server)  # returns only when nothing answers there (a stale discovery file)
    from slicewise.workspace import open as open_file

    def waiting(message: str) -> None:
        err_console.print(message, markup=False, highlight=False)

    return open_file(path, read_only=read_only, wait=wait_seconds(), on_wait=waiting)


def refuse_if_served(path: Path, command: str) -> None:
    """For the commands that cannot run inside a server (``serve``, ``demo``): a StoreError when a live
    server serves ``path``, saying where it is and how to proceed."""
    from slicewise.discovery import find_server

    server = find_server(path)
    if server is not None and server.answers():
        from slicewise.errors import StoreError

        raise StoreError(f"{server.describe()} is serving this workspace, so `slicewise {command}` cannot run on it",
                         where=str(path), fix=f"use that server (open {server.url}/ ; other slicewise commands go "
                                              f"through it), or stop it first (Ctrl+C in its terminal, or kill {server.pid})")


def wait_seconds() -> float:
    """How long a command waits for another process to close the workspace: ``SLICEWISE_WAIT`` (s)."""
    raw = os.environ.get("SLICEWISE_WAIT", "")
    try:
        return float(raw) if raw.strip() else WAIT_DEFAULT
    except ValueError:
        raise typer.BadParameter(f"SLICEWISE_WAIT={raw!r} is not a number of seconds") from None


def cli_path(path: Path) -> Path:
    """A path the user gave, as this process must open it: relative to the CLI's working directory,
    which for a command running inside the server is the client's."""
    fwd = FORWARDED.get()
    return path if fwd is None or path.is_absolute() else Path(fwd.cwd) / path


def typed_path(path: Path | str) -> str:
    """A path as the user typed it (a forwarded command receives its path arguments made absolute)."""
    fwd = FORWARDED.get()
    return str(path) if fwd is None else fwd.typed.get(str(path), str(path))


def esc(value: object) -> str:
    """THE way user or library text goes into anything Rich renders with markup (a ``console.print`` with
    styling, a table cell, a title): escaped, so that it reaches the user character for character. Without
    it Rich reads ``[x, y, width, height]`` or ``[bbox]`` as markup tags and drops them."""
    return escape(str(value))


class Table(RichTable):
    """A Rich table whose title and string cells are text, never markup (see :func:`esc`)."""

    def __init__(self, *args: Any, title: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, title=None if title is None else esc(title), **kwargs)

    def add_row(self, *cells: Any, **kwargs: Any) -> None:
        super().add_row(*[esc(c) if isinstance(c, str) else c for c in cells], **kwargs)


#: set by the global --debug option: errors then come with their traceback
DEBUG = False
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def print_error(exc: BaseException) -> None:
    """``error: <what> (fix: ...)`` on stderr, as ``run_app`` prints slicewise's errors."""
    fwd = FORWARDED.get()
    text = str(exc) if fwd is None else fwd.untyped(str(exc))
    err_console.print(f"[bold red]error:[/] {esc(text)}", highlight=False, markup=True, soft_wrap=True)


def _traceback() -> None:
    import traceback

    err_console.print(traceback.format_exc(), markup=False, highlight=False, soft_wrap=True)


class CtrlC(BaseException):
    """Ctrl-C in a CLI command. A BaseException: an ``except Exception`` on the way (an optional import, a
    fallback, a best-effort cleanup) must not swallow it and let the command run on to exit 0; and not a
    KeyboardInterrupt, which click turns into "Aborted!" and exit 1. The store rolls back what it was
    writing and lets it through."""


def _on_sigint(signum: int, frame: Any) -> None:
    raise CtrlC


def run_app(app: typer.Typer) -> None:
    """Run the CLI: slicewise's errors as one ``error:`` line (exit 2), Ctrl-C as one line (exit 130; what
    the command was writing is rolled back), anything else as one line naming the failure (exit 1); never a
    traceback unless ``--debug``. Usage errors are click's (exit 2)."""
    import signal

    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, _on_sigint)  # not click's "Aborted!" (exit 1): ours, exit 130
    try:
        _run(app)
    finally:  # (run in a process that goes on, e.g. a test: leave Ctrl-C as it was, not ignored; processes
        # started later inherit an ignored SIGINT)
        signal.signal(signal.SIGINT, previous)


def _run(app: typer.Typer) -> None:
    import signal

    from slicewise.errors import Interrupted, SlicewiseError

    try:
        app(standalone_mode=True)
    except (KeyboardInterrupt, Interrupted, CtrlC):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C does not interrupt the message
        if DEBUG:
            _traceback()
        from slicewise.cli_start import MESSAGE

        # straight to the process's stderr: a Ctrl-C that lands while a progress bar stops can leave Rich's
        # live display half torn down (its render hook and stream redirection still in place), which would
        # swallow a message printed through Rich
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        if sys.stderr is not None:
            sys.stderr.write(MESSAGE + "\n")
            sys.stderr.flush()
        sys.exit(EXIT_INTERRUPTED)
    except SlicewiseError as exc:
        if DEBUG:
            _traceback()
        print_error(exc)
        sys.exit(EXIT_ERROR)
    except Exception as exc:
        if DEBUG:
            _traceback()
        err_console.print(f"[bold red]error:[/] unexpected failure: {esc(type(exc).__name__)}: {esc(exc)} (fix: run "
                          "it again with --debug to see where, and report it)", highlight=False, markup=True,
                          soft_wrap=True)
        sys.exit(1)


@contextmanager
def progress(description: str, total: int | None = None) -> Iterator[Any]:
    """A Rich progress bar; yields ``advance(n)``. Quiet when not on a terminal unless SLICEWISE_PROGRESS=1.

    Inside the server, the progress goes to the client, which draws the bar."""
    fwd = FORWARDED.get()
    if fwd is not None:
        with fwd.progress(description, total) as advance:
            yield advance
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    err = cast(_ConsoleProxy, err_console).target()
    show = err.is_terminal or os.environ.get("SLICEWISE_PROGRESS") == "1"
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, disable=not show, transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1, total=None: bar.update(task, advance=n, total=total)


def print_problems(problems: list[Any], title: str, limit: int = 20) -> None:
    for p in problems[:limit]:
        err_console.print(f"[yellow]{esc(title)}:[/] {esc(p)}", highlight=False, markup=True, soft_wrap=True)
    if len(problems) > limit:
        err_console.print(f"[yellow]{title}:[/] ... and {len(problems) - limit} more", markup=True)


def print_job_state(job: Any, run: str, *, err: bool = False) -> None:
    """A yellow line when the metrics shown are not up to date (the job is stale, running or failed)."""
    if getattr(job, "outdated", False):
        (err_console if err else console).print(f"[yellow]{esc(job.describe(run))}[/]", highlight=False)
