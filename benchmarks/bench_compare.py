"""Benchmark run comparison on 1,000,000 data rows, and report the bootstrap intervals' coverage.

    .venv/bin/python benchmarks/bench_compare.py [--rows 1000000] [--workspace $TMPDIR/slicewise_bench_compare.duckdb]
                                                 [--repeat 3] [--coverage-reps 1000]

Builds the workspace once (bench_query's 1M rows, 10 box classes, run v1; then run v2: v1's predictions with
5% dropped, 10% re-jittered, new false positives on 3% of rows, confidences moved; both computed) and reuses it.
Then, median of ``--repeat`` with the load average beside it:

- ``compare_runs`` (10 classes + overall + 3 metadata slices, 1,000 bootstrap resamples each) the first time at a
  (c, t) pair (the flips table and the per-(row, feature) metrics tables of both runs are built) and again
  (cached tables; the deltas, flips and bootstrap are recomputed);
- the reference in the same run: a naive percentile bootstrap that draws row indices (``rng.integers``) and
  sums the per-row counts of the overall group, 100 resamples, times 10 for 1,000;
- the coverage simulation (:mod:`slicewise.compare.simulate`): the share of simulated comparisons whose 95%
  interval holds the true recall / precision delta.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))

import slicewise  # noqa: E402
from slicewise import metrics, slices  # noqa: E402
from slicewise.compare import compare_runs  # noqa: E402
from slicewise.compare.simulate import coverage  # noqa: E402


def build(path: Path, n: int, seed: int = 0) -> None:
    from bench_query import build as build_v1

    build_v1(path, n, seed)
    rng = np.random.default_rng(seed + 1)
    ws = slicewise.open(path)
    v1 = ws.run("bench-model/v1")
    v2 = ws.create_run("bench-model", "v2")
    p = ws.sql("SELECT data_row_id, feature_id, x, y, w, h, confidence FROM predictions WHERE run_id = ? ORDER BY id",
               [v1.id]).fetchnumpy()
    keep = rng.random(len(p["x"])) >= 0.05
    cols = {k: np.asarray(v)[keep] for k, v in p.items()}
    m = len(cols["x"])
    move = rng.random(m) < 0.10
    for k, s in (("x", 8.0), ("y", 8.0)):
        cols[k] = np.where(move, cols[k] + rng.normal(0, s, m), cols[k])
    cols["confidence"] = np.clip(cols["confidence"] + rng.normal(0, 0.05, m), 0, 1).round(4)
    ids = np.arange(1, n + 1, dtype=np.int64)
    extra = ids[rng.random(n) < 0.03]
    e = len(extra)
    rows = np.concatenate([cols["data_row_id"], extra])
    k = len(rows)
    start = int(ws.sql("SELECT max(id) FROM predictions").fetchone()[0]) + 1
    now = datetime(2025, 1, 2)
    w = np.concatenate([cols["w"], rng.uniform(20, 140, e)])
    h = np.concatenate([cols["h"], rng.uniform(20, 100, e)])
    with ws.store.transaction():
        ws.store.insert_arrow("predictions", pa.table({
            "id": np.arange(start, start + k, dtype=np.int64), "data_row_id": rows,
            "feature_id": pa.array(np.concatenate([cols["feature_id"], rng.integers(1, 11, e)]).astype(np.int32)),
            "kind": pa.array(["bbox"] * k), "answer": pa.nulls(k, pa.string()),
            "x": np.concatenate([cols["x"], rng.uniform(0, 500, e)]), "y": np.concatenate([cols["y"], rng.uniform(0, 380, e)]),
            "w": w, "h": h, "geometry": pa.nulls(k, pa.binary()), "mask_rle": pa.nulls(k, pa.string()),
            "span_start": pa.nulls(k, pa.int32()), "span_end": pa.nulls(k, pa.int32()), "area": w * h,
            "external_id": pa.nulls(k, pa.string()), "source": pa.array(["bench"] * k),
            "created_at": pa.array([now] * k, pa.timestamp("us")), "run_id": pa.array(np.full(k, v2.id, np.int32)),
            "confidence": np.concatenate([cols["confidence"], np.round(rng.beta(2, 5, e), 4)]),
            "probabilities": pa.nulls(k, pa.list_(pa.float64()))}))
        ws.store.insert_arrow("run_rows", pa.table({"run_id": pa.array(np.full(n, v2.id, np.int32)), "data_row_id": ids,
                                                    "pred_rev": pa.array(np.ones(n, np.int32))}))
        ws.store.touch("predictions", run=v2.id)
        ws.store.touch("run_rows", run=v2.id)
    t0 = time.perf_counter()
    metrics.compute_metrics(ws, v2)
    print(f"run v2: {k:,} predictions, metrics computed in {time.perf_counter() - t0:.1f} s")
    for name, f in (("rainy", "metadata.weather = rain"), ("fast", "metadata.speed > 40"),
                    ("camera 02", 'metadata.camera = "camera-02"')):
        slices.create_slice(ws, name, f)
    ws.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--workspace", type=Path, default=Path(tempfile.gettempdir()) / "slicewise_bench_compare.duckdb")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--coverage-reps", type=int, default=1000)
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--no-reference", action="store_true", help="leave the naive bootstrap out")
    a = ap.parse_args()
    if a.rebuild and a.workspace.exists():
        a.workspace.unlink()
    if not a.workspace.exists():
        build(a.workspace, a.rows)
    ws = slicewise.open(a.workspace)
    load = lambda: f"load {os.getloadavg()[0]:.1f}"  # noqa: E731
    first, again = [], []
    for i in range(a.repeat):
        # a new IoU threshold each time (cache tables are kept in the workspace across processes)
        t = round(0.5 + 0.05 * i + 0.01 * (time.time() % 1), 6)
        t0 = time.perf_counter()
        cmp = compare_runs(ws, "bench-model/v1", "bench-model/v2", confidence=0.5, iou=t, auto=False)
        first.append((time.perf_counter() - t0, load()))
        t0 = time.perf_counter()
        compare_runs(ws, "bench-model/v1", "bench-model/v2", confidence=0.5, iou=t, auto=False)
        again.append((time.perf_counter() - t0, load()))
    med = lambda xs: statistics.median(x[0] for x in xs)  # noqa: E731
    print(f"{cmp.rows:,} common rows, {len(cmp.classes)} classes, {len(cmp.slices)} slices, flips {cmp.flips}")
    print(f"compare_runs, first at a (c, t): median {med(first):.2f} s  {[f'{s:.2f} s ({ld})' for s, ld in first]}")
    print(f"compare_runs, again (cached tables): median {med(again):.2f} s  {[f'{s:.2f} s ({ld})' for s, ld in again]}")
    # the reference: a naive bootstrap drawing row indices, overall group, 100 resamples (x 10 for 1,000)
    from slicewise.compare.diff import Pair, counts_sql

    if a.no_reference:
        a.repeat = 0
    pair = Pair(ws, "bench-model/v1", "bench-model/v2", 0.5, 0.55)
    sql, params = counts_sql(pair, False)
    x = ws.store.cursor().execute(f"SELECT tpa, fpa, fna, tpb, fpb, fnb FROM ({sql})", params).fetchnumpy()
    rows = np.column_stack([np.asarray(x[c], np.float64) for c in ("tpa", "fpa", "fna", "tpb", "fpb", "fnb")])
    rng = np.random.default_rng(0)
    naive = []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        for _b in range(100):
            rows[rng.integers(0, len(rows), len(rows))].sum(axis=0)
        naive.append((10 * (time.perf_counter() - t0), load()))
    if naive:
        print(f"reference, naive row bootstrap of one group, 1,000 resamples (100 timed x 10): median {med(naive):.1f} s "
              f"{[f'{s:.1f} s ({ld})' for s, ld in naive]}; slicewise does {len(cmp.groups())} groups x 1,000 in "
              "the 'again' figure")
    if not a.coverage_reps:
        return
    t0 = time.perf_counter()
    cov = coverage(reps=a.coverage_reps)
    print(f"coverage of the 95% percentile intervals over {cov['reps']} simulated comparisons of {cov['n']:,} rows "
          f"({cov['n_boot']} resamples): recall {cov['coverage_recall']:.3f} (mean width {cov['width_recall']:.3f}), "
          f"precision {cov['coverage_precision']:.3f} (mean width {cov['width_precision']:.3f}); "
          f"{time.perf_counter() - t0:.0f} s, {load()}")


if __name__ == "__main__":
    main()
