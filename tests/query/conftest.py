from __future__ import annotations

import pytest

from .sw_query_world import generated_world, indoor_world, install_fake_metrics


@pytest.fixture(scope="module")
def indoor(tmp_path_factory, shared_data):
    import slicewise

    ws = slicewise.open(tmp_path_factory.mktemp("indoor") / "ws.duckdb")
    world = indoor_world(ws, shared_data)
    with pytest.MonkeyPatch.context() as mp:
        install_fake_metrics(mp, world)
        yield world
    ws.close()


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    import slicewise

    ws = slicewise.open(tmp_path_factory.mktemp("gen") / "ws.duckdb")
    world = generated_world(ws)
    with pytest.MonkeyPatch.context() as mp:
        install_fake_metrics(mp, world)
        yield world
    ws.close()


@pytest.fixture(params=["indoor", "generated"])
def world(request):
    return request.getfixturevalue(request.param)
