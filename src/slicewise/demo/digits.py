"""The digits part of the demo: scikit-learn's handwritten digits, "scanned" by three scanners, and a real classifier.

scikit-learn ships 1,797 8x8 digit images (``sklearn.datasets.load_digits``). Each image is assigned
a scanner; the older scanners lose contrast and add noise to the pixels, so the model sees (and the
gallery shows) a degraded image, and its mistakes concentrate on those scanners as they would in
practice. About 2% of the labels are wrong (another digit), as human labels are: a confident model
disagreeing with them is how such errors are found. The classifier is trained on the ``train``
split only (with its label errors) and predicts every row: it makes real mistakes, with real class
probabilities.

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
LABEL_ERRORS = 0.02  # the share of rows whose label is another digit (annotators slip)
OPTIONS = [str(d) for d in range(10)]
SCALE = 16  # 8x8 pixels become 128x128 PNGs


@dataclass
class Digits:
    keys: list[str]
    images: np.ndarray  # n x 8 x 8 float in [0, 16], as scanned
    labels: np.ndarray  # int digit, as labelled: LABEL_ERRORS of them are wrong, as in real annotation
    true_labels: np.ndarray  # scikit-learn's labels
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
    slip = rng.uniform(size=len(raw.target)) < LABEL_ERRORS
    wrong = (raw.target + rng.integers(1, 10, size=len(raw.target))) % 10
    labels = np.where(slip, wrong, raw.target)[:total].astype(int)
    orig = raw.images[:total].astype(float)
    contrast, sigma = (np.array([SCANNERS[str(s)][k] for s in scanner[:total]])[:, None, None] for k in (0, 1))
    images = np.clip(orig * contrast + noise[:total] * sigma, 0, 16)
    density, width, slant = orig.mean(axis=(1, 2)) / 16, _stroke_width(orig), _slant(orig)
    metadata = [{"scanner": str(scanner[i]), "ink_density": round(float(density[i]), 4),
                 "stroke_width": round(float(width[i]), 3), "slant": round(float(slant[i]), 3)} for i in range(total)]
    splits = ["train" if v < 0.6 else ("valid" if v < 0.8 else "test") for v in u[:total]]
    return Digits([f"digit-{i:04d}" for i in range(total)], np.array(images).reshape(-1, 8, 8), labels,
                  raw.target[:total].astype(int), splits, metadata)


def _stroke_width(imgs: np.ndarray) -> np.ndarray:
    """Mean stroke width in source pixels: twice the ink area over its boundary length (per image)."""
    ink = np.pad(imgs >= 6, ((0, 0), (1, 1), (1, 1)))
    inner = ink[:, 1:-1, 1:-1] & ink[:, :-2, 1:-1] & ink[:, 2:, 1:-1] & ink[:, 1:-1, :-2] & ink[:, 1:-1, 2:]
    area = ink.sum(axis=(1, 2))
    edge = area - inner.sum(axis=(1, 2))
    return np.asarray(2 * area / np.maximum(edge, 1))


def _slant(imgs: np.ndarray) -> np.ndarray:
    """How far the strokes lean (second-moment shear: positive leans right), per image."""
    ys, xs = np.mgrid[0:8, 0:8]
    w = imgs / np.maximum(imgs.sum(axis=(1, 2), keepdims=True), 1e-9)
    mx, my = (w * xs).sum(axis=(1, 2), keepdims=True), (w * ys).sum(axis=(1, 2), keepdims=True)
    mu11 = (w * (xs - mx) * (ys - my)).sum(axis=(1, 2))
    mu02 = (w * (ys - my) ** 2).sum(axis=(1, 2))
    return np.where(mu02 > 1e-9, -mu11 / np.maximum(mu02, 1e-9), 0.0)


def train_and_predict(d: Digits, seed: int = 0) -> DigitPredictions:
    """Fit a logistic regression on the train rows, predict every row (probabilities over 0..9)."""
    from sklearn.linear_model import LogisticRegression

    x = d.images.reshape(len(d.images), -1) / 16.0
    train = np.array([s == "train" for s in d.splits])
    model = LogisticRegression(C=0.5, solver="newton-cg", max_iter=200, random_state=seed)
    model.fit(x[train], d.labels[train])
    proba = np.zeros((len(x), 10))
    proba[:, model.classes_] = model.predict_proba(x)  # a class absent from train gets probability 0
    pred = proba.argmax(axis=1)
    acc = {s: float((pred[m] == d.labels[m]).mean())
           for s in ("train", "valid", "test") if (m := np.array([t == s for t in d.splits])).any()}
    return DigitPredictions(pred, proba, acc)


def write_png(img: np.ndarray, path: Any) -> None:
    """One digit as a 128x128 grayscale PNG, dark ink on white paper."""
    from PIL import Image

    pixels = (255 - np.round(img * 255 / 16)).astype(np.uint8)
    Image.fromarray(pixels, "L").resize((8 * SCALE, 8 * SCALE), Image.Resampling.NEAREST).save(path, compress_level=1)


def train_and_predict_more_scan_c(d: Digits, seed: int = 0) -> DigitPredictions:
    """The second model: the same classifier trained on the train rows plus every train digit scanned once
    more by scanner C (contrast 0.55, noise 3.2: what a lab does after finding its weak scanner), so it
    does better on scan-C rows and a little differently elsewhere."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    x = d.images.reshape(len(d.images), -1) / 16.0
    train = np.array([s == "train" for s in d.splits])
    orig = load_digits().images[: len(d.images)].astype(float)[train]
    rng = np.random.default_rng([seed, 0x5CA2C])
    contrast, sigma = SCANNERS["scan-C"]
    extra = np.clip(orig * contrast + rng.normal(0, 1, orig.shape) * sigma, 0, 16).reshape(len(orig), -1) / 16.0
    model = LogisticRegression(C=0.5, solver="newton-cg", max_iter=200, random_state=seed)
    model.fit(np.vstack([x[train], extra]), np.concatenate([d.labels[train], d.labels[train]]))
    proba = np.zeros((len(x), 10))
    proba[:, model.classes_] = model.predict_proba(x)
    pred = proba.argmax(axis=1)
    acc = {s: float((pred[m] == d.labels[m]).mean())
           for s in ("train", "valid", "test") if (m := np.array([t == s for t in d.splits])).any()}
    return DigitPredictions(pred, proba, acc)
