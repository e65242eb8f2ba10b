"""contamination: the expected share of matched controls who are anonymous participants, by hand and on a
generated world whose anonymous participants are known (``truth_anonymous.parquet``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finsam_effekt import months
from finsam_effekt.contamination import (
    CORRECTED_COLUMNS,
    ContaminationEstimate,
    expected_contamination,
    linear_predictor,
    plateau_corrected,
    registration_counts,
)
from finsam_effekt.diagnostics import CONTAMINATION_THRESHOLD
from finsam_effekt.matching import PropensityResult, estimate_propensity
from finsam_effekt.pipeline.results import ContaminationResult
from finsam_effekt.report import apply_disclosure_control


def test_registration_counts_per_forbund_and_month():
    regs = pd.DataFrame(
        {
            "registration_kind": ["person", "anonymous", "anonymous", "person", "anonymous"],
            "forbund_id": ["F1", "F1", "F1", "F2", "F2"],
            "start_date": pd.to_datetime(
                ["2020-01-05", "2020-01-31", "2020-02-01", "2020-01-10", "2019-12-31"]
            ),
        }
    )
    out = registration_counts(regs)
    assert out.to_dict("records") == [
        {"forbund_id": "F1", "ref_month": "2020-01", "person": 1, "anonymous": 1},
        {"forbund_id": "F1", "ref_month": "2020-02", "person": 0, "anonymous": 1},
        {"forbund_id": "F2", "ref_month": "2019-12", "person": 0, "anonymous": 1},
        {"forbund_id": "F2", "ref_month": "2020-01", "person": 1, "anonymous": 0},
    ]


def _hand_case():
    """One month u = 2020-01, förbund F1 (two treated) and F2 (one treated); candidates c1..c5 (c5 outside any
    förbund). The propensity model is logit e = log 0.25 + log 4 · z: odds 0.25 at z = 0 and 1 at z = 1."""
    cohort = pd.DataFrame(
        {
            "person_id": ["t1", "t2", "t3", "c1", "c2", "c3", "c4", "c5"],
            "ref_month": "2020-01",
            "treated": [1, 1, 1, 0, 0, 0, 0, 0],
            "forbund_id": ["F1", "F1", "F2", "F1", "F1", "F1", "F2", None],
            "z": [1, 1, 1, 0, 1, 0, 1, 0],
        }
    )
    params = pd.Series({"const": np.log(0.25), "z": np.log(4.0)})
    lp = params["const"] + params["z"] * cohort["z"].to_numpy(float)
    prop = PropensityResult(
        ps=1 / (1 + np.exp(-lp)),
        linear_predictor=lp,
        params=params,
        covariates=["z"],
        time_effects=None,
        n_treated=3,
        n_control=5,
        converged=True,
        design_columns=["const", "z"],
    )
    weights = np.array([1, 1, 1, 1, 1, 0, 1, 0], float)  # matched controls: c1, c2, c4
    regs = pd.DataFrame(
        {
            "forbund_id": ["F1", "F1", "F2", "F2"],
            "ref_month": ["2019-06", "2020-01", "2019-06", "2020-01"],
            "person": [4, 4, 1, 1],
            "anonymous": [6, 2, 1, 0],
        }
    )
    # linkable former participants at u: two in F1 with z = 1, one in F2 with z = 0
    former = pd.DataFrame(
        {
            "person_id": ["f1", "f2", "f3"],
            "ref_month": "2020-01",
            "treated": 0,
            "forbund_id": ["F1", "F1", "F2"],
            "z": [1, 1, 0],
        }
    )
    return cohort, prop, weights, regs, former


def test_linear_predictor_scores_new_rows_with_the_fitted_model():
    rng = np.random.default_rng(4)
    df = pd.DataFrame(
        {
            "x": rng.normal(size=400),
            "g": rng.choice(["a", "b", "c"], size=400),
            "ref_month": rng.choice(["2020-01", "2020-02", "2020-03"], size=400),
        }
    )
    df["treated"] = (rng.random(400) < 1 / (1 + np.exp(1 - df["x"]))).astype(int)
    fit = estimate_propensity(df, "treated", ["x", "g"], time_effects="ref_month")
    np.testing.assert_allclose(linear_predictor(fit, df), fit.linear_predictor, rtol=1e-12)
    # a level the model never saw counts 0, as the reference month's effect for an unseen month
    new = pd.DataFrame({"x": [0.5], "g": ["zzz"], "ref_month": ["2021-01"]})
    assert linear_predictor(fit, new)[0] == pytest.approx(fit.params["const"] + 0.5 * fit.params["x"])


def test_expected_share_by_hand():
    cohort, prop, weights, regs, former = _hand_case()
    est = expected_contamination(cohort, prop, weights, regs, former)
    # now: ρ_F1 = 2 treated / 4 person registrations in the cohort's month = 0.5, Â = 2 anonymous · 0.5 = 1,
    # spread over F1's candidates c1, c2, c3 by their odds 0.25, 1, 0.25; F2 has no anonymous registration in u
    now = np.array([1 / 6, 2 / 3, 1 / 6, 0.0, 0.0])
    # before: r_F1 = 8 anonymous / 8 person registrations = 1, r_F2 = 1/2. Scored by the model the former
    # participants sit at the two scores of z = 1 (two) and z = 0 (one), the candidates two at each, so the
    # (saturated) logit along the score gives g = 1 at z = 1 and 1/2 at z = 0. Cells: F1 2 former / 3 candidates,
    # F2 1 / 1, overall 3 / 4: factors 8/9 and 4/3.
    before = np.array([1 * 0.5 * 8 / 9, 1 * 1 * 8 / 9, 1 * 0.5 * 8 / 9, 0.5 * 1 * 4 / 3, 0.0])
    pi = np.minimum(1.0, now + before)
    np.testing.assert_allclose(est.pi[3:], pi, rtol=1e-6)
    assert (est.pi[:3] == 0).all()
    matched = [0, 1, 3]  # c1, c2, c4
    assert est.share_matched == pytest.approx(pi[matched].mean(), rel=1e-6)
    assert est.share_matched_now == pytest.approx(now[matched].mean(), rel=1e-6)
    assert est.share_matched_before == pytest.approx(before[matched].mean(), rel=1e-6)
    assert est.share_candidates == pytest.approx(pi.sum() / 5, rel=1e-6)
    assert est.n_anonymous == 2
    f = est.by_forbund.set_index("forbund_id")
    assert f.loc["F1", "ratio"] == 1.0 and f.loc["F2", "ratio"] == 0.5
    assert f.loc["F1", "first_starts_per_registration"] == 0.5
    # a sampled candidate pool holds a share of the anonymous starters of the month
    half = expected_contamination(cohort, prop, weights, regs, None, sample_rate=0.5)
    np.testing.assert_allclose(half.pi[3:], 0.5 * now, rtol=1e-6)
    assert half.share_matched_before == 0.0
    # no anonymous registration: nobody to dilute the effect, and nothing to warn about
    none = expected_contamination(cohort, prop, weights, regs.assign(anonymous=0), former)
    assert none.share_matched == none.share_candidates == 0.0 and none.warnings() == ()


def test_former_share_on_a_case_control_sample_recovers_the_full_fit():
    # above fit_rows the density ratio g(s) of the "before" part is fitted on every former participant and a
    # seeded sample of the candidates, its intercept corrected by log(rate): g is then the full fit's up to
    # sampling noise, the same for the same seed, and identical to the full fit when fit_rows is not exceeded
    rng = np.random.default_rng(11)
    n_c, n_t, n_f = 40_000, 400, 2_000
    z = rng.normal(size=n_c + n_t)
    cohort = pd.DataFrame(
        {
            "person_id": [f"p{i}" for i in range(n_c + n_t)],
            "ref_month": rng.choice(["2020-01", "2020-02"], n_c + n_t),
            "treated": np.r_[np.zeros(n_c, int), np.ones(n_t, int)],
            "forbund_id": rng.choice(["F1", "F2"], n_c + n_t),
            "z": z,
        }
    )
    params = pd.Series({"const": -4.0, "z": 0.8})
    lp = params["const"] + params["z"] * z
    prop = PropensityResult(
        ps=1 / (1 + np.exp(-lp)), linear_predictor=lp, params=params, covariates=["z"], time_effects=None,
        n_treated=n_t, n_control=n_c, converged=True, design_columns=["const", "z"],
    )  # fmt: skip
    weights = np.r_[(rng.random(n_c) < 0.01).astype(float), np.ones(n_t)]
    former = pd.DataFrame(
        {
            "person_id": [f"f{i}" for i in range(n_f)],
            "ref_month": rng.choice(["2020-01", "2020-02"], n_f),
            "treated": 0,
            "forbund_id": rng.choice(["F1", "F2"], n_f),
            "z": rng.normal(0.7, 1.1, n_f),  # former participants sit higher on the score than candidates
        }
    )
    regs = pd.DataFrame(
        {"forbund_id": ["F1", "F2"], "ref_month": "2019-06", "person": [50, 40], "anonymous": [30, 10]}
    )
    full = expected_contamination(cohort, prop, weights, regs, former)
    same = expected_contamination(cohort, prop, weights, regs, former, fit_rows=n_c + n_f, seed=1)
    np.testing.assert_array_equal(same.pi, full.pi)
    part = expected_contamination(cohort, prop, weights, regs, former, fit_rows=12_000, seed=1)
    again = expected_contamination(cohort, prop, weights, regs, former, fit_rows=12_000, seed=1)
    np.testing.assert_array_equal(part.pi, again.pi)
    cand = full.pi[:n_c] > 0
    assert full.share_matched_before > 0.01
    ratio = part.pi[:n_c][cand] / full.pi[:n_c][cand]
    assert abs(np.median(ratio) - 1) < 0.05 and np.quantile(np.abs(ratio - 1), 0.9) < 0.15
    assert part.share_matched_before == pytest.approx(full.share_matched_before, rel=0.05)
    other = expected_contamination(cohort, prop, weights, regs, former, fit_rows=12_000, seed=2)
    assert not np.array_equal(other.pi, part.pi)


def test_dilution_correction_and_warning():
    cohort, prop, weights, regs, former = _hand_case()
    est = expected_contamination(cohort, prop, weights, regs, former)
    effects = pd.DataFrame(
        {
            "outcome": "public_support",
            "horizon_months": [3, 3, 12, 3],
            "measure": ["status", "status", "status", "cumulative"],
            "subgroup": ["all", "sex=K", "all", "all"],
            "estimator": "weighted_mean_diff",
            "estimate": [-0.1, -0.2, -0.3, -0.2],
            "std_error": [0.02, 0.03, 0.04, 0.05],
            "ci_lower": [-0.14, -0.26, -0.38, -0.3],
            "ci_upper": [-0.06, -0.14, -0.22, -0.1],
        }
    )
    out = est.corrected(effects)
    assert list(out.columns) == [*CORRECTED_COLUMNS, "n_treated", "n_control"] and len(out) == 3  # "all" only
    s, sn, sb = est.share_matched, est.share_matched_now, est.share_matched_before
    assert sn + sb > s > 0.5  # the hand case is heavily contaminated (π capped at 1 for c2)
    r = out.iloc[0]
    assert r.share_contaminated == s and (r.share_now, r.share_before) == (sn, sb)
    assert r.estimate_corrected == pytest.approx(-0.1 / (1 - s))
    assert (r.ci_lower_corrected, r.ci_upper_corrected) == pytest.approx((-0.14 / (1 - s), -0.06 / (1 - s)))
    assert r.std_error_corrected == pytest.approx(0.02 / (1 - s))
    # plateau: former participants shift the control mean by the longest horizon's effect A = −0.3 / (1 − sn − sb)
    a = -0.3 / (1 - sn - sb)
    assert r.estimate_corrected_plateau == pytest.approx((-0.1 + sb * a) / (1 - sn))
    assert r.ci_upper_corrected_plateau == pytest.approx((-0.06 + sb * a) / (1 - sn))
    assert r.std_error_corrected_plateau == pytest.approx(0.02 / (1 - sn))
    long, cum = out.iloc[1], out.iloc[2]
    assert long.estimate_corrected_plateau == pytest.approx((-0.3 + sb * a) / (1 - sn))
    assert cum.estimate_corrected_plateau == pytest.approx((-0.2 + sb * 3 * a) / (1 - sn))  # k · A for a sum
    # with the shares of a real run (no cap) the plateau equals the plain correction at the longest horizon
    assert plateau_corrected(-0.3, -0.3, 0.01, 0.1, 12) == pytest.approx(-0.3 / (1 - 0.11))
    assert est.corrected(effects, ["regression_adjustment"]).empty
    # above 2 % the stage warns, with the shares in the text and the values
    res = ContaminationResult(est, out)
    (w,) = res.warnings()
    assert w.code == "contamination" and w.values["share_matched"] == pytest.approx(s)
    assert f"{100 * s:.1f} %" in w.text_en and f"{100 * s:.1f} %".replace(".", ",") in w.text_sv
    assert res.report_tables()["contamination"] is out
    assert res.facts()["contamination_share_matched"] == s and res.facts()[
        "basis:contamination_share_matched"
    ]["persons"] == (None, None)
    small = ContaminationEstimate(CONTAMINATION_THRESHOLD, 0.01, 0.01, 0.005, 3, est.by_forbund, est.pi)
    assert small.warnings() == ()
    # disclosure: the count of anonymous registrations only from the threshold; rows on too few persons blanked
    (hidden,) = ContaminationResult(est, out, threshold=int(est.n_anonymous) + 1).warnings()
    assert (
        "n_anonymous" not in hidden.values
        and f"fewer than {int(est.n_anonymous) + 1} anonymous" in hidden.text_en
    )
    assert "färre än" in hidden.text_sv and "fewer than" in est.summary(int(est.n_anonymous) + 1)
    persons = out.assign(n_treated=[40, 4, 40], n_control=[40, 40, 40])
    pub = apply_disclosure_control({"contamination": persons}, 5)["contamination"]
    corrected = [c for c in CORRECTED_COLUMNS if c.startswith(("estimate", "std_error", "ci_"))]
    assert pub.loc[1, corrected].isna().all() and pub.loc[[0, 2], corrected].notna().all().all()
    assert pub["suppressed"].tolist() == [False, True, False]


@pytest.mark.slow
def test_expected_share_on_a_world_with_known_anonymous_participants(make_world, tmp_path):
    """On a generated world the contamination stage's expected share of anonymous participants among the matched
    controls is near the true one (the persons in ``truth_anonymous.parquet`` who started at or before u); the
    part starting in u is small, the former participants are most of it."""
    from finsam_effekt.config import parse_config
    from finsam_effekt.pipeline import run_until
    from finsam_effekt.synth import SynthConfig

    world = make_world(SynthConfig(persons=20_000, seed=5, start="2016-01", end="2021-12"))
    cfg = parse_config(
        {
            "inputs": str(world.mapping),
            "window": {"start": "2018-01", "end": "2020-06"},
            "eligibility": {"min_history_months": 24},
            "estimators": ["weighted_mean_diff"],
            "event_study": False,
            "sensitivity": False,
            "cost_benefit": {"enabled": False},
        },
        tmp_path,
    )
    res = run_until(cfg, "contamination", skip=["balance"])
    est = res.contamination.estimate
    matched = res.match.matched
    ctrl = matched[matched["treated"] == 0]
    anon = pd.read_parquet(world.path / "truth_anonymous.parquet")
    first = pd.Series(months.to_index(anon["ref_month"]), index=anon["person_id"])
    start = first.reindex(ctrl["person_id"].astype(str)).to_numpy(float)
    u = months.to_index(ctrl["ref_month"].astype(str))
    w = ctrl["weights"].to_numpy(float)
    true_now = float((w * (start == u)).sum() / w.sum())
    true_before = float((w * (start < u)).sum() / w.sum())
    assert true_before > 0.03 and true_before > 5 * true_now  # former participants dominate
    # among all candidates the expected share is close to the true one; among the matched controls (a few hundred
    # person-months of a few dozen former participants) one world shows the order of magnitude, the Monte
    # Carlo (validation/results_worlds) the mean over 200 worlds
    cand = res.cohort.cohort
    cand = cand[cand["treated"] == 0]
    start_c = first.reindex(cand["person_id"].astype(str)).to_numpy(float)
    true_cand = float(np.mean(start_c <= months.to_index(cand["ref_month"].astype(str))))
    assert est.share_candidates == pytest.approx(true_cand, rel=0.15)
    assert (true_now + true_before) / 3 < est.share_matched < 3 * (true_now + true_before)
    assert est.share_matched_now == pytest.approx(true_now, abs=0.01)
    # the corrected effects divide by 1 − s
    tab = res.contamination.frame
    np.testing.assert_allclose(tab["estimate_corrected"], tab["estimate"] / (1 - est.share_matched))
    assert res.contamination.warnings()[0].code == "contamination"


def test_cells_are_the_text_pairs_of_astype_str():
    """cell_codes codes every row's (forbund_id, ref_month) into one shared index of text pairs — the cells
    MultiIndex.from_frame(frame.astype(str)) gives — for categorical and text columns, missing values and equal
    text from different types alike."""
    from finsam_effekt.contamination import cell_codes

    a = pd.DataFrame(
        {
            "forbund_id": pd.Categorical(["F2", "F1", None, "F2", "F1"]),
            "ref_month": pd.Categorical(["2020-02", "2020-01", "2020-01", "2020-02", "2020-03"]),
        }
    )
    b = pd.DataFrame({"forbund_id": ["F1", "F3", "F2"], "ref_month": ["2020-01", "2020-01", "2020-04"]})
    (ca, cb), index = cell_codes(a, b)
    for frame, codes in ((a, ca), (b, cb)):
        expected = pd.MultiIndex.from_frame(frame.astype(str))
        assert list(index[codes]) == list(expected)
    assert index.is_unique and len(index) == len(set(index[ca]) | set(index[cb]))
