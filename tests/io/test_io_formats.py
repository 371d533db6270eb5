"""Each format on small hand-made inputs: Labelbox NDJSON written by Labelbox's own serializer, tabular
classification (CSV and Parquet), VOC XML, YOLO polygons and txt predictions, data-row lists."""

from __future__ import annotations

import json

import numpy as np
import pytest

from slicewise.io import (
    import_ndjson,
    import_rows,
    import_table,
    import_voc,
    import_yolo,
    import_yolo_predictions,
)


@pytest.fixture
def rows(ws):
    ws.add_data_rows("mix", [{"global_key": "img1", "row_data": "img1.jpg", "width": 100, "height": 80},
                             {"global_key": "t1", "row_data": "Alice met Bob in Paris.", "media_type": "text"}])
    return ws


def _labelbox_ndjson(path, confidence: float | None):
    lb = pytest.importorskip("labelbox.types")
    from labelbox.data.serialization import NDJsonConverter

    c = {"confidence": confidence} if confidence is not None else {}
    mask = np.zeros((80, 100), np.uint8)
    mask[5:15, 5:15] = 1
    anns = [
        lb.ObjectAnnotation(name="car", value=lb.Rectangle(start=lb.Point(x=10, y=20), end=lb.Point(x=50, y=60)), **c),
        lb.ObjectAnnotation(name="roof", value=lb.Polygon(points=[lb.Point(x=1, y=1), lb.Point(x=20, y=1),
                                                                  lb.Point(x=20, y=30)]), **c),
        lb.ObjectAnnotation(name="kp", value=lb.Point(x=5, y=6), **c),
        lb.ObjectAnnotation(name="lane", value=lb.Line(points=[lb.Point(x=1, y=1), lb.Point(x=20, y=30)]), **c),
        lb.ObjectAnnotation(name="blob", value=lb.Mask(mask=lb.MaskData.from_2D_arr(mask), color=(1, 1, 1)), **c),
        lb.ClassificationAnnotation(name="weather", value=lb.Radio(answer=lb.ClassificationAnswer(name="sunny", **c))),
        lb.ClassificationAnnotation(name="tags", value=lb.Checklist(answer=[
            lb.ClassificationAnswer(name="a", **c), lb.ClassificationAnswer(name="b", **c)])),
    ]
    labels = [lb.Label(data={"global_key": "img1"}, annotations=anns),
              lb.Label(data={"global_key": "t1"}, annotations=[
                  lb.ObjectAnnotation(name="person", value=lb.TextEntity(start=0, end=5), **c)])]
    path.write_text("\n".join(json.dumps(x) for x in NDJsonConverter.serialize(labels)) + "\n")
    return path


def test_labelbox_ndjson_from_labelboxs_own_serializer(rows, tmp_path):
    ws = rows
    for name, kind, opts in [("car", "bbox", None), ("roof", "polygon", None), ("kp", "point", None),
                             ("lane", "polyline", None), ("blob", "mask", None), ("person", "ner", None),
                             ("weather", "radio", ["sunny", "rain"]), ("tags", "checklist", ["a", "b", "c"])]:
        ws.create_feature(name, kind, opts)
    gt = _labelbox_ndjson(tmp_path / "gt.ndjson", None)
    res = import_ndjson(ws, gt)
    assert res.annotations == 9 and not res.rejected
    by = {a["feature"]: a for a in ws.annotations()}
    assert by["car"]["bbox"] == [10.0, 20.0, 40.0, 40.0]
    assert by["roof"]["polygon"] == [[[1.0, 1.0], [20.0, 1.0], [20.0, 30.0]]]
    assert by["kp"]["point"] == [5.0, 6.0]
    assert by["lane"]["line"] == [[1.0, 1.0], [20.0, 30.0]]
    assert by["blob"]["area"] == 100 and by["blob"]["bbox"] == [5.0, 5.0, 10.0, 10.0]
    assert by["person"]["span"] == [0, 5]
    assert by["weather"]["answer"] == "sunny"
    assert sorted(a["answer"] for a in ws.annotations() if a["feature"] == "tags") == ["a", "b"]
    # the same file again replaces, never duplicates
    again = import_ndjson(ws, gt)
    assert (again.annotations, again.replaced, ws.counts()["annotations"]) == (9, 9, 9)
    # predictions with confidences, from the same serializer
    pred = import_ndjson(ws, _labelbox_ndjson(tmp_path / "pred.ndjson", 0.25), run="m/v1")
    assert pred.predictions == 9
    assert {p["confidence"] for p in ws.predictions("m/v1")} == {0.25}


