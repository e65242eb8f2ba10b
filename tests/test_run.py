"""The `run` and `explain` commands: exit codes, clear errors, and no output directory after a failure."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from finsam_effekt.cli import app
from finsam_effekt.config import load_config
from finsam_effekt.errors import ConfigError, InputError
from finsam_effekt.pipeline import EffectsResult, Stage, StageUnavailable, chain, estimand_text, explain, run

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


def test_explain_describes_ipw_weighting_and_min_history(tmp_path):
    cfg = load_config(
        _config(
            tmp_path, matching={"method": "ipw", "ipw_trim": 0.05}, eligibility={"min_history_months": 18}
        )
    )
    text = explain(cfg)
    assert (
        "ATT weights e/(1−e) for every candidate control person-month, scores clipped to [0.05, 0.95]" in text
    )
    assert "≥ 18 months of register history" in text


def test_estimand_states_later_treated_choice(tmp_path):
    keep = load_config(_config(tmp_path))
    censor = load_config(_config(tmp_path, later_treated="censor"))
    assert "behålls" in estimand_text(keep) and "fram till sin egen start" in estimand_text(censor)
    assert "are kept" in estimand_text(keep, "en") and "up to their own start" in estimand_text(censor, "en")
    assert explain(keep) != explain(censor)
    # the eligibility rule in words (no code name) and the candidate pool: full, or sampled within each month
    assert "recent_public_support" not in estimand_text(keep) + estimand_text(keep, "en")
    assert "public support in at least one of the 12 months before u" in estimand_text(keep, "en")
    full = keep.model_copy(
        update={"eligibility": keep.eligibility.model_copy(update={"candidate_sample_rate": 1})}
    )
    tenth = keep.model_copy(
        update={"eligibility": keep.eligibility.model_copy(update={"candidate_sample_rate": 0.1})}
    )
    assert "Every eligible comparison person-month is used." in estimand_text(full, "en")
    assert "a random sample of 10 % of the eligible comparison person-months in each calendar month" in (
        estimand_text(tenth, "en")
    )
    assert "slumpurval om 10 %" in estimand_text(tenth, "sv") and "month effects absorb" in estimand_text(
        tenth, "en"
    )


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


# -- the run machinery with stand-in stages (the real stages are tested in their own modules) -----------------


def _effects_stage(cfg):
    frame = pd.DataFrame(
        {
            "outcome": ["public_support", "public_support"],
            "horizon_months": [3, 3],
            "measure": ["status", "status"],
            "subgroup": ["all", "sex=K"],
            "estimator": ["weighted_mean_diff"] * 2,
            "estimate": [-0.1, -0.3],
            "std_error": [0.02, 0.2],
            "ci_lower": [-0.14, -0.7],
            "ci_upper": [-0.06, 0.1],
            "p_value": [0.001, 0.13],
            "n_treated": [50, 2],
            "n_control": [50, 40],
        }
    )
    return EffectsResult((), frame)


def _missing_stage(cfg):
    raise StageUnavailable(
        "finsam_effekt.estimation.sensitivity_analysis is not available in this installation"
    )


def _failing_stage(cfg):
    raise InputError("population.csv: bad rows")


def _stand_in(key: str, run_fn, required: bool, switch: str | None = None) -> Stage:
    """A stage of the chain with a stand-in function and no inputs."""
    label = {"cost_benefit": "cost-benefit"}.get(key, key)
    return Stage(key, label, run_fn, (), EffectsResult, (), required, switch, lambda cfg: "")


def _cfg_with_input(tmp_path):
    (tmp_path / "population.csv").write_text("person_id\nP1\n", encoding="utf-8")
    return load_config(_config(tmp_path, cost_benefit={"enabled": False}))


def test_run_writes_outputs_log_manifest_and_not_run(tmp_path, monkeypatch):
    monkeypatch.setattr(
        chain,
        "CHAIN",
        (
            _stand_in("effects", _effects_stage, True),
            _stand_in("sensitivity", _missing_stage, False),
            _stand_in("cost_benefit", _failing_stage, False, switch="cost_benefit.enabled"),
        ),
    )
    cfg = _cfg_with_input(tmp_path)
    res = run(cfg, tmp_path / "out")
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} >= {
        "effects.csv",
        "results.xlsx",
        "report.html",
        "manifest.json",
        "run.log",
        "figures",
    }
    assert [s.status for s in res.stages] == ["ok", "not_run", "not_run", "ok"]
    eff = pd.read_csv(out / "effects.csv")
    assert eff["suppressed"].tolist() == [False, True]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config_sha256"] == cfg.config_hash()
    assert manifest["inputs"]["population"]["sha256"] == hashlib.sha256(b"person_id\nP1\n").hexdigest()
    assert manifest["seed"] == cfg.seed and manifest["rows"]["effects"] == 2
    assert set(manifest["not_run"]) == {"sensitivity", "cost-benefit"}
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "sensitivity_analysis is not available" in page and "cost_benefit.enabled: false" in page
    log = (out / "run.log").read_text(encoding="utf-8")
    assert "stage effects" in log and "not_run" in log
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "out", "population.csv"]


def test_failed_stage_leaves_no_output_and_force_keeps_old_until_success(tmp_path, monkeypatch):
    cfg = _cfg_with_input(tmp_path)
    monkeypatch.setattr(
        chain, "CHAIN", (_stand_in("effects", _effects_stage, True), _stand_in("link", _failing_stage, True))
    )
    with pytest.raises(InputError, match="bad rows"):
        run(cfg, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "population.csv"]
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.csv").write_text("x")
    (tmp_path / "out" / "manifest.json").write_text('{"config_sha256": "x", "outputs": ["old.csv"]}')
    with pytest.raises(InputError):
        run(cfg, tmp_path / "out", force=True)
    assert (tmp_path / "out" / "old.csv").exists()  # a failed --force run does not destroy the old result
    monkeypatch.setattr(chain, "CHAIN", (_stand_in("link", _missing_stage, True),))
    with pytest.raises(StageUnavailable, match="stage 'link' cannot run: .*sensitivity_analysis"):
        run(cfg, tmp_path / "new")
    assert not (tmp_path / "new").exists()


def _share_stand_ins(share_fn):
    """effects, a contamination share stand-in (a part of contamination) and the contamination stage taking it."""
    return (
        _stand_in("effects", _effects_stage, True),
        Stage("contamination_share", "contamination share", share_fn, (), EffectsResult, (), False, None,
              lambda cfg: "", part_of="contamination"),
        Stage("contamination", "contamination", lambda cfg, share, eff: share, ("contamination_share", "effects"),
              EffectsResult, (), False, None, lambda cfg: ""),
    )  # fmt: skip


def test_an_unavailable_contamination_share_makes_contamination_not_run_for_the_same_reason(
    tmp_path, monkeypatch
):
    def unavailable(cfg):
        raise StageUnavailable("no sus_registrations table: the anonymous registrations are unknown")

    monkeypatch.setattr(chain, "CHAIN", _share_stand_ins(unavailable))
    res = chain.run_until(_cfg_with_input(tmp_path), "contamination")
    assert [(r.name, r.status) for r in res.records] == [
        ("effects", "ok"),
        ("contamination share", "not_run"),
        ("contamination", "not_run"),
    ]
    reason = "no sus_registrations table: the anonymous registrations are unknown"
    assert res.records[-1].note == reason and res.records[-2].note == reason
    # the report names the stage the reader knows, once, with the share's reason
    assert res.not_run == {"contamination": reason}
    assert res.contamination_share is None and res.contamination is None


def test_a_failing_contamination_share_is_reported_under_contamination(tmp_path, monkeypatch):
    def broken(cfg):
        raise ValueError("boom")

    monkeypatch.setattr(chain, "CHAIN", _share_stand_ins(broken))
    res = run(_cfg_with_input(tmp_path), tmp_path / "out")
    status = {r.name: r.status for r in res.stages}
    assert status["contamination share"] == "failed" and status["contamination"] == "not_run"
    assert set(res.results.not_run) == {"contamination"}
    assert "failed with ValueError: boom" in res.results.not_run["contamination"]


def test_skipping_contamination_skips_its_share_stage(tmp_path, monkeypatch):
    calls = []

    def share(cfg):
        calls.append(1)
        return _effects_stage(cfg)

    monkeypatch.setattr(chain, "CHAIN", _share_stand_ins(share))
    cfg = _cfg_with_input(tmp_path)
    res = chain.run_until(cfg, "contamination", skip=["contamination"])
    assert not calls
    assert {r.name: r.status for r in res.records} == {
        "effects": "ok",
        "contamination share": "not_run",
        "contamination": "not_run",
    }
    assert res.not_run == {"contamination": "skipped (run_until skip=)"}
    res = chain.run_until(cfg, "contamination")
    assert calls and res.contamination is res.contamination_share  # the stand-in passes the share on


# -- end to end on a small synthetic world: disclosure scan and determinism -------------------------------------


@pytest.fixture(scope="module")
def world_root(tmp_path_factory, small_world):
    """A folder for this module's configs and outputs; the inputs are the shared small world's."""
    root = tmp_path_factory.mktemp("e2e")
    (root / "world.txt").write_text(str(small_world.mapping), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def two_runs(world_root):
    root = world_root
    cfg_path = root / "config.yaml"
    cfg_path.write_text(
        yaml.safe_dump(
            {
                "inputs": (root / "world.txt").read_text(encoding="utf-8"),
                "window": {"start": "2019-01", "end": "2020-03"},
                "estimators": ["weighted_mean_diff", "matched_did"],
                "outcomes": {"names": ["public_support", "self_support", *COST_OUTCOMES], "path_window": 6},
                "cost_benefit": {"parameters": str(ROOT / "configs" / "cost_benefit_parameters.yaml")},
            }
        ),
        encoding="utf-8",
    )
    cfg = load_config(cfg_path)
    a = run(cfg, root / "a")
    b = run(cfg, root / "b")
    return root, a, b


COST_OUTCOMES = ["sek_sickness", "sek_disability", "sek_labour_market", "sek_unemployment", "social_assistance_sek",
                 "earnings_sek"]  # fmt: skip
ROOT = Path(__file__).resolve().parent.parent


def _tokens(path: Path) -> set[bytes]:
    import re
    import zipfile

    if path.suffix == ".xlsx":
        with zipfile.ZipFile(path) as z:
            data = b"\n".join(z.read(n) for n in z.namelist())
    else:
        data = path.read_bytes()
    return set(re.findall(rb"[A-Za-z0-9_\-]+", data))


@pytest.mark.slow
def test_e2e_every_stage_ran_and_no_person_id_in_any_output(two_runs, small_world):
    root, a, _ = two_runs
    status = {s.name: s.status for s in a.stages}
    assert all(status[s] == "ok" for s in ("read & validate", "link", "panel", "cohort", "match", "effects"))
    names = {p.name for p in a.out.iterdir()}
    assert {"effects.csv", "linkage_report.csv", "outcome_paths.csv", "results.xlsx", "report.html",
            "manifest.json", "run.log", "figures"} <= names  # fmt: skip
    optional = {"balance": "balance.csv", "event study": "event_study.csv", "sensitivity": "sensitivity.csv",
                "cost-benefit": "cost_benefit.csv"}  # fmt: skip
    for stage, csv in optional.items():
        assert (csv in names) == (status[stage] == "ok"), (stage, status[stage])
    ids = set()
    for t in ("population", "sus_registrations", "benefit_spells", "earnings"):
        df = pd.read_parquet(small_world.path / f"{t}.parquet", columns=["person_id"])
        ids |= {str(v).encode() for v in df["person_id"].dropna().unique()}
    assert len(ids) >= 1500
    files = [p for p in a.out.rglob("*") if p.is_file()]
    assert len(files) >= 10
    for f in files:
        hits = _tokens(f) & ids
        assert not hits, f"{f.name} contains {len(hits)} person ids"


def test_run_keeps_only_the_cohort_keys_after_the_last_reader_of_its_features(two_runs):
    # no estimator of this run fits on the unmatched cohort: after the balance stage the cohort's history
    # features are released; the match refers to the same narrowed rows by position
    from finsam_effekt.pipeline import COHORT_KEY_COLUMNS

    _, a, _ = two_runs
    co = a.results.cohort
    assert co.features_dropped and list(co.cohort.columns) == [
        c for c in COHORT_KEY_COLUMNS if c in co.cohort
    ]
    assert {"person_id", "ref_month", "treated"} <= set(co.cohort.columns)
    assert co.rows() == next(s.rows for s in a.stages if s.name == "cohort")
    assert a.results.match.result.data is co.cohort and a.results.match.match.data is co.cohort
    log = (a.out / "run.log").read_text(encoding="utf-8").splitlines()
    at = [i for i, line in enumerate(log) if "history features released" in line]
    stage = {line.split()[2]: i for i, line in enumerate(log) if line.startswith("INFO stage ")}
    assert len(at) == 1 and stage["balance"] < at[0] < stage["outcomes"]


def test_run_releases_the_effect_results_objects_and_keeps_the_effect_table(two_runs):
    # no later stage reads the results objects (their influence functions are one value per matched row and
    # estimate); the table they made stays, equal to the published effects.csv
    _, a, _ = two_runs
    eff = a.results.effects
    assert eff.released and eff.results == ()
    with pytest.raises(ValueError, match=r"released after the effects stage .*run_until\(cfg, 'effects'\)"):
        _ = eff.main
    published = pd.read_csv(a.out / "effects.csv")
    assert len(published) == len(eff.frame) > 0
    kept = chain.run_until(a.results.cfg, "effects").effects
    assert not kept.released and kept.main.to_frame().shape[0] > 0


@pytest.mark.slow
def test_e2e_rerun_gives_identical_csvs_and_manifest(two_runs):
    _, a, b = two_runs
    csvs = sorted(p.name for p in a.out.glob("*.csv"))
    assert len(csvs) >= 3
    for name in csvs:
        assert (a.out / name).read_bytes() == (b.out / name).read_bytes(), name
    ma = json.loads((a.out / "manifest.json").read_text())
    mb = json.loads((b.out / "manifest.json").read_text())
    for m in (ma, mb):  # what describes the run itself (time, memory, cache use)
        m.pop("timings_seconds"), m.pop("measurements")
    assert ma == mb
    eff = pd.read_csv(a.out / "effects.csv")
    main = eff[
        (eff["subgroup"] == "all") & (eff["outcome"] == "public_support") & (eff["measure"] == "status")
    ]
    assert sorted(main["horizon_months"].unique()) == [3, 6, 12]
    small = eff[(eff[["n_treated", "n_control"]].isna().any(axis=1))]
    assert small["suppressed"].all() and small["estimate"].isna().all()


@pytest.mark.slow
def test_cost_benefit_command_gives_the_runs_numbers(two_runs, tmp_path):
    """From the run's cost_benefit_inputs.json, `finsam-effekt cost-benefit` writes the run's tables byte for byte
    (the same monthly effects, joint draws, cost and parameters)."""
    _, a, _ = two_runs
    inputs = a.out / "cost_benefit_inputs.json"
    assert inputs.is_file() and inputs in a.files
    res = runner.invoke(app, ["cost-benefit", str(inputs), "--out", str(tmp_path / "cb")])
    assert res.exit_code == 0, res.output
    for name in ("cost_benefit.csv", "cost_benefit_summary.csv", "cost_benefit_sensitivity.csv"):
        # with the persons behind them and the same disclosure control as the run
        assert (tmp_path / "cb" / name).read_bytes() == (a.out / name).read_bytes(), name
    page = (a.out / "report.html").read_text(encoding="utf-8")
    assert "finsam-effekt cost-benefit cost_benefit_inputs.json" in page


def test_participant_labels_join_treated_rows_only_and_keep_index():
    from finsam_effekt.pipeline import with_participant_labels

    matched = pd.DataFrame(
        {"person_id": ["a", "b", "c"], "ref_month": ["2020-01"] * 3, "treated": [1, 0, 1], "weights": 1.0},
        index=[10, 20, 30],
    )
    participants = pd.DataFrame(
        {
            "person_id": ["a", "c", "b"],
            "ref_month": ["2020-01", "2020-01", "2021-05"],  # b starts later: not its control row
            "insats_type": ["preparatory", "other", "assessment"],
            "public_support_before": ["lt1y", "gt10y", "1to3y"],
        }
    )
    out = with_participant_labels(matched, participants)
    assert list(out.index) == [10, 20, 30]
    assert out["insats_type"].tolist()[::2] == ["preparatory", "other"]
    assert pd.isna(out.loc[20, "insats_type"]) and pd.isna(out.loc[20, "public_support_before"])


# -- wiring: the run passes the stages what they need (issues 4, 7, 8, 9) ---------------------------------------


def _wired_run(root: Path, name: str, extra: dict, spy: dict):
    """Run on the small world with ``extra`` config, recording the keyword arguments the stages receive."""
    import finsam_effekt.cohort as cohort_mod
    import finsam_effekt.cost_benefit as cb_mod
    import finsam_effekt.estimation as est_mod

    def record(mod, fname):
        orig = getattr(mod, fname)

        def wrapper(*args, **kw):
            spy.setdefault(fname, []).append({**kw, "_args": args})
            return orig(*args, **kw)

        return wrapper

    cfg_path = root / f"{name}.yaml"
    cfg_path.write_text(
        yaml.safe_dump(
            {
                "inputs": (root / "world.txt").read_text(encoding="utf-8"),
                "window": {"start": "2019-01", "end": "2020-03"},
                "outcomes": {"names": ["public_support", "self_support", *COST_OUTCOMES], "path_window": 6},
                "cost_benefit": {"parameters": str(ROOT / "configs" / "cost_benefit_parameters.yaml")},
                "subgroups": [],
                "event_study": False,
                **extra,
            }
        ),
        encoding="utf-8",
    )
    with pytest.MonkeyPatch.context() as mp:
        for mod, fname in (
            (est_mod, "estimate_effects"),
            (cohort_mod, "build_cohort"),
            (cb_mod, "cost_per_participant"),
            (cb_mod, "cost_benefit"),
        ):
            mp.setattr(mod, fname, record(mod, fname))
        return run(load_config(cfg_path), root / name)


@pytest.fixture(scope="module")
def wired(world_root):
    spy: dict = {}
    extra = {
        "estimators": ["weighted_mean_diff", "ipw", "aipw", "cs_did"],
        "inference": {"se": "abadie_imbens"},
        "eligibility": {"min_history_months": 12},
        "subgroups": ["sex", "insats_type"],
    }
    return _wired_run(world_root, "wired", extra, spy), spy


@pytest.mark.slow
def test_cohort_and_panel_estimators_run_with_abadie_imbens(wired):
    from finsam_effekt.matching import MatchResult

    res, spy = wired
    assert {s.name: s.status for s in res.stages}["effects"] == "ok"
    manifest = json.loads((res.out / "manifest.json").read_text())
    assert [k for k in manifest["not_run"] if k.startswith("effects")] == [
        "effects: ipw, aipw by insats_type"
    ]
    eff = pd.read_csv(res.out / "effects.csv")
    assert set(eff["estimator"]) == {"weighted_mean_diff", "ipw", "aipw", "cs_did"}
    # the effects stage calls estimate_effects for the matched and panel estimators, then for the cohort ones
    kw, kw_c = spy["estimate_effects"][:2]  # (cost-benefit calls it again)
    assert kw["estimators"] == ["weighted_mean_diff", "cs_did"] and kw_c["estimators"] == ["ipw", "aipw"]
    # ipw/aipw per subgroup where the comparison pool has the field (sex), not for the SUS-only insats_type
    assert kw["subgroups"] == ["sex", "insats_type"] and kw_c["subgroups"] == ["sex"]
    by = eff.groupby("estimator")["subgroup"].agg(set)
    assert by["ipw"] == by["aipw"] == {"all", "sex=K", "sex=M"}
    assert any(s.startswith("insats_type=") for s in by["weighted_mean_diff"])
    assert "effects: ipw, aipw by insats_type" in manifest["not_run"]
    assert isinstance(kw["pairs"], MatchResult) and kw["se"] == "abadie_imbens"
    # ipw and aipw fit on the cohort's features: they are released after the effects stage, not before
    log = (res.out / "run.log").read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(log) if "history features released" in line)
    assert at > next(i for i, line in enumerate(log) if line.startswith("INFO stage effects"))
    assert res.results.cohort.features_dropped
    # ipw/aipw get the unmatched cohort: every candidate control person-month, with horizon outcomes
    cohort = kw_c["cohort"]
    assert (cohort["treated"] == 0).sum() > 10 * (cohort["treated"] == 1).sum()
    assert {"public_support_m3", "public_support_cum12"} <= set(cohort.columns)
    # cs_did gets the sparse person_months rows of the cohort's persons and one unit row per person: its first
    # start (participants at their ref_month) and observed months (absent months inside them are zeros)
    panel, units = kw["panel"], kw["panel_units"]
    assert units["person_id"].is_unique and set(units["person_id"]) == set(cohort["person_id"].astype(str))
    assert set(panel["person_id"]) <= set(units["person_id"])
    assert panel["public_support"].notna().all() and set(panel["public_support"]) <= {0, 1}
    assert (panel["earnings_sek"] > 0).any()
    assert (units["observed_from"] >= "2018-12").all() and (
        units["observed_from"] <= units["observed_to"]
    ).any()
    treated = cohort.loc[cohort["treated"] == 1, ["person_id", "ref_month"]].astype(str)
    ft = units.set_index("person_id")["first_treated"]
    assert (ft.reindex(treated["person_id"]).to_numpy() == treated["ref_month"].to_numpy()).all()
    # the same cs_did numbers as from the dense person × month panel (zeros filled, observed months only)
    from finsam_effekt import months as mo
    from finsam_effekt.estimation import callaway_santanna

    lo = mo.to_index(units["observed_from"])
    hi = mo.to_index(units["observed_to"])
    n = np.clip(hi - lo + 1, 0, None)
    dense = pd.DataFrame(
        {
            "person_id": np.repeat(units["person_id"].to_numpy(), n),
            "first_treated": np.repeat(units["first_treated"].to_numpy(), n),
            "month": mo.from_index(
                np.concatenate([np.arange(a, b + 1) for a, b in zip(lo, hi, strict=True)])
            ),
        }
    )
    dense = dense.merge(
        panel[["person_id", "month", "public_support"]], how="left", on=["person_id", "month"]
    )
    dense["public_support"] = dense["public_support"].fillna(0.0)
    cs_kw = dict(outcomes=["public_support"], horizons=(3, 12), measures=("status",))
    pd.testing.assert_frame_equal(
        callaway_santanna(dense, **cs_kw).to_frame(),
        callaway_santanna(panel, units=units, **cs_kw).to_frame(),
        rtol=1e-12,
    )
    # the Abadie–Imbens SE replaced CR1 for the matched mean difference (same estimate, other SE)
    from finsam_effekt.estimation import estimate_effects

    # earnings (not public support: with the 45 % anonymous participants of the default world the small world's
    # ~20 matched pairs can all have the same public support in month 3, and then every SE is 0)
    sel = dict(
        outcomes=["earnings_sek"], horizons=(3,), measures=("status",), estimators=["weighted_mean_diff"]
    )
    ai = estimate_effects(kw["_args"][0], **sel, se="abadie_imbens", pairs=kw["pairs"]).to_frame().iloc[0]
    cr = estimate_effects(kw["_args"][0], **sel, se="cluster").to_frame().iloc[0]
    assert ai["estimate"] == pytest.approx(cr["estimate"]) and ai["std_error"] > 0
    assert ai["std_error"] != pytest.approx(cr["std_error"], rel=1e-6)
    got = eff.query("estimator == 'weighted_mean_diff' and outcome == 'earnings_sek' and measure == 'status'")
    assert got.query("horizon_months == 3 and subgroup == 'all'")["std_error"].iloc[0] == pytest.approx(
        ai["std_error"]
    )


@pytest.mark.slow
def test_min_history_support_consistency_and_before_after_reach_the_report(wired, small_world):
    res, spy = wired
    data_start = min(
        pd.read_parquet(small_world.path / f"{t}.parquet", columns=["month"])["month"].astype(str).min()
        for t in ("earnings", "social_assistance")
    )
    ck = spy["build_cohort"][0]
    assert ck["min_history_months"] == 12 and ck["register_start"] == data_start
    sc = pd.read_csv(res.out / "support_consistency.csv")
    assert "any_public" in set(sc["source"])
    page = (res.out / "report.html").read_text(encoding="utf-8")
    from finsam_effekt.report import fact_label

    assert fact_label("sus_register_disagree_any_public", "sv") in page
    assert "sus_register_disagree_any_public" not in page  # a label, never the raw key
    assert "params" in spy["cost_per_participant"][0]
    assert spy["cost_benefit"][0]["before_after_paths"] is not None
    cmp = pd.read_csv(res.out / "cost_benefit_methods.csv")
    assert {"net_point_counterfactual", "net_point_before_after", "difference"} <= set(cmp.columns)
    assert fact_label("net_public_sector_before_after_sek", "sv") in page
    _assert_extra_tables_in_report(res.out, "sv")


def _assert_extra_tables_in_report(out: Path, lang: str) -> None:
    """support_consistency and cost_benefit_methods are tables in report.html: title, guide, labelled headers."""
    from finsam_effekt.report import COLUMN_LABELS, TABLE_GUIDES, TABLE_TITLES, text
    from finsam_effekt.report.views import persons_left_out

    li = ("sv", "en").index(lang)
    page = (out / "report.html").read_text(encoding="utf-8")
    sections = {"support_consistency": ("data", "balance"), "cost_benefit_methods": ("cost_benefit", None)}
    for name, (start, end) in sections.items():
        csv = pd.read_csv(out / f"{name}.csv")
        assert len(csv) > 0, name
        at = page.index(f"<h3>{TABLE_TITLES[name][li]}</h3>")
        assert page.index(f"<h2>{text(start, lang)}</h2>") < at
        assert end is None or at < page.index(f"<h2>{text(end, lang)}</h2>")
        table = page[at : page.index("</table>", at)]
        assert TABLE_GUIDES[name][li] in table
        header = table[table.index("<thead>") : table.index("</thead>")]
        if name == "cost_benefit_methods":  # the persons behind the cost-benefit are in its files only
            csv = persons_left_out(csv)
        assert [f"<th>{COLUMN_LABELS[c][li]}</th>" for c in csv.columns] == [
            f"<th>{h}</th>" for h in __import__("re").findall(r"<th>([^<]*)</th>", header)
        ]
        assert table.count("<tr>") == len(csv) + 1  # every row shown


@pytest.mark.slow
def test_ipw_weighting_run(world_root):
    spy: dict = {}
    extra = {
        "estimators": ["weighted_mean_diff", "aipw"],
        "matching": {"method": "ipw", "ipw_trim": 0.01},
        "language": "en",
    }
    res = _wired_run(world_root, "ipw", extra, spy)
    _assert_extra_tables_in_report(res.out, "en")
    status = {s.name: s.status for s in res.stages}
    assert status["match"] == status["balance"] == status["effects"] == "ok"
    assert status["sensitivity"] == "not_run"
    assert (
        "need matched pairs; matching.method is 'ipw'" in {s.name: s.note for s in res.stages}["sensitivity"]
    )
    kw = spy["estimate_effects"][1]
    # the weighted sample is the whole cohort: ATT weights 1 for treated, e/(1-e) normalised for controls
    data = kw["cohort"]
    assert (data.loc[data["treated"] == 1, "weights"] == 1).all()
    c = data.loc[data["treated"] == 0, "weights"]
    assert c.sum() == pytest.approx(len(c))
    bal = pd.read_csv(res.out / "balance.csv")
    assert set(bal["sample"]) == {"before", "after"}
    with pytest.raises(ConfigError, match="abadie_imbens' is the SE of nearest-neighbour matching"):
        _wired_run(world_root, "ipw_ai", {**extra, "inference": {"se": "abadie_imbens"}}, {})


@pytest.mark.slow
def test_alpha_sets_the_level_of_every_interval(world_root):
    """inference.alpha reaches every normal-based interval: at 0.10 each is 1.645/1.960 times as wide around the
    estimate as at 0.05 (effects of every estimator and the event study), and the estimates are unchanged."""
    from scipy import stats

    from finsam_effekt.pipeline import run_until

    def frames(alpha: float):
        cfg_path = world_root / f"alpha_{alpha}.yaml"
        cfg_path.write_text(
            yaml.safe_dump(
                {
                    "inputs": (world_root / "world.txt").read_text(encoding="utf-8"),
                    "window": {"start": "2019-01", "end": "2020-03"},
                    "estimators": ["weighted_mean_diff", "regression_adjustment", "matched_did", "ipw"],
                    "outcomes": {"names": ["public_support", "earnings_sek"], "path_window": 6},
                    "inference": {"alpha": alpha},
                    "sensitivity": False,
                    "cost_benefit": {"enabled": False},
                    "subgroups": ["sex"],
                }
            ),
            encoding="utf-8",
        )
        res = run_until(load_config(cfg_path), "event_study")
        return res.effects.frame, res.event_study.frame

    (e05, s05), (e10, s10) = frames(0.05), frames(0.10)
    ratio = stats.norm.ppf(0.95) / stats.norm.ppf(0.975)
    for a, b in ((e05, e10), (s05.dropna(subset=["std_error"]), s10.dropna(subset=["std_error"]))):
        assert len(a) > 20
        np.testing.assert_array_equal(a["estimate"], b["estimate"])
        np.testing.assert_allclose(
            b["ci_upper"] - b["estimate"], ratio * (a["ci_upper"] - a["estimate"]), rtol=1e-9, atol=1e-10
        )
        np.testing.assert_allclose(
            b["estimate"] - b["ci_lower"], ratio * (a["estimate"] - a["ci_lower"]), rtol=1e-9, atol=1e-10
        )


@pytest.mark.slow
def test_run_by_forbund_writes_a_report_per_forbund_and_an_overview(world_root, small_world):
    """``--by forbund_id``: the national report, one report per förbund with enough participants, an overview
    with the national and per-förbund effects; no pseudonym in any file; small cells suppressed."""
    cfg_path = world_root / "by.yaml"
    cfg_path.write_text(
        yaml.safe_dump(
            {
                "inputs": (world_root / "world.txt").read_text(encoding="utf-8"),
                "window": {"start": "2019-01", "end": "2020-03"},
                "estimators": ["weighted_mean_diff"],
                "outcomes": {"names": ["public_support", "self_support"], "path_window": 6},
                "cost_benefit": {"enabled": False},
                "sensitivity": False,
                "subgroups": [],
                "disclosure_threshold": 5,
                "cache": {"enabled": False},
            }
        ),
        encoding="utf-8",
    )
    out = world_root / "by_out"
    res = runner.invoke(app, ["run", str(cfg_path), "--out", str(out), "--by", "forbund_id"])
    assert res.exit_code == 0, res.output
    part = pd.read_parquet(small_world.path / "sus_registrations.parquet")
    overview = pd.read_csv(out / "forbund" / "overview.csv", dtype={"group": str})
    assert overview["group"].iloc[0] == "national"
    reports = sorted(p.name for p in (out / "forbund").iterdir() if p.is_dir())
    assert reports and set(reports) <= set(part["forbund_id"].astype(str))
    for name in reports:
        assert (out / "forbund" / name / "report.html").is_file()
        assert (out / "forbund" / name / "effects.csv").is_file()
        rows = overview[overview["group"] == name]
        assert set(rows["outcome"]) == {"public_support", "self_support"}
    small = overview[overview[["n_treated", "n_control"]].min(axis=1).fillna(0) < 5]
    assert small["estimate"].isna().all()
    # a förbund without a report is listed with its participants suppressed below the threshold
    assert (overview["participants"].isna() | (overview["participants"] >= 5)).all()
    ids = set()
    for t in ("population", "sus_registrations"):
        ids |= {
            str(v).encode() for v in pd.read_parquet(small_world.path / f"{t}.parquet")["person_id"].dropna()
        }
    for f in out.rglob("*"):
        if f.is_file():
            assert not (_tokens(f) & ids), f"{f.relative_to(out)} contains person ids"
