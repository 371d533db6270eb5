"""Similarity search against brute-force NumPy top-k; the view's similarity sort and score; saved
slices that keep their anchors; the IVF index's recall; bad requests."""

from __future__ import annotations

import numpy as np
import pytest

from slicewise import embeddings as emb
from slicewise import slices
from slicewise.embeddings import index as index_mod
from slicewise.errors import LimitError, NotFoundError, QueryError
from slicewise.query import Similar
from slicewise.view import View


def brute(vecs: np.ndarray, ids: np.ndarray, anchors_pos: list[int], k: int) -> list[tuple[int, float]]:
    """Reference: cosine to the mean of the unit anchors, sorted by (-score, id), in float64."""
    v = vecs.astype(np.float64)
    u = v / np.linalg.norm(v, axis=1, keepdims=True)
    q = u[anchors_pos].mean(axis=0)
    q /= np.linalg.norm(q)
    s = u @ q
    order = sorted(range(len(ids)), key=lambda i: (-s[i], ids[i]))[:k]
    return [(int(ids[i]), float(s[i])) for i in order]


@pytest.fixture
def world(ws):
    rng = np.random.default_rng(7)
    n = 600
    ws.add_data_rows("d", [{"global_key": f"k{i}", "row_data": "x.jpg", "split": "valid" if i % 3 == 0 else "train",
                            "metadata": {"camera": f"cam-{i % 5}"}} for i in range(n)])
    vecs = rng.normal(size=(n, 16)).astype(np.float32)
    vecs[10] = vecs[20] = vecs[30]  # exact ties: ordered by data row id
    emb.add_vectors(ws, "s", [f"k{i}" for i in range(n)], vecs)
    by_key = {r.global_key: r.id for r in ws.data_rows()}
    ids = np.asarray([by_key[f"k{i}"] for i in range(n)])
    return ws, ids, vecs


def _close(got, want, ref=None):
    """Same rows in the same order, up to rows whose float64 scores differ by less than float32's
    precision (slicewise scores in float32: such near-ties may come in either order; exact ties come
    by data row id, see test_exact_equals_brute_force)."""
    assert len(got) == len(want)
    np.testing.assert_allclose([s for _, s in got], [s for _, s in want], atol=1e-5)
    score = dict(want) | dict(ref or [])
    for (gi, _), (wi, ws_) in zip(got, want, strict=True):
        assert gi == wi or abs(score.get(gi, -9) - ws_) < 1e-5


def test_exact_equals_brute_force(world):
    ws, ids, vecs = world
    for anchors in ([5], [1, 2, 3], [30]):
        got = emb.similar(ws, "s", [int(ids[a]) for a in anchors], k=50)
        _close(got, brute(vecs, ids, anchors, 50))
    # the tie: rows 10, 20, 30 have the same vector, so the same score; smaller id first
    got = emb.similar(ws, "s", [int(ids[30])], k=3)
    assert [i for i, _ in got] == sorted(int(ids[j]) for j in (10, 20, 30))


def test_filtered_equals_brute_force_on_subset(world):
    ws, ids, vecs = world
    sub = [i for i in range(len(ids)) if i % 3 == 0 and i % 5 == 2]  # split = valid and camera cam-2
    got = emb.similar(ws, "s", [int(ids[4])], k=20, view=View(filter='split = valid and metadata.camera = "cam-2"'))
    u = vecs.astype(np.float64) / np.linalg.norm(vecs, axis=1, keepdims=True)
    s = u[sub] @ (u[4] / np.linalg.norm(u[4]))
    ref = sorted(((int(ids[j]), float(x)) for j, x in zip(sub, s, strict=True)), key=lambda t: (-t[1], t[0]))[:20]
    _close(got, ref)


def test_view_sort_score_and_k(world):
    ws, ids, vecs = world
    anchors = [int(ids[8]), int(ids[9])]
    ref = brute(vecs, ids, [8, 9], len(ids))
    page = View(similar=Similar(space="s", anchors=anchors), sort="-similarity").resolve(ws).page(limit=25)
    assert page.total == len(ids)  # without k: every row with a vector, ranked
    _close([(r.data_row_id, r.similarity) for r in page.rows], ref[:25], ref)
    # k: the k nearest among the rows matching the filter (not the k nearest, then filtered)
    v = View(filter="split = valid", similar={"space": "s", "anchors": anchors, "k": 7}, sort="-similarity").resolve(ws)
    valid = [i for i in range(len(ids)) if i % 3 == 0]
    ref_valid = [t for t in ref if t[0] in {int(ids[i]) for i in valid}][:7]
    assert v.count() == 7
    _close([(r.data_row_id, r.similarity) for r in v.page(limit=50).rows], ref_valid, ref)
    assert sorted(v.ids(100)[1]) == sorted(i for i, _ in ref_valid)
    assert v.facets().total == 7
    # a filter on the score itself
    n_close = sum(1 for _, s in ref if s > 0.3)
    assert View(filter="similarity > 0.3", similar=Similar(space="s", anchors=anchors)).resolve(ws).count() == n_close


