"""Metric jobs: compute (incrementally) and store a run's match records; grids and settings.

A job's state (:class:`~slicewise.metrics.results.JobStatus`) is ``pending`` (never computed), ``running``,
``ready``, ``failed`` (with its error) or ``stale`` (labels, predictions, grids or matching settings changed
since it was computed). :func:`job_status` is remembered by the workspace until one of :data:`JOB_TOPICS`
changes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from slicewise.errors import MetricsError
from slicewise.metrics import ontologies, records
from slicewise.metrics.objects import FAMILY
from slicewise.metrics.results import JobStatus
from slicewise.types.domain import ModelRun

if TYPE_CHECKING:
    from slicewise.workspace import Workspace

RunRef = str | int | ModelRun
DEFAULT_GRID: tuple[float, ...] = tuple(round(i / 10, 1) for i in range(11))
MODES = ("class-agnostic", "within-class")
CHUNK_ROWS = 50_000
#: the smallest chunk: below it, per-chunk overhead shows (each chunk's read of its objects scans whatever
#: row groups of the objects hold its rows: at 5,000 rows, chunks of 1,000 took 1.5x the CPU time of one chunk)
PROGRESS_CHUNK = 5_000
#: but a job of more rows than this is at least two chunks: the pipeline (see :func:`_compute`) then matches
#: the second while the first is written (a job of 5,000 rows took 0.49 s in two chunks, 0.58 s in one)
PIPELINE_MIN_ROWS = 2_000
#: an incremental job replaces the stale rows' lines in one transaction (memory grows with what it writes): above
#: this many stale rows, a full job writes a new generation in chunks instead (memory bounded)
INCREMENTAL_MAX_ROWS = CHUNK_ROWS
#: what a job's state depends on: a change of one of these makes :func:`job_status` look again
#: the metrics migration that last changed what a job writes (migration 4, the run ontology, is backfilled
#: in SQL and does not make records stale); bump to the new migration's number when one does
RECORDS_FORMAT = 5
JOB_TOPICS = ("labels", "predictions", "run_rows", "runs", "metric_job", "metrics")


@dataclass(frozen=True)
class Settings:
    confidence: tuple[float, ...]
    iou: tuple[float, ...]
    mode: str
    radius: float

    def key(self) -> dict[str, Any]:
        """What the stored records depend on; a job computed under another key is stale. ``format``
        is the layout of the stored records (:data:`RECORDS_FORMAT`), so records written before a
        migration added derived tables are recomputed instead of being read half-filled."""
        return {"mode": self.mode, "radius": self.radius, "format": RECORDS_FORMAT}


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def get_run(ws: Workspace, run: RunRef) -> ModelRun:
    """The run as stored now (a ModelRun object passed in may carry an outdated config)."""
    return ws.run(run.id if isinstance(run, ModelRun) else run)


def check_grid(values: Sequence[float], what: str) -> tuple[float, ...]:
    """A grid as a tuple, or a MetricsError saying what is wrong.

    >>> check_grid([0, 0.5, 1], "confidence")
    (0.0, 0.5, 1.0)
    """
    try:
        vals = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise MetricsError(f"{what} grid must be numbers, got {values!r}", where=f"{what} grid",
                           fix="give values such as 0, 0.1, ..., 1") from None
    if not vals:
        raise MetricsError(f"{what} grid is empty", where=f"{what} grid", fix="give at least one value in [0, 1]")
    bad = [v for v in vals if not (math.isfinite(v) and 0.0 <= v <= 1.0)]
    if bad:
        raise MetricsError(f"{what} grid has values outside [0, 1]: {bad}", where=f"{what} grid",
                           fix="use values between 0 and 1")
    if any(b <= a for a, b in zip(vals, vals[1:], strict=False)):
        raise MetricsError(f"{what} grid is not sorted strictly increasing: {list(vals)}", where=f"{what} grid",
                           fix="sort the values and remove duplicates")
    return vals


def conf_index(s: Settings, confidence: float, run_ref: str) -> int:
    """Index of ``confidence`` in the grid the records were computed with."""
    for k, v in enumerate(s.confidence):
        if abs(v - float(confidence)) <= 1e-9:
            return k
    raise MetricsError(f"confidence {confidence} is not on the run's confidence grid {list(s.confidence)}",
                       where=f"run {run_ref}", fix="pick a grid value, or change the grid with set_grids and recompute")


def check_iou(iou: float) -> float:
    """An IoU threshold as a float, or a MetricsError when it is outside [0, 1]."""
    t = float(iou)
    if not (math.isfinite(t) and 0.0 <= t <= 1.0):
        raise MetricsError(f"IoU threshold {iou} is outside [0, 1]", where="iou", fix="use a value between 0 and 1")
    return t


def settings(run: ModelRun) -> Settings:
    cfg = run.config or {}
    conf = check_grid(cfg.get("metrics_confidence_grid", DEFAULT_GRID), "confidence")
    iou = check_grid(cfg.get("metrics_iou_grid", DEFAULT_GRID), "iou")
    mode = str(cfg.get("metrics_matching", "class-agnostic"))
    if mode not in MODES:
        raise MetricsError(f"unknown matching mode {mode!r}", where=f"run {run.ref} config metrics_matching",
                           fix="use class-agnostic or within-class")
    radius = cfg.get("metrics_radius", 70.0)
    try:
        radius = float(radius)
        assert math.isfinite(radius) and radius > 0
    except (TypeError, ValueError, AssertionError):
        raise MetricsError(f"bad buffer radius {radius!r}", where=f"run {run.ref} config metrics_radius",
                           fix="give a positive number of pixels (default 70)") from None
    return Settings(conf, iou, mode, radius)


def grids(ws: Workspace, run: RunRef) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(confidence grid, IoU grid) of a run."""
    s = settings(get_run(ws, run))
    return s.confidence, s.iou


