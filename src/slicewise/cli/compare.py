"""``slicewise diff``: compare two runs over their common rows, for people and as a CI gate."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from slicewise.cli.common import DEFAULT_WORKSPACE, Table, WorkspaceOpt, console, err_console, open_workspace

#: the exit code of ``slicewise diff`` when a significant regression exceeds the allowed drop
EXIT_REGRESSION = 3


def register(app: typer.Typer) -> None:
    app.command("diff")(diff)


def _drops(items: list[str] | None) -> dict[str, float]:
    from slicewise.compare import METRICS

    out = {}
    for item in items or []:
        key, sep, val = item.partition("=")
        key = key.strip().lower()
        if key not in METRICS:
            raise typer.BadParameter(f"{key!r} is not one of {', '.join(METRICS)}", param_hint="--max-drop")
        try:
            v = float(val)
        except ValueError:
            raise typer.BadParameter(f"{item!r} is not METRIC=DROP (e.g. recall=0.02)", param_hint="--max-drop") from None
        if not sep or not 0 <= v <= 1:
            raise typer.BadParameter(f"{item!r} is not METRIC=DROP with DROP in [0, 1]", param_hint="--max-drop")
        out[key] = v
    return out


def _cell(d: Any) -> str:
    if d.delta is None:
        return "-" if d.baseline is None and d.run is None else f"{_v(d.baseline)} -> {_v(d.run)}"
    mark = " ▼" if d.regression else (" ▲" if d.significant else "")
    ci = f" [{d.lo:+.3f}, {d.hi:+.3f}]" if d.lo is not None and d.hi is not None else ""
    return f"{_v(d.baseline)} -> {_v(d.run)}\n{d.delta:+.3f}{ci}{mark}"


def _v(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def diff(baseline: Annotated[str, typer.Argument(help="the baseline run (model/run), e.g. the one in production")],
         run: Annotated[str, typer.Argument(help="the run to compare with it (model/run)")],
         slice: Annotated[list[str] | None, typer.Option("--slice", "-s", help="compare only these slices (repeat); "
                                                          "default: every saved slice and the auto slices")] = None,
         max_drop: Annotated[list[str] | None, typer.Option("--max-drop", help="METRIC=DROP allowed, e.g. recall=0.02 "
                                                            "(repeat); default: any significant drop fails")] = None,
         confidence: Annotated[float | None, typer.Option(help="confidence threshold (on both runs' grids)")] = None,
         iou: Annotated[float | None, typer.Option(help="IoU threshold")] = None,
         boot: Annotated[int, typer.Option("--boot", help="bootstrap resamples")] = 1000,
         seed: Annotated[int, typer.Option(help="bootstrap seed")] = 0,
         level: Annotated[float, typer.Option(help="confidence level of the intervals")] = 0.95,
         as_json: Annotated[bool, typer.Option("--json", help="print the comparison as JSON")] = False,
         workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Compare RUN with BASELINE over their common data rows: per class and slice the change of precision,
    recall and F1 with 95% bootstrap intervals (▼ a significant drop, ▲ a significant gain), and how many
    objects flipped. Exit code 3 when a significant drop is larger than --max-drop (0 otherwise; 2 on an
    error), for CI."""
    from slicewise.compare import compare_runs

    drops = _drops(max_drop)
    with open_workspace(workspace) as ws:
        cmp = compare_runs(ws, baseline, run, confidence=confidence, iou=iou, slices=slice or None,
                           auto=not slice, n_boot=boot, seed=seed, level=level)
        regs = cmp.regressions(drops or None)
        if as_json:
            out = cmp.to_dict()
            out["regressions"] = [r.__dict__ for r in regs]
            console.print_json(json.dumps(out))
        else:
            t = Table(title=f"{cmp.run} vs {cmp.baseline} at confidence {cmp.confidence:g}, IoU {cmp.iou:g}: "
                            f"{cmp.rows:,} common rows")
            for c in ("group", "rows", "precision", "recall", "f1"):
                t.add_column(c, justify="left" if c != "rows" else "right")
            for g in cmp.groups():
                if g.kind == "slice" and not g.rows:
                    continue  # an empty slice (listed in --json)
                name = g.name if g.kind == "class" else f"{g.kind}: {g.name}"
                t.add_row(name, f"{g.rows:,}", *(_cell(g.metrics[m]) for m in ("precision", "recall", "f1")))
            console.print(t)
            f = Table(title="objects that flipped (run vs baseline)")
            for c in ("class", "tp->fn", "fn->tp", "fp-new", "fp-gone", "class changed", "iou moved"):
                f.add_column(c, justify="left" if c == "class" else "right")
            for g in [*cmp.classes, cmp.overall]:
                f.add_row(g.name, *(str(g.flips.get(k, 0)) for k in ("tp->fn", "fn->tp", "fp-new", "fp-gone", "class",
                                                                       "iou")))
            console.print(f)
            if cmp.only_baseline or cmp.only_run:
                console.print(f"left out: {cmp.only_baseline:,} rows only in {cmp.baseline}, {cmp.only_run:,} only in "
                              f"{cmp.run}", markup=False, highlight=False)
            console.print(f"intervals: percentile bootstrap over data rows, {cmp.n_boot} resamples, seed {cmp.seed}, "
                          f"level {cmp.level:g}", markup=False, highlight=False)
    if regs:
        allowed = ", ".join(f"{m} by {v:g}" for m, v in drops.items()) if drops else "none"
        err_console.print(f"{len(regs)} significant regression(s) beyond the allowed drop ({allowed}):", markup=False,
                          highlight=False)
        for r in regs:
            err_console.print(f"  {r.kind} {r.name}: {r.metric} {r.delta:+.3f} [{r.lo:+.3f}, {r.hi:+.3f}]", markup=False,
                              highlight=False)
        sys.exit(EXIT_REGRESSION)
    if not as_json:
        console.print("no significant regression beyond the allowed drop", markup=False, highlight=False)