def test_ndjson_mask_from_a_local_png_with_a_colour(rows, tmp_path):
    from PIL import Image

    ws = rows
    img = np.zeros((80, 100, 3), np.uint8)
    img[10:20, 30:35] = (255, 0, 0)
    img[50:60, 50:60] = (0, 255, 0)  # another instance in the same PNG
    Image.fromarray(img).save(tmp_path / "m.png")
    line = {"dataRow": {"globalKey": "img1"}, "name": "blob", "mask": {"instanceURI": "m.png", "colorRGB": [255, 0, 0]}}
    (tmp_path / "a.ndjson").write_text(json.dumps(line) + "\n")
    res = import_ndjson(ws, tmp_path / "a.ndjson", create_features=True)
    [m] = ws.annotations()
    assert res.annotations == 1 and ws.feature("blob").kind == "mask" and m["area"] == 50 and m["bbox"] == [30.0, 10.0, 5.0, 10.0]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_tabular_classification(ws, tmp_path, fmt):
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    t = pa.table({"key": ["r1", "r2", "r3"], "label": ["cat", "dog", None], "pred": ["cat", "cat", "dog"],
                  "conf": [0.9, 0.55, 0.8], "prob_cat": [0.9, 0.55, 0.2], "prob_dog": [0.1, 0.45, 0.8],
                  "site": ["a", "b", "a"], "lux": [1.5, 2.0, 3.0]})
    path = tmp_path / f"t.{fmt}"
    (pq.write_table if fmt == "parquet" else pcsv.write_csv)(t, path)
    res = import_table(ws, path, run="clf/v1", key="key", label="label", prediction="pred", confidence="conf",
                       probabilities="prob_")
    assert (res.data_rows, res.annotations, res.predictions) == (3, 2, 3)
    assert ws.feature("class").options == ["cat", "dog"] and ws.feature("class").kind == "radio"
    [p] = ws.predictions("clf/v1", "r2")
    assert (p["answer"], p["confidence"], p["probabilities"]) == ("cat", 0.55, [0.55, 0.45])
    assert ws.data_row("r2").metadata == {"site": "b", "lux": 2.0}
    assert [a["answer"] for a in ws.annotations("r1")] == ["cat"] and ws.annotations("r3") == []


def test_voc_xml(ws, tmp_path):
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / "x.xml").write_text("""<annotation><filename>x.jpg</filename>
      <size><width>200</width><height>100</height><depth>3</depth></size>
      <object><name>dog</name><difficult>0</difficult><bndbox><xmin>10</xmin><ymin>20</ymin><xmax>60</xmax>
      <ymax>90</ymax></bndbox></object>
      <object><name>potted plant</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object>
    </annotation>""")
    res = import_voc(ws, tmp_path, dataset="voc")
    assert (res.data_rows, res.annotations) == (1, 2)
    row = ws.data_row("x.jpg")
    assert (row.width, row.height) == (200, 100)
    assert {a["feature"]: a["bbox"] for a in ws.annotations()} == {"dog": [10.0, 20.0, 50.0, 70.0],
                                                                   "potted plant": [1.0, 2.0, 2.0, 2.0]}


def test_yolo_polygons_and_txt_predictions(ws, tmp_path):
    from PIL import Image

    root = tmp_path / "y"
    for split in ("train", "valid"):
        (root / split / "images").mkdir(parents=True)
        (root / split / "labels").mkdir(parents=True)
    Image.new("RGB", (200, 100)).save(root / "train/images/p.jpg")
    Image.new("RGB", (50, 40)).save(root / "valid/images/q.png")
    (root / "data.yaml").write_text("names: {0: leaf, 1: stem}\ntrain: ../train/images\nval: valid/images\n")
    (root / "train/labels/p.txt").write_text("0 0.1 0.1 0.5 0.1 0.5 0.9\n1 0.5 0.5 0.2 0.4\n")
    res = import_yolo(ws, root)
    assert (res.data_rows, res.annotations) == (2, 2)
    by = {a["feature"]: a for a in ws.annotations("p.jpg")}
    assert by["leaf"]["polygon"] == [[[20.0, 10.0], [100.0, 10.0], [100.0, 90.0]]]
    assert by["stem"]["bbox"] == [80.0, 30.0, 40.0, 40.0]
    assert {f.name: f.kind for f in ws.features()} == {"leaf": "polygon", "stem": "bbox"}
    assert ws.data_row("q.png").split == "valid"
    preds = tmp_path / "preds"
    preds.mkdir()
    (preds / "q.txt").write_text("1 0.5 0.5 0.5 0.5 0.66\n")
    out = import_yolo_predictions(ws, preds, "yolo/v1")
    assert out.predictions == 1
    [p] = ws.predictions("yolo/v1")
    assert (p["feature"], p["confidence"], p["bbox"]) == ("stem", 0.66, [12.5, 10.0, 25.0, 20.0])


def test_data_rows_in_labelboxs_shape(ws, tmp_path):
    rows = [{"row_data": "https://x/1.jpg", "global_key": "k1", "media_type": "IMAGE",
             "metadata_fields": [{"name": "camera", "value": "c1"}]},
            {"rowData": "some text", "globalKey": "k2", "mediaType": "TEXT", "split": "test", "tags": ["hard"]}]
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    res = import_rows(ws, tmp_path / "rows.json", dataset="d")
    assert res.data_rows == 2
    assert ws.data_row("k1").metadata == {"camera": "c1"}
    k2 = ws.data_row("k2")
    assert (k2.media_type, k2.split, k2.tags) == ("text", "test", ["hard"])
    assert import_rows(ws, tmp_path / "rows.json", dataset="d").data_rows_skipped == 2
