"""The default protocol on hand-computed tables (class-agnostic matching, IoU > t, None class)."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from slicewise import metrics as M


def _setup(ws, rows, features, anns, preds, *, config=None, run_rows=None):
    ws.add_data_rows("d", rows)
    for name, kind, *opts in features:
        ws.create_feature(name, kind, opts[0] if opts else None)
    if anns:
        ws.add_annotations(anns)
    run = ws.create_run("m", "v1", config=config or {})
    if preds:
        ws.add_predictions(run, preds)
    ws.add_run_rows(run, run_rows or [r["global_key"] for r in rows])
    M.compute_metrics(ws, run)
    return run


def _img(*keys):
    return [{"global_key": k, "row_data": k, "width": 100, "height": 80} for k in keys]


def rf(ws, run, c, t):
    """{(global_key, feature): (tp, fp, fn)}"""
    table = M.row_feature_metrics_table(ws, run, c, t)
    return {(k, f): (tp, fp, fn) for k, f, tp, fp, fn in ws.sql(
        f"SELECT d.global_key, f.name, tp, fp, fn FROM {table} m JOIN data_rows d ON d.id = m.data_row_id "
        "JOIN features f ON f.id = m.feature_id").fetchall()}


def row(ws, run, c, t, key):
    table = M.row_metrics_table(ws, run, c, t)
    cur = ws.sql(f"SELECT m.* FROM {table} m JOIN data_rows d ON d.id = m.data_row_id WHERE d.global_key = ?", [key])
    names = [d[0] for d in cur.description]
    return dict(zip(names, cur.fetchone(), strict=True))


def cell(cm, true, pred):
    return cm.counts[cm.classes.index(true)][cm.classes.index(pred)]


BOX = [10, 10, 20, 20]


def test_class_confusion_is_fp_for_predicted_and_fn_for_true(ws):
    run = _setup(ws, _img("a"), [("cat", "bbox"), ("dog", "bbox")],
                 [{"data_row": "a", "feature": "cat", "bbox": BOX}],
                 [{"data_row": "a", "feature": "dog", "bbox": BOX, "confidence": 0.9}])
    assert rf(ws, run, 0.5, 0.5) == {("a", "cat"): (0, 0, 1), ("a", "dog"): (0, 1, 0)}
    cm = M.confusion_matrix(ws, run, 0.5, 0.5)
    assert cell(cm, "cat", "dog") == 1 and sum(map(sum, cm.counts)) == 1
    assert ws.sql(*M.confusion_cell_rows(ws, run, 0.5, 0.5, "cat", "dog")).fetchall() == [(ws.data_row("a").id,)]
    # above the pair's IoU (1.0 is not above 1.0) the two are unmatched: None cells
    cm = M.confusion_matrix(ws, run, 0.5, 1.0)
    assert cell(cm, "cat", "None") == 1 and cell(cm, "None", "dog") == 1


def test_duplicate_predictions(ws):
    run = _setup(ws, _img("a"), [("cat", "bbox")], [{"data_row": "a", "feature": "cat", "bbox": [0, 0, 10, 10]}],
                 [{"data_row": "a", "feature": "cat", "bbox": [0, 0, 10, 9], "confidence": 0.6},   # IoU 0.9
                  {"data_row": "a", "feature": "cat", "bbox": [0, 0, 10, 8], "confidence": 0.9}])  # IoU 0.8
    assert rf(ws, run, 0.0, 0.5) == {("a", "cat"): (1, 1, 0)}
    r = row(ws, run, 0.0, 0.5, "a")
    assert r["precision"] == 0.5 and r["recall"] == 1.0 and r["f1"] == pytest.approx(2 / 3)
    # the iou metric pairs one-to-one by decreasing IoU: (0.9 + 0) / 2
    assert r["iou"] == pytest.approx(0.45)
    assert r["conf_min"] == 0.6 and r["conf_max"] == 0.9 and r["conf_mean"] == pytest.approx(0.75)
    # at c = 0.7 only the 0.8-IoU prediction is kept and it matches
    assert rf(ws, run, 0.7, 0.5) == {("a", "cat"): (1, 0, 0)}
    assert row(ws, run, 0.7, 0.5, "a")["iou"] == pytest.approx(0.8)
    assert rf(ws, run, 0.7, 0.8) == {("a", "cat"): (0, 1, 1)}  # 0.8 is not above 0.8


def test_ties_are_broken_the_same_whatever_the_order(tmp_path):
    import slicewise

    out = []
    for order in (0, 1):
        ws = slicewise.open(tmp_path / f"w{order}.duckdb")
        gts = [{"data_row": "a", "feature": "cat", "bbox": [0, 0, 10, 10]},
               {"data_row": "a", "feature": "dog", "bbox": [10, 0, 10, 10]}]
        # one prediction overlapping both labels equally (IoU 1/3 each)
        run = _setup(ws, _img("a"), [("cat", "bbox"), ("dog", "bbox")], gts[::-1] if order else gts,
                     [{"data_row": "a", "feature": "dog", "bbox": [5, 0, 10, 10], "confidence": 0.5}])
        out.append(rf(ws, run, 0.0, 0.3))
        ws.close()
    assert out[0] == out[1]
    # ties: the labels differ only by feature; the lower feature id (cat) wins, so the dog is a confusion
    assert out[0] == {("a", "cat"): (0, 0, 1), ("a", "dog"): (0, 1, 1)}


def test_iou_equal_to_threshold_is_not_a_match(ws):
    run = _setup(ws, _img("a"), [("cat", "bbox")], [{"data_row": "a", "feature": "cat", "bbox": [0, 0, 10, 10]}],
                 [{"data_row": "a", "feature": "cat", "bbox": [0, 0, 10, 5], "confidence": 0.5}])  # IoU exactly 0.5
    assert rf(ws, run, 0.5, 0.5) == {("a", "cat"): (0, 1, 1)}
    assert rf(ws, run, 0.5, 0.4) == {("a", "cat"): (1, 0, 0)}
    # confidence exactly equal to c is kept, below is ignored
    assert rf(ws, run, 0.6, 0.4) == {("a", "cat"): (0, 0, 1)}


def test_rows_with_only_labels_or_only_predictions_and_true_negatives(ws):
    run = _setup(ws, _img("lab", "pred", "empty"), [("cat", "bbox"), ("dog", "bbox"), ("cow", "bbox")],
                 [{"data_row": "lab", "feature": "cat", "bbox": BOX}],
                 [{"data_row": "pred", "feature": "dog", "bbox": BOX, "confidence": 0.5}])
    # the derived ontology holds the features labelled or predicted (cat, dog): cow gives no TN
    tns = {k: row(ws, run, 0.0, 0.5, k)["tn"] for k in ("lab", "pred", "empty")}
    assert tns == {"lab": 1, "pred": 1, "empty": 2}
    M.set_ontology(ws, run, ["cat", "dog", "cow"])  # the model's ontology says cow too
    lab, pred, empty = (row(ws, run, 0.0, 0.5, k) for k in ("lab", "pred", "empty"))
    assert (lab["tp"], lab["fp"], lab["fn"], lab["tn"]) == (0, 0, 1, 2)
    assert lab["precision"] is None and lab["recall"] == 0.0 and lab["f1"] == 0.0 and lab["iou"] == 0.0
    assert (pred["tp"], pred["fp"], pred["fn"], pred["tn"]) == (0, 1, 0, 2)
    assert pred["precision"] == 0.0 and pred["recall"] is None
    assert (empty["tp"], empty["fp"], empty["fn"], empty["tn"]) == (0, 0, 0, 3)
    assert empty["precision"] is None and empty["iou"] is None and empty["conf_mean"] is None
    assert empty["n_predictions"] == 0 and empty["n_annotations"] == 0
    n = ws.sql(f"SELECT count(*) FROM {M.row_metrics_table(ws, run, 0.0, 0.5)}").fetchone()[0]
    assert n == 3  # every row of the run gets a result


def test_row_means_over_features_where_defined(ws):
    run = _setup(ws, _img("a"), [("cat", "bbox"), ("dog", "bbox")],
                 [{"data_row": "a", "feature": "cat", "bbox": [0, 0, 10, 10]},
                  {"data_row": "a", "feature": "dog", "bbox": [50, 50, 10, 10]}],
                 [{"data_row": "a", "feature": "cat", "bbox": [0, 0, 10, 10], "confidence": 0.9},
                  {"data_row": "a", "feature": "cat", "bbox": [30, 30, 5, 5], "confidence": 0.9}])
    # cat: tp 1, fp 1 (precision 0.5, recall 1); dog: fn 1 (precision undefined, recall 0)
    r = row(ws, run, 0.0, 0.5, "a")
    assert (r["tp"], r["fp"], r["fn"]) == (1, 1, 1)
    assert r["precision"] == 0.5  # mean over cat only
    assert r["recall"] == 0.5  # (1 + 0) / 2
    assert r["f1"] == pytest.approx((2 / 3 + 0) / 2)
    assert r["iou"] == pytest.approx((1.0 / 2 + 0) / 2)  # cat: (1 + 0) / max(2, 1); dog: 0
    fm = {f.feature: f.to_dict() for f in M.feature_metrics(ws, run, 0.0, 0.5).features}
    assert (fm["cat"]["tp"], fm["cat"]["fp"], fm["cat"]["fn"]) == (1, 1, 0)
    assert fm["dog"]["recall"] == 0.0 and fm["dog"]["precision"] is None


def test_radio_pairs_with_iou_one(ws):
    rows = _img("same", "diff", "lab")
    run = _setup(ws, rows, [("weather", "radio", ["sun", "rain"])],
                 [{"data_row": k, "feature": "weather", "answer": "sun"} for k in ("same", "diff", "lab")],
                 [{"data_row": "same", "feature": "weather", "answer": "sun", "confidence": 0.8},
                  {"data_row": "diff", "feature": "weather", "answer": "rain", "confidence": 0.8}])
    assert rf(ws, run, 0.0, 0.0) == {("same", "weather"): (1, 0, 0), ("diff", "weather"): (0, 1, 1),
                                      ("lab", "weather"): (0, 0, 1)}
    cm = M.confusion_matrix(ws, run, 0.0, 0.0)
    assert cell(cm, "weather: sun", "weather: sun") == 1 and cell(cm, "weather: sun", "weather: rain") == 1
    assert cell(cm, "weather: sun", "None") == 1
    assert row(ws, run, 0.0, 0.0, "diff")["iou"] == 0.0 and row(ws, run, 0.0, 0.0, "same")["iou"] == 1.0
    assert rf(ws, run, 0.0, 1.0)[("same", "weather")] == (0, 1, 1)  # IoU 1 is not above 1


def test_checklist_scores_each_option(ws):
    run = _setup(ws, _img("a"), [("tags", "checklist", ["a", "b", "c"])],
                 [{"data_row": "a", "feature": "tags", "answers": ["a", "b"]}],
                 [{"data_row": "a", "feature": "tags", "answers": ["b", "c"], "confidence": 0.9}])
    assert rf(ws, run, 0.0, 0.5) == {("a", "tags"): (1, 1, 1)}
    assert row(ws, run, 0.0, 0.5, "a")["iou"] == pytest.approx(1 / 3)  # |{b}| / |{a, b, c}|


def test_ner_spans_by_characters(ws):
    rows = [{"global_key": "t", "row_data": "x" * 40, "media_type": "text"}]
    run = _setup(ws, rows, [("person", "ner")], [{"data_row": "t", "feature": "person", "span": [0, 10]}],
                 [{"data_row": "t", "feature": "person", "span": [5, 15], "confidence": 0.7}])  # IoU 5/15
    assert rf(ws, run, 0.0, 0.3) == {("t", "person"): (1, 0, 0)}
    assert rf(ws, run, 0.0, 0.4) == {("t", "person"): (0, 1, 1)}
    assert row(ws, run, 0.0, 0.3, "t")["iou"] == pytest.approx(1 / 3)


def _lens_iou(d: float, r: float) -> float:
    a = 2 * r * r * np.arccos(d / (2 * r)) - d / 2 * np.sqrt(4 * r * r - d * d)
    return a / (2 * np.pi * r * r - a)


def test_points_and_polylines_are_buffered_by_the_radius(ws):
    run = _setup(ws, _img("a"), [("nose", "point"), ("lane", "polyline")],
                 [{"data_row": "a", "feature": "nose", "point": [100, 100]},
                  {"data_row": "a", "feature": "lane", "line": [[0, 0], [50, 50]]}],
                 [{"data_row": "a", "feature": "nose", "point": [120, 100], "confidence": 0.9},
                  {"data_row": "a", "feature": "lane", "line": [[0, 0], [50, 50]], "confidence": 0.9}])
    iou = row(ws, run, 0.0, 0.5, "a")["iou"]
    expect = (_lens_iou(20, 70) + 1.0) / 2  # circles of radius 70 px at 20 px: about 0.69
    assert iou == pytest.approx(expect, abs=2e-3)  # shapely approximates circles by polygons
    assert rf(ws, run, 0.0, 0.6) == {("a", "nose"): (1, 0, 0), ("a", "lane"): (1, 0, 0)}
    assert rf(ws, run, 0.0, 0.7)[("a", "nose")] == (0, 1, 1)
    # a smaller radius (a run setting) makes the same points overlap less
    M.set_grids(ws, run)  # no change
    ws.update_run_config(run, metrics_radius=15)
    assert M.job_status(ws, run).state == "stale"
    M.compute_metrics(ws, run)
    assert rf(ws, run, 0.0, 0.1)[("a", "nose")] == (1, 0, 0)  # 20 px apart, radius 15: IoU about 0.12
    assert rf(ws, run, 0.0, 0.2)[("a", "nose")] == (0, 1, 1)


def _rle(y0, y1, x0, x1, h=80, w=100):
    m = np.zeros((h, w), np.uint8)
    m[y0:y1, x0:x1] = 1
    r = mask_utils.encode(np.asfortranarray(m))
    return {"size": [h, w], "counts": r["counts"].decode()}


def test_masks_by_pixels(ws):
    run = _setup(ws, _img("a"), [("blob", "mask")], [{"data_row": "a", "feature": "blob", "mask": _rle(0, 10, 0, 10)}],
                 [{"data_row": "a", "feature": "blob", "mask": _rle(0, 10, 0, 5), "confidence": 0.9}])  # IoU 0.5
    assert rf(ws, run, 0.0, 0.5) == {("a", "blob"): (0, 1, 1)}
    assert rf(ws, run, 0.0, 0.45) == {("a", "blob"): (1, 0, 0)}
    assert row(ws, run, 0.0, 0.5, "a")["iou"] == pytest.approx(0.5)


def test_within_class_mode_does_not_match_across_classes(ws):
    run = _setup(ws, _img("a"), [("cat", "bbox"), ("dog", "bbox")],
                 [{"data_row": "a", "feature": "cat", "bbox": BOX}],
                 [{"data_row": "a", "feature": "dog", "bbox": BOX, "confidence": 0.9},
                  {"data_row": "a", "feature": "cat", "bbox": [10, 10, 20, 15], "confidence": 0.8}],
                 config={"metrics_matching": "within-class"})
    # class-agnostic would match the dog (IoU 1) first; within-class matches the cat (IoU 0.75)
    assert rf(ws, run, 0.0, 0.5) == {("a", "cat"): (1, 0, 0), ("a", "dog"): (0, 1, 0)}
    ws.update_run_config(run, metrics_matching="class-agnostic")
    M.compute_metrics(ws, run)
    assert rf(ws, run, 0.0, 0.5) == {("a", "cat"): (0, 1, 1), ("a", "dog"): (0, 1, 0)}


def test_pr_curve_and_f1_optimal_confidence(ws):
    gts = [{"data_row": "a", "feature": "cat", "bbox": [i * 20, 0, 10, 10]} for i in range(4)]
    preds = [{"data_row": "a", "feature": "cat", "bbox": [i * 20, 0, 10, 10], "confidence": c}
             for i, c in enumerate([0.95, 0.75, 0.55, 0.35])]
    preds += [{"data_row": "a", "feature": "cat", "bbox": [0, 50, 10, 10], "confidence": 0.85},
              {"data_row": "a", "feature": "cat", "bbox": [30, 50, 10, 10], "confidence": 0.15}]
    run = _setup(ws, _img("a"), [("cat", "bbox")], gts, preds)
    c = M.pr_curve(ws, run, feature="cat", iou=0.5)
    assert c.confidence[:10] == pytest.approx([i / 10 for i in range(10)])
    # at c = 0.5: kept 0.95, 0.85 (false), 0.75, 0.55 -> tp 3, fp 1, fn 1
    assert (c.tp[5], c.fp[5], c.fn[5]) == (3, 1, 1)
    assert c.precision[5] == 0.75 and c.recall[5] == 0.75
    # c = 0.2 and 0.3 keep the same predictions (tp 4, fp 1): F1 8/9; ties go to the higher confidence
    assert c.best_confidence == pytest.approx(0.3) and c.best_f1 == pytest.approx(8 / 9)
    # fine curve: after each distinct confidence, from the matching at the lowest grid confidence
    assert list(c.fine.confidence) == [0.95, 0.85, 0.75, 0.55, 0.35, 0.15]
    assert c.fine.precision == pytest.approx([1, 0.5, 2 / 3, 0.75, 0.8, 4 / 6])
    assert c.fine.recall == pytest.approx([0.25, 0.25, 0.5, 0.75, 1, 1])


def test_f1_optimal_confidence_per_class(ws):
    gts = [{"data_row": "a", "feature": "cat", "bbox": [0, 0, 10, 10]},
           {"data_row": "a", "feature": "dog", "bbox": [40, 40, 10, 10]}]
    preds = [{"data_row": "a", "feature": "cat", "bbox": [0, 0, 10, 10], "confidence": 0.45},
             {"data_row": "a", "feature": "cat", "bbox": [20, 20, 10, 10], "confidence": 0.25},
             {"data_row": "a", "feature": "dog", "bbox": [40, 40, 10, 10], "confidence": 0.85}]
    run = _setup(ws, _img("a"), [("cat", "bbox"), ("dog", "bbox")], gts, preds)
    # cat: F1 1 for c in (0.25, 0.45] -> 0.3 and 0.4 of the grid: the higher wins; dog: up to 0.8
    assert M.f1_optimal_confidences(ws, run).confidences == {"cat": pytest.approx(0.4), "dog": pytest.approx(0.8)}


def test_masks_compare_with_polygons_and_boxes_by_pixels(ws):
    ws.create_feature("blob", "mask")
    run = _setup(ws, _img("a"), [("poly", "polygon"), ("box", "bbox")],
                 [{"data_row": "a", "feature": "poly", "polygon": [[0, 0], [20, 0], [20, 20], [0, 20]]},
                  {"data_row": "a", "feature": "box", "bbox": [50, 40, 20, 20]}],
                 [{"data_row": "a", "feature": "blob", "mask": _rle(0, 20, 0, 12), "confidence": 0.9},
                  {"data_row": "a", "feature": "blob", "mask": _rle(40, 60, 50, 70), "confidence": 0.8}])
    # references from pycocotools' own rasterisation, computed here
    poly = mask_utils.merge(mask_utils.frPyObjects([[0, 0, 20, 0, 20, 20, 0, 20]], 80, 100))
    box = mask_utils.merge(mask_utils.frPyObjects([[50, 40, 50, 60, 70, 60, 70, 40]], 80, 100))
    p1 = {"size": [80, 100], "counts": _rle(0, 20, 0, 12)["counts"].encode()}
    p2 = {"size": [80, 100], "counts": _rle(40, 60, 50, 70)["counts"].encode()}
    i1 = float(mask_utils.iou([p1], [poly], [0])[0][0])
    i2 = float(mask_utils.iou([p2], [box], [0])[0][0])
    assert 0.5 < i1 < 0.7 and i2 > 0.8
    cm = M.confusion_matrix(ws, run, 0.0, i1 - 1e-6)
    assert cell(cm, "poly", "blob") == 1 and cell(cm, "box", "blob") == 1
    cm = M.confusion_matrix(ws, run, 0.0, i1)
    assert cell(cm, "poly", "None") == 1 and cell(cm, "box", "blob") == 1
