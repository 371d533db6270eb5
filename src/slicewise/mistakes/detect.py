"""The label-mistake detectors as pure functions over arrays (the workspace side is in ``results``).

Each detector gives, per item (a data row), a **score** in [0, 1] (higher: more likely a label mistake)
and a **flag** (the detector's own decision):

- ``cleanlab`` (confident learning). Classification: ``1 - cleanlab.rank.get_label_quality_scores(labels,
  pred_probs)`` (self-confidence), flagged by ``cleanlab.filter.find_label_issues(labels, pred_probs)``
  (prune by noise rate). Boxes: ``1 - cleanlab.object_detection.rank.get_label_quality_scores(labels,
  predictions)`` (ObjectLab: wrong class, badly placed box, overlooked object), flagged by
  ``cleanlab.object_detection.filter.find_label_issues``. The probabilities / predictions must be
  out-of-sample (cross-validated, or of rows the model did not train on) for the flags to mean much.
- ``knn`` (kNN label disagreement in an embedding space): the share of the item's k nearest labelled
  neighbours whose class differs from its own, flagged above 0.5 (most neighbours disagree).
- ``combined``. Classification: confident learning on the average of the model's probabilities and the
  kNN neighbourhood's class distribution (``(counts + 1/K) / (k + 1)``): two independent opinions of the
  true class, so a flip both see stands out more and a model slip the neighbours contradict less; a row
  both ``cleanlab`` and ``knn`` flag is flagged too (score: 1 - the label quality under the average).
  Boxes: cleanlab's flag, or a prediction with confidence >= 0.5 that contradicts the labels (its
  best-overlapping label at IoU >= 0.5 has another class, or no label overlaps it that much: a wrong
  class, a moved box, a missed object); score the higher of cleanlab's score and that confidence. The
  row-level kNN does not take part for boxes: a row's kNN class (its most frequent label) says nothing
  about which of its boxes is wrong, and on the demo's scenes it flagged 91% of the rows.
  Without an embedding space the classification ``combined`` is ``cleanlab``.

>>> import numpy as np
>>> probs = np.array([[.9, .1], [.8, .2], [.1, .9], [.2, .8], [.95, .05], [.1, .9]])
>>> s, f = classification_scores(np.array([0, 0, 1, 1, 1, 1]), probs)
>>> s.round(2).tolist(), f.tolist()
([0.1, 0.2, 0.1, 0.2, 0.95, 0.1], [False, False, False, False, True, False])
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence

import numpy as np

K = 10  # neighbours of the kNN detector
KNN_FLAG = 0.5  # the kNN detector flags a row when more than this share of its neighbours disagree
DISAGREE_CONFIDENCE, DISAGREE_IOU = 0.5, 0.5  # a confident prediction contradicting the labels (boxes' combination)
_PATCH = threading.Lock()


def _check_probs(labels: np.ndarray, pred_probs: np.ndarray) -> None:
    if pred_probs.ndim != 2 or len(pred_probs) != len(labels):
        raise ValueError(f"pred_probs must be (n, classes) with n = {len(labels)}, got {pred_probs.shape}")


def classification_scores(labels: np.ndarray, pred_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(score = 1 - cleanlab's self-confidence label quality, cleanlab's find_label_issues mask).

    Every class must have at least one label (cleanlab's requirement): callers drop or merge the rest."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    labels = np.asarray(labels, np.int64)
    pred_probs = np.asarray(pred_probs, np.float64)
    _check_probs(labels, pred_probs)
    if len(labels) == 0:
        return np.zeros(0), np.zeros(0, bool)
    quality = get_label_quality_scores(labels, pred_probs)
    flags = find_label_issues(labels, pred_probs, n_jobs=1)
    return np.clip(1.0 - quality, 0.0, 1.0), np.asarray(flags, bool)


@contextlib.contextmanager
def _threads_not_processes() -> Iterator[None]:
    """cleanlab's object-detection AP step starts ``multiprocessing.Pool(1)`` (a fork of this process,
    threads and DuckDB included); one worker thread does the same work without forking a server."""
    from multiprocessing.pool import ThreadPool

    import cleanlab.object_detection.filter as odf

    with _PATCH:
        old = odf.Pool  # type: ignore[attr-defined]
        odf.Pool = ThreadPool  # type: ignore[attr-defined]
        try:
            yield
        finally:
            odf.Pool = old  # type: ignore[attr-defined]


def detection_scores(labels: Sequence[dict[str, np.ndarray]], predictions: Sequence[list[np.ndarray]]
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(score = 1 - ObjectLab's image label quality, ObjectLab's find_label_issues mask), per image.

    ``labels[i]``: ``{"bboxes": (L, 4) x1 y1 x2 y2, "labels": (L,) class index}``; ``predictions[i]``:
    one ``(M, 5)`` array (x1 y1 x2 y2 confidence) per class (cleanlab's format)."""
    from cleanlab.object_detection.filter import find_label_issues
    from cleanlab.object_detection.rank import get_label_quality_scores

    if len(labels) != len(predictions):
        raise ValueError(f"{len(labels)} label sets but {len(predictions)} prediction sets")
    if len(labels) == 0:
        return np.zeros(0), np.zeros(0, bool)
    with _threads_not_processes():
        quality = get_label_quality_scores(list(labels), list(predictions), verbose=False)
        flags = find_label_issues(list(labels), list(predictions))
    return np.clip(1.0 - np.asarray(quality, np.float64), 0.0, 1.0), np.asarray(flags, bool)


