"""slicewise: a self-hosted workbench for model error analysis and data curation.

>>> import slicewise
>>> sorted(set(slicewise.__all__) - {"__version__"})[:3]
['ConflictError', 'DataRow', 'Dataset']
"""

from typing import TYPE_CHECKING

from slicewise.errors import (
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
