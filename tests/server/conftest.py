"""Fixtures for the API tests: a workspace built from ../shared/data/indoor-85 (real photos, real
detector output) with its metrics computed, copied fresh for each test module, and a TestClient on it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from indoor_workspace import build_indoor


@pytest.fixture(scope="session")
def indoor_template(shared_data, tmp_path_factory) -> Path:
    return build_indoor(tmp_path_factory.mktemp("indoor") / "indoor.duckdb", shared_data)


@pytest.fixture(scope="module")
def indoor_path(indoor_template, tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("ws") / "indoor.duckdb"
    shutil.copy(indoor_template, dest)
    return dest


@pytest.fixture(scope="module")
def client(indoor_path):
    from fastapi.testclient import TestClient

    from slicewise.server import create_app

    with TestClient(create_app(indoor_path)) as c:
        yield c


@pytest.fixture(scope="module")
def app_ws(client):
    """The workspace the app serves (same connection), to compare the API with the library."""
    return client.app.state.sw.ws
