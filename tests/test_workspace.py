"""The Workspace SDK: round trips, idempotency, typed metadata, tags, splits, and refusals that change nothing."""

from __future__ import annotations

from datetime import datetime

import pytest

import slicewise
from slicewise import ConflictError, NotFoundError, ValidationError


def _rows(n: int, prefix: str = "img") -> list[dict]:
    return [{"global_key": f"{prefix}{i}", "row_data": f"{prefix}{i}.jpg", "width": 100, "height": 80,
             "split": "valid" if i % 2 else "train", "metadata": {"camera": f"cam-{i % 3}", "lux": i * 1.5}}
            for i in range(n)]


def test_data_rows_round_trip_with_metadata_tags_and_splits(ws):
    res = ws.add_data_rows("pets", _rows(4))
    assert (res.inserted, res.skipped) == (4, 0)
    row = ws.data_row("img3")
    assert (row.dataset, row.split, row.width, row.height) == ("pets", "valid", 100, 80)
    assert row.metadata == {"camera": "cam-0", "lux": 4.5}
    assert ws.metadata_fields() == {"camera": {"kind": "string", "options": None},
                                    "lux": {"kind": "number", "options": None}}
    assert ws.add_tags(["img1", "img3"], ["re-label"]) == 2
    assert ws.add_tags(["img1"], ["re-label"]) == 0  # already tagged
    assert ws.tags() == {"re-label": 2}
    assert ws.remove_tags(["img1"], ["re-label"]) == 1
    assert ws.data_row("img3").tags == ["re-label"] and ws.data_row("img1").tags == []
    assert ws.set_split(["img0", "img1"], "test") == 2
    assert [r.split for r in ws.data_rows(keys=["img0", "img1", "img2"])] == ["test", "test", "train"]


def test_adding_the_same_rows_again_is_idempotent(ws):
    ws.add_data_rows("pets", _rows(3))
    again = ws.add_data_rows("pets", _rows(5))
    assert (again.inserted, again.skipped) == (2, 3)
    assert ws.counts()["data_rows"] == 5


def test_typed_metadata_enum_datetime_and_updates(ws):
    ws.define_metadata("weather", "enum", ["sunny", "rainy"])
    ws.add_data_rows("d", [{"global_key": "a", "row_data": "a.png",
                            "metadata": {"weather": "sunny", "taken": datetime(2024, 5, 1, 12)}}])
    assert ws.data_row("a").metadata == {"taken": datetime(2024, 5, 1, 12), "weather": "sunny"}
    with pytest.raises(ValidationError, match=r"metadata\.weather.*use one of: sunny, rainy"):
        ws.add_data_rows("d", [{"global_key": "b", "row_data": "b.png", "metadata": {"weather": "foggy"}}])
    ws.update_metadata({"a": {"weather": "rainy", "taken": None}})
    assert ws.data_row("a").metadata == {"weather": "rainy"}
    with pytest.raises(ValidationError, match="not a valid number"):
        ws.add_data_rows("d", [{"global_key": "c", "row_data": "c.png", "metadata": {"lux": 3}},
                               {"global_key": "e", "row_data": "e.png", "metadata": {"lux": "bright"}}])
    assert ws.counts()["data_rows"] == 1  # the valid row of the failed batch was not written either


def test_bad_data_rows_are_refused_together_and_change_nothing(ws, table_snapshot):
    ws.add_data_rows("d", _rows(2))
    before = table_snapshot(ws)
    bad = [{"global_key": "x", "row_data": "x.jpg", "split": "holdout"},
           {"global_key": "", "row_data": "y.jpg"},
           {"global_key": "z", "row_data": "z.jpg"}, {"global_key": "z", "row_data": "z2.jpg"},
           {"global_key": "t", "row_data": "hello", "media_type": "video"}]
    with pytest.raises(ValidationError) as err:
        ws.add_data_rows("d", bad)
    msg = str(err.value)
    assert "row 0 [split]: unknown split 'holdout'" in msg
    assert "row 1 [global_key]: missing global key" in msg
    assert "row 3 [global_key]: duplicate global key 'z'" in msg
    assert "row 4 [media_type]: unknown media type 'video'" in msg
    assert table_snapshot(ws) == before
    res = ws.add_data_rows("d", bad, skip_invalid=True)
    assert res.inserted == 1 and len(res.rejected) == 4


