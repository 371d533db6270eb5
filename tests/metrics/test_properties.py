"""Property tests (hypothesis): counting identities, greedy-matching stability, order independence."""

from __future__ import annotations

import random

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils

import slicewise
from slicewise import metrics as M

CLASSES = ["a", "b", "c"]
box = st.tuples(st.integers(0, 40), st.integers(0, 40), st.integers(1, 30), st.integers(1, 30))
obj = st.tuples(st.integers(0, 2), st.sampled_from(CLASSES), box)  # (row, class, box)
pred = st.tuples(st.integers(0, 2), st.sampled_from(CLASSES), box, st.sampled_from([0.05, 0.3, 0.3, 0.55, 0.8, 1.0]))
SETTINGS = settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.too_slow])


def _build(path, gts, preds):
    ws = slicewise.open(path)
    ws.add_data_rows("d", [{"global_key": f"r{i}", "row_data": "x", "width": 80, "height": 80} for i in range(3)])
    for c in CLASSES:
        ws.create_feature(c, "bbox")
    if gts:
        ws.add_annotations([{"data_row": f"r{r}", "feature": c, "bbox": list(b)} for r, c, b in gts])
    run = ws.create_run("m", "v")
    if preds:
        ws.add_predictions(run, [{"data_row": f"r{r}", "feature": c, "bbox": list(b), "confidence": s}
                                 for r, c, b, s in preds])
    ws.add_run_rows(run, ["r0", "r1", "r2"])
    M.compute_metrics(ws, run)
    return ws, run


@SETTINGS
@given(gts=st.lists(obj, max_size=10), preds=st.lists(pred, max_size=12))
def test_counting_identities(tmp_path_factory, gts, preds):
    ws, run = _build(tmp_path_factory.mktemp("p") / "w.duckdb", gts, preds)
    try:
        for c in (0.0, 0.3, 0.6):
            for t in (0.0, 0.25, 0.5, 0.9):
                fm = {f.feature: f.to_dict() for f in M.feature_metrics(ws, run, c, t).features}
                for cls in CLASSES:
                    f = fm.get(cls, {"tp": 0, "fp": 0, "fn": 0})
                    assert f["tp"] + f["fn"] == sum(1 for g in gts if g[1] == cls)
                    assert f["tp"] + f["fp"] == sum(1 for p in preds if p[1] == cls and p[3] >= c)
                cm = M.confusion_matrix(ws, run, c, t)
                counts = np.array(cm.counts)
                assert counts[:, :-1].sum() == sum(1 for p in preds if p[3] >= c)  # every kept prediction once
                assert counts[:-1, :].sum() == len(gts)  # every label once
    finally:
        ws.close()


@SETTINGS
@given(gts=st.lists(obj, max_size=10), preds=st.lists(pred, max_size=12))
def test_matching_is_the_greedy_matching_at_every_threshold(tmp_path_factory, gts, preds):
    """Checked with IoUs from pycocotools: one-to-one, every match above t, and greedy-stable: a pair left
    unmatched with IoU > t has a side matched with an IoU at least as high (so higher t gives a subset)."""
    ws, run = _build(tmp_path_factory.mktemp("p") / "w.duckdb", gts, preds)
    try:
        pid = {i: v for i, v in enumerate(r[0] for r in ws.sql("SELECT id FROM predictions ORDER BY id").fetchall())}
        gid = {i: v for i, v in enumerate(r[0] for r in ws.sql("SELECT id FROM annotations ORDER BY id").fetchall())}
        conf_grid, _ = M.grids(ws, run)
        prev: set | None = None
        for t in (0.0, 0.2, 0.5, 0.8):
            for k, c in enumerate(conf_grid):
                recs = ws.sql("SELECT pred_id, gt_id, iou FROM match_records WHERE conf_idx = ? AND pred_id IS NOT NULL "
                              "AND gt_id IS NOT NULL AND iou > ?", [k, t]).fetchall()
                matched = {(p, g): v for p, g, v in recs}
                ps = [p for p, _ in matched]
                gs = [g for _, g in matched]
                assert len(set(ps)) == len(ps) and len(set(gs)) == len(gs)
                best_p = {p: v for (p, _), v in matched.items()}
                best_g = {g: v for (_, g), v in matched.items()}
                for i, (r, _, b, s) in enumerate(preds):
                    if s < c:
                        assert pid[i] not in best_p
                        continue
                    for j, (r2, _, b2) in enumerate(gts):
                        if r2 != r:
                            continue
                        iou = float(mask_utils.iou([list(map(float, b))], [list(map(float, b2))], [0])[0][0])
                        if (pid[i], gid[j]) in matched:
                            assert abs(matched[(pid[i], gid[j])] - iou) < 1e-12
                        elif iou > t:
                            assert best_p.get(pid[i], -1) >= iou - 1e-12 or best_g.get(gid[j], -1) >= iou - 1e-12
                if k == 0:
                    pairs = set(matched)
                    assert prev is None or pairs <= prev  # matches at a higher t are a subset
                    prev = pairs
    finally:
        ws.close()


