"""Automatic slice discovery: the planted slice is found without being told, the suggestion's filter
selects exactly its rows, and on data without a planted slice the false discovery control holds.
The search itself (slicewise.slices.lattice) is checked on plain NumPy worlds, its statistics against
numbers worked out here."""

from __future__ import annotations

import math

import numpy as np
import pytest
from typer.testing import CliRunner

from slicewise.errors import QueryError
from slicewise.slices import lattice, suggest


@pytest.fixture
def world(planted_world):
    return planted_world


@pytest.fixture
def wws(world):
    import slicewise

    with slicewise.open(world[0]) as ws:
        yield ws


def test_planted_slice_found_and_its_filter_selects_exactly_its_rows(world, wws):
    _, w = world
    d = suggest.discover(wws, "clf/v1")
    assert d.suggestions, "the planted slice was not found"
    top = d.suggestions[0]
    assert top.filter == "metadata.lighting = night"
    # its numbers, recomputed from the world's truth: a wrong answer is one FP and one FN
    night = w.planted
    wrong = w.wrong["clf/v1"]
    e = 2 * wrong[night].sum()
    n = 2 * (~wrong[night]).sum() + 2 * wrong[night].sum()
    assert top.rows == night.sum() and top.fp == top.fn == wrong[night].sum()
    assert top.error == pytest.approx(e / n)
    assert top.error_rest == pytest.approx(wrong[~night].mean())
    assert d.error == pytest.approx(wrong.mean())
    assert top.q_value <= d.alpha and top.ci_low > d.error
    # no suggestion is merely the planted slice's rows with another predicate added
    assert not any("lighting = night and" in s.filter or "and metadata.lighting = night" in s.filter
                   for s in d.suggestions)
    # the saved slice selects exactly the rows of every suggestion
    ids = np.array([r.id for r in wws.data_rows()])
    for s in d.suggestions[:5]:
        got = set(suggest.suggestion_rows(wws, "clf/v1", s))
        assert len(got) == s.rows
    assert set(suggest.suggestion_rows(wws, "clf/v1", top)) == set(ids[night].tolist())
    saved = suggest.save_suggestion(wws, top, run="clf/v1")
    from slicewise import slices

    assert saved.filter == top.filter
    assert {r.data_row_id for r in slices.slice_rows(wws, saved.id, "clf/v1", limit=10_000).rows} == set(ids[night].tolist())
    slices.delete_slice(wws, saved.id)


def test_metric_choice_and_bad_parameters(wws):
    d = suggest.discover(wws, "clf/v1", metric="recall", max_predicates=1)
    assert d.error_name == "1 - recall" and d.suggestions[0].filter == "metadata.lighting = night"
    assert all(len(s.predicates) == 1 for s in d.suggestions)
    for kw in ({"metric": "accuracy"}, {"min_support": 0}, {"min_support": 2.5}, {"max_predicates": 4}, {"alpha": 1}):
        with pytest.raises(QueryError):
            suggest.discover(wws, "clf/v1", **kw)


def test_background_job_and_api(world):
    from fastapi.testclient import TestClient

    from slicewise.server import create_app

    app = create_app(world[0])
    with TestClient(app) as client:
        first = client.get("/api/runs/1/suggested-slices", params={"min_support": 0.02}).json()
        got = first
        for _ in range(200):
            if not got["pending"]:
                break
            import time

            time.sleep(0.05)
            got = client.get("/api/runs/1/suggested-slices", params={"min_support": 0.02}).json()
        assert not got["pending"] and got["discovery"]["suggestions"][0]["filter"] == "metadata.lighting = night"
        bad = client.get("/api/runs/1/suggested-slices", params={"metric": "nope"})
        assert bad.status_code == 422


def test_cli_discover_and_save(world):
    from slicewise.cli import app

    res = CliRunner().invoke(app, ["discover", "clf/v1", "--workspace", str(world[0]), "--save", "1"])
    assert res.exit_code == 0, res.output
    assert "metadata.lighting = night" in res.output and "saved slice night" in res.output
    import slicewise
    from slicewise import slices

    with slicewise.open(world[0]) as ws:
        slices.delete_slice(ws, "night")
    res = CliRunner().invoke(app, ["discover", "clf/v1", "--workspace", str(world[0]), "--metric", "nope"])
    assert res.exit_code != 0 and isinstance(res.exception, QueryError)


