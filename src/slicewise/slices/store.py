"""Saved slices: workspace-level, dynamic queries (membership is evaluated when a slice is read).

>>> import tempfile, os, slicewise
>>> from slicewise import slices
>>> ws = slicewise.open(os.path.join(tempfile.mkdtemp(), "ws.duckdb"))
>>> _ = ws.add_data_rows("d", [{"global_key": f"k{i}", "row_data": "x.jpg", "metadata": {"cam": f"c{i % 2}"}}
...                            for i in range(4)])
>>> s = slices.create_slice(ws, "camera one", 'metadata.cam = "c1"')
>>> s.filter, slices.slice_count(ws, s.id, None)
('metadata.cam = c1', 2)
>>> _ = ws.add_data_rows("d", [{"global_key": "k9", "row_data": "x.jpg", "metadata": {"cam": "c1"}}])
>>> slices.slice_count(ws, "camera one", None)
3
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from slicewise.errors import (
    ConflictError,
    LimitError,
    NotFoundError,
    Problem,
    SlicewiseError,
    ValidationError,
)
from slicewise.query import Page, Query, as_query, count, counts, search, sort_to_text, to_text
from slicewise.query.fields import did_you_mean

MAX_SLICES = 100
NAME_MIN, NAME_MAX = 3, 30
DESCRIPTION_MAX = 2000


class Slice(BaseModel):
    id: int
    name: str
    description: str | None = None
    filter: str  # the filter as text ("" = every row)
    sort: str = ""  # the sort keys as text
    query: dict[str, Any]  # the canonical AST (JSON)
    similar: dict[str, Any] | None = None  # the similarity search kept in the query (space, anchors, k)
    kind: str = "user"  # user | auto
    run_id: int | None = None  # auto slices belong to one run
    auto_key: str | None = None
    params: dict[str, Any] = {}
    count: int | None = None  # rows of the run viewed (when one was given)
    note: str | None = None  # auto slices: why the slice cannot be evaluated as its parameters say (or None)
    created_at: datetime
    updated_at: datetime


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def check_name(name: Any) -> str:
    """A valid slice name (3 to 30 characters after trimming) or a ValidationError."""
    if not isinstance(name, str):
        raise ValidationError(Problem(f"slice name must be text, not {type(name).__name__}", field="name",
                                      fix=f"give {NAME_MIN} to {NAME_MAX} characters"))
    n = name.strip()
    if not NAME_MIN <= len(n) <= NAME_MAX:
        raise ValidationError(Problem(f"slice name {n!r} has {len(n)} characters", field="name",
                                      fix=f"give a name of {NAME_MIN} to {NAME_MAX} characters"))
    if any(ord(ch) < 32 for ch in n):
        raise ValidationError(Problem("slice name contains control characters", field="name",
                                      fix="use printable characters"))
    return n


def _check_description(description: Any) -> str | None:
    if description is None:
        return None
    if not isinstance(description, str) or len(description) > DESCRIPTION_MAX:
        raise ValidationError(Problem("description must be text of at most 2000 characters", field="description",
                                      fix="shorten it"))
    return description


def _validated(ws: Any, query: Query) -> Query:
    """Check every field, feature and value against the store (the run-independent part) by compiling."""
    from slicewise.query.compiler import Compiler

    comp = Compiler(ws, None, 0.5, 0.5, check_only=True, similar=query.similar)
    if query.filter is not None or query.similar is not None:
        comp.where(query.filter)
    for i, s in enumerate(query.sort):
        comp.sort_expr(s, i)
    if query.similar is not None:
        from slicewise.embeddings.search import check_anchors, index_for

        check_anchors(ws, index_for(ws, query.similar.space), query.similar.space, query.similar.anchors)
    return query


def slice_from_row(row: tuple[Any, ...]) -> Slice:
    sid, name, desc, qjson, run_id, auto_key, params, created, updated = row
    q = Query.model_validate_json(qjson)
    return Slice(id=sid, name=name, description=desc, filter=to_text(q.filter) if q.filter is not None else "",
                 sort=sort_to_text(q.sort), query=json.loads(qjson), kind="auto" if auto_key else "user",
                 similar=q.similar.model_dump() if q.similar is not None else None,
                 run_id=run_id, auto_key=auto_key, params=json.loads(params) if params else {},
                 created_at=created, updated_at=updated)


COLUMNS = "id, name, description, query, run_id, auto_key, params, created_at, updated_at"


def dump_query(q: Query) -> str:
    return q.model_dump_json(exclude_none=True)


def get_slice(ws: Any, ref: str | int | Slice) -> Slice:
    """A slice by id, or by name (user slices; ``auto:KEY@RUN`` is not accepted here, use auto_slices)."""
    if isinstance(ref, Slice):
        ref = ref.id
    cur = ws.store.cursor()
    row = None
    if isinstance(ref, int) or (isinstance(ref, str) and ref.strip().isascii() and ref.strip().isdigit()
                                and len(ref.strip()) <= 18):
        row = cur.execute(f"SELECT {COLUMNS} FROM slices WHERE id = ?", [int(ref)]).fetchone()
    if row is None and isinstance(ref, str):
        row = cur.execute(f"SELECT {COLUMNS} FROM slices WHERE auto_key IS NULL AND lower(name) = lower(?)",
                          [ref.strip()]).fetchone()
    if row is None:
        names = [r[0] for r in cur.execute("SELECT name FROM slices WHERE auto_key IS NULL").fetchall()]
        raise NotFoundError(f"no slice {ref!r}", where="slice",
                            fix=did_you_mean(str(ref), names) or "list the slices with `slicewise slice list`")
    return slice_from_row(row)


def list_slices(ws: Any, run: Any = None, confidence: float | None = None, iou: float | None = None, *,
                include_auto: bool = False) -> list[Slice]:
    """The user slices (by name), each with its count for ``run`` when a run is given. A slice whose
    count cannot be evaluated for the run (e.g. metrics not computed) has ``count`` None."""
    where = "TRUE" if include_auto else "auto_key IS NULL"
    rows = ws.store.cursor().execute(f"SELECT {COLUMNS} FROM slices WHERE {where} ORDER BY lower(name), id").fetchall()
    out = [slice_from_row(r) for r in rows]
    if run is not None:
        out = counted(ws, out, run, confidence, iou)
    return out


def counted(ws: Any, items: list[Slice], run: Any, confidence: float | None, iou: float | None) -> list[Slice]:
    """The slices with their ``count`` of the run's rows (in one scan; None where it cannot be evaluated,
    e.g. a metric filter while the run's metrics are not computed)."""
    found = counts(ws, run, [s.query.get("filter") for s in items], confidence, iou)
    for i, s in enumerate(items):  # a similarity search is not one of the scan's conditions: count it alone
        if s.query.get("similar"):
            try:
                found[i] = count(ws, run, s.query.get("filter"), confidence, iou, similar=s.query["similar"])
            except SlicewiseError:
                found[i] = None
    return [s.model_copy(update={"count": n}) for s, n in zip(items, found, strict=True)]


