"""Bad and hostile input: clear errors with suggestions, values that stay data, a store never altered."""

from __future__ import annotations

import json

import pytest

from slicewise.errors import LimitError, QueryError
from slicewise.query import Cond, Sort, count, facets, search

from .sw_query_world import HOSTILE


@pytest.mark.parametrize("text,message,hint", [
    ("recal < 0.5", "unknown field 'recal'", "did you mean 'recall'"),
    ("metadata.camra = x", "unknown metadata field 'camra'", "did you mean 'metadata.camera'"),
    ("camera = x", "unknown field 'camera'", "did you mean 'metadata.camera'"),
    ("confidence.maximum > 1", "unknown field", "did you mean 'confidence.max'"),
    ("has:dgo", "unknown feature 'dgo'", "did you mean 'dog'"),
    ("recall[persn] < 0.5", "unknown feature 'persn'", "did you mean 'person'"),
    ('iou < "abc"', "not a number", "write a number"),
    ("metadata.speed > fast", "not a number", "write a number"),
    ('created_at > "yesterday"', "not a date", "ISO date"),
    ("split = validd", "not an option of split", "did you mean 'valid'"),
    ("split < 3", "operator '<' does not apply to split", "use one of"),
    ("iou contains 3", "operator 'contains' does not apply", "use one of"),
    ("metadata.camera[dog] = x", "cannot be narrowed to a feature", "only metrics"),
    ("split@0.9 = valid", "cannot be pinned", "only the metrics"),
    ("fp@1.5 > 0", "outside [0, 1]", "between 0 and 1"),
    ("annotation = 3", "is not compared with a value", "annotation is none"),
])
def test_bad_fields_values_and_operators(generated, text, message, hint):
    with pytest.raises(QueryError) as ei:
        search(generated.ws, generated.run, text)
    assert message in str(ei.value)
    assert hint in str(ei.value)


def test_bad_ast_nodes(generated):
    w = generated
    for bad in [{"type": "cond", "field": "iou", "op": "; DROP TABLE data_rows", "value": 1},
                {"type": "cond", "field": "iou", "op": "between", "value": 1},
                {"type": "cond", "field": "iou", "op": "<"},
                {"type": "xor", "of": []},
                {"type": "has", "what": "annotation", "name": "dog", "extra": 1}]:
        with pytest.raises(QueryError, match="invalid filter"):
            search(w.ws, w.run, bad)
    with pytest.raises(LimitError):
        search(w.ws, w.run, None, limit=10**6)
    with pytest.raises(QueryError, match="cursor"):
        search(w.ws, w.run, None, sort="-iou", cursor="not-a-cursor")
    with pytest.raises(QueryError, match="threshold"):
        search(w.ws, w.run, None, confidence=2.0)


HOSTILE_TEXT = [
    'metadata."x\'; DROP TABLE data_rows; --" = 1',
    'recall["a\\"]; DELETE FROM tags; --"] < 1',
    'tag:"x\'); DELETE FROM tags; --"',
    'metadata.camera = "\'; UPDATE data_rows SET split = \'train\'; --"',
    "global_key in ('a', 'b''; DROP TABLE x')",
    'metadata.camera contains "%_\\\\"',
    "select * from data_rows",
    "iou < 0.5; DROP TABLE data_rows",
    "1 = 1 or 1 = 1",
]


@pytest.mark.parametrize("text", HOSTILE_TEXT)
def test_hostile_text_is_data_or_a_clear_error(generated, table_snapshot, text):
    w = generated
    facets(w.ws, w.run)  # metrics tables are materialised on first use: do it before the snapshot
    before = table_snapshot(w.ws)
    try:
        page = search(w.ws, w.run, text, limit=1000)
        facets(w.ws, w.run, text)
    except QueryError as exc:
        assert str(exc)  # a clear, slicewise error
    else:
        assert page.total <= len(w.run_ids)
    assert table_snapshot(w.ws) == before


def test_hostile_values_match_as_data(generated):
    w = generated
    want = sorted(r.id for r in w.run_rows() if r.md.get("camera") == HOSTILE)
    assert want
    got = search(w.ws, w.run, "metadata.camera = " + json.dumps(HOSTILE), limit=1000)
    assert [r.data_row_id for r in got.rows] == want
    assert count(w.ws, w.run, Cond(field="metadata.camera", op="in", value=[HOSTILE, "x"])) == len(want)
    assert count(w.ws, w.run, "metadata.camera contains \"DROP TABLE\"") == len(want)
    assert count(w.ws, w.run, 'tag:"\'; DROP TABLE tags; --"') == 0


def test_hostile_sort_fields_are_refused(generated):
    w = generated
    for s in [Sort(field="iou; DROP TABLE data_rows"), Sort(field="metadata.x\"; --"), Sort(field="r.id")]:
        with pytest.raises(QueryError, match="unknown"):
            search(w.ws, w.run, None, sort=[s])
    with pytest.raises(QueryError):
        search(w.ws, w.run, None, sort="iou; drop table data_rows")
