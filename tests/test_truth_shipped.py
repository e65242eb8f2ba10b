"""Truth on the shipped synthetic world (issue 7) and a smoke run of the pipeline Monte Carlo.

Shipped world: ``synthetic_data/`` (60 000 persons, seed 2024, effect scale 1, no hidden confounding) through the
design of ``analyses/example_synthetic/config.yaml``: read → link → panel → cohort (candidate controls: the
config's seeded 10 % sample of candidate person-months, seed 20240101) → propensity-score matching 1:1 without
replacement, caliper 0.2 SD, exact on ``ref_month`` (the pipeline's stages, ``pipeline.run_until``) → horizon
outcomes at 3/6/12 months → ``estimate_effects`` (default estimator: weighted mean difference, CR1 clustered by
person). The truth is the mean individual effect over exactly the matched participants
(``truth_participants.parquet``), see ``validation/truth_check.py``.

Null world: ``finsam_effekt.synth`` with effect scale 0, seed 2024 and 20 000 persons (instead of 60 000, to keep
generation and analysis inside the runtime budget), same design; the event study on the matched rows' paths over
months −12..12.

Run time: each world runs the stages once per module (module fixtures) and only what the assertions read — no
balance, report, sensitivity or cost-benefit; the horizon outcomes only at 3/6/12 (the outcomes stage computes
1..12 and paths ±24 for the cost-benefit and plots). In the shipped world the horizon outcomes are computed once
for the whole cohort (the naive difference's sample) and the matched rows' taken from it (a test checks that they
equal ``horizon_outcomes`` on the matched rows); the null world computes no naive difference.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from finsam_effekt.estimation import event_study
from finsam_effekt.matching import estimate_propensity, match_cohort, match_nearest
from finsam_effekt.options import MEASURES
from finsam_effekt.panel import horizon_outcomes, outcome_paths
from finsam_effekt.schema import outcome_column

ROOT = Path(__file__).parents[1]
OUTCOMES = ["public_support", "self_support"]
HORIZONS = (3, 6, 12)


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "validation" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _config(tmp: Path, inputs: Path) -> Path:
    cfg = yaml.safe_load(
        (ROOT / "analyses" / "example_synthetic" / "config.yaml").read_text(encoding="utf-8")
    )
    cfg["inputs"] = str(inputs)
    cfg["cost_benefit"]["parameters"] = str(ROOT / "configs" / "cost_benefit_parameters.yaml")
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def _analyse(config: Path, truth: pd.DataFrame, *, naive: bool):
    """Stages up to the match (``pipeline.run_until``), then the matched rows' horizon outcomes at 3/6/12 (as the
    outcomes stage computes them) and the weighted mean difference next to the truth. With ``naive`` the
    outcomes are computed once for the whole cohort (the naive sample) and the matched rows' taken from it;
    without it (null world) the matched rows' paths over the event-study window are added instead."""
    tc = _load("truth_check")
    state = tc.prepare(config, stage="match")
    cohort_ho = tc.cohort_outcomes(state, HORIZONS) if naive else None
    data = tc.matched_outcomes(state, HORIZONS, cohort_ho)
    out = tc.truth_frame(
        state,
        truth,
        OUTCOMES,
        HORIZONS,
        estimators=("weighted_mean_diff",),
        data=data,
        cohort_ho=cohort_ho,
        naive=naive,
    ).set_index(["estimator", "outcome", "horizon_months"])
    paths = None
    if not naive:
        keys = data[["person_id", "ref_month", "treated", "weights", "subclass"]]
        paths = outcome_paths(keys, (-12, 12), **tc.outcome_kw(state))
    return state, data, out, paths


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    truth = pd.read_parquet(ROOT / "synthetic_data" / "truth_participants.parquet")
    config = _config(tmp_path_factory.mktemp("shipped"), ROOT / "synthetic_data" / "mapping.yaml")
    return _analyse(config, truth, naive=True)


@pytest.fixture(scope="module")
def null_world(tmp_path_factory, null_world_dir):
    truth = pd.read_parquet(null_world_dir.path / "truth_participants.parquet")
    cfg = _config(tmp_path_factory.mktemp("null"), null_world_dir.mapping)
    return _analyse(cfg, truth, naive=False)


@pytest.mark.slow
def test_shipped_att_within_two_se_of_matched_truth(shipped):
    _, _, out, _ = shipped
    main = out.loc["weighted_mean_diff"]
    assert len(main) == 6
    # the example keeps later-starting controls: its estimand is "start now vs not now" (Sianesi), the truth too
    assert (main["truth_kind"] == "not_now").all()
    # the truth is the mean over the matched participants only: they are fewer than all linkable participants
    assert (main["truth"] < 0).loc["public_support"].all() and (main["truth"] > 0).loc["self_support"].all()
    assert (main["z"].abs() < 2).all(), main[["estimate", "std_error", "truth", "z"]]


