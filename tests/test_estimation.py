"""Tests of finsam_effekt.estimation: hand-computed cases, identities between estimators, R fixtures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from finsam_effekt.errors import InputError
from finsam_effekt.estimation import (
    FRAME_COLUMNS,
    SENSITIVITY_COLUMNS,
    abadie_imbens_se,
    callaway_santanna,
    critical_gamma,
    e_value,
    estimate_effects,
    event_study,
    rosenbaum_mcnemar,
    rosenbaum_wilcoxon,
    sensitivity_analysis,
)

FIX = Path(__file__).parent / "fixtures" / "sandwich"


def _fixture(design: str) -> pd.DataFrame:
    md = pd.read_csv(FIX / f"matched_{design}.csv", dtype={"subclass": str, "id": str})
    for v in ("y", "yb"):
        md[f"{v}_m3"] = md[v]
    return md


@pytest.mark.parametrize(("design", "cluster"), [("nn1", "id"), ("nn1", "subclass"), ("nn2_replace", "id")])
def test_matches_r_matchit_and_sandwich_vcovcl(design, cluster):
    """Weighted ATT and regression-adjusted ATT with CR1 SEs equal lm(weights) + sandwich::vcovCL to 1e-8."""
    md = _fixture(design)
    ref = pd.read_csv(FIX / "results.csv", skipinitialspace=True, na_values=["NA"])
    ref = ref[ref["design"] == design]
    got = estimate_effects(
        md,
        outcomes=["y", "yb"],
        horizons=[3],
        measures=["status"],
        treatment="treat",
        covariates=["x1", "x2"],
        cluster=cluster,
    ).to_frame()
    assert list(got.columns) == FRAME_COLUMNS
    merged = got.merge(ref, on=["outcome", "estimator"])
    assert len(merged) == 4
    se_col = "se_person" if cluster == "id" else "se_subclass"
    np.testing.assert_allclose(merged["estimate_x"], merged["estimate_y"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(merged["std_error"], merged[se_col], rtol=0, atol=1e-8)


def _toy() -> pd.DataFrame:
    # 3 treated, 4 controls (one person twice as control), MatchIt-style weights
    return pd.DataFrame(
        {
            "person_id": ["a", "b", "c", "d", "e", "f", "d"],
            "ref_month": ["2020-01"] * 3 + ["2020-01", "2020-01", "2020-01", "2020-02"],
            "treated": [1, 1, 1, 0, 0, 0, 0],
            "weights": [1.0, 1.0, 1.0, 0.5, 1.5, 1.0, 1.0],
            "subclass": ["1", "2", "3", "1", "2", "3", "1"],
            "x": [0.0, 1.0, 2.0, 0.0, 1.0, 2.0, 0.5],
            "public_support_m3": [0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0],
            "public_support_cum3": [1.0, 3.0, 0.0, 3.0, 2.0, 1.0, 3.0],
            "public_support_pre": [0.5, 1.0, 0.25, 0.75, 1.0, 0.0, 1.0],
        }
    )


def test_weighted_mean_difference_hand_computed():
    d = _toy()
    f = estimate_effects(d, outcomes=["public_support"], horizons=[3]).to_frame()
    wmd = f[(f.estimator == "weighted_mean_diff") & (f.measure == "status")].iloc[0]
    # treated mean 1/3; controls (0.5*1 + 1.5*1 + 1*0 + 1*1) / 4 = 0.75
    assert wmd.estimate == pytest.approx(1 / 3 - 0.75, abs=1e-12)
    assert (wmd.n_treated, wmd.n_control) == (3, 4)
    cum = f[(f.estimator == "weighted_mean_diff") & (f.measure == "cumulative")].iloc[0]
    assert cum.estimate == pytest.approx(4 / 3 - (1.5 + 3 + 1 + 3) / 4, abs=1e-12)
    # CR1 by person by hand: ψ_i = w_i e_i (t_i/W1 − (1−t_i)/W0), persons a,b,c,d(two rows),e,f
    y = d.public_support_m3.to_numpy()
    t = d.treated.to_numpy()
    w = d.weights.to_numpy()
    m1, m0 = y[t == 1].mean(), np.average(y[t == 0], weights=w[t == 0])
    psi = np.where(t == 1, (y - m1) / 3, -w * (y - m0) / 4)
    s = pd.Series(psi).groupby(d.person_id.to_numpy()).sum()
    g, n = len(s), len(d)
    se = np.sqrt(g / (g - 1) * (n - 1) / (n - 2) * np.sum(s**2))
    assert wmd.std_error == pytest.approx(se, rel=1e-12)
    assert wmd.ci_lower == pytest.approx(wmd.estimate - 1.959963984540054 * se, rel=1e-9)


def test_matched_did_subtracts_pre_period_mean():
    d = _toy()
    f = estimate_effects(d, outcomes=["public_support"], horizons=[3], estimators=["matched_did"]).to_frame()
    y = d.public_support_m3 - d.public_support_pre
    yc = d.public_support_cum3 - 3 * d.public_support_pre
    t, w = d.treated == 1, d.weights
    exp_s = y[t].mean() - np.average(y[~t], weights=w[~t])
    exp_c = yc[t].mean() - np.average(yc[~t], weights=w[~t])
    assert f.set_index("measure").estimate.to_dict() == pytest.approx({"status": exp_s, "cumulative": exp_c})


def test_matched_did_from_outcome_paths():
    d = _toy().drop(columns="public_support_pre")
    rows = []
    for r in d.itertuples():
        for rel in range(-24, 1):
            rows.append((r.person_id, r.ref_month, r.treated, rel, float(rel % 3 == 0) * r.x))
    paths = pd.DataFrame(rows, columns=["person_id", "ref_month", "treated", "rel_month", "public_support"])
    f = estimate_effects(
        d,
        outcomes=["public_support"],
        horizons=[3],
        measures=["status"],
        estimators=["matched_did"],
        pre_period=paths,
    ).to_frame()
    pre = d.x * 4 / 12  # months −12, −9, −6, −3 of the 12 have value x
    y = d.public_support_m3 - pre
    t = d.treated == 1
    assert f.estimate.iloc[0] == pytest.approx(y[t].mean() - np.average(y[~t], weights=d.weights[~t]))


def _cohort(n: int = 4000, seed: int = 1, effect: float = 0.3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.binomial(1, 0.5, n)
    p = 1 / (1 + np.exp(-(-1.0 + 0.8 * x1 + 0.5 * x2)))
    d = rng.binomial(1, p)
    y = 1.0 + effect * d + 1.5 * x1 - 0.7 * x2 + rng.normal(size=n)
    return pd.DataFrame(
        {
            "person_id": [f"p{i}" for i in range(n)],
            "treated": d,
            "x1": x1,
            "x2": x2,
            "y_m3": y,
            "weights": 1.0,
        }
    )


def test_regression_adjustment_equals_statsmodels_wls_cluster():
    c = _cohort(600)
    c["person_id"] = [f"p{i // 2}" for i in range(len(c))]  # persons recur
    c["weights"] = np.where(c.treated == 1, 1.0, 0.5 + (np.arange(len(c)) % 3))
    f = estimate_effects(
        c,
        outcomes=["y"],
        horizons=[3],
        measures=["status"],
        estimators=["regression_adjustment"],
        covariates=["x1", "x2"],
    ).to_frame()
    x = sm.add_constant(c[["treated", "x1", "x2"]].astype(float))
    sm_fit = sm.WLS(c.y_m3, x, weights=c.weights).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(c.person_id)[0]}
    )
    assert f.estimate.iloc[0] == pytest.approx(sm_fit.params["treated"], abs=1e-10)
    assert f.std_error.iloc[0] == pytest.approx(sm_fit.bse["treated"], rel=1e-8)


def test_ipw_aipw_without_covariates_equal_difference_in_means():
    c = _cohort(500)
    f = (
        estimate_effects(
            c,
            outcomes=["y"],
            horizons=[3],
            measures=["status"],
            estimators=["weighted_mean_diff", "ipw", "aipw"],
            cohort=c,
        )
        .to_frame()
        .set_index("estimator")
    )
    assert f.loc["ipw", "estimate"] == pytest.approx(f.loc["weighted_mean_diff", "estimate"], abs=1e-10)
    assert f.loc["aipw", "estimate"] == pytest.approx(f.loc["weighted_mean_diff", "estimate"], abs=1e-10)
    # influence-function SE of the difference in means (no finite-sample factor) vs CR1
    n = len(c)
    assert f.loc["ipw", "std_error"] == pytest.approx(
        f.loc["weighted_mean_diff", "std_error"], rel=2 / n + 1e-3
    )


def test_ipw_and_aipw_recover_effect_naive_does_not():
    c = _cohort(4000, effect=0.3)
    f = (
        estimate_effects(
            c,
            outcomes=["y"],
            horizons=[3],
            measures=["status"],
            estimators=["weighted_mean_diff", "ipw", "aipw"],
            covariates=["x1", "x2"],
            cohort=c,
        )
        .to_frame()
        .set_index("estimator")
    )
    naive = f.loc["weighted_mean_diff"]
    assert abs(naive.estimate - 0.3) > 5 * naive.std_error  # confounded by x1
    for est in ("ipw", "aipw"):
        r = f.loc[est]
        assert abs(r.estimate - 0.3) < 3 * r.std_error
    assert f.loc["aipw", "std_error"] < f.loc["ipw", "std_error"]  # outcome model removes x-variance


def test_aipw_with_correct_outcome_model_is_unbiased_even_with_wrong_ps():
    # treatment depends on x1² (logit on x1 is misspecified); outcome linear in x1 → AIPW consistent
    rng = np.random.default_rng(5)
    n = 20000
    x1 = rng.normal(size=n)
    d = rng.binomial(1, 1 / (1 + np.exp(-(-1.5 + 0.8 * x1**2))))
    y = 2.0 * x1 + 0.5 * d + rng.normal(size=n)
    c = pd.DataFrame({"person_id": np.arange(n).astype(str), "treated": d, "x1": x1, "y_m3": y})
    r = (
        estimate_effects(
            c,
            outcomes=["y"],
            horizons=[3],
            measures=["status"],
            estimators=["aipw"],
            covariates=["x1"],
            cohort=c,
            weights=None,
        )
        .to_frame()
        .iloc[0]
    )
    assert abs(r.estimate - 0.5) < 3 * r.std_error


def test_joint_covariance_diagonal_equals_se_and_draws_are_seeded():
    c = _cohort(400)
    c["y_m6"] = c.y_m3 + np.random.default_rng(0).normal(size=len(c))
    res = estimate_effects(c, outcomes=["y"], horizons=[3, 6], measures=["status"])
    f = res.to_frame()
    v = res.cov("weighted_mean_diff")
    se = f[f.estimator == "weighted_mean_diff"].std_error.to_numpy()
    np.testing.assert_allclose(np.sqrt(np.diag(v)), se, rtol=1e-12)
    assert v.iloc[0, 1] > 0  # y_m6 shares y_m3's noise
    d1 = res.draws("weighted_mean_diff", 50_000, seed=3)
    d2 = res.draws("weighted_mean_diff", 50_000, seed=3)
    pd.testing.assert_frame_equal(d1, d2)
    np.testing.assert_allclose(np.cov(d1.to_numpy(), rowvar=False), v.to_numpy(), rtol=0.05)


def test_cluster_bootstrap_is_seeded_and_close_to_cr1():
    c = _cohort(300)
    kw = dict(outcomes=["y"], horizons=[3], measures=["status"], se="bootstrap", n_boot=300)
    a = estimate_effects(c, random_state=7, **kw).to_frame()
    b = estimate_effects(c, random_state=7, **kw).to_frame()
    pd.testing.assert_frame_equal(a, b)
    cr1 = estimate_effects(c, outcomes=["y"], horizons=[3], measures=["status"]).to_frame()
    np.testing.assert_allclose(a.estimate, cr1.estimate)
    np.testing.assert_allclose(a.std_error, cr1.std_error, rtol=0.2)


def test_missing_outcome_rows_are_dropped_per_outcome():
    d = _toy()
    d.loc[0, "public_support_m3"] = np.nan
    f = estimate_effects(
        d, outcomes=["public_support"], horizons=[3], estimators=["weighted_mean_diff"]
    ).to_frame()
    f = f.set_index("measure")
    assert f.loc["status", "n_treated"] == 2 and f.loc["cumulative", "n_treated"] == 3
    assert f.loc["status", "estimate"] == pytest.approx(0.5 - 0.75)


def test_subgroups_follow_the_treated_unit_of_each_matched_set():
    d = _toy()
    d["sex"] = ["K", "M", "K", "M", "K", "K", "M"]  # controls' own sex differs from their treated's
    f = (
        estimate_effects(
            d,
            outcomes=["public_support"],
            horizons=[3],
            measures=["status"],
            estimators=["weighted_mean_diff"],
            subgroups=["sex"],
            cluster="subclass",
        )
        .to_frame()
        .set_index("subgroup")
    )
    # sex=K: treated a (set 1), c (set 3); controls d, d(2nd row) in set 1 and f in set 3
    assert f.loc["sex=K", "n_treated"] == 2 and f.loc["sex=K", "n_control"] == 3
    assert f.loc["sex=K", "estimate"] == pytest.approx(0.0 - (0.5 * 1 + 1 * 0 + 1 * 1) / 2.5)
    assert f.loc["sex=M", "n_treated"] == 1 and f.loc["sex=M", "n_control"] == 1


def test_age_band_subgroup_is_derived_from_age():
    c = _cohort(200)
    c["age"] = np.where(np.arange(200) % 2 == 0, 22, 45)
    f = estimate_effects(
        c, outcomes=["y"], horizons=[3], measures=["status"], subgroups=["age_band"]
    ).to_frame()
    assert set(f.subgroup) == {"all", "age_band=16-24", "age_band=40-49"}


def test_input_errors_are_actionable():
    d = _toy()
    with pytest.raises(InputError, match="unknown estimator"):
        estimate_effects(d, estimators=["ols"])
    with pytest.raises(InputError, match="pass cohort="):
        estimate_effects(d, estimators=["ipw"])
    with pytest.raises(InputError, match="matched_did needs pre-period"):
        estimate_effects(d.drop(columns="public_support_pre"), estimators=["matched_did"])
    with pytest.raises(InputError, match="lacks column"):
        estimate_effects(d.drop(columns="weights"))
    with pytest.raises(InputError, match="no horizon outcome columns"):
        estimate_effects(d[["person_id", "treated", "weights"]])
    with pytest.raises(InputError, match="must be 0/1"):
        estimate_effects(d.assign(treated=2))


def test_summary_is_readable():
    res = estimate_effects(_toy(), outcomes=["public_support"], horizons=[3])
    text = res.summary()
    assert "weighted_mean_diff" in text and "CR1 by person_id" in text and "public_support" in text


def test_abadie_imbens_hand_computed():
    # treated at positions 0,1,2; controls 3,4; control 3 is used twice (K=2), control 4 once; M = 1
    y = np.array([3.0, 5.0, 4.0, 1.0, 2.0])
    t = np.array([1, 1, 1, 0, 0])
    dist = np.array([0.1, 0.2, 0.9, 0.15, 0.8])
    tau, se = abadie_imbens_se(y, t, dist, [[3], [3], [4]])
    assert tau == pytest.approx(((3 - 1) + (5 - 1) + (4 - 2)) / 3)
    resid = np.array([2, 4, 2]) - tau
    # σ̂² of control 3 from its nearest control (4): ½ (1 − 2)² ; K(K−1)/M² = 2
    v = (np.sum(resid**2) + 2 * 0.5 * (1 - 2) ** 2) / 9
    assert se == pytest.approx(np.sqrt(v))


def test_abadie_imbens_option_in_estimate_effects():
    d = pd.DataFrame(
        {
            "person_id": list("abcde"),
            "treated": [1, 1, 1, 0, 0],
            "y_m3": [3.0, 5.0, 4.0, 1.0, 2.0],
            "distance": [0.1, 0.2, 0.9, 0.15, 0.8],
            "weights": [1.0, 1.0, 1.0, 2 * 2 / 3, 1 * 2 / 3],  # MatchIt: K/M scaled to sum to n_control
        }
    )
    pairs = pd.DataFrame({"treated_row": [0, 1, 2], "control_row": [3, 3, 4]})
    f = (
        estimate_effects(
            d,
            outcomes=["y"],
            horizons=[3],
            measures=["status"],
            estimators=["weighted_mean_diff"],
            se="abadie_imbens",
            pairs=pairs,
        )
        .to_frame()
        .iloc[0]
    )
    tau, se = abadie_imbens_se(
        d.y_m3.to_numpy(), d.treated.to_numpy(), d.distance.to_numpy(), [[3], [3], [4]]
    )
    assert f.estimate == pytest.approx(tau) and f.std_error == pytest.approx(se)
    with pytest.raises(InputError, match="needs pairs="):
        estimate_effects(d, outcomes=["y"], horizons=[3], measures=["status"], se="abadie_imbens")


def _staggered_panel(noise: float = 0.0, seed: int = 0) -> tuple[pd.DataFrame, dict[int, float]]:
    """Units first treated in months 12..17 of 2019-01 + i, or never; effect 0.1·e in event time e ≥ 0."""
    rng = np.random.default_rng(seed)
    n, n_months = 600, 36
    unit_fe = rng.normal(size=n)
    time_fe = np.sin(np.arange(n_months) / 3.0)
    g = np.where(np.arange(n) % 3 == 0, -1, 12 + np.arange(n) % 6 + 6 * (np.arange(n) % 2))
    rows = []
    for i in range(n):
        for t in range(n_months):
            e = t - g[i]
            eff = 0.1 * (e + 1) if g[i] >= 0 and e >= 0 else 0.0
            rows.append((f"p{i}", t, unit_fe[i] + time_fe[t] + eff + noise * rng.normal(), g[i]))
    df = pd.DataFrame(rows, columns=["person_id", "t", "benefit_sek", "g"])
    df["month"] = [f"{2019 + t // 12}-{t % 12 + 1:02d}" for t in df.t]
    df["first_treated"] = [None if gg < 0 else f"{2019 + gg // 12}-{gg % 12 + 1:02d}" for gg in df.g]
    return df, {e: 0.1 * (e + 1) for e in range(0, 13)}


def test_callaway_santanna_recovers_dynamic_effects_without_noise():
    panel, truth = _staggered_panel()
    res = callaway_santanna(
        panel, outcomes=["benefit_sek"], horizons=(3, 6), measures=("status", "cumulative")
    )
    f = res.to_frame().set_index(["horizon_months", "measure"])
    assert f.loc[(3, "status"), "estimate"] == pytest.approx(truth[3], abs=1e-10)
    assert f.loc[(6, "status"), "estimate"] == pytest.approx(truth[6], abs=1e-10)
    assert f.loc[(3, "cumulative"), "estimate"] == pytest.approx(sum(truth[e] for e in (1, 2, 3)), abs=1e-10)
    assert (f.estimator == "cs_did").all()


def test_callaway_santanna_inference_and_integration():
    panel, truth = _staggered_panel(noise=0.5, seed=2)
    res = callaway_santanna(panel, outcomes=["benefit_sek"], horizons=(3,))
    r = res.to_frame().iloc[0]
    assert abs(r.estimate - truth[3]) < 3 * r.std_error and 0.01 < r.std_error < 0.2
    # the same numbers through estimate_effects(panel=...)
    m = pd.DataFrame(
        {"person_id": ["p1", "p2"], "treated": [1, 0], "weights": 1.0, "benefit_sek_m3": [0.0, 1.0]}
    )
    f = estimate_effects(
        m, outcomes=["benefit_sek"], horizons=[3], measures=["status"], estimators=["cs_did"], panel=panel
    ).to_frame()
    assert f.estimate.iloc[0] == pytest.approx(r.estimate) and f.std_error.iloc[0] == pytest.approx(
        r.std_error
    )


def _matched_paths(pretrend: float, n_pairs: int = 150, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_pairs):
        u = 24 + i % 12
        for role in (1, 0):
            fe = rng.normal()
            pid = f"t{i}" if role else f"c{i % 100}"  # controls recur
            for rel in range(-8, 9):
                t = u + rel
                eff = -0.2 if (role and rel >= 0) else 0.0
                trend = pretrend * rel if (role and rel < 0) else 0.0
                y = fe + 0.05 * np.cos(t) - 0.3 * (rel == -1) + eff + trend + 0.1 * rng.normal()
                rows.append((pid, f"{2018 + u // 12}-{u % 12 + 1:02d}", role, rel, t, y))
    df = pd.DataFrame(rows, columns=["person_id", "ref_month", "treated", "rel_month", "t", "public_support"])
    df["month"] = [f"{2018 + t // 12}-{t % 12 + 1:02d}" for t in df.t]
    df["weights"] = 1.0
    return df


def test_event_study_recovers_effect_and_pretrend_test():
    flat = event_study(_matched_paths(0.0), outcome="public_support", window=(-8, 8))
    tab = flat.table.set_index("rel_month")
    assert tab.loc[-1, "estimate"] == 0.0
    post = tab.loc[0:8, "estimate"]
    assert abs(post.mean() + 0.2) < 0.05
    assert flat.pretrend_df == 7 and flat.pretrend_p > 0.01
    trend = event_study(_matched_paths(0.05), outcome="public_support", window=(-8, 8))
    assert trend.pretrend_p < 1e-6
    assert "Pre-trend test" in trend.summary()
    assert list(trend.to_frame().columns)[:2] == ["outcome", "rel_month"]


def test_rosenbaum_bounds_reduce_to_classical_tests_at_gamma_1():
    from scipy import stats

    rng = np.random.default_rng(4)
    yt = rng.normal(0.6, 1, 100)
    yc = rng.normal(0, 1, 100)
    ref = stats.wilcoxon(yt - yc, alternative="greater", method="approx", correction=False).pvalue
    assert rosenbaum_wilcoxon(yt, yc, 1.0) == pytest.approx(ref, rel=1e-10)
    bt = np.array([1] * 30 + [0] * 20 + [1] * 10 + [0] * 40)
    bc = np.array([0] * 30 + [1] * 20 + [1] * 10 + [0] * 40)
    # 50 discordant pairs, 30 in the treated-higher direction: exact sign test
    assert rosenbaum_mcnemar(bt, bc, 1.0) == pytest.approx(stats.binomtest(30, 50, 0.5, "greater").pvalue)
    # the direction follows the data: swapping the arms gives the same bound
    assert rosenbaum_mcnemar(bc, bt, 2.0) == pytest.approx(rosenbaum_mcnemar(bt, bc, 2.0))
    # bounds grow with Γ, and the critical Γ is where the bound crosses alpha
    g = critical_gamma(lambda gg: rosenbaum_wilcoxon(yt, yc, gg), 0.05)
    assert g > 1 and rosenbaum_wilcoxon(yt, yc, g) == pytest.approx(0.05, abs=1e-6)
    assert rosenbaum_wilcoxon(yt, yc, 1.5) > rosenbaum_wilcoxon(yt, yc, 1.0)
    assert critical_gamma(lambda gg: rosenbaum_mcnemar(bt, bc, gg)) == 1.0  # p(Γ=1) ≈ 0.10: not significant


def test_e_value_hand_computed():
    assert e_value(2.0) == pytest.approx(2 + np.sqrt(2))
    assert e_value(0.5) == pytest.approx(2 + np.sqrt(2))
    assert e_value(1.0) == 1.0


def _matched_pairs_world(effect: float = -0.15, n: int = 400, seed: int = 3):
    rng = np.random.default_rng(seed)
    rows, prow = [], []
    for i in range(n):
        base = rng.uniform(0.2, 0.8)
        for role in (1, 0):
            pid = f"t{i}" if role else f"c{i}"
            rm = f"2020-{1 + i % 12:02d}"
            p_post = np.clip(base + (effect if role else 0), 0, 1)
            r = {"person_id": pid, "ref_month": rm, "treated": role, "weights": 1.0, "subclass": i + 1}
            for k in (3, 6):
                r[f"public_support_m{k}"] = float(rng.random() < p_post)
                r[f"benefit_sek_cum{k}"] = k * 5000 * p_post + rng.normal(0, 2000)
            rows.append(r)
            for rel in range(-24, 1):
                prow.append((pid, rm, role, rel, float(rng.random() < base), 1.0, False))
    paths = pd.DataFrame(
        prow,
        columns=["person_id", "ref_month", "treated", "rel_month", "public_support", "weights", "censored"],
    )
    return pd.DataFrame(rows), paths


def test_sensitivity_analysis_table():
    data, paths = _matched_pairs_world()
    res = sensitivity_analysis(data, paths=paths, horizons=(3, 6))
    f = res.to_frame()
    assert list(f.columns) == SENSITIVITY_COLUMNS
    v = f.set_index(["check", "outcome", "horizon_months", "measure", "statistic"])["value"]
    # real effect: significant at Γ = 1 with a critical Γ above 1
    assert v[("rosenbaum_mcnemar", "public_support", 6, "status", "p_value_gamma_1")] < 0.01
    assert v[("rosenbaum_mcnemar", "public_support", 6, "status", "critical_gamma")] > 1.1
    assert v[("rosenbaum_wilcoxon", "benefit_sek", 3, "cumulative", "n_pairs")] == 400
    # the McNemar row agrees with the function on the pairs
    t = data[data.treated == 1].public_support_m3.to_numpy()
    c = data[data.treated == 0].public_support_m3.to_numpy()
    assert v[("rosenbaum_mcnemar", "public_support", 3, "status", "p_value_gamma_1")] == pytest.approx(
        rosenbaum_mcnemar(t, c)
    )
    rr = v[("e_value", "public_support", 3, "status", "risk_ratio")]
    assert rr == pytest.approx(t.mean() / c.mean())
    assert v[("e_value", "public_support", 3, "status", "e_value")] == pytest.approx(e_value(rr))
    # placebo checks: no pre-period difference by construction
    for key in [("placebo_outcome", "public_support", -6), ("placebo_start", "public_support", 6)]:
        est = v[(*key, "status", "estimate")]
        se = v[(*key, "status", "std_error")]
        assert abs(est) < 3.5 * se
    assert "critical_gamma" in res.summary()


def test_abadie_imbens_with_match_result_after_index_reset():
    from finsam_effekt.matching import match_nearest

    c = _cohort(300, seed=9)
    c["ref_month"] = "2020-01"
    c["ps"] = c.x1 * 0.8 + c.x2 * 0.5
    m = match_nearest(c, "treated", "ps", ratio=2, replace=True)
    md = m.matched_data().reset_index(drop=True)  # as the pipeline hands it on
    f = (
        estimate_effects(
            md,
            outcomes=["y"],
            horizons=[3],
            measures=["status"],
            estimators=["weighted_mean_diff"],
            se="abadie_imbens",
            pairs=m,
        )
        .to_frame()
        .iloc[0]
    )
    # direct computation on the cohort positions of MatchResult.pairs
    used = np.unique(np.r_[m.pairs.treated_row, m.pairs.control_row])
    t_rows = np.unique(m.pairs.treated_row)
    order = np.r_[t_rows, np.setdiff1d(used, t_rows)]
    loc = pd.Series(np.arange(len(order)), index=order)
    matches = [loc[m.pairs.control_row[m.pairs.treated_row == t]].to_numpy() for t in t_rows]
    d = np.r_[np.ones(len(t_rows)), np.zeros(len(order) - len(t_rows))]
    tau, se = abadie_imbens_se(c.y_m3.to_numpy()[order], d, m.distance[order], matches)
    assert f.estimate == pytest.approx(tau, abs=1e-10)  # MatchIt weights reproduce the matching estimator
    assert f.std_error == pytest.approx(se, rel=1e-10)


def test_wls_bootstrap_replicates_equal_refits():
    from finsam_effekt.estimation import _wls, _wls_bootstrap

    rng = np.random.default_rng(1)
    n = 60
    cl = np.repeat(np.arange(20), 3)
    x = np.column_stack([np.ones(n), rng.binomial(1, 0.5, n), rng.normal(size=n)])
    y = x @ [1.0, 0.5, 2.0] + rng.normal(size=n)
    w = rng.uniform(0.5, 2, n)
    counts = rng.multinomial(20, np.full(20, 0.05), size=5).astype(float)
    reps = _wls_bootstrap(y, x, w, 1, cl, counts)
    for b in range(5):
        assert reps[b] == pytest.approx(_wls(y, x, w * counts[b, cl])[0], rel=1e-10)


def test_montecarlo_smoke():
    """Two small replications of validation/montecarlo.py: the pipeline runs and estimates are near the truth."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "montecarlo", Path(__file__).parents[1] / "validation" / "montecarlo.py"
    )
    mc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mc)
    est = pd.concat([mc.one_replication(s, n_persons=1500) for s in (11, 12)], ignore_index=True)
    assert set(est.estimator) == set(mc.ESTIMATORS)
    z = (est.estimate - est.truth) / est.std_error
    assert np.all(np.abs(z) < 4.5)
    s = mc.summarise(est)
    assert len(s) == len(mc.ESTIMATORS) * len(mc.OUTCOMES) * 2 * len(mc.HORIZONS)
    assert "| estimator |" in mc.to_markdown(s, "cmd", 1.0, 1500)


