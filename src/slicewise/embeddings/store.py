"""Embedding spaces in the workspace: named sets of one vector per data row.

>>> import tempfile, os, numpy as np, slicewise
>>> from slicewise import embeddings
>>> ws = slicewise.open(os.path.join(tempfile.mkdtemp(), "ws.duckdb"))
>>> _ = ws.add_data_rows("d", [{"global_key": f"k{i}", "row_data": "x.jpg"} for i in range(3)])
>>> info = embeddings.add_vectors(ws, "clip", ["k0", "k1", "k2"], np.eye(3, 4))
>>> info.name, info.dim, info.count, info.metric
('clip', 4, 3, 'cosine')
>>> ids, vecs = embeddings.vectors(ws, "clip")
>>> ids.tolist(), vecs.shape, vecs.dtype
([1, 2, 3], (3, 4), dtype('float32'))

Vectors live in the workspace file (``embeddings.vector FLOAT[]``); reading a space loads it into
NumPy once and keeps it in the workspace's state until a write of the ``embeddings`` topic.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from slicewise.errors import ConflictError, LimitError, NotFoundError, Problem, ValidationError, did_you_mean

if TYPE_CHECKING:
    from slicewise.workspace import Workspace

MAX_DIM = 4096
KINDS = ("image", "text")
METRICS = ("cosine", "ip")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
TOPICS = ("embeddings",)


@dataclass(frozen=True)
class SpaceInfo:
    """A space: its name, the kind of data rows it embeds, dimension, vector count, metric, source."""

    name: str
    kind: str
    dim: int
    count: int
    metric: str
    source: str
    created: datetime
    id: int = 0


def spaces(ws: Workspace) -> list[SpaceInfo]:
    """Every embedding space of the workspace, by name."""
    return ws.state.memo("embedding-spaces", TOPICS, lambda: _spaces_now(ws))


def _spaces_now(ws: Workspace) -> list[SpaceInfo]:
    rows = ws.store.cursor().execute("""
        SELECT s.id, s.name, s.kind, s.dim, s.metric, s.source, s.created_at,
               (SELECT count(*) FROM embeddings e WHERE e.space_id = s.id)
        FROM embedding_spaces s ORDER BY s.name""").fetchall()
    return [SpaceInfo(name=r[1], kind=r[2], dim=int(r[3]), count=int(r[7]), metric=r[4], source=r[5],
                      created=r[6], id=int(r[0])) for r in rows]


def space(ws: Workspace, name: str | SpaceInfo) -> SpaceInfo:
    """One space by name, or a NotFoundError that names the spaces there are."""
    if isinstance(name, SpaceInfo):
        name = name.name
    have = spaces(ws)
    for s in have:
        if s.name == name:
            return s
    names = [s.name for s in have]
    raise NotFoundError(f"no embedding space {name!r}", where="space",
                        fix=did_you_mean(str(name), names) or
                        ("spaces: " + ", ".join(names) if names else
                         "compute one with `slicewise embed` or import vectors with `slicewise embeddings import`"))


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValidationError(Problem(f"embedding space name {name!r} is not valid", field="space",
                                      fix="use 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit"))
    return name


def add_vectors(ws: Workspace, space: str, rows: Sequence[Any] | np.ndarray, vectors: Any, *, kind: str = "image",
                metric: str = "cosine", source: str = "custom", where: str = "") -> SpaceInfo:
    """Store one vector per data row in ``space`` (created on first use; vectors of rows already in it
    are replaced). ``rows``: global keys or data row ids; ``vectors``: an (n, dim) array of finite
    numbers, dim <= 4,096. Everything is checked before anything is written; ``where`` names the
    input (a file) in the errors."""
    name = check_name(space)
    if kind not in KINDS:
        raise ValidationError(Problem(f"unknown space kind {kind!r}", field="kind", fix="use image or text"))
    if metric not in METRICS:
        raise ValidationError(Problem(f"unknown metric {metric!r}", field="metric",
                                      fix="use cosine or ip (inner product)"))
    vecs = _as_matrix(vectors, where)
    n, dim = vecs.shape
    rows = list(rows.tolist() if isinstance(rows, np.ndarray) else rows)
    if len(rows) != n:
        raise ValidationError(Problem(f"{len(rows)} row keys for {n} vectors", location=where, field="rows",
                                      fix="give exactly one key (or data row id) per vector"))
    bad = np.flatnonzero(~np.isfinite(vecs).all(axis=1))
    if len(bad):
        raise ValidationError([Problem("vector has a NaN or infinite value", location=_loc(where, int(i)),
                                       field=str(rows[int(i)]), fix="give finite numbers") for i in bad[:20]],
                              summary=f"{len(bad)} vector(s) with NaN or infinite values")
    ids = _row_ids(ws, rows, where)
    order = np.argsort(ids, kind="stable")
    sid = ids[order]
    dup = np.flatnonzero(sid[1:] == sid[:-1])
    if len(dup):
        probs = []
        for j in dup[:20]:
            a, b = int(order[j]), int(order[j + 1])
            probs.append(Problem(f"data row {rows[b]!r} has a second vector (first at {_loc('', a)})",
                                 location=_loc(where, b), field=str(rows[b]), fix="give one vector per data row"))
        raise ValidationError(probs, summary=f"{len(dup)} duplicate row(s)")
    with ws.store.transaction() as con:
        found = con.execute("SELECT id, kind, dim, metric FROM embedding_spaces WHERE name = ?", [name]).fetchone()
        if found is None:
            space_id = ws.store.next_id("embedding_spaces")
            con.execute("INSERT INTO embedding_spaces VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [space_id, name, kind, dim, metric, source, _now()])
        else:
            space_id = int(found[0])
            if int(found[2]) != dim:
                raise ValidationError(Problem(f"space {name!r} holds {found[2]}-dimensional vectors, these have {dim}",
                                              location=where, field="vectors",
                                              fix="give vectors of the space's dimension, or another space name"))
            if found[1] != kind:
                raise ConflictError(f"space {name!r} embeds {found[1]} rows, not {kind}", where="kind",
                                    fix=f"pass kind={found[1]!r}, or another space name")
        if n:
            con.register("_sw_emb_ids", pa.table({"id": pa.array(ids, pa.int64())}))
            try:
                con.execute("DELETE FROM embeddings WHERE space_id = ? AND data_row_id IN (SELECT id FROM _sw_emb_ids)",
                            [space_id])
            finally:
                con.unregister("_sw_emb_ids")
            flat = pa.array(vecs.reshape(-1), pa.float32())
            offsets = pa.array(np.arange(0, (n + 1) * dim, dim, dtype=np.int32), pa.int32())
            ws.store.insert_arrow("embeddings", pa.table({
                "space_id": pa.array(np.full(n, space_id, np.int32), pa.int32()),
                "data_row_id": pa.array(ids, pa.int64()),
                "vector": pa.ListArray.from_arrays(offsets, flat)}))
        ws.store.touch("embeddings", rows=ids)
    return globals()["space"](ws, name)


def drop_space(ws: Workspace, space: str) -> None:
    """Delete a space and its vectors."""
    info = globals()["space"](ws, space)
    with ws.store.transaction() as con:
        con.execute("DELETE FROM embeddings WHERE space_id = ?", [info.id])
        con.execute("DELETE FROM embedding_spaces WHERE id = ?", [info.id])
        con.execute("DELETE FROM embedding_jobs WHERE space = ?", [info.name])
        ws.store.touch("embeddings")


def vectors(ws: Workspace, space: str, ids: Sequence[int] | np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(data row ids in increasing order, their vectors as float32 (n, dim)) of the space, or of the
    given ``ids`` that have a vector in it."""
    info = globals()["space"](ws, space)
    all_ids, vecs = load(ws, info)
    if ids is None:
        return all_ids, vecs
    want = np.unique(np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64))
    pos = np.searchsorted(all_ids, want)
    ok = (pos < len(all_ids)) & (all_ids[np.minimum(pos, len(all_ids) - 1)] == want) if len(all_ids) else \
        np.zeros(len(want), bool)
    return want[ok], vecs[pos[ok]]


