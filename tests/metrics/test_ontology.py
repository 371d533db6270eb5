"""TN counts the run's ontology features applicable to the row (media type, dataset): hand-worked tables.

World (one run over three datasets), at confidence 0.5 and IoU 0.5:

======  ==========  =================  =============================  ======================
row     dataset     labels             predictions (confidence)       applicable (derived)
======  ==========  =================  =============================  ======================
p1      photos      car, weather=sun   car (0.8, same box)            car, person, weather
p2      photos      person             car (0.8, elsewhere)           car, person, weather
p3      photos      -                  -                              car, person, weather
i1      indoor      sofa               sofa (0.8)                     sofa, bed
i2      indoor      bed                -                              sofa, bed
t1      texts       name, senti=pos    senti=pos (0.8)                name, sentiment
t2      texts       -                  name (0.3: dropped at c=0.5)   name, sentiment
======  ==========  =================  =============================  ======================

Row TN = applicable - present: p1 1 (person), p2 1 (weather), p3 3, i1 1, i2 1, t1 0, t2 2 (1 at c=0).
Before ontologies every row got 7 - present (p3: 7, t2: 7 although no box can be on a text row).
"""

from __future__ import annotations

import duckdb
import pytest

from slicewise import metrics as M
from slicewise import workspace as wsmod
from slicewise.errors import MetricsError, NotFoundError

BOX = [10, 10, 20, 20]


def _world(ws):
    ws.add_data_rows("photos", [{"global_key": k, "row_data": k, "width": 100, "height": 80} for k in ("p1", "p2", "p3")])
    ws.add_data_rows("indoor", [{"global_key": k, "row_data": k, "width": 100, "height": 80} for k in ("i1", "i2")])
    ws.add_data_rows("texts", [{"global_key": k, "row_data": "Alice flew to Paris", "media_type": "text"}
                               for k in ("t1", "t2")])
    for name, kind, *opts in [("car", "bbox"), ("person", "bbox"), ("weather", "radio", ["sun", "rain"]),
                              ("sofa", "bbox"), ("bed", "bbox"), ("name", "ner"), ("sentiment", "radio", ["pos", "neg"])]:
        ws.create_feature(name, kind, opts[0] if opts else None)
    ws.add_annotations([
        {"data_row": "p1", "feature": "car", "bbox": BOX}, {"data_row": "p1", "feature": "weather", "answer": "sun"},
        {"data_row": "p2", "feature": "person", "bbox": BOX},
        {"data_row": "i1", "feature": "sofa", "bbox": BOX}, {"data_row": "i2", "feature": "bed", "bbox": BOX},
        {"data_row": "t1", "feature": "name", "span": [0, 5]}, {"data_row": "t1", "feature": "sentiment", "answer": "pos"},
    ])
    run = ws.create_run("m", "v1")
    ws.add_predictions(run, [
        {"data_row": "p1", "feature": "car", "bbox": BOX, "confidence": 0.8},
        {"data_row": "p2", "feature": "car", "bbox": [60, 50, 10, 10], "confidence": 0.8},
        {"data_row": "i1", "feature": "sofa", "bbox": BOX, "confidence": 0.8},
        {"data_row": "t1", "feature": "sentiment", "answer": "pos", "confidence": 0.8},
        {"data_row": "t2", "feature": "name", "span": [0, 5], "confidence": 0.3},
    ])
    ws.add_run_rows(run, ["p1", "p2", "p3", "i1", "i2", "t1", "t2"])
    M.compute_metrics(ws, run)
    return run


def _row_tn(ws, run, c=0.5, t=0.5):
    table = M.row_metrics_table(ws, run, c, t)
    return dict(ws.sql(f"SELECT d.global_key, m.tn FROM {table} m JOIN data_rows d ON d.id = m.data_row_id").fetchall())


