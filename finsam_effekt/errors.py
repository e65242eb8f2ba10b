"""The package's error types.

Every problem with a user's input or config is raised as :class:`InputError` (or :class:`ConfigError`), with the
file, the column, how many rows and up to five example row numbers (never pseudonym values) and a hint. The CLI
turns these into exit code 1 and a one-paragraph message; any other exception is a bug.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Problem:
    """One validation finding about one input table."""

    table: str
    file: str
    column: str | None
    message: str
    n_rows: int = 0
    example_rows: Sequence[int] = field(default_factory=tuple)
    hint: str = ""
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        where = f"{self.file}"
        if self.column:
            where += f", column {self.column!r}"
        text = f"{where}: {self.message}"
        if self.n_rows:
            rows = ", ".join(str(r) for r in list(self.example_rows)[:5])
            text += f" ({self.n_rows} row{'s' if self.n_rows != 1 else ''}"
            text += f"; e.g. row {rows})" if rows else ")"
        if self.hint:
            text += f". {self.hint}"
        return text


class FinsamError(Exception):
    """Base class of the package's own errors."""


class InputError(FinsamError):
    """Raised for unusable input data. ``problems`` lists every finding (errors and warnings)."""

    def __init__(self, message: str, problems: Sequence[Problem] = ()):
        super().__init__(message)
        self.problems = list(problems)


class ConfigError(FinsamError):
    """Raised for an invalid analysis config (unknown key, wrong type, missing file)."""


class OutputError(FinsamError):
    """Raised when the output location cannot or must not be written (it would replace inputs, another run is
    writing there, it is read-only, full or its path too long)."""
