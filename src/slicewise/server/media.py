"""Media files of data rows and their thumbnails.

A file is served only when it is the ``row_data`` of a registered image data row, looked up by the row's
id: the URL never carries a path. Before serving, :class:`MediaFiles` checks, for every request:

- **inside a media root**: the file's real path (every symlink followed) must lie inside the real path of
  one of its dataset's media roots, the folders recorded at import (:meth:`Workspace.media_roots`; see
  :mod:`slicewise.io.media`). Relative ``row_data`` paths and roots are resolved against the workspace
  file's folder. A symlink pointing out of the root is refused. A dataset without roots (a workspace made
  before they were recorded, whose rows share no folder but "/") is refused with the fix.
- **an image**: Pillow must identify the file as JPEG, PNG, GIF, WebP, BMP or TIFF (only those decoders
  are tried), and the response's content type is the identified format's, not the suffix's: a text file
  named ``x.jpg`` is refused.
- **not a decompression bomb**: an image of more than ``PIL.Image.MAX_IMAGE_PIXELS`` pixels (about 89
  megapixels) is refused with a 422 (LimitError) before anything decodes it.
- **hard links**: a hard link cannot be told from the original (both are the same file), so a file
  hard-linked into a media root from outside is served when it is an image. Making one needs write
  access to the root's folder on the same file system; what can come back is an image, never another
  kind of file (the identification above refuses it).

Remote ``row_data`` (http, https, s3, gs) is never fetched by the server: it is "not available
offline" (404 with the fix). With ``remote_media=True`` (``slicewise serve --remote-media``), http(s)
media answer with a redirect, so that the browser loads the image from its source; s3 and gs need
credentials and stay unavailable.

Thumbnails are made with Pillow and cached on disk, keyed by row id, size and the source file's size and
modification time.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from slicewise.errors import LimitError, NotFoundError, Problem, ValidationError
from slicewise.io.media import is_remote, local_path
from slicewise.types.domain import DataRow

THUMB_SIZES = (128, 256, 512)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
#: the formats served (Pillow's names) and their content types
FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp", "BMP": "image/bmp",
           "TIFF": "image/tiff", "MPO": "image/jpeg"}


@dataclass(frozen=True)
class Media:
    """Where a row's image comes from: a checked local file and its content type, or a URL to redirect to."""

    path: Path | None = None
    content_type: str = ""
    url: str | None = None


