"""Gallery latency: the first page of 50 data rows (with their boxes) plus its 50 thumbnails (already
cached), over real HTTP against `slicewise serve`'s app, on a workspace of 100,000 image rows.

    .venv/bin/python benchmarks/bench_gallery.py [--rows 100000] [--repeat 20] [--workspace PATH]

The workspace is synthetic (rows pointing at a few generated JPEGs, 3 boxes and 3 scored predictions
per row, metrics computed) and is kept for reuse at --workspace. The target is < 300 ms for the page
plus its thumbnails; there is no reference tool for this (Labelbox is a hosted service), so the script
prints absolute figures and the ratio to the target.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))
TARGET_MS = 300.0


def build(path: Path, n: int) -> None:
    from PIL import Image, ImageDraw

    import slicewise
    from slicewise import metrics
    from slicewise.types.frame import ObjectFrame

    img_dir = path.parent / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    files = []
    for i in range(8):
        im = Image.new("RGB", (640, 480), tuple(int(v) for v in rng.integers(40, 200, 3)))
        d = ImageDraw.Draw(im)
        for _ in range(12):
            x, y = rng.integers(0, 560), rng.integers(0, 400)
            d.rectangle([x, y, x + rng.integers(20, 80), y + rng.integers(20, 80)],
                        fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
        f = img_dir / f"img{i}.jpg"
        im.save(f, quality=90)
        files.append(str(f))
    t0 = time.perf_counter()
    with slicewise.open(path) as ws:
        ws.add_data_rows("bench", ({"global_key": f"row-{i:06d}", "row_data": files[i % len(files)], "width": 640,
                                    "height": 480, "split": ("train", "valid", "test")[i % 3],
                                    "metadata": {"camera": f"cam-{i % 7}"}} for i in range(n)))
        classes = ["car", "person", "dog", "cat"]
        for c in classes:
            ws.create_feature(c, "bbox")
        k = 3 * n
        keys = np.repeat([f"row-{i:06d}" for i in range(n)], 3)
        xy = rng.uniform(0, 500, (k, 2))
        wh = rng.uniform(20, 120, (k, 2))
        gt_cls = rng.integers(0, 4, k)
        ws.add_annotations(ObjectFrame.from_records(
            {"data_row": keys[i], "feature": classes[gt_cls[i]], "bbox": [*xy[i], *wh[i]]} for i in range(k)))
        jitter = rng.normal(0, 8, (k, 2))
        pred_cls = np.where(rng.random(k) < 0.85, gt_cls, rng.integers(0, 4, k))
        conf = rng.uniform(0.05, 1.0, k)
        run = ws.create_run("bench-detector", "v1")
        ws.add_predictions(run, ObjectFrame.from_records(
            {"data_row": keys[i], "feature": classes[pred_cls[i]], "bbox": [*(xy[i] + jitter[i]), *wh[i]],
             "confidence": float(conf[i])} for i in range(k)))
        print(f"built {n} rows, {k} boxes, {k} predictions in {time.perf_counter() - t0:.1f} s", flush=True)
        t1 = time.perf_counter()
        metrics.compute_metrics(ws, run)
        print(f"metrics computed in {time.perf_counter() - t1:.1f} s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--workspace", type=Path, default=Path(tempfile.gettempdir()) / "slicewise-bench-gallery" / "ws.duckdb")
    ap.add_argument("--rebuild", action="store_true", help="build the workspace anew")
    args = ap.parse_args()
    import httpx
    from conftest import LiveServer, _free_port

    from slicewise.server import create_app

    if args.rebuild and args.workspace.exists():
        args.workspace.unlink()
    if not args.workspace.exists():
        build(args.workspace, args.rows)
    app = create_app(args.workspace)
    ws = app.state.sw.ws
    print(f"workspace: {args.workspace} ({ws.counts()['data_rows']} data rows, "
          f"{ws.counts()['predictions']} predictions)")
    views = {
        "first page, default order": {"run": 1, "limit": 50},
        "first page, fp > 0 sorted by -confidence.max": {"run": 1, "limit": 50, "q": "fp > 0",
                                                         "sort": "-confidence.max"},
        'first page, metadata.camera = "cam-3" and iou < 0.7, sorted by iou': {
            "run": 1, "limit": 50, "q": 'metadata.camera = "cam-3" and iou < 0.7', "sort": "iou"},
    }
    with LiveServer(app, _free_port()) as srv, httpx.Client(base_url=srv.url, timeout=60) as client, \
            ThreadPoolExecutor(6) as pool:
        def load(params: dict) -> tuple[float, float, int]:
            t0 = time.perf_counter()
            page = client.get("/api/rows", params=params)
            page.raise_for_status()
            t1 = time.perf_counter()
            rows = page.json()["rows"]
            # the browser fetches the thumbnails in parallel (6 connections per host)
            codes = list(pool.map(lambda r: client.get(f"/api/thumbs/{r['id']}", params={"size": 256}).status_code, rows))
            assert all(c == 200 for c in codes), codes
            return (t1 - t0) * 1000, (time.perf_counter() - t0) * 1000, len(rows)

        for name, params in views.items():
            load(params)  # warm: makes the thumbnails and the metrics views
            runs = [load(params) for _ in range(args.repeat)]
            page_ms = statistics.median(r[0] for r in runs)
            all_ms = statistics.median(r[1] for r in runs)
            p95 = sorted(r[1] for r in runs)[int(0.95 * (len(runs) - 1))]
            print(f"{name} [{client.get('/api/rows', params={**params, 'limit': 1}).json()['total']} rows]: page JSON {page_ms:.1f} ms, page + {runs[0][2]} cached thumbnails {all_ms:.1f} ms "
                  f"(p95 {p95:.1f} ms) -> {all_ms / TARGET_MS:.2f} x the {TARGET_MS:.0f} ms target", flush=True)
    ws.close()


if __name__ == "__main__":
    main()
