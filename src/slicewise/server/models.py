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
    # in a run's gallery page: TP | FP | FN | confusion | dropped at the page's (c, t) (None: not computed)
    outcome: str | None = None
    # in a run's page or detail: TIDE's error type (classification | localization | both | duplicate |
    # background | missed) of a box / polygon / mask error at (c, t); None when it is not one
    error: str | None = None


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
    baseline_predictions: list[ObjectOut] | None = None  # the baseline run's, when the view compares two runs


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
    baseline: int | None = None  # the run compared with (its predictions are each row's baseline_predictions)
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
    reason: str | None = None  # stale because of: grids | settings | data


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


class AutoParamsIn(BaseModel):
    """Auto-slice parameters to change (the others keep their values)."""

    low_metric: float | None = Field(None, ge=0, le=1)
    low_confidence: float | None = Field(None, ge=0, le=1)
    mislabel_confidence: float | None = Field(None, ge=0, le=1)


class OntologyFeature(_Out):
    feature_id: int
    feature: str
    kind: str
    media_types: list[str]
    datasets: list[str] | None = None  # None: every dataset


class OntologyOut(_Out):
    run_id: int
    explicit: bool  # set by a user; else derived from the run's predictions and labels
    features: list[OntologyFeature]


class OntologyIn(BaseModel):
    """feature name -> media types (image, text); ``null`` goes back to the derived ontology."""

    features: dict[str, list[str]] | None = None
    datasets: list[str] | None = None


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
    tn: int | None = None  # rows where the feature applies (run ontology) and is neither labelled nor predicted
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    iou: float | None = None
    n_rows: int
    n_predictions: int
    n_annotations: int
    # COCO AP@[.5:.95], AP50, AP75, AR@100 over all the run's rows (box: bbox IoU, polygon / mask: segm IoU)
    ap: float | None = None
    ap50: float | None = None
    ap75: float | None = None
    ar: float | None = None


class Overall(_Out):
    tp: int
    fp: int
    fn: int
    micro_precision: float | None = None
    micro_recall: float | None = None
    micro_f1: float | None = None
    macro_precision: float | None = None
    macro_recall: float | None = None
    macro_f1: float | None = None


class FeatureOverall(Overall):
    # the means of the features' COCO numbers (mAP, ...), over all the run's rows
    map: float | None = None
    ap50: float | None = None
    ap75: float | None = None
    ar: float | None = None


class FeatureTable(_Out):
    confidence: float
    iou: float
    filter: str = ""
    job: Job | None = None
    features: list[FeatureRow]
    overall: FeatureOverall | None = None  # micro (summed counts) and macro (mean over features) of the rows above
    ap_pending: bool = False  # the COCO columns are being computed in the background: ask again shortly


class ClassRow(_Out):
    class_id: int
    name: str  # "feature" for objects, "feature: answer" for radio answers and checklist options
    feature_id: int
    feature: str
    answer: str | None = None
    kind: str
    tp: int
    fp: int
    fn: int
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    support: int


class ClassTable(_Out):
    confidence: float
    iou: float
    filter: str = ""
    job: Job | None = None
    classes: list[ClassRow]
    overall: Overall


class CalibrationBin(_Out):
    lo: float
    hi: float
    n: int
    confidence: float | None = None
    accuracy: float | None = None


class CalibrationRow(_Out):
    name: str
    n: int
    ece: float | None = None
    mce: float | None = None
    bins: list[CalibrationBin]


class CalibrationOut(_Out):
    confidence: float
    iou: float
    filter: str = ""
    job: Job | None = None
    n_bins: int
    overall: CalibrationRow
    classes: list[CalibrationRow]


class ErrorTypeCounts(_Out):
    """How many errors of each TIDE type (prediction errors by predicted class, missed labels by class)."""

    classification: int
    localization: int
    both: int
    duplicate: int
    background: int
    missed: int


class ErrorTypeDap(_Out):
    """The COCO AP at the IoU gained when every error of the type is fixed (None for a class without labels)."""

    classification: float | None = None
    localization: float | None = None
    both: float | None = None
    duplicate: float | None = None
    background: float | None = None
    missed: float | None = None


class ErrorTypeRow(_Out):
    name: str
    n_labels: int
    n_predictions: int
    ap: float | None = None
    counts: ErrorTypeCounts
    dap: ErrorTypeDap


