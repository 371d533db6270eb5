"""``slicewise project SPACE``: compute (and cache) a 2D or 3D projection of an embedding space."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from slicewise.cli.common import (
    DEFAULT_WORKSPACE,
    WorkspaceOpt,
    cli_path,
    console,
    esc,
    open_workspace,
    progress,
)


def register(app: typer.Typer) -> None:
    app.command("project")(project)


def project(space: Annotated[str, typer.Argument(help="the embedding space (see `slicewise embeddings`)")],
            method: Annotated[str, typer.Option(help="pca (seconds) or umap (minutes on big spaces)")] = "pca",
            dims: Annotated[int, typer.Option(help="2 or 3")] = 2,
            out: Annotated[Path | None, typer.Option(help="also write id and coordinates to this .csv, .parquet or .npy")] = None,
            workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Project an embedding space to 2D or 3D for the Projector (kept in the workspace's cache until the
    space's vectors change)."""
    from slicewise.embeddings import projection
    from slicewise.errors import QueryError

    if method not in projection.METHODS:
        raise QueryError(f"unknown method {method!r}", where="--method", fix="use pca or umap")
    if dims not in (2, 3):
        raise QueryError(f"--dims {dims} is not 2 or 3", where="--dims", fix="use 2 or 3")
    if out is not None and out.suffix.lower() not in (".csv", ".parquet", ".npy"):
        raise QueryError(f"cannot write {out.suffix or 'a file without suffix'}", where="--out",
                         fix="name a .csv, .parquet or .npy file")
    with open_workspace(workspace) as ws:
        with progress(f"{method.upper()} of {space}", total=None) as advance:
            def step(done: int, total: int, stage: str) -> None:
                advance(0, total=total)
                advance(done)

            p = projection.project(ws, space, method, dims, progress=step)
        how = f"computed in {p.seconds:.1f} s" if p.seconds else "from the cache"
        console.print(f"{esc(space)}: {len(p):,} points, {method} {dims}D ({how})", highlight=False)
        if len(p):
            lo, hi = p.coords.min(axis=0), p.coords.max(axis=0)
            ranges = ", ".join(f"{'xyz'[j]} {lo[j]:.3g}..{hi[j]:.3g}" for j in range(dims))
            console.print(f"range: {ranges}", highlight=False)
        if out is not None:
            _write(cli_path(out), p.ids, p.coords)
            console.print(f"wrote {esc(out)}", highlight=False)


def _write(path: Path, ids: object, coords: object) -> None:
    import numpy as np

    ids_a = np.asarray(ids)
    xy = np.asarray(coords)
    if path.suffix.lower() == ".npy":
        np.save(path, np.column_stack([ids_a.astype(np.float64), xy.astype(np.float64)]))
        return
    import pyarrow as pa

    cols = {"data_row_id": pa.array(ids_a)} | {"xyz"[j]: pa.array(xy[:, j]) for j in range(xy.shape[1])}
    table = pa.table(cols)
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    else:
        import pyarrow.csv as pcsv

        pcsv.write_csv(table, path)
