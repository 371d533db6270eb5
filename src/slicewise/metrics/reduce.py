"""The metric reductions, written once: pure functions of counts (Python numbers or NumPy arrays).

Every precision, recall, F1 and IoU slicewise reports goes through these, whether it is one number
(a feature's total, a slice's total, a point of a PR curve) or a column of a million rows.

**Undefined is not zero.** A ratio whose denominator is 0 is undefined: ``None`` for Python numbers,
``NaN`` in arrays (stored as NULL). So a feature with no predictions has no precision, not precision 0:

>>> safe_divide(3, 4), safe_divide(0, 0)
(0.75, None)
>>> safe_divide(np.array([1.0, 0.0, 2.0]), np.array([2.0, 0.0, 0.0]))
array([0.5, nan, nan])
>>> prf(3, 1, 2)  # precision tp/(tp+fp), recall tp/(tp+fn), F1 2tp/(2tp+fp+fn)
(0.75, 0.6, 0.666666666667)
>>> prf(0, 0, 5)  # nothing predicted: precision undefined, recall and F1 are 0
(None, 0.0, 0.0)
>>> prf(0, 0, 0)
(None, None, None)

A pair of objects is a match at IoU threshold ``t`` when its IoU is *above* ``t`` (equal is not a match).

**Ratios are rounded to 12 decimals** (:func:`round_ratio`) before they are reported or stored, so a
ratio that is a short decimal is stored as that decimal: F1 = 2.8 / 7 is 0.4 (not 0.39999999999999997),
and ``f1 = 0.4``, ``f1 >= 0.4``, ``f1 between 0.4 and 0.6`` and the histogram bin [0.4, 0.5) all hold it.
Ratios lie in [0, 1], so this changes a value by at most 5e-13. (The IoU of a pair of objects, which
decides matches against thresholds as pycocotools does, is not rounded.)

>>> f1(1.4, 0.0, 4.2), safe_divide(2.8, 7.0)  # 2.8 / 7 in floating point is 0.39999999999999997
(0.4, 0.39999999999999997)
"""

from __future__ import annotations

from typing import overload

import numpy as np

Number = int | float
RATIO_DECIMALS = 12


@overload
def round_ratio(x: None, *, _owned: bool = False) -> None: ...
@overload
def round_ratio(x: Number, *, _owned: bool = False) -> float: ...
@overload
def round_ratio(x: np.ndarray, *, _owned: bool = False) -> np.ndarray: ...


def round_ratio(x: np.ndarray | Number | None, *, _owned: bool = False) -> np.ndarray | float | None:
    """A ratio rounded to :data:`RATIO_DECIMALS` decimals (NaN and None stay as they are).

    >>> round_ratio(0.1 + 0.2), round_ratio(np.array([2.8 / 7, np.nan, 1 / 3]))
    (0.3, array([0.4       ,        nan, 0.33333333]))
    """
    if x is None:
        return None
    if isinstance(x, np.ndarray):
        x = x.astype(np.float64, copy=False)
        return np.round(x, RATIO_DECIMALS, out=x if _owned else None)
    return float(np.round(float(x), RATIO_DECIMALS))


def ratio_scale() -> float:
    """10 ** :data:`RATIO_DECIMALS` as NumPy's ``np.round`` computes it (its ``power_of_ten``: a table up to
    1e8, else 1e9 times ten for each further decimal), which multiplies by it, rounds half to even and divides:
    a compiled kernel rounds as ``np.round(x, RATIO_DECIMALS)`` does with ``rint(x * scale) / scale``."""
    if RATIO_DECIMALS < 9:
        return float(10 ** RATIO_DECIMALS)
    scale = 1e9
    for _ in range(RATIO_DECIMALS - 9):
        scale *= 10.0
    return scale


@overload
def ratio(a: Number, b: Number) -> float | None: ...
@overload
def ratio(a: np.ndarray | Number, b: np.ndarray) -> np.ndarray: ...
@overload
def ratio(a: np.ndarray, b: np.ndarray | Number) -> np.ndarray: ...


