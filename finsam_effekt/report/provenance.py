"""Provenance of a run: ``manifest.json`` (config, input hashes, versions, seed, timings) and atomic output.

:func:`atomic_output_dir` makes a run all-or-nothing: the outputs are written into a temporary sibling directory
that replaces the output directory only when every step succeeded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError


def sha256_path(path: Path) -> str:
    """SHA-256 of a file, or of a directory's files (sorted relative names and contents)."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode("utf-8") + b"\0")
        with f.open("rb") as fh:
            for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def package_versions() -> dict[str, str]:
    """Versions of the package, Python and the runtime dependencies."""
    import platform
    from importlib import metadata

    names = [
        "finsam_effekt",
        "numpy",
        "pandas",
        "scipy",
        "statsmodels",
        "scikit-learn",
        "linearmodels",
        "pyreadstat",
        "pyarrow",
        "duckdb",
        "pydantic",
        "pyyaml",
        "matplotlib",
        "openpyxl",
        "jinja2",
    ]
    out = {"python": platform.python_version()}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = "not installed"
    return out


def write_manifest(
    out_dir: Path,
    *,
    config: Mapping[str, Any],
    config_hash: str,
    inputs: Mapping[str, Path],
    seed: int,
    timings: Mapping[str, float],
    rows: Mapping[str, int],
    outputs: Sequence[Path] = (),
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """``manifest.json``: config and its hash, SHA-256 of every input, versions, seed, timings, rows per stage.

    Everything but ``timings_seconds`` is identical between two runs of the same config on the same inputs.
    """
    out_dir = Path(out_dir)
    manifest = {
        "config": dict(config),
        "config_sha256": config_hash,
        "inputs": {name: {"path": str(p), "sha256": sha256_path(p)} for name, p in sorted(inputs.items())},
        "versions": package_versions(),
        "seed": seed,
        "rows": {k: int(v) for k, v in rows.items()},
        "outputs": sorted(str(Path(p).relative_to(out_dir)) for p in outputs),
        "timings_seconds": {k: round(float(v), 3) for k, v in timings.items()},
        **(dict(extra) if extra else {}),
    }
    path = out_dir / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    return path


@contextlib.contextmanager
def atomic_output_dir(out: Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling directory of ``out``; rename it to ``out`` only when the block succeeds.

    A failed block removes the temporary directory, so a failed run leaves no ``out``. An existing ``out`` is
    replaced only with ``force`` (it is removed just before the rename); without it :class:`ConfigError`
    is raised before anything is written.
    """
    out = Path(out).resolve()
    if out.exists() and not force:
        raise ConfigError(f"{out}: output directory exists; use --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)