def test_derived_ontology_tn_per_row_and_feature(ws):
    run = _world(ws)
    onto = M.ontology(ws, run)
    assert not onto.explicit
    got = {f.feature: (f.media_types, f.datasets) for f in onto}
    assert got == {"car": (("image",), ("photos",)), "person": (("image",), ("photos",)),
                   "weather": (("image",), ("photos",)), "sofa": (("image",), ("indoor",)),
                   "bed": (("image",), ("indoor",)), "name": (("text",), ("texts",)),
                   "sentiment": (("text",), ("texts",))}
    assert _row_tn(ws, run) == {"p1": 1, "p2": 1, "p3": 3, "i1": 1, "i2": 1, "t1": 0, "t2": 2}
    assert _row_tn(ws, run, c=0.0)["t2"] == 1  # the name prediction is kept at c = 0
    fm = M.feature_metrics(ws, run, 0.5, 0.5)
    assert {r.feature: r.tn for r in fm} == {"car": 1, "person": 2, "weather": 2, "sofa": 1, "bed": 1,
                                             "name": 1, "sentiment": 1}
    sub = ("SELECT id AS data_row_id FROM data_rows WHERE global_key IN ('p1', 'p3')", [])
    assert {r.feature: r.tn for r in M.feature_metrics(ws, run, 0.5, 0.5, rows=sub)} == {
        "car": 1, "weather": 1}  # p1 has car and weather; p3 neither
    # the whole grid agrees with the per-(c, t) table
    g = M.grid_metrics(ws, run)
    k = g.confidence.index(0.5)
    tn = dict(ws.sql(f"SELECT d.global_key, m.tn FROM {g.table} m JOIN data_rows d ON d.id = m.data_row_id "
                     f"WHERE conf_idx = {k} AND iou_idx = 5").fetchall())
    assert tn == _row_tn(ws, run)


def test_explicit_ontology_and_back(ws):
    run = _world(ws)
    onto = M.set_ontology(ws, run, ["car", "person", "name"])
    assert onto.explicit and {f.feature: f.media_types for f in onto} == {
        "car": ("image",), "person": ("image",), "name": ("text",)}
    # car and person apply to every image row (no datasets given), name to every text row
    assert _row_tn(ws, run) == {"p1": 1, "p2": 0, "p3": 2, "i1": 2, "i2": 2, "t1": 0, "t2": 1}
    M.set_ontology(ws, run, {"car": ["image"], "sentiment": ["text", "image"]}, datasets=["photos", "texts"])
    assert _row_tn(ws, run) == {"p1": 1, "p2": 1, "p3": 2, "i1": 0, "i2": 0, "t1": 0, "t2": 1}
    M.compute_metrics(ws, run, full=True)  # a job keeps an explicit ontology
    assert M.ontology(ws, run).explicit
    M.set_ontology(ws, run, None)
    assert not M.ontology(ws, run).explicit
    assert _row_tn(ws, run)["p3"] == 3


def test_set_ontology_errors_change_nothing(ws):
    run = _world(ws)
    before = M.ontology(ws, run)
    with pytest.raises(NotFoundError, match="no feature named 'cars'"):
        M.set_ontology(ws, run, ["car", "cars"])
    with pytest.raises(MetricsError, match="media types"):
        M.set_ontology(ws, run, {"car": ["video"]})
    with pytest.raises(NotFoundError, match="dataset"):
        M.set_ontology(ws, run, ["car"], datasets=["nope"])
    with pytest.raises(MetricsError, match="one string"):
        M.set_ontology(ws, run, "car")
    assert M.ontology(ws, run) == before


def test_migration_backfills_existing_workspaces(tmp_path):
    """A workspace at metrics schema 3 (no run_ontology) gets the derived ontology on open, and its
    computed metrics stay ready (the records do not change)."""
    path = tmp_path / "old.duckdb"
    with wsmod.open(path) as ws:
        run = _world(ws)
        run_id = run.id
    con = duckdb.connect(str(path))
    con.execute("DROP TABLE run_ontology")
    # (as at schema 3: metric_tp, dropped by migration 7, was there; its pairs are the records' own)
    con.execute("CREATE TABLE metric_tp (run_id INTEGER NOT NULL, conf_idx SMALLINT NOT NULL, rf_ord INTEGER NOT NULL, "
                "iou DOUBLE NOT NULL)")
    con.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version:metrics'")
    con.close()
    with wsmod.open(path) as ws:
        assert M.job_status(ws, run_id).state == "ready"
        assert len(M.ontology(ws, run_id)) == 7
        assert _row_tn(ws, run_id) == {"p1": 1, "p2": 1, "p3": 3, "i1": 1, "i2": 1, "t1": 0, "t2": 2}
