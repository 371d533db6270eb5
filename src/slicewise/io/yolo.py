"""YOLO: ``data.yaml`` + ``<split>/images`` + ``<split>/labels/*.txt`` (boxes ``class cx cy w h`` or
polygons ``class x1 y1 x2 y2 ...``, normalised to [0, 1]); and YOLO predictions, either COCO-style JSON
(``image_id`` = the image's file stem, ``category_id`` = the class index, ``bbox`` in pixels) or a
folder of txt files ``class cx cy w h confidence``.

Data rows: global key = image file name, row data = the image path, width/height read with Pillow,
split from data.yaml's keys (train/val/test). Features: the class names, external id = class index.

Which rows a predictions import puts in the run (``rows=``, see :mod:`slicewise.io.runrows`): by
default every data row of the same dataset and split(s) as the predicted images (predictions on the
valid images cover the whole valid split, also images where the model found nothing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from slicewise.errors import Problem, Report, ValidationError
from slicewise.io.coco import parse_results_file
from slicewise.io.common import (
    IMAGE_SUFFIXES,
    Batch,
    ImportResult,
    Progress,
    commit,
    image_size,
    read_bytes,
    source_name,
    unknown_rows_first,
)
from slicewise.io.media import MediaFolder
from slicewise.io.runrows import parse_spec
from slicewise.types.frame import ObjectFrame
from slicewise.types.ids import ascii_int

_EPS = 1e-6  # rounding slack of normalised coordinates written as text
_SPLITS = {"train": "train", "val": "valid", "valid": "valid", "test": "test"}


def _names(doc: dict[str, Any], where: str) -> list[str]:
    names = doc.get("names")
    if isinstance(names, dict):
        try:
            return [str(names[k]) for k in sorted(names, key=int)]
        except (TypeError, ValueError):
            pass
    if isinstance(names, list) and names:
        return [str(n) for n in names]
    raise ValidationError(Problem("data.yaml has no class names", where, "names",
                                  "add names: [cat, dog] (or a {0: cat, 1: dog} mapping)"))


def _split_dirs(root: Path, doc: dict[str, Any]) -> list[tuple[str, Path]]:
    base = root / str(doc["path"]) if doc.get("path") else root
    out: list[tuple[str, Path]] = []
    for key, split in _SPLITS.items():
        rel = doc.get(key)
        if not isinstance(rel, str):
            continue
        cands = [base / rel, root / rel, root / rel.lstrip("./").removeprefix("../")]
        found = next((c for c in cands if c.is_dir()), None)
        if found is not None and all(found.resolve() != f.resolve() for _, f in out):
            out.append((split, found))
    return out


def _labels_dir(images: Path) -> Path:
    parts = list(images.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts)
    return images.parent / "labels"


def read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        doc = yaml.safe_load(read_bytes(path))
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise ValidationError(Problem(f"YAML syntax error: {getattr(exc, 'problem', exc)}",
                                      f"{path.name}:{line + 1}" if line is not None else path.name, "",
                                      "fix the YAML at that line")) from None
    if not isinstance(doc, dict):
        raise ValidationError(Problem("data.yaml must be a mapping", path.name, "", "write names: and train:/val: keys"))
    return doc


def import_yolo(ws: Any, folder: str | Path, *, dataset: str | None = None, skip_invalid: bool = False,
                progress: Progress | None = None) -> ImportResult:
    """Import a YOLO export (the folder holding data.yaml, or data.yaml itself)."""
    folder = Path(folder)
    yml = folder if folder.is_file() else folder / "data.yaml"
    if not yml.exists():
        raise ValidationError(Problem("no data.yaml here", str(folder), "", "point at the YOLO export's folder"))
    root = yml.parent
    doc = read_yaml(yml)
    names = _names(doc, yml.name)
    splits = _split_dirs(root, doc)
    if not splits:
        raise ValidationError(Problem("data.yaml names no existing train/val/test image folder", yml.name, "train",
                                      "set train: train/images (relative to data.yaml)"))
    rep = Report()
    batch = Batch(report=rep, dataset=dataset or root.name, source=source_name("yolo", root),
                  media_roots=[str(images) for _, images in splits])
    cols: dict[str, list[Any]] = {k: [] for k in ("data_row", "feature", "kind", "x", "y", "w", "h", "geometry",
                                                  "location")}
    has_poly: set[int] = set()
    for split, images in splits:
        labels = _labels_dir(images)
        files = sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        stems = {p.stem for p in files}
        if labels.is_dir():
            for lab in sorted(labels.glob("*.txt")):
                if lab.stem not in stems:
                    rep.error(f"label file has no image (looked for {lab.stem}.jpg/.png in {images})",
                              f"{lab.parent.name}/{lab.name}", "image", "add the image, or delete the label file")
        media = MediaFolder(images, later=False)
        for img in files:
            loc = str(img.relative_to(root))
            row_data, bad = media.place(img.name, loc, "image")
            if bad is not None:
                rep.problems.append(bad)
                continue
            try:
                w, h = image_size(img, loc)
            except ValidationError as exc:
                rep.problems += exc.problems
                continue
            batch.rows.append({"global_key": img.name, "row_data": row_data, "width": w, "height": h,
                               "split": split, "location": loc})
            lab = labels / f"{img.stem}.txt"
            if lab.exists():
                _read_labels(lab, img.name, names, w, h, cols, rep, has_poly, None)
        if progress:
            progress(0)
    batch.annotations = _frame(cols)
    batch.features = [(n, "polygon" if i in has_poly else "bbox", str(i)) for i, n in enumerate(names)]
    return commit(ws, batch, skip_invalid=skip_invalid, progress=progress)


def _frame(cols: dict[str, list[Any]]) -> ObjectFrame:
    c: dict[str, Any] = dict(cols)
    if "confidence" in c:
        c["confidence"] = np.asarray(c["confidence"], np.float64)
    return ObjectFrame.from_columns(**c)


def _read_labels(lab: Path, key: str, names: list[str], w: int, h: int, cols: dict[str, list[Any]], rep: Report,
                 has_poly: set[int], conf_col: bool | None) -> None:
    """Append one label file's objects to ``cols``; ``conf_col`` True reads a trailing confidence."""
    from shapely import Polygon, to_wkb

    where = f"{lab.parent.name}/{lab.name}"
    for no, line in enumerate(lab.read_text().splitlines(), 1):
        tok = line.split()
        if not tok:
            continue
        loc = f"{where}:{no}"
        try:
            vals = [float(t) for t in tok[1:]]
        except ValueError:
            rep.error(f"{line.strip()!r} has a value that is not a number", loc, "line",
                      "write class cx cy w h with numbers in [0, 1]")
            continue
        index = ascii_int(tok[0])
        if index is None or index >= len(names):
            rep.error(f"class {tok[0]!r} is not an index of data.yaml's {len(names)} names", loc, "class",
                      f"use 0..{len(names) - 1}, or add the class to data.yaml")
            continue
        cls = index
        conf = np.nan
        if conf_col:
            if len(vals) != 5:
                rep.error(f"expected class cx cy w h confidence, got {len(tok)} values", loc, "line",
                          "write one prediction per line")
                continue
            conf = vals.pop()
            if not 0 <= conf <= 1:  # NaN fails too
                rep.error(f"confidence {conf:g} is outside [0, 1]", loc, "confidence", "give a probability in [0, 1]")
                continue
        if not np.isfinite(vals).all():
            rep.error("a coordinate is NaN or infinite", loc, "bbox", "write finite numbers in [0, 1]")
            continue
        off = [(j, val) for j, val in enumerate(vals) if not -_EPS <= val <= 1 + _EPS]
        if off:
            j, bad = off[0]
            what = ("cx", "cy", "w", "h")[j] if len(vals) == 4 else f"{'xy'[j % 2]}{j // 2 + 1}"
            rep.error(f"{what} = {bad:g} is outside [0, 1]", loc, "bbox",
                      "write class cx cy w h with numbers in [0, 1] (normalised by the image's width and height)")
            continue
        if len(vals) == 4:
            cx, cy, bw, bh = vals
            x, y, ww, hh, geom = (cx - bw / 2) * w, (cy - bh / 2) * h, bw * w, bh * h, None
            kind = "bbox"
        elif len(vals) >= 6 and len(vals) % 2 == 0:
            xy = np.asarray(vals).reshape(-1, 2) * [w, h]
            poly = Polygon(xy)
            x0, y0, x1, y1 = poly.bounds
            x, y, ww, hh, geom, kind = x0, y0, x1 - x0, y1 - y0, to_wkb(poly), "polygon"
            has_poly.add(cls)
        else:
            rep.error(f"{len(tok)} values: neither a box (class cx cy w h) nor a polygon (class x1 y1 x2 y2 x3 y3 ...)",
                      loc, "line", "a polygon needs at least 3 points")
            continue
        for k, v in (("data_row", key), ("feature", names[cls]), ("kind", kind), ("x", x), ("y", y), ("w", ww),
                     ("h", hh), ("geometry", geom), ("location", loc)):
            cols[k].append(v)
        if conf_col:
            cols["confidence"].append(conf)


