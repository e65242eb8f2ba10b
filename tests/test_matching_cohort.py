"""matching.match_cohort: the config's matching settings in one call, equal to the pipeline's match stage and to
the explicit composition estimate_propensity → match_nearest / ipw_weights, bit for bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finsam_effekt import pipeline as pl
from finsam_effekt.config import MatchingSettings, parse_config
from finsam_effekt.errors import ConfigError, InputError
from finsam_effekt.linkage import LinkageResult
from finsam_effekt.matching import (
    CohortMatch,
    match_cohort,
)

COVS = ["x1", "x2", "sex"]


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    """Three reference months; 25 treated and 150 candidate control person-months each, drawn from 300 persons
    (so a person is a candidate in several months); treatment more likely with higher x1."""
    rng = np.random.default_rng(11)
    rows = []
    for u in ("2019-01", "2019-02", "2019-03"):
        ids = rng.choice(300, 175, replace=False)
        x1 = rng.normal(size=175)
        p = 1 / (1 + np.exp(-(x1 - 1.6)))
        treated = np.zeros(175, int)
        treated[np.argsort(-(p + rng.uniform(0, 0.3, 175)))[:25]] = 1
        rows.append(
            pd.DataFrame(
                {
                    "person_id": [f"p{i:03d}" for i in ids],
                    "ref_month": u,
                    "treated": treated,
                    "x1": x1,
                    "x2": rng.poisson(3, 175).astype(float),
                    "sex": rng.choice(["K", "M"], 175),
                }
            )
        )
    out = pd.concat(rows, ignore_index=True)
    # treated persons are distinct from every control row (as participants are not candidates at their own u)
    out.loc[out["treated"] == 1, "person_id"] = [f"t{i:03d}" for i in range(int(out["treated"].sum()))]
    return out


def _reference_ps(cohort: pd.DataFrame, time_effects: bool) -> np.ndarray:
    """The propensity score by statsmodels on dummies made here (an independent fit of the same model)."""
    import statsmodels.api as sm

    x = cohort[["x1", "x2"]].assign(sex_M=(cohort["sex"] == "M").astype(float))
    if time_effects:
        x = x.join(pd.get_dummies(cohort["ref_month"], prefix="m", drop_first=True, dtype=float))
    x.insert(0, "const", 1.0)
    fit = sm.Logit(cohort["treated"].to_numpy(float), x).fit(method="newton", disp=False)
    return fit.predict(x)


SETTINGS = {
    "default": {},
    "logit_2to1_replace": {"distance": "logit", "ratio": 2, "replace": True},
    "unit_id_no_caliper_no_time": {"unit_id": True, "caliper": None, "time_effects": False},
    "random_order_smallest_caliper": {"m_order": "random", "caliper": 0.05},
    "reuse_max_2": {"reuse_max": 2, "exact": ["ref_month", "sex"]},
    "ipw_trimmed": {"method": "ipw", "ipw_trim": 0.02},
}


@pytest.mark.parametrize("name", list(SETTINGS))
def test_match_cohort_applies_every_setting(cohort, name):
    """Each setting of the config's matching section shows in the result, checked against independent
    computations: the score (statsmodels), the distance scale, exact strata, the caliper in SD units, the ratio,
    reuse limits and MatchIt's weights recomputed from the pairs (or the ATT weights e/(1−e) under IPW)."""
    m = MatchingSettings.model_validate(SETTINGS[name])
    res = match_cohort(cohort, m, covariates=COVS, seed=5)
    assert isinstance(res, CohortMatch) and res.method == m.method and res.settings is m
    ps = _reference_ps(cohort, m.time_effects)
    np.testing.assert_allclose(res.propensity.ps, ps, rtol=1e-7, atol=1e-10)
    d = ps if m.distance == "glm" else np.log(ps / (1 - ps))
    np.testing.assert_allclose(res.distance, d, rtol=1e-6, atol=1e-9)
    t = cohort["treated"].to_numpy() == 1
    if m.method == "ipw":
        e = np.clip(ps, m.ipw_trim, 1 - m.ipw_trim) if m.ipw_trim else ps
        w = np.where(t, 1.0, e / (1 - e))
        w[~t] *= (~t).sum() / w[~t].sum()
        np.testing.assert_allclose(res.weights, w, rtol=1e-6)
        assert res.match is None and "subclass" not in res.matched_data()
        return
    pairs = res.match.pairs
    tr, co = pairs["treated_row"].to_numpy(), pairs["control_row"].to_numpy()
    assert t[tr].all() and not t[co].any()
    for col in m.exact:  # exact strata
        assert (cohort[col].to_numpy()[tr] == cohort[col].to_numpy()[co]).all(), col
    if m.caliper is not None:  # MatchIt: caliper × SD of the distance over all units
        width = m.caliper * np.std(res.distance, ddof=1)
        assert (np.abs(res.distance[tr] - res.distance[co]) <= width + 1e-12).all()
    per_treated = pairs.groupby("treated_row").size()
    assert (per_treated <= m.ratio).all()
    uses = pd.Series(co).value_counts()
    if m.reuse_max is not None:  # MatchIt: reuse.max overrides replace
        assert uses.max() <= m.reuse_max
    elif not m.replace:
        assert uses.max() == 1
    if m.unit_id:  # each person at most once as a control, across months
        assert cohort["person_id"].to_numpy()[co].tolist() == list(
            dict.fromkeys(cohort["person_id"].to_numpy()[co])
        )
    # MatchIt's weights: matched treated 1; a control Σ 1/(controls of its treated), scaled to sum to n controls
    w = np.zeros(len(cohort))
    np.add.at(w, co, 1.0 / per_treated.reindex(tr).to_numpy())
    w[np.unique(tr)] = 1.0
    c = (~t) & (w > 0)
    w[c] *= c.sum() / w[c].sum()
    np.testing.assert_allclose(res.weights, w, rtol=1e-12)
    assert 0 < c.sum() <= m.ratio * 75


