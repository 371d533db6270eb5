"""SIGKILL during writes: an import of 200,000 predictions killed at 20 seeded random moments (spread over
the whole import, the commit's write-ahead log included), a metrics job (20,000 predictions) and a slice
update killed too.
After each kill the workspace is reopened as a user would and must hold the state before the write or
the state after it, table by table and content by content (see harness.py), never something between.
A larger count: ``benchmarks/bench_faults.py``."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from . import harness as h

N_PREDS = 200_000
GROUPS = 4  # 4 x 5 = 20 kills of the import, spread over pytest-xdist workers
PER_GROUP = 5


@pytest.fixture(scope="session")
def import_ref(base, tmp_path_factory) -> h.Reference:
    work = tmp_path_factory.mktemp("import-ref")
    return h.reference(base[0], work, "import", str(base[1]), h.BOOKKEEPING)


def _assert_whole(outcomes: list[h.KillOutcome]) -> None:
    partial = [o for o in outcomes if o.state == "partial"]
    assert not partial, "partial states after a kill:\n" + "\n".join(f"{o.moment}: {o.detail}" for o in partial)
    assert all(o.returncode == -9 or o.returncode == 0 for o in outcomes)


@pytest.mark.parametrize("group", range(GROUPS))
def test_import_killed_at_random_moments(base, import_ref, tmp_path, group):
    rng = np.random.default_rng(1000 + group)
    ms = h.moments(rng, PER_GROUP, import_ref.seconds, import_ref.wal_bytes)
    outcomes = h.kill_series(base[0], tmp_path, "import", str(base[1]), ms, h.BOOKKEEPING, import_ref)
    _assert_whole(outcomes)
    assert sum(o.returncode == -9 for o in outcomes) >= PER_GROUP - 2  # most moments fall inside the import


@pytest.fixture(scope="session")
def with_run(tmp_path_factory) -> Path:
    """A smaller workspace (2,000 images, 20,000 predictions) with a run and a slice: a metrics job and a slice
    update need no more to be killed in the middle."""
    import slicewise
    from slicewise.io import import_coco_results
    from slicewise.slices import create_slice

    work = tmp_path_factory.mktemp("with-run")
    ws, res = h.base_workspace(work, 20_000)
    with slicewise.open(ws) as w:
        import_coco_results(w, res, "det/r1")
        create_slice(w, "low-iou", "confidence > 0.5")
    return ws


def test_metrics_job_killed(with_run, tmp_path):
    ref = h.reference(with_run, tmp_path, "metrics", "det/r1", h.BOOKKEEPING | {"metric_jobs"})
    rng = np.random.default_rng(7)
    ms = [(f"t={t:.3f}s", t, None) for t in rng.uniform(0.1, 1.0, 3) * ref.seconds]
    outcomes = h.kill_series(with_run, tmp_path, "metrics", "det/r1", ms, h.BOOKKEEPING | {"metric_jobs"}, ref)
    _assert_whole(outcomes)
    # a killed job is not left 'running': it restarts cleanly
    import slicewise
    from slicewise.metrics import compute_metrics, job_status

    killed = tmp_path / "again.duckdb"
    shutil.copyfile(with_run, killed)
    h.run_child("metrics", killed, "det/r1", kill_after=0.5 * ref.seconds)
    with slicewise.open(killed) as ws:
        st = job_status(ws, "det/r1")
        assert st.state in ("failed", "pending", "ready"), st
        if st.state == "failed":
            assert "interrupted" in (st.error or "")
        assert compute_metrics(ws, "det/r1").state == "ready"


def test_slice_update_killed(with_run, tmp_path):
    ref = h.reference(with_run, tmp_path, "slice", "confidence < 0.2", h.BOOKKEEPING)
    ms = [(f"t={t:.4f}s", t, None) for t in np.linspace(0.0, 1.2, 4) * ref.seconds]
    _assert_whole(h.kill_series(with_run, tmp_path, "slice", "confidence < 0.2", ms, h.BOOKKEEPING, ref))


def test_torn_log_is_cut_back(base, tmp_path):
    """A write-ahead log torn in the middle of the import's commit, made deterministically: the import's
    complete log cut at 90 %, with the mark of the write before it. Plain DuckDB replays that as 200,000
    predictions of a run that does not exist (the issue's case); slicewise rolls the import back."""
    import duckdb

    import slicewise
    from slicewise.store import ledger

    ws = h.copy(base[0], tmp_path / "torn.duckdb")
    with slicewise.open(ws) as w:
        before = w.store.last_op()
    rc, *_ = h.run_child("import-then-die", ws, str(base[1]))
    wal = ledger.wal_path(ws)
    assert rc == 0 and wal.exists()
    with open(wal, "r+b") as fh:
        fh.truncate(fh.seek(0, 2) * 9 // 10)
    ledger.marks_path(ws).write_text(f"{before} 0 1\n")  # the log was empty after the last complete write
    raw = duckdb.connect(str(ws), read_only=True)
    torn = raw.execute("SELECT (SELECT count(*) FROM predictions), (SELECT count(*) FROM model_runs)").fetchone()
    raw.close()
    with slicewise.open(ws) as w:
        assert w.counts()["predictions"] == 0 and w.counts()["model_runs"] == 0
        assert w.store.check()[0]
        if torn[0] != 0 or torn[1] != 0:  # DuckDB replayed part of the import: slicewise said it rolled it back
            assert w.store.recovery is not None and "rolled back" in w.store.recovery.message, torn
