"""Projections of embedding spaces (PCA against NumPy's SVD, UMAP's neighbourhoods, the cache and its
invalidation), the colours of their points (against hand-worked tables), the CLI and the API."""

from __future__ import annotations

import base64
import os

import numpy as np
import pytest
from typer.testing import CliRunner

import slicewise
from slicewise import embeddings
from slicewise.embeddings import projection as P
from slicewise.errors import NotFoundError, QueryError


def reference_pca(x: np.ndarray, k: int) -> np.ndarray:
    """Plain NumPy: scores on the top-k right singular vectors of the centred matrix."""
    xc = x.astype(np.float64) - x.astype(np.float64).mean(axis=0)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    return xc @ vt[:k].T


def same_up_to_sign(a: np.ndarray, b: np.ndarray, tol: float) -> None:
    for j in range(b.shape[1]):
        s = np.sign(np.dot(a[:, j], b[:, j])) or 1.0
        np.testing.assert_allclose(a[:, j], s * b[:, j], atol=tol * np.abs(b[:, j]).max())


def spread(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scales = np.r_[[9.0, 5.0, 3.0], np.full(d - 3, 0.4)]  # well-separated components: a unique answer
    return (rng.normal(size=(n, d)) * scales).astype(np.float32)


@pytest.mark.parametrize("dims", [2, 3])
def test_pca_exact_matches_numpy_svd(dims):
    x = spread(500, 12)
    same_up_to_sign(P.pca(x, dims), reference_pca(x, dims), 1e-4)


def test_pca_randomized_matches_numpy_svd(monkeypatch):
    monkeypatch.setattr(P, "EXACT_PCA_LIMIT", 100)  # take the randomized path on a size NumPy can check
    x = spread(3000, 40, seed=3)
    same_up_to_sign(P.pca(x, 3), reference_pca(x, 3), 1e-3)


def test_pca_randomized_on_low_rank_data(monkeypatch):
    """Rank-2 data: the range finder's blocks are rank-deficient (CholeskyQR cannot factor them; the
    Householder fallback does) and the two components are still NumPy's."""
    monkeypatch.setattr(P, "EXACT_PCA_LIMIT", 100)
    rng = np.random.default_rng(5)
    x = (rng.normal(size=(3000, 2)) * [5.0, 1.0] @ rng.normal(size=(2, 40))).astype(np.float32)
    same_up_to_sign(P.pca(x, 2), reference_pca(x, 2), 1e-3)


def test_pca_degenerate_inputs():
    assert P.pca(np.zeros((0, 4), np.float32), 2).shape == (0, 2)
    one = P.pca(np.ones((1, 4), np.float32), 3)
    assert one.shape == (1, 3) and not one.any()
    flat = P.pca(np.random.default_rng(0).normal(size=(10, 2)).astype(np.float32), 3)  # 2 dims -> the 3rd is 0
    assert flat.shape == (10, 3) and not flat[:, 2].any()


@pytest.mark.skipif(not os.environ.get("SLICEWISE_UMAP_TESTS"),
                    reason="umap-learn's numba compilation takes 1-2 minutes on 2 busy cores; SLICEWISE_UMAP_TESTS=1 runs it")
def test_umap_keeps_clusters_apart_also_when_fitted_on_a_sample():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 20)) * 10
    labels = np.repeat(np.arange(3), 100)
    x = (centres[labels] + rng.normal(size=(300, 20))).astype(np.float32)
    steps = []
    # fitted on 150 rows, the other 150 transformed into the same map
    y = P.umap(x, 2, fit_limit=150, progress=lambda d, t, s: steps.append((d, t, s)))
    assert y.shape == (300, 2) and np.isfinite(y).all()
    assert steps[0][2] == "fitting" and steps[-1][2] == "done"
    # every point's nearest neighbour in the map has its cluster (plain NumPy distances)
    dist = ((y[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(dist, np.inf)
    assert (labels[dist.argmin(1)] == labels).mean() > 0.97


@pytest.fixture
def ws(tmp_path):
    w = slicewise.open(tmp_path / "ws.duckdb")
    rows = [{"global_key": f"k{i}", "row_data": "x.jpg", "metadata": {"n": i, "cam": f"c{i % 2}"}} for i in range(30)]
    w.add_data_rows("d", rows)
    yield w
    w.close()


def test_project_is_cached_and_follows_new_vectors(ws):
    x = spread(30, 8)
    embeddings.add_vectors(ws, "s", [f"k{i}" for i in range(20)], x[:20])
    first = P.project(ws, "s", "pca", 2)
    assert first.seconds > 0 and len(first) == 20
    ids, _ = embeddings.vectors(ws, "s")
    np.testing.assert_array_equal(first.ids, ids)
    same_up_to_sign(first.coords, reference_pca(x[:20], 2), 1e-4)
    again = P.project(ws, "s", "pca", 2)
    assert again.seconds == 0 and again.coords is first.coords  # from the cache
    assert P.cached(ws, "s", "pca", 2) is not None and P.cached(ws, "s", "pca", 3) is None
    embeddings.add_vectors(ws, "s", [f"k{i}" for i in range(20, 30)], x[20:])  # new vectors: computed afresh
    assert P.cached(ws, "s", "pca", 2) is None
    fresh = P.project(ws, "s", "pca", 2)
    assert len(fresh) == 30 and fresh.seconds > 0
    same_up_to_sign(fresh.coords, reference_pca(x, 2), 1e-4)


def test_project_survives_reopening(tmp_path):
    path = tmp_path / "w.duckdb"
    with slicewise.open(path) as w:
        w.add_data_rows("d", [{"global_key": f"k{i}", "row_data": "x.jpg"} for i in range(10)])
        embeddings.add_vectors(w, "s", [f"k{i}" for i in range(10)], spread(10, 5))
        a = P.project(w, "s", "pca", 3).coords.copy()
    with slicewise.open(path) as w:
        assert P.cached(w, "s", "pca", 3) is not None  # the cache database beside the file kept it
        np.testing.assert_array_equal(P.project(w, "s", "pca", 3).coords, a)


def test_bad_requests(ws):
    with pytest.raises(NotFoundError, match="nope"):
        P.project(ws, "nope")
    embeddings.add_vectors(ws, "s", ["k0", "k1"], spread(2, 4))
    with pytest.raises(QueryError, match="tsne"):
        P.project(ws, "s", "tsne")
    with pytest.raises(QueryError, match="2 or 3"):
        P.project(ws, "s", "pca", 4)
    with pytest.raises(QueryError, match="colour"):
        P.colors(ws, [1], "")


def test_colors_against_hand_worked_tables(ws):
    keys = [f"k{i}" for i in range(6)]
    ids = {r.global_key: r.id for r in ws.data_rows()}
    # ground truth: k0 cat, k1 cat+dog+dog (dog wins), k2 dog, k3 cat+dog (tie: the name first, cat), k4/k5 none
    box = lambda k, f, i=0: {"data_row": k, "feature": f, "bbox": [i, i, 5, 5]}  # noqa: E731
    ws.add_annotations([box("k0", "cat"), box("k1", "cat"), box("k1", "dog", 1), box("k1", "dog", 2), box("k2", "dog"),
                        box("k3", "dog"), box("k3", "cat", 1)], create_features=True)
    ws.add_tags(["k1", "k4"], ["re-label"])
    order = np.array([ids[k] for k in keys])
    gt = P.colors(ws, order, "gt")
    assert gt.kind == "category" and gt.legend == ["cat", "dog"] and gt.counts == [2, 2]
    assert [gt.legend[c] if c >= 0 else None for c in gt.codes] == ["cat", "dog", "dog", "cat", None, None]
    tag = P.colors(ws, order, "tag:re-label")
    assert tag.codes.tolist() == [1, 0, 1, 1, 0, 1] and tag.counts == [2, 4]
    num = P.colors(ws, order, "metadata.n")
    assert num.kind == "number" and num.values.tolist() == [0, 1, 2, 3, 4, 5] and (num.min, num.max) == (0, 5)
    cam = P.colors(ws, order, "metadata.cam")
    assert cam.legend == ["c0", "c1"] and cam.codes.tolist() == [0, 1, 0, 1, 0, 1]
    with pytest.raises(QueryError, match="run"):
        P.colors(ws, order, "pred")


def test_cli_project_writes_what_the_library_computes(tmp_path):
    from slicewise.cli import app

    path = tmp_path / "ws.duckdb"
    with slicewise.open(path) as w:
        w.add_data_rows("d", [{"global_key": f"k{i}", "row_data": "x.jpg"} for i in range(12)])
        embeddings.add_vectors(w, "s", [f"k{i}" for i in range(12)], spread(12, 6))
    out = tmp_path / "xy.csv"
    res = CliRunner().invoke(app, ["project", "s", "--method", "pca", "--dims", "3", "--out", str(out), "-w", str(path)])
    assert res.exit_code == 0, res.output
    assert "12 points, pca 3D" in res.output
    import pyarrow.csv as pcsv

    got = pcsv.read_csv(out).to_pydict()
    with slicewise.open(path) as w:
        p = P.project(w, "s", "pca", 3)
    assert got["data_row_id"] == p.ids.tolist()
    np.testing.assert_allclose(np.column_stack([got["x"], got["y"], got["z"]]), p.coords, rtol=1e-5)
    bad = CliRunner().invoke(app, ["project", "s", "--dims", "5", "-w", str(path)])
    assert bad.exit_code != 0 and "--dims" in (bad.output + str(bad.exception))


def test_api_projection_is_binary_and_colors_align(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from slicewise.server import create_app

    path = tmp_path / "ws.duckdb"
    with slicewise.open(path) as w:
        w.add_data_rows("d", [{"global_key": f"k{i}", "row_data": "x.jpg", "metadata": {"n": i}} for i in range(25)])
        embeddings.add_vectors(w, "s", [f"k{i}" for i in range(5, 25)], spread(20, 6))
    with TestClient(create_app(path)) as c:
        r = c.get("/api/embeddings/s/projection", params={"method": "pca", "dims": 2})
        assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
        n = int(r.headers["x-count"])
        ids = np.frombuffer(r.content[: 8 * n], "<i8")
        xy = np.frombuffer(r.content[8 * n:], "<f4").reshape(n, 2)
        ws = c.app.state.sw.ws
        p = P.project(ws, "s", "pca", 2)
        np.testing.assert_array_equal(ids, p.ids)
        np.testing.assert_array_equal(xy, p.coords)
        col = c.get("/api/embeddings/s/colors", params={"by": "metadata.n"}).json()
        vals = np.frombuffer(base64.b64decode(col["data"]), "<f4")
        want = {r.id: r.metadata["n"] for r in ws.data_rows()}
        assert col["kind"] == "number" and vals.tolist() == [want[int(i)] for i in ids]
        assert c.get("/api/embeddings/nope/projection").status_code == 404
        assert c.get("/api/embeddings/s/projection", params={"dims": 4}).status_code == 422
        # UMAP: a job first (202 with its progress), then the points. The job's plumbing is what is tested
        # here: UMAP itself (numba compiles for minutes) is stood in for by PCA, with UMAP's progress steps
        def fake_umap(vecs, dims, progress=None, **kw):
            progress(0, 2, "fitting")
            progress(2, 2, "done")
            return P.pca(vecs, dims) + 1.0

        monkeypatch.setattr(P, "umap", fake_umap)
        r = c.get("/api/embeddings/s/projection", params={"method": "umap", "dims": 2})
        assert r.status_code == 202 and r.json()["state"] in ("running", "done")
        P.job(ws, "s", "umap", 2).thread.join(120)
        st = c.get("/api/embeddings/s/projection/status", params={"method": "umap"}).json()
        assert st["state"] == "done", st
        r = c.get("/api/embeddings/s/projection", params={"method": "umap", "dims": 2})
        assert r.status_code == 200 and int(r.headers["x-count"]) == 20
        umap_xy = np.frombuffer(r.content[8 * 20:], "<f4").reshape(20, 2)
        np.testing.assert_allclose(umap_xy, p.coords + 1.0, rtol=1e-6)  # what the job computed, from the cache


def test_umap_neighbours_are_near_exact_and_their_own_distances():
    """UMAP's neighbour graph (FAISS HNSW above KNN_EXACT_LIMIT rows): each row first with distance 0, the
    distances those of the points returned, and at least 90% of the exact 16 nearest (brute force in NumPy)."""
    rng = np.random.default_rng(4)
    centres = rng.normal(size=(30, 80)) * 3
    x = (centres[rng.integers(0, 30, 6000)] + rng.normal(size=(6000, 80))).astype(np.float32)
    pts, (idx, dist) = P.knn_graph(x, 16)
    assert len(pts) == len(x) and pts.shape[1] == P.KNN_DIMS
    assert (idx[:, 0] == np.arange(len(x))).all() and np.allclose(dist[:, 0], 0, atol=1e-3)
    own = np.linalg.norm(pts[:, None, :] - pts[idx], axis=2)
    assert np.allclose(own, dist, atol=1e-3)
    sq = (pts ** 2).sum(1)
    recall = []
    for s in range(0, len(pts), 1000):
        d2 = sq[s:s + 1000, None] - 2 * pts[s:s + 1000] @ pts.T + sq[None, :]
        exact = np.argpartition(d2, 16, axis=1)[:, :16]
        recall += [len(set(a) & set(b)) / 16 for a, b in zip(exact, idx[s:s + 1000], strict=True)]
    assert np.mean(recall) >= 0.9
