"""A full metrics job writes a new generation of records in committed chunks and makes it current at the end:
a job that fails or is killed half-way leaves the previous metrics readable, exactly, and the next job right."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import slicewise
from slicewise import metrics as M
from slicewise.errors import MetricsError
from slicewise.metrics import engine, records

N = 12
TABLES = ("match_spans", "metric_lines", "metric_row_const", "metric_row_revs")


def _build(ws):
    """12 rows, a cat on each; the run predicts most of them, some shifted, some as dogs."""
    ws.add_data_rows("d", [{"global_key": f"r{i}", "row_data": "x", "width": 100, "height": 100} for i in range(N)])
    ws.create_feature("cat", "bbox")
    ws.create_feature("dog", "bbox")
    ws.add_annotations([{"data_row": f"r{i}", "feature": "cat", "bbox": [10, 10, 30, 30]} for i in range(N)])
    run = ws.create_run("m", "v1")
    ws.add_predictions(run, [{"data_row": f"r{i}", "feature": "dog" if i % 5 == 0 else "cat",
                              "bbox": [10 + i, 10, 30, 30], "confidence": round(0.3 + 0.05 * i, 2)}
                             for i in range(N) if i % 4 != 3])
    return run


def _change(ws, run):
    """New predictions on every row, so that the next job's records differ from the previous ones."""
    ws.add_predictions(run, [{"data_row": f"r{i}", "feature": "cat", "bbox": [12, 12, 30, 30], "confidence": 0.95}
                             for i in range(N)], source="second")


def _list(v) -> list:
    return [None if x != x else x for x in v.tolist()]  # NaN as None (NaN != NaN)


def _seen(ws, run) -> dict:
    """What readers see of a run's records (through the views and the readers of records.py)."""
    cur = ws.store.cursor()
    rid = ws.run(run.id).id
    out = {"match_records": ws.sql("SELECT * FROM match_records ORDER BY ALL").fetchall(),
           "metric_rf": ws.sql("SELECT * FROM metric_rf ORDER BY ALL").fetchall(),
           "cells": sorted(records.confusion_cells(cur, rid, 5, 0.5, None), key=str),
           "arrays": sorted(zip(*(_list(v) for v in records.record_arrays(cur, rid).values()), strict=True),
                            key=str)}
    for k in range(11):  # (pairs and rows in a stored order that an incremental job changes: sorted here)
        s = records.summaries(cur, rid, k)
        pairs, by_row = np.lexsort((s.pair_iou, s.pair_line)), np.argsort(s.rows)
        out[f"summaries{k}"] = (_list(s.line_row), _list(s.n_pred), _list(s.pair_line[pairs]),
                                _list(s.pair_iou[pairs]), _list(s.rows[by_row]),
                                {c: _list(v[by_row]) for c, v in s.row_const.items()})
    return out


def _other_gens(ws, run) -> int:
    gen = records.gen_of(ws.store.cursor(), run.id)
    return sum(ws.sql(f"SELECT count(*) FROM {t} WHERE run_id = ? AND gen <> ?", [run.id, gen]).fetchone()[0]
               for t in TABLES)


@pytest.fixture()
def reference(tmp_path_factory):
    """The records a job computes in one go on the changed data, in a workspace built the same way."""
    with slicewise.open(tmp_path_factory.mktemp("ref") / "ws.duckdb") as ws:
        run = _build(ws)
        _change(ws, run)
        M.compute_metrics(ws, run)
        return _seen(ws, run)


@pytest.mark.parametrize("chunked", [True, False], ids=["committed-chunks", "one-transaction"])
def test_a_failed_job_leaves_the_previous_metrics_and_the_next_job_is_right(ws, reference, monkeypatch, chunked):
    if chunked:  # chunks of one row, committed two by two
        monkeypatch.setattr(engine, "CHUNK_ROWS", 2)
        monkeypatch.setattr(engine, "PROGRESS_CHUNK", 1)
    run = _build(ws)
    M.compute_metrics(ws, run)
    before = _seen(ws, run)
    gen_before = engine.require_ready(ws, run)[2]
    _change(ws, run)
    calls = {"n": 0}
    pack = records.pack

    def failing_pack(*a, **k):
        calls["n"] += 1
        if calls["n"] == (5 if chunked else 1):  # chunked: rows 0-1 are committed by now, 2-3 written
            raise RuntimeError("disk on fire")
        return pack(*a, **k)

    monkeypatch.setattr(records, "pack", failing_pack)
    with pytest.raises(RuntimeError, match="disk on fire"):
        M.retry(ws, run)
    monkeypatch.setattr(records, "pack", pack)
    st = M.job_status(ws, run)
    assert st.state == "failed" and "disk on fire" in st.error
    assert _seen(ws, run) == before  # the previous metrics, exactly
    assert engine.require_ready(ws, run)[2] == gen_before  # and the caches keyed by their generation stay valid
    assert _other_gens(ws, run) == 0  # the failed job's chunks were dropped
    assert M.compute_metrics(ws, run).state == "ready"
    assert _seen(ws, run) == reference
    assert _other_gens(ws, run) == 0  # the previous generation is dropped after the new one became current
    assert engine.require_ready(ws, run)[2] == gen_before + 1


