"""Comparison deltas equal a direct recomputation: two independent feature_metrics over the common rows."""

from __future__ import annotations

import numpy as np
import pytest

import slicewise.compare as C
from slicewise import metrics as M
from slicewise import slices
from slicewise.compare.diff import MIN_ROWS
from slicewise.view import View


def _random_pair(ws, seed=3, n=60):
    rng = np.random.default_rng(seed)
    keys = [f"k{i}" for i in range(n)]
    ws.add_data_rows("d", [{"global_key": k, "row_data": k, "width": 200, "height": 200,
                            "metadata": {"light": "night" if i % 3 == 0 else "day"}} for i, k in enumerate(keys)])
    for f in ("cat", "dog", "bird"):
        ws.create_feature(f, "bbox")
    anns, boxes = [], {}
    for k in keys:
        for _ in range(rng.integers(0, 4)):
            b = [float(v) for v in (*rng.uniform(0, 150, 2), *rng.uniform(10, 50, 2))]
            f = str(rng.choice(["cat", "dog", "bird"]))
            anns.append({"data_row": k, "feature": f, "bbox": b})
            boxes.setdefault(k, []).append((f, b))
    ws.add_annotations(anns)
    runs = []
    for name, skill in (("base", 0.6), ("new", 0.75)):
        run = ws.create_run("m", name)
        mine = keys[:50] if name == "base" else keys[5:]  # 45 common rows
        preds = []
        for k in mine:
            objs = boxes.get(k, [])
            for f, b in objs:
                if rng.uniform() < skill:
                    j = rng.normal(0, 4, 4)
                    g = f if rng.uniform() < 0.85 else str(rng.choice(["cat", "dog", "bird"]))
                    preds.append({"data_row": k, "feature": g, "bbox": [b[0] + j[0], b[1] + j[1], max(2, b[2] + j[2]),
                                                                        max(2, b[3] + j[3])],
                                  "confidence": float(rng.uniform(0.3, 1))})
            for _ in range(rng.poisson(0.5)):
                preds.append({"data_row": k, "feature": str(rng.choice(["cat", "dog"])),
                              "bbox": [float(v) for v in (*rng.uniform(0, 150, 2), 20, 20)],
                              "confidence": float(rng.uniform(0.3, 1))})
        ws.add_predictions(run, preds)
        ws.add_run_rows(run, keys[:50] if name == "base" else keys[5:])  # 45 common rows
        M.compute_metrics(ws, run)
        runs.append(run)
    return runs


@pytest.fixture(scope="module")
def rpair(tmp_path_factory):
    """(workspace, baseline, run) of :func:`_random_pair`, shared by the tests of this module (read only,
    but for the slice the first one saves)."""
    import slicewise

    w = slicewise.open(tmp_path_factory.mktemp("deltas") / "ws.duckdb")
    base, new = _random_pair(w)
    yield w, base, new
    w.close()


def test_deltas_equal_two_independent_computations(rpair):
    ws, base, new = rpair
    slices.create_slice(ws, "night rows", "metadata.light = night")
    cmp = C.compare_runs(ws, base, new, confidence=0.5, iou=0.5, n_boot=300, auto=False)
    assert (cmp.rows, cmp.only_baseline, cmp.only_run) == (45, 5, 10)
    common = ("SELECT data_row_id FROM run_rows WHERE run_id = ? INTERSECT SELECT data_row_id FROM run_rows "
              "WHERE run_id = ?", [base.id, new.id])
    fa = M.feature_metrics(ws, base, 0.5, 0.5, rows=common)
    fb = M.feature_metrics(ws, new, 0.5, 0.5, rows=common)
    assert {g.name for g in cmp.classes} == {r.feature for r in fa} | {r.feature for r in fb}
    for g in cmp.classes:
        a, b = fa.get(g.name), fb.get(g.name)
        assert g.tp == (a.tp if a else 0, b.tp if b else 0) and g.fn == (a.fn if a else 0, b.fn if b else 0)
        for m in ("precision", "recall", "f1"):
            va, vb = getattr(a, m, None), getattr(b, m, None)
            d = g.metrics[m]
            assert (d.baseline, d.run) == (va, vb)
            assert d.delta == (None if va is None or vb is None else pytest.approx(vb - va, abs=1e-9))
    # overall: micro over every feature, from plain sums
    tp_a, fp_a, fn_a = (sum(getattr(r, x) for r in fa) for x in ("tp", "fp", "fn"))
    tp_b, fp_b, fn_b = (sum(getattr(r, x) for r in fb) for x in ("tp", "fp", "fn"))
    o = cmp.overall.metrics
    assert o["recall"].delta == pytest.approx(tp_b / (tp_b + fn_b) - tp_a / (tp_a + fn_a), abs=1e-9)
    assert o["precision"].delta == pytest.approx(tp_b / (tp_b + fp_b) - tp_a / (tp_a + fp_a), abs=1e-9)
    # the slice: its rows among the common ones
    night = next(g for g in cmp.slices if g.name == "night rows")
    rows = (common[0] + " INTERSECT SELECT data_row_id FROM row_metadata WHERE field = 'light' AND "
            "value_string = 'night'", common[1])
    na, nb = M.feature_metrics(ws, base, 0.5, 0.5, rows=rows), M.feature_metrics(ws, new, 0.5, 0.5, rows=rows)
    ra = sum(r.tp for r in na) / sum(r.tp + r.fn for r in na)
    rb = sum(r.tp for r in nb) / sum(r.tp + r.fn for r in nb)
    assert night.metrics["recall"].delta == pytest.approx(rb - ra, abs=1e-9)
    assert night.rows == len(ws.sql(rows[0], rows[1]).fetchall())
    # intervals: contain the point delta, seeded (same numbers twice), flagged when they exclude 0
    again = C.compare_runs(ws, base, new, confidence=0.5, iou=0.5, n_boot=300, auto=False)
    for g, h in zip(cmp.groups(), again.groups(), strict=True):
        for m, d in g.metrics.items():
            assert d == h.metrics[m]
            if d.delta is not None and d.lo is not None:
                assert d.lo - 1e-9 <= d.delta <= d.hi + 1e-9
                assert d.significant == ((d.lo > 0 or d.hi < 0) and g.rows >= MIN_ROWS)