@pytest.mark.slow
@pytest.mark.parametrize("effect_scale", [1.0, 0.0])
def test_end_to_end_truth_on_synthetic_world(tmp_path, make_world, effect_scale):
    """synth → link → panel → cohort → match → outcomes → estimate_effects against the same participants' truth;
    the naive participants-vs-everyone difference is far off; with effect scale 0 no pre-trend is detected."""
    import importlib.util

    import yaml

    from finsam_effekt.synth import Mess, SynthConfig

    root = Path(__file__).parents[1]
    spec = importlib.util.spec_from_file_location("truth_check", root / "validation" / "truth_check.py")
    tc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tc)
    world = make_world(
        SynthConfig(
            persons=6000,
            seed=11,
            start="2018-01",
            end="2021-12",
            effect_scale=effect_scale,
            mess=Mess(duplicate_spells=False),
        ),
    )
    cfg = yaml.safe_load(
        (root / "analyses" / "example_synthetic" / "config.yaml").read_text(encoding="utf-8")
    )
    cfg["inputs"] = str(world.mapping)
    cfg["cost_benefit"]["parameters"] = str(root / "configs" / "cost_benefit_parameters.yaml")
    cfg["window"] = {"start": "2018-01", "end": "2021-12"}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    ctx = tc.prepare(tmp_path / "config.yaml")
    truth = pd.read_parquet(world.path / "truth_participants.parquet")
    out = tc.truth_frame(ctx, truth, ["public_support", "self_support"], (3, 6, 12)).set_index(
        ["estimator", "outcome", "horizon_months"]
    )
    if effect_scale == 0:
        assert (out["truth"] == 0).all()
    main = out.loc["weighted_mean_diff"]
    assert (main["z"].abs() < 3).all(), main[["estimate", "std_error", "truth", "z"]]
    naive = out.loc["naive_difference"]
    assert (naive.loc[(slice(None), [3, 6]), "z"].abs() > 3).all(), naive[["estimate", "truth", "z"]]
    if effect_scale == 0:
        es = event_study(ctx.outcomes.paths, outcome="public_support", window=(-12, 12))
        assert es.pretrend_p > 0.01


