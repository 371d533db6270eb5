"""One router per area; ``ROUTERS`` is what the app mounts under ``/api``."""

from slicewise.server.routers import (
           cli,
           compare,
           embeddings,
           imports,
           media,
           metrics,
           projector,
           query,
           rows,
           runs,
           slices,
           workspace,
)

ROUTERS = [workspace.router, rows.router, runs.router, metrics.router, query.router, slices.router, media.router,
           cli.router, imports.router, embeddings.router, projector.router,
           compare.router]