def test_annotations_and_predictions_of_every_kind_round_trip(ws):
    import numpy as np
    from pycocotools import mask as mask_utils

    ws.add_data_rows("d", [{"global_key": "img", "row_data": "img.png", "width": 20, "height": 10},
                           {"global_key": "doc", "row_data": "The cat sat.", "media_type": "text"}])
    for name, kind, opts in [("box", "bbox", None), ("poly", "polygon", None), ("m", "mask", None),
                             ("road", "polyline", None), ("kp", "point", None), ("animal", "ner", None),
                             ("weather", "radio", ["sunny", "rainy"]), ("attrs", "checklist", ["a", "b", "c"])]:
        ws.create_feature(name, kind, opts)
    m = np.zeros((10, 20), np.uint8, order="F")
    m[2:5, 3:9] = 1
    rle = mask_utils.encode(m)
    res = ws.add_annotations([
        {"data_row": "img", "feature": "box", "bbox": [1, 2, 3, 4]},
        {"data_row": "img", "feature": "poly", "polygon": [[0, 0], [4, 0], [4, 4]]},
        {"data_row": "img", "feature": "m", "mask": {"size": [10, 20], "counts": rle["counts"].decode()}},
        {"data_row": "img", "feature": "road", "line": [[0, 0], [5, 5], [9, 1]]},
        {"data_row": "img", "feature": "kp", "point": [3, 4]},
        {"data_row": "doc", "feature": "animal", "span": [4, 7]},
        {"data_row": "img", "feature": "weather", "answer": "sunny"},
        {"data_row": "img", "feature": "attrs", "answers": ["a", "c"]},
    ])
    assert res.inserted == 9  # the checklist's two ticked options are two objects
    got = {(a["feature"], a.get("answer")): a for a in ws.annotations()}
    assert got[("box", None)]["bbox"] == [1, 2, 3, 4]
    assert got[("poly", None)]["polygon"] == [[[0, 0], [4, 0], [4, 4]]]
    assert got[("m", None)]["bbox"] == [3, 2, 6, 3] and got[("m", None)]["area"] == 18
    assert got[("road", None)]["line"] == [[0, 0], [5, 5], [9, 1]]
    assert got[("kp", None)]["point"] == [3, 4]
    assert got[("animal", None)]["span"] == [4, 7]
    assert {k for k in got if k[0] in ("weather", "attrs")} == {("weather", "sunny"), ("attrs", "a"), ("attrs", "c")}
    run = ws.create_run("m1", "r1")
    ws.add_predictions(run, [{"data_row": "img", "feature": "weather", "answer": "rainy",
                              "probabilities": [0.3, 0.7], "confidence": 0.7},
                             {"data_row": "img", "feature": "box", "bbox": [1, 2, 3, 4]}])
    preds = {p["feature"]: p for p in ws.predictions(run)}
    assert preds["weather"]["probabilities"] == [0.3, 0.7] and preds["weather"]["confidence"] == 0.7
    assert preds["box"]["confidence"] == 1.0  # a missing confidence means 1.0
    assert ws.sql("SELECT count(*) FROM run_rows WHERE run_id = ?", [run.id]).fetchone()[0] == 1


@pytest.mark.parametrize(("record", "message"), [
    ({"data_row": "nope", "feature": "box", "bbox": [1, 1, 2, 2]}, "annotation for unknown data row 'nope'"),
    ({"data_row": "img", "feature": "bx", "bbox": [1, 1, 2, 2]}, "unknown class 'bx' (fix: did you mean 'box'?)"),
    ({"data_row": "img", "feature": "box", "bbox": [1, 1, 0, 2]}, "box has width 0 and height 2"),
    ({"data_row": "img", "feature": "box", "bbox": [1, float("nan"), 3, 2]}, "NaN or infinite"),
    ({"data_row": "img", "feature": "box", "polygon": [[0, 0], [1, 1]]}, "polygon has 2 points"),
    ({"data_row": "img", "feature": "box", "point": [1, 2]}, "'box' is a bbox feature, not point"),
    ({"data_row": "doc", "feature": "animal", "span": [4, 70]}, "outside the text (12 characters)"),
    ({"data_row": "img", "feature": "weather", "answer": "foggy"}, "not an option of 'weather'"),
    ({"data_row": "img", "feature": "box", "bbox": [1, 1, 2, 2], "confidence": 0.5},
     "ground truth cannot have a confidence"),
    ({"data_row": "img", "feature": "m", "mask": {"size": [5, 5], "counts": [25]}},
     "RLE size [5, 5] differs from the image's [10, 20]"),
])
def test_bad_objects_are_refused_with_a_located_message_and_change_nothing(ws, table_snapshot, record, message):
    ws.add_data_rows("d", [{"global_key": "img", "row_data": "img.png", "width": 20, "height": 10},
                           {"global_key": "doc", "row_data": "The cat sat.", "media_type": "text"}])
    ws.create_feature("box", "bbox")
    ws.create_feature("m", "mask")
    ws.create_feature("animal", "ner")
    ws.create_feature("weather", "radio", ["sunny", "rainy"])
    ws.add_annotations([{"data_row": "img", "feature": "box", "bbox": [0, 0, 5, 5]}], source="first")
    before = table_snapshot(ws)
    with pytest.raises(ValidationError) as err:
        ws.add_annotations([{**record, "location": "file.json:7"}])
    assert message in str(err.value)
    assert "file.json:7" in str(err.value)
    assert table_snapshot(ws) == before


def test_prediction_confidence_outside_unit_interval_is_refused(ws, table_snapshot):
    ws.add_data_rows("d", [{"global_key": "img", "row_data": "img.png"}])
    ws.create_feature("box", "bbox")
    run = ws.create_run("m", "r")
    before = table_snapshot(ws)
    for conf, msg in [(1.5, "confidence 1.5 is outside [0, 1]"), (float("inf"), "inf is outside")]:
        with pytest.raises(ValidationError, match=msg.replace("[", r"\[").replace("]", r"\]")):
            ws.add_predictions(run, [{"data_row": "img", "feature": "box", "bbox": [0, 0, 1, 1], "confidence": conf}])
    assert table_snapshot(ws) == before


