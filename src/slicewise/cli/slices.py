"""``slicewise slice ...`` (saved and auto slices) and ``slicewise check`` (slice gates for CI)."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from slicewise.cli.common import (
    DEFAULT_WORKSPACE,
    Table,
    WorkspaceOpt,
    console,
    err_console,
    esc,
    open_workspace,
    print_job_state,
)

slice_app = typer.Typer(name="slice", help="Saved slices: dynamic, workspace-level queries; and auto slices.",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(slice_app, name="slice")
    app.command("check")(check)


RunOpt = Annotated[str | None, typer.Option("--run", "-r", help="model/run to count rows in")]
ConfOpt = Annotated[float | None, typer.Option(help="confidence threshold of metric conditions")]
IouOpt = Annotated[float | None, typer.Option(help="IoU threshold of metric conditions")]


def _table(items: list[Any], with_count: bool) -> Table:
    t = Table()
    for c in ["id", "name", "filter", "sort"] + (["rows"] if with_count else []) + ["description"]:
        t.add_column(c, justify="right" if c in ("id", "rows") else "left")
    for s in items:
        cnt = ["-" if s.count is None else f"{s.count:,}"] if with_count else []
        t.add_row(str(s.id), s.name, s.filter or "(all rows)", s.sort, *cnt,
                  s.description or "")
    return t


@slice_app.command("create")
def create(name: Annotated[str, typer.Argument(help="3 to 30 characters")],
           filter: Annotated[str, typer.Argument(help="the filter, in the query language")],
           description: Annotated[str | None, typer.Option(help="what the slice is for")] = None,
           sort: Annotated[str | None, typer.Option(help="sort keys, e.g. '-confidence.max'")] = None,
           workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Save a filter as a slice."""
    from slicewise import slices

    with open_workspace(workspace) as ws:
        s = slices.create_slice(ws, name, filter, description=description, sort=sort)
        console.print(f"created slice [bold]{esc(s.name)}[/] (id {s.id}): {esc(s.filter)}", highlight=False)


