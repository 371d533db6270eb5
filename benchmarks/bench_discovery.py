"""Benchmark automatic slice discovery, and measure how well it recovers planted slices.

    .venv/bin/python benchmarks/bench_discovery.py [--rows 1000000] [--workspace $TMPDIR/slicewise_bench_discovery.duckdb]
                                                   [--repeat 3] [--plantings 20] [--skip-speed] [--skip-recall]

**Speed.** Builds (once; reused when the file exists) a workspace of ``--rows`` classified data rows with 10
metadata fields (4 enum, 2 string, 3 number, 1 date-time), a split and a tag, one label and one prediction a
row, a bad slice planted (``weather = fog and camera = cam-3``, wrong 45% of the time against 20%), and the
run's metrics. Then times ``slicewise.slices.suggest.discover`` end to end (reading the run's rows with
their TP / FP / FN from the row cache, building the predicates, the lattice search up to 3 predicates with
its tests): the first call (which builds the row cache) and the median of ``--repeat`` further calls with
the result cache bypassed, with the load average beside each. The reference is the search core alone
(:func:`slicewise.slices.lattice.search`) on the same arrays, and a single NumPy ``bincount`` pass over
them (the floor of one statistic of one field).

**Recall study.** ``--plantings`` random worlds of 20,000 rows and 10 fields of 3 to 8 values: in each a
slice of one or two random predicates (support 2% to 20%) has its error raised from 0.20 to 0.35. Recall is
the share of worlds where a suggestion has Jaccard >= 0.8 with the planted rows; a false suggestion is one
with fewer than 10% of its rows in the planted slice (related ones, e.g. a parent of a planted conjunction,
whose error is raised through the planted rows, are counted apart).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

import slicewise
from slicewise import metrics
from slicewise.slices import lattice, suggest

ENUMS = {"weather": ["sunny", "cloudy", "rain", "fog"], "camera": [f"cam-{i}" for i in range(6)],
         "lens": ["wide", "normal", "tele"], "shift": ["morning", "day", "evening", "night"]}
STRINGS = {"site": 40, "operator": 12}
NUMBERS = ("speed", "altitude", "exposure")


def load() -> str:
    return "{:.1f}/{:.1f}/{:.1f}".format(*os.getloadavg())


def build(path: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    ws = slicewise.open(path)
    ws.create_dataset("bench")
    for name, opts in ENUMS.items():
        ws.define_metadata(name, "enum", opts)
    for name in STRINGS:
        ws.define_metadata(name, "string")
    for name in NUMBERS:
        ws.define_metadata(name, "number")
    ws.define_metadata("captured", "datetime")
    classes = [str(i) for i in range(10)]
    ws.create_feature("label", "radio", classes)
    run = ws.create_run("bench-model", "v1")
    fid = ws.feature("label").id
    now = datetime(2025, 1, 1)
    ids = np.arange(1, n + 1, dtype=np.int64)
    t0 = time.perf_counter()
    cols: dict[str, np.ndarray] = {}
    with ws.store.transaction():
        ws.store.insert_arrow("data_rows", pa.table({
            "id": ids, "global_key": pa.array([f"row-{i:07d}" for i in ids]),
            "dataset_id": pa.array(np.ones(n, np.int32)), "media_type": pa.array(["image"] * n),
            "row_data": pa.array([f"img/{i}.jpg" for i in ids]), "width": pa.array(np.full(n, 64, np.int32)),
            "height": pa.array(np.full(n, 64, np.int32)),
            "split": pa.array(np.array(["train", "valid", "test"])[rng.integers(0, 3, n)]),
            "label_rev": pa.array(np.zeros(n, np.int32)),
            "created_at": pa.array([now] * n, pa.timestamp("us"))}))

        def md(name: str, s: object = None, num: object = None, dt: object = None) -> None:
            ws.store.insert_arrow("row_metadata", pa.table({
                "data_row_id": ids, "field": pa.array([name] * n),
                "value_string": s if s is not None else pa.nulls(n, pa.string()),
                "value_number": num if num is not None else pa.nulls(n, pa.float64()),
                "value_datetime": dt if dt is not None else pa.nulls(n, pa.timestamp("us"))}))

        for name, opts in ENUMS.items():
            cols[name] = rng.integers(0, len(opts), n)
            md(name, s=pa.array(np.array(opts)[cols[name]]))
        for name, k in STRINGS.items():
            md(name, s=pa.array(np.char.add(f"{name}-", rng.integers(0, k, n).astype(str))))
        for name in NUMBERS:
            md(name, num=pa.array(np.round(rng.gamma(2.0, 10.0, n), 2)))
        md("captured", dt=pa.array((np.datetime64("2024-01-01T00:00:00") + rng.integers(0, 365 * 24, n)
                                    * np.timedelta64(3600, "s")).astype("datetime64[us]")))
        tagged = ids[rng.random(n) < 0.1]
        ws.store.insert_arrow("tags", pa.table({"data_row_id": tagged, "tag": pa.array(["reviewed"] * len(tagged)),
                                                "created_at": pa.array([now] * len(tagged), pa.timestamp("us"))}))
        truth = rng.integers(0, 10, n)
        planted = (cols["weather"] == 3) & (cols["camera"] == 3)
        wrong = rng.random(n) < np.where(planted, 0.45, 0.20)
        pred = np.where(wrong, (truth + rng.integers(1, 10, n)) % 10, truth)
        for table, values, extra in (("annotations", truth, {"iscrowd": np.zeros(n, bool)}),
                                     ("predictions", pred, {"run_id": pa.array(np.full(n, run.id, np.int32)),
                                                            "confidence": np.full(n, 0.9),
                                                            "probabilities": pa.nulls(n, pa.list_(pa.float64()))})):
            ws.store.insert_arrow(table, pa.table({
                "id": ids, "data_row_id": ids, "feature_id": pa.array(np.full(n, fid, np.int32)),
                "kind": pa.array(["radio"] * n), "answer": pa.array(np.array(classes)[values]),
                "x": pa.nulls(n, pa.float64()), "y": pa.nulls(n, pa.float64()), "w": pa.nulls(n, pa.float64()),
                "h": pa.nulls(n, pa.float64()), "geometry": pa.nulls(n, pa.binary()), "mask_rle": pa.nulls(n, pa.string()),
                "span_start": pa.nulls(n, pa.int32()), "span_end": pa.nulls(n, pa.int32()),
                "area": pa.nulls(n, pa.float64()), "external_id": pa.nulls(n, pa.string()),
                "source": pa.array(["bench"] * n), "created_at": pa.array([now] * n, pa.timestamp("us")), **extra}))
        ws.store.insert_arrow("run_rows", pa.table({"run_id": pa.array(np.full(n, run.id, np.int32)),
                                                    "data_row_id": ids, "pred_rev": pa.array(np.ones(n, np.int32))}))
        ws.store.touch("all")
    print(f"built {n:,} rows with 10 metadata fields in {time.perf_counter() - t0:.1f} s", flush=True)
    t0 = time.perf_counter()
    metrics.compute_metrics(ws, run)
    print(f"metrics computed in {time.perf_counter() - t0:.1f} s", flush=True)
    ws.close()


def speed(path: Path, repeat: int) -> None:
    ws = slicewise.open(path)
    run = ws.run("bench-model/v1")
    t0 = time.perf_counter()
    d = suggest.discover(ws, run)
    assert d is not None
    print(f"first call (builds the row cache): {time.perf_counter() - t0:.2f} s, load {load()}", flush=True)
    print(f"  {d.rows:,} rows, {d.predicates} predicates, {d.evaluated:,} slices tested, {d.expanded} extended, "
          f"{d.pruned} pruned; top: " + "; ".join(f"{s.filter} ({s.rows:,} rows, error {s.error:.3f} vs {s.error_rest:.3f})"
                                                  for s in d.suggestions[:3]))
    times, loads = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        suggest._discover(ws, run, d.confidence, d.iou, "f1", suggest.DEFAULT_MIN_SUPPORT, 3, 0.05, 20)
        times.append(time.perf_counter() - t)
        loads.append(load())
    print(f"discover, end to end: median {statistics.median(times):.2f} s of {repeat} "
          f"({', '.join(f'{x:.2f}' for x in times)}), load {' | '.join(loads)}", flush=True)
    # the references on the same arrays: the search core alone, and one bincount pass
    from slicewise.query import thresholds

    c, t = thresholds(ws, run)
    table, md, catalog = suggest._frame(ws, run, c, t)
    e, n = suggest._errors(table, "f1")
    fields, _ = suggest.predicates(ws, run.id, table, md, catalog, max(10, len(e) // 100))
    core = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        lattice.search(fields, e, n, min_support=max(10, len(e) // 100))
        core.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    np.bincount(np.where(fields[0].codes >= 0, fields[0].codes, len(fields[0].labels)), weights=e)
    print(f"search core alone: median {statistics.median(core):.2f} s; one bincount pass: "
          f"{(time.perf_counter() - t0) * 1000:.1f} ms; load {load()}", flush=True)
    ws.close()


def world(rng: np.random.Generator, m: int = 20_000, nf: int = 10) -> tuple[list[lattice.Field], np.ndarray, np.ndarray]:
    while True:
        fields = []
        for i in range(nf):
            k = int(rng.integers(3, 9))
            p = rng.dirichlet(np.full(k, 3.0))
            fields.append(lattice.Field(f"f{i}", rng.choice(k, m, p=p).astype(np.int32), tuple(f"v{j}" for j in range(k))))
        a, b = rng.choice(nf, 2, replace=False)
        planted = fields[a].codes == rng.integers(len(fields[a].labels))
        if rng.random() < 0.5:
            planted &= fields[b].codes == rng.integers(len(fields[b].labels))
        if 0.02 <= planted.mean() <= 0.20:
            break
    e = (rng.random(m) < np.where(planted, 0.35, 0.20)).astype(float)
    return fields, e, planted


def recall(plantings: int) -> None:
    hits, false, related, seconds = 0, [], [], []
    for s in range(plantings):
        fields, e, planted = world(np.random.default_rng([7, s]))
        t0 = time.perf_counter()
        res = lattice.search(fields, e, np.ones(len(e)), min_support=len(e) // 100)
        seconds.append(time.perf_counter() - t0)
        masks = [lattice.mask_of(fields, f.preds, len(e)) for f in res.found]
        jac = [(mk & planted).sum() / (mk | planted).sum() for mk in masks]
        hits += any(j >= 0.8 for j in jac)
        false.append(sum((mk & planted).sum() < 0.1 * mk.sum() for mk in masks))
        related.append(len(masks) - false[-1] - (1 if any(j >= 0.8 for j in jac) else 0))
    print(f"planted-slice recall: {hits}/{plantings} = {hits / plantings:.2f}; false suggestions per world: "
          f"mean {np.mean(false):.2f} (max {max(false)}); related suggestions per world: mean {np.mean(related):.2f}; "
          f"search median {statistics.median(seconds) * 1000:.0f} ms; load {load()}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--workspace", type=Path, default=Path(tempfile.gettempdir()) / "slicewise_bench_discovery.duckdb")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--plantings", type=int, default=20)
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-recall", action="store_true")
    a = ap.parse_args()
    if not a.skip_recall:
        recall(a.plantings)
    if not a.skip_speed:
        if a.rebuild and a.workspace.exists():
            a.workspace.unlink()
        if not a.workspace.exists():
            build(a.workspace, a.rows)
        speed(a.workspace, a.repeat)


if __name__ == "__main__":
    main()
