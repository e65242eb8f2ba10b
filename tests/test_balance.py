"""balance: agreement with MatchIt 4.7.2's summary() (golden fixtures), hand-computed cases (the balance figures
are tested in test_report_figures.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finsam_effekt.balance import balance_stats, balance_table, ess, match_balance, value_coding
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
    # … and from loaders, each called once (a national cohort's path read from disk a column at a time)
    calls = []
    loader = {"public_support_u1": lambda: calls.append(1) or pre["public_support_u1"].to_numpy()}
    lazy = balance_table(data, "t", ["x"], weights=w, pre_period=loader)
    pd.testing.assert_frame_equal(lazy.to_frame(), bt.to_frame())
    assert calls == [1]
    # … and from values in another row order with their rows (a file written in another order)
    perm = np.random.default_rng(0).permutation(len(data))
    shuffled = {"public_support_u1": lambda: (pre["public_support_u1"].to_numpy()[perm], perm)}
    moved = balance_table(data, "t", ["x"], weights=w, pre_period=shuffled)
    pd.testing.assert_frame_equal(moved.to_frame(), bt.to_frame())
    # … a column with an infinite value (the row-level reference path, the weights taken into the file's order)
    inf = pre[["public_support_u1"]].astype(float)
    inf.iloc[0, 0] = np.inf
    with np.errstate(invalid="ignore"):
        ref = balance_table(data, "t", ["x"], weights=w, pre_period=inf).to_frame()
        got = balance_table(data, "t", ["x"], weights=w, pre_period={"public_support_u1": lambda: (inf.iloc[:, 0].to_numpy()[perm], perm)}).to_frame()  # fmt: skip
    pd.testing.assert_frame_equal(got, ref)
    row = ref[(ref["variable"] == "public_support_u1") & (ref["sample"] == "after")]
    assert np.isinf(row["mean_treated"]).all() or np.isinf(row["mean_control"]).all()
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
    with pytest.raises(InputError, match=r"pre-period column 'p' has 2 rows, the data 7"):
        balance_table(data, "t", ["x"], pre_period={"p": lambda: np.zeros(2)})
    for rows in (np.zeros(7, np.int64), np.arange(1, 8), np.arange(-1, 6)):  # a row twice, out of range
        with pytest.raises(InputError, match=r"the rows of pre-period column 'p' are not each row once"):
            balance_table(data, "t", ["x"], pre_period={"p": lambda rows=rows: (np.zeros(7), rows)})
    with pytest.raises(
        InputError, match=r"pre-period columns \['p'\] must be numeric without missing values"
    ):
        balance_table(data, "t", ["x"], pre_period={"p": lambda: np.full(7, np.nan)})


def test_binary_covariate_constant_among_treated_uses_the_pooled_sd():
    """Six treated all with x = 1: the treated SD is exactly 0 (the share is Σx/n = 1, not 1 − 1e-16 from
    normalised weights), so the SMD falls back to MatchIt's pooled SD instead of dividing by ~1e-8."""
    x = np.array([1.0] * 6 + [1, 0, 0, 1, 0, 0, 0, 0])
    t = np.array([1] * 6 + [0] * 8)
    st = balance_stats(x, t)
    # pooled binary SD: sqrt(Σ_g n_g p_g (1 − p_g) / n) = sqrt((6·1·0 + 8·0.25·0.75) / 14)
    assert st["smd"] == pytest.approx((1 - 0.25) / np.sqrt(8 * 0.25 * 0.75 / 14), rel=1e-12)


# -- the value-table path of balance_table against the row-level reference balance_stats ------------------------


