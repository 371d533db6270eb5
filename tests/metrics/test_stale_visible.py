"""Stale is visible: every metrics result carries the job's state, warns when it is not up to date, and
the job's state is remembered by the workspace until something it depends on changes."""

from __future__ import annotations

import dataclasses
import json
import warnings

import pytest
from typer.testing import CliRunner

from slicewise import metrics as M
from slicewise import slices
from slicewise.metrics import StaleMetricsWarning


def _ws(ws, n=4):
    ws.add_data_rows("d", [{"global_key": f"r{i}", "row_data": "x", "width": 100, "height": 100} for i in range(n)])
    ws.create_feature("cat", "bbox")
    ws.add_annotations([{"data_row": f"r{i}", "feature": "cat", "bbox": [0, 0, 10, 10]} for i in range(n)])
    run = ws.create_run("m", "v1")
    ws.add_predictions(run, [{"data_row": f"r{i}", "feature": "cat", "bbox": [0, 0, 10, 9], "confidence": 0.9}
                             for i in range(n)])
    return run


def _results(ws, run):
    return {"features": lambda **k: M.feature_metrics(ws, run, 0.5, 0.5, **k),
            "confusion": lambda **k: M.confusion_matrix(ws, run, 0.5, 0.5, **k),
            "pr": lambda **k: M.pr_curve(ws, run, iou=0.5, **k),
            "grid": lambda **k: M.grid_metrics(ws, run, **k),
            "f1": lambda **k: M.f1_optimal_confidences(ws, run, **k)}


def test_results_carry_the_job_and_warn_when_stale(ws):
    run = _ws(ws)
    M.compute_metrics(ws, run)
    with warnings.catch_warnings():
        warnings.simplefilter("error", StaleMetricsWarning)  # up to date: no warning
        for name, fn in _results(ws, run).items():
            res = fn()
            assert res.job.state == "ready", name
            json.dumps(res.to_dict())  # plain JSON
            with pytest.raises(dataclasses.FrozenInstanceError):
                res.job = None
        assert M.coco_eval(ws, run).job.state == "ready"
    before = M.feature_metrics(ws, run, 0.5, 0.5)

    ws.add_annotations([{"data_row": "r1", "feature": "cat", "bbox": [50, 50, 10, 10]}])
    for name, fn in _results(ws, run).items():
        with pytest.warns(StaleMetricsWarning, match=r"stale: 1 of 4 rows changed") as got:
            res = fn()
        assert len(got) == 1 and got[0].filename == __file__, name  # points at the caller
        assert (res.job.state, res.job.stale_rows, res.job.reason) == ("stale", 1, "data"), name
        assert res.to_dict()["job"]["state"] == "stale"
    # the numbers are those computed, and say so
    assert M.feature_metrics(ws, run, 0.5, 0.5, warn=False).features == before.features
    with warnings.catch_warnings():
        warnings.simplefilter("error", StaleMetricsWarning)
        for fn in _results(ws, run).values():
            fn(warn=False)
        assert M.coco_eval(ws, run).job.state == "stale"  # read from the objects as they are: never stale itself
    M.compute_metrics(ws, run)
    assert M.feature_metrics(ws, run, 0.5, 0.5).job.state == "ready"


def test_changed_grids_make_every_row_stale(ws):
    run = _ws(ws)
    M.compute_metrics(ws, run)
    M.set_grids(ws, run, iou=[0.5, 0.75])
    with pytest.warns(StaleMetricsWarning, match="the threshold grids changed"):
        fm = M.feature_metrics(ws, run, 0.5, 0.5)
    assert (fm.job.state, fm.job.stale_rows, fm.job.total, fm.job.reason) == ("stale", 4, 4, "grids")
    assert "the threshold grids changed" in fm.job.describe()


def test_job_status_is_remembered_until_what_it_depends_on_changes(ws, monkeypatch):
    from slicewise.metrics import engine

    run = _ws(ws)
    M.compute_metrics(ws, run)
    calls = []
    real = engine._job_status
    monkeypatch.setattr(engine, "_job_status", lambda *a: calls.append(1) or real(*a))
    for _ in range(3):  # compute_metrics looked at the state last: nothing has changed since
        assert M.job_status(ws, run).state == "ready"
        M.feature_metrics(ws, run, 0.5, 0.5)
    assert len(calls) == 0
    slices.create_slice(ws, "a slice", "tp > 0")  # not something the job depends on
    ws.add_tags(["r0"], ["seen"])
    M.job_status(ws, run)
    assert len(calls) == 0
    ws.add_predictions(run, [{"data_row": "r2", "feature": "cat", "bbox": [1, 1, 10, 9], "confidence": 0.7}],
                       source="more")
    assert M.job_status(ws, run).state == "stale" and M.job_status(ws, run).stale_rows == 1 and len(calls) == 1
    M.compute_metrics(ws, run)
    assert M.job_status(ws, run).state == "ready" and len(calls) == 2


