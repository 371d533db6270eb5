"""Embedding spaces: vectors per data row, similarity search, kNN label disagreement ("islands").

The SDK (the CLI and the server call the same functions):

- ``add_vectors(ws, space, rows, vectors, *, kind="image", metric="cosine", source="custom") -> SpaceInfo``
- ``spaces(ws) -> list[SpaceInfo]``; ``space(ws, name) -> SpaceInfo``; ``drop_space(ws, space)``
- ``vectors(ws, space, ids=None) -> (ids int64 sorted, vectors float32 (n, dim))``
- ``read_vectors(path, keys=None) -> (keys, vectors)``: ``.npy`` + keys, Parquet, CSV
"""

from __future__ import annotations

from typing import Any

from slicewise.embeddings.files import read_vectors
from slicewise.embeddings.store import (
    MAX_DIM,
    SpaceInfo,
    add_vectors,
    drop_space,
    space,
    spaces,
    vectors,
)

__all__ = ["MAX_DIM", "SpaceInfo", "add_vectors", "drop_space", "import_file", "read_vectors", "space", "spaces",
           "vectors"]


def import_file(ws: Any, space_name: str, path: str, keys: str | None = None, *, kind: str = "image",
                metric: str = "cosine") -> SpaceInfo:
    """Read a vector file (see :func:`read_vectors`) and store it in ``space_name``; errors name the file."""
    ks, vecs = read_vectors(path, keys)
    return add_vectors(ws, space_name, ks, vecs, kind=kind, metric=metric, source="custom", where=str(path))
