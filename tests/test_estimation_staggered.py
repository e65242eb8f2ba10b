"""Tests of finsam_effekt.estimation.staggered: Callaway & Sant'Anna (2021), alone and as ``cs_did``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finsam_effekt.errors import ConfigError, InputError
from finsam_effekt.estimation import CSResults, callaway_santanna, estimate_effects


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


_NEVER = 10**9


def _reference_cells(panel: pd.DataFrame, outcome: str, control_group: str = "not_yet_treated") -> list[dict]:
    """Every identified ATT(g, t) by the straightforward loop over groups and months (dense units × months matrix,
    NaN where a unit-month is absent), as R did defines them: base month g−1 for t ≥ g and t−1 for t < g
    (``base_period = "varying"``); comparison units observed in both months and not yet treated in t (first month
    > t, not g) or never treated. Each cell: g, e = t − g, att, ψ per unit (IF/n) and its treated units."""
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
        [_NEVER if f is None or pd.isna(f) else int(f[:4]) * 12 + int(f[5:7]) - 1 - t0 for f in ft]
    )
    n_t = y.shape[1]
    cells = []
    for g in np.unique(g_rel[(g_rel >= 1) & (g_rel < n_t)]):
        for tt in range(1, n_t):
            base = g - 1 if tt >= g else tt - 1
            dy = y[:, tt] - y[:, base]
            tr = np.isfinite(dy) & (g_rel == g)
            if control_group == "never_treated":
                co = np.isfinite(dy) & (g_rel == _NEVER)
            else:
                co = np.isfinite(dy) & (g_rel > tt) & (g_rel != g)
            if tr.sum() == 0 or co.sum() == 0:
                continue
            psi = np.zeros(len(index))
            psi[tr] = (dy[tr] - dy[tr].mean()) / tr.sum()
            psi[co] = -(dy[co] - dy[co].mean()) / co.sum()
            cells.append(
                {"g": g, "e": tt - g, "att": dy[tr].mean() - dy[co].mean(), "psi": psi, "member": tr * 1.0,
                 "control": co}
            )  # fmt: skip
    return cells


def _did_aggregate(cells: list[dict]) -> tuple[float, np.ndarray, float]:
    """R did's aggte for the given cells: weights pg/Σpg with pg the share of units treated in the cell, and the
    influence function of the weights written as did's ``wif`` (if1 − if2). Returns (θ, ψ = IF/n, did's SE)."""
    member = np.column_stack([c["member"] for c in cells])
    n = member.shape[0]
    pg = member.mean(axis=0)
    att = np.array([c["att"] for c in cells])
    w = pg / pg.sum()
    inf = n * np.column_stack([c["psi"] for c in cells]) @ w
    if1 = (member - pg) / pg.sum()
    if2 = np.outer((member - pg).sum(axis=1), pg / pg.sum() ** 2)
    influence = inf + (if1 - if2) @ att
    return float(w @ att), influence / n, float(np.sqrt(np.mean(influence**2) / n))


def _cs_reference(panel: pd.DataFrame, outcome: str, e: int) -> tuple[float, pd.Series]:
    """θ(e) and ψ per person (with the estimation of the group shares) by the loop over groups; ψ is exactly 0
    for the persons in no cell (did's share term is 0 there up to rounding)."""
    cells = [c for c in _reference_cells(panel, outcome) if c["e"] == e]
    theta, psi, _ = _did_aggregate(cells)
    in_a_cell = np.any([c["member"] > 0 for c in cells] + [c["control"] for c in cells], axis=0)
    return theta, pd.Series(np.where(in_a_cell, psi, 0.0), index=pd.factorize(panel["person_id"])[1])


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


def test_callaway_santanna_alpha_and_its_clusters():
    from scipy import stats

    panel, _ = _staggered_panel(noise=0.5, seed=2)
    kw = dict(outcomes=["benefit_sek"], horizons=(3, 6), measures=("status", "cumulative"))
    r05 = callaway_santanna(panel, **kw)
    r10 = callaway_santanna(panel, **kw, alpha=0.10)
    f05, f10 = r05.to_frame(), r10.to_frame()
    ratio = stats.norm.ppf(0.95) / stats.norm.ppf(0.975)
    np.testing.assert_allclose(
        (f10["ci_upper"] - f10["estimate"]) / (f05["ci_upper"] - f05["estimate"]), ratio, rtol=1e-12
    )
    # the public accessors estimate_effects uses: the units are the clusters, estimates' rows index them
    assert list(r05.clusters) == sorted(panel["person_id"].unique(), key=lambda p: int(p[1:]))
    assert r05.n_clusters == 600
    for e in r05.estimates:
        assert e.rows.max() < r05.n_clusters and len(e.rows) == len(e.psi)
    # through estimate_effects with alpha: the same intervals
    m = pd.DataFrame({"person_id": ["p1", "p2"], "treated": [1, 0], "weights": 1.0})
    f = estimate_effects(
        m, estimators=["cs_did"], panel=panel, alpha=0.10, outcomes=["benefit_sek"], horizons=[3, 6]
    ).to_frame()
    np.testing.assert_allclose(f["ci_lower"], f10["ci_lower"], rtol=1e-12)


# -- R did 2.1.1 on mpdta (tests/fixtures/did, made by make_fixtures.R) ------------------------------------------
FIXTURES = Path(__file__).parent / "fixtures" / "did"
R_CONTROL_GROUP = {"not_yet_treated": "notyettreated", "never_treated": "nevertreated"}


def _month(year: int) -> str:
    """mpdta's years 2003..2007 as consecutive months 2000-01..2000-05 (event time in months = in years)."""
    return f"2000-{year - 2002:02d}"


def _mpdta() -> pd.DataFrame:
    d = pd.read_csv(FIXTURES / "mpdta.csv")
    return pd.DataFrame(
        {
            "person_id": d["countyreal"].astype(str),
            "month": [_month(y) for y in d["year"]],
            "first_treated": [None if g == 0 else _month(g) for g in d["first.treat"]],
            "lemp": d["lemp"],
        }
    )


def _fixture(name: str, control_group: str) -> pd.DataFrame:
    t = pd.read_csv(FIXTURES / name)
    return t[t["control_group"] == control_group].reset_index(drop=True)


@pytest.mark.parametrize("control_group", ["not_yet_treated", "never_treated"])
def test_group_time_and_aggregations_equal_r_did_on_mpdta(control_group):
    res = callaway_santanna(_mpdta(), outcomes=["lemp"], horizons=(1, 2, 3), control_group=control_group)
    cg = R_CONTROL_GROUP[control_group]
    # ATT(g, t) with did's analytic SE, every cell of did's att_gt (pre-treatment ones with base t−1)
    ref = _fixture("att_gt.csv", cg)
    gt = res.group_time()
    assert list(gt["group"]) == [_month(g) for g in ref["group"]]
    assert list(gt["time"]) == [_month(t) for t in ref["time"]]
    np.testing.assert_allclose(gt["estimate"], ref["att"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(gt["std_error"], ref["se"], rtol=0, atol=1e-9)
    assert list(gt["event_time"]) == list(ref["time"] - ref["group"])
    post = gt["event_time"] >= 0
    assert (
        gt.loc[post, "base_month"] == gt.loc[post, "group"].map(lambda g: _month(int(g[5:]) + 2001))
    ).all()
    # aggte(type = "dynamic"): every event time, the SE with the estimation of the group shares
    dyn = _fixture("aggte_dynamic.csv", cg)
    a = res.aggregate("dynamic")
    assert list(a["event_time"]) == list(dyn["event_time"])
    np.testing.assert_allclose(a["estimate"], dyn["att"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(a["std_error"], dyn["se"], rtol=0, atol=1e-9)
    # aggte(type = "simple")
    simple = _fixture("aggte_simple.csv", cg)
    s = res.aggregate("simple")
    assert s["estimate"].iloc[0] == pytest.approx(simple["att"].iloc[0], abs=1e-9)
    assert s["std_error"].iloc[0] == pytest.approx(simple["se"].iloc[0], abs=1e-9)
    assert "event_time" not in s.columns and s["n_groups"].iloc[0] == int((gt["event_time"] >= 0).sum())
    # a restricted event-time window is a subset of the full table
    win = res.aggregate("dynamic", min_e=0, max_e=2)
    assert list(win["event_time"]) == [0, 1, 2]
    np.testing.assert_allclose(win["std_error"], a.set_index("event_time").loc[[0, 1, 2], "std_error"])


def test_effects_are_the_dynamic_aggregation_with_the_cr1_factor():
    res = callaway_santanna(
        _mpdta(), outcomes=["lemp"], horizons=(1, 2, 3), measures=("status", "cumulative")
    )
    f = res.to_frame().set_index(["horizon_months", "measure"])
    a = res.aggregate("dynamic").set_index("event_time")
    dyn = _fixture("aggte_dynamic.csv", "notyettreated").set_index("event_time")
    for e, est in zip(res.estimates, res.std_errors, strict=True):
        if e.measure != "status":
            continue
        k = e.horizon
        assert f.loc[(k, "status"), "estimate"] == pytest.approx(dyn.loc[k, "att"], abs=1e-12)
        g = len(np.unique(e.rows))  # the units contributing: treated and comparison units of the cells
        assert est == pytest.approx(a.loc[k, "std_error"] * np.sqrt(g / (g - 1)), rel=1e-12)
    # cumulative at 3 = θ(1) + θ(2) + θ(3)
    assert f.loc[(3, "cumulative"), "estimate"] == pytest.approx(dyn.loc[[1, 2, 3], "att"].sum(), abs=1e-12)


def test_the_group_shares_enter_the_aggregated_standard_error():
    # the influence of the estimated shares n_g/N is first order: leaving it out gives a smaller SE than did's
    res = callaway_santanna(_mpdta(), outcomes=["lemp"], horizons=(1,))
    cells = [c for c in _reference_cells(_mpdta(), "lemp") if c["e"] == 1]
    w = np.array([c["member"].sum() for c in cells])
    w = w / w.sum()
    no_shares = np.sqrt(np.sum((np.column_stack([c["psi"] for c in cells]) @ w) ** 2))
    se = res.aggregate("dynamic").set_index("event_time").loc[1, "std_error"]
    assert se == pytest.approx(_did_aggregate(cells)[2], rel=1e-12)
    assert 1.001 < se / no_shares < 1.05


@pytest.mark.parametrize("control_group", ["not_yet_treated", "never_treated"])
def test_aggregations_equal_the_loop_reference_on_a_censored_panel(control_group):
    panel = _censored_staggered_panel()
    res = callaway_santanna(panel, outcomes=["benefit_sek"], horizons=(1, 3), control_group=control_group)
    cells = _reference_cells(panel, "benefit_sek", control_group)
    gt = res.group_time()
    assert len(gt) == len(cells)
    ref_gt = sorted(cells, key=lambda c: (c["g"], c["g"] + c["e"]))
    np.testing.assert_allclose(gt["estimate"], [c["att"] for c in ref_gt], rtol=1e-10)
    np.testing.assert_allclose(gt["std_error"], [np.sqrt(np.sum(c["psi"] ** 2)) for c in ref_gt], rtol=1e-10)
    np.testing.assert_array_equal(gt["n_treated"], [int(c["member"].sum()) for c in ref_gt])
    dyn = res.aggregate("dynamic").set_index("event_time")
    for e in sorted({c["e"] for c in cells}):
        theta, _, se = _did_aggregate([c for c in cells if c["e"] == e])
        assert dyn.loc[e, "estimate"] == pytest.approx(theta, rel=1e-10, abs=1e-12)
        assert dyn.loc[e, "std_error"] == pytest.approx(se, rel=1e-10)
    theta, _, se = _did_aggregate([c for c in cells if c["e"] >= 0])
    s = res.aggregate("simple").iloc[0]
    assert s["estimate"] == pytest.approx(theta, rel=1e-10) and s["std_error"] == pytest.approx(se, rel=1e-10)
    # never-treated comparisons use fewer units than not-yet-treated ones
    if control_group == "never_treated":
        other = callaway_santanna(panel, outcomes=["benefit_sek"], horizons=(1, 3)).group_time()
        assert (gt["n_control"].to_numpy() <= other["n_control"].to_numpy()).all()
        assert (gt["n_control"].to_numpy() < other["n_control"].to_numpy()).any()


def test_group_time_of_the_sparse_panel_equals_the_dense_panel():
    dense = _censored_staggered_panel()
    units = (
        dense.groupby("person_id")
        .agg(
            first_treated=("first_treated", "first"),
            observed_from=("month", "min"),
            observed_to=("month", "max"),
        )
        .reset_index()
    )
    sparse = dense.loc[dense["benefit_sek"] != 0, ["person_id", "month", "benefit_sek"]]
    kw = dict(outcomes=["benefit_sek"], horizons=(3,), control_group="never_treated")
    a, b = callaway_santanna(dense, **kw), callaway_santanna(sparse, units=units, **kw)
    pd.testing.assert_frame_equal(a.group_time(), b.group_time(), rtol=1e-12)
    pd.testing.assert_frame_equal(a.aggregate("dynamic"), b.aggregate("dynamic"), rtol=1e-12)
    pd.testing.assert_frame_equal(a.aggregate("simple"), b.aggregate("simple"), rtol=1e-12)


def test_control_group_option_through_estimate_effects_and_its_vocabulary():
    panel, _ = _staggered_panel(noise=0.5, seed=2)
    m = pd.DataFrame({"person_id": ["p1", "p2"], "treated": [1, 0], "weights": 1.0})
    sel = dict(
        outcomes=["benefit_sek"], horizons=[3, 6], measures=["status"], estimators=["cs_did"], panel=panel
    )
    never = estimate_effects(m, cs_control_group="never_treated", **sel).to_frame()
    direct = callaway_santanna(
        panel, outcomes=["benefit_sek"], horizons=(3, 6), control_group="never_treated"
    )
    pd.testing.assert_frame_equal(never, direct.to_frame(), check_exact=False, rtol=1e-12)
    default = estimate_effects(m, **sel).to_frame()
    assert (never["n_control"] < default["n_control"]).all()
    assert direct.estimand != callaway_santanna(panel, outcomes=["benefit_sek"], horizons=(3,)).estimand
    assert "never-treated" in direct.estimand and "never_treated" in repr(direct)
    with pytest.raises(ConfigError, match="control_group must be one of"):
        callaway_santanna(panel, outcomes=["benefit_sek"], control_group="notyettreated")
    with pytest.raises(ConfigError, match="cs_control_group must be one of"):
        estimate_effects(m, cs_control_group="nevertreated", **sel)
    with pytest.raises(ConfigError, match="kind must be one of"):
        direct.aggregate("calendar")
    with pytest.raises(InputError, match="outcome 'lemp' is not a column"):
        direct.group_time("lemp")
    bare = CSResults(estimates=(), se_type="cluster", cluster="person_id", estimand="", clusters=pd.Index([]))
    with pytest.raises(InputError, match="carry no panel"):
        bare.aggregate("simple")


def test_config_cs_did_control_group_reaches_the_estimator(monkeypatch):
    from types import SimpleNamespace

    from finsam_effekt import estimation
    from finsam_effekt.config import parse_config
    from finsam_effekt.pipeline import stages

    base = {
        "inputs": {"tables": {"population": {"path": "data/population.parquet"}}},
        "window": {"start": "2018-01", "end": "2019-12"},
        "estimators": ["cs_did"],
    }
    assert parse_config(base, Path.cwd()).cs_did.control_group == "not_yet_treated"
    cfg = parse_config({**base, "cs_did": {"control_group": "never_treated"}}, Path.cwd())
    seen = {}

    def fake_estimate_effects(data, **kw):
        seen.update(kw)
        return SimpleNamespace(to_frame=lambda: pd.DataFrame({"estimator": ["cs_did"]}), notes=())

    monkeypatch.setattr(estimation, "estimate_effects", fake_estimate_effects)
    monkeypatch.setattr(stages, "cs_did_inputs", lambda *a: (pd.DataFrame(), pd.DataFrame()))
    outcomes = SimpleNamespace(outcomes=pd.DataFrame({"treated": [1, 0]}), paths=None)
    read = SimpleNamespace(absent_outcomes={})
    stages.effects(cfg, read, None, None, None, SimpleNamespace(match=None), outcomes)
    assert seen["cs_control_group"] == "never_treated" and seen["estimators"] == ["cs_did"]
    with pytest.raises(ConfigError, match="cs_did.control_group"):
        parse_config({**base, "cs_did": {"control_group": "nevertreated"}}, Path.cwd())
