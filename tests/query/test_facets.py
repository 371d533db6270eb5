"""Facets against counts and histograms computed in plain Python over the same rows."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from slicewise.query import facets, parse, search
from slicewise.state import State

FILTERS = [None, "not tag:reviewed", "count >= 1 and confidence.max > 0.3", 'metadata.camera = "camera-02"']


def _bins(values, lo, hi, nb):
    out = [0] * nb
    for x in values:
        b = 0 if hi == lo else min(max(math.floor((x - lo) / (hi - lo) * nb), 0), nb - 1)
        out[b] += 1
    return out


@pytest.fixture(autouse=True, params=["cached", "direct"])
def _cache_mode(request, monkeypatch):
    """Every test runs over the row cache and over the store's tables directly: both must agree."""
    monkeypatch.setattr(State, "enabled", request.param == "cached")


@pytest.mark.parametrize("text", FILTERS)
def test_facets_match_python(generated, text):
    w = generated
    from .test_filters import (
        COMMON,
        GENERATED,
        _expected,  # the same plain-Python membership as the filter tests
    )

    preds = {t: p for t, p in COMMON + GENERATED}
    if text is None:
        rows = w.run_rows()
    elif text in preds:
        rows = [w.rows[i] for i in _expected(w, preds[text])]
    else:
        ids = {r.data_row_id for r in search(w.ws, w.run, text, limit=10_000).rows}
        rows = [r for r in w.run_rows() if r.id in ids]
        assert parse(text)
    f = facets(w.ws, w.run, text, 0.5, 0.5)
    assert f.total == len(rows)
    assert f.split == dict(Counter(r.split for r in rows))
    assert f.dataset == dict(Counter(r.dataset for r in rows))
    assert f.metadata["camera"] == dict(Counter(r.md["camera"] for r in rows if "camera" in r.md))
    assert f.tags == dict(Counter(t for r in rows for t in r.tags))
    assert f.annotations == dict(Counter(k for r in rows for k in r.gt))
    assert f.predictions == dict(Counter(k for r in rows for k in {p for p, _ in r.pred}))
    # numeric metadata: equal-width bins covering the values (over the row cache: the run's whole range,
    # so axes stay put while filtering), the filtered rows' min and max
    speeds = [r.md["speed"] for r in rows if "speed" in r.md]
    h = f.histograms["metadata.speed"]
    assert (h.min, h.max) == (min(speeds), max(speeds))
    assert len(h.counts) == 10 and h.edges[0] <= min(speeds) and h.edges[-1] >= max(speeds)
    assert h.counts == _bins(speeds, h.edges[0], h.edges[-1], 10)
    assert h.missing == len(rows) - len(speeds)
    # confidence: fixed [0, 1]
    cmax = [max(s for _, s in r.pred) for r in rows if r.pred]
    assert f.histograms["confidence.max"].counts == _bins(cmax, 0.0, 1.0, 10)
    assert f.histograms["confidence.max"].edges[0] == 0.0 and f.histograms["confidence.max"].edges[-1] == 1.0
    # metrics (at the viewed thresholds): ratios on [0, 1], counts in unit bins
    rec = [w.metric(r.id, "recall") for r in rows if w.metric(r.id, "recall") is not None]
    assert f.histograms["recall"].counts == _bins(rec, 0.0, 1.0, 10)
    assert f.histograms["recall"].missing == len(rows) - len(rec)
    fps = [w.metric(r.id, "fp") for r in rows]
    h = f.histograms["fp"]
    assert h.edges[0] <= min(fps) and h.edges[-1] > max(fps) and all(b - a == 1 for a, b in zip(h.edges, h.edges[1:], strict=False))
    assert h.counts == [fps.count(v) for v in range(int(h.edges[0]), int(h.edges[-1]))]


def test_facets_on_indoor(indoor):
    w = indoor
    f = facets(w.ws, w.run, "has:chair")
    rows = [r for r in w.run_rows() if r.gt["chair"]]
    assert f.total == len(rows) and f.annotations["chair"] == len(rows)
    assert f.metadata["weather"] == dict(Counter(r.md["weather"] for r in rows))
    assert sum(f.histograms["metadata.brightness"].counts) == sum("brightness" in r.md for r in rows)
    assert "metadata.captured" not in f.histograms  # date-times are filtered by range, not histogrammed


def test_facets_of_an_empty_result(generated):
    f = facets(generated.ws, generated.run, "count > 1000")
    assert f.total == 0 and f.tags == {} and f.metadata["camera"] == {}
    assert sum(f.histograms["metadata.speed"].counts) == 0 and f.histograms["metadata.speed"].missing == 0