def set_grids(ws: Workspace, run: RunRef, confidence: Sequence[float] | None = None,
              iou: Sequence[float] | None = None) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Replace a run's grids (validated: sorted, in [0, 1]); the metrics become stale."""
    r = get_run(ws, run)
    changes: dict[str, Any] = {}
    if confidence is not None:
        changes["metrics_confidence_grid"] = list(check_grid(confidence, "confidence"))
    if iou is not None:
        changes["metrics_iou_grid"] = list(check_grid(iou, "iou"))
    if changes:
        ws.update_run_config(r, **changes)
    return grids(ws, r.id)


def _job_row(cur: Any, run_id: int) -> tuple[Any, ...] | None:
    row = cur.execute("""SELECT state, done, total, error, confidence_grid, iou_grid, settings, finished_at, generation,
                                records_gen FROM metric_jobs WHERE run_id = ?""", [run_id]).fetchone()
    return tuple(row) if row else None


def _stale_rows_sql() -> str:
    """The rows whose stored lines (of generation ``?``, the current one) are missing or outdated, of run ``?``."""
    return """SELECT rr.data_row_id FROM run_rows rr JOIN data_rows d ON d.id = rr.data_row_id
              LEFT JOIN (SELECT * FROM metric_row_revs WHERE gen = ?) m
                ON m.run_id = rr.run_id AND m.data_row_id = rr.data_row_id
              WHERE rr.run_id = ? AND (m.data_row_id IS NULL OR m.label_rev <> d.label_rev
                                       OR m.pred_rev <> rr.pred_rev)"""


def job_status(ws: Workspace, run: RunRef) -> JobStatus:
    """The state of a run's metrics job (see :class:`JobStatus`). Remembered by the workspace until labels,
    predictions, run rows, run settings or a job change, so that every metrics result can carry it."""
    return job_of(ws, get_run(ws, run))


def job_of(ws: Workspace, r: ModelRun) -> JobStatus:
    """:func:`job_status` of a run just read from the store (``get_run``)."""
    st = ws.state.memo(("metrics-job", r.id), JOB_TOPICS, lambda: _job_status(ws, r))
    live = ws.state.progress.get(r.id)
    if st.state == "running" and live:  # progress moves without a write: read it live
        st = dataclasses.replace(st, done=live[0], total=live[1])
    elif live is not None:  # a job of this process that has not written its "running" state yet
        st = JobStatus(r.id, "running", live[0], live[1] or st.total)
    return st


