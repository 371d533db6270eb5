"""The closed vocabularies of the domain model."""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    """What an annotation or prediction is. A feature (class) of the ontology has exactly one kind."""

    BBOX = "bbox"
    POLYGON = "polygon"
    MASK = "mask"
    POLYLINE = "polyline"
    POINT = "point"
    NER = "ner"
    RADIO = "radio"
    CHECKLIST = "checklist"

    @property
    def is_spatial(self) -> bool:
        return self in SPATIAL_KINDS

    @property
    def is_classification(self) -> bool:
        return self in (Kind.RADIO, Kind.CHECKLIST)


SPATIAL_KINDS = frozenset({Kind.BBOX, Kind.POLYGON, Kind.MASK, Kind.POLYLINE, Kind.POINT})
#: kinds whose geometry is stored as WKB in the ``geometry`` column
WKB_KINDS = frozenset({Kind.POLYGON, Kind.POLYLINE, Kind.POINT})


class MediaType(StrEnum):
    IMAGE = "image"
    TEXT = "text"


class Split(StrEnum):
    TRAIN = "train"
    VALID = "valid"
    TEST = "test"
    NONE = "none"


class MetadataKind(StrEnum):
    STRING = "string"
    NUMBER = "number"
    DATETIME = "datetime"
    ENUM = "enum"


def parse_enum(enum: type[StrEnum], value: str, what: str) -> StrEnum:
    """``enum(value)`` with an error that lists the valid values."""
    from slicewise.errors import Problem, ValidationError

    try:
        return enum(str(value).lower())
    except ValueError:
        valid = ", ".join(e.value for e in enum)  # type: ignore[attr-defined]
        raise ValidationError(
            Problem(f"unknown {what} {value!r}", field=what, fix=f"use one of: {valid}")
        ) from None
