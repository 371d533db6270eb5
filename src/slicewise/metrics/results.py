"""What the metrics functions return: frozen values that carry the metrics job's state next to the numbers.

Each result has a ``job`` (:class:`JobStatus`): ``ready`` when the numbers are up to date, ``stale`` when
labels, predictions, grids or settings changed since they were computed (``stale_rows`` says how many
rows), ``running`` while a recomputation is under way (``done`` / ``total``; the numbers are the previous
computation's). The functions warn with :class:`StaleMetricsWarning` when it is ``stale``, ``running`` or ``failed``, and
``to_dict()`` gives plain JSON-able data (what the server sends).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

#: the names of the 12 COCO stats, in COCOeval.summarize()'s order
STAT_NAMES = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
              "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large")

class StaleMetricsWarning(UserWarning):
    """Metrics were returned that do not reflect the workspace as it is now: the job is ``stale`` (labels,
    predictions, grids or settings changed since they were computed), ``running`` (a recomputation is
    under way) or ``failed`` (the last recomputation failed; the numbers are from the one before)."""


@dataclass(frozen=True)
class JobStatus:
    """The state of a run's metrics job: ``pending`` (never computed), ``running``, ``ready``, ``failed``
    (with ``error``) or ``stale`` (``stale_rows`` rows changed since; all of them when the grids or
    settings changed)."""

    run_id: int
    state: str  # pending | running | ready | failed | stale
    done: int
    total: int
    error: str | None = None
    stale_rows: int = 0
    finished_at: datetime | None = None
    #: why a ``stale`` job is stale: ``grids`` (the threshold grids were edited), ``settings`` (matching
    #: settings) or ``data`` (labels, predictions or the run's rows changed); None otherwise
    reason: str | None = None

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    @property
    def outdated(self) -> bool:
        """Whether stored numbers exist that may not reflect the workspace now (stale, running or failed)."""
        return self.state in ("stale", "running", "failed")

    def describe(self, run_ref: str | None = None) -> str:
        """One line for people: what the state means for the numbers shown, and what to do.

        >>> JobStatus(3, "stale", 10, 10, stale_rows=2).describe("det/v1")
        'metrics of run det/v1 are stale: 2 of 10 rows changed since they were computed; run `slicewise metrics compute det/v1`'
        """
        ref = run_ref or str(self.run_id)
        fix = f"run `slicewise metrics compute {ref}`"
        if self.state == "stale":
            what = f"{self.stale_rows:,} of {self.total:,} rows changed" if self.stale_rows < self.total else \
                {"grids": "the threshold grids changed", "settings": "the matching settings changed",
                 "data": "the labels or predictions of every row changed"}.get(
                    self.reason or "", "labels, predictions, grids or settings changed")
            return f"metrics of run {ref} are stale: {what} since they were computed; {fix}"
        if self.state == "running":
            return (f"metrics of run {ref} are being recomputed ({self.done:,}/{self.total:,} rows); "
                    "these numbers are from the previous computation")
        if self.state == "failed":
            return f"the last metrics job of run {ref} failed ({self.error}); these numbers are older; {fix}"
        if self.state == "pending":
            return f"metrics of run {ref} are not computed; {fix}"
        return f"metrics of run {ref} are up to date"

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "state": self.state, "done": self.done, "total": self.total,
                "error": self.error, "stale_rows": self.stale_rows,
                "finished_at": self.finished_at.isoformat() if self.finished_at else None, "reason": self.reason}


def warn_if_outdated(job: JobStatus, run_ref: str | None = None, *, stacklevel: int = 3) -> None:
    """Warn with :class:`StaleMetricsWarning` when ``job`` is stale, running or failed (``stacklevel`` 3:
    the caller of the public function that calls this)."""
    if job.outdated:
        warnings.warn(job.describe(run_ref), StaleMetricsWarning, stacklevel=stacklevel)


@dataclass(frozen=True)
class FeatureRow:
    """One feature's totals at (c, t): counts summed over rows, precision / recall / F1 of the totals
    (None when undefined), ``iou`` the mean over the rows where it is defined."""

    feature_id: int
    feature: str
    kind: str
    tp: int
    fp: int
    fn: int
    precision: float | None
    recall: float | None
    f1: float | None
    iou: float | None
    n_rows: int
    n_predictions: int
    n_annotations: int
    tn: int | None = None  # rows where the feature applies (run ontology) and is neither labelled nor predicted

    def to_dict(self) -> dict[str, Any]:
        return {"feature_id": self.feature_id, "feature": self.feature, "kind": self.kind, "tp": self.tp,
                "fp": self.fp, "fn": self.fn, "tn": self.tn, "precision": self.precision, "recall": self.recall,
                "f1": self.f1, "iou": self.iou, "n_rows": self.n_rows, "n_predictions": self.n_predictions,
                "n_annotations": self.n_annotations}


@dataclass(frozen=True)
class FeatureMetrics:
    """Per-feature totals at (confidence, iou), sorted by feature name."""

    features: tuple[FeatureRow, ...]
    confidence: float
    iou: float
    job: JobStatus

    def __iter__(self) -> Iterator[FeatureRow]:
        return iter(self.features)

    def __len__(self) -> int:
        return len(self.features)

    def get(self, feature: str) -> FeatureRow | None:
        """The row of a feature by name, None when the feature has nothing at (c, t)."""
        return next((f for f in self.features if f.feature == feature), None)

    def overall(self) -> Overall:
        """Micro (summed counts) and macro (mean over the features where defined) precision, recall, F1."""
        from slicewise.metrics.classes import overall

        return overall(*(np.array([getattr(f, k) for f in self.features], np.int64) for k in ("tp", "fp", "fn")))

    def to_dict(self) -> dict[str, Any]:
        return {"confidence": self.confidence, "iou": self.iou, "features": [f.to_dict() for f in self.features],
                "job": self.job.to_dict()}


@dataclass(frozen=True)
class ConfusionMatrix:
    """``counts[i][j]``: objects of true class ``classes[i]`` predicted as ``classes[j]``; the last class
    is ``"None"`` (unmatched predictions are in its row, unmatched annotations in its column)."""

    classes: tuple[str, ...]
    class_ids: tuple[int | None, ...]
    counts: tuple[tuple[int, ...], ...]
    confidence: float
    iou: float
    job: JobStatus

    def to_dict(self) -> dict[str, Any]:
        return {"classes": list(self.classes), "class_ids": list(self.class_ids),
                "counts": [list(r) for r in self.counts], "confidence": self.confidence, "iou": self.iou,
                "job": self.job.to_dict()}


@dataclass(frozen=True)
class FineCurve:
    """The ranking curve: precision and recall after each distinct confidence, highest first."""

    confidence: tuple[float, ...] = ()
    precision: tuple[float, ...] = ()
    recall: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, list[float]]:
        return {"confidence": list(self.confidence), "precision": list(self.precision), "recall": list(self.recall)}


@dataclass(frozen=True)
class PRCurve:
    """Precision and recall at every grid confidence, and a fine curve at every distinct confidence."""

    feature: str | None
    iou: float
    confidence: tuple[float, ...]
    precision: tuple[float | None, ...]
    recall: tuple[float | None, ...]
    f1: tuple[float | None, ...]
    tp: tuple[int, ...]
    fp: tuple[int, ...]
    fn: tuple[int, ...]
    best_confidence: float | None  # F1-optimal confidence of the grid (ties: the higher)
    best_f1: float | None
    fine: FineCurve
    job: JobStatus

    def to_dict(self) -> dict[str, Any]:
        return {"feature": self.feature, "iou": self.iou, "confidence": list(self.confidence),
                "precision": list(self.precision), "recall": list(self.recall), "f1": list(self.f1),
                "tp": list(self.tp), "fp": list(self.fp), "fn": list(self.fn), "best_confidence": self.best_confidence,
                "best_f1": self.best_f1, "fine": self.fine.to_dict(), "job": self.job.to_dict()}


@dataclass(frozen=True)
class F1Optimal:
    """The F1-optimal grid confidence of each feature of a run (None when its F1 is never defined)."""

    confidences: Mapping[str, float | None]
    iou: float
    job: JobStatus

    def to_dict(self) -> dict[str, Any]:
        return {"confidences": dict(self.confidences), "iou": self.iou, "job": self.job.to_dict()}


@dataclass(frozen=True, eq=False)  # holds arrays: equal only to itself
class GridMetrics:
    """The whole grid: ``table`` names a cached view of per-row metrics at every (c, t) (conf_idx, iou_idx,
    data_row_id, tp, fp, fn, tn, ...; in no particular order) and ``confusion[k, t, true, pred]`` is a (K, T, C + 1, C + 1)
    read-only array over ``classes`` ("None" last)."""

    confidence: tuple[float, ...]
    iou: tuple[float, ...]
    table: str
    classes: tuple[str, ...]
    confusion: np.ndarray
    job: JobStatus

    def to_dict(self) -> dict[str, Any]:
        return {"confidence": list(self.confidence), "iou": list(self.iou), "table": self.table,
                "classes": list(self.classes), "confusion": self.confusion.tolist(), "job": self.job.to_dict()}


@dataclass(frozen=True, eq=False)  # holds arrays: equal only to itself
class CocoResult:
    """The COCO protocol's results. ``precision`` (T, R, K, A, M) and ``recall`` (T, K, A, M) are
    COCOeval's ``eval`` arrays (read-only; -1 where undefined), K over ``classes``; ``to_dict()`` leaves
    them out (a million numbers for 80 classes)."""

    iou_type: str
    stats: tuple[float, ...]  # the 12 numbers of COCOeval.summarize(), named by STAT_NAMES
    per_class_ap: Mapping[str, float | None]  # AP@[.5:.95], all areas, 100 detections; None without ground truth
    precision: np.ndarray
    recall: np.ndarray
    classes: tuple[str, ...]
    job: JobStatus

    def to_dict(self) -> dict[str, Any]:
        return {"iou_type": self.iou_type, "stats": dict(zip(STAT_NAMES, self.stats, strict=True)),
                "per_class_ap": dict(self.per_class_ap), "classes": list(self.classes), "job": self.job.to_dict()}


def frozen_array(a: np.ndarray) -> np.ndarray:
    """``a``, made read-only (results are values)."""
    a.flags.writeable = False
    return a


class FrozenMap(Mapping[str, Any]):
    """A read-only mapping (a copy of the one given); equal to any mapping with the same items, picklable.

    >>> m = FrozenMap({"cat": 0.4})
    >>> m["cat"], m == {"cat": 0.4}, dict(m)
    (0.4, True, {'cat': 0.4})
    """

    __slots__ = ("_d",)
    _d: dict[str, Any]

    def __init__(self, d: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "_d", dict(d or {}))

    def __getitem__(self, key: str) -> Any:
        return self._d[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)

    def __repr__(self) -> str:
        return f"FrozenMap({self._d!r})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("FrozenMap is read-only")

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenMap, (self._d,))


def frozen_mapping(d: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only copy of ``d``."""
    return FrozenMap(d)


