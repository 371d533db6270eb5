"""A small classification world with a planted slice of known size and effect, for the discovery and
history tests: each row is one digit-like classification; a prediction is wrong with probability
``base`` outside the planted slice and ``planted`` inside it. The truth (which rows are wrong) is kept
here, so metrics are recomputed by the tests without slicewise."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np


@dataclass
class World:
    keys: list[str]
    md: list[dict]
    splits: list[str]
    wrong: dict[str, np.ndarray]  # run ref -> per-row wrong flag
    planted: np.ndarray  # rows in the planted slice


def build(ws, n: int = 1200, seed: int = 0, *, base: float = 0.15, planted: float = 0.55, plant: bool = True,
          runs: tuple[str, ...] = ("clf/v1",), drift: float = 0.0) -> World:
    from slicewise import metrics

    rng = np.random.default_rng(seed)
    light = rng.choice(["day", "dusk", "night"], n, p=[0.5, 0.3, 0.2])
    cam = rng.choice(["cam-a", "cam-b", "cam-c", "cam-d"], n)
    blur = np.round(rng.uniform(0, 3, n), 3)
    when = [datetime(2024, 5, 1) + timedelta(hours=int(h)) for h in rng.integers(0, 24 * 30, n)]
    splits = list(rng.choice(["train", "valid"], n, p=[0.7, 0.3]))
    keys = [f"r{i:05d}" for i in range(n)]
    ws.define_metadata("lighting", "enum", ["day", "dusk", "night"])
    ws.define_metadata("camera", "string")
    ws.define_metadata("blur", "number")
    ws.define_metadata("taken", "datetime")
    md = [{"lighting": str(light[i]), "camera": str(cam[i]), "blur": float(blur[i]), "taken": when[i]} for i in range(n)]
    ws.add_data_rows("d", [{"global_key": k, "row_data": f"{k}.jpg", "split": s, "metadata": m}
                           for k, s, m in zip(keys, splits, md, strict=True)])
    ws.create_feature("digit", "radio", [str(i) for i in range(10)], exist_ok=True)
    truth = rng.integers(0, 10, n)
    ws.add_annotations([{"data_row": k, "feature": "digit", "answer": str(int(y))} for k, y in zip(keys, truth, strict=True)])
    in_slice = (light == "night") if plant else np.zeros(n, dtype=bool)
    wrong = {}
    for j, ref in enumerate(runs):
        model, name = ref.split("/")
        run = ws.create_run(model, name)
        pw = np.where(in_slice, planted + drift * j, base)
        w = rng.random(n) < pw
        pred = np.where(w, (truth + rng.integers(1, 10, n)) % 10, truth)
        ws.add_predictions(run, [{"data_row": k, "feature": "digit", "answer": str(int(p)), "confidence": 0.9}
                                 for k, p in zip(keys, pred, strict=True)])
        metrics.compute_metrics(ws, run)
        wrong[ref] = w
    return World(keys, md, splits, wrong, in_slice)
