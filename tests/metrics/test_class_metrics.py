"""Per-class metrics of classifications equal scikit-learn's precision_recall_fscore_support, computed here
from the labels and predictions themselves (radio: multi-class; checklist: multi-label)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from sklearn.metrics import precision_recall_fscore_support as prfs

from slicewise import metrics as M

DIGITS = ["0", "1", "2", "3", "4"]
OPTS = ["red", "round", "small"]
NONE = "<none>"


def _world(ws, n=120, seed=4):
    rng = random.Random(seed)
    keys = [f"r{i:03d}" for i in range(n)]
    ws.add_data_rows("d", [{"global_key": k, "row_data": f"{k}.jpg", "width": 50, "height": 50} for k in keys])
    ws.create_feature("digit", "radio", DIGITS)
    ws.create_feature("attrs", "checklist", OPTS)
    ws.create_feature("box", "bbox")
    anns, preds, truth = [], [], {}
    for k in keys:
        t = rng.choice(DIGITS) if rng.random() < 0.9 else None
        if t is not None:
            anns.append({"data_row": k, "feature": "digit", "answer": t})
        p = (t if t is not None and rng.random() < 0.6 else rng.choice(DIGITS)) if rng.random() < 0.85 else None
        pc = round(rng.random(), 3)
        if p is not None:
            preds.append({"data_row": k, "feature": "digit", "answer": p, "confidence": pc})
        ta = sorted(o for o in OPTS if rng.random() < 0.4)
        if ta:
            anns.append({"data_row": k, "feature": "attrs", "answers": ta})
        pa = sorted(o for o in OPTS if (o in ta) == (rng.random() < 0.7))
        ac = round(rng.random(), 3)
        if pa:
            preds.append({"data_row": k, "feature": "attrs", "answers": pa, "confidence": ac})
        if rng.random() < 0.3:  # boxes on the side: object classes in the same matrix
            anns.append({"data_row": k, "feature": "box", "bbox": [1, 1, 10, 10]})
        truth[k] = (t, p, pc, ta, pa, ac)
    ws.add_annotations(anns)
    run = ws.create_run("m", "v1")
    ws.add_predictions(run, preds)
    ws.add_run_rows(run, keys)
    M.compute_metrics(ws, run)
    return run, truth


@pytest.mark.parametrize("c", [0.0, 0.5])
def test_radio_answers_and_checklist_options_equal_sklearn(ws, c):
    run, truth = _world(ws)
    got = M.class_metrics(ws, run, c, 0.5)
    # radio: one true and one predicted answer per row (NONE when absent or below c)
    y_true = [t or NONE for t, *_ in truth.values()]
    y_pred = [p if p is not None and pc >= c else NONE for _, p, pc, *_ in truth.values()]
    P, R, F, S = prfs(y_true, y_pred, labels=DIGITS, average=None, zero_division=np.nan)
    for i, d in enumerate(DIGITS):
        row = got.get(f"digit: {d}")
        assert (row.feature, row.answer, row.kind) == ("digit", d, "radio")
        assert row.support == S[i]
        for mine, ref in ((row.precision, P[i]), (row.recall, R[i]), (row.f1, F[i])):
            assert (mine is None and np.isnan(ref)) or mine == pytest.approx(ref, abs=1e-9)
    # checklist: one indicator column per option
    Yt = np.array([[o in ta for o in OPTS] for *_, ta, _, _ in truth.values()], int)
    Yp = np.array([[o in pa and ac >= c for o in OPTS] for *_, pa, ac in truth.values()], int)
    P, R, F, S = prfs(Yt, Yp, average=None, zero_division=np.nan)
    for i, o in enumerate(OPTS):
        row = got.get(f"attrs: {o}")
        assert row.support == S[i]
        assert (row.precision, row.recall, row.f1) == pytest.approx((P[i], R[i], F[i]), abs=1e-9)
    # the boxes: labels only, every one a false negative
    box = got.get("box")
    assert (box.tp, box.fp, box.fn, box.recall, box.precision) == (0, 0, box.support, 0.0, None)
    # overall: micro from the summed counts, macro over the classes where defined
    rows = list(got)
    tp, fp, fn = (sum(getattr(r, k) for r in rows) for k in ("tp", "fp", "fn"))
    o = got.overall
    assert (o.tp, o.fp, o.fn) == (tp, fp, fn)
    assert o.micro_precision == pytest.approx(tp / (tp + fp)) and o.micro_recall == pytest.approx(tp / (tp + fn))
    assert o.macro_recall == pytest.approx(np.mean([r.recall for r in rows if r.recall is not None]))
    # radio alone: sklearn's macro over the answers
    yt = [t or NONE for t, *_ in truth.values()]
    _, Rm, _, _ = prfs(yt, y_pred, labels=DIGITS, average="macro", zero_division=np.nan)
    assert np.mean([got.get(f"digit: {d}").recall for d in DIGITS]) == pytest.approx(Rm)


def test_class_metrics_over_rows_and_object_features_equal_feature_metrics(ws):
    run, truth = _world(ws, n=60, seed=8)
    sub = ("SELECT id AS data_row_id FROM data_rows WHERE global_key < 'r030'", [])
    got = M.class_metrics(ws, run, 0.5, 0.5, rows=sub)
    keys = sorted(truth)[:30]
    y_true = [truth[k][0] or NONE for k in keys]
    y_pred = [truth[k][1] if truth[k][1] is not None and truth[k][2] >= 0.5 else NONE for k in keys]
    _, R, _, S = prfs(y_true, y_pred, labels=DIGITS, average=None, zero_division=np.nan)
    for i, d in enumerate(DIGITS):
        if S[i]:
            assert got.get(f"digit: {d}").recall == pytest.approx(R[i])
    fm = M.feature_metrics(ws, run, 0.5, 0.5, rows=sub).get("box")
    b = got.get("box")
    assert (b.tp, b.fp, b.fn) == (fm.tp, fm.fp, fm.fn)
