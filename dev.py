#!/usr/bin/env python3
"""Bootstrap and run finsam_effekt with nothing but Python >= 3.11 and pip access.

    python3 dev.py example   # create .venv, install, run the example analysis on the synthetic data
    python3 dev.py test      # create .venv, install with test extras, run the test suite

Each command creates ``.venv`` next to this file when it is missing and (re)installs the package in editable
mode when ``pyproject.toml`` is newer than the last install, so a fresh clone needs no other step.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".finsam_installed"


def _run(cmd: list[str | os.PathLike[str]]) -> int:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.call([str(c) for c in cmd], cwd=ROOT)


def ensure_env() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may be run by an older python3
        sys.exit(f"finsam_effekt needs Python >= 3.11, this is {sys.version.split()[0]}")
    if not PY.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    pyproject = ROOT / "pyproject.toml"
    if STAMP.exists() and STAMP.stat().st_mtime >= pyproject.stat().st_mtime:
        return
    if _run([PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip"]) != 0:
        sys.exit("could not upgrade pip in .venv")
    if _run([PY, "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[test]"]) != 0:
        sys.exit("could not install finsam_effekt into .venv")
    STAMP.write_text("installed\n")


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"example", "test"}:
        print(__doc__)
        return 2
    ensure_env()
    if argv[0] == "test":
        return _run([PY, "-m", "pytest", "-q", *argv[1:]])
    out = ROOT / "out" / "example_synthetic"
    return _run(
        [
            BIN / "finsam-effekt",
            "run",
            ROOT / "analyses" / "example_synthetic" / "config.yaml",
            "--out",
            out,
            "--force",
            *argv[1:],
        ]
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
