"""Importers and exporters, one module per format. Every importer reads, validates every record,
and writes in ONE transaction (see :mod:`slicewise.io.common`); the CLI (`slicewise import ...`)
calls these same functions.

Public functions (``ws`` is a :class:`slicewise.Workspace`; each returns an :class:`ImportResult`):

- ``import_coco(ws, path, *, dataset=None, images=None, split="none", skip_invalid=False, check_media=True)``
- ``import_coco_results(ws, path, run, *, rows=None, skip_invalid=False, create_features=False)``
- ``import_yolo(ws, folder, *, dataset=None, skip_invalid=False)``: data.yaml + images/ + labels/
- ``import_yolo_predictions(ws, path, run, *, rows=None, ...)``: COCO-style JSON (image_id = file stem)
  or a folder of YOLO txt files ``class cx cy w h conf``
- ``import_voc(ws, folder, *, dataset=None, images=None, check_media=True, ...)``: Pascal VOC XML files
  (parsed with defusedxml: DTDs and entities are refused)
- ``import_indoor(ws, folder, *, dataset=None, run=None, ...)``: ``ground-truth/`` and
  ``detection-results/`` text files (``class left top right bottom [confidence]``)
- ``import_ndjson(ws, path, *, run=None, rows=None, ...)``: Labelbox NDJSON annotation/prediction lines

``rows`` (CLI ``--rows SPEC``) chooses which data rows a prediction-only import puts in the run, so
that images with no prediction count their labels as false negatives: ``dataset:NAME``,
``split:NAME``, ``dataset:NAME/split:NAME``, ``all``, ``predicted``, ``same-dataset``, ``same-split``.
Defaults: COCO results cover every row of the predicted images' dataset (= their instances file),
YOLO predictions the predicted images' dataset and split, NDJSON only the predicted rows. See
:mod:`slicewise.io.runrows`; :attr:`ImportResult.run_rows` says how many rows the run covers.
- ``import_rows(ws, path, *, dataset=None, images=None, check_media=True)``: data rows from JSON/NDJSON
  (Labelbox's shape or ours)
- ``import_table(ws, path, *, run, key=..., label=..., prediction=..., confidence=..., ...)``:
  classification CSV/Parquet

Input files are untrusted (see :mod:`slicewise.io.media`): with an images folder, every image path a
file names must lie inside it (no ``..``, no absolute path elsewhere, no symlink out of it) and exist
(``check_media=False``: images that come later); the folder is recorded as the dataset's media root.
Boxes must be finite and, where the image size is known, reach at most 50% of the image beyond its
edges (:func:`slicewise.store.objects.check_objects`). Predictions that name only unknown images are
refused with one message: import the images first.

Exporters: ``export_coco(ws, path, *, dataset=None)`` (ground truth), ``export_coco_results(ws, run,
path)``, ``export_parquet(ws, table, path)``.

Every ``skip_invalid=False`` import raises :class:`slicewise.ValidationError` on any invalid record
and leaves the workspace unchanged; ``write_rejects(path, result.rejected)`` writes the rejects file.
"""

from slicewise.io.boxes import import_indoor, import_voc
from slicewise.io.coco import import_coco, import_coco_results
from slicewise.io.common import ImportResult, write_rejects
from slicewise.io.export import coco_dict, coco_results, export_coco, export_coco_results, export_parquet
from slicewise.io.ndjson import import_ndjson, import_rows
from slicewise.io.table import import_table
from slicewise.io.yolo import import_yolo, import_yolo_predictions

__all__ = [
    "ImportResult",
    "coco_dict",
    "coco_results",
    "export_coco",
    "export_coco_results",
    "export_parquet",
    "import_coco",
    "import_coco_results",
    "import_indoor",
    "import_ndjson",
    "import_rows",
    "import_table",
    "import_voc",
    "import_yolo",
    "import_yolo_predictions",
    "write_rejects",
]
