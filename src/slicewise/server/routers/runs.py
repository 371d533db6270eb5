"""Model runs: list, detail, the metrics job (status, compute, retry) and the threshold grids."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from slicewise.errors import MetricsError
from slicewise.server import lib
from slicewise.server.deps import AppState, get_run, state
from slicewise.server.errors import body_for
from slicewise.types.domain import ModelRun
from slicewise.workspace import Workspace

router = APIRouter(tags=["model runs"])


def _job(ws: Workspace, run: ModelRun) -> dict[str, Any] | None:
    if not lib.has("metrics", "job_status"):
        return None
    js = lib.need("metrics").job_status(ws, run)
    return _plain(js)


def _plain(obj: Any) -> dict[str, Any]:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()  # type: ignore[no-any-return]
    if hasattr(obj, "model_dump"):
        return obj.model_dump()  # type: ignore[no-any-return]
    if hasattr(obj, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(obj)
    return dict(obj)


def _run_json(ws: Workspace, run: ModelRun, *, headline: bool) -> dict[str, Any]:
    out: dict[str, Any] = {**run.model_dump(), "ref": run.ref, "job": _job(ws, run), "grids": None,
                           "headline": None, "thresholds": None}
    if lib.has("metrics", "grids"):
        conf, iou = lib.need("metrics").grids(ws, run)
        out["grids"] = {"confidence": [float(v) for v in conf], "iou": [float(v) for v in iou]}
    from slicewise.query import thresholds

    c, t = thresholds(ws, run)  # the run's chosen thresholds, else the grid values nearest 0.5
    out["thresholds"] = {"confidence": c, "iou": t}
    if headline and (out["job"] or {}).get("state") in ("ready", "stale"):
        out["headline"] = _headline(ws, run)
    return out


def _headline(ws: Workspace, run: ModelRun) -> dict[str, Any] | None:
    """Precision, recall and F1 of the whole run at the viewed thresholds (the PR curve's grid point)."""
    from slicewise.server import querying

    try:
        c, t = querying.thresholds(ws, run, None, None)
        curve = lib.need("metrics").pr_curve(ws, run, iou=t)
    except Exception:  # noqa: BLE001 - metrics computed with other grids, or not at all: no headline
        return None
    if c not in curve.confidence:
        return None
    k = curve.confidence.index(c)
    return {"confidence": c, "iou": t, "precision": curve.precision[k], "recall": curve.recall[k], "f1": curve.f1[k],
            "tp": curve.tp[k], "fp": curve.fp[k], "fn": curve.fn[k]}


@router.get("/runs", summary="Every model run with its metrics job status, row count and headline metrics")
def runs(st: AppState = Depends(state)) -> list[dict[str, Any]]:
    return [_run_json(st.ws, r, headline=True) for r in st.ws.runs()]


@router.get("/runs/{run_id}", summary="One model run")
def run(run_id: str, st: AppState = Depends(state)) -> dict[str, Any]:
    return _run_json(st.ws, get_run(st.ws, run_id), headline=True)


@router.get("/runs/{run_id}/job", summary="The metrics job's state: pending, running, ready, failed or stale")
def job(run_id: str, st: AppState = Depends(state)) -> dict[str, Any]:
    r = get_run(st.ws, run_id)
    lib.need("metrics")
    return _job(st.ws, r) or {}


def _start(st: AppState, run: ModelRun, fn_name: str) -> dict[str, Any]:
    metrics = lib.need("metrics")
    fn = getattr(metrics, fn_name)
    alive = st.jobs.get(run.id)
    if alive is None or not alive.is_alive():
        def work() -> None:
            # a failure is recorded in the job status, which the banner shows
            with contextlib.suppress(Exception):
                fn(st.ws, run)

        th = threading.Thread(target=work, name=f"metrics-{run.id}", daemon=True)
        st.jobs[run.id] = th
        th.start()
        th.join(0.05)
    return _job(st.ws, run) or {}


@router.post("/runs/{run_id}/job/compute", summary="Compute (or bring up to date) the run's metrics, in the background")
def compute(run_id: str, st: AppState = Depends(state)) -> dict[str, Any]:
    return _start(st, get_run(st.ws, run_id), "compute_metrics")


@router.post("/runs/{run_id}/job/retry", summary="Retry a failed metrics job")
def retry(run_id: str, st: AppState = Depends(state)) -> dict[str, Any]:
    return _start(st, get_run(st.ws, run_id), "retry")


class Grids(BaseModel):
    confidence: list[float] | None = Field(None, min_length=1, max_length=101)
    iou: list[float] | None = Field(None, min_length=1, max_length=101)


@router.put("/runs/{run_id}/grids", summary="Replace the confidence and/or IoU threshold grids")
def set_grids(run_id: str, grids: Grids, st: AppState = Depends(state)) -> Any:
    r = get_run(st.ws, run_id)
    try:
        lib.need("metrics").set_grids(st.ws, r, confidence=grids.confidence, iou=grids.iou)
    except MetricsError as exc:  # a bad grid is bad input, not a conflict
        return JSONResponse(body_for(exc), status_code=422)
    return _run_json(st.ws, get_run(st.ws, r.id), headline=False)
