"""The Projector: an embedding space's 2D / 3D projection (binary, for up to a million points) and the
colours of its points."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response

from slicewise.embeddings import projection as P
from slicewise.server import models as M
from slicewise.server.deps import AppState, state

router = APIRouter(tags=["projector"])

MethodQ = Query("pca", pattern="^(pca|umap)$", description="pca (computed at once) or umap (a background job)")
DimsQ = Query(2, ge=2, le=3, description="2 or 3")


def _job_json(j: P.ProjectionJob | None, space: str, method: str, dims: int) -> dict[str, Any]:
    if j is None:
        return {"space": space, "method": method, "dims": dims, "state": "none", "done": 0, "total": 1,
                "stage": "", "error": None, "seconds": None}
    return {"space": j.space, "method": j.method, "dims": j.dims, "state": j.state, "done": j.done, "total": j.total,
            "stage": j.stage, "error": j.error, "seconds": j.seconds}


@router.get("/embeddings/{space}/projection",
            responses={200: {"content": {"application/octet-stream": {}},
                             "description": "n int64 data row ids (ascending, little-endian) then n x dims float32 "
                                            "coordinates, row-major; headers X-Count, X-Dims, X-Method"},
                       202: {"model": M.ProjectionStatus, "description": "UMAP is being computed (poll again)"}},
            summary="The projection of an embedding space (binary ids + coordinates)")
def get_projection(space: str, method: str = MethodQ, dims: int = DimsQ, st: AppState = Depends(state)) -> Response:
    ws = st.ws
    if method == "umap":
        p = P.cached(ws, space, method, dims)
        if p is None:
            j = P.job(ws, space, method, dims)
            if j is None or j.state == "done":  # not started, or done but the vectors changed since
                j = P.start_job(ws, space, method, dims)
            return JSONResponse(_job_json(j, space, method, dims), status_code=202)
    else:
        p = P.project(ws, space, method, dims)
    body = np.ascontiguousarray(p.ids, dtype="<i8").tobytes() + np.ascontiguousarray(p.coords, dtype="<f4").tobytes()
    return Response(body, media_type="application/octet-stream",
                    headers={"X-Count": str(len(p)), "X-Dims": str(dims), "X-Method": method,
                             "Cache-Control": "no-store"})


@router.get("/embeddings/{space}/projection/status", response_model=M.ProjectionStatus,
            summary="Whether a projection is ready, and the progress of its job")
def projection_status(space: str, method: str = MethodQ, dims: int = DimsQ,
                      st: AppState = Depends(state)) -> dict[str, Any]:
    if P.cached(st.ws, space, method, dims) is not None:
        out = _job_json(P.job(st.ws, space, method, dims), space, method, dims)
        out.update(state="done", stage="done")
        return out
    return _job_json(P.job(st.ws, space, method, dims), space, method, dims)


@router.post("/embeddings/{space}/projection/jobs", response_model=M.ProjectionStatus, status_code=202,
             summary="Start computing a projection in the background (UMAP)")
def start_projection(space: str, method: str = MethodQ, dims: int = DimsQ,
                     st: AppState = Depends(state)) -> dict[str, Any]:
    return _job_json(P.start_job(st.ws, space, method, dims), space, method, dims)


@router.get("/embeddings/{space}/colors", response_model=M.ProjectionColors,
            summary="What each point of the projection is coloured by, aligned with its ids")
def get_colors(space: str,
               by: str = Query(..., max_length=500,
                               description="gt | pred | metric:NAME | any field (iou, metadata.camera, split...) | "
                                           "slice:ID | tag:NAME"),
               method: str = MethodQ, dims: int = DimsQ,
               run: str | None = Query(None, max_length=200), confidence: float | None = Query(None, ge=0, le=1),
               iou: float | None = Query(None, ge=0, le=1), st: AppState = Depends(state)) -> dict[str, Any]:
    p = P.cached(st.ws, space, method, dims) or P.project(st.ws, space, "pca", dims)
    c = P.colors(st.ws, p.ids, by, run=run or None, confidence=confidence, iou=iou)
    data = c.codes if c.kind == "category" else c.values
    assert data is not None
    return {"by": c.by, "kind": c.kind, "count": len(p), "legend": c.legend, "counts": c.counts, "min": c.min,
            "max": c.max, "dtype": "int16" if c.kind == "category" else "float32",
            "data": base64.b64encode(np.ascontiguousarray(data, dtype="<i2" if c.kind == "category" else "<f4")
                                     .tobytes()).decode()}
