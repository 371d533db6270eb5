"""The canonical form of a query: a pydantic AST that serialises to JSON.

This is what the API, the web UI and stored slices use; the text syntax (:mod:`slicewise.query.text`)
parses to it and prints from it. Five node types, told apart by ``type``:

- ``{"type": "and", "all": [...]}``, ``{"type": "or", "any": [...]}``, ``{"type": "not", "of": {...}}``
- ``{"type": "cond", "field": "iou", "op": "<", "value": 0.5}``: a comparison on one field
  (``feature`` narrows a metric, confidence or count to one feature; ``at_confidence`` pins a metric
  to a confidence threshold other than the one being viewed)
- ``{"type": "has", "what": "annotation" | "prediction" | "tag", "name": "person"}``: the data row has
  ground truth / a prediction (of feature ``name``, or of any feature when ``name`` is null) / the tag;
  ``{"type": "has", "what": "error", "name": "localization"}``: the row has at least one TIDE error of that
  type (or of any type: ``"any"``) at the thresholds being viewed (see :mod:`slicewise.metrics.tide`);
  ``{"type": "has", "what": "flip", "name": "tp->fn"}``: an object of the row flipped that way between the
  baseline run and the run viewed (``any``: any flip; see :mod:`slicewise.compare.flips`)

>>> f = And(all=[Cond(field="iou", op="<", value=0.5), Not(of=Has(what="tag", name="reviewed"))])
>>> Filter.validate_json(Filter.dump_json(f)) == f
True
>>> Cond(field="split", op="=", value="valid").model_dump(exclude_none=True)
{'type': 'cond', 'field': 'split', 'op': '=', 'value': 'valid'}
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from slicewise.errors import QueryError

Op = Literal["=", "!=", "<", "<=", ">", ">=", "between", "in", "not in", "contains", "is none", "is any"]
OPS: tuple[str, ...] = ("=", "!=", "<", "<=", ">", ">=", "between", "in", "not in", "contains", "is none", "is any")
Scalar = float | int | str | bool
Value = Scalar | list[Scalar] | None
#: how deeply ``and`` / ``or`` / ``not`` may nest (``not not ... x`` counts one a ``not``); deeper filters
#: are refused before anything recurses over them
MAX_DEPTH = 100


def _finite(v: Any) -> Any:
    """Refuse NaN and infinities: they compare false with everything (or true with everything, under ``not``)."""
    for x in v if isinstance(v, list) else [v]:
        if isinstance(x, float) and not math.isfinite(x):
            raise ValueError(f"{x} is not a finite number; give a finite value")
    return v


class _Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Cond(_Node):
    """``field op value``. ``between`` takes ``[low, high]`` (inclusive), ``in``/``not in`` a list,
    ``is none``/``is any`` no value."""

    type: Literal["cond"] = "cond"
    field: str
    op: Op
    value: Value = Field(default=None, validate_default=True)
    feature: str | None = None
    at_confidence: float | None = None

    @field_validator("value")
    @classmethod
    def _shape(cls, v: Any, info: Any) -> Any:
        op = info.data.get("op")
        if op == "between" and not (isinstance(v, list) and len(v) == 2):
            raise ValueError("'between' needs a value [low, high]")
        if op in ("in", "not in") and not isinstance(v, list):
            raise ValueError(f"{op!r} needs a list value")
        if op in ("is none", "is any") and v is not None:
            raise ValueError(f"{op!r} takes no value")
        if op not in ("between", "in", "not in", "is none", "is any") and (v is None or isinstance(v, list)):
            raise ValueError(f"{op!r} needs one value")
        return _finite(v)

    @field_validator("at_confidence")
    @classmethod
    def _at(cls, v: Any) -> Any:
        return _finite(v)


class Has(_Node):
    """The data row has ground truth / a prediction / a tag (of ``name``, or of any when ``name`` is null) /
    a TIDE error of type ``name`` (``what="error"``) / is in the labelling batch ``name`` (``what="batch"``) /
    is in the labelling-queue state ``name`` (``what="queue"``: to_label, in_review, rework, done)."""

    type: Literal["has"] = "has"
    what: Literal["annotation", "prediction", "tag", "error", "batch", "queue", "flip"]
    name: str | None = None


class And(_Node):
    type: Literal["and"] = "and"
    all: list[FilterNode]


class Or(_Node):
    type: Literal["or"] = "or"
    any: list[FilterNode]


class Not(_Node):
    type: Literal["not"] = "not"
    of: FilterNode


FilterNode = Annotated[Cond | Has | And | Or | Not, Field(discriminator="type")]
And.model_rebuild()
Or.model_rebuild()
Not.model_rebuild()

#: validates / dumps any filter node: ``Filter.validate_python(dict)``, ``Filter.dump_json(node)``
Filter: TypeAdapter[Cond | Has | And | Or | Not] = TypeAdapter(FilterNode)


class Sort(_Node):
    """Sort by a field (a metric, ``confidence.max``, ``metadata.<name>``, ``created_at``...)."""

    field: str
    desc: bool = False
    feature: str | None = None
    at_confidence: float | None = None

    @field_validator("at_confidence")
    @classmethod
    def _at(cls, v: Any) -> Any:
        return _finite(v)


class Similar(_Node):
    """Similarity to anchor rows in an embedding space: with ``k``, only the ``k`` rows nearest to the
    anchors among those matching the rest of the query; without, every row with a vector in the space.
    It gives the sort key ``similarity`` (the score, higher is closer)."""

    space: str = Field(min_length=1, max_length=64)
    anchors: list[int] = Field(min_length=1, max_length=20)
    k: int | None = Field(default=None, ge=1, le=10_000)


class Query(_Node):
    """A filter (``None`` = every data row of the run), its sort keys (ties broken by data row id), and
    optionally a similarity search (whose anchors a saved slice keeps, so it picks up new rows)."""

    filter: FilterNode | None = None
    sort: list[Sort] = Field(default_factory=list)
    similar: Similar | None = None


_NESTING = {"and": "all", "or": "any", "not": "of"}


def nesting_depth(node: Any) -> int:
    """How deeply ``and`` / ``or`` / ``not`` nest in a filter node or its JSON form (a condition alone: 0),
    counted without recursion, so any input can be measured.

    >>> nesting_depth({"type": "not", "of": {"type": "and", "all": [{"type": "has", "what": "tag"}]}})
    2
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(node, 0)]
    while stack:
        n, d = stack.pop()
        if isinstance(n, And | Or | Not):
            d += 1
            kids: Any = n.all if isinstance(n, And) else n.any if isinstance(n, Or) else [n.of]
        elif isinstance(n, dict):
            if n.get("type") in _NESTING:
                d += 1
            kids = list(n.values())
        elif isinstance(n, list | tuple):
            kids = n
        else:
            continue
        deepest = max(deepest, d)
        stack.extend((k, d) for k in kids)
    return deepest


def check_depth(node: Any, depth: int | None = None) -> None:
    """Raise QueryError when a filter nests ``and`` / ``or`` / ``not`` deeper than :data:`MAX_DEPTH`."""
    d = nesting_depth(node) if depth is None else depth
    if d > MAX_DEPTH:
        raise QueryError(f"the filter nests and/or/not {d} levels deep; at most {MAX_DEPTH} are allowed",
                         where="filter", fix="write it flatter: drop doubled 'not's (not not x is x) and join "
                         "conditions in one list (a and b and c) instead of nesting them")


def and_(*nodes: Any) -> Any:
    """Conjunction that flattens nested ``and`` and drops ``None``.

    >>> and_(None, Has(what="tag", name="x")).type
    'has'
    """
    flat: list[Any] = []
    for n in nodes:
        if n is None:
            continue
        flat.extend(n.all if isinstance(n, And) else [n])
    if not flat:
        return None
    return flat[0] if len(flat) == 1 else And(all=flat)