@SETTINGS
@given(gts=st.lists(obj, max_size=10), preds=st.lists(pred, max_size=12), seed=st.integers(0, 1000))
def test_results_do_not_depend_on_input_order(tmp_path_factory, gts, preds, seed):
    rng = random.Random(seed)
    g2, p2 = gts[:], preds[:]
    rng.shuffle(g2)
    rng.shuffle(p2)
    out = []
    for g, p in ((gts, preds), (g2, p2)):
        ws, run = _build(tmp_path_factory.mktemp("p") / "w.duckdb", g, p)
        try:
            res = []
            for c, t in ((0.0, 0.0), (0.3, 0.5), (0.0, 0.3)):
                table = M.row_feature_metrics_table(ws, run, c, t)
                res.append(sorted(ws.sql(f"SELECT data_row_id, feature_id, tp, fp, fn, round(iou, 9) FROM {table}").fetchall()))
                res.append(M.confusion_matrix(ws, run, c, t).counts)
            out.append(res)
        finally:
            ws.close()
    assert out[0] == out[1]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 200), max_size=60), st.lists(st.integers(-5, 210), max_size=60),
       st.sampled_from([1, 10**7]))
def test_row_positions_are_binary_search_positions(rows, ids, scale):
    """The level arrays' row lookup (a dense table when ids are near-consecutive, else a binary search) gives
    what ``np.searchsorted`` gives, ids absent, below and above the rows included."""
    from slicewise.metrics.fast import positions

    r = np.unique(np.asarray(rows, np.int64)) * scale
    q = np.asarray(ids, np.int64) * scale
    assert np.array_equal(positions(r, q), np.searchsorted(r, q))


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 30), st.lists(st.tuples(st.integers(0, 29), st.integers(0, 3), st.integers(0, 3)), max_size=80),
       st.lists(st.tuples(st.integers(0, 79), st.sampled_from([0.1, 0.5, 0.50000001, 0.7, 0.95, 1.0])), max_size=80),
       st.sampled_from([0.0, 0.5, 0.75]), st.booleans())
