"""Tests of finsam_effekt.estimation.sensitivity: Rosenbaum bounds, E-values, placebo checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finsam_effekt.errors import ConfigError
from finsam_effekt.estimation import (
    SENSITIVITY_COLUMNS,
    critical_gamma,
    e_value,
    rosenbaum_mcnemar,
    rosenbaum_wilcoxon,
    sensitivity_analysis,
)


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


def test_placebo_rows_equal_the_pivot_table_reference():
    # the placebo checks now reshape with groupby/unstack (no product of the unit levels); they must give the
    # same numbers as the former pivot_table(dropna=False) reshape
    from finsam_effekt.estimation.matched import weighted_mean_difference

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
        est, se, _, _ = weighted_mean_difference(
            base, wide[("public_support", r)].to_numpy(float), "treated", "weights", "person_id"
        )
        assert v[("placebo_outcome", "public_support", r, "estimate")] == est
        assert v[("placebo_outcome", "public_support", r, "std_error")] == se


def test_placebo_rows_do_not_depend_on_key_types_row_order_or_repeated_rows():
    # one row per (unit, month) is reshaped by position from the key codes, repeated rows by a groupby (the first
    # non-missing value); categorical or plain keys, shuffled or repeated rows: the same numbers
    data, paths = _matched_pairs_world(n=120)
    paths = paths.copy()
    paths.loc[paths.index[::5], "censored"] = True
    paths.loc[paths.index[::11], "public_support"] = np.nan

    def placebo(p):
        f = sensitivity_analysis(data, paths=p, horizons=(3, 6)).to_frame()
        return f[f.check.str.startswith("placebo")].reset_index(drop=True)

    ref = placebo(paths)
    assert len(ref) == 2 * 3 + 2 * 3  # placebo outcome at u-6 and u-12, placebo start at 3 and 6 months
    cat = paths.astype({"person_id": "category", "ref_month": "category"})
    pd.testing.assert_frame_equal(placebo(cat), ref)
    pd.testing.assert_frame_equal(placebo(paths.sample(frac=1, random_state=1)), ref, check_exact=False)
    blank = paths.assign(public_support=np.nan, censored=False)  # repeated rows, the first of each missing
    repeated = pd.concat([blank, paths]).reset_index(drop=True)
    pd.testing.assert_frame_equal(placebo(repeated), ref, check_exact=False)
    # only the months PLACEBO_REL_MONTHS names are read (the pipeline loads no other rows for these checks)
    from finsam_effekt.estimation import PLACEBO_REL_MONTHS

    lo, hi = PLACEBO_REL_MONTHS
    assert (~paths["rel_month"].between(lo, hi)).any()  # (else the test would prove nothing)
    few = paths[paths["rel_month"].between(lo, hi)].reset_index(drop=True)
    pd.testing.assert_frame_equal(placebo(few), ref, check_exact=True)


def test_sensitivity_alpha_sets_the_risk_ratio_and_placebo_interval_levels():
    from scipy import stats

    data, paths = _matched_pairs_world()
    r05 = sensitivity_analysis(data, paths=paths, horizons=(3, 6))
    r10 = sensitivity_analysis(data, paths=paths, horizons=(3, 6), alpha=0.10)
    ratio = stats.norm.ppf(0.95) / stats.norm.ppf(0.975)
    v05 = r05.to_frame().set_index(["check", "outcome", "horizon_months", "measure", "statistic"])["value"]
    v10 = r10.to_frame().set_index(["check", "outcome", "horizon_months", "measure", "statistic"])["value"]
    for k in (3, 6):
        key = ("e_value", "public_support", k, "status")
        rr = v05[(*key, "risk_ratio")]
        assert v10[(*key, "risk_ratio")] == rr
        # the delta-method interval is normal on the log scale: log(limit / RR) scales with z
        for lim in ("risk_ratio_ci_lower", "risk_ratio_ci_upper"):
            assert np.log(v10[(*key, lim)] / rr) / np.log(v05[(*key, lim)] / rr) == pytest.approx(
                ratio, rel=1e-12
            )
    # placebo estimates: intervals at the stored level or any other
    c05, c10 = r05.conf_int(), r10.conf_int()
    assert len(c05) > 0 and list(c05.columns) == [
        "check", "outcome", "horizon_months", "measure", "estimate", "ci_lower", "ci_upper"
    ]  # fmt: skip
    np.testing.assert_allclose(
        (c10["ci_upper"] - c10["estimate"]) / (c05["ci_upper"] - c05["estimate"]), ratio, rtol=1e-12
    )
    np.testing.assert_allclose(r05.conf_int(0.10)["ci_lower"], c10["ci_lower"], rtol=1e-14)
    se = v05.xs("std_error", level="statistic")
    key = ("placebo_outcome", "public_support", -6, "status")
    row = c05.set_index(["check", "outcome", "horizon_months", "measure"]).loc[key]
    assert row["ci_upper"] - row["estimate"] == pytest.approx(stats.norm.ppf(0.975) * se[key], rel=1e-12)


# -- R: rbounds 2.2 (psens, binarysens) and DOS2 0.5.2 (senWilcox); tests/fixtures/rosenbaum/make_fixtures.R ------
FIXTURES = Path(__file__).parent / "fixtures" / "rosenbaum"


def test_wilcoxon_bound_equals_rbounds_psens_when_dropping_zeros_and_dos2_senwilcox_with_pratt():
    pairs = pd.read_csv(FIXTURES / "pairs.csv")
    bounds = pd.read_csv(FIXTURES / "wilcoxon_bounds.csv")
    for r in bounds.itertuples(index=False):
        p = pairs[pairs["dataset"] == r.dataset]
        yt, yc = p["treated"].to_numpy(), p["control"].to_numpy()
        drop = rosenbaum_wilcoxon(yt, yc, r.gamma, zeros="drop")
        assert drop == pytest.approx(r.psens_upper, rel=1e-10)
        assert round(drop, 4) == pytest.approx(r.psens_upper_rounded, abs=1e-12)  # what psens prints
        assert rosenbaum_wilcoxon(yt, yc, r.gamma, zeros="pratt") == pytest.approx(
            r.senwilcox_pval, rel=1e-10
        )
    crit = pd.read_csv(FIXTURES / "wilcoxon_critical_gamma.csv").set_index("dataset")
    for ds, c in crit.iterrows():
        p = pairs[pairs["dataset"] == ds]
        yt, yc = p["treated"].to_numpy(), p["control"].to_numpy()
        assert int(np.sum(yt == yc)) == c["n_zero"]
        for zeros, col in (("drop", "critical_gamma_psens"), ("pratt", "critical_gamma_senwilcox")):
            g = critical_gamma(lambda gg, z=zeros, a=yt, b=yc: rosenbaum_wilcoxon(a, b, gg, zeros=z))
            assert g == pytest.approx(c[col], abs=1e-6)
    # one zero difference on DOS2's lead data: critical Γ 4.43 (rbounds) vs 4.34 (DOS2); none on werfel
    assert round(crit.loc["dos2_lead", "critical_gamma_psens"], 2) == 4.43
    assert round(crit.loc["dos2_lead", "critical_gamma_senwilcox"], 2) == 4.34
    assert (
        crit.loc["dos2_werfel", "critical_gamma_psens"] == crit.loc["dos2_werfel", "critical_gamma_senwilcox"]
    )


def test_mcnemar_bound_is_p_b_ge_t_and_rbounds_binarysens_is_p_b_gt_t():
    from scipy import stats

    bounds = pd.read_csv(FIXTURES / "mcnemar_bounds.csv")
    for r in bounds.itertuples(index=False):
        yt = np.array([1] * r.x + [0] * r.y + [1] * 5 + [0] * 7)  # plus concordant pairs, which do not count
        yc = np.array([0] * r.x + [1] * r.y + [1] * 5 + [0] * 7)
        ours = rosenbaum_mcnemar(yt, yc, r.gamma)
        assert ours == pytest.approx(r.upper_ge, rel=1e-10, abs=1e-300)
        if r.gamma == 1:
            assert ours == pytest.approx(float(r.binom_test), rel=1e-10)  # the exact McNemar test
        # binarysens: 1 − pbinom(T, D, p⁺) = P(B > T), one step beyond Rosenbaum's P(B ≥ T) (its subtraction
        # from 1 leaves an absolute error of ~1e-16: below that it returns 0)
        t, d, p = max(r.x, r.y), r.x + r.y, r.gamma / (1 + r.gamma)
        assert r.binarysens_upper == pytest.approx(stats.binom.sf(t, d, p), rel=1e-10, abs=1e-15)
        assert r.binarysens_upper < ours
    crit = pd.read_csv(FIXTURES / "mcnemar_critical_gamma.csv")
    for c in crit.itertuples(index=False):
        yt = np.array([1] * c.x + [0] * c.y)
        yc = 1 - yt
        g = critical_gamma(lambda gg, a=yt, b=yc: rosenbaum_mcnemar(a, b, gg))
        assert g == pytest.approx(c.critical_gamma_ge, abs=1e-6)
        assert g <= c.critical_gamma_binarysens


def _pairs_with_zeros(seed: int = 5, n: int = 300) -> pd.DataFrame:
    """Matched pairs of a register amount: most pairs have 0 in both months (zero differences)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        active = rng.random() < 0.3
        for role in (1, 0):
            amount = rng.gamma(2.0, 3000 + 1500 * role) if active and rng.random() < 0.8 else 0.0
            rows.append(
                {"person_id": f"{'t' if role else 'c'}{i}", "ref_month": "2020-01", "treated": role,
                 "weights": 1.0, "subclass": i + 1, "benefit_sek_cum3": amount, "public_support_m3": float(amount > 0)}
            )  # fmt: skip
    return pd.DataFrame(rows)


