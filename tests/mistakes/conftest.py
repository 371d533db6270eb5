"""One small classification workspace (built once per session, copied for each module)."""

from __future__ import annotations

import shutil

import pytest

from .build import build_clf


@pytest.fixture(scope="session")
def clf_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("mistakes-template") / "ws.duckdb"
    return path, build_clf(path)


@pytest.fixture(scope="module")
def built(clf_template, tmp_path_factory):
    """(path of a fresh copy of the workspace, (row ids, labels, probabilities, vectors, flipped))."""
    src, arrays = clf_template
    dest = tmp_path_factory.mktemp("mistakes") / "ws.duckdb"
    shutil.copy(src, dest)
    return dest, arrays
