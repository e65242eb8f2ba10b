"""The shared design-matrix builder and logit (finsam_effekt.design) against hand-computed cases and statsmodels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from finsam_effekt.design import (
    MISSING_LEVEL,
    CompactDesign,
    compact_design_matrix,
    design_columns,
    design_matrix,
    design_sources,
    fit_logit,
)
from finsam_effekt.errors import InputError


def test_design_matrix_rules_by_hand():
    df = pd.DataFrame(
        {
            "age": [20, 30, 40, 50],
            "flag": [True, False, True, True],
            "edu": ["b", None, "a", "b"],
            "flat": [1.0, 1.0, 1.0, 1.0],
        }
    )
    x = design_matrix(df, ["age", "flag", "edu", "flat"], intercept=True)
    # sorted levels: "(missing)" < "a" < "b"; the first is dropped; the constant column is dropped
    assert list(x.columns) == ["const", "age", "flag", "edu=a", "edu=b"]
    np.testing.assert_array_equal(x["edu=a"], [0, 0, 1, 0])
    np.testing.assert_array_equal(x["edu=b"], [1, 0, 0, 1])
    np.testing.assert_array_equal(x["flag"], [1, 0, 1, 1])
    full = design_matrix(df, ["edu"], levels="all")
    assert list(full.columns) == [f"edu={MISSING_LEVEL}", "edu=a", "edu=b"]
    np.testing.assert_array_equal(full.sum(axis=1), 1.0)
    months = design_matrix(pd.DataFrame({"m": [1, 2, 2]}), ["m"], categorical=["m"])
    assert list(months.columns) == ["m=2"]


def test_design_matrix_errors_name_the_column():
    df = pd.DataFrame({"age": [20.0, np.nan, np.nan]})
    with pytest.raises(
        InputError, match=r"^propensity model: covariate 'age' has 2 missing values; impute it"
    ):
        design_matrix(df, ["age"], what="propensity model")
    with pytest.raises(InputError, match=r"columns \['nope'\] are not in the data"):
        design_matrix(df, ["nope"])


@pytest.fixture(scope="module")
def logit_data():
    rng = np.random.default_rng(3)
    n = 4000
    df = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "z": rng.normal(size=n),
            "g": rng.choice(["a", "b", "c"], size=n),
            "month": rng.choice(["2020-01", "2020-02", "2020-03", "2020-04"], size=n),
        }
    )
    eta = -1 + 0.7 * df["x"] - 0.4 * df["z"] + (df["g"] == "b") * 0.5 + (df["month"] == "2020-03") * 0.3
    df["d"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    df["w"] = rng.uniform(0.5, 2.0, size=n)
    return df


def test_fit_logit_equals_statsmodels(logit_data):
    df = logit_data
    x = design_matrix(df, ["x", "z", "g"], intercept=True)
    fit = fit_logit(x, df["d"].to_numpy())
    ref = sm.Logit(df["d"].to_numpy(), x).fit(method="newton", disp=False)
    assert fit.converged
    np.testing.assert_allclose(fit.params.to_numpy(), ref.params.to_numpy(), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(fit.fitted, ref.predict(x), rtol=1e-9)


def test_fit_logit_fixed_effects_equal_dense_dummies(logit_data):
    df = logit_data
    x = design_matrix(df, ["x", "z", "g"], intercept=True)
    fit = fit_logit(x, df["d"].to_numpy(), fixed_effects=df["month"])
    dense = design_matrix(df, ["x", "z", "g", "month"], intercept=True)
    ref = sm.Logit(df["d"].to_numpy(), dense).fit(method="newton", disp=False)
    assert list(fit.params.index) == list(dense.columns)
    np.testing.assert_allclose(fit.params.to_numpy(), ref.params.to_numpy(), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(fit.linear_predictor, dense.to_numpy() @ ref.params.to_numpy(), rtol=1e-9)


def test_fit_logit_weights_equal_glm_frequency_weights(logit_data):
    df = logit_data
    x = design_matrix(df, ["x", "g"], intercept=True)
    fit = fit_logit(x, df["d"].to_numpy(), weights=df["w"].to_numpy())
    ref = sm.GLM(df["d"].to_numpy(), x, family=sm.families.Binomial(), freq_weights=df["w"].to_numpy()).fit()
    np.testing.assert_allclose(fit.params.to_numpy(), ref.params.to_numpy(), rtol=1e-8, atol=1e-10)


def test_fit_logit_separation_is_marked_not_converged():
    x = pd.DataFrame({"const": 1.0, "x": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]})
    d = np.array([0, 0, 0, 1, 1, 1])  # perfectly separated at x = 2.5
    fit = fit_logit(x, d)
    assert not fit.converged
    assert np.all(np.isfinite(fit.linear_predictor))
    assert (fit.fitted[d == 1] > fit.fitted[d == 0].max()).all()


def test_fit_logit_collinear_columns_are_aliased_and_leave_fitted_values_unchanged(logit_data):
    df = logit_data
    x = design_matrix(df, ["x", "z"], intercept=True)
    ref = fit_logit(x, df["d"].to_numpy())
    dup = x.assign(x2=2 * x["x"] - x["z"])  # exactly collinear: aliased, NaN as in R's glm
    fit = fit_logit(dup, df["d"].to_numpy())
    assert fit.converged and np.isnan(fit.params["x2"])
    np.testing.assert_allclose(fit.params.drop("x2"), ref.params, rtol=1e-9)
    np.testing.assert_allclose(fit.fitted, ref.fitted, rtol=1e-9)


def test_fit_logit_complete_separation_with_few_events_stays_finite():
    rng = np.random.default_rng(1)
    x = pd.DataFrame({"const": 1.0, **{f"x{i}": rng.normal(size=200) for i in range(20)}})
    d = np.zeros(200)
    d[:3] = 1  # 3 events, 20 covariates: separable
    fit = fit_logit(x, d)
    assert not fit.converged
    assert np.isfinite(fit.params).all() and fit.fitted.max() < 1


def test_fit_logit_month_without_treated_is_penalised_not_infinite(logit_data):
    df = logit_data.assign(d=np.where(logit_data["month"] == "2020-04", 0, logit_data["d"]))
    x = design_matrix(df, ["x", "z"], intercept=True)
    fit = fit_logit(x, df["d"].to_numpy(), fixed_effects=df["month"])
    assert not fit.converged
    assert np.isfinite(fit.params).all()
    empty = (df["month"] == "2020-04").to_numpy()
    assert fit.fitted[empty].mean() < fit.fitted[~empty].mean() / 20
    # the covariates' coefficients are those of the months with treated, up to the mild shrinkage
    rest = df[~empty]
    ref = fit_logit(
        design_matrix(rest, ["x", "z"], intercept=True), rest["d"].to_numpy(), fixed_effects=rest["month"]
    )
    np.testing.assert_allclose(fit.params[["x", "z"]], ref.params[["x", "z"]], rtol=0.03)


def _mixed(n: int, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    edu = rng.choice(
        ["compulsory", "upper_secondary", "post_secondary", None], size=n, p=[0.3, 0.4, 0.25, 0.05]
    )
    x = pd.DataFrame(
        {
            "age": rng.integers(18, 65, n).astype(float),  # float32-exact
            "days": rng.integers(0, 2000, n) / 4,  # quarter days: exact
            "sek": rng.gamma(2.0, 12345.678, n).round(2),  # kronor with öre: not exact in float32
            "flag": rng.random(n) < 0.3,
            "education": edu,
            "constant": 7.0,
            "month": rng.choice(["2020-01", "2020-02", "2020-03"], size=n),
        }
    )
    eta = -2 + 0.03 * (x["age"] - 40) + 0.4 * x["flag"] - 0.3 * (x["education"] == "post_secondary")
    x["t"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    return x


def test_compact_design_equals_the_design_matrix_and_fits_the_same_logit():
    data = _mixed(3000)
    covs = ["age", "days", "sek", "flag", "education", "constant"]
    dense = design_matrix(data, covs, intercept=True)
    compact = compact_design_matrix(data, covs, intercept=True)
    # the same columns, the one that float32 cannot hold exactly (kronor with öre) moved last
    assert isinstance(compact, CompactDesign)
    assert compact.columns == [c for c in dense.columns if c != "sek"] + ["sek"]
    dense = dense[compact.columns]
    assert compact.shape == dense.shape and "constant" not in compact.columns
    assert np.array_equal(compact[:], dense.to_numpy())
    assert np.array_equal(compact[100:250], dense.to_numpy()[100:250])
    # each column in the narrowest exact type: whole numbers 0..255 (indicators, the constant, small counts) one
    # byte, other float32-exact values (quarter days) four, kronor with öre eight
    v = dense.to_numpy()
    small = ((v >= 0) & (v <= 255) & (np.floor(v) == v)).all(axis=0)
    f32 = (v.astype(np.float32).astype(np.float64) == v).all(axis=0)
    assert small.sum() >= 4 and (f32 & ~small).sum() >= 1 and (~f32).sum() == 1
    assert compact.nbytes == 3000 * int(np.where(small, 1, np.where(f32, 4, 8)).sum())
    keep = np.array([c not in ("age", "sek") for c in compact.columns])
    part = compact.select(keep)
    assert part.columns == [c for c in compact.columns if c not in ("age", "sek")]
    assert np.array_equal(part[5:50], dense.loc[:, keep].to_numpy()[5:50])
    a = fit_logit(dense, data["t"].to_numpy(), fixed_effects=data["month"])
    b = fit_logit(compact, data["t"].to_numpy(), fixed_effects=data["month"])
    # the same numbers in; the sums may run in another order (a pandas matrix is column-major): rounding apart
    pd.testing.assert_series_equal(
        a.params, b.params[a.params.index], check_exact=False, rtol=1e-12, atol=1e-15
    )
    np.testing.assert_allclose(a.linear_predictor, b.linear_predictor, rtol=1e-12, atol=1e-12)


def test_compact_design_reads_blocks_in_storage_order_and_takes_rows():
    """``read`` into a reused buffer, ``blocked`` (columns grouped by storage block, with their order),
    ``compacted`` (blocks copied down to the columns used) and ``take`` (a subset of rows) give exactly the numbers
    of the float64 design matrix."""
    data = _mixed(3000)
    covs = ["age", "days", "flag", "sek", "education", "constant"]
    compact = compact_design_matrix(data, covs, intercept=True)
    dense = design_matrix(data, covs, intercept=True)[compact.columns].to_numpy()
    buf = np.empty((512, compact.shape[1]))
    for s in range(0, 3000, 512):
        part = compact.read(s, min(s + 512, 3000), out=buf)
        assert np.shares_memory(part, buf) and np.array_equal(part, dense[s : s + 512])
    with pytest.raises(ValueError, match="C-contiguous float64"):
        compact.read(0, 600, out=buf)
    blocked, order = compact.blocked()
    # the columns regrouped (indicators and floats are interleaved in the design's order)
    assert sorted(order) == list(range(compact.shape[1])) and list(order) != sorted(order)
    assert blocked.columns == [compact.columns[j] for j in order]
    assert np.array_equal(blocked[:], dense[:, order]) and np.array_equal(blocked[::7], dense[::7][:, order])
    keep = np.array([c not in ("const", "education=post_secondary") for c in blocked.columns])
    part = blocked.select(keep)  # a column left out inside a block: two runs
    assert np.array_equal(part[10:900], dense[10:900][:, order[keep]])
    packed = part.compacted()  # the blocks copied down to the columns used: one piece per block to read
    assert all(a.shape[1] == len(src) for a, src, _ in packed.blocks) and packed.nbytes < part.nbytes
    assert packed.columns == part.columns and np.array_equal(packed[:], part[:])
    rows = np.sort(np.random.default_rng(1).choice(3000, 400, replace=False))
    assert np.array_equal(part.take(rows)[:], dense[rows][:, order[keep]])
    assert np.array_equal(compact.take(rows)[:], dense[rows])


def test_compact_design_drops_constant_columns_as_the_design_matrix_does():
    data = _mixed(2000).assign(
        tenth=0.1, third=1 / 3, neg=-3.0, step=lambda d: np.where(d.index < 5, 2.0, 1.0)
    )
    covs = ["age", "tenth", "third", "neg", "step", "flag"]
    compact = compact_design_matrix(data, covs, intercept=True)
    dense = design_matrix(data, covs, intercept=True)
    assert sorted(compact.columns) == sorted(dense.columns) and "step" in compact.columns
    assert np.array_equal(compact[:], dense[compact.columns].to_numpy())


def test_compact_design_stores_each_column_type_in_the_narrowest_exact_block():
    """Integer, boolean and float32 columns are classified from their type where it decides: whole numbers 0..255
    one byte, integers up to 2^24 and float32 values four, other integers as their float64 values allow."""
    rng = np.random.default_rng(4)
    n = 1000
    data = pd.DataFrame(
        {
            "i_small": rng.integers(0, 201, n).astype(np.int32),
            "i_mid": rng.integers(-(10**6), 10**6, n).astype(np.int32),
            "i_round": rng.integers(0, 2**22, n).astype(np.int64) * 256,  # up to 2^30, exact in float32
            "i_big": rng.integers(2**25, 2**26, n).astype(np.int64) | 1,  # odd above 2^24: not exact
            "f_whole": rng.integers(0, 100, n).astype(np.float32),
            "f_frac": (rng.integers(0, 400, n) / 4).astype(np.float32),
            "b": rng.random(n) < 0.5,
            "u16": rng.integers(0, 300, n).astype(np.uint16),
        }
    )
    compact = compact_design_matrix(data, list(data.columns), intercept=False)
    dtype = {compact.columns[j]: a.dtype for a, _src, dst in compact.blocks for j in dst}
    assert dtype == {
        "i_small": np.uint8, "f_whole": np.uint8, "b": np.uint8,
        "i_mid": np.float32, "i_round": np.float32, "f_frac": np.float32, "u16": np.float32,
        "i_big": np.float64,
    }  # fmt: skip
    dense = design_matrix(data, list(data.columns))[compact.columns].to_numpy()
    assert np.array_equal(compact[:], dense)


@pytest.mark.slow
def test_fit_logit_in_row_chunks_equals_one_block():
    """Above 500 000 rows the Newton sums run chunk by chunk (also the fixed-effect block): the same fit up to
    rounding as statsmodels on the dense matrix with month dummies."""
    data = _mixed(1_100_000, seed=9)
    covs = ["age", "days", "sek", "flag", "education"]
    fit = fit_logit(compact_design_matrix(data, covs), data["t"].to_numpy(), fixed_effects=data["month"])
    x = design_matrix(data, [*covs, "month"], intercept=True)
    ref = sm.Logit(data["t"].to_numpy(), x).fit(method="newton", disp=0)
    np.testing.assert_allclose(
        fit.params[ref.params.index].to_numpy(), ref.params.to_numpy(), rtol=1e-7, atol=1e-9
    )


def test_design_columns_one_at_a_time_equal_the_balance_design():
    data = _mixed(500)
    covs = ["age", "sek", "flag", "education", "constant"]
    dense = design_matrix(data, covs, levels="all", drop_constant=False)
    cols = design_columns(data, covs)
    assert [c for c, _ in cols] == list(dense.columns)  # every level, the missing one too, constants kept
    for name, make in cols:
        assert np.array_equal(make(), dense[name].to_numpy()), name
    with pytest.raises(InputError, match="covariate 'age' has 1 missing value"):
        design_columns(data.assign(age=data["age"].where(data.index != 3)), ["age"])


def test_design_sources_are_the_columns_as_stored():
    """design_sources: numeric columns in their own dtype without a copy (float32 stays float32), categorical
    ones as level codes; their columns are design_columns' (names, order, values)."""
    data = _mixed(300)
    data["age32"] = data["age"].astype(np.float32)
    data["k"] = data["age"].astype("Int64")
    covs = ["age32", "k", "flag", "education", "constant"]
    sources = design_sources(data, covs)
    assert [c for src in sources for c in src.columns] == [c for c, _ in design_columns(data, covs)]
    age32, k, flag, edu, _ = sources
    assert age32.values.dtype == np.float32 and np.shares_memory(age32.values, data["age32"].to_numpy())
    assert k.values.dtype == np.float64 and flag.values.dtype == bool  # a nullable integer as float64
    levels = [MISSING_LEVEL, "compulsory", "post_secondary", "upper_secondary"]
    assert edu.codes is not None and list(edu.levels) == levels
    text = data["education"].fillna(MISSING_LEVEL).to_numpy()
    np.testing.assert_array_equal(edu.levels.to_numpy()[edu.codes], text)