@slice_app.command("list")
def list_(run: RunOpt = None, confidence: ConfOpt = None, iou: IouOpt = None,
          as_json: Annotated[bool, typer.Option("--json")] = False,
          workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """The saved slices (with their row counts in a run when --run is given)."""
    from slicewise import slices

    with open_workspace(workspace) as ws:
        items = slices.list_slices(ws, run=run, confidence=confidence, iou=iou)
        if as_json:
            console.print_json(json.dumps([s.model_dump(mode="json") for s in items]))
            return
        console.print(_table(items, run is not None))
        console.print(f"{len(items)} of {slices.MAX_SLICES} slices used", highlight=False)


@slice_app.command("show")
def show(name: Annotated[str, typer.Argument(help="slice name or id (or an auto slice key with --run)")],
         run: RunOpt = None, confidence: ConfOpt = None, iou: IouOpt = None,
         limit: Annotated[int, typer.Option(help="rows to list")] = 10,
         metrics: Annotated[bool, typer.Option("--metrics", help="per-feature metrics of the slice vs all rows")] = False,
         workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """A slice's query, and with --run its count, first rows and (--metrics) metrics."""
    from slicewise import slices

    with open_workspace(workspace) as ws:
        s = slices.resolve_slice(ws, name, run)
        console.print(f"[bold]{esc(s.name)}[/] (id {s.id}, {s.kind})"
                      + esc(f": {s.description}" if s.description else ""), highlight=False)
        console.print(f"filter: {s.filter or '(all rows)'}" + (f"\nsort: {s.sort}" if s.sort else ""), highlight=False,
                      markup=False)
        if s.params:
            console.print("params: " + ", ".join(f"{k}={v:g}" for k, v in s.params.items()), highlight=False)
        if run is None:
            return
        page = slices.slice_rows(ws, s, run, confidence, iou, limit=limit)
        console.print(f"{page.total:,} row(s) in run {ws.run(run).ref}: "
                      + ", ".join(r.global_key for r in page.rows) + (" ..." if page.total > len(page.rows) else ""),
                      highlight=False)
        if metrics:
            m = slices.slice_metrics(ws, s, run, confidence, iou, with_confusion=False, warn=False)
            t = Table(title=f"slice vs all rows (confidence {m.confidence:g}, IoU {m.iou:g})")
            for c in ("feature", "precision", "recall", "f1", "all: precision", "all: recall", "all: f1"):
                t.add_column(c, justify="left" if c == "feature" else "right")

            def f3(v: Any) -> str:
                return "-" if v is None else f"{v:.3f}"
            for name_, f in [("(overall)", m.overall)] + [(f.feature, f) for f in m.features]:
                a = m.overall_all if name_ == "(overall)" else m.features_all.get(name_)
                t.add_row(str(name_), f3(f.precision), f3(f.recall), f3(f.f1),
                          *((f3(a.precision), f3(a.recall), f3(a.f1)) if a is not None else ("-",) * 3))
            console.print(t)
            print_job_state(m.job, ws.run(run).ref)


@slice_app.command("update")
def update(name: Annotated[str, typer.Argument(help="slice name or id")],
           filter: Annotated[str | None, typer.Option(help="the new filter ('' = all rows)")] = None,
           sort: Annotated[str | None, typer.Option(help="the new sort keys")] = None,
           description: Annotated[str | None, typer.Option(help="the new description")] = None,
           save_as: Annotated[str | None, typer.Option(help="save the changed query as a new slice instead")] = None,
           workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Change a slice's filter, sort or description (or --save-as a new slice)."""
    from slicewise import slices

    with open_workspace(workspace) as ws:
        s = slices.update_slice(ws, name, filter=filter, sort=sort, description=description, save_as=save_as)
        console.print(f"{'created' if save_as else 'updated'} slice [bold]{esc(s.name)}[/] (id {s.id}): "
                      f"{esc(s.filter)}", highlight=False)


@slice_app.command("rename")
def rename(name: str, new_name: str, workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Rename a slice."""
    from slicewise import slices

    with open_workspace(workspace) as ws:
        s = slices.rename_slice(ws, name, new_name)
        console.print(f"renamed to [bold]{esc(s.name)}[/]", highlight=False)


@slice_app.command("delete")
def delete(name: str, workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Delete a slice."""
    from slicewise import slices

    with open_workspace(workspace) as ws:
        s = slices.get_slice(ws, name)
        slices.delete_slice(ws, s)
        console.print(f"deleted slice [bold]{esc(s.name)}[/]", highlight=False)


@slice_app.command("auto")
def auto(run: Annotated[str, typer.Argument(help="model/run")], confidence: ConfOpt = None, iou: IouOpt = None,
         low_confidence: Annotated[float | None, typer.Option(help="set the low-confidence bound")] = None,
         mislabel_confidence: Annotated[float | None, typer.Option(help="set the candidate-mislabel confidence")] = None,
         low_metric: Annotated[float | None, typer.Option(help="set the low precision/recall/F1 bound")] = None,
         workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """The run's auto-generated slices with their counts (and set their parameters)."""
    from slicewise import slices

    with open_workspace(workspace) as ws:
        params = {k: v for k, v in (("low_confidence", low_confidence), ("mislabel_confidence", mislabel_confidence),
                                    ("low_metric", low_metric)) if v is not None}
        if params:
            slices.set_auto_params(ws, run, **params)
        items = slices.auto_slices(ws, run, confidence, iou)
        if not items:
            console.print("this run has no ground truth on its rows: no auto slices")
            return
        console.print(_table(items, True))
        if any(s.count is None for s in items):
            console.print("[yellow]counts need the run's metrics:[/] slicewise metrics compute RUN", highlight=False)


def _bounds(items: list[str] | None, flag: str) -> dict[str, float]:
    out = {}
    for item in items or []:
        key, sep, val = item.partition("=")
        try:
            out[key.strip()] = float(val)
        except ValueError:
            raise typer.BadParameter(f"{item!r} is not METRIC=NUMBER (e.g. recall=0.8)", param_hint=flag) from None
        if not sep:
            raise typer.BadParameter(f"{item!r} is not METRIC=NUMBER", param_hint=flag)
    return out


def check(run: Annotated[str, typer.Argument(help="model/run")],
          slice: Annotated[list[str], typer.Option("--slice", "-s", help="slice name (repeat for several)")],
          min_: Annotated[list[str] | None, typer.Option("--min", help="METRIC=BOUND, e.g. recall=0.8, f1[person]=0.6")] = None,
          max_: Annotated[list[str] | None, typer.Option("--max", help="METRIC=BOUND, e.g. fp=10")] = None,
          confidence: ConfOpt = None, iou: IouOpt = None,
          workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Gate a model on its slices: exit 1 when a slice's metric is below --min (or above --max)."""
    from slicewise import slices

    mins, maxs = _bounds(min_, "--min"), _bounds(max_, "--max")
    failed = False
    with open_workspace(workspace) as ws:
        for name in slice:
            res = slices.check(ws, run, name, mins, maxs, confidence, iou, warn=False)  # the report says it
            (console if res.passed else err_console).print(res.report(), highlight=False, markup=False)
            failed |= not res.passed
    if failed:
        sys.exit(1)
