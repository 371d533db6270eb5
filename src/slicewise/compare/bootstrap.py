"""Percentile bootstrap over data rows, vectorised with NumPy.

A metric of a set of rows that is a function of summed per-row counts (precision = TP / (TP + FP), recall,
F1, and the difference of two runs' values over the same rows) is resampled by drawing the rows with
replacement ``n_boot`` times. Rows with identical count vectors are interchangeable, so a resample of ``n``
rows is exactly a multinomial draw of ``n`` over the *distinct* count vectors with probabilities
proportional to how many rows carry each; the resampled sums are then one matrix product
(``weights @ values``). On real data a million rows have a few hundred distinct count vectors, so a
thousand resamples cost milliseconds. Each group (a class, a slice) is resampled on its own: the intervals
are marginal, one per group, not simultaneous.

The interval is the percentile interval: the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the
resampled statistic (resamples where it is undefined, e.g. no label in the resample, are left out). It is
seeded: the same data, ``n_boot`` and ``seed`` give the same interval.

>>> import numpy as np
>>> values = np.array([[1, 0], [0, 1]])          # per distinct row: (TP, FN)
>>> counts = np.array([80, 20])                  # 80 rows with a TP, 20 with a miss
>>> sums = resample_sums(values, counts, n_boot=2000, seed=0)
>>> sums.shape, bool((sums.sum(axis=1) == 100).all())
((2000, 2), True)
>>> lo, hi = percentile_interval(sums[:, 0] / 100, 0.95)
>>> bool(0.70 < lo < 0.80 < hi < 0.90)
True
"""

from __future__ import annotations

import numpy as np

#: resamples by default (percentile intervals at 95% need about a thousand to be stable to ~0.01)
N_BOOT = 1000
LEVEL = 0.95
SEED = 0
_CHUNK = 20_000_000  # weights matrix entries drawn at once (bounds memory for many distinct vectors)


def group_counts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of ``values`` (n, d) and how many times each occurs."""
    v = np.asarray(values)
    if not len(v):
        return v.reshape(0, v.shape[1] if v.ndim == 2 else 0), np.zeros(0, np.int64)
    uniq, counts = np.unique(v, axis=0, return_counts=True)
    return uniq, counts.astype(np.int64)


def resample_sums(values: np.ndarray, counts: np.ndarray, n_boot: int = N_BOOT, seed: int | np.random.Generator = SEED
                  ) -> np.ndarray:
    """``(n_boot, d)`` column sums of ``n_boot`` resamples (with replacement) of ``n = counts.sum()`` rows,
    where distinct row ``k`` (``values[k]``, shape (K, d)) occurs ``counts[k]`` times in the data."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    values = np.asarray(values, np.float64)
    counts = np.asarray(counts, np.int64)
    n = int(counts.sum())
    if n_boot < 1:
        raise ValueError("n_boot must be at least 1")
    if n == 0:
        return np.zeros((n_boot, values.shape[1]))
    p = counts / n
    step = max(1, _CHUNK // max(1, len(counts)))
    out = np.empty((n_boot, values.shape[1]))
    for s in range(0, n_boot, step):
        b = min(step, n_boot - s)
        w = rng.multinomial(n, p, size=b)  # (b, K): how often each distinct row is drawn
        out[s:s + b] = w @ values
    return out


def percentile_interval(samples: np.ndarray, level: float = LEVEL) -> tuple[float | None, float | None]:
    """The percentile interval of the finite values of ``samples`` (None, None when there are none)."""
    x = np.asarray(samples, np.float64)
    x = x[np.isfinite(x)]
    if not len(x):
        return None, None
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(x, [a, 1.0 - a])
    return float(lo), float(hi)
