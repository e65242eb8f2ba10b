"""The input spec: where each canonical table comes from and how its agency columns and codes map onto the
canonical ones (``docs/tables.md``, "Inputs").

Every key of the spec is checked here, against the canonical tables of :mod:`finsam_effekt.schema`, so a typo in
a spec is an error naming the key rather than a setting that is silently ignored: ``columns`` must map onto
columns of the table, ``codes`` onto coded columns and their canonical codes, ``plausible`` and ``median_range``
onto columns that have numbers, dates or months.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from ..errors import ConfigError
from ..options import FileFormat
from ..schema import TABLES, UNKNOWN, TableSpec
from .base import StrictModel, format_validation_error, load_yaml

#: What validation does with a number outside its ``plausible`` range: stop with an error naming the rows, or
#: cap it to the range and report the count in a warning (amounts only; dates, months and counts are always errors).
OnImplausible = Literal["error", "cap"]
#: Default share of a person table's distinct pseudonyms that must be found in ``population``
#: (``InputSpec.min_share_in_population``).
DEFAULT_MIN_SHARE_IN_POPULATION: float = 0.5

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
#: Canonical columns that take ``codes`` besides the coded ones: kommun, whose empty cells may map to ``unknown``.
_CODE_LIKE_STR = ("kommun",)


class InputTable(StrictModel):
    """How to read one canonical table from one file (or a directory of Parquet parts)."""

    path: Path
    format: FileFormat = "auto"
    encoding: str = "utf-8"
    separator: str = ","
    decimal: str = "."
    date_format: str = "%Y-%m-%d"
    month_format: str = "%Y-%m"
    columns: dict[str, str] = Field(default_factory=dict, description="agency column name -> canonical name")
    codes: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description='canonical column -> {agency code -> canonical code}; the code "" stands for an empty cell',
    )
    plausible: dict[str, tuple[float, float] | tuple[str, str]] = Field(
        default_factory=dict,
        description="canonical column -> [lowest, highest] plausible value (numbers, YYYY-MM-DD dates or YYYY-MM "
        "months); replaces the default range of that column (io.validate.default_plausible)",
    )
    on_implausible: OnImplausible = Field(
        "error", description="error: values outside `plausible` stop validation; cap: amounts are capped to the "
        "range and counted in a warning"
    )  # fmt: skip
    median_range: dict[str, tuple[float, float]] = Field(
        default_factory=dict,
        description="canonical column -> [low, high] band for the median positive value (benefit_spells "
        "amount_sek: SEK per nettodag); replaces the default band (io.validate.default_median_range)",
    )


def _check_table(name: str, t: InputTable) -> list[str]:
    """Problems of one table's mapping keys, as ``tables.NAME.KEY: message`` lines."""
    spec: TableSpec = TABLES[name]
    where = f"tables.{name}"
    out = []
    for agency, canonical in t.columns.items():
        if canonical not in spec.names:
            out.append(f"{where}.columns: {agency!r} maps onto {canonical!r}, which is not a column of {name} "
                       f"(its columns: {', '.join(spec.names)})")  # fmt: skip
    for col, mapping in t.codes.items():
        if col not in spec.names:
            out.append(
                f"{where}.codes: {col!r} is not a column of {name} (its columns: {', '.join(spec.names)})"
            )
            continue
        c = spec.column(col)
        if c.kind not in ("code", "codeset") and col not in _CODE_LIKE_STR:
            coded = [
                x.name for x in spec.columns if x.kind in ("code", "codeset") or x.name in _CODE_LIKE_STR
            ]
            out.append(f"{where}.codes: {col!r} has no codes to map (coded columns of {name}: "
                       f"{', '.join(coded) or 'none'})")  # fmt: skip
            continue
        allowed = (UNKNOWN,) if col in _CODE_LIKE_STR else c.codes
        for agency, canonical in mapping.items():
            four_digits = col in _CODE_LIKE_STR and re.fullmatch(r"\d{4}", canonical or "")
            if canonical not in allowed and not four_digits:
                what = "a 4-digit kommun code or 'unknown'" if col in _CODE_LIKE_STR else ", ".join(allowed)
                out.append(f"{where}.codes.{col}: {agency!r} maps onto {canonical!r}, which is not a canonical "
                           f"{col} code ({what})")  # fmt: skip
    for col, rng in t.plausible.items():
        if col not in spec.names or spec.column(col).kind not in ("int", "float", "date", "month"):
            cols = [c.name for c in spec.columns if c.kind in ("int", "float", "date", "month")]
            out.append(f"{where}.plausible: {col!r} is not a column of {name} with numbers, dates or months "
                       f"({', '.join(cols)})")  # fmt: skip
            continue
        kind = spec.column(col).kind
        lo, hi = rng
        if kind in ("int", "float") and not all(isinstance(v, (int, float)) for v in rng):
            out.append(f"{where}.plausible.{col}: expected two numbers [LOWEST, HIGHEST], got {list(rng)}")
        elif kind == "date" and not all(isinstance(v, str) and _is_date(v) for v in rng):
            out.append(
                f"{where}.plausible.{col}: expected two dates [YYYY-MM-DD, YYYY-MM-DD], got {list(rng)}"
            )
        elif kind == "month" and not all(isinstance(v, str) and _MONTH.match(v) for v in rng):
            out.append(f"{where}.plausible.{col}: expected two months [YYYY-MM, YYYY-MM], got {list(rng)}")
        elif lo > hi:
            out.append(f"{where}.plausible.{col}: the lowest value {lo} is above the highest {hi}")
    for col, (lo, hi) in t.median_range.items():
        if col not in spec.names or spec.column(col).kind != "float":
            cols = [c.name for c in spec.columns if c.kind == "float"]
            out.append(
                f"{where}.median_range: {col!r} is not an amount column of {name} ({', '.join(cols) or 'none'})"
            )
        elif lo > hi:
            out.append(f"{where}.median_range.{col}: the low end {lo} is above the high end {hi}")
    return out


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10