class ErrorTypesOut(_Out):
    """TIDE error types at (confidence, IoU = t_f, background_iou = t_b) over the view's rows; each type is
    the filter ``error:<type>`` in the gallery."""

    confidence: float
    iou: float
    background_iou: float
    filter: str = ""
    job: Job | None = None
    n_rows: int
    types: list[str]
    overall: ErrorTypeRow
    classes: list[ErrorTypeRow]


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


# -- errors ------------------------------------------------------------------------------------
class ErrorProblem(_Out):
    reason: str
    location: str = ""
    field: str = ""
    fix: str = ""


class ErrorBody(_Out):
    """Every refusal of a slicewise error (see server/errors.py): what, where and how to fix it."""

    error: str  # the exception's class name, e.g. QueryError
    detail: str  # the whole message, as the CLI prints it
    message: str
    where: str = ""
    fix: str = ""
    problems: list[ErrorProblem] | None = None  # one per bad record (ValidationError)


class RequestErrorItem(_Out):
    loc: list[str | int]
    msg: str
    type: str
    input: Any = None
    ctx: dict[str, Any] | None = None


class RequestErrors(_Out):
    """A request whose parameters or body do not fit the schema (FastAPI's own validation)."""

    detail: list[RequestErrorItem]


class HTTPErrorBody(_Out):
    """An HTTP error without a slicewise error behind it (no such API path, bad token, ...)."""

    detail: str | list[Any] | dict[str, Any]


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


# -- the projector ------------------------------------------------------------------------------
class ProjectionStatus(_Out):
    """A projection's job: ``none`` (never asked), ``running``, ``done`` or ``failed``."""

    space: str
    method: str
    dims: int
    state: str
    done: int
    total: int
    stage: str
    error: str | None = None
    seconds: float | None = None


class ProjectionColors(_Out):
    """The colour value of each point, in the order of the projection's ids: category codes (int16, -1 =
    none, indexing ``legend``) or numbers (float32, NaN = none, between ``min`` and ``max``), as
    little-endian bytes in base64."""

    by: str
    kind: str  # category | number
    count: int
    legend: list[str]
    counts: list[int]
    min: float | None = None
    max: float | None = None
    dtype: str
    data: str


# -- curation: batches and the labelling queue --------------------------------------------------
class BatchOut(_Out):
    """A labelling batch: a frozen set of rows with its queue states and a status derived from them."""

    id: int
    name: str
    priority: int
    note: str
    status: str = Field(description="new, exported, in progress or done")
    count: int
    created_at: datetime
    source: str | None = None
    exported_at: datetime | None = None
    exported_as: str | None = None
    states: dict[str, int] = Field(description="queue state -> rows of the batch in it")


class QueueCounts(_Out):
    counts: dict[str, int] = Field(description="queue state -> rows in it (to_label, in_review, rework, done)")
    moved: int | None = None


class LabelImportOut(_Out):
    format: str
    rows: int
    annotations: int
    replaced: int
    unlabelled: int
    moved: dict[str, int]
    runs: list[str]
    recomputing: list[str] = Field(description="runs whose metrics are being brought up to date in the background")
    warnings: list[str] = []


# -- active learning (slicewise.curation.active) -------------------------------------------------
class SelectIn(BaseModel):
    """A request to pick the rows most worth labelling from a pool (see ``slicewise select``)."""

    run: str | None = Field(None, max_length=200, description="model/run whose predictions score the pool")
    pool: str = Field("annotation is none", max_length=20_000, description="the pool, a filter")
    n: int = Field(100, ge=1, le=10_000)
    strategy: str = Field("entropy", max_length=40,
                          description="least_confidence, margin, entropy, diversity, combined or random")
    space: str | None = Field(None, max_length=64, description="embedding space (diversity, combined)")
    class_balance: bool = False
    aggregate: str | None = Field(None, max_length=10, description="max, mean, sum or count (default by strategy)")
    uncertainty: str = Field("entropy", max_length=40, description="the uncertainty of the combined strategy")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    batch: str | None = Field(None, max_length=60, description="put the rows in a new batch of this name")
    priority: int = Field(0, ge=-1_000_000, le=1_000_000)
    note: str = Field("", max_length=2000)
    tag: str | None = Field(None, max_length=100)