def test_cached_designs_give_the_same_numbers_as_separate_calls():
    c = _cohort(300, seed=4)
    c["person_id"] = [f"p{i // 3}" for i in range(len(c))]
    c["sex"] = np.where(np.arange(len(c)) % 2 == 0, "K", "M")
    c["z_m3"] = c.y_m3 * 2 + 1
    c.loc[c.index % 7 == 0, "z_m3"] = np.nan  # a different censoring pattern than y
    kw = dict(horizons=[3], measures=["status"], estimators=["weighted_mean_diff", "regression_adjustment"])
    kw |= dict(covariates=["x1", "x2"], subgroups=["sex"])
    joint = estimate_effects(c, outcomes=["y", "z"], **kw).to_frame()
    for o in ("y", "z"):
        alone = estimate_effects(c, outcomes=[o], **kw).to_frame()
        pd.testing.assert_frame_equal(joint[joint.outcome == o].reset_index(drop=True), alone)


def _weighted_censored_paths(pretrend: float) -> pd.DataFrame:
    df = _matched_paths(pretrend)
    rng = np.random.default_rng(7)
    df["weights"] = rng.choice([0.5, 1.0, 2.0], len(df))
    df.loc[rng.random(len(df)) < 0.1, "public_support"] = np.nan
    return df


