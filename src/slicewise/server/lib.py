"""The one place the server reaches into the optional library areas (metrics, query, slices).

Routers call these thin wrappers so that a missing area (still being built) answers 501 with a clear
message instead of crashing at import time, and so that a change of a library signature is fixed here.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from fastapi import HTTPException


def need(area: str) -> ModuleType:
    """``slicewise.<area>``, or a 501 saying that this slicewise has no such feature yet."""
    try:
        return importlib.import_module(f"slicewise.{area}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith(f"slicewise.{area}"):
            raise HTTPException(501, f"this slicewise has no {area} support yet (slicewise.{area} is missing)") from None
        raise


def has(area: str, name: str | None = None) -> bool:
    try:
        mod = importlib.import_module(f"slicewise.{area}")
        return name is None or hasattr(mod, name)
    except ImportError:  # the area (or a module it loads lazily) is not there yet
        return False