class SelectedRowOut(_Out):
    data_row_id: int
    global_key: str
    score: float
    uncertainty: float | None = None
    distance: float | None = None
    predicted_class: str | None = None


class SelectionOut(_Out):
    """The rows picked, in the order picked, with how they were picked."""

    strategy: str
    run: str | None
    pool: str
    pool_size: int
    rows: list[SelectedRowOut]
    aggregate: str | None = None
    uncertainty: str | None = None
    space: str | None = None
    class_balance: bool = False
    seed: int = 0
    unscored: int = 0
    without_vector: int = 0
    reference: int = 0
    batch: str | None = None
    tag: str | None = None
    notes: list[str] = []


# -- label mistakes (slicewise.mistakes) --------------------------------------------------------
class MistakeDetector(_Out):
    """One detector on a run: rows scored and flagged, and the precision the reviewers' verdicts measure
    (confirmed / (confirmed + rejected) among its flagged rows; null before any verdict on them)."""

    detector: str
    scored: int
    flagged: int
    confirmed: int
    rejected: int
    precision: float | None
    unflagged_confirmed: int


class MistakesSummary(_Out):
    run_id: int
    space: str | None  # the kNN detector's embedding space (null: none, no kNN)
    tasks: list[str]  # what was scored: classification:FEATURE, boxes
    reviewed: int  # rows of the run with a verdict
    detectors: list[MistakeDetector]


class MistakeRow(_Out):
    id: int
    global_key: str
    score: float
    flagged: bool
    verdict: str | None  # confirmed, rejected or null


class MistakeRows(_Out):
    detector: str
    scored: int
    flagged: int
    rows: list[MistakeRow]


class RowMistakes(_Out):
    """One row's score and flag under each detector (null: the detector did not score it) and its verdict."""

    id: int
    scores: dict[str, float | None]
    flagged: dict[str, bool]
    verdict: str | None


class VerdictsChanged(_Out):
    changed: int
    tags: dict[str, int]


# -- slice discovery and slice history (slicewise.slices.suggest / .history) -------------------------
from slicewise.slices.history import HistoryPoint, SliceHistory  # noqa: E402, F401  (response models)
from slicewise.slices.suggest import Discovery, Suggestion  # noqa: E402, F401


class DiscoveryOut(_Out):
    """Suggested slices of a run; ``pending`` while they are computed in the background (ask again)."""

    pending: bool = False
    discovery: Discovery | None = None


class RunOrderIn(BaseModel):
    runs: list[str] = Field(min_length=1, max_length=1000, description="the model's runs (names) in history order")


# -- run comparison -------------------------------------------------------------------------------
class MetricDeltaOut(_Out):
    """A metric in both runs, the delta (run - baseline), its bootstrap interval, whether it excludes 0."""

    baseline: float | None = None
    run: float | None = None
    delta: float | None = None
    lo: float | None = None
    hi: float | None = None
    significant: bool = False


class GroupDeltaOut(_Out):
    """A class (feature), the overall rows or a slice in both runs; ``filter`` selects its rows."""

    kind: str  # overall | class | slice
    name: str
    filter: str
    feature: str | None = None
    rows: int
    tp: list[int]
    fp: list[int]
    fn: list[int]
    metrics: dict[str, MetricDeltaOut]
    flips: dict[str, int]


class RegressionOut(_Out):
    kind: str
    name: str
    metric: str
    delta: float
    lo: float
    hi: float
    allowed: float
    filter: str  # the group's rows where the metric dropped (for the gallery, with the baseline run)


class ComparisonOut(_Out):
    """Two runs over their common rows: see slicewise.compare.compare_runs."""

    baseline: str
    run: str
    baseline_id: int
    run_id: int
    confidence: float
    iou: float
    rows: int
    only_baseline: int
    only_run: int
    overall: GroupDeltaOut
    classes: list[GroupDeltaOut]
    slices: list[GroupDeltaOut]
    flips: dict[str, int]
    n_boot: int
    seed: int
    level: float
    iou_delta: float
    regressions: list[RegressionOut]  # significant drops, the largest first


class FlipSide(_Out):
    outcome: str
    class_: str | None = Field(None, alias="class")
    iou: float | None = None
    prediction_id: int | None = None


class FlippedObjectOut(_Out):
    label_id: int
    data_row_id: int
    global_key: str
    feature: str
    flip: str
    baseline: FlipSide
    run: FlipSide
