"""Jobs (pending, ready, stale, failed, retry), incremental recomputation, grids, bad input, custom metrics."""

from __future__ import annotations

import numpy as np
import pytest

from slicewise import metrics as M
from slicewise.errors import MetricsError, ValidationError
from slicewise.metrics import fast


def _ws(ws, n=4):
    ws.add_data_rows("d", [{"global_key": f"r{i}", "row_data": "x", "width": 100, "height": 100} for i in range(n)])
    ws.create_feature("cat", "bbox")
    ws.create_feature("dog", "bbox")
    ws.add_annotations([{"data_row": f"r{i}", "feature": "cat", "bbox": [0, 0, 10, 10]} for i in range(n)])
    run = ws.create_run("m", "v1")
    ws.add_predictions(run, [{"data_row": f"r{i}", "feature": "cat", "bbox": [0, 0, 10, 9], "confidence": 0.9}
                             for i in range(n)])
    return run


def _counts(ws, run, c=0.5, t=0.5):
    table = M.row_metrics_table(ws, run, c, t)
    return ws.sql(f"SELECT d.global_key, tp, fp, fn FROM {table} m JOIN data_rows d ON d.id = m.data_row_id "
                  "ORDER BY 1").fetchall()


def test_states_and_incremental_recomputation(ws):
    run = _ws(ws)
    st = M.job_status(ws, run)
    assert (st.state, st.done, st.total) == ("pending", 0, 4)
    with pytest.raises(MetricsError, match="not computed"):
        M.row_metrics_table(ws, run, 0.5, 0.5)
    seen = []
    st = M.compute_metrics(ws, run, on_progress=lambda d, t: seen.append((d, t)))
    assert (st.state, st.done, st.total) == ("ready", 4, 4) and seen[-1] == (4, 4)
    assert _counts(ws, run)[0] == ("r0", 1, 0, 0)
    records_r3 = ws.sql("SELECT count(*) FROM match_records WHERE data_row_id = ?", [ws.data_row("r3").id]).fetchone()
    # new predictions on one row: stale, and only that row is recomputed
    ws.add_predictions(run, [{"data_row": "r1", "feature": "dog", "bbox": [50, 50, 5, 5], "confidence": 0.7}],
                       source="second")
    st = M.job_status(ws, run)
    assert st.state == "stale" and st.stale_rows == 1
    assert _counts(ws, run)[1] == ("r1", 1, 0, 0)  # the previous results stay readable while stale
    seen.clear()
    st = M.compute_metrics(ws, run, on_progress=lambda d, t: seen.append((d, t)))
    assert st.state == "ready" and seen[-1] == (1, 1)  # one row touched
    assert _counts(ws, run)[1] == ("r1", 1, 1, 0)
    assert ws.sql("SELECT count(*) FROM match_records WHERE data_row_id = ?", [ws.data_row("r3").id]).fetchone() \
        == records_r3
    # new labels make the row stale too
    ws.add_annotations([{"data_row": "r2", "feature": "dog", "bbox": [60, 60, 5, 5]}], source="more")
    assert M.job_status(ws, run).stale_rows == 1
    M.compute_metrics(ws, run)
    assert _counts(ws, run)[2] == ("r2", 1, 0, 1)
    # same numbers as a full recomputation
    before = _counts(ws, run, 0.0, 0.3)
    M.retry(ws, run)
    assert _counts(ws, run, 0.0, 0.3) == before


