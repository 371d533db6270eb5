"""``slicewise select RUN --pool FILTER --n N --strategy S``: active learning, the rows to label next."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer

from slicewise.cli.common import DEFAULT_WORKSPACE, Table, WorkspaceOpt, console, esc, open_workspace


def register(app: typer.Typer) -> None:
    app.command("select")(select)


def select(run: Annotated[str, typer.Argument(help="model/run whose predictions score the pool ('-': no run, "
                                                   "for diversity and random over every row)")],
           pool: Annotated[str, typer.Option(help="the pool, a filter, e.g. 'annotation is none'")] = "annotation is none",
           n: Annotated[int, typer.Option("--n", "-n", help="rows to pick")] = 100,
           strategy: Annotated[str, typer.Option(help="least_confidence, margin, entropy, diversity, combined or "
                                                      "random")] = "entropy",
           space: Annotated[str | None, typer.Option(help="embedding space (diversity, combined)")] = None,
           class_balance: Annotated[bool, typer.Option("--class-balance", help="spread the picks evenly over "
                                                                                 "the predicted classes")] = False,
           aggregate: Annotated[str | None, typer.Option(help="per-row aggregate of object scores: max, mean, sum "
                                                              "or count (default by strategy)")] = None,
           uncertainty: Annotated[str, typer.Option(help="the uncertainty of the combined strategy")] = "entropy",
           seed: Annotated[int, typer.Option(help="seed of random and of k-center greedy's start")] = 0,
           batch: Annotated[str | None, typer.Option(help="put the rows in a new batch of this name")] = None,
           priority: Annotated[int, typer.Option(help="the batch's priority")] = 0,
           note: Annotated[str, typer.Option(help="the batch's note")] = "",
           tag: Annotated[str | None, typer.Option(help="also tag the rows")] = None,
           show: Annotated[int, typer.Option(help="rows to print (0: all)")] = 20,
           as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
           workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Pick the N rows of a pool most worth labelling (active learning), print them with their scores,
    and optionally put them in a batch."""
    from slicewise.curation.active import select_rows

    with open_workspace(workspace) as ws:
        sel = select_rows(ws, pool, n, strategy=strategy, run=None if run == "-" else run, space=space,
                          class_balance=class_balance, seed=seed, aggregate=aggregate, uncertainty=uncertainty,
                          batch=batch, priority=priority, note=note, tag=tag)
        if as_json:
            console.print_json(json.dumps(asdict(sel)))
            return
        t = Table(title=f"{len(sel.rows):,} of {sel.pool_size:,} pool row(s) by {sel.strategy}"
                  + (f" ({sel.aggregate})" if sel.aggregate and sel.strategy != "combined" else ""))
        t.add_column("#", justify="right")
        t.add_column("global key")
        t.add_column("score", justify="right")
        cols = [c for c, on in (("uncertainty", sel.strategy == "combined"),
                                ("distance", sel.strategy in ("diversity", "combined")),
                                ("predicted", any(r.predicted_class for r in sel.rows))) if on]
        for c in cols:
            t.add_column(c, justify="right" if c != "predicted" else "left")
        for i, r in enumerate(sel.rows[:show] if show > 0 else sel.rows):
            vals = {"uncertainty": r.uncertainty, "distance": r.distance, "predicted": r.predicted_class}
            t.add_row(str(i + 1), esc(r.global_key), f"{r.score:.4g}",
                      *[("-" if vals[c] is None else f"{vals[c]:.4g}" if isinstance(vals[c], float) else esc(str(vals[c])))
                        for c in cols])
        console.print(t)
        if 0 < show < len(sel.rows):
            console.print(f"... {len(sel.rows) - show:,} more (--show 0 prints them all)", highlight=False)
        for line in sel.notes:
            console.print(f"[yellow]note:[/] {esc(line)}", highlight=False)
        if sel.batch:
            console.print(f"batch [bold]{esc(sel.batch)}[/]: {len(sel.rows):,} rows", highlight=False)
        if sel.tag:
            console.print(f"tagged {esc(sel.tag)}", highlight=False)
