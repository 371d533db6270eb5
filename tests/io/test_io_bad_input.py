"""Bad input, table-driven: every case names what, where (file + line/record), the field and a fix,
and leaves the store exactly as it was; the CLI prints the library's message character for character.
With --skip-invalid the rest is imported and a rejects file holds one line per rejected record.

Each case is one import call (format, input file, options), run through the library
(``slicewise.io.import_<format>``) and through the CLI (``slicewise import <format> ...``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import slicewise
from slicewise import ValidationError
from slicewise.cli import app
from slicewise.io import import_ndjson

IMG = {"id": 1, "file_name": "a.jpg", "width": 100, "height": 80}
CATS = [{"id": 1, "name": "cat"}]
BOX = {"id": 7, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 10], "area": 100, "iscrowd": 0}


def coco(**over: Any) -> dict[str, Any]:
    doc = {"images": [IMG], "annotations": [BOX], "categories": CATS}
    doc.update(over)
    return doc


def _png(path: Path, size=(100, 80)) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size).save(path)
    return path


def _indoor(tmp: Path, gt: str, det: str | None = None, images: bool = True) -> Path:
    root = tmp / "boxes"
    (root / "ground-truth").mkdir(parents=True)
    (root / "ground-truth" / "a.txt").write_text(gt)
    if det is not None:
        (root / "detection-results").mkdir()
        (root / "detection-results" / "a.txt").write_text(det)
    if images:
        _png(root / "images" / "a.jpg")
    return root


def _bomb(path: Path, width: int = 30_000, height: int = 30_000) -> Path:
    """A PNG whose header claims width x height pixels (900 megapixels, a few hundred bytes on disk)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def _yolo(tmp: Path, label: str, corrupt: bool = False, link_out: bool = False, bomb: bool = False) -> Path:
    root = tmp / "yolo"
    (root / "valid" / "labels").mkdir(parents=True)
    (root / "data.yaml").write_text("names: [cat]\nval: valid/images\n")
    (root / "valid" / "labels" / "a.txt").write_text(label)
    if corrupt:
        (root / "valid" / "images").mkdir(parents=True)
        (root / "valid" / "images" / "a.jpg").write_bytes(b"not a jpeg")
    elif bomb:
        _bomb(root / "valid" / "images" / "a.png")
    elif link_out:
        (root / "valid" / "images").mkdir(parents=True)
        (root / "valid" / "images" / "a.jpg").symlink_to(_png(tmp / "elsewhere" / "private.jpg"))
    else:
        _png(root / "valid" / "images" / "a.jpg")
    return root


def _write(tmp: Path, name: str, content: str | bytes | Any) -> Path:
    p = tmp / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    elif isinstance(content, str):
        p.write_text(content)
    else:
        p.write_text(json.dumps(content))
    return p


def _nd(*lines: Any) -> str:
    return "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n"


def _lb(**v: Any) -> dict[str, Any]:
    return {"uuid": "u1", "dataRow": {"globalKey": "a.jpg"}, "name": "cat", **v}


GOOD_BOX = {"top": 2, "left": 1, "height": 10, "width": 10}


@dataclass
class Call:
    """One import: ``slicewise import <fmt> <path> [options]`` = ``slicewise.io.import_<fmt>(ws, path, **options)``."""

    fmt: str
    path: Path
    options: dict[str, Any]

    def library(self, ws: Any) -> Any:
        from slicewise.server.imports import importer

        return importer(self.fmt)(ws, self.path, **self.options)

    def argv(self, workspace: Path) -> list[str]:
        out = ["import", self.fmt, str(self.path), "-w", str(workspace)]
        for k, v in self.options.items():
            if k == "check_media":
                out += [] if v else ["--media-later"]
            elif v is True:
                out.append(f"--{k.replace('_', '-')}")
            else:
                out += [f"--{k.replace('_', '-')}", str(v)]
        return out


@dataclass
class Case:
    id: str
    call: Callable[[Path], Call]  # writes the input files under tmp, returns the import to run
    reason: str
    where: str
    field: str
    fix: str


def _call(fmt: str, name: str, content: Any, **options: Any) -> Callable[[Path], Call]:
    return lambda tmp: Call(fmt, _write(tmp, name, content), options)


