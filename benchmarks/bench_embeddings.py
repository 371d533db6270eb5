"""Similarity search and the image embedder, timed.

    .venv/bin/python benchmarks/bench_embeddings.py [--rows 1000000] [--dim 512] [--repeat 3] [--ws-rows 1000000]

1. Top-50 over ``--rows`` x ``--dim`` unit vectors (a Gaussian mixture of 2,000 clusters, as real
   embeddings cluster; uniform random vectors in 512 dimensions have no neighbours to speak of):
   slicewise's exact search (NumPy) next to FAISS ``IndexFlatIP`` (the reference) in the same run; the
   IVF index (build time, query time, recall@50 against exact over 50 queries). Targets: exact <= 250 ms,
   ANN <= 20 ms, recall@50 >= 0.95.
2. Filtered search end to end: a workspace of ``--ws-rows`` data rows (metadata ``camera``, 100
   values) with a ``--dim`` vector each, ``embeddings.similar(..., view=View(filter='metadata.camera =
   "cam-007"'))``: 1% of the rows; target <= 100 ms (after the first query, which loads the vectors).
3. The image embedder (EfficientNet-Lite0, ONNX, onnxruntime on every core): images per second at 224
   and 96 pixels on 256 generated 320x240 JPEGs (decoding included).

Each figure is the median of ``--repeat`` runs, printed with the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def load() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def fmt(xs: list[float]) -> str:
    return "[" + ", ".join(f"{x:.1f}" for x in xs) + "]"


def median_ms(fn, repeat: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), times


def clustered(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(2000, dim)).astype(np.float32)
    out = np.empty((n, dim), np.float32)
    for s in range(0, n, 100_000):
        m = min(100_000, n - s)
        out[s:s + m] = centres[rng.integers(0, 2000, m)] + 0.7 * rng.normal(size=(m, dim)).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def bench_search(n: int, dim: int, repeat: int, ivf: bool = True) -> None:
    import faiss

    from slicewise.embeddings.index import SpaceIndex, new_ivf

    print(f"\n== top-50 over {n:,} x {dim} ({load()})")
    t = time.perf_counter()
    vecs = clustered(n, dim)
    print(f"generated in {time.perf_counter() - t:.1f} s")
    idx = SpaceIndex(np.arange(n, dtype=np.int64), vecs, "cosine")
    rng = np.random.default_rng(1)
    queries = vecs[rng.choice(n, 50, replace=False)]
    q_iter = iter(range(10**9))
    t = time.perf_counter()
    idx.quantized()  # made once per index version (in the background beside the IVF index)
    print(f"int8 codes of the vectors made in {time.perf_counter() - t:.1f} s")
    idx.search(queries[49], 50, exact=True)  # the kernels' first call loads them (numba): not timed
    ms, all_ms = median_ms(lambda: idx.search(queries[next(q_iter) % 50], 50, exact=True), repeat)
    print(f"exact (slicewise, int8 scan + float32 re-score): median {ms:7.1f} ms  {fmt(all_ms)}  target <= 250  ({load()})")
    flat = faiss.IndexFlatIP(dim)
    flat.add(vecs)
    ms, all_ms = median_ms(lambda: flat.search(queries[next(q_iter) % 50:][:1], 50), repeat)
    print(f"exact (FAISS IndexFlatIP):     median {ms:7.1f} ms  {fmt(all_ms)}  (reference)")
    flat.reset()
    ms, all_ms = median_ms(lambda: np.argpartition(-(vecs @ queries[next(q_iter) % 50]), 49)[:50], repeat)
    print(f"exact (NumPy matrix-vector product + partial sort, unordered): median {ms:7.1f} ms  {fmt(all_ms)}")
    if not ivf:
        return
    t = time.perf_counter()
    idx.ann = new_ivf(vecs)
    print(f"IVF index: {idx.ann.nlist} lists, built in {time.perf_counter() - t:.1f} s ({load()})")
    ms, all_ms = median_ms(lambda: idx.search(queries[next(q_iter) % 50], 50), repeat)
    print(f"ANN (IVF):                     median {ms:7.1f} ms  {fmt(all_ms)}  target <= 20  ({load()})")
    recalls = []
    for q in queries:
        a = set(idx.search(q, 50)[0].tolist())
        e = set(idx.search(q, 50, exact=True)[0].tolist())
        recalls.append(len(a & e) / 50)
    print(f"recall@50 of the IVF index against exact, 50 queries: mean {np.mean(recalls):.4f}, "
          f"min {np.min(recalls):.2f}  target >= 0.95")
    allowed = np.sort(rng.choice(n, n // 100, replace=False))
    ms, all_ms = median_ms(lambda: idx.search(queries[next(q_iter) % 50], 50, allowed), repeat)
    print(f"1%-selective, index level:     median {ms:7.1f} ms  {fmt(all_ms)}")


def bench_filtered(n: int, dim: int, repeat: int) -> None:
    import pyarrow as pa

    import slicewise
    from slicewise import embeddings as emb
    from slicewise.view import View

    print(f"\n== filtered search end to end: {n:,} rows x {dim}, filter 1% ({load()})")
    with tempfile.TemporaryDirectory() as d:
        ws = slicewise.open(Path(d) / "ws.duckdb")
        t = time.perf_counter()
        ws.define_metadata("camera", "string")
        ws.create_dataset("d")
        with ws.store.transaction():  # the bulk path: data rows and metadata as Arrow tables
            ids = np.arange(1, n + 1, dtype=np.int64)
            ws.store.insert_arrow("data_rows", pa.table({
                "id": ids, "global_key": [f"k{i}" for i in ids], "dataset_id": pa.array(np.ones(n, np.int32)),
                "media_type": ["image"] * n, "row_data": ["x.jpg"] * n, "width": pa.array([None] * n, pa.int32()),
                "height": pa.array([None] * n, pa.int32()), "split": ["none"] * n,
                "label_rev": pa.array(np.zeros(n, np.int32)),
                "created_at": pa.array([np.datetime64("2024-01-01", "us")] * n, pa.timestamp("us"))}))
            ws.store.insert_arrow("row_metadata", pa.table({
                "data_row_id": ids, "field": ["camera"] * n,
                "value_string": [f"cam-{i % 100:03d}" for i in ids]}))
            ws.store.touch("rows")
            ws.store.touch("metadata")
        for s in range(0, n, 200_000):
            e = min(n, s + 200_000)
            emb.add_vectors(ws, "s", ids[s:e], clustered(e - s, dim, seed=s))
        print(f"workspace built in {time.perf_counter() - t:.1f} s")
        view = View(filter='metadata.camera = "cam-007"')
        t = time.perf_counter()
        emb.similar(ws, "s", [7], k=50, view=view)
        print(f"first query (loads the vectors, builds the row cache): {(time.perf_counter() - t) * 1000:.0f} ms")
        anchors = iter(range(7, 10**9, 100))
        ms, all_ms = median_ms(lambda: emb.similar(ws, "s", [next(anchors)], k=50, view=view), repeat)
        print(f"filtered top-50 (1%):          median {ms:7.1f} ms  {fmt(all_ms)}  target <= 100  ({load()})")
        ws.close()


def bench_embedder(repeat: int) -> None:
    from PIL import Image

    from slicewise.embeddings.embedders import ImageEmbedder

    print(f"\n== image embedder, {os.cpu_count()} cores ({load()})")
    with tempfile.TemporaryDirectory() as d:
        rng = np.random.default_rng(0)
        paths = []
        for i in range(256):
            p = Path(d) / f"{i}.jpg"
            Image.fromarray((rng.random((240, 320, 3)) * 255).astype(np.uint8)).save(p, quality=90)
            paths.append(p)
        for size in (224, 96):
            m = ImageEmbedder(size)
            m.embed(paths[:8])
            rates = []
            for _ in range(repeat):
                t = time.perf_counter()
                for s in range(0, len(paths), 64):
                    m.embed(paths[s:s + 64])
                rates.append(len(paths) / (time.perf_counter() - t))
            print(f"EfficientNet-Lite0 @ {size} px: median {statistics.median(rates):6.1f} images/s  "
                  f"{fmt(rates)}  ({load()})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--ws-rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: search, ivf, filtered, embedder")
    a = ap.parse_args()
    skip = set(a.skip.split(","))
    if "embedder" not in skip:
        bench_embedder(a.repeat)
    if "search" not in skip:
        bench_search(a.rows, a.dim, a.repeat, ivf="ivf" not in skip)
    if "filtered" not in skip:
        bench_filtered(a.ws_rows, a.dim, a.repeat)


if __name__ == "__main__":
    main()
