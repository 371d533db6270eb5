"""One router per area; ``ROUTERS`` is what the app mounts under ``/api``.

``UNSERIALIZED`` routers do not take the app's library lock for the whole request: media files, and the
CLI and import endpoints, whose long commands run in threads of their own (like metrics jobs).
"""

from slicewise.server.routers import cli, imports, media, metrics, query, rows, runs, slices, workspace

ROUTERS = [workspace.router, rows.router, runs.router, metrics.router, query.router, slices.router, media.router,
           cli.router, imports.router]
UNSERIALIZED = [media.router, cli.router, imports.router]