def identify(path: Path, where: str) -> str:
    """The content type of an image file Pillow identifies (header only), or an error saying why not."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path, formats=[f for f in FORMATS if f != "MPO"]) as im:  # MPO opens as JPEG
                fmt, (w, h) = im.format, im.size
    except Image.DecompressionBombError as exc:
        import re

        found = re.search(r"\((\d+) pixels\)", str(exc))
        w, h, fmt = (int(found.group(1)) if found else 0), 1, "bomb"
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise NotFoundError(f"the media file is not an image Pillow can read ({exc.__class__.__name__})", where=where,
                            fix="replace it with a JPEG, PNG, GIF, WebP, BMP or TIFF image") from None
    limit = Image.MAX_IMAGE_PIXELS
    if fmt == "bomb" or (limit and w * h > limit):
        size = f"{w:,} x {h:,} pixels" if fmt != "bomb" else f"{w:,} pixels" if w else "more pixels than Pillow allows"
        raise LimitError(f"the media file is too large to show ({size}; the limit is {limit:,} pixels, which guards "
                         "against decompression bombs)", where=where,
                         fix="scale the image down (e.g. to at most 8000 x 8000) and point the row at the smaller file")
    if fmt not in FORMATS:
        raise NotFoundError(f"the media file is a {fmt} image, which is not served", where=where,
                            fix="convert it to JPEG or PNG")
    return FORMATS[fmt]


class MediaFiles:
    """Finds and checks the media of image data rows (see the module docstring)."""

    def __init__(self, base: Path, roots: Callable[[str], list[str]], *, remote_media: bool = False) -> None:
        self.base = base
        self.roots = roots  # dataset name -> its media roots (Workspace.media_roots)
        self.remote_media = remote_media

    def locate(self, row: DataRow) -> Media:
        """The checked media of an image data row, or a SlicewiseError saying why there is none."""
        where = f"data row {row.id}"
        if row.media_type != "image":
            raise NotFoundError(f"data row {row.global_key!r} is a {row.media_type} row and has no media file",
                                where=where, fix="read its text from /api/rows/{id}")
        ref = row.row_data
        if is_remote(ref):
            scheme = urlparse(ref).scheme.lower()
            if self.remote_media and scheme in ("http", "https"):
                return Media(url=ref)
            fix = ("start the server with `slicewise serve --remote-media` to let the browser load http(s) images, "
                   "or download the files and re-import them with local paths")
            if scheme in ("s3", "gs"):
                fix = "download the files (s3/gs need credentials) and re-import them with local paths"
            raise NotFoundError(f"data row {row.global_key!r} is remote media ({scheme}://...): not available offline "
                                "(this server does not fetch it)", where=where, fix=fix)
        path = Path(local_path(ref))
        if not path.is_absolute():
            path = self.base / path
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise NotFoundError(f"the media of data row {row.global_key!r} is not an image file ({path.suffix or 'no suffix'})",
                                where=where, fix="register image files (" + ", ".join(sorted(IMAGE_SUFFIXES)) + ")")
        roots = self.roots(row.dataset)
        if not roots:
            raise NotFoundError(f"no media folder is recorded for dataset {row.dataset!r}, so its files are not served",
                                where=where, fix=f"record the folder of its images: `slicewise media-roots "
                                                 f"{row.dataset} FOLDER` (or ws.add_media_roots), or re-import it with --images")
        try:
            real = os.path.realpath(path)
        except (ValueError, OSError):  # a NUL in the path, a link loop
            real = ""
        if not real or not any(_inside(real, os.path.realpath(self.base / r)) for r in roots):
            raise NotFoundError(f"the media file of data row {row.global_key!r} lies outside the media folders of "
                                f"dataset {row.dataset!r} (a link out of them, or a path that leaves them)", where=where,
                                fix="keep the images inside the folder given at import (--images); to add a folder, "
                                    f"`slicewise media-roots {row.dataset} FOLDER`")
        if not os.path.isfile(real):
            raise NotFoundError(f"the media file of data row {row.global_key!r} is missing: {path}",
                                where=where, fix="restore the file or fix the row's row_data path")
        return Media(path=Path(real), content_type=identify(Path(real), where))


def _inside(real: str, root: str) -> bool:
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


class Thumbnails:
    """JPEG thumbnails of image data rows, made once with Pillow and cached on disk under ``cache_dir``
    (owned by the app that serves one workspace)."""

    def __init__(self, media: MediaFiles, cache_dir: Path) -> None:
        self.media = media
        self.cache_dir = cache_dir
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._sources: dict[Path, tuple[Path, int, int]] = {}  # thumbnail -> (source, its size, mtime) when made
        self._made: dict[tuple[int, int], Path] = {}  # (row id, size) -> thumbnail made earlier

    def get(self, row: DataRow, size: int) -> Path:
        """A JPEG no larger than ``size`` x ``size`` for an image data row, made once and cached on disk."""
        if size not in THUMB_SIZES:
            raise ValidationError(Problem(f"thumbnail size {size} is not offered", field="size",
                                          fix="use one of " + ", ".join(map(str, THUMB_SIZES))))
        found = self.media.locate(row)
        if found.path is None:  # remote media the browser loads itself
            raise NotFoundError(f"data row {row.global_key!r} is remote media: no thumbnail", where=f"data row {row.id}",
                                fix="load /api/media/{id}, which redirects to it")
        src = found.path
        st = src.stat()
        tag = hashlib.blake2b(f"{src}|{st.st_size}|{st.st_mtime_ns}".encode(), digest_size=6).hexdigest()
        out = self.cache_dir / f"{row.id % 1000:03d}" / f"{row.id}-{size}-{tag}.jpg"
        self._sources[out] = (src, st.st_size, st.st_mtime_ns)
        self._made[(row.id, size)] = out
        if out.is_file():
            return out
        with self._lock_for(str(out)):
            if out.is_file():
                return out
            from PIL import Image, ImageOps

            out.parent.mkdir(parents=True, exist_ok=True)
            try:
                with Image.open(src) as raw:
                    raw.draft("RGB", (size, size))  # fast JPEG decode at a reduced scale
                    im = ImageOps.exif_transpose(raw)
                    im.thumbnail((size, size), Image.Resampling.BILINEAR)
                    tmp = out.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
                    im.convert("RGB").save(tmp, "JPEG", quality=82)
            except OSError as exc:
                raise NotFoundError(f"the media file of data row {row.global_key!r} is not a readable image: {exc}",
                                    where=str(src), fix="replace the file with a JPEG/PNG/WebP image") from None
            os.replace(tmp, out)
        return out

    def cached(self, row_id: int, size: int) -> bytes | None:
        """The bytes of a thumbnail made earlier by this app, if its source file is unchanged."""
        out = self._made.get((row_id, size))
        known = self._sources.get(out) if out is not None else None
        if known is None or out is None:
            return None
        src, n, mtime = known
        try:
            st = src.stat()
            if st.st_size != n or st.st_mtime_ns != mtime:
                return None
            return out.read_bytes()
        except OSError:
            return None

    def _lock_for(self, key: str) -> threading.Lock:
        with self._guard:
            if len(self._locks) > 10_000:
                self._locks.clear()
            return self._locks.setdefault(key, threading.Lock())
