"""Automatic slice discovery (suggested slices of a run) and slice history (a model's runs)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query

from slicewise.server import models as M
from slicewise.server.deps import AppState, get_run, state
from slicewise.slices import history, suggest
from slicewise.view import View

router = APIRouter(tags=["discovery"])


@router.get("/runs/{run_id}/suggested-slices", response_model=M.DiscoveryOut,
            summary="Suggested slices: conjunctions of up to 3 predicates whose error is significantly above the run's")
def suggested(run_id: str, metric: Literal["f1", "recall", "precision"] = Query("f1"),
              min_support: float = Query(suggest.DEFAULT_MIN_SUPPORT, gt=0, le=10**9,
                                         description="a fraction of the run's rows (<= 1) or a number of rows"),
              max_predicates: int = Query(3, ge=1, le=3), alpha: float = Query(0.05, gt=0, lt=1),
              top: int = Query(20, ge=1, le=200), confidence: float | None = Query(None, ge=0, le=1),
              iou: float | None = Query(None, ge=0, le=1), wait: bool = Query(False, description="wait for the result"),
              st: AppState = Depends(state)) -> M.DiscoveryOut:
    v = View(run=get_run(st.ws, run_id), confidence=confidence, iou=iou).resolve(st.ws)
    got = suggest.discover(st.ws, v.run, metric=metric, min_support=min_support, max_predicates=max_predicates,
                           alpha=alpha, top=top, confidence=v.confidence, iou=v.iou, wait=wait)
    return M.DiscoveryOut(pending=got is None, discovery=got)


@router.get("/models/{model}/slice-history", response_model=list[M.SliceHistory],
            summary="Every slice's metrics for every run of a model (in history order), regressions beyond noise marked")
def slice_history(model: str, slice: list[str] | None = Query(None, max_length=200,  # noqa: A002
                                                               description="slice names / ids / auto keys (default: all)"),
                  metric: Literal["f1", "recall", "precision"] = Query("f1"),
                  confidence: float | None = Query(None, ge=0, le=1), iou: float | None = Query(None, ge=0, le=1),
                  st: AppState = Depends(state)) -> list[history.SliceHistory]:
    return history.slice_history(st.ws, model, list(slice) if slice else None, metric, confidence, iou)


@router.put("/models/{model}/run-order", response_model=list[str],
            summary="Set the order of a model's runs for the slice history (runs not listed follow by creation)")
def run_order(model: str, body: M.RunOrderIn, st: AppState = Depends(state)) -> list[str]:
    return [r.ref for r in history.set_run_order(st.ws, model, body.runs)]
