"""Label-mistake detection: which labels are probably wrong, by three detectors, and how often the
reviewers agree.

Detectors (see :mod:`slicewise.mistakes.detect`): ``cleanlab`` (confident learning: cleanlab's
``find_label_issues`` on the run's class-probability vectors, or its object-detection variant on the
run's boxes), ``knn`` (kNN label disagreement in an embedding space, when the workspace has one) and
``combined`` (both opinions together). Each gives every labelled row of the run a score in [0, 1]
(higher: more likely a mistake) and a flag. The query language reads them as ``mistake.<detector>``
(the score; ``mistake`` alone is ``mistake.combined``) and ``mistake.<detector>.flagged`` (1 or 0), for
filters, sorting and facets; each detector has an auto slice ("Label mistakes (cleanlab)", ...).

Reviewers' verdicts are tags (``mistake-confirmed``, ``mistake-rejected``); :func:`summary` gives each
detector's measured precision from them.

- ``result(ws, run, space=None) -> Result``; ``scores(ws, run, detector="combined") -> Scores``
- ``summary(ws, run) -> Summary`` (flagged counts, verdicts, precision per detector)
- ``set_verdict(ws, keys, "confirmed" | "rejected" | "clear") -> int``
"""

from __future__ import annotations

from slicewise.mistakes.results import (
    CONFIRMED,
    DETECTORS,
    REJECTED,
    DetectorSummary,
    Result,
    Scores,
    Summary,
    result,
    scores,
    set_verdict,
    summary,
    verdicts,
)

__all__ = ["CONFIRMED", "DETECTORS", "REJECTED", "DetectorSummary", "Result", "Scores", "Summary", "result",
           "scores", "set_verdict", "summary", "verdicts"]
