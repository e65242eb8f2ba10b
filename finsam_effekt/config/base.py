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


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping (YAML itself lets the last one win
    silently, so a second ``disclosure_threshold:`` further down would quietly replace the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[object, int] = {}
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} is given twice (lines {seen[key]} and {line}); keep one",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def read_text(path: Path, what: str = "file") -> str:
    """The text of a UTF-8 file (a byte-order mark is allowed), or :class:`ConfigError` naming the file, the first
    byte that is not UTF-8 and the fix."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: {what} not found")
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        byte = raw[exc.start]
        hint = (
            " (it looks like Latin-1/Windows-1252, as some Swedish editors save å, ä, ö)"
            if byte in (0xE5, 0xE4, 0xF6, 0xC5, 0xC4, 0xD6)
            else ""
        )
        raise ConfigError(
            f"{path}: not UTF-8 text: byte 0x{byte:02X} on line {line}{hint}; save the file as UTF-8 and try again"
        ) from None


def load_yaml(path: Path) -> dict:
    """Parse a YAML mapping (UTF-8, every key once), raising :class:`ConfigError` naming the file on failure."""
    path = Path(path)
    text = read_text(path, "config file")
    if not text.strip():
        raise ConfigError(
            f"{path}: the file is empty; expected a mapping of keys (see configs/analysis_template.yaml)"
        )
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.constructor.ConstructorError as exc:
        if exc.problem and "given twice" in exc.problem:
            raise ConfigError(f"{path}: {exc.problem}") from None
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    return data
