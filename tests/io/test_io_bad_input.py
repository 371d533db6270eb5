"""Bad input, table-driven: every case names what, where (file + line/record), the field and a fix,
and leaves the store exactly as it was. With --skip-invalid the rest is imported and a rejects file
holds one line per rejected record."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from slicewise import ValidationError
from slicewise.cli import app
from slicewise.io import (
    import_coco,
    import_coco_results,
    import_indoor,
    import_ndjson,
    import_table,
    import_yolo,
)

IMG = {"id": 1, "file_name": "a.jpg", "width": 100, "height": 80}
CATS = [{"id": 1, "name": "cat"}]
BOX = {"id": 7, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 10], "area": 100, "iscrowd": 0}


def coco(**over: Any) -> dict[str, Any]:
    doc = {"images": [IMG], "annotations": [BOX], "categories": CATS}
    doc.update(over)
    return doc


def _png(path: Path, size=(100, 80)) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size).save(path)
    return path


def _indoor(tmp: Path, gt: str, det: str | None = None, images: bool = True) -> Path:
    root = tmp / "boxes"
    (root / "ground-truth").mkdir(parents=True)
    (root / "ground-truth" / "a.txt").write_text(gt)
    if det is not None:
        (root / "detection-results").mkdir()
        (root / "detection-results" / "a.txt").write_text(det)
    if images:
        _png(root / "images" / "a.jpg")
    return root


def _yolo(tmp: Path, label: str, corrupt: bool = False) -> Path:
    root = tmp / "yolo"
    (root / "valid" / "labels").mkdir(parents=True)
    (root / "data.yaml").write_text("names: [cat]\nval: valid/images\n")
    (root / "valid" / "labels" / "a.txt").write_text(label)
    if corrupt:
        (root / "valid" / "images").mkdir(parents=True)
        (root / "valid" / "images" / "a.jpg").write_bytes(b"not a jpeg")
    else:
        _png(root / "valid" / "images" / "a.jpg")
    return root


def _write(tmp: Path, name: str, content: str | bytes | Any) -> Path:
    p = tmp / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    elif isinstance(content, str):
        p.write_text(content)
    else:
        p.write_text(json.dumps(content))
    return p


def _nd(*lines: Any) -> str:
    return "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n"


def _lb(**v: Any) -> dict[str, Any]:
    return {"uuid": "u1", "dataRow": {"globalKey": "a.jpg"}, "name": "cat", **v}


GOOD_BOX = {"top": 2, "left": 1, "height": 10, "width": 10}


@dataclass
class Case:
    id: str
    run: Callable[[Any, Path], Any]  # (ws, tmp) -> raises
    reason: str
    where: str
    field: str
    fix: str


def _results(content: Any, name: str = "r.json") -> Callable[[Any, Path], Any]:
    return lambda ws, tmp: import_coco_results(ws, _write(tmp, name, content), "m/r")


def _instances(content: Any) -> Callable[[Any, Path], Any]:
    return lambda ws, tmp: import_coco(ws, _write(tmp, "gt.json", content), dataset="pets")


def _ndjson(text: str, run: str | None = None) -> Callable[[Any, Path], Any]:
    return lambda ws, tmp: import_ndjson(ws, _write(tmp, "p.ndjson", text), run=run)


CASES = [
    Case("json-syntax-error", _instances('{"images": [\n  {"id": 1}\n  {"id": 2}\n]}'),
         "JSON syntax error", "gt.json:3", "", "fix the JSON at that line"),
    Case("ndjson-syntax-error", _ndjson(_nd(_lb(bbox=GOOD_BOX), '{"dataRow": {"globalKey": "a.jpg"}, "name": ')),
         "JSON syntax error", "p.ndjson:2", "", "one complete JSON object"),
    Case("missing-field-coco", _instances(coco(annotations=[{k: v for k, v in BOX.items() if k != "category_id"}])),
         "annotation has no category_id", "gt.json annotations[0]", "category_id", "category's id"),
    Case("missing-field-ndjson", _ndjson(_nd({"name": "cat", "bbox": GOOD_BOX})),
         "missing dataRow", "p.ndjson:1", "dataRow", "globalKey"),
    Case("box-negative-size", _results([{"image_id": 1, "category_id": 1, "bbox": [1, 2, -5, 3], "score": 0.5}]),
         "box has width -5 and height 3", "r.json record 0", "bbox", "width and height must be > 0"),
    Case("box-zero-size", lambda ws, tmp: import_indoor(ws, _indoor(tmp, "cat 10 10 10 20\n")),
         "box has width 0 and height 10", "ground-truth/a.txt:1", "bbox", "right must exceed left"),
    Case("box-nan", _ndjson('{"dataRow": {"globalKey": "a.jpg"}, "name": "cat", '
                            '"bbox": {"top": NaN, "left": 1, "height": 3, "width": 3}}\n'),
         "NaN or infinite", "p.ndjson:1", "bbox", "finite"),
    Case("box-inf", lambda ws, tmp: import_indoor(ws, _indoor(tmp, "cat 1 1 5 5\n", "cat 0.5 0 0 inf 5\n")),
         "NaN or infinite", "detection-results/a.txt:1", "bbox", "finite"),
    Case("confidence-above-1", _results([{"image_id": 1, "category_id": 1, "bbox": [1, 2, 5, 3], "score": 1.5}]),
         "confidence 1.5 is outside [0, 1]", "r.json record 0", "confidence", "between 0 and 1"),
    Case("confidence-nan", _ndjson('{"dataRow": {"globalKey": "a.jpg"}, "name": "cat", "confidence": NaN, '
                                   '"bbox": {"top": 1, "left": 1, "height": 3, "width": 3}}\n', run="m/r"),
         "confidence is NaN", "p.ndjson:1", "confidence", "between 0 and 1"),
    Case("confidence-negative-csv",
         lambda ws, tmp: import_table(ws, _write(tmp, "t.csv", "global_key,label,prediction,confidence\n"
                                                               "a.jpg,yes,no,-0.2\n"), run="m/r", feature="q"),
         "confidence -0.2 is outside [0, 1]", "t.csv:2", "confidence", "between 0 and 1"),
    Case("polygon-too-few-points", _instances(coco(annotations=[{**BOX, "segmentation": [[1, 1, 5, 5]]}])),
         "polygon part 0 has 2 points", "gt.json annotations[0]", "segmentation", "at least 3 points"),
    Case("polygon-too-few-points-ndjson", _ndjson(_nd(_lb(polygon=[{"x": 1, "y": 1}, {"x": 4, "y": 4}])),
                                                  run="m/r"),
         "polygon has 2 points", "p.ndjson:1", "polygon", "at least 3 points"),
    Case("rle-size-mismatch", _results([{"image_id": 1, "category_id": 1, "score": 0.5,
                                         "segmentation": {"size": [10, 10], "counts": [100]}}]),
         "RLE size [10, 10] differs from the image's [80, 100]", "r.json record 0", "segmentation.size",
         "height x width"),
    Case("span-outside-text", _ndjson(_nd({"dataRow": {"globalKey": "t1"}, "name": "person",
                                           "location": {"start": 3, "end": 50}})),
         "span [3, 50) is outside the text (11 characters)", "p.ndjson:1", "span", "offsets count characters"),
    Case("unknown-class", _ndjson(_nd(_lb(name="zebra", bbox=GOOD_BOX)), run="m/r"),
         "unknown class 'zebra'", "p.ndjson:1", "feature", "--create-features"),
    Case("unknown-category-in-results", _results([{"image_id": 1, "category_id": 5, "bbox": [1, 2, 5, 3],
                                                   "score": 0.5}]),
         "category id 5 is not the external id of any feature", "r.json record 0", "category_id", "--create-features"),
    Case("prediction-for-unknown-row", _results([{"image_id": 999, "category_id": 1, "bbox": [1, 2, 5, 3],
                                                  "score": 0.5}]),
         "prediction for unknown image 999", "r.json record 0", "image_id", "import the images first"),
    Case("prediction-for-unknown-row-ndjson", _ndjson(_nd(_lb(dataRow={"globalKey": "nope.jpg"}, bbox=GOOD_BOX)),
                                                      run="m/r"),
         "prediction for unknown data row 'nope.jpg'", "p.ndjson:1", "data_row", "import the data rows first"),
    Case("duplicate-global-keys", _instances(coco(images=[IMG, {**IMG, "id": 2}])),
         "duplicate global key 'a.jpg'", "gt.json images[1]", "global_key", "unique"),
    Case("missing-image-file",
         lambda ws, tmp: import_indoor(ws, _indoor(tmp, "cat 1 1 5 5\n", images=False), images=tmp / "nowhere"),
         "image file for a is missing", "ground-truth/a.txt", "image", "add the image"),
    Case("unreadable-image-file", lambda ws, tmp: import_yolo(ws, _yolo(tmp, "0 0.5 0.5 0.2 0.2\n", corrupt=True)),
         "is unreadable", "valid/images/a.jpg", "image", "replace it with a valid JPEG/PNG"),
    Case("category-not-in-file", _instances(coco(annotations=[{**BOX, "category_id": 99}])),
         "category id 99 is not in the file's category list", "gt.json annotations[0]", "category_id",
         "add the category"),
    Case("empty-file", _results(""), "file is empty", "r.json", "", "export the data again"),
    Case("empty-results-list", _results([]), "the file has no detections", "r.json", "", "export the predictions"),
    Case("yolo-class-out-of-range", lambda ws, tmp: import_yolo(ws, _yolo(tmp, "3 0.5 0.5 0.2 0.2\n")),
         "class '3' is not an index of data.yaml's 1 names", "labels/a.txt:1", "class", "add the class"),
]


@pytest.fixture
def base(ws):
    """A workspace with an image row, a text row and two features: the state every case must keep."""
    ws.add_data_rows("pets", [{"global_key": "a.jpg", "row_data": "a.jpg", "width": 100, "height": 80,
                               "metadata": {"coco_image_id": 1}},
                              {"global_key": "t1", "row_data": "hello world", "media_type": "text"}])
    ws.create_feature("cat", "bbox", external_id="1")
    ws.create_feature("person", "ner")
    ws.create_feature("q", "radio", ["yes", "no"])
    return ws


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_with_a_clear_message_and_changes_nothing(case, base, tmp_path, table_snapshot):
    before = table_snapshot(base)
    with pytest.raises(ValidationError) as info:
        case.run(base, tmp_path)
    assert table_snapshot(base) == before
    problems = info.value.problems
    hit = [p for p in problems if case.reason in p.reason]
    assert hit, f"no problem says {case.reason!r}: {problems}"
    p = hit[0]
    assert case.where in p.location, p
    assert p.field == case.field, p
    assert case.fix in p.fix, p
    assert case.reason in str(info.value) and case.where in str(info.value)


def test_self_intersecting_polygon_is_kept_with_a_warning(base, tmp_path):
    bowtie = [{"x": 0, "y": 0}, {"x": 10, "y": 10}, {"x": 10, "y": 0}, {"x": 0, "y": 10}]
    base.create_feature("blob", "polygon")
    res = import_ndjson(base, _write(tmp_path, "p.ndjson", _nd(_lb(name="blob", polygon=bowtie))))
    assert res.annotations == 1
    [w] = res.warnings
    assert "Self-intersection" in w.reason and "make_valid" in w.reason
    assert (w.location, w.field) == ("p.ndjson:1", "polygon")


def test_skip_invalid_imports_the_rest_and_writes_one_reason_per_rejected_record(base, tmp_path):
    recs = [{"image_id": 1, "category_id": 1, "bbox": [1, 2, 5, 3], "score": 0.5},
            {"image_id": 1, "category_id": 1, "bbox": [1, 2, -5, 3], "score": 1.5},  # two problems, one line
            {"image_id": 999, "category_id": 1, "bbox": [1, 2, 5, 3], "score": 0.5},
            {"image_id": 1, "category_id": 1, "bbox": [3, 3, 5, 3], "score": 0.7}]
    path = _write(tmp_path, "r.json", recs)
    w = str(base.path)
    base.close()
    rejects = tmp_path / "rejects.jsonl"
    res = CliRunner().invoke(app, ["import", "coco-results", str(path), "-w", w, "-r", "m/r", "--skip-invalid",
                                   "--rejects", str(rejects)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in rejects.read_text().splitlines()]
    assert [x["location"] for x in lines] == ["r.json record 1", "r.json record 2"]
    assert all(x["reason"] and x["fix"] for x in lines)
    import slicewise

    with slicewise.open(w) as ws:
        assert sorted(p["confidence"] for p in ws.predictions("m/r")) == [0.5, 0.7]


def test_cli_refusal_exits_nonzero_and_names_the_record(base, tmp_path):
    path = _write(tmp_path, "r.json", [{"image_id": 1, "category_id": 1, "bbox": [1, 2, 5, 3], "score": 2}])
    w = str(base.path)
    base.close()
    import sys

    from slicewise.cli.common import run_app

    argv = sys.argv
    sys.argv = ["slicewise", "import", "coco-results", str(path), "-w", w, "-r", "m/r"]
    try:
        with pytest.raises(SystemExit) as ex:
            run_app(app)
    finally:
        sys.argv = argv
    assert ex.value.code == 2
