"""The result types of a run comparison (frozen; ``to_dict()`` gives plain JSON-able data)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

#: the metrics compared, each "higher is better"
METRICS = ("precision", "recall", "f1")


@dataclass(frozen=True)
class MetricDelta:
    """One metric of one group in both runs: ``baseline``, ``run``, ``delta`` (run - baseline; None when
    either is undefined), the bootstrap interval of the delta (``lo``, ``hi``) and ``significant`` (the
    interval excludes 0 and the group has at least ``diff.MIN_ROWS`` rows)."""

    baseline: float | None
    run: float | None
    delta: float | None
    lo: float | None
    hi: float | None
    significant: bool

    @property
    def regression(self) -> bool:
        """A significant drop: the whole interval lies below 0."""
        return self.significant and self.delta is not None and self.delta < 0


@dataclass(frozen=True)
class GroupDelta:
    """A group of the comparison: ``kind`` "overall" (micro over every feature), "class" (one feature) or
    "slice" (a saved or auto slice, micro over its features); ``name``; ``filter`` (the text that selects its
    rows in the gallery, with the class in ``feature``), ``rows`` (common rows in it), the counts of both runs
    (``tp``, ``fp``, ``fn``: pairs (baseline, run)), ``metrics`` (name -> MetricDelta) and ``flips`` (type ->
    objects; for classes and overall)."""

    kind: str
    name: str
    filter: str
    feature: str | None
    rows: int
    tp: tuple[int, int]
    fp: tuple[int, int]
    fn: tuple[int, int]
    metrics: dict[str, MetricDelta]
    flips: dict[str, int]

    def worse_filter(self, metric: str) -> str:
        """The filter of the group's rows where ``metric`` dropped (with the baseline run as the view's
        ``baseline``): ``delta.recall[cat] < 0`` for a class, the slice's filter and ``delta.recall < 0`` for a
        slice, ``delta.recall < 0`` overall."""
        from slicewise.query.text import _name

        if self.kind == "class" and self.feature is not None:
            return f"delta.{metric}[{_name(self.feature)}] < 0"
        cond = f"delta.{metric} < 0"
        if self.kind == "slice" and self.filter:
            return f"({self.filter}) and {cond}"
        return cond

    def worst(self) -> tuple[str, MetricDelta] | None:
        """The significant drop with the largest size, or None."""
        regs = [(m, d) for m, d in self.metrics.items() if d.regression]
        return min(regs, key=lambda x: x[1].delta or 0.0) if regs else None


@dataclass(frozen=True)
class Regression:
    """A significant drop beyond the allowed one: group kind and name, metric, delta and interval."""

    kind: str
    name: str
    metric: str
    delta: float
    lo: float
    hi: float
    allowed: float


@dataclass(frozen=True)
class Comparison:
    """Two runs compared over their common data rows at one (confidence, IoU).

    ``baseline`` and ``run`` (refs), ``confidence``, ``iou``, ``rows`` (common rows compared),
    ``only_baseline`` / ``only_run`` (rows in one run only: left out), ``overall``, ``classes`` and
    ``slices`` (:class:`GroupDelta`), ``flips`` (type -> objects over all common rows), the bootstrap's
    ``n_boot``, ``seed`` and ``level``; ``iou_delta`` (how far an IoU must move to count as a flip)."""

    baseline: str
    run: str
    baseline_id: int
    run_id: int
    confidence: float
    iou: float
    rows: int
    only_baseline: int
    only_run: int
    overall: GroupDelta
    classes: tuple[GroupDelta, ...]
    slices: tuple[GroupDelta, ...]
    flips: dict[str, int]
    n_boot: int
    seed: int
    level: float
    iou_delta: float

    def groups(self) -> list[GroupDelta]:
        return [self.overall, *self.classes, *self.slices]

    def regressions(self, max_drop: dict[str, float] | None = None) -> list[Regression]:
        """Significant drops (interval entirely below 0) larger than the allowed drop, the largest first.

        ``max_drop`` maps metric names (``precision``, ``recall``, ``f1``) to the drop allowed (e.g.
        ``{"recall": 0.02}``): only those metrics are checked. Without it every metric is checked with an
        allowed drop of 0 (any significant drop counts)."""
        allowed = dict(max_drop) if max_drop else {m: 0.0 for m in METRICS}
        out = []
        for g in self.groups():
            for m, lim in allowed.items():
                d = g.metrics.get(m)
                if d is not None and d.regression and d.delta is not None and d.delta < -lim \
                        and d.lo is not None and d.hi is not None:
                    out.append(Regression(g.kind, g.name, m, d.delta, d.lo, d.hi, lim))
        return sorted(out, key=lambda r: (r.delta, r.kind, r.name, r.metric))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
