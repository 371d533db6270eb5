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
def _counts(v: np.ndarray, lo: float, hi: float, nb: int, tol: float) -> np.ndarray:
    out = np.zeros(nb, np.int64)
    width = hi - lo
    for x in v:
        if np.isnan(x):  # NULL
            continue
        if hi <= lo:
            out[0] += 1
        elif not np.isfinite(x):
            continue
        elif x >= hi:
            out[nb - 1] += 1
        elif x <= lo:
            out[0] += 1
        else:
            out[min(int(np.floor((x - lo) / width * nb + tol)), nb - 1)] += 1
    return out


def counts(values: pa.ChunkedArray | pa.Array, lo: float, hi: float, nb: int) -> list[int]:
    """The number of values in each of the ``nb`` bins over [lo, hi] (NULLs in none)."""
    v = pc.fill_null(pc.cast(values, pa.float64()), np.nan).to_numpy()
    return [int(x) for x in _counts(np.ascontiguousarray(v, np.float64), float(lo), float(hi), int(nb), EDGE_TOLERANCE)]
