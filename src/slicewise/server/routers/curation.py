"""Labelling batches (create from a selection or a view, list, export as a download, labels back as an
upload, drop) and the labelling queue (counts, send to rework, move)."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, Field

from slicewise import metrics
from slicewise.curation import batches, labels, queue
from slicewise.curation import export as ex
from slicewise.server import models as M
from slicewise.server.deps import AppState, as_id, state
from slicewise.server.routers.imports import same_origin
from slicewise.view import View

router = APIRouter(tags=["curation"])


class RowsIn(BaseModel):
    """Rows by id (a gallery selection), or the rows of a view (run, filter, slice, sort; ``top``: the first N)."""

    ids: list[int] | None = Field(None, max_length=batches.MAX_BATCH_ROWS, description="data row ids, in order")
    run: str | None = Field(None, max_length=200)
    q: str | None = Field(None, max_length=20_000, description="filter in the query language")
    slice: str | None = Field(None, max_length=200)
    sort: str | None = Field(None, max_length=500)
    order: str | None = Field(None, pattern="^(asc|desc)$")
    confidence: float | None = Field(None, ge=0, le=1)
    iou: float | None = Field(None, ge=0, le=1)
    dataset: str | None = Field(None, max_length=200)
    top: int | None = Field(None, ge=1, le=batches.MAX_BATCH_ROWS, description="only the first N rows of the view")

    def rows(self) -> Any:
        if self.ids is not None:
            return self.ids
        return View(run=self.run or None, filter=(self.q or "").strip() or None, slice=self.slice or None,
                    sort=(self.sort or "").strip() or None, order=self.order, confidence=self.confidence,
                    iou=self.iou, dataset=self.dataset or None)


class BatchIn(RowsIn):
    name: str = Field(min_length=1, max_length=batches.NAME_MAX)
    priority: int = Field(0, ge=-1000, le=1000)
    note: str = Field("", max_length=batches.NOTE_MAX)
    source: str | None = Field(None, max_length=2000, description="where the rows come from (default: the view, "
                               "or 'selection' for ids)")


class BatchUpdate(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=batches.NAME_MAX)
    priority: int | None = Field(None, ge=-1000, le=1000)
    note: str | None = Field(None, max_length=batches.NOTE_MAX)


class MoveIn(RowsIn):
    state: str = Field("rework", description="to_label, in_review, rework or done")
    only_from: list[str] | None = Field(None, max_length=4, description="move only rows now in one of these states")
    note: str | None = Field(None, max_length=2000)


def _out(b: batches.Batch) -> dict[str, Any]:
    return dataclasses.asdict(b)


def _ref(name: str) -> int | str:
    return as_id(name)


@router.get("/batches", response_model=list[M.BatchOut], summary="Every labelling batch, highest priority first")
def list_batches(st: AppState = Depends(state)) -> list[dict[str, Any]]:
    return [_out(b) for b in batches.list_batches(st.ws)]


@router.post("/batches", status_code=201, response_model=M.BatchOut,
             summary="Make a batch of rows: ids (a selection), or a view's rows (filter, slice, the top N of a sort)")
def create_batch(body: BatchIn, st: AppState = Depends(state)) -> dict[str, Any]:
    return _out(batches.create_batch(st.ws, body.name, body.rows(), priority=body.priority, note=body.note,
                                     limit=body.top if body.ids is None else None, source=body.source))


@router.post("/batches/{name}/rows", response_model=M.BatchOut,
             summary="Add rows (ids, or a view's rows) to an existing batch; rows already in it are skipped")
def add_rows(name: str, body: RowsIn, st: AppState = Depends(state)) -> dict[str, Any]:
    return _out(batches.add_rows(st.ws, _ref(name), body.rows(), limit=body.top if body.ids is None else None))


@router.get("/batches/{name}", response_model=M.BatchOut, summary="One batch (by name or id)")
def get_batch(name: str, st: AppState = Depends(state)) -> dict[str, Any]:
    return _out(batches.get_batch(st.ws, _ref(name)))


@router.patch("/batches/{name}", response_model=M.BatchOut, summary="Change a batch's name, priority or note")
def update_batch(name: str, body: BatchUpdate, st: AppState = Depends(state)) -> dict[str, Any]:
    return _out(batches.update_batch(st.ws, _ref(name), priority=body.priority, note=body.note, new_name=body.name))


@router.delete("/batches/{name}", response_model=M.BatchOut, summary="Drop a batch (its rows and labels stay)")
def drop_batch(name: str, st: AppState = Depends(state)) -> dict[str, Any]:
    return _out(batches.drop_batch(st.ws, _ref(name)))


@router.get("/batches/{name}/export", summary="The batch as a file for a labelling tool (a download)",
            response_class=Response,
            responses={200: {"content": {"application/json": {}, "application/xml": {}, "application/zip": {},
                                         "application/x-ndjson": {}, "text/csv": {}}}})
def export_batch(name: str, format: str = Query("labelstudio", max_length=40, description=", ".join(ex.FORMATS)),
                 run: str | None = Query(None, max_length=200, description="the run whose predictions pre-annotate"),
                 pre: str = Query("auto", pattern="^(auto|predictions|labels|none)$"),
                 min_confidence: float | None = Query(None, ge=0, le=1),
                 image_prefix: str | None = Query(None, max_length=500),
                 st: AppState = Depends(state)) -> Response:
    res = ex.export_batch(st.ws, _ref(name), format, run=run or None, pre=pre, min_confidence=min_confidence,
                          image_prefix=image_prefix)
    return Response(res.data, media_type=res.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{res.filename}"',
                             "X-Slicewise-Rows": str(res.rows), "X-Slicewise-Objects": str(res.objects)})


@router.post("/batches/{name}/labels", response_model=M.LabelImportOut, dependencies=[Depends(same_origin)],
             summary="Upload a labelling tool's export (Label Studio JSON, CVAT XML or zip, COCO): the labels replace "
                     "the rows' ground truth, rows move in the queue, metrics recompute in the background")
async def import_labels(name: str, file: UploadFile = File(description="the tool's export"),
                        format: str | None = Form(None, description="labelstudio, cvat or coco (default: from the file)"),
                        to: str = Form("in_review", description="queue state of the labelled rows"),
                        by: str | None = Form(None, max_length=200),
                        st: AppState = Depends(state)) -> dict[str, Any]:
    data = await file.read()

    def run() -> dict[str, Any]:
        from slicewise.server.routers.runs import _start

        res = labels.import_labels(st.ws, data, name=file.filename or "upload", fmt=format or None,
                                   batch=_ref(name), state=to, by=by, recompute=False)
        started = []
        for ref in res.runs:
            r = st.ws.run(ref)
            if metrics.job_status(st.ws, r).state in ("stale", "failed"):
                _start(st, r, full=False)
                started.append(ref)
        out = dataclasses.asdict(res)
        out.pop("recomputed")
        return {**out, "recomputing": started, "warnings": [str(w) for w in res.warnings]}

    return await run_in_threadpool(run)


@router.get("/queue", response_model=M.QueueCounts, summary="Rows per labelling-queue state (of a dataset)")
def queue_counts(dataset: str | None = Query(None, max_length=200), st: AppState = Depends(state)) -> dict[str, Any]:
    return {"counts": queue.queue_counts(st.ws, dataset or None)}


@router.post("/queue/move", response_model=M.QueueCounts,
             summary="Move rows (ids, or a view's rows such as q=tag:re-label) to a queue state; default: rework")
def move(body: MoveIn, st: AppState = Depends(state)) -> dict[str, Any]:
    n = queue.move(st.ws, body.rows(), body.state, note=body.note, only_from=body.only_from)
    return {"counts": queue.queue_counts(st.ws), "moved": n}
