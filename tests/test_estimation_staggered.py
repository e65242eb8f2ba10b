"""Tests of finsam_effekt.estimation.staggered: Callaway & Sant'Anna (2021), alone and as ``cs_did``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finsam_effekt.errors import InputError
from finsam_effekt.estimation import callaway_santanna, estimate_effects


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
