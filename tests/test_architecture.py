"""The house rules of docs/architecture.md, checked on the source: file size and purpose line, no private imports
across modules (package and tests), a statically imported pipeline, one definition per vocabulary, and a config
that loads without DuckDB."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "finsam_effekt"
SOURCES = sorted(PACKAGE.rglob("*.py"))
MAX_LINES = 800


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _private_imports(path: Path) -> list[str]:
    """``from X import _name`` and ``X._name`` where X is another module of the package."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    aliases: dict[str, str] = {}  # local name -> package module it refers to
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if not target.startswith("finsam_effekt"):
                continue
            for a in node.names:
                if a.name.startswith("_") and not a.name.startswith("__"):
                    bad.append(f"from {target} import {a.name}")
                aliases[a.asname or a.name] = f"{target}.{a.name}"
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("finsam_effekt"):
                    aliases[a.asname or a.name.split(".")[0]] = a.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            bad.append(f"{node.value.id}.{node.attr}")
    return bad


def test_every_module_is_short_and_states_its_job():
    long, undocumented = [], []
    for p in SOURCES:
        n = len(p.read_text(encoding="utf-8").splitlines())
        if n > MAX_LINES:
            long.append(f"{p.relative_to(ROOT)}: {n} lines")
        doc = ast.get_docstring(ast.parse(p.read_text(encoding="utf-8")))
        if not doc or len(doc.splitlines()[0].strip()) < 10:
            undocumented.append(str(p.relative_to(ROOT)))
    assert not long, long
    assert not undocumented, undocumented


def test_no_module_imports_another_modules_private_name():
    found = {str(p.relative_to(ROOT)): b for p in SOURCES if (b := _private_imports(p))}
    assert not found, found


def test_tests_use_public_names_only():
    found = {
        str(p.relative_to(ROOT)): b
        for p in sorted((ROOT / "tests").glob("*.py"))
        if (b := _private_imports(p))
    }
    assert not found, found


def test_pipeline_imports_its_stages_statically():
    text = "\n".join(p.read_text(encoding="utf-8") for p in (PACKAGE / "pipeline").glob("*.py"))
    assert "importlib" not in text and "import_module" not in text and "__import__" not in text
    assert not re.search(r"getattr\(\s*(mod|module|_module)", text)


def _string_collections(tree: ast.AST) -> list[set[str]]:
    """Every tuple, list or set literal and every ``Literal[...]`` in the code, as the set of its strings."""
    out = []
    for node in ast.walk(tree):
        elts = None
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            elts = node.elts
        elif isinstance(node, ast.Subscript) and getattr(node.value, "id", "") == "Literal":
            sl = node.slice
            elts = sl.elts if isinstance(sl, ast.Tuple) else [sl]
        if elts and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in elts):
            out.append({e.value for e in elts})
    return out


VOCABULARIES = [
    "ESTIMATORS",
    "SE_KINDS",
    "LATER_TREATED",
    "CENSORING_WEIGHTS",
    "M_ORDERS",
    "MEASURES",
    "SUBGROUP_FIELDS",
    "MATCHING_METHODS",
    "DISTANCES",
    "ELIGIBILITY_RULES",
    "FILE_FORMATS",
    "WRITE_FORMATS",
    "PERSISTENCE_KINDS",
    "PERSPECTIVES",
]


@pytest.mark.parametrize("name", VOCABULARIES)
def test_each_vocabulary_is_declared_once(name):
    """Only options.py spells out a whole vocabulary (in code; docstrings may list it)."""
    from finsam_effekt import options

    values = set(getattr(options, name))
    hits = [
        str(p.relative_to(ROOT))
        for p in SOURCES
        if any(values <= c for c in _string_collections(ast.parse(p.read_text(encoding="utf-8"))))
    ]
    assert hits == ["finsam_effekt/options.py"], (name, hits)


def test_loading_a_config_imports_no_duckdb():
    code = "import sys, finsam_effekt.config, finsam_effekt.options; print('duckdb' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"