def test_event_study_fwl_equals_panelols():
    # the FWL computation replaces linearmodels PanelOLS (two-way effects, weights, clustered, debiased):
    # same coefficients, SEs, covariance and pre-trend test on an unbalanced, weighted panel
    for pre in (0.0, 0.05):
        df = _weighted_censored_paths(pre)
        new = event_study(df, window=(-8, 8))
        old = event_study(df, window=(-8, 8), engine="linearmodels")
        assert list(new.cov.index) == list(old.cov.index)
        np.testing.assert_allclose(new.table["estimate"], old.table["estimate"], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(new.table["std_error"], old.table["std_error"], rtol=1e-9)
        np.testing.assert_allclose(new.cov.to_numpy(), old.cov.to_numpy(), rtol=1e-8, atol=1e-15)
        assert new.pretrend_df == old.pretrend_df
        assert new.pretrend_wald == pytest.approx(old.pretrend_wald, rel=1e-9)


def test_event_study_rejects_repeated_unit_months_and_unknown_engine():
    df = _matched_paths(0.0)
    with pytest.raises(InputError, match="repeated unit × month rows"):
        event_study(pd.concat([df, df.iloc[:3]]), window=(-8, 8))
    with pytest.raises(InputError, match="engine must be 'fwl' or 'linearmodels'"):
        event_study(df, window=(-8, 8), engine="lsmr")


def test_placebo_rows_equal_the_pivot_table_reference():
    # the placebo checks now reshape with groupby/unstack (no product of the unit levels); they must give the
    # same numbers as the former pivot_table(dropna=False) reshape
    from finsam_effekt.estimation import _wmd

    data, paths = _matched_pairs_world()
    paths = paths.copy()
    paths.loc[paths.index[::7], "public_support"] = np.nan
    f = sensitivity_analysis(data, paths=paths, horizons=(3, 6)).to_frame()
    v = f.set_index(["check", "outcome", "horizon_months", "statistic"])["value"]
    unit = ["person_id", "ref_month", "treated"]
    p = paths.assign(public_support=paths.public_support.where(~paths.censored.astype(bool)))
    wide = p.pivot_table(
        index=unit, columns="rel_month", values=["public_support"], aggfunc="first", dropna=False
    )
    base = p.drop_duplicates(unit).set_index(unit)[["weights"]].reindex(wide.index).reset_index()
    for r in (-6, -12):
        est, se, _, _ = _wmd(
            base, wide[("public_support", r)].to_numpy(float), "treated", "weights", "person_id"
        )
        assert v[("placebo_outcome", "public_support", r, "estimate")] == est
        assert v[("placebo_outcome", "public_support", r, "std_error")] == se


def test_sample_design_rows_equal_design_of_the_subset():
    from finsam_effekt.estimation import _design, _SampleDesign

    rng = np.random.default_rng(5)
    n = 300
    df = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "edu": rng.choice(["high", "low", "mid", None], n),  # missing becomes a level
            "reg": rng.choice(["q", "r"], n),
            "flat": 2.0,  # constant: dropped
        }
    )
    covs = ["a", "edu", "reg", "flat"]
    src = _SampleDesign(df, covs)
    subsets = {
        "all": None,
        "random half": rng.random(n) < 0.5,
        "first level absent": (df["edu"] != "high").to_numpy(),  # another level becomes the dropped one
        "one level of reg": (df["reg"] == "q").to_numpy(),  # reg's dummy vanishes
    }
    for name, keep in subsets.items():
        ref = _design(df if keep is None else df[keep], covs)
        got = src.rows(keep)
        assert got.shape == ref.shape and np.array_equal(got, ref), name
    df.loc[3, "a"] = np.nan
    with pytest.raises(InputError, match=r"covariate\(s\) \['a'\] have missing values"):
        _SampleDesign(df, covs).rows(None)
    assert _SampleDesign(df, covs).rows(np.arange(n) != 3).shape[0] == n - 1  # the NaN row not kept: fine