def test_sensitivity_table_names_the_method_and_follows_the_zeros_option():
    data = _pairs_with_zeros()
    drop = sensitivity_analysis(data, horizons=(3,))
    pratt = sensitivity_analysis(data, horizons=(3,), zeros="pratt")
    fd, fp = drop.to_frame(), pratt.to_frame()
    assert list(fd.columns) == SENSITIVITY_COLUMNS and SENSITIVITY_COLUMNS[-1] == "method"
    key = ["check", "outcome", "horizon_months", "measure", "statistic"]
    md = fd.set_index(key)["method"]
    assert set(md.xs("rosenbaum_wilcoxon", level="check")) == {"wilcoxon_drop_zeros"}
    assert set(pratt.to_frame().set_index(key)["method"].xs("rosenbaum_wilcoxon", level="check")) == {
        "wilcoxon_pratt"
    }
    assert set(md.xs("rosenbaum_mcnemar", level="check")) == {"mcnemar_exact"}
    assert set(md.xs("e_value", level="check")) == {"vanderweele_ding"}
    # the signed-rank rows follow the convention; McNemar and E-value rows do not depend on it
    t = data[data.treated == 1].benefit_sek_cum3.to_numpy()
    c = data[data.treated == 0].benefit_sek_cum3.to_numpy()
    assert np.sum(t == c) > 100
    vd, vp = fd.set_index(key)["value"], fp.set_index(key)["value"]
    w = ("rosenbaum_wilcoxon", "benefit_sek", 3, "cumulative")
    assert vd[(*w, "p_value_gamma_1")] == pytest.approx(rosenbaum_wilcoxon(t, c, 1.0, zeros="drop"))
    assert vp[(*w, "p_value_gamma_1")] == pytest.approx(rosenbaum_wilcoxon(t, c, 1.0, zeros="pratt"))
    assert vd[(*w, "critical_gamma")] != pytest.approx(vp[(*w, "critical_gamma")], rel=1e-3)
    other = [k for k in vd.index if k[0] != "rosenbaum_wilcoxon"]
    pd.testing.assert_series_equal(vd[other], vp[other])
    assert "signed-rank zeros: pratt" in pratt.summary() and pratt.rosenbaum_zeros == "pratt"
    with pytest.raises(ConfigError, match="zeros must be one of"):
        sensitivity_analysis(data, horizons=(3,), zeros="wilcoxon")
    with pytest.raises(ConfigError, match="zeros must be one of"):
        rosenbaum_wilcoxon(t, c, zeros="none")


def test_config_rosenbaum_zeros_reaches_the_sensitivity_stage(monkeypatch):
    from types import SimpleNamespace

    from finsam_effekt import estimation
    from finsam_effekt.config import parse_config
    from finsam_effekt.pipeline import stages

    base = {
        "inputs": {"tables": {"population": {"path": "data/population.parquet"}}},
        "window": {"start": "2018-01", "end": "2019-12"},
    }
    assert parse_config(base, Path.cwd()).inference.rosenbaum_zeros == "drop"
    cfg = parse_config({**base, "inference": {"rosenbaum_zeros": "pratt"}}, Path.cwd())
    seen = {}
    monkeypatch.setattr(estimation, "sensitivity_analysis", lambda *a, **kw: seen.update(kw))
    read = SimpleNamespace(absent_outcomes={})
    outcomes = SimpleNamespace(outcomes=None, path_table=lambda *a, **kw: None)
    stages.sensitivity(cfg, read, SimpleNamespace(match=object()), outcomes)
    assert seen["zeros"] == "pratt"
    with pytest.raises(ConfigError, match="inference.rosenbaum_zeros"):
        parse_config({**base, "inference": {"rosenbaum_zeros": "rbounds"}}, Path.cwd())
