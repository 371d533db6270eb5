"""Export a batch for labelling: Label Studio tasks, CVAT (XML or COCO zip), Labelbox NDJSON, COCO, CSV.

Every format carries the batch's rows in the batch's order and, where the format holds annotations,
pre-annotations (``pre``): a run's predictions at or above ``min_confidence`` (default: the confidence
threshold the run is viewed at), the current ground truth (``labels``: e.g. rows sent to rework), or
none. ``auto`` is the predictions when a run is given, else the ground truth.

>>> import tempfile, os, json, slicewise
>>> from slicewise.curation import batches, export
>>> ws = slicewise.open(os.path.join(tempfile.mkdtemp(), "ws.duckdb"))
>>> _ = ws.add_data_rows("d", [{"global_key": "a", "row_data": "/img/a.jpg", "width": 200, "height": 100}])
>>> _ = ws.create_feature("car", "bbox")
>>> run = ws.create_run("det", "v1")
>>> _ = ws.add_predictions(run, [{"data_row": "a", "feature": "car", "bbox": [20, 10, 50, 40], "confidence": 0.9}])
>>> _ = batches.create_batch(ws, "first", ["a"])
>>> out = export.export_batch(ws, "first", "labelstudio", run=run)
>>> task = json.loads(out.data)[0]
>>> task["data"]["global_key"], task["predictions"][0]["result"][0]["value"]
('a', {'x': 10.0, 'y': 10.0, 'width': 25.0, 'height': 40.0, 'rotation': 0, 'rectanglelabels': ['car']})
>>> out.filename, batches.get_batch(ws, "first").status
('first.labelstudio.json', 'exported')
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Any

import orjson

from slicewise.curation.batches import Batch, get_batch, mark_exported
from slicewise.curation.rows import BatchRow, batch_row_list, objects_for, tool_names
from slicewise.errors import Problem, ValidationError

FORMATS = {  # name -> (file suffix, media type)
    "labelstudio": (".labelstudio.json", "application/json"),
    "labelstudio-config": (".labelstudio.xml", "application/xml"),
    "cvat": (".cvat.xml", "application/xml"),
    "cvat-coco": (".cvat-coco.zip", "application/zip"),
    "labelbox": (".labelbox.ndjson", "application/x-ndjson"),
    "coco": (".coco.json", "application/json"),
    "csv": (".csv", "text/csv"),
}
_ALIASES = {"label-studio": "labelstudio", "ls": "labelstudio", "cvat-xml": "cvat", "cvat_for_images": "cvat",
            "cvat-images": "cvat", "coco-zip": "cvat-coco", "ndjson": "labelbox", "labelbox-ndjson": "labelbox"}


@dataclass(frozen=True)
class Export:
    """What :func:`export_batch` wrote: the file's bytes, a file name, its media type, and counts."""

    data: bytes
    filename: str
    media_type: str
    format: str
    rows: int
    objects: int
    pre: str  # predictions | labels | none
    skipped: int = 0  # objects the format cannot hold (e.g. masks in Label Studio)


def format_name(fmt: str) -> str:
    f = str(fmt).strip().lower()
    f = _ALIASES.get(f, f)
    if f not in FORMATS:
        raise ValidationError(Problem(f"unknown export format {fmt!r}", field="format",
                                      fix="use one of " + ", ".join(FORMATS)))
    return f


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "batch"


