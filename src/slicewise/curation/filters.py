"""The query language's ``batch:NAME`` and ``queue:STATE`` (``batch is any``, ``queue is none``...): the SQL
condition on the data row ``r`` that :mod:`slicewise.query.compiler` puts in a filter."""

from __future__ import annotations

from typing import Any

from slicewise.errors import NotFoundError, QueryError, SlicewiseError


def has_sql(ws: Any, what: str, name: str | None) -> tuple[str, list[Any]]:
    if what == "batch":
        if name is None:
            return "r.id IN (SELECT data_row_id FROM batch_rows)", []
        from slicewise.curation.batches import get_batch

        try:
            bid = get_batch(ws, name).id
        except NotFoundError as exc:
            raise QueryError(f"no batch {name!r}", where=f"batch:{name}", fix=exc.fix) from None
        return "r.id IN (SELECT data_row_id FROM batch_rows WHERE batch_id = ?)", [bid]
    if name is None:
        return "r.id IN (SELECT data_row_id FROM queue)", []
    from slicewise.curation.queue import STATES, state_name

    try:
        state = state_name(name)
    except SlicewiseError:
        raise QueryError(f"unknown queue state {name!r}", where=f"queue:{name}",
                         fix="use queue:" + ", queue:".join(STATES)) from None
    return "r.id IN (SELECT data_row_id FROM queue WHERE state = ?)", [state]


def facet_counts(cur: Any, ids_sql: str, params: list[Any]) -> tuple[dict[str, int], dict[str, int]]:
    """(rows per batch name, rows per queue state) among the rows ``ids_sql`` selects."""
    from slicewise.curation.queue import STATES

    if not cur.execute("SELECT count(*) FROM batches").fetchone()[0] and \
            not cur.execute("SELECT count(*) FROM queue").fetchone()[0]:
        return {}, {}
    batches = {name: int(n) for name, n in cur.execute(
        f"SELECT b.name, count(*) AS n FROM batch_rows br JOIN batches b ON b.id = br.batch_id "
        f"WHERE br.data_row_id IN ({ids_sql}) GROUP BY b.name ORDER BY b.name", params).fetchall()}
    found = dict(cur.execute(f"SELECT state, count(*) FROM queue WHERE data_row_id IN ({ids_sql}) GROUP BY state",
                             params).fetchall())
    return batches, {s: int(found[s]) for s in STATES if found.get(s)}
