"""Benchmark: slicewise's metrics engine against hotcoco, faster-coco-eval and pycocotools on the same data.

    .venv/bin/python benchmarks/bench_metrics.py            # COCO-like run: 5,000 images, ~35k boxes, ~90k preds
    .venv/bin/python benchmarks/bench_metrics.py --big      # also: (c, t) latency on a run of 1,000,000 predictions
    .venv/bin/python benchmarks/bench_metrics.py --only grid  # only the whole grid (no COCO, no reference tools)

Every timing is the median of ``--repeats`` (default 3) runs in this one process, interleaved (each repeat
times every tool once), with the load average before and after; the ratios are of those medians. The
COCO times are evaluate + accumulate + summarize with loading excluded (the reference tools' ``COCO`` /
``loadRes`` are built before the clock starts; slicewise's "evaluate" starts from the run's arrays read
from the store), and slicewise's ``coco_eval`` from the store (reading included) is shown beside them.
The 12 stats of every tool must be identical (max abs difference 0), else the script fails.
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


class Reference:
    """A reference COCO evaluator with its ground truth and results loaded (loading is not timed)."""

    def __init__(self, lib: str, gt, results, tmp: str):
        self.lib = lib
        with contextlib.redirect_stdout(io.StringIO()):
            if lib == "hotcoco":
                import json

                import hotcoco
                path = os.path.join(tmp, "gt.json")
                with open(path, "w") as f:
                    json.dump(gt, f)
                self.COCOeval = hotcoco.COCOeval
                self.cg = hotcoco.COCO(path)
            else:
                if lib == "pycocotools":
                    from pycocotools.coco import COCO
                    from pycocotools.cocoeval import COCOeval
                else:
                    from faster_coco_eval import COCO
                    from faster_coco_eval import COCOeval_faster as COCOeval
                self.COCOeval = COCOeval
                self.cg = COCO()
                self.cg.dataset = copy.deepcopy(gt)
                self.cg.createIndex()
            self.cd = self.cg.loadRes(copy.deepcopy(results))

    def run(self) -> tuple[np.ndarray, float, float]:
        """The 12 stats, the seconds of evaluate + accumulate + summarize, and of evaluate() alone."""
        with contextlib.redirect_stdout(io.StringIO()):
            t0 = time.perf_counter()
            e = self.COCOeval(self.cg, self.cd, "bbox")
            e.evaluate()
            t_eval = time.perf_counter() - t0
            e.accumulate()
            e.summarize()
            dt = time.perf_counter() - t0
        return np.asarray(e.stats[:12], np.float64), dt, t_eval


def median(v: list[float]) -> float:
    return float(np.median(v))


def load_avg() -> str:
    return "/".join(f"{v:.2f}" for v in os.getloadavg())


def grid_part(ws, run, repeats: int, t_fce: float | None) -> None:
    """The whole 11 x 11 grid: matching, then per-row metrics and the confusion matrix at every (c, t)."""
    from slicewise import metrics as M

    t_matches, t_grids = [], []
    for _ in range(repeats):
        t_matches.append(timed(lambda: M.compute_metrics(ws, run, full=True))[1])
        t_grids.append(timed(lambda: M.grid_metrics(ws, run))[1])
    t_match, t_grid_all = median(t_matches), median(t_grids)
    c_grid, t_grid = M.grids(ws, run)

    def all_views():
        for c in c_grid:
            for t in t_grid:
                M.row_metrics_table(ws, run, c, t)
                M.confusion_matrix(ws, run, c, t)

    _, t_views = timed(all_views)
    print(f"medians of {repeats}, load average now {load_avg()}:")
    print(f"slicewise matching, 11 confidence passes (records + summaries stored)  {t_match:8.2f} s")
    print(f"slicewise grid_metrics: per-row metrics + confusion matrices at all 121 (c, t)  {t_grid_all:8.2f} s")
    if t_fce is None:
        print(f"  whole grid {t_match + t_grid_all:.2f} s (faster-coco-eval not run)")
    else:
        print(f"  whole grid {t_match + t_grid_all:.2f} s vs faster-coco-eval's evaluate() alone {t_fce:.2f} s "
              f"-> {t_fce / (t_match + t_grid_all):.2f}x faster")
    print(f"(one by one: 121 x (row_metrics_table + confusion_matrix) {t_views:.2f} s, "
          f"{t_views / 121 * 1000:.0f} ms per (c, t))")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--boxes", type=int, default=35000)
    ap.add_argument("--preds", type=int, default=90000)
    ap.add_argument("--classes", type=int, default=80)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--big", action="store_true", help="also time a new (c, t) on a 1,000,000-prediction run")
    ap.add_argument("--skip-pycocotools", action="store_true")
    ap.add_argument("--only", choices=["grid"], help="time only the whole grid (no COCO pass, no reference tools)")
    args = ap.parse_args()
    from slicewise import metrics as M
    from slicewise.metrics import coco as C
    from slicewise.metrics.engine import get_run, job_of

    gt, results = make_coco(args.images, args.boxes, args.preds, args.classes)
    print(f"data: {args.images} images, {len(gt['annotations'])} boxes, {len(results)} predictions, "
          f"{args.classes} classes; {os.cpu_count()} cores; load average at start {load_avg()}")
    tmp = tempfile.mkdtemp()
    (ws, run), t_build = timed(lambda: build_ws(os.path.join(tmp, "bench.duckdb"), gt, results))
    print(f"build workspace (SDK)            {t_build:8.2f} s")
    M.compute_metrics(ws, run)  # numba JIT / cache load, not timed
    if args.only == "grid":
        M.grid_metrics(ws, run)
        grid_part(ws, run, args.repeats, None)
        ws.close()
        return
    M.coco_eval(ws, run, "bbox")
    r = get_run(ws, run)
    refs = [Reference(lib, gt, results, tmp) for lib in
            ("hotcoco", "faster-coco-eval", *(() if args.skip_pycocotools else ("pycocotools",)))]
    times: dict[str, list[float]] = {"slicewise evaluate": [], "slicewise coco_eval": []}
    stats: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        d = C._load(ws, r.id, "bbox")
        res, t = timed(lambda d=d: C.evaluate(d, "bbox", job_of(ws, r)))
        times["slicewise evaluate"].append(t)
        stats["slicewise"] = np.asarray(res.stats)
        res, t = timed(lambda: M.coco_eval(ws, run, "bbox"))
        times["slicewise coco_eval"].append(t)
        for ref in refs:
            st, t, t_eval = ref.run()
            times.setdefault(ref.lib, []).append(t)
            times.setdefault(ref.lib + " evaluate()", []).append(t_eval)
            stats[ref.lib] = st
    worst = max(float(np.max(np.abs(stats["slicewise"] - v))) for v in stats.values())
    print(f"max |slicewise - reference| over the 12 stats, every reference: {worst:.3g}")
    ours = median(times["slicewise evaluate"])
    print(f"COCO evaluate + accumulate + summarize (loading excluded), median of {args.repeats}; "
          f"load average now {load_avg()}")
    print(f"  slicewise evaluate                  {ours * 1000:8.0f} ms")
    print(f"  slicewise coco_eval (store read in) {median(times['slicewise coco_eval']) * 1000:8.0f} ms")
    for ref in refs:
        t = median(times[ref.lib])
        print(f"  {ref.lib:<35} {t * 1000:8.0f} ms   -> slicewise {t / ours:5.2f}x faster "
              f"({t / median(times['slicewise coco_eval']):5.2f}x with the store read)")
    if worst != 0.0:
        sys.exit("the stats differ from a reference")
    t_fce = median(times["faster-coco-eval evaluate()"])

    grid_part(ws, run, args.repeats, t_fce)
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
