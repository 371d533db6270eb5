"""Slice history: each point equals a direct recomputation from the world's truth, a drop beyond noise is
marked and a change within noise is not, and the user-set run order is kept."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from slicewise.errors import NotFoundError, QueryError
from slicewise.slices import history


@pytest.fixture
def world(planted_world):
    return planted_world


@pytest.fixture
def hws(world):
    import slicewise

    with slicewise.open(world[0]) as ws:
        yield ws


def _f1(wrong):
    tp, fp, fn = (~wrong).sum(), wrong.sum(), wrong.sum()
    return 2 * tp / (2 * tp + fp + fn), tp / (tp + fn)


def test_points_equal_direct_recomputation(world, hws):
    _, w = world
    night, day = w.planted, np.array([m["lighting"] == "day" for m in w.md])
    for metric in ("f1", "recall"):
        got = {h.slice: h for h in history.slice_history(hws, "clf", ["night rows", "day rows"], metric=metric)}
        for name, rows in (("night rows", night), ("day rows", day)):
            pts = got[name].points
            assert [p.run for p in pts] == ["clf/v1", "clf/v2", "clf/v3"]
            for p in pts:
                wrong = w.wrong[p.run][rows]
                f1, rec = _f1(wrong)
                assert p.rows == len(wrong) and p.tp == (~wrong).sum() and p.fp == p.fn == wrong.sum()
                assert p.f1 == pytest.approx(f1) and p.recall == pytest.approx(rec)
                assert p.value == pytest.approx(f1 if metric == "f1" else rec)
                assert p.ci_low < p.value < p.ci_high


def test_regressions_beyond_noise(hws):
    got = {h.slice: h for h in history.slice_history(hws, "clf", ["night rows", "day rows"])}
    # night: wrong 55% -> 70% -> 85% of the time; day stays at 15% (new draws only)
    assert [p.regression for p in got["night rows"].points] == [False, True, True]
    assert got["night rows"].regressions == 2 and got["day rows"].regressions == 0
    assert got["night rows"].points[1].delta < 0


def test_auto_slices_follow_each_run_and_order_is_user_set(hws):
    h = history.slice_history(hws, "clf", ["auto:false-negative"])[0]
    assert h.kind == "auto" and h.auto_key == "false-negative" and all(p.rows is not None for p in h.points)
    history.set_run_order(hws, "clf", ["v3", "clf/v1"])
    assert [p.run for p in history.slice_history(hws, "clf", ["night rows"])[0].points] == ["clf/v3", "clf/v1", "clf/v2"]
    with pytest.raises(NotFoundError):
        history.set_run_order(hws, "clf", ["v9"])
    with pytest.raises(QueryError):
        history.set_run_order(hws, "clf", ["v1", "v1"])
    with pytest.raises(NotFoundError):
        history.slice_history(hws, "nomodel")
    history.set_run_order(hws, "clf", ["v1", "v2", "v3"])


def test_cli_history(world):
    from slicewise.cli import app

    res = CliRunner().invoke(app, ["slices", "history", "night rows", "--model", "clf", "--workspace", str(world[0])])
    assert res.exit_code == 0, res.output
    assert "night rows" in res.output and "▼" in res.output and "2 regression(s)" in res.output
