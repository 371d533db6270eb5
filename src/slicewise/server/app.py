"""The FastAPI app factory and ``serve``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
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
               cache_dir: str | Path | None = None) -> FastAPI:
    """The app serving one workspace: the JSON API under ``/api``, the built web app everywhere else."""
    import slicewise
    import slicewise.workspace
    from slicewise.server.deps import serialized
    from slicewise.server.routers import ROUTERS
    from slicewise.server.routers.media import router as media_router

    ws = slicewise.workspace.open(workspace_path)
    path = Path(ws.path).resolve()
    cache = Path(cache_dir) if cache_dir else path.parent / f".{path.name}.cache" / "thumbs"

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        ws.close()

    app = FastAPI(lifespan=lifespan, title="slicewise", version=slicewise.__version__ if hasattr(slicewise, "__version__") else "0",
                  description="Model error analysis: data rows, model runs, metrics, filters and slices.",
                  docs_url=None, redoc_url=None)
    app.state.sw = AppState(ws=ws, base=path.parent, cache_dir=cache)
    app.add_middleware(GZipMiddleware, minimum_size=4000, compresslevel=3)
    errors.install(app)
    for router in ROUTERS:
        deps = [] if router is media_router else [Depends(serialized)]
        app.include_router(router, prefix="/api", dependencies=deps)
    static = Path(static_dir) if static_dir else STATIC
    install_docs(app, static.resolve())  # before the web app's catch-all route
    _mount_spa(app, static.resolve())

    return app


def fast_json(content: Any) -> Response:
    """A JSON response serialised by orjson, skipping FastAPI's slow generic encoder (big gallery pages)."""
    import orjson

    return Response(orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY),
                    media_type="application/json")


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


def serve(workspace_path: str | Path, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve the workspace (blocking) and print the address."""
    import uvicorn

    app = create_app(workspace_path)
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
    print(f"slicewise is serving {workspace_path} at http://{shown}:{port}/  (Ctrl+C to stop)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
