"""Where the image files an input file names may be: inside its images folder, and nowhere else.

Input files are untrusted: a COCO ``file_name``, a VOC ``<filename>``, a data row's ``row_data`` or an
NDJSON mask's ``instanceURI`` may say ``../../../etc/passwd``, an absolute path, or name a symlink that
points out of the folder. :class:`MediaFolder` places each name inside the images folder the user gave
(``--images DIR``; for NDJSON masks, the NDJSON file's folder), by one rule:

- ``http://``, ``https://``, ``s3://`` and ``gs://`` URLs are kept as they are: slicewise never
  downloads them (the server shows them as "not available offline", see :mod:`slicewise.server.media`);
  ``file://`` URLs are read as paths;
- a name with a ``..`` part is refused, even when it would land inside the folder;
- a relative name is joined to the folder; an absolute one is accepted only when it lies inside it;
- the real path (every symlink followed) must lie inside the folder's real path;
- the file must exist, unless ``check=False`` (``--media-later`` in the CLI, ``check_media=False`` in
  the SDK: the images are remote or not copied yet). The folder rules above still hold where they can
  be checked without the file (a link that exists is still followed).

Each refusal is a :class:`~slicewise.errors.Problem` naming the file and record, the field and the fix.
The folder is the dataset's media root: the importer records it (:meth:`Workspace.add_media_roots`)
and the server serves a row's file only when its real path lies inside one of its dataset's roots.
Without an images folder, names are kept as written (relative ones are relative to the workspace's
folder, which becomes the dataset's root) and nothing is checked at import.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from urllib.parse import unquote, urlparse

from slicewise.errors import Problem

REMOTE_SCHEMES = ("http", "https", "s3", "gs")
#: the root recorded for names kept as written: relative paths are relative to the workspace's folder
WORKSPACE_ROOT = "."


def is_remote(ref: str) -> bool:
    """True for the URLs slicewise never downloads (http, https, s3, gs)."""
    scheme, colon, _ = ref.partition(":")  # urlparse's scheme when it is one of these (it parses a whole URL)
    return bool(colon) and scheme.lower() in REMOTE_SCHEMES


def local_path(ref: str) -> str:
    """A ``file://`` URL as a path; anything else unchanged."""
    if ref.startswith("file://"):
        return unquote(urlparse(ref).path)
    return ref


@dataclass
class MediaFolder:
    """The images folder of one import (``None``: names are kept as written, see the module docstring)."""

    folder: Path | None
    check: bool = True
    what: str = "image"  # the word used in messages ("image", "mask")
    option: str = "--images"  # how the user names the folder, for the fixes
    later: bool = True  # whether the importer takes --media-later (check_media=False)

    def __post_init__(self) -> None:
        self.tried = 0  # local names placed
        self.missing: list[str] = []  # of those, names whose file is not there
        if self.folder is not None:
            self.folder = Path(os.path.abspath(self.folder))
            self._real = os.path.realpath(self.folder)

    def folder_problem(self, where: str) -> Problem | None:
        """The problem with the folder itself (missing, a file), or None."""
        if self.folder is None or not self.check or self.folder.is_dir():
            return None
        if self.folder.exists():
            return Problem(f"the {self.what}s folder {self.folder} is a file", where, "images",
                           f"pass the folder holding the {self.what}s with {self.option}")
        return Problem(f"the {self.what}s folder {self.folder} does not exist", where, "images",
                       f"check the {self.option} path" + (
                           f", or pass --media-later (check_media=False) when the {self.what}s come later"
                           if self.later else ""))

    @property
    def root(self) -> str:
        """The media root this import records for its dataset."""
        return str(self.folder) if self.folder is not None else WORKSPACE_ROOT

    def place(self, name: str, location: str, field: str) -> tuple[str | None, Problem | None]:
        """(the row data to store, None) for a name the rule accepts, (None, the problem) otherwise."""
        ref = str(name)
        if is_remote(ref):
            return ref, None
        ref = local_path(ref)
        if "\x00" in ref:
            return None, Problem(f"{self.what} path {name!r} holds a NUL character", location, field,
                                 "write a file path")
        if self.folder is None:
            return ref, None
        folder = self.folder
        self.tried += 1
        parts = PurePosixPath(ref.replace("\\", "/")).parts
        if ".." in parts:
            return None, Problem(f"{self.what} path {name!r} leaves the {self.what}s folder (it has a '..' part)",
                                 location, field, f"write the path relative to the {self.what}s folder {folder}, "
                                                  "without '..'")
        if PureWindowsPath(ref).drive:
            return None, Problem(f"{self.what} path {name!r} is a Windows path", location, field,
                                 f"write the path relative to the {self.what}s folder {folder}")
        path = Path(ref) if os.path.isabs(ref) else folder / ref
        path = Path(os.path.normpath(path))
        real = os.path.realpath(path)
        # realpath follows every link that exists on the way, also for a file that does not (yet)
        if not (real == self._real or real.startswith(self._real.rstrip(os.sep) + os.sep)):
            if _lexically_inside(path, folder):
                reason = f"{self.what} file {name!r} is a link that points outside the {self.what}s folder {folder}"
                fix = f"copy the file into {folder} instead of linking it, or pass the folder it points to"
            else:
                reason = f"{self.what} path {name!r} is outside the {self.what}s folder {folder}"
                fix = f"write the path relative to {folder}" + (
                    f", or pass the folder that holds it with {self.option}" if self.option else "")
            return None, Problem(reason, location, field, fix)
        if self.check and not path.is_file():
            self.missing.append(name)
            reason = (f"{self.what} file {name!r} is not in {folder}" if not path.exists()
                      else f"{self.what} path {name!r} is a folder, not a file")
            return None, Problem(reason, location, field, f"copy the file into {folder}, fix the name" + (
                f", or pass --media-later (check_media=False) when the {self.what}s come later" if self.later else ""))
        return str(path), None

    def none_found(self, where: str) -> Problem | None:
        """One problem instead of one per record when not one of several files is in the folder (the wrong
        --images folder, or images not copied yet); None otherwise."""
        n = len(self.missing)
        if n < 2 or n != self.tried:
            return None
        shown = ", ".join(map(repr, self.missing[:3])) + (", ..." if n > 3 else "")
        return Problem(f"none of the {n:,} {self.what} files the file names ({shown}) is in {self.folder}", where,
                       "images", f"pass the folder that holds them with {self.option}" + (
                           f", or --media-later (check_media=False) when the {self.what}s come later"
                           if self.later else ""))


def _lexically_inside(path: Path, folder: Path) -> bool:
    p, f = os.path.normpath(path), os.path.normpath(folder)
    return p == f or p.startswith(f.rstrip(os.sep) + os.sep)