def _job_status(ws: Workspace, r: ModelRun) -> JobStatus:
    cur = ws.store.cursor()
    total = int(cur.execute("SELECT count(*) FROM run_rows WHERE run_id = ?", [r.id]).fetchone()[0])  # type: ignore[index]
    job = _job_row(cur, r.id)
    if job is None:
        return JobStatus(r.id, "pending", 0, total)
    state, done, jtotal, error, cgrid, igrid, sett, finished, _gen, rgen = job
    if state == "running":
        d, t = ws.state.progress.get(r.id, (int(done), int(jtotal)))
        return JobStatus(r.id, "running", d, t)
    if state == "failed":
        return JobStatus(r.id, "failed", int(done), int(jtotal), error, finished_at=finished)
    try:
        s = settings(r)
    except MetricsError as exc:
        return JobStatus(r.id, "stale", int(done), int(jtotal), str(exc), finished_at=finished)
    n_stale = int(cur.execute(f"SELECT count(*) FROM ({_stale_rows_sql()})",  # type: ignore[index]
                              [int(rgen or 0), r.id]).fetchone()[0])
    grids_changed = tuple(cgrid or ()) != s.confidence or tuple(igrid or ()) != s.iou
    changed = grids_changed or json.loads(sett or "{}") != s.key()
    if n_stale or changed:
        reason = "grids" if grids_changed else "settings" if changed else "data"
        return JobStatus(r.id, "stale", int(done), total, None, total if changed else n_stale, finished, reason)
    return JobStatus(r.id, "ready", total, total, finished_at=finished)


def mark_interrupted(ws: Workspace) -> list[int]:
    """After the last writer died (see :mod:`slicewise.store.ledger`): jobs it left ``running`` are not, so
    they become ``failed`` with the reason (the records of their previous computation stay readable, and
    the next compute redoes the run in full). Returns the runs concerned."""
    cur = ws.store.cursor()
    if not cur.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
                       "AND table_name = 'metric_jobs'").fetchone()[0]:  # type: ignore[index]
        return []
    runs = [int(r[0]) for r in cur.execute("SELECT run_id FROM metric_jobs WHERE state = 'running'").fetchall()]
    if runs:
        with ws.store.transaction() as con:
            con.execute("UPDATE metric_jobs SET state = 'failed', error = ?, finished_at = ? WHERE state = 'running'",
                        ["interrupted: the process computing it stopped before it finished (compute it again)",
                         _now()])
            for r in runs:
                ws.store.touch("metric_job", run=r)
    # the lines of a generation that never became current (a full job that died), or that was being dropped
    orphans = cur.execute("""SELECT DISTINCT m.run_id, j.records_gen FROM metric_row_revs m
                             JOIN metric_jobs j ON j.run_id = m.run_id WHERE m.gen <> j.records_gen""").fetchall()
    with ws.store.writer():
        for run_id, keep in orphans:
            records.drop_other_gens(ws, int(run_id), int(keep), CHUNK_ROWS)
    return runs


def retry(ws: Workspace, run: RunRef, *, on_progress: Callable[[int, int], None] | None = None) -> JobStatus:
    """Re-run a run's metrics job (after a failure, or to force it): a full recomputation."""
    return compute_metrics(ws, run, on_progress=on_progress, full=True)


def require_ready(ws: Workspace, run: RunRef) -> tuple[ModelRun, Settings, int]:
    """(run, the settings its records were computed with, generation); raises when never computed.
    Remembered until the job or its inputs change (see :func:`job_status`)."""
    r = get_run(ws, run)
    return ws.state.memo(("metrics-ready", r.id), JOB_TOPICS, lambda: _ready_now(ws, r))


def _ready_now(ws: Workspace, r: ModelRun) -> tuple[ModelRun, Settings, int]:
    job = _job_row(ws.store.cursor(), r.id)
    if job is None or job[4] is None:
        state = "pending" if job is None else job[0]
        raise MetricsError(f"metrics of run {r.ref} are not computed (state: {state})", where=f"run {r.ref}",
                           fix=f"run `slicewise metrics compute {r.ref}` (or slicewise.metrics.compute_metrics)")
    sett = json.loads(job[6] or "{}")
    return r, Settings(tuple(job[4]), tuple(job[5]), sett.get("mode", MODES[0]), sett.get("radius", 70.0)), int(job[8])


def _check_kinds(cur: Any, run: ModelRun) -> None:
    pk = {r[0] for r in cur.execute("SELECT DISTINCT kind FROM predictions WHERE run_id = ?", [run.id]).fetchall()}
    gk = {r[0] for r in cur.execute("""SELECT DISTINCT a.kind FROM annotations a
                                       JOIN run_rows rr ON rr.data_row_id = a.data_row_id AND rr.run_id = ?""",
                                    [run.id]).fetchall()}
    spatial = {"area", "point", "line"}
    gf = {FAMILY[k] for k in gk} & spatial
    for k in sorted(pk):
        f = FAMILY.get(k)
        if f is None:
            raise MetricsError(f"predictions of unknown kind {k!r}", where=f"run {run.ref}", fix="re-import them")
        if f in spatial and gf and f not in gf:
            raise MetricsError(
                f"predictions of kind {k!r} cannot be compared with the ground truth of this run's rows "
                f"(kinds: {', '.join(sorted(gk))})", where=f"run {run.ref}, predictions",
                fix="predict the same kind of geometry as the labels (boxes, polygons and masks compare with each other)")


