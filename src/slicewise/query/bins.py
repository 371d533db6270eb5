"""Histogram counts of a column's values in one compiled pass, with the bins of the row cache's SQL
(:func:`slicewise.query.rowcache._bin_expr`) to the last bit: the same operations on doubles, in the same
order. The facets count the metrics of a metrics variant this way (a new (c, t) then writes no bin columns).
"""

from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from slicewise.query.rowcache import EDGE_TOLERANCE


@numba.njit(cache=True)
def _index(x: float, lo: float, hi: float, nb: int, tol: float) -> int:
    """The bin of one value, -1 for none (NULL as NaN, or not finite)."""
    if np.isnan(x):  # NULL
        return -1
    if hi <= lo:
        return 0
    if not np.isfinite(x):
        return -1
    if x >= hi:
        return nb - 1
    if x <= lo:
        return 0
    return min(int(np.floor((x - lo) / (hi - lo) * nb + tol)), nb - 1)


@numba.njit(cache=True)
def _counts(v: np.ndarray, lo: float, hi: float, nb: int, tol: float) -> np.ndarray:
    out = np.zeros(nb, np.int64)
    for x in v:
        b = _index(x, lo, hi, nb, tol)
        if b >= 0:
            out[b] += 1
    return out


@numba.njit(cache=True)
def _indexes(v: np.ndarray, lo: float, hi: float, nb: int, tol: float) -> np.ndarray:
    out = np.empty(len(v), np.uint16)
    for i in range(len(v)):
        out[i] = _index(v[i], lo, hi, nb, tol) + 1
    return out


def counts(values: pa.ChunkedArray | pa.Array, lo: float, hi: float, nb: int) -> list[int]:
    """The number of values in each of the ``nb`` bins over [lo, hi] (NULLs in none)."""
    v = pc.fill_null(pc.cast(values, pa.float64()), np.nan).to_numpy()
    return [int(x) for x in _counts(np.ascontiguousarray(v, np.float64), float(lo), float(hi), int(nb), EDGE_TOLERANCE)]


def indexes(values: np.ndarray, lo: float, hi: float, nb: int) -> np.ndarray:
    """Each value's bin plus one (0: in none), as :func:`counts` bins them (``values`` as doubles, NULL as NaN)."""
    return _indexes(np.ascontiguousarray(values, np.float64), float(lo), float(hi), int(nb), EDGE_TOLERANCE)