def _mixed_columns(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Columns that take each coding of ``value_coding`` (the one each should take in its comment)."""
    return pd.DataFrame(
        {
            "binary_int": rng.integers(0, 2, n).astype(np.int32),  # grid
            "binary_float": rng.integers(0, 2, n).astype(np.float32),  # grid
            "flag": rng.random(n) < 0.2,  # grid (booleans as 0/1)
            "months": rng.integers(1, 25, n),  # grid, from 0
            "negative": rng.integers(-30, 5, n).astype(np.int16),  # grid, from the minimum
            "kronor": np.where(rng.random(n) < 0.4, 0, rng.integers(0, 50_000, n)).astype(np.float32),  # grid
            "quarter_days": (rng.integers(0, 2925, n) / 4).astype(np.float32),  # grid, d = 4
            "mean24": rng.integers(0, 25, n) / 24.0,  # grid, d = 24
            "few_irrational": rng.choice(np.sqrt([2.0, 3.0, 5.0, 7.0]), n),  # hashed
            "wide_int": rng.choice([0, 10**9, 3 * 10**9], n),  # hashed (range far above the rows)
            "normal": rng.normal(size=n) * 3 + 1,  # sorted
            "lognormal": rng.lognormal(size=n).astype(np.float32),  # sorted
            "constant": np.full(n, 7.0),  # grid
        }
    )


EXPECTED_METHOD = {
    "binary_int": "grid", "binary_float": "grid", "flag": "grid", "months": "grid", "negative": "grid",
    "kronor": "grid", "quarter_days": "grid", "mean24": "grid", "few_irrational": "hashed",
    "wide_int": "hashed", "normal": "sorted", "lognormal": "sorted", "constant": "grid",
}  # fmt: skip


def test_value_coding_reproduces_every_value():
    rng = np.random.default_rng(11)
    df = _mixed_columns(20_000, rng)
    for col in df.columns:
        x = df[col].to_numpy()
        vc = value_coding(x)
        assert vc is not None and vc.method == EXPECTED_METHOD[col], col
        rows = np.arange(len(x))
        xf = x.astype(float)
        np.testing.assert_array_equal(vc.values[vc.codes(rows)], xf, err_msg=col)  # exactly, every row
        assert np.all(np.diff(vc.values) > 0), col
        np.testing.assert_array_equal(vc.values[vc.present], np.unique(xf), err_msg=col)
        np.testing.assert_array_equal(
            vc.counts[vc.present], np.unique(xf, return_counts=True)[1], err_msg=col
        )
        some = np.sort(rng.choice(len(x), 500, replace=False))
        w = rng.random(500)
        np.testing.assert_array_equal(
            vc.table(some), np.bincount(vc.codes(rows)[some], minlength=len(vc.values))
        )
        by_value = pd.Series(w).groupby(xf[some]).sum()  # the weight per distinct value, independently
        table = vc.table(some, w)
        np.testing.assert_allclose(table[np.searchsorted(vc.values, by_value.index)], by_value, rtol=1e-13)
        assert table.sum() == pytest.approx(w.sum(), rel=1e-13)
    # a sorted coding gives the same codes by binary search (few rows) and from its argsort (most rows)
    x = df["normal"].to_numpy()
    few, most = value_coding(x), value_coding(x)
    np.testing.assert_array_equal(few.codes(np.arange(100)), most.codes(np.arange(len(x)))[:100])
    # the grid step is guessed from every second row (n > 2 · 65 536) and checked on every row: one half value in
    # an odd row makes it no grid
    x = np.random.default_rng(2).integers(0, 100, (1 << 17) + 10).astype(float)
    x[1] = 0.5
    vc = value_coding(x)
    assert vc.method == "hashed"
    np.testing.assert_array_equal(vc.values[vc.codes(np.arange(len(x)))], x)
    x[1] = 0.25
    assert value_coding(x).method == "hashed" and value_coding(x[::2] / 4).method == "grid"
    assert value_coding(np.array([1.0, np.inf, 2.0])) is None
    assert value_coding(np.array([1.0, np.nan])) is None


def test_grid_coding_checked_a_piece_at_a_time_is_the_same(monkeypatch):
    """A float column is checked and coded as a grid a piece at a time (balance.coding.GRID_PIECE rows): the same
    codes and values as in one piece, and a value off the grid in a later piece still makes it no grid."""
    from finsam_effekt.balance import coding

    rng = np.random.default_rng(5)
    df = _mixed_columns(2_000, rng)
    whole = {c: value_coding(df[c].to_numpy()) for c in df.columns}
    monkeypatch.setattr(coding, "GRID_PIECE", 7)
    for col, vc in whole.items():
        got = value_coding(df[col].to_numpy())
        assert got.method == vc.method, col
        np.testing.assert_array_equal(got.values, vc.values, err_msg=col)
        rows = np.arange(len(df))
        np.testing.assert_array_equal(got.codes(rows), vc.codes(rows), err_msg=col)
    # whole numbers, the grid step guessed from every second row, a half in the last (odd) row: no grid
    x = rng.integers(0, 100, (1 << 17) + 10).astype(float)
    assert value_coding(x).method == "grid"
    x[-1] = 0.5
    vc = value_coding(x)
    assert vc.method == "hashed"
    np.testing.assert_array_equal(vc.values[vc.codes(np.arange(len(x)))], x)


def _weights(kind: str, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = len(t)
    if kind == "matching":  # few rows weigh: matched treated 1, matched controls 1 or fractions (ratio > 1)
        w = np.zeros(n)
        w[t & (rng.random(n) < 0.9)] = 1.0
        ctrl = np.flatnonzero(~t)
        w[rng.choice(ctrl, 400, replace=False)] = rng.choice([1.0, 0.5, 1 / 3], 400)
        return w
    if kind == "ipw":  # every row weighs: treated 1, controls e / (1 − e)
        e = rng.uniform(0.02, 0.6, n)
        return np.where(t, 1.0, e / (1 - e))
    return np.where(rng.random(n) < 0.3, 0.0, rng.exponential(size=n))  # random, zeros in both groups


def _assert_same_statistics(got: pd.DataFrame, data: pd.DataFrame, t, weights, covs, binary="std"):
    """Every row of a balance table against balance_stats of its design column (rtol and atol 1e-12).

    One exception: a column constant among a group's weighted rows has variance exactly 0 in the value tables, so
    the variance ratio is 0/0 = nan, x/0 = inf or 0/x = 0; the row-level reference subtracts a mean that is the
    constant only to rounding (Σ x / n with n = 20 000) and can return a ratio of two rounding errors instead."""
    from finsam_effekt.design import design_columns

    columns = dict(design_columns(data, covs))
    for _, row in got.iterrows():
        w = None if row["sample"] == "before" else weights
        x = columns[row["variable"]]()
        ref = balance_stats(x, t, w, binary=binary)
        on = np.ones(len(x), bool) if w is None else w > 0
        const = [np.ptp(x[g & on]) == 0 if (g & on).sum() > 1 else False for g in (t, ~t)]
        if not np.isnan(ref["var_ratio"]) and any(const):
            ref["var_ratio"] = {(True, True): np.nan, (False, True): np.inf, (True, False): 0.0}[tuple(const)]
        for stat in ("mean_treated", "mean_control", "smd", "var_ratio", "ecdf_mean", "ecdf_max"):
            np.testing.assert_allclose(
                row[stat], ref[stat], rtol=1e-12, atol=1e-12, equal_nan=True,
                err_msg=f"{row['variable']} {row['sample']} {stat}",
            )  # fmt: skip


@pytest.mark.parametrize("kind", ["matching", "ipw", "random"])
def test_value_tables_equal_the_row_level_statistics(kind):
    """balance_table (value tables: grid, hashed, sorted and level codings) equals balance_stats (a sort and a
    cumulative sum over the rows, MatchIt's qqsum) on every kind of column, with matching, IPW and random
    weights: the same numbers to 1e-12."""
    rng = np.random.default_rng({"matching": 1, "ipw": 2, "random": 3}[kind])
    n = 20_000
    df = _mixed_columns(n, rng)
    df["region"] = pd.Categorical(rng.choice(["north", "south", None, "west"], n))
    df["education"] = rng.choice(np.array(["a", "b", "c"], dtype=object), n)
    t = rng.random(n) < 0.15
    df["t"] = t.astype(int)
    w = _weights(kind, t, rng)
    covs = [c for c in df.columns if c != "t"]
    for binary in ("std", "raw"):
        got = balance_table(df, "t", covs, weights=w, binary=binary).to_frame()
        assert len(got) == 2 * (len(EXPECTED_METHOD) + 4 + 3)
        _assert_same_statistics(got, df, t, w, covs, binary)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_value_tables_in_the_edge_cases():
    """Too few weighted rows, a column constant among the weighted controls (var ratio inf), constant in both
    groups (nan), constant among the treated (pooled SD), no weighted treated, a single treated row: as the
    reference (whose 0/0 for the means without weighted treated warns)."""
    t = np.array([1, 1, 1, 0, 0, 0, 0, 0]).astype(bool)
    data = pd.DataFrame(
        {
            "t": t.astype(int),
            "x": [1.0, 2, 4, 3, 3, 3, 3, 5],
            "c": [2.0, 2, 2, 1, 3, 4, 0, 6],
            "b": [1.0, 1, 1, 0, 1, 0, 0, 1],
            "both": [2.0, 2, 2, 3, 3, 3, 3, 9],
            "real": [0.5, 1.25, np.pi, 2.0, np.e, 0.1, 7.5, 3.3],
        }
    )
    covs = ["x", "c", "b", "both", "real"]
    for w in (
        np.array([1, 1, 1, 1, 1, 1, 1, 0.0]),  # controls constant after matching
        np.array([1, 0, 0, 1, 0, 0, 0, 0.0]),  # one pair: too small
        np.array([0, 0, 0, 1, 1, 0, 0, 0.0]),  # no weighted treated
        np.array([2, 1, 0, 0, 0, 0.5, 0, 3.0]),
    ):
        got = balance_table(data, "t", covs, weights=w).to_frame()
        _assert_same_statistics(got, data, t, w, covs)
    one = data.assign(t=[1, 0, 0, 0, 0, 0, 0, 0])
    _assert_same_statistics(
        balance_table(one, "t", covs).to_frame(), one, one["t"].to_numpy().astype(bool), None, covs
    )


def test_value_tables_by_hand():
    """The hand-computed case of test_hand_computed through balance_table: eCDF at the distinct values 0 … 4."""
    data = pd.DataFrame({"t": [1, 1, 1, 0, 0, 0, 0], "x": [1.0, 2, 3, 0, 0, 4, 4]})
    w = np.array([1, 1, 1, 0, 0, 0, 2.0])
    tab = balance_table(data, "t", ["x"], weights=w).to_frame().set_index("sample")
    before, after = tab.loc["before"], tab.loc["after"]
    assert before["smd"] == 0.0 and before["ecdf_max"] == pytest.approx(0.5)
    # |F_T − F_C| at 0, 1, 2, 3, 4: 1/2, 1/2 − 1/3, 2/3 − 1/2, 1/2, 0
    assert before["ecdf_mean"] == pytest.approx((0.5 + 1 / 6 + 1 / 6 + 0.5 + 0) / 5, abs=1e-15)
    assert before["var_ratio"] == pytest.approx(1 / (16 / 3))
    # after: the controls all at 4 (weight 2): F_C = 0 below 4; F_T = 0, 1/3, 2/3, 1, 1
    assert after["mean_control"] == 4.0 and after["smd"] == pytest.approx(-2.0)
    assert after["ecdf_mean"] == pytest.approx((0 + 1 / 3 + 2 / 3 + 1 + 0) / 5, abs=1e-15)
    assert after["ecdf_max"] == 1.0 and np.isnan(after["var_ratio"])  # one weighted control: variance 0/0


def test_value_tables_are_exact_where_the_row_sums_are_not():
    """Whole-number counts and unit weights: the eCDF statistics from the value tables are the exact ones
    (rational arithmetic) to 1 ulp-level; a running sum over the rows, as the reference, drifts with n."""
    from fractions import Fraction

    rng = np.random.default_rng(5)
    n = 200_000
    x = rng.integers(0, 40, n)
    t = rng.random(n) < 0.1
    row = balance_table(pd.DataFrame({"t": t.astype(int), "x": x}), "t", ["x"]).to_frame().iloc[0]
    ct = np.cumsum(np.bincount(x[t], minlength=40))
    cc = np.cumsum(np.bincount(x[~t], minlength=40))
    nt, nc = int(t.sum()), int((~t).sum())
    num = [abs(int(a) * nc - int(b) * nt) for a, b in zip(ct, cc, strict=True)]
    assert abs(row["ecdf_mean"] - float(Fraction(sum(num), 40 * nt * nc))) <= 1e-16
    assert abs(row["ecdf_max"] - float(Fraction(max(num), nt * nc))) <= 1e-16
    assert row["mean_treated"] == float(x[t].sum()) / nt  # whole-number sums: exact in any order


def test_table_sums_taken_in_pieces_give_the_same_statistics(monkeypatch):
    # a continuous column's value tables are as long as the data; their sums are taken a piece at a time
    # (balance.SUM_PIECE values), split as numpy's pairwise summation splits the whole, and their running sums
    # continue from the last sum of the piece before: the same numbers to the bit as with the whole tables
    from finsam_effekt import balance

    rng = np.random.default_rng(3)
    n = 3000
    df = pd.DataFrame({"treated": (rng.random(n) < 0.3).astype(int), "x": rng.normal(size=n),
                       "k": rng.integers(0, 40, n).astype(float), "gaps": 2.0 * rng.integers(0, 700, n)})  # fmt: skip
    w = np.where(df["treated"] == 1, 1.0, rng.random(n) * (rng.random(n) < 0.5))
    covs = ["x", "k", "gaps"]  # "gaps": a grid whose odd values no row has
    whole = balance_table(df, "treated", covs, weights=w).to_frame()
    assert balance.SUM_PIECE >= n
    monkeypatch.setattr(balance, "SUM_PIECE", 128)  # the least: numpy's pairwise block
    pieces = balance_table(df, "treated", covs, weights=w).to_frame()
    pd.testing.assert_frame_equal(pieces, whole, check_exact=True)
    assert whole["ecdf_max"].notna().all() and (whole["ecdf_max"] > 0).all()
    ref = balance_stats(df["x"].to_numpy(), df["treated"].to_numpy() == 1, w)
    row = whole[(whole["variable"] == "x") & (whole["sample"] == "after")].iloc[0]
    for k in ("mean_treated", "mean_control", "var_ratio", "ecdf_mean", "ecdf_max"):
        assert row[k] == pytest.approx(ref[k], rel=1e-12), k