def _results(content: Any, name: str = "r.json") -> Callable[[Path], Call]:
    return _call("coco-results", name, content, run="m/r")


def _instances(content: Any, images: str | None = None, **options: Any) -> Callable[[Path], Call]:
    def make(tmp: Path) -> Call:
        if images is not None:
            (tmp / images).mkdir(exist_ok=True)
            options["images"] = tmp / images
        return Call("coco", _write(tmp, "gt.json", content), {"dataset": "pets", **options})
    return make


def _ndjson(text: str, run: str | None = None) -> Callable[[Path], Call]:
    return _call("ndjson", "p.ndjson", text, **({"run": run} if run else {}))


def _folder(fmt: str, make: Callable[[Path], Path], **options: Any) -> Callable[[Path], Call]:
    def call(tmp: Path) -> Call:
        opts = {k: (v(tmp) if callable(v) else v) for k, v in options.items()}
        return Call(fmt, make(tmp), opts)
    return call


def _coco_img(name: str) -> dict[str, Any]:
    return coco(images=[{**IMG, "file_name": name}], annotations=[])


def _link_out(tmp: Path) -> dict[str, Any]:
    (tmp / "imgs").mkdir(exist_ok=True)
    (tmp / "imgs" / "b.jpg").symlink_to(_png(tmp / "outside" / "secret.jpg"))
    return _coco_img("b.jpg")


def _indoor_link_out(tmp: Path) -> Path:
    root = _indoor(tmp, "cat 1 1 5 5\n", images=False)
    (root / "images").mkdir()
    (root / "images" / "a.jpg").symlink_to(_png(tmp / "outside" / "secret.jpg"))
    return root


def _voc(tmp: Path, xml: str, image: str | None = None) -> Path:
    root = tmp / "voc"
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    (root / "Annotations" / "a.xml").write_text(xml)
    if image:
        _png(root / "JPEGImages" / image)
    return root


_VOC = ("<annotation><filename>{name}</filename><size><width>100</width><height>80</height></size>"
        "<object><name>{cls}</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>30</xmax><ymax>40</ymax></bndbox>"
        "</object></annotation>")
_LAUGHS = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
           ' <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n'
           ' <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">\n'
           ' <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">\n]>\n'
           + _VOC.format(name="a.jpg", cls="&lol3;"))


def _rows(records: list[dict[str, Any]], images: str | None = "imgs") -> Callable[[Path], Call]:
    def make(tmp: Path) -> Call:
        opts: dict[str, Any] = {"dataset": "more"}
        if images:
            (tmp / images).mkdir(exist_ok=True)
            opts["images"] = tmp / images
        return Call("rows", _write(tmp, "rows.json", records), opts)
    return make


def _mask_line(uri: str) -> Callable[[Path], Call]:
    def make(tmp: Path) -> Call:
        _png(tmp / "secret.png", (100, 80))
        (tmp / "sub").mkdir()
        line = _nd(_lb(name="stain", mask={"instanceURI": uri, "colorRGB": [0, 0, 0]}))
        return Call("ndjson", _write(tmp / "sub", "p.ndjson", line), {})
    return make


