"""The facets' columns of a row cache table, in this process's memory, counted in one compiled pass.

Counting the facets of a filter means, per matching row, one increment per facet (string codes, dataset,
histogram bins, the features labelled and predicted). Fetching those columns for the matching rows from
DuckDB cost about 35 ms a column for 6M rows (1.5 s at 10M rows for the twenty-odd columns of a run with
metrics). So the columns are fetched once per table and kept as small integers, and a filter costs only the
ids of its rows and one pass over them (:func:`tally`).

Two parts, each fetched once and again after its table is patched (``RowCache.version``): the base's fields
(codes, dataset, the base's bins, the feature lists), shared by every metrics variant of a base (a variant's
lines are its base's, in the same order), and a variant's metric bins (those of :mod:`slicewise.query.bins`,
the same double operations), fetched when facets are first asked at its (c, t). A value index is stored plus
one (0: no value).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numba
import numpy as np
import pyarrow as pa

from slicewise.query import bins as binning

if TYPE_CHECKING:
    from slicewise.query.rowcache import RowCache
    from slicewise.workspace import Workspace

#: tables whose columns a process keeps (the base's and a variant's of the view shown, and one before)
KEEP = 4

#: a field: (SQL of a value index >= 0 or NULL, name, number of value indexes)
Field = tuple[str, str, int]


@dataclass(frozen=True)
class Part:
    """Some fields of a table's lines in its order: ``small[f, i]`` is line i's value index of field f plus one
    (0: none); ``lists`` the feature ids of each list column (offsets and values)."""

    small: np.ndarray  # (fields, lines) in the smallest unsigned integers that hold the largest value index plus one
    sizes: np.ndarray  # each field's number of value indexes plus one
    lists: tuple[tuple[np.ndarray, np.ndarray], ...] = ()


@dataclass(frozen=True)
class Lines:
    """Where each data row is among a table's lines."""

    ids: np.ndarray  # the data row ids, sorted
    order: np.ndarray | None  # the line of each (None: the table is in id order, as built)
    #: the line of each id from ids[0] on (-1: none), when the ids span at most a few times their number
    #: (data row ids are mostly consecutive): a lookup instead of a binary search per id
    dense: np.ndarray | None = None

    @classmethod
    def of(cls, ids: np.ndarray) -> Lines:
        """The lines of a table whose ids, in its order, are ``ids``."""
        ids = np.asarray(ids, np.int64)
        order = None
        if len(ids) > 1 and not np.all(ids[1:] > ids[:-1]):  # (patched: its fresh lines were appended)
            order = np.argsort(ids, kind="stable")
            ids = ids[order]
        dense = None
        if len(ids) and int(ids[-1]) - int(ids[0]) + 1 <= 4 * len(ids) + 1024:
            dense = np.full(int(ids[-1]) - int(ids[0]) + 1, -1, np.int32 if len(ids) < 2**31 else np.int64)
            dense[ids - ids[0]] = np.arange(len(ids)) if order is None else order
        return cls(ids, order, dense)

    def positions(self, ids: np.ndarray) -> np.ndarray:
        """The lines of ``ids`` (each one of the table's)."""
        ids = np.asarray(ids, np.int64)
        if self.dense is not None:
            return self.dense[ids - self.ids[0]]
        from slicewise.metrics.fast import positions

        pos = positions(self.ids, ids)
        return pos if self.order is None else self.order[pos]


def base_part(ws: Workspace, rc: RowCache, fields: list[Field], lists: list[str]) -> tuple[Lines, Part]:
    """The lines and the base's fields of ``rc``: those of its base table for a metrics variant (the same for
    all of a base's variants), else of its own table."""
    table = rc.base or rc.table
    key = (table, rc.version, tuple(fields), tuple(lists))
    return ws.state.lru("facet-columns", key, lambda: _fetch(ws, table, rc, fields, lists), KEEP)


def metric_fields(rc: RowCache) -> list[Field]:
    """A metrics variant's binned metrics as facet fields."""
    return [(f'"{n}"', n, nb) for n, (_, _, _, nb) in rc.bins.items() if n in rc.valued]


def metric_part(ws: Workspace, rc: RowCache, lines: Lines) -> Part:
    """A metrics variant's binned metrics (:func:`metric_fields`), on the lines of its :func:`base_part`."""
    key = (rc.table, rc.version, "metrics")
    return ws.state.lru("facet-columns", key, lambda: _metric_part(ws, rc, lines), KEEP)


