"""Exact search's int8 pre-scan (slicewise.embeddings.scan): the result is the brute force's top k, in
float64: the same rows in the same order, up to rows whose float64 scores differ by less than float32's
precision; rows with equal vectors get equal scores and come by data row id."""

from __future__ import annotations

import numpy as np
import pytest

from slicewise.embeddings import index as index_mod
from slicewise.embeddings.index import SpaceIndex, normalise
from slicewise.embeddings.scan import candidates, quantize, row_scores


def check(idx: SpaceIndex, q: np.ndarray, k: int, rows: np.ndarray) -> None:
    got_ids, got_s = idx.search(q, k, None if len(rows) == idx.n else rows, exact=True)
    s64 = idx.vecs[rows].astype(np.float64) @ q.astype(np.float64)
    ids = idx.ids[rows]
    order = np.lexsort((ids, -s64))[:k]
    want_ids, want_s = ids[order], s64[order]
    np.testing.assert_allclose(got_s, want_s, atol=1e-5)
    by_id = dict(zip(ids.tolist(), s64.tolist(), strict=True))
    for g, w, ws in zip(got_ids.tolist(), want_ids.tolist(), want_s.tolist(), strict=True):
        assert g == w or abs(by_id[g] - ws) < 1e-5


@pytest.mark.parametrize("kind", ["random", "clustered", "ties", "ip"])
def test_quantized_exact_search_is_the_brute_force_top_k(kind, monkeypatch):
    monkeypatch.setattr(index_mod, "QUANT_MIN_ROWS", 100)
    rng = np.random.default_rng(7)
    n, dim = 6000, 48
    if kind == "clustered":
        vecs = rng.normal(size=(30, dim))[rng.integers(0, 30, n)] + 0.2 * rng.normal(size=(n, dim))
    else:
        vecs = rng.normal(size=(n, dim))
    vecs[:, 3] = 0.0  # a dimension with no range (step 0)
    if kind == "ties":  # blocks of equal rows
        vecs[1000:1400] = vecs[5]
        vecs[3000:3300] = vecs[7]
    vecs = vecs.astype(np.float32) if kind == "ip" else normalise(vecs)
    ids = np.sort(rng.choice(10 * n, n, replace=False)).astype(np.int64)
    idx = SpaceIndex(ids, np.ascontiguousarray(vecs), "ip" if kind == "ip" else "cosine")
    every = np.arange(n)
    for t in range(10):
        q = idx.query_vector(ids[rng.choice(n, 1 + t % 4, replace=False)])
        for k in (1, 10, 50, 500):
            check(idx, q, k, every)
        check(idx, q, 20, np.sort(rng.choice(n, 2000, replace=False)))
    assert idx.codes is not None  # the int8 path answered
    if kind == "ties":  # equal vectors: equal scores, by id
        got, s = idx.search(idx.vecs[5], 450, exact=True)
        tied = np.sort(ids[np.r_[5, 1000:1400]])
        assert got[:len(tied)].tolist() == tied.tolist() and len(set(s[:len(tied)].tolist())) == 1


def test_bounds_hold_and_candidates_are_few():
    rng = np.random.default_rng(3)
    vecs = normalise(rng.normal(size=(20_000, 64)))
    codes, step = quantize(vecs)
    assert np.all(np.abs(vecs - codes * step) <= step / 2 + 1e-7)
    q = normalise(vecs[:5].mean(axis=0, keepdims=True))[0]
    keep = candidates(codes, step, q, 50, None)
    assert keep is not None and 50 <= len(keep) < 2000  # far fewer rows than the scan read
    assert set(np.argsort(-(vecs.astype(np.float64) @ q))[:50].tolist()) <= set(keep.tolist())
    pos = np.array([7, 3, 19_999, 3])
    np.testing.assert_array_equal(row_scores(vecs, q, pos), row_scores(vecs, q, np.empty(0, np.int64))[pos])
