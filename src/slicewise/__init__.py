"""slicewise: a self-hosted workbench for model error analysis and data curation.

>>> import slicewise
>>> sorted(set(slicewise.__all__) - {"__version__"})[:3]
['ConflictError', 'DataRow', 'Dataset']
"""

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
from slicewise.types import DataRow, Dataset, Feature, Kind, Model, ModelRun, ObjectFrame
from slicewise.workspace import Workspace, WriteResult, open

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
    "StoreError",
    "ValidationError",
    "Workspace",
    "WriteResult",
    "__version__",
    "open",
]
