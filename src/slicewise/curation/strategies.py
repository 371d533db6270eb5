"""Active-learning strategies as plain NumPy: uncertainty scores from class-probability vectors, their
per-row aggregation over a row's objects, k-center greedy diversity, and the one greedy picker that
combines them (with class balance). :mod:`slicewise.curation.active` feeds them the workspace's
predictions and embeddings; ``benchmarks/bench_active_learning.py`` calls the same functions.

Every score is "higher = pick first".

>>> import numpy as np
>>> p = np.array([[0.9, 0.05, 0.05], [0.4, 0.35, 0.25], [0.5, 0.5, 0.0]])
>>> least_confidence(p).round(3).tolist(), margin(p).round(3).tolist()
([0.1, 0.6, 0.5], [0.15, 0.95, 1.0])
>>> entropy(p).round(3).tolist()
[0.394, 1.081, 0.693]
>>> pick(2, scores=entropy(p)).tolist()
[1, 2]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

UNCERTAINTY = ("least_confidence", "margin", "entropy")
STRATEGIES = (*UNCERTAINTY, "diversity", "combined", "random")
#: how each uncertainty strategy turns its objects' scores into the row's score (a row of a classification run
#: has one object per radio feature, so for it every aggregate is the object's own score)
AGGREGATES = ("max", "mean", "sum", "count")
DEFAULT_AGGREGATE = {"least_confidence": "max", "margin": "mean", "entropy": "sum"}
#: an object counts as uncertain (aggregate ``count``) when its normalised uncertainty is at least this
UNCERTAIN_AT = 0.5


def _check(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"probabilities must be a 2-D array (rows x classes), not {p.ndim}-D")
    return p


def least_confidence(p: np.ndarray) -> np.ndarray:
    """``1 - max_k p_k`` per row."""
    p = _check(p)
    if p.shape[1] == 0:
        return np.zeros(len(p))
    return np.asarray(1.0 - p.max(axis=1))


def margin(p: np.ndarray) -> np.ndarray:
    """``1 - (p_(1) - p_(2))`` per row: 1 when the two most probable classes tie (one class: ``1 - p``)."""
    p = _check(p)
    if p.shape[1] == 0:
        return np.zeros(len(p))
    if p.shape[1] == 1:
        return np.asarray(1.0 - p[:, 0])
    top2 = -np.partition(-p, 1, axis=1)[:, :2]
    return np.asarray(1.0 - (top2[:, 0] - top2[:, 1]))


def entropy(p: np.ndarray) -> np.ndarray:
    """Shannon entropy in nats, ``-sum_k p_k ln p_k`` with ``0 ln 0 = 0``."""
    p = _check(p)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return np.asarray(-terms.sum(axis=1))


def uncertainty(p: np.ndarray, strategy: str) -> np.ndarray:
    """The score of ``strategy`` (one of :data:`UNCERTAINTY`) for each row of ``p``."""
    fn = {"least_confidence": least_confidence, "margin": margin, "entropy": entropy}.get(strategy)
    if fn is None:
        raise ValueError(f"{strategy!r} is not an uncertainty strategy ({', '.join(UNCERTAINTY)})")
    return fn(p)


def normalised(scores: np.ndarray, strategy: str, k: int | np.ndarray) -> np.ndarray:
    """An uncertainty score scaled to [0, 1] for ``k`` classes (least confidence tops out at ``1 - 1/k``,
    entropy at ``ln k``, margin at 1)."""
    k = np.maximum(np.asarray(k, dtype=np.float64), 2.0)
    top = {"least_confidence": 1.0 - 1.0 / k, "margin": np.ones_like(k), "entropy": np.log(k)}[strategy]
    return np.asarray(np.clip(scores / top, 0.0, 1.0))


def aggregate(row: np.ndarray, scores: np.ndarray, n_rows: int, how: str,
              uncertain: np.ndarray | None = None) -> np.ndarray:
    """Per-row aggregate of object scores: ``row`` (each object's row index, 0..n_rows-1), ``scores``.

    ``max``: the most uncertain object; ``mean``: the mean over the row's objects; ``sum``: their total;
    ``count``: how many are ``uncertain`` (a boolean per object), ties broken by the mean score (which
    is below 1, so a row with more uncertain objects always comes first). A row without objects gets 0.
    """
    row = np.asarray(row, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    n = np.bincount(row, minlength=n_rows).astype(np.float64)
    total = np.bincount(row, weights=scores, minlength=n_rows)
    if how == "sum":
        return total
    mean = np.divide(total, n, out=np.zeros(n_rows), where=n > 0)
    if how == "mean":
        return mean
    if how == "max":
        out = np.full(n_rows, -np.inf)
        np.maximum.at(out, row, scores)
        return np.where(n > 0, out, 0.0)
    if how == "count":
        if uncertain is None:
            raise ValueError("the count aggregate needs each object's uncertain flag")
        cnt = np.bincount(row, weights=np.asarray(uncertain, dtype=np.float64), minlength=n_rows)
        return cnt + np.minimum(mean, 1.0) * 0.999
    raise ValueError(f"unknown aggregate {how!r} (one of {', '.join(AGGREGATES)})")


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (zero rows stay zero): Euclidean distance between them is then a monotone
    function of cosine distance."""
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def min_distances(x: np.ndarray, centres: np.ndarray, block: int = 1 << 22) -> np.ndarray:
    """For each row of ``x``, the Euclidean distance to the nearest row of ``centres`` (inf without any).
    Works in blocks of at most ``block`` distances (32 MB), so memory stays flat for big pools."""
    x = np.asarray(x, dtype=np.float64)
    centres = np.asarray(centres, dtype=np.float64)
    out = np.full(len(x), np.inf)
    if len(centres) == 0 or len(x) == 0:
        return out
    cc = (centres * centres).sum(axis=1)
    nc = min(len(centres), 2048)
    nx = max(1, block // nc)
    for s in range(0, len(x), nx):
        xs = x[s:s + nx]
        xx = (xs * xs).sum(axis=1)
        best = np.full(len(xs), np.inf)
        for t in range(0, len(centres), nc):
            d2 = xs @ centres[t:t + nc].T
            d2 *= -2.0
            d2 += cc[None, t:t + nc]
            best = np.minimum(best, d2.min(axis=1))
        out[s:s + nx] = np.sqrt(np.maximum(best + xx, 0.0))
    return out


def k_center_greedy(x: np.ndarray, n: int, *, reference: np.ndarray | None = None,
                    first: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """k-center greedy (Sener & Savarese's core set): repeatedly take the row of ``x`` farthest from the
    centres so far (the ``reference`` rows, e.g. the labelled ones, and the rows taken). Returns the
    indices taken and each one's distance to the nearest centre when it was taken. Without a reference
    the first pick is row ``first``. The covering radius is at most twice the optimal one."""
    idx, _, dist = pick_with_gains(n, vectors=x, reference=reference, first=first)
    return idx, dist


def pick(n: int, *, scores: np.ndarray | None = None, vectors: np.ndarray | None = None,
         reference: np.ndarray | None = None, classes: Sequence[int] | np.ndarray | None = None,
         class_balance: bool = False, first: int | None = 0) -> np.ndarray:
    """Pick up to ``n`` rows. ``scores`` only: the ``n`` highest (ties: lowest index first). ``vectors``
    only: k-center greedy. Both: greedy by ``score x distance to the nearest centre`` (uncertainty x
    diversity: an uncertain row far from everything labelled or taken). With ``class_balance``, each step
    takes from the classes (``classes``: an int per row, -1 = none) with the fewest picks so far that
    still have rows, so the picks spread evenly over the predicted classes.

    Returns the indices; :func:`pick_with_gains` also returns each pick's gain (score, distance, or
    their product) and its distance to the nearest centre (inf for a first pick without reference, nan
    without vectors), both at the time it was taken."""
    return pick_with_gains(n, scores=scores, vectors=vectors, reference=reference, classes=classes,
                           class_balance=class_balance, first=first)[0]


def pick_with_gains(n: int, *, scores: np.ndarray | None = None, vectors: np.ndarray | None = None,
                    reference: np.ndarray | None = None, classes: Sequence[int] | np.ndarray | None = None,
                    class_balance: bool = False,
                    first: int | None = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`pick`, with each pick's gain and distance."""
    if scores is None and vectors is None:
        raise ValueError("give scores, vectors, or both")
    size = len(scores) if scores is not None else len(vectors)  # type: ignore[arg-type]
    n = max(0, min(int(n), size))
    cls = np.asarray(classes, dtype=np.int64) if classes is not None and class_balance else None
    if cls is not None and len(cls) != size:
        raise ValueError(f"classes has {len(cls)} entries for {size} rows")
    if vectors is None:
        idx, top = _pick_static(np.asarray(scores, dtype=np.float64), n, cls)
        return idx, top, np.full(len(idx), np.nan)
    x = np.asarray(vectors, dtype=np.float64)
    s = None if scores is None else np.asarray(scores, dtype=np.float64)
    if s is not None and len(s) != len(x):
        raise ValueError(f"{len(s)} scores for {len(x)} vectors")
    d = min_distances(x, reference) if reference is not None and len(reference) else np.full(len(x), np.inf)
    xx = (x * x).sum(axis=1)
    taken = np.zeros(len(x), bool)
    picks: list[int] = []
    gains: list[float] = []
    dists: list[float] = []
    counts = np.zeros(int(cls.max()) + 2 if cls is not None and len(cls) else 1, np.int64)
    left = np.bincount(cls + 1, minlength=len(counts)) if cls is not None else None
    for _ in range(n):
        if np.isinf(d).all():  # no centre yet: the most uncertain row, or row ``first``
            gain = s.copy() if s is not None else np.zeros(len(x))
            if s is None and first is not None:
                gain[min(max(int(first), 0), len(x) - 1)] = 1.0
        else:
            gain = d * s if s is not None else d.copy()
        gain[taken] = -np.inf
        if cls is not None and left is not None:
            avail = left > 0
            low = counts[avail].min()
            gain[~((counts[cls + 1] == low) & avail[cls + 1])] = -np.inf
        i = int(np.argmax(gain))
        if not np.isfinite(gain[i]) and gain[i] < 0:
            break
        picks.append(i)
        gains.append(float(gain[i]))
        dists.append(float(d[i]))
        taken[i] = True
        if cls is not None and left is not None:
            counts[cls[i] + 1] += 1
            left[cls[i] + 1] -= 1
        d = np.minimum(d, np.sqrt(np.maximum(xx - 2.0 * (x @ x[i]) + xx[i], 0.0)))
    return np.asarray(picks, dtype=np.int64), np.asarray(gains), np.asarray(dists)


def _pick_static(s: np.ndarray, n: int, cls: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-s, kind="stable")
    if cls is None:
        top = order[:n]
        return top.astype(np.int64), s[top]
    # round robin over the classes: round r takes each class's r-th best row, best rows of the round first
    c = cls[order]
    rank = np.zeros(len(order), np.int64)
    seen: dict[int, int] = {}
    for j, k in enumerate(c.tolist()):
        rank[j] = seen.get(k, 0)
        seen[k] = rank[j] + 1
    seq = np.lexsort((np.arange(len(order)), rank))  # by round, then by score order
    top = order[seq[:n]]
    return top.astype(np.int64), s[top]
