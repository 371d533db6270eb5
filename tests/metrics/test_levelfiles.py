"""A metrics job's per-conf-index arrays kept on disk (slicewise.metrics.levelfiles): what a later process maps
from them is what the store gives, to the bit, and files of another job, rows or ontology are never read."""

from __future__ import annotations

import numpy as np

import slicewise
from slicewise import metrics as M
from slicewise.metrics import fast, levelfiles
from slicewise.metrics.engine import require_ready
from slicewise.query import warm

CLASSES = ["cat", "dog", "bird"]
TS = (0.0, 0.3, 0.5, 0.75, 0.9)


def _build(path, seed=0, n=40):
    rng = np.random.default_rng(seed)
    ws = slicewise.open(path)
    ws.add_data_rows("d", [{"global_key": f"r{i}", "row_data": "x", "width": 100, "height": 100} for i in range(n)])
    for c in CLASSES:
        ws.create_feature(c, "bbox")
    gts, preds = [], []
    for i in range(n):
        for _ in range(int(rng.integers(0, 4))):
            x, y, w, h = (float(v) for v in rng.integers(0, 60, 4) + [0, 0, 5, 5])
            c = CLASSES[int(rng.integers(0, 3))]
            gts.append({"data_row": f"r{i}", "feature": c, "bbox": [x, y, w, h]})
            if rng.random() < 0.8:
                j = rng.normal(0, 3, 4)
                preds.append({"data_row": f"r{i}", "feature": c if rng.random() < 0.8 else CLASSES[0],
                              "bbox": [x + j[0], y + j[1], max(w + j[2], 1), max(h + j[3], 1)],
                              "confidence": round(float(rng.random()), 2)})
    ws.add_annotations(gts)
    run = ws.create_run("m", "v")
    ws.add_predictions(run, preds)
    ws.add_run_rows(run, [f"r{i}" for i in range(n)])
    M.compute_metrics(ws, run)
    return ws, run


def _all_columns(ws, run):
    r, s, gen = require_ready(ws, run)
    return {(k, t): fast.row_columns(ws, r.id, gen, k, t) for k in range(len(s.confidence)) for t in TS}


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        for col in a[key]:
            assert np.array_equal(np.asarray(a[key][col]), np.asarray(b[key][col]), equal_nan=True), (key, col)


def _from_store(path):
    ws = slicewise.open(path)
    ws.state.persistent = False  # (no cache folder: every conf index read from the job's records)
    try:
        return _all_columns(ws, ws.runs()[0])
    finally:
        ws.close()


def _a_later_process_agrees(path, check=None):
    """A new workspace object (as a later process) gets every (c, t)'s row metrics exactly as they are read
    from the store; ``check(ws)`` first."""
    want = _from_store(path)
    ws = slicewise.open(path)
    try:
        if check is not None:
            check(ws)
        _assert_same(_all_columns(ws, ws.runs()[0]), want)
    finally:
        ws.close()
    return want


def _warmed(tmp_path):
    """A workspace after a job and its follow-up (query.warm): (path, ws, run, its settings, generation, its
    files' folder)."""
    path = tmp_path / "ws.duckdb"
    ws, run = _build(path)
    warm(ws, run)
    r, s, gen = require_ready(ws, run)
    return path, ws, r, s, gen, levelfiles.folder(ws, r.id, gen)


def test_a_later_process_maps_every_conf_index_and_gets_the_stores_numbers(tmp_path):
    path, ws, r, s, gen, folder = _warmed(tmp_path)
    assert folder is not None
    assert sorted(p.name for p in folder.iterdir()) == sorted([f"k{k}" for k in range(len(s.confidence))] + ["rows.npy"])
    assert all(any(p.glob("tn-*.npy")) for p in folder.iterdir() if p.is_dir())
    ws.close()

    def mapped(ws):
        lv = fast.level(ws, r.id, gen, 3)
        assert isinstance(lv.tp_iou, np.memmap)  # (mapped from the files, not read from the store)
        assert lv.row_pos.dtype == np.int8 and lv.tp_iou.dtype == np.float64  # (40 rows; IoUs as they are)
        assert "conf_min" not in lv.rowc  # (read from the store for the per-row table only)
        rows = fast.run_row_ids(ws, r.id, gen)
        assert isinstance(rows, np.memmap) and np.array_equal(rows, M.records.run_rows(ws.store.cursor(), r.id))

    _a_later_process_agrees(path, mapped)


def test_files_of_an_earlier_job_or_other_rows_are_not_read(tmp_path):
    path, ws, run, _, _, old = _warmed(tmp_path)
    # new predictions and a new job: new files, the old ones gone
    ws.add_predictions(run, [{"data_row": "r1", "feature": "dog", "bbox": [50, 50, 20, 20], "confidence": 0.95}],
                       source="second")
    M.compute_metrics(ws, run)
    warm(ws, run)
    _, _, gen2 = require_ready(ws, run)
    new = levelfiles.folder(ws, run.id, gen2)
    assert new != old and new.is_dir() and not old.exists()
    # rows added to the run after its job: their files are not those of the job's rows
    ws.add_data_rows("d", [{"global_key": "extra", "row_data": "x", "width": 100, "height": 100}])
    ws.add_run_rows(run, ["extra"])
    assert levelfiles.folder(ws, run.id, gen2) != new
    ws.close()
    _a_later_process_agrees(path)


def test_tn_follows_the_ontology_and_a_damaged_or_missing_file_is_read_from_the_store(tmp_path):
    path, ws, run, _, _, folder = _warmed(tmp_path)
    M.set_ontology(ws, run, ["cat", "dog"])  # bird no longer counts: every row's TN changes
    (folder / "k2" / "tp_iou.npy").write_bytes(b"not an array")
    (folder / "k4" / "rowc-n_p.npy").unlink()
    ws.close()
    want = _a_later_process_agrees(path)
    assert any(v["tn"].any() for v in want.values())


def test_the_first_conf_index_mapped_asks_the_system_to_read_the_jobs_files(tmp_path, monkeypatch):
    """Mapping a conf index from the files advises the operating system to read all of the job's files (once a
    job and process), so that the next confidence level maps pages already read; not when they would take more
    than a quarter of the memory available."""
    import os
    import threading

    path, ws, r, s, gen, folder = _warmed(tmp_path)
    ws.close()
    files = {str(f) for f in folder.glob("k*/*.npy")}
    advised: list[str] = []
    monkeypatch.setattr(os, "posix_fadvise", lambda fd, off, n, how: advised.append(os.readlink(f"/proc/self/fd/{fd}")),
                        raising=False)
    for room, want in ((10**12, files), (4 * sum(os.path.getsize(f) for f in files) - 4, set())):
        advised.clear()
        monkeypatch.setattr(levelfiles, "_available", lambda room=room: room)
        ws = slicewise.open(path)
        fast.level(ws, r.id, gen, 2)
        fast.level(ws, r.id, gen, 4)
        for th in threading.enumerate():
            if th.name == "slicewise-level-prefetch":
                th.join()
        assert set(advised) == want and len(advised) == len(want)  # (each file once)
        ws.close()
