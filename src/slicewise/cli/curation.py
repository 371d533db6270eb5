"""``slicewise batch ...`` (labelling batches: create, list, show, export, import, drop) and
``slicewise queue ...`` (the labelling queue: show, rework, move, history)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from slicewise.cli.common import (
    DEFAULT_WORKSPACE,
    Table,
    WorkspaceOpt,
    cli_path,
    console,
    err_console,
    esc,
    open_workspace,
    typed_path,
)

batch_app = typer.Typer(name="batch", help="Labelling batches: frozen sets of rows to export to labelling tools.",
                        no_args_is_help=True)
queue_app = typer.Typer(name="queue", help="The labelling queue: to_label, in_review, rework, done.",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(batch_app, name="batch")
    app.add_typer(queue_app, name="queue")


RunOpt = Annotated[str | None, typer.Option("--run", "-r", help="model/run: the rows' run (for metric filters and "
                                            "sorts) and, on export, the predictions to pre-annotate with")]
FilterOpt = Annotated[str | None, typer.Option("--filter", "-f", help="rows matching this filter")]
ByOpt = Annotated[str | None, typer.Option("--by", help="who does it (default: your login name)")]


def _rows_arg(ws: Any, keys: list[str] | None, from_file: Path | None, filter: str | None, slice_: str | None,
              sort: str | None, run: str | None) -> Any:
    from slicewise.view import View

    listed = list(keys or [])
    if from_file is not None:
        listed += [ln.strip() for ln in cli_path(from_file).read_text().splitlines() if ln.strip()]
    if listed and (filter or slice_):
        raise typer.BadParameter("give global keys or --filter/--slice, not both")
    if listed:
        return listed
    if not (filter or slice_ or sort):
        raise typer.BadParameter("give the rows: global keys, --from-file, --filter or --slice")
    return View(run=run, filter=filter, slice=slice_, sort=sort)


def _batch_table(items: list[Any]) -> Table:
    t = Table()
    for c in ("name", "rows", "status", "priority", "to_label", "in_review", "rework", "done", "source", "note"):
        t.add_column(c, justify="right" if c in ("rows", "priority", "to_label", "in_review", "rework", "done") else "left")
    for b in items:
        t.add_row(b.name, f"{b.count:,}", b.status, str(b.priority),
                  *[f"{b.states.get(s, 0):,}" for s in ("to_label", "in_review", "rework", "done")],
                  b.source or "", b.note)
    return t


def _batch_json(b: Any) -> dict[str, Any]:
    import dataclasses

    d = dataclasses.asdict(b)
    for k in ("created_at", "exported_at"):
        d[k] = d[k].isoformat() if d[k] is not None else None
    return d


@batch_app.command("create")
def create(name: Annotated[str, typer.Argument(help="the batch's name (unique)")],
           keys: Annotated[list[str] | None, typer.Argument(help="global keys of the rows")] = None,
           from_file: Annotated[Path | None, typer.Option(help="file with one global key per line")] = None,
           filter: FilterOpt = None,
           slice_: Annotated[str | None, typer.Option("--slice", help="the rows of a saved slice")] = None,
           sort: Annotated[str | None, typer.Option(help="sort keys, e.g. confidence.max (with --top)")] = None,
           top: Annotated[int | None, typer.Option(help="only the first N rows in the sort order")] = None,
           run: RunOpt = None,
           priority: Annotated[int, typer.Option(help="higher first (-1000..1000)")] = 0,
           note: Annotated[str, typer.Option(help="a note for the labellers")] = "",
           by: ByOpt = None, workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Make a batch of rows: global keys, a filter, a slice, or the top N of a sort."""
    from slicewise.curation import batches

    with open_workspace(workspace) as ws:
        rows = _rows_arg(ws, keys, from_file, filter, slice_, sort, run)
        b = batches.create_batch(ws, name, rows, priority=priority, note=note, limit=top, by=by)
        console.print(f"created batch [bold]{esc(b.name)}[/] with {b.count:,} row(s) "
                      f"({', '.join(f'{n:,} {s}' for s, n in b.states.items())})", highlight=False)


@batch_app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json")] = False, workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Every batch with its rows, status, priority and queue states."""
    from slicewise.curation import batches

    with open_workspace(workspace) as ws:
        items = batches.list_batches(ws)
        if as_json:
            console.print_json(json.dumps([_batch_json(b) for b in items]))
            return
        console.print(_batch_table(items))
        console.print(f"{len(items)} batch(es)", highlight=False)


