"""Hostile queries (deep nesting, non-finite numbers, forged cursors) get a clear QueryError; ratios that
are short decimals match ``=``, ``>=``, ``between`` and the histogram bins exactly (issue 14, item 5).

Expected rows are worked out here by hand / with fractions, never taken from slicewise's own output.
"""

from __future__ import annotations

import base64
import json
from fractions import Fraction

import pytest

import slicewise
from slicewise import metrics
from slicewise.errors import QueryError
from slicewise.query import count, facets, parse, search
from slicewise.query.ast import MAX_DEPTH


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    w = slicewise.open(tmp_path_factory.mktemp("hard") / "ws.duckdb")
    w.add_data_rows("d", [{"global_key": f"k{i}", "row_data": f"k{i}.jpg", "width": 100, "height": 100,
                           "metadata": {"n": float(i), "s": f"s{i}"}} for i in range(6)])
    yield w
    w.close()


# -- nesting -------------------------------------------------------------------------------------------
def test_thousand_nots_is_a_clear_error_not_a_recursion_error(ws):
    text = "not " * 1000 + "iou < 0.5"
    assert len(text) < 20_000
    with pytest.raises(QueryError) as ei:
        parse(text)
    msg = str(ei.value)
    assert "1000 levels deep" in msg and f"at most {MAX_DEPTH}" in msg
    assert "write it flatter" in msg


def test_nesting_at_the_limit_still_works_and_gives_the_right_rows(ws):
    # an even number of nots is the condition itself: metadata.n >= 3 -> k3, k4, k5
    text = "not " * MAX_DEPTH + "metadata.n >= 3"
    assert MAX_DEPTH % 2 == 0
    page = search(ws, None, text, sort="metadata.n")
    assert [r.global_key for r in page.rows] == ["k3", "k4", "k5"]
    # alternating and/or nesting built by a program, through parentheses
    deep = "metadata.n >= 0"
    for i in range(MAX_DEPTH - 1):
        deep = f"(metadata.n < {i + 100} and ({deep} or tag:x))" if i % 2 else f"not not ({deep})"
    with pytest.raises(QueryError, match="levels deep"):
        parse(deep)


def test_deep_json_filter_is_refused_before_validation(ws):
    node: dict = {"type": "cond", "field": "metadata.n", "op": "<", "value": 1}
    for _ in range(5000):
        node = {"type": "not", "of": node}
    with pytest.raises(QueryError) as ei:
        search(ws, None, node)
    assert "5000 levels deep" in str(ei.value)
    assert len(str(ei.value)) < 400  # no path of 5000 steps in the message


def test_parentheses_alone_do_not_count_as_nesting(ws):
    text = "(" * 3000 + "metadata.n = 2" + ")" * 3000
    assert [r.global_key for r in search(ws, None, text).rows] == ["k2"]


# -- non-finite numbers --------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("op", ["<", ">", "=", "!="])
def test_json_filter_with_nan_or_infinity_is_refused(ws, value, op):
    with pytest.raises(QueryError, match="not a finite number"):
        count(ws, None, {"type": "cond", "field": "metadata.n", "op": op, "value": value})
    with pytest.raises(QueryError, match="not a finite number"):
        count(ws, None, {"type": "not", "of": {"type": "cond", "field": "metadata.n", "op": "between",
                                               "value": [0, value]}})


@pytest.mark.parametrize("text", ["metadata.n < 1e999", "metadata.n between -1e400 and 3", "f1@1e999 > 0"])
def test_text_filter_with_overflowing_number_is_refused(ws, text):
    with pytest.raises(QueryError, match="not a finite number"):
        parse(text)


@pytest.mark.parametrize("text", ["metadata.n < nan", "metadata.n > inf", "metadata.n > Infinity"])
def test_words_nan_and_inf_are_not_numbers(ws, text):
    with pytest.raises(QueryError, match="is not a number"):
        count(ws, None, text)


# -- cursors -------------------------------------------------------------------------------------------
def _cursor(vals, last_id=1) -> str:
    return base64.urlsafe_b64encode(json.dumps([vals, last_id]).encode()).decode()