def knn_counts(vecs: np.ndarray, labels: np.ndarray, n_classes: int, k: int = K,
               metric: str = "cosine") -> np.ndarray:
    """Per item, how many of its k nearest other items carry each class, shape (n, n_classes)."""
    from slicewise.embeddings.islands import neighbours

    labels = np.asarray(labels, np.int64)
    out = np.zeros((len(labels), n_classes), np.float64)
    if len(labels) < 2:
        return out
    nb = neighbours(vecs, k, metric)
    np.add.at(out, (np.repeat(np.arange(len(labels)), nb.shape[1]), labels[nb].ravel()), 1.0)
    return out


def knn_scores(counts: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the share of neighbours with another class, that share > :data:`KNN_FLAG`)."""
    labels = np.asarray(labels, np.int64)
    total = counts.sum(axis=1)
    same = counts[np.arange(len(labels)), labels] if len(labels) else np.zeros(0)
    score = np.where(total > 0, 1.0 - same / np.maximum(total, 1), 0.0)
    return score, score > KNN_FLAG


def knn_probs(counts: np.ndarray) -> np.ndarray:
    """The neighbourhood's class distribution, smoothed so that no class has probability 0."""
    n_classes = counts.shape[1]
    return (counts + 1.0 / n_classes) / (counts.sum(axis=1, keepdims=True) + 1.0)


def combined_classification(labels: np.ndarray, pred_probs: np.ndarray, counts: np.ndarray
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Confident learning on the mean of the model's probabilities and the kNN class distribution
    (score: 1 - its label quality), flagged by it or by both the ``cleanlab`` and the ``knn`` detectors."""
    score, flag = classification_scores(labels, (np.asarray(pred_probs, np.float64) + knn_probs(counts)) / 2.0)
    _, cl_flag = classification_scores(labels, pred_probs)
    _, knn_flag = knn_scores(counts, labels)
    return score, flag | (cl_flag & knn_flag)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every pair of x1 y1 x2 y2 boxes, shape (len(a), len(b))."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area = lambda x: np.clip(x[:, 2] - x[:, 0], 0, None) * np.clip(x[:, 3] - x[:, 1], 0, None)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def confident_disagreement(labels: Sequence[dict[str, np.ndarray]], predictions: Sequence[list[np.ndarray]],
                           confidence: float = DISAGREE_CONFIDENCE, iou: float = DISAGREE_IOU) -> np.ndarray:
    """Per image, the highest confidence (>= ``confidence``) of a prediction that contradicts the labels:
    its best-overlapping label (IoU >= ``iou``) has another class, or no label overlaps it that much (a
    box the annotator missed, or moved). 0 when none does."""
    out = np.zeros(len(labels))
    for i, (lab, per) in enumerate(zip(labels, predictions, strict=True)):
        boxes = np.concatenate([p[:, :4] for p in per]) if per else np.zeros((0, 4))
        conf = np.concatenate([p[:, 4] for p in per]) if per else np.zeros(0)
        cls = np.concatenate([np.full(len(p), k) for k, p in enumerate(per)]) if per else np.zeros(0, int)
        keep = conf >= confidence
        if not keep.any():
            continue
        boxes, conf, cls = boxes[keep], conf[keep], cls[keep]
        lb = np.asarray(lab["bboxes"], np.float64).reshape(-1, 4)
        if len(lb) == 0:
            out[i] = conf.max()
            continue
        ious = _iou(boxes, lb)
        best = ious.argmax(axis=1)
        top = ious[np.arange(len(boxes)), best]
        wrong = (top < iou) | (np.asarray(lab["labels"])[best] != cls)
        out[i] = conf[wrong].max() if wrong.any() else 0.0
    return out


def combined_boxes(cl_score: np.ndarray, cl_flag: np.ndarray, disagreement: np.ndarray,
                   confidence: float = DISAGREE_CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """The boxes' combination per image: cleanlab's (ObjectLab's) flag, or a confident prediction that
    contradicts the labels (:func:`confident_disagreement`); score the higher of cleanlab's score and
    that prediction's confidence."""
    return np.maximum(cl_score, disagreement), cl_flag | (disagreement >= confidence)
