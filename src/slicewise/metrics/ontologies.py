"""A run's ontology: the features the run predicts, each applicable to some media types and datasets.

True negatives need it. The seed defines a TN as "no ground truth label and your model also made no
prediction" (``000_...``, auto slices), i.e. per (row, feature): a feature of the model's ontology that
could have been on the row and is neither labelled nor predicted (kept at c) there. A box feature cannot
be on a text row and a class of another dataset's ontology is not something the model was asked about,
so a row's TN counts only the run's ontology features **applicable** to the row: its media type is one of
the feature's media types and (when the feature names datasets) its dataset is one of them.

Where the ontology comes from:

- **derived** (the default): the features the run predicts or that are labelled on the run's rows, each
  applicable to the media types and datasets of the rows where it occurs. Rewritten by every metrics job;
  metrics migration 4 backfilled it for existing runs. On indoor-85 a row then gets TN from the classes
  of its own dataset only, and a text row none from box features.
- **explicit**: :func:`set_ontology` ``(ws, run, features)`` with feature names (media types by kind:
  spatial kinds apply to images, NER to text, classifications to both) or a mapping name -> media types,
  and optional ``datasets`` (names) that every listed feature is restricted to. ``set_ontology(ws, run,
  None)`` goes back to the derived one. Labels and predictions of features outside an explicit ontology
  still count as TP / FP / FN (the matching does not change); they only give no TN.

``ontology(ws, run) -> Ontology`` reads it (``features``: ``OntologyFeature`` with feature_id, feature,
kind, media_types, datasets (names, or None: any); ``explicit``).

Per feature (:func:`slicewise.metrics.feature_metrics`, ``FeatureRow.tn``): the rows (of the view) where
the feature is applicable and neither labelled nor predicted at c.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from slicewise.errors import MetricsError, NotFoundError
from slicewise.metrics.schema import DERIVED_ONTOLOGY_DISTINCT_SQL
from slicewise.types.kinds import SPATIAL_KINDS, Kind, MediaType

if TYPE_CHECKING:
    from slicewise.metrics.engine import RunRef
    from slicewise.workspace import Workspace

MEDIA = tuple(m.value for m in MediaType)


@dataclass(frozen=True)
class OntologyFeature:
    feature_id: int
    feature: str
    kind: str
    media_types: tuple[str, ...]
    datasets: tuple[str, ...] | None  # None: every dataset

    def to_dict(self) -> dict[str, Any]:
        return {"feature_id": self.feature_id, "feature": self.feature, "kind": self.kind,
                "media_types": list(self.media_types), "datasets": None if self.datasets is None else list(self.datasets)}


@dataclass(frozen=True)
class Ontology:
    run_id: int
    features: tuple[OntologyFeature, ...]
    explicit: bool

    def __iter__(self) -> Any:
        return iter(self.features)

    def __len__(self) -> int:
        return len(self.features)

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "explicit": self.explicit, "features": [f.to_dict() for f in self.features]}


def rederive(con: Any, run_id: int) -> None:
    """Inside a write transaction: rewrite a run's derived ontology (an explicit one stays)."""
    explicit = con.execute("SELECT count(*) FROM run_ontology WHERE run_id = ? AND explicit", [run_id]).fetchone()[0]
    if explicit:
        return
    con.execute("DELETE FROM run_ontology WHERE run_id = ?", [run_id])
    con.execute("INSERT INTO run_ontology " + DERIVED_ONTOLOGY_DISTINCT_SQL.format(run="run_id = ?"), [run_id])


def ontology(ws: Workspace, run: RunRef) -> Ontology:
    """The run's ontology (derived until :func:`set_ontology` sets one)."""
    from slicewise.metrics.engine import get_run

    r = get_run(ws, run)
    cur = ws.store.cursor()
    names = {int(i): str(n) for i, n in cur.execute("SELECT id, name FROM datasets").fetchall()}
    rows = cur.execute("""SELECT o.feature_id, f.name, f.kind, o.media_types, o.datasets, o.explicit
                          FROM run_ontology o JOIN features f ON f.id = o.feature_id WHERE o.run_id = ?
                          ORDER BY f.name""", [r.id]).fetchall()
    feats = tuple(OntologyFeature(int(fid), str(n), str(k), tuple(m), None if d is None else
                                  tuple(sorted(names.get(int(x), str(x)) for x in d))) for fid, n, k, m, d, _ in rows)
    return Ontology(r.id, feats, any(bool(x[5]) for x in rows))