def test_ipw_aipw_shared_fits_equal_the_reference_per_estimate():
    """The fast path (one propensity/outcome-model fit per sample and kept rows, shared by outcomes, horizons and
    both estimators) gives the numbers of the straightforward ``_dr_att`` on each estimate's kept rows."""
    from finsam_effekt.estimation import _design, _dr_att

    c = _cohort(900, seed=6)
    c["person_id"] = [f"p{i // 3}" for i in range(len(c))]  # persons recur: clusters of 3 rows
    c["sex"] = np.where(np.arange(len(c)) % 2 == 0, "K", "M")
    c["edu"] = np.where(np.arange(len(c)) % 5 == 0, "low", "high")
    c["y_m6"] = c["y_m3"] + 0.5 * c["x1"]
    c.loc[c.index % 6 == 0, "y_m6"] = np.nan  # censored at 6 months: other kept rows, other fit
    c["z_m3"] = c["y_m3"] ** 2
    c["z_m6"] = c["y_m6"] - c["x2"]
    covs = ["x1", "x2", "edu"]
    res = estimate_effects(
        c,
        outcomes=["y", "z"],
        horizons=[3, 6],
        measures=["status"],
        estimators=["ipw", "aipw"],
        covariates=covs,
        subgroups=["sex"],
        cohort=c,
    )
    f = res.to_frame()
    assert len(f) == 2 * 2 * 2 * 3  # estimators × outcomes × horizons × (all, K, M)
    for r in f.itertuples():
        sub = c if r.subgroup == "all" else c[c["sex"] == r.subgroup.split("=")[1]]
        y = sub[f"{r.outcome}_m{r.horizon_months}"].to_numpy(float)
        ok = np.isfinite(y)
        s = sub[ok]
        att, psi = _dr_att(
            y[ok], s["treated"].to_numpy(float), _design(s, covs), np.ones(ok.sum()), r.estimator == "aipw"
        )
        sums = pd.Series(psi).groupby(s["person_id"].to_numpy()).sum()
        g = len(sums)
        se = np.sqrt(g / (g - 1) * np.sum(sums**2))
        assert r.estimate == pytest.approx(att, rel=1e-10, abs=1e-12)
        assert r.std_error == pytest.approx(se, rel=1e-10)
        assert (r.n_treated, r.n_control) == (int(s["treated"].sum()), int((s["treated"] == 0).sum()))


