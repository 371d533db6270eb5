"""Helpers for the tests of "the server as the single writer": small COCO files written by the test, a
real ``slicewise serve`` subprocess, and CLI subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from slicewise.discovery import ServerInfo, discovery_path, read_server_file

CATEGORIES = [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]


def write_coco(folder: Path, name: str, keys: list[str], *, size: int = 64, bad: bool = False) -> Path:
    """A COCO instances file: one image per key (``<key>.png``), a cat and a dog box on each; ``bad``
    gives the last box a negative width."""
    images = [{"id": i + 1, "file_name": f"{k}.png", "width": size, "height": size} for i, k in enumerate(keys)]
    anns = []
    for img in images:
        anns.append({"id": len(anns) + 1, "image_id": img["id"], "category_id": 1, "bbox": [4, 4, 20, 20],
                     "area": 400, "iscrowd": 0})
        anns.append({"id": len(anns) + 1, "image_id": img["id"], "category_id": 2, "bbox": [30, 30, 24, 24],
                     "area": 576, "iscrowd": 0})
    if bad:
        anns[-1]["bbox"] = [30, 30, -5, 24]
    path = folder / name
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": CATEGORIES}, indent=1))
    return path


def write_results(folder: Path, name: str, keys: list[str]) -> Path:
    """COCO results for the images of :func:`write_coco` (same order): a good cat box, a shifted dog
    box (IoU about 0.4) and a spurious one on every other image."""
    res = []
    for i, _ in enumerate(keys):
        res.append({"image_id": i + 1, "category_id": 1, "bbox": [5, 4, 20, 20], "score": 0.9})
        res.append({"image_id": i + 1, "category_id": 2, "bbox": [38, 38, 24, 24], "score": 0.6 + 0.01 * i})
        if i % 2:
            res.append({"image_id": i + 1, "category_id": 1, "bbox": [40, 2, 10, 10], "score": 0.3})
    path = folder / name
    path.write_text(json.dumps(res))
    return path


def write_pngs(folder: Path, keys: list[str], size: int = 64) -> None:
    from PIL import Image

    for i, k in enumerate(keys):
        Image.new("RGB", (size, size), ((40 * i) % 255, 120, 200)).save(folder / f"{k}.png")


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``slicewise ARGS`` in a subprocess (not a terminal, 80 columns unless env says otherwise)."""
    full = {**os.environ, "COLUMNS": "80", **(env or {})}
    full.pop("SLICEWISE_WORKSPACE", None)
    return subprocess.run([sys.executable, "-m", "slicewise", *args], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=timeout)


class ServerProcess:
    """``slicewise serve PATH --port 0`` in a subprocess; ``info`` is its discovery file once it listens."""

    def __init__(self, path: Path, cwd: Path | None = None) -> None:
        self.path = path
        self.proc = subprocess.Popen([sys.executable, "-m", "slicewise", "serve", str(path), "--port", "0"],
                                     cwd=cwd or path.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 60
        info = None
        while time.time() < deadline:
            info = read_server_file(path)
            if info is not None and info.pid == self.proc.pid and info.answers():
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f"slicewise serve exited: {self.proc.stdout.read() if self.proc.stdout else ''}")
            time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError("slicewise serve did not start")
        assert info is not None
        self.info: ServerInfo = info
        self.url = info.url

    def stop(self) -> str:
        """Ctrl+C, as a user would; returns what it printed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.stdout.read() if self.proc.stdout else ""

    @property
    def discovery_file(self) -> Path:
        return discovery_path(self.path)
