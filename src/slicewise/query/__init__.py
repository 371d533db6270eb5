"""Filter, sort and page the data rows of a model run; facets for the filter panel.

Public API (the CLI, the server and the slices package call these):

- AST (canonical, JSON): :class:`Cond`, :class:`Has`, :class:`And`, :class:`Or`, :class:`Not`, the
  :data:`Filter` type adapter, :class:`Sort`, :class:`Query`.
- Text: ``parse(text) -> filter node``, ``to_text(node) -> str``, ``parse_sort(text) -> list[Sort]``,
  ``sort_to_text(sorts) -> str``.
- ``search(ws, run, query=None, confidence=None, iou=None, limit=50, offset=0, *, sort=None, cursor=None)
  -> Page`` (``total``, ``rows`` of ``data_row_id, global_key, sort_value, sort_values``, ``next_cursor``).
- ``count(ws, run, filter=None, confidence=None, iou=None) -> int``; ``counts(ws, run, filters, ...)
  -> list[int | None]`` (several filters in one scan).
- ``row_ids_sql(ws, run, filter=None, confidence=None, iou=None) -> (sql, params)`` selecting one column
  ``data_row_id``: the ``rows=`` argument of the metrics functions.
- ``facets(ws, run, filter=None, confidence=None, iou=None) -> Facets``.
- ``warm(ws, run, facets=False)``: build the row cache and its metrics variant at the run's thresholds
  ahead of the first query (after a metrics job), with ``facets`` the first view's facet columns, then write
  every conf index's arrays beside the workspace (:mod:`slicewise.metrics.levelfiles`).
- ``compile_filter(ws, run, filter, confidence, iou) -> (where_sql, params)`` over ``data_rows r``;
  ``parse_ast(dict) -> filter node``.

A view that combines a slice, a filter, a dataset and a confusion-matrix cell is :mod:`slicewise.view`.

``run`` is a run reference (``"model/run"``, id or ModelRun) or None for every data row of the
workspace (metric, confidence and prediction fields then need a run). ``confidence``/``iou`` default to
the run's config ``view_confidence``/``view_iou``, else the grid values nearest 0.5. Every function
accepts the filter as a node, its JSON dict, or its text.

Fields (see :mod:`slicewise.query.fields`): ``split dataset global_key media_type created_at``,
``metadata.<name>``, ``tp fp fn tn precision recall f1 iou`` (at the thresholds viewed; ``[feature]`` for
one feature; ``@c`` pins the confidence threshold), ``metric.<custom>``, ``confidence.min|max|mean``
(over all the run's predictions on the row, whatever the threshold), ``annotation.count`` (``count``) and
``prediction.count``; ``has:F``, ``predicted:F``, ``tag:T``, ``annotation|prediction is none|any``.

Semantics: two-valued. A condition on a value the row does not have is false (``not`` makes it true);
``a != v`` is ``not a = v``; ``contains`` ignores case; ranges are inclusive. Sorting puts rows without a
value last in both directions and breaks ties by data row id.

Speed: queries read a per-run row cache (:mod:`slicewise.query.rowcache`), rebuilt after any write, so
filters, sorts, counts and facets are column scans of one in-memory table.
"""

from __future__ import annotations

from typing import Any

from slicewise.query.ast import And, Cond, Filter, Has, Not, Or, Query, Similar, Sort, and_
from slicewise.query.compiler import Compiler, as_filter
from slicewise.query.facets import Facets, Histogram, facets
from slicewise.query.search import (
    Page,
    PageRow,
    as_query,
    count,
    counts,
    row_ids_sql,
    search,
    thresholds,
    warm,
)
from slicewise.query.text import parse, parse_sort, sort_to_text, to_text


def compile_filter(ws: Any, run: Any, filter: Any, confidence: float | None = None,
                   iou: float | None = None) -> tuple[str, list[Any]]:
    """The WHERE condition (over ``data_rows r``) and its parameters for a run's rows matching ``filter``."""
    from slicewise.query.search import compiler_for

    return compiler_for(ws, run, confidence, iou, use_cache=False).where(as_filter(filter))


def parse_ast(ast: Any) -> Any:
    """A filter node from its JSON form (dict), with a QueryError when it is not one."""
    return as_filter(ast)


__all__ = [
    "And", "Compiler", "Cond", "Facets", "Filter", "Has", "Histogram", "Not", "Or", "Page", "PageRow", "Query",
    "Similar", "Sort", "and_", "as_filter", "as_query", "compile_filter", "count", "counts", "facets", "parse", "parse_ast", "parse_sort",
    "row_ids_sql", "search", "sort_to_text", "thresholds", "to_text", "warm",
]