def load(ws: Workspace, info: SpaceInfo) -> tuple[np.ndarray, np.ndarray]:
    """The space's (ids, vectors), read once and kept in ``ws.state`` until the embeddings change."""
    return ws.state.memo(("embedding-vectors", info.id), TOPICS, lambda: _load_now(ws, info))


def _load_now(ws: Workspace, info: SpaceInfo) -> tuple[np.ndarray, np.ndarray]:
    tbl = ws.store.cursor().execute(
        "SELECT data_row_id, vector FROM embeddings WHERE space_id = ? ORDER BY data_row_id", [info.id]).arrow()
    if hasattr(tbl, "read_all"):
        tbl = tbl.read_all()
    ids = tbl.column("data_row_id").to_numpy().astype(np.int64, copy=False)
    if len(ids) == 0:
        return ids, np.zeros((0, info.dim), np.float32)
    col = tbl.column("vector").combine_chunks()
    flat = col.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    vecs = flat.reshape(len(ids), info.dim)
    vecs.setflags(write=False)
    ids.setflags(write=False)
    return ids, vecs


# -- helpers -----------------------------------------------------------------------------------
def _as_matrix(vectors: Any, where: str) -> np.ndarray:
    try:
        arr = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValidationError(Problem(f"vectors are not numbers: {exc}", location=where, field="vectors",
                                      fix="give an (n, dim) array of numbers")) from None
    if arr.ndim != 2:
        raise ValidationError(Problem(f"vectors have shape {arr.shape}, not (n, dim)", location=where, field="vectors",
                                      fix="give one row of numbers per data row"))
    if arr.shape[1] == 0:
        raise ValidationError(Problem("vectors have no dimensions", location=where, field="vectors",
                                      fix="give at least one number per vector"))
    if arr.shape[1] > MAX_DIM:
        raise LimitError(f"vectors have {arr.shape[1]} dimensions, more than {MAX_DIM}", where=where or "vectors",
                         fix=f"reduce them to at most {MAX_DIM} (e.g. PCA)")
    return np.ascontiguousarray(arr)


