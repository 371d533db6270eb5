"""The slice search behind :mod:`slicewise.slices.suggest`: a SliceLine-style lattice search over
conjunctions of predicates, vectorised with NumPy over per-row error counts.

**The error of a set of rows** is a ratio of sums over its rows, ``E / N``: for ``1 - F1`` each row gives
``e = fp + fn`` and ``n = 2 tp + fp + fn``; for ``1 - recall`` ``e = fn, n = tp + fn``; for
``1 - precision`` ``e = fp, n = tp + fp``. So the error of a slice is the micro-averaged metric of its
rows, as the rest of slicewise computes it.

**Its noise** is that of a ratio estimator over rows (a row's objects are not independent, so rows are
the units): ``Var(E/N) ~= sum_i (e_i - R n_i)^2 / N^2 * m / (m - 1)`` for ``m`` rows and ``R = E / N``
(the linearised, row-clustered variance). :func:`ratio_interval` gives the normal interval from it.

**A slice is tested** against the rest of the run (its complement): one-sided z test of
``R_slice > R_rest`` with the variances above. Every slice the search evaluates (support >= the minimum)
is one hypothesis, and the Benjamini-Hochberg procedure keeps the false discovery rate at ``alpha``
over all of them. A conjunction must also be **worse than each of its sub-slices** (its parents) on its
own: it is tested against the parent's other rows (``R_child > R_parent \\ child``), again with
Benjamini-Hochberg over those tests; otherwise ``night and camera = A`` would be proposed beside
``night`` merely because it inherits night's errors.

**The search** (Sagadeeva & Boehm, "SliceLine", SIGMOD 2021): level 1 evaluates every predicate, level
``k`` extends each level ``k - 1`` slice with a predicate of a later field (each conjunction is generated
once). A slice's score is its excess error count ``E - R_run N = N (R_slice - R_run)`` (effect size x
support). Its descendants' scores are bounded above by the sum of its rows' positive excess,
``sum_i max(e_i - R_run n_i, 0)``, so a slice whose bound is below the ``top``-th best score found so far,
or whose support is below the minimum, is not extended. Children are counted with ``np.bincount`` over
the parent's rows (one pass per field and statistic).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

#: per-row statistics summed for every slice: rows, E, N, sum e^2, sum n^2, sum e n, positive excess
_STATS = 7


@dataclass(frozen=True)
class Field:
    """One group of mutually exclusive predicates: ``codes[i]`` is the predicate row ``i`` satisfies
    (-1: none); predicates of one field are never combined with each other."""

    name: str
    codes: np.ndarray  # int32, one per row
    labels: tuple[str, ...]  # predicate k's label


@dataclass(frozen=True)
class Found:
    """A slice the search proposes: its predicates as (field index, predicate index) pairs."""

    preds: tuple[tuple[int, int], ...]
    rows: int
    errors: float  # E
    units: float  # N
    error: float  # E / N
    error_rest: float
    effect: float  # error - the run's error
    score: float  # N * effect
    z: float
    p_value: float
    q_value: float  # Benjamini-Hochberg adjusted
    ci: tuple[float, float]  # normal interval of the slice's error


@dataclass
class SearchResult:
    found: list[Found]
    error: float  # the run's
    rows: int
    evaluated: int  # slices evaluated (the hypotheses)
    expanded: int  # slices extended to the next level
    pruned: int  # slices with enough support that the score bound kept from being extended
    levels: list[int] = field(default_factory=list)  # slices evaluated per level


def ratio_interval(e: np.ndarray, n: np.ndarray, z: float = 1.959963984540054) -> tuple[float | None, float, float]:
    """(ratio E/N, low, high): the normal interval of a ratio of per-row sums with the row-clustered
    variance (see the module docstring); (None, nan, nan) when N is 0.

    >>> r, lo, hi = ratio_interval(np.array([1, 0, 1, 0]), np.array([1, 1, 1, 1]))
    >>> r, round(lo, 3), round(hi, 3)
    (0.5, -0.066, 1.066)
    """
    e = np.asarray(e, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    big_n = float(n.sum())
    if big_n <= 0:
        return None, math.nan, math.nan
    r = float(e.sum()) / big_n
    se = math.sqrt(_var(float((e * e).sum()), float((n * n).sum()), float((e * n).sum()), r, big_n, len(e)))
    return r, r - z * se, r + z * se


def _var(see: float, snn: float, sen: float, r: float, big_n: float, m: float) -> float:
    if m < 2 or big_n <= 0:
        return 0.0
    q = max(see - 2 * r * sen + r * r * snn, 0.0)
    return q / (big_n * big_n) * m / (m - 1)


def _var_v(see: np.ndarray, snn: np.ndarray, sen: np.ndarray, r: np.ndarray, big_n: np.ndarray,
           m: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.maximum(see - 2 * r * sen + r * r * snn, 0.0)
        v = q / (big_n * big_n) * m / (m - 1)
    return np.where((m >= 2) & (big_n > 0), v, 0.0)


def _sf(z: np.ndarray) -> np.ndarray:
    """One-sided normal p-values P(Z > z)."""
    from math import erfc, sqrt

    return np.array([0.5 * erfc(v / sqrt(2)) if np.isfinite(v) else (0.0 if v > 0 else 1.0) for v in z.tolist()])


def bh_adjust(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values): reject at FDR ``alpha`` where ``q <= alpha``.

    >>> bh_adjust(np.array([0.01, 0.04, 0.03, 0.5])).round(3).tolist()
    [0.04, 0.053, 0.053, 0.5]
    """
    p = np.asarray(p, dtype=np.float64)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(q, 1.0)
    return out


