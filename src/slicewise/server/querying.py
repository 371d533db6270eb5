"""Adapter from a gallery :class:`~slicewise.server.views.Scope` to slicewise.query / metrics / slices calls.

The filter of a view is the AND of: the filter text ``q`` (or, when ``q`` is empty, the open slice's
filter), ``dataset = NAME``, and, for a confusion-matrix cell, ``global_key in (the cell's rows)``.
"""

from __future__ import annotations

import json
from typing import Any

from slicewise.errors import QueryError
from slicewise.server import lib
from slicewise.types.domain import ModelRun
from slicewise.workspace import Workspace

ROW_METRICS = ("tp", "fp", "fn", "tn", "precision", "recall", "f1", "iou", "confidence.min", "confidence.max",
               "confidence.mean", "annotation.count", "prediction.count")


def view_filter(ws: Workspace, run: ModelRun | None, scope: Any, c: float | None, t: float | None) -> tuple[Any, str | None]:
    """(filter node or None, sort text or None) of a scope."""
    q = lib.need("query")
    parts: list[Any] = []
    sort = scope.sort
    if scope.q:
        parts.append(q.parse(scope.q))
    elif scope.slice:
        s = lib.need("slices").get_slice(ws, int(scope.slice) if str(scope.slice).isdigit() else scope.slice)
        query = q.Query.model_validate(s.query)
        if query.filter is not None:
            parts.append(query.filter)
        if sort is None and query.sort:
            sort = q.sort_to_text(query.sort)
    if scope.dataset:
        parts.append(q.Cond(field="dataset", op="=", value=scope.dataset))
    if scope.cell:
        if run is None or c is None or t is None:
            raise QueryError("a confusion-matrix cell needs a model run", where="cell", fix="pass run=")
        keys = cell_keys(ws, run, scope.cell, c, t)
        parts.append(q.Cond(field="global_key", op="in", value=keys))
    node = None if not parts else parts[0] if len(parts) == 1 else q.And(all=parts)
    return node, sort


def cell_keys(ws: Workspace, run: ModelRun, cell: str, c: float, t: float) -> list[str]:
    try:
        true_class, pred_class = json.loads(cell)
    except (ValueError, TypeError):
        raise QueryError(f"cell {cell!r} is not a JSON pair [true class, predicted class]", where="cell",
                         fix='pass e.g. cell=["chair","None"]') from None
    sql, params = lib.need("metrics").confusion_cell_rows(ws, run, c, t, true_class, pred_class)
    # the metrics engine gives the cell as a data_row_id query; name its rows by global key for the filter
    ids = [int(r[0]) for r in ws.sql(sql, params).fetchall()]
    return [r.global_key for r in ws.data_rows(ids=ids)] if ids else []


def thresholds(ws: Workspace, run: ModelRun | None, c: float | None, t: float | None) -> tuple[float | None, float | None]:
    """The (confidence, IoU) a view uses: the given ones, else the run's defaults."""
    if run is None:
        return None, None
    return lib.need("query").thresholds(ws, run, c, t)  # type: ignore[no-any-return]



def search(ws: Workspace, run: ModelRun | None, scope: Any, c: float | None, t: float | None, limit: int,
           offset: int) -> tuple[int, list[int], list[str], dict[int, Any]]:
    q = lib.need("query")
    node, sort = view_filter(ws, run, scope, c, t)
    page = q.search(ws, run, node, c, t, limit=limit, offset=offset, sort=sort or None)
    ids = [r.data_row_id for r in page.rows]
    return page.total, ids, [r.global_key for r in page.rows], {r.data_row_id: r.sort_value for r in page.rows}


def rows_sql(ws: Workspace, run: ModelRun, scope: Any, c: float, t: float) -> tuple[str, list[Any]] | None:
    node, _ = view_filter(ws, run, scope, c, t)
    if node is None:
        return None
    return lib.need("query").row_ids_sql(ws, run, node, c, t)  # type: ignore[no-any-return]


def row_metrics(ws: Workspace, run: ModelRun, key: str, c: float, t: float) -> dict[str, Any] | None:
    """The row's metrics at (c, t), read through the query engine's sort keys."""
    q = lib.need("query")
    try:
        page = q.search(ws, run, q.Cond(field="global_key", op="=", value=key), c, t, limit=1,
                        sort=", ".join(ROW_METRICS))
    except Exception:  # noqa: BLE001 - metrics not computed yet: the detail view shows none
        return None
    if not page.rows:
        return None
    return dict(zip(ROW_METRICS, page.rows[0].sort_values, strict=False))


def all_rows(ws: Workspace, run: ModelRun | None, scope: Any, c: float | None, t: float | None,
             cap: int) -> tuple[int, list[int], list[str]]:
    """Every matching row (up to ``cap``) in the view's order, paged through the query engine's cursor."""
    q = lib.need("query")
    node, sort = view_filter(ws, run, scope, c, t)
    ids: list[int] = []
    keys: list[str] = []
    cursor = None
    total = 0
    while len(ids) < cap:
        page = q.search(ws, run, node, c, t, limit=min(10_000, cap - len(ids)), sort=sort or None, cursor=cursor,
                        with_total=cursor is None)
        if cursor is None:
            total = page.total
        ids += [r.data_row_id for r in page.rows]
        keys += [r.global_key for r in page.rows]
        cursor = page.next_cursor
        if cursor is None:
            break
    return total, ids, keys
