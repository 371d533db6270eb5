from __future__ import annotations

import pytest
from query.sw_query_world import generated_world, install_fake_metrics


@pytest.fixture
def gen(ws, monkeypatch):
    """A small generated world in a fresh workspace, with fake metrics of known values."""
    world = generated_world(ws, n=60, seed=11)
    install_fake_metrics(monkeypatch, world)
    return world

