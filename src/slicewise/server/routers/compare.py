"""Run comparison: per class and slice deltas with bootstrap intervals, regressions first, object flips."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from slicewise import compare
from slicewise.server import models as M
from slicewise.server.deps import AppState, get_run, state

router = APIRouter(tags=["compare"])


@router.get("/compare", response_model=M.ComparisonOut,
            summary="Compare a run with a baseline over their common rows: per class and slice, precision / recall / "
                    "F1 deltas with percentile bootstrap intervals over rows, flips; regressions first")
def compare_runs(baseline: str = Query(..., max_length=200, description="baseline run (id or model/run)"),
                 run: str = Query(..., max_length=200, description="the run compared with it"),
                 confidence: float | None = Query(None, ge=0, le=1), iou: float | None = Query(None, ge=0, le=1),
                 slice: list[str] | None = Query(None, max_length=100,
                                                 description="only these slices (default: saved and auto slices)"),
                 boot: int = Query(1000, ge=10, le=10_000, description="bootstrap resamples"),
                 seed: int = Query(0, ge=0, le=2**31 - 1), level: float = Query(0.95, gt=0.5, lt=1),
                 st: AppState = Depends(state)) -> dict[str, Any]:
    a, b = get_run(st.ws, baseline), get_run(st.ws, run)
    cmp = compare.compare_runs(st.ws, a, b, confidence=confidence, iou=iou, slices=slice or None, auto=not slice,
                               n_boot=boot, seed=seed, level=level)
    out = cmp.to_dict()
    groups = {(g.kind, g.name): g for g in cmp.groups()}
    out["regressions"] = [{**r.__dict__, "filter": groups[(r.kind, r.name)].worse_filter(r.metric)}
                          for r in cmp.regressions()]
    return out


@router.get("/compare/flips", response_model=list[M.FlippedObjectOut],
            summary="The labels whose outcome changed between the baseline and the run (of one flip type, of one row)")
def flips(baseline: str = Query(..., max_length=200), run: str = Query(..., max_length=200),
          confidence: float | None = Query(None, ge=0, le=1), iou: float | None = Query(None, ge=0, le=1),
          flip: str | None = Query(None, max_length=20, description="tp->fn, fn->tp, class or iou"),
          row: int | None = Query(None, ge=0, description="a data row id"),
          limit: int = Query(1000, ge=1, le=100_000), st: AppState = Depends(state)) -> list[dict[str, Any]]:
    a, b = get_run(st.ws, baseline), get_run(st.ws, run)
    return compare.flipped_objects(st.ws, a, b, confidence=confidence, iou=iou, flip=flip,
                                   data_row_ids=[row] if row is not None else None, limit=limit)
