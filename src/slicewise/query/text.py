"""The text syntax of filters and sorts (CLI, SDK, URL bar), parsed with lark, printed by :func:`to_text`.

>>> f = parse('iou < 0.5 and confidence.max > 0.9 and metadata.camera = "camera-02" and not tag:reviewed')
>>> to_text(f)
'iou < 0.5 and confidence.max > 0.9 and metadata.camera = "camera-02" and not tag:reviewed'
>>> to_text(parse("recall of person between 0.2 and 0.3 or annotation is none"))
'recall[person] between 0.2 and 0.3 or annotation is none'
>>> [s.model_dump(exclude_defaults=True) for s in parse_sort("-iou, metadata.camera")]
[{'field': 'iou', 'desc': True}, {'field': 'metadata.camera'}]

Syntax: ``and``, ``or``, ``not`` and parentheses; a condition is ``FIELD OP VALUE`` with OP one of
``= != < <= > >=``, ``FIELD between A and B``, ``FIELD [not] in (A, B)``, ``FIELD contains "text"``,
``FIELD is [not] none``; ``has:FEATURE``, ``predicted:FEATURE``, ``tag:NAME``, ``error:TYPE`` (a TIDE error
type: classification, localization, both, duplicate, background, missed, or any); ``annotation is none``;
with a baseline run to compare with, ``flip:TYPE`` (tp->fn, fn->tp, fp-new, fp-gone, class, iou, any) and
``delta.METRIC[feature]`` (the run's value minus the baseline's: tp fp fn precision recall f1 iou).
A field may name a feature (``recall[person]``, ``recall of person``, ``count[chair]``) and pin a
metric to a confidence threshold (``fp@0.9``). Names and values with spaces or symbols are quoted.
Keywords are case-insensitive.
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from typing import Any

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError
from pydantic import ValidationError as PydanticValidationError

from slicewise.errors import QueryError
from slicewise.query.ast import And, Cond, Filter, Has, Not, Or, Sort, check_depth
from slicewise.query.fields import normalise_field

GRAMMAR = r"""
filter: _expr
sorts: sort_key ("," sort_key)*
sort_key: [MINUS] field [DIRECTION]

_expr: or_expr
?or_expr: and_expr (_OR and_expr)*
?and_expr: not_expr (_AND not_expr)*
?not_expr: NOT not_expr -> not_
         | _atom
_atom: "(" _expr ")" | has | cond

has: NAME ":" (name | FLIP)
cond: field CMP value                       -> cmp
    | field _BETWEEN value _AND value       -> between
    | field [NOT] _IN "(" [value ("," value)*] ")" -> in_
    | field _CONTAINS value                 -> contains
    | field _IS [NOT] (NONE | ANY)          -> is_

field: name ("." name)* [feature] [at]
     | name _OF name [at]                   -> field_of
feature: "[" name "]"
at: "@" NUMBER
name: NAME | STRING
value: NUMBER | STRING | DATE | NAME | TRUE | FALSE

