"""The labelling queue: each data row that entered it has a state, with who moved it there and when.

States: ``to_label`` (in a batch, waiting for a labeller), ``in_review`` (labels came back, a reviewer
looks at them), ``rework`` (sent back: the labels are wrong), ``done``. A row enters the queue when a
batch takes it (``to_label``) or when it is sent to rework; re-imported labels move it to ``in_review``
(or ``done``). Every move is kept in ``queue_events``. ``queue:STATE`` filters rows by state
(``queue is none``: rows never queued).

>>> import tempfile, os, slicewise
>>> from slicewise.curation import queue
>>> from slicewise.view import View
>>> ws = slicewise.open(os.path.join(tempfile.mkdtemp(), "ws.duckdb"))
>>> _ = ws.add_data_rows("d", [{"global_key": f"k{i}", "row_data": "x.jpg"} for i in range(4)])
>>> ws.add_tags(["k1", "k2"], ["re-label"])
2
>>> queue.send_to_rework(ws, View(filter="tag:re-label"), by="ana", note="boxes too loose")
2
>>> queue.queue_counts(ws)
{'rework': 2}
>>> [(s.global_key, s.state, s.by) for s in queue.queue_states(ws)]
[('k1', 'rework', 'ana'), ('k2', 'rework', 'ana')]
>>> View(filter="queue:rework").resolve(ws).count()
2
"""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from slicewise.errors import Problem, ValidationError
from slicewise.store.objects import utc_now

if TYPE_CHECKING:
    from slicewise.view import ResolvedView, View
    from slicewise.workspace import Workspace

__all__ = ["QueueEntry", "STATES", "actor", "history", "move", "queue_counts", "queue_states", "send_to_rework",
           "state_name"]

STATES = ("to_label", "in_review", "rework", "done")
#: what users may type for each state (``queue:review``, ``--to todo``...)
_ALIASES = {"to_label": "to_label", "to-label": "to_label", "tolabel": "to_label", "label": "to_label",
            "todo": "to_label", "in_review": "in_review", "in-review": "in_review", "review": "in_review",
            "rework": "rework", "done": "done"}


@dataclass(frozen=True)
class QueueEntry:
    data_row_id: int
    global_key: str
    dataset: str
    state: str
    batch: str | None
    by: str
    at: datetime
    note: str | None


def state_name(state: Any, where: str = "state") -> str:
    """The canonical name of a queue state (``review`` -> ``in_review``), or a ValidationError."""
    s = _ALIASES.get(str(state).strip().lower()) if isinstance(state, str) else None
    if s is None:
        raise ValidationError(Problem(f"unknown queue state {state!r}", field=where,
                                      fix="use one of " + ", ".join(STATES)))
    return s


def actor(by: str | None = None) -> str:
    """Who does it: ``by`` when given, else the current user's login name."""
    if by is not None and str(by).strip():
        return str(by).strip()[:200]
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name (a container without USER)
        return "unknown"


def _ids(ws: Workspace, rows: Sequence[int] | Sequence[str] | View | ResolvedView) -> np.ndarray:
    from slicewise.curation.batches import MAX_BATCH_ROWS, _row_ids

    ids, _ = _row_ids(ws, rows, None)
    arr = np.unique(np.asarray(ids, dtype=np.int64))
    if len(arr) > MAX_BATCH_ROWS * 10:
        raise ValidationError(Problem(f"{len(arr):,} rows at once", field="rows", fix="narrow the filter"))
    if len(arr):
        n = ws.sql("SELECT count(*) FROM data_rows WHERE id IN (SELECT unnest(?))", [arr.tolist()]).fetchone()[0]
        if n != len(arr):
            raise ValidationError(Problem(f"{len(arr) - n} of the rows are not data rows of this workspace",
                                          field="rows", fix="give ids of existing data rows"))
    return arr


def enter_queue(ws: Workspace, ids: np.ndarray, batch_id: int | None, *, by: str) -> int:
    """Put rows that have no queue state in ``to_label`` (inside the caller's transaction); returns how many."""
    con = ws.store.con
    have = {int(r[0]) for r in con.execute("SELECT data_row_id FROM queue WHERE data_row_id IN (SELECT unnest(?))",
                                           [ids.tolist()]).fetchall()}
    new = np.asarray([i for i in ids.tolist() if i not in have], dtype=np.int64)
    if len(new):
        _write(ws, new, "to_label", batch_id, by, None, {})
    return len(new)