def ratio(a: np.ndarray | Number, b: np.ndarray | Number) -> np.ndarray | float | None:
    """``safe_divide(a, b)`` rounded as a reported ratio (:func:`round_ratio`): undefined where ``b`` is 0.

    >>> ratio(2.8, 7), ratio(1, 0)
    (0.4, None)
    """
    # (safe_divide made a new array: it is rounded in place)
    return round_ratio(safe_divide(a, b), _owned=True)  # type: ignore[arg-type]


@overload
def safe_divide(a: Number, b: Number, default: None = None) -> float | None: ...
@overload
def safe_divide(a: Number, b: Number, default: float) -> float: ...
@overload
def safe_divide(a: np.ndarray | Number, b: np.ndarray, default: float = ...) -> np.ndarray: ...
@overload
def safe_divide(a: np.ndarray, b: np.ndarray | Number, default: float = ...) -> np.ndarray: ...


def safe_divide(a: np.ndarray | Number, b: np.ndarray | Number, default: float | None = None
                ) -> np.ndarray | float | None:
    """``a / b``, and ``default`` where ``b`` is 0: ``None`` for Python numbers, ``NaN`` for arrays
    (unless another ``default`` is given).

    >>> safe_divide(1.0, np.array([4.0, 0.0]), default=0.0)
    array([0.25, 0.  ])
    """
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b, np.float64)
        out = np.full(np.broadcast_shapes(a.shape, b.shape), np.nan if default is None else default)
        with np.errstate(invalid="ignore"):  # (one pass: only where b is not 0)
            return np.divide(a, b, out=out, where=b != 0)
    return a / b if b else default


@overload
def precision(tp: Number, fp: Number) -> float | None: ...
@overload
def precision(tp: np.ndarray, fp: np.ndarray) -> np.ndarray: ...


def precision(tp: np.ndarray | Number, fp: np.ndarray | Number) -> np.ndarray | float | None:
    """tp / (tp + fp): the share of kept predictions that are true positives."""
    return ratio(tp, tp + fp)  # type: ignore[operator, no-any-return]


@overload
def recall(tp: Number, fn: Number) -> float | None: ...
@overload
def recall(tp: np.ndarray, fn: np.ndarray) -> np.ndarray: ...


def recall(tp: np.ndarray | Number, fn: np.ndarray | Number) -> np.ndarray | float | None:
    """tp / (tp + fn): the share of labels found."""
    return ratio(tp, tp + fn)  # type: ignore[operator, no-any-return]


@overload
def f1(tp: Number, fp: Number, fn: Number) -> float | None: ...
@overload
def f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray: ...


def f1(tp: np.ndarray | Number, fp: np.ndarray | Number, fn: np.ndarray | Number) -> np.ndarray | float | None:
    """2tp / (2tp + fp + fn), the harmonic mean of precision and recall (defined whenever either is).

    >>> f1(np.array([1.0, 0.0]), np.array([1.0, 0.0]), np.array([0.0, 0.0]))
    array([0.66666667,        nan])
    """
    return ratio(2 * tp, 2 * tp + fp + fn)  # type: ignore[operator, no-any-return]


def prf(tp: Number, fp: Number, fn: Number) -> tuple[float | None, float | None, float | None]:
    """(precision, recall, F1) of one set of counts."""
    return precision(tp, fp), recall(tp, fn), f1(tp, fp, fn)


