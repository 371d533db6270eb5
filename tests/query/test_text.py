"""The text syntax: parsing, printing, the round trip, and the messages for text that does not parse."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slicewise.errors import QueryError
from slicewise.query import (
    And,
    Cond,
    Filter,
    Has,
    Not,
    Or,
    Query,
    Sort,
    parse,
    parse_sort,
    sort_to_text,
    to_text,
)


def test_parses_the_documented_examples():
    f = parse('iou < 0.5 and confidence.max > 0.9 and metadata.camera = "camera-02" and not tag:reviewed')
    assert f == And(all=[Cond(field="iou", op="<", value=0.5), Cond(field="confidence.max", op=">", value=0.9),
                         Cond(field="metadata.camera", op="=", value="camera-02"),
                         Not(of=Has(what="tag", name="reviewed"))])
    assert parse("recall of person between 0.2 and 0.3") == parse("recall[person] between 0.2 and 0.3") == \
        Cond(field="recall", feature="person", op="between", value=[0.2, 0.3])
    assert parse("has:person") == Has(what="annotation", name="person")
    assert parse("annotation is none") == Not(of=Has(what="annotation"))
    assert parse("count[chair] >= 2") == Cond(field="annotation.count", feature="chair", op=">=", value=2)
    assert parse("split = valid") == Cond(field="split", op="=", value="valid")
    assert parse("fp@0.9 > 0") == Cond(field="fp", op=">", value=0, at_confidence=0.9)
    assert parse("NOT Split IN (train, 'valid') OR x Is Not None") == Or(any=[
        Not(of=Cond(field="split", op="in", value=["train", "valid"])), Cond(field="x", op="is any")])


def test_precedence_and_flattening():
    assert parse("a = 1 or b = 2 and c = 3") == Or(any=[
        Cond(field="a", op="=", value=1), And(all=[Cond(field="b", op="=", value=2), Cond(field="c", op="=", value=3)])])
    assert parse("(a = 1 or b = 2) and c = 3").type == "and"
    assert parse("a = 1 and (b = 2 and c = 3)") == And(all=[Cond(field=n, op="=", value=v) for n, v in
                                                            (("a", 1), ("b", 2), ("c", 3))])
    assert to_text(parse("not (a = 1 or b = 2) and c = 3")) == "not (a = 1 or b = 2) and c = 3"


def test_json_is_the_canonical_form():
    f = parse('(recall[person] < 0.5 or has:"traffic light") and metadata.camera in ("a", "b")')
    data = Filter.dump_python(f, mode="json")
    assert Filter.validate_python(data) == f
    q = Query(filter=f, sort=[Sort(field="iou", desc=True)])
    assert Query.model_validate_json(q.model_dump_json()) == q


def test_sorts():
    assert parse_sort("-iou, metadata.camera asc, confidence desc, recall[person]") == [
        Sort(field="iou", desc=True), Sort(field="metadata.camera"), Sort(field="confidence.max", desc=True),
        Sort(field="recall", feature="person")]
    assert sort_to_text(parse_sort("-iou, recall[person]")) == "-iou, recall[person]"
    assert parse_sort("") == []


@pytest.mark.parametrize("text,column,expected", [
    ("iou <", 6, "a number"),
    ("iou ~ 0.5", 5, "a comparison"),
    ("(iou < 0.5", 11, "')'"),
    ("iou < 0.5 and", 14, "a name"),
    ("iou between 0.1", 16, "'and'"),
    ("has:", 5, "a name"),
    ("iou < 0.5 metadata.x = 1", 11, "'and'"),
    ('metadata.camera = "unterminated', 19, "unexpected character"),
])
def test_parse_errors_show_position_and_expected(text, column, expected):
    with pytest.raises(QueryError) as ei:
        parse(text)
    msg = str(ei.value)
    assert f"column {column}" in msg
    assert expected in msg
    assert text in msg and "^" in msg  # the text with a caret under the position


def test_other_bad_text():
    with pytest.raises(QueryError, match="empty"):
        parse("   ")
    with pytest.raises(QueryError, match="unknown prefix"):
        parse("foo:bar")
    with pytest.raises(QueryError, match="20,000"):
        parse("a = 1 and " * 3000 + "a = 1")


# -- round trip on random ASTs ----------------------------------------------------------------------
names = st.sampled_from(["iou", "recall", "split", "metadata.camera", "metadata.and", "metadata.a b",
                         "confidence.max", "annotation.count", "metric.my-metric", "tp"])
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
numbers = st.one_of(st.integers(-10**6, 10**6), st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False))
scalars = st.one_of(numbers, texts, st.booleans())
features = st.one_of(st.none(), st.sampled_from(["person", "traffic light", "a\"b", "in"]))


@st.composite
def conds(draw):
    op = draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">=", "between", "in", "not in", "contains",
                               "is none", "is any"]))
    if op == "between":
        value = [draw(scalars), draw(scalars)]
    elif op in ("in", "not in"):
        value = draw(st.lists(scalars, min_size=1, max_size=3))
    elif op in ("is none", "is any"):
        value = None
    else:
        value = draw(scalars)
    at = draw(st.one_of(st.none(), st.sampled_from([0.9, 0.5, 0.0])))
    return Cond(field=draw(names), op=op, value=value, feature=draw(features), at_confidence=at)


leaves = st.one_of(conds(), st.builds(Has, what=st.sampled_from(["annotation", "prediction", "tag"]),
                                      name=st.one_of(st.none(), texts.filter(bool))))
trees = st.recursive(leaves, lambda kids: st.one_of(
    st.builds(And, all=st.lists(kids, min_size=2, max_size=3)),
    st.builds(Or, any=st.lists(kids, min_size=2, max_size=3)),
    st.builds(Not, of=kids)), max_leaves=8)


def _canon(node):
    """What a round trip may legitimately change: nested and/or of the same kind are flattened."""
    if isinstance(node, And):
        return And(all=[c for k in node.all for c in (_canon(k).all if isinstance(_canon(k), And) else [_canon(k)])])
    if isinstance(node, Or):
        return Or(any=[c for k in node.any for c in (_canon(k).any if isinstance(_canon(k), Or) else [_canon(k)])])
    if isinstance(node, Not):
        return Not(of=_canon(node.of))
    return node


@settings(max_examples=300, deadline=None)
@given(trees)
def test_round_trip(tree):
    assert parse(to_text(tree)) == _canon(tree)