def test_saved_slice_keeps_anchors_and_picks_up_new_rows(world):
    ws, ids, vecs = world
    anchor = int(ids[0])
    s = slices.create_slice(ws, "like row 0", "split = valid", similar={"space": "s", "anchors": [anchor], "k": 5},
                            sort="-similarity")
    assert s.similar == {"space": "s", "anchors": [anchor], "k": 5}
    before = [r.data_row_id for r in View(slice=s.id).resolve(ws).page(limit=10).rows]
    assert len(before) == 5 and anchor in before
    ws.add_data_rows("d", [{"global_key": "twin", "row_data": "x.jpg", "split": "valid"}])
    emb.add_vectors(ws, "s", ["twin"], vecs[0:1] * 2)  # the same direction as the anchor
    after = View(slice=s.id).resolve(ws).page(limit=10).rows
    twin = ws.data_row("twin").id
    assert twin in [r.data_row_id for r in after[:2]]
    assert slices.slice_count(ws, s.id, None) == 5
    assert slices.list_slices(ws, run=None)[0].similar is not None


def test_bad_requests(world):
    ws, ids, _ = world
    with pytest.raises(LimitError, match="1 to 20"):
        emb.similar(ws, "s", [int(i) for i in ids[:21]])
    with pytest.raises(NotFoundError, match="no embedding space 'nope'"):
        emb.similar(ws, "nope", [int(ids[0])])
    ws.add_data_rows("d", [{"global_key": "novec", "row_data": "x.jpg"}])
    with pytest.raises(NotFoundError, match="no vector in space 's'"):
        emb.similar(ws, "s", [ws.data_row("novec").id])
    with pytest.raises(QueryError, match="needs anchor rows"):
        View(sort="-similarity").resolve(ws).page()
    with pytest.raises(QueryError, match="no embedding space"):
        slices.create_slice(ws, "bad space", "", similar={"space": "zz", "anchors": [1]})
    with pytest.raises(QueryError, match="similar"):
        View(similar={"space": "s", "anchors": []}).resolve(ws)


def test_ann_recall_and_incremental_add(ws, monkeypatch):
    """Above ANN_MIN_ROWS an IVF index answers; recall@50 against exact >= 0.95 on clustered data,
    and rows added later are appended to the built index."""
    monkeypatch.setattr(index_mod, "ANN_MIN_ROWS", 1000)
    rng = np.random.default_rng(3)
    n, dim = 6000, 32
    centres = rng.normal(size=(60, dim))
    vecs = (centres[rng.integers(0, 60, n)] + 0.6 * rng.normal(size=(n, dim))).astype(np.float32)
    ws.add_data_rows("d", [{"global_key": f"k{i}", "row_data": "x.jpg"} for i in range(n + 200)])
    emb.add_vectors(ws, "big", [f"k{i}" for i in range(n)], vecs)
    assert emb.wait_for_index(ws, "big", timeout=120)
    ids = emb.vectors(ws, "big")[0]
    recalls = []
    for a in rng.choice(len(ids), 20, replace=False):
        ann = {i for i, _ in emb.similar(ws, "big", [int(ids[a])], k=50)}
        exact = {i for i, _ in emb.similar(ws, "big", [int(ids[a])], k=50, exact=True)}
        recalls.append(len(ann & exact) / 50)
    assert np.mean(recalls) >= 0.95
    old = emb.index_for(ws, "big")
    more = (centres[rng.integers(0, 60, 200)] + 0.6 * rng.normal(size=(200, dim))).astype(np.float32)
    emb.add_vectors(ws, "big", [f"k{i}" for i in range(n, n + 200)], more)
    assert emb.wait_for_index(ws, "big", timeout=120)
    new = emb.index_for(ws, "big")
    assert new is not old and new.ann.ntotal == n + 200
    hit = emb.similar(ws, "big", [ws.data_row(f"k{n + 5}").id], k=1)
    assert hit[0][0] == ws.data_row(f"k{n + 5}").id
