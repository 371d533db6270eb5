"""``slicewise serve WORKSPACE``: the web app and the HTTP API of a workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(workspace: Annotated[Path, typer.Argument(help="Workspace file (DuckDB).")],
              host: Annotated[str, typer.Option(help="Address to bind (127.0.0.1 keeps it on this machine).")] = "127.0.0.1",
              port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
              remote_media: Annotated[bool, typer.Option(
                  "--remote-media", help="Show http(s) images of data rows: the browser loads them from their "
                                         "source (the server never fetches). Off: they show as not available "
                                         "offline.")] = False) -> None:
        """Serve the web app (gallery, metrics, slices) and the JSON API (docs at /docs).

        While it runs, other slicewise commands on the workspace run inside this server."""
        from slicewise.cli.common import refuse_if_served
        from slicewise.errors import StoreError

        if not workspace.exists():
            raise StoreError("no workspace here", where=str(workspace),
                             fix="check the path, or build one with an import or `slicewise demo`")
        refuse_if_served(workspace, "serve")
        from slicewise.server import serve as _serve

        _serve(workspace, host=host, port=port, remote_media=remote_media)
