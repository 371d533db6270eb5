"""Every filter kind, sort and combination against membership computed in plain Python."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from slicewise.query import count, parse, row_ids_sql, search, to_text
from slicewise.state import State

from .sw_query_world import HOSTILE, World

C = 0.5  # the confidence threshold viewed (fake metrics are keyed by it)


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def conf(r, agg, feature=None):
    vals = [s for f, s in r.pred if feature is None or f == feature]
    if not vals:
        return None
    return {"min": min, "max": max, "mean": lambda v: sum(v) / len(v)}[agg](vals)


def metric(w: World, r, m, feature=None, c=C):
    return w.metric(r.id, m, feature, c)


def lt(v, x):
    return v is not None and v < x


def gt(v, x):
    return v is not None and v > x


COMMON = [
    ("split = valid", lambda w, r: r.split == "valid"),
    ("split != valid", lambda w, r: r.split != "valid"),
    ("split in (train, test)", lambda w, r: r.split in ("train", "test")),
    ("split not in (train, test)", lambda w, r: r.split not in ("train", "test")),
    ('metadata.camera = "camera-02"', lambda w, r: r.md.get("camera") == "camera-02"),
    ('metadata.camera != "camera-02"', lambda w, r: r.md.get("camera") != "camera-02"),
    ('metadata.camera in ("camera-01", "cam 3")', lambda w, r: r.md.get("camera") in ("camera-01", "cam 3")),
    ('metadata.camera contains "CAMERA"', lambda w, r: "camera" in (r.md.get("camera") or "").lower()),
    ("metadata.camera is none", lambda w, r: "camera" not in r.md),
    ("metadata.camera is not none", lambda w, r: "camera" in r.md),
    ("metadata.camera = " + json.dumps(HOSTILE), lambda w, r: r.md.get("camera") == HOSTILE),
    ("tag:reviewed", lambda w, r: "reviewed" in r.tags),
    ("not tag:reviewed", lambda w, r: "reviewed" not in r.tags),
    ('tag:"re-label" or tag:night', lambda w, r: bool({"re-label", "night"} & r.tags)),
    ("tag is none", lambda w, r: not r.tags),
    ("annotation is none", lambda w, r: not r.gt),
    ("annotation is any", lambda w, r: bool(r.gt)),
    ("prediction is none", lambda w, r: not r.pred),
    ("count = 0", lambda w, r: sum(r.gt.values()) == 0),
    ("count >= 3", lambda w, r: sum(r.gt.values()) >= 3),
    ("count between 1 and 2", lambda w, r: 1 <= sum(r.gt.values()) <= 2),
    ("prediction.count < 2", lambda w, r: len(r.pred) < 2),
    ("prediction.count in (0, 4)", lambda w, r: len(r.pred) in (0, 4)),
    ("confidence.max > 0.9", lambda w, r: gt(conf(r, "max"), 0.9)),
    ("confidence < 0.5", lambda w, r: lt(conf(r, "max"), 0.5)),
    ("confidence.min <= 0.3", lambda w, r: conf(r, "min") is not None and conf(r, "min") <= 0.3),
    ("confidence.mean between 0.3 and 0.6", lambda w, r: conf(r, "mean") is not None and 0.3 <= conf(r, "mean") <= 0.6),
    ("not confidence.max > 0.5", lambda w, r: not gt(conf(r, "max"), 0.5)),
    ("iou < 0.5", lambda w, r: lt(metric(w, r, "iou"), 0.5)),
    ("iou is none", lambda w, r: metric(w, r, "iou") is None),
    ("not iou < 0.5", lambda w, r: not lt(metric(w, r, "iou"), 0.5)),
    ("tp > 0", lambda w, r: metric(w, r, "tp") > 0),
    ("fp >= 2 and fn = 0", lambda w, r: metric(w, r, "fp") >= 2 and metric(w, r, "fn") == 0),
    ("tn = 1", lambda w, r: metric(w, r, "tn") == 1),
    ("precision < 0.5 or recall > 0.7", lambda w, r: lt(metric(w, r, "precision"), 0.5) or gt(metric(w, r, "recall"), 0.7)),
    ("f1 between 0.2 and 0.6", lambda w, r: metric(w, r, "f1") is not None and 0.2 <= metric(w, r, "f1") <= 0.6),
    ("fp@0.9 > 0", lambda w, r: metric(w, r, "fp", c=0.9) > 0),
    ("dataset != gen2", lambda w, r: r.dataset != "gen2"),
    ('global_key contains "0"', lambda w, r: "0" in r.key),
    ('created_at < "2000-01-01"', lambda w, r: False),
    ('created_at > "2000-01-01"', lambda w, r: True),
    ("iou < 0.5 and confidence.max > 0.9 and not tag:reviewed",
     lambda w, r: lt(metric(w, r, "iou"), 0.5) and gt(conf(r, "max"), 0.9) and "reviewed" not in r.tags),
    ('not (split = train or metadata.camera = "camera-01") and (annotation is none or tp >= 1)',
     lambda w, r: not (r.split == "train" or r.md.get("camera") == "camera-01") and (not r.gt or metric(w, r, "tp") >= 1)),
]

INDOOR = [
    ("has:chair", lambda w, r: r.gt["chair"] > 0),
    ("not has:chair", lambda w, r: r.gt["chair"] == 0),
    ("predicted:chair", lambda w, r: any(f == "chair" for f, _ in r.pred)),
    ("has:chair and not predicted:chair", lambda w, r: r.gt["chair"] > 0 and not any(f == "chair" for f, _ in r.pred)),
    ("count[chair] >= 2", lambda w, r: r.gt["chair"] >= 2),
    ("count[chair] < 1", lambda w, r: r.gt["chair"] < 1),
    ("prediction.count[chair] between 1 and 2", lambda w, r: 1 <= sum(f == "chair" for f, _ in r.pred) <= 2),
    ("confidence.mean[chair] >= 0.5", lambda w, r: conf(r, "mean", "chair") is not None
     and conf(r, "mean", "chair") >= 0.5),
    ("recall[chair] between 0.2 and 0.6", lambda w, r: metric(w, r, "recall", "chair") is not None
     and 0.2 <= metric(w, r, "recall", "chair") <= 0.6),
    ("recall of chair < 0.5", lambda w, r: lt(metric(w, r, "recall", "chair"), 0.5)),
    ("iou[cup] is any", lambda w, r: metric(w, r, "iou", "cup") is not None),
    ("metadata.brightness > 5", lambda w, r: gt(r.md.get("brightness"), 5)),
    ("metadata.brightness between 2 and 4.5", lambda w, r: "brightness" in r.md and 2 <= r.md["brightness"] <= 4.5),
    ("metadata.brightness is none", lambda w, r: "brightness" not in r.md),
    ("metadata.brightness in (0.0, 3.7, 7.4)", lambda w, r: r.md.get("brightness") in (0.0, 3.7, 7.4)),
    ('metadata.captured < "2024-03-01"', lambda w, r: r.md["captured"] < datetime(2024, 3, 1)),
    ("metadata.captured between 2024-02-01 and 2024-04-01T12:00",
     lambda w, r: datetime(2024, 2, 1) <= r.md["captured"] <= datetime(2024, 4, 1, 12)),
    ("metadata.weather = rain", lambda w, r: r.md["weather"] == "rain"),
    ("metadata.weather in (sunny, cloudy) and not split = none",
     lambda w, r: r.md["weather"] in ("sunny", "cloudy") and r.split != "none"),
    ("dataset = indoor", lambda w, r: True),
    ('(has:chair or has:diningtable) and not tag:reviewed and metadata.brightness <= 7',
     lambda w, r: (r.gt["chair"] or r.gt["diningtable"]) and "reviewed" not in r.tags
     and (r.md.get("brightness") if _num(r.md.get("brightness")) else 99) <= 7),
]

GENERATED = [
    ('has:"traffic light"', lambda w, r: r.gt["traffic light"] > 0),
    ("predicted:dog or predicted:cat", lambda w, r: any(f in ("dog", "cat") for f, _ in r.pred)),
    ("count[person] = 0 and count >= 1", lambda w, r: r.gt["person"] == 0 and sum(r.gt.values()) >= 1),
    ("confidence.max[dog] > 0.5", lambda w, r: gt(conf(r, "max", "dog"), 0.5)),
    ("precision[cat] < 0.6", lambda w, r: lt(metric(w, r, "precision", "cat"), 0.6)),
    ("metadata.speed < 0", lambda w, r: lt(r.md.get("speed"), 0)),
    ("metadata.speed >= 10 or metadata.speed is none", lambda w, r: (r.md.get("speed") if "speed" in r.md else 99) >= 10),
    ("dataset in (gen)", lambda w, r: r.dataset == "gen"),
]


def _expected(w: World, pred) -> list[int]:
    return sorted(r.id for r in w.run_rows() if pred(w, r))


def _all_ids(w: World, text: str, **kw) -> list[int]:
    page = search(w.ws, w.run, text, C, 0.5, limit=10_000, **kw)
    return [r.data_row_id for r in page.rows]


@pytest.fixture(autouse=True, params=["cached", "direct"])
def _cache_mode(request, monkeypatch):
    """Every test runs over the row cache and over the store's tables directly: both must agree."""
    monkeypatch.setattr(State, "enabled", request.param == "cached")


