"""Shared fixtures: a fresh workspace, and the real datasets in ../shared/data (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def ws(tmp_path):
    import slicewise

    w = slicewise.open(tmp_path / "ws.duckdb")
    yield w
    w.close()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "README.md").exists():
        pytest.skip(f"the shared datasets are not beside this checkout ({SHARED_DATA} is missing); "
                    "they come with CI and the developers' machines, not with a fresh clone")
    return SHARED_DATA


def snapshot(ws) -> dict[str, list]:
    """Every table's full content, to assert that a failed operation changed nothing."""
    tables = [r[0] for r in ws.sql("SELECT table_name FROM information_schema.tables "
                                   "WHERE table_catalog = current_database() ORDER BY 1").fetchall()]
    return {t: sorted(map(repr, ws.sql(f"SELECT * FROM {t}").fetchall())) for t in tables}


@pytest.fixture
def table_snapshot():
    """``table_snapshot(ws)``: see :func:`snapshot`."""
    return snapshot


@pytest.fixture(scope="session")
def planted_world(tmp_path_factory):
    """(path, World): 500 classified rows, night rows planted as a bad slice, three runs of model ``clf``
    that get worse at night (wrong 55%, 70%, 85% of the time; 15% elsewhere), slices "night rows" and
    "day rows" saved (see discovery_world)."""
    from slices.discovery_world import build

    import slicewise
    from slicewise import slices

    path = tmp_path_factory.mktemp("planted") / "w.duckdb"
    with slicewise.open(path) as ws:
        w = build(ws, n=500, seed=5, runs=("clf/v1", "clf/v2", "clf/v3"), drift=0.15)
        slices.create_slice(ws, "night rows", "metadata.lighting = night")
        slices.create_slice(ws, "day rows", "metadata.lighting = day")
    return path, w