def _cs_reference(panel: pd.DataFrame, outcome: str, e: int) -> tuple[float, pd.Series]:
    """θ(e) and ψ per person by the straightforward loop over groups (the implementation before the vectorised
    one): dense units × months matrix, NaN where a unit-month is absent."""
    ids, index = pd.factorize(panel["person_id"])
    t = (
        panel["month"].str[:4].astype(int).to_numpy() * 12
        + panel["month"].str[5:7].astype(int).to_numpy()
        - 1
    )
    t0 = t.min()
    y = np.full((len(index), t.max() - t0 + 1), np.nan)
    y[ids, t - t0] = panel[outcome].to_numpy(float)
    ft = panel.drop_duplicates("person_id").set_index("person_id")["first_treated"].reindex(index)
    g_rel = np.array(
        [10**9 if f is None or pd.isna(f) else int(f[:4]) * 12 + int(f[5:7]) - 1 - t0 for f in ft]
    )
    atts, ns, psis = [], [], []
    for g in np.unique(g_rel[(g_rel >= 1) & (g_rel < y.shape[1])]):
        if g + e >= y.shape[1]:
            continue
        dy = y[:, g + e] - y[:, g - 1]
        tr = np.isfinite(dy) & (g_rel == g)
        co = np.isfinite(dy) & (g_rel > g + e)
        if tr.sum() == 0 or co.sum() == 0:
            continue
        psi = np.zeros(len(index))
        psi[tr] = (dy[tr] - dy[tr].mean()) / tr.sum()
        psi[co] = -(dy[co] - dy[co].mean()) / co.sum()
        atts.append(dy[tr].mean() - dy[co].mean())
        ns.append(tr.sum())
        psis.append(psi)
    w = np.asarray(ns, float) / np.sum(ns)
    return float(np.dot(w, atts)), pd.Series(
        np.sum([a * p for a, p in zip(w, psis, strict=True)], axis=0), index=index
    )