def test_keyword_options_and_mappings_are_the_config_settings(cohort):
    base = MatchingSettings()
    a = match_cohort(cohort, base, covariates=COVS, seed=1, ratio=2, distance="logit")
    b = match_cohort(cohort, {"ratio": 2, "distance": "logit"}, covariates=COVS, seed=1)
    c = match_cohort(cohort, covariates=COVS, seed=1, ratio=2, distance="logit")
    assert base.ratio == 1  # the given settings are not changed
    assert a.settings == b.settings == c.settings and a.settings.exact == ["ref_month"]
    for r in (b, c):
        pd.testing.assert_frame_equal(r.matched_data(), a.matched_data(), check_exact=True)
    assert "ratio 2:1" in a.summary() and "Distance: linear predictor" in a.summary()
    ipw = match_cohort(cohort, covariates=COVS, seed=1, method="ipw")
    assert "e/(1−e) (no trimming)" in ipw.summary()
    ss = ipw.sample_sizes()
    assert ss.loc["all", "treated"] == ss.loc["matched", "treated"] == 75
    assert ss.loc["matched", "control"] == (cohort["treated"] == 0).sum()


def test_match_cohort_errors(cohort):
    with pytest.raises(
        ConfigError, match=r"match_cohort: matching: ratioo: unknown key \(check the spelling"
    ):
        match_cohort(cohort, covariates=COVS, seed=1, ratioo=2)
    with pytest.raises(ConfigError, match=r"match_cohort: matching: m_order: Input should be"):
        match_cohort(cohort, {"m_order": "biggest"}, covariates=COVS, seed=1)
    with pytest.raises(ConfigError, match="settings must be the config's MatchingSettings or a mapping"):
        match_cohort(cohort, "nearest", covariates=COVS, seed=1)
    with pytest.raises(InputError, match=r"covariates \['age'\] are not in the cohort table"):
        match_cohort(cohort, covariates=["x1", "age"], seed=1)
    with pytest.raises(InputError, match="the cohort has no 'ref_month' column"):
        match_cohort(cohort.drop(columns="ref_month"), covariates=COVS, seed=1, time_effects=False)


def _cfg(matching: dict, tmp_path):
    return parse_config(
        {
            "inputs": {"tables": {"population": {"path": "population.csv"}}},
            "window": {"start": "2019-01", "end": "2019-03"},
            "covariates": COVS,
            "matching": matching,
            "seed": 77,
        },
        tmp_path,
        "<test>",
    )


def _link(cohort: pd.DataFrame) -> pl.LinkResult:
    """A link stage result holding only what the match stage reads: the participants' SUS subgroup fields."""
    tr = cohort[cohort["treated"] == 1]
    participants = tr[["person_id", "ref_month"]].assign(
        insats_type="preparatory", public_support_before="lt1y"
    )
    empty = pd.DataFrame()
    return pl.LinkResult(LinkageResult(participants, empty, empty, empty))


@pytest.mark.parametrize("name", ["default", "logit_2to1_replace", "ipw_trimmed"])
def test_pipeline_match_stage_is_match_cohort(cohort, name, tmp_path):
    """The pipeline's match stage = match_cohort with the config's settings and seed, plus the participants'
    subgroup labels on the treated rows only."""
    cfg = _cfg(SETTINGS[name], tmp_path)
    res = pl.stages.match(cfg, _link(cohort), pl.CohortResult(cohort))
    direct = match_cohort(cohort, cfg.matching, covariates=COVS, seed=77)
    got, matched = res.matched, direct.matched_data()
    assert res.rows() == len(got) == len(matched)
    labels = ["insats_type", "public_support_before"]
    pd.testing.assert_frame_equal(got.drop(columns=labels), matched, check_exact=True)
    assert (got.loc[got["treated"] == 1, "insats_type"] == "preparatory").all()
    assert got.loc[got["treated"] == 0, "insats_type"].isna().all()
    np.testing.assert_array_equal(res.result.propensity.ps, direct.propensity.ps)
    np.testing.assert_array_equal(res.result.weights, direct.weights)
    facts = res.facts()
    if direct.match is None:
        assert res.match is None and "unmatched_treated" not in facts
    else:
        pd.testing.assert_frame_equal(res.match.pairs, direct.match.pairs, check_exact=True)
        assert facts["unmatched_treated"] == len(direct.match.unmatched)
    assert facts["matched_treated"] == int((matched["treated"] == 1).sum())
