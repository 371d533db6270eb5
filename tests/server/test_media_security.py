"""The media endpoint serves a row's file only when its real path lies inside one of its dataset's media
roots (recorded at import) and Pillow identifies it as an image of a served format, not a decompression
bomb; remote media are not fetched. Each refusal is a clear 4xx that names the row and says how to fix it,
and never carries the refused file's bytes."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import slicewise
from slicewise.server import create_app

SECRET = b"root:x:0:0:secret"


def _jpeg(path: Path, size=(40, 30), fmt: str = "JPEG") -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (200, 10, 10)).save(path, fmt)
    return path


def _png_header(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height pixels (a decompression bomb needs no more to be refused)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A workspace whose COCO dataset has its images in images/ (the recorded root) and a folder outside it;
    files are swapped for links and other files after the import, as an attacker with write access to the
    images folder (or a careless copy) would."""
    from slicewise.io import import_coco

    tmp = tmp_path_factory.mktemp("media")
    images, outside = tmp / "images", tmp / "outside"
    names = ["ok.jpg", "link.jpg", "hard-text.jpg", "hard-image.jpg", "text.jpg", "png-named.jpg", "bomb.png",
             "gone.jpg"]
    for n in names:
        _jpeg(images / n)
    doc = {"images": [{"id": i + 1, "file_name": n, "width": 40, "height": 30} for i, n in enumerate(names)],
           "annotations": [], "categories": [{"id": 1, "name": "cat"}]}
    (tmp / "gt.json").write_text(__import__("json").dumps(doc))
    path = tmp / "ws.duckdb"
    with slicewise.open(path) as ws:
        import_coco(ws, tmp / "gt.json", dataset="pets", images=images)
        assert ws.media_roots("pets") == [str(images)]
        ws.add_data_rows("web", [{"global_key": "remote", "row_data": "https://example.com/cat.jpg"},
                                 {"global_key": "bucket", "row_data": "s3://bucket/cat.jpg"}])
        ws.add_data_rows("sdk", [{"global_key": "dotdot", "row_data": str(images / ".." / "outside" / "x.jpg")}],
                         media_roots=[str(images)])
    # what happens to the files after the import
    _jpeg(outside / "x.jpg")
    secret_img = _jpeg(outside / "private.jpg")
    (outside / "notes.txt").write_bytes(SECRET)
    (images / "link.jpg").unlink()
    (images / "link.jpg").symlink_to(secret_img)
    (images / "hard-text.jpg").unlink()
    os.link(outside / "notes.txt", images / "hard-text.jpg")
    (images / "hard-image.jpg").unlink()
    os.link(secret_img, images / "hard-image.jpg")
    (images / "text.jpg").write_bytes(SECRET)
    _jpeg(images / "png-named.jpg", fmt="PNG")
    _png_header(images / "bomb.png", 30_000, 30_000)
    (images / "gone.jpg").unlink()
    return path


@pytest.fixture(scope="module")
def client(served):
    with TestClient(create_app(served)) as c:
        yield c


def _id(client, key: str) -> int:
    return client.app.state.sw.ws.data_row(key).id


def _refused(client, key: str, status: int, *words: str) -> dict:
    for url in (f"/api/media/{_id(client, key)}", f"/api/thumbs/{_id(client, key)}?size=128"):
        res = client.get(url, follow_redirects=False)
        assert res.status_code == status, (url, res.status_code, res.text)
        assert SECRET not in res.content
        assert res.headers["content-type"] == "application/json"
        body = res.json()
        assert f"data row {_id(client, key)}" in body["where"], body
        assert body["fix"], body
        for w in words:
            assert w in body["message"], body
    return body


def test_an_image_inside_its_root_is_served_with_its_type(client):
    res = client.get(f"/api/media/{_id(client, 'ok.jpg')}")
    assert res.status_code == 200 and res.headers["content-type"] == "image/jpeg"
    assert client.get(f"/api/thumbs/{_id(client, 'ok.jpg')}?size=128").status_code == 200


def test_the_content_type_is_the_identified_format_not_the_suffix(client):
    res = client.get(f"/api/media/{_id(client, 'png-named.jpg')}")
    assert res.status_code == 200 and res.headers["content-type"] == "image/png"
    assert res.content.startswith(b"\x89PNG") and res.headers["x-content-type-options"] == "nosniff"


def test_a_symlink_pointing_outside_the_root_is_refused(client):
    body = _refused(client, "link.jpg", 404, "lies outside the media folders of dataset 'pets'")
    assert "--images" in body["fix"]


def test_a_path_with_dotdot_that_leaves_the_root_is_refused(client):
    _refused(client, "dotdot", 404, "lies outside the media folders")


def test_a_hard_linked_non_image_is_not_served(client):
    # a hard link is the same file as its original: realpath cannot tell it came from outside the root,
    # so the image check is what keeps a hard-linked text file from being served
    _refused(client, "hard-text.jpg", 404, "not an image Pillow can read")


