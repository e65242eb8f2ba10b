"""Every Python block of the README runs as written, from the repository root."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S)


def test_the_readme_has_python_blocks():
    assert BLOCKS


@pytest.mark.slow
@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_readme_python_block_runs(i, capsys):
    old = Path.cwd()
    os.chdir(ROOT)
    try:
        exec(compile(BLOCKS[i], f"README.md block {i + 1}", "exec"), {"__name__": "__readme__"})
    finally:
        os.chdir(old)
    assert capsys.readouterr().out.strip()  # the block prints its results
