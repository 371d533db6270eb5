"""The workspace overview: counts, datasets, ontology, metadata fields, tags."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from slicewise.server.deps import workspace
from slicewise.workspace import Workspace

router = APIRouter(tags=["workspace"])


@router.get("/workspace", summary="Counts, datasets, features, metadata fields and tags of the workspace")
def overview(ws: Workspace = Depends(workspace)) -> dict[str, Any]:
    return {
        "path": str(ws.path),
        "counts": ws.counts(),
        "datasets": [d.model_dump() for d in ws.datasets()],
        "features": [f.model_dump() for f in ws.features()],
        "metadata_fields": ws.metadata_fields(),
        "tags": ws.tags(),
    }


@router.get("/datasets", summary="Every dataset")
def datasets(ws: Workspace = Depends(workspace)) -> list[dict[str, Any]]:
    return [d.model_dump() for d in ws.datasets()]


@router.get("/features", summary="The ontology: every feature (class) with its kind")
def features(ws: Workspace = Depends(workspace)) -> list[dict[str, Any]]:
    return [f.model_dump() for f in ws.features()]


@router.get("/tags", summary="Every tag with its number of data rows")
def tags(ws: Workspace = Depends(workspace)) -> dict[str, int]:
    return ws.tags()