def test_a_job_killed_half_way_leaves_the_previous_metrics_and_the_next_job_is_right(tmp_path, reference):
    path = tmp_path / "ws.duckdb"
    with slicewise.open(path) as ws:
        run = _build(ws)
        M.compute_metrics(ws, run)
        before = _seen(ws, run)
        _change(ws, run)
        ops = ws.store.last_op()
    child = textwrap.dedent(f"""
        import os, slicewise
        from slicewise.metrics import engine, records
        engine.CHUNK_ROWS, engine.PROGRESS_CHUNK = 2, 1
        pack, calls = records.pack, []
        def dying_pack(*a, **k):
            calls.append(1)
            if len(calls) == 7:  # (chunks of one row, committed two by two: rows 0-3 are committed)
                os._exit(9)  # killed: no rollback, no failure recorded, no clean close
            return pack(*a, **k)
        records.pack = dying_pack
        ws = slicewise.open({str(path)!r})
        from slicewise import metrics
        metrics.retry(ws, "m/v1")
    """)
    rc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    assert rc.returncode == 9, rc.stderr
    with slicewise.open(path) as ws:
        # the child committed its "running" state and the first chunks before it died (then, at this open: the
        # failure, and the dropping of those chunks)
        assert ws.sql("SELECT count(*) FROM ledger WHERE op > ? AND tables LIKE '%metric_row_revs%'",
                      [ops]).fetchone()[0] >= 3
        run = ws.run("m/v1")
        st = M.job_status(ws, run)
        assert st.state == "failed" and "interrupted" in st.error
        assert _seen(ws, run) == before
        assert _other_gens(ws, run) == 0  # the dead job's committed chunks were dropped when the file was opened
        assert M.compute_metrics(ws, run).state == "ready"
        assert _seen(ws, run) == reference
        assert _other_gens(ws, run) == 0


def test_chunks_share_a_transaction_up_to_chunk_rows(tmp_path, monkeypatch, reference):
    """Each commit writes a ledger line and the log: a job commits every CHUNK_ROWS rows, not every chunk."""
    monkeypatch.setattr(engine, "CHUNK_ROWS", 4)
    monkeypatch.setattr(engine, "PROGRESS_CHUNK", 1)  # chunks of one row
    with slicewise.open(tmp_path / "ws.duckdb") as ws:
        run = _build(ws)
        M.compute_metrics(ws, run)
        _change(ws, run)
        ops = ws.store.last_op()
        M.compute_metrics(ws, run, full=True)
        written = [json.loads(r[0]) for r in ws.sql("SELECT tables FROM ledger WHERE op > ? ORDER BY op",
                                                     [ops]).fetchall()]
        # 12 rows: three transactions of four one-row chunks (each with the job's progress)
        assert sum("metric_row_revs" in t and "metric_jobs" in t for t in written) == 3
        assert _seen(ws, run) == reference
        assert _other_gens(ws, run) == 0


def test_many_stale_rows_are_recomputed_by_a_full_job(tmp_path, monkeypatch):
    """Above INCREMENTAL_MAX_ROWS stale rows, a job writes a new generation (bounded memory) instead of
    replacing their lines in one transaction; the records are the same either way."""
    seen, gens = [], []
    for name, limit in (("inc", engine.INCREMENTAL_MAX_ROWS), ("full", 0)):
        monkeypatch.setattr(engine, "INCREMENTAL_MAX_ROWS", limit)
        with slicewise.open(tmp_path / f"{name}.duckdb") as ws:
            run = _build(ws)
            M.compute_metrics(ws, run)
            ws.add_predictions(run, [{"data_row": "r3", "feature": "cat", "bbox": [10, 10, 30, 30],
                                      "confidence": 0.8}], source="late")
            progress = []
            assert M.compute_metrics(ws, run, on_progress=lambda d, t, p=progress: p.append(t)).state == "ready"
            seen.append(_seen(ws, run))
            gens.append((records.gen_of(ws.store.cursor(), run.id), progress[-1], _other_gens(ws, run)))
    assert seen[0] == seen[1]
    assert gens == [(1, 1, 0), (2, 10, 0)]  # in place (1 row), or a new generation (the run's 10 rows)


def test_a_job_is_not_started_inside_a_write_transaction(tmp_path):
    """A job commits as it goes and reads the objects as committed: inside a transaction it says so."""
    with slicewise.open(tmp_path / "ws.duckdb") as ws:
        run = _build(ws)
        with pytest.raises(MetricsError, match="inside a write transaction"), ws.store.transaction():
            M.compute_metrics(ws, run)
        assert M.job_status(ws, run).state == "pending"
        assert M.compute_metrics(ws, run).state == "ready"


def test_a_workspace_that_stored_metric_tp_keeps_its_metrics(tmp_path):
    """Metrics migration 7 drops metric_tp (each same-class pair written again per conf index): the pairs are
    read from the records, so a workspace computed before it opens ready, with the same numbers."""
    import duckdb

    path = tmp_path / "ws.duckdb"
    with slicewise.open(path) as ws:
        run = _build(ws)
        M.compute_metrics(ws, run)
        before = _seen(ws, run)
        table = ws.sql(f"SELECT * FROM {M.row_metrics_table(ws, run, 0.5, 0.5)} ORDER BY data_row_id").fetchall()
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE metric_tp (run_id INTEGER NOT NULL, conf_idx SMALLINT NOT NULL, rf_ord INTEGER NOT NULL, "
                "iou DOUBLE NOT NULL, gen INTEGER DEFAULT 0)")
    con.execute("UPDATE meta SET value = '6' WHERE key = 'schema_version:metrics'")
    con.close()
    with slicewise.open(path) as ws:
        assert not ws.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'metric_tp'").fetchone()[0]
        run = ws.run("m/v1")
        assert M.job_status(ws, run).state == "ready"
        assert _seen(ws, run) == before
        assert ws.sql(f"SELECT * FROM {M.row_metrics_table(ws, run, 0.5, 0.5)} ORDER BY data_row_id").fetchall() == table
