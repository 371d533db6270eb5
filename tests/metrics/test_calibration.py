"""ECE / MCE equal a direct NumPy computation on predictions whose correctness is known by construction:
one label and one prediction per row, the prediction either the same box and class (a TP), the same box
with another class (a confusion) or a box elsewhere (a false positive)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from slicewise import metrics as M
from slicewise.errors import MetricsError


def _world(ws, n=150, seed=2):
    rng = random.Random(seed)
    keys = [f"r{i:03d}" for i in range(n)]
    ws.add_data_rows("d", [{"global_key": k, "row_data": f"{k}.jpg", "width": 100, "height": 100} for k in keys])
    for f in ("cat", "dog"):
        ws.create_feature(f, "bbox")
    anns, preds, truth = [], [], []
    for k in keys:
        cls = rng.choice(["cat", "dog"])
        anns.append({"data_row": k, "feature": cls, "bbox": [10, 10, 30, 30]})
        conf = round(rng.random(), 3)
        kind = rng.choice(["tp", "tp", "confusion", "far"])
        pred_cls = cls if kind != "confusion" else ("dog" if cls == "cat" else "cat")
        box = [10, 10, 30, 30] if kind != "far" else [60, 60, 20, 20]
        preds.append({"data_row": k, "feature": pred_cls, "bbox": box, "confidence": conf})
        truth.append((k, pred_cls, conf, kind == "tp"))
    ws.add_annotations(anns)
    run = ws.create_run("m", "v1")
    ws.add_predictions(run, preds)
    M.compute_metrics(ws, run)
    return run, truth


def _numpy_ece(conf, ok, n_bins):
    conf, ok = np.asarray(conf, float), np.asarray(ok, float)
    ece, mce = 0.0, 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        m = (conf >= lo) & ((conf < hi) if b < n_bins - 1 else (conf <= hi))
        if m.any():
            gap = abs(ok[m].mean() - conf[m].mean())
            ece += m.sum() / len(conf) * gap
            mce = max(mce, gap)
    return ece, mce


@pytest.mark.parametrize(("c", "n_bins"), [(0.0, 10), (0.5, 15)])
def test_ece_and_mce_equal_numpy(ws, c, n_bins):
    run, truth = _world(ws)
    got = M.calibration(ws, run, c, 0.5, n_bins=n_bins)
    kept = [(k, f, p, ok) for k, f, p, ok in truth if p >= c]
    ece, mce = _numpy_ece([p for *_, p, _ in kept], [ok for *_, ok in kept], n_bins)
    assert got.overall.n == len(kept)
    assert (got.overall.ece, got.overall.mce) == pytest.approx((ece, mce), abs=1e-9)
    assert sum(b.n for b in got.overall.bins) == len(kept) and len(got.overall.bins) == n_bins
    for cls in ("cat", "dog"):
        sub = [(p, ok) for _, f, p, ok in kept if f == cls]
        row = next(r for r in got.classes if r.name == cls)
        assert (row.n, row.ece, row.mce) == pytest.approx((len(sub), *_numpy_ece(*zip(*sub, strict=True), n_bins)))
    # over a subset of rows (a slice)
    rows = ("SELECT id AS data_row_id FROM data_rows WHERE global_key < 'r050'", [])
    sub = [(p, ok) for k, _, p, ok in kept if k < "r050"]
    assert M.calibration(ws, run, c, 0.5, rows=rows, n_bins=n_bins).overall.ece == pytest.approx(
        _numpy_ece(*zip(*sub, strict=True), n_bins)[0])


def test_calibration_bad_bins(ws):
    run, _ = _world(ws, n=10)
    with pytest.raises(MetricsError, match="n_bins"):
        M.calibration(ws, run, 0.0, 0.5, n_bins=0)