def export_batch(ws: Any, batch: str | int | Batch, fmt: str, *, run: Any = None, pre: str = "auto",
                 min_confidence: float | None = None, image_prefix: str | None = None,
                 mark: bool = True) -> Export:
    """The batch in format ``fmt`` (see :data:`FORMATS`). ``image_prefix`` goes before each image's path in
    Label Studio tasks and Labelbox / CSV rows (e.g. Label Studio's ``/data/local-files/?d=``). The batch is
    recorded as exported (``mark``) unless the file is only the Label Studio config."""
    f = format_name(fmt)
    b = get_batch(ws, batch)
    rows = batch_row_list(ws, b.id)
    if f == "labelstudio-config":
        data = _ls_config(ws, rows, run).encode()
        return Export(data, _safe(b.name) + FORMATS[f][0], FORMATS[f][1], f, len(rows), 0, "none")
    what, objs = objects_for(ws, rows, run=run, pre=pre, min_confidence=min_confidence)
    n_obj = sum(len(v) for v in objs.values())
    skipped = 0
    prefix = image_prefix or ""
    if f == "labelstudio":
        data, skipped = _labelstudio(ws, rows, objs, what, run, prefix)
    elif f == "cvat":
        from slicewise.io.cvat import cvat_xml

        data, skipped = cvat_xml(b.name, rows, tool_names(rows), objs, _cvat_labels(ws, objs),
                                 source="auto" if what == "predictions" else "manual")
    elif f == "cvat-coco":
        from slicewise.io.cvat import coco_zip

        doc, skipped = _coco(ws, rows, objs, tool_names(rows), scores=False)
        data = coco_zip(doc)
    elif f == "coco":
        doc, skipped = _coco(ws, rows, objs, {r.id: r.key for r in rows}, scores=what == "predictions")
        data = orjson.dumps(doc)
    elif f == "labelbox":
        data, skipped = _labelbox(rows, objs, what)
    else:
        data = _csv(rows, objs, what, b, prefix)
    if mark:
        mark_exported(ws, b.id, f)
    return Export(data, _safe(b.name) + FORMATS[f][0], FORMATS[f][1], f, len(rows), n_obj - skipped, what, skipped)


def _check_sizes(rows: list[BatchRow], objs: dict[str, list[dict[str, Any]]], fmt: str) -> None:
    missing = [r.key for r in rows if r.media_type == "image" and (not r.width or not r.height)
               and any(o["kind"] in ("bbox", "polygon", "point") for o in objs[r.key])]
    if missing:
        raise ValidationError(Problem(f"{len(missing)} row(s) with regions have no image size: "
                                      + ", ".join(map(repr, missing[:5])), location=fmt, field="width",
                                      fix="re-import those rows with width and height (pre-annotations in percent "
                                      "need them), or export with pre='none'"))


def _labelstudio(ws: Any, rows: list[BatchRow], objs: dict[str, list[dict[str, Any]]], what: str, run: Any,
                 prefix: str) -> tuple[bytes, int]:
    from slicewise.io.labelstudio import task_results

    _check_sizes(rows, objs, "labelstudio")
    version = ws.run(run).ref if what == "predictions" else "ground truth"
    tasks = []
    skipped = 0
    for r in rows:
        text = r.row_data if r.media_type == "text" else None
        data: dict[str, Any] = {"text": text} if text is not None else {"image": prefix + r.row_data}
        data |= {"global_key": r.key, "dataset": r.dataset}
        task: dict[str, Any] = {"data": data}
        if what != "none":
            res, sk = task_results(objs[r.key], r.width, r.height, text, with_score=what == "predictions")
            skipped += sk
            pred: dict[str, Any] = {"model_version": version, "result": res}
            scores = [x["score"] for x in res if "score" in x]
            if scores:
                pred["score"] = round(min(scores), 6)
            task["predictions"] = [pred]
        tasks.append(task)
    return orjson.dumps(tasks, option=orjson.OPT_INDENT_2), skipped


def _ls_config(ws: Any, rows: list[BatchRow], run: Any) -> str:
    from slicewise.io.labelstudio import label_config

    answers: dict[str, list[str]] = {}
    for name, ans in ws.sql("""SELECT DISTINCT f.name, o.answer FROM (SELECT feature_id, answer FROM annotations
                               UNION ALL SELECT feature_id, answer FROM predictions) o JOIN features f ON f.id = o.feature_id
                               WHERE o.answer IS NOT NULL ORDER BY 1, 2""").fetchall():
        answers.setdefault(name, []).append(ans)
    text = bool(rows) and all(r.media_type == "text" for r in rows)
    return label_config(ws.features(), answers, text=text)


def _cvat_labels(ws: Any, objs: dict[str, list[dict[str, Any]]]) -> list[tuple[str, str]]:
    types = {"bbox": "rectangle", "polygon": "polygon", "point": "points", "polyline": "polyline"}
    out: list[tuple[str, str]] = [(f.name, types[f.kind]) for f in ws.features() if f.kind in types]
    tags = sorted({str(o["answer"]) for v in objs.values() for o in v if o["kind"] in ("radio", "checklist")})
    for f in ws.features():
        if f.kind in ("radio", "checklist"):
            tags += [o for o in (f.options or []) if o not in tags]
    return out + [(t, "tag") for t in tags]