@dataclass(frozen=True)
class ClassRow:
    """One class of the confusion matrix at (c, t): an object feature, or one answer of a radio question /
    one option of a checklist. ``support`` is its number of labels (tp + fn)."""

    class_id: int
    name: str
    feature_id: int
    feature: str
    answer: str | None
    kind: str
    tp: int
    fp: int
    fn: int
    precision: float | None
    recall: float | None
    f1: float | None

    @property
    def support(self) -> int:
        return self.tp + self.fn

    def to_dict(self) -> dict[str, Any]:
        return {"class_id": self.class_id, "name": self.name, "feature_id": self.feature_id, "feature": self.feature,
                "answer": self.answer, "kind": self.kind, "tp": self.tp, "fp": self.fp, "fn": self.fn,
                "precision": self.precision, "recall": self.recall, "f1": self.f1, "support": self.support}


@dataclass(frozen=True)
class Overall:
    """A summary row: ``micro`` (precision / recall / F1 of the summed counts) and ``macro`` (the mean of
    the per-class values over the classes where each is defined; None when none is)."""

    tp: int
    fp: int
    fn: int
    micro_precision: float | None
    micro_recall: float | None
    micro_f1: float | None
    macro_precision: float | None
    macro_recall: float | None
    macro_f1: float | None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("tp", "fp", "fn", "micro_precision", "micro_recall", "micro_f1",
                                             "macro_precision", "macro_recall", "macro_f1")}


