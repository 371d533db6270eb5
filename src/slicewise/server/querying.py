"""Adapter from a gallery :class:`~slicewise.server.views.Scope` to slicewise.query calls."""

from __future__ import annotations

from typing import Any

from slicewise.server import lib
from slicewise.types.domain import ModelRun
from slicewise.workspace import Workspace


def _query(ws: Workspace, scope: Any) -> Any:
    q = lib.need("query")
    return q.build_query(ws, text=scope.q, sort=scope.sort, order=scope.order, slice=scope.slice,
                         dataset=scope.dataset)


def search(ws: Workspace, run: ModelRun | None, scope: Any, c: float, t: float, limit: int,
           offset: int) -> tuple[int, list[int], list[str], dict[int, Any]]:
    q = lib.need("query")
    page = q.search(ws, run, _query(ws, scope), c, t, limit=limit, offset=offset)
    ids = [r.data_row_id for r in page.rows]
    return page.total, ids, [r.global_key for r in page.rows], {r.data_row_id: r.sort_value for r in page.rows}


def rows_sql(ws: Workspace, run: ModelRun, scope: Any, c: float, t: float) -> tuple[str, list[Any]]:
    q = lib.need("query")
    return q.row_ids_sql(ws, run, _query(ws, scope).filter, c, t)  # type: ignore[no-any-return]
