"""Embedding spaces: vectors per data row, similarity search, kNN label disagreement ("islands").

The SDK (the CLI and the server call the same functions):

- ``add_vectors(ws, space, rows, vectors, *, kind="image", metric="cosine", source="custom") -> SpaceInfo``
- ``spaces(ws) -> list[SpaceInfo]``; ``space(ws, name) -> SpaceInfo``; ``drop_space(ws, space)``
- ``vectors(ws, space, ids=None) -> (ids int64 sorted, vectors float32 (n, dim))``
- ``read_vectors(path, keys=None) -> (keys, vectors)``: ``.npy`` + keys, Parquet, CSV
- ``similar(ws, space, anchors, k=50, view=None) -> list[(data row id, score)]``; the query side is
  :class:`slicewise.query.Similar` (``View(similar=Similar(space, anchors, k))``, sort key ``similarity``)
- ``islands(ws, space, k=10) -> (ids, kNN label disagreement)``; the query field ``island``
"""

from __future__ import annotations

from typing import Any

from slicewise.embeddings.files import read_vectors
from slicewise.embeddings.islands import islands, knn_disagreement
from slicewise.embeddings.search import MAX_ANCHORS, index_for, similar, wait_for_index
from slicewise.embeddings.store import (
    MAX_DIM,
    SpaceInfo,
    add_vectors,
    drop_space,
    space,
    spaces,
    vectors,
)
from slicewise.query.ast import Similar

__all__ = ["MAX_ANCHORS", "MAX_DIM", "Similar", "SpaceInfo", "add_vectors", "drop_space", "import_file", "index_for",
           "islands", "knn_disagreement", "read_vectors", "similar", "space", "spaces", "vectors", "wait_for_index"]


def import_file(ws: Any, space_name: str, path: str, keys: str | None = None, *, kind: str = "image",
                metric: str = "cosine") -> SpaceInfo:
    """Read a vector file (see :func:`read_vectors`) and store it in ``space_name``; errors name the file."""
    ks, vecs = read_vectors(path, keys)
    return add_vectors(ws, space_name, ks, vecs, kind=kind, metric=metric, source="custom", where=str(path))
