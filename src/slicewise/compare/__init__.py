"""Run comparison: what changed between two runs over the same data rows, and where it is worse.

Public API (runs as ``ModelRun``, id or ``model/run``; the baseline first, as in ``git diff``):

- ``compare_runs(ws, baseline, run, *, confidence=None, iou=None, slices=None, auto=True, n_boot=1000,
  seed=0, level=0.95, iou_delta=0.1) -> Comparison``: over the runs' common data rows (the rows of only one
  run are counted, and left out), per class (feature), overall (micro) and per slice (saved slices and the
  baseline's auto slices, or those named): precision, recall and F1 in both runs, their delta (run minus
  baseline) with a seeded percentile bootstrap interval over data rows, ``significant`` when it excludes 0
  (in groups of 10 rows or more);
  object flips per class (:mod:`slicewise.compare.flips`). ``Comparison.regressions(max_drop)`` lists the
  significant drops beyond an allowed drop, the largest first (what ``slicewise diff`` gates CI on).
- ``flipped_objects(ws, baseline, run, *, confidence=None, iou=None, flip=None, data_row_ids=None,
  limit=1000, iou_delta=0.1) -> list[dict]``: the labels whose outcome changed, with both runs' outcome,
  matched class, IoU and prediction id.
- ``flips_table(ws, baseline, run, confidence, iou) -> str``: the cached table of flips per (data_row_id,
  feature_id) (counts ``tp_fn``, ``fn_tp``, ``fp_new``, ``fp_gone``, ``class_changed``, ``iou_moved``,
  ``flips``) behind the filters ``flip:tp->fn`` ...; ``delta_source(...)``: the per-row deltas behind
  ``delta.recall[person] < -0.1``. In a :class:`slicewise.view.View` give ``baseline=`` to use them.
- :mod:`slicewise.compare.bootstrap`: the resampling (``resample_sums``, ``percentile_interval``), usable on
  its own.

>>> import slicewise.compare as cmp
>>> sorted(cmp.FLIPS)
['class', 'fn->tp', 'fp-gone', 'fp-new', 'iou', 'tp->fn']
"""

from __future__ import annotations

from slicewise.compare.api import delta_source, flipped_objects, flips_table
from slicewise.compare.diff import compare_runs
from slicewise.compare.flips import FLIPS
from slicewise.compare.results import METRICS, Comparison, GroupDelta, MetricDelta, Regression

__all__ = ["FLIPS", "METRICS", "Comparison", "GroupDelta", "MetricDelta", "Regression", "compare_runs", "delta_source",
           "flipped_objects", "flips_table"]
