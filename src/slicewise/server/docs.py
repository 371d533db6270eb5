"""``/docs``: Swagger UI served from the built web app's folder, so the API docs work offline.

FastAPI's own ``/docs`` and ``/redoc`` load their scripts from a CDN and stay blank without a network.
``npm run build`` (``make web``) copies Swagger UI's bundle, stylesheet and favicon from the npm package
``swagger-ui-dist`` into ``static/swagger/``; this module serves ``/docs`` from there, and answers with a
page that says how to build them when they are missing.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse, Response

#: the folder of the static build that holds Swagger UI's files, and the files /docs needs
ASSETS = "swagger"
FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")

_MISSING = """<!doctype html><meta charset=utf-8><title>slicewise API docs</title>
<body style="font-family:system-ui;margin:3rem;max-width:48rem"><h1>API docs not built</h1>
<p>The interactive API docs are served from the web app's build, which has no Swagger UI files
(<code>{missing}</code> is missing). Run <code>make web</code> and reload this page.</p>
<p>The API's schema itself is always at <a href="{openapi}">{openapi}</a>.</p>"""


def install_docs(app: FastAPI, static_dir: str | Path) -> None:
    """Add ``/docs`` (Swagger UI from ``static_dir/swagger/``) and ``/redoc`` (a redirect to it) to ``app``.

    Create ``app`` with ``docs_url=None, redoc_url=None`` and call this before any catch-all route.
    """
    folder = Path(static_dir) / ASSETS
    openapi_url = app.openapi_url or "/openapi.json"
    title = f"{app.title} API"

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        missing = [f for f in FILES if not (folder / f).is_file()]
        if missing:
            return HTMLResponse(_MISSING.format(missing=f"{ASSETS}/{missing[0]}", openapi=openapi_url),
                                status_code=503, headers={"Cache-Control": "no-cache"})
        html = get_swagger_ui_html(
            openapi_url=openapi_url, title=title, swagger_js_url=f"/{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"/{ASSETS}/swagger-ui.css", swagger_favicon_url=f"/{ASSETS}/favicon-32x32.png",
            # no online validator badge: it would send the schema to a public service
            swagger_ui_parameters={"validatorUrl": None})
        html.headers["Cache-Control"] = "no-cache"
        return html

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> Response:
        return RedirectResponse("/docs")
