"""``slicewise diff``: the table, and exit code 3 on a significant regression beyond the allowed drop."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import slicewise
from slicewise import metrics as M
from slicewise.cli import app
from slicewise.cli.compare import EXIT_REGRESSION
from slicewise.errors import NotFoundError

runner = CliRunner()
BOX = [10, 10, 20, 20]


def _workspace(path):
    """60 rows with one cat each: the baseline finds all of them, the run 20 (recall 1.0 -> 0.33)."""
    ws = slicewise.open(path)
    keys = [f"k{i}" for i in range(60)]
    ws.add_data_rows("d", [{"global_key": k, "row_data": k, "width": 100, "height": 80} for k in keys])
    ws.create_feature("cat", "bbox")
    ws.add_annotations([{"data_row": k, "feature": "cat", "bbox": BOX} for k in keys])
    for name, found in (("base", keys), ("new", keys[:20]), ("same", keys)):
        run = ws.create_run("m", name)
        ws.add_predictions(run, [{"data_row": k, "feature": "cat", "bbox": BOX, "confidence": 0.9} for k in found])
        ws.add_run_rows(run, keys)
        M.compute_metrics(ws, run)
    ws.close()


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    p = tmp_path_factory.mktemp("diff") / "ws.duckdb"
    _workspace(p)
    return p


def test_exit_codes(path):
    w = ["-w", str(path), "--confidence", "0.5", "--iou", "0.5", "--boot", "300"]
    res = runner.invoke(app, ["diff", "m/base", "m/new", *w])  # every auto slice of the baseline too
    w += ["--slice", "True positives"]
    assert res.exit_code == EXIT_REGRESSION == 3, res.output
    assert "tp->fn" in res.output and "recall -0.667" in res.output
    # a drop smaller than the allowed one passes; another metric's allowance does not cover recall
    assert runner.invoke(app, ["diff", "m/base", "m/new", *w, "--max-drop", "recall=0.7"]).exit_code == 0
    assert runner.invoke(app, ["diff", "m/base", "m/new", *w, "--max-drop", "recall=0.5"]).exit_code == 3
    assert runner.invoke(app, ["diff", "m/base", "m/new", *w, "--max-drop", "precision=0"]).exit_code == 0
    # no change: exit 0; the reverse direction is an improvement: exit 0
    res = runner.invoke(app, ["diff", "m/base", "m/same", *w])
    assert res.exit_code == 0 and "no significant regression" in res.output
    assert runner.invoke(app, ["diff", "m/new", "m/base", *w]).exit_code == 0
    res = runner.invoke(app, ["diff", "m/base", "m/new", *w, "--json"])
    got = json.loads(res.stdout)
    assert got["flips"]["tp->fn"] == 40 and got["overall"]["metrics"]["recall"]["delta"] == round(20 / 60 - 1, 12)
    # bad input: exit 2 with the reason
    res = runner.invoke(app, ["diff", "m/base", "m/new", *w, "--max-drop", "speed=1"])
    assert res.exit_code == 2 and "speed" in res.output
    res = runner.invoke(app, ["diff", "m/base", "m/nope", *w])  # (run_app prints it and exits 2)
    assert isinstance(res.exception, NotFoundError) and "m/nope" in str(res.exception)


def test_query_with_a_baseline(path):
    res = runner.invoke(app, ["query", "m/new", "flip:tp->fn", "--baseline", "m/base", "--json", "--limit", "100",
                              "--confidence", "0.5", "--iou", "0.5", "-w", str(path)])
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    assert got["total"] == 40 and {r["global_key"] for r in got["rows"]} == {f"k{i}" for i in range(20, 60)}
