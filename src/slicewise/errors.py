"""One exception hierarchy for slicewise.

Every error says *what* is wrong, *where* (file, line or record, field) and *how to fix it*.
Third-party failures (DuckDB, JSON parsers, pycocotools) are caught at the boundary and re-raised
as one of these, so callers need to catch only :class:`SlicewiseError`.

>>> err = ValidationError([Problem("bad box", location="a.json:3", field="bbox", fix="use w > 0")])
>>> print(err)
1 invalid record:
  a.json:3 [bbox]: bad box (fix: use w > 0)
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "SlicewiseError",
    "Problem",
    "ValidationError",
    "NotFoundError",
    "ConflictError",
    "LimitError",
    "StoreError",
    "BusyError",
    "ReadOnlyError",
    "DiskFullError",
    "RecoveryError",
    "Interrupted",
    "QueryError",
    "MetricsError",
    "did_you_mean",
]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one record."""

    reason: str
    location: str = ""  # file:line, file#record, or a key
    field: str = ""
    fix: str = ""
    severity: str = "error"  # "error" rejects the record; "warning" keeps it

    def __str__(self) -> str:
        where = self.location or "input"
        fld = f" [{self.field}]" if self.field else ""
        fix = f" (fix: {self.fix})" if self.fix else ""
        return f"{where}{fld}: {self.reason}{fix}"


class SlicewiseError(Exception):
    """Base of every error slicewise raises on purpose."""

    def __init__(self, message: str, *, where: str = "", fix: str = "") -> None:
        self.message = message
        self.where = where
        self.fix = fix
        super().__init__(self._render())

    def _render(self) -> str:
        out = f"{self.where}: {self.message}" if self.where else self.message
        if self.fix:
            out += f" (fix: {self.fix})"
        return out


class ValidationError(SlicewiseError):
    """Input records that cannot be accepted. Holds one :class:`Problem` per bad record."""

    max_shown = 20

    def __init__(self, problems: list[Problem] | Problem, *, summary: str = "") -> None:
        self.problems: list[Problem] = [problems] if isinstance(problems, Problem) else list(problems)
        n = len(self.problems)
        head = summary or f"{n} invalid record{'s' if n != 1 else ''}:"
        lines = [head] + [f"  {p}" for p in self.problems[: self.max_shown]]
        if n > self.max_shown:
            lines.append(f"  ... and {n - self.max_shown} more (use --skip-invalid to import the rest)")
        super().__init__("\n".join(lines))


class NotFoundError(SlicewiseError):
    """A named or numbered thing (dataset, data row, feature, run, slice) does not exist."""


class ConflictError(SlicewiseError):
    """The operation clashes with what is stored (duplicate name, kind mismatch...)."""


class LimitError(SlicewiseError):
    """A documented limit would be exceeded (slice count, page size...)."""


class StoreError(SlicewiseError):
    """The workspace file cannot be opened, migrated or written."""


class BusyError(StoreError):
    """Another process holds the workspace file (DuckDB: one process per file)."""


class ReadOnlyError(StoreError):
    """The workspace's file or folder cannot be written (permissions, a read-only file system)."""


class DiskFullError(StoreError):
    """A write ran out of room: the disk is full or the process's file size limit was reached."""


class RecoveryError(StoreError):
    """The workspace holds the partial trace of an interrupted write that could not be rolled back by itself
    (see :mod:`slicewise.store.ledger`); the message says what happened and how to recover."""


class Interrupted(SlicewiseError):
    """The user interrupted the operation (Ctrl-C); what it was writing was rolled back."""


class QueryError(SlicewiseError):
    """A filter or sort that cannot be parsed or compiled."""


class MetricsError(SlicewiseError):
    """Metrics cannot be computed for a run (incomparable kinds, empty run, bad grids)."""


def did_you_mean(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """The 'fix' text naming the closest valid names, or '' when none is close.

    >>> did_you_mean("recal", ["recall", "precision"])
    "did you mean 'recall'?"
    """
    import difflib

    close = difflib.get_close_matches(str(name), list(choices), n=3)
    return ("did you mean " + " or ".join(map(repr, close)) + "?") if close else ""


@dataclass
class Report:
    """Collects problems while validating a batch; shared by importers and the SDK."""

    problems: list[Problem] = field(default_factory=list)

    def error(self, reason: str, location: str = "", field: str = "", fix: str = "") -> None:
        self.problems.append(Problem(reason, location, field, fix, "error"))

    def warn(self, reason: str, location: str = "", field: str = "", fix: str = "") -> None:
        self.problems.append(Problem(reason, location, field, fix, "warning"))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]