def test_grids_validation_and_custom_grid(ws, table_snapshot):
    run = _ws(ws)
    assert M.grids(ws, run) == (tuple(i / 10 for i in range(11)), tuple(i / 10 for i in range(11)))
    snap = table_snapshot(ws)
    for bad, match in (([0.5, 0.2], "sorted"), ([0.1, 1.5], "outside"), ([], "empty"), (["x"], "numbers"),
                       ([0.2, 0.2], "sorted")):
        with pytest.raises(MetricsError, match=match):
            M.set_grids(ws, run, confidence=bad)
    assert table_snapshot(ws) == snap
    M.set_grids(ws, run, confidence=[0.5 + i / 100 for i in range(11)], iou=[0.5, 0.75])
    M.compute_metrics(ws, run)
    assert M.grids(ws, run)[1] == (0.5, 0.75)
    with pytest.raises(MetricsError, match="not on the run's confidence grid"):
        M.row_metrics_table(ws, run, 0.3, 0.5)
    assert _counts(ws, run, 0.55, 0.5)[0] == ("r0", 1, 0, 0)
    assert _counts(ws, run, 0.6, 0.5)[0] == ("r0", 1, 0, 0)
    with pytest.raises(MetricsError, match="outside"):
        M.row_metrics_table(ws, run, 0.55, 1.5)


def test_empty_run_and_incomparable_kinds_change_nothing(ws, table_snapshot):
    ws.add_data_rows("d", [{"global_key": "a", "row_data": "x", "width": 50, "height": 50}])
    empty = ws.create_run("m", "empty")
    snap = table_snapshot(ws)
    with pytest.raises(MetricsError, match="no data rows"):
        M.compute_metrics(ws, empty)
    assert table_snapshot(ws) == snap
    ws.create_feature("blob", "mask")
    ws.create_feature("nose", "point")
    from pycocotools import mask as mask_utils
    m = np.zeros((50, 50), np.uint8)
    m[:10, :10] = 1
    rle = mask_utils.encode(np.asfortranarray(m))
    ws.add_annotations([{"data_row": "a", "feature": "blob", "mask": {"size": [50, 50], "counts": rle["counts"].decode()}}])
    run = ws.create_run("m", "points")
    ws.add_predictions(run, [{"data_row": "a", "feature": "nose", "point": [3, 3], "confidence": 0.5}])
    snap = table_snapshot(ws)
    with pytest.raises(MetricsError, match="cannot be compared"):
        M.compute_metrics(ws, run)
    assert table_snapshot(ws) == snap


def test_failed_job_is_reported_and_retried(ws, monkeypatch):
    run = _ws(ws)
    from slicewise.metrics import matching

    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(matching, "match_rows", boom)
    with pytest.raises(RuntimeError):
        M.compute_metrics(ws, run)
    st = M.job_status(ws, run)
    assert st.state == "failed" and "disk on fire" in st.error
    assert ws.sql("SELECT count(*) FROM match_records").fetchone()[0] == 0  # nothing stored half-way
    monkeypatch.undo()
    assert M.retry(ws, run).state == "ready"


@pytest.mark.parametrize("at_once", [True, False], ids=["levels-read-at-once", "levels-read-four-at-a-time"])
def test_grid_metrics_equal_the_per_threshold_views(ws, monkeypatch, at_once):
    if not at_once:
        monkeypatch.setattr(fast, "LEVELS_AT_ONCE", 0)
    ws.add_data_rows("d", [{"global_key": f"r{i}", "row_data": "x", "width": 100, "height": 100} for i in range(6)])
    ws.create_feature("cat", "bbox")
    ws.create_feature("dog", "bbox")
    ws.create_feature("weather", "radio", ["sun", "rain"])
    rng = np.random.default_rng(3)
    anns, preds = [], []
    for i in range(6):
        for _ in range(rng.integers(0, 4)):
            x, y = rng.uniform(0, 60, 2)
            anns.append({"data_row": f"r{i}", "feature": str(rng.choice(["cat", "dog"])), "bbox": [x, y, 20, 20]})
            preds.append({"data_row": f"r{i}", "feature": str(rng.choice(["cat", "dog"])),
                          "bbox": [x + rng.uniform(-8, 8), y + rng.uniform(-8, 8), 20, 20], "confidence": rng.random()})
        anns.append({"data_row": f"r{i}", "feature": "weather", "answer": str(rng.choice(["sun", "rain"]))})
        preds.append({"data_row": f"r{i}", "feature": "weather", "answer": str(rng.choice(["sun", "rain"])),
                      "confidence": rng.random()})
    ws.add_annotations(anns)
    run = ws.create_run("m", "v1")
    ws.add_predictions(run, preds)
    M.compute_metrics(ws, run)
    g = M.grid_metrics(ws, run)
    cols = "data_row_id, tp, fp, fn, tn, precision, recall, f1, iou, conf_min, conf_max, conf_mean, n_predictions"
    for k, c in enumerate(g.confidence):
        for ti, t in enumerate(g.iou):
            a = ws.sql(f"SELECT {cols} FROM {M.row_metrics_table(ws, run, c, t)} ORDER BY 1").fetchall()
            b = ws.sql(f"SELECT {cols} FROM {g.table} WHERE conf_idx = ? AND iou_idx = ? ORDER BY 1", [k, ti]).fetchall()
            assert _same(a, b)
            assert np.array_equal(np.array(M.confusion_matrix(ws, run, c, t).counts), g.confusion[k, ti])


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            assert (u is None and v is None) or abs(u - v) < 1e-9, (x, y)
    return True


