"""``slicewise mistakes RUN`` (label-mistake detectors: flagged counts and reviewed precision, or the
top rows of one detector) and ``slicewise verdict confirmed|rejected|clear KEY...`` (reviewers' verdicts)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from slicewise.cli.common import DEFAULT_WORKSPACE, Table, WorkspaceOpt, console, esc, open_workspace


def register(app: typer.Typer) -> None:
    app.command("mistakes")(mistakes)
    app.command("verdict")(verdict)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def mistakes(run: Annotated[str, typer.Argument(help="the run, MODEL/RUN or its id")],
             detector: Annotated[str | None, typer.Option(
                 help="list the rows this detector flags (cleanlab, knn, combined), most likely mistakes first")] = None,
             top: Annotated[int, typer.Option(help="how many rows to list with --detector")] = 20,
             all_rows: Annotated[bool, typer.Option("--all", help="with --detector: rank every scored row, "
                                                    "not only the flagged ones")] = False,
             space: Annotated[str | None, typer.Option(help="embedding space of the kNN detector "
                                                       "(default: the only space, or image)")] = None,
             as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
             workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Label-mistake detectors on a run: rows scored and flagged by each, and the precision measured by
    reviewers' verdicts (tags mistake-confirmed / mistake-rejected, see `slicewise verdict`)."""
    from slicewise import mistakes as mk

    if top < 0:
        raise typer.BadParameter(f"--top {top} is negative", param_hint="--top")
    with open_workspace(workspace) as ws:
        r = ws.run(run)
        if detector is not None:
            s = mk.scores(ws, r, detector, space)
            found = s.top(top, flagged_only=not all_rows)
            keys = {d.id: d.global_key for d in ws.data_rows(ids=[i for i, _ in found])}
            conf, rej = mk.verdicts(ws)
            flagged = set(s.ids[s.flagged].tolist())
            rows = [{"global_key": keys[i], "score": round(v, 6), "flagged": i in flagged,
                     "verdict": "confirmed" if i in conf else "rejected" if i in rej else None} for i, v in found]
            if as_json:
                console.print_json(json.dumps({"run": r.ref, "detector": detector, "rows": rows}))
                return
            t = Table(title=f"{r.ref}: {detector}, {int(s.flagged.sum()):,} of {len(s.ids):,} rows flagged")
            for c in ("global key", "score", "flagged", "verdict"):
                t.add_column(c)
            for row in rows:
                t.add_row(esc(row["global_key"]), f"{row['score']:.4f}", "yes" if row["flagged"] else "",
                          row["verdict"] or "")
            console.print(t)
            return
        sm = mk.summary(ws, r, space)
        if as_json:
            console.print_json(json.dumps({"run": r.ref, "space": sm.space, "tasks": sm.tasks, "reviewed": sm.reviewed,
                                           "detectors": [d.__dict__ for d in sm.detectors]}))
            return
        if not sm.tasks:
            console.print(f"{esc(r.ref)}: nothing to score (the detectors need radio predictions with "
                          "probability vectors, or box predictions, on labelled rows)")
            return
        t = Table(title=f"{r.ref}: label mistakes ({', '.join(sm.tasks)}; kNN space: {sm.space or 'none'}; "
                  f"{sm.reviewed} rows reviewed)")
        for c in ("detector", "scored", "flagged", "confirmed", "rejected", "precision", "confirmed, not flagged"):
            t.add_column(c, justify="left" if c == "detector" else "right")
        for d in sm.detectors:
            t.add_row(d.detector, f"{d.scored:,}", f"{d.flagged:,}", str(d.confirmed), str(d.rejected),
                      _pct(d.precision), str(d.unflagged_confirmed))
        console.print(t)


def verdict(value: Annotated[str, typer.Argument(help="confirmed (the label is wrong), rejected (it is right) or clear")],
            keys: Annotated[list[str] | None, typer.Argument(help="global keys")] = None,
            from_file: Annotated[Path | None, typer.Option(help="file with one global key per line")] = None,
            workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Record reviewers' verdicts on suspected label mistakes (tags mistake-confirmed / mistake-rejected;
    one replaces the other). `slicewise mistakes RUN` then shows each detector's measured precision."""
    from slicewise import mistakes as mk
    from slicewise.cli.data import _keys

    with open_workspace(workspace) as ws:
        n = mk.set_verdict(ws, _keys(keys or [], from_file), value)
        console.print(f"{esc(value)}: {n} data row(s)")