@pytest.mark.parametrize("text,pred", COMMON, ids=[t for t, _ in COMMON])
def test_common_filters(world, text, pred):
    want = _expected(world, pred)
    got = _all_ids(world, text)
    assert got == want, text
    assert count(world.ws, world.run, text, C, 0.5) == len(want)
    sql, params = row_ids_sql(world.ws, world.run, text, C, 0.5)
    assert sorted(r[0] for r in world.ws.sql(sql, params).fetchall()) == want
    # the AST and the text forms agree
    assert parse(to_text(parse(text))) == parse(text)


@pytest.mark.parametrize("text,pred", INDOOR, ids=[t for t, _ in INDOOR])
def test_indoor_filters(indoor, text, pred):
    want = _expected(indoor, pred)
    assert _all_ids(indoor, text) == want
    assert 0 < len(want) < len(indoor.run_ids) or text.startswith("dataset"), "a filter that selects all or nothing tests little"


@pytest.mark.parametrize("text,pred", GENERATED, ids=[t for t, _ in GENERATED])
def test_generated_filters(generated, text, pred):
    assert _all_ids(generated, text) == _expected(generated, pred)


def test_filters_without_run_cover_every_row(generated):
    w = generated
    got = [r.data_row_id for r in search(w.ws, None, "tag:night", limit=10_000).rows]
    assert got == sorted(r.id for r in w.rows.values() if "night" in r.tags)
    assert len(got) > len([i for i in got if i in w.run_ids])  # rows outside the run are included