class InputSpec(StrictModel):
    """The input files of an analysis: one :class:`InputTable` per canonical table.

    ``min_share_in_population``: the least share of the distinct pseudonyms of a person table (SUS person
    registrations, benefit spells, social assistance, earnings) that must be found in ``population``; below it
    validation stops and names the likely cause (lost leading zeros, numbers written as decimals, another
    pseudonym key).
    """

    base_dir: Path = Path(".")
    tables: dict[str, InputTable]
    min_share_in_population: float = Field(DEFAULT_MIN_SHARE_IN_POPULATION, ge=0, le=1)

    @model_validator(mode="after")
    def _known_tables_and_keys(self) -> InputSpec:
        unknown = sorted(set(self.tables) - set(TABLES))
        if unknown:
            raise ValueError(f"unknown table(s) {unknown}; known tables are {sorted(TABLES)}")
        problems = [p for name, t in self.tables.items() for p in _check_table(name, t)]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def resolved(self, root: Path) -> InputSpec:
        """A copy whose paths are absolute, relative paths taken from ``root / base_dir``."""
        base = (root / self.base_dir).resolve() if not self.base_dir.is_absolute() else self.base_dir
        tables = {
            name: t.model_copy(update={"path": t.path if t.path.is_absolute() else (base / t.path).resolve()})
            for name, t in self.tables.items()
        }
        return self.model_copy(update={"base_dir": base, "tables": tables})


def load_input_spec(path: Path) -> InputSpec:
    """Read an input spec YAML (e.g. ``mapping.yaml`` from ``synth``) with paths resolved against its folder."""
    path = Path(path)
    data = load_yaml(path)
    try:
        spec = InputSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path))) from exc
    return spec.resolved(path.parent)