def import_yolo_predictions(ws: Any, path: str | Path, run: str, *, skip_invalid: bool = False,
                            create_features: bool = False, progress: Progress | None = None,
                            names: list[str] | None = None, rows: str | None = None) -> ImportResult:
    """YOLO predictions: a COCO-style JSON file, or a folder of ``class cx cy w h conf`` txt files
    named after the images (needs the images imported first, for their sizes). ``rows``: which rows
    the run covers (default: every row of the predicted images' dataset and split)."""
    spec = parse_spec(rows, default="same-split")
    path = Path(path)
    if path.is_file():
        batch = parse_results_file(ws, path, create_features=create_features)
    else:
        if not path.is_dir():
            raise ValidationError(Problem("no such file or folder", str(path), "", "check the path"))
        by_cls = {n: f.name for f in ws.features() if (n := ascii_int(f.external_id)) is not None}
        names = names or [by_cls.get(i, str(i)) for i in range(max(by_cls, default=-1) + 1)]
        by_stem = {Path(k).stem: (k, w, h) for k, w, h in ws.store.cursor().execute(
            "SELECT global_key, width, height FROM data_rows").fetchall()}
        rep = Report()
        cols: dict[str, list[Any]] = {k: [] for k in ("data_row", "feature", "kind", "x", "y", "w", "h",
                                                      "geometry", "location", "confidence")}
        labs = sorted(path.glob("*.txt"))
        unknown_rows_first([lab.stem for lab in labs if lab.stem not in by_stem], len(labs), path.name, "data_row",
                           not by_stem)
        for lab in labs:
            if lab.stem not in by_stem:
                rep.error(f"prediction for unknown data row {lab.stem!r}", lab.name, "data_row",
                          "import the images first, or check the file name")
                continue
            key, w, h = by_stem[lab.stem]
            if not w or not h:
                rep.error(f"data row {key!r} has no size", lab.name, "image", "import the images with their sizes")
                continue
            _read_labels(lab, key, names, w, h, cols, rep, set(), True)
        batch = Batch(predictions=_frame(cols), report=rep)
    batch.run, batch.source, batch.run_rows = run, source_name("yolo-predictions", path), spec
    return commit(ws, batch, skip_invalid=skip_invalid, create_features=create_features, progress=progress)