def test_a_running_job_reports_live_progress(ws):
    run = _ws(ws)
    M.compute_metrics(ws, run)
    with ws.store.transaction() as con:  # as compute_metrics marks a job running
        con.execute("UPDATE metric_jobs SET state = 'running', done = 0, total = 4 WHERE run_id = ?", [run.id])
        ws.store.touch("metric_job", run=run.id)
    ws.state.progress[run.id] = (1, 4)
    assert (M.job_status(ws, run).done, M.job_status(ws, run).total) == (1, 4)
    ws.state.progress[run.id] = (3, 4)  # progress moves without a write
    with pytest.warns(StaleMetricsWarning, match=r"being recomputed \(3/4 rows\)"):
        fm = M.feature_metrics(ws, run, 0.5, 0.5)
    assert (fm.job.state, fm.job.done) == ("running", 3)


def test_slice_results_and_cli_say_when_metrics_are_stale(ws):
    from slicewise.cli import app

    run = _ws(ws)
    M.compute_metrics(ws, run)
    slices.create_slice(ws, "some rows", "tp >= 0")
    ws.add_annotations([{"data_row": "r1", "feature": "cat", "bbox": [50, 50, 10, 10]}])
    with pytest.warns(StaleMetricsWarning) as got:
        sm = slices.slice_metrics(ws, "some rows", run, 0.5, 0.5)
    assert len(got) == 1 and sm.job.state == "stale" and sm.features.job.state == "stale"
    with pytest.warns(StaleMetricsWarning):
        res = slices.check(ws, run, "some rows", {"recall": 0.5}, None, 0.5, 0.5)
    assert res.job.state == "stale" and "note: metrics of run m/v1 are stale: 1 of 4 rows changed" in res.report()
    ws.close()

    runner = CliRunner()
    w = ["-w", str(ws.path)]
    out = runner.invoke(app, ["metrics", "show", "m/v1", *w])
    assert out.exit_code == 0 and "metrics of run m/v1 are stale: 1 of 4 rows changed" in out.output
    assert "StaleMetricsWarning" not in out.output
    out = runner.invoke(app, ["metrics", "show", "m/v1", "--json", *w])
    assert json.loads(out.stdout)["job"]["state"] == "stale"
    out = runner.invoke(app, ["check", "m/v1", "--slice", "some rows", "--min", "recall=0.1", *w])
    assert out.exit_code == 0 and "note: metrics of run m/v1 are stale" in out.output


def test_views_read_while_a_job_runs_are_not_kept_after_it(ws, monkeypatch):
    """Views read during a job are the previous job's numbers (job ``running``); once the job commits, the
    views show the new ones (nothing built from the old records is reused under the new job's key)."""
    import threading

    from slicewise.metrics import matching

    run = _ws(ws)
    M.compute_metrics(ws, run)
    before = M.feature_metrics(ws, run, 0.5, 0.5).get("cat").tp
    ws.add_annotations([{"data_row": f"r{i}", "feature": "cat", "bbox": [50, 50, 10, 10]} for i in range(2)])
    started, go = threading.Event(), threading.Event()
    real = matching.match_rows

    def paused(*a, **k):
        started.set()
        assert go.wait(30)
        return real(*a, **k)

    monkeypatch.setattr(matching, "match_rows", paused)
    th = threading.Thread(target=M.compute_metrics, args=(ws, run))
    th.start()
    try:
        assert started.wait(30)
        with pytest.warns(StaleMetricsWarning, match="being recomputed"):
            during = M.feature_metrics(ws, run, 0.5, 0.5)
        assert during.job.state == "running" and during.get("cat").tp == before
        during_rows = ws.sql(f"SELECT sum(fn) FROM {M.row_metrics_table(ws, run, 0.5, 0.5)}").fetchone()[0]
    finally:
        go.set()
        th.join(60)
    after = M.feature_metrics(ws, run, 0.5, 0.5)
    assert after.job.state == "ready" and after.get("cat").fn == 2 + during.get("cat").fn
    assert ws.sql(f"SELECT sum(fn) FROM {M.row_metrics_table(ws, run, 0.5, 0.5)}").fetchone()[0] == during_rows + 2
