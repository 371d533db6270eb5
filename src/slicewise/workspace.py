"""The workspace: the SDK's entry point. The CLI and the server call these same methods.

>>> import tempfile, os, slicewise
>>> ws = slicewise.open(os.path.join(tempfile.mkdtemp(), "ws.duckdb"))
>>> ds = ws.create_dataset("pets")
>>> ws.add_data_rows("pets", [{"global_key": "img1", "row_data": "img1.jpg", "width": 64, "height": 48,
...                            "split": "valid", "metadata": {"camera": "cam-02"}}]).inserted
1
>>> _ = ws.create_feature("cat", "bbox")
>>> ws.add_annotations([{"data_row": "img1", "feature": "cat", "bbox": [1, 2, 10, 10]}]).inserted
1
>>> run = ws.create_run("detector", "v1", config={"epochs": 3})
>>> ws.add_predictions(run, [{"data_row": "img1", "feature": "cat", "bbox": [1, 2, 9, 10],
...                           "confidence": 0.8}]).inserted
1
>>> ws.counts()["predictions"], run.ref
(1, 'detector/v1')
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from slicewise.errors import ConflictError, NotFoundError, Problem, Report, ValidationError, did_you_mean
from slicewise.io.media import is_remote, local_path
from slicewise.state import State
from slicewise.store import Store
from slicewise.store.database import Step
from slicewise.store.objects import check_objects, ensure_run_rows, read_objects, write_objects
from slicewise.store.objects import utc_now as _now
from slicewise.types.domain import DataRow, Dataset, Feature, Model, ModelRun
from slicewise.types.frame import ObjectFrame
from slicewise.types.kinds import Kind, MediaType, MetadataKind, Split, parse_enum
from slicewise.types.metadata import coerce as _coerce_metadata
from slicewise.types.metadata import infer_kind as _infer_metadata_kind

ObjectsIn = ObjectFrame | Iterable[Mapping[str, Any]]
__all__ = ["Workspace", "WriteResult", "open"]


@dataclass
class WriteResult:
    """What a write did: counts, the problems of rejected records, and warnings."""

    inserted: int = 0
    skipped: int = 0  # already present (idempotent re-import)
    replaced: int = 0
    rejected: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def merge(self, other: WriteResult) -> WriteResult:
        return WriteResult(self.inserted + other.inserted, self.skipped + other.skipped,
                           self.replaced + other.replaced, self.rejected + other.rejected,
                           self.warnings + other.warnings)


class Workspace:
    """One DuckDB file holding datasets, data rows, the ontology, ground truth, models and runs."""

    def __init__(self, path: str | Path, *, read_only: bool = False, wait: float = 0.0,
                 on_wait: Callable[[str], None] | None = None) -> None:
        self.store = Store(path, read_only=read_only, wait=wait, on_wait=on_wait, areas=schema_areas())
        self.path = self.store.path
        #: every cache of this workspace (row caches, metric levels, memoised catalogs...); see slicewise.state
        self.state = State(self.store)
        self.store.on_commit = self.state.publish
        if self.store.unclean and not read_only:  # the last writer died: a metrics job it ran is not running
            from slicewise.metrics.engine import mark_interrupted

            mark_interrupted(self)

    def close(self) -> None:
        """Drop this workspace's caches and close the file."""
        self.state.close()
        self.store.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Workspace({str(self.path)!r})"

    def sql(self, query: str, params: Sequence[Any] | None = None) -> Any:
        """Run a read-only SQL query on a fresh cursor; returns a DuckDB relation result."""
        return self.store.cursor().execute(query, params or [])

    def counts(self) -> dict[str, int]:
        cur = self.store.cursor()
        tables = ["datasets", "data_rows", "features", "annotations", "models", "model_runs", "predictions", "tags"]
        return {t: int(cur.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in tables}  # type: ignore[index]

    # -- datasets ----------------------------------------------------------------------------
    def create_dataset(self, name: str, description: str | None = None, *, exist_ok: bool = False) -> Dataset:
        name = _name(name, "dataset")
        with self.store.transaction() as con:
            found = con.execute("SELECT id FROM datasets WHERE name = ?", [name]).fetchone()
            if found:
                if exist_ok:
                    return self.dataset(name)
                raise ConflictError(f"dataset {name!r} already exists", fix="pick another name or pass exist_ok=True")
            con.execute("INSERT INTO datasets VALUES (?, ?, ?, ?)",
                        [self.store.next_id("datasets"), name, description, _now()])
            self.store.touch("datasets")
        return self.dataset(name)

    def dataset(self, name: str) -> Dataset:
        row = self.sql("SELECT id, name, description, created_at FROM datasets WHERE name = ?", [name]).fetchone()
        if not row:
            raise NotFoundError(f"no dataset named {name!r}", fix=did_you_mean(name, [d.name for d in self.datasets()]))
        return Dataset(id=row[0], name=row[1], description=row[2], created_at=row[3])

    def datasets(self) -> list[Dataset]:
        rows = self.sql("SELECT id, name, description, created_at FROM datasets ORDER BY id").fetchall()
        return [Dataset(id=r[0], name=r[1], description=r[2], created_at=r[3]) for r in rows]

    # -- metadata schema ---------------------------------------------------------------------
    def define_metadata(self, name: str, kind: str | MetadataKind, options: Sequence[str] | None = None) -> None:
        """Declare a typed metadata field. ``enum`` fields need their options."""
        mk = parse_enum(MetadataKind, str(kind), "metadata kind")
        name = _name(name, "metadata field", pattern_ok=True)
        if mk is MetadataKind.ENUM and not options:
            raise ValidationError(Problem("an enum field needs its options", field=name, fix="pass options=[...]"))
        with self.store.transaction() as con:
            have = con.execute("SELECT kind FROM metadata_fields WHERE name = ?", [name]).fetchone()
            if have and have[0] != mk.value:
                raise ConflictError(f"metadata field {name!r} is already a {have[0]} field", where=name,
                                    fix="use another name")
            con.execute("INSERT OR REPLACE INTO metadata_fields VALUES (?, ?, ?)",
                        [name, mk.value, list(options) if options else None])
            self.store.touch("metadata_fields")

    def metadata_fields(self) -> dict[str, dict[str, Any]]:
        rows = self.sql("SELECT name, kind, options FROM metadata_fields ORDER BY name").fetchall()
        return {r[0]: {"kind": r[1], "options": r[2]} for r in rows}

    # -- data rows ---------------------------------------------------------------------------
    def add_data_rows(self, dataset: str, rows: Iterable[Mapping[str, Any]], *, skip_invalid: bool = False,
                      on_progress: Any = None, media_roots: Sequence[str | Path] | None = None) -> WriteResult:
        """Add data rows to a dataset (created if missing). Rows whose global key exists are skipped.

        Each row: ``global_key``, ``row_data`` (a path/URI, or the text itself for text rows),
        optional ``media_type`` (image|text, default image), ``width``, ``height``, ``split``,
        ``metadata`` (dict; fields not yet declared are declared from the value's type), ``tags``.

        ``media_roots``: the folders the new image rows' files lie in, recorded as the dataset's media
        roots (see :meth:`media_roots`); by default the folder of each new local image row (the caller
        of the SDK names its files itself; importers of untrusted files pass their images folder).
        """
        rows = list(rows)
        rep = Report()
        fields_known = self.metadata_fields()
        new_fields: dict[str, str] = {}
        keys_seen: set[str] = set()
        good: list[dict[str, Any]] = []
        media_types, splits = {m.value for m in MediaType}, {s.value for s in Split}
        for i, r in enumerate(rows):
            loc = str(r.get("location") or f"row {i}")
            n_before = len(rep.errors)
            key = r.get("global_key")
            if key is None or str(key) == "":
                rep.error("missing global key", loc, "global_key", "give every data row a unique global_key")
                continue
            key = str(key)
            if key in keys_seen:
                rep.error(f"duplicate global key {key!r} in this batch", loc, "global_key", "make global keys unique")
                continue
            keys_seen.add(key)
            if r.get("row_data") in (None, ""):
                rep.error("missing row_data", loc, "row_data", "give the image path/URI, or the text")
            mt = str(r.get("media_type") or "image").lower()
            if mt not in media_types:
                rep.error(f"unknown media type {mt!r}", loc, "media_type", "use image or text")
            split = str(r.get("split") or "none").lower()
            if split not in splits:
                rep.error(f"unknown split {split!r}", loc, "split", "use train, valid, test or none")
            md = {}
            for fname, value in (r.get("metadata") or {}).items():
                kind = (fields_known.get(fname) or {}).get("kind") or new_fields.get(fname)
                if kind is None:
                    kind = new_fields[fname] = _infer_metadata_kind(value)
                ok, typed = _coerce_metadata(value, kind, (fields_known.get(fname) or {}).get("options"))
                if not ok:
                    rep.error(f"{value!r} is not a valid {kind} value", loc, f"metadata.{fname}", typed)
                else:
                    md[fname] = (kind, typed)
            if len(rep.errors) == n_before:
                good.append({"key": key, "row_data": str(r["row_data"]), "media_type": mt,
                             "width": r.get("width"), "height": r.get("height"), "split": split,
                             "metadata": md, "tags": list(r.get("tags") or [])})
        if rep.errors and not skip_invalid:
            raise ValidationError(rep.errors)
        result = WriteResult(rejected=rep.errors, warnings=rep.warnings)
        with self.store.transaction() as con:
            ds = self._dataset_id(con, dataset)
            existing = self._ids_for_keys(con, [g["key"] for g in good])
            fresh = [g for g in good if g["key"] not in existing]
            result.skipped = len(good) - len(fresh)
            for fname, kind in new_fields.items():
                con.execute("INSERT OR IGNORE INTO metadata_fields VALUES (?, ?, NULL)", [fname, kind])
            if new_fields:
                self.store.touch("metadata_fields")
            if fresh:
                start = self.store.next_id("data_rows")
                ids = np.arange(start, start + len(fresh), dtype=np.int64)
                now = _now()
                self.store.insert_arrow("data_rows", pa.table({
                    "id": ids, "global_key": [g["key"] for g in fresh], "dataset_id": pa.array([ds] * len(fresh), pa.int32()),
                    "media_type": [g["media_type"] for g in fresh], "row_data": [g["row_data"] for g in fresh],
                    "width": pa.array([g["width"] for g in fresh], pa.int32()),
                    "height": pa.array([g["height"] for g in fresh], pa.int32()),
                    "split": [g["split"] for g in fresh], "label_rev": pa.array([0] * len(fresh), pa.int32()),
                    "created_at": pa.array([now] * len(fresh), pa.timestamp("us")),
                }))
                self._write_metadata(con, [(int(i), g["metadata"]) for i, g in zip(ids, fresh, strict=True)])
                self._write_tags(con, [(int(i), t) for i, g in zip(ids, fresh, strict=True) for t in g["tags"]])
                self.store.touch("rows", rows=ids)
                local = [g["row_data"] for g in fresh if g["media_type"] == "image" and not is_remote(g["row_data"])]
                if local:
                    roots = media_roots if media_roots is not None else [
                        os.path.dirname(os.path.normpath(local_path(p))) for p in local]
                    self._add_media_roots(con, ds, roots)
            result.inserted = len(fresh)
        return result

    # -- media roots -------------------------------------------------------------------------
    def media_roots(self, dataset: str) -> list[str]:
        """The folders the media files of ``dataset`` may be served from: absolute paths, or relative to
        the workspace's folder. Importers record their images folder (see :mod:`slicewise.io.media`);
        the server serves a row's file only when its real path lies inside one of them."""
        ds = self.dataset(dataset)
        return [r for (r,) in self.store.cursor().execute(
            "SELECT root FROM media_roots WHERE dataset_id = ? ORDER BY root", [ds.id]).fetchall()]

    def add_media_roots(self, dataset: str, roots: Sequence[str | Path]) -> list[str]:
        """Record folders as media roots of ``dataset`` (e.g. after moving its images); returns its roots.
        A folder inside a root it already has is not recorded again."""
        self.dataset(dataset)
        with self.store.transaction() as con:
            self._add_media_roots(con, self._dataset_id(con, dataset), roots)
        return self.media_roots(dataset)

    def _add_media_roots(self, con: Any, ds: int, roots: Sequence[str | Path]) -> None:
        have = [r for (r,) in con.execute("SELECT root FROM media_roots WHERE dataset_id = ?", [ds]).fetchall()]
        new: list[str] = []
        for raw in sorted({os.path.normpath(str(r)) if str(r) else "." for r in roots}, key=len):
            if raw == os.sep:
                raise ValidationError(Problem("the file system's root cannot be a media root", str(raw), "root",
                                              "name the folder that holds the images"))
            if not any(raw == h or (h == "." and not os.path.isabs(raw) and not raw.startswith(".."))
                       or raw.startswith(h.rstrip(os.sep) + os.sep) for h in have + new):
                new.append(raw)
        if new:
            now = _now()
            con.executemany("INSERT INTO media_roots VALUES (?, ?, ?)", [[ds, r, now] for r in new])
            self.store.touch("datasets")

    def data_row(self, global_key: str) -> DataRow:
        rows = self.data_rows(keys=[global_key])
        if not rows:
            raise NotFoundError(f"no data row with global key {global_key!r}")
        return rows[0]

    def data_rows(self, *, dataset: str | None = None, keys: Sequence[str] | None = None, ids: Sequence[int] | None = None,
                  limit: int | None = None, offset: int = 0) -> list[DataRow]:
        """Data rows with their metadata and tags, in id order (or the order of ``keys``/``ids``)."""
        where: list[str] = ["TRUE"]
        params: list[Any] = []
        if dataset is not None:
            where.append("r.dataset_id = ?")
            params.append(self.dataset(dataset).id)
        if keys is not None:
            where.append("r.global_key IN (SELECT unnest(?))")
            params.append(list(keys))
        if ids is not None:
            where.append("r.id IN (SELECT unnest(?))")
            params.append([int(i) for i in ids])
        lim = f"LIMIT {int(limit)} OFFSET {int(offset)}" if limit is not None else ""
        cur = self.store.cursor()
        # no join here: a lookup by ids or keys then goes through the table's index, not a scan
        rows = cur.execute(f"""
            SELECT r.id, r.global_key, r.dataset_id, r.media_type, r.row_data, r.width, r.height, r.split, r.created_at
            FROM data_rows r WHERE {' AND '.join(where)} ORDER BY r.id {lim}""", params).fetchall()
        names = dict(cur.execute("SELECT id, name FROM datasets").fetchall())
        ids_ = [r[0] for r in rows]
        md: dict[int, dict[str, Any]] = {i: {} for i in ids_}
        tags: dict[int, list[str]] = {i: [] for i in ids_}
        if ids_:
            for rid, fname, s, n, t in cur.execute(
                    "SELECT data_row_id, field, value_string, value_number, value_datetime FROM row_metadata "
                    "WHERE data_row_id IN (SELECT unnest(?)) ORDER BY field", [ids_]).fetchall():
                md[rid][fname] = s if s is not None else (n if n is not None else t)
            for rid, tag in cur.execute("SELECT data_row_id, tag FROM tags WHERE data_row_id IN (SELECT unnest(?)) "
                                        "ORDER BY tag", [ids_]).fetchall():
                tags[rid].append(tag)
        out = [DataRow(id=r[0], global_key=r[1], dataset=names[r[2]], media_type=r[3], row_data=r[4], width=r[5],
                       height=r[6], split=r[7], created_at=r[8], metadata=md[r[0]], tags=tags[r[0]]) for r in rows]
        if keys is not None:
            order = {k: i for i, k in enumerate(keys)}
            out.sort(key=lambda d: order.get(d.global_key, 0))
        return out

    def set_split(self, keys: Sequence[str], split: str | Split) -> int:
        sp = parse_enum(Split, str(split), "split")
        with self.store.transaction() as con:
            ids = self._require_keys(con, keys)
            con.execute("UPDATE data_rows SET split = ? WHERE id IN (SELECT unnest(?))", [sp.value, list(ids.values())])
            self.store.touch("split", rows=list(ids.values()))
        return len(ids)

    def set_metadata(self, global_key: str, values: Mapping[str, Any]) -> None:
        """Set (or, with a value of None, remove) metadata fields of one data row."""
        self.update_metadata({global_key: values})

    def update_metadata(self, values_by_key: Mapping[str, Mapping[str, Any]]) -> None:
        known = self.metadata_fields()
        rep = Report()
        typed: list[tuple[str, dict[str, tuple[str, Any]]]] = []
        removals: list[tuple[str, str]] = []
        new_fields: dict[str, str] = {}
        for key, values in values_by_key.items():
            md = {}
            for fname, value in values.items():
                if value is None:
                    removals.append((key, fname))
                    continue
                kind = (known.get(fname) or {}).get("kind") or new_fields.setdefault(fname, _infer_metadata_kind(value))
                ok, v = _coerce_metadata(value, kind, (known.get(fname) or {}).get("options"))
                if ok:
                    md[fname] = (kind, v)
                else:
                    rep.error(f"{value!r} is not a valid {kind} value", key, f"metadata.{fname}", v)
            typed.append((key, md))
        if rep.errors:
            raise ValidationError(rep.errors)
        with self.store.transaction() as con:
            ids = self._require_keys(con, list(values_by_key))
            for fname, kind in new_fields.items():
                con.execute("INSERT OR IGNORE INTO metadata_fields VALUES (?, ?, NULL)", [fname, kind])
            if new_fields:
                self.store.touch("metadata_fields")
            pairs = [(ids[k], f) for k, md in typed for f in md] + [(ids[k], f) for k, f in removals]
            if pairs:
                con.execute("DELETE FROM row_metadata WHERE (data_row_id, field) IN (SELECT unnest(?), unnest(?))",
                            [[p[0] for p in pairs], [p[1] for p in pairs]])
            self._write_metadata(con, [(ids[k], md) for k, md in typed])
            self.store.touch("metadata", rows=list(ids.values()))

    def add_tags(self, keys: Sequence[str], tags: Sequence[str]) -> int:
        """Tag data rows (e.g. ``re-label``). Returns how many (row, tag) pairs were new."""
        tags = [_name(t, "tag", pattern_ok=True) for t in tags]
        with self.store.transaction() as con:
            ids = self._require_keys(con, keys)
            have = set(con.execute("SELECT data_row_id, tag FROM tags WHERE data_row_id IN (SELECT unnest(?))",
                                   [list(ids.values())]).fetchall())
            new = [(i, t) for i in ids.values() for t in tags if (i, t) not in have]
            self._write_tags(con, new)
            self.store.touch("tags", rows=[i for i, _ in new])
        return len(new)

    def remove_tags(self, keys: Sequence[str], tags: Sequence[str]) -> int:
        with self.store.transaction() as con:
            ids = self._require_keys(con, keys)
            n = con.execute("SELECT count(*) FROM tags WHERE data_row_id IN (SELECT unnest(?)) AND tag IN (SELECT unnest(?))",
                            [list(ids.values()), list(tags)]).fetchone()[0]  # type: ignore[index]
            con.execute("DELETE FROM tags WHERE data_row_id IN (SELECT unnest(?)) AND tag IN (SELECT unnest(?))",
                        [list(ids.values()), list(tags)])
            self.store.touch("tags", rows=list(ids.values()))
        return int(n)

    def tags(self) -> dict[str, int]:
        """Every tag with its number of data rows."""
        return dict(self.sql("SELECT tag, count(*) FROM tags GROUP BY tag ORDER BY tag").fetchall())

    # -- ontology ----------------------------------------------------------------------------
    def create_feature(self, name: str, kind: str | Kind, options: Sequence[str] | None = None, *,
                       external_id: str | None = None, exist_ok: bool = False) -> Feature:
        """Add a feature (class) to the ontology. Radio and checklist features may list their options."""
        k = parse_enum(Kind, str(kind), "kind")
        name = _name(name, "feature", pattern_ok=True)
        with self.store.transaction() as con:
            have = con.execute("SELECT kind FROM features WHERE name = ?", [name]).fetchone()
            if have:
                if exist_ok and have[0] == k.value:
                    return self.feature(name)
                raise ConflictError(f"feature {name!r} already exists as a {have[0]}",
                                    fix="pick another name" + (" or pass exist_ok=True" if have[0] == k.value else ""))
            con.execute("INSERT INTO features VALUES (?, ?, ?, ?, ?, ?)",
                        [self.store.next_id("features"), name, k.value, list(options) if options else None,
                         external_id, _now()])
            self.store.touch("features")
        return self.feature(name)

    def feature(self, name: str) -> Feature:
        for f in self.features():
            if f.name == name:
                return f
        raise NotFoundError(f"no feature named {name!r}", fix=did_you_mean(name, [f.name for f in self.features()]))

    def features(self) -> list[Feature]:
        rows = self.sql("SELECT id, name, kind, options, external_id FROM features ORDER BY id").fetchall()
        return [Feature(id=r[0], name=r[1], kind=r[2], options=r[3], external_id=r[4]) for r in rows]

    # -- models and runs ---------------------------------------------------------------------
    def create_model(self, name: str, *, exist_ok: bool = True) -> Model:
        name = _name(name, "model")
        with self.store.transaction() as con:
            if not con.execute("SELECT 1 FROM models WHERE name = ?", [name]).fetchone():
                con.execute("INSERT INTO models VALUES (?, ?, ?)", [self.store.next_id("models"), name, _now()])
                self.store.touch("runs")
            elif not exist_ok:
                raise ConflictError(f"model {name!r} already exists", fix="pick another name")
        row = self.sql("SELECT id, name, created_at FROM models WHERE name = ?", [name]).fetchone()
        return Model(id=row[0], name=row[1], created_at=row[2])

    def models(self) -> list[Model]:
        return [Model(id=r[0], name=r[1], created_at=r[2])
                for r in self.sql("SELECT id, name, created_at FROM models ORDER BY id").fetchall()]

    def create_run(self, model: str, name: str, config: Mapping[str, Any] | None = None, *,
                   exist_ok: bool = False) -> ModelRun:
        """Create a model run (the model is created if missing)."""
        m = self.create_model(model)
        name = _name(name, "run")
        with self.store.transaction() as con:
            if con.execute("SELECT 1 FROM model_runs WHERE model_id = ? AND name = ?", [m.id, name]).fetchone():
                if not exist_ok:
                    raise ConflictError(f"run {model}/{name} already exists", fix="pick another run name or pass exist_ok=True")
            else:
                con.execute("INSERT INTO model_runs VALUES (?, ?, ?, ?, ?)",
                            [self.store.next_id("model_runs"), m.id, name, json.dumps(dict(config or {})), _now()])
                self.store.touch("runs")
        return self.run(f"{model}/{name}")

    def run(self, ref: str | int | ModelRun) -> ModelRun:
        """A run by ``model/run`` reference, by id, or (when the name is unique) by run name alone."""
        if isinstance(ref, ModelRun):
            return ref
        runs = self.runs()
        for r in runs:
            if (isinstance(ref, int) and r.id == ref) or r.ref == ref or str(r.id) == str(ref):
                return r
        same = [r for r in runs if r.name == ref]
        if len(same) == 1:
            return same[0]
        raise NotFoundError(f"no model run {ref!r}" + (" (the name is ambiguous)" if same else ""),
                            fix=did_you_mean(str(ref), [r.ref for r in runs]) or "create it with create_run")

    def runs(self) -> list[ModelRun]:
        """Every model run, by id (remembered until a run or model is added or changed: a page looks its run up
        several times)."""
        return list(self.state.memo(("runs",), ["runs"], self._runs_now))

    def _runs_now(self) -> list[ModelRun]:
        rows = self.sql("""SELECT r.id, m.name, r.name, r.config, r.created_at FROM model_runs r
                           JOIN models m ON m.id = r.model_id ORDER BY r.id""").fetchall()
        return [ModelRun(id=r[0], model=r[1], name=r[2], config=json.loads(r[3]), created_at=r[4]) for r in rows]

    def update_run_config(self, run: str | int | ModelRun, **changes: Any) -> ModelRun:
        """Merge settings into a run's config (e.g. grids); metrics read them when computed."""
        r = self.run(run)
        cfg = {**r.config, **changes}
        with self.store.transaction() as con:
            con.execute("UPDATE model_runs SET config = ? WHERE id = ?", [json.dumps(cfg), r.id])
            self.store.touch("runs", run=r.id)
        return self.run(r.id)

    def add_run_rows(self, run: str | int | ModelRun, keys: Sequence[str], *, skip_unknown: bool = False) -> int:
        """Put data rows in a run even when it has no prediction on them: their labels then count as
        false negatives (and absent features as true negatives). Returns how many rows were new.
        With ``skip_unknown``, keys that are not data rows are ignored instead of refused."""
        r = self.run(run)
        with self.store.transaction() as con:
            ids = self._ids_for_keys(con, list(keys)) if skip_unknown else self._require_keys(con, keys)
            return ensure_run_rows(self.store, r.id, np.array(list(ids.values()), np.int64), bump=False)

    # -- ground truth and predictions ---------------------------------------------------------
    def add_annotations(self, objects: ObjectsIn, *, source: str = "sdk", skip_invalid: bool = False,
                        create_features: bool = False) -> WriteResult:
        """Add ground truth. Objects from the same ``source`` on the same data rows are replaced,
        so re-importing a file is idempotent."""
        return self._add_objects(objects, run=None, source=source, skip_invalid=skip_invalid,
                                 create_features=create_features)

    def add_predictions(self, run: str | int | ModelRun, objects: ObjectsIn, *, source: str = "sdk",
                        skip_invalid: bool = False, create_features: bool = False) -> WriteResult:
        """Add a run's predictions (a missing confidence means 1.0). Same replace rule as annotations."""
        return self._add_objects(objects, run=self.run(run), source=source, skip_invalid=skip_invalid,
                                 create_features=create_features)

    def annotations(self, global_key: str | Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Ground truth as dicts (of one data row, of a list of rows, or all)."""
        return self._objects("annotations", None, global_key)

    def predictions(self, run: str | int | ModelRun, global_key: str | Sequence[str] | None = None) -> list[dict[str, Any]]:
        return self._objects("predictions", self.run(run).id, global_key)

    def delete_predictions(self, run: str | int | ModelRun, keys: Sequence[str] | None = None) -> int:
        r = self.run(run)
        with self.store.transaction() as con:
            cond = "run_id = ?"
            params: list[Any] = [r.id]
            if keys is not None:
                ids = self._require_keys(con, keys)
                cond += " AND data_row_id IN (SELECT unnest(?))"
                params.append(list(ids.values()))
            rows = con.execute(f"SELECT DISTINCT data_row_id FROM predictions WHERE {cond}", params).fetchnumpy()
            n = con.execute(f"SELECT count(*) FROM predictions WHERE {cond}", params).fetchone()[0]  # type: ignore[index]
            con.execute(f"DELETE FROM predictions WHERE {cond}", params)
            ensure_run_rows(self.store, r.id, rows["data_row_id"], bump=True)
            self.store.touch("predictions", run=r.id, rows=rows["data_row_id"])
        return int(n)

    # -- internals ---------------------------------------------------------------------------
    def _add_objects(self, objects: ObjectsIn, *, run: ModelRun | None, source: str, skip_invalid: bool,
                     create_features: bool) -> WriteResult:
        rep = Report()
        frame = objects if isinstance(objects, ObjectFrame) else ObjectFrame.from_records(objects, report=rep)
        checked = check_objects(self.store.cursor(), frame, {f.name: f for f in self.features()}, rep,
                                predictions=run is not None, create_features=create_features)
        if rep.errors and not skip_invalid:
            raise ValidationError(rep.errors)
        result = WriteResult(rejected=rep.errors, warnings=rep.warnings)
        with self.store.transaction():
            result.replaced, result.inserted = write_objects(self.store, checked, run_id=run.id if run else None,
                                                             source=source)
        return result

    def _objects(self, table: str, run_id: int | None, key: str | Sequence[str] | None) -> list[dict[str, Any]]:
        return read_objects(self.store.cursor(), table, run_id, key)

    def _dataset_id(self, con: Any, name: str) -> int:
        row = con.execute("SELECT id FROM datasets WHERE name = ?", [name]).fetchone()
        if row:
            return int(row[0])
        did = self.store.next_id("datasets")
        con.execute("INSERT INTO datasets VALUES (?, ?, NULL, ?)", [did, _name(name, "dataset"), _now()])
        self.store.touch("datasets")
        return did

    def _ids_for_keys(self, con: Any, keys: Sequence[str]) -> dict[str, int]:
        if not keys:
            return {}
        con.register("_sw_keys", pa.table({"k": pa.array(list(keys), pa.string())}))
        try:
            return dict(con.execute("SELECT global_key, id FROM data_rows JOIN _sw_keys ON k = global_key").fetchall())
        finally:
            con.unregister("_sw_keys")

    def _require_keys(self, con: Any, keys: Sequence[str]) -> dict[str, int]:
        ids = self._ids_for_keys(con, list(keys))
        missing = [k for k in keys if k not in ids]
        if missing:
            raise NotFoundError(f"{len(missing)} unknown data row key(s): {', '.join(map(repr, missing[:5]))}",
                                fix="check the global keys")
        return ids

    def _write_metadata(self, con: Any, items: list[tuple[int, dict[str, tuple[str, Any]]]]) -> None:
        rid, fld, s, n, t = [], [], [], [], []
        for i, md in items:
            for fname, (kind, v) in md.items():
                rid.append(i)
                fld.append(fname)
                s.append(v if kind in ("string", "enum") else None)
                n.append(v if kind == "number" else None)
                t.append(v if kind == "datetime" else None)
        if rid:
            self.store.insert_arrow("row_metadata", pa.table({
                "data_row_id": pa.array(rid, pa.int64()), "field": fld, "value_string": pa.array(s, pa.string()),
                "value_number": pa.array(n, pa.float64()), "value_datetime": pa.array(t, pa.timestamp("us"))}))

    def _write_tags(self, con: Any, pairs: list[tuple[int, str]]) -> None:
        if pairs:
            self.store.insert_arrow("tags", pa.table({
                "data_row_id": pa.array([p[0] for p in pairs], pa.int64()), "tag": [p[1] for p in pairs],
                "created_at": pa.array([_now()] * len(pairs), pa.timestamp("us"))}))


def schema_areas() -> dict[str, Sequence[Sequence[Step]]]:
    """Every area's migrations, core first (each area owns its ``schema`` module)."""
    from slicewise.curation import schema as curation_schema
    from slicewise.embeddings import schema as embeddings_schema
    from slicewise.metrics import schema as metrics_schema
    from slicewise.slices import schema as slices_schema
    from slicewise.store import ledger
    from slicewise.store import schema as core_schema

    return {"core": core_schema.MIGRATIONS, ledger.AREA: ledger.MIGRATIONS, "metrics": metrics_schema.MIGRATIONS,
            "slices": slices_schema.MIGRATIONS, "embeddings": embeddings_schema.MIGRATIONS,
            curation_schema.AREA: curation_schema.MIGRATIONS}


def open(path: str | Path, *, read_only: bool = False, wait: float = 0.0,  # noqa: A001
         on_wait: Callable[[str], None] | None = None) -> Workspace:
    """Open the workspace at ``path``, creating it (and migrating it) as needed.

    While another process has the file open (DuckDB allows one), wait up to ``wait`` seconds for it,
    calling ``on_wait(message)`` once, then raise a :class:`StoreError` that names the process (at once
    when it is a ``slicewise serve``: talk to the server, see :mod:`slicewise.discovery`)."""
    return Workspace(path, read_only=read_only, wait=wait, on_wait=on_wait)


def _name(value: str, what: str, *, pattern_ok: bool = False) -> str:
    v = str(value).strip()
    if not v:
        raise ValidationError(Problem(f"{what} name is empty", field="name", fix=f"give the {what} a name"))
    if not pattern_ok and "/" in v:
        raise ValidationError(Problem(f"{what} name {v!r} contains '/'", field="name", fix="'/' separates model and run"))
    return v


