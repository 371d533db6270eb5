"""The FastAPI app factory and ``serve``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import FileResponse, HTMLResponse, Response

from slicewise.server import errors
from slicewise.server.deps import AppState
from slicewise.server.docs import install_docs

STATIC = Path(__file__).resolve().parent / "static"

_NO_UI = """<!doctype html><meta charset=utf-8><title>slicewise</title>
<body style="font-family:system-ui;margin:3rem"><h1>slicewise</h1>
<p>The API is up (<a href="/docs">/docs</a>), but the web app is not built.
Run <code>make web</code> (or <code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code>) and reload.</p>"""


def create_app(workspace_path: str | Path, *, static_dir: str | Path | None = None,
               cache_dir: str | Path | None = None, remote_media: bool = False) -> FastAPI:
    """The app serving one workspace: the JSON API under ``/api``, the built web app everywhere else.
    ``remote_media``: answer http(s) media with a redirect to them (the server itself never fetches)."""
    import slicewise
    import slicewise.workspace
    from slicewise.server.imports import ImportJobs
    from slicewise.server.media import MediaFiles, Thumbnails
    from slicewise.server.routers import ROUTERS
    from slicewise.state import cache_path

    ws = slicewise.workspace.open(workspace_path)
    path = Path(ws.path).resolve()
    cache = Path(cache_dir) if cache_dir else cache_path(path).parent / "thumbs"

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        ws.close()

    app = FastAPI(lifespan=lifespan, title="slicewise", version=slicewise.__version__ if hasattr(slicewise, "__version__") else "0",
                  description="Model error analysis: data rows, model runs, metrics, filters and slices.",
                  docs_url=None, redoc_url=None)
    files = MediaFiles(path.parent, ws.media_roots, remote_media=remote_media)
    app.state.sw = AppState(ws=ws, base=path.parent, thumbs=Thumbnails(files, cache), media=files)
    app.state.imports = ImportJobs(ws)  # POST /api/imports
    app.state.cli_token = None  # POST /api/cli takes commands only with this token (set by serve)
    app.add_middleware(GZipMiddleware, minimum_size=4000, compresslevel=3)
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router, prefix="/api", responses=error_responses())
    _document_naive_datetimes(app)
    static = Path(static_dir) if static_dir else STATIC
    install_docs(app, static.resolve())  # before the web app's catch-all route
    _mount_spa(app, static.resolve())

    return app


def error_responses() -> dict[int | str, dict[str, Any]]:
    """The refusals every API route may answer (see server/errors.py), so that the schema documents them."""
    from slicewise.server import models as M

    refusal = {"model": M.ErrorBody | M.HTTPErrorBody}
    return {400: {**refusal, "description": "Bad request"}, 404: {**refusal, "description": "Not found"},
            409: {**refusal, "description": "Conflicts with the workspace's state (e.g. metrics not computed)"},
            422: {"model": M.ErrorBody | M.RequestErrors | M.HTTPErrorBody,
                  "description": "Invalid input: a slicewise error (what, where, fix) or FastAPI's parameter errors"},
            503: {**refusal, "description": "The workspace is busy or unavailable"}}


def _document_naive_datetimes(app: FastAPI) -> None:
    """Date-times are stored and sent without an offset (``2024-05-01T12:00:00.123456``), which is not an
    RFC 3339 ``date-time``: the schema says so with a pattern instead of that format."""
    from fastapi.openapi.utils import get_openapi

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("format") == "date-time" and node.get("type") == "string":
                del node["format"]
                node["pattern"] = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?$"
                node.setdefault("description", "ISO 8601 date-time without an offset")
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            walk(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _mount_spa(app: FastAPI, static: Path) -> None:
    @app.get("/{path:path}", include_in_schema=False)
    def spa(path: str, request: Request) -> Response:
        if path.startswith("api/"):
            raise HTTPException(404, f"no API endpoint /{path}; see /docs")
        index = static / "index.html"
        if path:
            target = (static / path).resolve()
            # never leave the static folder, whatever the path says
            if target.is_relative_to(static) and target.is_file():
                cache = "public, max-age=31536000, immutable" if "/assets/" in f"/{path}" else "no-cache"
                return FileResponse(target, headers={"Cache-Control": cache})
        if index.is_file():
            return FileResponse(index, headers={"Cache-Control": "no-cache"})
        return HTMLResponse(_NO_UI)


def serve(workspace_path: str | Path, host: str = "127.0.0.1", port: int = 8765, *, remote_media: bool = False) -> None:
    """Serve the workspace (blocking) and print the address once it listens (``port=0``: any free port).

    While it runs, the server is the workspace's single writer: it records its URL, PID and a secret
    token in the workspace's discovery file (:mod:`slicewise.discovery`), through which the CLI runs
    its commands here (``POST /api/cli``); the file is removed when the server stops."""
    import secrets

    import uvicorn

    from slicewise import discovery

    app = create_app(workspace_path, remote_media=remote_media)
    token = secrets.token_urlsafe(32)
    app.state.cli_token = token
    path = app.state.sw.ws.path

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.should_exit:
                return
            bound = port
            with contextlib.suppress(Exception):  # noqa: BLE001 - the port asked for, when the socket does not say
                bound = int(self.servers[0].sockets[0].getsockname()[1])
            local = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else f"[{host}]" if ":" in host else host
            discovery.write_server_file(path, f"http://{local}:{bound}", token)
            shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
            print(f"slicewise is serving {workspace_path} at http://{shown}:{bound}/  (Ctrl+C to stop)", flush=True)

        async def shutdown(self, sockets: Any = None) -> None:
            discovery.remove_server_file(path, token)  # first: from now on the CLI opens the file itself
            await super().shutdown(sockets=sockets)

    try:
        Server(uvicorn.Config(app, host=host, port=port, log_level="warning")).run()
    finally:
        discovery.remove_server_file(path, token)
