"""What the routers share: the app's state, the workspace, run and row lookups, and the view parameters.

Requests run in parallel (FastAPI's thread pool): the library's caches belong to the workspace and
build each table once under a per-key lock (see :mod:`slicewise.state`), and writes are serialised by
the store's single writer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Query, Request

from slicewise.errors import NotFoundError
from slicewise.server.media import MediaFiles, Thumbnails
from slicewise.types.domain import DataRow, ModelRun
from slicewise.types.ids import ascii_int
from slicewise.view import View
from slicewise.workspace import Workspace


@dataclass
class AppState:
    ws: Workspace
    base: Path  # relative media paths are resolved against this folder
    thumbs: Thumbnails
    media: MediaFiles  # finds and checks a row's media file (media roots, image check)
    rows: dict[int, DataRow] = field(default_factory=dict)  # media lookups (row_data never changes)
    jobs: dict[int, Any] = field(default_factory=dict)  # run id -> background metrics thread
    embed_jobs: dict[str, Any] = field(default_factory=dict)  # space -> (embedder thread, stop event)


def state(request: Request) -> AppState:
    return request.app.state.sw  # type: ignore[no-any-return]


def workspace(request: Request) -> Workspace:
    return state(request).ws


def as_id(ref: int | str) -> int | str:
    """An id when ``ref`` is ASCII digits (at most 18 of them), else the text itself: a name. (``str.isdigit``
    is also true of '²', which ``int`` refuses.)"""
    n = ascii_int(ref)
    return str(ref) if n is None else n


def get_run(ws: Workspace, run_id: int | str) -> ModelRun:
    return ws.run(as_id(run_id))


def get_row(st: AppState, row_id: int) -> DataRow:
    """A data row by id, remembered (its media fields never change; read metadata and tags afresh)."""
    row = st.rows.get(row_id)
    if row is None:
        rows = st.ws.data_rows(ids=[row_id])
        if not rows:
            raise NotFoundError(f"no data row with id {row_id}", where="path", fix="take ids from /api/rows")
        row = rows[0]
        if len(st.rows) > 200_000:
            st.rows.clear()
        st.rows[row_id] = row
    return row


def view_params(run: str | None = Query(None, max_length=200, description="model run id or model/run reference"),
                q: str = Query("", max_length=20_000, description="filter in the query language (ANDed with the slice)"),
                sort: str | None = Query(None, max_length=500,
                                         description="sort keys, e.g. -iou or confidence.max, metadata.camera "
                                                     "(default: the slice's sort)"),
                order: str | None = Query(None, pattern="^(asc|desc)$",
                                          description="direction of a single sort key given without one"),
                confidence: float | None = Query(None, ge=0, le=1, description="default: the run's chosen value"),
                iou: float | None = Query(None, ge=0, le=1, description="default: the run's chosen value"),
                slice: str | None = Query(None, max_length=200,
                                          description="a saved slice (id or name) or an auto slice of the run"),
                dataset: str | None = Query(None, max_length=200),
                cell: str | None = Query(None, max_length=2000,
                                         description='a confusion-matrix cell: JSON [true class, predicted class]'),
                similar_space: str | None = Query(None, max_length=64, description="embedding space of a similarity search"),
                similar_to: str | None = Query(None, max_length=400,
                                               description="1 to 20 anchor data row ids, comma-separated: rows are "
                                                           "then those with a vector in similar_space, sort key "
                                                           "'similarity' gives their score"),
                similar_k: int | None = Query(None, ge=1, le=10_000,
                                              description="keep only the k rows nearest the anchors (among those "
                                                          "matching the rest of the view)"),
                baseline: str | None = Query(None, max_length=200,
                                             description="a run to compare with (id or model/run): the filter may use "
                                                         "flip:TYPE and delta.METRIC, and the gallery shows its "
                                                         "predictions too"),
                ) -> View:
    """A view from query parameters: the rows of ``run`` in ``slice`` AND matching ``q`` AND in ``dataset`` AND
    in the confusion-matrix ``cell`` (AND, with ``similar_to``, similar to those rows), at (``confidence``,
    ``iou``), sorted by ``sort`` (see slicewise.view)."""
    return View(run=run or None, confidence=confidence, iou=iou, slice=slice or None, filter=q.strip() or None,
                dataset=dataset or None, cell=cell or None, sort=(sort or "").strip() or None, order=order,
                similar=similar_params(similar_space, similar_to, similar_k), baseline=baseline or None)


def similar_params(space: str | None, to: str | None, k: int | None) -> dict[str, Any] | None:
    """The similarity search of ``similar_space`` / ``similar_to`` / ``similar_k`` (None without anchors)."""
    from slicewise.errors import QueryError

    if not (to or "").strip():
        if space:
            raise QueryError("similar_space needs anchor rows", where="similar_to",
                             fix="give similar_to=ID,ID,... (data row ids)")
        return None
    if not space:
        raise QueryError("similar_to needs the embedding space", where="similar_space",
                         fix="give similar_space (see GET /api/embeddings)")
    try:
        anchors = [int(a) for a in (to or "").split(",") if a.strip()]
    except ValueError:
        raise QueryError(f"similar_to={to!r} is not a list of data row ids", where="similar_to",
                         fix="give comma-separated whole numbers, e.g. 12,40") from None
    return {"space": space, "anchors": anchors, "k": k}