def compute_metrics(ws: Workspace, run: RunRef, *, on_progress: Callable[[int, int], None] | None = None,
                    full: bool = False) -> JobStatus:
    """Match a run and store its records; only stale rows when the job was ready (unless ``full``).

    From its call to its end, :func:`job_status` in this process says ``running`` (also while the job
    waits for the writer), so that a caller that started it in a thread sees it running at once."""
    r = get_run(ws, run)
    if ws.store.in_my_transaction:  # (a job commits as it goes, and reads the objects as committed)
        raise MetricsError(f"the metrics of run {r.ref} cannot be computed inside a write transaction",
                           where=f"run {r.ref}", fix="compute them after the transaction commits")
    ws.state.progress[r.id] = (0, 0)
    try:
        _compute_job(ws, r, on_progress, full)
    finally:
        ws.state.progress.pop(r.id, None)
    return job_status(ws, r.id)


def start_metrics(ws: Workspace, run: RunRef, *, full: bool = False,
                  then: Callable[[], None] | None = None) -> threading.Thread:
    """:func:`compute_metrics` in a daemon thread; :func:`job_status` says ``running`` from the moment this
    returns. A failure of the job is recorded in its status (``failed`` with the error); one found before
    the job starts (a run with no rows, geometry kinds that cannot match) is logged. ``then`` runs in the
    thread after a job that ended ``ready`` (the server warms the run's first view with it); its failure is
    logged."""
    r = get_run(ws, run)
    ws.state.progress[r.id] = (0, 0)
    log = logging.getLogger(__name__)

    def work() -> None:
        try:
            st = compute_metrics(ws, r.id, full=full)
        except Exception:  # noqa: BLE001 - recorded in the job's status (or, before it started, logged)
            if job_status(ws, r.id).state != "failed":
                log.exception("metrics of run %s did not start", r.ref)
            return
        if then is not None and st.state == "ready":
            try:
                then()
            except Exception:  # noqa: BLE001 - the metrics are stored; only the warm-up failed
                log.exception("after the metrics job of run %s", r.ref)

    th = threading.Thread(target=work, name=f"metrics-{r.id}", daemon=True)
    try:
        th.start()
    except BaseException:
        ws.state.progress.pop(r.id, None)
        raise
    return th


def _compute_job(ws: Workspace, r: ModelRun, on_progress: Callable[[int, int], None] | None, full: bool) -> None:
    s = settings(r)
    cur = ws.store.cursor()
    total = int(cur.execute("SELECT count(*) FROM run_rows WHERE run_id = ?", [r.id]).fetchone()[0])  # type: ignore[index]
    if total == 0:
        raise MetricsError(f"run {r.ref} has no data rows", where=f"run {r.ref}",
                           fix="add predictions (or rows, with add_run_rows) to the run first")
    _check_kinds(cur, r)
    job = _job_row(cur, r.id)
    redo_all = full or job is None or job[0] in ("failed", "running") or job[4] is None \
        or tuple(job[4]) != s.confidence or tuple(job[5] or ()) != s.iou or json.loads(job[6] or "{}") != s.key()
    current = int(job[9] or 0) if job else 0  # the generation of the lines readers see
    if not redo_all:
        todo = np.sort(cur.execute(_stale_rows_sql(), [current, r.id]).fetchnumpy()["data_row_id"])
        redo_all = len(todo) > INCREMENTAL_MAX_ROWS
    if redo_all:
        todo = cur.execute("SELECT data_row_id FROM run_rows WHERE run_id = ? ORDER BY data_row_id",
                           [r.id]).fetchnumpy()["data_row_id"]
    previous = int(job[8]) if job else 0
    with ws.store.transaction() as con:
        con.execute("DELETE FROM metric_jobs WHERE run_id = ?", [r.id])
        # keep the previous grids and generations: readers keep seeing the previous records until this job
        # makes its own current, and what they cache from them is keyed by the generation that names them
        con.execute("""INSERT INTO metric_jobs (run_id, state, done, total, error, confidence_grid, iou_grid, settings,
                                                started_at, finished_at, generation, records_gen)
                       VALUES (?, 'running', 0, ?, NULL, ?, ?, ?, ?, NULL, ?, ?)""",
                    [r.id, len(todo), job[4] if job else None, job[5] if job else None,
                     job[6] if job else None, _now(), previous, current])
        ws.store.touch("metric_job", run=r.id)
    ws.state.progress[r.id] = (0, len(todo))
    todo = np.asarray(todo, np.int64)
    try:
        if redo_all:
            _compute_full(ws, r, s, todo, current, previous, on_progress)
        else:  # a few stale rows: replaced in place, in one transaction
            with ws.store.transaction() as con:
                classes = _compute(ws, con, r, s, todo, current, commit_chunks=False, replace=True,
                                   on_progress=on_progress)
                classes.flush()
                _finish(ws, con, r, s, previous + 1, current)
    except Exception as exc:
        msg = str(exc) if isinstance(exc, MetricsError) else f"{type(exc).__name__}: {exc}"
        with ws.store.transaction() as con:
            con.execute("UPDATE metric_jobs SET state = 'failed', error = ?, finished_at = ? WHERE run_id = ?",
                        [msg, _now(), r.id])
            ws.store.touch("metric_job", run=r.id)
        if redo_all:  # the chunks this job committed: never current, dropped (else the next job or open does)
            with contextlib.suppress(Exception), ws.store.writer():
                records.drop_other_gens(ws, r.id, current, CHUNK_ROWS)
        raise