def create_slice(ws: Any, name: str, filter: Any = None, *, description: str | None = None,
                 sort: Any = None, similar: Any = None) -> Slice:
    """Save a filter (text, AST or Query) as a slice. Names are unique (case-insensitive); at most 100.
    ``similar`` (a :class:`slicewise.query.Similar` or its dict) keeps a similarity search's anchors in
    the slice, so it collects rows added later that are close to them."""
    from slicewise.query.search import as_similar

    name = check_name(name)
    description = _check_description(description)
    q = as_query(filter, sort)
    if similar is not None:
        q = q.model_copy(update={"similar": as_similar(similar)})
    q = _validated(ws, q)
    with ws.store.transaction() as con:
        _check_unique(con, name, None)
        n = con.execute("SELECT count(*) FROM slices WHERE auto_key IS NULL").fetchone()[0]
        if n >= MAX_SLICES:
            raise LimitError(f"the workspace already has {n} slices, the most allowed is {MAX_SLICES}",
                             where=f"slice {name!r}", fix="delete or update a slice you no longer need")
        sid = ws.store.next_id("slices")
        now = utc_now()
        con.execute("INSERT INTO slices VALUES (?, ?, ?, ?, NULL, NULL, NULL, ?, ?)",
                    [sid, name, description, dump_query(q), now, now])
        ws.store.touch("slices")
    return get_slice(ws, sid)


