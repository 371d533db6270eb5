"""Within-class mode against Labelbox's own open-source metrics code (labelbox.data.metrics), computed
in the test: per (row, feature) tp / fp / fn at every IoU threshold of the grid, and the iou metric."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

lb = pytest.importorskip("labelbox.data.metrics.confusion_matrix.calculation")
lbi = pytest.importorskip("labelbox.data.metrics.iou.calculation")

from labelbox.data.annotation_types import (  # noqa: E402
    Checklist,
    ClassificationAnnotation,
    ClassificationAnswer,
    Line,
    Mask,
    MaskData,
    ObjectAnnotation,
    Point,
    Polygon,
    Radio,
    Rectangle,
    TextEntity,
)
from pycocotools import mask as mask_utils  # noqa: E402

from slicewise.metrics import compute_metrics, row_feature_metrics_table  # noqa: E402

W, H = 60, 50
FEATURES = {"box_a": "bbox", "box_b": "bbox", "poly": "polygon", "mask_a": "mask", "pt": "point",
            "line": "polyline", "ent": "ner", "q": "radio", "tick": "checklist"}
OPTIONS = ["o1", "o2", "o3"]


class _R(random.Random):
    """Coordinates with 3 decimals: Labelbox's geometry goes through geojson, which rounds to 6."""

    def uniform(self, a: float, b: float) -> float:
        return round(super().uniform(a, b), 3)


def _obj(rng: random.Random, kind: str) -> tuple[dict[str, Any], Any]:
    """(slicewise geometry dict, labelbox value) for a random object of ``kind``."""
    if kind == "bbox":
        w, h = rng.uniform(3, 30), rng.uniform(3, 25)
        x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
        return {"bbox": [x, y, w, h]}, Rectangle(start=Point(x=x, y=y), end=Point(x=x + w, y=y + h))
    if kind == "polygon":  # a convex (valid) polygon: Labelbox repairs invalid ones differently
        cx, cy, r = rng.uniform(10, W - 10), rng.uniform(10, H - 10), rng.uniform(3, 12)
        angles = sorted(rng.uniform(0, 2 * np.pi) for _ in range(rng.randint(3, 7)))
        pts = [[round(cx + r * np.cos(a), 3), round(cy + r * np.sin(a), 3)] for a in angles]
        return {"polygon": pts}, Polygon(points=[Point(x=p[0], y=p[1]) for p in pts])
    if kind == "mask":
        arr = np.zeros((H, W), np.uint8)
        for _ in range(rng.randint(1, 2)):
            w, h = rng.randint(3, 25), rng.randint(3, 20)
            x, y = rng.randint(0, W - w), rng.randint(0, H - h)
            arr[y:y + h, x:x + w] = 1
        rle = mask_utils.encode(np.asfortranarray(arr))
        rgb = np.repeat(arr[:, :, None], 3, axis=2)
        return ({"mask": {"size": [H, W], "counts": rle["counts"].decode()}},
                Mask(mask=MaskData(arr=rgb), color=(1, 1, 1)))
    if kind == "point":
        x, y = rng.uniform(0, W), rng.uniform(0, H)  # inside the image: slicewise refuses points far outside
        return {"point": [x, y]}, Point(x=x, y=y)
    if kind == "polyline":
        pts = [[rng.uniform(0, W), rng.uniform(0, H)] for _ in range(rng.randint(2, 4))]
        return {"line": pts}, Line(points=[Point(x=p[0], y=p[1]) for p in pts])
    if kind == "ner":
        s = rng.randint(0, 80)
        e = s + rng.randint(1, 15)
        return {"span": [s, e]}, TextEntity(start=s, end=e)
    raise AssertionError(kind)