@batch_app.command("show")
def show(name: Annotated[str, typer.Argument(help="batch name or id")],
         limit: Annotated[int, typer.Option(help="rows to list")] = 20,
         as_json: Annotated[bool, typer.Option("--json")] = False, workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """A batch: its counts and its first rows with their queue states."""
    from slicewise.curation import batches, queue

    with open_workspace(workspace) as ws:
        b = batches.get_batch(ws, name)
        ids = batches.batch_rows(ws, b.id)
        entries = {e.data_row_id: e for e in queue.queue_states(ws, rows=ids[:limit])}
        keys = batches.batch_keys(ws, b.id)[:limit]
        if as_json:
            console.print_json(json.dumps({**_batch_json(b), "rows": keys}))
            return
        console.print(_batch_table([b]))
        t = Table()
        for c in ("global_key", "state", "by", "when"):
            t.add_column(c)
        for rid, key in zip(ids[:limit], keys, strict=True):
            e = entries.get(rid)
            t.add_row(key, e.state if e else "-", e.by if e else "", e.at.isoformat(" ", "seconds") if e else "")
        console.print(t)
        if b.count > limit:
            console.print(f"... and {b.count - limit:,} more (--limit)", highlight=False)


@batch_app.command("export")
def export(name: Annotated[str, typer.Argument(help="batch name or id")],
           fmt: Annotated[str, typer.Option("--format", help="labelstudio, labelstudio-config, cvat (XML), cvat-coco "
                                            "(zip), labelbox (NDJSON), coco or csv")] = "labelstudio",
           out: Annotated[Path | None, typer.Option("--out", "-o", help="the file to write (default: NAME.FORMAT "
                                                    "suffix in the current folder)")] = None,
           run: RunOpt = None,
           pre: Annotated[str, typer.Option(help="pre-annotations: auto (predictions with --run, else labels), "
                                            "predictions, labels or none")] = "auto",
           min_confidence: Annotated[float | None, typer.Option(help="predictions from this confidence (default: "
                                                                "the run's threshold)")] = None,
           image_prefix: Annotated[str | None, typer.Option(help="put before image paths, e.g. "
                                                            "/data/local-files/?d=")] = None,
           workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Export a batch for labelling (Label Studio, CVAT, Labelbox, COCO, CSV)."""
    from slicewise.curation import export as ex

    with open_workspace(workspace) as ws:
        res = ex.export_batch(ws, name, fmt, run=run, pre=pre, min_confidence=min_confidence, image_prefix=image_prefix)
        target = cli_path(out if out is not None else Path(res.filename))
        target.write_bytes(res.data)
        msg = f"wrote {res.rows:,} row(s)"
        if res.format != "labelstudio-config":
            msg += f" with {res.objects:,} {res.pre if res.pre != 'none' else 'pre-annotations'}"
        console.print(f"{msg} to {esc(typed_path(target))} ({res.format})", highlight=False)
        if res.skipped:
            err_console.print(f"warning: {res.skipped:,} object(s) this format cannot hold were left out "
                              "(e.g. masks in Label Studio)", markup=False, highlight=False)


@batch_app.command("import")
def import_(path: Annotated[Path, typer.Argument(help="the tool's export: Label Studio JSON, CVAT XML or zip, COCO")],
            batch: Annotated[str | None, typer.Option("--batch", "-b", help="the batch the file was exported from "
                                                      "(file names are matched among its rows)")] = None,
            fmt: Annotated[str | None, typer.Option("--format", help="labelstudio, cvat or coco "
                                                    "(default: from the file)")] = None,
            to: Annotated[str, typer.Option("--to", help="queue state of the labelled rows: in_review or done")] = "in_review",
            by: ByOpt = None,
            create_features: Annotated[bool, typer.Option(help="add classes the ontology does not have")] = False,
            workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Import labelled results: they replace the rows' ground truth; metrics recompute; rows move in the queue."""
    from slicewise.curation import labels

    with open_workspace(workspace) as ws:
        res = labels.import_labels(ws, cli_path(path), fmt=fmt, batch=batch, state=to, by=by, create_features=create_features)
        console.print(f"{res.rows:,} row(s) labelled ({res.format}): {res.annotations:,} annotation(s) replace "
                      f"{res.replaced:,}; {res.unlabelled:,} item(s) not labelled yet", highlight=False)
        for s, n in res.moved.items():
            console.print(f"{n:,} row(s) moved to {s}", highlight=False)
        if res.runs:
            console.print(f"metrics recomputed: {esc(', '.join(res.recomputed) or '-')}; runs holding these rows: "
                          f"{esc(', '.join(res.runs))}", highlight=False)
        for w in res.warnings[:20]:
            err_console.print(f"warning: {w}", markup=False, highlight=False)


@batch_app.command("drop")
def drop(name: Annotated[str, typer.Argument(help="batch name or id")], workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Delete a batch (its rows, labels and queue states stay)."""
    from slicewise.curation import batches

    with open_workspace(workspace) as ws:
        b = batches.drop_batch(ws, name)
        console.print(f"dropped batch [bold]{esc(b.name)}[/] ({b.count:,} row(s))", highlight=False)


@queue_app.command("show")
def queue_show(dataset: Annotated[str | None, typer.Option(help="only this dataset")] = None,
               state: Annotated[str | None, typer.Option(help="only rows in this state")] = None,
               limit: Annotated[int, typer.Option(help="rows to list")] = 20,
               as_json: Annotated[bool, typer.Option("--json")] = False,
               workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Rows per queue state, and the rows (of a state) with who moved them there and when."""
    from slicewise.curation import queue

    with open_workspace(workspace) as ws:
        counts = queue.queue_counts(ws, dataset)
        entries = queue.queue_states(ws, dataset=dataset, state=state, limit=limit)
        if as_json:
            console.print_json(json.dumps({"counts": counts, "rows": [
                {"global_key": e.global_key, "dataset": e.dataset, "state": e.state, "batch": e.batch, "by": e.by,
                 "at": e.at.isoformat(), "note": e.note} for e in entries]}))
            return
        console.print("  ".join(f"{s}: {counts.get(s, 0):,}" for s in queue.STATES), highlight=False)
        t = Table()
        for c in ("global_key", "dataset", "state", "batch", "by", "when", "note"):
            t.add_column(c)
        for e in entries:
            t.add_row(e.global_key, e.dataset, e.state, e.batch or "", e.by, e.at.isoformat(" ", "seconds"), e.note or "")
        console.print(t)


@queue_app.command("rework")
def rework(keys: Annotated[list[str] | None, typer.Argument(help="global keys")] = None,
           from_file: Annotated[Path | None, typer.Option(help="file with one global key per line")] = None,
           filter: FilterOpt = None, run: RunOpt = None,
           note: Annotated[str | None, typer.Option(help="why (shown to the labellers)")] = None,
           by: ByOpt = None, workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Send rows to rework: global keys, or a filter such as 'tag:re-label'."""
    from slicewise.curation import queue

    with open_workspace(workspace) as ws:
        n = queue.send_to_rework(ws, _rows_arg(ws, keys, from_file, filter, None, None, run), by=by, note=note)
        console.print(f"{n:,} row(s) sent to rework", highlight=False)


@queue_app.command("move")
def move(state: Annotated[str, typer.Argument(help="to_label, in_review, rework or done")],
         keys: Annotated[list[str] | None, typer.Argument(help="global keys")] = None,
         from_file: Annotated[Path | None, typer.Option(help="file with one global key per line")] = None,
         filter: FilterOpt = None, run: RunOpt = None,
         only_from: Annotated[list[str] | None, typer.Option("--from", help="only rows now in this state")] = None,
         note: Annotated[str | None, typer.Option(help="why")] = None,
         by: ByOpt = None, workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Move rows to a queue state (e.g. approve reviewed rows: move done --from in_review -f 'batch:b1')."""
    from slicewise.curation import queue

    with open_workspace(workspace) as ws:
        n = queue.move(ws, _rows_arg(ws, keys, from_file, filter, None, None, run), state, by=by, note=note,
                       only_from=only_from)
        console.print(f"{n:,} row(s) moved to {esc(queue.state_name(state))}", highlight=False)


@queue_app.command("history")
def history(key: Annotated[str, typer.Argument(help="a global key")], workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Every move of one row in the queue."""
    from slicewise.curation import queue

    with open_workspace(workspace) as ws:
        t = Table()
        for c in ("when", "from", "to", "by", "note"):
            t.add_column(c)
        for h in queue.history(ws, key):
            t.add_row(h["at"].isoformat(" ", "seconds"), h["from"] or "-", h["to"], h["by"], h["note"] or "")
        console.print(t)