def test_row_metrics_at_t_are_the_weighted_sums(nr, lines, pairs, t, as_ints):
    """A row's tp, fp, fn, precision, recall and F1 at one IoU threshold (one compiled pass, lines without a TP
    skipped, weights computed inline) are the very floats of the sums the whole grid adds (``row_sums`` with
    ``Level.weights``) and of NumPy's ratios, whatever dtypes the counts come in."""
    from slicewise.metrics import fast, reduce

    lines = sorted((r % nr, a, b) for r, a, b in lines)
    row_pos = np.array([r for r, _, _ in lines], np.int64)
    n_pred = np.array([a for _, a, _ in lines], np.float64)
    n_gt = np.array([b for _, _, b in lines], np.float64)
    L = len(lines)
    pairs = [(j % L, iou) for j, iou in pairs] if L else []
    pair_line = np.array([j for j, _ in pairs], np.int64)
    pair_iou = np.array([i for _, i in pairs], np.float64)
    rows_pred = np.bincount(row_pos, weights=n_pred, minlength=nr)
    rows_gt = np.bincount(row_pos, weights=n_gt, minlength=nr)
    n_p, n_r, n_f = (np.bincount(row_pos, weights=(v > 0).astype(float), minlength=nr)
                     for v in (n_pred, n_gt, n_pred + n_gt))
    lv = fast.Level(row_pos, np.zeros(L, np.int64), n_pred, n_gt, pair_line, pair_iou, {})
    w = lv.weights
    want = fast.row_sums(row_pos, lv.tp(t).reshape(-1, 1), w["p"], w["r"], w["f"], nr)[:, 0]
    cast = (lambda v: v.astype(np.int32)) if as_ints else (lambda v: v)
    by_line = fast.by_line(pair_line, pair_iou)  # (the kernel reads a line's pairs together)
    assert np.array_equal(by_line[0], np.sort(pair_line)) and sorted(zip(*by_line, strict=True)) == sorted(pairs)

    def kernel(scale: float = 0.0) -> list[np.ndarray]:
        out = fast.Outputs(nr, spare=False).take()
        fast._row_counts_at(*by_line, t, row_pos, cast(n_pred), cast(n_gt), cast(rows_pred), cast(rows_gt), cast(n_p),
                            cast(n_r), cast(n_f), scale, *out)
        return out

    got = kernel()
    assert np.array_equal(got[0], want[0].astype(np.int32))
    assert np.array_equal(got[1], (rows_pred - want[0]).astype(np.int32))
    assert np.array_equal(got[2], (rows_gt - want[0]).astype(np.int32))
    for g, s, d in zip(got[3:], want[1:], (n_p, n_r, n_f), strict=True):
        assert np.array_equal(g, reduce.safe_divide(s, d), equal_nan=True)
    for g, raw in zip(kernel(reduce.ratio_scale()), got, strict=True):  # (rounded in the pass as NumPy rounds them)
        assert np.array_equal(g, np.round(raw, reduce.RATIO_DECIMALS) if raw.dtype.kind == "f" else raw, equal_nan=True)
    rowc = {"n_pred": cast(rows_pred), "n_gt": cast(rows_gt), "n_p": cast(n_p), "n_r": cast(n_r), "n_f": cast(n_f),
            "iou": np.where(np.arange(nr) % 3 == 0, np.nan, 0.5)}
    lv = fast.Level(row_pos, np.zeros(L, np.int64), cast(n_pred), cast(n_gt), *by_line, rowc)
    cols = fast.row_arrays(lv, np.arange(nr), t, np.zeros(nr, np.int32), {}, validity=True)
    for name in ("precision", "recall", "f1", "iou"):  # (each ratio's validity: where it is not NaN)
        assert np.array_equal(cols[name + fast.VALID], np.packbits(~np.isnan(cols[name]), bitorder="little"))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.floats(-1e6, 1e6), st.integers(0, 10**6).map(lambda k: k / 7), st.just(float("nan")),
                          st.integers(0, 10**13).map(lambda k: (2 * k + 1) / 2e12)), max_size=50))
def test_ratios_rounded_in_a_kernel_are_numpys(values):
    """The compiled passes round a ratio as ``np.round(x, RATIO_DECIMALS)`` does (multiply by the same power of
    ten, round half to even, divide), ties at the 12th decimal included."""
    from slicewise.metrics import fast, reduce

    assert reduce.ratio_scale() == 10.0 ** reduce.RATIO_DECIMALS
    v = np.array(values, np.float64)
    got = np.array([fast._ratio(x, 1.0, reduce.ratio_scale()) for x in v])
    assert np.array_equal(got, np.round(v, reduce.RATIO_DECIMALS), equal_nan=True)
    assert np.array_equal(fast.rounded(v, reduce.ratio_scale()), np.round(v, reduce.RATIO_DECIMALS), equal_nan=True)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 300), min_size=1, max_size=60, unique=True), st.sampled_from([1, 10**6]),
       st.data())
def test_a_tables_lines_are_found_by_id(ids, scale, data):
    """The facets find each matching row's line in a table's columns by its id: the table's ids in its own
    order (sorted as built, or with patched lines appended), near-consecutive (a lookup table) or not."""
    from slicewise.query.facetcache import Lines

    ids = np.asarray(ids, np.int64) * scale
    lines = Lines.of(ids)
    asked = np.asarray(data.draw(st.lists(st.sampled_from(ids.tolist()), max_size=40)), np.int64)
    want = np.array([int(np.flatnonzero(ids == a)[0]) for a in asked], np.int64)
    assert np.array_equal(lines.positions(asked), want)