def test_objects_from_the_same_source_are_replaced_so_reimport_is_idempotent(ws):
    ws.add_data_rows("d", [{"global_key": "img", "row_data": "img.png"}])
    recs = [{"data_row": "img", "feature": "box", "bbox": [0, 0, 2, 2]}, {"data_row": "img", "feature": "box", "bbox": [3, 3, 2, 2]}]
    ws.add_annotations(recs, source="coco:a.json", create_features=True)
    rev = ws.sql("SELECT label_rev FROM data_rows").fetchone()[0]
    res = ws.add_annotations(recs, source="coco:a.json")
    assert (res.inserted, res.replaced) == (2, 2)
    ws.add_annotations(recs[:1], source="other")
    assert ws.counts()["annotations"] == 3
    assert ws.sql("SELECT label_rev FROM data_rows").fetchone()[0] == rev + 2  # stale marker for metrics


def test_skip_invalid_keeps_the_good_records_and_reports_the_rest(ws):
    ws.add_data_rows("d", [{"global_key": "img", "row_data": "img.png"}])
    ws.create_feature("box", "bbox")
    res = ws.add_annotations([{"data_row": "img", "feature": "box", "bbox": [0, 0, 2, 2], "location": "a:1"},
                              {"data_row": "img", "feature": "box", "bbox": [0, 0, -2, 2], "location": "a:2"},
                              {"data_row": "img", "feature": "box", "location": "a:3"}], skip_invalid=True)
    assert res.inserted == 1
    assert sorted(p.location for p in res.rejected) == ["a:2", "a:3"]


def test_self_intersecting_polygon_is_kept_with_a_warning(ws):
    ws.add_data_rows("d", [{"global_key": "img", "row_data": "img.png"}])
    ws.create_feature("p", "polygon")
    res = ws.add_annotations([{"data_row": "img", "feature": "p", "polygon": [[0, 0], [4, 4], [4, 0], [0, 4]]}])
    assert res.inserted == 1
    assert "Self-intersection" in str(res.warnings[0]) and "make_valid" in str(res.warnings[0])


def test_names_lookups_and_conflicts(ws):
    ws.create_dataset("a")
    with pytest.raises(ConflictError, match="dataset 'a' already exists"):
        ws.create_dataset("a")
    assert ws.create_dataset("a", exist_ok=True).name == "a"
    with pytest.raises(NotFoundError, match="did you mean 'a'"):
        ws.dataset("aa")
    ws.create_feature("car", "bbox")
    with pytest.raises(ConflictError, match="already exists as a bbox"):
        ws.create_feature("car", "polygon")
    run = ws.create_run("det", "v1", {"iou_grid": [0.5]})
    assert ws.run("det/v1") == ws.run(run.id) == ws.run("v1") == run
    with pytest.raises(ConflictError):
        ws.create_run("det", "v1")
    assert ws.update_run_config(run, radius=10).config == {"iou_grid": [0.5], "radius": 10}
    with pytest.raises(NotFoundError, match="no model run 'det/v2'"):
        ws.run("det/v2")


def test_workspace_persists_and_read_only_refuses_writes(tmp_path):
    path = tmp_path / "w.duckdb"
    with slicewise.open(path) as w:
        w.add_data_rows("d", _rows(2))
    with slicewise.open(path, read_only=True) as r:
        assert r.counts()["data_rows"] == 2
        with pytest.raises(slicewise.StoreError, match="read-only"):
            r.add_tags(["img0"], ["x"])
    with pytest.raises(slicewise.StoreError, match="no workspace here"):
        slicewise.open(tmp_path / "missing.duckdb", read_only=True)


def test_public_api_is_curated():
    assert sorted(slicewise.__all__) == sorted(set(slicewise.__all__))
    for name in slicewise.__all__:
        assert hasattr(slicewise, name), name
    assert issubclass(slicewise.ValidationError, slicewise.SlicewiseError)
    assert issubclass(slicewise.NotFoundError, slicewise.SlicewiseError)


def test_run_rows_include_rows_added_without_predictions(ws):
    ws.add_data_rows("d", [{"global_key": k, "row_data": f"{k}.png"} for k in ("a", "b", "c")])
    run = ws.create_run("m", "r")
    ws.add_predictions(run, [{"data_row": "a", "feature": "box", "bbox": [0, 0, 1, 1]}], create_features=True)
    assert ws.add_run_rows(run, ["a", "b"]) == 1
    with pytest.raises(NotFoundError, match="'zz'"):
        ws.add_run_rows(run, ["c", "zz"])
    assert ws.add_run_rows(run, ["c", "zz"], skip_unknown=True) == 1
    rows = ws.sql("SELECT data_row_id FROM run_rows WHERE run_id = ? ORDER BY 1", [run.id]).fetchall()
    assert [r[0] for r in rows] == [1, 2, 3]