# -- the search on NumPy worlds ------------------------------------------------------------------
def _numpy_world(rng, m=3000, nf=5, plant=True):
    fields = []
    for i in range(nf):
        k = int(rng.integers(3, 6))
        fields.append(lattice.Field(f"f{i}", rng.integers(0, k, m).astype(np.int32), tuple(f"v{j}" for j in range(k))))
    p = np.full(m, 0.2)
    planted = np.zeros(m, dtype=bool)
    if plant:
        a, b = rng.choice(nf, 2, replace=False)
        planted = (fields[a].codes == 0) & (fields[b].codes == 1) if rng.random() < 0.5 else fields[a].codes == 0
        p[planted] = 0.45
    e = (rng.random(m) < p).astype(float)
    return fields, e, np.ones(m), planted


def test_null_worlds_give_few_false_discoveries():
    total = 0
    for seed in range(12):
        fields, e, n, _ = _numpy_world(np.random.default_rng(seed), plant=False)
        total += len(lattice.search(fields, e, n, min_support=30).found)
    assert total / 12 <= 0.25  # BH at 5% over every slice tested: rarely anything at all


def test_planted_worlds_recovered():
    hits = false = 0
    for seed in range(12):
        fields, e, n, planted = _numpy_world(np.random.default_rng(100 + seed))
        res = lattice.search(fields, e, n, min_support=30)
        masks = [lattice.mask_of(fields, f.preds, len(e)) for f in res.found]
        hits += any((mk & planted).sum() / (mk | planted).sum() >= 0.8 for mk in masks)
        false += sum((mk & planted).sum() < 0.1 * mk.sum() for mk in masks)  # (nearly) unrelated to it
    assert hits >= 11 and false / 12 <= 1


def test_statistics_by_hand():
    # ratio 2/4 over rows e = [1, 0, 1, 0], n = 1: variance sum (e - r n)^2 / N^2 * m / (m - 1) = 1 / 16 * 4 / 3
    r, lo, hi = lattice.ratio_interval(np.array([1, 0, 1, 0]), np.array([1, 1, 1, 1]))
    se = math.sqrt(1 / 16 * 4 / 3)
    assert r == 0.5 and lo == pytest.approx(0.5 - 1.959964 * se) and hi == pytest.approx(0.5 + 1.959964 * se)
    # Benjamini-Hochberg against the textbook step-up: p_(k) * m / k, made monotone from the top
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205])
    want = [min(1, min(p[j] * 8 / (j + 1) for j in range(k, 8))) for k in range(8)]
    assert lattice.bh_adjust(p) == pytest.approx(want)


def test_small_objects_found_through_the_area_fields(ws):
    """Boxes of three sizes; the small ones (20 x 20 < 32^2) are missed far more often: discovery proposes
    ``area.min < 1024``, and the area fields select the rows whose smallest / largest box is that size."""
    from slicewise import metrics
    from slicewise.query import count

    rng = np.random.default_rng(0)
    n = 300
    sizes = rng.choice([20.0, 60.0, 150.0], n)
    keys = [f"k{i}" for i in range(n)]
    ws.add_data_rows("d", [{"global_key": k, "row_data": "x.jpg", "width": 640, "height": 480} for k in keys])
    ws.create_feature("car", "bbox")
    ws.add_annotations([{"data_row": k, "feature": "car", "bbox": [10, 10, s, s]} for k, s in zip(keys, sizes, strict=True)])
    run = ws.create_run("det", "v1")
    miss = rng.random(n) < np.where(sizes == 20, 0.6, 0.1)
    ws.add_predictions(run, [{"data_row": k, "feature": "car", "bbox": [10, 10, s, s], "confidence": 0.9}
                             for k, s, m in zip(keys, sizes, miss, strict=True) if not m])
    ws.add_run_rows(run, keys)
    metrics.compute_metrics(ws, run)
    assert count(ws, run, "area.min < 1024") == (sizes == 20).sum()
    assert count(ws, run, "area.max >= 9216") == (sizes == 150).sum()
    assert count(ws, run, "area.max between 3000 and 4000") == (sizes == 60).sum()
    top = suggest.discover(ws, run).suggestions[0]
    assert top.filter == "area.min < 1024" and top.rows == (sizes == 20).sum()
    assert top.fn == (miss & (sizes == 20)).sum()
