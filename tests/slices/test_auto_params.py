"""Auto-slice parameters are explicit and survive grid edits; the per-class "low recall" reading (real engine)."""

from __future__ import annotations

from query.sw_query_world import generated_world

from slicewise import metrics, slices


def _fp_rows(ws, run, c, t):
    table = metrics.row_metrics_table(ws, run, c, t)
    return sorted(r[0] for r in ws.sql(f"SELECT data_row_id FROM {table} WHERE fp > 0").fetchall())


def _members(ws, run, s, c, t):
    return sorted(r.data_row_id for r in slices.slice_rows(ws, s, run, c, t, limit=1000).rows)


def test_mislabel_confidence_survives_a_grid_edit(ws):
    w = generated_world(ws, n=80, seed=5)
    run = w.run
    metrics.compute_metrics(ws, run)
    slices.set_auto_params(ws, run, mislabel_confidence=0.9)
    cm = slices.auto_slice(ws, run, "candidate-mislabels")
    assert cm.filter == "fp@0.9 > 0" and cm.note is None
    assert cm.description.startswith("FP with confidence >= 0.9")
    want = _fp_rows(ws, run, 0.9, 0.5)
    assert want and _members(ws, run, cm, 0.5, 0.5) == want

    # the grid loses 0.9: the slice keeps its parameter and says why it has no count (it used to become fp@0.6)
    metrics.set_grids(ws, run, confidence=[0, 0.2, 0.4, 0.6])
    metrics.compute_metrics(ws, run)
    auto = {s.auto_key: s for s in slices.auto_slices(ws, run, 0.4, 0.5)}
    cm = auto["candidate-mislabels"]
    assert cm.filter == "fp@0.9 > 0" and cm.params["mislabel_confidence"] == 0.9
    assert cm.count is None
    assert "0.9 is not on the run's confidence grid (0, 0.2, 0.4, 0.6)" in cm.note
    assert "set it to 0.6 (the highest grid value)" in cm.note
    assert auto["false-positive"].count == len(_fp_rows(ws, run, 0.4, 0.5))  # the others still count

    # the value comes back on the grid: the same slice, the same rows as before
    metrics.set_grids(ws, run, confidence=[0, 0.3, 0.6, 0.9])
    metrics.compute_metrics(ws, run)
    cm = slices.auto_slices(ws, run, 0.3, 0.5)[slices.AUTO_KEYS.index("candidate-mislabels")]
    assert cm.note is None and cm.count == len(want)
    assert _members(ws, run, cm, 0.3, 0.5) == want


def test_low_recall_classes_reads_the_run_recall_of_each_class(ws):
    w = generated_world(ws, n=80, seed=9)
    run = w.run
    ws.update_run_config(run, view_confidence=0.3, view_iou=0.5)
    metrics.compute_metrics(ws, run)
    # recall of each class over the whole run at the run's chosen (c, t), from the per-(row, feature) table
    rf = metrics.row_feature_metrics_table(ws, run, 0.3, 0.5)
    rec = {f: tp / (tp + fn) for f, tp, fn in ws.sql(
        f"SELECT f.name, sum(tp), sum(fn) FROM {rf} m JOIN features f ON f.id = m.feature_id GROUP BY 1").fetchall()
        if tp + fn}
    ordered = sorted(rec.values())
    bound = round((ordered[1] + ordered[2]) / 2, 4)  # between the second and third class: a mix of both
    slices.set_auto_params(ws, run, low_metric=bound)
    low = sorted(f for f, v in rec.items() if v < bound)
    assert len(low) == 2
    s = slices.auto_slice(ws, run, "low-recall-classes")
    assert s.description.startswith(f"rows labelled with a class whose recall in the run is below {bound:g} "
                                    "(at confidence 0.3, IoU 0.5): ")
    for f in low:
        assert f"{f} {rec[f]:.3f}" in s.description
    want = sorted(r[0] for r in ws.sql(
        "SELECT DISTINCT a.data_row_id FROM annotations a JOIN features f ON f.id = a.feature_id "
        "JOIN run_rows rr ON rr.data_row_id = a.data_row_id AND rr.run_id = ? WHERE f.name IN "
        f"({', '.join('?' for _ in low)})", [run.id, *low]).fetchall())
    # counted at other thresholds too: the classes stay those of the run's chosen thresholds
    assert _members(ws, run, s, 0.5, 0.5) == want
    by_key = {a.auto_key: a for a in slices.auto_slices(ws, run, 0.5, 0.5)}
    assert by_key["low-recall-classes"].count == len(want)