@pytest.mark.parametrize("sort,vals,want", [
    ("metadata.n", ["x"], "must be a number"),
    ("metadata.n", [True], "must be a number"),
    ("metadata.n", [[1]], "must be a number"),
    ("metadata.n", [{"t": "2024-01-01"}], "must be a number"),
    ("metadata.s", [1.5], "must be text"),
    ("metadata.s", [[1]], "must be text"),
    ("metadata.s", [False], "must be text"),
    ("created_at", ["2024-01-01"], "must be a date-time"),
    ("created_at", [{"t": "not a date"}], "must be a date-time"),
    ("created_at", [{"t": 3}], "must be a date-time"),
    ("-metadata.n, metadata.s", [1.0], "holds 1 sort values, the sort has 2"),
])
def test_cursor_with_wrong_types_is_refused(ws, sort, vals, want):
    with pytest.raises(QueryError) as ei:
        search(ws, None, None, sort=sort, cursor=_cursor(vals))
    assert want in str(ei.value) and ei.value.where == "cursor"


@pytest.mark.parametrize("cursor", [_cursor([1.0], "7"), _cursor([1.0], True), _cursor([1.0], 2**70), "%%%", "",
                                    base64.urlsafe_b64encode(b"{}").decode()])
def test_broken_cursors_are_refused(ws, cursor):
    with pytest.raises(QueryError, match="cursor is not valid"):
        search(ws, None, None, sort="metadata.n", cursor=cursor)


def test_good_cursors_still_page_through_every_row(ws):
    for sort in ("metadata.n", "-metadata.s", "created_at", "-dataset"):
        seen, cursor = [], None
        while True:
            page = search(ws, None, None, sort=sort, limit=2, cursor=cursor)
            seen += [r.global_key for r in page.rows]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert sorted(seen) == [f"k{i}" for i in range(6)] and len(seen) == 6


# -- ratios that are short decimals --------------------------------------------------------------------
# Per data row: {feature: (true positives, predictions, labels)}. Predictions that are not true positives
# are far from every label, so they match nothing. Row F1 = mean over features of 2tp / (np + ng).
ROWS = {
    "r1": {"a": (1, 1, 1), "b": (1, 1, 1), "c": (1, 4, 1)},  # (1 + 1 + 2/5) / 3 = 0.8 (floats: 0.7999999999999999)
    "r2": {"a": (1, 4, 1)},  # 0.4
    "r3": {"a": (1, 1, 1), "b": (0, 1, 0)},  # (1 + 0) / 2 = 0.5
    "r4": {"a": (1, 2, 3), "b": (2, 2, 2), "c": (1, 1, 1)},  # (2/5 + 1 + 1) / 3 = 0.8
    "r5": {"a": (0, 1, 1)},  # 0
    "r6": {"a": (3, 5, 5), "b": (0, 0, 1)},  # (6/10 + 0) / 2 = 0.3 (floats: 0.30000000000000004)
}


def _f1(row: dict[str, tuple[int, int, int]]) -> Fraction:
    parts = [Fraction(2 * tp, n_p + n_g) for tp, n_p, n_g in row.values()]
    return sum(parts, Fraction(0)) / len(parts)


def _precision(row: dict[str, tuple[int, int, int]]) -> Fraction:
    parts = [Fraction(tp, n_p) for tp, n_p, _ in row.values() if n_p]
    return sum(parts, Fraction(0)) / len(parts)


@pytest.fixture(scope="module")
def ratios(tmp_path_factory):
    w = slicewise.open(tmp_path_factory.mktemp("ratios") / "ws.duckdb")
    w.add_data_rows("d", [{"global_key": k, "row_data": f"{k}.jpg", "width": 1000, "height": 1000} for k in ROWS])
    for f in "abc":
        w.create_feature(f, "bbox")
    anns, preds = [], []
    for key, feats in ROWS.items():
        for fi, (feat, (tp, n_p, n_g)) in enumerate(feats.items()):
            for j in range(n_g):  # labels along a row of the image, one feature a band
                anns.append({"data_row": key, "feature": feat, "bbox": [10 + 60 * j, 10 + 200 * fi, 40, 40]})
            for j in range(n_p):
                box = [10 + 60 * j, 10 + 200 * fi, 40, 40] if j < tp else [700 + 20 * j, 900, 10, 10]
                preds.append({"data_row": key, "feature": feat, "bbox": box, "confidence": 0.9})
    w.add_annotations(anns)
    run = w.create_run("m", "r")
    w.add_predictions(run, preds)
    metrics.compute_metrics(w, run)
    yield w, run
    w.close()