def _metric_part(ws: Workspace, rc: RowCache, lines: Lines) -> Part:
    fields = metric_fields(rc)
    if rc.columns is not None:  # (in memory: no query)
        t = rc.columns
        ids = t.column("m_id").to_numpy()
    else:
        id_col = "m_id" if rc.narrow else "id"
        t = ws.state.cursor().execute(f"SELECT {id_col} AS id, {', '.join(sql for sql, _, _ in fields)} "
                                      f"FROM {rc.narrow or rc.table}").arrow()
        if not isinstance(t, pa.Table):  # duckdb >= 1.4 may return a RecordBatchReader
            t = t.read_all()
        ids = t.column("id").to_numpy()
    # (a variant's lines are its base's, in the same order: then no lookup)
    at = slice(None) if lines.order is None and np.array_equal(ids, lines.ids) else lines.positions(ids)
    small = np.zeros((len(fields), len(lines.ids)), _dtype(nb for _, _, nb in fields))
    for i, (_, name, _) in enumerate(fields):
        _, lo, hi, nb = rc.bins[name]
        v = t.column(name).to_numpy(zero_copy_only=False)  # (NULL: NaN)
        small[i, at] = binning.indexes(v.astype(np.float64, copy=False), lo, hi, nb)
    return Part(small, np.array([nb + 1 for _, _, nb in fields], np.int64))


def _dtype(sizes: Iterable[int]) -> type[np.unsignedinteger[Any]]:
    """The smallest unsigned integers that hold value indexes plus one of fields of these sizes."""
    top = max(sizes, default=0) + 1
    return np.uint8 if top < 2**8 else np.uint16 if top < 2**16 else np.uint32


_SQL_TYPE = {np.uint8: "UTINYINT", np.uint16: "USMALLINT", np.uint32: "UINTEGER"}


def _fetch(ws: Workspace, table: str, rc: RowCache, fields: list[Field], lists: list[str]) -> tuple[Lines, Part]:
    dtype = _dtype(size for _, _, size in fields)  # (a string field of more values than 8 or 16 bits count: wider)
    sql = [f"coalesce({x} + 1, 0)::{_SQL_TYPE[dtype]}" for x, _, _ in fields]
    sel = ", ".join(["id"] + [f"{x} AS f{i}" for i, x in enumerate(sql)] + [f"{c} AS l{i}" for i, c in enumerate(lists)])
    t = ws.state.cursor().execute(f"SELECT {sel} FROM {table}").arrow()  # (in the table's order)
    if not isinstance(t, pa.Table):  # duckdb >= 1.4 may return a RecordBatchReader
        t = t.read_all()
    small = np.zeros((len(fields), t.num_rows), dtype)
    sizes = np.zeros(len(fields), np.int64)
    for i, (_, _, size) in enumerate(fields):
        small[i] = t.column(f"f{i}").to_numpy()
        t = t.drop_columns([f"f{i}"])  # (each column goes once copied: the fetch holds one at a time beside them)
        sizes[i] = size + 1
    out = []
    for i in range(len(lists)):
        col = t.column(f"l{i}").combine_chunks()
        out.append((col.offsets.to_numpy(), col.values.to_numpy()))  # (offsets index the values as they are)
    return Lines.of(t.column("id").to_numpy()), Part(small, sizes, tuple(out))


def tally(parts: list[Part], pos: np.ndarray | None, n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(per field of the parts in turn, its counts by value index plus one; per list column, its counts by
    feature id) over the lines ``pos`` of ``n`` (None: every line)."""
    pos = np.arange(n, dtype=np.int64) if pos is None else np.asarray(pos, np.int64)
    per_field: list[np.ndarray] = []
    per_list: list[np.ndarray] = []
    for p in parts:
        starts = np.r_[0, np.cumsum(p.sizes)].astype(np.int64)
        flat = _tally_small(p.small, pos, starts) if len(p.sizes) else np.zeros(0, np.int64)
        per_field += [flat[starts[i]:starts[i + 1]] for i in range(len(p.sizes))]
        for offsets, values in p.lists:
            m = int(values.max()) + 1 if len(values) else 0
            per_list.append(_tally_list(offsets, values, pos, m))
    return per_field, per_list


@numba.njit(cache=True, parallel=True)
def _tally_small(small: np.ndarray, pos: np.ndarray, starts: np.ndarray) -> np.ndarray:
    n_chunks = 8
    F = small.shape[0]
    part = np.zeros((n_chunks, starts[-1]), np.int64)
    for c in numba.prange(n_chunks):
        lo, hi = len(pos) * c // n_chunks, len(pos) * (c + 1) // n_chunks
        for f in range(F):
            row = small[f]
            s, size = starts[f], starts[f + 1] - starts[f]
            for j in range(lo, hi):
                v = row[pos[j]]
                if v < size:  # (a value the field's count does not know, e.g. a dataset made since: none)
                    part[c, s + v] += 1
    return part.sum(axis=0)


@numba.njit(cache=True, parallel=True)
def _tally_list(offsets: np.ndarray, values: np.ndarray, pos: np.ndarray, m: int) -> np.ndarray:
    n_chunks = 8
    part = np.zeros((n_chunks, m), np.int64)
    for c in numba.prange(n_chunks):
        for j in range(len(pos) * c // n_chunks, len(pos) * (c + 1) // n_chunks):
            i = pos[j]
            for v in range(offsets[i], offsets[i + 1]):
                part[c, values[v]] += 1
    return part.sum(axis=0)


def counts_of(tallied: np.ndarray) -> dict[int, int]:
    """{value index: rows} of a field's tally (value indexes with no row left out)."""
    return {int(k) - 1: int(tallied[k]) for k in np.flatnonzero(tallied) if k > 0}