def test_design_sources_names_only_name_the_columns_without_their_codes():
    """design_sources(names_only=True): the same sources' names and columns with no values or codes, made one at a
    time by design_source; the covariates are checked all the same. Categorical columns with unused categories
    and missing values give the levels of level_codes (level_names)."""
    from finsam_effekt.design import design_source, level_codes, level_names

    data = _mixed(300)
    cat = pd.Categorical(
        data["education"], categories=["upper_secondary", "compulsory", "doctorate", "post_secondary"]
    )
    data["edu_cat"] = cat  # "doctorate" unused, the missing values code −1
    covs = ["age", "flag", "education", "edu_cat", "constant"]
    full, shells = design_sources(data, covs), design_sources(data, covs, names_only=True)
    assert [s.columns for s in shells] == [s.columns for s in full]
    assert all(s.values is None and s.codes is None for s in shells)
    for src in full:
        one = design_source(data, src.name)
        assert one.columns == src.columns
        for a, b in ((one.values, src.values), (one.codes, src.codes)):
            assert (a is None and b is None) or np.array_equal(a, b)
    for col in ("education", "edu_cat"):
        assert list(level_names(data[col])) == list(level_codes(data[col])[1])
    np.testing.assert_array_equal(level_codes(data["edu_cat"])[0], level_codes(data["education"])[0])
    with pytest.raises(InputError, match="balance_table: covariate 'age' has 1 missing value"):
        design_sources(
            data.assign(age=data["age"].where(data.index != 3)),
            ["age"],
            what="balance_table",
            names_only=True,
        )
    with pytest.raises(InputError, match=r"design: columns \['nope'\] are not in the data"):
        design_source(data, "nope")


