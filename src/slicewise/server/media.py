"""Media files of data rows and their thumbnails.

A file is served only when it is the ``row_data`` of a registered image data row, looked up by the row's
id: the URL never carries a path, so nothing outside the registered files can be reached. Relative
``row_data`` paths are resolved against the workspace file's folder. Thumbnails are made with Pillow
and cached on disk, keyed by row id, size and the source file's size and modification time.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

from slicewise.errors import NotFoundError, Problem, ValidationError
from slicewise.types.domain import DataRow

THUMB_SIZES = (128, 256, 512)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}


def media_path(row: DataRow, base: Path) -> Path:
    """The local file of an image data row, or NotFoundError saying why there is none."""
    if row.media_type != "image":
        raise NotFoundError(f"data row {row.global_key!r} is a {row.media_type} row and has no media file",
                            where=f"data row {row.id}", fix="read its text from /api/rows/{id}")
    ref = row.row_data
    parsed = urlparse(ref)
    if parsed.scheme in ("http", "https", "s3", "gs"):
        raise NotFoundError(f"data row {row.global_key!r} points to remote media ({parsed.scheme}://...), "
                            "which this server does not proxy", where=f"data row {row.id}",
                            fix="download the files and re-import with local paths")
    if parsed.scheme == "file":
        ref = unquote(parsed.path)
    path = Path(ref)
    if not path.is_absolute():
        path = base / path
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise NotFoundError(f"the media of data row {row.global_key!r} is not an image file ({path.suffix or 'no suffix'})",
                            where=f"data row {row.id}", fix="register image files (" + ", ".join(sorted(IMAGE_SUFFIXES)) + ")")
    if not path.is_file():
        raise NotFoundError(f"the media file of data row {row.global_key!r} is missing: {path}",
                            where=f"data row {row.id}", fix="restore the file or fix the row's row_data path")
    return path


class Thumbnails:
    """JPEG thumbnails of image data rows, made once with Pillow and cached on disk under ``cache_dir``
    (owned by the app that serves one workspace)."""

    def __init__(self, base: Path, cache_dir: Path) -> None:
        self.base = base
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
        src = media_path(row, self.base)
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
