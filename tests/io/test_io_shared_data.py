"""The three shared sets import through the CLI with exact counts; COCO exports back identically."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import slicewise
from slicewise.cli import app

runner = CliRunner()


def _cli(*args: str) -> str:
    res = runner.invoke(app, list(args), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


def _count(ws, sql: str, params=()) -> int:
    return ws.sql(sql, list(params)).fetchone()[0]


def test_indoor_85_through_the_cli(shared_data, tmp_path):
    w = str(tmp_path / "w.duckdb")
    out = _cli("import", "indoor", str(shared_data / "indoor-85"), "-w", w, "--run", "detector/yolo")
    assert "85 data rows" in out
    with slicewise.open(w) as ws:
        assert _count(ws, "SELECT count(*) FROM data_rows") == 85
        assert _count(ws, "SELECT count(*) FROM annotations WHERE kind = 'bbox'") == 686
        assert _count(ws, "SELECT count(*) FROM predictions p JOIN model_runs r ON r.id = p.run_id "
                          "WHERE r.name = 'yolo'") == 494
        # every image of the folder is in the run, also the one without a detection (its labels are FNs)
        assert _count(ws, "SELECT count(*) FROM run_rows") == 85
        # sizes read from the images; a box as x, y, w, h from `left top right bottom`
        assert _count(ws, "SELECT count(*) FROM data_rows WHERE width = 640 OR height = 640") > 0
        [box] = [a for a in ws.annotations("2007_000027.jpg") if a["feature"] == "pictureframe"]
        assert box["bbox"] == [176.0, 206.0, 49.0, 60.0]
        [p] = [p for p in ws.predictions("detector/yolo", "2007_000027.jpg") if p["feature"] == "tvmonitor"]
        assert p["confidence"] == 0.471781 and p["bbox"] == [0.0, 13.0, 174.0, 231.0]
    # idempotent: the same import again changes no count
    _cli("import", "indoor", str(shared_data / "indoor-85"), "-w", w, "--run", "detector/yolo")
    with slicewise.open(w) as ws:
        assert ws.counts()["annotations"] == 686 and ws.counts()["predictions"] == 494
        assert ws.counts()["data_rows"] == 85


def test_cat_dog_yolo_export_and_predictions(shared_data, tmp_path):
    w = str(tmp_path / "w.duckdb")
    _cli("import", "yolo", str(shared_data / "cat-dog"), "-w", w)
    _cli("import", "yolo-predictions", str(shared_data / "cat-dog/predictions/valid-yolov8.json"), "-w", w,
         "--run", "yolov8/valid")
    with slicewise.open(w) as ws:
        splits = dict(ws.sql("SELECT split, count(*) FROM data_rows GROUP BY 1").fetchall())
        assert splits == {"train": 158, "valid": 20, "test": 11}
        assert _count(ws, "SELECT count(*) FROM annotations a JOIN data_rows r ON r.id = a.data_row_id "
                          "WHERE r.split = 'valid'") == 42
        assert ws.counts()["predictions"] == 88
        assert {f.name: f.external_id for f in ws.features()} == {"cat": "0", "dog": "1"}
        # the first label line of an image, denormalised with the size Pillow read
        from PIL import Image

        key = "-703-2048x1070-0_jpg.rf.fc5786420b6ac07616cd09c9e1908f98.jpg"
        row = ws.data_row(key)
        with Image.open(shared_data / "cat-dog/valid/images" / key) as im:
            assert (row.width, row.height) == im.size
        cx, cy, bw, bh = 0.15546875, 0.5453125, 0.23984375, 0.8578125
        want = [(cx - bw / 2) * row.width, (cy - bh / 2) * row.height, bw * row.width, bh * row.height]
        got = [a["bbox"] for a in ws.annotations(key)]
        assert any(all(abs(g - v) < 1e-9 for g, v in zip(b, want, strict=True)) for b in got)
        preds = json.loads((shared_data / "cat-dog/predictions/valid-yolov8.json").read_text())
        first = ws.predictions("yolov8/valid", key)
        assert sorted(p["confidence"] for p in first) == sorted(
            p["score"] for p in preds if p["image_id"] + ".jpg" == key)


def _load_coco(path):
    import contextlib
    import io

    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


def test_coco_val2014_100_round_trip(shared_data, tmp_path):
    d = shared_data / "coco-val2014-100"
    w = str(tmp_path / "w.duckdb")
    _cli("import", "coco", str(d / "instances_val2014_100.json"), "-w", w)
    _cli("import", "coco-results", str(d / "instances_val2014_fakebbox100_results.json"), "-w", w, "-r", "fake/bbox")
    _cli("import", "coco-results", str(d / "instances_val2014_fakesegm100_results.json"), "-w", w, "-r", "fake/segm")
    with slicewise.open(w) as ws:
        assert ws.counts()["data_rows"] == 100 and ws.counts()["annotations"] == 839
        per_run = dict(ws.sql("SELECT r.name, count(*) FROM predictions p JOIN model_runs r ON r.id = p.run_id "
                              "GROUP BY 1").fetchall())
        assert per_run == {"bbox": 734, "segm": 734}
        assert _count(ws, "SELECT count(*) FROM annotations WHERE iscrowd") == 9
    # re-importing a results file replaces that file's predictions: still 734
    _cli("import", "coco-results", str(d / "instances_val2014_fakebbox100_results.json"), "-w", w, "-r", "fake/bbox")
    _cli("import", "coco", str(d / "instances_val2014_100.json"), "-w", w)
    with slicewise.open(w) as ws:
        assert (ws.counts()["predictions"], ws.counts()["annotations"], ws.counts()["data_rows"]) == (1468, 839, 100)
    _cli("export", "coco", str(tmp_path / "gt.json"), "-w", w)
    _cli("export", "coco", str(tmp_path / "segm.json"), "-w", w, "--run", "fake/segm")
    a, b = _load_coco(d / "instances_val2014_100.json"), _load_coco(tmp_path / "gt.json")
    assert a.anns == b.anns  # every field of every annotation, segmentation included
    assert {k: (v["file_name"], v["width"], v["height"]) for k, v in a.imgs.items()} == \
           {k: (v["file_name"], v["width"], v["height"]) for k, v in b.imgs.items()}
    assert {c["id"]: c["name"] for c in a.dataset["categories"]} == {c["id"]: c["name"] for c in b.dataset["categories"]}
    # the masks pycocotools derives are the same too
    import numpy as np

    for k in list(a.anns)[:50]:
        assert np.array_equal(a.annToMask(a.anns[k]), b.annToMask(b.anns[k]))
    # the results exported from the run load with loadRes and equal the input
    src = json.loads((d / "instances_val2014_fakesegm100_results.json").read_text())
    out = json.loads((tmp_path / "segm.json").read_text())
    assert [(r["image_id"], r["category_id"], r["score"], r["segmentation"]) for r in src] == \
           [(r["image_id"], r["category_id"], r["score"], r["segmentation"]) for r in out]
    assert len(a.loadRes(str(tmp_path / "segm.json")).anns) == 734


@pytest.mark.parametrize("table", ["annotations", "data_rows"])
def test_parquet_export_of_a_table(shared_data, tmp_path, table):
    import pyarrow.parquet as pq

    w = str(tmp_path / "w.duckdb")
    _cli("import", "indoor", str(shared_data / "indoor-85"), "-w", w)
    _cli("export", "parquet", table, str(tmp_path / "t.parquet"), "-w", w)
    t = pq.read_table(tmp_path / "t.parquet")
    assert t.num_rows == {"annotations": 686, "data_rows": 85}[table]
