"""The bootstrap: multinomial resampling over distinct rows equals resampling rows; intervals cover the true
delta at about the nominal rate (small simulation; the full one is benchmarks/bench_compare.py --coverage)."""

from __future__ import annotations

import numpy as np

from slicewise.compare import bootstrap
from slicewise.compare.simulate import coverage


def test_grouped_resampling_matches_row_resampling():
    rng = np.random.default_rng(1)
    rows = rng.integers(0, 3, (500, 2)).astype(float)
    vals, counts = bootstrap.group_counts(rows)
    assert counts.sum() == 500 and len(vals) <= 9
    grouped = bootstrap.resample_sums(vals, counts, 4000, seed=2)
    direct = np.stack([rows[rng.integers(0, 500, 500)].sum(axis=0) for _ in range(4000)])
    # same distribution of the resampled sums: means and spreads agree within Monte-Carlo error
    assert np.allclose(grouped.mean(axis=0), rows.sum(axis=0), rtol=0.01)
    assert np.allclose(grouped.mean(axis=0), direct.mean(axis=0), rtol=0.01)
    assert np.allclose(grouped.std(axis=0), direct.std(axis=0), rtol=0.08)
    # seeded
    assert np.array_equal(grouped, bootstrap.resample_sums(vals, counts, 4000, seed=2))
    assert bootstrap.percentile_interval(np.array([np.nan, np.nan])) == (None, None)


def test_coverage_near_nominal():
    got = coverage(reps=120, n=300, n_boot=300, seed=5)
    assert 0.87 <= got["coverage_recall"] <= 1.0, got
    assert 0.87 <= got["coverage_precision"] <= 1.0, got
