"""A view of a workspace: which rows (run, slice, filter, dataset, confusion-matrix cell), at which
thresholds, in which order. The CLI, the server and the SDK resolve their requests here, so the same
request gives the same rows everywhere.

With ``baseline`` (another run), the filter may use the comparison's ``flip:TYPE`` and ``delta.METRIC``
(:mod:`slicewise.compare`); the rows are still the viewed run's.

The rows of a view are those matching **all** of: the slice's filter, the text (or AST) filter, the
dataset, and the confusion-matrix cell. The sort is the one given, else the slice's. The thresholds
are the ones given, else the run's chosen ones (config ``view_confidence`` / ``view_iou``), else the
values of the run's grids nearest 0.5 (:func:`slicewise.query.thresholds`, the one place that
defaults them); a resolved view says which it used.

>>> import tempfile, os, slicewise
>>> from slicewise import slices
>>> from slicewise.view import View
>>> ws = slicewise.open(os.path.join(tempfile.mkdtemp(), "ws.duckdb"))
>>> _ = ws.add_data_rows("d", [{"global_key": f"k{i}", "row_data": "x.jpg", "split": "valid" if i % 2 else "train",
...                             "metadata": {"n": i}} for i in range(6)])
>>> _ = slices.create_slice(ws, "validation", "split = valid", sort="-metadata.n")
>>> v = View(slice="validation", filter="metadata.n > 1").resolve(ws)
>>> v.text, [r.global_key for r in v.page(limit=10).rows], v.count()
('split = valid and metadata.n > 1', ['k5', 'k3'], 2)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from slicewise.errors import QueryError
from slicewise.query import (
    Cond,
    Facets,
    Or,
    Page,
    Query,
    Similar,
    Sort,
    and_,
    as_filter,
    count,
    facets,
    parse_sort,
    row_ids_sql,
    sort_to_text,
    to_text,
)
from slicewise.query import search as _search
from slicewise.query import thresholds as _thresholds
from slicewise.types.domain import ModelRun

if TYPE_CHECKING:
    from slicewise.slices import Slice
    from slicewise.workspace import Workspace

__all__ = ["ResolvedView", "View"]


@dataclass(frozen=True)
class View:
    """What to show. Every part is optional; see the module docstring for how they combine."""

    run: str | int | ModelRun | None = None
    confidence: float | None = None
    iou: float | None = None
    slice: str | int | None = None  # a saved slice (id or name), or an auto slice of the run (key or name)
    filter: Any = None  # text, a filter node, or its JSON form
    dataset: str | None = None
    cell: tuple[str | None, str | None] | str | None = None  # confusion-matrix cell (true, predicted); "None" = none
    sort: str | Sequence[Sort] | None = None  # overrides the slice's sort
    order: str | None = None  # "asc" / "desc": the direction of a single sort key given without one
    similar: Similar | dict[str, Any] | None = None  # rows similar to anchor rows (overrides the slice's)
    baseline: str | int | ModelRun | None = None  # a run to compare with (``flip:`` / ``delta.``, slicewise.compare)

    def resolve(self, ws: Workspace) -> ResolvedView:
        """Look the run, slice and thresholds up, parse the filter and sort, combine them."""
        from slicewise.query.search import fresh_run

        run = fresh_run(ws, self.run) if self.run not in (None, "") else None
        c, t, source = None, None, {}
        if run is not None:
            c, t = _thresholds(ws, run, self.confidence, self.iou)
            cfg = run.config or {}
            source = {"confidence": _source(self.confidence, cfg.get("view_confidence")),
                      "iou": _source(self.iou, cfg.get("view_iou"))}
        elif self.confidence is not None or self.iou is not None:
            _thresholds(ws, None, self.confidence, self.iou)  # validated, though without a run they do nothing
        sl = None
        parts: list[Any] = []
        keys: list[Sort] = []
        similar = None
        if self.slice not in (None, ""):
            from slicewise.slices import resolve_slice

            sl = resolve_slice(ws, self.slice, run)  # type: ignore[arg-type]
            base = Query.model_validate(sl.query)
            parts.append(base.filter)
            keys = list(base.sort)
            similar = base.similar
        parts.append(as_filter(self.filter))
        if self.dataset not in (None, ""):
            parts.append(Cond(field="dataset", op="=", value=self.dataset))
        if self.cell not in (None, ""):
            if run is None or c is None or t is None:
                raise QueryError("a confusion-matrix cell needs a model run", where="cell", fix="give the run")
            parts.append(_cell_filter(ws, run, self.cell, c, t))  # type: ignore[arg-type]
        if self.sort not in (None, "") and self.sort != []:
            keys = _sort_keys(self.sort, self.order)
        if self.similar is not None:
            from slicewise.query.search import as_similar

            similar = as_similar(self.similar)
        baseline = None
        if self.baseline not in (None, ""):
            if run is None:
                raise QueryError("a baseline run needs a run to compare it with", where="baseline", fix="give the run")
            baseline = fresh_run(ws, self.baseline)
        return ResolvedView(ws, run, c, t, source, sl, Query(filter=and_(*parts), sort=keys, similar=similar),
                            baseline)


@dataclass
class ResolvedView:
    """A view with its run, thresholds (and where each came from: ``given``, ``run`` setting or ``grid``
    default), slice and combined query; its methods run it."""

    ws: Workspace = field(repr=False)
    run: ModelRun | None
    confidence: float | None
    iou: float | None
    source: dict[str, str]
    slice: Slice | None
    query: Query
    baseline: ModelRun | None = None

    @property
    def text(self) -> str:
        """The combined filter as text ("" when every row matches)."""
        return to_text(self.query.filter) if self.query.filter is not None else ""

    @property
    def sort_text(self) -> str:
        return sort_to_text(self.query.sort)

    def page(self, limit: int = 50, offset: int = 0, *, cursor: str | None = None, with_total: bool = True) -> Page:
        """One page of the matching rows in the view's order (ties by data row id)."""
        return _search(self.ws, self.run, self.query, self.confidence, self.iou, limit, offset, cursor=cursor,
                       with_total=with_total, baseline=self.baseline)

    def count(self) -> int:
        return count(self.ws, self.run, self.query.filter, self.confidence, self.iou, similar=self.query.similar,
                     baseline=self.baseline)

    def rows_sql(self) -> tuple[str, list[Any]] | None:
        """``(sql, params)`` selecting ``data_row_id`` of the matching rows, for the metrics functions'
        ``rows=``; None when the view has no filter and no similarity search (every row of the run)."""
        if self.query.filter is None and self.query.similar is None:
            return None
        return row_ids_sql(self.ws, self.run, self.query.filter, self.confidence, self.iou, similar=self.query.similar,
                           baseline=self.baseline)

    def facets(self, bins: int | None = None) -> Facets:
        extra: dict[str, Any] = {"bins": bins} if bins is not None else {}
        return facets(self.ws, self.run, self.query.filter, self.confidence, self.iou, similar=self.query.similar,
                      baseline=self.baseline, **extra)

    def ids(self, cap: int) -> tuple[int, list[int], list[str]]:
        """(total, ids, global keys) of every matching row up to ``cap``, in the view's order."""
        ids: list[int] = []
        keys: list[str] = []
        cursor, total = None, 0
        while len(ids) < cap:
            page = self.page(min(10_000, cap - len(ids)), cursor=cursor, with_total=cursor is None)
            if cursor is None:
                total = page.total
            ids += [r.data_row_id for r in page.rows]
            keys += [r.global_key for r in page.rows]
            cursor = page.next_cursor
            if cursor is None:
                break
        return total, ids, keys


