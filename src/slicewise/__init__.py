"""slicewise: a self-hosted workbench for model error analysis and data curation.

>>> import slicewise
>>> sorted(set(slicewise.__all__) - {"__version__"})[:3]
['ConflictError', 'DataRow', 'Dataset']
"""

import sys as _sys

if _sys.argv and (_sys.argv[0] == "-m" or _sys.argv[0].replace("\\", "/").rsplit("/", 1)[-1] in ("slicewise", "slicewise.exe")):
    # the CLI is starting (``slicewise ...`` or ``python -m slicewise``): Ctrl-C before it runs a command is one
    # line and exit 130, not a traceback of whatever was being imported (see slicewise.cli.common.run_app)
    import signal as _signal

    from slicewise.cli_start import interrupted_at_start as _at_start

    if _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
        _signal.signal(_signal.SIGINT, _at_start)

from typing import TYPE_CHECKING  # noqa: E402

from slicewise.errors import (  # noqa: E402
    ConflictError,
    LimitError,
    MetricsError,
    NotFoundError,
    Problem,
    QueryError,
    SlicewiseError,
    StoreError,
    ValidationError,
)
from slicewise.types.domain import DataRow, Dataset, Feature, Model, ModelRun
from slicewise.types.kinds import Kind

if TYPE_CHECKING:  # what the lazy exports below resolve to, for type checkers and IDEs
    from slicewise.metrics.results import StaleMetricsWarning
    from slicewise.types.frame import ObjectFrame
    from slicewise.workspace import Workspace, WriteResult, open

# Loaded on first use, so that `slicewise --help` does not import duckdb, numba or shapely.
_LAZY = {
    "open": "slicewise.workspace",
    "Workspace": "slicewise.workspace",
    "WriteResult": "slicewise.workspace",
    "ObjectFrame": "slicewise.types.frame",
    "StaleMetricsWarning": "slicewise.metrics.results",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'slicewise' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

__version__ = "0.1.0"

__all__ = [
    "ConflictError",
    "DataRow",
    "Dataset",
    "Feature",
    "Kind",
    "LimitError",
    "MetricsError",
    "Model",
    "ModelRun",
    "NotFoundError",
    "ObjectFrame",
    "Problem",
    "QueryError",
    "SlicewiseError",
    "StaleMetricsWarning",
    "StoreError",
    "ValidationError",
    "Workspace",
    "WriteResult",
    "__version__",
    "open",
]
