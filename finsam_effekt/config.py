"""Configuration models (pydantic). A config key is read in exactly one place: its model here.

This module starts with the *input spec*: where each canonical table comes from and how its agency columns and
codes map onto the canonical ones (see ``docs/tables.md``). The analysis config builds on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ConfigError
from .schema import TABLES

FileFormat = Literal["auto", "parquet", "csv", "sas", "spss", "stata"]


class StrictModel(BaseModel):
    """Base for config models: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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
        default_factory=dict, description="canonical column -> {agency code -> canonical code}"
    )


class InputSpec(StrictModel):
    """The input files of an analysis: one :class:`InputTable` per canonical table."""

    base_dir: Path = Path(".")
    tables: dict[str, InputTable]

    def model_post_init(self, __context: object) -> None:
        unknown = sorted(set(self.tables) - set(TABLES))
        if unknown:
            raise ValueError(f"unknown table(s) {unknown}; known tables are {sorted(TABLES)}")

    def resolved(self, root: Path) -> InputSpec:
        """A copy whose paths are absolute, relative paths taken from ``root / base_dir``."""
        base = (root / self.base_dir).resolve() if not self.base_dir.is_absolute() else self.base_dir
        tables = {
            name: t.model_copy(update={"path": t.path if t.path.is_absolute() else (base / t.path).resolve()})
            for name, t in self.tables.items()
        }
        return self.model_copy(update={"base_dir": base, "tables": tables})


def _format_validation_error(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"{source}: {loc}: {e['msg']}")
    return "\n".join(lines)


def load_yaml(path: Path) -> dict:
    """Parse a YAML mapping, raising :class:`ConfigError` naming the file on failure."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    return data


def load_input_spec(path: Path) -> InputSpec:
    """Read an input spec YAML (e.g. ``mapping.yaml`` from ``synth``) with paths resolved against its folder."""
    path = Path(path)
    data = load_yaml(path)
    try:
        spec = InputSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, str(path))) from exc
    return spec.resolved(path.parent)
