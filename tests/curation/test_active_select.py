"""select_rows on a workspace: classification and detection runs, pools of unlabelled rows, diversity on an
embedding space, class balance; each checked against plain NumPy computed here from the same inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from slicewise.curation.active import select_rows
from slicewise.errors import ConflictError, LimitError, NotFoundError, QueryError
from slicewise.view import View


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """12 rows, the first 4 labelled; a 3-class radio run with probability vectors on all 12; a cosine
    space ``s`` with vectors for k00..k10 (one module-wide workspace: the tests only read it, but for tags)."""
    import slicewise
    from slicewise import embeddings

    ws = slicewise.open(tmp_path_factory.mktemp("active") / "ws.duckdb")
    rng = np.random.default_rng(5)
    n = 12
    ws.add_data_rows("d", [{"global_key": f"k{i:02d}", "row_data": "x.jpg"} for i in range(n)])
    ws.create_feature("animal", "radio", ["cat", "dog", "fox"])
    ws.add_annotations([{"data_row": f"k{i:02d}", "feature": "animal", "answer": "cat"} for i in range(4)])
    probs = rng.dirichlet([0.7, 0.7, 0.7], size=n)
    probs[7] = [0.5, 0.5, 0.0]  # margin 0: the most uncertain by margin
    run = ws.create_run("clf", "v1")
    opts = ["cat", "dog", "fox"]
    ws.add_predictions(run, [{"data_row": f"k{i:02d}", "feature": "animal", "answer": opts[int(np.argmax(p))],
                              "confidence": float(p.max()), "probabilities": p.tolist()} for i, p in enumerate(probs)])
    vecs = np.random.default_rng(9).normal(size=(12, 4))
    embeddings.add_vectors(ws, "s", [f"k{i:02d}" for i in range(11)], vecs[:11])  # k11 has no vector
    yield ws, probs, vecs
    ws.close()


@pytest.fixture
def clf(world):
    return world[0], world[1]


@pytest.fixture
def spaced(world):
    return world


def _want(probs, pool, fn, n):
    s = fn(probs[pool])
    order = sorted(range(len(pool)), key=lambda j: (-s[j], pool[j]))[:n]
    return [f"k{pool[j]:02d}" for j in order], [float(s[j]) for j in order]


def test_uncertainty_on_the_unlabelled_pool(clf):
    ws, probs = clf
    pool = list(range(4, 12))
    srt = lambda p: np.sort(p, axis=1)[:, ::-1]  # noqa: E731
    refs = {"least_confidence": lambda p: 1 - p.max(axis=1),
            "margin": lambda p: 1 - (srt(p)[:, 0] - srt(p)[:, 1]),
            "entropy": lambda p: -(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0)).sum(axis=1)}
    for name, fn in refs.items():
        sel = select_rows(ws, "annotation is none", 3, strategy=name, run="clf/v1")
        keys, scores = _want(probs, pool, fn, 3)
        assert sel.keys == keys, name
        assert sel.scores == pytest.approx(scores)
        assert sel.pool_size == 8 and sel.pool == "annotation is none" and sel.run == "clf/v1"
        assert all(r.predicted_class in ("cat", "dog", "fox") for r in sel.rows)
    assert select_rows(ws, "annotation is none", 1, strategy="margin", run="clf/v1").keys == ["k07"]
    # a View works as the pool, and its run is used
    sel = select_rows(ws, View(run="clf/v1", filter="annotation is none"), 2, strategy="lc")
    assert sel.strategy == "least_confidence" and sel.keys == _want(probs, pool, refs["least_confidence"], 2)[0]


def test_class_balance_and_random(clf):
    ws, probs = clf
    opts = ["cat", "dog", "fox"]
    sel = select_rows(ws, "annotation is none", 6, strategy="entropy", run="clf/v1", class_balance=True)
    pred = {f"k{i:02d}": opts[int(np.argmax(p))] for i, p in enumerate(probs)}
    have = [pred[f"k{i:02d}"] for i in range(4, 12)]
    counts = {c: [pred[k] for k in sel.keys].count(c) for c in set(have)}
    # a class with rows left has at least as many picks as any other, less one
    for c in counts:
        assert counts[c] == have.count(c) or counts[c] >= max(counts.values()) - 1, (counts, have)
    assert sorted(counts.values()) != sorted([0] * (len(counts) - 1) + [6])
    assert [r.predicted_class for r in sel.rows] == [pred[k] for k in sel.keys]
    a = select_rows(ws, "annotation is none", 5, strategy="random", run="clf/v1", seed=1)
    b = select_rows(ws, "annotation is none", 5, strategy="random", run="clf/v1", seed=1)
    c = select_rows(ws, "annotation is none", 5, strategy="random", run="clf/v1", seed=2)
    assert a.keys == b.keys and a.keys != c.keys
    assert set(a.keys) <= {f"k{i:02d}" for i in range(4, 12)} and len(set(a.keys)) == 5


@pytest.fixture(scope="module")
def det(tmp_path_factory):
    """Boxes: row a: 0.9, 0.55; row b: 0.6, 0.6, 0.6; row c: 0.97; row d: no boxes; all unlabelled."""
    import slicewise

    ws = slicewise.open(tmp_path_factory.mktemp("active-det") / "ws.duckdb")
    ws.add_data_rows("d", [{"global_key": k, "row_data": "x.jpg", "width": 100, "height": 100} for k in "abcd"])
    ws.create_feature("car", "bbox")
    ws.create_feature("bus", "bbox")
    run = ws.create_run("det", "v1")
    boxes = {"a": [("car", 0.9), ("bus", 0.55)], "b": [("car", 0.6)] * 3, "c": [("bus", 0.97)]}
    ws.add_predictions(run, [{"data_row": k, "feature": f, "bbox": [10 * j, 10, 20, 20], "confidence": c}
                             for k, objs in boxes.items() for j, (f, c) in enumerate(objs)])
    ws.add_run_rows(run, ["d"])
    yield ws, boxes
    ws.close()


def test_detection_aggregates_hand_worked(det):
    ws, boxes = det
    h = lambda c: -(c * math.log(c) + (1 - c) * math.log(1 - c))  # noqa: E731
    # least confidence of a box: 1 - max(c, 1 - c); the row: its least confident box (max)
    sel = select_rows(ws, "", 4, strategy="least_confidence", run="det/v1")
    assert sel.aggregate == "max"
    assert dict(zip(sel.keys, sel.scores, strict=True)) == pytest.approx({"a": 0.45, "b": 0.4, "c": 0.03, "d": 0.0})
    assert sel.rows[0].predicted_class == "bus" and sel.unscored == 1
    # margin of a box: 1 - |2c - 1|; the row: the mean
    sel = select_rows(ws, "", 4, strategy="margin", run="det/v1")
    assert dict(zip(sel.keys, sel.scores, strict=True)) == pytest.approx(
        {"a": (0.2 + 0.9) / 2, "b": 0.8, "c": 0.06, "d": 0.0})
    assert sel.keys == ["b", "a", "c", "d"]
    # entropy: the sum over the row's boxes (a soft count of uncertain boxes)
    sel = select_rows(ws, "", 4, strategy="entropy", run="det/v1")
    assert sel.aggregate == "sum"
    assert dict(zip(sel.keys, sel.scores, strict=True)) == pytest.approx(
        {"a": h(0.9) + h(0.55), "b": 3 * h(0.6), "c": h(0.97), "d": 0.0})
    # count: boxes whose normalised least confidence is >= 0.5, i.e. confidence in [0.25, 0.75]
    sel = select_rows(ws, "", 4, strategy="least_confidence", run="det/v1", aggregate="count")
    assert [math.floor(s) for s in sel.scores] == [3, 1, 0, 0] and sel.keys[:2] == ["b", "a"]


def test_diversity_is_k_center_from_the_labelled_rows(spaced):
    ws, probs, vecs = spaced
    u = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)  # a cosine space: unit vectors
    pool = list(range(4, 11))
    d = np.array([min(np.linalg.norm(u[i] - u[j]) for j in range(4)) for i in pool])
    want = []
    for _ in range(4):
        j = max((j for j in range(len(pool)) if pool[j] not in want), key=lambda j: (d[j], -j))
        want.append(pool[j])
        d = np.minimum(d, [np.linalg.norm(u[i] - u[pool[j]]) for i in pool])
    sel = select_rows(ws, "annotation is none", 4, strategy="diversity", run="clf/v1", space="s")
    assert sel.keys == [f"k{i:02d}" for i in want]
    assert sel.without_vector == 1 and sel.reference == 4 and sel.space == "s"
    assert sel.rows[0].distance == pytest.approx(min(np.linalg.norm(u[want[0]] - u[j]) for j in range(4)))
    # without a run: the catalog's unlabelled rows, same picks (k11 is in no space)
    assert select_rows(ws, "annotation is none", 4, strategy="k-center").keys == sel.keys
    # combined: uncertainty x distance, greedy
    ent = -(probs * np.log(np.where(probs > 0, probs, 1))).sum(axis=1)
    d = np.array([min(np.linalg.norm(u[i] - u[j]) for j in range(4)) for i in pool])
    want = []
    for _ in range(3):
        j = max((j for j in range(len(pool)) if pool[j] not in want), key=lambda j: (d[j] * ent[pool[j]], -j))
        want.append(pool[j])
        d = np.minimum(d, [np.linalg.norm(u[i] - u[pool[j]]) for i in pool])
    sel = select_rows(ws, "annotation is none", 3, strategy="combined", run="clf/v1", space="s")
    assert sel.keys == [f"k{i:02d}" for i in want] and sel.uncertainty == "entropy"


def test_tag_the_selection(clf):
    ws, _ = clf
    sel = select_rows(ws, "annotation is none", 3, strategy="entropy", run="clf/v1", tag="to-label")
    assert sel.tag == "to-label"
    assert sorted(r.global_key for r in ws.data_rows() if "to-label" in r.tags) == sorted(sel.keys)
    ws.remove_tags(sel.keys, ["to-label"])


def test_the_selection_becomes_a_batch(clf, table_snapshot):
    from slicewise.curation import batch_rows, drop_batch, get_batch

    ws, probs = clf
    sel = select_rows(ws, "annotation is none", 4, strategy="margin", run="clf/v1", batch="AL round 1",
                      priority=2, note="most uncertain first")
    b = get_batch(ws, "AL round 1")
    assert sel.batch == "AL round 1" and b.count == 4 and b.priority == 2 and b.note == "most uncertain first"
    assert batch_rows(ws, b) == sel.ids  # in the order chosen
    assert b.source == "select margin run:clf/v1 pool:annotation is none aggregate:mean"
    # the batch filter sees them
    assert select_rows(ws, 'batch:"AL round 1"', 10, strategy="random", run="clf/v1").pool_size == 4
    # a name in use: nothing is written, not the tag either
    before = table_snapshot(ws)
    with pytest.raises(ConflictError, match="already exists"):
        select_rows(ws, "annotation is none", 2, run="clf/v1", batch="al round 1", tag="picked")
    assert table_snapshot(ws) == before
    drop_batch(ws, "AL round 1")


def test_bad_requests(clf, table_snapshot):
    ws, _ = clf
    before = table_snapshot(ws)
    with pytest.raises(QueryError, match="unknown strategy 'entropie'.*entropy"):
        select_rows(ws, "annotation is none", 3, strategy="entropie", run="clf/v1")
    with pytest.raises(QueryError, match="no run was given"):
        select_rows(ws, "annotation is none", 3, strategy="entropy")
    with pytest.raises(LimitError, match="n=0"):
        select_rows(ws, "annotation is none", 0, run="clf/v1")
    with pytest.raises(NotFoundError, match="no embedding space 'nope'"):
        select_rows(ws, "annotation is none", 3, strategy="diversity", run="clf/v1", space="nope")
    with pytest.raises(QueryError):
        select_rows(ws, "annotation is nothing", 3, run="clf/v1")
    with pytest.raises(QueryError, match="aggregate"):
        select_rows(ws, "", 3, run="clf/v1", aggregate="median")
    assert table_snapshot(ws) == before


def test_no_space_in_the_workspace(det):
    ws, _ = det
    with pytest.raises(NotFoundError, match="diversity needs an embedding space and the workspace has none"):
        select_rows(ws, "", 3, strategy="diversity", run="det/v1")
