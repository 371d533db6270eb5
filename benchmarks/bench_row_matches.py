"""Benchmark: latency of the detail view's per-object outcomes (slicewise.metrics.row_matches).

    .venv/bin/python benchmarks/bench_row_matches.py                   # COCO-like run: 5,000 images, ~90k preds
    .venv/bin/python benchmarks/bench_row_matches.py --preds 1000000 --images 50000 --boxes 400000

Times row_matches on random rows (with and without the best-overlap IoUs of unpaired objects) and, for
scale, the same row's metrics read from row_metrics_table, in this one process; then the gallery's page of
outcomes (rows_outcomes over 50 rows in one query) against 50 calls of row_matches(best_iou=False), and the
COCO AP columns of the metrics table (feature_ap: first call, then the memoised one).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--boxes", type=int, default=35000)
    ap.add_argument("--preds", type=int, default=90000)
    ap.add_argument("--classes", type=int, default=80)
    ap.add_argument("--samples", type=int, default=200)
    args = ap.parse_args()
    from bench_metrics import build_ws, make_coco

    from slicewise import metrics as M

    gt, results = make_coco(args.images, args.boxes, args.preds, args.classes)
    ws, run = build_ws(os.path.join(tempfile.mkdtemp(), "bench.duckdb"), gt, results)
    t0 = time.perf_counter()
    M.compute_metrics(ws, run)
    print(f"compute_metrics: {time.perf_counter() - t0:.2f} s ({args.preds:,} predictions, {args.images:,} images)")
    rows = ws.sql("SELECT data_row_id FROM run_rows WHERE run_id = ?", [run.id]).fetchnumpy()["data_row_id"]
    pick = np.random.default_rng(1).choice(rows, min(args.samples, len(rows)), replace=False)
    table = M.row_metrics_table(ws, run, 0.5, 0.5)
    M.row_matches(ws, run, int(pick[0]), 0.5, 0.5)  # warm up (imports, numba)

    def lat(fn) -> np.ndarray:
        out = []
        for rid in pick:
            t = time.perf_counter()
            fn(int(rid))
            out.append((time.perf_counter() - t) * 1000)
        return np.asarray(out)

    n_obj = []
    full = lat(lambda r: n_obj.append(len(M.row_matches(ws, run, r, 0.5, 0.5))))
    rec = lat(lambda r: M.row_matches(ws, run, r, 0.5, 0.5, best_iou=False))
    ref = lat(lambda r: ws.sql(f"SELECT * FROM {table} WHERE data_row_id = ?", [r]).fetchall())
    print(f"objects per sampled row: mean {np.mean(n_obj):.1f}, max {max(n_obj)}")
    for name, v in (("row_matches", full), ("row_matches best_iou=False", rec), ("row_metrics_table lookup", ref)):
        print(f"{name:30s} median {np.median(v):7.1f} ms   p95 {np.percentile(v, 95):7.1f} ms")
    print(f"ratio row_matches / row metrics lookup (median): {np.median(full) / np.median(ref):.1f}x")
    pages = [[int(i) for i in pick[j:j + 50]] for j in range(0, len(pick) - 49, 50)] or [[int(i) for i in pick]]
    page_ms = []
    for p in pages:
        t = time.perf_counter()
        M.rows_outcomes(ws, run, p, 0.5, 0.5)
        page_ms.append((time.perf_counter() - t) * 1000)
    print(f"rows_outcomes, a page of 50 rows   median {np.median(page_ms):7.1f} ms   ({len(pages)} pages; "
          f"50 x row_matches best_iou=False: ~{50 * np.median(rec):.0f} ms)")
    t = time.perf_counter()
    M.feature_ap(ws, run)
    first = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    M.feature_ap(ws, run)
    print(f"feature_ap (COCO AP columns)       first {first:7.1f} ms   memoised {(time.perf_counter() - t) * 1000:.2f} ms")


if __name__ == "__main__":
    main()
