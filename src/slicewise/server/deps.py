"""Request-scoped helpers: the workspace, run and threshold resolution shared by the routers."""

from __future__ import annotations

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


def state(request: Request) -> AppState:
    return request.app.state.sw  # type: ignore[no-any-return]


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
