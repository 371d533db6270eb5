"""Import speed: a generated COCO results file of 1,000,000 box predictions on 50,000 images.

Run: ``.venv/bin/python benchmarks/bench_import.py [--preds 1000000] [--images 50000]``

Prints the seconds and peak RSS of ``slicewise.io.import_coco_results`` (in a fresh subprocess, so
the peak is the import's own), and of pycocotools' ``COCO.loadRes`` on the same file, in the same run.
Target (issue 2): < 15 s and < 2 GB on the 2-core reference machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
kind, ws_path, gt, res = sys.argv[1:5]
t = time.perf_counter()
if kind == "slicewise":
    import slicewise
    from slicewise.io import import_coco_results
    ws = slicewise.open(ws_path)
    t = time.perf_counter()
    r = import_coco_results(ws, res, "bench/run")
    n = r.predictions
else:
    import contextlib, io
    from pycocotools.coco import COCO
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(gt)
        t = time.perf_counter()
        n = len(coco.loadRes(res).anns)
dt = time.perf_counter() - t
print(json.dumps({"n": n, "seconds": dt, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def generate(folder: Path, n_preds: int, n_images: int, seed: int = 0) -> tuple[Path, Path]:
    import numpy as np

    rng = np.random.default_rng(seed)
    images = [{"id": i + 1, "file_name": f"img{i + 1:06d}.jpg", "width": 640, "height": 480} for i in range(n_images)]
    cats = [{"id": c, "name": f"class{c}"} for c in range(1, 81)]
    gt = folder / "gt.json"
    gt.write_text(json.dumps({"images": images, "annotations": [], "categories": cats}))
    img = rng.integers(1, n_images + 1, n_preds)
    cat = rng.integers(1, 81, n_preds)
    xy = rng.uniform(0, 400, (n_preds, 2)).round(2)
    wh = rng.uniform(1, 200, (n_preds, 2)).round(2)
    score = rng.uniform(0, 1, n_preds).round(5)
    res = folder / "results.json"
    with open(res, "w") as fh:
        fh.write("[")
        for i in range(n_preds):
            if i:
                fh.write(",")
            fh.write(f'{{"image_id":{img[i]},"category_id":{cat[i]},"bbox":[{xy[i, 0]},{xy[i, 1]},'
                     f'{wh[i, 0]},{wh[i, 1]}],"score":{score[i]}}}')
        fh.write("]")
    return gt, res


def child(kind: str, ws: Path, gt: Path, res: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, kind, str(ws), str(gt), str(res)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preds", type=int, default=1_000_000)
    ap.add_argument("--images", type=int, default=50_000)
    ap.add_argument("--skip-reference", action="store_true", help="do not time pycocotools")
    args = ap.parse_args()
    import slicewise
    from slicewise.io import import_coco

    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        t = time.perf_counter()
        gt, res = generate(folder, args.preds, args.images)
        print(f"generated {args.preds:,} predictions on {args.images:,} images "
              f"({os.path.getsize(res) / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s")
        ws_path = folder / "ws.duckdb"
        t = time.perf_counter()
        with slicewise.open(ws_path) as ws:
            import_coco(ws, gt)
        print(f"images imported (COCO instances, {args.images:,} data rows): {time.perf_counter() - t:.1f} s")
        ours = child("slicewise", ws_path, gt, res)
        print(f"slicewise import_coco_results: {ours['n']:,} predictions in {ours['seconds']:.2f} s, "
              f"peak RSS {ours['peak_mb']:.0f} MB  (target < 15 s, < 2048 MB)")
        if not args.skip_reference:
            ref = child("pycocotools", ws_path, gt, res)
            print(f"pycocotools COCO.loadRes:      {ref['n']:,} predictions in {ref['seconds']:.2f} s, "
                  f"peak RSS {ref['peak_mb']:.0f} MB")
            print(f"ratio slicewise / pycocotools: {ours['seconds'] / ref['seconds']:.2f}x time, "
                  f"{ours['peak_mb'] / ref['peak_mb']:.2f}x memory")


if __name__ == "__main__":
    main()
