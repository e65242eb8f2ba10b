"""The `run` and `explain` commands: exit codes, clear errors, and no output directory after a failure."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from finsam_effekt.cli import app
from finsam_effekt.config import load_config
from finsam_effekt.errors import ConfigError, InputError
from finsam_effekt.pipeline import estimand_text, explain, run

runner = CliRunner()


def _config(tmp_path: Path, **extra) -> Path:
    data = {
        "inputs": {"tables": {"population": {"path": "population.csv"}}},
        "window": {"start": "2018-01", "end": "2019-12"},
        **extra,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_explain_prints_resolved_config_estimand_and_stages(tmp_path):
    res = runner.invoke(app, ["explain", str(_config(tmp_path)), "--lang", "en"])
    assert res.exit_code == 0, res.output
    assert str((tmp_path / "population.csv").resolve()) in res.output  # resolved path
    assert "Average effect on the participants (ATT)" in res.output
    assert "between 2018-01 and 2019-12" in res.output
    assert " 5. match: nearest: propensity score" in res.output
    assert "config hash (SHA-256)" in res.output


def test_estimand_states_later_treated_choice(tmp_path):
    keep = load_config(_config(tmp_path))
    censor = load_config(_config(tmp_path, later_treated="censor"))
    assert "behålls" in estimand_text(keep) and "fram till sin egen start" in estimand_text(censor)
    assert "are kept" in estimand_text(keep, "en") and "up to their own start" in estimand_text(censor, "en")
    assert explain(keep) != explain(censor)


def test_bad_config_exit_1_and_no_output(tmp_path):
    cfg = _config(tmp_path, matching={"ratoi": 2})
    out = tmp_path / "out"
    res = runner.invoke(app, ["run", str(cfg), "--out", str(out)])
    assert res.exit_code == 1
    assert isinstance(res.exception, ConfigError)
    assert f"{cfg}: matching.ratoi: unknown key" in str(res.exception)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]


def test_bad_input_exit_1_and_no_output(tmp_path):
    cfg = _config(tmp_path)
    (tmp_path / "population.csv").write_text("person_id,sex\n1,X\n", encoding="utf-8")  # columns missing
    out = tmp_path / "out"
    res = runner.invoke(app, ["run", str(cfg), "--out", str(out)])
    assert res.exit_code == 1
    assert isinstance(res.exception, InputError)
    assert "population.csv" in str(res.exception)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "population.csv"]


def test_usage_errors_exit_2(tmp_path):
    cfg = _config(tmp_path)
    assert runner.invoke(app, ["run", str(cfg)]).exit_code == 2  # --out missing
    assert runner.invoke(app, ["run", str(cfg), "--out", str(tmp_path / "o"), "--lang", "de"]).exit_code == 2


def test_existing_output_needs_force(tmp_path):
    cfg = _config(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    res = runner.invoke(app, ["run", str(cfg), "--out", str(out)])
    assert res.exit_code == 1
    assert "output directory exists; use --force" in str(res.exception)
    assert (out / "keep.txt").read_text() == "x"


def test_run_api_refuses_existing_dir_before_reading(tmp_path):
    cfg = load_config(_config(tmp_path))
    (tmp_path / "out").mkdir()
    with pytest.raises(ConfigError, match="use --force"):
        run(cfg, tmp_path / "out")
