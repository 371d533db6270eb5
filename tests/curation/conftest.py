"""The curation tests' scene (see test_roundtrip's docstring for its hand-worked metrics), built once with its
metrics computed and copied for each test."""

from __future__ import annotations

import shutil

import pytest

from slicewise import metrics


def counts(ws, run):
    fm = metrics.feature_metrics(ws, run, confidence=0.5, iou=0.5)
    assert fm.job.state == "ready"
    return {f.feature: (f.tp, f.fp, f.fn) for f in fm.features}


@pytest.fixture(scope="session")
def scene_template(tmp_path_factory):
    import slicewise

    path = tmp_path_factory.mktemp("scene") / "scene.duckdb"
    with slicewise.open(path) as ws:
        ws.add_data_rows("scenes", [{"global_key": k, "row_data": f"/data/img/{k}.jpg", "width": 200, "height": 100}
                                    for k in "abcde"])
        ws.create_feature("car", "bbox")
        ws.create_feature("person", "bbox")
        ws.add_annotations([{"data_row": "a", "feature": "car", "bbox": [20, 10, 50, 40]},
                            {"data_row": "c", "feature": "car", "bbox": [10, 10, 30, 30]}])
        run = ws.create_run("det", "v1")
        ws.add_predictions(run, [
            {"data_row": "a", "feature": "car", "bbox": [20, 10, 50, 40], "confidence": 0.9},
            {"data_row": "b", "feature": "person", "bbox": [100, 20, 40, 60], "confidence": 0.8},
            {"data_row": "d", "feature": "car", "bbox": [150, 50, 40, 40], "confidence": 0.7},
            {"data_row": "e", "feature": "car", "bbox": [0, 0, 20, 20], "confidence": 0.3}])
        ws.add_run_rows(run, list("abcde"))
        metrics.compute_metrics(ws, run)
        assert counts(ws, run) == {"car": (1, 1, 1), "person": (0, 1, 0)}
    return path


@pytest.fixture
def ws(scene_template, tmp_path):
    import slicewise

    path = tmp_path / "ws.duckdb"
    shutil.copy(scene_template, path)
    w = slicewise.open(path)
    yield w
    w.close()


@pytest.fixture
def scene(ws):
    """The scene's run (det/v1), metrics computed."""
    return ws.run("det/v1")
