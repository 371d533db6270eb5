"""Saved slices (CRUD with counts) and a run's auto-generated slices."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from slicewise.server import lib
from slicewise.server.deps import AppState, get_run, state

router = APIRouter(tags=["slices"])


class SliceIn(BaseModel):
    name: str = Field(min_length=3, max_length=30)
    description: str | None = Field(None, max_length=2000)
    filter: str = Field("", max_length=20_000, description="the filter, in the query language")


class SliceUpdate(BaseModel):
    name: str | None = Field(None, min_length=3, max_length=30)
    description: str | None = Field(None, max_length=2000)
    filter: str | None = Field(None, max_length=20_000)


def _j(obj: Any) -> Any:
    from slicewise.server.routers.metrics import _jsonable

    return _jsonable(obj)


@router.get("/slices", summary="Every saved slice, with its count for a run when one is given")
def list_slices(run: str | None = None, st: AppState = Depends(state)) -> Any:
    s = lib.need("slices")
    return _j(s.list_slices(st.ws, run=get_run(st.ws, run) if run else None))


@router.post("/slices", status_code=201, summary="Save a filter as a slice")
def create(body: SliceIn, st: AppState = Depends(state)) -> Any:
    s = lib.need("slices")
    return _j(s.create_slice(st.ws, body.name, body.filter, description=body.description))


@router.get("/slices/{slice_id}", summary="One slice")
def get_slice(slice_id: str, st: AppState = Depends(state)) -> Any:
    return _j(lib.need("slices").get_slice(st.ws, slice_id))


@router.patch("/slices/{slice_id}", summary="Update a slice's filter, name or description")
def update(slice_id: str, body: SliceUpdate, st: AppState = Depends(state)) -> Any:
    s = lib.need("slices")
    return _j(s.update_slice(st.ws, slice_id, **body.model_dump(exclude_none=True)))


@router.delete("/slices/{slice_id}", summary="Delete a slice")
def delete(slice_id: str, st: AppState = Depends(state)) -> dict[str, Any]:
    lib.need("slices").delete_slice(st.ws, slice_id)
    return {"deleted": slice_id}


@router.get("/runs/{run_id}/auto-slices", summary="The run's auto-generated slices with their counts")
def auto_slices(run_id: str, st: AppState = Depends(state)) -> Any:
    s = lib.need("slices")
    return _j(s.auto_slices(st.ws, get_run(st.ws, run_id)))