def _censored_staggered_panel() -> pd.DataFrame:
    panel, _ = _staggered_panel(noise=0.5, seed=3)
    rng = np.random.default_rng(8)
    # censoring: some persons leave (death/emigration) or arrive later; a few zero months are absent (sparse)
    t = panel["t"].to_numpy()
    pid = panel["person_id"].str[1:].astype(int).to_numpy()
    gone = np.where(pid % 7 == 0, 20 + pid % 10, 99)
    arrive = np.where(pid % 11 == 0, 3 + pid % 5, 0)
    keep = (t < gone) & (t >= arrive)
    panel = panel[keep].copy()
    panel.loc[rng.random(len(panel)) < 0.3, "benefit_sek"] = 0.0
    return panel


def test_callaway_santanna_equals_the_group_loop_reference():
    panel = _censored_staggered_panel()
    res = callaway_santanna(panel, outcomes=["benefit_sek"], horizons=(1, 2, 3, 6), measures=("status",))
    f = res.to_frame().set_index("horizon_months")
    for e in (1, 2, 3, 6):
        est, psi = _cs_reference(panel, "benefit_sek", e)
        g = int((psi != 0).sum())
        se = np.sqrt(g / (g - 1) * np.sum(psi**2))
        assert f.loc[e, "estimate"] == pytest.approx(est, rel=1e-12)
        assert f.loc[e, "std_error"] == pytest.approx(se, rel=1e-10)


