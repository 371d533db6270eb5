"""Islands (kNN label disagreement) against scikit-learn's NearestNeighbors, and as a query field."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from slicewise import embeddings as emb
from slicewise.errors import QueryError
from slicewise.view import View


@pytest.fixture
def labelled(ws):
    rng = np.random.default_rng(11)
    n = 300
    centres = rng.normal(size=(3, 8)) * 4
    cls = rng.integers(0, 3, n)
    vecs = (centres[cls] + rng.normal(size=(n, 8))).astype(np.float32)
    labels = cls.copy()
    flipped = rng.choice(n, 15, replace=False)
    labels[flipped] = (labels[flipped] + 1) % 3
    ws.add_data_rows("d", [{"global_key": f"k{i}", "row_data": "x.jpg"} for i in range(n + 5)])
    ws.create_feature("kind", "radio", ["a", "b", "c"])
    ws.add_annotations([{"data_row": f"k{i}", "feature": "kind", "answer": "abc"[labels[i]]} for i in range(n)])
    emb.add_vectors(ws, "img", [f"k{i}" for i in range(n + 5)],
                    np.vstack([vecs, rng.normal(size=(5, 8))]).astype(np.float32))  # 5 unlabelled rows
    by_key = {r.global_key: r.id for r in ws.data_rows()}
    return ws, np.asarray([by_key[f"k{i}"] for i in range(n)]), vecs, labels, flipped


def test_matches_sklearn_neighbours(labelled):
    ws, ids, vecs, labels, flipped = labelled
    k = 10
    nn = NearestNeighbors(n_neighbors=k + 1, metric="cosine").fit(vecs)
    _, nb = nn.kneighbors(vecs)
    nb = np.asarray([[j for j in row if j != i][:k] for i, row in enumerate(nb)])
    ref = (labels[nb] != labels[:, None]).mean(axis=1)
    got_ids, got = emb.islands(ws, "img", k=k)
    assert got_ids.tolist() == ids.tolist()  # only labelled rows get a score
    np.testing.assert_allclose(got, ref)
    # the flipped labels stand out: most of the top-15 by disagreement are flips
    top = ids[np.argsort(-ref, kind="stable")[:15]]
    assert len(set(top.tolist()) & set(ids[flipped].tolist())) >= 10


def test_query_field(labelled):
    ws, ids, vecs, labels, _ = labelled
    _, dis = emb.islands(ws, "img")
    want = sorted(int(i) for i, d in zip(ids, dis, strict=True) if d > 0.5)
    assert sorted(View(filter="island > 0.5").resolve(ws).ids(1000)[1]) == want
    assert View(filter="knn_disagreement.img > 0.5").resolve(ws).count() == len(want)
    page = View(sort="-island").resolve(ws).page(limit=5)
    np.testing.assert_allclose([r.sort_value for r in page.rows], np.sort(dis)[::-1][:5])
    h = View().resolve(ws).facets().histograms["island"]
    assert sum(h.counts) == len(ids) and h.missing == 5
    with pytest.raises(QueryError, match="no embedding space 'nope'"):
        View(filter="island.nope > 0.5").resolve(ws).count()


def test_islands_auto_slice(labelled):
    from slicewise import slices

    ws, ids, _, _, _ = labelled
    run = ws.create_run("m", "v1")
    ws.add_predictions(run, [{"data_row": f"k{i}", "feature": "kind", "answer": "a", "confidence": 0.9}
                             for i in range(300)])
    auto = {s.auto_key: s for s in slices.auto_slices(ws, run)}
    assert auto["islands"].name == "Islands" and auto["islands"].filter == "island > 0.5"
    _, dis = emb.islands(ws, "img")
    assert auto["islands"].count == int((dis > 0.5).sum())
    rows = View(run=run, slice="islands").resolve(ws).page(limit=3).rows
    assert [r.sort_value for r in rows] == sorted(dis, reverse=True)[:3]
    slices.set_auto_params(ws, run, island_disagreement=0.2)
    assert View(run=run, slice="islands").resolve(ws).count() == int((dis > 0.2).sum())
