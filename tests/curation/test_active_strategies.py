"""The active-learning scores and pickers against hand-worked tables and plain NumPy / SciPy references."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import entropy as scipy_entropy

from slicewise.curation import strategies as st

# hand-worked: rows of class probabilities and their least confidence, margin and entropy (nats)
P = np.array([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2], [1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3], [0.1, 0.3, 0.6]])
LC = [0.3, 0.6, 0.0, 2 / 3, 0.4]
MARGIN = [1 - 0.5, 1 - 0.0, 1 - 1.0, 1 - 0.0, 1 - 0.3]
ENTROPY = [0.7 * -math.log(0.7) + 0.2 * -math.log(0.2) + 0.1 * -math.log(0.1),
           2 * 0.4 * -math.log(0.4) + 0.2 * -math.log(0.2), 0.0, math.log(3),
           0.1 * -math.log(0.1) + 0.3 * -math.log(0.3) + 0.6 * -math.log(0.6)]


def test_hand_worked_table():
    assert st.least_confidence(P) == pytest.approx(LC)
    assert st.margin(P) == pytest.approx(MARGIN)
    assert st.entropy(P) == pytest.approx(ENTROPY)
    assert ENTROPY[0] == pytest.approx(0.80182, abs=1e-5)  # 0.24967 + 0.32189 + 0.23026
    # the rankings each strategy gives (most uncertain first; ties by row order)
    assert st.pick(5, scores=st.least_confidence(P)).tolist() == [3, 1, 4, 0, 2]
    assert st.pick(5, scores=st.margin(P)).tolist() == [1, 3, 4, 0, 2]
    assert st.pick(5, scores=st.entropy(P)).tolist() == [3, 1, 4, 0, 2]


def test_against_numpy_and_scipy_on_random_matrices():
    rng = np.random.default_rng(7)
    for k in (2, 3, 10):
        p = rng.dirichlet(np.full(k, 0.5), size=200)
        srt = np.sort(p, axis=1)[:, ::-1]
        assert st.least_confidence(p) == pytest.approx(1 - srt[:, 0])
        assert st.margin(p) == pytest.approx(1 - (srt[:, 0] - srt[:, 1]))
        assert st.entropy(p) == pytest.approx(scipy_entropy(p, axis=1))
        for name, top in (("least_confidence", 1 - 1 / k), ("margin", 1.0), ("entropy", math.log(k))):
            assert st.normalised(st.uncertainty(p, name), name, k) == pytest.approx(st.uncertainty(p, name) / top)


def test_binary_vector_of_a_box():
    # a box with confidence c is the vector [c, 1 - c]: 0.5 is the most uncertain, 0.05 and 0.95 are sure
    c = np.array([0.05, 0.5, 0.95, 0.7])
    p = np.stack([c, 1 - c], axis=1)
    assert st.least_confidence(p) == pytest.approx([0.05, 0.5, 0.05, 0.3])
    assert st.margin(p) == pytest.approx([0.1, 1.0, 0.1, 0.6])


def test_aggregates_hand_worked():
    # objects of three rows (row 1 has none): row 0 has scores 0.2, 0.6; row 2 has 0.1, 0.1, 0.9
    row = np.array([0, 0, 2, 2, 2])
    s = np.array([0.2, 0.6, 0.1, 0.1, 0.9])
    assert st.aggregate(row, s, 3, "max") == pytest.approx([0.6, 0.0, 0.9])
    assert st.aggregate(row, s, 3, "mean") == pytest.approx([0.4, 0.0, 1.1 / 3])
    assert st.aggregate(row, s, 3, "sum") == pytest.approx([0.8, 0.0, 1.1])
    cnt = st.aggregate(row, s, 3, "count", uncertain=s >= 0.5)
    assert np.floor(cnt).tolist() == [1.0, 0.0, 1.0]
    assert cnt[0] > cnt[2] > cnt[1]  # same count: the higher mean first


def _kcenter_reference(x, n, reference, first):
    """The textbook k-center greedy with a full distance matrix."""
    dist = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    if reference is not None and len(reference):
        d = np.sqrt(((x[:, None, :] - reference[None, :, :]) ** 2).sum(-1)).min(axis=1)
        centres = []
    else:
        centres = [first]
        d = dist[first].copy()
    while len(centres) < n:
        d_masked = d.copy()
        d_masked[centres] = -1
        i = int(np.argmax(d_masked))
        centres.append(i)
        d = np.minimum(d, dist[i])
    return centres


def test_k_center_greedy_matches_the_textbook_loop():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 3))
    ref = rng.normal(size=(5, 3))
    assert st.k_center_greedy(x, 8, first=4)[0].tolist() == _kcenter_reference(x, 8, None, 4)
    assert st.k_center_greedy(x, 8, reference=ref)[0].tolist() == _kcenter_reference(x, 8, ref, 0)
    idx, d = st.k_center_greedy(x, 6, reference=ref)
    # each pick's distance is its distance to the nearest centre at the time, and they never grow
    centres = list(ref)
    for i, di in zip(idx, d, strict=True):
        assert di == pytest.approx(min(np.linalg.norm(x[i] - c) for c in centres))
        centres.append(x[i])
    assert np.all(np.diff(d) <= 1e-12)


def test_k_center_greedy_within_twice_the_brute_force_optimum():
    rng = np.random.default_rng(11)
    for trial in range(5):
        x = rng.normal(size=(10, 2))
        dist = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
        for k in (2, 3):
            best = min(dist[:, list(s)].min(axis=1).max() for s in itertools.combinations(range(10), k))
            got = st.k_center_greedy(x, k, first=trial)[0]
            radius = dist[:, got].min(axis=1).max()
            assert radius <= 2 * best + 1e-12


def test_hand_worked_k_center_on_a_line():
    # points on a line at 0, 1, 2, 10, 11; labelled point at 0: farthest is 11, then between: 2 or 10?
    x = np.array([[0.0], [1.0], [2.0], [10.0], [11.0]])
    idx, d = st.k_center_greedy(x, 3, reference=np.array([[0.0]]))
    assert idx.tolist() == [4, 2, 1]  # 11 (d 11), then 2 (d 2 vs 10's d 1), then 1 (d 1; ties: lowest index)
    assert d.tolist() == [11.0, 2.0, 1.0]


def test_combined_uncertainty_times_distance_hand_worked():
    x = np.array([[0.0], [1.0], [5.0], [6.0]])
    u = np.array([0.9, 0.8, 0.3, 0.5])
    ref = np.array([[0.0]])
    # distances to the labelled 0: 0, 1, 5, 6 -> gains 0, 0.8, 1.5, 3.0 -> row 3; then d = 0, 1, 1, 0 ->
    # gains 0, 0.8, 0.3, - -> row 1; then d = 0, 0, 1, 0 -> row 2 (0.3)
    idx, gains, dist = st.pick_with_gains(3, scores=u, vectors=x, reference=ref)
    assert idx.tolist() == [3, 1, 2]
    assert gains == pytest.approx([3.0, 0.8, 0.3])
    assert dist == pytest.approx([6.0, 1.0, 1.0])
    # without labelled rows the first pick is the most uncertain row
    assert st.pick(1, scores=u, vectors=x).tolist() == [0]


def test_class_balance_spreads_picks():
    # class 0 holds the five most uncertain rows; balanced picks alternate classes (then class 1 runs out)
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    cls = np.array([0, 0, 0, 0, 0, 1, 1, 2])
    assert st.pick(4, scores=s).tolist() == [0, 1, 2, 3]
    assert st.pick(4, scores=s, classes=cls, class_balance=True).tolist() == [0, 5, 7, 1]
    assert st.pick(7, scores=s, classes=cls, class_balance=True).tolist() == [0, 5, 7, 1, 6, 2, 3]
    # the greedy picker (with vectors) keeps the same balance rule
    x = np.arange(8, dtype=float)[:, None]
    got = st.pick(6, scores=s, vectors=x, classes=cls, class_balance=True)
    counts = np.bincount(cls[got], minlength=3)
    assert counts.tolist() == [3, 2, 1]
    assert len(set(got.tolist())) == 6


def test_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        st.entropy(np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="scores, vectors"):
        st.pick(3)
    with pytest.raises(ValueError, match="aggregate"):
        st.aggregate(np.array([0]), np.array([1.0]), 1, "median")
    assert st.pick(10, scores=np.array([0.1, 0.2])).tolist() == [1, 0]  # n beyond the pool: all of it
