"""balance: agreement with MatchIt 4.7.2's summary() (golden fixtures), hand-computed cases (the balance figures
are tested in test_report_figures.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finsam_effekt.balance import balance_stats, balance_table, ess, match_balance
from finsam_effekt.errors import ConfigError, InputError
from finsam_effekt.matching import match_nearest

FIX = Path(__file__).parent / "fixtures" / "matchit"
CASES = json.loads((FIX / "cases.json").read_text())


@pytest.fixture(scope="module")
def fx():
    return pd.read_csv(FIX / "data.csv"), pd.read_csv(FIX / "balance.csv")


@pytest.mark.parametrize("case", list(CASES))
def test_summary_equals_matchit(fx, case):
    data, bal = fx
    res = match_nearest(data, "treat", **CASES[case])
    # MatchIt's summary also shows the exact-matching variables
    covs = ["x1", "x2", "b1"] + ([CASES[case]["exact"]] if "exact" in CASES[case] else [])
    bt = match_balance(res, covs)
    got = bt.to_frame().set_index(["sample", "variable"])
    exp = bal.query("case == @case").replace({"sample": {"all": "before", "matched": "after"}})
    exp = exp.set_index(["sample", "variable"])
    assert set(got.index) == set(exp.index)
    for col in ("mean_treated", "mean_control", "smd", "var_ratio", "ecdf_mean", "ecdf_max"):
        e = exp[col].reindex(got.index).to_numpy(float)
        g = got[col].to_numpy(float)
        np.testing.assert_allclose(g, e, rtol=0, atol=1e-8, equal_nan=True, err_msg=f"{case}: {col}")


def test_hand_computed():
    # treated x = 1, 2, 3 (mean 2, sd 1); controls x = 0, 0, 4, 4 (mean 2) and weights 1, 0, 0, 1 after
    x = np.array([1, 2, 3, 0, 0, 4, 4], float)
    t = np.array([1, 1, 1, 0, 0, 0, 0])
    st = balance_stats(x, t)
    assert st["smd"] == 0.0  # |diff| below sqrt(eps): raw difference
    assert st["var_ratio"] == pytest.approx(1 / (16 / 3))
    # eCDF at the distinct x values 0,1,2,3,4: |F_T - F_C| = .5, 1/6, 1/6(2/3-.5), .5, 0 -> max .5
    assert st["ecdf_max"] == pytest.approx(0.5)
    assert st["ecdf_mean"] == pytest.approx((0.5 + (0.5 - 1 / 3) + (0.5 - 2 / 3) * -1 + 0.5 + 0) / 5)
    w = np.array([1, 1, 1, 0, 0, 0, 2.0])
    st2 = balance_stats(x, t, w)
    assert st2["mean_control"] == 4.0
    assert st2["smd"] == pytest.approx((2 - 4) / 1.0)
    # binary: standardized by sqrt(p(1-p)) of treated, or raw
    b = np.array([1, 1, 0, 0, 0, 0, 1], float)
    p = 2 / 3
    assert balance_stats(b, t)["smd"] == pytest.approx((p - 0.25) / np.sqrt(p * (1 - p)))
    assert balance_stats(b, t, binary="raw")["smd"] == pytest.approx(p - 0.25)
    assert ess([1, 1, 2]) == pytest.approx(16 / 6)


def test_table_flags_and_sizes():
    rng = np.random.default_rng(3)
    n = 600
    t = (rng.random(n) < 0.3).astype(int)
    df = pd.DataFrame(
        {"t": t, "x": rng.normal(size=n) + t, "g": rng.choice(["a", "b"], size=n), "z": rng.normal(size=n)}
    )
    w = np.where(t == 1, 1.0, rng.random(n))
    bt = balance_table(df, "t", ["x", "g", "z"], weights=w)
    tab = bt.to_frame()
    assert set(tab["variable"]) == {"x", "g=a", "g=b", "z"}
    row = tab[(tab["variable"] == "x") & (tab["sample"] == "before")].iloc[0]
    assert bool(row["smd_flag"]) and abs(row["smd"]) > 0.5
    ss = bt.sample_sizes.set_index(["sample", "group"])
    assert ss.loc[("after", "control"), "ess"] == pytest.approx(ess(w[t == 0]))
    assert ss.loc[("before", "treated"), "n"] == t.sum()
    assert "|SMD| > 0.1" in bt.summary()
    # a MatchResult is accepted directly (as the pipeline calls it)
    res = match_nearest(df, "t", distance="x", caliper=0.2)
    bm = balance_table(res, covariates=["x", "z"])
    assert bm.max_abs_smd("after") < bm.max_abs_smd("before")
    assert bm.unmatched_reasons is not None
    with pytest.raises(ConfigError, match="binary must be"):
        balance_table(df, "t", ["x"], binary="pooled")


def test_constant_covariate_as_matchit():
    # MatchIt 4.7.2 bal1var(standardize = TRUE) on these data (R output, by hand in /tmp): a covariate constant among
    # the matched controls gives var ratio Inf (R's x / 0) instead of a ZeroDivisionError; constant among the
    # treated gives the SMD by MatchIt's proportional pooled SD.
    t = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    w = np.array([1, 1, 1, 1, 1, 1, 1, 0.0])
    x = np.array([1, 2, 4, 3, 3, 3, 3, 5], float)
    after = balance_stats(x, t, w)
    assert after["var_ratio"] == np.inf
    assert after["smd"] == pytest.approx(-0.4364357804719847, abs=1e-12)  # (7/3 - 3) / sd_T(1, 2, 4)
    assert after["ecdf_max"] == pytest.approx(2 / 3)
    c = np.array([2, 2, 2, 1, 3, 4, 0, 6], float)  # treated constant: sqrt(Σ within-group dev² / (n − 1))
    assert balance_stats(c, t)["smd"] == pytest.approx(-0.8 / np.sqrt(22.8 / 7), abs=1e-12)
    assert balance_stats(c, t)["smd"] == pytest.approx(-0.4432733, abs=1e-7)  # MatchIt
    b = np.array([1, 1, 1, 0, 1, 0, 0, 1], float)  # binary, treated all 1: sqrt(Σ n_g p_g (1 − p_g) / n)
    assert balance_stats(b, t)["smd"] == pytest.approx(1.549193, abs=1e-6)
    assert balance_stats(b, t, w)["smd"] == pytest.approx(1.936492, abs=1e-6)
    both = balance_stats(np.array([2, 2, 2, 3, 3, 3, 3, 9], float), t, w)
    assert np.isnan(both["var_ratio"])  # 0 / 0
    df = pd.DataFrame({"t": t, "x": x})
    row = balance_table(df, "t", ["x"], weights=w).to_frame().query("sample == 'after'").iloc[0]
    assert row["var_ratio"] == np.inf and bool(row["var_ratio_flag"])


def test_design_rule_for_categories_and_missing_values():
    # the balance table expands covariates by design.design_matrix: every level (sorted) as ``name=level``, a
    # missing category as the level "(missing)", a constant column kept, booleans as 0/1
    df = pd.DataFrame(
        {
            "t": [1, 1, 0, 0, 0],
            "edu": ["b", None, "a", "b", None],
            "flag": [True, False, True, True, False],
            "one": [1.0] * 5,
        }
    )
    tab = balance_table(df, "t", ["edu", "flag", "one"]).to_frame()
    assert tab["variable"].tolist() == ["edu=(missing)", "edu=a", "edu=b", "flag", "one"]
    row = tab.set_index("variable").loc["edu=(missing)"]
    assert row["mean_treated"] == 0.5 and row["mean_control"] == pytest.approx(1 / 3)
    assert tab.set_index("variable").loc["one", "smd"] == 0.0  # constant: no difference
    with pytest.raises(InputError, match=r"balance_table: covariate 'x' has 1 missing value; impute it"):
        balance_table(df.assign(x=[1.0, np.nan, 2.0, 3.0, 4.0]), "t", ["x"])
    with pytest.raises(InputError, match=r"balance_table: columns \['age'\] are not in the data"):
        balance_table(df, "t", ["age"])


def _pre_period_data():
    # treated: x 1, 2, 3 and public support at u−1 1, 1, 0; controls: x 1, 2, 3, 10 and support 0, 0, 0, 1.
    # After matching the controls weigh 1, 1, 1, 0: x is balanced (2 vs 2), the pre-period outcome is not.
    data = pd.DataFrame({"t": [1, 1, 1, 0, 0, 0, 0], "x": [1.0, 2, 3, 1, 2, 3, 10]})
    pre = pd.DataFrame({"public_support_u1": [1.0, 1, 0, 0, 0, 0, 1]})
    w = np.array([1, 1, 1, 1, 1, 1, 0], float)
    return data, pre, w


def test_pre_period_rows_are_measured_and_flagged_like_covariates():
    data, pre, w = _pre_period_data()
    bt = balance_table(data, "t", ["x"], weights=w, pre_period=pre)
    tab = bt.to_frame().set_index(["sample", "variable"])
    assert tab["kind"].to_dict() == {
        ("before", "x"): "covariate",
        ("before", "public_support_u1"): "pre_period",
        ("after", "x"): "covariate",
        ("after", "public_support_u1"): "pre_period",
    }
    sd = np.sqrt(2 / 3 * 1 / 3)  # treated SD of a binary with p = 2/3
    assert tab.loc[("before", "public_support_u1"), "smd"] == pytest.approx((2 / 3 - 1 / 4) / sd)
    assert tab.loc[("after", "public_support_u1"), "smd"] == pytest.approx((2 / 3 - 0) / sd)
    assert tab.loc[("after", "x"), "smd"] == 0.0 and not tab.loc[("after", "x"), "smd_flag"]
    assert tab.loc[("after", "public_support_u1"), "smd_flag"]
    flagged = bt.flagged("pre_period", "after")
    assert flagged["variable"].tolist() == ["public_support_u1"]
    assert bt.flagged("covariate", "after").empty
    # the same rows from columns of the data, and in the summary
    same = balance_table(data.join(pre), "t", ["x"], weights=w, pre_period=["public_support_u1"])
    pd.testing.assert_frame_equal(same.to_frame(), bt.to_frame())
    assert "1 of 1 pre-period outcomes with |SMD| > 0.1" in bt.summary()


def test_pre_period_rows_with_a_match_result_and_errors():
    data, pre, _ = _pre_period_data()
    res = match_nearest(data, "t", distance=data["x"].to_numpy(), ratio=1)
    bt = match_balance(res, ["x"], pre_period=pre)
    kinds = bt.to_frame().drop_duplicates("variable").set_index("variable")["kind"].to_dict()
    assert kinds == {"distance": "distance", "x": "covariate", "public_support_u1": "pre_period"}
    with pytest.raises(InputError, match="pre_period has 2 rows, the data 7"):
        balance_table(data, "t", ["x"], pre_period=pre.iloc[:2])
    with pytest.raises(InputError, match="must be numeric without missing values"):
        balance_table(data, "t", ["x"], pre_period=pre.assign(public_support_u1=np.nan))
    with pytest.raises(InputError, match=r"pre-period columns \['x'\] are also covariates"):
        balance_table(data, "t", ["x"], pre_period=data[["x"]])
    with pytest.raises(InputError, match=r"pre-period columns \['nope'\] are not in the data"):
        balance_table(data, "t", ["x"], pre_period=["nope"])


def test_binary_covariate_constant_among_treated_uses_the_pooled_sd():
    """Six treated all with x = 1: the treated SD is exactly 0 (the share is Σx/n = 1, not 1 − 1e-16 from
    normalised weights), so the SMD falls back to MatchIt's pooled SD instead of dividing by ~1e-8."""
    x = np.array([1.0] * 6 + [1, 0, 0, 1, 0, 0, 0, 0])
    t = np.array([1] * 6 + [0] * 8)
    st = balance_stats(x, t)
    # pooled binary SD: sqrt(Σ_g n_g p_g (1 − p_g) / n) = sqrt((6·1·0 + 8·0.25·0.75) / 14)
    assert st["smd"] == pytest.approx((1 - 0.25) / np.sqrt(8 * 0.25 * 0.75 / 14), rel=1e-12)
