"""``slicewise embed`` (built-in embedders) and ``slicewise embeddings ...`` (spaces: import, list,
drop, similar, status)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from slicewise.cli.common import (
    DEFAULT_WORKSPACE,
    Table,
    WorkspaceOpt,
    cli_path,
    console,
    esc,
    open_workspace,
    progress,
)
from slicewise.types.ids import ascii_int

emb_app = typer.Typer(name="embeddings", help="Embedding spaces: import custom vectors, list, drop, find similar rows.",
                      no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("embed")(embed)
    app.add_typer(emb_app, name="embeddings")


def embed(space: Annotated[str | None, typer.Option(help="space name (default: the kind, image or text)")] = None,
          kind: Annotated[str, typer.Option(help="image or text")] = "image",
          embedder: Annotated[str | None, typer.Option(
              help="image: efficientnet-lite0; text: tfidf-svd (default) or minilm (slicewise[text])")] = None,
          size: Annotated[int, typer.Option(help="images are resized to SIZE x SIZE (224: the network's own)")] = 224,
          batch: Annotated[int, typer.Option(help="images per batch (each batch is a checkpoint)")] = 64,
          workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Compute embeddings of the data rows with a built-in embedder. Rows already embedded are skipped,
    so an interrupted run resumes where it stopped."""
    from slicewise.embeddings import jobs

    if kind not in ("image", "text"):
        raise typer.BadParameter(f"kind {kind!r} is not image or text", param_hint="--kind")
    with open_workspace(workspace) as ws, progress(f"embedding {kind} rows") as advance:
        last = [0]

        def step(done: int, total: int) -> None:
            advance(done - last[0], total=total)
            last[0] = done

        st = jobs.embed(ws, space, kind, embedder=embedder, size=size, batch=batch, on_progress=step)
        console.print(f"space [bold]{esc(st.space)}[/]: {st.done:,} of {st.total:,} rows embedded "
                      f"({esc(st.embedder)})", highlight=False)
        if st.error:
            console.print(f"[yellow]{esc(st.error)}[/]", highlight=False)


@emb_app.command("import")
def import_(space: Annotated[str, typer.Argument(help="space name (created when new)")],
            file: Annotated[Path, typer.Argument(help=".npy (with --keys), .parquet or .csv")],
            keys: Annotated[Path | None, typer.Option(help="for .npy: the keys, one global key a line "
                                                            "(or a JSON list, or a .npy of data row ids)")] = None,
            kind: Annotated[str, typer.Option(help="image or text")] = "image",
            metric: Annotated[str, typer.Option(help="cosine or ip (inner product)")] = "cosine",
            workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Import custom vectors (one per data row, up to 4,096 dimensions) into a space."""
    from slicewise import embeddings

    path = cli_path(file)
    kpath = cli_path(keys) if keys is not None else None
    with open_workspace(workspace) as ws:
        info = embeddings.import_file(ws, space, str(path), str(kpath) if kpath else None, kind=kind, metric=metric)
        console.print(f"space [bold]{esc(info.name)}[/]: {info.count:,} vectors of {info.dim} dimensions",
                      highlight=False)


@emb_app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json")] = False, workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """The workspace's embedding spaces."""
    from slicewise import embeddings

    with open_workspace(workspace) as ws:
        items = embeddings.spaces(ws)
        if as_json:
            console.print_json(json.dumps([{"name": s.name, "kind": s.kind, "dim": s.dim, "count": s.count,
                                            "metric": s.metric, "source": s.source,
                                            "created": s.created.isoformat()} for s in items]))
            return
        t = Table()
        for c in ("name", "kind", "dim", "vectors", "metric", "source"):
            t.add_column(c, justify="right" if c in ("dim", "vectors") else "left")
        for s in items:
            t.add_row(s.name, s.kind, str(s.dim), f"{s.count:,}", s.metric, s.source)
        console.print(t)


@emb_app.command("drop")
def drop(space: Annotated[str, typer.Argument()], workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Delete a space and its vectors."""
    from slicewise import embeddings

    with open_workspace(workspace) as ws:
        embeddings.drop_space(ws, space)
        console.print(f"dropped space [bold]{esc(space)}[/]", highlight=False)


@emb_app.command("status")
def status(space: Annotated[str, typer.Argument(help="space name")] = "image",
           workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """The state and progress of a space's built-in embedder job."""
    from slicewise.embeddings.jobs import job_status

    with open_workspace(workspace) as ws:
        st = job_status(ws, space)
        if st is None:
            console.print(f"no embedding job for space {esc(space)!r}", highlight=False)
            return
        console.print(f"{esc(st.space)}: {st.state}, {st.done:,} of {st.total:,} rows ({esc(st.embedder)})"
                      + (f"; {esc(st.error)}" if st.error else ""), highlight=False)


@emb_app.command("similar")
def similar(space: Annotated[str, typer.Argument()],
            anchors: Annotated[list[str], typer.Argument(help="1 to 20 anchor rows: global keys or data row ids")],
            k: Annotated[int, typer.Option(help="how many rows")] = 20,
            filter: Annotated[str, typer.Option("--filter", "-f", help="only among rows matching this filter")] = "",
            run: Annotated[str | None, typer.Option("--run", "-r", help="only among the rows of this run")] = None,
            as_json: Annotated[bool, typer.Option("--json")] = False,
            workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """The rows most similar to the anchor rows (cosine / inner product), optionally among a filter's rows."""
    from slicewise import embeddings
    from slicewise.view import View

    with open_workspace(workspace) as ws:
        ids = []
        for a in anchors:
            n = ascii_int(a)
            ids.append(n if n is not None and not _is_key(ws, a) else ws.data_row(a).id)
        view = View(run=run, filter=filter or None) if (filter or run) else None
        hits = embeddings.similar(ws, space, ids, k=k, view=view)
        keys = {r.id: r.global_key for r in ws.data_rows(ids=[i for i, _ in hits])} if hits else {}
        if as_json:
            console.print_json(json.dumps([{"id": i, "global_key": keys.get(i), "score": s} for i, s in hits]))
            return
        t = Table()
        for c in ("rank", "id", "global key", "score"):
            t.add_column(c, justify="left" if c == "global key" else "right")
        for n, (i, s) in enumerate(hits, 1):
            t.add_row(str(n), str(i), keys.get(i, ""), f"{s:.4f}")
        console.print(t)


def _is_key(ws: object, a: str) -> bool:
    return bool(ws.data_rows(keys=[a]))  # type: ignore[attr-defined]