def _z(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(z of R_a > R_b, R_a, R_b) for stat rows ``a``, ``b`` (shape (k, _STATS))."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ra = a[:, 1] / a[:, 2]
        rb = b[:, 1] / b[:, 2]
        va = _var_v(a[:, 3], a[:, 4], a[:, 5], ra, a[:, 2], a[:, 0])
        vb = _var_v(b[:, 3], b[:, 4], b[:, 5], rb, b[:, 2], b[:, 0])
        se = np.sqrt(va + vb)
        diff = ra - rb
        z = np.where(se > 0, diff / se, np.where(diff > 0, np.inf, np.where(diff < 0, -np.inf, 0.0)))
    z = np.where(np.isfinite(ra) & np.isfinite(rb), z, -np.inf)
    return z, ra, rb


def search(fields: list[Field], e: np.ndarray, n: np.ndarray, *, min_support: int, max_predicates: int = 3,
           alpha: float = 0.05, top: int = 20, max_parents: int = 100) -> SearchResult:
    """The slices of rows whose error ``sum e / sum n`` is significantly above the whole's (see the module
    docstring), best score first, at most ``top``. ``max_parents`` caps how many slices of one level are
    extended (those with the highest score bounds), so a search without any strong slice stays bounded."""
    e = np.asarray(e, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    m = len(e)
    total_n = float(n.sum())
    r_run = float(e.sum()) / total_n if total_n > 0 else 0.0
    excess = e - r_run * n
    w = np.column_stack([np.ones(m), e, n, e * e, n * n, e * n, np.maximum(excess, 0.0)])
    totals = w.sum(axis=0)
    min_support = max(int(min_support), 1)

    keys: list[tuple[tuple[int, int], ...]] = []
    stats: list[np.ndarray] = []
    index: dict[tuple[tuple[int, int], ...], int] = {}
    best: list[float] = []  # scores of the slices found so far (for the pruning threshold)
    levels: list[int] = []
    expanded = pruned = 0

    def add(key: tuple[tuple[int, int], ...], s: np.ndarray) -> None:
        index[key] = len(keys)
        keys.append(key)
        stats.append(s)

    # level 1: one bincount per field and statistic over every row (missing values go to an extra bin)
    cols = [np.ascontiguousarray(w[:, j]) for j in range(_STATS)]
    # rows take few distinct (e, n) pairs (a classification: right or wrong): then one integer bincount per
    # field (by value and pair) gives every statistic, as counts x the pairs' statistics
    combo, per_combo = _combos(e, n, w)

    kc = per_combo.shape[0]
    full = [np.where(f.codes >= 0, f.codes, len(f.labels)).astype(np.intp) for f in fields]
    order = [np.argsort(c.astype(np.int16 if len(f.labels) < 32000 else np.int64), kind="stable")
             for c, f in zip(full, fields, strict=True)]  # rows by value: a predicate's rows are a run of it
    starts = [np.searchsorted(c[o], np.arange(len(f.labels) + 2)) for c, o, f in zip(full, order, fields, strict=True)]
    # in pair mode, each field's code times the pairs plus the row's pair: one bincount gives every statistic
    fc = [c * kc + combo for c in full] if combo is not None else []

    def sums_by(codes: np.ndarray, k: int, pick: np.ndarray | None = None, gi: int | None = None) -> np.ndarray:
        """(k, _STATS) sums of the rows (``pick`` of them) by ``codes`` (values 0..k-1); with ``gi``, the
        codes are field ``gi``'s (taken from its precomputed pair codes)."""
        if combo is not None:
            if gi is not None:
                cc = fc[gi] if pick is None else fc[gi][pick]
            else:
                cc = codes * kc + (combo if pick is None else combo[pick])
            cnt = np.bincount(cc, minlength=k * kc).reshape(k, kc)
            return cnt @ per_combo  # type: ignore[no-any-return]
        ws_ = cols if pick is None else [c[pick] for c in cols]
        return np.column_stack([np.bincount(codes, minlength=k).astype(np.float64)] +
                               [np.bincount(codes, weights=ws_[j], minlength=k) for j in range(1, _STATS)])

    level: list[tuple[tuple[tuple[int, int], ...], float]] = []
    for fi, f in enumerate(fields):
        k = len(f.labels)
        sums = sums_by(full[fi], k + 1, gi=fi)[:k]
        for v in np.flatnonzero(sums[:, 0] >= min_support):
            key = ((fi, int(v)),)
            add(key, sums[v])
            level.append((key, float(sums[v, 1] - r_run * sums[v, 2])))
    levels.append(len(level))
    best += [sc for _, sc in level if sc > 0]
    frontier = [key for key, _ in level]

    def children(key: tuple[tuple[int, int], ...], gi: int, sums: np.ndarray, depth: int,
                 nxt: list[tuple[tuple[int, int], ...]]) -> int:
        """Record the children of ``key`` by field ``gi`` from their sums (one line per value)."""
        hit = np.flatnonzero(sums[:, 0] >= min_support)
        for v in hit:
            child = (*key, (gi, int(v)))
            add(child, sums[v])
            sc = float(sums[v, 1] - r_run * sums[v, 2])
            if sc > 0:
                best.append(sc)
            if depth < max_predicates:
                nxt.append(child)
        return len(hit)

    for depth in range(2, max_predicates + 1):
        threshold = sorted(best, reverse=True)[top - 1] if len(best) >= top else 0.0
        # the parents worth extending: their bound on any descendant's score beats the threshold
        bounds = sorted(((stats[index[key]][6], key) for key in frontier), key=lambda b: -b[0])
        keep = [key for bound, key in bounds if bound > threshold][:max_parents]
        pruned += len(bounds) - len(keep)
        expanded += len(keep)
        nxt: list[tuple[tuple[int, int], ...]] = []
        count = 0
        if depth == 2:  # every pair of fields at once: one bincount of the pair's joint code over all rows
            wanted: dict[int, set[int]] = {}
            for parent in keep:
                wanted.setdefault(parent[0][0], set()).add(int(parent[0][1]))
            for fi in sorted(wanted):
                kf = len(fields[fi].labels) + 1
                for gi in range(fi + 1, len(fields)):
                    kg = len(fields[gi].labels) + 1
                    if combo is not None:  # (the joint code with the pair in one pass)
                        cnt = np.bincount(full[fi] * (kg * kc) + fc[gi], minlength=kf * kg * kc)
                        sums = (cnt.reshape(kf * kg, kc) @ per_combo).reshape(kf, kg, _STATS)[:-1, :-1]
                    else:
                        sums = sums_by(full[fi] * kg + full[gi], kf * kg).reshape(kf, kg, _STATS)[:-1, :-1]
                    if not (sums[:, :, 0] >= min_support).any():
                        continue
                    for val in sorted(wanted[fi]):
                        count += children(((fi, val),), gi, sums[val], depth, nxt)
        else:  # the parents' own rows, one bincount per later field
            for parent in keep:
                f0, v0 = parent[0]
                rows = order[f0][starts[f0][v0]:starts[f0][v0 + 1]]
                for fj, vj in parent[1:]:
                    rows = rows[full[fj][rows] == vj]
                for gi in range(parent[-1][0] + 1, len(fields)):
                    kk = len(fields[gi].labels)
                    sums = sums_by(full[gi][rows] if combo is None else rows, kk + 1, rows, gi=gi)[:kk]
                    if not (sums[:, 0] >= min_support).any():
                        continue
                    count += children(parent, gi, sums, depth, nxt)
        levels.append(count)
        frontier = nxt
        if not frontier:
            break

    if not keys:
        return SearchResult([], r_run, m, 0, expanded, pruned, levels)
    s = np.vstack(stats)
    rest = totals[None, :] - s
    z, r_s, r_rest = _z(s, rest)
    p = _sf(z)
    q = bh_adjust(p)
    score = s[:, 1] - r_run * s[:, 2]
    cand = np.flatnonzero((q <= alpha) & (score > 0))
    # conjunctions: worse than each available parent's other rows (BH over those tests too)
    multi = [int(i) for i in cand if len(keys[int(i)]) > 1]
    explained: set[int] = set()
    if multi:
        worst_p = []
        for i in multi:
            ps = []
            for j in range(len(keys[i])):
                parent = keys[i][:j] + keys[i][j + 1:]
                pi = index.get(parent)
                if pi is None:
                    continue
                zz, _, _ = _z(s[i][None, :], (s[pi] - s[i])[None, :])
                ps.append(float(_sf(zz)[0]))
            worst_p.append(max(ps) if ps else 0.0)
        qq = bh_adjust(np.array(worst_p))
        explained = {int(i) for i, v in zip(multi, qq.tolist(), strict=True) if v > alpha}
    chosen = [int(i) for i in cand if int(i) not in explained]
    chosen.sort(key=lambda i: (-score[i], len(keys[i]), keys[i]))
    found: list[Found] = []
    seen: set[tuple[int, float, float]] = set()
    for i in chosen:
        sig = (int(s[i, 0]), float(s[i, 1]), float(s[i, 2]))  # same rows as a simpler slice kept already
        if sig in seen:
            continue
        seen.add(sig)
        se = math.sqrt(_var(s[i, 3], s[i, 4], s[i, 5], r_s[i], s[i, 2], s[i, 0]))
        found.append(Found(preds=keys[i], rows=int(s[i, 0]), errors=float(s[i, 1]), units=float(s[i, 2]),
                           error=float(r_s[i]), error_rest=float(r_rest[i]), effect=float(r_s[i] - r_run),
                           score=float(score[i]), z=float(z[i]), p_value=float(p[i]), q_value=float(q[i]),
                           ci=(float(r_s[i] - 1.959963984540054 * se), float(r_s[i] + 1.959963984540054 * se))))
        if len(found) >= top:
            break
    return SearchResult(found, r_run, m, len(keys), expanded, pruned, levels)


def _combos(e: np.ndarray, n: np.ndarray, w: np.ndarray, most: int = 256) -> tuple[np.ndarray | None, np.ndarray]:
    """(each row's index among the distinct (e, n) pairs, (pairs, _STATS) statistics of each pair), or
    (None, empty) when e and n are not small whole numbers taking at most ``most`` pairs."""
    if not len(e) or e.min() < 0 or n.min() < 0 or e.max() > 1e6 or n.max() > 1e6 \
            or not (np.array_equal(e, np.round(e)) and np.array_equal(n, np.round(n))):
        return None, np.empty((0, _STATS))
    key = e.astype(np.int64) * (int(n.max()) + 1) + n.astype(np.int64)
    uniq, first, inv = np.unique(key, return_index=True, return_inverse=True)
    if len(uniq) > most:
        return None, np.empty((0, _STATS))
    return inv.astype(np.intp), w[first]


def _rows_of(fields: list[Field], key: tuple[tuple[int, int], ...]) -> np.ndarray:
    """The row indices of a conjunction."""
    fi, v = key[0]
    rows = np.flatnonzero(fields[fi].codes == v)
    for fi, v in key[1:]:
        rows = rows[fields[fi].codes[rows] == v]
    return rows


def mask_of(fields: list[Field], key: tuple[tuple[int, int], ...], m: int) -> np.ndarray:
    """A boolean mask of the rows of a conjunction (``m`` rows)."""
    out = np.zeros(m, dtype=bool)
    out[_rows_of(fields, key)] = True
    return out
