"""Workspace-owned state at 1,000,000 rows: what a write costs the next query, a fresh process's first
metric query, and the server's throughput with concurrent clients.

    .venv/bin/python benchmarks/bench_state.py [--rows 1000000] [--workspace PATH] [--repeat 3]

Uses the workspace of ``bench_query.py`` (built once, about a minute, then reused). Each figure is the
median of ``--repeat`` runs, printed with the load average beside it:

- first query (a metric filter, sorted, first page) after saving a slice: target <= 100 ms;
- first query after a metadata edit of one row: target <= 300 ms;
- first metric query of a fresh process (a new interpreter opens the workspace and asks for a page of
  ``iou < 0.5``, sorted by confidence): target <= 1 s; printed with and without the time to import
  slicewise and open the file;
- the server's throughput (requests/s over a fixed mix of gallery pages, facets, row details, per-feature
  metrics and auto-slice counts at four threshold pairs) with 8 concurrent clients vs 1 client, in the
  same run: target ratio >= 3 (before this change one global lock held every request: ratio about 1).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

FRESH = r"""
import json, sys, time
t0 = time.perf_counter()
import slicewise
from slicewise.query import search
ws = slicewise.open(sys.argv[1])
run = ws.run("bench-model/v1")
t1 = time.perf_counter()
page = search(ws, run, "iou < 0.5", 0.5, 0.5, limit=50, sort="-confidence.max")
t2 = time.perf_counter()
ws.close()
print(json.dumps({"open": t1 - t0, "query": t2 - t1, "total": page.total}))
"""


def load() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def med(values: list[float]) -> str:
    return f"median {statistics.median(values):.0f} ms (runs: {', '.join(f'{v:.0f}' for v in values)})"


def after_writes(path: Path, repeat: int) -> None:
    import slicewise
    from slicewise import slices
    from slicewise.query import search

    ws = slicewise.open(path)
    run = ws.run("bench-model/v1")
    q = ('iou < 0.5 and metadata.camera = "camera-02"', "-confidence.max")
    search(ws, run, q[0], 0.5, 0.5, sort=q[1])  # warm: the row cache and the metrics view exist
    slice_ms, md_ms, tag_ms = [], [], []
    for i in range(repeat):
        s = slices.create_slice(ws, f"bench state {i}", "fp > 0")
        t = time.perf_counter()
        search(ws, run, q[0], 0.5, 0.5, sort=q[1])
        slice_ms.append(1000 * (time.perf_counter() - t))
        slices.delete_slice(ws, s)
        key = f"row-{1000 + i:07d}"
        old = ws.data_row(key).metadata.get("camera")
        ws.set_metadata(key, {"camera": "camera-02" if old != "camera-02" else "camera-03"})
        t = time.perf_counter()
        search(ws, run, q[0], 0.5, 0.5, sort=q[1])
        md_ms.append(1000 * (time.perf_counter() - t))
        ws.set_metadata(key, {"camera": old})
        ws.add_tags([key], ["bench-state"])
        t = time.perf_counter()
        search(ws, run, "tag:bench-state and fp > 0", 0.5, 0.5)
        tag_ms.append(1000 * (time.perf_counter() - t))
        ws.remove_tags([key], ["bench-state"])
        search(ws, run, q[0], 0.5, 0.5, sort=q[1])
    ws.close()
    print(f"first query after saving a slice       {med(slice_ms)}  target 100 ms  ({load()})")
    print(f"first query after a metadata edit       {med(md_ms)}  target 300 ms  ({load()})")
    print(f"first query after tagging one row       {med(tag_ms)}  ({load()})")


def fresh_process(path: Path, repeat: int) -> None:
    opened, queried = [], []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", FRESH, str(path)], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        opened.append(1000 * r["open"])
        queried.append(1000 * r["query"])
    print(f"first metric query of a fresh process   {med(queried)}  target 1000 ms; import + open before it "
          f"{med(opened)}  ({load()})")


def throughput(path: Path, requests: int) -> None:
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-c", "import sys; from slicewise.cli import main; "
                               "sys.argv[0] = 'slicewise'; main()", "serve", str(path), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/api/workspace", timeout=30).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "the server did not start"
            time.sleep(0.2)
        pairs = [(0.5, 0.5), (0.3, 0.5), (0.5, 0.7), (0.7, 0.3)]
        mix = []
        for i in range(requests):
            c, t = pairs[i % 4]
            kind = i % 5
            if kind == 0:
                mix.append(("/api/rows", {"run": 1, "q": "fp > 0", "sort": "-confidence.max", "confidence": c, "iou": t}))
            elif kind == 1:
                mix.append(("/api/facets", {"run": 1, "q": 'metadata.weather = "rain"', "confidence": c, "iou": t}))
            elif kind == 2:
                mix.append((f"/api/rows/{1 + (i * 7919) % 1_000_000}", {"run": 1, "confidence": c, "iou": t}))
            elif kind == 3:
                mix.append(("/api/runs/1/metrics/features", {"confidence": c, "iou": t, "q": "split = valid"}))
            else:
                mix.append(("/api/runs/1/auto-slices", {"confidence": c, "iou": t}))

        def one(item: tuple[str, dict]) -> int:
            with httpx.Client(base_url=url, timeout=300) as cl:
                return cl.get(item[0], params=item[1]).status_code

        with ThreadPoolExecutor(8) as pool:  # warm: every table of the mix exists
            assert set(pool.map(one, mix[:20])) == {200}
        rates = {}
        for clients in (1, 8):
            t = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                codes = list(pool.map(one, mix))
            assert set(codes) == {200}, codes
            rates[clients] = len(mix) / (time.perf_counter() - t)
            print(f"server throughput, {clients} client(s)     {rates[clients]:.1f} requests/s  ({load()})")
        print(f"throughput ratio 8 clients / 1 client  {rates[8] / rates[1]:.2f}  target >= 3")
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--workspace", type=Path, default=Path("/tmp/slicewise_bench_query.duckdb"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--requests", type=int, default=200)
    a = ap.parse_args()
    if not a.workspace.exists():
        from bench_query import build

        build(a.workspace, a.rows)
    print(f"workspace {a.workspace} ({load()})")
    after_writes(a.workspace, a.repeat)
    fresh_process(a.workspace, a.repeat)
    throughput(a.workspace, a.requests)


if __name__ == "__main__":
    main()
