"""Typed metadata values: what kind a new field gets, and how a value is checked and converted.

>>> infer_kind(3), infer_kind("cam-02"), coerce("2024-05-01", "datetime", None)
('number', 'string', (True, datetime.datetime(2024, 5, 1, 0, 0)))
>>> coerce("foggy", "enum", ["sunny", "rainy"])
(False, 'use one of: sunny, rainy')
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import numpy as np

from slicewise.types.kinds import MetadataKind


def infer_kind(value: Any) -> str:
    """The kind a field gets when its first value arrives undeclared (enums must be declared)."""
    if isinstance(value, bool):
        return MetadataKind.STRING.value
    if isinstance(value, int | float | np.integer | np.floating):
        return MetadataKind.NUMBER.value
    if isinstance(value, datetime | date):
        return MetadataKind.DATETIME.value
    return MetadataKind.STRING.value


def coerce(value: Any, kind: str, options: Sequence[str] | None) -> tuple[bool, Any]:
    """(True, typed value) or (False, how to fix). Datetimes are stored as naive UTC."""
    if kind == "number":
        try:
            v = float(value)
        except (TypeError, ValueError):
            return False, "give a number"
        return (True, v) if np.isfinite(v) else (False, "give a finite number")
    if kind == "datetime":
        if isinstance(value, datetime):
            return True, value.replace(tzinfo=None) if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)
        if isinstance(value, date):
            return True, datetime(value.year, value.month, value.day)
        try:
            dt = datetime.fromisoformat(str(value))
        except ValueError:
            return False, "give an ISO 8601 date-time such as 2024-05-01T12:00:00"
        return True, dt.astimezone(UTC).replace(tzinfo=None) if dt.tzinfo else dt
    if kind == "enum":
        if options and str(value) not in options:
            return False, "use one of: " + ", ".join(options)
        return True, str(value)
    return True, str(value)
