"""Labelbox NDJSON annotation / prediction import lines, unchanged, and data-row lists.

One JSON object per line, as Labelbox's ``NDJsonConverter`` writes them::

    {"uuid": .., "dataRow": {"globalKey": "img1"}, "name": "car", "bbox": {"top": 1, "left": 2, "height": 3, "width": 4}, "confidence": 0.9}
    "polygon": [{"x": .., "y": ..}, ...]     "point": {"x": .., "y": ..}     "line": [{"x": .., "y": ..}, ...]
    "mask": {"png": base64 PNG} | {"instanceURI": local path, "colorRGB": [r, g, b]} | {"size": [h, w], "counts": RLE}
    "location": {"start": 3, "end": 9}      (NER on a text row; offsets used as [start, end))
    "answer": {"name": "yes", "confidence": 0.8}              (radio; the feature is the question)
    "answer": [{"name": "a"}, {"name": "b"}]                    (checklist; also "answers")

``dataRow`` may be ``{"globalKey": ..}`` or ``{"id": ..}`` (both are matched against global keys);
a feature may be named by ``name`` or by ``schemaId`` (matched against a feature's external id).
Nested ``classifications`` are not imported (a warning says so).

With ``run``, the run covers the rows that got a prediction, unless ``rows=`` says more (see
:mod:`slicewise.io.runrows`, e.g. ``rows="dataset:images/split:valid"``).
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import numpy as np

from slicewise.errors import Problem, Report, ValidationError
from slicewise.io.common import (
    Batch,
    ImportResult,
    Progress,
    commit,
    parse_json,
    read_bytes,
    read_ndjson,
    source_name,
)
from slicewise.io.media import MediaFolder
from slicewise.io.runrows import parse_spec
from slicewise.types.frame import ObjectFrame


class _Bad(Exception):
    def __init__(self, reason: str, field: str = "", fix: str = "") -> None:
        super().__init__(reason)
        self.reason, self.field, self.fix = reason, field, fix


def import_ndjson(ws: Any, path: str | Path, *, run: str | None = None, skip_invalid: bool = False,
                  create_features: bool = False, progress: Progress | None = None,
                  rows: str | None = None) -> ImportResult:
    """Labelbox NDJSON lines as ground truth, or as run ``run``'s predictions when given (``rows``: which
    rows the run covers besides the predicted ones)."""
    if rows is not None and not run:
        raise ValidationError(Problem("rows= chooses the rows of a run, and no run is given", str(path), "rows",
                                      "pass run='model/run', or leave rows out"))
    spec = parse_spec(rows, default="predicted")
    path = Path(path)
    rep = Report()
    by_schema = {f.external_id: f.name for f in ws.features() if f.external_id}
    records: list[dict[str, Any]] = []
    for no, obj in read_ndjson(path, rep):
        loc = f"{path.name}:{no}"
        try:
            records += _record(obj, loc, path.parent, by_schema, rep)
        except _Bad as exc:
            rep.error(exc.reason, loc, exc.field, exc.fix)
    if not records and not rep.errors:
        raise ValidationError(Problem("the file has no annotation lines", path.name, "", "one JSON object per line"))
    frame = ObjectFrame.from_records(records, report=rep)
    batch = Batch(report=rep, source=source_name("ndjson", path))
    if run:
        batch.predictions, batch.run, batch.run_rows = frame, run, spec
    else:
        batch.annotations = frame
    return commit(ws, batch, skip_invalid=skip_invalid, create_features=create_features, progress=progress)


def _record(obj: Any, loc: str, folder: Path, by_schema: dict[str, str], rep: Report) -> list[dict[str, Any]]:
    if not isinstance(obj, dict):
        raise _Bad("a line must be a JSON object", "", "write one annotation object per line")
    dr = obj.get("dataRow")
    key = (dr.get("globalKey") or dr.get("global_key") or dr.get("id")) if isinstance(dr, dict) else None
    key = key or obj.get("globalKey") or obj.get("dataRowId")
    if not key:
        raise _Bad("missing dataRow", "dataRow", "give \"dataRow\": {\"globalKey\": \"...\"}")
    name = obj.get("name")
    if not name and obj.get("schemaId"):
        name = by_schema.get(obj["schemaId"])
        if name is None:
            raise _Bad(f"schemaId {obj['schemaId']!r} is not the external id of any feature", "schemaId",
                       "give \"name\", or create the feature with that external id")
    if not name:
        raise _Bad("missing name (the feature)", "name", "give the feature's name as \"name\"")
    if obj.get("classifications"):
        rep.warn("nested classifications are not imported", loc, "classifications",
                 "import them as top-level radio/checklist lines")
    rec: dict[str, Any] = {"data_row": str(key), "feature": str(name), "location": loc}
    if obj.get("confidence") is not None:
        rec["confidence"] = obj["confidence"]
    if "bbox" in obj:
        b = obj["bbox"]
        if not isinstance(b, dict) or any(k not in b for k in ("top", "left", "height", "width")):
            raise _Bad("bbox must be {top, left, height, width}", "bbox", "give all four, in pixels")
        rec["bbox"] = b
    elif "polygon" in obj:
        rec["polygon"] = obj["polygon"]
    elif "line" in obj:
        rec["line"] = obj["line"]
    elif "point" in obj:
        rec["point"] = obj["point"]
    elif "mask" in obj:
        rec["mask"] = _mask(obj["mask"], folder)
    elif "location" in obj:
        span = obj["location"]
        if not isinstance(span, dict) or "start" not in span or "end" not in span:
            raise _Bad("location must be {start, end}", "location", "give character offsets")
        rec["span"] = [span["start"], span["end"]]
    elif "answer" in obj or "answers" in obj:
        ans = obj.get("answer", obj.get("answers"))
        if isinstance(ans, str):
            raise _Bad("free-text classifications are not supported", "answer", "use a radio or checklist feature")
        if isinstance(ans, dict):
            if not ans.get("name"):
                raise _Bad("radio answer has no name", "answer.name", "give {\"name\": \"<option>\"}")
            rec["answer"] = ans["name"]
            if ans.get("confidence") is not None:
                rec["confidence"] = ans["confidence"]
        elif isinstance(ans, list) and ans:
            out = []
            for j, a in enumerate(ans):
                if not isinstance(a, dict) or not a.get("name"):
                    raise _Bad(f"checklist answer {j} has no name", "answer", "give [{\"name\": \"<option>\"}, ...]")
                r = {**rec, "answer": a["name"], "kind": "checklist", "location": f"{loc}#{j}"}
                if a.get("confidence") is not None:
                    r["confidence"] = a["confidence"]
                out.append(r)
            return out
        else:
            raise _Bad("answer must be {name} (radio) or [{name}, ...] (checklist)", "answer", "see Labelbox NDJSON")
    else:
        raise _Bad("no annotation value", "", "give one of bbox, polygon, line, point, mask, location, answer")
    return [rec]


def _mask(m: Any, folder: Path) -> dict[str, Any]:
    from PIL import Image
    from pycocotools import mask as mask_utils

    if not isinstance(m, dict):
        raise _Bad("mask must be an object", "mask", "give {\"png\": base64} or {\"instanceURI\", \"colorRGB\"}")
    if "counts" in m:
        return m
    color = m.get("colorRGB")
    if m.get("png"):
        try:
            raw = base64.b64decode(m["png"])
        except ValueError:
            raise _Bad("mask.png is not base64", "mask.png", "base64-encode the PNG bytes") from None
        src: Any = io.BytesIO(raw)
    elif m.get("instanceURI"):
        uri = str(m["instanceURI"])
        if uri.startswith(("http://", "https://", "gs://", "s3://")):
            raise _Bad(f"mask {uri} is remote; slicewise does not download", "mask.instanceURI",
                       "save the PNG beside the file and give its path")
        placed, bad = MediaFolder(folder, what="mask", option="", later=False).place(uri, "", "mask.instanceURI")
        if bad is not None or placed is None:
            raise _Bad(bad.reason if bad else "no mask path", "mask.instanceURI",
                       (bad.fix if bad else "give the PNG's path") + " (mask paths are relative to the NDJSON file)")
        src = placed
    else:
        raise _Bad("mask has neither png nor instanceURI", "mask", "give {\"png\": base64 PNG}")
    try:
        arr = np.asarray(Image.open(src))
    except Exception as exc:  # Pillow's several error types
        raise _Bad(f"mask image is unreadable ({exc.__class__.__name__})", "mask", "give a PNG") from None
    if arr.ndim == 3:
        binary = (arr[..., :3] == np.asarray(color[:3])).all(-1) if color else arr[..., :3].any(-1)
    else:
        binary = arr > 0
    rle = mask_utils.encode(np.asfortranarray(binary.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode()}


# -- data rows ----------------------------------------------------------------------------------
def import_rows(ws: Any, path: str | Path, *, dataset: str | None = None, images: str | Path | None = None,
                skip_invalid: bool = False, progress: Progress | None = None, check_media: bool = True) -> ImportResult:
    """Data rows from JSON (a list) or NDJSON, in Labelbox's shape or ours: ``global_key``/``globalKey``,
    ``row_data``, ``media_type`` (IMAGE/TEXT), ``width``, ``height``, ``split``, ``tags`` and
    ``metadata`` (a dict) or ``metadata_fields`` ([{"name", "value"}]).

    ``images``: the folder of the images; every local ``row_data`` of an image row must then lie inside
    it (relative to it, or an absolute path inside it) and exist (see :mod:`slicewise.io.media`;
    ``check_media=False`` skips the existence check). URLs are kept and never downloaded."""
    path = Path(path)
    media = MediaFolder(Path(images) if images else None, check=check_media)
    if (bad := media.folder_problem(path.name)) is not None:
        raise ValidationError(bad)
    rep = Report()
    data = read_bytes(path)
    if data.lstrip()[:1] == b"[":
        items = list(enumerate(parse_json(data, path.name)))
        locs = [f"{path.name} record {i}" for i, _ in items]
    else:
        pairs = list(read_ndjson(path, rep))
        items = [(i, o) for i, (_, o) in enumerate(pairs)]
        locs = [f"{path.name}:{no}" for no, _ in pairs]
    rows = []
    for (_, o), loc in zip(items, locs, strict=True):
        if not isinstance(o, dict):
            rep.error("a data row must be an object", loc, "", "write {\"global_key\", \"row_data\"}")
            continue
        md = o.get("metadata")
        if md is None and isinstance(o.get("metadata_fields"), list):
            md = {m.get("name"): m.get("value") for m in o["metadata_fields"] if isinstance(m, dict)}
        row_data, media_type = o.get("row_data", o.get("rowData")), o.get("media_type", o.get("mediaType"))
        if isinstance(row_data, str) and row_data and str(media_type or "image").lower() == "image":
            row_data, bad = media.place(row_data, loc, "row_data")
            if bad is not None:
                rep.problems.append(bad)
                continue
        rows.append({"global_key": o.get("global_key", o.get("globalKey")), "row_data": row_data,
                     "media_type": media_type, "width": o.get("width"),
                     "height": o.get("height"), "split": o.get("split"), "metadata": md or {},
                     "tags": o.get("tags") or [], "location": loc})
    if (none := media.none_found(path.name)) is not None:
        raise ValidationError(none)
    batch = Batch(report=rep, rows=rows, dataset=dataset or path.stem, source=source_name("rows", path),
                  media_roots=[media.root])
    return commit(ws, batch, skip_invalid=skip_invalid, progress=progress)
