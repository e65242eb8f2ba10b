"""The propensity model fitted on a case-control sample (``estimate_propensity(fit_rows=)``, the config's
``matching.propensity_fit_rows``): every row scored with the sample's slopes and the prior-corrected intercept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finsam_effekt.errors import InputError
from finsam_effekt.matching import estimate_propensity, linear_predictor

TRUE = {"x": 0.8, "k": -0.3, "sex=M": 0.5}
MONTH_EFFECT = {"2020-01": -4.0, "2020-02": -3.5, "2020-03": -4.5}


def world(n: int = 300_000, seed: int = 1) -> pd.DataFrame:
    """A logit world with calendar-month effects: treatment is rare (≈ 2.5 %), as participants among candidates."""
    rng = np.random.default_rng(seed)
    month = rng.choice(list(MONTH_EFFECT), n)
    x = rng.normal(size=n)
    k = rng.integers(0, 13, n).astype(np.int32)  # a count, as ps_months_12
    sex = rng.choice(["K", "M"], n)
    eta = (
        pd.Series(month).map(MONTH_EFFECT).to_numpy()
        + TRUE["x"] * x
        + TRUE["k"] * (k - 6) / 3
        + TRUE["sex=M"] * (sex == "M")
    )
    t = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(np.int32)
    return pd.DataFrame(
        {
            "treated": t,
            "x": x,
            "k": (k - 6) / 3,
            "sex": pd.Categorical(sex),
            "ref_month": pd.Categorical(month),
        }
    )


COVS = ["x", "k", "sex"]


def test_a_fit_rows_limit_above_the_rows_changes_nothing():
    data = world(20_000)
    full = estimate_propensity(data, "treated", COVS, time_effects="ref_month")
    same = estimate_propensity(data, "treated", COVS, time_effects="ref_month", fit_rows=20_000, seed=5)
    np.testing.assert_array_equal(same.ps, full.ps)
    pd.testing.assert_series_equal(same.params, full.params)
    assert same.control_sampling_rate is None and same.n_fit is None


def test_the_sample_recovers_the_slopes_and_the_corrected_intercept_scores_every_row():
    data = world()
    full = estimate_propensity(data, "treated", COVS, time_effects="ref_month")
    # the scorer a covariate at a time gives the fit's own x'β
    np.testing.assert_allclose(linear_predictor(full, data), full.linear_predictor, rtol=0, atol=1e-12)
    fit = estimate_propensity(data, "treated", COVS, time_effects="ref_month", fit_rows=60_000, seed=5)
    t = data["treated"].to_numpy()
    assert fit.n_fit == pytest.approx(60_000, rel=0.02)
    assert fit.control_sampling_rate == pytest.approx((60_000 - t.sum()) / (t == 0).sum())
    assert (fit.n_treated, fit.n_control) == (full.n_treated, full.n_control) == (t.sum(), (t == 0).sum())
    assert len(fit.ps) == len(data)
    # the slopes: the sample's estimate of the true coefficients (SE ≈ 0.02-0.04 with ~7 500 treated rows)
    for term, value in TRUE.items():
        assert fit.params[term] == pytest.approx(value, abs=0.12), term
        assert fit.params[term] == pytest.approx(full.params[term], abs=0.08), term
    # the intercept corrected by log(rate): the scores are on the full pool's scale — their mean is the share of
    # treated rows (as the full fit's is exactly, by its score equations), not 1/rate times it
    assert fit.ps.mean() == pytest.approx(t.mean(), rel=0.03)
    assert np.corrcoef(fit.linear_predictor, full.linear_predictor)[0, 1] > 0.999
    # every row's score is the model's x'β, also on rows it was not fitted on
    np.testing.assert_allclose(fit.linear_predictor, linear_predictor(fit, data), rtol=0, atol=1e-12)
    np.testing.assert_allclose(fit.ps, 1 / (1 + np.exp(-fit.linear_predictor)), rtol=1e-15)
    assert "case-control sample" in fit.summary()
    # seeded: the same seed gives the same model, another seed another sample
    again = estimate_propensity(data, "treated", COVS, time_effects="ref_month", fit_rows=60_000, seed=5)
    np.testing.assert_array_equal(again.ps, fit.ps)
    other = estimate_propensity(data, "treated", COVS, time_effects="ref_month", fit_rows=60_000, seed=6)
    assert not np.array_equal(other.ps, fit.ps)


def test_a_limit_that_leaves_no_room_for_controls_is_refused():
    data = world(20_000)
    n_t = int(data["treated"].sum())
    with pytest.raises(
        InputError,
        match=rf"propensity model: {n_t} treated rows leave {1000 - n_t} of matching.propensity_fit_rows = 1000 "
        r"for the controls \(fewer than one per treated row\); raise propensity_fit_rows",
    ):
        estimate_propensity(data, "treated", COVS, time_effects="ref_month", fit_rows=1000)


def test_the_match_stage_fits_on_a_sample_above_the_configured_rows_and_says_so(tmp_path, small_world):
    """``matching.propensity_fit_rows`` below the cohort's rows: the match stage's model is fitted on a sample
    (every participant in it) and the report's key figures state the candidates' share; the default fits on all."""
    import yaml

    from finsam_effekt.config import load_config
    from finsam_effekt.pipeline import run_until

    def config(**matching) -> object:
        data = {
            "inputs": str(small_world.path / "mapping.yaml"),
            "window": {"start": "2019-01", "end": "2020-06"},
            "cost_benefit": {"enabled": False},
            "matching": matching,
        }
        path = tmp_path / f"config_{len(matching)}.yaml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        return load_config(path)

    full = run_until(config(), "match")
    rows = len(full.cohort.cohort)
    assert "propensity_fit_control_share" not in full.match.facts()
    sampled = run_until(config(propensity_fit_rows=rows // 2), "match")
    ps = sampled.match.result.propensity
    assert ps.n_fit == pytest.approx(rows // 2, rel=0.05) and len(ps.ps) == rows
    share = sampled.match.facts()["propensity_fit_control_share"]
    assert share == ps.control_sampling_rate and 0.3 < share < 0.6
    assert np.corrcoef(ps.linear_predictor, full.match.result.propensity.linear_predictor)[0, 1] > 0.95
