"""The command line as a user meets it: help with flags shown as flags, a config copied from the template that finds
the package's parameters, cost-benefit errors that name the command's flags, one stage table and the warnings in
the console, and a cost-benefit command that reproduces a run's numbers from its cost_benefit_inputs.json."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from finsam_effekt import cost_benefit as cb
from finsam_effekt.cli import app, load_run_config, run_summary
from finsam_effekt.config import DEFAULT_PARAMETERS_FILE, CostBenefitParameters
from finsam_effekt.cost_benefit.results import CostBenefitInputs
from finsam_effekt.diagnostics import DesignWarning
from finsam_effekt.errors import ConfigError, InputError
from finsam_effekt.estimation import estimate_effects
from finsam_effekt.report import write_csv

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def test_help_shows_flags_as_flags_and_options_with_their_value():
    out = runner.invoke(app, ["run", "--help"], terminal_width=120).output
    assert "<bool>" not in out
    assert "--force " in out and "--out DIR" in out and "CONFIG" in out
    cb_help = runner.invoke(app, ["cost-benefit", "--help"], terminal_width=120).output
    assert "--cost SEK" in cb_help and "--estimator NAME" in cb_help and "cost_benefit_inputs.json" in cb_help


def _config(tmp_path: Path, parameters: str) -> Path:
    path = tmp_path / "config.yaml"
    data = {
        "inputs": {"tables": {"population": {"path": "population.csv"}}},
        "window": {"start": "2018-01", "end": "2019-12"},
        "cost_benefit": {"parameters": parameters},
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_a_config_copied_from_the_template_uses_the_package_parameters(tmp_path):
    template = yaml.safe_load((ROOT / "configs" / "analysis_template.yaml").read_text(encoding="utf-8"))
    named = template["cost_benefit"]["parameters"]
    assert Path(named).name == DEFAULT_PARAMETERS_FILE.name  # the template names the package's file
    cfg, note = load_run_config(_config(tmp_path, named))
    assert (
        "not found; using the package's default parameters" in note and DEFAULT_PARAMETERS_FILE.name in note
    )
    assert cfg.cost_benefit_parameters == CostBenefitParameters.model_validate(
        yaml.safe_load(DEFAULT_PARAMETERS_FILE.read_text(encoding="utf-8"))
    )
    # a file of another name is the user's own: missing, it is an error
    with pytest.raises(ConfigError, match="cost_benefit.parameters: file not found"):
        load_run_config(_config(tmp_path, "my_parameters.yaml"))
    # a file beside the config is used, and the console says which
    (tmp_path / "my_parameters.yaml").write_text("discount_rate: 0.02\n", encoding="utf-8")
    cfg, note = load_run_config(_config(tmp_path, "my_parameters.yaml"))
    assert cfg.cost_benefit_parameters.discount_rate == 0.02 and note.endswith("my_parameters.yaml")


def test_explain_says_which_parameters_file_is_used(tmp_path):
    res = runner.invoke(
        app, ["explain", str(_config(tmp_path, "cost_benefit_parameters.yaml")), "--lang", "en"]
    )
    assert res.exit_code == 0, res.output
    assert "using the package's default parameters" in res.output


def test_console_summary_shows_validation_and_design_warnings():
    warning = DesignWarning("pretrend_rejected", "Förtrenden förkastas.", "The pre-trend test rejects.")
    # a warning whose numbers rest on 3 participants is printed without them, as in the report
    few = DesignWarning("pre_period_imbalance", "SMD 0,4 (3 deltagare).", "SMD 0.4 (3 participants).", {}, (3, 40),
                        "Obalans före start.", "Pre-period imbalance.")  # fmt: skip
    stage = SimpleNamespace(warnings=lambda: (warning, few))
    results = SimpleNamespace(
        read=SimpleNamespace(validation=SimpleNamespace(warnings=["earnings.csv: 3 duplicate rows"])),
        get=lambda key: stage if key == "event_study" else None,
        cfg=SimpleNamespace(disclosure_threshold=5),
    )
    res = SimpleNamespace(results=results, stages=[SimpleNamespace(seconds=1.5)], out=Path("/tmp/out"))
    lines = run_summary(res, "sv")
    text = "\n".join(lines)
    assert "1 validation warning(s)" in text and "earnings.csv: 3 duplicate rows" in text
    assert "2 design warning(s)" in text and "Förtrenden förkastas." in text
    assert "Obalans före start. Siffrorna vilar på färre än 5 personer" in text and "SMD 0,4" not in text
    assert lines[-1] == "total 1.5 s → /tmp/out/report.html"
    assert not any("stage" in line and "status" in line for line in lines)  # no second stage table


def _monthly_effects(estimators=("weighted_mean_diff",)) -> pd.DataFrame:
    rows = []
    for est in estimators:
        for o in cb.REQUIRED_OUTCOMES:
            for k in range(1, 13):
                e = -50.0 if o != cb.EARNINGS_OUTCOME else 400.0
                rows.append((o, k, "status", "all", est, e, 20.0, e - 40, e + 40, 0.01, 300, 300))
    cols = ["outcome", "horizon_months", "measure", "subgroup", "estimator", "estimate", "std_error", "ci_lower",
            "ci_upper", "p_value", "n_treated", "n_control"]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def test_cost_benefit_errors_name_the_flags(tmp_path):
    path = tmp_path / "effects.csv"
    _monthly_effects(("weighted_mean_diff", "matched_did")).to_csv(path, index=False)
    res = runner.invoke(app, ["cost-benefit", str(path), "--out", str(tmp_path / "o"), "--cost", "1000"])
    assert isinstance(res.exception, InputError) and "--estimator NAME" in str(res.exception)
    res = runner.invoke(app, ["cost-benefit", str(path), "--out", str(tmp_path / "o"), "--estimator", "ipw"])
    assert "--estimator ipw: not in the effects table" in str(res.exception)
    params = tmp_path / "p.yaml"
    params.write_text("monte_carlo: {n_draws: 200}\n", encoding="utf-8")
    res = runner.invoke(
        app,
        [
            "cost-benefit",
            str(path),
            "--out",
            str(tmp_path / "o"),
            "--estimator",
            "matched_did",
            "--params",
            str(params),
        ],
    )
    assert str(res.exception).startswith(
        "no cost per participant: give --cost SEK"
    )  # the flag, not the API name


def test_effects_at_a_few_months_only_get_a_note(tmp_path):
    path = tmp_path / "effects.csv"
    eff = _monthly_effects()
    eff[eff["horizon_months"].isin([3, 6, 12])].to_csv(path, index=False)
    params = tmp_path / "p.yaml"
    params.write_text("monte_carlo: {n_draws: 200}\n", encoding="utf-8")
    res = runner.invoke(app, ["cost-benefit", str(path), "--out", str(tmp_path / "o"), "--cost", "1000",
                              "--params", str(params)])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "note: the effects table has status effects at months [3, 6, 12] only" in res.output


def test_inputs_draws_are_the_effect_results_draws_and_survive_json():
    """CostBenefitInputs.draws() gives EffectResults.draws() exactly, also after a JSON round trip."""
    rng = np.random.default_rng(5)
    n = 400
    data = pd.DataFrame(
        {
            "person_id": [f"p{i // 2}" for i in range(n)],
            "treated": np.tile([1, 0], n // 2),
            "weights": 1.0,
            "x": rng.normal(size=n),
        }
    )
    for o in cb.REQUIRED_OUTCOMES:
        for k in (1, 2, 3):
            data[f"{o}_m{k}"] = rng.normal(size=n) * 100 + 10 * data["treated"]
    eff = estimate_effects(data, outcomes=list(cb.REQUIRED_OUTCOMES), horizons=(1, 2, 3), measures=("status",),
                           estimators=["weighted_mean_diff"])  # fmt: skip
    frame = eff.to_frame()
    params = CostBenefitParameters.model_validate({"monte_carlo": {"n_draws": 300}})
    inputs = CostBenefitInputs(
        frame, eff.cov("weighted_mean_diff"), 11, 12345.678, params, "weighted_mean_diff"
    )
    expected = eff.draws("weighted_mean_diff", n=300, seed=11)
    pd.testing.assert_frame_equal(inputs.draws(), expected, check_exact=True)
    back = CostBenefitInputs.from_json(inputs.to_json())
    np.testing.assert_array_equal(back.draws().to_numpy(), expected.to_numpy())
    assert back.cost_per_participant_sek == 12345.678 and back.parameters == params
    assert back.min_persons() == 200


def test_cost_benefit_command_reproduces_a_result_from_its_inputs(tmp_path):
    frame = _monthly_effects()
    cols = pd.MultiIndex.from_tuples(
        [(o, k, "status") for o, k in zip(frame["outcome"], frame["horizon_months"], strict=True)]
    )
    cov = pd.DataFrame(np.diag(frame["std_error"].to_numpy() ** 2) + 1.0, index=cols, columns=cols)
    params = CostBenefitParameters.model_validate({"monte_carlo": {"n_draws": 500}})
    inputs = CostBenefitInputs(frame, cov, 7, 23456.5, params, "weighted_mean_diff")
    direct = cb.cost_benefit(frame, params, cost_per_participant_sek=23456.5, draws=inputs.draws())
    (tmp_path / "cost_benefit_inputs.json").write_text(inputs.to_json(), encoding="utf-8")
    write_csv(direct.to_frame(), tmp_path / "direct.csv")
    out = tmp_path / "again"
    res = runner.invoke(app, ["cost-benefit", str(tmp_path / "cost_benefit_inputs.json"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    written = pd.read_csv(out / "cost_benefit.csv")
    # the persons behind every number (the fewest in any monthly effect) and the disclosure mark
    assert (written["n_treated"] == frame["n_treated"].min()).all() and not written["suppressed"].any()
    write_csv(written.drop(columns=["n_treated", "n_control", "suppressed"]), tmp_path / "written.csv")
    assert (tmp_path / "written.csv").read_bytes() == (tmp_path / "direct.csv").read_bytes()
    assert (out / "waterfall_state.png").stat().st_size > 0
    # other parameters: the same effects, draws and cost, the new discount rate
    other = tmp_path / "other.yaml"
    other.write_text("discount_rate: 0.0\nmonte_carlo: {n_draws: 500}\n", encoding="utf-8")
    res = runner.invoke(app, ["cost-benefit", str(tmp_path / "cost_benefit_inputs.json"), "--out", str(out),
                              "--params", str(other)])  # fmt: skip
    assert res.exit_code == 0, res.output
    again = cb.cost_benefit(frame, cb.load_cost_benefit_parameters(other), cost_per_participant_sek=23456.5,
                            draws=inputs.draws())  # fmt: skip
    write_csv(again.to_frame(), tmp_path / "again.csv")
    written = pd.read_csv(out / "cost_benefit.csv").drop(columns=["n_treated", "n_control", "suppressed"])
    write_csv(written, tmp_path / "written.csv")
    assert (tmp_path / "written.csv").read_bytes() == (tmp_path / "again.csv").read_bytes()
    # below the disclosure threshold nothing is written
    res = runner.invoke(app, ["cost-benefit", str(tmp_path / "cost_benefit_inputs.json"), "--out", str(out),
                              "--threshold", str(int(frame["n_treated"].min()) + 1)])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert pd.read_csv(out / "cost_benefit.csv")["suppressed"].all()


def test_a_termination_signal_inside_an_engine_query_exits_without_a_traceback(monkeypatch, capsys):
    """SIGTERM during a DuckDB query arrives as the engine's 'Query interrupted' caused by the handler's
    SystemExit(143): the console script stops with that code and one line, not a traceback; other runtime
    errors still raise."""
    from finsam_effekt import cli

    def interrupted():
        try:
            raise SystemExit(143)
        except SystemExit as stop:
            raise RuntimeError("Query interrupted") from stop

    monkeypatch.setattr(cli, "app", interrupted)
    with pytest.raises(SystemExit) as exc:
        cli.main()
    assert exc.value.code == 143
    err = capsys.readouterr().err
    assert "stopped by a signal" in err and "Traceback" not in err

    def other():
        raise RuntimeError("a defect")

    monkeypatch.setattr(cli, "app", other)
    with pytest.raises(RuntimeError, match="a defect"):
        cli.main()


def test_the_engine_running_out_of_memory_is_one_line_with_the_setting_to_change(monkeypatch, capsys):
    """DuckDB's OutOfMemoryException (e.g. the panel's sort with a low engine.memory_limit) ends the console
    script with exit code 1 and one line naming the settings, not a traceback; other engine errors still raise."""
    import duckdb

    from finsam_effekt import cli

    def out_of_memory():
        raise duckdb.OutOfMemoryException(
            "Out of Memory Error: could not allocate block of size 256.0 KiB (3.7 GiB/3.7 GiB used)\n\nPossible..."
        )

    monkeypatch.setattr(cli, "app", out_of_memory)
    with pytest.raises(SystemExit) as exc:
        cli.main()
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "ran out of its memory limit" in err and "engine.memory_limit" in err and "engine.threads" in err
    assert "3.7 GiB/3.7 GiB used" in err and "Possible" not in err and "Traceback" not in err

    def other():
        raise duckdb.BinderException("a defect")

    monkeypatch.setattr(cli, "app", other)
    with pytest.raises(duckdb.BinderException, match="a defect"):
        cli.main()
