"""Nearest-neighbour search over one space's vectors: exact (a NumPy matrix-vector product: inner
product on unit vectors for cosine) below :data:`ANN_MIN_ROWS`, a FAISS IVF index above it
(``IndexIVFFlat``, about 2 sqrt(n) lists, k-means trained on a sample), built in the background.

While the IVF index builds, searches are exact. When rows are added to a space, the next index takes
the finished IVF index of the previous one and adds the new vectors to it (they go to the nearest
existing list; changed vectors of existing rows make it rebuild, in the background again).

Filtered search: a filter that keeps few rows (under :data:`SUBSET_SHARE` of the space) is searched
exactly over just those rows; a broader one searches the IVF index for more neighbours than asked
and drops those outside the filter, falling back to exact when too few remain.

Exact search over at least :data:`QUANT_MIN_ROWS` rows scans int8 codes of the vectors first and scores
in float32 only the rows those codes cannot rule out (:mod:`slicewise.embeddings.scan`: the result is
still the exact top k).

Ties: exact results are ordered by decreasing score, then increasing data row id.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

ANN_MIN_ROWS = 200_000  # below this an exact search is fast enough (see benchmarks/bench_embeddings.py)
SUBSET_SHARE = 0.05
TRAIN_PER_LIST = 40  # k-means training points per list
NPROBE_SHARE = 1 / 20  # lists visited per search (at least MIN_NPROBE)
MIN_NPROBE = 24
QUANT_MIN_ROWS = 50_000  # below this a float32 scan is as fast as the int8 one


def normalise(vecs: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), float32, contiguous."""
    v = np.ascontiguousarray(vecs, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return np.ascontiguousarray(v / np.where(norms == 0, 1, norms), dtype=np.float32)


def top_k(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best (ids, scores) by decreasing score, ties by increasing id (ids sorted ascending)."""
    k = min(k, len(scores))
    if k <= 0:
        return ids[:0], scores[:0]
    if k < len(scores):
        part = np.argpartition(-scores, k - 1)[:k]
        kth = scores[part].min()
        part = np.flatnonzero(scores >= kth)  # every row tied with the k-th, so ties resolve by id
    else:
        part = np.arange(len(scores))
    order = np.lexsort((ids[part], -scores[part]))[:k]
    sel = part[order]
    return ids[sel], scores[sel]


@dataclass
class SpaceIndex:
    """The search structure of one space's vectors at one version."""

    ids: np.ndarray  # int64, ascending
    vecs: np.ndarray  # float32 (n, dim): unit rows for cosine, as given for ip
    metric: str
    ann: Any = None  # a faiss IVF index over vecs (labels = positions), once built
    building: bool = False
    codes: tuple[np.ndarray, np.ndarray] | None = None  # int8 codes and steps (scan.quantize), once made
    quantizing: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def n(self) -> int:
        return len(self.ids)

    def positions(self, ids: np.ndarray) -> np.ndarray:
        """Positions of the given ids that are in the space."""
        ids = np.asarray(ids, np.int64)
        pos = np.searchsorted(self.ids, ids)
        pos = np.minimum(pos, max(self.n - 1, 0))
        return pos[self.ids[pos] == ids] if self.n else pos[:0]

    def query_vector(self, anchors: np.ndarray) -> np.ndarray:
        """The one vector searched for: the mean of the anchors' vectors (unit length for cosine)."""
        q = self.vecs[self.positions(anchors)].mean(axis=0, keepdims=True)
        return normalise(q)[0] if self.metric == "cosine" else q[0].astype(np.float32)

    def scores(self, q: np.ndarray, pos: np.ndarray | None = None) -> np.ndarray:
        """Exact similarity of every vector (or of those at ``pos``) to ``q``."""
        from slicewise.embeddings.scan import row_scores

        return row_scores(self.vecs, np.ascontiguousarray(q, np.float32),
                            np.empty(0, np.int64) if pos is None else np.asarray(pos, np.int64))

    def search(self, q: np.ndarray, k: int, allowed: np.ndarray | None = None, *, exact: bool = False
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (ids, scores) for the query vector, among the rows at positions ``allowed`` (sorted) when given."""
        n_allowed = self.n if allowed is None else len(allowed)
        if k <= 0 or n_allowed == 0:
            return self.ids[:0], np.zeros(0, np.float32)
        ann = None if exact else self.ann
        if ann is not None and (allowed is None or n_allowed >= SUBSET_SHARE * self.n):
            got = self._ann_search(ann, q, k, allowed, n_allowed)
            if got is not None:
                return got
        if n_allowed >= QUANT_MIN_ROWS:
            got = self._quantized_search(q, k, allowed)
            if got is not None:
                return got
        if allowed is None:
            return top_k(self.scores(q), self.ids, k)
        return top_k(self.scores(q, allowed), self.ids[allowed], k)

    def quantized(self) -> tuple[np.ndarray, np.ndarray]:
        """The int8 codes of the vectors and their steps (made once, on first use)."""
        from slicewise.embeddings.scan import quantize

        with self._lock:
            try:
                if self.codes is None:
                    self.codes = quantize(self.vecs)
            finally:
                self.quantizing = False
            return self.codes

    def _quantized_search(self, q: np.ndarray, k: int, allowed: np.ndarray | None
                          ) -> tuple[np.ndarray, np.ndarray] | None:
        from slicewise.embeddings.scan import candidates

        if self.codes is None and self.quantizing:
            return None  # the background thread is making them: do not wait
        codes, step = self.quantized()
        keep = candidates(codes, step, q, k, allowed)
        if keep is None:
            return None
        pos = keep if allowed is None else allowed[keep]
        return top_k(self.scores(q, pos), self.ids[pos], k)

    def _ann_search(self, ann: Any, q: np.ndarray, k: int, allowed: np.ndarray | None, n_allowed: int
                    ) -> tuple[np.ndarray, np.ndarray] | None:
        import faiss

        want = k if allowed is None else min(self.n, int(np.ceil(k * self.n / n_allowed * 2)) + k)
        nprobe = min(ann.nlist, max(MIN_NPROBE, int(ann.nlist * NPROBE_SHARE)))
        params = faiss.SearchParametersIVF(nprobe=nprobe)  # type: ignore[attr-defined,call-arg]
        d, lab = ann.search(q.reshape(1, -1).astype(np.float32), want, params=params)
        lab, d = lab[0], d[0]
        keep = lab >= 0
        lab, d = lab[keep], d[keep]
        if allowed is not None:
            ok = np.isin(lab, allowed, assume_unique=False)
            lab, d = lab[ok], d[ok]
            if len(lab) < min(k, n_allowed):
                return None
        ids = self.ids[lab]
        order = np.lexsort((ids, -d))[:k]
        return ids[order], d[order].astype(np.float32)

    # -- the IVF index -------------------------------------------------------------------------
    def build_ann(self, previous: SpaceIndex | None = None) -> None:
        """Build (or extend ``previous``'s) IVF index; meant to run in a background thread."""
        import faiss

        with self._lock:
            if self.ann is not None:
                return
            self.building = True
        try:
            self.quantized()  # the exact scan's codes, before the (slower) IVF index
            index = None
            if previous is not None and previous.ann is not None and previous.n <= self.n:
                old = previous.ids
                if np.array_equal(self.ids[: previous.n], old) and np.array_equal(self.vecs[: previous.n], previous.vecs):
                    index = faiss.clone_index(previous.ann)  # the new rows have larger ids: append them
                    if self.n > previous.n:
                        index.add(self.vecs[previous.n:])
            if index is None:
                index = new_ivf(self.vecs)
            self.ann = index
        finally:
            self.building = False

    def start_ann(self, previous: SpaceIndex | None = None) -> threading.Thread:
        t = threading.Thread(target=self.build_ann, args=(previous,), name="slicewise-ivf", daemon=True)
        t.start()
        return t

    def start_background(self, previous: SpaceIndex | None = None) -> threading.Thread | None:
        """Make what searches of this size use, in a background thread: the int8 codes (at least
        :data:`QUANT_MIN_ROWS` rows), then the IVF index (at least :data:`ANN_MIN_ROWS`)."""
        if self.n >= ANN_MIN_ROWS:
            self.quantizing = True
            return self.start_ann(previous)
        if self.n >= QUANT_MIN_ROWS:
            self.quantizing = True
            t = threading.Thread(target=self.quantized, name="slicewise-int8", daemon=True)
            t.start()
            return t
        return None


def new_ivf(vecs: np.ndarray, seed: int = 0) -> Any:
    """An inner-product ``IndexIVFFlat`` over ``vecs`` (labels = row positions): about 2 sqrt(n) lists
    (fewer when there are not :data:`TRAIN_PER_LIST` points a list), 10 k-means iterations on a sample."""
    import faiss

    n, dim = vecs.shape
    nlist = int(max(1, min(2 * np.sqrt(n), n // TRAIN_PER_LIST)))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(seed)
    sample = vecs[np.sort(rng.choice(n, min(n, nlist * TRAIN_PER_LIST), replace=False))]
    index.cp.seed = seed
    index.cp.niter = 10
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    for start in range(0, n, 100_000):
        index.add(np.ascontiguousarray(vecs[start:start + 100_000], dtype=np.float32))
    return index
