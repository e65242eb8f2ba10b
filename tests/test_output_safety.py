"""Outputs can never destroy inputs (issue 17 item 6): dangerous output folders are refused, --force replaces only
a folder a run wrote, a lock keeps a second run out, and an unwritable location is a clear error with nothing left
behind."""

from __future__ import annotations

import errno
import os
import re
import socket
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from finsam_effekt.cli import app
from finsam_effekt.errors import OutputError
from finsam_effekt.report import atomic_output_dir

runner = CliRunner()


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def extract(tmp_path, small_world):
    """An agency-style folder: the register extract in ``extract/data`` and a config in ``extract``."""
    data = tmp_path / "extract" / "data"
    data.mkdir(parents=True)
    for f in small_world.path.iterdir():
        if f.is_file() and f.suffix in (".parquet", ".yaml"):
            (data / f.name).write_bytes(f.read_bytes())
    cfg = tmp_path / "extract" / "config.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "inputs": "data/mapping.yaml",
                "window": {"start": "2019-01", "end": "2019-06"},
                "cache": {"enabled": False},
            }
        ),  # fmt: skip
        encoding="utf-8",
    )
    return cfg


@pytest.mark.parametrize(
    "out, message",
    [
        ("extract/data", r"--out .*data (is|contains) .*data.*, which this run reads or needs"),
        ("extract", r"--out .*extract contains .*, which this run reads or needs"),
        (".", r"--out .* (is|contains) .*, which this run reads or needs"),
    ],
)
def test_out_over_inputs_config_or_cwd_is_refused_and_nothing_changes(
    tmp_path, extract, out, message, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    before = _tree(tmp_path)
    res = runner.invoke(app, ["run", str(extract), "--out", out, "--force"])
    assert res.exit_code == 1 and isinstance(res.exception, OutputError), res.output
    assert re.search(message, str(res.exception)), str(res.exception)
    assert _tree(tmp_path) == before  # nothing deleted, nothing written


def test_out_inside_a_parquet_folder_input_is_refused(tmp_path):
    parts = tmp_path / "spells"
    parts.mkdir()
    (parts / "part-0.parquet").write_bytes(b"x")
    with (
        pytest.raises(OutputError, match="lies inside the input folder"),
        atomic_output_dir(parts / "out", protected=[parts]),
    ):
        pass
    assert not (parts / "out").exists()


def test_force_replaces_only_a_folder_a_run_wrote(tmp_path):
    mine = tmp_path / "my_results"
    mine.mkdir()
    (mine / "notes.docx").write_bytes(b"important")
    with (
        pytest.raises(OutputError, match="not a folder an earlier finsam-effekt run wrote"),
        atomic_output_dir(mine, force=True),
    ):
        pass
    assert (mine / "notes.docx").read_bytes() == b"important"


def test_a_second_run_into_the_same_out_gets_a_clear_error(tmp_path):
    out = tmp_path / "out"
    with atomic_output_dir(out) as tmp:
        with pytest.raises(OutputError, match=r"another finsam-effekt run .* is writing to .*out"):
            with atomic_output_dir(out):
                pass
        (tmp / "x.csv").write_text("1")
    assert (out / "x.csv").exists() and not list(tmp_path.glob(".out.*"))


def test_a_stale_lock_of_a_finished_process_is_taken_over(tmp_path):
    out = tmp_path / "out"
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)  # a process id that is certainly gone
    (tmp_path / ".out.lock").write_text(f"{socket.gethostname()} {pid} 2026-01-01 00:00:00")
    with atomic_output_dir(out) as tmp:
        (tmp / "x.csv").write_text("1")
    assert (out / "x.csv").exists() and not (tmp_path / ".out.lock").exists()


def test_too_long_or_full_output_location_is_a_clear_error_with_nothing_left(tmp_path, monkeypatch):
    with pytest.raises(OutputError, match="the path is too long for the file system; choose another --out"):
        with atomic_output_dir(tmp_path / ("x" * 300)):
            pass
    out = tmp_path / "out"

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(out.parent / "figure.png"))

    with pytest.raises(OutputError, match=r"cannot write the output folder .*out: the disk is full"):
        with atomic_output_dir(out) as tmp:
            (tmp / "a.csv").write_text("1")
            full()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