def default_media(kind: str) -> tuple[str, ...]:
    """The media types a feature of ``kind`` can be on: spatial kinds images, NER text, classifications both."""
    k = Kind(kind)
    if k in SPATIAL_KINDS:
        return (MediaType.IMAGE.value,)
    if k is Kind.NER:
        return (MediaType.TEXT.value,)
    return MEDIA


def set_ontology(ws: Workspace, run: RunRef, features: Sequence[str] | Mapping[str, Sequence[str]] | None, *,
                 datasets: Sequence[str] | None = None) -> Ontology:
    """Set a run's ontology: feature names (media types by kind, see :func:`default_media`) or a mapping
    feature name -> media types; ``datasets`` restricts every listed feature to those datasets (by name).
    ``None`` goes back to the ontology derived from the run's predictions and labels."""
    from slicewise.metrics.engine import get_run

    r = get_run(ws, run)
    where = f"run {r.ref} ontology"
    if features is None:
        with ws.store.transaction() as con:
            con.execute("DELETE FROM run_ontology WHERE run_id = ?", [r.id])
            rederive(con, r.id)
            ws.store.touch("runs", run=r.id)
        return ontology(ws, r)
    if isinstance(features, str):
        raise MetricsError("features must be a list of feature names, not one string", where=where,
                           fix=f"pass [{features!r}]")
    by_name = {f.name: f for f in ws.features()}
    spec: dict[str, tuple[str, ...]] = {}
    items = features.items() if isinstance(features, Mapping) else ((n, None) for n in features)
    for name, media in items:
        f = by_name.get(name)
        if f is None:
            from slicewise.query.fields import did_you_mean

            raise NotFoundError(f"no feature named {name!r}", where=where,
                                fix=did_you_mean(name, list(by_name)) or "use the names of ws.features()")
        if media is None:
            spec[name] = default_media(str(f.kind))
            continue
        m = (media,) if isinstance(media, str) else tuple(media)
        bad = [x for x in m if x not in MEDIA]
        if bad or not m:
            raise MetricsError(f"feature {name!r}: media types {list(m)} are not among {list(MEDIA)}", where=where,
                               fix="give one or more of: " + ", ".join(MEDIA))
        spec[name] = tuple(sorted(set(m)))
    if not spec:
        raise MetricsError("an ontology needs at least one feature", where=where,
                           fix="list the features the run predicts, or pass None for the derived ontology")
    ds_ids: list[int] | None = None
    if datasets is not None:
        known = {str(n): int(i) for i, n in ws.store.cursor().execute("SELECT id, name FROM datasets").fetchall()}
        missing = [d for d in datasets if d not in known]
        if missing or not datasets:
            raise NotFoundError(f"no dataset(s) {missing}" if missing else "datasets is empty", where=where,
                                fix="use dataset names: " + ", ".join(sorted(known)))
        ds_ids = sorted(known[d] for d in datasets)
    with ws.store.transaction() as con:
        con.execute("DELETE FROM run_ontology WHERE run_id = ?", [r.id])
        for name, media in spec.items():
            con.execute("INSERT INTO run_ontology VALUES (?, ?, ?, ?, TRUE)",
                        [r.id, by_name[name].id, list(media), ds_ids])
        ws.store.touch("runs", run=r.id)
    return ontology(ws, r)


@dataclass(frozen=True)
class Applicability:
    """Which ontology features apply to each row of a run: rows fall in groups (media type, dataset);
    ``matrix[g, j]`` says whether feature ``feature_ids[j]`` (sorted) applies to group g."""

    group: np.ndarray  # group of each run row (rows sorted by id)
    feature_ids: np.ndarray
    matrix: np.ndarray  # (groups, features) bool

    @property
    def n_applicable(self) -> np.ndarray:
        """Applicable features per row."""
        return self.matrix.sum(axis=1)[self.group] if len(self.group) else np.zeros(0, np.int64)

    def applies(self, row_pos: np.ndarray, feature_id: np.ndarray) -> np.ndarray:
        """Whether each (row position, feature id) line is an applicable ontology feature."""
        F = len(self.feature_ids)
        if not F or not len(row_pos):
            return np.zeros(len(row_pos), bool)
        j = np.minimum(np.searchsorted(self.feature_ids, feature_id), F - 1)
        return (self.feature_ids[j] == feature_id) & self.matrix[self.group[row_pos], j]


