"""The metrics engine: greedy matching over confidence x IoU grids, per-row / per-feature views,
confusion matrix, precision-recall curves, the COCO protocol and custom metrics.

Public API (every function takes the workspace first and a run as ``ModelRun``, id or ``model/run``):

- ``compute_metrics(ws, run, *, on_progress=None, full=False) -> JobStatus``: match the run (one greedy
  pass per confidence threshold of its grid), store the match records. Incremental: when the job is
  ``stale`` only the rows whose labels or predictions changed are recomputed (``full=True`` redoes all).
- ``job_status(ws, run) -> JobStatus`` (``state`` pending|running|ready|failed|stale, ``done``, ``total``,
  ``error``, ``stale_rows``, ``finished_at``; ``ready``, ``describe(ref)`` a line for people); remembered
  by the workspace until labels, predictions, run rows, run settings or a job change, so it is cheap.
  ``retry(ws, run) -> JobStatus`` re-runs a failed (or any) job; ``start_metrics(ws, run, full=False)``
  runs ``compute_metrics`` in a thread (the job reads ``running`` from the moment it returns).
- ``grids(ws, run) -> (confidence_grid, iou_grid)``; ``set_grids(ws, run, confidence=None, iou=None)``
  validates (sorted, in [0, 1]) and stores them in the run config (the job becomes stale).
  Other run settings (``ws.update_run_config``): ``metrics_matching`` = "class-agnostic" (default) or
  "within-class"; ``metrics_radius`` = buffer radius in px for points and polylines (default 70).
- ``row_metrics_table(ws, run, confidence, iou) -> str``: name of a DuckDB table with ONE row per data row
  of the run: data_row_id, tp, fp, fn, tn (INTEGER; tn counts the run's ontology features applicable to the
  row's media type and dataset that are neither labelled nor predicted on it, see ``ontology``), precision,
  recall, f1, iou (DOUBLE, NULL when
  undefined), conf_min, conf_max, conf_mean (over the predictions kept at c), n_predictions,
  n_annotations. ``confidence`` must be a value of the run's confidence grid; ``iou`` may be any value.
  The name is qualified (``sw_cache_....metrics_row_...``, the workspace's cache database, see
  :mod:`slicewise.state`): use it in FROM as it is. Built on first use from per-(row, feature)
  summaries (tens of ms), cached per (run, c, t, job generation); each conf index's summaries are kept as
  arrays on disk beside the workspace after a job (:mod:`slicewise.metrics.levelfiles`).
- ``row_feature_metrics_table(ws, run, confidence, iou) -> str``: the same per (data_row_id, feature_id)
  for the features labelled or predicted (kept at c) on the row (tn is 0 there).
- ``row_metrics_source(ws, run, confidence, iou) -> (key, columns)``: the same per-row metrics without a
  table: a key that changes whenever they may, and a function giving them as NumPy columns by data row id
  (the query engine's row cache keeps its own copy, see :mod:`slicewise.query.rowcache`).
- ``feature_metrics(ws, run, confidence, iou, rows=None) -> FeatureMetrics``: per feature totals.
- ``ontology(ws, run) -> Ontology``; ``set_ontology(ws, run, features, datasets=None)``: the features a
  run predicts, each applicable to some media types (and datasets); derived from the run's predictions
  and labels unless set (see :mod:`slicewise.metrics.ontologies`).
- ``class_metrics(ws, run, confidence, iou, rows=None) -> ClassMetrics``: per class of the confusion matrix
  (object features, each radio answer, each checklist option): tp, fp, fn, precision, recall, f1,
  support, and ``overall`` (micro and macro); see :mod:`slicewise.metrics.classes`.
- ``calibration(ws, run, confidence, iou, rows=None, n_bins=10) -> Calibration``: ECE and MCE of the
  predictions kept at c (correct = TP at (c, t)), for the run and per predicted class, with the
  reliability-diagram bins; see :mod:`slicewise.metrics.calibration`.
- ``error_types(ws, run, confidence, iou=0.5, rows=None, background_iou=0.1) -> ErrorTypes``: TIDE's six
  error types of the run's detections (classification, localization, both, duplicate, background,
  missed): counts and dAP, for the run and per class; ``error_rows_table(ws, run_id, confidence, iou)``
  the per-row counts and ``overconfident`` score behind the filters ``error:<type>`` and ``overconfident``;
  see :mod:`slicewise.metrics.tide`.
- ``confusion_matrix(ws, run, confidence, iou, rows=None) -> ConfusionMatrix``; ``confusion_cell_rows(ws,
  run, confidence, iou, true_class, pred_class, rows=None) -> (sql, params)`` selecting ``data_row_id`` of
  that cell.
- ``pr_curve(ws, run, feature=None, rows=None, iou=0.5) -> PRCurve``: precision/recall/f1 at every grid
  confidence, a fine curve at every distinct confidence value, and the F1-optimal confidence.
- ``grid_metrics(ws, run) -> GridMetrics``: the whole grid at once. Same numbers as the per-(c, t) functions.
- ``export_row_metrics(ws, run, confidence, iou, path, per_feature=False) -> int``: Parquet or CSV.
- ``f1_optimal_confidences(ws, run, iou=0.5, rows=None) -> F1Optimal``.
- ``row_matches(ws, run, data_row_id, confidence, iou, *, best_iou=True) -> list[dict]``: the objects of
  one data row (labels, then the run's predictions) with their outcome at (c, t), read from the match
  records: ``object_id``, ``source`` (label|prediction), ``feature``, ``feature_id``, ``kind``, ``answer``,
  ``class``, ``confidence``, ``kept``, ``match_id`` / ``match_class`` (the object matched at (c, t)),
  ``iou`` / ``iou_with`` (the pair of the greedy pass, else the best overlap with the other side),
  ``outcome`` ("TP" | "FP" | "FN" | "confusion" (a matched pair of different classes) | "dropped"
  (below c) | None (not covered by the records: row outside the run, or stale)) and ``counts_as``
  (TP|FP|FN as counted by row_metrics_table). In slicewise.metrics.outcomes (a submodule named
  row_matches would shadow the function once imported).
- ``rows_outcomes(ws, run, data_row_ids, confidence, iou) -> dict``: ``{("label"|"prediction", object id):
  outcome}`` of every object of some rows at (c, t), in one query (the gallery's overlays).
- ``coco_eval(ws, run, iou_type="bbox"|"segm") -> CocoResult``: pycocotools-identical stats (12),
  per-class AP and the precision array.
- ``feature_ap(ws, run, wait=True) -> (dict[feature, FeatureAP], FeatureAP | None)`` (``wait=False``: None while it is computed in the background): COCO AP, AP50, AP75 and AR per
  spatial feature (boxes by bbox IoU, polygons and masks by segm IoU) and their means (mAP), over all the
  run's rows; computed once and kept in ``ws.state`` until labels, predictions or rows change.
- ``add_custom_metrics(ws, run, records | path) -> int`` (records: dicts with ``data_row`` (global key),
  ``name``, ``value`` and optional ``feature``; path: CSV or Parquet with those columns);
  ``custom_metrics_table(ws, run) -> str`` ("custom_metrics": run_id, data_row_id, feature_id, name, value).

``rows`` restricts a view to a subset of data rows: ``None`` or ``(sql, params)`` whose SQL selects one
column ``data_row_id`` (what the query compiler produces).

Result types (frozen dataclasses in :mod:`slicewise.metrics.results`; sequences are tuples; each has
``to_dict()`` giving plain JSON-able data, with ``job`` as ``JobStatus.to_dict()``):

- ``FeatureMetrics``: ``features`` (a tuple of ``FeatureRow``: feature_id, feature, kind, tp, fp, fn,
  precision, recall, f1 (None when undefined), iou (mean over rows), n_rows, n_predictions,
  n_annotations, tn (rows where the feature applies and is absent); sorted by feature name), ``confidence``, ``iou``, ``job``; iterating it gives the rows,
  ``get(name)`` one. ``to_dict()``: ``{"confidence", "iou", "features": [row dicts], "job"}``.
- ``ConfusionMatrix``: ``classes`` ("None" last), ``class_ids`` (None last), ``counts`` [true][pred],
  ``confidence``, ``iou``, ``job``.
- ``PRCurve``: ``feature``, ``iou``, per grid confidence ``confidence``, ``precision``, ``recall``, ``f1``,
  ``tp``, ``fp``, ``fn``; ``best_confidence``, ``best_f1``; ``fine`` (``FineCurve``: ``confidence``,
  ``precision``, ``recall``); ``job``.
- ``F1Optimal``: ``confidences`` (read-only mapping feature name -> confidence or None), ``iou``, ``job``.
- ``GridMetrics``: ``confidence``, ``iou`` (the grids), ``table`` (per-row metrics with conf_idx, iou_idx,
  data_row_id and the columns above, for every (c, t)), ``classes`` ("None" last), ``confusion`` (a
  read-only (K, T, C+1, C+1) array [k, t, true, pred]), ``job``.
- ``CocoResult``: ``iou_type``, ``stats`` (12, named by ``results.STAT_NAMES``), ``per_class_ap``
  (read-only mapping), ``precision`` (T, R, K, A, M) and ``recall`` (T, K, A, M) arrays (read-only; left
  out of ``to_dict()``), ``classes``, ``job``.

**Stale is visible.** Each result's ``job`` says whether the numbers are up to date: ``ready``, ``stale``
(labels, predictions, grids or settings changed since they were computed; ``stale_rows``), ``running``
(``done`` / ``total``; the numbers are the previous job's) or ``failed``. When it is not ``ready`` the
functions also warn with ``StaleMetricsWarning`` (a ``UserWarning``, exported here and from
``slicewise``); pass ``warn=False`` to say it yourself. ``coco_eval`` reads the labels and predictions
as they are, so its numbers are never stale: it carries ``job`` but does not warn.

Notes on the semantics:
- The rows of a run are its ``run_rows``: rows with predictions, plus rows added with
  ``ws.add_run_rows`` (do that for rows that have labels but no prediction, or they are not counted).
- Comparable kinds (class-agnostic pairs): boxes, polygons and masks with each other (a mask on either
  side: pixel IoU after pycocotools' rasterisation); points with points and polylines with polylines
  (buffered by the radius, shapely ``quad_segs=16`` as Labelbox's code); NER spans; a radio answer with
  the labelled answer of the same question (IoU 1); a checklist option with the same option (IoU 1).
- Ties in IoU: higher confidence first, then feature ids, then box coordinates, then ids, so results do
  not depend on the order objects were added in.
- A checklist with no counterpart on the other side counts one FP/FN per option (Labelbox's reference
  counts the whole checklist as one object in that case only).
- Polygons that are invalid are repaired with ``make_valid`` (Labelbox's reference uses ``buffer(0)``).
- PR curves: the grid points are exact; the fine curve is the ranking curve of the matching at the
  lowest grid confidence. F1-optimal confidence: ties go to the higher confidence.
- Precision, recall, F1 and IoU reductions are written once, in :mod:`slicewise.metrics.reduce`.

Modules: ``engine`` (jobs, grids, settings), ``objects`` (what matching reads), ``matching`` (pairing, IoU,
greedy passes: arrays in, arrays out), ``tally`` (passes -> record and summary arrays), ``records`` (the
one module that knows the stored tables' layout and reads them), ``reduce`` (pure reductions), ``fast``
and ``grid`` (per-(c, t) and whole-grid arrays), ``tide`` (TIDE error types), ``views`` (the results above), ``results`` (their
types), ``outcomes``, ``coco`` (with its numba kernels in ``cocokernels``), ``custom``, ``schema`` (migrations).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the lazy exports below resolve to, for type checkers and IDEs
    from slicewise.metrics.calibration import calibration
    from slicewise.metrics.classes import class_metrics
    from slicewise.metrics.coco import FeatureAP, coco_eval, feature_ap
    from slicewise.metrics.custom import add_custom_metrics, custom_metrics_table
    from slicewise.metrics.engine import compute_metrics, grids, job_status, retry, set_grids, start_metrics
    from slicewise.metrics.grid import grid_metrics
    from slicewise.metrics.ontologies import Ontology, OntologyFeature, ontology, set_ontology
    from slicewise.metrics.outcomes import OUTCOMES, row_matches, rows_outcomes
    from slicewise.metrics.results import (
        Calibration,
        CalibrationBin,
        CalibrationRow,
        ClassMetrics,
        ClassRow,
        CocoResult,
        ConfusionMatrix,
        F1Optimal,
        FeatureMetrics,
        FeatureRow,
        FineCurve,
        GridMetrics,
        JobStatus,
        Overall,
        PRCurve,
        StaleMetricsWarning,
    )
    from slicewise.metrics.tide import ErrorCounts, ErrorTypes, error_rows_table, error_types, object_errors
    from slicewise.metrics.views import (
        confusion_cell_rows,
        confusion_matrix,
        export_row_metrics,
        f1_optimal_confidences,
        feature_metrics,
        pr_curve,
        row_feature_metrics_table,
        row_metrics_source,
        row_metrics_table,
    )

# Lazy: the store imports slicewise.metrics.schema on every open; numba/shapely load on first use.
_LAZY = {
    "coco_eval": "coco", "feature_ap": "coco", "FeatureAP": "coco", "class_metrics": "classes", "calibration": "calibration",
    "error_types": "tide", "error_rows_table": "tide", "object_errors": "tide", "ErrorTypes": "tide", "ErrorCounts": "tide",
    "add_custom_metrics": "custom", "custom_metrics_table": "custom",
    "compute_metrics": "engine", "grids": "engine", "job_status": "engine", "retry": "engine", "set_grids": "engine",
    "start_metrics": "engine",
    "grid_metrics": "grid",
    "OUTCOMES": "outcomes", "row_matches": "outcomes", "rows_outcomes": "outcomes",
    "Ontology": "ontologies", "OntologyFeature": "ontologies", "ontology": "ontologies", "set_ontology": "ontologies",
    "ClassMetrics": "results", "ClassRow": "results", "Overall": "results", "Calibration": "results",
    "CalibrationBin": "results", "CalibrationRow": "results",
    "CocoResult": "results", "ConfusionMatrix": "results", "F1Optimal": "results", "FeatureMetrics": "results",
    "FeatureRow": "results", "FineCurve": "results", "GridMetrics": "results", "JobStatus": "results",
    "PRCurve": "results", "StaleMetricsWarning": "results",
    "confusion_cell_rows": "views", "confusion_matrix": "views", "export_row_metrics": "views",
    "f1_optimal_confidences": "views", "feature_metrics": "views", "pr_curve": "views",
    "row_feature_metrics_table": "views", "row_metrics_table": "views", "row_metrics_source": "views",
}

__all__ = [
    "OUTCOMES", "Calibration", "CalibrationBin", "CalibrationRow", "ClassMetrics", "ClassRow", "CocoResult", "ConfusionMatrix",
    "ErrorCounts", "ErrorTypes", "F1Optimal", "FeatureAP", "FeatureMetrics", "FeatureRow", "FineCurve",
    "GridMetrics", "JobStatus", "Ontology", "OntologyFeature", "Overall", "PRCurve", "StaleMetricsWarning", "add_custom_metrics", "calibration", "class_metrics", "coco_eval",
    "compute_metrics", "confusion_cell_rows", "confusion_matrix", "custom_metrics_table", "error_rows_table", "error_types",
    "export_row_metrics", "f1_optimal_confidences", "feature_ap", "feature_metrics", "grid_metrics", "grids", "job_status",
    "object_errors", "ontology", "pr_curve", "retry", "row_feature_metrics_table", "row_matches", "row_metrics_source", "row_metrics_table",
    "rows_outcomes",
    "set_grids", "set_ontology", "start_metrics",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"slicewise.metrics.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'slicewise.metrics' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