def _check_unique(con: Any, name: str, own_id: int | None) -> None:
    row = con.execute("SELECT id, name FROM slices WHERE auto_key IS NULL AND lower(name) = lower(?)", [name]).fetchone()
    if row and row[0] != own_id:
        raise ConflictError(f"a slice named {row[1]!r} already exists", where=f"slice {name!r}",
                            fix="pick another name, or update that slice")


def update_slice(ws: Any, ref: str | int | Slice, *, filter: Any = None, sort: Any = None, name: str | None = None,
                 description: str | None = None, save_as: str | None = None, similar: Any = None) -> Slice:
    """Change a user slice's filter / sort / name / description in place; with ``save_as=NAME`` leave it
    as it is and save the changed query as a new slice instead. A ``filter`` of "" means every row."""
    s = get_slice(ws, ref)
    if s.kind == "auto" and save_as is None:
        raise ConflictError(f"{s.name!r} is an auto-generated slice", where="slice",
                            fix="save the changed query as a new slice (save_as=NAME)")
    old = Query.model_validate(s.query)
    new_filter = old.filter if filter is None else as_query(filter).filter
    new_sort = old.sort if sort is None else as_query(None, sort).sort
    from slicewise.query.search import as_similar

    new_similar = old.similar if similar is None else as_similar(similar)
    q = _validated(ws, Query(filter=new_filter, sort=new_sort, similar=new_similar))
    if save_as is not None:
        return create_slice(ws, save_as, q, description=description if description is not None else s.description)
    new_name = check_name(name) if name is not None else s.name
    desc = _check_description(description) if description is not None else s.description
    with ws.store.transaction() as con:
        _check_unique(con, new_name, s.id)
        con.execute("UPDATE slices SET name = ?, description = ?, query = ?, updated_at = ? WHERE id = ?",
                    [new_name, desc, dump_query(q), utc_now(), s.id])
        ws.store.touch("slices")
    return get_slice(ws, s.id)


def rename_slice(ws: Any, ref: str | int | Slice, new_name: str) -> Slice:
    return update_slice(ws, ref, name=new_name)


def delete_slice(ws: Any, ref: str | int | Slice) -> None:
    s = get_slice(ws, ref)
    if s.kind == "auto":
        raise ConflictError(f"{s.name!r} is an auto-generated slice of run {s.run_id}", where="slice",
                            fix="auto slices cannot be deleted; they do not count towards the limit")
    with ws.store.transaction() as con:
        con.execute("DELETE FROM slices WHERE id = ?", [s.id])
        ws.store.touch("slices")


def slice_count(ws: Any, ref: str | int | Slice, run: Any, confidence: float | None = None,
                iou: float | None = None) -> int:
    """How many of the run's rows are in the slice now (None run = every data row of the workspace)."""
    s = ref if isinstance(ref, Slice) else get_slice(ws, ref)
    return count(ws, run, s.query.get("filter"), confidence, iou, similar=s.query.get("similar"))


def slice_rows(ws: Any, ref: str | int | Slice, run: Any, confidence: float | None = None, iou: float | None = None,
               limit: int = 50, offset: int = 0, *, sort: Any = None, cursor: str | None = None) -> Page:
    """A page of the slice's rows for the run, in the slice's sort order (or ``sort``)."""
    s = ref if isinstance(ref, Slice) else get_slice(ws, ref)
    return search(ws, run, Query.model_validate(s.query), confidence, iou, limit, offset, sort=sort, cursor=cursor)


def slice_query(ws: Any, ref: str | int | Slice) -> Query:
    s = ref if isinstance(ref, Slice) else get_slice(ws, ref)
    return Query.model_validate(s.query)
