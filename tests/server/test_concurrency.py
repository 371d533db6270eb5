"""Concurrent requests on a fresh workspace copy: the first views of new thresholds build the library's
per-process caches, which must not race (the app serialises its calls into the engines)."""

from __future__ import annotations


def test_concurrent_first_views_of_new_thresholds(client):
    """The browser asks for the page, the facets and the slice counts at once: all must answer."""
    from concurrent.futures import ThreadPoolExecutor

    urls = [("/api/rows", {"run": 1, "q": "fp > 0", "confidence": c}) for c in (0.2, 0.3, 0.4)] * 3 + \
           [("/api/facets", {"run": 1, "confidence": c}) for c in (0.2, 0.3, 0.4)] + \
           [("/api/runs/1/auto-slices", {"confidence": c}) for c in (0.2, 0.3, 0.4)]
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda u: client.get(u[0], params=u[1]).status_code, urls))
    assert codes == [200] * len(codes)
