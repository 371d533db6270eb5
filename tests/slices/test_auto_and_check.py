"""Auto slices (definitions, parameters, counts) and slice checks (library and CLI)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from slicewise import slices
from slicewise.errors import QueryError
from slicewise.query import search


def _conf(r, agg):
    vals = [s for _, s in r.pred]
    return (min if agg == "min" else max)(vals) if vals else None


def test_auto_slices_match_their_definitions(gen):
    ws, run = gen.ws, gen.run
    auto = {s.auto_key: s for s in slices.auto_slices(ws, run, 0.5, 0.5)}
    # + the label-mistake detectors that can score a box run without an embedding space (slicewise.mistakes)
    assert list(auto) == list(slices.AUTO_KEYS) + ["mistakes-cleanlab", "mistakes-combined"]
    m = lambda r, k, c=0.5: gen.metric(r.id, k, c=c)  # noqa: E731
    rows = gen.run_rows()
    want = {
        "true-positive": [r for r in rows if m(r, "tp") > 0],
        "false-positive": [r for r in rows if m(r, "fp") > 0],
        "false-negative": [r for r in rows if m(r, "fn") > 0],
        "true-negative": [r for r in rows if m(r, "tp") == m(r, "fp") == m(r, "fn") == 0],
        "low-precision": [r for r in rows if m(r, "precision") is not None and m(r, "precision") < 0.5],
        "low-recall": [r for r in rows if m(r, "recall") is not None and m(r, "recall") < 0.5],
        "low-f1": [r for r in rows if m(r, "f1") is not None and m(r, "f1") < 0.5],
        "low-confidence": [r for r in rows if r.pred and _conf(r, "min") < 0.5],
        "candidate-mislabels": [r for r in rows if m(r, "fp", 0.9) > 0],
    }
    for key, members in want.items():
        s = auto[key]
        assert s.count == len(members), key
        page = slices.slice_rows(ws, s, run, 0.5, 0.5, limit=1000)
        assert sorted(x.data_row_id for x in page.rows) == sorted(r.id for r in members), key
    # candidate mislabels: most confident first
    page = slices.slice_rows(ws, auto["candidate-mislabels"], run, 0.5, 0.5, limit=1000)
    confs = [x.sort_value for x in page.rows if x.sort_value is not None]
    assert confs == sorted(confs, reverse=True) and confs
    assert all(x.sort_value is None for x in page.rows[len(confs):])  # rows without predictions last
    # false positives: most first
    fps = [x.sort_value for x in slices.slice_rows(ws, auto["false-positive"], run, 0.5, 0.5, limit=1000).rows]
    assert fps == sorted(fps, reverse=True)
    # stored queries with their parameters, not lists
    assert auto["low-confidence"].params == {"low_metric": 0.5, "low_confidence": 0.5, "mislabel_confidence": 0.9}
    assert auto["low-confidence"].filter == "confidence.min < 0.5"
    assert auto["candidate-mislabels"].filter == "fp@0.9 > 0"
    assert auto["candidate-mislabels"].description.startswith("FP with confidence >= 0.9: ")
    assert auto["low-recall"].description == "recall < 0.5: the mean over the row's features"
    assert ws.sql("SELECT count(*) FROM slices WHERE run_id = ?", [run.id]).fetchone()[0] == 12
    slices.auto_slices(ws, run)  # idempotent
    assert ws.sql("SELECT count(*) FROM slices WHERE run_id = ?", [run.id]).fetchone()[0] == 12


def test_auto_slice_parameters(gen):
    ws, run = gen.ws, gen.run
    slices.set_auto_params(ws, run, low_confidence=0.2, mislabel_confidence=0.8)
    lc = slices.auto_slice(ws, run, "low-confidence")
    assert lc.filter == "confidence.min < 0.2" and lc.description == "a prediction with confidence < 0.2"
    assert slices.slice_count(ws, lc, run) == sum(1 for r in gen.run_rows() if r.pred and _conf(r, "min") < 0.2)
    cm = slices.auto_slice(ws, run, "Candidate mislabels")
    assert cm.params["mislabel_confidence"] == 0.8 and cm.filter == "fp@0.8 > 0"
    # metrics exist only at grid values: a mislabel confidence off the grid is refused, not moved
    with pytest.raises(QueryError, match=r"0.85 is not on the run's confidence grid .*add 0.85 to the grid, or set it to 0.9"):
        slices.set_auto_params(ws, run, mislabel_confidence=0.85)
    assert slices.auto_slice(ws, run, "Candidate mislabels").params["mislabel_confidence"] == 0.8
    with pytest.raises(QueryError, match="unknown auto-slice parameter"):
        slices.set_auto_params(ws, run, low_confidnce=0.2)
    with pytest.raises(QueryError, match=r"\[0, 1\]"):
        slices.set_auto_params(ws, run, low_metric=3)


def test_no_auto_slices_without_ground_truth(ws):
    ws.add_data_rows("d", [{"global_key": "a", "row_data": "a.jpg"}])
    ws.create_feature("cat", "bbox")
    run = ws.create_run("m", "r")
    ws.add_predictions(run, [{"data_row": "a", "feature": "cat", "bbox": [1, 1, 5, 5], "confidence": 0.4}])
    assert slices.auto_slices(ws, run) == []


def test_counts_are_none_until_metrics_exist(ws, monkeypatch):
    from slicewise import metrics
    from slicewise.errors import MetricsError

    def not_ready(*a, **k):
        raise MetricsError("the run's metrics are not computed", fix="slicewise metrics compute RUN")
    monkeypatch.setattr(metrics, "row_metrics_table", not_ready, raising=False)
    monkeypatch.setattr(metrics, "grids", lambda *a: ((0.5,), (0.5,)), raising=False)
    ws.add_data_rows("d", [{"global_key": "a", "row_data": "a.jpg"}])
    ws.create_feature("cat", "bbox")
    ws.add_annotations([{"data_row": "a", "feature": "cat", "bbox": [1, 1, 5, 5]}])
    run = ws.create_run("m", "r")
    ws.add_predictions(run, [{"data_row": "a", "feature": "cat", "bbox": [1, 1, 5, 5], "confidence": 0.4}])
    auto = {s.auto_key: s.count for s in slices.auto_slices(ws, run)}
    assert auto["low-confidence"] == 1 and auto["false-positive"] is None
    with pytest.raises(QueryError, match="not computed"):
        search(ws, run, "fp > 0")


def _overall(gen, ids):
    tp = sum(gen.metric(i, "tp") for i in ids)
    fp = sum(gen.metric(i, "fp") for i in ids)
    fn = sum(gen.metric(i, "fn") for i in ids)
    return tp / (tp + fp), tp / (tp + fn), 2 * tp / (2 * tp + fp + fn)


def test_slice_metrics_and_check(gen):
    ws, run = gen.ws, gen.run
    slices.create_slice(ws, "valid set", "split = valid")
    ids = [r.id for r in gen.run_rows() if r.split == "valid"]
    p, r, f1 = _overall(gen, ids)
    sm = slices.slice_metrics(ws, "valid set", run, 0.5, 0.5)
    assert sm.count == len(ids) and sm.total == len(gen.run_ids)
    assert (sm.overall.precision, sm.overall.recall, sm.overall.f1) == pytest.approx((p, r, f1))
    assert sm.overall_all.recall == pytest.approx(_overall(gen, [x.id for x in gen.run_rows()])[1])
    assert sm.confusion == {"rows_seen": len(ids)}  # the metrics functions got rows=(sql, params) of the slice
    cat_tp = sum(gen.fmetrics[0.5].get((i, "cat"), {}).get("tp", 0) for i in ids)
    assert sm.features.get("cat").tp == cat_tp

    ok = slices.check(ws, run, "valid set", {"recall": r - 0.01, "count": len(ids)}, {"precision": p + 0.01}, 0.5, 0.5)
    assert ok.passed and "PASSED" in ok.report()
    bad = slices.check(ws, run, "valid set", {"recall": r + 0.01, "precision": 0.0}, None, 0.5, 0.5)
    assert not bad.passed
    assert [i.passed for i in bad.items] == [False, True]
    assert "FAIL recall" in bad.report() and "below the bound" in bad.report()
    per_feature = slices.check(ws, run, "valid set", {"recall[cat]": 0.0, "recall[traffic light]": 1.1}, None, 0.5, 0.5)
    assert [i.passed for i in per_feature.items][1] is False
    with pytest.raises(QueryError, match="did you mean 'recall'"):
        slices.check(ws, run, "valid set", {"recal": 0.5})
    with pytest.raises(QueryError, match="did you mean 'cat'"):
        slices.check(ws, run, "valid set", {"recall[cta]": 0.5})
    # auto slices can be checked too, by key
    assert slices.check(ws, run, "false-negative", {"count": 0}).passed


def test_check_cli_exit_codes(gen):
    from slicewise.cli import app

    ws, run = gen.ws, gen.run
    slices.create_slice(ws, "valid set", "split = valid")
    ids = [r.id for r in gen.run_rows() if r.split == "valid"]
    _, r, _ = _overall(gen, ids)
    runner = CliRunner()
    base = ["check", run.ref, "--slice", "valid set", "-w", str(ws.path), "--confidence", "0.5", "--iou", "0.5"]
    res = runner.invoke(app, base + ["--min", f"recall={r - 0.01}"])
    assert res.exit_code == 0, res.output
    assert "PASSED" in res.output
    res = runner.invoke(app, base + ["--min", f"recall={r + 0.01}", "--max", "fp=100000"])
    assert res.exit_code == 1
    assert "FAIL recall" in res.output
    res = runner.invoke(app, base + ["--min", "recall"])
    assert res.exit_code == 2


def test_slice_and_query_cli(gen):
    from slicewise.cli import app

    ws, run = gen.ws, gen.run
    runner = CliRunner()
    w = ["-w", str(ws.path)]
    res = runner.invoke(app, ["slice", "create", "night rows", "tag:night", "--sort", "-confidence.max", *w])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["slice", "list", "--run", run.ref, *w])
    n = sum("night" in r.tags for r in gen.run_rows())
    assert "night rows" in res.output and f" {n} " in res.output
    res = runner.invoke(app, ["query", run.ref, "tag:night and not split = train", "--sort", "-confidence.max",
                              "--limit", "5", *w])
    assert res.exit_code == 0, res.output
    assert f"{sum('night' in r.tags and r.split != 'train' for r in gen.run_rows())} matching" in res.output
    res = runner.invoke(app, ["slice", "rename", "night rows", "night-time", *w])
    assert res.exit_code == 0 and "night-time" in res.output
    res = runner.invoke(app, ["slice", "auto", run.ref, "--confidence", "0.5", "--iou", "0.5", *w])
    assert res.exit_code == 0 and "Candidate" in res.output
    res = runner.invoke(app, ["slice", "delete", "night-time", *w])
    assert res.exit_code == 0
    assert slices.list_slices(ws) == []
