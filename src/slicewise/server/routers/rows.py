"""Data rows: the gallery's pages (filter, sort, thresholds), one row's detail, tags."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from slicewise.errors import NotFoundError
from slicewise.server import lib
from slicewise.server.app import fast_json
from slicewise.server.deps import AppState, get_row, get_run, state, workspace
from slicewise.server.views import Scope, page_rows, row_detail, scope_params
from slicewise.workspace import Workspace

router = APIRouter(tags=["data rows"])

MAX_PAGE = 500


@router.get("/rows", summary="A page of data rows with their ground truth and predictions")
def rows(scope: Scope = Depends(scope_params),
         limit: int = Query(50, ge=1, le=MAX_PAGE, description=f"page size, at most {MAX_PAGE}"),
         offset: int = Query(0, ge=0, le=10_000_000),
         overlays: bool = Query(True, description="include each row's ground truth and predictions"),
         st: AppState = Depends(state)) -> Any:
    return fast_json(page_rows(st.ws, scope, limit=limit, offset=offset, overlays=overlays))


@router.get("/rows/ids", summary="Every data row id matching the scope (for 'select all matching')")
def row_ids(scope: Scope = Depends(scope_params), limit: int = Query(100_000, ge=1, le=1_000_000),
            st: AppState = Depends(state)) -> Any:
    from slicewise.server import querying

    run = get_run(st.ws, scope.run) if scope.run else None
    c, t = querying.thresholds(st.ws, run, scope.confidence, scope.iou)
    total, ids, keys = querying.all_rows(st.ws, run, scope, c, t, limit)
    return fast_json({"total": total, "ids": ids, "keys": keys})


@router.get("/rows/{row_id}", summary="One data row: metadata, tags, objects with their matches, metrics")
def row(row_id: int, run: str | None = None, confidence: float | None = Query(None, ge=0, le=1),
        iou: float | None = Query(None, ge=0, le=1), st: AppState = Depends(state)) -> Any:
    r = get_row(st, row_id)
    fresh = st.ws.data_rows(ids=[r.id])[0]  # tags and metadata may have changed since it was cached
    return fast_json(row_detail(st.ws, fresh, get_run(st.ws, run) if run else None, confidence, iou))


class TagRequest(BaseModel):
    """Rows are named by id or by global key (either list may be empty)."""

    ids: list[int] = Field(default_factory=list, max_length=1_000_000)
    keys: list[str] = Field(default_factory=list, max_length=1_000_000)
    tags: list[str] = Field(min_length=1, max_length=100)


def _keys(ws: Workspace, req: TagRequest) -> list[str]:
    keys = list(req.keys)
    if req.ids:
        found = {r.id: r.global_key for r in ws.data_rows(ids=req.ids)}
        missing = [i for i in req.ids if i not in found]
        if missing:
            raise NotFoundError(f"{len(missing)} unknown data row id(s): {missing[:5]}", where="ids",
                                fix="take ids from /api/rows")
        keys += list(found.values())
    return keys


@router.post("/tags", summary="Add tags to data rows")
def add_tags(req: TagRequest, ws: Workspace = Depends(workspace)) -> dict[str, Any]:
    return {"added": ws.add_tags(_keys(ws, req), req.tags), "tags": ws.tags()}


@router.post("/tags/remove", summary="Remove tags from data rows")
def remove_tags(req: TagRequest, ws: Workspace = Depends(workspace)) -> dict[str, Any]:
    return {"removed": ws.remove_tags(_keys(ws, req), req.tags), "tags": ws.tags()}



@router.get("/facets", summary="Value counts and histograms (metadata, metrics, confidence) of the matching rows")
def facets(scope: Scope = Depends(scope_params), bins: int | None = Query(None, ge=2, le=100),
           st: AppState = Depends(state)) -> dict[str, Any]:
    from slicewise.server import querying

    run = get_run(st.ws, scope.run) if scope.run else None
    c, t = querying.thresholds(st.ws, run, scope.confidence, scope.iou)
    node, _ = querying.view_filter(st.ws, run, scope, c, t)
    extra = {"bins": bins} if bins is not None else {}
    return lib.need("query").facets(st.ws, run, node, c, t, **extra).model_dump(mode="json")  # type: ignore[no-any-return]
