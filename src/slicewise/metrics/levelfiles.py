"""The arrays of each conf index of a metrics job, kept on disk beside the workspace.

A conf index's arrays (:class:`slicewise.metrics.fast.Level`) are read from the job's stored lines and pairs:
at 10M rows that takes about ten seconds, the whole of "a new confidence level". So they are written once,
as NumPy files in the workspace's cache folder (``.<workspace>.cache/levels/``, beside the cache database),
and a later read of that conf index, in this process or another, maps them from there (``np.load`` with
``mmap_mode``: nothing is read before it is used, and the pages are the operating system's to drop).
:func:`slicewise.query.warm`, which runs after every metrics job in the server and the CLI, writes every conf
index of the job.

A job's files are named after the workspace, the run, the job's generation and the stored versions of the
run's metrics and rows, so files of another workspace, an earlier job or a rewritten run are never read; writing a
job's files removes the run's older ones. Files are written under a temporary name and renamed when complete,
so a reader sees a conf index whole or not at all. Each conf index also keeps its rows' TN, named after the
version of the ontology it was counted with, and the job's folder keeps the run's data row ids (``rows.npy``).

Counts are kept in the smallest integers that hold them (the arrays built from the store hold them as
doubles: the same values, an eighth of the bytes); the IoU of pairs and every ratio stay doubles, so every
metric computed from the files is the one computed from the store, to the bit. The per-row confidence
columns are left out (only the per-row table reports them: it reads them from the store).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from slicewise.metrics.fast import Level
    from slicewise.workspace import Workspace

_INT = ("row_pos", "feature", "n_pred", "n_gt", "tp_line")
#: the per-row constants kept (the confidence ones, which only the per-row table reports, and n_feat, which no
#: view reads, are not: 32 bytes a row and a conf index)
_ROWC = {"n_pred": True, "n_gt": True, "n_p": True, "n_r": True, "n_f": True, "iou": False}
ROW_COLUMNS = tuple(_ROWC)  # (what a level built to be kept reads from the store)


def folder(ws: Workspace, run_id: int, gen: int) -> Path | None:
    """The folder of a job's files; None when the workspace keeps no cache folder (in memory, or caching off)."""
    st = ws.state
    if not st.persistent or not st.enabled:
        return None
    from slicewise.state import cache_path

    versions = st.fingerprint([f"metrics:{run_id}", f"run_rows:{run_id}"])  # (the records, and the rows they are of)
    stamp = hashlib.sha1(f"{st.workspace_id()};{versions}".encode()).hexdigest()[:16]
    return cache_path(ws.store.path).parent / "levels" / f"r{run_id}" / f"g{gen}_{stamp}"


def saved(path: Path | None, k: int) -> bool:
    """Whether conf index k's files were written (a folder appears only whole: see :func:`save`)."""
    return path is not None and (path / f"k{k}").is_dir()


def load(path: Path | None, k: int) -> dict[str, Any] | None:
    """The arrays of conf index k (memory-mapped), or None when they were not written."""
    if path is None or not saved(path, k):
        return None
    d = path / f"k{k}"
    try:
        arrays = {f.stem: np.load(f, mmap_mode="r") for f in d.glob("*.npy") if not f.stem.startswith("tn-")}
    except (OSError, ValueError):  # (removed meanwhile by a newer job, or damaged: built from the store again)
        return None
    rowc = {k[5:]: v for k, v in arrays.items() if k.startswith("rowc-")}
    if any(n not in arrays for n in (*_INT, "tp_iou")) or any(n not in rowc for n in _ROWC):
        return None  # (a file removed by hand: built from the store again)
    return {**{k: v for k, v in arrays.items() if not k.startswith("rowc-")}, "rowc": rowc}


def prefetch(path: Path | None) -> None:
    """Ask the operating system to read a job's files into its page cache, in the background, when they take at
    most a quarter of the memory available: the first conf index a process maps calls it, so that moving to
    another confidence level maps pages already read (at 10M rows a conf index's files are about 320 MB, half a
    second or more from the disk). Nothing where the system has no such advice (``os.posix_fadvise``)."""
    advise = getattr(os, "posix_fadvise", None)
    if path is None or advise is None or not path.is_dir():
        return
    files = [f for f in path.glob("k*/*.npy") if f.is_file()]
    try:
        total = sum(f.stat().st_size for f in files)
    except OSError:
        return
    if total > _available() // 4:
        return

    def run() -> None:
        for f in files:
            with contextlib.suppress(OSError), open(f, "rb") as fh:
                advise(fh.fileno(), 0, 0, os.POSIX_FADV_WILLNEED)

    threading.Thread(target=run, name="slicewise-level-prefetch", daemon=True).start()


