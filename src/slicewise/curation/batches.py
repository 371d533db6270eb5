"""Batches: named, frozen sets of data rows handed to labellers, with a priority and a note.

A batch is made from row ids (a gallery selection), or from a :class:`~slicewise.view.View` (a slice, a
filter, the top N of any sort: ``limit=N``); its rows are fixed when it is made (a slice keeps collecting
rows, a batch does not). Its rows enter the labelling queue (:mod:`slicewise.curation.queue`) as ``to_label``
unless they are in it already. ``batch:NAME`` filters the gallery to a batch's rows.

>>> import tempfile, os, slicewise
>>> from slicewise.curation import batches
>>> from slicewise.view import View
>>> ws = slicewise.open(os.path.join(tempfile.mkdtemp(), "ws.duckdb"))
>>> _ = ws.add_data_rows("d", [{"global_key": f"k{i}", "row_data": "x.jpg", "metadata": {"n": i}} for i in range(6)])
>>> b = batches.create_batch(ws, "night-1", View(filter="metadata.n >= 2", sort="-metadata.n"), limit=3,
...                          priority=2, note="night scenes")
>>> b.name, b.count, b.priority, b.status, b.states
('night-1', 3, 2, 'new', {'to_label': 3})
>>> batches.batch_keys(ws, "night-1"), len(batches.batch_rows(ws, "night-1"))
(['k5', 'k4', 'k3'], 3)
>>> View(filter="batch:night-1").resolve(ws).count()
3
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from slicewise.errors import ConflictError, LimitError, NotFoundError, Problem, ValidationError, did_you_mean
from slicewise.store.objects import utc_now

if TYPE_CHECKING:
    from slicewise.view import ResolvedView, View
    from slicewise.workspace import Workspace

__all__ = ["Batch", "MAX_BATCH_ROWS", "batch_rows", "batch_keys", "create_batch", "drop_batch", "get_batch",
           "list_batches", "mark_exported", "update_batch"]

MAX_BATCH_ROWS = 100_000
NAME_MAX = 60
NOTE_MAX = 2000
STATUSES = ("new", "exported", "in progress", "done")


@dataclass(frozen=True)
class Batch:
    """A batch as stored, with its row count, its rows' queue states and a status derived from them:
    ``new`` (never exported), ``exported``, ``in progress`` (some rows labelled, in review or sent to
    rework), ``done`` (every row done)."""

    name: str
    priority: int
    note: str
    status: str
    count: int
    created_at: datetime
    source: str | None
    id: int = 0
    exported_at: datetime | None = None
    exported_as: str | None = None
    states: dict[str, int] = field(default_factory=dict)  # queue state -> rows of the batch in it


def check_name(name: Any) -> str:
    """A valid batch name: 1 to 60 printable characters, not only digits (those are ids)."""
    if not isinstance(name, str):
        raise ValidationError(Problem(f"batch name must be text, not {type(name).__name__}", field="name",
                                      fix="give the batch a name"))
    n = name.strip()
    if not 1 <= len(n) <= NAME_MAX:
        raise ValidationError(Problem(f"batch name {n!r} has {len(n)} characters", field="name",
                                      fix=f"give a name of 1 to {NAME_MAX} characters"))
    if any(ord(ch) < 32 or ch in "\u2028\u2029" for ch in n):
        raise ValidationError(Problem("batch name contains control characters", field="name",
                                      fix="use printable characters"))
    if n.isdigit():
        raise ValidationError(Problem(f"batch name {n!r} is only digits", field="name",
                                      fix="use a name with a letter (numbers refer to batch ids)"))
    return n


def _check_note(note: Any) -> str:
    if note is None:
        return ""
    if not isinstance(note, str) or len(note) > NOTE_MAX:
        raise ValidationError(Problem(f"note must be text of at most {NOTE_MAX} characters", field="note",
                                      fix="shorten it"))
    return note


def _check_priority(priority: Any) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int | np.integer) or not -1000 <= int(priority) <= 1000:
        raise ValidationError(Problem(f"priority {priority!r} is not a whole number between -1000 and 1000",
                                      field="priority", fix="give e.g. 0 (normal), 1 (high) or -1 (low)"))
    return int(priority)


def _row_ids(ws: Workspace, rows: Any, limit: int | None) -> tuple[list[int], str | None]:
    """The ids of ``rows`` (ids, global keys, a View or a resolved view) in order, and a default source."""
    from slicewise.view import ResolvedView, View

    cap = MAX_BATCH_ROWS if limit is None else limit
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValidationError(Problem(f"limit {limit!r} is not a positive whole number", field="limit",
                                      fix="give how many rows of the view to take, e.g. 100"))
    if isinstance(rows, View):
        rows = rows.resolve(ws)
    if isinstance(rows, ResolvedView):
        total, ids, _ = rows.ids(cap + 1 if limit is None else cap)
        if limit is None and total > MAX_BATCH_ROWS:
            raise LimitError(f"the view has {total:,} rows; a batch holds at most {MAX_BATCH_ROWS:,}",
                             where="batch", fix="narrow the filter, or take the top N (limit=N)")
        return ids, _view_source(rows)
    if isinstance(rows, str | bytes) or not isinstance(rows, Sequence | np.ndarray):
        raise ValidationError(Problem(f"batch rows must be a list of data row ids or global keys, or a View, "
                                      f"not {type(rows).__name__}", field="rows", fix="pass ids, keys or a View"))
    items = list(rows)
    if items and all(isinstance(r, str) for r in items):
        found = dict(ws.sql("SELECT global_key, id FROM data_rows WHERE global_key IN (SELECT unnest(?))",
                            [items]).fetchall())
        missing = [k for k in items if k not in found]
        if missing:
            raise NotFoundError(f"{len(missing)} unknown data row key(s): {', '.join(map(repr, missing[:5]))}",
                                where="batch rows", fix="check the global keys")
        items = [found[k] for k in items]
    ids: list[int] = []
    for i, r in enumerate(items):
        if isinstance(r, bool) or not isinstance(r, int | np.integer):
            raise ValidationError(Problem(f"{r!r} is not a data row id", location=f"rows[{i}]", field="rows",
                                          fix="give integer data row ids (or global keys, all of them text)"))
        ids.append(int(r))
    if limit is not None:
        ids = ids[:limit]
    return ids, "selection"


def _view_source(v: ResolvedView) -> str:
    parts = []
    if v.slice is not None:
        parts.append(f"slice:{v.slice.name}")
    if v.text:
        parts.append(f"filter:{v.text}")
    if v.query.sort:
        parts.append(f"sort:{v.sort_text}")
    if v.run is not None:
        parts.append(f"run:{v.run.ref}")
    return " ".join(parts) or "all rows"


def create_batch(ws: Workspace, name: str, data_row_ids: Sequence[int] | Sequence[str] | View | ResolvedView, *,
                 priority: int = 0, note: str = "", source: str | None = None, limit: int | None = None,
                 by: str | None = None) -> Batch:
    """Make a batch of ``data_row_ids`` (ids or global keys, in order; or the rows of a View, in its order,
    the first ``limit`` of them for the top N of a sort). Names are unique (case-insensitive); a batch
    holds 1 to :data:`MAX_BATCH_ROWS` rows; a row given twice counts once. Its rows with no queue state
    enter the labelling queue as ``to_label`` (``by``: who, default the current user)."""
    from slicewise.curation.queue import actor, enter_queue

    name = check_name(name)
    note = _check_note(note)
    priority = _check_priority(priority)
    ids, default_source = _row_ids(ws, data_row_ids, limit)
    ids = list(dict.fromkeys(ids))
    if not ids:
        raise ValidationError(Problem("the batch has no rows", location=f"batch {name!r}", field="rows",
                                      fix="select rows, or use a filter that matches some"))
    if len(ids) > MAX_BATCH_ROWS:
        raise LimitError(f"{len(ids):,} rows given; a batch holds at most {MAX_BATCH_ROWS:,}", where=f"batch {name!r}",
                         fix="split them into several batches")
    with ws.store.transaction() as con:
        _check_unique(con, name)
        arr = np.asarray(ids, dtype=np.int64)
        con.register("_sw_batch", pa.table({"id": arr}))
        try:
            unknown = [int(r[0]) for r in con.execute(
                "SELECT id FROM _sw_batch WHERE id NOT IN (SELECT id FROM data_rows) LIMIT 5").fetchall()]
        finally:
            con.unregister("_sw_batch")
        if unknown:
            raise NotFoundError(f"unknown data row id(s) {', '.join(map(str, unknown))}", where=f"batch {name!r}",
                                fix="give ids of data rows of this workspace")
        bid = ws.store.next_id("batches")
        con.execute("INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?, NULL, NULL)",
                    [bid, name, priority, note, source if source is not None else default_source, utc_now()])
        ws.store.insert_arrow("batch_rows", pa.table({
            "batch_id": pa.array([bid] * len(arr), pa.int32()), "data_row_id": arr,
            "position": pa.array(np.arange(len(arr)), pa.int32())}))
        ws.store.touch("batches", rows=arr)
        enter_queue(ws, arr, bid, by=actor(by))
    return get_batch(ws, bid)


def _check_unique(con: Any, name: str, own_id: int | None = None) -> None:
    row = con.execute("SELECT id, name FROM batches WHERE lower(name) = lower(?)", [name]).fetchone()
    if row and row[0] != own_id:
        raise ConflictError(f"a batch named {row[1]!r} already exists", where=f"batch {name!r}",
                            fix="pick another name, or drop that batch first")


_COLUMNS = "b.id, b.name, b.priority, b.note, b.source, b.created_at, b.exported_at, b.exported_as"


def _batches(ws: Workspace, where: str = "TRUE", params: Sequence[Any] = ()) -> list[Batch]:
    cur = ws.store.cursor()
    rows = cur.execute(f"SELECT {_COLUMNS} FROM batches b WHERE {where} "
                       "ORDER BY b.priority DESC, b.created_at DESC, b.id DESC", list(params)).fetchall()
    if not rows:
        return []
    counts: dict[int, dict[str, int]] = {}
    for bid, state, n in cur.execute(
            "SELECT br.batch_id, coalesce(q.state, 'none'), count(*) FROM batch_rows br "
            "LEFT JOIN queue q ON q.data_row_id = br.data_row_id WHERE br.batch_id IN (SELECT unnest(?)) "
            "GROUP BY ALL", [[r[0] for r in rows]]).fetchall():
        counts.setdefault(bid, {})[state] = int(n)
    out = []
    for bid, name, prio, note, source, created, exported, exported_as in rows:
        states = dict(sorted(counts.get(bid, {}).items(), key=lambda kv: _STATE_ORDER.get(kv[0], 9)))
        out.append(Batch(name=name, priority=prio, note=note, status=_status(states, exported), count=sum(states.values()),
                         created_at=created, source=source, id=bid, exported_at=exported, exported_as=exported_as,
                         states=states))
    return out


_STATE_ORDER = {"to_label": 0, "rework": 1, "in_review": 2, "done": 3, "none": 4}


def _status(states: dict[str, int], exported: datetime | None) -> str:
    n = sum(states.values())
    if n and states.get("done", 0) == n:
        return "done"
    if states.get("in_review") or states.get("done") or states.get("rework"):
        return "in progress"
    return "exported" if exported is not None else "new"


def list_batches(ws: Workspace) -> list[Batch]:
    """Every batch, highest priority first, then newest first, with counts and status."""
    return _batches(ws)


def get_batch(ws: Workspace, name: str | int | Batch) -> Batch:
    """A batch by name (case-insensitive) or id."""
    if isinstance(name, Batch):
        name = name.id
    found: list[Batch] = []
    if isinstance(name, int | np.integer) and not isinstance(name, bool):
        found = _batches(ws, "b.id = ?", [int(name)])
    elif isinstance(name, str):
        found = _batches(ws, "lower(b.name) = lower(?)", [name.strip()])
        if not found and name.strip().isdigit() and len(name.strip()) <= 9:
            found = _batches(ws, "b.id = ?", [int(name.strip())])
    if not found:
        names = [r[0] for r in ws.sql("SELECT name FROM batches ORDER BY name").fetchall()]
        raise NotFoundError(f"no batch {name!r}", where="batch",
                            fix=did_you_mean(str(name), names) or "list the batches with `slicewise batch list`")
    return found[0]


def batch_id(ws: Workspace, name: str | int | Batch) -> int:
    return get_batch(ws, name).id


def batch_rows(ws: Workspace, name: str | int | Batch) -> list[int]:
    """The batch's data row ids, in the order it was made with."""
    bid = batch_id(ws, name)
    return [int(r[0]) for r in ws.sql("SELECT data_row_id FROM batch_rows WHERE batch_id = ? ORDER BY position",
                                      [bid]).fetchall()]