CASES = [
    Case("json-syntax-error", _instances('{"images": [\n  {"id": 1}\n  {"id": 2}\n]}'),
         "JSON syntax error", "gt.json:3", "", "fix the JSON at that line"),
    Case("ndjson-syntax-error", _ndjson(_nd(_lb(bbox=GOOD_BOX), '{"dataRow": {"globalKey": "a.jpg"}, "name": ')),
         "JSON syntax error", "p.ndjson:2", "", "one complete JSON object"),
    Case("missing-field-coco", _instances(coco(annotations=[{k: v for k, v in BOX.items() if k != "category_id"}])),
         "annotation has no category_id", "gt.json annotations[0]", "category_id", "category's id"),
    Case("missing-field-ndjson", _ndjson(_nd({"name": "cat", "bbox": GOOD_BOX})),
         "missing dataRow", "p.ndjson:1", "dataRow", "globalKey"),
    Case("box-negative-size", _results([{"image_id": 1, "category_id": 1, "bbox": [1, 2, -5, 3], "score": 0.5}]),
         "box has width -5 and height 3", "r.json record 0", "bbox", "width and height must be > 0"),
    Case("box-zero-size", _folder("indoor", lambda tmp: _indoor(tmp, "cat 10 10 10 20\n")),
         "box has width 0 and height 10", "ground-truth/a.txt:1", "bbox", "right must exceed left"),
    Case("box-nan", _ndjson('{"dataRow": {"globalKey": "a.jpg"}, "name": "cat", '
                            '"bbox": {"top": NaN, "left": 1, "height": 3, "width": 3}}\n'),
         "NaN or infinite", "p.ndjson:1", "bbox", "finite"),
    Case("box-inf", _folder("indoor", lambda tmp: _indoor(tmp, "cat 1 1 5 5\n", "cat 0.5 0 0 inf 5\n")),
         "NaN or infinite", "detection-results/a.txt:1", "bbox", "finite"),
    Case("box-huge", _results([{"image_id": 1, "category_id": 1, "bbox": [1, 2, 1e308, 1e308], "score": 0.5}]),
         "box [1, 2, 1e+308, 1e+308] reaches more than 50% of its size beyond the image (100 x 80 pixels)",
         "r.json record 0", "bbox", "write [x, y, width, height] in pixels of the image"),
    Case("box-outside-image", _ndjson(_nd(_lb(bbox={"top": 10, "left": 120, "height": 5, "width": 5}))),
         "box [120, 10, 5, 5] lies entirely outside the image (100 x 80 pixels)", "p.ndjson:1", "bbox",
         "at most 50% of the image's width/height beyond its edges"),
    Case("confidence-above-1", _results([{"image_id": 1, "category_id": 1, "bbox": [1, 2, 5, 3], "score": 1.5}]),
         "confidence 1.5 is outside [0, 1]", "r.json record 0", "confidence", "between 0 and 1"),
    Case("confidence-nan", _ndjson('{"dataRow": {"globalKey": "a.jpg"}, "name": "cat", "confidence": NaN, '
                                   '"bbox": {"top": 1, "left": 1, "height": 3, "width": 3}}\n', run="m/r"),
         "confidence is NaN", "p.ndjson:1", "confidence", "between 0 and 1"),
    Case("confidence-not-a-number", _ndjson(_nd(_lb(bbox=GOOD_BOX, confidence="high")), run="m/r"),
         "confidence 'high' is not a number", "p.ndjson:1", "confidence", "give a probability between 0 and 1"),
    Case("confidence-negative-csv", _call("table", "t.csv", "global_key,label,prediction,confidence\na.jpg,yes,no,-0.2\n",
                                          run="m/r", feature="q"),
         "confidence -0.2 is outside [0, 1]", "t.csv:2", "confidence", "between 0 and 1"),
    Case("polygon-too-few-points", _instances(coco(annotations=[{**BOX, "segmentation": [[1, 1, 5, 5]]}])),
         "polygon part 0 has 2 points", "gt.json annotations[0]", "segmentation", "at least 3 points"),
    Case("polygon-too-few-points-ndjson", _ndjson(_nd(_lb(polygon=[{"x": 1, "y": 1}, {"x": 4, "y": 4}])),
                                                  run="m/r"),
         "polygon has 2 points", "p.ndjson:1", "polygon", "at least 3 points"),
    Case("rle-size-mismatch", _results([{"image_id": 1, "category_id": 1, "score": 0.5,
                                         "segmentation": {"size": [10, 10], "counts": [100]}}]),
         "RLE size [10, 10] differs from the image's [80, 100]", "r.json record 0", "segmentation.size",
         "height x width"),
    Case("span-outside-text", _ndjson(_nd({"dataRow": {"globalKey": "t1"}, "name": "person",
                                           "location": {"start": 3, "end": 50}})),
         "span [3, 50) is outside the text (11 characters)", "p.ndjson:1", "span", "offsets count characters"),
    Case("unknown-class", _ndjson(_nd(_lb(name="zebra", bbox=GOOD_BOX)), run="m/r"),
         "unknown class 'zebra'", "p.ndjson:1", "feature", "--create-features"),
    Case("unknown-category-in-results", _results([{"image_id": 1, "category_id": 5, "bbox": [1, 2, 5, 3],
                                                   "score": 0.5}]),
         "category id 5 is not the external id of any feature", "r.json record 0", "category_id", "--create-features"),
    Case("predictions-before-their-images", _results([{"image_id": i, "category_id": 1, "bbox": [1, 2, 5, 3],
                                                       "score": 0.5} for i in (999, 998, 999, 5, 6, 7, 8)]),
         "the predictions name 6 images (999, 998, 5, 6, 7, ... (1 more)) and the workspace has none of them",
         "r.json", "image_id", "import the images (data rows) first, then the predictions"),
    Case("predictions-before-their-images-ndjson",
         _ndjson(_nd(*(_lb(dataRow={"globalKey": f"n{i}.jpg"}, bbox=GOOD_BOX) for i in range(3))), run="m/r"),
         "the predictions name 3 images ('n0.jpg', 'n1.jpg', 'n2.jpg') and the workspace has none of them",
         "p.ndjson", "data_row", "import the images (data rows) first"),
    Case("prediction-for-unknown-row", _results([{"image_id": 1, "category_id": 1, "bbox": [1, 2, 5, 3], "score": 0.5},
                                                 {"image_id": 999, "category_id": 1, "bbox": [1, 2, 5, 3],
                                                  "score": 0.5}]),
         "prediction for unknown image 999", "r.json record 1", "image_id", "import the images first"),
    Case("prediction-for-unknown-row-ndjson", _ndjson(_nd(_lb(bbox=GOOD_BOX),
                                                          _lb(dataRow={"globalKey": "nope.jpg"}, bbox=GOOD_BOX)),
                                                      run="m/r"),
         "prediction for unknown data row 'nope.jpg'", "p.ndjson:2", "data_row", "import the data rows first"),
    Case("duplicate-global-keys", _instances(coco(images=[IMG, {**IMG, "id": 2}])),
         "duplicate global key 'a.jpg'", "gt.json images[1]", "global_key", "unique"),
    Case("missing-image-file",
         _folder("indoor", lambda tmp: _indoor(tmp, "cat 1 1 5 5\n", images=False),
                 images=lambda tmp: (tmp / "empty").mkdir() or tmp / "empty"),
         "image file for a is missing", "ground-truth/a.txt", "image", "add the image"),
    Case("unreadable-image-file", _folder("yolo", lambda tmp: _yolo(tmp, "0 0.5 0.5 0.2 0.2\n", corrupt=True)),
         "is unreadable", "valid/images/a.jpg", "image", "replace it with a valid JPEG/PNG"),
    Case("image-decompression-bomb", _folder("yolo", lambda tmp: _yolo(tmp, "0 0.5 0.5 0.2 0.2\n", bomb=True)),
         "is too large to read safely", "valid/images/a.png", "image", "scale the image down"),
    Case("category-not-in-file", _instances(coco(annotations=[{**BOX, "category_id": 99}])),
         "category id 99 is not in the file's category list", "gt.json annotations[0]", "category_id",
         "add the category"),
    Case("empty-file", _results(""), "file is empty", "r.json", "", "export the data again"),
    Case("yolo-class-out-of-range", _folder("yolo", lambda tmp: _yolo(tmp, "3 0.5 0.5 0.2 0.2\n")),
         "class '3' is not an index of data.yaml's 1 names", "labels/a.txt:1", "class", "add the class"),
    Case("yolo-class-not-ascii-digits", _folder("yolo", lambda tmp: _yolo(tmp, "\u00b2 0.5 0.5 0.2 0.2\n")),
         "class '\u00b2' is not an index of data.yaml's 1 names", "labels/a.txt:1", "class", "add the class"),
    Case("yolo-coordinate-out-of-range", _folder("yolo", lambda tmp: _yolo(tmp, "0 1.5 0.5 0.2 0.2\n")),
         "cx = 1.5 is outside [0, 1]", "labels/a.txt:1", "bbox", "write class cx cy w h with numbers in [0, 1]"),
    # image paths: inside the images folder, existing (see slicewise.io.media)
    Case("coco-image-not-in-folder", _instances(_coco_img("b.jpg"), images="imgs"),
         "image file 'b.jpg' is not in", "gt.json images[0]", "file_name", "or pass --media-later"),
    Case("coco-no-image-in-folder", _instances(coco(images=[{**IMG, "id": i, "file_name": f"x{i}.jpg"} for i in range(5)],
                                                    annotations=[]), images="imgs"),
         "none of the 5 image files the file names ('x0.jpg', 'x1.jpg', 'x2.jpg', ...) is in", "gt.json", "images",
         "pass the folder that holds them with --images, or --media-later"),
    Case("coco-image-dotdot", _instances(_coco_img("../../../../etc/passwd"), images="imgs"),
         "image path '../../../../etc/passwd' leaves the images folder (it has a '..' part)", "gt.json images[0]",
         "file_name", "without '..'"),
    Case("coco-image-dotdot-media-later", _instances(_coco_img("sub/../../x.jpg"), images="imgs", check_media=False),
         "image path 'sub/../../x.jpg' leaves the images folder", "gt.json images[0]", "file_name", "without '..'"),
    Case("coco-image-absolute", _instances(_coco_img("/etc/passwd"), images="imgs"),
         "image path '/etc/passwd' is outside the images folder", "gt.json images[0]", "file_name",
         "write the path relative to"),
    Case("coco-image-link-out", lambda tmp: Call("coco", _write(tmp, "gt.json", _link_out(tmp)),
                                                 {"dataset": "pets", "images": tmp / "imgs"}),
         "image file 'b.jpg' is a link that points outside the images folder", "gt.json images[0]", "file_name",
         "copy the file into"),
    Case("coco-images-folder-missing", lambda tmp: Call("coco", _write(tmp, "gt.json", _coco_img("b.jpg")),
                                                        {"dataset": "pets", "images": tmp / "nowhere"}),
         "the images folder", "gt.json", "images", "check the --images path"),
    Case("yolo-image-link-out", _folder("yolo", lambda tmp: _yolo(tmp, "0 0.5 0.5 0.2 0.2\n", link_out=True)),
         "image file 'a.jpg' is a link that points outside the images folder", "valid/images/a.jpg", "image",
         "copy the file into"),
    Case("indoor-image-link-out", _folder("indoor", _indoor_link_out),
         "image file 'a.jpg' is a link that points outside the images folder", "ground-truth/a.txt", "image",
         "copy the file into"),
    Case("voc-image-dotdot", _folder("voc", lambda tmp: _voc(tmp, _VOC.format(name="../../secret.jpg", cls="cat"))),
         "image path '../../secret.jpg' leaves the images folder", "a.xml", "filename", "without '..'"),
    Case("voc-image-not-in-folder", _folder("voc", lambda tmp: _voc(tmp, _VOC.format(name="b.jpg", cls="cat"))),
         "image file 'b.jpg' is not in", "a.xml", "filename", "or pass --media-later"),
    Case("voc-billion-laughs", _folder("voc", lambda tmp: _voc(tmp, _LAUGHS, image="a.jpg")),
         "the XML declares a DTD or entities, which slicewise refuses", "a.xml", "",
         "remove the <!DOCTYPE ...> and <!ENTITY ...> declarations"),
    Case("rows-image-dotdot", _rows([{"global_key": "x", "row_data": "../outside.jpg"}]),
         "image path '../outside.jpg' leaves the images folder", "rows.json record 0", "row_data", "without '..'"),
    Case("rows-image-absolute", _rows([{"global_key": "x", "row_data": "/etc/hostname.jpg"}]),
         "image path '/etc/hostname.jpg' is outside the images folder", "rows.json record 0", "row_data",
         "write the path relative to"),
    Case("rows-image-missing", _rows([{"global_key": "x", "row_data": "x.jpg"}]),
         "image file 'x.jpg' is not in", "rows.json record 0", "row_data", "or pass --media-later"),
    Case("ndjson-mask-dotdot", _mask_line("../secret.png"),
         "mask path '../secret.png' leaves the masks folder", "p.ndjson:1", "mask.instanceURI",
         "mask paths are relative to the NDJSON file"),
    Case("ndjson-mask-absolute-outside", lambda tmp: _mask_line(str(tmp / "secret.png"))(tmp),
         "is outside the masks folder", "p.ndjson:1", "mask.instanceURI", "write the path relative to"),
]


