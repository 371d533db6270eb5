"""Saved slices (CRUD with counts) and a run's auto-generated slices."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from slicewise import slices
from slicewise.server import models as M
from slicewise.server.deps import AppState, as_id, get_run, similar_params, state
from slicewise.slices import Slice
from slicewise.view import View

router = APIRouter(tags=["slices"])


class SliceIn(BaseModel):
    name: str = Field(min_length=3, max_length=30)
    description: str | None = Field(None, max_length=2000)
    filter: str = Field("", max_length=20_000, description="the filter, in the query language")
    sort: str | None = Field(None, max_length=2000, description="sort keys, e.g. -iou")
    similar_space: str | None = Field(None, max_length=64, description="keep a similarity search in the slice: its space")
    similar_to: str | None = Field(None, max_length=400, description="... its anchor data row ids, comma-separated")
    similar_k: int | None = Field(None, ge=1, le=10_000, description="... and how many nearest rows (none: all, ranked)")


class SliceUpdate(BaseModel):
    name: str | None = Field(None, min_length=3, max_length=30)
    description: str | None = Field(None, max_length=2000)
    filter: str | None = Field(None, max_length=20_000)
    sort: str | None = Field(None, max_length=2000)
    save_as: str | None = Field(None, min_length=3, max_length=30,
                                description="leave the slice as it is and save the change as a new slice")


def _ref(slice_id: str) -> int | str:
    return as_id(slice_id)


@router.get("/slices", response_model=list[Slice], summary="Every saved slice, with its count for a run when one is given")
def list_slices(run: str | None = Query(None, max_length=200), confidence: float | None = Query(None, ge=0, le=1),
                iou: float | None = Query(None, ge=0, le=1), st: AppState = Depends(state)) -> list[Slice]:
    v = View(run=run or None, confidence=confidence, iou=iou).resolve(st.ws)
    return slices.list_slices(st.ws, v.run, v.confidence, v.iou)


@router.post("/slices", status_code=201, response_model=Slice, summary="Save a filter as a slice")
def create(body: SliceIn, st: AppState = Depends(state)) -> Slice:
    return slices.create_slice(st.ws, body.name, body.filter, description=body.description, sort=body.sort or None,
                               similar=similar_params(body.similar_space, body.similar_to, body.similar_k))


@router.get("/slices/{slice_id}", response_model=Slice, summary="One slice (by id or name)")
def get_slice(slice_id: str, st: AppState = Depends(state)) -> Slice:
    return slices.get_slice(st.ws, _ref(slice_id))


@router.patch("/slices/{slice_id}", response_model=Slice,
              summary="Update a slice's filter, sort, name or description (or save as new)")
def update(slice_id: str, body: SliceUpdate, st: AppState = Depends(state)) -> Slice:
    return slices.update_slice(st.ws, _ref(slice_id), **body.model_dump(exclude_none=True))


@router.delete("/slices/{slice_id}", response_model=M.Deleted, summary="Delete a slice")
def delete(slice_id: str, st: AppState = Depends(state)) -> dict[str, Any]:
    slices.delete_slice(st.ws, _ref(slice_id))
    return {"deleted": slice_id}


@router.get("/runs/{run_id}/auto-slices", response_model=list[Slice],
            summary="The run's auto-generated slices with their counts")
def auto_slices(run_id: str, confidence: float | None = Query(None, ge=0, le=1),
                iou: float | None = Query(None, ge=0, le=1), st: AppState = Depends(state)) -> list[Slice]:
    v = View(run=get_run(st.ws, run_id), confidence=confidence, iou=iou).resolve(st.ws)
    return slices.auto_slices(st.ws, v.run, v.confidence, v.iou)
