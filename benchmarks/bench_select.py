"""How long ``select_rows`` takes on a big pool.

    .venv/bin/python benchmarks/bench_select.py [--rows 50000]

A workspace of ``--rows`` rows (every 10th labelled), a 10-class radio run with probability vectors on all of
them and a 64-dimensional cosine space; the pool is ``annotation is none`` (90% of the rows). For entropy,
diversity (k-center greedy from 2,000 sampled labelled rows) and combined, 100 rows picked: the median of 3
calls, with the load average.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=50_000)
    a = ap.parse_args()
    import slicewise
    from slicewise import embeddings
    from slicewise.curation.active import select_rows

    n = a.rows
    with tempfile.TemporaryDirectory() as d:
        ws = slicewise.open(os.path.join(d, "ws.duckdb"))
        ws.add_data_rows("d", [{"global_key": f"k{i}", "row_data": "x.jpg"} for i in range(n)])
        ws.create_feature("c", "radio", [str(i) for i in range(10)])
        ws.add_annotations([{"data_row": f"k{i}", "feature": "c", "answer": "0"} for i in range(0, n, 10)])
        run = ws.create_run("m", "v1")
        rng = np.random.default_rng(0)
        p = rng.dirichlet(np.full(10, 0.5), size=n)
        ws.add_predictions(run, [{"data_row": f"k{i}", "feature": "c", "answer": str(int(p[i].argmax())),
                                  "confidence": float(p[i].max()), "probabilities": p[i].tolist()} for i in range(n)])
        embeddings.add_vectors(ws, "s", [f"k{i}" for i in range(n)], rng.normal(size=(n, 64)).astype(np.float32))
        for strategy in ("entropy", "diversity", "combined"):
            times = []
            for _ in range(3):
                t = time.perf_counter()
                s = select_rows(ws, "annotation is none", 100, strategy=strategy, run="m/v1", space="s")
                times.append(time.perf_counter() - t)
            print(f"{strategy:<10} pool {s.pool_size:,}: median {sorted(times)[1]:.2f} s "
                  f"(min {min(times):.2f}, load {os.getloadavg()[0]:.1f})", flush=True)
        ws.close()


if __name__ == "__main__":
    main()
