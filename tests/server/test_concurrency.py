"""Concurrent requests on one workspace: the server answers in parallel (no global request lock), the
library builds each cache once, and writes made while others read are all there afterwards."""

from __future__ import annotations

import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest


def test_concurrent_first_views_of_new_thresholds(client):
    """The browser asks for the page, the facets and the slice counts at once: all must answer."""
    urls = [("/api/rows", {"run": 1, "q": "fp > 0", "confidence": c}) for c in (0.2, 0.3, 0.4)] * 3 + \
           [("/api/facets", {"run": 1, "confidence": c}) for c in (0.2, 0.3, 0.4)] + \
           [("/api/runs/1/auto-slices", {"confidence": c}) for c in (0.2, 0.3, 0.4)]
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda u: client.get(u[0], params=u[1]).status_code, urls))
    assert codes == [200] * len(codes)


@pytest.fixture(scope="module")
def live_server(indoor_path):
    """A real uvicorn server (its own threads) on a free port."""
    import uvicorn

    from slicewise.server import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(indoor_path), host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", server
    server.should_exit = True
    th.join(10)


def test_32_clients_mixing_reads_and_tag_writes(live_server):
    url, server = live_server
    ws = server.config.app.state.sw.ws
    ids = [r.id for r in ws.data_rows()]
    rng = random.Random(0)
    thresholds = [(0.3, 0.5), (0.5, 0.5), (0.5, 0.7), (0.7, 0.3)]

    def request(i: int) -> tuple[str, int, tuple[int, str] | None]:
        c, t = thresholds[i % len(thresholds)]
        kind = ["page", "facets", "features", "confusion", "detail", "tag", "pr", "slices"][i % 8]
        tag = None
        with httpx.Client(base_url=url, timeout=120) as cl:
            if kind == "page":
                res = cl.get("/api/rows", params={"run": 1, "q": rng.choice(["", "fp > 0", "iou < 0.5"]),
                                                   "sort": "-confidence.max", "confidence": c, "iou": t})
            elif kind == "facets":
                res = cl.get("/api/facets", params={"run": 1, "q": "not tag:reviewed", "confidence": c, "iou": t})
            elif kind == "features":
                res = cl.get("/api/runs/1/metrics/features", params={"confidence": c, "iou": t})
            elif kind == "confusion":
                res = cl.get("/api/runs/1/metrics/confusion", params={"confidence": c, "iou": t, "q": "fn > 0"})
            elif kind == "detail":
                res = cl.get(f"/api/rows/{ids[i % len(ids)]}", params={"run": 1, "confidence": c, "iou": t})
            elif kind == "pr":
                res = cl.get("/api/runs/1/metrics/pr", params={"iou": t})
            elif kind == "slices":
                res = cl.get("/api/runs/1/auto-slices", params={"confidence": c, "iou": t})
            else:
                tag = (ids[i % len(ids)], f"t{i}")
                res = cl.post("/api/tags", json={"ids": [tag[0]], "tags": [tag[1]]})
        return kind, res.status_code, tag

    n = 128
    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(request, range(n)))
    bad = [(k, code) for k, code, _ in results if not 200 <= code < 300]
    assert bad == []
    written = [tag for _, _, tag in results if tag is not None]
    assert len(written) == n // 8
    with httpx.Client(base_url=url) as cl:
        for row_id, tag in written:  # every write is there, and the gallery's filters see it
            page = cl.get("/api/rows", params={"q": f"tag:{tag}", "overlays": "false"}).json()
            assert [r["id"] for r in page["rows"]] == [row_id]
