"""The per-row and per-object sides of a comparison: what the query language's ``flip:`` and ``delta.``
fields and the gallery read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from slicewise.compare import flips
from slicewise.compare.diff import Pair
from slicewise.errors import QueryError
from slicewise.metrics.engine import RunRef

if TYPE_CHECKING:
    from slicewise.workspace import Workspace

#: the metrics a ``delta.`` field may name
DELTA_METRICS = ("tp", "fp", "fn", "precision", "recall", "f1", "iou")


def flips_table(ws: Workspace, baseline: RunRef, run: RunRef, confidence: float | None = None,
                iou: float | None = None, *, iou_delta: float = flips.IOU_DELTA) -> str:
    """The qualified name of the cache table of flips per (data_row_id, feature_id) of the common rows."""
    return Pair(ws, baseline, run, confidence, iou).flips_table(iou_delta)


def delta_source(ws: Workspace, baseline: RunRef, run: RunRef, confidence: float | None, iou: float | None,
                 metric: str, feature_id: int | None = None) -> tuple[str, list[Any]]:
    """``(sql, params)`` of a relation ``(data_row_id, v)``: per common row, the run's value of ``metric``
    (of one feature, or of the row) minus the baseline's; counts treat a missing line as 0, ratios are
    left out where either run's value is undefined."""
    if metric not in DELTA_METRICS:
        raise QueryError(f"delta.{metric} is not a metric", where=f"delta.{metric}",
                         fix="use one of: " + ", ".join(f"delta.{m}" for m in DELTA_METRICS))
    pair = Pair(ws, baseline, run, confidence, iou)
    ta, tb = pair.tables(feature_id is not None)
    count = metric in ("tp", "fp", "fn")
    v = f"coalesce(b.{metric}, 0) - coalesce(a.{metric}, 0)" if count else f"b.{metric} - a.{metric}"
    if feature_id is None:
        sql = (f"SELECT b.data_row_id, {v} AS v FROM {tb} b JOIN {ta} a ON a.data_row_id = b.data_row_id "
               f"WHERE b.data_row_id IN ({pair.common[0]})")
        return sql, list(pair.common[1])
    sql = (f"SELECT coalesce(a.data_row_id, b.data_row_id) AS data_row_id, {v} AS v "
           f"FROM (SELECT * FROM {ta} WHERE feature_id = ?) a FULL JOIN (SELECT * FROM {tb} WHERE feature_id = ?) b "
           f"ON a.data_row_id = b.data_row_id WHERE coalesce(a.data_row_id, b.data_row_id) IN ({pair.common[0]})")
    return sql, [feature_id, feature_id, *pair.common[1]]


def flipped_objects(ws: Workspace, baseline: RunRef, run: RunRef, *, confidence: float | None = None,
                    iou: float | None = None, flip: str | None = None, data_row_ids: Sequence[int] | None = None,
                    limit: int = 1000, iou_delta: float = flips.IOU_DELTA) -> list[dict[str, Any]]:
    """The labels of the common rows whose outcome changed (of one flip type ``flip``; of some rows), by row
    and label id: ``label_id``, ``data_row_id``, ``global_key``, ``feature``, ``flip`` and, for ``baseline``
    and ``run``, the ``outcome`` ("TP", "FN", "confusion"), the matched ``class``, the ``iou`` of the label's
    pair in that run's greedy pass and the ``prediction_id``. Prediction flips (``fp-new``, ``fp-gone``)
    are counts per row and class, not objects: see :func:`flips_table`."""
    if flip is not None:
        flip = flips.flip_name(flip)
        if flip not in flips.FLIPS or flip in ("fp-new", "fp-gone"):
            raise QueryError(f"{flip!r} is not a label flip type", where="flip",
                             fix="use one of: tp->fn, fn->tp, class, iou")
    pair = Pair(ws, baseline, run, confidence, iou)
    rows = None
    if data_row_ids is not None:
        rows = ("SELECT unnest(?::BIGINT[]) AS data_row_id", [[int(i) for i in data_row_ids]])
    return flips.label_flips(ws, pair.a.id, pair.ka, pair.b.id, pair.kb, pair.t, pair.common, rows, flip=flip,
                             iou_delta=iou_delta, limit=limit)
