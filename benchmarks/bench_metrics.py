"""Benchmark: slicewise's metrics engine against pycocotools and faster-coco-eval on the same data.

    .venv/bin/python benchmarks/bench_metrics.py            # COCO-like run: 5,000 images, ~35k boxes, ~90k preds
    .venv/bin/python benchmarks/bench_metrics.py --big      # also: (c, t) latency on a run of 1,000,000 predictions

Prints the timings and the ratios measured in this one process.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import os
import sys
import tempfile
import time

import numpy as np


def make_coco(n_img: int, n_gt: int, n_pred: int, n_cat: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    W, H = 640, 480
    images = [{"id": i + 1, "width": W, "height": H} for i in range(n_img)]
    cats = [{"id": c + 1, "name": f"class{c + 1:02d}"} for c in range(n_cat)]
    g_img = rng.integers(1, n_img + 1, n_gt)
    g_cat = rng.integers(1, n_cat + 1, n_gt)
    w = np.round(rng.uniform(4, 300, n_gt), 2)
    h = np.round(rng.uniform(4, 250, n_gt), 2)
    x = np.round(rng.uniform(0, 1, n_gt) * (W - w), 2)
    y = np.round(rng.uniform(0, 1, n_gt) * (H - h), 2)
    crowd = rng.random(n_gt) < 0.01
    anns = [{"id": i + 1, "image_id": int(g_img[i]), "category_id": int(g_cat[i]),
             "bbox": [float(x[i]), float(y[i]), float(w[i]), float(h[i])], "area": float(w[i] * h[i]),
             "iscrowd": int(crowd[i])} for i in range(n_gt)]
    # predictions: ~60% near a label (jittered, sometimes the wrong class), the rest random
    near = rng.random(n_pred) < 0.6
    src = rng.integers(0, n_gt, n_pred)
    p_img = np.where(near, g_img[src], rng.integers(1, n_img + 1, n_pred))
    p_cat = np.where(near & (rng.random(n_pred) < 0.85), g_cat[src], rng.integers(1, n_cat + 1, n_pred))
    pw = np.where(near, w[src] * rng.uniform(0.7, 1.3, n_pred), rng.uniform(4, 300, n_pred))
    ph = np.where(near, h[src] * rng.uniform(0.7, 1.3, n_pred), rng.uniform(4, 250, n_pred))
    px = np.where(near, x[src] + rng.normal(0, 8, n_pred), rng.uniform(0, W - 4, n_pred))
    py = np.where(near, y[src] + rng.normal(0, 8, n_pred), rng.uniform(0, H - 4, n_pred))
    px, py = np.clip(px, 0, W - 1), np.clip(py, 0, H - 1)
    # at most half a box beyond the image (the importers' rule since the validation of box extents)
    px, py = np.minimum(px, W - pw / 2), np.minimum(py, H - ph / 2)
    score = np.round(np.where(near, rng.beta(5, 2, n_pred), rng.beta(2, 5, n_pred)), 3)
    results = [{"image_id": int(p_img[i]), "category_id": int(p_cat[i]),
                "bbox": [round(float(px[i]), 2), round(float(py[i]), 2), round(float(pw[i]), 2), round(float(ph[i]), 2)],
                "score": float(score[i])} for i in range(n_pred)]
    return {"images": images, "categories": cats, "annotations": anns}, results


def build_ws(path: str, gt, results):
    import slicewise
    from slicewise.types.frame import ObjectFrame

    ws = slicewise.open(path)
    images = sorted(gt["images"], key=lambda im: im["id"])
    ws.add_data_rows("bench", [{"global_key": str(im["id"]), "row_data": str(im["id"]), "width": im["width"],
                                "height": im["height"]} for im in images])
    name = {c["id"]: c["name"] for c in gt["categories"]}
    for c in sorted(gt["categories"], key=lambda c: c["id"]):
        ws.create_feature(c["name"], "bbox")
    a = gt["annotations"]
    ws.add_annotations(ObjectFrame.from_columns(
        data_row=[str(v["image_id"]) for v in a], feature=[name[v["category_id"]] for v in a], kind="bbox",
        x=[v["bbox"][0] for v in a], y=[v["bbox"][1] for v in a], w=[v["bbox"][2] for v in a],
        h=[v["bbox"][3] for v in a], area=[v["area"] for v in a], iscrowd=[bool(v["iscrowd"]) for v in a]))
    run = ws.create_run("bench", "v1")
    ws.add_predictions(run, ObjectFrame.from_columns(
        data_row=[str(v["image_id"]) for v in results], feature=[name[v["category_id"]] for v in results],
        kind="bbox", x=[v["bbox"][0] for v in results], y=[v["bbox"][1] for v in results],
        w=[v["bbox"][2] for v in results], h=[v["bbox"][3] for v in results],
        confidence=[v["score"] for v in results]))
    ws.add_run_rows(run, [str(im["id"]) for im in images])
    return ws, run


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def run_pycocotools(gt, results, lib):
    if lib == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    else:
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = copy.deepcopy(gt)
        cg.createIndex()
        cd = cg.loadRes(copy.deepcopy(results))
        t0 = time.perf_counter()
        e = COCOeval(cg, cd, "bbox")
        e.evaluate()
        e.accumulate()
        e.summarize()
        dt = time.perf_counter() - t0
    return np.asarray(e.stats[:12], np.float64), dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--boxes", type=int, default=35000)
    ap.add_argument("--preds", type=int, default=90000)
    ap.add_argument("--classes", type=int, default=80)
    ap.add_argument("--big", action="store_true", help="also time a new (c, t) on a 1,000,000-prediction run")
    ap.add_argument("--skip-pycocotools", action="store_true")
    args = ap.parse_args()
    from slicewise import metrics as M

    gt, results = make_coco(args.images, args.boxes, args.preds, args.classes)
    print(f"data: {args.images} images, {len(gt['annotations'])} boxes, {len(results)} predictions, "
          f"{args.classes} classes; {os.cpu_count()} cores")
    tmp = tempfile.mkdtemp()
    (ws, run), t_build = timed(lambda: build_ws(os.path.join(tmp, "bench.duckdb"), gt, results))
    print(f"build workspace (SDK)            {t_build:8.2f} s")
    M.coco_eval(ws, run, "bbox")  # numba JIT / cache load, not timed
    M.compute_metrics(ws, run)
    ours, t_ours = timed(lambda: M.coco_eval(ws, run, "bbox"))
    ours2, t_ours2 = timed(lambda: M.coco_eval(ws, run, "bbox"))
    t_ours = min(t_ours, t_ours2)
    fce_stats, t_fce = run_pycocotools(gt, results, "faster_coco_eval")
    print(f"faster-coco-eval evaluate+accumulate+summarize {t_fce:8.2f} s")
    if not args.skip_pycocotools:
        ref_stats, t_ref = run_pycocotools(gt, results, "pycocotools")
        print(f"pycocotools evaluate+accumulate+summarize      {t_ref:8.2f} s")
        diff = float(np.max(np.abs(np.asarray(ours.stats) - ref_stats)))
        print(f"max |slicewise - pycocotools| over the 12 stats: {diff:.3g}")
    print(f"max |faster-coco-eval - pycocotools-equivalent slicewise|: "
          f"{float(np.max(np.abs(np.asarray(ours.stats) - fce_stats))):.3g}")
    print(f"slicewise coco_eval (from the store)           {t_ours:8.2f} s   "
          f"-> {t_fce / t_ours:5.1f}x faster than faster-coco-eval"
          + (f", {t_ref / t_ours:5.1f}x faster than pycocotools" if not args.skip_pycocotools else ""))

    # the whole 11 x 11 grid: matching, then per-row metrics and the confusion matrix at every (c, t)
    _, t_match = timed(lambda: M.compute_metrics(ws, run, full=True))
    c_grid, t_grid = M.grids(ws, run)

    _, t_grid_all = timed(lambda: M.grid_metrics(ws, run))

    def all_views():
        for c in c_grid:
            for t in t_grid:
                M.row_metrics_table(ws, run, c, t)
                M.confusion_matrix(ws, run, c, t)

    _, t_views = timed(all_views)
    print(f"slicewise matching, 11 confidence passes (records + summaries stored)  {t_match:8.2f} s")
    print(f"slicewise grid_metrics: per-row metrics + confusion matrices at all 121 (c, t)  {t_grid_all:8.2f} s")
    print(f"  whole grid {t_match + t_grid_all:.2f} s vs faster-coco-eval evaluation {t_fce:.2f} s "
          f"-> {t_fce / (t_match + t_grid_all):.2f}x faster")
    print(f"(one by one: 121 x (row_metrics_table + confusion_matrix) {t_views:.2f} s, "
          f"{t_views / 121 * 1000:.0f} ms per (c, t))")
    ws.close()

    if args.big:
        n_img = 50_000
        gt, results = make_coco(n_img, 400_000, 1_000_000, 80, seed=1)
        (ws, run), t_build = timed(lambda: build_ws(os.path.join(tmp, "big.duckdb"), gt, results))
        del gt, results
        _, t_match = timed(lambda: M.compute_metrics(ws, run))
        print(f"big run: 1,000,000 predictions on {n_img} images; build {t_build:.1f} s, matching {t_match:.1f} s")
        lat_c, lat_t = [], []
        for c, t in [(0.5, 0.5), (0.3, 0.7), (0.8, 0.1), (0.0, 0.9)]:
            _, dt = timed(lambda c=c, t=t: M.row_metrics_table(ws, run, c, t))
            lat_c.append(dt)
            print(f"  new (c={c}, t={t}), first use of this c in the process: per-row table in {dt * 1000:6.0f} ms")
            for t2 in (0.35, 0.65):
                _, dt = timed(lambda c=c, t2=t2: M.row_metrics_table(ws, run, c, t2))
                lat_t.append(dt)
        _, dt = timed(lambda: M.row_metrics_table(ws, run, 0.5, 0.5))
        med = lambda v: sorted(v)[len(v) // 2] * 1000  # noqa: E731
        print(f"  new t at a confidence already used: median {med(lat_t):.0f} ms, max {max(lat_t) * 1000:.0f} ms "
              f"(8 tables); new c: median {med(lat_c):.0f} ms; cached (c, t): {dt * 1000:.1f} ms")
        # every metrics result carries the job's state: looked up once per change, then remembered
        ws.state.enabled = False
        lat_js = [timed(lambda: M.job_status(ws, run))[1] for _ in range(5)]
        ws.state.enabled = True
        M.job_status(ws, run)
        lat_memo = [timed(lambda: M.job_status(ws, run))[1] for _ in range(5)]
        lat_fm = [timed(lambda: M.feature_metrics(ws, run, 0.5, 0.5))[1] for _ in range(5)]
        print(f"  job_status: {med(lat_js):.0f} ms to look up (counts the stale rows), {med(lat_memo):.2f} ms "
              f"remembered; feature_metrics at a cached (c, t) with its job: median {med(lat_fm):.1f} ms")
        ws.close()


if __name__ == "__main__":
    sys.exit(main())
