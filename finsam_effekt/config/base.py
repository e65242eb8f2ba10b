"""Shared pieces of the config models: the strict base model, YAML reading and validation-error text."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Strict, StringConstraints, ValidationError

from ..errors import ConfigError


class StrictModel(BaseModel):
    """Base for config models: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


StrictInt = Annotated[int, Strict()]
StrictFloat = Annotated[float, Strict()]
StrictBool = Annotated[bool, Strict()]
Month = Annotated[str, Strict(), StringConstraints(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]


def format_validation_error(err: ValidationError, source: str) -> str:
    """One line per problem of a pydantic validation error: ``source: key.path: message``."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if p not in ("inline", "file")) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see configs/analysis_template.yaml)"
        elif e["type"] == "string_pattern_mismatch" and "." in loc and loc.split(".")[-1] in ("start", "end"):
            msg = f"expected a month as YYYY-MM, got {e['input']!r}"
        lines.append(f"{source}: {loc}: {msg}")
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
