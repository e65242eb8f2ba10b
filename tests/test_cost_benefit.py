"""Tests of finsam_effekt.cost_benefit: hand-computed kronor per financier and the calculation's invariants."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure

from finsam_effekt import cost_benefit as cb
from finsam_effekt.config import parse_config
from finsam_effekt.errors import ConfigError, InputError

# One month of effect (SEK in month u+1): less sickness benefit, aktivitetsstöd, a-kassa and social assistance,
# more earnings.
ONE_MONTH = {
    "sek_sickness": -2000.0,
    "sek_disability": 0.0,
    "sek_labour_market": -300.0,
    "sek_unemployment": -500.0,
    "social_assistance_sek": -1000.0,
    "earnings_sek": 10000.0,
}


def effects_frame(values: dict[str, float | list[float]], horizons=(1,), se: float = 100.0, estimator="att"):
    rows = []
    for o, v in values.items():
        vs = v if isinstance(v, list) else [v] * len(horizons)
        for h, e in zip(horizons, vs, strict=True):
            rows.append(
                dict(
                    outcome=o,
                    horizon_months=h,
                    measure="status",
                    subgroup="all",
                    estimator=estimator,
                    estimate=e,
                    std_error=se,
                )
            )
    return pd.DataFrame(rows)


def simple_params(**kw) -> cb.CostBenefitParameters:
    base = dict(
        kommunal_tax_rate=0.20,
        regional_tax_rate=0.10,
        payroll_fee_rate=0.30,
        discount_rate=0.0,
        persistence=cb.PersistenceSettings(kind="none"),
        monte_carlo=cb.MonteCarloSettings(n_draws=500, seed=1),
    )
    base.update(kw)
    return cb.CostBenefitParameters(**base)


def value(res: cb.CostBenefitResults, financier: str, item: str) -> float:
    p = res.point
    sel = p[(p["financier"] == financier) & (p["item"] == item)]
    assert len(sel) == 1, (financier, item)
    return float(sel["pv_sek_per_participant"].iloc[0])


def test_one_month_zero_discount_exact_kronor_per_financier():
    res = cb.cost_benefit(effects_frame(ONE_MONTH), simple_params(), cost_per_participant_sek=12000)
    # taxable base: earnings 10000 - sickness 2000 - aktivitetsstöd 300 - a-kassa 500 = 7200
    assert value(res, "kommun", "kommunal_income_tax") == pytest.approx(0.20 * 7200)
    assert value(res, "region", "regional_income_tax") == pytest.approx(0.10 * 7200)
    assert value(res, "state", "payroll_fees") == pytest.approx(3000)
    assert value(res, "state", "benefit_savings") == pytest.approx(2000 + 300 + 500)
    expected_net = {
        "FK": -6000 + 2000,
        "AF": 300,
        "state": -6000 + 2800 + 0 + 3000,
        "region": -3000 + 720,
        "kommun": -3000 + 1000 + 1440,
        "public_sector_total": -12000 + 3800 + 2160 + 3000,
        "participant": 10000 - 3800 - 2160,
    }
    net = res.net("public_finance")
    for fin, v in expected_net.items():
        assert net[fin] == pytest.approx(v), fin
    assert res.net("socio_economic")["society"] == pytest.approx(13000 - 12000)


def test_akassa_to_fund_moves_only_the_akassa_savings():
    res = cb.cost_benefit(
        effects_frame(ONE_MONTH), simple_params(akassa_payer="fund"), cost_per_participant_sek=12000
    )
    net = res.net("public_finance")
    assert net["state"] == pytest.approx(-200 - 500)
    assert net["akassa_fund"] == pytest.approx(500)
    assert net["public_sector_total"] == pytest.approx(-3040)


@pytest.mark.parametrize("channel", [{"FK": 1.0, "AF": 0.0}, {"FK": 0.6, "AF": 0.4}])
@pytest.mark.parametrize("cost", [0.0, 82000.0, 12345.67])
def test_cost_shares_sum_to_total(channel, cost):
    res = cb.cost_benefit(
        effects_frame(ONE_MONTH), simple_params(state_cost_channel=channel), cost_per_participant_sek=cost
    )
    c = {f: value(res, f, "cost") for f in ("FK", "AF", "state", "region", "kommun", "public_sector_total")}
    assert c["FK"] + c["AF"] == pytest.approx(c["state"])
    assert c["state"] + c["region"] + c["kommun"] == pytest.approx(-cost)
    assert c["public_sector_total"] == pytest.approx(-cost)
    assert c["state"] == pytest.approx(-0.5 * cost) and c["region"] == pytest.approx(-0.25 * cost)
    assert value(res, "society", "resource_cost") == pytest.approx(-cost)


@pytest.mark.parametrize("mcpf", [1.0, 1.3])
def test_zero_effects_give_minus_the_cost_share(mcpf):
    zero = dict.fromkeys(ONE_MONTH, 0.0)
    p = cb.load_cost_benefit_parameters(overrides={"mcpf": mcpf, "monte_carlo.n_draws": 200})
    res = cb.cost_benefit(effects_frame(zero, horizons=(3, 6, 12)), p, cost_per_participant_sek=82000)
    net = res.net("public_finance")
    expected = {
        "FK": -41000,
        "AF": 0,
        "state": -41000,
        "region": -20500,
        "kommun": -20500,
        "public_sector_total": -82000,
        "participant": 0,
    }
    for fin, v in expected.items():
        assert net[fin] == pytest.approx(v, abs=1e-9), fin
    assert res.net("socio_economic")["society"] == pytest.approx(-mcpf * 82000)


def test_doubling_effects_doubles_every_gain():
    p = cb.load_cost_benefit_parameters(overrides={"monte_carlo.n_draws": 200})  # discounting, decay
    eff = {o: [v, 0.8 * v, 1.3 * v] for o, v in ONE_MONTH.items()}
    r1 = cb.cost_benefit(effects_frame(eff, horizons=(3, 6, 12)), p, cost_per_participant_sek=50000)
    eff2 = {o: [2 * x for x in v] for o, v in eff.items()}
    r2 = cb.cost_benefit(effects_frame(eff2, horizons=(3, 6, 12)), p, cost_per_participant_sek=50000)
    gains = ~r1.point["item"].isin(["cost", "resource_cost", "net"])
    a = r1.point.loc[gains, "pv_sek_per_participant"].to_numpy()
    b = r2.point.loc[gains, "pv_sek_per_participant"].to_numpy()
    assert np.abs(a).max() > 1000
    np.testing.assert_allclose(b, 2 * a, rtol=1e-12)
    be1 = r1.break_even_frame().set_index(["perspective", "financier"])
    be2 = r2.break_even_frame().set_index(["perspective", "financier"])
    np.testing.assert_allclose(be2["pv_gains"], 2 * be1["pv_gains"], rtol=1e-12)


def test_discounting_matches_closed_form_for_a_constant_stream():
    e, r, years = 1000.0, 0.035, 5
    eff = dict.fromkeys(ONE_MONTH, 0.0)
    eff["earnings_sek"] = e
    p = simple_params(
        discount_rate=r, horizon_years=years, persistence=cb.PersistenceSettings(kind="constant")
    )
    res = cb.cost_benefit(effects_frame(eff, horizons=tuple(range(1, 13))), p, cost_per_participant_sek=0)
    d = (1 + r) ** (-1 / 12)
    n = 12 * years
    closed = e * d * (1 - d**n) / (1 - d)
    assert value(res, "participant", "earnings") == pytest.approx(closed, rel=1e-12)
    assert value(res, "society", "production_value") == pytest.approx(1.30 * closed, rel=1e-12)
    np.testing.assert_allclose(cb.discount_factors(3, r), [d, d**2, d**3])


@pytest.mark.parametrize("mcpf", [1.0, 1.3])
def test_socio_economic_net_invariant_to_moving_a_transfer_between_payers(mcpf):
    eff = effects_frame(ONE_MONTH)
    a = cb.cost_benefit(eff, simple_params(mcpf=mcpf, akassa_payer="state"), cost_per_participant_sek=12000)
    b = cb.cost_benefit(eff, simple_params(mcpf=mcpf, akassa_payer="fund"), cost_per_participant_sek=12000)
    assert a.net("public_finance")["state"] != pytest.approx(b.net("public_finance")["state"])
    assert a.net("socio_economic")["society"] == pytest.approx(b.net("socio_economic")["society"])
    # state cost paid through AF instead of FK: same society
    c = cb.cost_benefit(
        eff,
        simple_params(mcpf=mcpf, state_cost_channel={"FK": 0.0, "AF": 1.0}),
        cost_per_participant_sek=12000,
    )
    assert c.net("socio_economic")["society"] == pytest.approx(a.net("socio_economic")["society"])


def test_transfers_cancel_society_equals_public_plus_participant():
    p = cb.load_cost_benefit_parameters(overrides={"monte_carlo.n_draws": 200})
    eff = {o: [v, 0.5 * v, 0.25 * v] for o, v in ONE_MONTH.items()}
    res = cb.cost_benefit(effects_frame(eff, horizons=(3, 6, 12)), p, cost_per_participant_sek=30000)
    net = res.net("public_finance")
    assert res.net("socio_economic")["society"] == pytest.approx(
        net["public_sector_total"] + net["participant"]
    )
    assert net["public_sector_total"] == pytest.approx(net["state"] + net["region"] + net["kommun"])


def test_excess_burden_charges_the_public_budget():
    res = cb.cost_benefit(effects_frame(ONE_MONTH), simple_params(mcpf=1.3), cost_per_participant_sek=12000)
    assert value(res, "society", "excess_burden") == pytest.approx(0.3 * -3040)
    assert res.net("socio_economic")["society"] == pytest.approx(1000 + 0.3 * -3040)


def test_break_even_scale_and_years():
    res = cb.cost_benefit(effects_frame(ONE_MONTH), simple_params(), cost_per_participant_sek=12000)
    be = res.break_even_frame().set_index(["perspective", "financier"])
    fk = be.loc[("public_finance", "FK")]
    assert fk["pv_cost"] == pytest.approx(6000) and fk["pv_gains"] == pytest.approx(2000)
    assert fk["benefit_cost_ratio"] == pytest.approx(2000 / 6000)
    assert fk["break_even_effect_scale"] == pytest.approx(3.0)
    # constant 2000 a month, undiscounted, against 6000: three months
    assert fk["break_even_years"] == pytest.approx(3 / 12)
    # effect scale: scaling every effect by s* brings each net to zero
    for fin in ("state", "region", "kommun", "public_sector_total"):
        s = be.loc[("public_finance", fin), "break_even_effect_scale"]
        scaled = {o: s * v for o, v in ONE_MONTH.items()}
        r2 = cb.cost_benefit(effects_frame(scaled), simple_params(), cost_per_participant_sek=12000)
        assert r2.net("public_finance")[fin] == pytest.approx(0, abs=1e-6), fin
    assert np.isnan(be.loc[("public_finance", "participant"), "break_even_years"])
    # no gains at all: never breaks even
    zero = cb.cost_benefit(
        effects_frame(dict.fromkeys(ONE_MONTH, 0.0)), simple_params(), cost_per_participant_sek=1
    )
    zb = zero.break_even_frame().set_index("financier")
    assert np.isinf(zb.loc["region", "break_even_years"]) and np.isinf(
        zb.loc["region", "break_even_effect_scale"]
    )


def test_stream_operator_interpolates_and_persists():
    p = cb.CostBenefitParameters(
        persistence=cb.PersistenceSettings(kind="linear_decay", years=1.0), persistence_base_months=1
    )
    L = cb.stream_operator([3, 6, 12], 30, p)
    x = L @ np.array([30.0, 60.0, 120.0])
    np.testing.assert_allclose(x[:12], [30, 30, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120])
    # linear decay to zero over 12 months after month 12
    np.testing.assert_allclose(x[12:24], 120 * (1 - np.arange(1, 13) / 12))
    np.testing.assert_allclose(x[24:], 0)
    pe = cb.CostBenefitParameters(persistence=cb.PersistenceSettings(kind="exponential", half_life_years=1.0))
    xe = cb.stream_operator([1, 2, 3], 27, pe) @ np.array([1.0, 2.0, 3.0])
    assert xe[3 + 11] == pytest.approx(2.0 * 0.5)  # base = mean of months 1..3 = 2, one half-life later
    pn = cb.CostBenefitParameters(persistence=cb.PersistenceSettings(kind="none"))
    assert cb.stream_operator([12], 24, pn)[12:].sum() == 0


def test_monte_carlo_with_supplied_draws_and_seeded_normal_draws():
    eff = effects_frame(ONE_MONTH)
    # degenerate joint draws equal to the estimates: interval collapses onto the point
    draws = pd.DataFrame({f"{o}_m1": np.full(300, v) for o, v in ONE_MONTH.items()})
    res = cb.cost_benefit(eff, simple_params(), cost_per_participant_sek=12000, draws=draws)
    fr = res.to_frame()
    np.testing.assert_allclose(fr["ci_lower"], fr["pv_sek_per_participant"], atol=1e-8)
    np.testing.assert_allclose(fr["ci_upper"], fr["pv_sek_per_participant"], atol=1e-8)
    mc = res.monte_carlo_frame().set_index("financier")
    assert mc.loc["society", "p_net_positive"] == 1.0 and mc.loc["kommun", "p_net_positive"] == 0.0
    assert "joint draws supplied" in res.draws_source
    # tuple columns work too; a missing column is an error naming it
    res_t = cb.cost_benefit(
        eff,
        simple_params(),
        cost_per_participant_sek=12000,
        draws=pd.DataFrame({(o, 1): np.full(10, v) for o, v in ONE_MONTH.items()}),
    )
    assert res_t.net()["state"] == pytest.approx(-200)
    with pytest.raises(InputError, match="draws: no column for"):
        cb.cost_benefit(
            eff, simple_params(), cost_per_participant_sek=1, draws=draws.drop(columns="earnings_sek_m1")
        )
    # a cumulative column ({o}_cum1, schema.outcome_column) is not a status effect
    cum = draws.rename(columns={"earnings_sek_m1": "earnings_sek_cum1"})
    with pytest.raises(InputError, match="draws: no column for"):
        cb.cost_benefit(eff, simple_params(), cost_per_participant_sek=1, draws=cum)
    # independent normal draws: seeded, deterministic, centred on the point
    a = cb.cost_benefit(eff, simple_params(), cost_per_participant_sek=12000)
    b = cb.cost_benefit(eff, simple_params(), cost_per_participant_sek=12000)
    np.testing.assert_array_equal(a.draws, b.draws)
    assert "independent normal" in a.draws_source
    m = a.monte_carlo_frame().set_index("financier")
    assert m.loc["state", "ci_lower"] < m.loc["state", "net_point"] < m.loc["state", "ci_upper"]
    assert m.loc["state", "mc_mean"] == pytest.approx(-200, abs=50)


def test_sensitivity_cost_plus_minus_20_percent():
    res = cb.cost_benefit(effects_frame(ONE_MONTH), simple_params(), cost_per_participant_sek=12000)
    s = res.sensitivity_frame()
    assert set(s["parameter"]) == {
        "discount_rate",
        "persistence",
        "horizon_years",
        "income_tax_rates",
        "cost",
    }
    c = s[s["parameter"] == "cost"].set_index("financier")
    assert c.loc["region", "net_low"] - c.loc["region", "net_base"] == pytest.approx(0.2 * 3000)
    assert c.loc["region", "net_high"] - c.loc["region", "net_base"] == pytest.approx(-0.2 * 3000)
    t = s[s["parameter"] == "income_tax_rates"].set_index("financier")
    assert t.loc["kommun", "net_high"] - t.loc["kommun", "net_base"] == pytest.approx(0.01 * 7200)
    pers = s[s["parameter"] == "persistence"].set_index("financier")
    # effect only in month 1, none afterwards at the base: "constant" carries 2000/month for 59 more months
    assert pers.loc["FK", "net_high"] - pers.loc["FK", "net_base"] == pytest.approx(59 * 2000)


def test_frames_summary_and_figures():
    res = cb.cost_benefit(effects_frame(ONE_MONTH), simple_params(), cost_per_participant_sek=12000)
    assert list(res.to_frame().columns) == [
        "perspective",
        "financier",
        "item",
        "pv_sek_per_participant",
        "ci_lower",
        "ci_upper",
    ]
    assert set(res.to_frame()["perspective"]) == {"public_finance", "socio_economic"}
    text = res.summary()
    assert "never add them" in text and "public_sector_total" in text and "independent normal" in text
    assert "effects: estimator att, subgroup all" in text
    for fig in (res.waterfall_figure("kommun"), res.waterfall_figure("society"), res.tornado_figure("state")):
        assert isinstance(fig, Figure)
    with pytest.raises(InputError, match="no financier 'nobody'"):
        res.waterfall_figure("nobody")
    # the figures are functions of the result (the methods call them); perspectives are options.PERSPECTIVES
    assert isinstance(cb.waterfall_figure(res, "state", "public_finance"), Figure)
    assert isinstance(cb.tornado_figure(res, "society"), Figure)
    with pytest.raises(ConfigError, match="perspective must be one of"):
        cb.tornado_figure(res, "state", "private")
    assert list(res.net("socio_economic").index) == ["society"]
    with pytest.raises(ConfigError, match="perspective must be one of"):
        res.net("societal")


def test_input_errors_are_actionable():
    eff = effects_frame(ONE_MONTH)
    with pytest.raises(InputError, match=r"no status effects \(subgroup 'all'\) for \['earnings_sek'\]"):
        cb.cost_benefit(eff[eff["outcome"] != "earnings_sek"], simple_params(), cost_per_participant_sek=1)
    two = pd.concat([eff, eff.assign(estimator="did")])
    with pytest.raises(InputError, match=r"several estimators \['att', 'did'\]; choose one"):
        cb.cost_benefit(two, simple_params(), cost_per_participant_sek=1)
    assert (
        cb.cost_benefit(two, simple_params(), cost_per_participant_sek=1, estimator="did").net()["AF"] == 300
    )
    with pytest.raises(ConfigError, match="no cost per participant"):
        cb.cost_benefit(eff, simple_params())
    with pytest.raises(InputError, match="missing column"):
        cb.cost_benefit(eff.drop(columns="std_error"), simple_params(), cost_per_participant_sek=1)


def test_cost_from_parameters_is_moved_to_base_year_prices():
    p = simple_params(cost_per_participant_sek=10000, cost_price_year=2020)
    res = cb.cost_benefit(effects_frame(ONE_MONTH), p)
    assert res.cost_per_participant_sek == pytest.approx(10000 * 414.84 / 335.02)
    with pytest.raises(ConfigError, match="no price index for 1999"):
        cb.cost_benefit(
            effects_frame(ONE_MONTH), simple_params(cost_per_participant_sek=1, cost_price_year=1999)
        )


def test_parameters_file_matches_model_defaults_and_overrides(tmp_path):
    assert cb.load_cost_benefit_parameters(cb.DEFAULT_PARAMETERS_FILE) == cb.CostBenefitParameters()
    p = cb.CostBenefitParameters()
    assert (p.discount_rate, p.horizon_years, p.payroll_fee_rate) == (0.035, 5.0, 0.3142)
    assert p.cost_shares == {"state": 0.5, "region": 0.25, "kommun": 0.25}
    o = cb.load_cost_benefit_parameters(overrides={"persistence.kind": "constant", "discount_rate": 0.0})
    assert o.persistence.kind == "constant" and o.discount_rate == 0.0
    # the analysis config reads the parameters (file + overrides) when it is loaded
    cfg = parse_config(
        {"inputs": {"tables": {}}, "window": {"start": "2020-01", "end": "2020-06"},
         "cost_benefit": {"overrides": {"horizon_years": 3}}},
        tmp_path,
    )  # fmt: skip
    assert cfg.cost_benefit_parameters.horizon_years == 3
    with pytest.raises(ConfigError, match="horizon_year: Extra inputs are not permitted"):
        parse_config(
            {"inputs": {"tables": {}}, "window": {"start": "2020-01", "end": "2020-06"},
             "cost_benefit": {"overrides": {"horizon_year": 3}}},
            tmp_path,
        )  # fmt: skip
    bad = tmp_path / "p.yaml"
    bad.write_text("cost_shares: {state: 0.5, region: 0.3, kommun: 0.25}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="cost_shares must sum to 1"):
        cb.load_cost_benefit_parameters(bad)
    bad.write_text("discount_rat: 0.03\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="discount_rat: Extra inputs are not permitted"):
        cb.load_cost_benefit_parameters(bad)


def test_cost_per_participant_rule():
    reg = pd.DataFrame(
        {
            "person_id": ["1", "1", "2", "3", "", "4", "5"],
            "registration_kind": ["person", "person", "person", "person", "anonymous", "person", "person"],
            "forbund_id": ["F1"] * 7,
            "insats_id": ["A", "A", "A", "A", "A", "B", "B"],
            "start_date": pd.to_datetime(
                [
                    "2023-02-01",
                    "2023-09-01",
                    "2023-03-01",
                    "2023-04-01",
                    "2023-05-01",
                    "2024-01-10",
                    "2024-02-01",
                ]
            ),
        }
    )
    costs = pd.DataFrame(
        {
            "forbund_id": ["F1", "F1"],
            "insats_id": ["A", "B"],
            "year": [2023, 2024],
            "cost_sek": [100000.0, 60000.0],
        }
    )
    volume = pd.DataFrame({"forbund_id": ["F1"], "insats_id": ["B"], "year": [2024], "participations": [3]})
    parts = pd.DataFrame(
        {
            "forbund_id": ["F1"] * 3,
            "insats_id": ["A", "A", "B"],
            "start_date": pd.to_datetime(["2023-02-01", "2023-03-01", "2024-01-10"]),
        }
    )
    p = cb.CostBenefitParameters()
    res = cb.cost_per_participant(costs, parts, reg, p, sus_volume=volume)
    per = res.to_frame().set_index("insats_id")
    assert per.loc["A", "n_participants"] == 4  # persons 1 (twice), 2, 3 + one anonymous
    assert per.loc["B", "n_participants"] == 5  # persons 4, 5 + three volume participations
    a = 100000 / 4 * 414.84 / 403.54
    assert per.loc["A", "cost_per_participant_sek"] == pytest.approx(a)
    assert res.mean_sek == pytest.approx((2 * a + 12000) / 3)
    assert "3 participants" in res.summary()
    # subgroup costs: the participants' own insatser
    parts_t = parts.assign(insats_type=["rehab_work_education", "rehab_work_education", "assessment"])
    res_t = cb.cost_per_participant(costs, parts_t, reg, p, sus_volume=volume)
    assert res_t.for_subgroup("insats_type=assessment") == pytest.approx(12000)
    assert res_t.for_subgroup("insats_type=rehab_work_education") == pytest.approx(a)
    assert res_t.for_subgroup() == pytest.approx(res.mean_sek)
    eff_sub = effects_frame(ONE_MONTH).assign(subgroup="insats_type=assessment")
    r_sub = cb.cost_benefit(
        eff_sub, simple_params(), cost_per_participant_sek=res_t, subgroup="insats_type=assessment"
    )
    assert r_sub.cost_per_participant_sek == pytest.approx(12000)
    with pytest.raises(InputError, match="the participants have no column 'sex' for subgroup 'sex=K'"):
        res_t.for_subgroup("sex=K")
    r2 = cb.cost_benefit(effects_frame(ONE_MONTH), simple_params(), cost_per_participant_sek=res)
    assert r2.cost_per_participant_sek == pytest.approx(res.mean_sek)
    # DuckDB relations (as the pipeline's tables) work the same
    import duckdb

    con = duckdb.connect()
    rel = cb.cost_per_participant(
        con.from_df(costs), parts, con.from_df(reg), p, sus_volume=con.from_df(volume)
    )
    assert rel.mean_sek == pytest.approx(res.mean_sek)
    with pytest.raises(InputError, match="1 of 3 participants start in an insats-year without a cost row"):
        cb.cost_per_participant(costs[costs["insats_id"] == "A"], parts, sus_registrations=reg)


def _paths(before: dict[str, list[float]], after: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for i, (pid, b) in enumerate(before.items()):
        for rel in range(-12, 13):
            if rel == 0:
                continue
            val = b if rel < 0 else after[pid]
            row = {"person_id": pid, "ref_month": "2022-01", "rel_month": rel, "censored": False}
            row.update(dict(zip(cb.REQUIRED_OUTCOMES, val, strict=True)))
            rows.append(row)
        del i
    return pd.DataFrame(rows)


def test_before_after_effects_hand_case():
    # outcomes: sickness, disability, labour_market, unemployment, social_assistance, earnings
    paths = _paths(
        {"a": [1000, 0, 0, 0, 4000, 0], "b": [3000, 0, 0, 0, 2000, 1000]},
        {"a": [0, 0, 0, 0, 1000, 6000], "b": [1000, 0, 0, 0, 2000, 3000]},
    )
    # person b's month +12 censored with junk values: must be ignored
    paths.loc[(paths["person_id"] == "b") & (paths["rel_month"] == 12), ["censored", "earnings_sek"]] = [
        True,
        1e9,
    ]
    eff, draws = cb.before_after_effects(paths, n_draws=400, seed=3)
    e = eff[eff["horizon_months"] == 5].set_index("outcome")
    assert e.loc["sek_sickness", "estimate"] == pytest.approx(((0 - 1000) + (1000 - 3000)) / 2)
    assert e.loc["social_assistance_sek", "estimate"] == pytest.approx(((1000 - 4000) + 0) / 2)
    assert e.loc["earnings_sek", "estimate"] == pytest.approx((6000 + 2000) / 2)
    # sd of (6000, 2000) / sqrt(2)
    assert e.loc["earnings_sek", "std_error"] == pytest.approx(np.std([6000, 2000], ddof=1) / np.sqrt(2))
    assert sorted(eff["horizon_months"].unique()) == list(range(1, 13))
    assert draws.shape == (400, 6 * 12)
    # one draw per outcome, the same in every month
    np.testing.assert_array_equal(draws[("earnings_sek", 1)], draws[("earnings_sek", 12)])
    res = cb.before_after_cost_benefit(paths, simple_params(), cost_per_participant_sek=12000)
    assert res.method == "before_after"
    cf = cb.cost_benefit(effects_frame(ONE_MONTH), simple_params(), cost_per_participant_sek=12000)
    cmp = cb.compare_methods(cf, res)
    row = cmp.set_index("financier").loc["society"]
    assert row["difference"] == pytest.approx(row["net_point_before_after"] - row["net_point_counterfactual"])
    # before/after production value: 12 months x 4000 x 1.30, undiscounted, no persistence
    assert res.net("socio_economic")["society"] == pytest.approx(12 * 4000 * 1.3 - 12000)


def test_share_above_threshold():
    assert cb.share_above_threshold([100_000, 700_000, 615_300, np.nan], 615_300) == pytest.approx(2 / 3)
    with pytest.raises(InputError):
        cb.share_above_threshold([], 1.0)


def test_works_with_estimation_effect_results_and_their_joint_draws():
    from finsam_effekt.estimation import estimate_effects

    rng = np.random.default_rng(5)
    n = 40
    treated = np.repeat([1, 0], n)
    data = pd.DataFrame(
        {
            "person_id": [f"p{i}" for i in range(2 * n)],
            "treated": treated,
            "weights": 1.0,
            "subclass": np.tile(np.arange(n), 2),
        }
    )
    true = {"earnings_sek": 2000.0, "sek_sickness": -500.0}
    for o in cb.REQUIRED_OUTCOMES:
        for k in range(1, 13):
            data[f"{o}_m{k}"] = 3000 + rng.normal(0, 300, 2 * n) + true.get(o, 0.0) * treated
    eff = estimate_effects(
        data,
        outcomes=list(cb.REQUIRED_OUTCOMES),
        horizons=tuple(range(1, 13)),
        measures=("status", "cumulative"),
        estimators=["weighted_mean_diff"],
    )
    draws = eff.draws("weighted_mean_diff", n=300, seed=1)
    res = cb.cost_benefit(eff.to_frame(), simple_params(), cost_per_participant_sek=20000, draws=draws)
    assert "300 joint draws" in res.draws_source
    f = eff.to_frame()
    e = f[(f["measure"] == "status") & (f["outcome"] == "earnings_sek")]["estimate"].sum()
    assert value(res, "participant", "earnings") == pytest.approx(
        e
    )  # r = 0, no persistence: sum of 12 months
    mc = res.monte_carlo_frame().set_index("financier")
    assert mc.loc["society", "ci_lower"] < mc.loc["society", "net_point"] < mc.loc["society", "ci_upper"]
    # the return computed from the true effects lies inside the Monte Carlo interval of the estimated one
    truth = effects_frame(
        {o: true.get(o, 0.0) for o in cb.REQUIRED_OUTCOMES}, horizons=tuple(range(1, 13)), se=0.0
    )
    true_res = cb.cost_benefit(truth, simple_params(), cost_per_participant_sek=20000)
    for fin, v in true_res.net("public_finance").items():
        assert mc.loc[fin, "ci_lower"] <= v <= mc.loc[fin, "ci_upper"], fin
    assert true_res.net("socio_economic")["society"] == pytest.approx(12 * 2000 * 1.3 - 20000)


def test_before_after_uses_only_treated_rows_of_paths():
    paths = _paths(
        {"a": [1000, 0, 0, 0, 4000, 0], "b": [3000, 0, 0, 0, 2000, 1000]},
        {"a": [0, 0, 0, 0, 1000, 6000], "b": [1000, 0, 0, 0, 2000, 3000]},
    )
    paths["treated"] = 1
    control = paths.assign(person_id=lambda d: d["person_id"] + "c", treated=0, earnings_sek=1e6)
    eff, _ = cb.before_after_effects(pd.concat([paths, control]), n_draws=100)
    e = eff[eff["horizon_months"] == 1].set_index("outcome")
    assert e.loc["earnings_sek", "estimate"] == pytest.approx(4000)
    assert (eff["n_treated"] == 2).all()


_amount = st.floats(-20000, 20000, allow_nan=False, allow_infinity=False)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    values=st.lists(_amount, min_size=18, max_size=18),
    rate=st.floats(0, 0.1),
    kind=st.sampled_from(["none", "constant", "linear_decay", "exponential"]),
    mcpf=st.floats(1, 1.5),
    cost=st.floats(0, 200000),
    akassa=st.sampled_from(["state", "fund"]),
)
def test_identities_hold_for_any_effects_and_parameters(values, rate, kind, mcpf, cost, akassa):
    eff = {o: values[3 * j : 3 * j + 3] for j, o in enumerate(cb.REQUIRED_OUTCOMES)}
    p = cb.CostBenefitParameters(
        discount_rate=rate,
        persistence=cb.PersistenceSettings(kind=kind),
        mcpf=mcpf,
        akassa_payer=akassa,
        monte_carlo=cb.MonteCarloSettings(n_draws=100),
    )
    res = cb.cost_benefit(effects_frame(eff, horizons=(3, 6, 12)), p, cost_per_participant_sek=cost)
    pt = res.point
    # each financier's net is the sum of its items
    for (_persp, fin), g in pt.groupby(["perspective", "financier"]):
        parts = g[g["item"] != "net"]["pv_sek_per_participant"].sum()
        assert g[g["item"] == "net"]["pv_sek_per_participant"].iloc[0] == pytest.approx(parts, abs=1e-6), fin
    net = res.net("public_finance")
    pub = net["state"] + net["region"] + net["kommun"] + net.get("akassa_fund", 0.0)
    assert net["public_sector_total"] == pytest.approx(pub, abs=1e-6)
    # transfers cancel: society = production - cost + (mcpf - 1) x public net; = public + participant at mcpf 1
    soc = res.net("socio_economic")["society"]
    prod = value(res, "society", "production_value")
    assert soc == pytest.approx(prod - cost + (mcpf - 1) * net["public_sector_total"], abs=1e-6)
    assert (net["public_sector_total"] + net["participant"]) - (prod - cost) == pytest.approx(0, abs=1e-6)


def test_before_after_beside_the_counterfactual_result():
    paths = _paths(
        {"a": [1000, 0, 0, 0, 4000, 0], "b": [3000, 0, 0, 0, 2000, 1000]},
        {"a": [0, 0, 0, 0, 1000, 6000], "b": [1000, 0, 0, 0, 2000, 3000]},
    )
    res = cb.cost_benefit(
        effects_frame(ONE_MONTH), simple_params(), cost_per_participant_sek=12000, before_after_paths=paths
    )
    assert res.before_after is not None and res.before_after.method == "before_after"
    assert res.before_after.cost_per_participant_sek == 12000
    cmp = res.comparison_frame().set_index("financier")
    assert cmp.loc["society", "net_point_counterfactual"] == pytest.approx(1000)
    assert cmp.loc["society", "net_point_before_after"] == pytest.approx(12 * 4000 * 1.3 - 12000)
    assert "before/after method of the local calculations" in res.summary()
    plain = cb.cost_benefit(effects_frame(ONE_MONTH), simple_params(), cost_per_participant_sek=12000)
    with pytest.raises(InputError, match="pass before_after_paths="):
        plain.comparison_frame()


def test_cli_cost_benefit_writes_tables_figures_and_summary(tmp_path):
    from typer.testing import CliRunner

    from finsam_effekt.cli import app

    eff_path = tmp_path / "effects.csv"
    effects_frame(ONE_MONTH).to_csv(eff_path, index=False)
    params = tmp_path / "p.yaml"
    params.write_text(
        "kommunal_tax_rate: 0.20\nregional_tax_rate: 0.10\npayroll_fee_rate: 0.30\ndiscount_rate: 0.0\n"
        "persistence: {kind: none}\nmonte_carlo: {n_draws: 200}\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    args = ["cost-benefit", str(eff_path), "--out", str(out), "--params", str(params), "--cost", "12000"]
    no_persons = CliRunner().invoke(app, args)  # a hand-made table without the persons behind the effects
    assert no_persons.exit_code != 0 and isinstance(no_persons.exception, InputError)
    assert "lacks column(s) ['n_control', 'n_treated']" in str(no_persons.exception) and not out.exists()
    effects_frame(ONE_MONTH).assign(n_treated=400, n_control=900).to_csv(eff_path, index=False)
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out / "cost_benefit.csv")
    net = table[table["item"] == "net"].set_index("financier")["pv_sek_per_participant"]
    assert net["kommun"] == pytest.approx(-560) and net["society"] == pytest.approx(1000)
    assert (out / "tornado_society.png").stat().st_size > 0 and (out / "summary.txt").is_file()
    missing = CliRunner().invoke(app, ["cost-benefit", str(tmp_path / "nope.csv"), "--out", str(out)])
    assert missing.exit_code != 0 and isinstance(missing.exception, InputError)


# ------------------------------------------------------------------------------------ the shipped synthetic world
SHIPPED = Path(__file__).resolve().parent.parent / "synthetic_data"


@pytest.fixture(scope="module")
def shipped_paths_and_truth():
    """Linkable participants' outcome paths (months -3..12) and the true monthly ATTs of the shipped world."""
    assert (SHIPPED / "truth.json").is_file(), (
        "synthetic_data/ (the shipped world) is missing from this checkout"
    )
    from finsam_effekt import io, linkage, panel
    from finsam_effekt.config import load_input_spec

    con, _ = io.read_inputs(load_input_spec(SHIPPED / "mapping.yaml"))
    truth = json.loads((SHIPPED / "truth.json").read_text(encoding="utf-8"))
    start, end = truth["window"]
    link = linkage.link_participants(
        con.table("sus_registrations"),
        con.table("population"),
        window=("2018-01", "2022-12"),
        age_range=(16, 64),
        con=con,
        register_start=start,
        min_history_months=24,
    )
    paths = panel.outcome_paths(
        link.participants[["person_id", "ref_month"]],
        (-3, 12),
        spells=con.table("benefit_spells"),
        social_assistance=con.table("social_assistance"),
        earnings=con.table("earnings"),
        population=con.table("population"),
        end_month=end,
        con=con,
    )
    att = truth["att"]["all"]
    effects = effects_frame(
        {o: [att[o][str(k)] for k in range(1, 13)] for o in cb.REQUIRED_OUTCOMES},
        horizons=tuple(range(1, 13)),
        se=0.0,
        estimator="truth",
    )
    return paths, effects


