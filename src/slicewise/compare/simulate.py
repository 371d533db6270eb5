"""A coverage simulation of the comparison's bootstrap intervals: how often the interval of a recall and a
precision delta holds the true delta, on paired runs drawn from a model whose true values are known.

Each data row has ``1 + Poisson(2)`` labels; a label is found by the baseline with probability ``p_a`` and by
the run with probability ``p_b`` (correlated: a label the baseline finds is found by the run with probability
``stay``); each run adds ``Poisson(fp)`` false positives a row. Since a label's chance does not depend on its
row, the true recall is ``p`` and the true precision ``3p / (3p + fp)`` (3 labels a row on average).
``benchmarks/bench_compare.py --coverage`` runs it at full size; the tests run it small.
"""

from __future__ import annotations

import numpy as np

from slicewise.compare import bootstrap
from slicewise.compare.diff import group_delta


def draw(rng: np.random.Generator, n: int, p_a: float, p_b: float, stay: float, fp: float) -> np.ndarray:
    """(n, 6) per-row counts tp, fp, fn of the baseline then the run."""
    labels = 1 + rng.poisson(2.0, n)
    idx = np.repeat(np.arange(n), labels)
    found_a = rng.uniform(size=len(idx)) < p_a
    back = (p_b - p_a * stay) / (1 - p_a)  # P(run finds | baseline missed) giving P(run finds) = p_b
    found_b = np.where(found_a, rng.uniform(size=len(idx)) < stay, rng.uniform(size=len(idx)) < back)
    tp_a = np.bincount(idx, found_a, n)
    tp_b = np.bincount(idx, found_b, n)
    return np.column_stack([tp_a, rng.poisson(fp, n), labels - tp_a, tp_b, rng.poisson(fp, n), labels - tp_b])


def coverage(reps: int = 1000, n: int = 2000, n_boot: int = bootstrap.N_BOOT, level: float = bootstrap.LEVEL,
             p_a: float = 0.70, p_b: float = 0.75, stay: float = 0.9, fp: float = 0.8, seed: int = 0
             ) -> dict[str, float]:
    """Share of ``reps`` simulated comparisons whose interval holds the true delta, for recall and precision,
    with the mean interval width."""
    rng = np.random.default_rng(seed)
    true = {"recall": p_b - p_a, "precision": 3 * p_b / (3 * p_b + fp) - 3 * p_a / (3 * p_a + fp)}
    hits = {m: 0 for m in true}
    width = {m: 0.0 for m in true}
    for r in range(reps):
        vals, counts = bootstrap.group_counts(draw(rng, n, p_a, p_b, stay, fp))
        g = group_delta("overall", "sim", "", None, vals, counts, n, n_boot, seed + r, level, {})
        for m, tv in true.items():
            d = g.metrics[m]
            assert d.lo is not None and d.hi is not None
            hits[m] += int(d.lo <= tv <= d.hi)
            width[m] += d.hi - d.lo
    return {**{f"coverage_{m}": hits[m] / reps for m in true}, **{f"width_{m}": width[m] / reps for m in true},
            "reps": reps, "n": n, "n_boot": n_boot, "level": level}
