"""Scale: import, compute and query a workspace of millions of rows, each phase in its own process with its
peak memory (issue 13, item 4).

    .venv/bin/python benchmarks/bench_scale.py --rows 1000000 [--preds-per-row 1.5] [--repeat 3]
        [--workspace DIR] [--keep] [--phases import,compute,serve,cold,restart,stale]

The workspace is built through the SDK, as a user with that much data would (``add_data_rows`` with three
metadata fields, ``add_annotations`` and ``add_predictions`` with boxes as ``ObjectFrame`` columns), in
chunks of ``--chunk`` rows, one transaction each; 0-3 labelled boxes per row (1.4 on average) and
``--preds-per-row`` predictions on average (jittered copies of most labels plus false ones). Then, each in a
fresh process:

- ``compute``: what ``slicewise metrics compute`` does: ``compute_metrics`` of the run over the 11 x 11 grid,
  then ``query.warm`` (the row cache and its metrics at the run's thresholds, which the CLI and the server
  build after every job so that the first view does not wait for them), each timed;
- ``serve``: what a fresh server does after the job: the first metric query (first page of rows sorted by a metric,
  with the total: the cold start), then the medians of ``--repeat`` runs of a first page (five
  filter + sort queries), all facets, a new IoU threshold (first query at a t never asked), a new
  confidence level (first query at a c never asked);
- ``cold``: the same in a fresh process with no cache database at all (deleted first: what a process finds
  after ``compute_metrics`` called from Python without ``warm``, or after the cache was removed);
- ``restart``: the same again in a new process, which finds the row cache and the metrics views the
  previous one built in the workspace's cache database (a server restarted on the same workspace);
- ``stale``: a new prediction on each of 500 rows spread over the run (the run is then stale), and the job
  that follows (it recomputes those rows only: an incremental job); each run of it adds another 500.

Each phase prints its wall times and its peak resident memory (``ru_maxrss`` of its process: Python,
NumPy and DuckDB together). The figures the issue asks for: 10M rows with 15M predictions and 1M rows
with 10M predictions (``--rows 1000000 --preds-per-row 10``), and the same at 1M and 2M rows to show how
each figure grows. Targets: peak RSS <= 12 GB computing, <= 4 GB serving; first page <= 100 ms; facets
<= 500 ms; a new IoU threshold <= 300 ms; a new confidence level <= 1 s; the first metric query of a fresh
process <= 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CLASSES = ["person", "car", "truck", "bus", "bicycle", "dog", "cat", "chair", "bottle", "cup"]
RUN = "scale-model/v1"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024


def chunk_objects(rng: np.random.Generator, first: int, n: int, preds_per_row: float):
    """Keys, labelled boxes and predictions of rows first .. first + n - 1 (as ObjectFrame columns)."""
    ids = np.arange(first, first + n)
    keys = np.char.add("row-", ids.astype(str)).astype(object)
    n_gt = rng.choice([0, 1, 1, 2, 3], n)
    g_row = np.repeat(np.arange(n), n_gt)
    m = len(g_row)
    gx, gy = rng.uniform(0, 500, m), rng.uniform(0, 380, m)
    gw, gh = rng.uniform(20, 140, m), rng.uniform(20, 100, m)
    g_cls = rng.integers(0, len(CLASSES), m)
    keep = rng.random(m) < min(0.8, preds_per_row / 1.4)  # most labels are predicted
    k = int(keep.sum())
    extra = max(int(round(preds_per_row * n)) - k, 0)  # the rest are false positives on random rows
    p_row = np.concatenate([g_row[keep], rng.integers(0, n, extra)])
    j = rng.normal(0, 6, (4, k))
    px = np.clip(np.concatenate([gx[keep] + j[0], rng.uniform(0, 500, extra)]), 0, 600)
    py = np.clip(np.concatenate([gy[keep] + j[1], rng.uniform(0, 380, extra)]), 0, 440)
    pw = np.concatenate([np.maximum(gw[keep] + j[2], 5), rng.uniform(20, 140, extra)])
    ph = np.concatenate([np.maximum(gh[keep] + j[3], 5), rng.uniform(20, 100, extra)])
    swap = rng.random(k) < 0.1
    p_cls = np.concatenate([np.where(swap, rng.integers(0, len(CLASSES), k), g_cls[keep]),
                            rng.integers(0, len(CLASSES), extra)])
    conf = np.round(rng.beta(5, 2, len(p_row)), 4)
    names = np.array(CLASSES, dtype=object)
    gt = dict(data_row=keys[g_row], feature=names[g_cls], kind="bbox", x=gx, y=gy, w=gw, h=gh)
    pred = dict(data_row=keys[p_row], feature=names[p_cls], kind="bbox", x=px, y=py, w=pw, h=ph, confidence=conf)
    return keys, gt, pred


def phase_import(path: Path, rows: int, preds_per_row: float, chunk: int) -> dict:
    import slicewise
    from slicewise.types.frame import ObjectFrame

    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    ws = slicewise.open(path)
    for c in CLASSES:
        ws.create_feature(c, "bbox")
    ws.create_dataset("scale")
    ws.create_run(*RUN.split("/"))
    cams = np.array([f"camera-{i:02d}" for i in range(20)], dtype=object)
    weather = np.array(["sunny", "cloudy", "rain", "snow"], dtype=object)
    splits = np.array(["train", "valid", "test", "none"], dtype=object)
    n_gt = n_pred = 0
    for first in range(0, rows, chunk):
        n = min(chunk, rows - first)
        keys, gt, pred = chunk_objects(rng, first, n, preds_per_row)
        cam, wea, spl = cams[rng.integers(0, 20, n)], weather[rng.integers(0, 4, n)], splits[rng.integers(0, 4, n)]
        speed = np.round(rng.gamma(2.0, 15.0, n), 2)
        ws.add_data_rows("scale", ({"global_key": keys[i], "row_data": f"https://images.example/{keys[i]}.jpg",
                                    "width": 640, "height": 480, "split": spl[i],
                                    "metadata": {"camera": cam[i], "weather": wea[i], "speed": float(speed[i])}}
                                   for i in range(n)))
        ws.add_annotations(ObjectFrame.from_columns(**gt), source="bench")
        ws.add_predictions(RUN, ObjectFrame.from_columns(**pred), source="bench")
        ws.add_run_rows(RUN, list(keys))  # rows with no prediction are in the run too
        n_gt += len(gt["data_row"])
        n_pred += len(pred["data_row"])
        print(f"  imported {first + n:,} rows ({time.perf_counter() - t0:.0f} s, peak {peak_gb():.1f} GB)",
              file=sys.stderr, flush=True)
    ws.close()
    return {"import_s": time.perf_counter() - t0, "labels": n_gt, "predictions": n_pred,
            "file_gb": path.stat().st_size / 1e9}


def phase_compute(path: Path) -> dict:
    import slicewise
    from slicewise import metrics, query

    t0 = time.perf_counter()
    ws = slicewise.open(path)
    st = metrics.compute_metrics(ws, RUN, full=True)
    took = time.perf_counter() - t0
    t0 = time.perf_counter()
    query.warm(ws, RUN)
    warm = time.perf_counter() - t0
    ws.close()
    return {"compute_s": took, "warm_s": warm, "state": st.state, "file_gb": path.stat().st_size / 1e9}


def phase_stale(path: Path, n: int = 500) -> dict:
    import slicewise
    from slicewise import metrics
    from slicewise.types.frame import ObjectFrame

    ws = slicewise.open(path)
    run = ws.run(RUN)
    total = int(ws.sql("SELECT count(*) FROM run_rows WHERE run_id = ?", [run.id]).fetchone()[0])
    keys = [f"row-{i}" for i in np.linspace(0, total - 1, n).astype(np.int64)]  # (phase_import's keys)
    m = int(ws.sql("SELECT count(*) FROM predictions WHERE run_id = ?", [run.id]).fetchone()[0])
    t0 = time.perf_counter()
    one = np.ones(n)
    ws.add_predictions(RUN, ObjectFrame.from_columns(data_row=keys, feature=["person"] * n, kind="bbox", x=10 * one,
                                                     y=10 * one, w=50 * one, h=80 * one, confidence=0.9 * one),
                       source=f"bench-stale-{m}")
    t_write = time.perf_counter() - t0
    t0 = time.perf_counter()
    todo: list[int] = []  # the rows the job recomputed (its progress's total)
    st = metrics.compute_metrics(ws, RUN, on_progress=lambda done, total: todo.append(total))
    took = time.perf_counter() - t0
    ws.close()
    return {"write_s": t_write, "compute_s": took, "state": st.state, "rows": todo[-1] if todo else 0, "stale": n}


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def phase_serve(path: Path, repeat: int, new_ts: tuple[float, ...], new_cs: tuple[float, ...], *,
                no_cache: bool = False) -> dict:
    import slicewise
    from slicewise.query import facets, search
    from slicewise.state import cache_path

    if no_cache:
        shutil.rmtree(cache_path(path).parent, ignore_errors=True)

    t0 = time.perf_counter()
    ws = slicewise.open(path)
    run = ws.run(RUN)
    t_open = (time.perf_counter() - t0) * 1000
    c, t = 0.5, 0.5
    first = timed(lambda: search(ws, run, None, c, t, limit=50, sort="-fp"))
    queries = [
        ('iou < 0.5 and confidence.max > 0.9 and metadata.camera = "camera-02"', "-confidence.max"),
        ("metadata.weather = rain and metadata.speed between 10 and 40", "-metadata.speed"),
        ("recall[person] between 0.2 and 0.6", "iou"),
        ("has:person and not predicted:person", "metadata.speed"),
        (None, "-fp"),
    ]
    pages = []
    for text, sort in queries:
        search(ws, run, text, c, t, limit=50, sort=sort)  # the first of each builds its filter's parts
        pages.append(statistics.median(timed(lambda text=text, sort=sort: search(ws, run, text, c, t, limit=50,
                                                                                  sort=sort)) for _ in range(repeat)))
    facets(ws, run, "metadata.speed > 20", c, t)
    fac = statistics.median(timed(lambda: facets(ws, run, "metadata.speed > 20", c, t)) for _ in range(repeat))
    # a threshold never asked before: the first query at it (each repeat a new one; the restart asks others)
    new_t = [timed(lambda t2=t2: search(ws, run, "fp > 0", c, t2, limit=50, sort="-fp"))
             for t2 in new_ts[:max(repeat, 1)]]
    new_c = [timed(lambda c2=c2: search(ws, run, "fp > 0", c2, t, limit=50, sort="-fp"))
             for c2 in new_cs[:max(repeat, 1)]]
    search(ws, run, None, c, t, limit=50, sort="-fp")  # (the view at (c, t) is the newest again: a restart finds it)
    ws.close()
    return {"open_ms": t_open, "first_metric_query_ms": first, "first_page_ms": pages,
            "facets_ms": fac, "new_iou_ms": statistics.median(new_t), "new_conf_ms": statistics.median(new_c),
            "new_iou_all": new_t, "new_conf_all": new_c}


def run_phase(args: argparse.Namespace, phase: str) -> dict:
    """One phase in a fresh process (its own peak RSS and a cold start)."""
    cmd = [sys.executable, __file__, "--phase", phase, "--workspace", str(args.workspace), "--rows", str(args.rows),
           "--preds-per-row", str(args.preds_per_row), "--chunk", str(args.chunk), "--repeat", str(args.repeat)]
    before = load()
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    res = json.loads(out.strip().splitlines()[-1])
    res["load"] = f"{before} -> {load()}"
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--preds-per-row", type=float, default=1.5)
    ap.add_argument("--chunk", type=int, default=250_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workspace", type=Path, default=None, help="folder of the workspace (default: a temp folder)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the workspace (and reuse it: skips an import that finished before)")
    ap.add_argument("--phases", default="import,compute,serve,restart")
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:  # a child: one phase, its result as the last line of stdout
        path = args.workspace / "ws.duckdb"
        res = {"import": lambda: phase_import(path, args.rows, args.preds_per_row, args.chunk),
               "compute": lambda: phase_compute(path), "stale": lambda: phase_stale(path), "serve": lambda: phase_serve(path, args.repeat, (0.3, 0.7, 0.9, 0.2, 0.8), (0.7, 0.3, 0.9, 0.2, 0.8)),
               "cold": lambda: phase_serve(path, args.repeat, (0.3, 0.7, 0.9, 0.2, 0.8), (0.7, 0.3, 0.9, 0.2, 0.8),
                                           no_cache=True),
               "restart": lambda: phase_serve(path, args.repeat, (0.35, 0.65, 0.85, 0.25, 0.75), (0.6, 0.4, 0.8, 0.1, 0.0))}[args.phase]()
        res["peak_rss_gb"] = peak_gb()
        print(json.dumps(res))
        return
    tmp = args.workspace is None
    if tmp:
        args.workspace = Path(tempfile.mkdtemp(prefix="slicewise-bench-scale-"))
    args.workspace.mkdir(parents=True, exist_ok=True)
    phases = args.phases.split(",")
    done = args.workspace / f"imported-{args.rows}-{args.preds_per_row}"  # written when an import finished
    if "import" in phases:
        if args.keep and done.exists():
            phases.remove("import")
        else:
            for f in args.workspace.iterdir():
                if f.is_file():
                    f.unlink()
    print(f"scale benchmark: {args.rows:,} rows, {args.preds_per_row} predictions a row, workspace {args.workspace} "
          f"(load {load()})", flush=True)
    try:
        for ph in phases:
            r = run_phase(args, ph)
            rss = f"peak RSS {r['peak_rss_gb']:.2f} GB; load {r['load']}"
            if ph == "import":
                done.touch()
                print(f"import: {r['import_s']:.0f} s for {args.rows:,} rows, {r['labels']:,} labels, "
                      f"{r['predictions']:,} predictions; file {r['file_gb']:.2f} GB; {rss}", flush=True)
            elif ph == "stale":
                print(f"{r['stale']} stale rows: write {r['write_s']:.1f} s; the job after it {r['compute_s']:.1f} s "
                      f"({r['state']}, {r['rows']:,} rows recomputed); {rss}", flush=True)
            elif ph == "compute":
                print(f"compute_metrics (11 x 11 grid): {r['compute_s']:.0f} s ({r['state']}), then the first view warmed "
                      f"{r['warm_s']:.1f} s; "
                      f"file {r['file_gb']:.2f} GB; {rss}; target <= 12 GB", flush=True)
            else:
                pages = ", ".join(f"{p:.0f}" for p in r["first_page_ms"])
                what = {"serve": "serve (fresh process after the job and its warm-up)",
                        "cold": "cold (fresh process, no cache database)",
                        "restart": "restart (fresh process, the caches the previous one left on disk)"}[ph]
                print(f"{what}: open {r['open_ms']:.0f} ms; first metric query {r['first_metric_query_ms']:.0f} ms "
                      f"(target 1,000); first page medians [{pages}] ms (target 100); facets {r['facets_ms']:.0f} ms "
                      f"(target 500); new IoU threshold median {r['new_iou_ms']:.0f} ms (target 300); new confidence "
                      f"level median {r['new_conf_ms']:.0f} ms (target 1,000); {rss}; target <= 4 GB", flush=True)
    finally:
        if tmp and not args.keep:
            shutil.rmtree(args.workspace, ignore_errors=True)


if __name__ == "__main__":
    main()
