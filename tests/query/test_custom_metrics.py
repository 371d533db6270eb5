"""Custom metrics (uploaded per row, or per row and feature) are fields like the auto metrics."""

from __future__ import annotations

import random

import pytest

from slicewise.errors import QueryError
from slicewise.query import facets, search
from slicewise.state import State

from .sw_query_world import generated_world


@pytest.fixture(params=["cached", "direct"])
def world(request, ws, monkeypatch):
    monkeypatch.setattr(State, "enabled", request.param == "cached")
    from slicewise import metrics

    w = generated_world(ws, n=80, seed=2)
    rng = random.Random(1)
    rows = w.run_rows()
    sharp = {r.id: round(rng.random(), 3) for r in rows if rng.random() < 0.8}
    score = {r.id: round(rng.random(), 3) for r in rows if r.gt["cat"] and rng.random() < 0.9}
    key = {r.id: r.key for r in rows}
    metrics.add_custom_metrics(ws, w.run, [{"data_row": key[i], "name": "sharpness", "value": v} for i, v in sharp.items()]
                               + [{"data_row": key[i], "name": "score", "feature": "cat", "value": v}
                                  for i, v in score.items()])
    return w, sharp, score


def test_custom_metric_filters_sorts_and_facets(world):
    w, sharp, score = world
    got = [r.data_row_id for r in search(w.ws, w.run, "metric.sharpness > 0.5", limit=1000).rows]
    assert got == sorted(i for i, v in sharp.items() if v > 0.5)
    got = [r.data_row_id for r in search(w.ws, w.run, "not metric.sharpness > 0.5", limit=1000).rows]
    assert got == sorted(r.id for r in w.run_rows() if not (sharp.get(r.id, -1) > 0.5))
    got = [r.data_row_id for r in search(w.ws, w.run, "metric.score[cat] < 0.3", limit=1000).rows]
    assert got == sorted(i for i, v in score.items() if v < 0.3)
    page = search(w.ws, w.run, "metric.sharpness is any", sort="-metric.sharpness", limit=1000)
    assert [r.data_row_id for r in page.rows] == sorted(sharp, key=lambda i: (-sharp[i], i))
    f = facets(w.ws, w.run, None)
    assert sum(f.histograms["metric.sharpness"].counts) == len(sharp)
    with pytest.raises(QueryError, match="did you mean 'metric.sharpness'"):
        search(w.ws, w.run, "metric.sharpnes > 1")
    with pytest.raises(QueryError, match="did you mean 'metric.sharpness'"):
        search(w.ws, w.run, "sharpness > 1")