@pytest.mark.slow
def test_shipped_naive_difference_is_far_from_truth(shipped):
    """Participants vs every candidate person-month, unweighted: > 2 SE (its own SE) from the truth, all six."""
    _, _, out, _ = shipped
    naive = out.loc["naive_difference"]
    assert len(naive) == 6
    assert (naive["z"].abs() > 2).all(), naive[["estimate", "std_error", "truth", "z"]]
    # the Ashenfelter dip: at k = 3 the naive contrast has the wrong sign for both outcomes
    assert naive.loc[("public_support", 3), "estimate"] > 0 > naive.loc[("self_support", 3), "estimate"]


@pytest.mark.slow
def test_null_world_estimates_consistent_with_zero(null_world):
    _, _, out, _ = null_world
    assert (out["truth"] == 0).all()
    main = out.loc["weighted_mean_diff"]
    assert len(main) == 6
    assert (main["z"].abs() < 2.6).all(), main[["estimate", "std_error", "z"]]


@pytest.mark.slow
def test_null_world_pretrend_test_does_not_reject(null_world):
    _, _, _, paths = null_world
    es = event_study(paths, outcome="public_support", window=(-12, 12))
    assert es.pretrend_df == 11
    assert es.pretrend_p > 0.05, (es.pretrend_wald, es.pretrend_p)


def test_montecarlo_pipeline_smoke(tmp_path):
    """``montecarlo_pipeline.py --reps 2 --persons small``: runs, writes the table with every design (keep,
    censor, censor_ipcw) each against its truth, estimates near the truth."""
    mc = _load("montecarlo_pipeline")
    out = tmp_path / "res.md"
    mc.main(["--reps", "2", "--persons", "small", "--out", str(out)])
    est = pd.read_csv(out.with_suffix(".csv"))
    assert sorted(est.seed.unique()) == [mc.SEED0, mc.SEED0 + 1]
    designs = list(mc.DESIGNS)
    assert designs == ["keep", "censor", "censor_ipcw"]
    assert len(est) == 2 * len(designs) * len(mc.OUTCOMES) * len(mc.HORIZONS)
    assert est.groupby(["seed", "design"]).size().to_dict() == {
        (s, d): 6 for s in (mc.SEED0, mc.SEED0 + 1) for d in designs
    }
    assert set(est.loc[est.design != "keep", "truth"]) == {"never"}
    keep_truth = set(est.loc[est.design == "keep", "truth"])
    assert keep_truth == {"not_now"}  # the generator writes the not-now truth
    assert (est.n_treated > 20).all() and (est.std_error > 0).all()
    # same matched sample: same treated; censoring only removes controls' months after their own start
    by = {d: est[est.design == d].set_index(["seed", "outcome", "horizon_months"]) for d in designs}
    k, c = by["keep"], by["censor"]
    assert (k.n_treated == c.n_treated).all() and (c.n_control <= k.n_control).all()
    assert (c.n_control < k.n_control).any()
    ci = by["censor_ipcw"]  # the weights change the estimate, not who is observed
    assert (ci.n_control == c.n_control).all() and not np.allclose(ci.estimate, c.estimate)
    z = (est.estimate - est.true_effect) / est.std_error
    assert np.all(np.abs(z) < 4.5)
    text = out.read_text(encoding="utf-8")
    assert "all 2 replications done" in text and "--reps 2 --persons small" in text
    assert "| design | truth | outcome | k |" in text
    main = text.split("## ")[0]  # the main table (the dilution-corrected rows and the shares follow)
    assert main.count("| keep |") == 6 and main.count("| censor | never | ") == 6
    assert main.count("| censor_ipcw | never | ") == 6
    assert "## Dilution-corrected estimates" in text and "| contaminated | 2 |" in text
    assert "| keep | never † |" not in text and "has no `_not_now` columns" not in text


def test_montecarlo_truth_per_design():
    """keep → the ``_not_now`` truth when the world has it, else the never-treated truth; censor (with or
    without IPCW) → never."""
    mc = _load("montecarlo_pipeline")
    ho = pd.DataFrame(
        {"person_id": ["a", "b", "c", "x"], "ref_month": ["2019-01"] * 4, "treated": [1, 1, 1, 0]}
    )
    truth = pd.DataFrame({"person_id": ["a", "b", "c", "d"], "ref_month": ["2019-01"] * 4})
    for o in mc.OUTCOMES:
        for k in mc.HORIZONS:
            truth[f"{o}_m{k}"] = [0.0, 1.0, np.nan, 5.0]  # c censored; d not matched
            truth[f"{o}_m{k}_not_now"] = [0.0, 0.5, np.nan, 5.0]
    got = mc.matched_truth(ho, truth)
    assert got[("censor", "self_support", 6)] == ("never", 0.5)
    assert got[("keep", "self_support", 6)] == ("not_now", 0.25)
    old = mc.matched_truth(ho, truth.drop(columns=[c for c in truth if c.endswith("_not_now")]))
    assert old[("keep", "public_support", 12)] == ("never", 0.5)
    assert got[("censor_ipcw", "self_support", 6)] == ("never", 0.5)
    assert len(old) == len(got) == len(mc.DESIGNS) * len(mc.OUTCOMES) * len(mc.HORIZONS)


