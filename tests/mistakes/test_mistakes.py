"""Label-mistake detectors against cleanlab and scikit-learn called here on the same arrays, the query
fields and auto slices they feed, staleness, and the precision that reviewers' verdicts measure."""

from __future__ import annotations

import numpy as np
import pytest
from cleanlab.filter import find_label_issues
from cleanlab.rank import get_label_quality_scores
from sklearn.neighbors import NearestNeighbors

from slicewise import mistakes, slices
from slicewise.errors import QueryError
from slicewise.view import View

from .build import CLASSES, N


@pytest.fixture(scope="module")
def clf(built):
    """150 rows in three clusters, 10 labels flipped, a model's probabilities and a vector space (one
    workspace for the module: the tests that write put back what they change)."""
    import slicewise

    path, arrays = built
    ws = slicewise.open(path)
    yield (ws, ws.run("m/v1"), *arrays)
    ws.close()


def _sklearn_counts(vecs, labels, k=10):
    nn = NearestNeighbors(n_neighbors=k + 1, metric="cosine").fit(vecs)
    _, nb = nn.kneighbors(vecs)
    nb = np.asarray([[j for j in row if j != i][:k] for i, row in enumerate(nb)])
    counts = np.zeros((len(labels), 3))
    for i, row in enumerate(nb):
        for j in row:
            counts[i, labels[j]] += 1
    return counts


def test_cleanlab_scores_are_cleanlabs(clf):
    ws, run, ids, labels, probs, _, flipped = clf
    s = mistakes.scores(ws, run, "cleanlab")
    assert s.ids.tolist() == sorted(ids.tolist())
    order = np.argsort(ids)
    np.testing.assert_allclose(s.score, 1 - get_label_quality_scores(labels, probs)[order], atol=1e-9)
    assert s.flagged.tolist() == find_label_issues(labels, probs)[order].tolist()
    assert len(set(s.ids[s.flagged].tolist()) & set(ids[flipped].tolist())) >= 7  # it finds the flips


def test_knn_and_combined_against_sklearn_neighbours(clf):
    ws, run, ids, labels, probs, vecs, _ = clf
    counts = _sklearn_counts(vecs, labels)
    order = np.argsort(ids)
    knn = mistakes.scores(ws, run, "knn")
    share = 1 - counts[np.arange(N), labels] / 10
    np.testing.assert_allclose(knn.score, share[order])
    assert knn.flagged.tolist() == (share > 0.5)[order].tolist()
    # the combination: confident learning on the mean of the model's and the neighbourhood's distributions
    mixed = (probs + (counts + 1 / 3) / 11) / 2
    comb = mistakes.scores(ws, run, "combined")
    np.testing.assert_allclose(comb.score, 1 - get_label_quality_scores(labels, mixed)[order], atol=1e-9)
    both = find_label_issues(labels, probs) & (share > 0.5)
    assert comb.flagged.tolist() == (find_label_issues(labels, mixed) | both)[order].tolist()


def test_query_fields_sort_and_auto_slices(clf):
    ws, run, ids, labels, probs, _, _ = clf
    cl = mistakes.scores(ws, run, "cleanlab")
    want = sorted(int(i) for i, v in zip(cl.ids, cl.score, strict=True) if v > 0.5)
    assert sorted(View(run=run, filter="mistake.cleanlab > 0.5").resolve(ws).ids(1000)[1]) == want
    comb = mistakes.scores(ws, run, "combined")
    assert View(run=run, filter="mistake.combined.flagged = 1").resolve(ws).count() == int(comb.flagged.sum())
    assert View(run=run, filter="mistake > 0.5").resolve(ws).count() == int((comb.score > 0.5).sum())
    page = View(run=run, sort="-mistake.knn").resolve(ws).page(limit=5)
    knn = mistakes.scores(ws, run, "knn")
    np.testing.assert_allclose([r.sort_value for r in page.rows], np.sort(knn.score)[::-1][:5])
    auto = {s.auto_key: s for s in slices.auto_slices(ws, run)}
    for d, sc in (("cleanlab", cl), ("knn", knn), ("combined", comb)):
        assert auto[f"mistakes-{d}"].name == f"Label mistakes ({d})"
        assert auto[f"mistakes-{d}"].count == int(sc.flagged.sum())
    rows = View(run=run, slice="mistakes-cleanlab").resolve(ws).page(limit=3).rows
    assert [r.sort_value for r in rows] == [v for _, v in cl.top(3)]
    h = View(run=run).resolve(ws).facets().histograms
    assert sum(h["mistake.cleanlab"].counts) == N and h["mistake.cleanlab"].edges[0] == 0.0
    nb = len(h["mistake.knn"].counts)  # shares of 10 neighbours sit on bin edges: [0.3, 0.35) holds 0.3
    want_bins = np.minimum(np.floor(np.round(knn.score * 10) * nb / 10), nb - 1).astype(int)
    assert h["mistake.knn"].counts == np.bincount(want_bins, minlength=nb).tolist()
    with pytest.raises(QueryError, match="unknown label-mistake field"):
        View(run=run, filter="mistake.oracle > 0.5").resolve(ws).count()
    with pytest.raises(QueryError, match="needs a model run"):
        View(filter="mistake.cleanlab > 0.5").resolve(ws).count()