def _available() -> int:
    """Bytes of memory available (Linux's MemAvailable), 0 when not known."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def save(path: Path | None, k: int, lv: Level) -> None:
    """Write conf index k's arrays (whole, or not at all); the run's files of earlier jobs go. Does nothing
    when they are there already or cannot be written (a read-only folder: they are built from the store)."""
    if path is None or saved(path, k):
        return
    tmp = path / f".k{k}-{uuid.uuid4().hex[:8]}"
    try:
        if not path.is_dir():
            path.mkdir(parents=True, exist_ok=True)
            for old in path.parent.iterdir():  # (a run's earlier jobs)
                if old != path:
                    shutil.rmtree(old, ignore_errors=True)
        tmp.mkdir()
        for name in ("row_pos", "feature", "n_pred", "n_gt", "tp_line", "tp_iou"):
            _write(tmp / f"{name}.npy", getattr(lv, name), name in _INT)
        for name, counts in _ROWC.items():
            _write(tmp / f"rowc-{name}.npy", lv.rowc[name], counts)
        os.replace(tmp, path / f"k{k}")
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


def load_rows(path: Path | None) -> np.ndarray | None:
    """The job's data row ids (sorted, memory-mapped), or None when they were not written."""
    rows = _mapped(None if path is None else path / "rows.npy")
    return rows if rows is not None and rows.dtype == np.int64 and rows.ndim == 1 else None


def save_rows(path: Path | None, rows: np.ndarray) -> None:
    """Keep the job's data row ids beside its conf indexes (a later process reads them from here: 0.35 s from
    the store at 10M rows); nothing when the job's folder is not there."""
    if path is None or not path.is_dir() or (path / "rows.npy").is_file():
        return
    with contextlib.suppress(OSError):
        _write(path / "rows.npy", np.asarray(rows, np.int64), False)


def load_tn(path: Path | None, k: int, version: str) -> np.ndarray | None:
    """Conf index k's TN per row as counted with the ontology of ``version``, or None."""
    return _mapped(_tn_file(path, k, version))


def _mapped(f: Path | None) -> np.ndarray | None:
    """A file's array, memory-mapped; None when it is not there or cannot be read (removed meanwhile by a newer
    job, or damaged: built from the store again)."""
    if f is None or not f.is_file():
        return None
    try:
        return np.load(f, mmap_mode="r")
    except (OSError, ValueError):
        return None


def save_tn(path: Path | None, k: int, version: str, tn: np.ndarray) -> None:
    f = _tn_file(path, k, version)
    if f is None or not f.parent.is_dir() or f.is_file():
        return
    try:
        for old in f.parent.glob("tn-*.npy"):  # (counted with an earlier ontology)
            old.unlink(missing_ok=True)
        _write(f, tn, True)
    except OSError:
        pass


def _tn_file(path: Path | None, k: int, version: str) -> Path | None:
    if path is None:
        return None
    return path / f"k{k}" / f"tn-{hashlib.sha1(version.encode()).hexdigest()[:16]}.npy"


def smallest_ints(v: np.ndarray) -> np.ndarray:
    """Whole numbers in the smallest signed integers that hold them (``v`` itself when it has those already)."""
    lo, hi = (int(v.min()), int(v.max())) if len(v) else (0, 0)
    return v.astype(next(t for t in (np.int8, np.int16, np.int32, np.int64)
                         if np.iinfo(t).min <= lo and hi <= np.iinfo(t).max), copy=False)


def _write(f: Path, v: np.ndarray, counts: bool) -> None:
    if counts:  # (whole numbers: in the smallest integers that hold them)
        v = smallest_ints(v)
    tmp = f.with_name(f".{f.name}-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(v), allow_pickle=False)
        os.replace(tmp, f)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