def test_callaway_santanna_sparse_panel_with_units_equals_dense_panel():
    dense = _censored_staggered_panel()
    first = dense.groupby("person_id").agg(
        first_treated=("first_treated", "first"), observed_from=("month", "min"), observed_to=("month", "max")
    )
    units = first.reset_index()
    units.loc[len(units)] = ["p_gone", None, "2020-05", "2020-04"]  # no observed month: left out
    # the sparse panel: only non-zero rows, plus rows outside a unit's range and of unknown persons (ignored)
    sparse = dense.loc[dense["benefit_sek"] != 0, ["person_id", "month", "benefit_sek"]]
    noise = pd.DataFrame(
        {"person_id": ["p0", "nobody"], "month": ["2016-01", "2019-05"], "benefit_sek": [50.0, 7.0]}
    )
    sparse = pd.concat([noise, sparse], ignore_index=True)
    kw = dict(outcomes=["benefit_sek"], horizons=(3, 6), measures=("status", "cumulative"))
    a = callaway_santanna(dense, **kw).to_frame()
    b = callaway_santanna(sparse, units=units, **kw).to_frame()
    pd.testing.assert_frame_equal(a, b, rtol=1e-12)
    # through estimate_effects: clusters are the units (persons without any panel row included)
    m = pd.DataFrame(
        {"person_id": ["p1", "p2"], "treated": [1, 0], "weights": 1.0, "benefit_sek_m3": [0.0, 1.0]}
    )
    sel = dict(outcomes=["benefit_sek"], horizons=[3], measures=["status"], estimators=["cs_did"])
    c = estimate_effects(m, panel=sparse, panel_units=units, **sel).to_frame()
    assert c.estimate.iloc[0] == pytest.approx(a.estimate.iloc[0], rel=1e-12)
    assert c.std_error.iloc[0] == pytest.approx(a.std_error.iloc[0], rel=1e-12)
    with pytest.raises(InputError, match="units: person_id must be unique"):
        callaway_santanna(sparse, units=pd.concat([units, units]), **kw)


def test_ipw_notes_a_propensity_logit_that_does_not_converge():
    c = _cohort(600, seed=9)
    c["grp"] = np.where(np.arange(len(c)) % 2 == 0, "A", "B")
    b = c["grp"] == "B"
    c.loc[b, "treated"] = (c.loc[b, "x1"] > 0).astype(int)  # x1 separates treatment completely in B
    res = estimate_effects(
        c,
        outcomes=["y"],
        horizons=[3],
        measures=["status"],
        estimators=["ipw"],
        covariates=["x1"],
        subgroups=["grp"],
        cohort=c,
    )
    bad = [n for n in res.notes if "did not converge" in n]
    assert len(bad) == 1 and "did not converge in grp=B (1 of its samples" in bad[0]
