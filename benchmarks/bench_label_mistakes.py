"""Label-mistake detectors against known injected errors, next to cleanlab (and hotcoco) alone.

    .venv/bin/python benchmarks/bench_label_mistakes.py [--seeds 5] [--scenes 400] [--part a|b|both]

(a) Classification: scikit-learn's digits (1,797), 5% of the labels flipped to another digit, per seed.
    Out-of-sample probabilities by 5-fold cross-validation (logistic regression on the noisy labels),
    stored as a slicewise run; an embedding space ``pixels`` (the 64 pixels, centred per image, cosine).
    Precision and recall against the flipped set of each slicewise detector (``cleanlab``, ``knn``,
    ``combined``) and of ``cleanlab.filter.find_label_issues`` called directly on the same arrays.
(b) Boxes: the demo's scenes (slicewise.demo.scenes, their exact boxes), with errors injected into the
    labels per seed: 4% of boxes get another class, 4% are shifted by half their size, 4% are dropped.
    Out-of-sample predictions by 2-fold cross-fitting of the demo's detector (trained on the noisy
    labels). An image is a mistake when one of its boxes is. The slicewise detectors (kNN over a space of
    16x12 thumbnails, each row's class its most frequent label; the combination for boxes does not use
    it), next to
    ``cleanlab.object_detection.filter.find_label_issues`` and hotcoco's ``image_diagnostics`` label
    errors (wrong_label, missing_annotation; score >= 0.5, IoU 0.5) on the same labels and predictions.

Prints, per part, the median and the range over seeds of precision, recall and the number flagged, and
the load average.
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


def pr(flagged: np.ndarray, truth: np.ndarray) -> tuple[float, float, int]:
    tp = int((flagged & truth).sum())
    return tp / max(int(flagged.sum()), 1), tp / max(int(truth.sum()), 1), int(flagged.sum())


def report(title: str, results: dict[str, list[tuple[float, float, int]]]) -> None:
    print(f"\n{title}")
    print(f"{'detector':<44} {'precision':>22} {'recall':>22} {'flagged':>10}")
    for name, vals in results.items():
        a = np.array(vals, float)
        cells = [f"{np.median(a[:, j]):.3f} ({a[:, j].min():.3f}-{a[:, j].max():.3f})" for j in (0, 1)]
        print(f"{name:<44} {cells[0]:>22} {cells[1]:>22} {np.median(a[:, 2]):>10.0f}")


def part_a(seeds: int, folder: Path) -> None:
    from cleanlab.filter import find_label_issues
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    import slicewise
    from slicewise import embeddings, mistakes

    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    n = len(y)
    out: dict[str, list[tuple[float, float, int]]] = {}
    t_sw = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        flip = rng.choice(n, int(round(0.05 * n)), replace=False)
        noisy = y.copy()
        noisy[flip] = (y[flip] + rng.integers(1, 10, len(flip))) % 10
        truth = np.zeros(n, bool)
        truth[flip] = True
        probs = cross_val_predict(LogisticRegression(C=0.5, max_iter=500), x, noisy, cv=5, method="predict_proba")
        keys = [f"d{i:04d}" for i in range(n)]
        path = folder / f"digits-{seed}.duckdb"
        with slicewise.open(path) as ws:
            ws.add_data_rows("digits", [{"global_key": k, "row_data": f"{k}.png"} for k in keys])
            ws.create_feature("digit", "radio", [str(d) for d in range(10)])
            ws.add_annotations([{"data_row": k, "feature": "digit", "answer": str(noisy[i])} for i, k in enumerate(keys)])
            run = ws.create_run("logreg", "cv5")
            ws.add_predictions(run, [{"data_row": k, "feature": "digit", "answer": str(int(probs[i].argmax())),
                                      "confidence": float(probs[i].max()), "probabilities": probs[i].tolist()}
                                     for i, k in enumerate(keys)])
            embeddings.add_vectors(ws, "pixels", keys, (x - x.mean(axis=1, keepdims=True)).astype(np.float32))
            ids = np.asarray([r.id for r in ws.data_rows(dataset="digits")])
            order = np.argsort(ids)
            t0 = time.perf_counter()
            res = mistakes.result(ws, run)
            t_sw.append(time.perf_counter() - t0)
            for d in ("cleanlab", "knn", "combined"):
                s = res.detectors[d]
                assert s.ids.tolist() == ids[order].tolist()
                flagged = np.zeros(n, bool)
                flagged[order] = s.flagged
                out.setdefault(f"slicewise {d}", []).append(pr(flagged, truth))
        ref = find_label_issues(noisy, probs)
        out.setdefault("cleanlab find_label_issues (direct)", []).append(pr(ref, truth))
        print(f"seed {seed}: " + ", ".join(f"{k} P {v[-1][0]:.3f} R {v[-1][1]:.3f}" for k, v in out.items()), flush=True)
    report(f"(a) digits, 5% labels flipped ({int(round(0.05 * n))} of {n}), {seeds} seeds, 5-fold CV "
           f"logistic regression; slicewise's three detectors in {np.median(t_sw):.2f} s (median)", out)


def part_b(seeds: int, scenes: int, folder: Path) -> None:
    import hotcoco
    from cleanlab.object_detection.filter import find_label_issues as od_find

    import slicewise
    from slicewise import embeddings, mistakes
    from slicewise.demo import scenes as sc
    from slicewise.demo.detector import Detector, describe

    t0 = time.perf_counter()
    rendered = [sc.render_scene(i, 0) for i in range(scenes)]
    pixels = [np.asarray(s.image.convert("RGB")) for s in rendered]
    described = [describe(p) for p in pixels]
    thumbs = np.stack([np.asarray(s.image.convert("RGB").resize((16, 12)), np.float32).ravel() for s in rendered])
    thumbs -= thumbs.mean(axis=1, keepdims=True)
    print(f"(b) rendered and described {scenes} scenes in {time.perf_counter() - t0:.1f} s", flush=True)
    cls_index = {c: i for i, c in enumerate(sc.CLASSES)}
    out: dict[str, list[tuple[float, float, int]]] = {}
    kinds: dict[str, list[int]] = {"wrong class": [], "shifted": [], "missing": []}
    for seed in range(seeds):
        rng = np.random.default_rng([seed, 0xB0C5])
        labels: list[tuple[list[str], list[list[float]]]] = []
        bad = np.zeros(scenes, bool)
        for i, s in enumerate(rendered):
            cs, bs = [], []
            for c, b in zip(s.classes, s.boxes, strict=True):
                u = rng.uniform()
                box = list(b)
                if u < 0.04:
                    c = str(rng.choice([k for k in sc.CLASSES if k != c]))
                    kinds["wrong class"].append(i)
                    bad[i] = True
                elif u < 0.08:
                    dx, dy = rng.choice([-1, 1], 2) * 0.5 * np.array([box[2], box[3]])
                    box = [min(max(box[0] + dx, 0), sc.WIDTH - box[2]), min(max(box[1] + dy, 0), sc.HEIGHT - box[3]),
                           box[2], box[3]]
                    kinds["shifted"].append(i)
                    bad[i] = True
                elif u < 0.12:
                    kinds["missing"].append(i)
                    bad[i] = True
                    continue
                cs.append(c)
                bs.append(box)
            labels.append((cs, bs))
        # out-of-sample predictions: 2-fold cross-fitting, trained on the noisy labels
        fold = rng.permutation(scenes) % 2
        found: list[list] = [[] for _ in range(scenes)]
        for f in (0, 1):
            tr = np.flatnonzero(fold != f)
            te = np.flatnonzero(fold == f)
            det = Detector(sc.CLASSES, seed).fit([described[i] for i in tr], [np.array(labels[i][1]).reshape(-1, 4) for i in tr],
                                                 [labels[i][0] for i in tr])
            for i, d in zip(te, det.detect([described[i] for i in te]), strict=True):
                found[i] = d
        keys = [f"scene-{i:04d}" for i in range(scenes)]
        path = folder / f"scenes-{seed}.duckdb"
        # scenes whose labels are all gone have no ground truth: slicewise scores labelled rows only
        labelled = np.array([len(lab[0]) > 0 for lab in labels])
        with slicewise.open(path) as ws:
            ws.add_data_rows("shapes", [{"global_key": k, "row_data": f"{k}.jpg", "width": sc.WIDTH,
                                         "height": sc.HEIGHT} for k in keys])
            for c in sc.CLASSES:
                ws.create_feature(c, "bbox")
            ws.add_annotations([{"data_row": k, "feature": c, "bbox": b} for k, (cs, bs) in zip(keys, labels, strict=True)
                                for c, b in zip(cs, bs, strict=True)])
            run = ws.create_run("detector", "cross-fit")
            ws.add_predictions(run, [{"data_row": k, "feature": d.cls, "bbox": list(d.box), "confidence": d.score}
                                     for k, ds in zip(keys, found, strict=True) for d in ds])
            ws.add_run_rows(run, keys)
            embeddings.add_vectors(ws, "thumbs", keys, thumbs)
            ids = np.asarray([ws.data_row(k).id for k in keys])
            res = mistakes.result(ws, run)
            for d in ("cleanlab", "knn", "combined"):
                s = res.detectors[d]
                flagged = np.zeros(scenes, bool)
                flagged[np.searchsorted(ids, s.ids[s.flagged])] = True  # ids ascend with the keys
                out.setdefault(f"slicewise {d}", []).append(pr(flagged, bad))
        # cleanlab alone, on the same labelled scenes
        li = np.flatnonzero(labelled)
        cl_labels = [{"bboxes": np.array([[b[0], b[1], b[0] + b[2], b[1] + b[3]] for b in labels[i][1]]).reshape(-1, 4),
                      "labels": np.array([cls_index[c] for c in labels[i][0]], np.int64)} for i in li]
        cl_preds = []
        for i in li:
            per = [[] for _ in sc.CLASSES]
            for d in found[i]:
                per[cls_index[d.cls]].append([d.box[0], d.box[1], d.box[0] + d.box[2], d.box[1] + d.box[3], d.score])
            cl_preds.append([np.array(p, float).reshape(-1, 5) for p in per])
        flags = np.zeros(scenes, bool)
        flags[li] = od_find(cl_labels, cl_preds)
        out.setdefault("cleanlab object_detection find_label_issues", []).append(pr(flags, bad))
        # hotcoco's label errors, on every scene
        images = [{"id": i + 1, "width": sc.WIDTH, "height": sc.HEIGHT, "file_name": k} for i, k in enumerate(keys)]
        cats = [{"id": j + 1, "name": c} for j, c in enumerate(sc.CLASSES)]
        anns = [{"id": n + 1, "image_id": i + 1, "category_id": cls_index[c] + 1, "bbox": b, "area": b[2] * b[3], "iscrowd": 0}
                for n, (i, c, b) in enumerate((i, c, b) for i, (cs, bs) in enumerate(labels) for c, b in zip(cs, bs, strict=True))]
        dets = [{"image_id": i + 1, "category_id": cls_index[d.cls] + 1, "bbox": list(d.box), "score": d.score}
                for i, ds in enumerate(found) for d in ds]
        gt = hotcoco.COCO({"images": images, "categories": cats, "annotations": anns})
        ev = hotcoco.COCOeval(gt, gt.load_res(dets), "bbox")
        ev.evaluate()
        diag = ev.image_diagnostics(iou_thr=0.5, score_thr=0.5)
        hc = np.zeros(scenes, bool)
        for le in diag["label_errors"]:
            hc[int(le["image_id"]) - 1] = True
        out.setdefault("hotcoco image_diagnostics label errors", []).append(pr(hc, bad))
        print(f"seed {seed}: {int(bad.sum())} of {scenes} scenes with an error; "
              + ", ".join(f"{k} P {v[-1][0]:.3f} R {v[-1][1]:.3f}" for k, v in out.items()), flush=True)
    per_seed = {k: len(v) / seeds for k, v in kinds.items()}
    report(f"(b) {scenes} demo scenes, errors injected per seed (per seed on average: "
           + ", ".join(f"{v:.0f} {k}" for k, v in per_seed.items()) + "), 2-fold cross-fitted detector", out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--scenes", type=int, default=400)
    ap.add_argument("--part", choices=["a", "b", "both"], default="both")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if a.part in ("a", "both"):
            part_a(a.seeds, Path(tmp))
        if a.part in ("b", "both"):
            part_b(a.seeds, a.scenes, Path(tmp))
    print(f"\nload average {tuple(round(v, 2) for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