CMP: "==" | "=" | "!=" | "<>" | "<=" | ">=" | "<" | ">"
MINUS: "-"
DIRECTION.2: /(asc|desc)\b/i
_OR.2: /or\b/i
_AND.2: /and\b/i
NOT.2: /not\b/i
_BETWEEN.2: /between\b/i
_IN.2: /in\b/i
_CONTAINS.2: /contains\b/i
_IS.2: /is\b/i
_OF.2: /of\b/i
NONE.2: /none\b/i
ANY.2: /any\b/i
TRUE.2: /true\b/i
FALSE.2: /false\b/i
DATE.3: /\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?/
NUMBER.2: /[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?/
NAME: /[A-Za-z_][A-Za-z0-9_\-]*/
FLIP.3: /[A-Za-z]+->[A-Za-z]+/
STRING: /"(\\.|[^"\\])*"/ | /'(\\.|[^'\\])*'/
%import common.WS
%ignore WS
"""

KEYWORDS = {"and", "or", "not", "between", "in", "contains", "is", "of", "none", "any", "true", "false",
            "asc", "desc"}
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*\Z")
_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")  # string values printed without quotes
_FRIENDLY = {
    "CMP": "a comparison (= != < <= > >=)", "_BETWEEN": "'between'", "_IN": "'in'", "NOT": "'not'",
    "_CONTAINS": "'contains'", "_IS": "'is'", "_AND": "'and'", "_OR": "'or'",
    "_OF": "'of'", "NAME": "a name", "STRING": "a quoted string", "NUMBER": "a number", "DATE": "a date",
    "TRUE": "true", "FALSE": "false", "NONE": "'none'", "ANY": "'any'", "LPAR": "'('", "RPAR": "')'",
    "LSQB": "'['", "RSQB": "']'", "COLON": "':'", "DOT": "'.'", "COMMA": "','", "AT": "'@'",
    "MINUS": "'-'", "DIRECTION": "asc or desc", "$END": "the end of the text",
}
_HAS = {"has": "annotation", "annotation": "annotation", "label": "annotation", "predicted": "prediction",
        "prediction": "prediction", "tag": "tag", "error": "error", "errors": "error",
        "batch": "batch", "queue": "queue", "flip": "flip", "flips": "flip"}


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(GRAMMAR, start=["filter", "sorts"], parser="lalr", maybe_placeholders=True)


def _unquote(tok: str) -> str:
    if tok[:1] == '"':
        try:  # JSON escapes (what to_text writes), e.g. \" \\ \n \u001f
            return str(json.loads(tok))
        except ValueError:
            pass
    if tok[:1] in "\"'":
        return re.sub(r"\\(.)", lambda m: m.group(1), tok[1:-1])
    return tok


def _number(tok: str) -> float | int:
    if re.fullmatch(r"[+-]?\d+", tok):
        return int(tok)
    return float(tok)


@v_args(inline=True)
class _ToAst(Transformer):  # type: ignore[type-arg]
    def filter(self, node: Any) -> Any:
        return node

    def sorts(self, *keys: Sort) -> list[Sort]:
        return list(keys)

    def sort_key(self, minus: Token | None, field: dict[str, Any], direction: Token | None) -> Sort:
        desc = bool(minus) != (direction is not None and str(direction).lower() == "desc")
        return Sort(desc=desc, **field)

    def or_expr(self, *nodes: Any) -> Or:
        return Or(any=[c for n in nodes for c in (n.any if isinstance(n, Or) else [n])])

    def and_expr(self, *nodes: Any) -> And:
        return And(all=[c for n in nodes for c in (n.all if isinstance(n, And) else [n])])

    def not_(self, _tok: Token, node: Any) -> Not:
        return Not(of=node)

    def name(self, tok: Token) -> str:
        return _unquote(str(tok))

    def feature(self, name: str) -> str:
        return name

    def at(self, tok: Token) -> float:
        return float(tok)

    def field(self, *parts: Any) -> dict[str, Any]:
        *names, feature, at = parts
        return {"field": normalise_field(names), "feature": feature, "at_confidence": at}

    def field_of(self, metric: str, feature: str, at: float | None) -> dict[str, Any]:
        return {"field": normalise_field([metric]), "feature": feature, "at_confidence": at}

    def value(self, tok: Token) -> Any:
        t, s = tok.type, str(tok)
        if t == "NUMBER":
            return _number(s)
        if t == "TRUE":
            return True
        if t == "FALSE":
            return False
        return _unquote(s)

    def cmp(self, field: dict[str, Any], op: Token, value: Any) -> Cond:
        o = {"==": "=", "<>": "!="}.get(str(op), str(op))
        return Cond(op=o, value=value, **field)  # type: ignore[arg-type]

    def between(self, field: dict[str, Any], lo: Any, hi: Any) -> Cond:
        return Cond(op="between", value=[lo, hi], **field)

    def in_(self, field: dict[str, Any], neg: Token | None, *values: Any) -> Cond:
        vals = [v for v in values if v is not None]
        return Cond(op="not in" if neg else "in", value=vals, **field)

    def contains(self, field: dict[str, Any], value: Any) -> Cond:
        return Cond(op="contains", value=value, **field)

    def is_(self, field: dict[str, Any], neg: Token | None, what: Token) -> Any:
        none = (str(what).lower() == "none") != bool(neg)
        f = field["field"]
        if f in ("annotation", "prediction", "tag", "batch", "queue") and field["feature"] is None:
            has = Has(what=f)
            return Not(of=has) if none else has
        return Cond(op="is none" if none else "is any", **field)

    def has(self, kind: Token, name: str) -> Has:
        name = str(name)
        what = _HAS.get(str(kind).lower())
        if what is None:
            raise QueryError(f"unknown prefix {str(kind)!r} in {str(kind)}:{name}",
                             where=f"column {kind.column}", fix="use has:FEATURE, predicted:FEATURE, tag:NAME, error:TYPE, "
                             "batch:NAME or queue:STATE")
        return Has(what=what, name=name)  # type: ignore[arg-type]


def _explain(text: str, exc: UnexpectedInput, what: str) -> QueryError:
    col = getattr(exc, "column", None) or (len(text) + 1)
    pos = getattr(exc, "pos_in_stream", None)
    if pos is None:
        pos = col - 1
    expected: set[str] = set()
    if isinstance(exc, UnexpectedToken | UnexpectedEOF):
        expected = set(exc.expected)
    elif isinstance(exc, UnexpectedCharacters):
        expected = set(exc.allowed or ())
    names = sorted({_FRIENDLY.get(e, e.lower().strip("_")) for e in expected if not e.startswith("__")})
    if isinstance(exc, UnexpectedCharacters):
        got = f"unexpected character {text[pos:pos + 1]!r}"
    elif isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
        got = f"unexpected {str(exc.token)!r}"
    else:
        got, pos = "unexpected end of text", len(text)
    caret = f"\n  {text}\n  {' ' * pos}^"
    exp = ("expected " + ", ".join(names)) if names else ""
    return QueryError(f"cannot parse {what} at column {pos + 1}: {got}" + (f"; {exp}" if exp else "") + caret,
                      fix="check the syntax: FIELD OP VALUE joined with and/or/not; "
                      "quote values with spaces or symbols")


_NESTING_RULES = {"not_", "or_expr", "and_expr"}


def _tree_depth(tree: Any) -> int:
    """How deeply and/or/not nest in a parse tree, without recursion (the transformer recurses, so a
    tree deeper than :data:`~slicewise.query.ast.MAX_DEPTH` is refused before it runs)."""
    deepest = 0
    stack = [(tree, 0)]
    while stack:
        node, d = stack.pop()
        if not isinstance(node, Tree):
            continue
        if node.data in _NESTING_RULES:
            d += 1
            deepest = max(deepest, d)
        stack.extend((c, d) for c in node.children)
    return deepest


def _run(text: str, start: str) -> Any:
    if not isinstance(text, str):
        raise QueryError(f"a {start} must be text, not {type(text).__name__}")
    if len(text) > 20_000:
        raise QueryError(f"the {start} text is {len(text)} characters long", fix="keep it under 20,000 characters")
    try:
        tree = _parser().parse(text, start=start)
    except UnexpectedInput as exc:
        raise _explain(text, exc, "filter" if start == "filter" else "sort") from None
    check_depth(None, _tree_depth(tree))
    try:
        return _ToAst().transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, QueryError):
            raise exc.orig_exc from None
        if isinstance(exc.orig_exc, PydanticValidationError):
            msg = exc.orig_exc.errors()[0].get("msg", "")
            raise QueryError(f"invalid {start}: {msg.removeprefix('Value error, ')}",
                             fix="check the values given to each operator") from None
        raise QueryError(f"invalid {start}: {exc.orig_exc}", fix="check the values given to each operator") from None


def parse(text: str) -> Any:
    """Parse the text syntax into a filter node (:data:`slicewise.query.ast.Filter`).

    An empty text is an error; use ``None`` for "no filter".
    """
    if not text.strip():
        raise QueryError("the filter is empty", fix="give a condition such as 'iou < 0.5', or no filter at all")
    return _run(text, "filter")


def parse_sort(text: str) -> list[Sort]:
    """Parse ``"-iou, metadata.camera asc, confidence.max desc"`` into sort keys."""
    if not text.strip():
        return []
    return list(_run(text, "sorts"))


# -- printing -----------------------------------------------------------------------------------
def _name(s: str) -> str:
    return s if _PLAIN.match(s) and s.lower() not in KEYWORDS else json.dumps(s, ensure_ascii=False)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise QueryError(f"value {v} cannot be written as text", fix="use a finite number")
        return repr(v)
    s = str(v)
    if _BARE.match(s) and s.lower() not in KEYWORDS:
        return s
    return json.dumps(s, ensure_ascii=False)


def _field(field: str, feature: str | None, at: float | None) -> str:
    head, _, rest = field.partition(".")
    out = _name(head) + ("." + _name(rest) if rest else "")
    if feature is not None:
        out += f"[{_name(feature)}]"
    if at is not None:
        out += f"@{at!r}"
    return out


def _text(node: Any, parent: int) -> str:
    if isinstance(node, Or):
        s, prec = " or ".join(_text(n, 1) for n in node.any), 1
    elif isinstance(node, And):
        s, prec = " and ".join(_text(n, 2) for n in node.all), 2
    elif isinstance(node, Not):
        if isinstance(node.of, Has) and node.of.name is None and node.of.what not in ("tag", "batch", "queue"):
            return f"{node.of.what} is none"
        s, prec = "not " + _text(node.of, 3), 3
    elif isinstance(node, Has):
        if node.name is None:
            return f"{node.what} is any" if node.what != "tag" else "tag is any"
        prefix = {"annotation": "has", "prediction": "predicted", "tag": "tag", "error": "error", "batch": "batch",
                  "queue": "queue", "flip": "flip"}[node.what]
        if node.what == "flip" and re.fullmatch(r"[A-Za-z]+->[A-Za-z]+", node.name):
            return f"flip:{node.name}"
        return f"{prefix}:{_name(node.name)}"
    elif isinstance(node, Cond):
        f = _field(node.field, node.feature, node.at_confidence)
        v = node.value
        if node.op == "between":
            assert isinstance(v, list)
            return f"{f} between {_value(v[0])} and {_value(v[1])}"
        if node.op in ("in", "not in"):
            assert isinstance(v, list)
            return f"{f} {node.op} ({', '.join(_value(x) for x in v)})"
        if node.op in ("is none", "is any"):
            return f"{f} is {node.op[3:]}"
        return f"{f} {node.op} {_value(v)}"
    else:
        raise QueryError(f"not a filter node: {node!r}")
    return f"({s})" if prec < parent else s


def to_text(node: Any) -> str:
    """Print a filter node in the text syntax; ``parse(to_text(f)) == f``."""
    if isinstance(node, dict):
        node = Filter.validate_python(node)
    return _text(node, 0)


def sort_to_text(sort: list[Sort]) -> str:
    return ", ".join(("-" if s.desc else "") + _field(s.field, s.feature, s.at_confidence) for s in sort)