@pytest.mark.slow
@pytest.mark.parametrize("overrides", [{"horizon_years": 1, "persistence.kind": "none"}, {}])
def test_shipped_world_before_after_return_exceeds_the_counterfactual_return(
    shipped_paths_and_truth, overrides
):
    """The generator selects participants on a rising need for support, so the before/after "return" of the
    local calculations (baseline = the situation at the start) contains regression to the mean: on the same
    participants it exceeds the return computed from the true effects (truth.json: with minus without insats),
    by more than its own Monte Carlo uncertainty. Checked for the first year (the local calculations' "return
    per participant and year") and for the default 5-year horizon."""
    paths, truth_effects = shipped_paths_and_truth
    p = cb.load_cost_benefit_parameters(overrides={"monte_carlo.n_draws": 500, **overrides})
    res = cb.cost_benefit(truth_effects, p, cost_per_participant_sek=82000, before_after_paths=paths)
    assert res.before_after.effect_columns[-1] == ("earnings_sek", 12)
    cmp = res.comparison_frame().set_index("financier")
    for fin in ("public_sector_total", "society", "state", "kommun"):
        row = cmp.loc[fin]
        assert row["net_point_counterfactual"] < row["ci_lower_before_after"], fin
    assert (cmp.loc[["public_sector_total", "society"], "difference"] > 20000).all()