def test_custom_metrics_from_records_and_files(ws, tmp_path, table_snapshot):
    run = _ws(ws, 2)
    n = M.add_custom_metrics(ws, run, [{"data_row": "r0", "name": "loss", "value": 0.25},
                                       {"data_row": "r1", "name": "loss", "value": 1.5},
                                       {"data_row": "r0", "feature": "cat", "name": "margin", "value": -2}])
    assert n == 3
    (tmp_path / "m.csv").write_text("data_row,name,value,feature\nr0,loss,0.75,\nr1,entropy,3,cat\n")
    assert M.add_custom_metrics(ws, run, tmp_path / "m.csv") == 2
    rows = ws.sql(f"SELECT d.global_key, c.feature_id, c.name, c.value FROM {M.custom_metrics_table(ws, run)} c "
                  "JOIN data_rows d ON d.id = c.data_row_id ORDER BY 1, 3").fetchall()
    cat = ws.feature("cat").id
    assert rows == [("r0", None, "loss", 0.75), ("r0", cat, "margin", -2.0), ("r1", cat, "entropy", 3.0),
                    ("r1", None, "loss", 1.5)]
    import pyarrow as pa
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"data_row": ["r1"], "name": ["loss"], "value": [9.0]}), tmp_path / "m.parquet")
    assert M.add_custom_metrics(ws, run, tmp_path / "m.parquet") == 1
    snap = table_snapshot(ws)
    with pytest.raises(ValidationError) as err:
        M.add_custom_metrics(ws, run, [{"data_row": "r0", "name": "x", "value": 1},
                                       {"data_row": "nope", "name": "x", "value": 1},
                                       {"data_row": "r1", "name": "x", "value": "abc"},
                                       {"data_row": "r1", "name": "x", "feature": "zebra", "value": 1}])
    text = str(err.value)
    assert "record 1 [data_row]" in text and "record 2 [value]" in text and "record 3 [feature]" in text
    assert table_snapshot(ws) == snap


def test_export(ws, tmp_path):
    import pyarrow.parquet as pq

    run = _ws(ws, 3)
    M.compute_metrics(ws, run)
    assert M.export_row_metrics(ws, run, 0.5, 0.5, tmp_path / "rows.parquet") == 3
    t = pq.read_table(tmp_path / "rows.parquet")
    assert t.column("global_key").to_pylist() == ["r0", "r1", "r2"] and t.column("tp").to_pylist() == [1, 1, 1]
    assert M.export_row_metrics(ws, run, 0.5, 0.5, tmp_path / "rf.csv", per_feature=True) == 3
    assert (tmp_path / "rf.csv").read_text().splitlines()[0].startswith('"global_key","feature"')
    with pytest.raises(MetricsError, match="parquet or .csv"):
        M.export_row_metrics(ws, run, 0.5, 0.5, tmp_path / "rows.xlsx")