def test_categorical_columns_give_the_same_design_as_text():
    """A cohort in compact types (``tables.compact``: text as categories, with unused categories after a subset)
    gives the same levels, codes, design and logit as the same data as text."""
    from finsam_effekt.design import level_codes
    from finsam_effekt.tables import compact, concat_compact, plain

    rng = np.random.default_rng(3)
    n = 400
    text = pd.DataFrame(
        {
            "edu": rng.choice(np.array(["b", "a", "c", None], dtype=object), n),
            "month": rng.choice(np.array(["2019-02", "2019-01", "2018-12"], dtype=object), n),
            "x": rng.normal(size=n),
            "k": rng.integers(0, 5, n),
        }
    )
    d = (rng.random(n) < 0.3).astype(float)
    # in two batches, one without level "c" (the union of their categories), then a subset leaving "c" unused
    half = n // 2
    batch1 = text.iloc[:half].copy()
    batch1.loc[batch1["edu"] == "c", "edu"] = "a"
    text.iloc[:half] = batch1
    comp = concat_compact([compact(text.iloc[:half]), compact(text.iloc[half:])])
    assert isinstance(comp["edu"].dtype, pd.CategoricalDtype) and comp["k"].dtype == np.int32
    assert list(comp["edu"].cat.categories) == ["a", "b", "c"]
    pd.testing.assert_frame_equal(plain(comp).astype({"k": np.int64}), text.reset_index(drop=True))
    sub_text = text[text["edu"] != "c"].reset_index(drop=True)
    sub_comp = comp[comp["edu"] != "c"].reset_index(drop=True)
    assert "c" in sub_comp["edu"].cat.categories  # unused, must not become a level
    for col in ("edu", "month"):
        c1, l1 = level_codes(sub_text[col])
        c2, l2 = level_codes(sub_comp[col])
        assert list(l1) == list(l2) and np.array_equal(c1, c2)
    covs = ["edu", "month", "x", "k"]
    a = compact_design_matrix(sub_text, covs)
    b = compact_design_matrix(sub_comp, covs)
    assert a.columns == b.columns
    cols_a = {name: make() for name, make in design_columns(sub_text, covs)}
    cols_b = {name: make() for name, make in design_columns(sub_comp, covs)}
    assert cols_a.keys() == cols_b.keys() and all(np.array_equal(cols_a[k], cols_b[k]) for k in cols_a)
    dd = d[: len(sub_text)]
    fa = fit_logit(a, dd, fixed_effects=sub_text["month"])
    fb = fit_logit(b, dd, fixed_effects=sub_comp["month"])
    np.testing.assert_array_equal(fa.params, fb.params)


