"""Embedding spaces: list, upload custom vectors, delete, run a built-in embedder as a background job
(with progress), and similarity search. Views take ``similar_space`` / ``similar_to`` / ``similar_k``
(see :func:`slicewise.server.deps.view_params`)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile

from slicewise import embeddings as emb
from slicewise.embeddings import jobs
from slicewise.errors import ConflictError
from slicewise.server import models as M
from slicewise.server.deps import AppState, similar_params, state, view_params
from slicewise.view import View

router = APIRouter(tags=["embeddings"])


def _job(st: jobs.JobStatus | None) -> dict[str, Any] | None:
    if st is None:
        return None
    return {"space": st.space, "embedder": st.embedder, "state": st.state, "done": st.done, "total": st.total,
            "error": st.error, "started_at": st.started_at.isoformat() if st.started_at else None,
            "finished_at": st.finished_at.isoformat() if st.finished_at else None}


def _space(ws: Any, info: emb.SpaceInfo) -> dict[str, Any]:
    from slicewise.embeddings.index import ANN_MIN_ROWS

    index = "exact"
    if info.count >= ANN_MIN_ROWS:
        idx = emb.index_for(ws, info.name)
        index = "ivf" if idx.ann is not None else "ivf-building"
    return {"name": info.name, "kind": info.kind, "dim": info.dim, "count": info.count, "metric": info.metric,
            "source": info.source, "created": info.created.isoformat(), "index": index,
            "job": _job(jobs.job_status(ws, info.name))}


@router.get("/embeddings", response_model=list[M.Space], summary="The workspace's embedding spaces")
def spaces(st: AppState = Depends(state)) -> list[dict[str, Any]]:
    return [_space(st.ws, s) for s in emb.spaces(st.ws)]


@router.post("/embeddings/{space}", response_model=M.Space, status_code=201,
             summary="Upload custom vectors into a space (.npy with a keys file, Parquet, or CSV)")
def upload(space: str, file: UploadFile = File(description=".npy (with keys), .parquet or .csv"),
           keys: UploadFile | None = File(None, description="for .npy: one global key a line, a JSON list, "
                                                            "or a .npy of data row ids"),
           kind: str = Form("image", pattern="^(image|text)$"), metric: str = Form("cosine", pattern="^(cosine|ip)$"),
           st: AppState = Depends(state)) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="slicewise-vectors-"))
    try:
        path = folder / _safe_name(file.filename, "vectors")
        with path.open("wb") as fh:
            shutil.copyfileobj(file.file, fh)
        kpath = None
        if keys is not None:
            kpath = folder / ("keys-" + _safe_name(keys.filename, "keys.txt"))
            with kpath.open("wb") as fh:
                shutil.copyfileobj(keys.file, fh)
        keys_, vecs = emb.read_vectors(path, kpath)
        info = emb.add_vectors(st.ws, space, keys_, vecs, kind=kind, metric=metric, where=path.name)
        return _space(st.ws, info)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _safe_name(name: str | None, default: str) -> str:
    n = (name or default).replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(c for c in n if c.isalnum() or c in "._-") or default


@router.delete("/embeddings/{space}", response_model=M.Deleted, summary="Delete a space and its vectors")
def delete(space: str, st: AppState = Depends(state)) -> dict[str, Any]:
    if _running(st, space):
        raise ConflictError(f"an embedding job is writing space {space!r}", where="space", fix="wait for it to end")
    emb.drop_space(st.ws, space)
    return {"deleted": space}


def _running(st: AppState, space: str) -> bool:
    t = st.embed_jobs.get(space)
    return t is not None and t[0].is_alive()


@router.post("/embeddings/{space}/jobs", response_model=M.EmbedJob, status_code=202,
             summary="Start a built-in embedder on the rows not yet in the space (a background job)")
def start_job(space: str, body: M.EmbedRequest, st: AppState = Depends(state)) -> dict[str, Any]:
    emb.store.check_name(space)
    if _running(st, space):
        raise ConflictError(f"an embedding job for space {space!r} is already running", where="space",
                            fix=f"follow its progress at GET /api/embeddings/{space}/jobs")
    kw: dict[str, Any] = {"embedder": body.embedder}
    if body.kind == "image":
        kw["size"] = body.size
        kw["base"] = st.base
    st.embed_jobs[space] = jobs.start(st.ws, space, body.kind, **kw)
    for _ in range(200):  # until the job has written its first state (or ended at once)
        status = jobs.job_status(st.ws, space)
        if status is not None and (status.state == "running" or not st.embed_jobs[space][0].is_alive()):
            break
        st.embed_jobs[space][0].join(0.02)
    return _job(jobs.job_status(st.ws, space)) or {"space": space, "embedder": body.embedder or "", "state": "starting",
                                                   "done": 0, "total": 0}


@router.get("/embeddings/{space}/jobs", response_model=M.EmbedJob, summary="The space's embedder job and its progress")
def job(space: str, st: AppState = Depends(state)) -> dict[str, Any]:
    status = jobs.job_status(st.ws, space)
    if status is None:
        from slicewise.errors import NotFoundError

        raise NotFoundError(f"no embedding job for space {space!r}", where="space",
                            fix=f"start one with POST /api/embeddings/{space}/jobs")
    out = _job(status)
    assert out is not None
    if out["state"] == "running" and not _running(st, space) and space not in st.embed_jobs:
        out["state"] = "interrupted"  # written by a process that is gone: start it again to resume
    return out


@router.delete("/embeddings/{space}/jobs", response_model=M.EmbedJob,
               summary="Stop the space's embedder job after its current batch (start it again to resume)")
def stop_job(space: str, st: AppState = Depends(state)) -> dict[str, Any]:
    t = st.embed_jobs.get(space)
    if t is not None:
        t[1].set()
        t[0].join(60)
    return job(space, st)


@router.get("/embeddings/{space}/similar", response_model=list[M.SimilarRow],
            summary="The rows most similar to 1 to 20 anchor rows, among the view's rows")
def similar(space: str, to: str = Query(..., max_length=400, description="anchor data row ids, comma-separated"),
            k: int = Query(50, ge=1, le=10_000), view: View = Depends(view_params),
            st: AppState = Depends(state)) -> list[dict[str, Any]]:
    anchors = similar_params(space, to, None)
    assert anchors is not None
    restrict = view if (view.run or view.filter or view.slice or view.dataset or view.cell or view.similar) else None
    hits = emb.similar(st.ws, space, anchors["anchors"], k=k, view=restrict)
    keys = {r.id: r.global_key for r in st.ws.data_rows(ids=[i for i, _ in hits])} if hits else {}
    return [{"id": i, "global_key": keys.get(i, ""), "score": s} for i, s in hits]
