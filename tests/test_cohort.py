"""cohort: risk-set candidate rules on a hand-made world; censoring at later start."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finsam_effekt import months as mo
from finsam_effekt.cohort import build_cohort, censor_at_later_start
from finsam_effekt.errors import ConfigError, InputError
from finsam_effekt.panel import FEATURE_COLUMNS, person_months
from finsam_effekt.tables import plain


def _world():
    pop = pd.DataFrame(
        {
            "person_id": ["p1", "c1", "c2", "c3", "c4", "c5", "c6", "c7"],
            "sex": ["K", "M", "K", "M", "K", "M", "K", "M"],
            "birth_year": [1990, 1985, 1980, 1992, 1995, 1950, 1999, 1988],
            "education": ["compulsory"] * 8,
            "kommun": ["0180"] * 8,
            "birth_region": ["sweden"] * 8,
            "immigration_date": pd.to_datetime([None, None, None, None, "2020-06-10", None, None, None]),
            "emigration_date": pd.to_datetime([None, None, None, "2020-05-15", None, None, None, None]),
            "death_date": pd.to_datetime([None] * 8),
        }
    )
    spells = pd.DataFrame(
        {
            "person_id": ["p1", "c1", "c3", "c4", "c5", "c6", "c7"],
            "benefit": ["AKA"] * 7,
            "from_date": pd.to_datetime(
                [
                    "2020-01-01",
                    "2019-12-01",
                    "2020-01-01",
                    "2019-10-01",
                    "2020-01-01",
                    "2020-01-01",
                    "2019-06-01",
                ]
            ),
            "to_date": pd.to_datetime(
                [
                    "2020-02-29",
                    "2020-02-29",
                    "2020-01-31",
                    "2020-03-31",
                    "2020-03-31",
                    "2020-08-31",
                    "2019-09-30",
                ]
            ),
            "extent": [1.0] * 7,
            "amount_sek": [10000.0] * 7,
        }
    )
    participants = pd.DataFrame(
        {"person_id": ["p1", "c6", "c7"], "ref_month": ["2020-06", "2020-09", "2020-03"]}
    )
    panel = person_months(spells, None, None, pop, end_month="2021-12")
    return pop, spells, participants, panel


def test_candidate_rules_by_hand():
    pop, _, participants, panel = _world()
    co = build_cohort(participants, panel, pop, end_month="2021-12")
    # compact types (issue 14): text columns as categories, missing as NaN; plain() gives them back as text
    assert isinstance(co["person_id"].dtype, pd.CategoricalDtype) and co["treated"].dtype == np.int32
    got = {(r.ref_month, r.person_id, r.treated, r.later_start_month) for r in plain(co).itertuples()}
    exp = {
        # 2020-03: c7 starts. c1 (AKA Dec-Feb), c3 (Jan; emigrates in May), p1 and c6 (start later) are
        # candidates; c2 (no support), c4 (not yet immigrated), c5 (age 70) are not.
        ("2020-03", "c7", 1, None),
        ("2020-03", "c1", 0, None),
        ("2020-03", "c3", 0, None),
        ("2020-03", "p1", 0, "2020-06"),
        ("2020-03", "c6", 0, "2020-09"),
        # 2020-06: p1 starts. c3 emigrated, c4 immigrated in the month itself (not before), c7 already started.
        ("2020-06", "p1", 1, None),
        ("2020-06", "c1", 0, None),
        ("2020-06", "c6", 0, "2020-09"),
        # 2020-09: c6 starts; c1's support ended 2020-02, still within 12 months; p1's too.
        ("2020-09", "c6", 1, None),
        ("2020-09", "c1", 0, None),
        # c4 has immigrated (2020-06 < 2020-09) and has support in the 12 months before
        ("2020-09", "c4", 0, None),
    }
    assert got == exp
    assert list(co.columns[:4]) == ["person_id", "ref_month", "treated", "later_start_month"]
    assert set(FEATURE_COLUMNS) <= set(co.columns)
    # features are the panel's history before u
    row = co[(co.person_id == "c1") & (co.ref_month == "2020-03")].iloc[0]
    assert row["ps_months_3"] == 3 and row["age"] == 35
    # the estimand in words is finsam_effekt.estimand's one text, not a copy in the cohort's attrs
    assert co.attrs["later_treated"] == "keep" and "estimand" not in co.attrs
    assert co.attrs["dropped_treated"]["not_eligible"] == 0


def test_min_history_months_as_linkage_rule():
    # history counts from max(register_start, immigration month): u − from ≥ min_history_months
    pop, _, participants, panel = _world()
    full = build_cohort(participants, panel, pop, end_month="2021-12")
    key = {(r.ref_month, r.person_id) for r in full.itertuples()}
    # register data from 2019-06: at 2020-03 only 9 months (< 10) for everybody, incl. the treated c7; c4
    # immigrated 2020-06, so at 2020-09 it has 3 months
    co = build_cohort(
        participants, panel, pop, end_month="2021-12", min_history_months=10, register_start="2019-06"
    )
    got = {(r.ref_month, r.person_id) for r in co.itertuples()}
    assert got == {k for k in key if k[0] != "2020-03" and k != ("2020-09", "c4")}
    assert co.attrs["dropped_treated"]["short_history"] == 1 and co.attrs["min_history_months"] == 10
    # exactly 9 months is enough for 9
    co9 = build_cohort(
        participants, panel, pop, end_month="2021-12", min_history_months=9, register_start="2019-06"
    )
    assert {(r.ref_month, r.person_id) for r in co9.itertuples()} == {
        k for k in key if k != ("2020-09", "c4")
    }
    # without register_start only immigrants are restricted
    co4 = build_cohort(participants, panel, pop, end_month="2021-12", min_history_months=4)
    assert {(r.ref_month, r.person_id) for r in co4.itertuples()} == key - {("2020-09", "c4")}
    assert co4.attrs["dropped_treated"]["short_history"] == 0
    with pytest.raises(ConfigError, match="min_history_months must be 0 or more"):
        build_cohort(participants, panel, pop, min_history_months=-1)


def test_options_any_resident_window_sampling(tmp_path):
    pop, _, participants, panel = _world()
    co = build_cohort(participants, panel, pop, eligibility="any_resident", window=("2020-06", "2020-06"))
    assert set(co["ref_month"]) == {"2020-06"}
    # without the support rule c2 and c5? c5 is too old; c2 qualifies
    assert set(co.loc[co.treated == 0, "person_id"]) == {"c1", "c2", "c6"}
    co2 = build_cohort(participants, panel, pop, eligibility="any_resident", age_range=(16, 80))
    assert "c5" in set(co2["person_id"])
    a = build_cohort(participants, panel, pop, eligibility="any_resident", sample_rate=0.5, seed=3)
    b = build_cohort(participants, panel, pop, eligibility="any_resident", sample_rate=0.5, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert (a.treated == 1).sum() == 3  # treated are never subsampled
    # history features in the engine a batch of pairs at a time (large pools, a panel not stored person-sorted):
    # the same table as the person-sorted stream gives
    import finsam_effekt.cohort as cohort_mod

    whole = build_cohort(participants, panel, pop, eligibility="any_resident", age_range=(16, 80))
    from finsam_effekt import progress

    seen = []
    shuffled = tmp_path / "shuffled_panel.parquet"  # not in person order: the engine reads it
    panel.sample(frac=1, random_state=1).to_parquet(shuffled, index=False)
    batch = cohort_mod.HISTORY_BATCH
    try:
        cohort_mod.HISTORY_BATCH = 2  # batches of two pairs, in person order, put back in the cohort's order
        with progress.listening(seen.append):
            batched = build_cohort(
                participants, shuffled, pop, eligibility="any_resident", age_range=(16, 80)
            )
    finally:
        cohort_mod.HISTORY_BATCH = batch
    assert len(whole) > 4
    n_batches = -(-len(whole) // 2)  # the progress counts the batches
    assert [p.done for p in seen] == list(range(1, n_batches + 1)) and {p.total for p in seen} == {n_batches}
    pd.testing.assert_frame_equal(batched, whole)
    with pytest.raises(InputError, match="no participant starts within the window"):
        build_cohort(participants, panel, pop, window=("2015-01", "2015-12"))
    with pytest.raises(ConfigError, match="later_treated must be one of"):
        build_cohort(participants, panel, pop, later_treated="drop")
    with pytest.raises(
        ConfigError, match=r"build_cohort: eligibility must be one of \['recent_public_support'"
    ):
        build_cohort(participants, panel, pop, eligibility="everyone")


def test_censor_at_later_start():
    wide = pd.DataFrame(
        {
            "person_id": ["a", "b", "c"],
            "ref_month": ["2020-03", "2020-03", "2020-03"],
            "treated": [1, 0, 0],
            "later_start_month": [None, "2020-06", None],
            "public_support_m3": [1.0, 1.0, 0.0],
            "public_support_m2": [1.0, 0.0, 0.0],
            "benefit_sek_cum3": [5.0, 6.0, 7.0],
            "benefit_sek_mean": [1.0, 2.0, 3.0],  # not a horizon-outcome name (schema.outcome_column)
            "x_m3": [1.0, 2.0, 3.0],  # a horizon name, but of no outcome
        }
    )
    out = censor_at_later_start(wide)
    # b starts 2020-06 = u+3: status and sum at k=3 censored, k=2 kept
    assert np.isnan(out.loc[1, "public_support_m3"]) and np.isnan(out.loc[1, "benefit_sek_cum3"])
    assert out.loc[1, "public_support_m2"] == 0.0
    assert out.loc[0, "public_support_m3"] == 1.0 and out.loc[2, "benefit_sek_cum3"] == 7.0
    assert out["benefit_sek_mean"].tolist() == [1.0, 2.0, 3.0] and out["x_m3"].tolist() == [1.0, 2.0, 3.0]
    long = pd.DataFrame(
        {
            "person_id": ["b"] * 3,
            "ref_month": ["2020-03"] * 3,
            "treated": [0] * 3,
            "later_start_month": ["2020-05"] * 3,
            "rel_month": [1, 2, 3],
            "month": ["2020-04", "2020-05", "2020-06"],
            "public_support": [1.0, 1.0, 1.0],
            "censored": [False] * 3,
        }
    )
    lo = censor_at_later_start(long)
    assert lo["censored"].tolist() == [False, True, True]
    assert lo["public_support"].isna().tolist() == [False, True, True]


@pytest.fixture(scope="module")
def synthetic_match(make_world):
    """A generated register world (synth), linked, paneled, cohort built, matched 3:1 with replacement. The
    medium world without contamination (every participant linkable, no anonymous participant among the
    controls): these tests are about the matching's balance and bias removal, which the dilution by contaminated
    controls would blur (tests/test_contamination.py measures that)."""
    from dataclasses import replace

    from conftest import MEDIUM

    from finsam_effekt.config import DEFAULT_COVARIATES

    medium_world = make_world(replace(MEDIUM, contamination=False))
    from finsam_effekt.linkage import link_participants
    from finsam_effekt.matching import estimate_propensity, match_nearest

    out = medium_world.path
    names = ("population", "sus_registrations", "benefit_spells", "social_assistance", "earnings")
    T = {n: pd.read_parquet(out / f"{n}.parquet") for n in names}
    window = ("2019-01", "2020-12")
    link = link_participants(T["sus_registrations"], T["population"], window=window, age_range=(16, 64))
    panel = person_months(
        T["benefit_spells"], T["social_assistance"], T["earnings"], T["population"], end_month="2021-12"
    )
    co = build_cohort(
        link.participants,
        panel,
        T["population"],
        link.kommun_forbund,
        window=window,
        end_month="2021-12",
        sample_rate=0.5,
        seed=1,
    )
    covs = [c for c in DEFAULT_COVARIATES if c in co.columns]
    ps = estimate_propensity(co, "treated", covs, time_effects="ref_month")
    res = match_nearest(
        co, "treated", ps.linear_predictor, ratio=3, replace=True, caliper=0.2, exact="ref_month"
    )
    return co, covs, res, T["population"], panel, out


@pytest.mark.slow
def test_synthetic_world_balance(synthetic_match):
    from finsam_effekt.balance import balance_table

    co, covs, res, *_ = synthetic_match
    assert co.attrs["n_treated"] > 150  # 45 % of the participants are anonymous (SynthConfig.contamination)
    tab = balance_table(res, covs).to_frame()
    before = tab[(tab["sample"] == "before") & (tab["variable"] != "distance")]["smd"].abs()
    after = tab[(tab["sample"] == "after") & (tab["variable"] != "distance")]["smd"].abs()
    assert (before > 0.1).sum() >= 5  # participants differ from the pool (Ashenfelter dip, age, education)
    assert after.max() < 0.1


@pytest.mark.slow
def test_synthetic_world_controls_eligible(synthetic_match):
    from finsam_effekt import months as mo

    co, _, res, pop, *_ = synthetic_match
    p = res.pairs
    t = co.iloc[p["treated_row"].to_numpy()].reset_index(drop=True)
    c = co.iloc[p["control_row"].to_numpy()].reset_index(drop=True)
    assert (c["treated"] == 0).all() and (t["treated"] == 1).all()
    assert (c["ref_month"].to_numpy() == t["ref_month"].to_numpy()).all()
    assert (c["person_id"].to_numpy() != t["person_id"].to_numpy()).all()
    assert (c["ps_months_12"] > 0).all()
    assert c["age"].between(16, 64).all()
    u = mo.to_index(c["ref_month"])
    later = plain(c)["later_start_month"]  # the cohort's text columns are categories (tables.compact)
    ok_later = later.isna() | (mo.to_index(later.fillna("9999-12")) > u)
    assert ok_later.all()
    popi = pop.set_index(pop["person_id"].astype(str))
    gone = pd.concat(
        [pd.to_datetime(popi["emigration_date"]), pd.to_datetime(popi["death_date"])], axis=1
    ).min(axis=1)
    g = gone.reindex(c["person_id"]).to_numpy()
    first_day_next = np.array([mo.first_day(x + 1) for x in u], dtype="datetime64[ns]")
    assert (pd.isna(g) | (g >= first_day_next)).all()


@pytest.mark.slow
def test_synthetic_world_matching_removes_most_naive_bias(synthetic_match):
    """No hidden confounding in the generated world: matching on register history recovers the true ATT
    (truth.json) far better than the naive participants-vs-pool difference."""
    import json

    from finsam_effekt.panel import horizon_outcomes

    co, _, res, pop, panel, out = synthetic_match
    truth = json.loads((out / "truth.json").read_text())
    assert truth["hidden_confounding"] == 0
    ho = horizon_outcomes(co[["person_id", "ref_month", "treated"]], (12,), panel, pop, end_month="2021-12")
    t = co["treated"].to_numpy() == 1
    w = res.weights
    for o in ("public_support", "self_support", "benefit_sek"):
        y = ho[f"{o}_m12"].to_numpy()
        ok = ~np.isnan(y)
        naive = y[t & ok].mean() - y[~t & ok].mean()
        m = ok & (w > 0)
        matched = y[t & m].mean() - np.average(y[~t & m], weights=w[~t & m])
        true = truth["att"]["all"][o]["12"]
        # binary statuses: at least half the naive bias removed; SEK paid (skewed, noisier): at least a third
        factor = 0.67 if o == "benefit_sek" else 0.5
        assert abs(matched - true) < factor * abs(naive - true), (o, naive, matched, true)


@pytest.mark.slow
def test_synthetic_world_unit_id_uses_each_person_once(synthetic_match):
    """MatchIt's unit.id on the staggered cohort: a person serves as a control at most once across months."""
    from finsam_effekt.matching import match_nearest

    co, *_ = synthetic_match
    rng = np.random.default_rng(0)
    dist = co["ps_months_12"].to_numpy(float) + rng.normal(0, 0.01, len(co))  # any continuous score will do
    res = match_nearest(co, "treated", dist, exact="ref_month", unit_id="person_id")
    ctrl_persons = co["person_id"].to_numpy()[res.pairs["control_row"].to_numpy()]
    assert len(ctrl_persons) == len(set(ctrl_persons))
    # a later participant may serve as a control before its own start, never at or after it
    later = co["later_start_month"].to_numpy()[res.pairs["control_row"].to_numpy()]
    months = co["ref_month"].to_numpy()[res.pairs["control_row"].to_numpy()]
    assert all(pd.isna(ls) or ls > m for ls, m in zip(later, months, strict=True))
    free = match_nearest(co, "treated", dist, exact="ref_month")
    reused = co["person_id"].to_numpy()[free.pairs["control_row"].to_numpy()]
    assert len(reused) > len(set(reused))  # without unit_id some persons serve in several months


