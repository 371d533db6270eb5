"""The ``slicewise`` command line: thin commands over the library, one module per area.

Heavy imports (duckdb, numba, shapely) happen inside the commands, so ``slicewise --help`` is quick.
Each area module exposes ``register(app)``; add new areas to ``_AREAS``.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="slicewise",
    help="Model error analysis and data curation: import data, labels and predictions; compute metrics; "
    "filter, slice and browse.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

@app.callback()
def _options(debug: bool = typer.Option(False, "--debug", help="Show the traceback of an error (for reports).")) -> None:
    from slicewise.cli import common

    common.DEBUG = debug


_AREAS = ["data", "imports", "metrics", "query", "slices", "discover", "embeddings", "project", "serve", "demo",
          "curation", "select", "mistakes", "compare"]


def _register() -> None:
    for area in _AREAS:
        try:
            mod = importlib.import_module(f"slicewise.cli.{area}")
        except ModuleNotFoundError as exc:
            if exc.name == f"slicewise.cli.{area}":
                continue  # that area is not built yet
            raise
        mod.register(app)


_register()


def main() -> None:
    """Entry point: runs the app and prints slicewise's own errors without a traceback."""
    from slicewise.cli.common import run_app

    run_app(app)
