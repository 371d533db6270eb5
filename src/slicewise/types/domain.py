"""Domain objects returned by the SDK: plain, immutable, JSON-serialisable (pydantic)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Dataset(_Frozen):
    id: int
    name: str
    description: str | None = None
    created_at: datetime


class DataRow(_Frozen):
    id: int
    global_key: str
    dataset: str
    media_type: str
    row_data: str
    width: int | None = None
    height: int | None = None
    split: str = "none"
    metadata: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    created_at: datetime


class Feature(_Frozen):
    id: int
    name: str
    kind: str
    options: list[str] | None = None
    external_id: str | None = None


class Model(_Frozen):
    id: int
    name: str
    created_at: datetime


class ModelRun(_Frozen):
    id: int
    model: str
    name: str
    config: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime

    @property
    def ref(self) -> str:
        """The ``model/run`` reference the CLI and the API accept."""
        return f"{self.model}/{self.name}"
