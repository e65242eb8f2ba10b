"""The input spec: where each canonical table comes from and how its agency columns and codes map onto the
canonical ones (``docs/tables.md``, "Inputs")."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError

from ..errors import ConfigError
from ..options import FileFormat
from ..schema import TABLES
from .base import StrictModel, format_validation_error, load_yaml


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


def load_input_spec(path: Path) -> InputSpec:
    """Read an input spec YAML (e.g. ``mapping.yaml`` from ``synth``) with paths resolved against its folder."""
    path = Path(path)
    data = load_yaml(path)
    try:
        spec = InputSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path))) from exc
    return spec.resolved(path.parent)
