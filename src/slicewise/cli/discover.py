"""``slicewise discover RUN`` (suggested slices), ``slicewise slice history`` and ``slicewise slice run-order``."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from slicewise.cli.common import DEFAULT_WORKSPACE, Table, WorkspaceOpt, console, esc, open_workspace


def register(app: typer.Typer) -> None:
    from slicewise.cli.slices import slice_app

    app.command("discover")(discover)
    slice_app.command("history")(history)
    slice_app.command("run-order")(run_order)
    app.add_typer(slice_app, name="slices", hidden=True)  # `slicewise slices history` reads as well


def _f(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def discover(run: Annotated[str, typer.Argument(help="model/run")],
             metric: Annotated[str, typer.Option(help="error = 1 - this metric: f1, recall or precision")] = "f1",
             min_support: Annotated[float, typer.Option(help="least rows of a slice: a fraction (<= 1) or a count")] = 0.01,
             max_predicates: Annotated[int, typer.Option(help="predicates per slice, 1 to 3")] = 3,
             alpha: Annotated[float, typer.Option(help="false discovery rate (Benjamini-Hochberg)")] = 0.05,
             top: Annotated[int, typer.Option(help="suggestions to show at most")] = 20,
             confidence: Annotated[float | None, typer.Option(help="confidence threshold (default: the run's)")] = None,
             iou: Annotated[float | None, typer.Option(help="IoU threshold (default: the run's)")] = None,
             save: Annotated[list[int] | None, typer.Option(help="save suggestion N (1 = the first) as a slice; repeat")] = None,
             as_json: Annotated[bool, typer.Option("--json")] = False,
             workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Suggested slices: conjunctions of up to 3 predicates (metadata, split, dataset, tags, classes) whose
    error is significantly above the run's."""
    from slicewise.slices import suggest

    with open_workspace(workspace) as ws:
        d = suggest.discover(ws, run, metric=metric, min_support=min_support, max_predicates=max_predicates,
                             alpha=alpha, top=top, confidence=confidence, iou=iou)
        assert d is not None
        if as_json:
            console.print_json(d.model_dump_json())
        else:
            t = Table(title=f"suggested slices of {d.run}: error = {d.error_name}, {d.error:.3f} over {d.rows:,} rows "
                            f"(confidence {d.confidence:g}, IoU {d.iou:g})")
            for c in ("#", "filter", "rows", "error", "95% interval", "rest", "effect", "q"):
                t.add_column(c, justify="left" if c == "filter" else "right")
            for i, s in enumerate(d.suggestions, 1):
                t.add_row(str(i), esc(s.filter), f"{s.rows:,}", _f(s.error), f"{_f(s.ci_low)}-{_f(s.ci_high)}",
                          _f(s.error_rest), f"{s.effect:+.3f}", f"{s.q_value:.1e}")
            console.print(t)
            console.print(f"{len(d.suggestions)} suggestion(s); {d.predicates} predicates, {d.evaluated:,} slices tested "
                          f"(min support {d.min_support:,} rows, FDR {d.alpha:g}), {d.seconds:.2f} s", highlight=False)
        for n in save or []:
            if not 1 <= n <= len(d.suggestions):
                raise typer.BadParameter(f"there is no suggestion {n} (1 to {len(d.suggestions)})", param_hint="--save")
            s = suggest.save_suggestion(ws, d.suggestions[n - 1], run=d.run)
            console.print(f"saved slice [bold]{esc(s.name)}[/] (id {s.id}): {esc(s.filter)}", highlight=False)


def history(slice: Annotated[list[str] | None, typer.Argument(help="slice names / ids / auto keys (default: all)")] = None,  # noqa: A002
            model: Annotated[str, typer.Option("--model", "-m", help="the model whose runs to follow")] = ...,  # type: ignore[assignment]
            metric: Annotated[str, typer.Option(help="f1, recall or precision")] = "f1",
            confidence: Annotated[float | None, typer.Option(help="confidence threshold (default: each run's)")] = None,
            iou: Annotated[float | None, typer.Option(help="IoU threshold (default: each run's)")] = None,
            as_json: Annotated[bool, typer.Option("--json")] = False,
            workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Each slice's metric over the model's runs (history order); drops beyond noise are marked."""
    from slicewise.slices import history as h

    with open_workspace(workspace) as ws:
        items = h.slice_history(ws, model, slice or None, metric, confidence, iou)
        if as_json:
            console.print_json(json.dumps([x.model_dump(mode="json") for x in items]))
            return
        runs = [p.run for p in items[0].points] if items else [r.ref for r in h.model_runs(ws, model)]
        t = Table(title=f"{metric} per slice over the runs of {model} (rows in brackets; ▼ a drop beyond noise)")
        t.add_column("slice")
        for r in runs:
            t.add_column(r.split("/", 1)[1], justify="right")
        for x in items:
            cells = []
            for p in x.points:
                if p.value is None:
                    cells.append("-")
                else:
                    cells.append(f"{p.value:.3f} ({p.rows:,})" + (" ▼" if p.regression else ""))
            t.add_row(esc(x.slice) + (" (auto)" if x.kind == "auto" else ""), *cells)
        console.print(t)
        n = sum(x.regressions for x in items)
        console.print(f"{n} regression(s) beyond noise" if n else "no regression beyond noise", highlight=False)


def run_order(model: Annotated[str, typer.Argument(help="the model")],
              runs: Annotated[list[str], typer.Argument(help="its runs in history order (the others follow by creation)")],
              workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Set the order of a model's runs for the slice history."""
    from slicewise.slices import history as h

    with open_workspace(workspace) as ws:
        got = h.set_run_order(ws, model, runs)
        console.print("run order: " + " → ".join(esc(r.name) for r in got), highlight=False)