def test_warm_start_at_the_null_model_reaches_the_same_estimate(monkeypatch):
    """Above ``WARM_START_ROWS`` Newton starts at the intercept-and-fixed-effects model's closed-form estimate
    (logit of the share per level); the maximum is the same as from β = 0 (statsmodels' start), to the tolerance,
    with case weights and a rare outcome as in a candidate pool."""
    import finsam_effekt.design.logit as design

    rng = np.random.default_rng(11)
    n = 6000
    df = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "edu": rng.choice(["a", "b", "c"], n),
            "month": rng.choice(["2019-01", "2019-02", "2019-03", "2019-04"], n),
        }
    )
    eta = -4.0 + 0.8 * df["x"] + (df["edu"] == "b") * 0.5 + (df["month"] == "2019-03") * 1.0
    d = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    w = rng.uniform(0.5, 2.0, n)
    x = design_matrix(df, ["x", "edu"], intercept=True)
    monkeypatch.setattr(design, "WARM_START_ROWS", 10**9)
    cold = fit_logit(x, d, weights=w, fixed_effects=df["month"])
    start = design.null_model_start(
        x.to_numpy(), d, w, design.level_codes(df["month"])[0] - 1, 3, np.array([0])
    )
    assert start is None  # below the threshold: β = 0, as statsmodels
    monkeypatch.setattr(design, "WARM_START_ROWS", 100)
    code = design.level_codes(df["month"])[0].astype(np.int64) - 1
    a0, c0 = design.null_model_start(x.to_numpy(), d, w, code, 3, np.array([0]))
    # the start is the null model: the weighted share of d = 1 per month, as log odds
    share = pd.Series(d * w).groupby(df["month"]).sum() / pd.Series(w).groupby(df["month"]).sum()
    logodds = np.log(share / (1 - share)).to_numpy()
    assert a0[0] == pytest.approx(logodds[0], abs=1e-12) and np.all(a0[1:] == 0)
    np.testing.assert_allclose(c0, logodds[1:] - logodds[0], atol=1e-12)
    warm = fit_logit(x, d, weights=w, fixed_effects=df["month"])
    assert warm.converged and cold.converged
    np.testing.assert_allclose(warm.params.to_numpy(), cold.params.to_numpy(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(warm.linear_predictor, cold.linear_predictor, rtol=0, atol=1e-9)


def test_logit_in_row_chunks_equals_one_chunk():
    """The Newton pass in row chunks (η, score and Hessian blocks per chunk; the fixed-effect block by sparse
    sums) gives the estimate of the one-chunk pass (per-level sums by bincount), to rounding."""
    rng = np.random.default_rng(5)
    n = 3000
    df = pd.DataFrame({"x": rng.normal(size=n), "b": rng.integers(0, 2, n).astype(float)})
    month = pd.Series(rng.choice(["m1", "m2", "m3", "m4", "m5"], n), name="month")
    eta = -2 + 0.7 * df["x"] + 0.3 * (month == "m3")
    d = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    x = design_matrix(df, ["x", "b"], intercept=True)
    one = fit_logit(x, d, fixed_effects=month, chunk=10**6, tol=1e-10)
    many = fit_logit(x, d, fixed_effects=month, chunk=700, tol=1e-10)
    np.testing.assert_allclose(many.params.to_numpy(), one.params.to_numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(many.linear_predictor, one.linear_predictor, rtol=0, atol=1e-10)


def _pool(n: int, seed: int, *, months_sorted: bool = True) -> pd.DataFrame:
    """A candidate pool in small: rare treatment, calendar months (in month order like the cohort, or shuffled),
    indicators with a rare level, counts, kronor, and a column that is the sum of two others (dependent)."""
    rng = np.random.default_rng(seed)
    month = rng.choice([f"2020-{m:02d}" for m in range(1, 9)], n)
    df = pd.DataFrame(
        {
            "age": rng.integers(18, 65, n).astype(float),
            "days": rng.integers(0, 400, n) / 4,
            "sek": rng.gamma(2.0, 5000.0, n).round(2),
            "flag": rng.random(n) < 0.3,
            "edu": rng.choice(["a", "b", "c", "d"], n, p=[0.5, 0.3, 0.18, 0.02]),
            "month": np.sort(month) if months_sorted else month,
        }
    )
    df["both"] = df["age"] + df["days"]
    eta = (
        -4.0
        + 0.03 * (df["age"] - 40)
        + 0.6 * df["flag"]
        - 0.004 * df["days"]
        + 0.3 * (df["edu"] == "b")
        - 0.5 * (df["edu"] == "d")
        + 0.5 * (df["month"] >= "2020-05")
    )
    df["t"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    return df


_POOL_COVS = ["age", "days", "flag", "sek", "edu", "both"]


@pytest.mark.parametrize(
    ("months_sorted", "weighted", "month_effects"),
    [(True, False, True), (False, True, True), (True, False, False)],
)
def test_large_path_from_a_subsample_start_reaches_the_small_path_estimate(
    monkeypatch, months_sorted, weighted, month_effects
):
    """The large-data path (one-pass rank check, start from a case-control subsample, blocks in storage order,
    chord step at the end) gives the estimate of the small-data path (start at 0, full Newton steps) to the
    tolerance, the same aliased columns, and the same linear predictor; with a compact design and a dense one."""
    import finsam_effekt.design.logit as design

    df = _pool(40_000, seed=21, months_sorted=months_sorted)
    w = np.random.default_rng(2).uniform(0.5, 2.0, len(df)) if weighted else None
    monkeypatch.setattr(design, "SUBSAMPLE_ROWS", 8000)
    starts = []
    real = design.subsample_start

    def spy(*args, **kwargs):
        starts.append(real(*args, **kwargs))
        return starts[-1]

    monkeypatch.setattr(design, "subsample_start", spy)
    fe = df["month"] if month_effects else None
    compact = compact_design_matrix(df, _POOL_COVS)
    small = fit_logit(compact, df["t"].to_numpy(), weights=w, fixed_effects=fe)
    assert not starts  # 40 000 rows: the small path
    for x in (compact, design_matrix(df, _POOL_COVS, intercept=True)):
        large = fit_logit(x, df["t"].to_numpy(), weights=w, fixed_effects=fe, large_rows=1000, chunk=1500)
        assert starts and starts[-1] is not None  # started from the subsample's fit
        assert small.converged and large.converged
        ref = small.params[large.params.index]
        assert (
            list(large.params.index[large.params.isna()])
            == ["both"]
            == list(small.params.index[small.params.isna()])
        )
        np.testing.assert_allclose(large.params.to_numpy(), ref.to_numpy(), rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(large.linear_predictor, small.linear_predictor, rtol=0, atol=1e-9)


def test_large_path_rank_check_keeps_the_columns_of_independent_columns():
    """The large path's rank check (X'X from the same pass as the unit column, the columns in storage order) keeps
    exactly the columns :func:`independent_columns` keeps, and finds the intercept."""
    import finsam_effekt.design.logit as design

    df = _pool(5000, seed=3).assign(
        flag2=lambda d: d["flag"], age2=lambda d: 2 * d["age"], half_age=lambda d: d["age"] / 2
    )
    # half_age (float32) comes before age (one byte) in the design but after it in storage: age is the one left out
    covs = ["half_age", "age", "flag", "days", "edu", "both", "flag2", "sek", "age2"]
    compact = compact_design_matrix(df, covs)
    dense = design_matrix(df, covs, intercept=True).to_numpy()
    for x in (compact, dense):
        keep = design.independent_columns(x)
        assert (~keep).sum() == 4 and keep[0] and keep[1] and not keep[2]  # age, both, flag2, age2 left out
        xk, cols, const = design.large_design(x, 700)
        assert sorted(cols) == list(np.flatnonzero(keep))  # (a compact design's in storage order)
        assert np.array_equal(xk[:], x[:][:, cols]) and list(cols[const]) == [0]


def test_subsample_start_moves_the_intercept_by_the_log_sampling_rate():
    """Sampling the controls at a rate r adds −log r to the logit among the sampled rows: the subsample's fit
    with log r added back to its intercept is close to the full data's estimate (the sampling error of the
    left-out controls apart), the slopes as they are."""
    import finsam_effekt.design.logit as design

    df = _pool(60_000, seed=8)
    x = design_matrix(df, ["age", "flag", "days", "edu"], intercept=True)
    t = df["t"].to_numpy()
    code = design.level_codes(df["month"])[0].astype(np.int64) - 1
    full = fit_logit(x, t, fixed_effects=df["month"])
    a, c = design.subsample_start(x.to_numpy(), t, None, code, 7, np.array([0]), rows=6000, block=2000)
    rate = (6000 - t.sum()) / (1 - t).sum()
    assert np.log(rate) < -2
    assert abs(a[0] - full.params["const"]) < 0.3  # without the correction it would be off by |log r| > 2
    np.testing.assert_allclose(a[1:], full.params[x.columns[1:]].to_numpy(), atol=0.25)  # rare level: 0.13
    np.testing.assert_allclose(c, full.params.iloc[x.shape[1] :].to_numpy(), atol=0.3)
    # nothing to gain (few controls) or no intercept: no subsample start
    assert design.subsample_start(x.to_numpy(), t, None, code, 7, np.array([0]), rows=50_000) is None
    assert design.subsample_start(x.to_numpy(), t, None, code, 7, np.array([], int), rows=6000) is None


def test_large_path_falls_back_to_the_same_ridge_fit_under_separation():
    """A month without treated separates: the large path, like the small one, ends in the penalised fit."""
    df = _pool(20_000, seed=4)
    df.loc[df["month"] == "2020-03", "t"] = 0.0
    x = compact_design_matrix(df, ["age", "flag", "days"])
    small = fit_logit(x, df["t"].to_numpy(), fixed_effects=df["month"])
    large = fit_logit(x, df["t"].to_numpy(), fixed_effects=df["month"], large_rows=1000, chunk=3000)
    assert not small.converged and not large.converged
    np.testing.assert_allclose(large.params.to_numpy(), small.params.to_numpy(), rtol=1e-7, atol=1e-9)


def test_text_as_categories_keeps_values_numbers_and_the_text_order():
    # the outcome paths' text keys become categories (levels sorted as the text sorts), numbers keep their types
    from finsam_effekt.tables import text_as_categories

    f = pd.DataFrame(
        {
            "person_id": ["b", "a", None, "b"],
            "month": ["2020-02", "2019-12", "2020-01", "2020-02"],
            "y": [0.1, 0.2, np.nan, 1.0],
            "k": np.array([1, 2, 3, 4], dtype=np.int64),
        }
    )
    g = text_as_categories(f)
    assert isinstance(g.person_id.dtype, pd.CategoricalDtype)
    assert list(g.person_id.cat.categories) == ["a", "b"] and g.person_id.isna().tolist() == [
        False,
        False,
        True,
        False,
    ]
    assert g.month.astype(object).tolist() == f.month.tolist()
    assert g.y.dtype == np.float64 and g.k.dtype == np.int64
    assert (
        g.sort_values(["month", "person_id"]).index.tolist()
        == f.sort_values(["month", "person_id"]).index.tolist()
    )
    assert f.person_id.dtype == object  # the input is not changed
    assert text_as_categories(f[["y"]]).equals(f[["y"]])