@dataclass(frozen=True)
class ClassMetrics:
    """Per-class metrics at (c, t) (classes in the confusion matrix's order, "None" left out; classes with no
    label and no prediction in the view left out), with the overall row."""

    classes: tuple[ClassRow, ...]
    overall: Overall
    confidence: float
    iou: float
    job: JobStatus

    def __iter__(self) -> Iterator[ClassRow]:
        return iter(self.classes)

    def get(self, name: str) -> ClassRow | None:
        """The row of a class by name ("digit: 7" for an answer), None when it has nothing at (c, t)."""
        return next((c for c in self.classes if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {"confidence": self.confidence, "iou": self.iou, "classes": [c.to_dict() for c in self.classes],
                "overall": self.overall.to_dict(), "job": self.job.to_dict()}


@dataclass(frozen=True)
class CalibrationBin:
    """Predictions whose confidence falls in [lo, hi) (the last bin includes 1): how many, their mean
    confidence and the share of them that are correct (TP at (c, t)); None for an empty bin."""

    lo: float
    hi: float
    n: int
    confidence: float | None
    accuracy: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"lo": self.lo, "hi": self.hi, "n": self.n, "confidence": self.confidence, "accuracy": self.accuracy}


@dataclass(frozen=True)
class CalibrationRow:
    """ECE and MCE of one group of predictions (the run, or one class); None without predictions."""

    name: str
    n: int
    ece: float | None
    mce: float | None
    bins: tuple[CalibrationBin, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "n": self.n, "ece": self.ece, "mce": self.mce, "bins": [b.to_dict() for b in self.bins]}


@dataclass(frozen=True)
class Calibration:
    """Confidence calibration at (c, t) over a view's rows: ``overall`` (every prediction kept at c) and
    ``classes`` (one row per predicted class), each with its reliability-diagram bins."""

    overall: CalibrationRow
    classes: tuple[CalibrationRow, ...]
    confidence: float
    iou: float
    n_bins: int
    job: JobStatus

    def to_dict(self) -> dict[str, Any]:
        return {"confidence": self.confidence, "iou": self.iou, "n_bins": self.n_bins, "overall": self.overall.to_dict(),
                "classes": [c.to_dict() for c in self.classes], "job": self.job.to_dict()}
