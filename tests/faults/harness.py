"""What the fault suite and ``benchmarks/bench_faults.py`` share: a base workspace, a child process that
writes (an import, a metrics job, a slice update), a SIGKILL at a chosen moment, and the check after it.

The check reopens the workspace (which repairs an interrupted write, see ``slicewise.store.ledger``) and
compares the row count and content checksum of every table with the state before the write and the state
after a write that was not interrupted: it must be one of the two, nothing between.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

N_IMAGES = 2_000
N_CLASSES = 20

def child_main(kind: str, ws_path: str, arg: str, opened: Any) -> None:
    """The child: one write (run in a forked process so that it can be killed)."""
    import slicewise

    ws = slicewise.open(ws_path)
    opened.set()
    if kind in ("import", "import-then-die"):
        from slicewise.io import import_coco_results

        import_coco_results(ws, arg, "det/r1")
        if kind == "import-then-die":
            os._exit(0)  # dies before it closes (checkpoints) the file: the write is in the log only
    elif kind == "metrics":
        from slicewise.metrics import compute_metrics

        compute_metrics(ws, arg, full=True)
    elif kind == "slice":
        from slicewise.slices import update_slice

        update_slice(ws, "low-iou", filter=arg)
    elif kind == "tags":
        ws.add_tags([f"img{i:06d}.jpg" for i in range(1, N_IMAGES + 1)], [arg])
    ws.close()


_CTX: Any = None


def _context() -> Any:
    """A forkserver that has imported slicewise once: a child then starts in milliseconds, not seconds."""
    global _CTX
    if _CTX is None:
        import multiprocessing as mp

        _CTX = mp.get_context("forkserver")
        _CTX.set_forkserver_preload(["slicewise", "slicewise.io", "slicewise.metrics", "slicewise.slices", "duckdb",
                                     "pyarrow", "numpy", __name__])
    return _CTX


#: tables whose content is derived in the cache folder or not part of a write's outcome
SKIP = {"ledger"}


def generate(folder: Path, n_preds: int, seed: int = 0) -> tuple[Path, Path]:
    """A COCO instances file (images, a few labels) and a results file of ``n_preds`` boxes."""
    rng = np.random.default_rng(seed)
    images = [{"id": i, "file_name": f"img{i:06d}.jpg", "width": 640, "height": 480} for i in range(1, N_IMAGES + 1)]
    cats = [{"id": c, "name": f"class{c}"} for c in range(1, N_CLASSES + 1)]
    anns = [{"id": k + 1, "image_id": int(rng.integers(1, N_IMAGES + 1)), "category_id": int(rng.integers(1, N_CLASSES + 1)),
             "bbox": [float(rng.uniform(0, 400)), float(rng.uniform(0, 300)), 50.0, 40.0], "area": 2000.0, "iscrowd": 0}
            for k in range(N_IMAGES * 2)]
    gt = folder / "gt.json"
    gt.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    img = rng.integers(1, N_IMAGES + 1, n_preds)
    cat = rng.integers(1, N_CLASSES + 1, n_preds)
    xy = rng.uniform(0, 400, (n_preds, 2)).round(1)
    wh = rng.uniform(5, 120, (n_preds, 2)).round(1)
    score = rng.uniform(0, 1, n_preds).round(4)
    res = folder / "results.json"
    with open(res, "w") as fh:
        fh.write("[" + ",".join(f'{{"image_id":{img[i]},"category_id":{cat[i]},"bbox":[{xy[i, 0]},{xy[i, 1]},'
                                f'{wh[i, 0]},{wh[i, 1]}],"score":{score[i]}}}' for i in range(n_preds)) + "]")
    return gt, res


def base_workspace(folder: Path, n_preds: int) -> tuple[Path, Path]:
    """(a closed workspace with the images and labels, the results file)."""
    import slicewise
    from slicewise.io import import_coco

    gt, res = generate(folder, n_preds)
    base = folder / "base.duckdb"
    with slicewise.open(base) as ws:
        import_coco(ws, gt)
    return base, res


def fingerprint(path: Path) -> dict[str, tuple[int, str]]:
    """Every table's (rows, checksum of its content), opened as a user would (which repairs)."""
    import slicewise

    with slicewise.open(path) as ws:
        tables = [r[0] for r in ws.sql("SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
                                       "AND schema_name = 'main' ORDER BY 1").fetchall()]
        out = {}
        for t in tables:
            if t in SKIP:
                continue
            # every column but the clock's (created_at...: a rerun of the same write differs only there)
            cols = [r[0] for r in ws.sql("SELECT column_name FROM information_schema.columns WHERE table_catalog = "
                                         "current_database() AND table_name = ? AND data_type NOT LIKE 'TIMESTAMP%' "
                                         "ORDER BY ordinal_position", [t]).fetchall()]
            row = ", ".join(f'"{c}"' for c in cols)
            n, s = ws.sql(f'SELECT count(*), coalesce(sum(hash({row})), 0)::VARCHAR FROM "{t}"').fetchone()
            out[t] = (int(n), str(s))
        ok, bad = ws.store.check()
        assert ok, f"the ledger does not match the tables after reopening: {bad}"
    return out