def _random_rows(seed: int, n_rows: int = 12):
    rng = _R(seed)
    rows, anns, preds = [], [], []
    lb_gt: dict[tuple[str, str], list] = {}
    lb_pr: dict[tuple[str, str], list] = {}
    for i in range(n_rows):
        img, txt = f"img{i}", f"txt{i}"
        rows += [{"global_key": img, "row_data": img, "width": W, "height": H},
                 {"global_key": txt, "row_data": "x" * 100, "media_type": "text"}]
        for name, kind in FEATURES.items():
            key = txt if kind == "ner" else img
            if kind in ("radio", "checklist"):
                for side, out, lbo in (("gt", anns, lb_gt), ("pr", preds, lb_pr)):
                    if rng.random() < 0.2:
                        continue
                    if kind == "radio":
                        a = rng.choice(OPTIONS)
                        rec = {"data_row": key, "feature": name, "answer": a}
                        val: Any = Radio(answer=ClassificationAnswer(name=a))
                    else:
                        opts = rng.sample(OPTIONS, rng.randint(1, 3))
                        rec = {"data_row": key, "feature": name, "answers": opts}
                        val = Checklist(answer=[ClassificationAnswer(name=o) for o in opts])
                    if side == "pr":
                        rec["confidence"] = rng.random()
                    out.append(rec)
                    lbo.setdefault((key, name), []).append(ClassificationAnnotation(name=name, value=val))
                continue
            n_gt, n_pr = rng.randint(0, 3), rng.randint(0, 3)
            gts = [_obj(rng, kind) for _ in range(n_gt)]
            prs = []
            for _ in range(n_pr):
                if gts and rng.random() < 0.6 and kind in ("bbox", "point", "ner"):
                    g, _ = rng.choice(gts)  # a perturbed copy of a label: overlaps of every size
                    if kind == "bbox":
                        x, y, w, h = g["bbox"]
                        d = rng.uniform(0, 6)
                        b = [round(v, 3) for v in (x + d, y + rng.uniform(-3, 3), w * rng.uniform(0.7, 1.3), h)]
                        prs.append(({"bbox": b}, Rectangle(start=Point(x=b[0], y=b[1]),
                                                           end=Point(x=b[0] + b[2], y=b[1] + b[3]))))
                    elif kind == "point":
                        x, y = g["point"][0] + rng.uniform(-10, 10), g["point"][1] + rng.uniform(-10, 10)
                        prs.append(({"point": [x, y]}, Point(x=x, y=y)))
                    else:
                        s = max(0, g["span"][0] + rng.randint(-3, 3))
                        e = max(s + 1, g["span"][1] + rng.randint(-3, 3))
                        prs.append(({"span": [s, e]}, TextEntity(start=s, end=e)))
                else:
                    prs.append(_obj(rng, kind))
            for geo, val in gts:
                anns.append({"data_row": key, "feature": name, **geo})
                lb_gt.setdefault((key, name), []).append(ObjectAnnotation(name=name, value=val))
            for geo, val in prs:
                preds.append({"data_row": key, "feature": name, "confidence": rng.random(), **geo})
                lb_pr.setdefault((key, name), []).append(ObjectAnnotation(name=name, value=val))
    return rows, anns, preds, lb_gt, lb_pr


@pytest.mark.parametrize("seed", [11, 12])
def test_within_class_equals_labelbox_reference(ws, seed):
    rows, anns, preds, lb_gt, lb_pr = _random_rows(seed)
    ws.add_data_rows("d", rows)
    for name, kind in FEATURES.items():
        ws.create_feature(name, kind, OPTIONS if kind in ("radio", "checklist") else None)
    ws.add_annotations(anns)
    run = ws.create_run("m", "v1", config={"metrics_matching": "within-class"})
    ws.add_predictions(run, preds)
    ws.add_run_rows(run, [r["global_key"] for r in rows])  # rows with labels only belong to the run too
    compute_metrics(ws, run)
    fid = {f.name: f.id for f in ws.features()}
    keys = {r.global_key: r.id for r in ws.data_rows()}
    pairs = set(lb_gt) | set(lb_pr)
    n_checked = 0
    for t in [0.0, 0.1, 0.3, 0.5, 0.7, 0.9]:
        table = row_feature_metrics_table(ws, run, 0.0, t)
        ours = {(r[0], r[1]): r[2:] for r in ws.sql(f"SELECT data_row_id, feature_id, tp, fp, fn, iou FROM {table}").fetchall()}
        for key, name in sorted(pairs):
            g, p = lb_gt.get((key, name), []), lb_pr.get((key, name), [])
            ref = lb.feature_confusion_matrix(g, p, include_subclasses=False, iou=t)
            got = ours.get((keys[key], fid[name]))
            if ref is None:
                continue
            tp, fp, _tn, fn = ref
            if FEATURES[name] == "checklist" and not (g and p):
                # Labelbox counts a checklist without counterpart as ONE object, but scores options one by
                # one when both sides exist; we score options one by one always (the rule).
                fp = sum(len(c.value.answer) for c in p)
                fn = sum(len(c.value.answer) for c in g)
            assert got is not None, (key, name)
            assert got[:3] == (tp, fp, fn), (key, name, t, got, ref)
            miou = lbi.feature_miou(g, p, include_subclasses=False)
            assert miou is not None and got[3] == pytest.approx(float(miou), abs=1e-9), (key, name, got, miou)
            n_checked += 1
    assert n_checked > 300