@pytest.fixture
def base(ws):
    """A workspace with an image row, a text row and two features: the state every case must keep."""
    ws.add_data_rows("pets", [{"global_key": "a.jpg", "row_data": "a.jpg", "width": 100, "height": 80,
                               "metadata": {"coco_image_id": 1}},
                              {"global_key": "t1", "row_data": "hello world", "media_type": "text"}])
    ws.create_feature("cat", "bbox", external_id="1")
    ws.create_feature("person", "ner")
    ws.create_feature("q", "radio", ["yes", "no"])
    ws.create_feature("stain", "mask")
    return ws


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_with_a_clear_message_and_changes_nothing(case, base, tmp_path, table_snapshot):
    before = table_snapshot(base)
    call = case.call(tmp_path)
    with pytest.raises(ValidationError) as info:
        call.library(base)
    assert table_snapshot(base) == before
    problems = info.value.problems
    hit = [p for p in problems if case.reason in p.reason]
    assert hit, f"no problem says {case.reason!r}: {problems}"
    p = hit[0]
    assert case.where in p.location, p
    assert p.field == case.field, p
    assert case.fix in p.fix, p
    assert case.reason in str(info.value) and case.where in str(info.value)
    # the CLI: the same import refused, the library's message printed character for character, nothing changed
    base.close()
    code, out = _cli(call.argv(base.path))
    assert code == 2, out
    assert str(info.value) in out, f"the CLI lost part of the message:\n{out}"
    with slicewise.open(base.path, read_only=True) as again:
        assert table_snapshot(again) == before


