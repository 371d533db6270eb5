"""`slicewise metrics ...` commands: thin wrappers; check they run and print what the library computes."""

from __future__ import annotations

import json

from typer.testing import CliRunner

import slicewise
from slicewise.cli import app

runner = CliRunner()


def _ws(path):
    with slicewise.open(path) as ws:
        ws.add_data_rows("d", [{"global_key": f"r{i}", "row_data": "x", "width": 100, "height": 100} for i in range(3)])
        ws.create_feature("cat", "bbox")
        ws.create_feature("dog", "bbox")
        ws.add_annotations([{"data_row": "r0", "feature": "cat", "bbox": [0, 0, 10, 10]},
                            {"data_row": "r1", "feature": "dog", "bbox": [0, 0, 10, 10]}])
        run = ws.create_run("det", "v1")
        ws.add_predictions(run, [{"data_row": "r0", "feature": "cat", "bbox": [0, 0, 10, 9], "confidence": 0.9},
                                 {"data_row": "r1", "feature": "cat", "bbox": [0, 0, 10, 10], "confidence": 0.6}])


def test_metrics_commands(tmp_path):
    path = tmp_path / "w.duckdb"
    _ws(path)
    w = ["-w", str(path)]
    res = runner.invoke(app, ["metrics", "status", "det/v1", *w])
    assert res.exit_code == 0 and "pending" in res.output
    res = runner.invoke(app, ["metrics", "compute", "det/v1", *w])
    assert res.exit_code == 0 and "ready" in res.output, res.output
    res = runner.invoke(app, ["metrics", "show", "det/v1", "-c", "0.5", "-t", "0.5", "--json", *w])
    assert res.exit_code == 0, res.output
    rows = {r["feature"]: r for r in json.loads(res.output)["features"]}
    assert (rows["cat"]["tp"], rows["cat"]["fp"], rows["dog"]["fn"]) == (1, 1, 1)
    res = runner.invoke(app, ["metrics", "show", "det/v1", *w])
    assert res.exit_code == 0 and "cat" in res.output
    res = runner.invoke(app, ["metrics", "confusion", "det/v1", "--json", *w])
    cm = json.loads(res.output)
    assert cm["classes"] == ["cat", "dog", "None"] and cm["counts"][1][0] == 1
    assert runner.invoke(app, ["metrics", "confusion", "det/v1", *w]).exit_code == 0
    res = runner.invoke(app, ["metrics", "pr", "det/v1", "--feature", "cat", *w])
    assert res.exit_code == 0 and "F1-optimal confidence" in res.output
    res = runner.invoke(app, ["metrics", "export", "det/v1", str(tmp_path / "rows.csv"), *w])
    assert res.exit_code == 0 and (tmp_path / "rows.csv").read_text().count("\n") == 3  # header + the 2 rows of the run
    res = runner.invoke(app, ["metrics", "coco", "det/v1", "--per-class", *w])
    assert res.exit_code == 0 and "AP50" in res.output
    # the AP columns are the library's (checked against pycocotools in test_feature_ap)
    res = runner.invoke(app, ["metrics", "show", "det/v1", "--ap", "--json", *w])
    assert res.exit_code == 0, res.output
    from slicewise import metrics

    with slicewise.open(path) as ws:
        per, mean = metrics.feature_ap(ws, "det/v1")
        want = metrics.row_matches(ws, "det/v1", ws.data_rows(keys=["r1"])[0].id, 0.5, 0.5)
    got = json.loads(res.output)["ap"]
    assert got["features"] == {k: v.to_dict() for k, v in per.items()} and got["mean"] == mean.to_dict()
    res = runner.invoke(app, ["metrics", "show", "det/v1", "--ap", *w])
    assert res.exit_code == 0 and "AR" in res.output, res.output  # 80 columns: the other headers are cut
    res = runner.invoke(app, ["metrics", "outcomes", "det/v1", "r1", "--json", *w])
    assert res.exit_code == 0 and json.loads(res.output) == want
    assert [o["outcome"] for o in want] == ["confusion", "confusion"]  # a dog labelled, a cat predicted on it
    res = runner.invoke(app, ["metrics", "outcomes", "det/v1", "r1", *w])
    assert res.exit_code == 0 and "confusion" in res.output
    res = runner.invoke(app, ["metrics", "outcomes", "det/v1", "nope", *w])
    assert res.exit_code != 0 and "no data row" in (str(res.exception) + res.output)
    (tmp_path / "c.csv").write_text("data_row,name,value\nr0,loss,0.5\n")
    res = runner.invoke(app, ["metrics", "custom", "det/v1", str(tmp_path / "c.csv"), *w])
    assert res.exit_code == 0 and "stored 1" in res.output
    res = runner.invoke(app, ["metrics", "grids", "det/v1", "--confidence", "0.2,0.6", *w])
    assert res.exit_code == 0 and "0.2, 0.6" in res.output
    res = runner.invoke(app, ["metrics", "status", "det/v1", "--json", *w])
    assert json.loads(res.output)["state"] == "stale"
    res = runner.invoke(app, ["metrics", "retry", "det/v1", *w])
    assert res.exit_code == 0 and "ready" in res.output


