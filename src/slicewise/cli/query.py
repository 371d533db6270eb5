"""``slicewise query RUN "<filter>"``: the matching data rows of a run, sorted, as a Rich table."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from slicewise.cli.common import (
    DEFAULT_WORKSPACE,
    Table,
    WorkspaceOpt,
    console,
    esc,
    open_workspace,
)


def register(app: typer.Typer) -> None:
    app.command("query")(query)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def query(run: Annotated[str, typer.Argument(help="model/run (or '-' for every data row of the workspace)")],
          filter: Annotated[str, typer.Argument(help='filter, e.g. \'iou < 0.5 and not tag:reviewed\'')] = "",
          sort: Annotated[str | None, typer.Option(help="sort keys, e.g. '-confidence.max, iou'")] = None,
          limit: Annotated[int, typer.Option(help="rows per page")] = 20,
          offset: Annotated[int, typer.Option(help="rows to skip")] = 0,
          cursor: Annotated[str | None, typer.Option(help="next_cursor of the previous page")] = None,
          confidence: Annotated[float | None, typer.Option(help="confidence threshold of metric fields")] = None,
          iou: Annotated[float | None, typer.Option(help="IoU threshold of metric fields")] = None,
          slice: Annotated[str | None, typer.Option("--slice", help="start from a saved or auto slice")] = None,
          facets: Annotated[bool, typer.Option("--facets", help="also print the facets")] = False,
          baseline: Annotated[str | None, typer.Option(help="a run to compare with (model/run): the filter may use "
                                                              "flip:TYPE and delta.METRIC")] = None,
          as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
          workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Filter, sort and page the data rows of a run (see `slicewise.query` for the syntax)."""
    from slicewise.view import View

    with open_workspace(workspace, read_only=False) as ws:
        v = View(run=None if run == "-" else run, confidence=confidence, iou=iou, slice=slice, filter=filter or None,
                 sort=sort, baseline=baseline).resolve(ws)
        r, qry = v.run, v.query
        page = v.page(limit, offset, cursor=cursor)
        fac = v.facets() if facets else None
        if as_json:
            out = page.model_dump(mode="json")
            if fac is not None:
                out["facets"] = fac.model_dump(mode="json")
            console.print_json(json.dumps(out))
            return
        keys = [s.field + (f"[{s.feature}]" if s.feature else "") for s in qry.sort]
        t = Table(title=f"{page.total:,} matching data row(s)" + (f" of run {r.ref}" if r else ""))
        t.add_column("#", justify="right")
        t.add_column("global key")
        for k in keys:
            t.add_column(esc(k), justify="right")
        for i, row in enumerate(page.rows):
            t.add_row(str(offset + i + 1), row.global_key, *[_fmt(v) for v in row.sort_values])
        console.print(t)
        console.print((f"confidence {page.confidence:g}, IoU {page.iou:g}; " if page.confidence is not None else "")
                      + (f"filter: {v.text}" if v.text else "no filter")
                      + (f"; sort: {v.sort_text}" if qry.sort else ""), highlight=False, markup=False)
        if page.next_cursor and offset + len(page.rows) < page.total:
            console.print(f"more: --offset {offset + len(page.rows)}  (or --cursor {page.next_cursor})",
                          highlight=False)
        if fac is not None:
            _print_facets(fac)


def _print_facets(f: Any) -> None:
    for title, counts in [("split", f.split), ("dataset", f.dataset), ("tags", f.tags),
                          ("annotations (rows)", f.annotations), ("predictions (rows)", f.predictions),
                          *[(f"metadata.{k}", v) for k, v in f.metadata.items()]]:
        if counts:
            console.print(f"[bold]{esc(title)}[/]: " + esc(", ".join(f"{k} {v:,}" for k, v in list(counts.items())[:12])),
                          highlight=False)
    for name, h in f.histograms.items():
        if h.counts:
            console.print(f"[bold]{esc(name)}[/] \\[{h.edges[0]:.3g}, {h.edges[-1]:.3g}]: "
                          + " ".join(str(c) for c in h.counts) + (f" (missing {h.missing})" if h.missing else ""),
                          highlight=False)
    if f.metrics_error:
        console.print(f"[yellow]metrics:[/] {esc(f.metrics_error)}", highlight=False)