def _finish(ws: Workspace, con: Any, r: ModelRun, s: Settings, generation: int, records_gen: int) -> None:
    """Inside the job's last transaction: the job is ready, its lines (``records_gen``) are the ones readers see."""
    con.execute("""UPDATE metric_jobs SET state = 'ready', done = total, confidence_grid = ?, iou_grid = ?,
                   settings = ?, finished_at = ?, generation = ?, records_gen = ? WHERE run_id = ?""",
                [list(s.confidence), list(s.iou), json.dumps(s.key()), _now(), generation, records_gen, r.id])
    ontologies.rederive(con, r.id)
    ws.store.touch("metrics", run=r.id)
    ws.store.touch("metric_job", run=r.id)


def _compute_full(ws: Workspace, r: ModelRun, s: Settings, todo: np.ndarray, current: int, previous: int,
                  on_progress: Callable[[int, int], None] | None) -> None:
    """A full job: the lines of a new generation, committed chunk by chunk (readers ignore them), made current
    in one small last transaction; then the previous generation is dropped, in chunks. The writer is held
    throughout, so no other write of this process comes between the chunks (as when the job was one
    transaction). A job of up to :data:`CHUNK_ROWS` rows does all of it in one transaction."""
    new = current + 1
    with ws.store.writer():
        if len(todo) <= CHUNK_ROWS:
            with ws.store.transaction() as con:
                classes = _compute(ws, con, r, s, todo, new, commit_chunks=False, replace=False,
                                   on_progress=on_progress)
                classes.flush()
                _finish(ws, con, r, s, previous + 1, new)
                records.delete_other_gens(con, r.id, new)
            return
        records.drop_other_gens(ws, r.id, current, CHUNK_ROWS)  # what a job that died left behind
        classes = _compute(ws, ws.store.con, r, s, todo, new, commit_chunks=True, replace=False,
                           on_progress=on_progress)
        with ws.store.transaction() as con:
            classes.flush()
            _finish(ws, con, r, s, previous + 1, new)
        try:
            records.drop_other_gens(ws, r.id, new, CHUNK_ROWS)
        except Exception:  # noqa: BLE001 - the job is done; the next one (or the next open) drops them
            logging.getLogger(__name__).exception("dropping the previous metrics of run %s", r.ref)