def _cli(argv: list[str]) -> tuple[int, str]:
    """Run ``slicewise <argv>`` in this process as the console script does; (exit code, stdout + stderr)."""
    import contextlib
    import io
    import sys

    from slicewise.cli.common import run_app

    out, err = io.StringIO(), io.StringIO()
    saved = sys.argv
    sys.argv = ["slicewise", *argv]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as ex:
            run_app(app)
    finally:
        sys.argv = saved
    return int(ex.value.code or 0), out.getvalue() + err.getvalue()


def test_self_intersecting_polygon_is_kept_with_a_warning(base, tmp_path):
    bowtie = [{"x": 0, "y": 0}, {"x": 10, "y": 10}, {"x": 10, "y": 0}, {"x": 0, "y": 10}]
    base.create_feature("blob", "polygon")
    res = import_ndjson(base, _write(tmp_path, "p.ndjson", _nd(_lb(name="blob", polygon=bowtie))))
    assert res.annotations == 1
    [w] = res.warnings
    assert "Self-intersection" in w.reason and "make_valid" in w.reason
    assert (w.location, w.field) == ("p.ndjson:1", "polygon")


def test_skip_invalid_imports_the_rest_and_writes_one_reason_per_rejected_record(base, tmp_path):
    recs = [{"image_id": 1, "category_id": 1, "bbox": [1, 2, 5, 3], "score": 0.5},
            {"image_id": 1, "category_id": 1, "bbox": [1, 2, -5, 3], "score": 1.5},  # two problems, one line
            {"image_id": 999, "category_id": 1, "bbox": [1, 2, 5, 3], "score": 0.5},
            {"image_id": 1, "category_id": 1, "bbox": [3, 3, 5, 3], "score": 0.7}]
    path = _write(tmp_path, "r.json", recs)
    w = str(base.path)
    base.close()
    rejects = tmp_path / "rejects.jsonl"
    res = CliRunner().invoke(app, ["import", "coco-results", str(path), "-w", w, "-r", "m/r", "--skip-invalid",
                                   "--rejects", str(rejects)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in rejects.read_text().splitlines()]
    assert [x["location"] for x in lines] == ["r.json record 1", "r.json record 2"]
    assert all(x["reason"] and x["fix"] for x in lines)
    import slicewise

    with slicewise.open(w) as ws:
        assert sorted(p["confidence"] for p in ws.predictions("m/r")) == [0.5, 0.7]


def test_cli_refusal_exits_nonzero_and_names_the_record(base, tmp_path):
    path = _write(tmp_path, "r.json", [{"image_id": 1, "category_id": 1, "bbox": [1, 2, 5, 3], "score": 2}])
    w = str(base.path)
    base.close()
    import sys

    from slicewise.cli.common import run_app

    argv = sys.argv
    sys.argv = ["slicewise", "import", "coco-results", str(path), "-w", w, "-r", "m/r"]
    try:
        with pytest.raises(SystemExit) as ex:
            run_app(app)
    finally:
        sys.argv = argv
    assert ex.value.code == 2
