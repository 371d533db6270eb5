"""Annotation kinds and domain objects."""

from slicewise.types.domain import DataRow, Dataset, Feature, Model, ModelRun
from slicewise.types.kinds import Kind, MediaType, MetadataKind, Split

__all__ = [
    "DataRow",
    "Dataset",
    "Feature",
    "Kind",
    "MediaType",
    "MetadataKind",
    "Model",
    "ModelRun",
    "Split",
]


def __getattr__(name: str) -> object:
    if name == "ObjectFrame":  # numpy/shapely-backed; loaded on first use
        from slicewise.types.frame import ObjectFrame

        return ObjectFrame
    raise AttributeError(f"module 'slicewise.types' has no attribute {name!r}")
