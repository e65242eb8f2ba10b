"""matching.match_cohort: the config's matching settings in one call, equal to the pipeline's match stage and to
the explicit composition estimate_propensity → match_nearest / ipw_weights, bit for bit."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from finsam_effekt import pipeline as pl
from finsam_effekt.config import MatchingSettings, parse_config
from finsam_effekt.errors import ConfigError, InputError
from finsam_effekt.matching import (
    CohortMatch,
    estimate_propensity,
    ipw_weights,
    match_cohort,
    match_nearest,
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


def _by_hand(cohort: pd.DataFrame, m: MatchingSettings, seed: int):
    """The pipeline's match stage as written before match_cohort existed."""
    ps = estimate_propensity(cohort, "treated", COVS, time_effects="ref_month" if m.time_effects else None)
    distance = ps.ps if m.distance == "glm" else ps.linear_predictor
    if m.method == "ipw":
        trim = (m.ipw_trim, 1 - m.ipw_trim) if m.ipw_trim else None
        w = ipw_weights(np.asarray(ps.ps, float), cohort["treated"].to_numpy(), trim=trim)
        keep = w > 0
        matched = cohort.loc[keep].copy()
        matched["distance"] = np.asarray(distance, float)[keep]
        matched["weights"] = w[keep]
        return ps, None, w, matched
    res = match_nearest(
        cohort,
        "treated",
        distance,
        ratio=m.ratio,
        replace=m.replace,
        caliper=m.caliper,
        std_caliper=m.std_caliper,
        exact=list(m.exact),
        m_order=m.m_order,
        unit_id="person_id" if m.unit_id else None,
        reuse_max=m.reuse_max,
        random_state=seed,
    )
    return ps, res, res.weights, res.matched_data()


SETTINGS = {
    "default": {},
    "logit_2to1_replace": {"distance": "logit", "ratio": 2, "replace": True},
    "unit_id_no_caliper_no_time": {"unit_id": True, "caliper": None, "time_effects": False},
    "random_order_smallest_caliper": {"m_order": "random", "caliper": 0.05},
    "reuse_max_2": {"reuse_max": 2, "exact": ["ref_month", "sex"]},
    "ipw_trimmed": {"method": "ipw", "ipw_trim": 0.02},
}


@pytest.mark.parametrize("name", list(SETTINGS))
def test_match_cohort_equals_propensity_then_match_nearest(cohort, name):
    m = MatchingSettings.model_validate(SETTINGS[name])
    res = match_cohort(cohort, m, covariates=COVS, seed=5)
    ps, match, w, matched = _by_hand(cohort, m, seed=5)
    assert isinstance(res, CohortMatch) and res.method == m.method and res.settings is m
    np.testing.assert_array_equal(res.propensity.ps, ps.ps)
    np.testing.assert_array_equal(res.weights, w)
    pd.testing.assert_frame_equal(res.matched_data(), matched, check_exact=True)
    if match is None:
        assert res.match is None and "subclass" not in res.matched_data()
        assert (res.weights[cohort["treated"] == 1] == 1).all()
    else:
        pd.testing.assert_frame_equal(res.match.pairs, match.pairs, check_exact=True)
        pd.testing.assert_frame_equal(res.match.unmatched, match.unmatched, check_exact=True)
        assert 0 < (res.matched_data()["treated"] == 0).sum() <= m.ratio * 75


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


def _ctx(cohort: pd.DataFrame, matching: dict, tmp_path) -> pl._Ctx:
    cfg = parse_config(
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
    tr = cohort[cohort["treated"] == 1]
    participants = tr[["person_id", "ref_month"]].assign(
        insats_type="preparatory", public_support_before="lt1y"
    )
    ctx = pl._Ctx(cfg)
    ctx.data["cohort"] = cohort
    ctx.data["linkage"] = SimpleNamespace(participants=participants)
    return ctx


@pytest.mark.parametrize("name", ["default", "logit_2to1_replace", "ipw_trimmed"])
def test_pipeline_match_stage_is_match_cohort(cohort, name, tmp_path):
    """The pipeline's matched table = match_cohort's matched rows plus the participants' subgroup labels."""
    ctx = _ctx(cohort, SETTINGS[name], tmp_path)
    rows = pl._stage_match(ctx)
    ps, match, w, matched = _by_hand(cohort, ctx.cfg.matching, seed=77)
    got = ctx.data["matched"]
    assert rows == len(got) == len(matched)
    labels = ["insats_type", "public_support_before"]
    pd.testing.assert_frame_equal(got.drop(columns=labels), matched, check_exact=True)
    assert (got.loc[got["treated"] == 1, "insats_type"] == "preparatory").all()
    assert got.loc[got["treated"] == 0, "insats_type"].isna().all()
    np.testing.assert_array_equal(ctx.data["propensity"].ps, ps.ps)
    if match is None:
        assert ctx.data["match"] is None
        np.testing.assert_array_equal(ctx.data["ipw_weights"], w)
    else:
        pd.testing.assert_frame_equal(ctx.data["match"].pairs, match.pairs, check_exact=True)
        assert ctx.facts["unmatched_treated"] == len(match.unmatched)
    assert ctx.facts["matched_treated"] == int((matched["treated"] == 1).sum())
