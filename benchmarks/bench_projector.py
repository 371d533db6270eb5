"""The Projector's speed: PCA of 1,000,000 x 512 vectors, UMAP of 100,000 x 512, and the Projector tab drawing a
1,000,000-point projection in headless Chromium (first frame, then frames per second while panning).

    .venv/bin/python benchmarks/bench_projector.py [--rows 1000000] [--dim 512] [--repeat 3]
        [--umap-rows 100000] [--no-umap] [--no-browser] [--workspace PATH]

Targets (issue 9): PCA of 1M x 512 <= 10 s; UMAP of 100k x 512 <= 90 s on 2 cores; the first frame of 1M points
<= 2 s and panning at >= 30 fps. The reference for PCA is scikit-learn's PCA (randomized solver) on the same
array; UMAP is umap-learn itself (slicewise adds only the sampling above 200k rows). The browser part builds
(once, kept at --workspace) a workspace of --rows data rows with 16-dimensional clustered vectors and opens
/catalog/projector; "first frame" is the time from the projection's bytes (and colours) arriving to the first drawn
frame (data-first-frame-ms, measured in the page), and the fps count the frames the page draws while Playwright
drags the mouse across it for 2 s (pointer moves as fast as Playwright sends them; their rate is printed). At 1M
points the 2D view is the page's density raster (the path the page really uses: 300k points or more; data-renderer
says which): a frame there is an animation frame that showed something new, the last raster moved to the dragged
view (a CSS transform) and/or a complete new raster, which a worker bins for the newest view meanwhile (how many
frames moved the view, how many showed a complete raster, and the time of one raster are printed too); the same drag
is also measured with synthetic pointer events sent by the page itself once per animation frame (no Playwright round
trip), and on regl-scatterplot (`render=webgl`) for comparison, in the same run. Headless Chromium renders WebGL
with SwiftShader (on the CPU), so the WebGL fps is a floor: a real GPU is faster. The 3D part opens the same points in 3D (PCA) and orbits
them: turned frames per second while dragging (each frame a new camera angle; rasters where WebGL frames are slow), the lay-out time of one turn,
a Turn-slider step to its frame, the main thread's share in long tasks while orbiting, and pointer up to the
settled view (the spatial index of the new positions, built in a worker, and the final frame).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "browser"), str(ROOT / "tests")]  # its conftest imports indoor_workspace


def clustered(n: int, dim: int, seed: int = 0, k: int = 20) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim)).astype(np.float32) * 4
    labels = rng.integers(0, k, n)
    out = np.empty((n, dim), dtype=np.float32)
    step = 100_000
    for i in range(0, n, step):
        out[i:i + step] = centres[labels[i:i + step]] + rng.normal(size=(min(step, n - i), dim)).astype(np.float32)
    return out, labels


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def bench_pca(rows: int, dim: int, repeat: int) -> None:
    from sklearn.decomposition import PCA

    from slicewise.embeddings.projection import pca

    x, _ = clustered(rows, dim)
    ours, ref = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        a = pca(x, 2)
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        b = PCA(2, svd_solver="randomized", random_state=0).fit_transform(x)
        ref.append(time.perf_counter() - t)
    agree = min(abs(np.corrcoef(a[:, j], b[:, j])[0, 1]) for j in range(2))
    print(f"PCA {rows:,} x {dim} -> 2D: slicewise median {statistics.median(ours):.2f} s "
          f"({', '.join(f'{s:.2f}' for s in ours)}), scikit-learn PCA(randomized) median {statistics.median(ref):.2f} s "
          f"({statistics.median(ours) / statistics.median(ref):.2f}x); |corr| of the components >= {agree:.4f}; "
          f"target 10 s; load {load()}")


def bench_umap(rows: int, dim: int) -> None:
    from slicewise.embeddings.projection import umap

    x, _ = clustered(rows, dim, seed=1)
    umap(x[:500], 2)  # numba compiles once per machine (cached): not part of the figure
    t = time.perf_counter()
    umap(x, 2)
    took = time.perf_counter() - t
    print(f"UMAP {rows:,} x {dim} -> 2D: {took:.1f} s (one run); target 90 s on 2 cores; load {load()}")


def build(path: Path, rows: int) -> None:
    import slicewise
    from slicewise import embeddings

    x, labels = clustered(rows, 16, seed=2)
    with slicewise.open(path) as ws:
        step = 200_000
        for i in range(0, rows, step):
            ws.add_data_rows("bench", [{"global_key": f"p{j}", "row_data": "none.jpg",
                                        "metadata": {"cluster": int(labels[j])}} for j in range(i, min(rows, i + step))])
        embeddings.add_vectors(ws, "bench", [f"p{j}" for j in range(rows)], x)


def bench_browser(path: Path, rows: int, repeat: int) -> None:
    from conftest import ARGS, CHROMIUM, LiveServer, _free_port
    from playwright.sync_api import sync_playwright

    from slicewise.embeddings import projection
    from slicewise.server import create_app

    if not path.exists():
        t = time.perf_counter()
        build(path, rows)
        print(f"(built {path} with {rows:,} rows in {time.perf_counter() - t:.0f} s)")
    with LiveServer(create_app(path), _free_port()) as srv:
        t = time.perf_counter()
        projection.project(srv.ws, "bench", "pca", 2)
        print(f"(PCA of the workspace's {rows:,} x 16 vectors, cached: {time.perf_counter() - t:.1f} s)")
        projection.project(srv.ws, "bench", "pca", 3)
        pan, webgl, orbit = [], [], []
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            for _ in range(repeat):
                pan.append(bench_pan(b, srv.url, ""))
                webgl.append(bench_pan(b, srv.url, "&render=webgl"))
                orbit.append(bench_orbit(b, srv.url))
            b.close()
    for name, runs in (("the page's own path", pan), ("regl-scatterplot (render=webgl)", webgl)):
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "renderer"}
        each = ", ".join(f"{r['fps']:.1f}" for r in runs)
        firsts = ", ".join(f"{r['first'] / 1000:.2f}" for r in runs)
        extra = (f", {med['moved']:.1f}/s moved the view, {med['rasters']:.1f}/s showed a complete new raster; one raster "
                 f"(worker) median {med['raster_ms']:.0f} ms; in-page drag (synthetic pointer events, one per animation "
                 f"frame, {med['page_moves']:.0f}/s) median {med['page_fps']:.1f} fps, {med['page_moved']:.1f}/s moved the view"
                 if runs[0]["renderer"] == "raster" else "")
        print(f"Projector tab 2D, {rows:,} points, headless Chromium, {name} [{runs[0]['renderer']}]: first frame median "
              f"{med['first'] / 1000:.2f} s ({firsts}; target 2 s); panning (Playwright drag, {med['moves']:.0f} pointer "
              f"moves/s) median {med['fps']:.1f} fps ({each}; target 30){extra}; page open to first frame median "
              f"{med['open']:.1f} s; load {load()}")
    med = {k: statistics.median(o[k] for o in orbit) for k in orbit[0]}
    each = ", ".join(f"{o['fps']:.2f}" for o in orbit)
    print(f"3D orbit, {rows:,} points: first frame median {med['first'] / 1000:.2f} s; orbiting median {med['fps']:.2f} "
          f"turned frames/s ({each}); lay-out of a turn (3D rotation; on WebGL "
          f"also the depth order and the points regl-scatterplot draws) median {med['layout']:.0f} ms; Turn slider input to the turned "
          f"frame median {med['latency']:.0f} ms; main thread in long tasks while orbiting {med['busy']:.0%} "
          f"(longest {med['longest']:.0f} ms); pointer up to a settled view (spatial index rebuilt in a worker, "
          f"final frame) median {med['settle']:.2f} s; load {load()}")


IN_PAGE_DRAG = """async () => {
  const c = document.querySelector('[data-testid=raster]'), st = document.querySelector('[data-testid=projector]');
  const r = c.getBoundingClientRect(), x0 = r.left + r.width / 2, y0 = r.top + r.height / 2;
  const ev = (type, i) => c.dispatchEvent(new PointerEvent(type, { clientX: x0 + 200 * Math.sin(i / 10),
    clientY: y0 + 120 * Math.cos(i / 10), button: 0, bubbles: true, pointerId: 1 }));
  ev('pointerdown', 0);
  const f0 = Number(st.dataset.frames), m0 = Number(st.dataset.moved), t0 = performance.now();
  let i = 0;
  while (performance.now() - t0 < 2000) { ev('pointermove', ++i); await new Promise((ok) => requestAnimationFrame(ok)); }
  const t = performance.now() - t0;
  ev('pointerup', i);
  return [(Number(st.dataset.frames) - f0) / t * 1000, (Number(st.dataset.moved) - m0) / t * 1000, i / t * 1000];
}"""


def bench_pan(b, url: str, extra: str) -> dict:
    """The 2D view: first frame, then frames per second while Playwright drags (and, on the raster, complete rasters
    per second, the time of one, and the same drag sent by the page itself)."""
    pg = b.new_page(viewport={"width": 1440, "height": 900})
    t = time.perf_counter()
    pg.goto(f"{url}/catalog/projector?space=bench&by=metadata.cluster{extra}")
    pg.wait_for_function("document.querySelector('[data-testid=projector]')?.dataset.firstFrameMs > 0", timeout=180_000)
    st = pg.get_by_test_id("projector")
    out: dict = {"open": time.perf_counter() - t, "first": float(st.get_attribute("data-first-frame-ms")),
                 "renderer": st.get_attribute("data-renderer")}
    r0, m0, t0 = int(st.get_attribute("data-rasters") or 0), int(st.get_attribute("data-moved") or 0), time.perf_counter()
    out["fps"], out["moves"] = drag_rate(pg, "frames", with_moves=True, pause_ms=0)
    took = time.perf_counter() - t0
    out["rasters"] = (int(st.get_attribute("data-rasters") or 0) - r0) / took
    out["moved"] = (int(st.get_attribute("data-moved") or 0) - m0) / took
    if out["renderer"] == "raster":
        ms = []
        for _ in range(5):  # the time of one raster, at rest
            n = int(st.get_attribute("data-rasters"))
            pg.get_by_role("button", name="Reset view").click()
            pg.wait_for_function("n => Number(document.querySelector('[data-testid=projector]').dataset.rasters) > n", arg=n)
            ms.append(float(st.get_attribute("data-raster-ms")))
            pg.mouse.move(700, 500)
            pg.mouse.down()
            pg.mouse.move(760, 520)
            pg.mouse.up()
        out["raster_ms"] = statistics.median(ms)
        out["page_fps"], out["page_moved"], out["page_moves"] = pg.evaluate(IN_PAGE_DRAG)
    pg.close()
    return out


LONG_TASKS = """window.__long = []; new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__long.push([e.startTime,
e.duration]); }).observe({ entryTypes: ["longtask"] });"""
SETTLED = "document.querySelector('[data-testid=projector]')?.dataset.settled === '1'"


def drag_rate(pg, counter: str, seconds: float = 2.0, with_moves: bool = False, pause_ms: int = 8):
    """Frames per second while Playwright drags the mouse round the middle of the plot: the plot's `data-<counter>`
    (frames drawn, or turned frames) over the time (`with_moves`: and the pointer moves per second sent)."""
    st = pg.get_by_test_id("projector")
    box = st.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    pg.mouse.move(cx, cy)
    pg.mouse.down()
    f0 = int(st.get_attribute(f"data-{counter}") or 0)
    t0 = time.perf_counter()
    i = 0
    while time.perf_counter() - t0 < seconds:
        i += 1
        pg.mouse.move(cx + 200 * np.sin(i / 10), cy + 120 * np.cos(i / 10))
        if pause_ms:
            pg.wait_for_timeout(pause_ms)
    took = time.perf_counter() - t0
    f1 = int(st.get_attribute(f"data-{counter}") or 0)
    pg.mouse.up()
    return ((f1 - f0) / took, i / took) if with_moves else (f1 - f0) / took


def bench_orbit(b, url: str) -> dict[str, float]:
    """The 3D view: first frame, a Turn slider step to its frame (5 steps), frames per second while orbit-dragging,
    the share of that time the main thread spent in long tasks, and pointer up to a settled view."""
    pg = b.new_page(viewport={"width": 1440, "height": 900})
    pg.add_init_script(LONG_TASKS)
    pg.goto(f"{url}/catalog/projector?space=bench&by=metadata.cluster&dims=3")
    pg.wait_for_function(SETTLED, timeout=120_000)
    st = pg.get_by_test_id("projector")
    out = {"first": float(st.get_attribute("data-first-frame-ms"))}
    lat = []
    for k in range(5):
        lat.append(pg.evaluate("""async (v) => {
            const st = document.querySelector('[data-testid=projector]'), f0 = Number(st.dataset.turns || 0);
            const s = document.querySelector('input[aria-label=Turn]'), t = performance.now();
            s.value = String(v); s.dispatchEvent(new Event('input', { bubbles: true }));
            while (Number(st.dataset.turns || 0) === f0) await new Promise((r) => requestAnimationFrame(r));
            return performance.now() - t; }""", round(0.2 * k - 0.4, 2)))
        pg.wait_for_function(SETTLED, timeout=60_000)
    out["latency"] = statistics.median(lat)
    t0 = pg.evaluate("performance.now()")
    out["fps"] = drag_rate(pg, "turns", 3.0)
    t1 = pg.evaluate("performance.now()")
    t = time.perf_counter()
    pg.wait_for_function(SETTLED, timeout=60_000)
    out["settle"] = time.perf_counter() - t
    out["layout"] = float(st.get_attribute("data-layout-ms"))
    tasks = [d for s, d in pg.evaluate("window.__long") if t0 <= s <= t1]
    out["busy"] = sum(tasks) / (t1 - t0)
    out["longest"] = max(tasks, default=0.0)
    pg.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--umap-rows", type=int, default=100_000)
    ap.add_argument("--no-umap", action="store_true")
    ap.add_argument("--no-pca", action="store_true")
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--workspace", type=Path, default=Path(tempfile.gettempdir()) / "slicewise-bench-projector" / "ws.duckdb")
    a = ap.parse_args()
    if not a.no_pca:
        bench_pca(a.rows, a.dim, a.repeat)
    if not a.no_umap:
        bench_umap(a.umap_rows, a.dim)
    if not a.no_browser:
        a.workspace.parent.mkdir(parents=True, exist_ok=True)
        bench_browser(a.workspace, a.rows, a.repeat)


if __name__ == "__main__":
    main()
