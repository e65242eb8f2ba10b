"""Tests of finsam_effekt.estimation.eventstudy: the event study and its pre-trend test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finsam_effekt.errors import InputError
from finsam_effekt.estimation import event_study


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


def test_event_study_alpha_sets_the_interval_level():
    from scipy import stats

    df = _weighted_censored_paths(0.0)
    es05 = event_study(df, window=(-8, 8))
    es10 = event_study(df, window=(-8, 8), alpha=0.10)
    assert (es05.alpha, es10.alpha) == (0.05, 0.10)
    t05, t10 = es05.table, es10.table
    pd.testing.assert_frame_equal(
        t05[["rel_month", "estimate", "std_error", "p_value"]],
        t10[["rel_month", "estimate", "std_error", "p_value"]],
    )
    has_se = np.isfinite(t05["std_error"]).to_numpy()
    assert has_se.sum() == len(t05) - 1  # all but the reference month
    ratio = stats.norm.ppf(0.95) / stats.norm.ppf(0.975)
    for a, b in (("ci_upper", "estimate"), ("estimate", "ci_lower")):
        w05 = (t05[a] - t05[b]).to_numpy()[has_se]
        w10 = (t10[a] - t10[b]).to_numpy()[has_se]
        np.testing.assert_allclose(w10 / w05, ratio, rtol=1e-12)
    ci = es05.conf_int(0.10)
    np.testing.assert_allclose(ci["ci_lower"], t10["ci_lower"], rtol=1e-14)
    np.testing.assert_allclose(es10.conf_int()["ci_upper"], t10["ci_upper"])
    assert "90% CI" in es10.summary()


def test_unit_codes_number_text_tuples_in_order_of_first_appearance():
    """The event study's unit and cluster codes equal pd.factorize of the rows' text tuples (equal text from
    different types is one unit; a missing value is a unit of its own)."""
    from finsam_effekt.estimation.eventstudy import unit_codes

    p = pd.DataFrame(
        {
            "person_id": ["b", "a", "b", "a", 1, "1", None, "c"],
            "ref_month": [
                "2020-01",
                "2020-01",
                "2020-01",
                "2020-02",
                "2020-01",
                "2020-01",
                "2020-01",
                "2020-01",
            ],
            "treated": [1, 0, 1, 0, 0, 0, 0, 0],
        }
    )
    expected, _ = pd.factorize(pd.MultiIndex.from_frame(p.astype(str)))
    np.testing.assert_array_equal(unit_codes(p, ["person_id", "ref_month", "treated"]), expected)
    np.testing.assert_array_equal(unit_codes(p, ["person_id"]), pd.factorize(p["person_id"].astype(str))[0])
