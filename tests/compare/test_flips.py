"""Object flips between two runs on hand-built rows: one of each type, and none where nothing changed.

| row | label | baseline            | run                      | flip    |
|-----|-------|---------------------|--------------------------|---------|
| a   | cat   | TP (IoU 1)          | no prediction: FN        | tp->fn  |
| b   | cat   | FN                  | TP                       | fn->tp  |
| c   | cat   | TP                  | dog on it: confusion     | class   |
| d   | cat   | TP (IoU 1)          | TP (IoU 0.7)             | iou     |
| e   | -     | cat FP              | nothing                  | fp-gone |
| f   | -     | nothing             | two dog FPs              | fp-new  x2 |
| g   | cat   | TP                  | TP, same box             | none    |
| h   | cat   | in the baseline only                           | left out |
| i   | -     | in the run only                                | left out |
"""

from __future__ import annotations

import pytest

import slicewise.compare as C
from slicewise.errors import QueryError


def test_every_flip_type(pair):
    ws, base, new = pair
    got = C.flipped_objects(ws, base, new, confidence=0.5, iou=0.5)
    assert [(o["global_key"], o["flip"]) for o in got] == [("a", "tp->fn"), ("b", "fn->tp"), ("c", "class"),
                                                           ("d", "iou")]
    c = next(o for o in got if o["global_key"] == "c")
    assert (c["baseline"]["outcome"], c["baseline"]["class"]) == ("TP", "cat")
    assert (c["run"]["outcome"], c["run"]["class"]) == ("confusion", "dog")
    d = next(o for o in got if o["global_key"] == "d")
    assert d["baseline"]["iou"] == pytest.approx(1.0) and d["run"]["iou"] == pytest.approx(0.7)
    assert [o["global_key"] for o in C.flipped_objects(ws, base, new, confidence=0.5, iou=0.5, flip="tp-fn")] == ["a"]
    # a larger iou_delta: d's IoU move no longer counts
    assert "d" not in [o["global_key"] for o in C.flipped_objects(ws, base, new, confidence=0.5, iou=0.5, iou_delta=0.35)]
    with pytest.raises(QueryError, match="not a label flip"):
        C.flipped_objects(ws, base, new, flip="fp-new")


def test_flip_counts_and_rows(pair):
    ws, base, new = pair
    cmp = C.compare_runs(ws, base, new, confidence=0.5, iou=0.5, n_boot=200)
    assert cmp.flips == {"tp->fn": 1, "fn->tp": 1, "fp-new": 2, "fp-gone": 1, "class": 1, "iou": 1}
    assert (cmp.rows, cmp.only_baseline, cmp.only_run) == (7, 1, 1)
    by = {g.name: g for g in cmp.classes}
    assert by["cat"].flips == {"tp->fn": 1, "fn->tp": 1, "fp-new": 0, "fp-gone": 1, "class": 1, "iou": 1}
    assert by["dog"].flips["fp-new"] == 2
    t = C.flips_table(ws, base, new, 0.5, 0.5)
    rows = {ws.sql(f"SELECT global_key FROM data_rows WHERE id = {r[0]}").fetchone()[0]: r[1:]
            for r in ws.sql(f"SELECT data_row_id, sum(tp_fn), sum(fn_tp), sum(fp_new), sum(fp_gone), "
                            f"sum(class_changed), sum(iou_moved) FROM {t} GROUP BY 1").fetchall()}
    assert rows == {"a": (1, 0, 0, 0, 0, 0), "b": (0, 1, 0, 0, 0, 0), "c": (0, 0, 0, 0, 1, 0), "d": (0, 0, 0, 0, 0, 1),
                    "e": (0, 0, 0, 1, 0, 0), "f": (0, 0, 2, 0, 0, 0)}


def test_radio_flips_compare_answers_not_class_ids(ws):
    """A radio answer's class id is given per run (in the order answers appear): flips compare names."""
    from slicewise import metrics as M

    keys = ["r1", "r2", "r3", "r4"]
    ws.add_data_rows("d", [{"global_key": k, "row_data": k} for k in keys])
    ws.create_feature("digit", "radio", ["0", "1", "2"])
    ws.add_annotations([{"data_row": k, "feature": "digit", "answer": "1"} for k in keys])
    base, new = ws.create_run("m", "base"), ws.create_run("m", "new")
    ws.add_predictions(base, [{"data_row": k, "feature": "digit", "answer": a, "confidence": 0.9}
                              for k, a in zip(keys, ["1", "2", "1", "0"], strict=True)])
    ws.add_predictions(new, [{"data_row": k, "feature": "digit", "answer": a, "confidence": 0.9}  # "2" appears first
                             for k, a in reversed(list(zip(keys, ["1", "2", "2", "2"], strict=True)))])
    M.compute_metrics(ws, base)
    M.compute_metrics(ws, new)
    got = C.flipped_objects(ws, base, new, confidence=0.5, iou=0.5)
    assert [(o["global_key"], o["flip"], o["baseline"]["class"], o["run"]["class"]) for o in got] == [
        ("r3", "class", "digit: 1", "digit: 2"), ("r4", "class", "digit: 0", "digit: 2")]
    assert got[0]["baseline"]["outcome"] == "TP" and got[0]["run"]["outcome"] == "confusion"
