"""Truth on the shipped synthetic world (issue 7) and a smoke run of the pipeline Monte Carlo.

Shipped world: ``synthetic_data/`` (60 000 persons, seed 2024, effect scale 1, no hidden confounding) through the
design of ``analyses/example_synthetic/config.yaml``: read → link → panel → cohort (candidate controls: the
config's seeded 10 % sample of candidate person-months, seed 20240101) → propensity-score matching 1:1 without
replacement, caliper 0.2 SD, exact on ``ref_month`` → horizon outcomes → ``estimate_effects`` (default estimator:
weighted mean difference, CR1 clustered by person). The truth is the mean individual effect over exactly the
matched participants (``truth_participants.parquet``), see ``validation/truth_check.py``.

Null world: ``finsam_effekt.synth`` with effect scale 0, seed 2024 and 20 000 persons (instead of 60 000, to keep
generation and analysis inside the runtime budget), same design.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from finsam_effekt.estimation import event_study

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


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    tc = _load("truth_check")
    ctx = tc.prepare(_config(tmp_path_factory.mktemp("shipped"), ROOT / "synthetic_data" / "mapping.yaml"))
    truth = pd.read_parquet(ROOT / "synthetic_data" / "truth_participants.parquet")
    out = tc.truth_frame(ctx, truth, OUTCOMES, HORIZONS).set_index(["estimator", "outcome", "horizon_months"])
    return ctx, out


@pytest.fixture(scope="module")
def null_world(tmp_path_factory):
    from finsam_effekt.synth import SynthConfig, generate

    tc = _load("truth_check")
    tmp = tmp_path_factory.mktemp("null")
    generate(tmp, SynthConfig(persons=20_000, seed=2024, effect_scale=0.0))
    ctx = tc.prepare(_config(tmp, tmp / "mapping.yaml"))
    truth = pd.read_parquet(tmp / "truth_participants.parquet")
    out = tc.truth_frame(ctx, truth, OUTCOMES, HORIZONS).set_index(["estimator", "outcome", "horizon_months"])
    return ctx, out


@pytest.mark.slow
def test_shipped_att_within_two_se_of_matched_truth(shipped):
    _, out = shipped
    main = out.loc["weighted_mean_diff"]
    assert len(main) == 6
    # the truth is the mean over the matched participants only: they are fewer than all linkable participants
    assert (main["truth"] < 0).loc["public_support"].all() and (main["truth"] > 0).loc["self_support"].all()
    assert (main["z"].abs() < 2).all(), main[["estimate", "std_error", "truth", "z"]]


@pytest.mark.slow
def test_shipped_naive_difference_is_far_from_truth(shipped):
    """Participants vs every candidate person-month, unweighted: > 2 SE (its own SE) from the truth, all six."""
    _, out = shipped
    naive = out.loc["naive_difference"]
    assert len(naive) == 6
    assert (naive["z"].abs() > 2).all(), naive[["estimate", "std_error", "truth", "z"]]
    # the Ashenfelter dip: at k = 3 the naive contrast has the wrong sign for both outcomes
    assert naive.loc[("public_support", 3), "estimate"] > 0 > naive.loc[("self_support", 3), "estimate"]


@pytest.mark.slow
def test_null_world_estimates_consistent_with_zero(null_world):
    _, out = null_world
    assert (out["truth"] == 0).all()
    main = out.loc["weighted_mean_diff"]
    assert len(main) == 6
    assert (main["z"].abs() < 2.6).all(), main[["estimate", "std_error", "z"]]


@pytest.mark.slow
def test_null_world_pretrend_test_does_not_reject(null_world):
    ctx, _ = null_world
    es = event_study(ctx.data["paths"], outcome="public_support", window=(-12, 12))
    assert es.pretrend_df == 11
    assert es.pretrend_p > 0.05, (es.pretrend_wald, es.pretrend_p)


def test_montecarlo_pipeline_smoke(tmp_path):
    """``montecarlo_pipeline.py --reps 2 --persons small``: runs, writes the table, estimates near the truth."""
    mc = _load("montecarlo_pipeline")
    out = tmp_path / "res.md"
    mc.main(["--reps", "2", "--persons", "small", "--out", str(out)])
    est = pd.read_csv(out.with_suffix(".csv"))
    assert sorted(est.seed.unique()) == [mc.SEED0, mc.SEED0 + 1]
    assert len(est) == 2 * len(mc.OUTCOMES) * len(mc.HORIZONS)
    assert (est.n_treated > 20).all() and (est.std_error > 0).all()
    z = (est.estimate - est.truth) / est.std_error
    assert np.all(np.abs(z) < 4.5)
    text = out.read_text(encoding="utf-8")
    assert "all 2 replications done" in text and "--reps 2 --persons small" in text
    assert text.count("| public_support |") == 3 and text.count("| self_support |") == 3