def topics(run_id: int) -> list[str]:
    """What applicability depends on: the ontology (run settings, rewritten by a job) and the run's rows."""
    return [f"runs:{run_id}", f"metrics:{run_id}", f"run_rows:{run_id}", "rows"]


def applicability(ws: Workspace, run_id: int) -> Applicability:
    """The :class:`Applicability` of a run's ontology to its rows (remembered by the workspace)."""
    def look() -> Applicability:
        cur = ws.store.cursor()
        groups = cur.execute("""SELECT DISTINCT d.media_type, d.dataset_id FROM run_rows rr
                                JOIN data_rows d ON d.id = rr.data_row_id WHERE rr.run_id = ?
                                ORDER BY 1, 2""", [run_id]).fetchall()
        gid = cur.execute("""WITH g AS (SELECT DISTINCT d.media_type, d.dataset_id FROM run_rows rr
                                        JOIN data_rows d ON d.id = rr.data_row_id WHERE rr.run_id = ?),
                                  gi AS (SELECT *, row_number() OVER (ORDER BY media_type, dataset_id) - 1 AS gid FROM g)
                             SELECT gi.gid FROM run_rows rr JOIN data_rows d ON d.id = rr.data_row_id
                             JOIN gi ON gi.media_type = d.media_type AND gi.dataset_id = d.dataset_id
                             WHERE rr.run_id = ? ORDER BY rr.data_row_id""", [run_id, run_id]).fetchnumpy()["gid"]
        onto = cur.execute("SELECT feature_id, media_types, datasets FROM run_ontology WHERE run_id = ? "
                           "ORDER BY feature_id", [run_id]).fetchall()
        fids = np.array([int(o[0]) for o in onto], np.int64)
        m = np.zeros((len(groups), len(onto)), bool)
        for g, (media, ds) in enumerate(groups):
            for j, (_, fm, fd) in enumerate(onto):
                m[g, j] = media in fm and (fd is None or ds in fd)
        return Applicability(np.asarray(gid, np.int64), fids, m)

    return ws.state.memo(("ontology-applicability", run_id), topics(run_id), look)


def feature_tn_sql(run_id: int, rf_table: str, rows_clause: str) -> str:
    """SQL of (feature_id, tn) for a run's ontology over its rows (``rows_clause``, with its parameters,
    restricting ``rr.data_row_id``): rows where the feature applies, less
    those where it is labelled or predicted (the lines of the per-(row, feature) table ``rf_table``)."""
    return f"""
WITH rr AS (SELECT rr.data_row_id AS id, d.media_type, d.dataset_id FROM run_rows rr
            JOIN data_rows d ON d.id = rr.data_row_id WHERE rr.run_id = {int(run_id)} {rows_clause}),
o AS (SELECT * FROM run_ontology WHERE run_id = {int(run_id)}),
g AS (SELECT media_type, dataset_id, count(*) AS n FROM rr GROUP BY ALL),
appl AS (SELECT o.feature_id, sum(g.n) AS n FROM g JOIN o ON list_contains(o.media_types, g.media_type)
         AND (o.datasets IS NULL OR list_contains(o.datasets, g.dataset_id)) GROUP BY 1),
pres AS (SELECT x.feature_id, count(*) AS n FROM {rf_table} x JOIN rr ON rr.id = x.data_row_id
         JOIN o ON o.feature_id = x.feature_id AND list_contains(o.media_types, rr.media_type)
         AND (o.datasets IS NULL OR list_contains(o.datasets, rr.dataset_id)) GROUP BY 1)
SELECT appl.feature_id, (appl.n - coalesce(pres.n, 0))::BIGINT AS tn FROM appl LEFT JOIN pres USING (feature_id)"""