def test_scores_go_stale_when_labels_change(clf):
    ws, run, ids, labels, probs, _, _ = clf
    before = mistakes.scores(ws, run, "cleanlab")
    n_before = View(run=run, filter="mistake.cleanlab > 0.9").resolve(ws).count()
    # relabel the row the model is surest about to a class it gives almost no probability
    i = int(np.argmax(probs.max(axis=1)))
    worst = CLASSES[int(np.argmin(probs[i]))]
    key = f"r{i:03d}"
    ws.sql("UPDATE annotations SET answer = ? WHERE data_row_id = ?", [worst, int(ids[i])])
    with ws.store.transaction():
        ws.store.touch("labels", rows=[int(ids[i])])
    after = mistakes.scores(ws, run, "cleanlab")
    pos = int(np.searchsorted(after.ids, ids[i]))
    assert after.score[pos] == pytest.approx(1 - probs[i].min()) and before.score[pos] != after.score[pos]
    assert View(run=run, filter="mistake.cleanlab > 0.9").resolve(ws).count() == n_before + 1
    ws.sql("UPDATE annotations SET answer = ? WHERE data_row_id = ?", [CLASSES[labels[i]], int(ids[i])])
    with ws.store.transaction():
        ws.store.touch("labels", rows=[int(ids[i])])
    assert mistakes.scores(ws, run, "cleanlab").score.tolist() == before.score.tolist()
    assert ws.data_row(key).id == ids[i]


def test_precision_from_verdicts_hand_worked(clf):
    ws, run, ids, *_ = clf
    s = {d: mistakes.scores(ws, run, d) for d in ("cleanlab", "knn")}
    fl = {d: [int(i) for i in s[d].ids[s[d].flagged]] for d in s}
    only_cl = [i for i in fl["cleanlab"] if i not in fl["knn"]]
    both = [i for i in fl["cleanlab"] if i in fl["knn"]]
    neither = [int(i) for i in ids if int(i) not in fl["cleanlab"] and int(i) not in fl["knn"]]
    assert len(both) >= 2 and len(only_cl) >= 1 and len(neither) >= 1
    key = {int(i): f"r{k:03d}" for k, i in enumerate(ids)}
    # the table: both[0] confirmed, both[1] rejected, only_cl[0] confirmed, neither[0] confirmed
    mistakes.set_verdict(ws, [key[both[0]], key[only_cl[0]], key[neither[0]]], "confirmed")
    mistakes.set_verdict(ws, [key[both[1]]], "rejected")
    got = {d.detector: d for d in mistakes.summary(ws, run).detectors}
    # cleanlab flags both[0], both[1], only_cl[0]: 2 confirmed, 1 rejected -> 2/3
    assert (got["cleanlab"].confirmed, got["cleanlab"].rejected) == (2, 1)
    assert got["cleanlab"].precision == pytest.approx(2 / 3)
    # knn flags both[0], both[1] (and perhaps others without verdicts): 1 confirmed, 1 rejected -> 1/2
    assert (got["knn"].confirmed, got["knn"].rejected, got["knn"].precision) == (1, 1, 0.5)
    assert got["knn"].unflagged_confirmed == 2 and got["cleanlab"].unflagged_confirmed == 1
    # a verdict replaces the other one; "clear" removes both
    mistakes.set_verdict(ws, [key[both[1]]], "confirmed")
    assert {d.detector: d.precision for d in mistakes.summary(ws, run).detectors}["cleanlab"] == 1.0
    assert ws.tags() == {"mistake-confirmed": 4}
    mistakes.set_verdict(ws, [key[i] for i in (both[0], both[1], only_cl[0], neither[0])], "clear")
    assert mistakes.summary(ws, run).reviewed == 0
    with pytest.raises(QueryError, match="unknown verdict"):
        mistakes.set_verdict(ws, [key[both[0]]], "maybe")
    assert View(run=run, filter="tag:mistake-confirmed").resolve(ws).count() == 0


