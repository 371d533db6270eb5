"""Two runs over hand-built rows, one flip of each type (see test_flips.py for the table)."""

from __future__ import annotations

import pytest

from slicewise import metrics as M

BOX = [10, 10, 20, 20]


def _p(key, feature, box, conf=0.9):
    return {"data_row": key, "feature": feature, "bbox": box, "confidence": conf}


def build_pair(ws):
    """Rows a..g in both runs, h only in the baseline, i only in the run. Returns (baseline, run)."""
    keys = list("abcdefghi")
    ws.add_data_rows("d", [{"global_key": k, "row_data": k, "width": 100, "height": 80,
                            "metadata": {"group": "left" if k in "abcd" else "right"}} for k in keys])
    ws.create_feature("cat", "bbox")
    ws.create_feature("dog", "bbox")
    ws.add_annotations([{"data_row": k, "feature": "cat", "bbox": BOX} for k in "abcdgh"])
    base = ws.create_run("m", "base")
    new = ws.create_run("m", "new")
    ws.add_predictions(base, [_p("a", "cat", BOX), _p("c", "cat", BOX), _p("d", "cat", BOX), _p("e", "cat", BOX),
                              _p("g", "cat", BOX), _p("h", "cat", BOX)])
    ws.add_predictions(new, [_p("b", "cat", BOX), _p("c", "dog", BOX), _p("d", "cat", [10, 10, 20, 14]),
                             _p("f", "dog", [50, 50, 10, 10]), _p("f", "dog", [70, 50, 10, 10]), _p("g", "cat", BOX),
                             _p("i", "cat", BOX)])
    ws.add_run_rows(base, [k for k in keys if k != "i"])
    ws.add_run_rows(new, [k for k in keys if k != "h"])
    M.compute_metrics(ws, base)
    M.compute_metrics(ws, new)
    return base, new


@pytest.fixture
def pair(ws):
    return (ws, *build_pair(ws))


@pytest.fixture
def pair_file(tmp_path):
    """The same two runs in a closed workspace file: (path, baseline id, run id)."""
    import slicewise

    path = tmp_path / "ws.duckdb"
    ws = slicewise.open(path)
    base, new = build_pair(ws)
    ws.close()
    return path, base.id, new.id
