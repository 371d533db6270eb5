"""The demo's unlabeled pool and its embeddings: data rows with no labels and in no run, for the
catalog's "Find similar" story (night misses in the run -> similar unlabeled night scenes -> a slice).

- ``digits-pool``: new scans of scikit-learn's digits (another scanner, another noise draw, shifted by
  up to one pixel), with the same metadata as the labelled digits;
- ``shapes-pool``: new scenes rendered like the labelled ones (lighting, blur, camera...), not annotated.

Then every image row is embedded by the built-in image embedder (EfficientNet-Lite0, ONNX) into the
space ``image``, at :data:`EMBED_SIZE` pixels (small images: the digits are 8x8, and 96 px keeps the
build quick on two cores while separating lighting, blur and shape).

>>> d = make_pool_digits(5)
>>> len(d.keys), d.images.shape, d.keys[0]
(5, (5, 8, 8), 'pool-digit-0000')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from slicewise.demo import digits as dg
from slicewise.demo import scenes as sc

POOL_DATASETS = ("digits-pool", "shapes-pool")
DEFAULT_POOL_DIGITS = 1000
DEFAULT_POOL_SCENES = 500
EMBED_SIZE = 96
SPACE = "image"


def make_pool_digits(n: int, seed: int = 0) -> dg.Digits:
    """``n`` new scans of randomly chosen digits (labels unknown: ``labels`` are -1)."""
    from sklearn.datasets import load_digits

    raw = load_digits()
    rng = np.random.default_rng([seed, 0x9001])
    src = rng.integers(0, len(raw.target), n)
    scanner = rng.choice(list(dg.SCANNERS), size=n, p=dg._SCANNER_P)
    shifts = rng.integers(-1, 2, size=(n, 2))
    orig = np.stack([np.roll(raw.images[j], tuple(s), axis=(0, 1)) for j, s in zip(src, shifts, strict=True)]) \
        if n else np.zeros((0, 8, 8))
    contrast, sigma = (np.array([dg.SCANNERS[str(s)][k] for s in scanner])[:, None, None] for k in (0, 1))
    images = np.clip(orig * contrast + rng.normal(0, 1, orig.shape) * sigma, 0, 16) if n else orig
    density, width, slant = orig.mean(axis=(1, 2)) / 16, dg._stroke_width(orig), dg._slant(orig)
    metadata = [{"scanner": str(scanner[i]), "ink_density": round(float(density[i]), 4),
                 "stroke_width": round(float(width[i]), 3), "slant": round(float(slant[i]), 3)} for i in range(n)]
    unknown = np.full(n, -1)
    return dg.Digits([f"pool-digit-{i:04d}" for i in range(n)], images.reshape(-1, 8, 8), unknown,
                     raw.target[src].astype(int), ["none"] * n, metadata)


def build_pool(ws: Any, media: Path, n_digits: int, n_scenes: int, seed: int, relative: Any, say: Any) -> None:
    """Add the two pool datasets (images written under ``media``)."""
    say(f"unlabeled pool: {n_digits} digits and {n_scenes} scenes")
    d = make_pool_digits(n_digits, seed)
    folder = media / "digits-pool"
    folder.mkdir(parents=True, exist_ok=True)
    for k, img in zip(d.keys, d.images, strict=True):
        dg.write_png(img, folder / f"{k}.png")
    ws.create_dataset("digits-pool", "more scans of handwritten digits, not labelled yet", exist_ok=True)
    ws.add_data_rows("digits-pool", [
        {"global_key": k, "row_data": relative(folder / f"{k}.png", ws), "width": 8 * dg.SCALE,
         "height": 8 * dg.SCALE, "split": "none", "metadata": md} for k, md in zip(d.keys, d.metadata, strict=True)])
    folder = media / "shapes-pool"
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n_scenes):
        s = sc.render_scene(100_000 + i, seed)
        key = f"pool-scene-{i:04d}"
        s.image.save(folder / f"{key}.jpg", quality=90)
        rows.append({"global_key": key, "row_data": relative(folder / f"{key}.jpg", ws), "width": sc.WIDTH,
                     "height": sc.HEIGHT, "split": "none", "metadata": dict(s.metadata)})
    ws.create_dataset("shapes-pool", "more scenes from the same cameras, not labelled yet", exist_ok=True)
    ws.add_data_rows("shapes-pool", rows)


def embed_images(ws: Any, base: Path, say: Any) -> str:
    """Embed every image row not yet in the space (resumes an interrupted build); returns the job state."""
    from slicewise.embeddings import jobs, spaces

    have = {s.name: s.count for s in spaces(ws)}
    if have.get(SPACE) == ws.counts()["data_rows"]:
        return "done"
    say(f"embedding the images (EfficientNet-Lite0 at {EMBED_SIZE} px) into space {SPACE!r}")
    st = jobs.embed(ws, SPACE, "image", size=EMBED_SIZE, batch=128, base=base)
    return st.state
