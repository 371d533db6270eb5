"""Plain box formats: the per-image text files of the mAP tool (``indoor-85``) and Pascal VOC XML.

Text format (one file per image, named after it): ground truth ``class left top right bottom
[difficult]``, predictions ``class confidence left top right bottom``; pixels, class names may hold
spaces. The folder holds ``ground-truth/``, optionally ``detection-results/`` and an image folder
(``images-optional/`` or ``images/``); image sizes are read with Pillow. The classes of both files
become bbox features (the detector's classes are part of the dataset's ontology: a predicted class
that no ground truth uses is a false positive, not an error).

VOC: a folder of XML files (or ``Annotations/`` + ``JPEGImages/``); ``size`` gives the image size
(read from the image when absent), each ``object`` gives ``name`` and ``bndbox``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from slicewise.errors import Problem, Report, ValidationError
from slicewise.io.common import Batch, ImportResult, Progress, commit, find_image, image_size, source_name
from slicewise.io.media import MediaFolder
from slicewise.types.frame import ObjectFrame

_COLS = ("data_row", "feature", "kind", "x", "y", "w", "h", "confidence", "location")


def _new_cols() -> dict[str, list[Any]]:
    return {k: [] for k in _COLS}


def _add(cols: dict[str, list[Any]], key: str, cls: str, box: list[float], conf: float, loc: str) -> None:
    left, top, right, bottom = box
    for k, v in zip(_COLS, (key, cls, "bbox", left, top, right - left, bottom - top, conf, loc), strict=True):
        cols[k].append(v)


def _frame(cols: dict[str, list[Any]]) -> ObjectFrame:
    c: dict[str, Any] = dict(cols)
    c["confidence"] = np.asarray(c["confidence"], np.float64)
    return ObjectFrame.from_columns(**c)


def _parse_line(line: str, loc: str, pred: bool, rep: Report) -> tuple[str, float, list[float]] | None:
    tok = line.split()
    if tok and tok[-1] == "difficult" and not pred:
        tok = tok[:-1]
    need = 5 if pred else 4
    fmt = "class confidence left top right bottom" if pred else "class left top right bottom"
    if len(tok) < need + 1:
        rep.error(f"{len(tok)} values, expected {fmt}", loc, "line", f"write {fmt}")
        return None
    try:
        nums = [float(t) for t in tok[-need:]]
    except ValueError:
        rep.error(f"{line.strip()!r}: a coordinate is not a number", loc, "bbox", f"write {fmt}")
        return None
    cls = " ".join(tok[:-need])
    conf = nums.pop(0) if pred else math.nan
    if pred and not (0 <= conf <= 1):  # NaN fails too
        rep.error(f"confidence {conf:g} is outside [0, 1]", loc, "confidence", "give a probability between 0 and 1")
        return None
    left, top, right, bottom = nums
    if not all(math.isfinite(v) for v in nums):
        rep.error("box has a NaN or infinite coordinate", loc, "bbox", "write finite pixel coordinates")
        return None
    if right <= left or bottom <= top:
        rep.error(f"box has width {right - left:g} and height {bottom - top:g}", loc, "bbox",
                  "right must exceed left and bottom exceed top (this format is left top right bottom)")
        return None
    return cls, conf, nums


def _image_folder(root: Path, images: str | Path | None) -> Path | None:
    if images:
        return Path(images)
    for name in ("images-optional", "images", "JPEGImages"):
        if (root / name).is_dir():
            return root / name
    return None


def import_indoor(ws: Any, folder: str | Path, *, dataset: str | None = None, run: str | None = None,
                  images: str | Path | None = None, skip_invalid: bool = False, create_features: bool = False,
                  progress: Progress | None = None) -> ImportResult:
    """Import ``ground-truth/`` (and ``detection-results/`` as run ``run``, default detector/<dataset>)."""
    root = Path(folder)
    if not (root / "ground-truth").is_dir() and (root / "input" / "ground-truth").is_dir():
        root = root / "input"
    gt_dir = root / "ground-truth"
    if not gt_dir.is_dir():
        raise ValidationError(Problem("no ground-truth/ folder", str(root), "", "point at the folder holding ground-truth/"))
    img_dir = _image_folder(root, images)
    media = MediaFolder(img_dir, later=False)
    if (bad := media.folder_problem(str(root))) is not None:
        raise ValidationError(bad)
    name = dataset or (root.parent.name if root.name == "input" else root.name)
    rep = Report()
    batch = Batch(report=rep, dataset=name, source=source_name("boxes", root), media_roots=[media.root])
    gt = _new_cols()
    classes: dict[str, None] = {}
    files = sorted(gt_dir.glob("*.txt"))
    if not files:
        raise ValidationError(Problem("ground-truth/ has no .txt files", str(gt_dir), "", "one file per image"))
    keys: dict[str, str] = {}
    for f in files:
        where = f"ground-truth/{f.name}"
        row: dict[str, Any] = {"global_key": f.stem, "row_data": f.stem, "location": where}
        if img_dir is not None:
            img = find_image(img_dir, f.stem)
            if img is None:
                rep.error(f"image file for {f.stem} is missing in {img_dir}", where, "image",
                          "add the image, or remove its ground-truth file")
                continue
            row_data, bad = media.place(img.name, where, "image")
            if bad is not None:
                rep.problems.append(bad)
                continue
            try:
                w, h = image_size(img, where)
            except ValidationError as exc:
                rep.problems += exc.problems
                continue
            row.update(global_key=img.name, row_data=row_data, width=w, height=h)
        keys[f.stem] = row["global_key"]
        batch.rows.append(row)
        for no, line in enumerate(f.read_text().splitlines(), 1):
            if line.strip() and (p := _parse_line(line, f"{where}:{no}", False, rep)):
                classes.setdefault(p[0])
                _add(gt, row["global_key"], p[0], p[2], math.nan, f"{where}:{no}")
    batch.annotations = _frame(gt)
    batch.features = [(c, "bbox", None) for c in classes]
    det_dir = root / "detection-results"
    if det_dir.is_dir():
        pr = _new_cols()
        for f in sorted(det_dir.glob("*.txt")):
            where = f"detection-results/{f.name}"
            key = keys.get(f.stem)
            if key is None:
                rep.error(f"prediction for unknown data row {f.stem!r} (no ground-truth file of that name)", where,
                          "data_row", "add its ground-truth file (empty if the image has no objects)")
                continue
            for no, line in enumerate(f.read_text().splitlines(), 1):
                if line.strip() and (p := _parse_line(line, f"{where}:{no}", True, rep)):
                    classes.setdefault(p[0])
                    _add(pr, key, p[0], p[2], p[1], f"{where}:{no}")
        batch.predictions = _frame(pr)
        batch.features = [(c, "bbox", None) for c in classes]
        batch.run = run or f"detector/{name}"
    return commit(ws, batch, skip_invalid=skip_invalid, create_features=create_features, progress=progress)


def import_voc(ws: Any, folder: str | Path, *, dataset: str | None = None, images: str | Path | None = None,
               split: str = "none", skip_invalid: bool = False, progress: Progress | None = None,
               check_media: bool = True) -> ImportResult:
    """Import Pascal VOC XML files (a folder of them, its ``Annotations/`` subfolder, or one file).

    With an images folder (``images``, or ``JPEGImages/`` beside them), each ``<filename>`` must lie inside
    it and exist (see :mod:`slicewise.io.media`; ``check_media=False`` skips the existence check).
    XML entities and DTDs are refused (a file that declares them is not imported)."""
    root = Path(folder)
    ann_dir = root / "Annotations" if (root / "Annotations").is_dir() else root
    files = [root] if root.is_file() else sorted(ann_dir.glob("*.xml"))
    if not files:
        raise ValidationError(Problem("no .xml files", str(ann_dir), "", "point at the VOC Annotations folder"))
    base = root.parent if root.is_file() else root
    img_dir = _image_folder(base, images)
    media = MediaFolder(img_dir, check=check_media)
    if (bad := media.folder_problem(str(base))) is not None:
        raise ValidationError(bad)
    rep = Report()
    batch = Batch(report=rep, dataset=dataset or base.name, source=source_name("voc", base),
                  media_roots=[media.root])
    cols = _new_cols()
    classes: dict[str, None] = {}
    for f in files:
        doc = _parse_xml(f, rep)
        if doc is None:
            continue
        fname = (doc.findtext("filename") or f"{f.stem}.jpg").strip()
        w, h = _int(doc.findtext("size/width")), _int(doc.findtext("size/height"))
        row_data, bad = media.place(fname, f.name, "filename")
        if bad is not None or row_data is None:
            rep.problems += [bad] if bad else []
            continue
        img = Path(row_data) if img_dir is not None else None
        if img is not None and (not w or not h) and img.exists():
            try:
                w, h = image_size(img, f.name)
            except ValidationError as exc:
                rep.problems += exc.problems
                continue
        if not w or not h:
            rep.error("no image size (size/width, size/height) and no image to read it from", f.name, "size",
                      "add <size><width>..</width><height>..</height></size>, or pass the images folder")
            continue
        batch.rows.append({"global_key": fname, "row_data": row_data, "width": w,
                           "height": h, "split": split, "location": f.name})
        for i, obj in enumerate(doc.iter("object")):
            loc = f"{f.name} object {i + 1}"
            cls = (obj.findtext("name") or "").strip()
            if not cls:
                rep.error("object has no name", loc, "name", "give the class in <name>")
                continue
            vals = [obj.findtext(f"bndbox/{k}") for k in ("xmin", "ymin", "xmax", "ymax")]
            line = f"{cls.replace(' ', '_')} {' '.join(v or '?' for v in vals)}"
            p = _parse_line(line, loc, False, rep)
            if p:
                classes.setdefault(cls)
                _add(cols, fname, cls, p[2], math.nan, loc)
    if (none := media.none_found(str(base))) is not None:
        raise ValidationError(none)
    batch.annotations = _frame(cols)
    batch.features = [(c, "bbox", None) for c in classes]
    return commit(ws, batch, skip_invalid=skip_invalid, progress=progress)


def _parse_xml(f: Path, rep: Report) -> Any:
    """The root element of a VOC file, parsed with defusedxml: a DTD, entity or external reference is
    refused (a "billion laughs" file would otherwise expand a few hundred bytes into gigabytes)."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import ParseError, parse

    try:
        return parse(f, forbid_dtd=True, forbid_entities=True, forbid_external=True).getroot()
    except ParseError as exc:
        rep.error(f"XML syntax error: {exc}", f"{f.name}:{exc.position[0]}", "", "fix the XML at that line")
    except DefusedXmlException as exc:
        rep.error(f"the XML declares a DTD or entities, which slicewise refuses ({exc.__class__.__name__})", f.name,
                  "", "remove the <!DOCTYPE ...> and <!ENTITY ...> declarations; VOC files need neither")
    except OSError as exc:
        rep.error(f"cannot read the file: {exc.strerror}", f.name, "", "check its permissions")
    return None


def _int(v: str | None) -> int | None:
    try:
        return int(float(v)) if v else None
    except ValueError:
        return None
