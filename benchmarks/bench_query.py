"""Benchmark the query engine on 1,000,000 data rows with 5 metadata fields and a computed run.

    .venv/bin/python benchmarks/bench_query.py [--rows 1000000] [--workspace /tmp/bench_query.duckdb] [--repeat 9]

Builds the workspace once (bulk Arrow inserts, then the metrics engine computes the run; reused when the
file exists), then prints the median time of: filter + sort + first page of 50 (several queries), a slice
count, and all facets for a filter. Targets: < 50 ms, < 50 ms, < 200 ms. The reference figure is DuckDB
itself running a hand-written equivalent of the first query in the same process (the floor any
layer over the same store pays).
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

import slicewise
from slicewise import metrics, slices
from slicewise.query import count, facets, search

CLASSES = ["person", "car", "truck", "bus", "bicycle", "dog", "cat", "chair", "bottle", "cup"]


def build(path: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    ws = slicewise.open(path)
    for c in CLASSES:
        ws.create_feature(c, "bbox")
    ws.create_dataset("bench")
    ws.define_metadata("weather", "enum", ["sunny", "cloudy", "rain", "snow"])
    for name, kind in (("camera", "string"), ("location", "string"), ("speed", "number"), ("captured", "datetime")):
        ws.define_metadata(name, kind)
    run = ws.create_run("bench-model", "v1")
    now = datetime(2025, 1, 1)
    ids = np.arange(1, n + 1, dtype=np.int64)
    t0 = time.perf_counter()
    with ws.store.transaction():
        ws.store.insert_arrow("data_rows", pa.table({
            "id": ids, "global_key": pa.array([f"row-{i:07d}" for i in ids]),
            "dataset_id": pa.array(np.ones(n, np.int32)), "media_type": pa.array(["image"] * n),
            "row_data": pa.array([f"img/{i}.jpg" for i in ids]), "width": pa.array(np.full(n, 640, np.int32)),
            "height": pa.array(np.full(n, 480, np.int32)),
            "split": pa.array(np.array(["train", "valid", "test", "none"])[rng.integers(0, 4, n)]),
            "label_rev": pa.array(np.zeros(n, np.int32)),
            "created_at": pa.array((np.datetime64("2025-01-01") + (ids * 1000).astype("timedelta64[ms]")).astype("datetime64[us]"))}))
        md_rows = [
            ("camera", pa.array(np.char.add("camera-", np.char.zfill(rng.integers(0, 20, n).astype(str), 2))), None, None),
            ("location", pa.array(np.char.add("site-", rng.integers(0, 1000, n).astype(str))), None, None),
            ("weather", pa.array(np.array(["sunny", "cloudy", "rain", "snow"])[rng.integers(0, 4, n)]), None, None),
            ("speed", None, pa.array(np.round(rng.gamma(2.0, 15.0, n), 2)), None),
            ("captured", None, None, pa.array((np.datetime64("2024-01-01T00:00:00.000000") + rng.integers(0, 365 * 24, n) * np.timedelta64(3600, "s")).astype("datetime64[us]"))),
        ]
        for name, s, num, dt in md_rows:
            ws.store.insert_arrow("row_metadata", pa.table({
                "data_row_id": ids, "field": pa.array([name] * n),
                "value_string": s if s is not None else pa.nulls(n, pa.string()),
                "value_number": num if num is not None else pa.nulls(n, pa.float64()),
                "value_datetime": dt if dt is not None else pa.nulls(n, pa.timestamp("us"))}))
        tagged = ids[rng.random(n) < 0.1]
        ws.store.insert_arrow("tags", pa.table({"data_row_id": tagged, "tag": pa.array(["reviewed"] * len(tagged)),
                                                "created_at": pa.array([now] * len(tagged), pa.timestamp("us"))}))
        # ground truth: 0-3 boxes a row; predictions: a jittered copy of most boxes plus some false ones
        n_gt = rng.choice([0, 1, 1, 2, 3], n)
        g_row = np.repeat(ids, n_gt)
        m = len(g_row)
        gx, gy = rng.uniform(0, 500, m), rng.uniform(0, 380, m)
        gw, gh = rng.uniform(20, 140, m), rng.uniform(20, 100, m)
        g_cls = rng.integers(0, len(CLASSES), m)
        _objects(ws, "annotations", g_row, g_cls, gx, gy, gw, gh, None, now)
        keep = rng.random(m) < 0.8
        p_row = np.concatenate([g_row[keep], ids[rng.random(n) < 0.4]])
        k = int(keep.sum())
        extra = len(p_row) - k
        j = rng.normal(0, 6, (4, k))
        px = np.concatenate([gx[keep] + j[0], rng.uniform(0, 500, extra)])
        py = np.concatenate([gy[keep] + j[1], rng.uniform(0, 380, extra)])
        pw = np.concatenate([np.maximum(gw[keep] + j[2], 5), rng.uniform(20, 140, extra)])
        ph = np.concatenate([np.maximum(gh[keep] + j[3], 5), rng.uniform(20, 100, extra)])
        swap = rng.random(k) < 0.1
        p_cls = np.concatenate([np.where(swap, rng.integers(0, len(CLASSES), k), g_cls[keep]),
                                rng.integers(0, len(CLASSES), extra)])
        conf = np.round(rng.beta(5, 2, len(p_row)), 4)
        _objects(ws, "predictions", p_row, p_cls, px, py, pw, ph, (run.id, conf), now)
        ws.store.insert_arrow("run_rows", pa.table({"run_id": pa.array(np.full(n, run.id, np.int32)),
                                                    "data_row_id": ids, "pred_rev": pa.array(np.ones(n, np.int32))}))
    print(f"built {n:,} rows, {m:,} boxes, {len(p_row):,} predictions in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    metrics.compute_metrics(ws, run)
    print(f"metrics computed in {time.perf_counter() - t0:.1f} s")
    ws.close()


def _objects(ws, table, rows, cls, x, y, w, h, pred, now) -> None:
    k = len(rows)
    cols = {"id": np.arange(1, k + 1, dtype=np.int64), "data_row_id": rows, "feature_id": pa.array((cls + 1).astype(np.int32)),
            "kind": pa.array(["bbox"] * k), "answer": pa.nulls(k, pa.string()), "x": x, "y": y, "w": w, "h": h,
            "geometry": pa.nulls(k, pa.binary()), "mask_rle": pa.nulls(k, pa.string()),
            "span_start": pa.nulls(k, pa.int32()), "span_end": pa.nulls(k, pa.int32()), "area": w * h,
            "external_id": pa.nulls(k, pa.string()), "source": pa.array(["bench"] * k),
            "created_at": pa.array([now] * k, pa.timestamp("us"))}
    if pred is None:
        cols["iscrowd"] = np.zeros(k, bool)
    else:
        cols |= {"run_id": pa.array(np.full(k, pred[0], np.int32)), "confidence": pred[1],
                 "probabilities": pa.nulls(k, pa.list_(pa.float64()))}
    ws.store.insert_arrow(table, pa.table(cols))


def median_ms(fn, repeat: int) -> float:
    fn()  # warm: first use materialises the metrics views
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--workspace", type=Path, default=Path("/tmp/slicewise_bench_query.duckdb"))
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--rebuild", action="store_true")
    a = ap.parse_args()
    if a.rebuild and a.workspace.exists():
        a.workspace.unlink()
    if not a.workspace.exists():
        build(a.workspace, a.rows)
    ws = slicewise.open(a.workspace)
    run = ws.run("bench-model/v1")
    c, t = 0.5, 0.5
    t0 = time.perf_counter()
    n = count(ws, run)
    t1 = time.perf_counter()
    search(ws, run, "iou < 0.5", c, t, limit=50)
    print(f"workspace {a.workspace}: {n:,} data rows in the run")
    print(f"cold (once per write generation): row cache build {1000 * (t1 - t0):.0f} ms; adding the metrics at (c, t), "
          f"including the metrics engine's own view, {1000 * (time.perf_counter() - t1):.0f} ms")
    queries = [
        ('iou < 0.5 and confidence.max > 0.9 and metadata.camera = "camera-02" and not tag:reviewed', "-confidence.max"),
        ('metadata.weather = rain and metadata.speed between 10 and 40', "-metadata.speed"),
        ("recall[person] between 0.2 and 0.6", "iou"),
        ("has:person and not predicted:person", "metadata.captured"),
        (None, "-fp"),
    ]
    results = []
    for text, sort in queries:
        ms = median_ms(lambda text=text, sort=sort: search(ws, run, text, c, t, limit=50, sort=sort), a.repeat)
        page = search(ws, run, text, c, t, limit=50, sort=sort)
        results.append(ms)
        print(f"filter+sort+page  {ms:7.1f} ms  total {page.total:>9,}  {text or '(all rows)'}  sort {sort}")
    deep = search(ws, run, None, c, t, limit=50, sort="-metadata.speed", offset=900_000 if n > 900_000 else 0)
    ms = median_ms(lambda: search(ws, run, None, c, t, limit=50, sort="-metadata.speed",
                                  offset=900_000 if n > 900_000 else 0), a.repeat)
    print(f"deep page (offset 900,000)  {ms:7.1f} ms  ({len(deep.rows)} rows)")
    cur_page = search(ws, run, None, c, t, limit=50, sort="-metadata.speed")
    ms = median_ms(lambda: search(ws, run, None, c, t, limit=50, sort="-metadata.speed", cursor=cur_page.next_cursor,
                                  with_total=False), a.repeat)
    print(f"next page by cursor  {ms:7.1f} ms")
    # reference: DuckDB on a hand-written query equivalent to the first one (filter, sort, page, no total)
    from slicewise.metrics import row_metrics_table

    rm = row_metrics_table(ws, run, c, t)
    cur = ws.store.cursor()
    ref_sql = f"""
        SELECT r.id, r.global_key, p.v FROM data_rows r
        JOIN (SELECT data_row_id, max(confidence) v FROM predictions WHERE run_id = ? GROUP BY 1) p ON p.data_row_id = r.id
        JOIN {rm} m ON m.data_row_id = r.id
        JOIN row_metadata md ON md.data_row_id = r.id AND md.field = 'camera'
        WHERE m.iou < 0.5 AND p.v > 0.9 AND md.value_string = 'camera-02'
          AND r.id NOT IN (SELECT data_row_id FROM tags WHERE tag = 'reviewed')
        ORDER BY p.v DESC, r.id LIMIT 50"""
    ref = median_ms(lambda: cur.execute(ref_sql, [run.id]).fetchall(), a.repeat)
    print(f"reference (hand-written DuckDB SQL for query 1, no total)  {ref:7.1f} ms; slicewise / reference = "
          f"{results[0] / ref:.2f}")
    # slice count
    s = next((x for x in slices.list_slices(ws) if x.name == "bench slice"), None) or slices.create_slice(
        ws, "bench slice", 'metadata.camera in ("camera-01", "camera-02") and fp > 0 and confidence.max > 0.8')
    ms_count = median_ms(lambda: slices.slice_count(ws, s, run, c, t), a.repeat)
    print(f"slice count  {ms_count:7.1f} ms  ({slices.slice_count(ws, s, run, c, t):,} rows)")
    for text in ["not tag:reviewed and metadata.speed > 20", None]:
        ms_f = median_ms(lambda text=text: facets(ws, run, text, c, t), a.repeat)
        f = facets(ws, run, text, c, t)
        print(f"all facets  {ms_f:7.1f} ms  ({f.total:,} rows, {len(f.histograms)} histograms, "
              f"{len(f.metadata)} value-count fields)  {text or '(all rows)'}")
    print(f"targets: filter+sort+page < 50 ms (worst {max(results):.1f}), slice count < 50 ms ({ms_count:.1f}), "
          f"facets < 200 ms")
    ws.close()


if __name__ == "__main__":
    main()
