"""The API's response (and request) bodies as pydantic models, so ``/openapi.json`` says what every
endpoint returns and the web app's types are generated from it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from slicewise.query import Facets  # noqa: F401  (re-exported: a response model of /api/facets)
from slicewise.slices import Slice  # noqa: F401  (re-exported: a response model of /api/slices)
from slicewise.types.domain import Dataset, Feature  # noqa: F401


class _Out(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


# -- objects and rows --------------------------------------------------------------------------
class Mask(_Out):
    size: tuple[int, int]  # [height, width]
    counts: str | list[int]  # COCO RLE (compressed string, or uncompressed run lengths)


class ObjectOut(_Out):
    """A label or a prediction as drawn by the web app."""

    id: int
    feature: str
    kind: str
    bbox: list[float] | None = None  # [x, y, width, height] in pixels
    polygon: list[list[list[float]]] | None = None
    line: list[list[float]] | None = None
    point: list[float] | None = None
    mask: Mask | None = None
    span: list[int] | None = None  # [start, end) character offsets of a text row
    answer: str | None = None
    area: float | None = None
    confidence: float | None = None
    probabilities: list[float] | None = None
    iscrowd: bool | None = None


class RowOut(_Out):
    id: int
    global_key: str
    dataset: str
    media_type: str
    width: int | None = None
    height: int | None = None
    split: str
    metadata: dict[str, Any] = {}
    tags: list[str] = []
    text: str | None = None  # text rows (the first 4,000 characters in a page)
    sort_value: Any = None
    similarity: float | None = None  # the similarity score when the view has a similarity search
    annotations: list[ObjectOut] = []
    predictions: list[ObjectOut] = []


class Thresholds(_Out):
    """The (confidence, IoU) a view used, and where each came from: ``given``, the ``run``'s setting, or
    the ``grid`` value nearest 0.5."""

    confidence: float | None = None
    iou: float | None = None
    source: dict[str, str] = {}


class SimilarOut(_Out):
    space: str
    anchors: list[int]
    k: int | None = None


class RowsPage(_Out):
    total: int
    offset: int
    limit: int
    run: int | None = None
    confidence: float | None = None
    iou: float | None = None
    thresholds: Thresholds
    filter: str = ""  # the view's whole filter (slice AND text AND dataset AND cell) as text
    sort: str = ""
    similar: SimilarOut | None = None  # the view's similarity search (given, or the slice's)
    rows: list[RowOut]


class RowIds(_Out):
    total: int
    ids: list[int]
    keys: list[str]


class Match(_Out):
    """One object of a row with its outcome at (c, t); see slicewise.metrics.row_matches."""

    object_id: int
    source: str  # label | prediction
    feature: str
    feature_id: int
    kind: str
    answer: str | None = None
    class_: str = Field(alias="class")
    confidence: float | None = None
    kept: bool | None = None
    match_id: int | None = None
    match_class: str | None = None
    iou: float | None = None
    iou_with: int | None = None
    outcome: str | None = None  # TP | FP | FN | confusion | dropped | None (not covered by the records)
    counts_as: str | None = None


class RowMetrics(_Out):
    tp: float | None = None
    fp: float | None = None
    fn: float | None = None
    tn: float | None = None
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    iou: float | None = None
    confidence_min: float | None = Field(None, alias="confidence.min")
    confidence_max: float | None = Field(None, alias="confidence.max")
    confidence_mean: float | None = Field(None, alias="confidence.mean")
    annotation_count: float | None = Field(None, alias="annotation.count")
    prediction_count: float | None = Field(None, alias="prediction.count")


class RowDetail(RowOut):
    confidence: float | None = None
    iou: float | None = None
    matches: list[Match] | None = None
    matches_error: str | None = None
    metrics: RowMetrics | None = None


class TagsChanged(_Out):
    added: int | None = None
    removed: int | None = None
    tags: dict[str, int]


# -- workspace ---------------------------------------------------------------------------------
class MetadataField(_Out):
    kind: str
    options: list[str] | None = None


class WorkspaceOut(_Out):
    path: str
    counts: dict[str, int]
    datasets: list[Dataset]
    features: list[Feature]
    metadata_fields: dict[str, MetadataField]
    tags: dict[str, int]


# -- runs and jobs -----------------------------------------------------------------------------
class Job(_Out):
    run_id: int
    state: str  # pending | running | ready | failed | stale
    done: int
    total: int
    error: str | None = None
    stale_rows: int = 0
    finished_at: str | None = None


class Grids(_Out):
    confidence: list[float]
    iou: list[float]


class Headline(_Out):
    confidence: float
    iou: float
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    tp: int
    fp: int
    fn: int


class RunOut(_Out):
    id: int
    model: str
    name: str
    ref: str
    config: dict[str, Any] = {}
    created_at: datetime
    job: Job
    grids: Grids | None = None
    thresholds: Thresholds
    headline: Headline | None = None


class GridsIn(BaseModel):
    confidence: list[float] | None = Field(None, min_length=1, max_length=101)
    iou: list[float] | None = Field(None, min_length=1, max_length=101)


# -- metrics -----------------------------------------------------------------------------------
class FeatureRow(_Out):
    feature_id: int
    feature: str
    kind: str
    tp: int
    fp: int
    fn: int
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    iou: float | None = None
    n_rows: int
    n_predictions: int
    n_annotations: int


class FeatureTable(_Out):
    confidence: float
    iou: float
    filter: str = ""
    job: Job | None = None
    features: list[FeatureRow]


class Confusion(_Out):
    classes: list[str]  # "None" last
    class_ids: list[int | None]
    counts: list[list[int]]  # [true][predicted]
    confidence: float
    iou: float


class ConfusionOut(_Out):
    confidence: float
    iou: float
    filter: str = ""
    job: Job | None = None
    matrix: Confusion


class Curve(_Out):
    feature: str | None = None
    iou: float
    confidence: list[float]
    precision: list[float | None]
    recall: list[float | None]
    f1: list[float | None]
    tp: list[int]
    fp: list[int]
    fn: list[int]
    best_confidence: float | None = None
    best_f1: float | None = None
    fine: dict[str, list[float]] = {}


class CurveOut(_Out):
    confidence: float
    iou: float
    filter: str = ""
    job: Job | None = None
    curve: Curve


# -- query -------------------------------------------------------------------------------------
class Parsed(_Out):
    ast: dict[str, Any] | None = None
    text: str
    clauses: list[str]


class ParsedSort(_Out):
    sort: list[dict[str, Any]]
    text: str


class FilterText(_Out):
    text: str


# -- slices ------------------------------------------------------------------------------------
class Deleted(_Out):
    deleted: str


# -- embeddings ------------------------------------------------------------------------------------
class EmbedJob(_Out):
    """A built-in embedder's job on a space: running | done | failed | interrupted (run again to resume)."""

    space: str
    embedder: str
    state: str
    done: int
    total: int
    error: str | None = None
    started_at: str | None = None
    finished_at: str | None = None


class Space(_Out):
    name: str
    kind: str  # image | text
    dim: int
    count: int  # vectors
    metric: str  # cosine | ip
    source: str  # custom, or the built-in embedder and its settings
    created: str
    index: str  # exact | ivf | ivf-building: how similarity searches are answered now
    job: EmbedJob | None = None


class SimilarRow(_Out):
    id: int
    global_key: str
    score: float


class EmbedRequest(BaseModel):
    kind: str = Field("image", pattern="^(image|text)$")
    embedder: str | None = Field(None, max_length=40, description="efficientnet-lite0; tfidf-svd or minilm for text")
    size: int = Field(224, ge=32, le=512, description="images are resized to size x size")
