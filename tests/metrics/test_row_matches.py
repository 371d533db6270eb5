"""row_matches: per-object outcomes of one row, on hand-computed rows, and agreement with the per-row table."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slicewise import metrics as M
from slicewise.errors import MetricsError, NotFoundError


def _setup(ws, keys, features, anns, preds, *, config=None):
    ws.add_data_rows("d", [{"global_key": k, "row_data": k, "width": 100, "height": 80} for k in keys])
    for name, kind, *opts in features:
        ws.create_feature(name, kind, opts[0] if opts else None)
    if anns:
        ws.add_annotations(anns)
    run = ws.create_run("m", "v1", config=config or {})
    if preds:
        ws.add_predictions(run, preds)
    ws.add_run_rows(run, keys)
    M.compute_metrics(ws, run)
    return run


def _ids(ws, run, key):
    """({feature: [label ids]}, {feature: [prediction ids]}) in id order."""
    la: dict[str, list[int]] = {}
    pr: dict[str, list[int]] = {}
    for o in ws.annotations(key):
        la.setdefault(o["feature"], []).append(o["id"])
    for o in ws.predictions(run, key):
        pr.setdefault(o["feature"], []).append(o["id"])
    return la, pr


def _by(out, source, oid):
    return next(o for o in out if o["source"] == source and o["object_id"] == oid)


def test_class_confusion(ws):
    run = _setup(ws, ["a"], [("cat", "bbox"), ("dog", "bbox")],
                 [{"data_row": "a", "feature": "cat", "bbox": [10, 10, 20, 20]}],
                 [{"data_row": "a", "feature": "dog", "bbox": [10, 10, 20, 10], "confidence": 0.9}])  # IoU 0.5
    rid = ws.data_row("a").id
    (gid,), (pid,) = _ids(ws, run, "a")[0]["cat"], _ids(ws, run, "a")[1]["dog"]
    out = M.row_matches(ws, run, rid, 0.5, 0.3)
    assert [(o["source"], o["object_id"]) for o in out] == [("label", gid), ("prediction", pid)]
    lab, pred = out
    assert lab["outcome"] == pred["outcome"] == "confusion"
    assert (lab["match_id"], lab["match_class"], lab["counts_as"]) == (pid, "dog", "FN")
    assert (pred["match_id"], pred["match_class"], pred["counts_as"]) == (gid, "cat", "FP")
    assert lab["iou"] == pred["iou"] == pytest.approx(0.5)
    assert pred["kept"] is True and pred["confidence"] == 0.9 and lab["confidence"] is None
    # IoU exactly equal to t is not a match: the pair stays recorded (its IoU is shown), outcomes FP / FN
    out = M.row_matches(ws, run, rid, 0.5, 0.5)
    lab, pred = out
    assert (lab["outcome"], pred["outcome"]) == ("FN", "FP")
    assert lab["match_id"] is None and pred["match_id"] is None
    assert (lab["iou_with"], pred["iou_with"]) == (pid, gid) and lab["iou"] == pytest.approx(0.5)


def test_duplicate_predictions_and_confidence(ws):
    run = _setup(ws, ["a"], [("cat", "bbox")], [{"data_row": "a", "feature": "cat", "bbox": [0, 0, 10, 10]}],
                 [{"data_row": "a", "feature": "cat", "bbox": [0, 0, 10, 9], "confidence": 0.6},   # IoU 0.9
                  {"data_row": "a", "feature": "cat", "bbox": [0, 0, 10, 8], "confidence": 0.9}])  # IoU 0.8
    rid = ws.data_row("a").id
    (gid,), (p9, p8) = _ids(ws, run, "a")[0]["cat"], _ids(ws, run, "a")[1]["cat"]
    out = M.row_matches(ws, run, rid, 0.0, 0.5)
    assert _by(out, "label", gid)["outcome"] == "TP" and _by(out, "label", gid)["match_id"] == p9
    assert _by(out, "prediction", p9)["outcome"] == "TP" and _by(out, "prediction", p9)["iou"] == pytest.approx(0.9)
    dup = _by(out, "prediction", p8)
    # the duplicate was left unpaired by the greedy pass: FP, with its best overlap for information
    assert dup["outcome"] == "FP" and dup["match_id"] is None
    assert dup["iou_with"] == gid and dup["iou"] == pytest.approx(0.8)
    # a prediction below c is dropped; the other one then takes the label
    out = M.row_matches(ws, run, rid, 0.7, 0.5)
    d = _by(out, "prediction", p9)
    assert (d["outcome"], d["kept"], d["counts_as"], d["match_id"]) == ("dropped", False, None, None)
    assert _by(out, "prediction", p8)["outcome"] == "TP" and _by(out, "label", gid)["match_id"] == p8
    out = M.row_matches(ws, run, rid, 0.7, 0.8)  # 0.8 is not above 0.8
    assert _by(out, "prediction", p8)["outcome"] == "FP" and _by(out, "label", gid)["outcome"] == "FN"


def test_row_with_only_labels_and_classifications(ws):
    run = _setup(ws, ["a", "b"], [("cat", "bbox"), ("weather", "radio", ["sun", "rain"])],
                 [{"data_row": "a", "feature": "cat", "bbox": [0, 0, 10, 10]},
                  {"data_row": "a", "feature": "weather", "answer": "sun"},
                  {"data_row": "b", "feature": "weather", "answer": "sun"}],
                 [{"data_row": "b", "feature": "weather", "answer": "rain", "confidence": 0.8}])
    out = M.row_matches(ws, run, ws.data_row("a").id, 0.5, 0.5)
    assert [(o["source"], o["class"], o["outcome"], o["match_id"], o["iou"]) for o in out] == [
        ("label", "cat", "FN", None, None), ("label", "weather: sun", "FN", None, None)]
    out = M.row_matches(ws, run, ws.data_row("b").id, 0.5, 0.5)
    lab, pred = out
    assert (lab["outcome"], lab["answer"], lab["match_class"]) == ("confusion", "sun", "weather: rain")
    assert (pred["outcome"], pred["class"], pred["match_class"], pred["iou"]) == \
        ("confusion", "weather: rain", "weather: sun", 1.0)


def test_within_class_mode(ws):
    run = _setup(ws, ["a"], [("cat", "bbox"), ("dog", "bbox")],
                 [{"data_row": "a", "feature": "cat", "bbox": [10, 10, 20, 20]}],
                 [{"data_row": "a", "feature": "dog", "bbox": [10, 10, 20, 20], "confidence": 0.9}],
                 config={"metrics_matching": "within-class"})
    lab, pred = M.row_matches(ws, run, ws.data_row("a").id, 0.5, 0.5)
    # never paired across classes, and the best overlap only looks within the class
    assert (lab["outcome"], pred["outcome"]) == ("FN", "FP")
    assert lab["iou"] is None and pred["iou"] is None


def test_rows_outside_the_run_bad_thresholds_and_unknown_rows(ws):
    run = _setup(ws, ["a"], [("cat", "bbox")], [{"data_row": "a", "feature": "cat", "bbox": [0, 0, 10, 10]}],
                 [{"data_row": "a", "feature": "cat", "bbox": [0, 0, 10, 10], "confidence": 0.9}])
    ws.add_data_rows("d", [{"global_key": "z", "row_data": "z", "width": 100, "height": 80}])
    ws.add_annotations([{"data_row": "z", "feature": "cat", "bbox": [0, 0, 10, 10]}])
    (o,) = M.row_matches(ws, run, ws.data_row("z").id, 0.5, 0.5)
    assert o["outcome"] is None and o["counts_as"] is None
    with pytest.raises(MetricsError, match="not on the run's confidence grid"):
        M.row_matches(ws, run, ws.data_row("a").id, 0.55, 0.5)
    with pytest.raises(MetricsError, match="outside"):
        M.row_matches(ws, run, ws.data_row("a").id, 0.5, 1.5)
    with pytest.raises(NotFoundError, match="no data row"):
        M.row_matches(ws, run, 10**9, 0.5, 0.5)


def test_stale_metrics_leave_newer_objects_uncovered(ws):
    run = _setup(ws, ["a"], [("cat", "bbox")], [{"data_row": "a", "feature": "cat", "bbox": [0, 0, 10, 10]}],
                 [{"data_row": "a", "feature": "cat", "bbox": [0, 0, 10, 10], "confidence": 0.9}])
    ws.add_annotations([{"data_row": "a", "feature": "cat", "bbox": [50, 50, 10, 10]}], source="more")
    assert M.job_status(ws, run).state == "stale"
    out = M.row_matches(ws, run, ws.data_row("a").id, 0.5, 0.5)
    assert [(o["source"], o["outcome"]) for o in out] == [("label", "TP"), ("label", None), ("prediction", "TP")]
    M.compute_metrics(ws, run)
    out = M.row_matches(ws, run, ws.data_row("a").id, 0.5, 0.5)
    assert [(o["source"], o["outcome"]) for o in out] == [("label", "TP"), ("label", "FN"), ("prediction", "TP")]


def _counts(out):
    tp = sum(o["source"] == "prediction" and o["counts_as"] == "TP" for o in out)
    tp_l = sum(o["source"] == "label" and o["counts_as"] == "TP" for o in out)
    fp = sum(o["source"] == "prediction" and o["counts_as"] == "FP" for o in out)
    fn = sum(o["source"] == "label" and o["counts_as"] == "FN" for o in out)
    assert tp == tp_l
    return tp, fp, fn


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1), within=st.booleans())
def test_outcomes_agree_with_row_metrics_table(tmp_path_factory, seed, within):
    import slicewise

    rng = np.random.default_rng(seed)
    ws = slicewise.open(tmp_path_factory.mktemp("rm") / "ws.duckdb")
    try:
        keys = [f"r{i}" for i in range(6)]
        feats = ["a", "b", "c"]

        def box():
            x, y = rng.integers(0, 60, 2)
            return [float(x), float(y), float(rng.integers(5, 30)), float(rng.integers(5, 30))]

        anns = [{"data_row": k, "feature": str(rng.choice(feats)), "bbox": box()}
                for k in keys for _ in range(rng.integers(0, 5))]
        preds = []
        for a in anns:  # near copies (often of another class), plus random boxes
            if rng.random() < 0.7:
                b = [v + float(rng.integers(-3, 4)) for v in a["bbox"]]
                b[2], b[3] = max(b[2], 1.0), max(b[3], 1.0)
                f = a["feature"] if rng.random() < 0.6 else str(rng.choice(feats))
                preds.append({"data_row": a["data_row"], "feature": f, "bbox": b,
                              "confidence": float(rng.choice([0.1, 0.3, 0.5, 0.7, 0.9]))})
        preds += [{"data_row": str(rng.choice(keys)), "feature": str(rng.choice(feats)), "bbox": box(),
                   "confidence": float(rng.random())} for _ in range(rng.integers(0, 8))]
        run = _setup(ws, keys, [(f, "bbox") for f in feats], anns, preds,
                     config={"metrics_matching": "within-class" if within else "class-agnostic"})
        for c, t in ((0.0, 0.0), (0.3, 0.5), (0.5, 0.3), (0.7, 0.7), (0.3, 0.9)):
            table = M.row_metrics_table(ws, run, c, t)
            want = {rid: (tp, fp, fn) for rid, tp, fp, fn in ws.sql(f"SELECT data_row_id, tp, fp, fn FROM {table}").fetchall()}
            for rid, counts in want.items():
                out = M.row_matches(ws, run, rid, c, t, best_iou=False)
                assert _counts(out) == counts, (rid, c, t)
                assert all(o["outcome"] is not None for o in out)
                for o in out:  # the two sides of a match point at each other, with the same IoU
                    if o["match_id"] is not None:
                        other = _by(out, "label" if o["source"] == "prediction" else "prediction", o["match_id"])
                        assert other["match_id"] == o["object_id"] and other["iou"] == o["iou"] and o["iou"] > t
                        assert (o["outcome"] == "TP") == (o["class"] == other["class"])
                    if o["source"] == "prediction":
                        assert (o["outcome"] == "dropped") == (o["confidence"] < c)
    finally:
        ws.close()
