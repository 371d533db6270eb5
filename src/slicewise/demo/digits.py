"""The digits part of the demo: scikit-learn's handwritten digits, "scanned" by three scanners, and a real classifier.

scikit-learn ships 1,797 8x8 digit images (``sklearn.datasets.load_digits``). Each image is assigned
a scanner; the older scanners lose contrast and add noise to the pixels, so the model sees (and the
gallery shows) a degraded image, and its mistakes concentrate on those scanners as they would in
practice. The classifier is trained on the ``train`` split only and predicts every row: it makes
real mistakes, with real class probabilities.

>>> d = make_digits(30)
>>> len(d.keys), d.images.shape, sorted(set(d.metadata[0]))
(30, (30, 8, 8), ['ink_density', 'scanner', 'slant', 'stroke_width'])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

SCANNERS = {"scan-A": (1.0, 0.0), "scan-B": (0.85, 1.5), "scan-C": (0.55, 3.2)}  # contrast, noise sigma (0..16)
_SCANNER_P = (0.5, 0.3, 0.2)
OPTIONS = [str(d) for d in range(10)]
SCALE = 8  # 8x8 pixels become 64x64 PNGs


@dataclass
class Digits:
    keys: list[str]
    images: np.ndarray  # n x 8 x 8 float in [0, 16], as scanned
    labels: np.ndarray  # int digit
    splits: list[str]
    metadata: list[dict[str, Any]]


@dataclass
class DigitPredictions:
    labels: np.ndarray  # predicted digit per row
    probabilities: np.ndarray  # n x 10, columns in OPTIONS order
    accuracy: dict[str, float]  # per split


def make_digits(n: int | None = None, seed: int = 0) -> Digits:
    """The first ``n`` digits (all 1,797 by default), scanned, with metadata and a 60/20/20 split."""
    from sklearn.datasets import load_digits

    raw = load_digits()
    total = len(raw.target) if n is None else min(int(n), len(raw.target))
    rng = np.random.default_rng([seed, 0xD161])
    scanner = rng.choice(list(SCANNERS), size=len(raw.target), p=_SCANNER_P)
    noise = rng.normal(0, 1, raw.images.shape)
    u = rng.uniform(size=len(raw.target))
    images, metadata, splits = [], [], []
    for i in range(total):
        orig = raw.images[i].astype(float)
        contrast, sigma = SCANNERS[str(scanner[i])]
        images.append(np.clip(orig * contrast + noise[i] * sigma, 0, 16))
        metadata.append({"scanner": str(scanner[i]), "ink_density": round(float(orig.mean() / 16), 4),
                         "stroke_width": round(_stroke_width(orig), 3), "slant": round(_slant(orig), 3)})
        splits.append("train" if u[i] < 0.6 else ("valid" if u[i] < 0.8 else "test"))
    return Digits([f"digit-{i:04d}" for i in range(total)], np.array(images).reshape(-1, 8, 8),
                  raw.target[:total].astype(int), splits, metadata)


def _stroke_width(img: np.ndarray) -> float:
    """Mean stroke width in source pixels: twice the ink area over its boundary length."""
    from scipy import ndimage

    ink = img >= 6
    edge = ink & ~ndimage.binary_erosion(ink)
    return float(2 * ink.sum() / max(edge.sum(), 1))


def _slant(img: np.ndarray) -> float:
    """How far the strokes lean (second-moment shear: positive leans right)."""
    ys, xs = np.mgrid[0:8, 0:8]
    w = img / max(img.sum(), 1e-9)
    mx, my = (w * xs).sum(), (w * ys).sum()
    mu11 = (w * (xs - mx) * (ys - my)).sum()
    mu02 = (w * (ys - my) ** 2).sum()
    return float(-mu11 / mu02) if mu02 > 1e-9 else 0.0


def train_and_predict(d: Digits, seed: int = 0) -> DigitPredictions:
    """Fit a logistic regression on the train rows, predict every row (probabilities over 0..9)."""
    from sklearn.linear_model import LogisticRegression

    x = d.images.reshape(len(d.images), -1) / 16.0
    train = np.array([s == "train" for s in d.splits])
    model = LogisticRegression(C=0.5, max_iter=1000, random_state=seed)
    model.fit(x[train], d.labels[train])
    proba = np.zeros((len(x), 10))
    proba[:, model.classes_] = model.predict_proba(x)  # a class absent from train gets probability 0
    pred = proba.argmax(axis=1)
    acc = {s: float((pred[m] == d.labels[m]).mean())
           for s in ("train", "valid", "test") if (m := np.array([t == s for t in d.splits])).any()}
    return DigitPredictions(pred, proba, acc)


def write_png(img: np.ndarray, path: Any) -> None:
    """One digit as a 64x64 grayscale PNG, dark ink on white paper."""
    from PIL import Image

    pixels = (255 - np.round(img * 255 / 16)).astype(np.uint8)
    Image.fromarray(pixels, "L").resize((8 * SCALE, 8 * SCALE), Image.Resampling.NEAREST).save(path)
