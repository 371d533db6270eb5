"""Request-scoped helpers: the workspace, run and threshold resolution shared by the routers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request

from slicewise.errors import NotFoundError
from slicewise.types.domain import DataRow, ModelRun
from slicewise.workspace import Workspace


@dataclass
class AppState:
    ws: Workspace
    base: Path  # relative media paths are resolved against this folder
    cache_dir: Path
    row_cache: dict[int, DataRow] = field(default_factory=dict)  # media lookups (row_data never changes)
    jobs: dict[int, Any] = field(default_factory=dict)  # run id -> background metrics thread
    thumbs: dict[tuple[int, int], Path] = field(default_factory=dict)  # (row id, size) -> cached thumbnail
    # one request at a time into the query / metrics / slices engines: their per-process caches
    # (materialised metric tables, row caches) are built on first use and are not safe to build concurrently
    library: threading.Lock = field(default_factory=threading.Lock)


def state(request: Request) -> AppState:
    return request.app.state.sw  # type: ignore[no-any-return]


def serialized(request: Request) -> Iterator[None]:
    """Router dependency: hold the app's library lock for the request (see :class:`AppState`)."""
    lock = state(request).library
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def workspace(request: Request) -> Workspace:
    return state(request).ws


def get_run(ws: Workspace, run_id: int | str) -> ModelRun:
    return ws.run(int(run_id) if str(run_id).isdigit() else str(run_id))


def get_row(st: AppState, row_id: int) -> DataRow:
    row = st.row_cache.get(row_id)
    if row is None:
        rows = st.ws.data_rows(ids=[row_id])
        if not rows:
            raise NotFoundError(f"no data row with id {row_id}", where="path", fix="take ids from /api/rows")
        row = rows[0]
        if len(st.row_cache) > 200_000:
            st.row_cache.clear()
        st.row_cache[row_id] = row
    return row
