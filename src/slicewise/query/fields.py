"""The fields a filter or sort may name, resolved against what the workspace holds.

Built-in fields: ``dataset``, ``split``, ``global_key``, ``media_type``, ``created_at``; the metrics at
the thresholds being viewed ``tp fp fn tn precision recall f1 iou`` (per row, or for one feature with
``[feature]``); ``confidence.min|max|mean`` (over the run's predictions on the row, or of one feature);
``annotation.count`` / ``prediction.count`` (of one feature with ``[feature]``); ``area.min`` / ``area.max``
(the smallest / largest area, in pixels^2, among the row's labelled objects: the stored area, else the box's); ``overconfident`` (the
highest confidence among the row's detection predictions that are TIDE errors at the thresholds being
viewed, 0 when none: see :mod:`slicewise.metrics.tide`); ``mistake.<detector>`` and
``mistake.<detector>.flagged`` (label-mistake scores of the run: see :mod:`slicewise.mistakes`). Workspace fields:
``metadata.<name>`` for every declared metadata field and ``metric.<name>`` for every custom metric.

>>> normalise_field(["Confidence"]), normalise_field(["count"]), normalise_field(["metadata", "camera"])
('confidence.max', 'annotation.count', 'metadata.camera')
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from slicewise.errors import QueryError

ROW_FIELDS: dict[str, tuple[str, str]] = {  # name -> (value kind, column of data_rows)
    "dataset": ("string", ""),
    "split": ("enum", "split"),
    "global_key": ("string", "global_key"),
    "media_type": ("enum", "media_type"),
    "created_at": ("datetime", "created_at"),
}
ROW_OPTIONS = {"split": ["train", "valid", "test", "none"], "media_type": ["image", "text"]}
COUNT_METRICS = ("tp", "fp", "fn", "tn")
RATIO_METRICS = ("precision", "recall", "f1", "iou")
METRICS = COUNT_METRICS + RATIO_METRICS
CONFIDENCE = ("confidence.min", "confidence.max", "confidence.mean")
#: ``error:NAME`` -> the column of the TIDE error-rows table (slicewise.metrics.tide.error_rows_table)
ERROR_NAMES = {"classification": "classification", "localization": "localization", "both": "both",
               "duplicate": "duplicate", "background": "background", "missed": "missed", "any": "errors",
               "cls": "classification", "loc": "localization", "dupe": "duplicate", "bkg": "background",
               "miss": "missed", "localisation": "localization"}
COUNTS = ("annotation.count", "prediction.count")
#: the smallest / largest area (pixels^2) among the row's labelled objects (rows without one have no value)
AREAS = ("area.min", "area.max")

_ALIASES = {
    "confidence": "confidence.max", "conf": "confidence.max", "conf.min": "confidence.min",
    "conf.max": "confidence.max", "conf.mean": "confidence.mean", "confidence.avg": "confidence.mean",
    "count": "annotation.count", "annotations.count": "annotation.count", "labels.count": "annotation.count",
    "predictions.count": "prediction.count", "f1_score": "f1", "f1score": "f1", "f1-score": "f1",
    "key": "global_key", "globalkey": "global_key", "media": "media_type", "true_positives": "tp",
    "false_positives": "fp", "false_negatives": "fn", "true_negatives": "tn", "created": "created_at",
    "annotations": "annotation", "predictions": "prediction", "tags": "tag", "batches": "batch",
    "knn_disagreement": "island", "islands": "island", "score": "similarity",
    "mistake": "mistake.combined", "mistakes": "mistake.combined",
}
_PREFIXES = {"metadata": "metadata", "md": "metadata", "meta": "metadata", "metric": "metric",
             "custom": "metric", "metrics": "metric", "island": "island", "knn_disagreement": "island",
             "mistake": "mistake", "mistakes": "mistake"}
MISTAKE_DETECTORS = ("cleanlab", "knn", "combined")  # slicewise.mistakes: ``mistake.<detector>[.flagged]``


def normalise_field(parts: Sequence[str]) -> str:
    """Join a dotted field path, lower-case built-in names and resolve aliases (metadata and custom
    metric names keep their spelling)."""
    parts = [str(p) for p in parts]
    if not parts:
        raise QueryError("empty field name")
    head = parts[0].lower()
    if head in _PREFIXES and len(parts) > 1:
        return f"{_PREFIXES[head]}.{'.'.join(parts[1:])}"
    low = ".".join(p.lower() for p in parts)
    return _ALIASES.get(low, low)


@dataclass(frozen=True)
class FieldSpec:
    """A resolved field: its category, its value kind, and where its values live."""

    name: str
    category: str  # row | metadata | metric | custom | confidence | count
    kind: str  # number | string | datetime | enum
    options: tuple[str, ...] | None = None
    key: str = ""  # the metadata field / custom metric name / metric column / aggregate


class Catalog:
    """What the workspace holds, loaded once per compilation: metadata fields, features, datasets,
    custom metric names of the run."""

    #: the changes that make a catalog out of date (see slicewise.state)
    TOPICS = ("metadata_fields", "features", "datasets", "custom_metrics", "embeddings")

    def __init__(self, ws: Any, run_id: int | None) -> None:
        cur = ws.store.cursor()
        self.metadata: dict[str, tuple[str, tuple[str, ...] | None]] = {
            r[0]: (r[1], tuple(r[2]) if r[2] else None)
            for r in cur.execute("SELECT name, kind, options FROM metadata_fields").fetchall()}
        self.features: dict[str, int] = dict(cur.execute("SELECT name, id FROM features").fetchall())
        self.datasets: dict[str, int] = dict(cur.execute("SELECT name, id FROM datasets").fetchall())
        self.run_id = run_id
        has_spaces = cur.execute("SELECT count(*) FROM information_schema.tables "
                                 "WHERE table_name = 'embedding_spaces'").fetchone()
        self.spaces: dict[str, str] = dict(cur.execute("SELECT name, kind FROM embedding_spaces ORDER BY name").fetchall()) \
            if has_spaces and has_spaces[0] else {}
        self.custom: set[str] = set()
        has_custom = cur.execute("SELECT count(*) FROM information_schema.tables "
                                 "WHERE table_name = 'custom_metrics'").fetchone()
        self.has_custom_table = bool(has_custom and has_custom[0])
        if self.has_custom_table:  # without a run: the names of every run (to validate saved slices)
            self.custom = {r[0] for r in cur.execute(
                "SELECT DISTINCT name FROM custom_metrics WHERE run_id = ? OR ? IS NULL", [run_id, run_id]).fetchall()}

    def all_names(self) -> list[str]:
        names = list(ROW_FIELDS) + list(METRICS) + list(CONFIDENCE) + list(COUNTS) + list(AREAS)
        names += [f"metadata.{m}" for m in self.metadata] + [f"metric.{m}" for m in sorted(self.custom)]
        names += ["overconfident", "similarity"] + (["island"] if self.spaces else []) + [f"island.{s}" for s in self.spaces]
        names += [f"mistake.{d}{x}" for d in MISTAKE_DETECTORS for x in ("", ".flagged")]
        return names + ["annotation", "prediction", "tag", "batch", "queue"]

    def island_space(self, name: str) -> str:
        """The space of an ``island[.<space>]`` field: the one named, else the only space (or ``image``)."""
        _, _, sp = name.partition(".")
        if sp:
            if sp not in self.spaces:
                raise QueryError(f"no embedding space {sp!r}", where=name,
                                 fix=did_you_mean(sp, list(self.spaces)) or "spaces: " + (", ".join(self.spaces) or "none"))
            return sp
        if len(self.spaces) == 1:
            return next(iter(self.spaces))
        if "image" in self.spaces:
            return "image"
        raise QueryError(f"{name} needs an embedding space" if not self.spaces else f"{name}: which embedding space?",
                         where=name, fix="compute one with `slicewise embed`" if not self.spaces else
                         "name it: " + ", ".join(f"island.{s}" for s in self.spaces))

    def feature_id(self, name: str) -> int:
        if name not in self.features:
            raise QueryError(f"unknown feature {name!r}", where=f"[{name}]",
                             fix=did_you_mean(name, list(self.features)) or "list the features with `slicewise features`")
        return self.features[name]

    def resolve(self, name: str, feature: str | None = None, at_confidence: float | None = None) -> FieldSpec:
        spec = self._lookup(name)
        if feature is not None and spec.category not in ("metric", "custom", "confidence", "count", "delta"):
            raise QueryError(f"field {name!r} cannot be narrowed to a feature", where=f"{name}[{feature}]",
                             fix="only metrics, confidence and counts take [feature]")
        if at_confidence is not None:
            if spec.category != "metric":
                raise QueryError(f"field {name!r} cannot be pinned to a confidence threshold", where=name,
                                 fix="only the metrics tp fp fn tn precision recall f1 iou take @confidence")
            if not 0 <= at_confidence <= 1:
                raise QueryError(f"confidence threshold {at_confidence} is outside [0, 1]", where=name,
                                 fix="give a value between 0 and 1")
        if feature is not None:
            self.feature_id(feature)
        return spec

    def _lookup(self, name: str) -> FieldSpec:
        if name in ROW_FIELDS:
            kind, col = ROW_FIELDS[name]
            row_opts = ROW_OPTIONS.get(name)
            return FieldSpec(name, "row", kind, tuple(row_opts) if row_opts else None, col)
        if name in METRICS:
            return FieldSpec(name, "metric", "number", None, name)
        if name in CONFIDENCE:
            return FieldSpec(name, "confidence", "number", None, name.split(".")[1])
        if name in COUNTS:
            return FieldSpec(name, "count", "number", None, name.split(".")[0])
        if name in AREAS:
            return FieldSpec(name, "area", "number", None, name.split(".")[1])
        if name == "similarity":
            return FieldSpec(name, "similarity", "number", None, "")
        if name.startswith("delta."):
            from slicewise.compare.api import DELTA_METRICS

            m = name[len("delta."):]
            if m in DELTA_METRICS:
                return FieldSpec(name, "delta", "number", None, m)
            raise QueryError(f"unknown field {name!r}", where=name,
                             fix="use one of: " + ", ".join(f"delta.{x}" for x in DELTA_METRICS))
        if name == "overconfident":
            return FieldSpec(name, "tide", "number", None, "overconfident")
        if name in ("island", "knn_disagreement") or name.startswith(("island.", "knn_disagreement.")):
            return FieldSpec(name, "island", "number", None, self.island_space(name))
        if name.startswith("mistake."):
            det, _, what = name[len("mistake."):].partition(".")
            if det not in MISTAKE_DETECTORS or what not in ("", "flagged"):
                raise QueryError(f"unknown label-mistake field {name!r}", where=name,
                                 fix=did_you_mean(name, [f"mistake.{d}{x}" for d in MISTAKE_DETECTORS
                                                         for x in ("", ".flagged")])
                                 or "write mistake.DETECTOR or mistake.DETECTOR.flagged, DETECTOR one of "
                                 + ", ".join(MISTAKE_DETECTORS))
            return FieldSpec(name, "mistake", "number", None, f"{det}.{what}" if what else det)
        if name.startswith("metadata."):
            md = name[len("metadata."):]
            if md in self.metadata:
                kind, opts = self.metadata[md]
                return FieldSpec(name, "metadata", kind, opts, md)
            raise QueryError(f"unknown metadata field {md!r}", where=name,
                             fix=did_you_mean(name, self.all_names()) or
                             "declare it with define_metadata, or list the fields with `slicewise info`")
        if name.startswith("metric."):
            m = name[len("metric."):]
            if m in self.custom:
                return FieldSpec(name, "custom", "number", None, m)
            raise QueryError(f"unknown custom metric {m!r} for this run", where=name,
                             fix=did_you_mean(name, self.all_names()) or "upload it with add_custom_metrics")
        if name in ("annotation", "prediction", "tag", "batch", "queue"):
            raise QueryError(f"{name!r} is not compared with a value", where=name,
                             fix=f"write '{name} is none', '{name} is any' or "
                             + {"annotation": "has:FEATURE", "prediction": "predicted:FEATURE", "tag": "tag:NAME",
                                "batch": "batch:NAME", "queue": "queue:STATE"}[name])
        if name in self.metadata:
            hint = f"did you mean 'metadata.{name}'?"
        elif name in self.custom:
            hint = f"did you mean 'metric.{name}'?"
        else:
            hint = did_you_mean(name, self.all_names())
        raise QueryError(f"unknown field {name!r}", where=name,
                         fix=hint or "valid fields: " + ", ".join(self.all_names()[:24]))


def did_you_mean(name: str, choices: Sequence[str]) -> str:
    """'did you mean ...?' for the closest names, or '' when none is close.

    >>> did_you_mean("recal", ["recall", "precision"])
    "did you mean 'recall'?"
    """
    close = difflib.get_close_matches(str(name), list(choices), n=3, cutoff=0.6)
    if not close:
        low = {c.lower(): c for c in choices}
        close = [low[c] for c in difflib.get_close_matches(str(name).lower(), list(low), n=3, cutoff=0.6)]
    return ("did you mean " + " or ".join(map(repr, close)) + "?") if close else ""
