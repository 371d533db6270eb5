"""One router per area; ``ROUTERS`` is what the app mounts under ``/api``."""

from slicewise.server.routers import (
           active,
           cli,
           compare,
           curation,
           discover,
           embeddings,
           imports,
           media,
           metrics,
           mistakes,
           projector,
           query,
           rows,
           runs,
           slices,
           workspace,
)

ROUTERS = [workspace.router, rows.router, runs.router, metrics.router, query.router, slices.router, media.router,
           cli.router, imports.router, embeddings.router, projector.router, curation.router, active.router,
           mistakes.router, discover.router, compare.router]
