"""The workspace overview: counts, datasets, ontology, metadata fields, tags."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from slicewise.server import models as M
from slicewise.server.deps import workspace
from slicewise.types.domain import Dataset, Feature
from slicewise.workspace import Workspace

router = APIRouter(tags=["workspace"])


@router.get("/workspace", response_model=M.WorkspaceOut,
            summary="Counts, datasets, features, metadata fields and tags of the workspace")
def overview(ws: Workspace = Depends(workspace)) -> dict[str, Any]:
    return {"path": str(ws.path), "counts": ws.counts(), "datasets": ws.datasets(), "features": ws.features(),
            "metadata_fields": ws.metadata_fields(), "tags": ws.tags()}


@router.get("/datasets", response_model=list[Dataset], summary="Every dataset")
def datasets(ws: Workspace = Depends(workspace)) -> list[Dataset]:
    return ws.datasets()


@router.get("/features", response_model=list[Feature], summary="The ontology: every feature (class) with its kind")
def features(ws: Workspace = Depends(workspace)) -> list[Feature]:
    return ws.features()


@router.get("/tags", response_model=dict[str, int], summary="Every tag with its number of data rows")
def tags(ws: Workspace = Depends(workspace)) -> dict[str, int]:
    return ws.tags()