def _write(ws: Workspace, ids: np.ndarray, state: str, batch_id: int | None, by: str, note: str | None,
           before: dict[int, tuple[str, int | None]]) -> None:
    con = ws.store.con
    now = utc_now()
    n = len(ids)
    con.execute("DELETE FROM queue WHERE data_row_id IN (SELECT unnest(?))", [ids.tolist()])
    batches = [before[i][1] if i in before and batch_id is None else batch_id for i in ids.tolist()]
    ws.store.insert_arrow("queue", pa.table({
        "data_row_id": ids, "state": [state] * n, "batch_id": pa.array(batches, pa.int32()),
        "updated_by": [by] * n, "updated_at": pa.array([now] * n, pa.timestamp("us")),
        "note": pa.array([note] * n, pa.string())}))
    ws.store.insert_arrow("queue_events", pa.table({
        "data_row_id": ids, "from_state": pa.array([before[i][0] if i in before else None for i in ids.tolist()],
                                                   pa.string()),
        "to_state": [state] * n, "by_whom": [by] * n, "moved_at": pa.array([now] * n, pa.timestamp("us")),
        "note": pa.array([note] * n, pa.string())}))
    ws.store.touch("queue", rows=ids)


def move(ws: Workspace, rows: Sequence[int] | Sequence[str] | View | ResolvedView, state: str, *,
         by: str | None = None, note: str | None = None, only_from: Sequence[str] | None = None) -> int:
    """Move rows (ids, global keys or a View's rows) to ``state``; ``only_from``: move only the rows now in
    one of these states (rows outside the queue count as none of them). Returns how many rows moved."""
    state = state_name(state)
    froms = {state_name(s, "only_from") for s in only_from} if only_from is not None else None
    ids = _ids(ws, rows)
    with ws.store.transaction() as con:
        return _move(ws, con, ids, state, actor(by), note, froms)


def _move(ws: Workspace, con: Any, ids: np.ndarray, state: str, by: str, note: str | None,
          froms: set[str] | None) -> int:
    before = {int(r[0]): (r[1], r[2]) for r in con.execute(
        "SELECT data_row_id, state, batch_id FROM queue WHERE data_row_id IN (SELECT unnest(?))",
        [ids.tolist()]).fetchall()}
    chosen = [i for i in ids.tolist() if (froms is None or (i in before and before[i][0] in froms))
              and not (i in before and before[i][0] == state)]
    if chosen:
        _write(ws, np.asarray(chosen, dtype=np.int64), state, None, by, note, before)
    return len(chosen)


def send_to_rework(ws: Workspace, rows: Sequence[int] | Sequence[str] | View | ResolvedView, *,
                   by: str | None = None, note: str | None = None) -> int:
    """Send rows (a selection, or a View such as ``View(filter="tag:re-label")``) to ``rework``; returns
    how many rows moved (rows already in rework stay as they are)."""
    return move(ws, rows, "rework", by=by, note=note)


def queue_counts(ws: Workspace, dataset: str | None = None) -> dict[str, int]:
    """Rows per queue state (of one dataset, or of every dataset), in the order of :data:`STATES`."""
    sql = "SELECT q.state, count(*) FROM queue q"
    params: list[Any] = []
    if dataset is not None:
        ds = ws.dataset(dataset)
        sql += " JOIN data_rows d ON d.id = q.data_row_id WHERE d.dataset_id = ?"
        params.append(ds.id)
    found = dict(ws.sql(sql + " GROUP BY ALL", params).fetchall())
    return {s: int(found[s]) for s in STATES if found.get(s)}


def queue_states(ws: Workspace, *, dataset: str | None = None, state: str | None = None,
                 rows: Sequence[int] | None = None, limit: int = 10_000) -> list[QueueEntry]:
    """The queue's lines (of a dataset / a state / some rows), by global key."""
    cond, params = ["TRUE"], []  # type: ignore[var-annotated]
    if dataset is not None:
        cond.append("ds.id = ?")
        params.append(ws.dataset(dataset).id)
    if state is not None:
        cond.append("q.state = ?")
        params.append(state_name(state))
    if rows is not None:
        cond.append("q.data_row_id IN (SELECT unnest(?))")
        params.append([int(r) for r in rows])
    got = ws.sql(f"""SELECT q.data_row_id, d.global_key, ds.name, q.state, b.name, q.updated_by, q.updated_at, q.note
                     FROM queue q JOIN data_rows d ON d.id = q.data_row_id JOIN datasets ds ON ds.id = d.dataset_id
                     LEFT JOIN batches b ON b.id = q.batch_id WHERE {' AND '.join(cond)}
                     ORDER BY d.global_key LIMIT ?""", [*params, int(limit)]).fetchall()
    return [QueueEntry(*r) for r in got]


def history(ws: Workspace, global_key: str) -> list[dict[str, Any]]:
    """Every move of one row in the queue, oldest first."""
    rid = ws.data_row(global_key).id
    return [{"from": r[0], "to": r[1], "by": r[2], "at": r[3], "note": r[4]} for r in ws.sql(
        "SELECT from_state, to_state, by_whom, moved_at, note FROM queue_events WHERE data_row_id = ? ORDER BY moved_at, rowid",
        [rid]).fetchall()]
