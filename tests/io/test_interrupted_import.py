"""An import interrupted inside its transaction (Ctrl-C reaches Python as KeyboardInterrupt) leaves the
workspace as it was: no run, no model, no prediction (the run is created in the import's transaction)."""

from __future__ import annotations

import json

import pytest

import slicewise
from slicewise.io import import_coco, import_coco_results


def test_interrupted_results_import_leaves_no_run(tmp_path, monkeypatch, table_snapshot):
    from PIL import Image

    Image.new("RGB", (100, 80)).save(tmp_path / "a.jpg")
    gt = {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80}],
          "categories": [{"id": 1, "name": "cat"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 10], "area": 100, "iscrowd": 0}]}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "r.json").write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 10], "score": 0.9}]))
    with slicewise.open(tmp_path / "w.duckdb") as ws:
        import_coco(ws, tmp_path / "gt.json", images=tmp_path)
        before = table_snapshot(ws)

        def interrupted(*args, **kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr(type(ws), "add_predictions", interrupted)
        with pytest.raises(KeyboardInterrupt):
            import_coco_results(ws, tmp_path / "r.json", "det/x")
        assert table_snapshot(ws) == before
        assert ws.runs() == []
