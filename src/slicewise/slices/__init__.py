"""Saved slices (workspace level, dynamic), auto-generated slices per run, slice metrics and CI checks.

Public API (slices are referred to by id or name):

- ``create_slice(ws, name, filter=None, *, description=None, sort=None) -> Slice``: name 3..30 characters,
  unique (case-insensitive); at most :data:`MAX_SLICES` (100) user slices per workspace.
- ``get_slice(ws, ref)``, ``list_slices(ws, run=None, confidence=None, iou=None) -> list[Slice]`` (``count``
  for the run when one is given), ``update_slice(ws, ref, *, filter=, sort=, name=, description=,
  save_as=None)`` (in place, or with ``save_as=NAME`` as a new slice), ``rename_slice(ws, ref, name)``,
  ``delete_slice(ws, ref)``.
- ``slice_count(ws, ref, run, confidence=None, iou=None) -> int``, ``slice_rows(ws, ref, run, ...) -> Page``,
  ``slice_query(ws, ref) -> Query``. Membership is evaluated on every read; metric conditions use the
  run being viewed at its thresholds.
- ``auto_slices(ws, run, confidence=None, iou=None) -> list[Slice]`` (stored queries with ``params``, for
  runs with ground truth), ``auto_slice(ws, run, key)``, ``set_auto_params(ws, run, low_metric=,
  low_confidence=, mislabel_confidence=)``.
- ``resolve_slice(ws, ref, run=None)``: a user slice, else an auto slice of the run.
- ``slice_metrics(ws, ref, run, confidence=None, iou=None) -> SliceMetrics`` (frozen): count, ``overall``
  (``Totals``: count, tp, fp, fn, precision, recall, f1, iou) and per-feature metrics (``FeatureMetrics``)
  and the confusion matrix of the slice next to those of all rows (metrics' ``rows=``), and ``job``, the
  run's metrics job (a ``StaleMetricsWarning`` when it is stale, running or failed; ``warn=False``: not).
- ``check(ws, run, slice, minimums=None, maximums=None, confidence=None, iou=None) -> CheckResult``
  (frozen; ``passed``, ``items``, ``job``, ``report()``, which says when the metrics are not up to date),
  what ``slicewise check`` runs.
- ``discover(ws, run, metric="f1", min_support=0.01, max_predicates=3, alpha=0.05, top=20) -> Discovery``:
  suggested slices (:mod:`slicewise.slices.suggest`), each with a query-language ``filter``;
  ``save_suggestion(ws, suggestion, name=None)`` saves one as a user slice.
- ``slice_history(ws, model, slices=None, metric="f1") -> list[SliceHistory]``: each slice's metric over
  the model's runs with regressions beyond noise marked (:mod:`slicewise.slices.history`);
  ``set_run_order(ws, model, runs)``, ``model_runs(ws, model)``.
"""

from __future__ import annotations

from slicewise.slices.analysis import (
    CheckItem,
    CheckResult,
    SliceMetrics,
    Totals,
    check,
    resolve_slice,
    slice_metrics,
)
from slicewise.slices.auto import KEYS as AUTO_KEYS
from slicewise.slices.auto import auto_params, auto_slice, auto_slices, set_auto_params
from slicewise.slices.history import HistoryPoint, SliceHistory, model_runs, set_run_order, slice_history
from slicewise.slices.store import (
    MAX_SLICES,
    Slice,
    create_slice,
    delete_slice,
    get_slice,
    list_slices,
    rename_slice,
    slice_count,
    slice_query,
    slice_rows,
    update_slice,
)
from slicewise.slices.suggest import Discovery, Suggestion, discover, save_suggestion

__all__ = [
    "AUTO_KEYS", "MAX_SLICES", "CheckItem", "CheckResult", "Discovery", "HistoryPoint", "Slice", "SliceHistory", "SliceMetrics",
    "Suggestion", "Totals", "auto_params", "auto_slice", "auto_slices", "check", "create_slice", "delete_slice", "discover",
    "get_slice", "list_slices", "model_runs", "rename_slice", "resolve_slice", "save_suggestion", "set_auto_params",
    "set_run_order", "slice_count", "slice_history", "slice_metrics", "slice_query", "slice_rows", "update_slice",
]
