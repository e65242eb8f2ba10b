"""matching: MatchIt 4.7.2 golden fixtures (tests/fixtures/matchit/make_fixtures.R, make_fixtures_mahvars.R),
literal ports of MatchIt's C++ scans as oracles for ties, brute-force checks, IPW."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finsam_effekt.errors import ConfigError, InputError
from finsam_effekt.matching import (
    REASON_CALIPER,
    REASON_NO_STRATUM,
    estimate_propensity,
    ipw_weights,
    mahalanobis,
    match_nearest,
    pooled_within_cov,
    sample_sizes,
)
from finsam_effekt.matching.distance import matchit_mahalanobis_transform
from finsam_effekt.matching.search import partial_sort

FIX = Path(__file__).parent / "fixtures" / "matchit"

#: The cases of make_fixtures.R, as match_nearest arguments (same names).
CASES = json.loads((FIX / "cases.json").read_text())
#: The cases of make_fixtures_mahvars.R: the data set, then match_nearest arguments.
CASES_MAH = json.loads((FIX / "cases_mahvars.json").read_text())


@pytest.fixture(scope="module")
def fx():
    # round_trip: pandas' default float parser can be one unit in the last place off R's %.17g
    data = pd.read_csv(FIX / "data.csv", float_precision="round_trip")
    return {
        "data": data,
        "matches": pd.read_csv(FIX / "matches.csv"),
        "weights": pd.read_csv(FIX / "weights.csv"),
        "calipers": pd.read_csv(FIX / "calipers.csv"),
    }


def test_fixture_versions():
    text = (FIX / "versions.txt").read_text()
    assert "MatchIt 4.7.2" in text


@pytest.mark.parametrize("case", list(CASES))
def test_matched_sets_equal_matchit(fx, case):
    data = fx["data"]
    res = match_nearest(data, "treat", **CASES[case])
    # identical match matrix: same controls, same column (k) per treated row
    exp = fx["matches"].query("case == @case")[["treated_row", "k", "control_row"]]
    exp = exp.sort_values(["treated_row", "k"]).reset_index(drop=True)
    got = pd.DataFrame(
        {
            "treated_row": res.pairs["treated_row"] + 1,
            "k": res.pairs["k"],
            "control_row": res.pairs["control_row"] + 1,
        }
    )
    got = got.sort_values(["treated_row", "k"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, exp, check_dtype=False)
    # identical weights and subclasses
    w = fx["weights"].query("case == @case").sort_values("row")
    np.testing.assert_allclose(res.weights, w["weights"].to_numpy(), rtol=0, atol=1e-12)
    if w["subclass"].notna().any():
        sc = w["subclass"].fillna(0).astype(int).to_numpy()
        np.testing.assert_array_equal(res.subclass, sc)
    cal = fx["calipers"].query("case == @case")["caliper"].iloc[0]
    if pd.isna(cal):
        assert res.caliper is None
    else:
        assert res.caliper == pytest.approx(cal, rel=1e-12)


def test_weights_are_matchits_to_the_bit():
    # the same matches, the same order of additions (weights_matrixC) and R's long-double sum in normalize = TRUE
    for cases, data_of, wfile in (
        (CASES, lambda a: "data.csv", "weights.csv"),
        (CASES_MAH, lambda a: f"mahvars_data_{a['data']}.csv", "mahvars_weights.csv"),
    ):
        W = pd.read_csv(FIX / wfile, float_precision="round_trip")
        for case, args in cases.items():
            data = pd.read_csv(FIX / data_of(args), float_precision="round_trip")
            res = match_nearest(data, "treat", **{k: v for k, v in args.items() if k != "data"})
            np.testing.assert_array_equal(res.weights, W[W["case"] == case].sort_values("row")["weights"])


def test_matched_data_like_match_data(fx):
    res = match_nearest(fx["data"], "treat", distance="dist", ratio=2)
    md = res.matched_data()
    assert {"weights", "subclass", "distance"} <= set(md.columns)
    assert (md["weights"] > 0).all()
    # control weights sum to the number of matched controls; every set has one treated row
    c = md[md["treat"] == 0]
    assert c["weights"].sum() == pytest.approx(len(c))
    assert (md[md["treat"] == 1].groupby("subclass").size() == 1).all()
    assert "ratio 2:1" in res.summary()
    assert len(res.to_frame()) == len(res.pairs)


def test_unmatched_reasons(fx):
    data = fx["data"]
    res = match_nearest(data, "treat", distance="dist", exact="month", caliper=0.01)
    month4 = set(np.flatnonzero(data["month"].to_numpy() == 4))
    um = res.unmatched.set_index("treated_row")["reason"]
    assert {r for r in um.index if um[r] == REASON_NO_STRATUM} == month4
    assert (um == REASON_CALIPER).sum() > 0
    # every kept pair respects the caliper
    assert (res.pairs["distance"] <= res.caliper).all()
    assert "outside_caliper" in res.summary()


def _brute_force_1to1(d, treat, order, cal):
    """Plain O(n_t · n_c) greedy matching (no ties in d): nearest unused control within the caliper."""
    used = np.zeros(len(d), dtype=bool)
    out = {}
    controls = np.flatnonzero(~treat)
    for t in order:
        dist = np.abs(d[controls] - d[t])
        dist[used[controls]] = np.inf
        j = int(np.argmin(dist))
        if np.isfinite(dist[j]) and dist[j] <= cal:
            out[t] = controls[j]
            used[controls[j]] = True
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = 3000
    treat = rng.random(n) < 0.2
    d = rng.normal(size=n) + treat * 0.8
    data = pd.DataFrame({"t": treat.astype(int), "d": d})
    res = match_nearest(data, "t", distance="d", caliper=0.05)
    order = np.flatnonzero(treat)[np.argsort(-d[treat], kind="stable")]
    bf = _brute_force_1to1(d, treat, order, res.caliper)
    got = dict(zip(res.pairs["treated_row"], res.pairs["control_row"], strict=True))
    assert got == bf


def test_hand_case_ties_and_order():
    # treated at 0.5 (largest first) takes the control found first among equally near ones: the left one at
    # 0.4 (one step left) beats the right one at 0.6 (one step right); the treated at 0.0 then gets 0.1.
    data = pd.DataFrame({"t": [1, 0, 0, 1, 0], "d": [0.5, 0.4, 0.6, 0.0, 0.1]})
    res = match_nearest(data, "t", distance="d")
    pairs = dict(zip(res.pairs["treated_row"], res.pairs["control_row"], strict=True))
    assert pairs == {0: 1, 3: 4}
    np.testing.assert_allclose(res.weights, [1, 1, 0, 1, 1])
    np.testing.assert_array_equal(res.subclass, [1, 1, 0, 2, 2])


def test_partial_sort_matches_heap_semantics():
    # std::partial_sort is not stable; expected values from g++ 12 (libstdc++) on the same inputs
    assert partial_sort(3, 1, [0.2, 0.1, 0.1]) == [1]
    assert partial_sort(4, 2, [0.3, 0.1, 0.2, 0.1]) == [3, 1]
    assert partial_sort(6, 3, [0.2, 0.1, 0.1, 0.1, 0.3, 0.1]) == [3, 1, 2]
    assert sorted(partial_sort(5, 3, [0.5, 0.4, 0.3, 0.2, 0.1])) == [2, 3, 4]


def test_sample_sizes_by_hand():
    # treated rows 0, 1 (weights 1, 0); controls 2, 3, 4 (weights 2, 1, 0): ESS of the controls (2 + 1)² / (4 + 1)
    ss = sample_sizes(np.array([1, 1, 0, 0, 0]) == 1, np.array([1.0, 0.0, 2.0, 1.0, 0.0]))
    assert ss.loc["all"].tolist() == [2, 3]
    assert ss.loc["matched"].tolist() == [1, 2] and ss.loc["unmatched"].tolist() == [1, 1]
    assert ss.loc["matched_ess"].tolist() == pytest.approx([1.0, 9 / 5])
    none = sample_sizes(np.array([True, False]), np.zeros(2))
    assert none.loc["matched_ess"].tolist() == [0.0, 0.0]


def test_errors():
    data = pd.DataFrame({"t": [1, 0], "d": [0.1, np.nan]})
    with pytest.raises(InputError, match="missing or infinite"):
        match_nearest(data, "t", distance="d")
    with pytest.raises(ConfigError, match="m_order must be one of"):
        match_nearest(data.fillna(0), "t", distance="d", m_order="closest")
    with pytest.raises(InputError, match="need both treated and control"):
        match_nearest(pd.DataFrame({"t": [1, 1], "d": [0.1, 0.2]}), "t", distance="d")


def test_propensity_and_ipw():
    rng = np.random.default_rng(5)
    n = 4000
    x = rng.normal(size=n)
    g = rng.choice(["a", "b", "c"], size=n)
    month = rng.choice(["2020-01", "2020-02"], size=n)
    lp = -1 + 0.7 * x + (g == "b") * 0.5 + (month == "2020-02") * 0.3
    t = (rng.random(n) < 1 / (1 + np.exp(-lp))).astype(int)
    data = pd.DataFrame({"t": t, "x": x, "g": g, "ref_month": month})
    ps = estimate_propensity(data, "t", ["x", "g"], time_effects="ref_month")
    assert ps.params["x"] == pytest.approx(0.7, abs=0.12)
    assert ps.params["g=b"] == pytest.approx(0.5, abs=0.2)
    np.testing.assert_allclose(ps.ps, 1 / (1 + np.exp(-ps.linear_predictor)))
    # score equation of a logit with intercept: mean fitted = mean treated
    assert ps.ps.mean() == pytest.approx(t.mean(), abs=1e-6)
    assert "Logit" in ps.summary() and len(ps.to_frame()) == len(ps.params)
    w = ipw_weights(ps.ps, t)
    assert (w[t == 1] == 1).all()
    assert w[t == 0].sum() == pytest.approx((t == 0).sum())
    # weighted control mean of x close to treated mean (ATT weights balance the score's covariates)
    assert np.average(x[t == 0], weights=w[t == 0]) == pytest.approx(x[t == 1].mean(), abs=0.05)
    e = np.array([0.5, 0.995, 0.2])
    np.testing.assert_allclose(
        ipw_weights(e, np.array([0, 0, 1]), trim=(0.01, 0.99), normalize=False), [1, 99, 1]
    )
    with pytest.raises(InputError, match="strictly between 0 and 1"):
        ipw_weights(np.array([1.0, 0.5]), np.array([0, 1]))


def test_mahalanobis_pooled_cov():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 2))
    t = np.r_[np.ones(20), np.zeros(30)]
    S = pooled_within_cov(X, t)
    Xc = X.copy()
    Xc[t == 1] -= X[t == 1].mean(0)
    Xc[t == 0] -= X[t == 0].mean(0)
    np.testing.assert_allclose(S, Xc.T @ Xc / (50 - 2))
    df = pd.DataFrame({"t": t, "a": X[:, 0], "b": X[:, 1]})
    D = mahalanobis(df, "t", ["a", "b"])
    diff = X[0] - X[20]
    assert D[0, 0] == pytest.approx(np.sqrt(diff @ np.linalg.inv(S) @ diff))


@pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.ConvergenceWarning")
def test_propensity_block_newton_equals_statsmodels_dense_logit():
    # estimate_propensity fits month effects by a block Newton (no dense month dummies); it must give the MLE of
    # statsmodels Logit on the dense design of month dummies, same columns in the same order
    import statsmodels.api as sm

    from finsam_effekt.design import design_matrix

    def dense(df, covs):
        return design_matrix(df, [*covs, "ref_month"], categorical=["ref_month"], intercept=True)

    rng = np.random.default_rng(11)
    n = 6000
    x = rng.normal(size=n)
    g = rng.choice(["a", "b", "c"], size=n)
    month = rng.choice([f"2020-{m:02d}" for m in range(1, 13)] + ["2021-01", "2021-02"], size=n)
    lp = -2 + 0.7 * x + (g == "b") * 0.5 + np.array([int(m[-2:]) for m in month]) * 0.05
    t = (rng.random(n) < 1 / (1 + np.exp(-lp))).astype(int)
    data = pd.DataFrame({"t": t, "x": x, "g": g, "ref_month": month, "flat": 1.0})
    ps = estimate_propensity(data, "t", ["x", "g", "flat"], time_effects="ref_month")
    X = dense(data, ["x", "g", "flat"])
    ref = sm.Logit(t.astype(float), X).fit(method="newton", disp=False)
    assert list(ps.params.index) == list(X.columns) == ps.design_columns
    np.testing.assert_allclose(ps.params.to_numpy(), ref.params.to_numpy(), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(ps.ps, ref.predict(X), rtol=1e-10, atol=1e-13)
    assert ps.converged and ps.n_treated == t.sum()
    # separation (a month with no treated): Newton gives up and the penalised statsmodels fit decides
    sep = data.assign(t=np.where(data.ref_month == "2021-02", 0, data.t))
    ps2 = estimate_propensity(sep, "t", ["x", "g"], time_effects="ref_month")
    X2 = dense(sep, ["x", "g"])
    np.testing.assert_allclose(ps2.linear_predictor, X2.to_numpy() @ ps2.params.to_numpy())
    assert ps2.converged is False


# --- Mahalanobis matching with ties (issue 15): fixtures from make_fixtures_mahvars.R -------------------------


@pytest.fixture(scope="module")
def fx_mah():
    # round_trip: pandas' default float parser can be one unit in the last place off R's %.17g
    return {
        "lalonde": pd.read_csv(FIX / "mahvars_data_lalonde.csv", float_precision="round_trip"),
        "dups": pd.read_csv(FIX / "mahvars_data_dups.csv", float_precision="round_trip"),
        "matches": pd.read_csv(FIX / "mahvars_matches.csv"),
        "weights": pd.read_csv(FIX / "mahvars_weights.csv"),
        "transform": pd.read_csv(FIX / "mahvars_transform.csv"),
    }


def test_mahvars_fixture_versions_and_ties():
    text = (FIX / "versions_mahvars.txt").read_text()
    assert "MatchIt 4.7.2" in text and "R 4.2.2" in text
    dups = pd.read_csv(FIX / "mahvars_data_dups.csv")
    # the constructed data set is mostly duplicated covariate rows, and lalonde has duplicated controls too
    assert dups.duplicated(["x1", "x2", "x3"]).sum() > 150
    lal = pd.read_csv(FIX / "mahvars_data_lalonde.csv")
    assert lal[lal.treat == 0].duplicated(["age", "educ", "re74", "re75"]).sum() > 10
    assert set(CASES_MAH) == set(pd.read_csv(FIX / "mahvars_weights.csv")["case"])


@pytest.mark.parametrize("case", list(CASES_MAH))
def test_mahvars_matched_sets_equal_matchit(fx_mah, case):
    args = dict(CASES_MAH[case])
    data = fx_mah[args.pop("data")]
    res = match_nearest(data, "treat", **args)
    exp = fx_mah["matches"].query("case == @case")[["treated_row", "k", "control_row"]]
    exp = exp.sort_values(["treated_row", "k"]).reset_index(drop=True)
    got = pd.DataFrame(
        {
            "treated_row": res.pairs["treated_row"] + 1,
            "k": res.pairs["k"],
            "control_row": res.pairs["control_row"] + 1,
        }
    )
    got = got.sort_values(["treated_row", "k"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, exp, check_dtype=False)
    w = fx_mah["weights"].query("case == @case").sort_values("row")
    np.testing.assert_allclose(res.weights, w["weights"].to_numpy(), rtol=0, atol=1e-12)
    if w["subclass"].notna().any():
        np.testing.assert_array_equal(res.subclass, w["subclass"].fillna(0).astype(int).to_numpy())


@pytest.mark.parametrize(
    ("name", "cols"), [("lalonde", ["age", "educ", "re74", "re75"]), ("dups", ["x1", "x2", "x3"])]
)
def test_mahalanobis_transform_is_matchits_to_the_bit(fx_mah, name, cols):
    # MatchIt's transform_covariates output, written by R in hexadecimal: equal distances in exact arithmetic are
    # decided by rounding, so only the same bits give the same matches
    data = fx_mah[name]
    Z = matchit_mahalanobis_transform(data[cols].to_numpy(float), data["treat"].to_numpy())
    tr = fx_mah["transform"].query("data == @name")
    R = np.column_stack(
        [
            tr[tr["column"] == j].sort_values("row")["value"].map(float.fromhex)
            for j in range(1, len(cols) + 1)
        ]
    )
    assert Z.shape == R.shape
    np.testing.assert_array_equal(Z, R)


def test_mahalanobis_transform_properties():
    # squared Euclidean distance of the transform = squared Mahalanobis distance (pooled within-group covariance)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 3)) @ np.array([[1.0, 0.4, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 2.0]])
    t = (rng.random(300) < 0.3).astype(int)
    Z = matchit_mahalanobis_transform(X, t)
    df = pd.DataFrame({"t": t, "a": X[:, 0], "b": X[:, 1], "c": X[:, 2]})
    D = mahalanobis(df, "t", ["a", "b", "c"])
    i, j = np.flatnonzero(t == 1)[0], np.flatnonzero(t == 0)[:5]
    np.testing.assert_allclose(((Z[j] - Z[i]) ** 2).sum(axis=1), D[0, :5] ** 2, rtol=1e-10)
    # a constant column is dropped, as MatchIt drops columns without variance
    Z2 = matchit_mahalanobis_transform(np.column_stack([X, np.ones(300)]), t)
    np.testing.assert_array_equal(Z2, Z)


# --- literal ports of MatchIt's C++ scans (src/internal.cpp) as oracles for ties ------------------------------


def _r_order(x: np.ndarray) -> np.ndarray:
    return np.argsort(x, kind="stable")


def _scan_vec(t, d, treat, elig, ex, cal, r, prev, ratio, ind_d_ord, match_d_ord):
    """find_control_vec, step by step over all rows in order(distance)."""
    n = len(d)
    ii = match_d_ord[t]
    starts = [match_d_ord[c] for c in prev] if r > 1 else []
    if not starts:
        iil = iir = ii
        min_dist = 0.0
    else:
        starts.append(ii)
        iil, iir = min(starts), max(starts)
        if iil == ii:
            min_dist = abs(d[t] - d[ind_d_ord[iir]])
        elif iir == ii:
            min_dist = abs(d[t] - d[ind_d_ord[iil]])
        else:
            min_dist = max(abs(d[t] - d[ind_d_ord[iil]]), abs(d[t] - d[ind_d_ord[iir]]))
    l_stop = r_stop = left = False
    ids, dists = [], []
    nl = nr = 0
    while not l_stop or not r_stop:
        left = False if l_stop else True if r_stop else not left
        if left:
            if iil <= 0 or nl == ratio:
                l_stop = True
                continue
            iil -= 1
            iz = ind_d_ord[iil]
        else:
            if iir >= n - 1 or nr == ratio:
                r_stop = True
                continue
            iir += 1
            iz = ind_d_ord[iir]
        if not elig[iz] or treat[iz] or (r > 1 and iz in prev):
            continue
        dc = abs(d[t] - d[iz])
        if dc > cal:
            l_stop, r_stop = (True, r_stop) if left else (l_stop, True)
            continue
        if dc < min_dist:
            continue
        if len(ids) >= ratio and sum(x < dc for x in dists) >= ratio:
            l_stop, r_stop = (True, r_stop) if left else (l_stop, True)
            continue
        if ex[iz] != ex[t]:
            continue
        ids.append(iz)
        dists.append(dc)
        if left:
            nl += 1
            l_stop = l_stop or nl == ratio
        else:
            nr += 1
            r_stop = r_stop or nr == ratio
    if len(ids) <= 1 or (len(ids) <= ratio and dists == sorted(dists)):
        return ids
    if len(ids) > ratio:
        return [ids[i] for i in partial_sort(len(ids), ratio, dists)]  # std::partial_sort, tested above
    return [ids[i] for i in sorted(range(len(ids)), key=dists.__getitem__)]


def _scan_mahcovs(t, Z, d, treat, elig, ex, cal, prev, ratio, ind_d_ord, match_d_ord):
    """find_control_mahcovs, step by step over all rows in order(Z[, 1])."""
    n = len(Z)
    iil = iir = match_d_ord[t]
    l_stop = r_stop = left = False
    pm: list[tuple[int, float]] = []
    while not l_stop or not r_stop:
        left = False if l_stop else True if r_stop else not left
        if left:
            if iil <= 0:
                l_stop = True
                continue
            iil -= 1
            iz = ind_d_ord[iil]
        else:
            if iir >= n - 1:
                r_stop = True
                continue
            iir += 1
            iz = ind_d_ord[iir]
        if not elig[iz] or treat[iz] or iz in prev:
            continue
        mv = abs(Z[t, 0] - Z[iz, 0]) ** 2
        if len(pm) == ratio and pm[-1][1] < mv:
            l_stop, r_stop = (True, r_stop) if left else (l_stop, True)
            continue
        if ex[iz] != ex[t] or (cal is not None and abs(d[t] - d[iz]) > cal):
            continue
        dc = 0.0
        for j in range(Z.shape[1]):
            dc += (Z[t, j] - Z[iz, j]) * (Z[t, j] - Z[iz, j])
        if not pm:
            pm.append((iz, dc))
        elif dc > pm[-1][1]:
            if len(pm) < ratio:
                pm.append((iz, dc))
        elif ratio == 1:
            pm[0] = (iz, dc)
        else:
            if len(pm) == ratio:
                pm.pop()
            if pm and dc > pm[-1][1]:
                pm.append((iz, dc))
            else:
                pm.insert(next(i for i, (_, v) in enumerate(pm) if not v < dc), (iz, dc))
    return [c for c, _ in pm]


def _literal_nearest(d, treat, ex, cal, ratio, reuse_max, Z=None):
    """nn_matchC_vec / nn_matchC_mahcovs: order largest first, rounds without replacement, all at once with."""
    n1 = int(treat.sum())
    key = Z[:, 0] if Z is not None else d
    ind_d_ord = _r_order(key)
    match_d_ord = _r_order(ind_d_ord)
    live = {s for s in np.unique(ex) if treat[ex == s].any() and (~treat[ex == s]).any()}
    elig = np.array([s in live for s in ex])
    cal_ = np.inf if cal is None else cal
    ord_t = np.flatnonzero(treat)
    if reuse_max < n1:
        ord_t = ord_t[_r_order(-d[ord_t])]
    mm = {int(t): [] for t in ord_t}
    times = np.zeros(len(d), dtype=int)

    def find(t, r, k):
        if Z is not None:
            return _scan_mahcovs(t, Z, d, treat, elig, ex, cal, mm[t], k, ind_d_ord, match_d_ord)
        return _scan_vec(t, d, treat, elig, ex, cal_, r, mm[t], k, ind_d_ord, match_d_ord)

    if reuse_max >= n1:
        for t in ord_t.tolist():
            if elig[t]:
                mm[t] = find(t, 1, ratio)
        return mm
    for r in range(1, ratio + 1):
        for t in ord_t.tolist():
            if not (elig & ~treat).any():
                break
            if not elig[t]:
                continue
            found = find(t, r, 1)
            if not found:
                elig[t] = False
                continue
            mm[t].append(found[0])
            for ck, cap in ((found[0], reuse_max), (t, ratio)):
                if elig[ck]:
                    times[ck] += 1
                    elig[ck] = times[ck] < cap
    return mm


def _tie_heavy_data(seed, n=160):
    rng = np.random.default_rng(seed)
    prof = np.column_stack([rng.integers(0, 4, 25), rng.integers(0, 3, 25), np.round(rng.normal(size=25), 1)])
    X = prof[rng.integers(0, 25, n)].astype(float)  # most rows duplicate another row's covariates
    t = rng.random(n) < 0.3
    d = np.round(X @ np.array([0.3, -0.2, 0.5]), 1)  # a coarse score: ties in the scalar distance too
    return pd.DataFrame(
        {"t": t.astype(int), "d": d, "x1": X[:, 0], "x2": X[:, 1], "x3": X[:, 2], "g": rng.integers(0, 2, n)}
    )


def _as_sets(res):
    out: dict[int, list[int]] = {}
    for t, c in zip(
        res.pairs.sort_values(["treated_row", "k"])["treated_row"],
        res.pairs.sort_values(["treated_row", "k"])["control_row"],
        strict=True,
    ):
        out.setdefault(int(t), []).append(int(c))
    return out


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    "kw",
    [
        dict(ratio=1),
        dict(ratio=2),
        dict(ratio=2, reuse_max=2),
        dict(ratio=3, replace=True),
        dict(ratio=1, caliper=0.3, exact="g"),
        dict(ratio=2, replace=True, caliper=0.5, exact="g"),
    ],
)
def test_scalar_ties_as_matchit_scan(seed, kw):
    # ties in the distance are decided by the order of MatchIt's alternating walk over all rows
    data = _tie_heavy_data(seed)
    res = match_nearest(data, "t", "d", **kw)
    treat = data["t"].to_numpy() == 1
    d = data["d"].to_numpy()
    ex = data["g"].to_numpy() if "exact" in kw else np.zeros(len(d), int)
    reuse = kw.get("reuse_max", 10**9 if kw.get("replace") else 1)
    exp = _literal_nearest(d, treat, ex, res.caliper, kw["ratio"], reuse)
    assert _as_sets(res) == {t: cs for t, cs in exp.items() if cs}


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    "kw",
    [
        dict(distance="d", ratio=1),
        dict(distance="d", ratio=2),
        dict(distance="d", ratio=3, replace=True),
        dict(distance="d", ratio=1, caliper=0.3),
        dict(distance=None, ratio=2, replace=True),
    ],
)
def test_mahalanobis_ties_as_matchit_scan(seed, kw):
    # duplicated covariate rows: MatchIt keeps the tied control its scan visits last
    data = _tie_heavy_data(seed)
    res = match_nearest(data, "t", mahvars=["x1", "x2", "x3"], **kw)
    treat = data["t"].to_numpy() == 1
    Z = matchit_mahalanobis_transform(data[["x1", "x2", "x3"]].to_numpy(), data["t"].to_numpy())
    d = data["d"].to_numpy() if kw["distance"] else np.zeros(len(data))
    reuse = 10**9 if kw.get("replace") else 1
    exp = _literal_nearest(d, treat, np.zeros(len(d), int), res.caliper, kw["ratio"], reuse, Z=Z)
    assert _as_sets(res) == {t: cs for t, cs in exp.items() if cs}


@pytest.mark.parametrize("kw", [dict(ratio=1, caliper=0.5), dict(ratio=2, replace=True)])
def test_many_strata_as_matchit_scan(kw):
    # more than 512 exact strata: the controls are sorted once over all strata instead of stratum by stratum
    rng = np.random.default_rng(11)
    n = 1500
    data = pd.DataFrame(
        {
            "t": (rng.random(n) < 0.3).astype(int),
            "d": np.round(rng.normal(size=n), 1),
            "g": rng.integers(0, 700, n),
        }
    )
    res = match_nearest(data, "t", "d", exact="g", **kw)
    treat = data["t"].to_numpy() == 1
    reuse = 10**9 if kw.get("replace") else 1
    exp = _literal_nearest(data["d"].to_numpy(), treat, data["g"].to_numpy(), res.caliper, kw["ratio"], reuse)
    assert data["g"].nunique() > 512
    assert _as_sets(res) == {t: cs for t, cs in exp.items() if cs}


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("caliper", [None, 0.05])
def test_with_replacement_against_brute_force(seed, caliper):
    # with replacement each treated row gets its `ratio` nearest controls of its stratum within the caliper,
    # nearest first (continuous distances: no ties); outliers and a tiny stratum make long and short windows
    rng = np.random.default_rng(seed)
    n_c, n_t = 30_000, 900
    d = np.r_[rng.normal(0.8, 1.0, n_t), rng.normal(0.0, 1.0, n_c)]
    d[rng.choice(len(d), 40, replace=False)] *= 25  # far outliers: sparse buckets, wide windows
    if seed == 3:
        d[[n_t, n_t + 1]] = [1e9, -1e9]  # two extreme controls crowd their stratum into a few value buckets
    m = np.r_[rng.integers(0, 4, n_t), rng.integers(0, 4, n_c)]
    m[-5:] = 4  # a stratum with 5 controls ...
    m[:3] = 4  # ... and 3 treated
    data = pd.DataFrame({"t": np.r_[np.ones(n_t, int), np.zeros(n_c, int)], "d": d, "m": m})
    res = match_nearest(data, "t", "d", ratio=3, replace=True, exact="m", caliper=caliper, std_caliper=False)
    cal = np.inf if caliper is None else caliper
    exp, unmatched = {}, set()
    for t in range(n_t):
        c = np.flatnonzero((data["t"].to_numpy() == 0) & (m == m[t]))
        dist = np.abs(d[c] - d[t])
        near = np.argsort(dist)[:3]
        near = near[dist[near] <= cal]
        if len(near):
            exp[t] = c[near].tolist()
        else:
            unmatched.add(t)
    assert _as_sets(res) == exp
    assert set(res.unmatched["treated_row"]) == unmatched
    if caliper is not None:
        assert (res.unmatched["reason"] == REASON_CALIPER).all() and len(unmatched) > 0
