"""With the real metrics engine: metric filters read its tables, slices follow a recompute."""

from __future__ import annotations

import pytest
from query.sw_query_world import generated_world, indoor_world

from slicewise import slices
from slicewise.query import facets, search

metrics = pytest.importorskip("slicewise.metrics.views")


def _table(ws, run, c, t):
    from slicewise import metrics as m

    name = m.row_metrics_table(ws, run, c, t)
    cur = ws.store.cursor()
    rel = cur.execute(f"SELECT * FROM {name}")
    cols = [d[0] for d in rel.description]
    return {r[0]: dict(zip(cols, r, strict=True)) for r in rel.fetchall()}


def test_metric_filters_on_indoor_read_the_engine_tables(tmp_path, shared_data):
    import slicewise
    from slicewise import metrics as m

    ws = slicewise.open(tmp_path / "ws.duckdb")
    w = indoor_world(ws, shared_data)
    m.compute_metrics(ws, w.run)
    for c, t in [(0.5, 0.5), (0.3, 0.7)]:
        rows = _table(ws, w.run, c, t)
        cases = {
            "fp > 0": lambda v: v["fp"] > 0,
            "iou < 0.5": lambda v: v["iou"] is not None and v["iou"] < 0.5,
            "recall between 0.2 and 0.6 or precision = 1": lambda v: (v["recall"] is not None and 0.2 <= v["recall"] <= 0.6)
            or v["precision"] == 1,
            "not f1 >= 0.5": lambda v: not (v["f1"] is not None and v["f1"] >= 0.5),
            "tp >= 2 and fn <= 3": lambda v: v["tp"] >= 2 and v["fn"] <= 3,
        }
        for text, pred in cases.items():
            want = sorted(i for i, v in rows.items() if pred(v))
            got = [r.data_row_id for r in search(ws, w.run, text, c, t, limit=1000).rows]
            assert got == want, (text, c, t)
        # sorted by a metric: the table's order, nulls last, ties by id
        got = [r.data_row_id for r in search(ws, w.run, None, c, t, limit=1000, sort="-recall").rows]
        have = sorted((i for i, v in rows.items() if v["recall"] is not None), key=lambda i: (-rows[i]["recall"], i))
        assert got == have + sorted(i for i, v in rows.items() if v["recall"] is None)
    f = facets(ws, w.run, "has:chair", 0.5, 0.5)
    assert f.metrics_error is None and sum(f.histograms["recall"].counts) + f.histograms["recall"].missing == f.total
    ws.close()


def test_slices_follow_a_recompute(ws):
    from slicewise import metrics as m

    w = generated_world(ws, n=80, seed=5)
    m.compute_metrics(ws, w.run)
    s = slices.create_slice(ws, "missed", "fn > 0")
    before = {r.global_key for r in slices.slice_rows(ws, s, w.run, 0.5, 0.5, limit=1000).rows}
    # a row without ground truth gets a label away from its predictions: it becomes a false negative
    target = next(r.key for r in w.run_rows() if not r.gt and r.pred)
    assert target not in before
    ws.add_annotations([{"data_row": target, "feature": "cat", "bbox": [60, 60, 10, 10]}])
    m.compute_metrics(ws, w.run)
    after = {r.global_key for r in slices.slice_rows(ws, s, w.run, 0.5, 0.5, limit=1000).rows}
    assert after == before | {target}
    fn_rows = {i for i, v in _table(ws, w.run, 0.5, 0.5).items() if v["fn"] > 0}
    assert slices.slice_count(ws, s, w.run, 0.5, 0.5) == len(fn_rows)
