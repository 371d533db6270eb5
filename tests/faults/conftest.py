"""The fault suite's shared workspace: images, labels and a 200,000-box results file, built once."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from . import harness as h

N_PREDS = 200_000


@pytest.fixture(scope="session")
def base(tmp_path_factory) -> tuple[Path, Path]:
    """The images and labels imported once (shared by the xdist workers through a lock), and the results file."""
    tmp = tmp_path_factory.getbasetemp()
    root = (tmp.parent if os.environ.get("PYTEST_XDIST_WORKER") else tmp) / "faults-base"  # one per test run
    root.mkdir(exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "ready").exists():
            h.base_workspace(root, N_PREDS)
            (root / "ready").write_text("ok")
        fcntl.flock(lock, fcntl.LOCK_UN)
    return root / "base.duckdb", root / "results.json"