def _coco(ws: Any, rows: list[BatchRow], objs: dict[str, list[dict[str, Any]]], names: dict[int, str], *,
          scores: bool) -> tuple[dict[str, Any], int]:
    from slicewise.io.export import _categories

    cats, fid_to_cat = _categories(ws)
    by_name = {f.name: fid_to_cat[f.id] for f in ws.features() if f.id in fid_to_cat}
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    skipped = 0
    for i, r in enumerate(rows, start=1):
        images.append({"id": i, "file_name": names[r.id], "width": r.width, "height": r.height})
        for o in objs[r.key]:
            if o["kind"] not in ("bbox", "polygon", "mask") or o["feature"] not in by_name:
                skipped += 1
                continue
            x, y, w, h = o["bbox"]
            a: dict[str, Any] = {"id": len(anns) + 1, "image_id": i, "category_id": by_name[o["feature"]],
                                 "bbox": [x, y, w, h], "area": o.get("area", w * h), "iscrowd": int(bool(o.get("iscrowd"))),
                                 "segmentation": []}
            if o["kind"] == "polygon":
                a["segmentation"] = [[c for pt in ring for c in pt] for ring in o.get("polygon") or []]
            elif o["kind"] == "mask":
                a["segmentation"] = o["mask"]
            if scores and o.get("confidence") is not None:
                a["score"] = float(o["confidence"])
            anns.append(a)
    return {"info": {"description": "slicewise batch"}, "licenses": [], "images": images, "annotations": anns,
            "categories": cats}, skipped


def _labelbox(rows: list[BatchRow], objs: dict[str, list[dict[str, Any]]], what: str) -> tuple[bytes, int]:
    """Labelbox NDJSON import lines (what ``NDJsonConverter`` writes), one per object; rows first as
    data-row lines are not part of this format, so a row without objects has no line."""
    import uuid

    lines = []
    skipped = 0
    for r in rows:
        for o in objs[r.key]:
            line: dict[str, Any] = {"uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"slicewise:{o['id']}:{what}")),
                                    "dataRow": {"globalKey": r.key}, "name": o["feature"]}
            k = o["kind"]
            if k == "bbox":
                x, y, w, h = o["bbox"]
                line["bbox"] = {"top": y, "left": x, "height": h, "width": w}
            elif k == "polygon":
                line["polygon"] = [{"x": px, "y": py} for px, py in (o.get("polygon") or [[]])[0]]
            elif k == "point":
                line["point"] = {"x": o["point"][0], "y": o["point"][1]}
            elif k == "polyline":
                line["line"] = [{"x": px, "y": py} for px, py in o["line"]]
            elif k == "mask":
                line["mask"] = o["mask"]
            elif k == "ner":
                line["location"] = {"start": o["span"][0], "end": o["span"][1]}
            elif k == "radio":
                line["answer"] = {"name": o["answer"]}
            elif k == "checklist":
                line["answer"] = [{"name": o["answer"]}]
            else:
                skipped += 1
                continue
            if what == "predictions" and o.get("confidence") is not None:
                line["confidence"] = float(o["confidence"])
            lines.append(orjson.dumps(line))
    return b"\n".join(lines) + (b"\n" if lines else b""), skipped


def _csv(rows: list[BatchRow], objs: dict[str, list[dict[str, Any]]], what: str, b: Batch, prefix: str) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["global_key", "row_data", "dataset", "split", "width", "height", "queue_state", "batch", "priority",
                "objects", "classes"])
    for r in rows:
        os_ = objs[r.key]
        classes = sorted({str(o.get("answer") if o["kind"] in ("radio", "checklist") else o["feature"]) for o in os_})
        w.writerow([r.key, (prefix + r.row_data) if r.media_type == "image" else r.row_data, r.dataset, r.split,
                    r.width or "", r.height or "", r.state or "", b.name, b.priority, len(os_), ";".join(classes)])
    return buf.getvalue().encode()
