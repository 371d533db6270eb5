"""Commands for the workspace's contents: info, datasets, rows, features, runs, tags, splits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from slicewise.cli.common import (
    DEFAULT_WORKSPACE,
    Table,
    WorkspaceOpt,
    console,
    esc,
    open_workspace,
    typed_path,
)


def register(app: typer.Typer) -> None:
    app.command("info")(info)
    app.command("rows")(rows)
    app.command("features")(features)
    app.command("runs")(runs)
    app.command("tag")(tag)
    app.command("untag")(untag)
    app.command("split")(split)
    app.command("create-run")(create_run)


def info(workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """What the workspace holds: counts, datasets, runs."""
    with open_workspace(workspace, read_only=True) as ws:
        t = Table(title=f"workspace {typed_path(workspace)}")
        t.add_column("what")
        t.add_column("count", justify="right")
        for k, v in ws.counts().items():
            t.add_row(k.replace("_", " "), f"{v:,}")
        console.print(t)
        for d in ws.datasets():
            n = ws.sql("SELECT count(*) FROM data_rows WHERE dataset_id = ?", [d.id]).fetchone()[0]
            console.print(f"dataset [bold]{esc(d.name)}[/]: {n:,} data rows")
        for r in ws.runs():
            n = ws.sql("SELECT count(*) FROM predictions WHERE run_id = ?", [r.id]).fetchone()[0]
            console.print(f"run [bold]{esc(r.ref)}[/]: {n:,} predictions")


def rows(workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
         dataset: Annotated[str | None, typer.Option(help="Only this dataset")] = None,
         limit: Annotated[int, typer.Option(help="How many rows")] = 20,
         offset: int = 0, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List data rows with split, metadata and tags."""
    with open_workspace(workspace, read_only=True) as ws:
        items = ws.data_rows(dataset=dataset, limit=limit, offset=offset)
        if as_json:
            console.print_json(json.dumps([r.model_dump(mode="json") for r in items]))
            return
        t = Table()
        for c in ("global key", "dataset", "split", "size", "metadata", "tags"):
            t.add_column(c)
        for r in items:
            size = f"{r.width}x{r.height}" if r.width else ""
            t.add_row(r.global_key, r.dataset, r.split, size, json.dumps(r.metadata, default=str), ", ".join(r.tags))
        console.print(t)


def features(workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """The ontology: every feature (class) with its kind."""
    with open_workspace(workspace, read_only=True) as ws:
        t = Table()
        for c in ("id", "name", "kind", "options"):
            t.add_column(c)
        for f in ws.features():
            t.add_row(str(f.id), f.name, f.kind, ", ".join(f.options or []))
        console.print(t)


def runs(workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Models and their runs."""
    with open_workspace(workspace, read_only=True) as ws:
        t = Table()
        for c in ("id", "run", "created", "config"):
            t.add_column(c)
        for r in ws.runs():
            t.add_row(str(r.id), r.ref, f"{r.created_at:%Y-%m-%d %H:%M}", json.dumps(r.config))
        console.print(t)


def create_run(ref: Annotated[str, typer.Argument(help="model/run")],
               workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
               config: Annotated[str, typer.Option(help="JSON object of run settings")] = "{}") -> None:
    """Create a model run (and its model)."""
    model, _, name = ref.partition("/")
    if not name:
        raise typer.BadParameter("give the run as model/run", param_hint="REF")
    with open_workspace(workspace) as ws:
        r = ws.create_run(model, name, json.loads(config))
        console.print(f"created run [bold]{esc(r.ref)}[/] (id {r.id})")


def _keys(keys: list[str], from_file: Path | None) -> list[str]:
    out = list(keys)
    if from_file:
        with open(from_file) as fh:
            out += [line.strip() for line in fh if line.strip()]
    if not out:
        raise typer.BadParameter("give data row keys, or --from-file")
    return out


def tag(tag_name: Annotated[str, typer.Argument(help="the tag, e.g. re-label")],
        keys: Annotated[list[str] | None, typer.Argument(help="global keys")] = None,
        from_file: Annotated[Path | None, typer.Option(help="file with one global key per line")] = None,
        workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Tag data rows."""
    with open_workspace(workspace) as ws:
        n = ws.add_tags(_keys(keys or [], from_file), [tag_name])
        console.print(f"tagged {n} data row(s) with {esc(repr(tag_name))}")


def untag(tag_name: str, keys: Annotated[list[str] | None, typer.Argument()] = None,
          from_file: Annotated[Path | None, typer.Option()] = None,
          workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Remove a tag from data rows."""
    with open_workspace(workspace) as ws:
        n = ws.remove_tags(_keys(keys or [], from_file), [tag_name])
        console.print(f"removed {esc(repr(tag_name))} from {n} data row(s)")


def split(split_name: Annotated[str, typer.Argument(help="train, valid, test or none")],
          keys: Annotated[list[str] | None, typer.Argument()] = None,
          from_file: Annotated[Path | None, typer.Option()] = None,
          workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Assign data rows to a split."""
    with open_workspace(workspace) as ws:
        n = ws.set_split(_keys(keys or [], from_file), split_name)
        console.print(f"{n} data row(s) now in split {esc(repr(split_name))}")