def _compute(ws: Workspace, con: Any, run: ModelRun, s: Settings, todo: np.ndarray, gen: int, *, commit_chunks: bool,
             replace: bool, on_progress: Callable[[int, int], None] | None) -> records.ClassBook:
    """Match the rows of ``todo`` chunk by chunk and store their lines as generation ``gen``: in transactions
    of its own (``commit_chunks``: a large full job writing a new generation; the caller holds the writer), or
    all in the caller's transaction (a small full job; or an incremental job, whose rows' lines of ``gen`` are deleted
    first with ``replace``).
    Returns the job's classes (new ones still to :meth:`~records.ClassBook.flush`).

    The chunks are a pipeline: while a writer thread stores chunk n (DuckDB releases the GIL while it
    executes) and a reader thread reads the objects of chunk n + 2 (through a cursor of its own: they were
    committed before the job), this thread matches chunk n + 1. Every write goes through the one connection
    ``con``, one at a time (a lock), in the order of the chunks; progress is reported here, once a chunk is
    stored. With ``commit_chunks``, consecutive chunks share a transaction up to :data:`CHUNK_ROWS` rows (a
    commit writes a ledger line and the log: a small job is one transaction, not one per progress step).
    Transactions begin and end on this thread."""
    from slicewise.metrics import matching
    from slicewise.metrics.objects import load_row_objects

    thresholds = np.asarray(s.confidence, np.float64)
    classes = records.ClassBook(con, run.id)
    # chunks of at most CHUNK_ROWS, about 20 of them on a large job so that progress moves, and at least two
    # from PIPELINE_MIN_ROWS rows
    step = min(CHUNK_ROWS, max(PROGRESS_CHUNK, -(-len(todo) // 20)))
    if len(todo) >= PIPELINE_MIN_ROWS:
        step = min(step, -(-len(todo) // 2))
    chunks = [todo[i:i + step] for i in range(0, len(todo), step)]
    lock = threading.Lock()  # one statement on the connection at a time

    def store(chunk: np.ndarray, tables: dict[str, pa.Table]) -> None:
        with lock:
            con.register("_sw_rows", pa.table({"data_row_id": chunk}))
            try:
                if replace:
                    records.delete(con, run.id, gen, "_sw_rows")
                    con.execute("DELETE FROM metric_row_revs WHERE run_id = ? AND gen = ? AND data_row_id IN "
                                "(SELECT data_row_id FROM _sw_rows)", [run.id, gen])
                records.insert(ws, tables, gen)
                con.execute("""INSERT INTO metric_row_revs (run_id, data_row_id, label_rev, pred_rev, gen)
                               SELECT rr.run_id, rr.data_row_id, d.label_rev, rr.pred_rev, ?
                               FROM run_rows rr JOIN data_rows d ON d.id = rr.data_row_id
                               WHERE rr.run_id = ? AND rr.data_row_id IN (SELECT data_row_id FROM _sw_rows)""",
                            [gen, run.id])
            finally:
                con.unregister("_sw_rows")

    reader = ws.store.own_cursor()  # (compute_metrics is never called inside a transaction: objects are committed)

    def load(chunk: np.ndarray) -> Any:
        return load_row_objects(reader, run.id, chunk)

    done = 0

    def stored(chunk: np.ndarray) -> None:
        nonlocal done
        done += len(chunk)
        ws.state.progress[run.id] = (done, len(todo))
        with lock:
            con.execute("UPDATE metric_jobs SET done = ? WHERE run_id = ?", [done, run.id])
        if on_progress:
            on_progress(done, len(todo))

    pending: tuple[np.ndarray, Future[None]] | None = None  # the chunk being stored and its store
    tx = contextlib.ExitStack()  # the open transaction of the chunks written since the last commit (commit_chunks)
    in_tx = 0  # rows in it

    def settle(last: bool) -> None:
        """Wait for the pending chunk's store; commit its transaction if the next chunk would not fit in it."""
        nonlocal pending, tx, in_tx
        if pending is not None:
            pending[1].result()
            stored(pending[0])
            pending = None
        if last or in_tx + step > CHUNK_ROWS:
            tx.close()
            tx, in_tx = contextlib.ExitStack(), 0

    with contextlib.closing(reader), ThreadPoolExecutor(1, thread_name_prefix=f"metrics-store-{run.id}") as writer, \
            ThreadPoolExecutor(1, thread_name_prefix=f"metrics-load-{run.id}") as loader:
        loading = loader.submit(load, chunks[0]) if chunks else None
        try:
            for n, chunk in enumerate(chunks):
                assert loading is not None
                P, G = loading.result()
                loading = loader.submit(load, chunks[n + 1]) if n + 1 < len(chunks) else None
                m = matching.match_rows(P, G, thresholds, within_class=s.mode == "within-class", radius=s.radius,
                                        class_of=classes)
                tables = records.pack(m, run.id)
                del m, P, G
                settle(False)  # the previous chunk is stored before the next is written
                if commit_chunks and in_tx == 0:
                    tx.enter_context(ws.store.transaction())
                in_tx += len(chunk)
                pending = (chunk, writer.submit(store, chunk, tables))
            settle(True)
        except BaseException as exc:
            if pending is not None:  # let the writer finish before the transaction rolls back
                wait([pending[1]])
            with contextlib.suppress(BaseException):
                tx.__exit__(type(exc), exc, exc.__traceback__)
            raise
    return classes
