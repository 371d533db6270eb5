"""What the CLI areas share: the workspace option, error printing, Rich console and progress."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from slicewise.workspace import Workspace

console = Console()
err_console = Console(stderr=True)

WorkspaceOpt = Annotated[
    Path,
    typer.Option("--workspace", "-w", envvar="SLICEWISE_WORKSPACE",
                 help="Workspace file (DuckDB). Env: SLICEWISE_WORKSPACE."),
]
DEFAULT_WORKSPACE = Path("slicewise.duckdb")


def open_workspace(path: Path, *, read_only: bool = False) -> Workspace:
    import slicewise

    return slicewise.open(path, read_only=read_only)


def run_app(app: typer.Typer) -> None:
    from slicewise.errors import SlicewiseError

    try:
        app(standalone_mode=True)
    except SlicewiseError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
        sys.exit(2)


@contextmanager
def progress(description: str, total: int | None = None) -> Iterator[Any]:
    """A Rich progress bar; yields ``advance(n)``. Quiet when not on a terminal unless SLICEWISE_PROGRESS=1."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    show = err_console.is_terminal or os.environ.get("SLICEWISE_PROGRESS") == "1"
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console, disable=not show, transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1, total=None: bar.update(task, advance=n, total=total)


def print_problems(problems: list[Any], title: str, limit: int = 20) -> None:
    for p in problems[:limit]:
        err_console.print(f"[yellow]{title}:[/] {p}", highlight=False, markup=True, soft_wrap=True)
    if len(problems) > limit:
        err_console.print(f"[yellow]{title}:[/] ... and {len(problems) - limit} more", markup=True)


def print_job_state(job: Any, run: str, *, err: bool = False) -> None:
    """A yellow line when the metrics shown are not up to date (the job is stale, running or failed)."""
    if getattr(job, "outdated", False):
        from rich.markup import escape

        (err_console if err else console).print(f"[yellow]{escape(job.describe(run))}[/]", highlight=False)
