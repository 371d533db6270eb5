"""Annotation kinds and domain objects."""

from slicewise.types.domain import DataRow, Dataset, Feature, Model, ModelRun
from slicewise.types.frame import ObjectFrame
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
    "ObjectFrame",
    "Split",
]
