"""Model runs: list, detail, the metrics job (status, compute, retry), the threshold grids, the run's
ontology and its auto-slice parameters."""

from __future__ import annotations

import logging
import threading
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from slicewise import metrics, query, slices
from slicewise.errors import MetricsError, NotFoundError, QueryError
from slicewise.server import models as M
from slicewise.server.deps import AppState, get_run, state
from slicewise.server.errors import body_for
from slicewise.types.domain import ModelRun
from slicewise.view import View
from slicewise.workspace import Workspace

router = APIRouter(tags=["model runs"])


def _run_json(ws: Workspace, run: ModelRun, *, headline: bool) -> dict[str, Any]:
    job = metrics.job_status(ws, run).to_dict()
    conf, iou = metrics.grids(ws, run)
    v = View(run=run).resolve(ws)
    out: dict[str, Any] = {**run.model_dump(), "ref": run.ref, "job": job,
                           "grids": {"confidence": [float(x) for x in conf], "iou": [float(x) for x in iou]},
                           "thresholds": {"confidence": v.confidence, "iou": v.iou, "source": v.source},
                           "headline": None}
    if headline and job["state"] in ("ready", "stale"):
        out["headline"] = _headline(ws, v)
    return out


def _headline(ws: Workspace, v: Any) -> dict[str, Any] | None:
    """Precision, recall and F1 of the whole run at the view's thresholds (the PR curve's grid point)."""
    try:
        curve = metrics.pr_curve(ws, v.run, iou=v.iou, warn=False)  # the run's JSON carries the job
    except MetricsError:  # computed with other grids: no headline until recomputed
        return None
    c = v.confidence
    if c not in curve.confidence:
        return None
    k = curve.confidence.index(c)
    return {"confidence": c, "iou": v.iou, "precision": curve.precision[k], "recall": curve.recall[k],
            "f1": curve.f1[k], "tp": curve.tp[k], "fp": curve.fp[k], "fn": curve.fn[k]}


@router.get("/runs", response_model=list[M.RunOut],
            summary="Every model run with its metrics job status, thresholds and headline metrics")
def runs(st: AppState = Depends(state)) -> list[dict[str, Any]]:
    return [_run_json(st.ws, r, headline=True) for r in st.ws.runs()]


@router.get("/runs/{run_id}", response_model=M.RunOut, summary="One model run")
def run(run_id: str, st: AppState = Depends(state)) -> dict[str, Any]:
    return _run_json(st.ws, get_run(st.ws, run_id), headline=True)


@router.get("/runs/{run_id}/job", response_model=M.Job,
            summary="The metrics job's state: pending, running, ready, failed or stale")
def job(run_id: str, st: AppState = Depends(state)) -> dict[str, Any]:
    return metrics.job_status(st.ws, get_run(st.ws, run_id)).to_dict()


def _warm(ws: Workspace, run_id: int) -> None:
    """After a job: the run's first view (row cache and its metrics, the facets' columns) built in a thread of
    its own, so that the job's thread ends with the job (a new job can start at once)."""
    def work() -> None:
        try:
            query.warm(ws, run_id, facets=True)
        except Exception:  # noqa: BLE001 - only the warm-up failed: the first query builds what it needs
            logging.getLogger(__name__).exception("warming the first view of run %s", run_id)

    threading.Thread(target=work, name=f"warm-{run_id}", daemon=True).start()


def _start(st: AppState, run: ModelRun, full: bool) -> dict[str, Any]:
    alive = st.jobs.get(run.id)
    if alive is None or not alive.is_alive():  # (a failure is recorded in the job status, which the banner shows)
        st.jobs[run.id] = metrics.start_metrics(st.ws, run, full=full, then=lambda: _warm(st.ws, run.id))
    return metrics.job_status(st.ws, run).to_dict()


@router.post("/runs/{run_id}/job/compute", response_model=M.Job,
             summary="Compute (or bring up to date) the run's metrics, in the background")
def compute(run_id: str, st: AppState = Depends(state)) -> dict[str, Any]:
    return _start(st, get_run(st.ws, run_id), full=False)


@router.post("/runs/{run_id}/job/retry", response_model=M.Job, summary="Retry a failed metrics job (recomputes all)")
def retry(run_id: str, st: AppState = Depends(state)) -> dict[str, Any]:
    return _start(st, get_run(st.ws, run_id), full=True)


@router.put("/runs/{run_id}/grids", response_model=M.RunOut,
            responses={422: {"description": "a grid is not sorted values in [0, 1]"}},
            summary="Replace the confidence and/or IoU threshold grids")
def set_grids(run_id: str, grids: M.GridsIn, st: AppState = Depends(state)) -> Any:
    r = get_run(st.ws, run_id)
    try:
        metrics.set_grids(st.ws, r, confidence=grids.confidence, iou=grids.iou)
    except MetricsError as exc:  # a bad grid is bad input, not a conflict
        return JSONResponse(body_for(exc), status_code=422)
    r = get_run(st.ws, r.id)
    # a grid edit recomputes in the background at once (the banner shows its progress); a run whose
    # metrics were never computed waits for its first "Compute"
    if metrics.job_status(st.ws, r).state == "stale":
        _start(st, r, full=False)  # (the job says "running" at once, so the page polls its progress)
    return _run_json(st.ws, r, headline=False)


@router.get("/runs/{run_id}/ontology", response_model=M.OntologyOut,
            summary="The run's ontology: the features it predicts and the media types (and datasets) each applies to")
def get_ontology(run_id: str, st: AppState = Depends(state)) -> dict[str, Any]:
    return metrics.ontology(st.ws, get_run(st.ws, run_id)).to_dict()


@router.put("/runs/{run_id}/ontology", response_model=M.OntologyOut,
            responses={422: {"description": "an unknown feature, media type or dataset"}},
            summary="Set the run's ontology (TN counts only its features applicable to a row); null: derived")
def put_ontology(run_id: str, body: M.OntologyIn, st: AppState = Depends(state)) -> Any:
    r = get_run(st.ws, run_id)
    try:
        return metrics.set_ontology(st.ws, r, body.features, datasets=body.datasets).to_dict()
    except (MetricsError, NotFoundError) as exc:
        return JSONResponse(body_for(exc), status_code=422)


@router.put("/runs/{run_id}/auto-slices/params", response_model=list[slices.Slice],
            responses={422: {"description": "a mislabel confidence off the run's confidence grid"}},
            summary="Change the run's auto-slice parameters (low_metric, low_confidence, mislabel_confidence)")
def put_auto_params(run_id: str, body: M.AutoParamsIn, st: AppState = Depends(state)) -> Any:
    r = get_run(st.ws, run_id)
    try:
        slices.set_auto_params(st.ws, r, **body.model_dump(exclude_none=True))
    except QueryError as exc:
        return JSONResponse(body_for(exc), status_code=422)
    v = View(run=get_run(st.ws, r.id)).resolve(st.ws)
    return slices.auto_slices(st.ws, v.run, v.confidence, v.iou)
