"""Write the README's screenshots to docs/screenshots/ (JPEG): the pages of the app on the indoor-85
workspace (real photos, real detector) and on the demo workspace.

    .venv/bin/python tests/browser/make_screenshots.py [--demo demo-workspace/demo.duckdb]

Needs the built web app, /usr/bin/chromium and ../shared/data (for indoor-85).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OUT = ROOT / "docs" / "screenshots"

INDOOR = [
    ("runs", "/", False),
    ("gallery", "/runs/1/gallery", False),
    ("gallery-filtered", "/runs/1/gallery?q=fp%20%3E%200%20and%20has%3Achair&sort=-fp", False),
    ("detail", "/runs/1/gallery?row=64", False),  # a row with TP, FP, FN, confusion and dropped
    ("metrics", "/runs/1/metrics", True),
    ("add-filter", "/runs/1/gallery", False),
]
DEMO = [
    ("demo-digits", "/runs/1/gallery?sort=confidence.max", False),
    ("demo-shapes-metrics", "/runs/2/metrics", True),
]


def save(page, name: str, full: bool) -> None:
    png = Path(tempfile.mkdtemp()) / "shot.png"
    page.screenshot(path=str(png), full_page=full)
    im = Image.open(png).convert("RGB")
    if full and im.height > 2600:
        im = im.crop((0, 0, im.width, 2600))
    im.save(OUT / f"{name}.jpg", quality=82, optimize=True)
    print("wrote", OUT / f"{name}.jpg")


def shoot(app, pages, pw) -> None:
    from conftest import ARGS, CHROMIUM, LiveServer, _free_port

    with LiveServer(app, _free_port()) as srv:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = b.new_page(viewport={"width": 1440, "height": 900})
        for name, url, full in pages:
            page.goto(srv.url + url)
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(1200)
            if name == "add-filter":
                page.get_by_role("button", name="+ Add filter").click()
                page.get_by_label("Filter kind").select_option("metric")
                page.wait_for_timeout(300)
            save(page, name, full)
        b.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--demo", type=Path, default=None, help="a demo workspace (slicewise demo) to shoot as well")
    ap.add_argument("--only", nargs="+", default=None, help="shoot only these pages (e.g. detail)")
    args = ap.parse_args()
    if args.only:
        INDOOR[:] = [p for p in INDOOR if p[0] in args.only]
        DEMO[:] = [p for p in DEMO if p[0] in args.only]
    sys.path[:0] = [str(HERE), str(HERE.parent)]
    from conftest import build_indoor
    from playwright.sync_api import sync_playwright

    from slicewise.server import create_app

    OUT.mkdir(parents=True, exist_ok=True)
    ws_path = build_indoor(Path(tempfile.mkdtemp()) / "indoor.duckdb", ROOT.parent / "shared" / "data")
    with sync_playwright() as pw:
        shoot(create_app(ws_path), INDOOR, pw)
        if args.demo:
            shoot(create_app(args.demo), DEMO, pw)


if __name__ == "__main__":
    main()
