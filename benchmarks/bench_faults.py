"""Crash safety at a larger count: an import of ``--preds`` predictions killed (SIGKILL) at ``--kills`` seeded
random moments spread over the whole import (half at a random time, half when the commit's write-ahead
log reaches a random size), each reopened and classified: the state before the import, the state after
it, or partial (must be 0). Also prints the ledger's cost: a tag edit and the import, with and without
the ledger's bookkeeping (same run, median of ``--repeat``).

    .venv/bin/python benchmarks/bench_faults.py [--preds 200000] [--kills 100] [--seed 0] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def overhead(base: Path, res: Path, work: Path, repeat: int) -> None:
    """The ledger's cost: its bookkeeping (counts/checksums + ledger line + marks file) switched off by
    replacing ledger.record/mark with no-ops, in the same process, against the same files."""
    import shutil

    import slicewise
    from slicewise.io import import_coco_results
    from slicewise.store import database, ledger

    real_record, real_mark = ledger.record, ledger.mark

    def timed(on: bool) -> tuple[float, float]:
        database.ledger.record = real_record if on else (lambda con, tables, what: 0)  # type: ignore[assignment]
        database.ledger.mark = real_mark if on else (lambda path, op: None)  # type: ignore[assignment]
        ws_path = work / f"ov-{on}.duckdb"
        shutil.copyfile(base, ws_path)
        with slicewise.open(ws_path) as ws:
            t = time.perf_counter()
            import_coco_results(ws, res, "det/ov")
            imp = time.perf_counter() - t
            keys = [f"img{i:06d}.jpg" for i in range(1, 11)]
            tags = []
            for k in range(10):
                t = time.perf_counter()
                ws.add_tags(keys, [f"t{k}"])
                tags.append(time.perf_counter() - t)
        for f in work.glob(f"ov-{on}.duckdb*"):
            f.unlink()
        return imp, statistics.median(tags)

    rows = {True: [], False: []}  # type: ignore[var-annotated]
    for _ in range(repeat):
        for on in (False, True):
            rows[on].append(timed(on))
    database.ledger.record, database.ledger.mark = real_record, real_mark  # type: ignore[assignment]
    for label, i in (("import", 0), ("tag edit (10 rows)", 1)):
        off = statistics.median(r[i] for r in rows[False])
        on = statistics.median(r[i] for r in rows[True])
        print(f"{label}: {on * 1000:.1f} ms with the ledger, {off * 1000:.1f} ms without "
              f"(+{(on - off) * 1000:.1f} ms, {100 * (on - off) / off:+.1f} %)  load {os.getloadavg()[0]:.2f}")


def main() -> None:
    import numpy as np
    from faults import harness as h

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preds", type=int, default=200_000)
    ap.add_argument("--kills", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-overhead", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        t = time.perf_counter()
        base, res = h.base_workspace(work, args.preds)
        print(f"base workspace ({h.N_IMAGES:,} images) and {args.preds:,} predictions in {time.perf_counter() - t:.1f} s")
        if not args.skip_overhead:
            overhead(base, res, work, args.repeat)
        ref = h.reference(base, work, "import", str(res), h.BOOKKEEPING)
        print(f"uninterrupted import: {ref.seconds:.2f} s, write-ahead log up to {ref.wal_bytes:,} bytes")
        moments = h.moments(np.random.default_rng(args.seed), args.kills, ref.seconds, ref.wal_bytes)
        t = time.perf_counter()
        outcomes = h.kill_series(base, work, "import", str(res), moments, h.BOOKKEEPING, ref)
        states = Counter(o.state for o in outcomes)
        killed = sum(o.returncode == -9 for o in outcomes)
        print(f"{len(outcomes)} runs, {killed} killed, in {time.perf_counter() - t:.0f} s: "
              f"{states['before']} as before the import, {states['after']} with the whole import, "
              f"{states['partial']} partial  load {os.getloadavg()[0]:.2f}")
        for o in outcomes:
            if o.state == "partial":
                print(f"  PARTIAL at {o.moment}: {o.detail}")
        if states["partial"]:
            sys.exit(1)


if __name__ == "__main__":
    main()