SORTS = [
    ("-confidence.max", lambda w, r: conf(r, "max"), True),
    ("confidence.min", lambda w, r: conf(r, "min"), False),
    ("iou", lambda w, r: metric(w, r, "iou"), False),
    ("-recall", lambda w, r: metric(w, r, "recall"), True),
    ("fp desc", lambda w, r: metric(w, r, "fp"), True),
    ("metadata.camera", lambda w, r: r.md.get("camera"), False),
    ("-count", lambda w, r: sum(r.gt.values()), True),
    ("global_key desc", lambda w, r: r.key, True),
    ("created_at", lambda w, r: r.created_at, False),
]


def _sorted(w: World, rows, key, desc):
    with_v = [(key(w, r), r.id) for r in rows]
    present = sorted([x for x in with_v if x[0] is not None], key=lambda x: x[1])
    present.sort(key=lambda x: x[0], reverse=desc)  # stable: ties stay in id order
    return [i for _, i in present] + sorted(i for v, i in with_v if v is None)


@pytest.mark.parametrize("sort,key,desc", SORTS, ids=[s for s, _, _ in SORTS])
def test_sorts_with_tie_break(world, sort, key, desc):
    rows = [r for r in world.run_rows() if r.split != "train"]
    want = _sorted(world, rows, key, desc)
    got = [r.data_row_id for r in search(world.ws, world.run, "not split = train", C, 0.5, limit=10_000, sort=sort).rows]
    assert got == want


def test_multi_key_sort_and_metadata_number(indoor):
    w = indoor
    got = search(w.ws, w.run, None, C, 0.5, limit=10_000, sort="metadata.weather, -metadata.brightness").rows
    def k(r):
        b = r.md.get("brightness")
        return (r.md["weather"], b is None, -(b or 0), r.id)
    assert [x.data_row_id for x in got] == [r.id for r in sorted(w.run_rows(), key=k)]
    assert got[0].sort_values[0] == got[0].sort_value


@pytest.mark.parametrize("sort", ["-confidence.max", "metadata.camera", "iou", "-count, global_key", ""])
def test_keyset_and_offset_paging_match_the_full_order(world, sort):
    full = [r.data_row_id for r in search(world.ws, world.run, None, C, 0.5, limit=10_000, sort=sort or None).rows]
    by_cursor, cursor = [], None
    while True:
        page = search(world.ws, world.run, None, C, 0.5, limit=7, sort=sort or None, cursor=cursor)
        by_cursor += [r.data_row_id for r in page.rows]
        assert page.total == len(full)
        cursor = page.next_cursor
        if cursor is None:
            break
    by_offset = []
    for off in range(0, len(full), 13):
        by_offset += [r.data_row_id for r in search(world.ws, world.run, None, C, 0.5, limit=13, offset=off,
                                                     sort=sort or None).rows]
    assert by_cursor == full
    assert by_offset == full


# -- random combinations ------------------------------------------------------------------------------
LEAVES = [(t, p) for t, p in COMMON + GENERATED if not t.startswith("created_at")]


def _tree(draw, depth=0):
    from hypothesis import strategies as st

    from slicewise.query import And, Not, Or

    kind = draw(st.sampled_from(["leaf", "leaf", "and", "or", "not"] if depth < 3 else ["leaf"]))
    if kind == "leaf":
        text, pred = draw(st.sampled_from(LEAVES))
        return parse(text), pred
    if kind == "not":
        node, pred = _tree(draw, depth + 1)
        return Not(of=node), (lambda w, r, p=pred: not p(w, r))
    kids = [_tree(draw, depth + 1) for _ in range(draw(st.integers(2, 3)))]
    if kind == "and":
        return And(all=[k[0] for k in kids]), (lambda w, r, ps=[k[1] for k in kids]: all(p(w, r) for p in ps))
    return Or(any=[k[0] for k in kids]), (lambda w, r, ps=[k[1] for k in kids]: any(p(w, r) for p in ps))


def test_random_combinations_match_python(generated, _cache_mode):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def check(data):
        node, pred = _tree(data.draw)
        want = _expected(generated, pred)
        got = [r.data_row_id for r in search(generated.ws, generated.run, node, C, 0.5, limit=10_000).rows]
        assert got == want, to_text(node)

    check()
