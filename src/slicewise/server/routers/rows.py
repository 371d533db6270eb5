"""Data rows: the gallery's pages (a view: run, slice, filter, sort, thresholds), one row's detail, tags."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from slicewise.errors import NotFoundError
from slicewise.query import Facets
from slicewise.server import models as M
from slicewise.server.deps import AppState, get_row, state, view_params, workspace
from slicewise.server.pages import row_detail, rows_page
from slicewise.server.responses import fast_json
from slicewise.view import View
from slicewise.workspace import Workspace

router = APIRouter(tags=["data rows"])

MAX_PAGE = 500


@router.get("/rows", response_model=M.RowsPage, summary="A page of data rows with their ground truth and predictions")
def rows(view: View = Depends(view_params),
         limit: int = Query(50, ge=1, le=MAX_PAGE, description=f"page size, at most {MAX_PAGE}"),
         offset: int = Query(0, ge=0, le=10_000_000),
         overlays: bool = Query(True, description="include each row's ground truth and predictions"),
         error_types: bool = Query(False, description="give each box / polygon / mask error its TIDE error type "
                                   "(`error`; the first page at a new (c, t) classifies the run's errors)"),
         st: AppState = Depends(state)) -> Any:
    return fast_json(rows_page(view.resolve(st.ws), limit=limit, offset=offset, overlays=overlays,
                               error_types=error_types))


@router.get("/rows/ids", response_model=M.RowIds,
            summary="Every data row id matching the view (for 'select all matching')")
def row_ids(view: View = Depends(view_params), limit: int = Query(100_000, ge=1, le=1_000_000),
            st: AppState = Depends(state)) -> Any:
    total, ids, keys = view.resolve(st.ws).ids(limit)
    return fast_json({"total": total, "ids": ids, "keys": keys})


@router.get("/rows/{row_id}", response_model=M.RowDetail,
            summary="One data row: metadata, tags, objects with their matches, metrics")
def row(row_id: int, run: str | None = Query(None, max_length=200),
        confidence: float | None = Query(None, ge=0, le=1), iou: float | None = Query(None, ge=0, le=1),
        st: AppState = Depends(state)) -> Any:
    r = get_row(st, row_id)
    fresh = st.ws.data_rows(ids=[r.id])[0]  # tags and metadata may have changed since it was remembered
    v = View(run=run or None, confidence=confidence, iou=iou).resolve(st.ws)
    return fast_json(row_detail(st.ws, fresh, v))


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


@router.post("/tags", response_model=M.TagsChanged, summary="Add tags to data rows")
def add_tags(req: TagRequest, ws: Workspace = Depends(workspace)) -> dict[str, Any]:
    return {"added": ws.add_tags(_keys(ws, req), req.tags), "tags": ws.tags()}


@router.post("/tags/remove", response_model=M.TagsChanged, summary="Remove tags from data rows")
def remove_tags(req: TagRequest, ws: Workspace = Depends(workspace)) -> dict[str, Any]:
    return {"removed": ws.remove_tags(_keys(ws, req), req.tags), "tags": ws.tags()}


@router.get("/facets", response_model=Facets,
            summary="Value counts and histograms (metadata, metrics, confidence) of the view's rows")
def facets(view: View = Depends(view_params), bins: int | None = Query(None, ge=2, le=100),
           st: AppState = Depends(state)) -> Facets:
    return view.resolve(st.ws).facets(bins)
