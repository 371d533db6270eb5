"""``POST /api/imports`` (upload a file and import it in the background) and ``GET /api/imports/{id}``.

The formats and options are those of ``slicewise import <format>`` (see :mod:`slicewise.server.imports`).
A cross-site form cannot post here: a request whose ``Origin`` is not this server is refused (403).
"""

from __future__ import annotations

import json
import shutil
from typing import Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticError

from slicewise.errors import SlicewiseError
from slicewise.server import imports as I
from slicewise.server.errors import body_for

router = APIRouter(tags=["imports"])

Format = Literal["coco", "coco-results", "yolo", "yolo-predictions", "voc", "indoor", "ndjson", "rows", "table"]


class ImportOptions(BaseModel):
    """The options of ``slicewise import <format>``; each format takes those its command has."""

    model_config = ConfigDict(extra="forbid")

    dataset: str | None = Field(None, max_length=200, description="dataset name (default: from the file/folder)")
    images: str | None = Field(None, max_length=4000, description="folder of the images on the server (absolute, "
                               "or relative to the workspace's folder)")
    split: str | None = Field(None, description="train, valid, test or none")
    run: str | None = Field(None, max_length=400, description="the model run, model/run (created if missing)")
    rows: str | None = Field(None, max_length=400, description="which data rows the run covers (see --rows)")
    create_features: bool | None = Field(None, description="create classes the workspace does not know")
    skip_invalid: bool = Field(False, description="import the valid records and list the rejected ones")
    key: str | None = None
    label: str | None = None
    prediction: str | None = None
    confidence: str | None = None
    probabilities: str | None = None
    metadata: list[str] | None = None
    feature: str | None = None
    media_type: Literal["image", "text"] | None = None


class ProblemOut(BaseModel):
    reason: str
    location: str = Field(description="file:line or file#record, relative to the upload")
    field: str
    fix: str
    severity: str = "error"


class ImportResultOut(BaseModel):
    summary: str
    data_rows: int
    data_rows_skipped: int
    annotations: int
    predictions: int
    replaced: int
    features_created: list[str]
    run: str | None
    run_rows: int | None
    run_rows_without_predictions: int
    rejected_count: int
    warnings_count: int
    rejected: list[ProblemOut] = Field(description=f"the first {I.LIST_LIMIT} rejected records")
    warnings: list[ProblemOut]


class ImportErrorOut(BaseModel):
    error: str
    message: str
    where: str
    fix: str
    problems: list[ProblemOut] = Field(default_factory=list, description="the rejected records (first "
                                       f"{I.LIST_LIMIT}); nothing was imported")
    problems_count: int = 0


class ImportJobOut(BaseModel):
    id: int
    format: str
    filename: str
    state: Literal["queued", "running", "done", "failed"]
    done: int = Field(description="records (or files) read so far")
    total: int | None
    result: ImportResultOut | None
    error: ImportErrorOut | None
    created: float
    finished: float | None


def same_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        raise HTTPException(403, "imports are taken from this server's own pages and from scripts, not from other sites")


def jobs(request: Request) -> I.ImportJobs:
    return request.app.state.imports  # type: ignore[no-any-return]


def job_out(job: I.ImportJob) -> ImportJobOut:
    error = None
    if job.error is not None:
        problems = job.error.get("problems") or []
        error = ImportErrorOut(error=job.error["error"], message=job.error["message"], where=job.error["where"],
                               fix=job.error["fix"], problems=problems[:I.LIST_LIMIT], problems_count=len(problems))
    return ImportJobOut(id=job.id, format=job.format, filename=job.filename, state=job.state, done=job.done,
                        total=job.total, result=job.result, error=error, created=job.created, finished=job.finished)  # type: ignore[arg-type]


@router.post("/imports", status_code=202, response_model=ImportJobOut, dependencies=[Depends(same_origin)],
             summary="Upload a file (a zip for folder formats) and import it in the background",
             responses={422: {"description": "unknown format or option, or a missing one"}})
async def start_import(
    file: UploadFile = File(description="the file to import; a zip of the folder for yolo, voc, indoor"),
    format: Format = Form(description="as in `slicewise import <format>`"),
    options: str = Form("{}", description="JSON object of ImportOptions, e.g. {\"run\": \"detector/v1\"}"),
    all_jobs: I.ImportJobs = Depends(jobs),
) -> ImportJobOut:
    try:
        opts = ImportOptions.model_validate(json.loads(options or "{}")).model_dump(exclude_none=True)
    except (ValueError, PydanticError) as exc:
        raise HTTPException(422, f"options: {exc}") from None
    try:
        I.check_options(format, opts)
    except SlicewiseError as exc:
        raise HTTPException(422, body_for(exc)) from None
    name = (file.filename or "upload").replace("\\", "/").rsplit("/", 1)[-1] or "upload"
    if name in (".", ".."):
        name = "upload"

    def save() -> I.ImportJob:
        folder = all_jobs.folder()
        target = folder / name
        with target.open("wb") as out:
            shutil.copyfileobj(file.file, out, 1 << 20)
        return all_jobs.start(format, target, opts)

    return job_out(await run_in_threadpool(save))


@router.get("/imports/{job_id}", response_model=ImportJobOut, summary="An import job: progress, result or error")
def get_import(job_id: int, all_jobs: I.ImportJobs = Depends(jobs)) -> ImportJobOut:
    job = all_jobs.get(job_id)
    if job is None:
        raise HTTPException(404, f"no import job {job_id} (jobs are kept while the server runs, the last {I.KEEP_JOBS})")
    return job_out(job)