# ------------------------------------------------------------------------------------------------- IPCW
def _ipcw_world(n: int = 20000, horizon: int = 6, seed: int = 3):
    """Controls at u = 2020-01 whose need x drifts after u; a later start is likelier when x was high last month,
    and the outcome in month u+k is 1[x_k > 0.5]: censoring at the later start is informative."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, horizon + 1))
    x[:, 0] = rng.normal(0, 1, n)
    for j in range(1, horizon + 1):
        x[:, j] = 0.8 * x[:, j - 1] + rng.normal(0, 0.6, n)
    start = np.full(n, -1)
    for j in range(1, horizon + 1):
        h = 1 / (1 + np.exp(-(-3.5 + 1.5 * x[:, j - 1])))
        new = (start < 0) & (rng.random(n) < h)
        start[new] = j
    u = mo.to_index(["2020-01"])[0]
    frame = pd.DataFrame(
        {
            "person_id": [f"p{i}" for i in range(n)],
            "ref_month": "2020-01",
            "treated": 0,
            "weights": 1.0,
            "later_start_month": [mo.from_index([u + s])[0] if s > 0 else "" for s in start],
        }
    )
    for j in range(1, horizon + 1):
        frame[f"y_m{j}"] = (x[:, j] > 0.5).astype(float)
    frame = pd.concat(
        [
            frame,
            pd.DataFrame({"person_id": ["t1"], "ref_month": ["2020-01"], "treated": [1], "weights": [1.0]}),
        ],
        ignore_index=True,
    )
    frame.loc[frame.index[-1], [f"y_m{j}" for j in range(1, horizon + 1)]] = 1.0
    frame["later_start_month"] = frame["later_start_month"].fillna("")
    xs = {f"p{i}": x[i] for i in range(n)}

    def history(keys: pd.DataFrame) -> pd.DataFrame:
        j = mo.to_index(keys["ref_month"].astype(str)) - u
        return pd.DataFrame({"x_last": [xs[p][jj - 1] for p, jj in zip(keys["person_id"], j, strict=True)]})

    truth = {k: float(frame[f"y_m{k}"].iloc[:-1].mean()) for k in range(1, horizon + 1)}
    return frame, history, truth


def test_later_start_ipcw_recovers_the_uncensored_mean_under_informative_censoring():
    from finsam_effekt.cohort import censor_at_later_start, later_start_ipcw

    frame, history, truth = _ipcw_world()
    cw = later_start_ipcw(frame, history, ["x_last"], 6, observed="y")
    cens = censor_at_later_start(frame, outcomes=["y"])
    ctrl = cens["treated"] == 0
    assert cw.n_events > 1000 and cw.hazard is not None
    assert (cw.weights.loc[~ctrl] == 1.0).all().all()  # treated rows are never reweighted
    for k in (3, 6):
        y = cens.loc[ctrl, f"y_m{k}"]
        w = cw.weights.loc[ctrl, f"ipcw_{k}"]
        assert (y.isna() == w.isna()).all()  # censored exactly where the outcome is
        naive = y.mean()
        ipcw = np.average(y[y.notna()], weights=w[y.notna()])
        assert abs(naive - truth[k]) > 0.04, (k, naive, truth[k])  # censoring at later start is informative
        # IPCW removes at least 80 % of that bias (its own sampling error here is about 0.005)
        assert abs(ipcw - truth[k]) < 0.2 * abs(naive - truth[k]), (k, ipcw, naive, truth[k])
    # survival weights only grow with the horizon
    both = cw.weights.loc[ctrl, ["ipcw_3", "ipcw_6"]].dropna()
    assert (both["ipcw_6"] >= both["ipcw_3"]).all()


def test_later_start_ipcw_without_later_starts_is_one_and_errors_name_missing_columns():
    from finsam_effekt.cohort import later_start_ipcw

    frame, history, _ = _ipcw_world(n=200)
    frame["later_start_month"] = ""
    cw = later_start_ipcw(frame, history, ["x_last"], 3, observed="y")
    assert cw.hazard is None and cw.n_events == 0
    assert (cw.weights == 1.0).all().all()
    with pytest.raises(InputError, match=r"later_start_ipcw: the outcomes table lacks \['y_m3'\]"):
        later_start_ipcw(frame.drop(columns=["y_m3"]), history, ["x_last"], 3, observed="y")


def test_horizon_weights_multiply_the_matching_weights_per_horizon():
    from finsam_effekt.estimation import estimate_effects

    rng = np.random.default_rng(0)
    n = 400
    d = pd.DataFrame(
        {
            "person_id": [f"p{i}" for i in range(n)],
            "treated": (np.arange(n) < 100).astype(int),
            "weights": rng.uniform(0.5, 2, n),
            "y_m3": rng.normal(0, 1, n),
            "y_m6": rng.normal(0, 1, n),
            "ipcw_3": rng.uniform(1, 1.5, n),
            "ipcw_6": rng.uniform(1, 2, n),
        }
    )
    d.loc[d.index[-20:], ["y_m6", "ipcw_6"]] = np.nan  # censored by month 6
    res = estimate_effects(
        d,
        outcomes=["y"],
        horizons=(3, 6),
        measures=("status",),
        estimators=["weighted_mean_diff"],
        horizon_weights="ipcw_",
    ).to_frame()
    for k in (3, 6):
        ok = d[f"y_m{k}"].notna()
        w = d["weights"] * d[f"ipcw_{k}"]
        t, c = ok & (d.treated == 1), ok & (d.treated == 0)
        hand = np.average(d.loc[t, f"y_m{k}"], weights=w[t]) - np.average(d.loc[c, f"y_m{k}"], weights=w[c])
        row = res[(res.horizon_months == k) & (res.subgroup == "all")].iloc[0]
        assert row.estimate == pytest.approx(hand, abs=1e-12)
        assert row.n_control == int(c.sum())


def test_former_participants_from_the_engine_and_from_pandas_are_the_same_rows(tmp_path, small_world):
    """The former participants' pool is only the persons with a first start, taken from the population in the
    engine (a DuckDB relation) or in pandas: the same rows, every one of them after the person's own first start."""
    import yaml

    from finsam_effekt.cohort import former_participants
    from finsam_effekt.config import load_config
    from finsam_effekt.pipeline import run_until, stages

    path = tmp_path / "config.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "inputs": str(small_world.path / "mapping.yaml"),
                "window": {"start": "2019-01", "end": "2020-06"},
                "cost_benefit": {"enabled": False},
            }
        ),
        encoding="utf-8",
    )
    cfg = load_config(path)
    res = run_until(cfg, "cohort")
    kw = stages.cohort_arguments(cfg, res.read, res.link, res.panel)
    engine = former_participants(res.link.participants, **kw)
    in_pandas = former_participants(res.link.participants, **{**kw, "population": kw["population"].df()})
    pd.testing.assert_frame_equal(engine, in_pandas)
    assert len(engine) > 0
    first = mo.to_index(engine["first_start_month"].astype(str))
    assert (first < mo.to_index(engine["ref_month"].astype(str))).all()
    sus = kw["sus_registrations"].df()
    starters = set(res.link.participants["person_id"].astype(str)) | set(
        sus["person_id"].dropna().astype(str)
    )
    assert set(engine["person_id"].astype(str)) <= starters