def test_boxes_against_cleanlab_object_detection(ws):
    from cleanlab.object_detection.filter import find_label_issues as od_find
    from cleanlab.object_detection.rank import get_label_quality_scores as od_scores

    from slicewise.mistakes.detect import _threads_not_processes

    rng = np.random.default_rng(3)
    ws.add_data_rows("s", [{"global_key": f"s{i}", "row_data": f"s{i}.jpg", "width": 200, "height": 200}
                           for i in range(40)])
    for c in ("cat", "dog"):
        ws.create_feature(c, "bbox")
    run = ws.create_run("det", "v1")
    labels, preds, gt, pr = [], [], [], []
    for i in range(40):
        n = int(rng.integers(1, 4))
        boxes = [[float(x), float(y), 30.0, 30.0] for x, y in rng.uniform(0, 160, (n, 2))]
        cls = [int(c) for c in rng.integers(0, 2, n)]
        given = list(cls)
        if i % 10 == 3:
            given[0] = 1 - given[0]  # a wrong class
        keep = [j for j in range(n) if not (i % 10 == 7 and j == 0)]  # a missed box
        if not keep:
            keep = list(range(n))
        gt += [{"data_row": f"s{i}", "feature": ["cat", "dog"][given[j]], "bbox": boxes[j]} for j in keep]
        per = [[], []]
        for j in range(n):
            conf = float(rng.uniform(0.6, 0.99))
            b = [boxes[j][0] + 1, boxes[j][1] - 1, 30.0, 31.0]
            pr.append({"data_row": f"s{i}", "feature": ["cat", "dog"][cls[j]], "bbox": b, "confidence": conf})
            per[cls[j]].append([b[0], b[1], b[0] + b[2], b[1] + b[3], conf])
        labels.append({"bboxes": np.array([[boxes[j][0], boxes[j][1], boxes[j][0] + 30, boxes[j][1] + 30]
                                           for j in keep]), "labels": np.array([given[j] for j in keep])})
        preds.append([np.array(p, float).reshape(-1, 5) for p in per])
    ws.add_annotations(gt)
    ws.add_predictions(run, pr)
    ws.add_run_rows(run, [f"s{i}" for i in range(40)])
    s = mistakes.scores(ws, run, "cleanlab")
    ids = [ws.data_row(f"s{i}").id for i in range(40)]
    order = np.argsort(ids)
    # the reference in threads, as detect runs it: cleanlab's multiprocessing.Pool would fork this test worker,
    # and a forked worker left alive holds the pipes of the session's browser driver (its teardown then hangs)
    with _threads_not_processes():
        ref_scores, ref_flags = od_scores(labels, preds, verbose=False), od_find(labels, preds)
    np.testing.assert_allclose(s.score, 1 - ref_scores[order], atol=1e-9)
    assert s.flagged.tolist() == ref_flags[order].tolist()
    injected = {ids[i] for i in range(40) if i % 10 in (3, 7)}
    assert s.flagged.sum() >= 1 and set(s.ids[s.flagged].tolist()) <= injected
    assert mistakes.result(ws, run).tasks == ["boxes"] and "knn" not in mistakes.result(ws, run).detectors
    with pytest.raises(QueryError, match="needs an embedding space"):
        mistakes.scores(ws, run, "knn")


def test_confident_disagreement_hand_worked():
    from slicewise.mistakes.detect import combined_boxes, confident_disagreement

    lab = {"bboxes": np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float), "labels": np.array([0, 1])}
    p = lambda rows: np.array(rows, float).reshape(-1, 5)  # noqa: E731
    preds = [
        [p([[0, 0, 10, 10, .9]]), p([[20, 20, 30, 30, .8]])],  # both agree with the labels -> 0
        [p([]), p([[0, 0, 10, 10, .8]])],  # class 1 on the class-0 box (IoU 1) -> 0.8
        [p([[50, 50, 60, 60, .7], [0, 0, 10, 10, .95]]), p([[20, 20, 30, 30, .6]])],  # a box on no label -> 0.7
        [p([[0, 0, 10, 10, .9]]), p([[0, 1, 10, 11, .3]])],  # the wrong class only at 0.3 (< 0.5) -> 0
        [p([[0, 0, 10, 10, .9]]), p([[23, 23, 33, 33, .6]])],  # class 1 moved: IoU 49/151 < 0.5 -> 0.6
    ]
    got = confident_disagreement([lab] * 5, preds)
    assert got.tolist() == [0.0, 0.8, 0.7, 0.0, 0.6]
    score, flag = combined_boxes(np.array([.1, .2, .9, .3, .1]), np.array([False, False, True, True, False]), got)
    assert score.tolist() == [0.1, 0.8, 0.9, 0.3, 0.6] and flag.tolist() == [False, True, True, True, True]
