"""``slicewise demo``: build the demo workspace (real models trained on data the project makes) and serve it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

DEMO_WORKSPACE = Path("demo-workspace/demo.duckdb")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    workspace: Annotated[Path, typer.Option("--workspace", "-w", help="Where to build the demo workspace (its "
                                            "images go to <name>-media/ beside it).")] = DEMO_WORKSPACE,
    serve: Annotated[bool, typer.Option("--serve", help="Serve the web app on the workspace afterwards.")] = False,
    host: Annotated[str, typer.Option(help="Address to bind with --serve.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on with --serve.")] = 8765,
    rows: Annotated[int | None, typer.Option(help="Rows per dataset (default: all 1,797 digits and 300 scenes).",
                                             min=10)] = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Rebuild even if the workspace already holds the "
                                          "demo.")] = False,
    metrics: Annotated[bool, typer.Option("--metrics/--no-metrics", help="Compute the runs' metrics.")] = True,
    embeddings: Annotated[bool, typer.Option("--embeddings/--no-embeddings",
                                             help="Compute the image embeddings (space 'image').")] = True,
) -> None:
    """Build a demo workspace: scikit-learn's digits with a classifier trained on them, and rendered scenes
    with a detector trained on them; both models make real mistakes. Re-running reuses the demo.

    The workspace must be new, empty or an earlier demo build: any other workspace is refused.
    """
    from slicewise.cli.common import console, err_console, esc, refuse_if_served
    from slicewise.demo import build_demo

    refuse_if_served(workspace, "demo")  # the demo (re)builds the workspace: not while a server holds it

    server: Callable[..., None] | None = None
    if serve:  # fail before the build, not after it
        try:
            from slicewise.server import serve as server
        except ImportError as exc:
            err_console.print(f"[bold red]error:[/] the web server is not available in this build ({esc(exc)}); "
                              "run `slicewise demo` without --serve and use the SDK or CLI", highlight=False)
            raise typer.Exit(3) from None
    with console.status("building the demo workspace") as status:
        summary = build_demo(workspace, rows=rows, rebuild=rebuild, compute=metrics, embed=embeddings,
                             on_progress=lambda msg: status.update(msg))
    _print_summary(summary)
    _print_headlines(summary.headlines)
    _print_breakdown(summary.breakdown)
    for hint in summary.hints:
        console.print(f"[bold]try:[/] {esc(hint)}", highlight=False)
    if server is not None:
        server(summary.workspace, host=host, port=port)
    else:
        console.print(f"\nBrowse it with: [bold]slicewise serve {esc(workspace)}[/]  (or add --serve)")


def _print_summary(s: object) -> None:
    from slicewise.cli.common import Table, console, esc
    from slicewise.demo import DemoSummary

    assert isinstance(s, DemoSummary)
    verb = "reused" if s.reused else "built"
    console.print(f"[bold]demo workspace {verb}[/] in {s.seconds:.1f} s: {esc(s.workspace)}  (images in {esc(s.media)})")
    t = Table(show_header=True)
    t.add_column("what")
    t.add_column("count", justify="right")
    for k, v in s.counts.items():
        t.add_row(k.replace("_", " "), f"{v:,}")
    console.print(t)
    acc = ", ".join(f"{k} {v:.1%}" for k, v in s.digits_accuracy.items())
    console.print(f"digits classifier accuracy (argmax, all confidences): {esc(acc)}")
    console.print(f"shape detector: {s.shapes_predictions:,} boxes predicted")
    for run, state in s.metrics.items():
        console.print(f"metrics of {esc(run)}: {esc(state)}")


def _print_headlines(by_run: dict[str, list[dict[str, object]]]) -> None:
    from slicewise.cli.common import Table, console

    def pct(v: object) -> str:
        return "" if v is None else f"{float(v):.1%}"  # type: ignore[arg-type]

    for run, feats in by_run.items():
        if not feats:
            continue
        t = Table(title=f"{run} at confidence {feats[0]['confidence']}, IoU {feats[0]['iou_threshold']}")
        for c in ("feature", "TP", "FP", "FN", "precision", "recall", "F1"):
            t.add_column(c, justify="left" if c == "feature" else "right")
        for f in feats:
            t.add_row(str(f["feature"]), str(f["tp"]), str(f["fp"]), str(f["fn"]), pct(f["precision"]),
                      pct(f["recall"]), pct(f["f1"]))
        console.print(t)


def _print_breakdown(items: list[dict[str, object]]) -> None:
    from slicewise.cli.common import Table, console

    if not items:
        return
    t = Table(title="Where the models fail: paste a filter into the gallery's filter box")
    for c in ("run", "filter", "precision", "recall", "F1"):
        t.add_column(c, justify="right" if c in ("precision", "recall", "F1") else "left")
    for b in items:
        t.add_row(str(b["run"]).split("/")[0], str(b["filter"]), *(
            "" if b[k] is None else f"{float(b[k]):.1%}" for k in ("precision", "recall", "f1")))  # type: ignore[arg-type]
    console.print(t)