def _loc(where: str, i: int) -> str:
    return f"{where}: row {i + 1}" if where else f"row {i + 1}"


def _row_ids(ws: Workspace, rows: list[Any], where: str) -> np.ndarray:
    """Data row ids for global keys (str) or ids (int); unknown ones are a ValidationError naming them."""
    if not rows:
        return np.zeros(0, np.int64)
    is_id = [isinstance(r, int | np.integer) and not isinstance(r, bool) for r in rows]
    cur = ws.store.cursor()
    out = np.zeros(len(rows), np.int64)
    missing: list[int] = []
    if any(is_id):
        pos = [i for i, f in enumerate(is_id) if f]
        want = np.asarray([int(rows[i]) for i in pos], np.int64)
        cur.register("_sw_ids", pa.table({"id": want}))
        try:
            have = {int(r[0]) for r in cur.execute("SELECT d.id FROM data_rows d JOIN _sw_ids s ON s.id = d.id").fetchall()}
        finally:
            cur.unregister("_sw_ids")
        for i, v in zip(pos, want, strict=True):
            if int(v) in have:
                out[i] = v
            else:
                missing.append(i)
    if not all(is_id):
        pos = [i for i, f in enumerate(is_id) if not f]
        keys = [str(rows[i]) for i in pos]
        cur.register("_sw_keys", pa.table({"k": pa.array(keys, pa.string())}))
        try:
            found = dict(cur.execute("SELECT global_key, id FROM data_rows JOIN _sw_keys ON k = global_key").fetchall())
        finally:
            cur.unregister("_sw_keys")
        for i, k in zip(pos, keys, strict=True):
            if k in found:
                out[i] = found[k]
            else:
                missing.append(i)
    if missing:
        missing.sort()
        raise ValidationError([Problem(f"unknown data row {rows[i]!r}", location=_loc(where, i), field="key",
                                       fix="give the global key (or id) of a data row of the workspace")
                               for i in missing[:20]],
                              summary=f"{len(missing)} unknown data row(s)")
    return out


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