def test_missing_estimates_are_bridged_and_missing_se_needs_draws():
    eff = effects_frame({o: [v, v, v] for o, v in ONE_MONTH.items()}, horizons=(1, 2, 3))
    eff.loc[(eff["outcome"] == "earnings_sek") & (eff["horizon_months"] == 2), "estimate"] = np.nan
    eff.loc[(eff["outcome"] == "earnings_sek") & (eff["horizon_months"] == 3), "estimate"] = 20000.0
    res = cb.cost_benefit(eff, simple_params(), cost_per_participant_sek=0)
    # month 2 interpolated between 10000 and 20000
    assert value(res, "participant", "earnings") == pytest.approx(10000 + 15000 + 20000)
    assert any("no estimate for earnings_sek m2" in n for n in res.notes)
    eff.loc[eff["outcome"] == "sek_sickness", "std_error"] = np.nan
    with pytest.raises(
        InputError, match=r"no std_error for sek_sickness at month 1 \(3 row\(s\)\); pass joint"
    ):
        cb.cost_benefit(eff, simple_params(), cost_per_participant_sek=0)
    draws = pd.DataFrame({(o, h): np.zeros(5) for o in cb.REQUIRED_OUTCOMES for h in (1, 2, 3)})
    assert cb.cost_benefit(eff, simple_params(), cost_per_participant_sek=0, draws=draws).draws.shape[0] == 5
