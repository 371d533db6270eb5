"""Which rows a prediction-only import puts in its run (``rows=`` / ``--rows``): the defaults cover the
images where the model found nothing, so their labels count as false negatives."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import slicewise
from slicewise.cli import app
from slicewise.errors import ValidationError
from slicewise.io import import_coco, import_coco_results, import_ndjson, import_yolo_predictions
from slicewise.io.runrows import parse_spec

runner = CliRunner()


def _cli(*args: str) -> str:
    res = runner.invoke(app, list(args), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


def _run_keys(ws, run: str) -> set[str]:
    model, name = run.split("/")
    return {k for (k,) in ws.sql("""SELECT r.global_key FROM run_rows rr JOIN data_rows r ON r.id = rr.data_row_id
                                    JOIN model_runs m ON m.id = rr.run_id JOIN models mo ON mo.id = m.model_id
                                    WHERE mo.name = ? AND m.name = ?""", [model, name]).fetchall()}


# -- the shared sets -------------------------------------------------------------------------------
def test_cat_dog_yolo_predictions_cover_the_valid_split(shared_data, tmp_path):
    d = shared_data / "cat-dog"
    w = str(tmp_path / "w.duckdb")
    _cli("import", "yolo", str(d), "-w", w)
    preds = d / "predictions/valid-yolov8.json"
    out = _cli("import", "yolo-predictions", str(preds), "-w", w, "--run", "yolov8/valid")
    valid = {p.name for p in (d / "valid/images").iterdir()}  # the files of the valid split
    predicted = {r["image_id"] + ".jpg" for r in json.loads(preds.read_text())}
    assert len(valid) == 20 and predicted < valid
    no_pred = len(valid - predicted)
    assert no_pred >= 1
    assert f"the run covers {len(valid)} data rows ({no_pred} with no prediction)" in " ".join(out.split())
    _cli("import", "yolo-predictions", str(preds), "-w", w, "--run", "yolov8/only", "--rows", "predicted")
    _cli("import", "yolo-predictions", str(preds), "-w", w, "--run", "yolov8/all", "--rows", "all")
    with slicewise.open(w) as ws:
        assert _run_keys(ws, "yolov8/valid") == valid
        assert _run_keys(ws, "yolov8/only") == predicted
        n_files = sum(1 for s in ("train", "valid", "test") for _ in (d / s / "images").iterdir())
        assert len(_run_keys(ws, "yolov8/all")) == n_files


def test_coco_results_cover_every_image_of_the_instances_file(shared_data, tmp_path):
    d = shared_data / "coco-val2014-100"
    w = str(tmp_path / "w.duckdb")
    _cli("import", "coco", str(d / "instances_val2014_100.json"), "-w", w)
    _cli("import", "coco-results", str(d / "instances_val2014_fakebbox100_results.json"), "-w", w, "-r", "fake/bbox")
    gt = json.loads((d / "instances_val2014_100.json").read_text())
    res = json.loads((d / "instances_val2014_fakebbox100_results.json").read_text())
    files = {im["file_name"] for im in gt["images"]}  # pycocotools evaluates every one of these
    by_id = {im["id"]: im["file_name"] for im in gt["images"]}
    predicted = {by_id[r["image_id"]] for r in res}
    assert len(files) == 100 and predicted < files
    with slicewise.open(w) as ws:
        assert _run_keys(ws, "fake/bbox") == files
        # an explicit spec: the same dataset by name
        r = import_coco_results(ws, d / "instances_val2014_fakebbox100_results.json", "fake/named",
                                rows="dataset:instances_val2014_100/split:none")
        assert (r.run_rows, r.run_rows_without_predictions) == (100, len(files - predicted))


# -- a hand-made case: the image without a detection counts its labels as FN -----------------------
def _two_datasets(ws, tmp_path):
    """Dataset "a": a1 (two cars), a2 (one car, one person), a3 (no label); dataset "b": b1 (one car)."""
    def inst(name, images, anns):
        doc = {"images": [{"id": i, "file_name": f, "width": 100, "height": 100} for i, f in images],
               "annotations": [{"id": k, "image_id": i, "category_id": c, "bbox": b, "area": b[2] * b[3], "iscrowd": 0}
                               for k, (i, c, b) in enumerate(anns, 1)],
               "categories": [{"id": 1, "name": "car"}, {"id": 2, "name": "person"}]}
        p = tmp_path / f"{name}.json"
        p.write_text(json.dumps(doc))
        import_coco(ws, p, dataset=name, split="valid")

    inst("a", [(1, "a1.jpg"), (2, "a2.jpg"), (3, "a3.jpg")],
         [(1, 1, [0, 0, 10, 10]), (1, 1, [50, 50, 20, 20]), (2, 1, [10, 10, 30, 30]), (2, 2, [60, 60, 10, 10])])
    inst("b", [(11, "b1.jpg")], [(11, 1, [0, 0, 10, 10])])
    # the model finds both cars of a1 exactly (plus one false car), and nothing on a2, a3
    res = tmp_path / "res.json"
    res.write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},
                               {"image_id": 1, "category_id": 1, "bbox": [50, 50, 20, 20], "score": 0.8},
                               {"image_id": 1, "category_id": 1, "bbox": [80, 0, 10, 10], "score": 0.7}]))
    return res


def test_an_image_without_detections_counts_its_labels_as_false_negatives(ws, tmp_path):
    from slicewise.metrics import compute_metrics, feature_metrics

    res = _two_datasets(ws, tmp_path)
    r = import_coco_results(ws, res, "m/default")
    assert (r.run_rows, r.run_rows_without_predictions) == (3, 2)  # a1, a2, a3: not b1 (another file)
    assert "the run covers 3 data rows (2 with no prediction)" in r.summary()
    import_coco_results(ws, res, "m/predicted", rows="predicted")
    assert _run_keys(ws, "m/default") == {"a1.jpg", "a2.jpg", "a3.jpg"}
    assert _run_keys(ws, "m/predicted") == {"a1.jpg"}
    compute_metrics(ws, "m/default")
    compute_metrics(ws, "m/predicted")
    # by hand at confidence 0.5, IoU 0.5: car TP 2 (a1), FP 1 (a1's third box), FN 1 (a2's car);
    # person FN 1 (a2). Only on a1: car TP 2, FP 1, FN 0 and no person label at all.
    got = {m.feature: (m.tp, m.fp, m.fn) for m in feature_metrics(ws, "m/default", 0.5, 0.5).features}
    assert got["car"] == (2, 1, 1) and got["person"] == (0, 0, 1)
    car = feature_metrics(ws, "m/default", 0.5, 0.5).get("car")
    assert car.precision == pytest.approx(2 / 3) and car.recall == pytest.approx(2 / 3)
    got = {m.feature: (m.tp, m.fp, m.fn) for m in feature_metrics(ws, "m/predicted", 0.5, 0.5).features}
    assert got["car"] == (2, 1, 0) and got.get("person", (0, 0, 0)) == (0, 0, 0)


def test_widening_the_rows_later_reaches_the_metrics(ws, tmp_path):
    from slicewise.metrics import compute_metrics, feature_metrics

    res = _two_datasets(ws, tmp_path)
    import_coco_results(ws, res, "m/x", rows="predicted")
    compute_metrics(ws, "m/x")
    assert {m.feature: m.fn for m in feature_metrics(ws, "m/x", 0.5, 0.5).features} == {"car": 0}
    r = import_coco_results(ws, res, "m/x")  # the same file again, now with the default rows
    assert (r.run_rows, r.run_rows_without_predictions, r.predictions) == (3, 2, 3)
    compute_metrics(ws, "m/x")
    assert {m.feature: m.fn for m in feature_metrics(ws, "m/x", 0.5, 0.5).features} == {"car": 1, "person": 1}


def test_explicit_specs(ws, tmp_path):
    res = _two_datasets(ws, tmp_path)
    import_coco_results(ws, res, "m/b", rows="dataset:b")
    assert _run_keys(ws, "m/b") == {"a1.jpg", "b1.jpg"}  # the predicted row is always in the run
    import_coco_results(ws, res, "m/ab", rows="dataset:a,dataset:b/split:valid")
    assert _run_keys(ws, "m/ab") == {"a1.jpg", "a2.jpg", "a3.jpg", "b1.jpg"}
    import_coco_results(ws, res, "m/split", rows="split:valid")
    assert _run_keys(ws, "m/split") == {"a1.jpg", "a2.jpg", "a3.jpg", "b1.jpg"}
    # YOLO's default: the same dataset and split; after moving a3 to test it is left out
    ws.set_split(["a3.jpg"], "test")
    import_yolo_predictions(ws, res, "m/yolo")
    assert _run_keys(ws, "m/yolo") == {"a1.jpg", "a2.jpg"}


def test_ndjson_predictions_default_to_the_predicted_rows(ws, tmp_path):
    _two_datasets(ws, tmp_path)
    nd = tmp_path / "p.ndjson"
    nd.write_text(json.dumps({"dataRow": {"globalKey": "a2.jpg"}, "name": "car", "confidence": 0.9,
                              "bbox": {"top": 10, "left": 10, "height": 30, "width": 30}}) + "\n")
    import_ndjson(ws, nd, run="n/plain")
    assert _run_keys(ws, "n/plain") == {"a2.jpg"}
    import_ndjson(ws, nd, run="n/ds", rows="dataset:a")
    assert _run_keys(ws, "n/ds") == {"a1.jpg", "a2.jpg", "a3.jpg"}


@pytest.mark.parametrize(("spec", "reason"), [
    ("dataset:nope", "no dataset named 'nope'"),
    ("split:bogus", "unknown split 'bogus'"),
    ("split:train", "chooses no data row"),
    ("dataset:b/split:test", "chooses no data row"),
    ("datasets:a", "cannot read"),
    ("dataset:", "cannot read"),
    ("everything", "cannot read"),
])
def test_bad_specs_are_refused_and_change_nothing(ws, tmp_path, table_snapshot, spec, reason):
    res = _two_datasets(ws, tmp_path)
    before = table_snapshot(ws)
    for call in (lambda: import_coco_results(ws, res, "m/x", rows=spec),
                 lambda: import_yolo_predictions(ws, res, "m/x", rows=spec)):
        with pytest.raises(ValidationError) as info:
            call()
        p = info.value.problems[0]
        assert reason in p.reason and p.field == "rows" and p.fix, p
        assert table_snapshot(ws) == before


def test_rows_without_a_run_is_refused(ws, tmp_path):
    _two_datasets(ws, tmp_path)
    nd = tmp_path / "gt.ndjson"
    nd.write_text(json.dumps({"dataRow": {"globalKey": "a2.jpg"}, "name": "car",
                              "bbox": {"top": 1, "left": 1, "height": 3, "width": 3}}) + "\n")
    with pytest.raises(ValidationError, match="no run is given"):
        import_ndjson(ws, nd, rows="dataset:a")


def test_cli_bad_spec_exits_non_zero(ws, tmp_path):
    res = _two_datasets(ws, tmp_path)
    path = str(ws.store.path)
    ws.close()
    out = runner.invoke(app, ["import", "coco-results", str(res), "-w", path, "-r", "m/x", "--rows", "split:nope"])
    assert out.exit_code != 0 and isinstance(out.exception, ValidationError)
    assert "unknown split 'nope'" in str(out.exception)


def test_parse_spec():
    assert parse_spec(None, default="same-split").keyword == "same-split"
    assert parse_spec("auto", default="same-dataset").keyword == "same-dataset"
    s = parse_spec("dataset:x/y,dataset:z/split:VALID")  # a dataset name may hold "/"
    assert (s.datasets, s.splits) == (("x/y", "z"), ("valid",))
