"""What importers accept from untrusted files, besides the refusals of test_io_bad_input: media roots
recorded per dataset, images that come later (--media-later), URLs kept as they are, boxes a few pixels
beyond their image, a model that found nothing (an empty COCO results file), and no empty workspace left
behind by a failed CLI import."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import slicewise
from slicewise import ValidationError
from slicewise.cli import app
from slicewise.io import import_coco, import_coco_results, import_rows, import_yolo


def _png(path: Path, size=(100, 80)) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size).save(path)
    return path


def _coco(tmp: Path, names: list[str], boxes: list[list[float]] | None = None) -> Path:
    doc = {"images": [{"id": i + 1, "file_name": n, "width": 100, "height": 80} for i, n in enumerate(names)],
           "annotations": [{"id": j + 1, "image_id": 1, "category_id": 1, "bbox": b, "area": b[2] * b[3], "iscrowd": 0}
                           for j, b in enumerate(boxes or [])],
           "categories": [{"id": 1, "name": "cat"}]}
    p = tmp / "gt.json"
    p.write_text(json.dumps(doc))
    return p


def test_coco_with_images_records_the_folder_and_checks_every_file(ws, tmp_path):
    _png(tmp_path / "imgs" / "a.jpg")
    _png(tmp_path / "imgs" / "sub" / "b.jpg")
    res = import_coco(ws, _coco(tmp_path, ["a.jpg", "sub/b.jpg"]), dataset="pets", images=tmp_path / "imgs")
    assert res.data_rows == 2
    assert ws.media_roots("pets") == [str(tmp_path / "imgs")]
    assert ws.data_row("sub/b.jpg").row_data == str(tmp_path / "imgs" / "sub" / "b.jpg")


def test_coco_without_images_keeps_names_relative_to_the_workspace(ws, tmp_path):
    import_coco(ws, _coco(tmp_path, ["a.jpg"]), dataset="pets")
    assert ws.media_roots("pets") == ["."] and ws.data_row("a.jpg").row_data == "a.jpg"


def test_media_later_accepts_files_not_there_yet_but_not_paths_leaving_the_folder(ws, tmp_path, table_snapshot):
    (tmp_path / "imgs").mkdir()
    res = import_coco(ws, _coco(tmp_path, ["a.jpg", "later/b.jpg"]), dataset="pets", images=tmp_path / "imgs",
                      check_media=False)
    assert res.data_rows == 2 and ws.data_row("a.jpg").row_data == str(tmp_path / "imgs" / "a.jpg")
    before = table_snapshot(ws)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "imgs" / "out").symlink_to(tmp_path / "elsewhere")  # a folder link out of the images folder
    with pytest.raises(ValidationError) as info:
        import_coco(ws, _coco(tmp_path, ["out/c.jpg"]), dataset="more", images=tmp_path / "imgs", check_media=False)
    [p] = info.value.problems
    assert ("link that points outside" in p.reason, p.location, p.field) == (True, "gt.json images[0]", "file_name")
    assert table_snapshot(ws) == before


def test_rows_with_urls_are_kept_and_local_paths_may_be_absolute_inside_the_folder(ws, tmp_path):
    img = _png(tmp_path / "imgs" / "a.jpg")
    rows = [{"global_key": "u", "row_data": "https://example.com/u.jpg"},
            {"global_key": "s3", "row_data": "s3://bucket/k.jpg"},
            {"global_key": "abs", "row_data": str(img)},
            {"global_key": "file", "row_data": f"file://{img}"},
            {"global_key": "txt", "row_data": "../not/a/path", "media_type": "text"}]
    p = tmp_path / "rows.json"
    p.write_text(json.dumps(rows))
    res = import_rows(ws, p, images=tmp_path / "imgs")
    assert res.data_rows == 5
    by = {r.global_key: r.row_data for r in ws.data_rows()}
    assert by == {"u": "https://example.com/u.jpg", "s3": "s3://bucket/k.jpg", "abs": str(img), "file": str(img),
                  "txt": "../not/a/path"}
    assert ws.media_roots("rows") == [str(tmp_path / "imgs")]


def test_yolo_records_each_split_images_folder(ws, tmp_path):
    root = tmp_path / "yolo"
    (root / "data.yaml").parent.mkdir()
    (root / "data.yaml").write_text("names: [cat]\ntrain: train/images\nval: valid/images\n")
    for split in ("train", "valid"):
        _png(root / split / "images" / f"{split}.jpg")
        (root / split / "labels").mkdir()
        (root / split / "labels" / f"{split}.txt").write_text("0 0.5 0.5 0.2 0.2\n0 1.0 0.0 1.0 1.0\n")
    assert import_yolo(ws, root).annotations == 4  # edge values 0 and 1 are inside [0, 1]
    assert ws.media_roots("yolo") == [str(root / "train" / "images"), str(root / "valid" / "images")]


def test_a_box_a_few_pixels_beyond_the_image_is_accepted(ws, tmp_path):
    res = import_coco(ws, _coco(tmp_path, ["a.jpg"], [[-3, -2, 105, 84], [60, 50, 89, 69]]), dataset="pets")
    assert res.annotations == 2  # up to 50% of the image's size beyond an edge is a detector's slack


@pytest.fixture
def gt(ws, tmp_path):
    import_coco(ws, _coco(tmp_path, ["a.jpg", "b.jpg"], [[1, 2, 10, 10], [20, 20, 30, 30]]), dataset="pets")
    return ws


def test_an_empty_results_file_is_a_run_with_no_predictions(gt, tmp_path):
    from slicewise import metrics

    p = tmp_path / "r.json"
    p.write_text("[]")
    res = import_coco_results(gt, p, "m/r")
    assert (res.predictions, res.run_rows, res.run_rows_without_predictions) == (0, 2, 2)
    [w] = res.warnings
    assert "every row of dataset:pets" in w.reason and w.field == "rows"
    # every label is a false negative: the totals equal the ground truth's count
    assert metrics.compute_metrics(gt, "m/r").state == "ready"
    table = metrics.row_feature_metrics_table(gt, "m/r", 0.5, 0.5)
    tp, fp, fn = gt.sql(f"SELECT sum(tp), sum(fp), sum(fn) FROM {table}").fetchone()
    assert (tp, fp, fn) == (0, 0, 2)


def test_an_empty_results_file_with_several_datasets_needs_rows(gt, tmp_path, table_snapshot):
    gt.add_data_rows("other", [{"global_key": "z.jpg", "row_data": "z.jpg", "width": 10, "height": 10}])
    p = tmp_path / "r.json"
    p.write_text("[]")
    before = table_snapshot(gt)
    with pytest.raises(ValidationError) as info:
        import_coco_results(gt, p, "m/r")
    [prob] = info.value.problems
    assert ("the file has no predictions" in prob.reason, prob.location, prob.field) == (True, "coco-results:r.json",
                                                                                        "rows")
    assert "--rows" in prob.fix and "dataset:other" in prob.fix
    assert table_snapshot(gt) == before
    res = import_coco_results(gt, p, "m/r", rows="dataset:pets")
    assert (res.run_rows, res.run_rows_without_predictions) == (2, 2)


def test_a_failed_import_leaves_no_new_workspace_behind(tmp_path):
    bad = tmp_path / "gt.json"
    bad.write_text('{"images": [')
    new = tmp_path / "new.duckdb"
    r = CliRunner().invoke(app, ["import", "coco", str(bad), "-w", str(new)])
    assert r.exit_code != 0 and isinstance(r.exception, ValidationError)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gt.json"]  # no file, no WAL, no cache folder
    # a workspace that was there before is kept, even an empty one
    with slicewise.open(tmp_path / "old.duckdb"):
        pass
    r = CliRunner().invoke(app, ["import", "coco", str(bad), "-w", str(tmp_path / "old.duckdb")])
    assert r.exit_code != 0 and (tmp_path / "old.duckdb").exists()
    # and a successful import keeps the file it made
    _png(tmp_path / "imgs" / "a.jpg")
    r = CliRunner().invoke(app, ["import", "coco", str(_coco(tmp_path, ["a.jpg"])), "-w", str(new),
                                 "--images", str(tmp_path / "imgs")])
    assert r.exit_code == 0, r.output
    assert new.exists()
