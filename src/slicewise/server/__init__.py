"""The HTTP API and the web app: a thin FastAPI layer over the library.

Public entry points::

    create_app(workspace_path, *, static_dir=None, cache_dir=None) -> fastapi.FastAPI
    serve(workspace_path, host="127.0.0.1", port=8765) -> None   # blocking; prints the address, writes the
                                                                 # discovery file (slicewise.discovery)

Routers (all under ``/api``, OpenAPI at ``/docs``), one per area:

- ``workspace``: ``GET /api/workspace`` (counts, datasets, features, metadata fields, tags), ``GET /api/datasets``
- ``rows``: ``GET /api/rows`` (a page: filter text ``q``, ``sort``, ``order``, ``run``, thresholds, ``slice``,
  ``dataset``, ``limit`` <= 500, ``offset``), ``GET /api/rows/{id}`` (detail with objects), ``POST /api/tags``
  and ``POST /api/tags/remove``
- ``runs``: ``GET /api/runs``, ``GET /api/runs/{id}``, job status / compute / retry, grids
- ``metrics``: feature table, confusion matrix (+ a cell's rows), PR curves, histograms
- ``query``: parse a filter text to its AST and back (422 with the parser's message)
- ``slices``: CRUD, auto slices, slice counts
- ``media``: ``GET /api/media/{id}`` (only files registered as data rows) and ``GET /api/thumbs/{id}``
  (Pillow, cached on disk)
- ``imports``: ``POST /api/imports`` (upload a file, a zip for folder formats, import it in the
  background) and ``GET /api/imports/{id}`` (progress, result with rejected records, or error)
- ``cli``: ``POST /api/cli``, through which the CLI runs its commands while this server holds the
  workspace (needs the token of the discovery file written by ``serve``; see :mod:`slicewise.cli.remote`)

Everything else falls back to the single-page app's ``index.html`` (built from ``web/``).
"""

from __future__ import annotations

from slicewise.server.app import create_app, serve

__all__ = ["create_app", "serve"]
