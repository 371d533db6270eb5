"""Metrics views of a run at a (confidence, IoU) pair: per-feature table, confusion matrix, PR curves."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from slicewise.server import lib, querying
from slicewise.server.deps import AppState, get_run, state
from slicewise.server.views import Scope, scope_params

router = APIRouter(tags=["metrics"])


def _ctx(st: AppState, run_id: str, scope: Scope) -> tuple[Any, Any, float, float, Any]:
    metrics = lib.need("metrics")
    run = get_run(st.ws, run_id)
    c, t = querying.thresholds(st.ws, run, scope.confidence, scope.iou)
    assert c is not None and t is not None  # a run always has thresholds
    rows = querying.rows_sql(st.ws, run, scope, c, t) if (scope.q or scope.slice or scope.dataset or scope.cell) else None
    return metrics, run, c, t, rows


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "to_dict") and callable(obj.to_dict):
        return _jsonable(obj.to_dict())
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if hasattr(obj, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(obj)
    if isinstance(obj, list | tuple):
        return [_jsonable(o) for o in obj]
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    return obj


@router.get("/runs/{run_id}/metrics/features", summary="Per-feature TP, FP, FN, TN, precision, recall, F1, IoU")
def features(run_id: str, scope: Scope = Depends(scope_params), st: AppState = Depends(state)) -> Any:
    metrics, run, c, t, rows = _ctx(st, run_id, scope)
    return {"confidence": c, "iou": t, "features": _jsonable(metrics.feature_metrics(st.ws, run, c, t, rows=rows))}


@router.get("/runs/{run_id}/metrics/confusion", summary="The confusion matrix, with the None row and column")
def confusion(run_id: str, scope: Scope = Depends(scope_params), st: AppState = Depends(state)) -> Any:
    metrics, run, c, t, rows = _ctx(st, run_id, scope)
    return {"confidence": c, "iou": t, "matrix": _jsonable(metrics.confusion_matrix(st.ws, run, c, t, rows=rows))}


@router.get("/runs/{run_id}/metrics/pr", summary="Precision-recall curve of all features or of one")
def pr(run_id: str, feature: str | None = Query(None, max_length=200), scope: Scope = Depends(scope_params),
       st: AppState = Depends(state)) -> Any:
    metrics, run, c, t, rows = _ctx(st, run_id, scope)
    return {"confidence": c, "iou": t, "curve": _jsonable(metrics.pr_curve(st.ws, run, feature=feature, rows=rows, iou=t))}