def batch_keys(ws: Workspace, name: str | int | Batch) -> list[str]:
    """The batch's rows' global keys, in the batch's order."""
    bid = batch_id(ws, name)
    return [r[0] for r in ws.sql("SELECT d.global_key FROM batch_rows b JOIN data_rows d ON d.id = b.data_row_id "
                                 "WHERE b.batch_id = ? ORDER BY b.position", [bid]).fetchall()]


def update_batch(ws: Workspace, name: str | int | Batch, *, priority: int | None = None, note: str | None = None,
                 new_name: str | None = None) -> Batch:
    """Change a batch's priority, note or name (its rows stay as they are)."""
    b = get_batch(ws, name)
    prio = _check_priority(priority) if priority is not None else b.priority
    txt = _check_note(note) if note is not None else b.note
    nm = check_name(new_name) if new_name is not None else b.name
    with ws.store.transaction() as con:
        _check_unique(con, nm, b.id)
        con.execute("UPDATE batches SET name = ?, priority = ?, note = ? WHERE id = ?", [nm, prio, txt, b.id])
        ws.store.touch("batches")
    return get_batch(ws, b.id)


def mark_exported(ws: Workspace, name: str | int | Batch, fmt: str) -> Batch:
    """Record that the batch was exported (when, in which format): its status becomes ``exported``."""
    b = get_batch(ws, name)
    with ws.store.transaction() as con:
        con.execute("UPDATE batches SET exported_at = ?, exported_as = ? WHERE id = ?", [utc_now(), fmt, b.id])
        ws.store.touch("batches")
    return get_batch(ws, b.id)


def drop_batch(ws: Workspace, name: str | int | Batch) -> Batch:
    """Delete a batch (its rows and their labels stay; queue lines that came with it keep their state but
    no longer name it). Returns the batch as it was."""
    b = get_batch(ws, name)
    with ws.store.transaction() as con:
        rows = con.execute("SELECT data_row_id FROM batch_rows WHERE batch_id = ?", [b.id]).fetchnumpy()["data_row_id"]
        con.execute("DELETE FROM batch_rows WHERE batch_id = ?", [b.id])
        con.execute("DELETE FROM batches WHERE id = ?", [b.id])
        con.execute("UPDATE queue SET batch_id = NULL WHERE batch_id = ?", [b.id])
        ws.store.touch("batches", rows=rows)
        ws.store.touch("queue", rows=rows)
    return b