def test_delta_and_flip_filters(rpair):
    ws, base, new = rpair
    rf_a, rf_b = M.row_feature_metrics_table(ws, base, 0.5, 0.5), M.row_feature_metrics_table(ws, new, 0.5, 0.5)
    cat = ws.sql("SELECT id FROM features WHERE name = 'cat'").fetchone()[0]
    ra = dict(ws.sql(f"SELECT data_row_id, recall FROM {rf_a} WHERE feature_id = {cat}").fetchall())
    rb = dict(ws.sql(f"SELECT data_row_id, recall FROM {rf_b} WHERE feature_id = {cat}").fetchall())
    common = {r[0] for r in ws.sql("SELECT data_row_id FROM run_rows WHERE run_id = ? INTERSECT SELECT data_row_id "
                                   "FROM run_rows WHERE run_id = ?", [base.id, new.id]).fetchall()}
    want = sorted(r for r in common if ra.get(r) is not None and rb.get(r) is not None and rb[r] - ra[r] < -0.1)
    v = View(run=new, baseline=base, confidence=0.5, iou=0.5, filter="delta.recall[cat] < -0.1").resolve(ws)
    got = sorted(r.data_row_id for r in v.page(limit=100).rows)
    assert got == want and want
    # flip:tp->fn holds exactly the rows of the labels that flipped so
    flipped = {o["data_row_id"] for o in C.flipped_objects(ws, base, new, confidence=0.5, iou=0.5, flip="tp->fn")}
    v = View(run=new, baseline=base, confidence=0.5, iou=0.5, filter="flip:tp->fn").resolve(ws)
    assert {r.data_row_id for r in v.page(limit=100).rows} == flipped and flipped
    assert v.text == "flip:tp->fn"
    # negation and counts
    n_all = View(run=new, confidence=0.5, iou=0.5).resolve(ws).count()
    n_not = View(run=new, baseline=base, confidence=0.5, iou=0.5, filter="not flip:tp->fn").resolve(ws).count()
    assert n_not == n_all - len(flipped)
    # sorting by a delta
    page = View(run=new, baseline=base, confidence=0.5, iou=0.5, filter="delta.tp < 0", sort="delta.tp").resolve(ws).page()
    assert [r.sort_value for r in page.rows] == sorted(r.sort_value for r in page.rows) and page.rows


def test_errors_without_baseline(rpair):
    from slicewise.errors import QueryError

    ws, base, new = rpair
    with pytest.raises(QueryError, match="needs a run to compare with"):
        View(run=new, filter="flip:tp->fn").resolve(ws).count()
    with pytest.raises(QueryError, match="unknown flip type"):
        View(run=new, baseline=base, filter="flip:tp->xx").resolve(ws).count()
    with pytest.raises(QueryError, match="delta.nope"):
        View(run=new, baseline=base, filter="delta.nope < 1").resolve(ws).count()
    with pytest.raises(QueryError, match="same run"):
        C.compare_runs(ws, new, new)
