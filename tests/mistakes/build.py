"""A small classification workspace with label flips, for the label-mistake tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

N, CLASSES = 150, ["a", "b", "c"]


def build_clf(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """150 rows in three clusters, 10 labels flipped, a model's probabilities (run ``m/v1``) and a vector
    space ``vec``, written to ``path``. Returns (row ids, labels, probabilities, vectors, flipped indices)."""
    import slicewise
    from slicewise import embeddings as emb

    rng = np.random.default_rng(5)
    true = rng.integers(0, 3, N)
    centres = rng.normal(size=(3, 6)) * 3
    vecs = (centres[true] + rng.normal(size=(N, 6))).astype(np.float32)
    labels = true.copy()
    flipped = rng.choice(N, 10, replace=False)
    labels[flipped] = (labels[flipped] + rng.integers(1, 3, 10)) % 3
    logits = np.eye(3)[true] * 2.5 + rng.normal(size=(N, 3))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    keys = [f"r{i:03d}" for i in range(N)]
    with slicewise.open(path) as ws:
        ws.add_data_rows("d", [{"global_key": k, "row_data": f"{k}.jpg"} for k in keys])
        ws.create_feature("kind", "radio", CLASSES)
        ws.add_annotations([{"data_row": k, "feature": "kind", "answer": CLASSES[labels[i]]}
                            for i, k in enumerate(keys)])
        run = ws.create_run("m", "v1")
        ws.add_predictions(run, [{"data_row": k, "feature": "kind", "answer": CLASSES[int(probs[i].argmax())],
                                  "confidence": float(probs[i].max()), "probabilities": probs[i].tolist()}
                                 for i, k in enumerate(keys)])
        emb.add_vectors(ws, "vec", keys, vecs)
        ids = np.asarray([ws.data_row(k).id for k in keys])
    return ids, labels, probs, vecs, flipped