@pytest.mark.slow
def test_shipped_matched_outcomes_are_horizon_outcomes_of_the_matched_rows(shipped):
    """The shortcut of the fixtures (matched outcomes taken from the cohort's) equals the outcomes stage's
    ``horizon_outcomes`` on the matched rows (checked on every 10th matched row)."""
    state, data, _, _ = shipped
    tc = _load("truth_check")
    rows = state.match.matched.reset_index(drop=True).iloc[::10]
    direct = horizon_outcomes(rows, HORIZONS, **tc.outcome_kw(state))
    cols = [outcome_column(o, k, m) for o in OUTCOMES for m in MEASURES for k in HORIZONS]
    assert direct[cols].notna().any().all()
    pd.testing.assert_frame_equal(
        data[cols].iloc[::10].reset_index(drop=True), direct[cols].reset_index(drop=True), check_exact=True
    )


@pytest.mark.slow
def test_shipped_match_stage_is_match_cohort_and_propensity_then_nearest(shipped):
    """The pipeline's matched table = ``match_cohort`` on the example cohort = ``estimate_propensity`` →
    ``match_nearest`` with the config's settings, bit for bit (plus the participants' subgroup labels)."""
    state, _, _, _ = shipped
    cfg, cohort, m = state.cfg, state.cohort.cohort, state.cfg.matching
    assert [s.name for s in state.records] == ["read & validate", "link", "panel", "cohort", "match"]
    assert (m.distance, m.ratio, m.replace, m.caliper, m.exact, m.m_order) == (
        "glm",
        1,
        False,
        0.2,
        ["ref_month"],
        "largest",
    )
    assert state.outcomes is None
    direct = match_cohort(cohort, m, covariates=cfg.covariates, seed=cfg.seed).matched_data()
    ps = estimate_propensity(cohort, "treated", cfg.covariates, time_effects="ref_month")
    by_hand = match_nearest(
        cohort, "treated", ps.ps, caliper=0.2, std_caliper=True, exact=["ref_month"], m_order="largest"
    ).matched_data()
    pd.testing.assert_frame_equal(direct, by_hand, check_exact=True)
    got = state.match.matched.drop(columns=["insats_type", "public_support_before"])
    pd.testing.assert_frame_equal(got, direct, check_exact=True)
    # about 1 400 (45 % of the participants are anonymous: SynthConfig.contamination)
    assert (state.match.matched["treated"] == 1).sum() > 1000


@pytest.mark.slow
def test_shipped_matched_sample_is_balanced_on_the_status_in_the_month_before_start(shipped):
    """Issue 15: with the month-by-month history in the default covariates the example's matched sample is
    balanced on the status at u−1 (public support, |SMD| ≤ 0.05) and on its main source within chance (with
    ~1 400 matched participants one indicator shows |SMD| up to 0.07 by chance)."""
    from finsam_effekt.balance import balance_table
    from finsam_effekt.diagnostics import chance_smd

    state, _, _, _ = shipped
    co, res = state.cohort.cohort, state.match.result
    tab = balance_table(co, "treated", ["ps_u1", "source_u1"], weights=res.weights).to_frame()
    after = tab[tab["sample"] == "after"].set_index("variable")["smd"]
    assert set(after.index) >= {"ps_u1", "source_u1=sickness", "source_u1=social_assistance"}
    assert abs(after["ps_u1"]) <= 0.05
    n = int((co["treated"] == 1).sum())
    assert after.abs().max() <= chance_smd(n), after.sort_values().to_dict()


def test_run_until_rejects_unknown_and_required_stages(tmp_path):
    from finsam_effekt.config import load_config
    from finsam_effekt.errors import ConfigError
    from finsam_effekt.pipeline import run_until

    cfg = load_config(_config(tmp_path, ROOT / "synthetic_data" / "mapping.yaml"))
    with pytest.raises(
        ConfigError, match=r"unknown stage 'matching'; stages in run order: read, link, panel"
    ):
        run_until(cfg, "matching")
    with pytest.raises(ConfigError, match=r"unknown stage 'report'; stages in run order"):
        run_until(cfg, "match", skip=["report"])
    with pytest.raises(ConfigError, match=r"stages \['cohort'\] are required by the later stages"):
        run_until(cfg, "match", skip=["cohort"])
