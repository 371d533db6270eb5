"""Metrics views of a run at a (confidence, IoU) pair, over a view's rows: per-feature table, confusion
matrix, precision-recall curves, per-class metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from slicewise import metrics
from slicewise.errors import MetricsError
from slicewise.server import models as M
from slicewise.server.deps import AppState, get_run, state, view_params
from slicewise.view import ResolvedView, View

router = APIRouter(tags=["metrics"])


def _resolve(st: AppState, run_id: str, view: View) -> ResolvedView:
    from dataclasses import replace

    return replace(view, run=get_run(st.ws, run_id)).resolve(st.ws)


def _head(v: ResolvedView, result: Any) -> dict[str, Any]:
    """What every metrics response starts with: the thresholds, the view's filter and the job's state."""
    return {"confidence": v.confidence, "iou": v.iou, "filter": v.text, "job": result.job.to_dict()}


@router.get("/runs/{run_id}/metrics/features", response_model=M.FeatureTable,
            summary="Per-feature TP, FP, FN, precision, recall, F1, IoU over the view's rows; COCO AP, AP50, AP75, AR "
                    "(and their means) of spatial features over all the run's rows")
def features(run_id: str, view: View = Depends(view_params), st: AppState = Depends(state)) -> dict[str, Any]:
    v = _resolve(st, run_id, view)
    table = metrics.feature_metrics(st.ws, v.run, v.confidence, v.iou, rows=v.rows_sql(), warn=False)  # type: ignore[arg-type]
    try:  # (computed in the background the first time: the page asks again while ap_pending)
        got = metrics.feature_ap(st.ws, v.run, wait=False)  # type: ignore[arg-type]
    except MetricsError:  # a run without rows
        got = ({}, None)
    aps, mean = got if got is not None else ({}, None)
    ap_cols = ("ap", "ap50", "ap75", "ar")
    rows = [{**f.to_dict(), **({k: getattr(aps[f.feature], k) for k in ap_cols} if f.feature in aps else {})}
            for f in table.features]
    overall = table.overall().to_dict()
    if mean is not None:
        overall.update(map=mean.ap, ap50=mean.ap50, ap75=mean.ap75, ar=mean.ar)
    return {**_head(v, table), "features": rows, "overall": overall, "ap_pending": got is None}


@router.get("/runs/{run_id}/metrics/classes", response_model=M.ClassTable,
            summary="Per-class TP, FP, FN, precision, recall, F1 (each radio answer and checklist option a class), "
                    "with micro and macro overall rows")
def classes(run_id: str, view: View = Depends(view_params), st: AppState = Depends(state)) -> dict[str, Any]:
    v = _resolve(st, run_id, view)
    cm = metrics.class_metrics(st.ws, v.run, v.confidence, v.iou, rows=v.rows_sql(), warn=False)  # type: ignore[arg-type]
    d = cm.to_dict()
    return {**_head(v, cm), "classes": d["classes"], "overall": d["overall"]}


@router.get("/runs/{run_id}/metrics/calibration", response_model=M.CalibrationOut,
            summary="ECE, MCE and reliability bins of the predictions kept at the confidence, overall and per class")
def calibration(run_id: str, bins: int = Query(10, ge=1, le=100), view: View = Depends(view_params),
                st: AppState = Depends(state)) -> dict[str, Any]:
    v = _resolve(st, run_id, view)
    cal = metrics.calibration(st.ws, v.run, v.confidence, v.iou, rows=v.rows_sql(), n_bins=bins, warn=False)  # type: ignore[arg-type]
    d = cal.to_dict()
    return {**_head(v, cal), "n_bins": d["n_bins"], "overall": d["overall"], "classes": d["classes"]}


@router.get("/runs/{run_id}/metrics/errors", response_model=M.ErrorTypesOut,
            summary="TIDE error types (classification, localization, both, duplicate, background, missed) of the "
                    "run's detections over the view's rows: counts and dAP, overall and per class")
def error_types(run_id: str, background_iou: float = Query(0.1, gt=0, lt=1), view: View = Depends(view_params),
                st: AppState = Depends(state)) -> dict[str, Any]:
    from slicewise.metrics.tide import error_types as tide_errors

    v = _resolve(st, run_id, view)
    res = tide_errors(st.ws, v.run, v.confidence, v.iou, rows=v.rows_sql(), background_iou=background_iou)  # type: ignore[arg-type]
    d = res.to_dict()
    return {**_head(v, res), **{k: d[k] for k in ("background_iou", "n_rows", "types", "overall", "classes")}}


@router.get("/runs/{run_id}/metrics/confusion", response_model=M.ConfusionOut,
            summary="The confusion matrix over the view's rows, with the None row and column")
def confusion(run_id: str, view: View = Depends(view_params), st: AppState = Depends(state)) -> dict[str, Any]:
    v = _resolve(st, run_id, view)
    cm = metrics.confusion_matrix(st.ws, v.run, v.confidence, v.iou, rows=v.rows_sql(), warn=False)  # type: ignore[arg-type]
    return {**_head(v, cm), "matrix": cm.to_dict()}


@router.get("/runs/{run_id}/metrics/pr", response_model=M.CurveOut,
            summary="Precision-recall curve of all features or of one, over the view's rows")
def pr(run_id: str, feature: str | None = Query(None, max_length=200), view: View = Depends(view_params),
       st: AppState = Depends(state)) -> dict[str, Any]:
    v = _resolve(st, run_id, view)
    curve = metrics.pr_curve(st.ws, v.run, feature=feature, rows=v.rows_sql(), iou=v.iou, warn=False)  # type: ignore[arg-type]
    return {**_head(v, curve), "curve": curve.to_dict()}