def content(fp: dict[str, tuple[int, str]], ignore: set[str]) -> dict[str, tuple[int, str]]:
    """A fingerprint without the tables whose content is per-commit bookkeeping (change log, versions)."""
    return {t: v for t, v in fp.items() if t not in ignore}


#: per-commit bookkeeping: versions (random tokens), the change log, timestamps of jobs
BOOKKEEPING = {"meta", "change_log"}


def run_child(kind: str, ws: Path, arg: str, *, kill_after: float | None = None, wal_bytes: int | None = None,
              timeout: float = 300) -> tuple[int, float, str, int]:
    """Run a write in a child process; SIGKILL it ``kill_after`` seconds after it opened the workspace, or
    once the write-ahead log holds ``wal_bytes``. Returns (exit code, seconds after open, output, the
    largest write-ahead log seen)."""
    ctx = _context()
    opened = ctx.Event()
    proc = ctx.Process(target=child_main, args=(kind, str(ws), arg, opened))
    proc.start()
    if not opened.wait(timeout):
        proc.kill()
        raise AssertionError("the child did not open the workspace")
    t0 = time.perf_counter()
    wal = ws.with_name(ws.name + ".wal")
    deadline = t0 + timeout
    biggest = 0
    while proc.is_alive() and time.perf_counter() < deadline:
        if kill_after is not None and time.perf_counter() - t0 >= kill_after:
            break
        with contextlib.suppress(FileNotFoundError):
            biggest = max(biggest, wal.stat().st_size)
        if wal_bytes is not None and biggest >= wal_bytes:
            break
        time.sleep(0.0005)
    if proc.is_alive() and (kill_after is not None or wal_bytes is not None):
        os.kill(proc.pid, signal.SIGKILL)
    proc.join(timeout)
    return int(proc.exitcode if proc.exitcode is not None else -1), time.perf_counter() - t0, "", biggest


@dataclass
class KillOutcome:
    moment: str
    returncode: int
    state: str  # "before", "after" or "partial"
    detail: str = ""


def classify(fp: dict[str, tuple[int, str]], before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]],
             ignore: set[str]) -> tuple[str, str]:
    a, b, now = content(after, ignore), content(before, ignore), content(fp, ignore)
    if now == b:
        return "before", ""
    if now == a:
        return "after", ""
    rows = {t: (b.get(t, (None,))[0], now.get(t, (None,))[0], a.get(t, (None,))[0])
            for t in sorted(set(a) | set(b) | set(now)) if a.get(t) != b.get(t) or now.get(t) not in (a.get(t), b.get(t))}
    return "partial", f"rows before/now/after of the tables the write changes: {rows}"


@dataclass
class Reference:
    before: dict[str, tuple[int, str]]
    after: dict[str, tuple[int, str]]
    seconds: float  # the uninterrupted write, from the child's open to its exit
    wal_bytes: int  # the largest write-ahead log it left on the way


def reference(base: Path, work: Path, kind: str, arg: str, ignore: set[str]) -> Reference:
    """The states before and after the write, run once uninterrupted."""
    before = fingerprint(copy(base, work / "ref-before.duckdb"))
    ref = copy(base, work / "ref.duckdb")
    rc, took, out, wal = run_child(kind, ref, arg)
    assert rc == 0, out
    after = fingerprint(ref)
    assert content(after, ignore) != content(before, ignore), "the write changed nothing"
    return Reference(before, after, took, wal)


def kill_series(base: Path, work: Path, kind: str, arg: str, moments: list[tuple[str, float | None, int | None]],
                ignore: set[str], ref: Reference) -> list[KillOutcome]:
    """The write once per moment, killed there, each reopened and classified against ``ref``."""
    before, after = ref.before, ref.after
    outcomes = []
    for i, (label, t, wal_bytes) in enumerate(moments):
        ws = copy(base, work / f"k{i}.duckdb")
        rc, _, out, _ = run_child(kind, ws, arg, kill_after=t, wal_bytes=wal_bytes)
        state, detail = classify(fingerprint(ws), before, after, ignore)
        outcomes.append(KillOutcome(label, rc, state, detail))
        for f in work.glob(f"k{i}.duckdb*"):
            f.unlink()
        shutil.rmtree(work / f".k{i}.duckdb.cache", ignore_errors=True)
    return outcomes


def copy(base: Path, dest: Path) -> Path:
    shutil.copyfile(base, dest)
    return dest


def moments(rng: np.random.Generator, n: int, took: float, wal_size: int) -> list[tuple[str, float | None, int | None]]:
    """``n`` kill moments spread over the whole write: half at a uniform random time of it (a little past
    its end too, where the commit and the checkpoint run), half when the write-ahead log reaches a random
    fraction of the size an uninterrupted write leaves (during the commit's log write)."""
    out: list[tuple[str, float | None, int | None]] = []
    for i in range(n):
        if i % 2 == 0 or wal_size <= 0:
            t = float(rng.uniform(0.0, 1.1)) * took
            out.append((f"t={t:.3f}s", t, None))
        else:
            b = max(1, int(float(rng.uniform(0.0, 1.0)) * wal_size))
            out.append((f"wal>={b}B", None, b))
    return out