def group_mean(groups: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """The mean of ``values`` per group ``0 .. n-1``, over the values that are defined (not NaN);
    NaN for a group without any.

    >>> group_mean(np.array([0, 0, 1, 2]), np.array([0.5, np.nan, 1.0, np.nan]), 3)
    array([0.5, 1. , nan])
    """
    has = ~np.isnan(values)
    total = np.bincount(groups, weights=np.where(has, values, 0.0), minlength=n)
    return safe_divide(total, np.bincount(groups, weights=has.astype(np.float64), minlength=n))


def overlap_iou(matched_iou: np.ndarray, n_pred: np.ndarray, n_gt: np.ndarray, jaccard: np.ndarray) -> np.ndarray:
    """The overlap quality of a (data row, feature): the sum of its matched pairs' IoU over the larger of
    its numbers of predictions and labels (Labelbox's mean IoU, unmatched objects counting 0); where
    ``jaccard`` is set (checklists, whose matched "IoU" is 1 per shared option) the Jaccard index
    shared / (predicted + labelled - shared). NaN when the feature is on neither side.

    >>> overlap_iou(np.array([1.5, 2.0, 0.0]), np.array([2.0, 2.0, 0.0]), np.array([4.0, 4.0, 0.0]),
    ...             np.array([False, True, False]))  # 1.5 / 4; 2 / (2 + 4 - 2); nothing
    array([0.375, 0.5  ,   nan])
    """
    val = safe_divide(matched_iou, np.maximum(n_pred, n_gt))
    val[jaccard] = safe_divide(matched_iou[jaccard], n_pred[jaccard] + n_gt[jaccard] - matched_iou[jaccard])
    return round_ratio(val, _owned=True)


def tp_above(owner: np.ndarray, iou: np.ndarray, n: int, t: float) -> np.ndarray:
    """TP count of each of ``n`` lines at IoU threshold ``t``: how many of its same-class pairs
    (``owner[i]`` is the line of pair i) have an IoU above ``t``.

    >>> tp_above(np.array([0, 0, 2]), np.array([0.9, 0.5, 0.7]), 3, 0.5)
    array([1., 0., 1.])
    """
    return np.bincount(owner[iou > t], minlength=n).astype(np.float64)


def tp_at_levels(owner: np.ndarray, iou: np.ndarray, n: int, grid: np.ndarray) -> np.ndarray:
    """``tp_above`` at every threshold of a sorted ``grid`` at once, as an (n, len(grid)) array: a pair's
    *level* is the number of grid values below its IoU (it is a match at exactly those), so the counts
    are suffix sums of a histogram of levels.

    >>> tp_at_levels(np.array([0, 0, 2]), np.array([0.9, 0.5, 0.7]), 3, np.array([0.0, 0.5, 0.8]))
    array([[2, 1, 1],
           [0, 0, 0],
           [1, 1, 0]])
    """
    T = len(grid)
    level = np.searchsorted(grid, iou, side="left")
    hist = np.bincount(owner.astype(np.int64, copy=False) * (T + 1) + level, minlength=n * (T + 1)).reshape(n, T + 1)
    return np.cumsum(hist[:, ::-1], axis=1)[:, ::-1][:, 1:]


def ranking_curve(confidence: np.ndarray, is_tp: np.ndarray, n_pos: int) -> tuple[np.ndarray, ...]:
    """The ranking precision-recall curve of predictions sorted by decreasing ``confidence``: (each distinct
    confidence, precision and recall of the predictions at or above it). Recall is 0 without labels.

    >>> ranking_curve(np.array([0.9, 0.8, 0.8, 0.3]), np.array([True, False, True, True]), 4)
    (array([0.9, 0.8, 0.3]), array([1.        , 0.66666667, 0.75      ]), array([0.25, 0.5 , 0.75]))
    """
    ctp = np.cumsum(is_tp.astype(bool))
    last = np.flatnonzero(np.r_[confidence[1:] != confidence[:-1], True])
    rec = round_ratio(ctp[last] / n_pos, _owned=True) if n_pos else np.zeros(len(last))
    return confidence[last], round_ratio(ctp[last] / (last + 1), _owned=True), rec


def best_f1(confidence: tuple[float, ...] | list[float], f1s: tuple[float | None, ...] | list[float | None]
            ) -> tuple[float | None, float | None]:
    """(the confidence of the highest defined F1, that F1); ties go to the higher confidence.

    >>> best_f1([0.1, 0.5, 0.9], [0.5, 0.8, 0.8])
    (0.9, 0.8)
    >>> best_f1([0.1], [None])
    (None, None)
    """
    best = max(((f, c) for f, c in zip(f1s, confidence, strict=True) if f is not None), default=None)
    return (best[1], best[0]) if best else (None, None)