def _source(given: Any, setting: Any) -> str:
    return "given" if given is not None else "run" if setting is not None else "grid"


def _sort_keys(sort: str | Sequence[Sort], order: str | None) -> list[Sort]:
    if not isinstance(sort, str):
        return [s if isinstance(s, Sort) else Sort.model_validate(s) for s in sort]
    keys = parse_sort(sort)
    if order not in (None, "", "asc", "desc"):
        raise QueryError(f"order {order!r} is not asc or desc", where="order", fix="use asc or desc")
    explicit = sort.strip().startswith("-") or sort.strip().lower().endswith((" asc", " desc"))
    if order in ("asc", "desc") and len(keys) == 1 and not explicit:
        keys = [keys[0].model_copy(update={"desc": order == "desc"})]
    return keys


def _cell_filter(ws: Workspace, run: ModelRun, cell: tuple[str | None, str | None] | str, c: float, t: float) -> Any:
    """The rows of one confusion-matrix cell as a ``global_key in (...)`` condition."""
    from slicewise import metrics

    if isinstance(cell, str):
        try:
            pair = json.loads(cell)
            true_class, pred_class = pair
        except (ValueError, TypeError):
            raise QueryError(f"cell {cell!r} is not a JSON pair [true class, predicted class]", where="cell",
                             fix='give e.g. ["chair", "None"]') from None
    else:
        true_class, pred_class = cell
    sql, params = metrics.confusion_cell_rows(ws, run, c, t, true_class, pred_class)
    ids = [int(r[0]) for r in ws.sql(sql, params).fetchall()]
    keys: list[Any] = [r.global_key for r in ws.data_rows(ids=ids)] if ids else []
    return Cond(field="global_key", op="in", value=keys) if keys else Or(any=[])  # (an empty "or" matches no row)