def test_metrics_errors_are_clear(tmp_path):
    path = tmp_path / "w.duckdb"
    _ws(path)
    res = runner.invoke(app, ["metrics", "grids", "det/v1", "--iou", "0.9,0.1", "-w", str(path)])
    assert res.exit_code != 0
    assert "not sorted" in str(res.exception) or "not sorted" in res.output


def test_classes_and_ontology_commands(tmp_path):
    path = tmp_path / "w.duckdb"
    _ws(path)
    w = ["-w", str(path)]
    assert runner.invoke(app, ["metrics", "compute", "det/v1", *w]).exit_code == 0
    res = runner.invoke(app, ["metrics", "show", "det/v1", "--classes", "--json", *w])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    rows = {r["name"]: r for r in out["classes"]}
    # cat: one TP (r0), one FP (the cat predicted on r1's dog); dog: one FN
    assert (rows["cat"]["tp"], rows["cat"]["fp"], rows["dog"]["fn"], rows["dog"]["support"]) == (1, 1, 1, 1)
    assert out["overall"]["micro_precision"] == 0.5 and out["overall"]["macro_recall"] == 0.5
    res = runner.invoke(app, ["metrics", "show", "det/v1", "--classes", *w])
    assert res.exit_code == 0 and "overall (macro)" in res.output
    res = runner.invoke(app, ["metrics", "ontology", "det/v1", "--json", *w])
    onto = json.loads(res.output)
    assert not onto["explicit"] and {f["feature"] for f in onto["features"]} == {"cat", "dog"}
    res = runner.invoke(app, ["metrics", "ontology", "det/v1", "--set", "cat", "--datasets", "d", *w])
    assert res.exit_code == 0 and "set" in res.output and "cat" in res.output
    res = runner.invoke(app, ["metrics", "show", "det/v1", "--json", *w])
    tn = {r["feature"]: r["tn"] for r in json.loads(res.output)["features"]}
    assert tn == {"cat": 0, "dog": None}  # the run rows r0 and r1 both have a cat; dog is outside the ontology now
    res = runner.invoke(app, ["metrics", "ontology", "det/v1", "--set", "kat", *w])
    assert res.exit_code != 0 and "no feature named 'kat'" in str(res.exception)  # main() prints it without a traceback


def test_calibration_command(tmp_path):
    path = tmp_path / "w.duckdb"
    _ws(path)
    w = ["-w", str(path)]
    assert runner.invoke(app, ["metrics", "compute", "det/v1", *w]).exit_code == 0
    res = runner.invoke(app, ["metrics", "show", "det/v1", "--calibration", "-c", "0.5", "--json", *w])
    assert res.exit_code == 0, res.output
    cal = json.loads(res.output)
    # r0: cat 0.9, a TP; r1: cat 0.6 on a dog, wrong. ECE = (|1 - 0.9| + |0 - 0.6|) / 2
    assert cal["overall"]["n"] == 2 and abs(cal["overall"]["ece"] - 0.35) < 1e-9 and abs(cal["overall"]["mce"] - 0.6) < 1e-9
    res = runner.invoke(app, ["metrics", "show", "det/v1", "--calibration", *w])
    assert res.exit_code == 0 and "ECE" in res.output and "reliability" in res.output