def _keys(ws, run, text):
    return sorted(r.global_key for r in search(ws, run, text, confidence=0.5, iou=0.5, limit=100).rows)


def test_short_decimal_ratios_match_equality_ranges_and_between(ratios):
    ws, run = ratios
    f1 = {k: _f1(v) for k, v in ROWS.items()}
    assert f1 == {"r1": Fraction(4, 5), "r2": Fraction(2, 5), "r3": Fraction(1, 2), "r4": Fraction(4, 5),
                  "r5": 0, "r6": Fraction(3, 10)}
    for value in (Fraction(4, 5), Fraction(2, 5), Fraction(3, 10), Fraction(1, 2)):
        v = float(value)
        assert _keys(ws, run, f"f1 = {v}") == sorted(k for k in ROWS if f1[k] == value)
        assert _keys(ws, run, f"f1 >= {v}") == sorted(k for k in ROWS if f1[k] >= value)
        assert _keys(ws, run, f"f1 <= {v}") == sorted(k for k in ROWS if f1[k] <= value)
        assert _keys(ws, run, f"f1 > {v}") == sorted(k for k in ROWS if f1[k] > value)
    assert _keys(ws, run, "f1 between 0.4 and 0.6") == ["r2", "r3"]
    assert _keys(ws, run, "f1 between 0.3 and 0.8") == ["r1", "r2", "r3", "r4", "r6"]
    assert _keys(ws, run, "f1[c] = 0.4") == ["r1"]  # the per-feature table too: 2 * 1 / (4 + 1)
    prec = {k: _precision(v) for k, v in ROWS.items()}
    assert _keys(ws, run, "precision = 0.75") == sorted(k for k in ROWS if prec[k] == Fraction(3, 4))


def test_stored_ratios_are_the_doubles_of_their_decimals(ratios):
    ws, run = ratios
    page = search(ws, run, None, confidence=0.5, iou=0.5, sort="f1", limit=100)
    got = {r.global_key: r.sort_value for r in page.rows}
    assert got == {k: float(_f1(v)) for k, v in ROWS.items()}  # exactly, e.g. 0.8 and not 0.7999999999999999
    fm = {f.feature: f for f in metrics.feature_metrics(ws, run, confidence=0.5, iou=0.5).features}
    tp = sum(v["a"][0] for v in ROWS.values())
    n_p = sum(v["a"][1] for v in ROWS.values())
    n_g = sum(v["a"][2] for v in ROWS.values())
    # ratios are reported to 12 decimals (slicewise.metrics.reduce.round_ratio): 7/13 -> 0.538461538462
    assert fm["a"].f1 == float(round(Fraction(2 * tp, n_p + n_g), 12)) == 0.538461538462
    assert fm["a"].precision == float(round(Fraction(tp, n_p), 12))
    assert fm["a"].recall == float(round(Fraction(tp, n_g), 12))


@pytest.mark.parametrize("cached", [True, False])
def test_histogram_bins_hold_values_on_their_edges(ratios, cached, monkeypatch):
    ws, run = ratios
    if not cached:
        monkeypatch.setattr(ws.state, "enabled", False)
    h = facets(ws, run, None, confidence=0.5, iou=0.5).histograms["f1"]
    assert h.edges == [k / 10 for k in range(11)]
    want = [0] * 10
    for v in ROWS.values():
        want[min(int(_f1(v) * 10), 9)] += 1  # exact: bin k holds [k/10, (k+1)/10)
    assert h.counts == want