def test_a_hard_linked_image_is_served_as_documented(client, served):
    # documented in slicewise.server.media: a hard link needs write access to the root's folder, and what
    # comes back is an image, never another kind of file
    row = _id(client, "hard-image.jpg")
    assert os.stat(served.parent / "images" / "hard-image.jpg").st_nlink == 2
    res = client.get(f"/api/media/{row}")
    assert res.status_code == 200 and res.headers["content-type"] == "image/jpeg"


def test_a_text_file_with_an_image_suffix_is_refused(client):
    _refused(client, "text.jpg", 404, "not an image Pillow can read")


def test_an_image_over_the_pixel_limit_is_refused(client, monkeypatch):
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 40 x 30 = 1,200: over it, under twice it
    client.app.state.sw.thumbs._made.clear()
    _refused(client, "ok.jpg", 422, "too large to show", "40 x 30 pixels", "the limit is 1,000 pixels")


def test_a_decompression_bomb_is_refused_before_decoding(client):
    body = _refused(client, "bomb.png", 422, "too large to show", "900,000,000 pixels")
    assert "scale the image down" in body["fix"]


def test_a_missing_file_says_so(client):
    _refused(client, "gone.jpg", 404, "is missing")


def test_remote_media_is_not_available_offline(client):
    body = _refused(client, "remote", 404, "not available offline", "https://")
    assert "--remote-media" in body["fix"]
    _refused(client, "bucket", 404, "not available offline", "s3://")


def test_remote_media_redirects_when_the_user_enables_it(served):
    with TestClient(create_app(served, remote_media=True)) as c:
        for url in (f"/api/media/{_id(c, 'remote')}", f"/api/thumbs/{_id(c, 'remote')}?size=128"):
            res = c.get(url, follow_redirects=False)
            assert res.status_code == 307 and res.headers["location"] == "https://example.com/cat.jpg"
        res = c.get(f"/api/media/{_id(c, 'bucket')}", follow_redirects=False)
        assert res.status_code == 404 and "credentials" in res.json()["fix"]


def test_media_roots_of_a_workspace_made_before_them(tmp_path):
    """Core migration 4 gives each dataset of an older workspace the deepest folder holding its local image
    paths; a dataset whose paths share only "/" gets none, and its media are refused with the fix."""
    from slicewise.store import Store
    from slicewise.store.schema import MIGRATIONS

    images = tmp_path / "imgs"
    _jpeg(images / "a.jpg")
    _jpeg(images / "sub" / "b.jpg")
    path = tmp_path / "old.duckdb"
    old = Store(path, areas={"core": MIGRATIONS[:3]})
    with old.transaction() as con:
        for i, name in enumerate(["pets", "rel", "scattered"]):
            con.execute("INSERT INTO datasets VALUES (?, ?, NULL, now())", [i + 1, name])
        rows = [(1, str(images / "a.jpg")), (1, str(images / "sub" / "b.jpg")), (1, "https://x.org/c.jpg"),
                (2, "imgs/a.jpg"), (2, "imgs/sub/b.jpg"), (3, str(images / "a.jpg")), (3, "/etc/passwd")]
        for rid, (ds, ref) in enumerate(rows):
            con.execute("INSERT INTO data_rows VALUES (?, ?, ?, 'image', ?, 40, 30, 'none', 0, now())",
                        [rid + 1, f"k{rid}", ds, ref])
    old.close()
    with slicewise.open(path) as ws:
        assert ws.media_roots("pets") == [str(images)]
        assert ws.media_roots("rel") == ["imgs"]
        assert ws.media_roots("scattered") == []
    with TestClient(create_app(path)) as c:
        assert c.get("/api/media/1").status_code == 200
        assert c.get("/api/media/5").headers["content-type"] == "image/jpeg"  # relative to the workspace's folder
        res = c.get("/api/media/6")
        assert res.status_code == 404 and "no media folder is recorded for dataset 'scattered'" in res.json()["message"]
        assert "slicewise media-roots scattered FOLDER" in res.json()["fix"]


def test_recording_a_media_root_from_the_cli(tmp_path):
    from typer.testing import CliRunner

    from slicewise.cli import app

    path = tmp_path / "ws.duckdb"
    with slicewise.open(path) as ws:
        ws.add_data_rows("pets", [{"global_key": "a", "row_data": "https://x.org/a.jpg"}])
    r = CliRunner().invoke(app, ["media-roots", "pets", str(tmp_path / "pics"), "-w", str(path)])
    assert r.exit_code == 0 and str(tmp_path / "pics") in r.output
    r = CliRunner().invoke(app, ["media-roots", "pets", "-w", str(path)])
    assert r.exit_code == 0 and r.output.split() == [str(tmp_path / "pics")]
    with slicewise.open(path) as ws:
        assert ws.add_media_roots("pets", [tmp_path / "pics" / "sub"]) == [str(tmp_path / "pics")]  # inside: kept once
        with pytest.raises(slicewise.ValidationError, match="root cannot be a media root"):
            ws.add_media_roots("pets", ["/"])
