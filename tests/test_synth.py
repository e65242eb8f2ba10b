"""The synthetic register world: schema, exact monthly quantities, truth, selection bias, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finsam_effekt import months as mo
from finsam_effekt.errors import ConfigError
from finsam_effekt.schema import (
    BENEFIT_GROUPS,
    DEFAULT_EPISODE_GAP_DAYS,
    DEFAULT_SELF_SUPPORT_THRESHOLD_SEK,
    OUTCOMES,
    SPELL_GROUPS,
    TABLES,
)
from finsam_effekt.synth import Mess, SynthConfig, file_hashes, generate, latent_person_months

SHIPPED = Path(__file__).parents[1] / "synthetic_data"
SMALL = SynthConfig(persons=3000, seed=11)
THRESHOLD = DEFAULT_SELF_SUPPORT_THRESHOLD_SEK


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth_small")
    res = generate(out, SMALL)  # the SynthResult is needed here, so this module generates its own
    tables = {t: pd.read_parquet(out / f"{t}.parquet") for t in TABLES}
    return res, out, tables


def _panel_from_tables(tables: dict[str, pd.DataFrame], end: str, threshold: float) -> pd.DataFrame:
    """Person-months recomputed from the written tables by the rules of docs/tables.md, day by day."""
    sp = tables["benefit_spells"].drop_duplicates()
    fr = pd.to_datetime(sp["from_date"])
    to = pd.to_datetime(sp["to_date"]).fillna(mo.last_day(mo.to_index(end)))
    nd = ((to - fr).dt.days + 1).to_numpy()
    rep = np.repeat(np.arange(len(sp)), nd)
    offset = np.arange(rep.size) - np.repeat(np.cumsum(nd) - nd, nd)
    day = fr.to_numpy()[rep] + offset.astype("timedelta64[D]")
    x = pd.DataFrame(
        {
            "person_id": sp["person_id"].to_numpy()[rep],
            "g": sp["benefit"].map(BENEFIT_GROUPS).to_numpy()[rep],
            "month": pd.DatetimeIndex(day).strftime("%Y-%m"),
            "d": sp["extent"].to_numpy()[rep],
            "s": (sp["amount_sek"].to_numpy() / nd)[rep],
        }
    )
    agg = x.groupby(["person_id", "month", "g"]).agg(d=("d", "sum"), s=("s", "sum")).reset_index()
    agg["d"] = np.minimum(agg["d"], pd.PeriodIndex(agg["month"], freq="M").days_in_month)
    wide = agg.pivot_table(index=["person_id", "month"], columns="g", values=["d", "s"], fill_value=0.0)
    out = pd.DataFrame(index=wide.index)
    for g in SPELL_GROUPS:
        out[f"days_{g}"] = wide["d"][g] if g in wide["d"] else 0.0
        out[f"sek_{g}"] = wide["s"][g] if g in wide["s"] else 0.0
    sa = tables["social_assistance"].set_index(["person_id", "month"])["amount_sek"]
    ea = tables["earnings"].set_index(["person_id", "month"])["earnings_sek"]
    idx = out.index.union(sa.index).union(ea.index)
    out = out.reindex(idx, fill_value=0.0)
    out["social_assistance_sek"] = sa.reindex(idx, fill_value=0.0)
    out["earnings_sek"] = ea.reindex(idx, fill_value=0.0)
    out["benefit_sek"] = sum(out[f"sek_{g}"] for g in SPELL_GROUPS) + out["social_assistance_sek"]
    ps = (sum(out[f"days_{g}"] for g in SPELL_GROUPS) > 0) | (out["benefit_sek"] > 0)
    out["public_support"] = ps.astype(float)
    out["self_support"] = ((out["earnings_sek"] >= threshold) & ~ps).astype(float)
    pop = tables["population"]
    cens = pd.to_datetime(pop["death_date"]).fillna(pd.to_datetime(pop["emigration_date"]))
    cmonth = pd.Series(pd.DatetimeIndex(cens).strftime("%Y-%m"), index=pop["person_id"])
    out = out.reset_index()
    c = cmonth.reindex(out["person_id"]).fillna("9999-99").to_numpy()
    return out[out["month"].to_numpy() < c].reset_index(drop=True)


# ------------------------------------------------------------------------------------------------- schema
def test_every_table_matches_the_canonical_schema(small):
    res, out, tables = small
    for name, spec in TABLES.items():
        df = tables[name]
        assert list(df.columns) == spec.names, name
        assert res.rows[name] == len(df) > 0, name
        for col in spec.columns:
            v = df[col.name]
            if not col.nullable:
                assert v.notna().all(), (name, col.name)
            nn = v.dropna()
            if col.kind == "code":
                assert set(nn) <= set(col.codes), (name, col.name, set(nn) - set(col.codes))
            elif col.kind == "codeset":
                assert set(";".join(nn).split(";")) <= set(col.codes), (name, col.name)
            elif col.kind == "month":
                assert nn.str.fullmatch(r"\d{4}-\d{2}").all()
            elif col.kind == "int":
                assert pd.api.types.is_integer_dtype(v)
            elif col.kind == "float":
                assert pd.api.types.is_float_dtype(v)
            elif col.kind == "str":
                assert nn.map(type).eq(str).all()
    pop = tables["population"]
    assert pop["person_id"].str.fullmatch(r"P\d{7}").all() and pop["person_id"].is_unique
    assert pop["kommun"].str.fullmatch(r"\d{4}").all()
    regs = tables["sus_registrations"]
    assert regs["forbund_id"].str.fullmatch(r"F\d{2}").all()
    assert (regs["insats_id"].str.slice(0, 3) == regs["forbund_id"]).all()
    assert regs["insats_id"].str.fullmatch(r"F\d{2}-I\d{2}").all()
    anon = regs["registration_kind"] == "anonymous"
    assert regs.loc[anon, "person_id"].isna().all() and regs.loc[~anon, "person_id"].notna().all()
    assert set(regs.loc[~anon, "person_id"]) <= set(pop["person_id"])
    vol_ids = set(tables["sus_volume"]["insats_id"])
    assert not vol_ids & set(regs["insats_id"])  # volume insatser only in sus_volume
    assert set(tables["benefit_spells"]["person_id"]) <= set(pop["person_id"])
    assert set(tables["insats_costs"]["insats_id"]) == set(regs["insats_id"]) | vol_ids


def test_dates_are_consistent_and_inside_the_window(small):
    _, _, t = small
    w0, w1 = pd.Timestamp("2016-01-01"), pd.Timestamp("2023-12-31")
    sp = t["benefit_spells"]
    fr, to = pd.to_datetime(sp["from_date"]), pd.to_datetime(sp["to_date"])
    assert (fr >= w0).all() and (fr <= w1).all()
    assert ((to >= fr) & (to <= w1) | to.isna()).all()
    assert to.isna().any()  # open spells at the end of data
    assert set(sp["extent"]) == {0.25, 0.5, 0.75, 1.0}
    assert (sp["amount_sek"] > 0).all()
    regs = t["sus_registrations"]
    s, e = pd.to_datetime(regs["start_date"]), pd.to_datetime(regs["end_date"])
    assert (s >= w0).all() and (s <= w1).all()
    assert ((e >= s) & (e <= w1) | e.isna()).all()
    assert e.isna().any()  # ongoing insatser
    assert regs.loc[e.isna(), "status_at_end"].isna().all()
    assert regs.loc[e.notna(), "status_at_end"].notna().all()
    for tab in ("social_assistance", "earnings"):
        m = t[tab]["month"]
        assert m.min() >= "2016-01" and m.max() <= "2023-12"
        assert not t[tab].duplicated(["person_id", "month"]).any()
    pop = t["population"]
    assert not (pop["death_date"].notna() & pop["emigration_date"].notna()).any()


def test_monthly_quantities_are_reproduced_exactly_from_the_tables(small):
    """The written spells/months give exactly the latent monthly outcomes (split, overlapping, duplicate and
    open spells included)."""
    _, _, tables = small
    sp = tables["benefit_spells"]
    assert sp.duplicated().sum() > 0  # the mess is there ...
    latent = latent_person_months(SMALL)
    panel = _panel_from_tables(tables, SMALL.end, DEFAULT_SELF_SUPPORT_THRESHOLD_SEK)
    m = panel.merge(
        latent, on=["person_id", "month"], how="outer", suffixes=("_tables", "_latent"), indicator=True
    )
    assert (m["_merge"] == "both").all()
    for o in OUTCOMES:
        np.testing.assert_allclose(m[f"{o}_tables"], m[f"{o}_latent"], rtol=1e-12, atol=1e-6, err_msg=o)


# ------------------------------------------------------------------------------------------------- SUS
def test_episode_counts_follow_the_linkage_rule(small):
    """Episodes by the gap rule and double registrations reproduce truth['counts'] exactly."""
    res, _, t = small
    regs = t["sus_registrations"]
    p = regs[regs["registration_kind"] == "person"].copy()
    p["s"] = pd.to_datetime(p["start_date"])
    p["e"] = pd.to_datetime(p["end_date"]).fillna(pd.Timestamp("2262-01-01"))
    p = p.sort_values(["person_id", "s"])
    episodes = doubles = 0
    for _, g in p.groupby("person_id"):
        end = None
        for s, e in zip(g["s"], g["e"], strict=True):
            if end is not None and (s - end).days <= DEFAULT_EPISODE_GAP_DAYS:
                doubles += 1
                end = max(end, e)
            else:
                episodes += 1
                end = e
    c = res.truth["counts"]
    assert c["episodes"] == episodes and c["double_registrations"] == doubles > 0
    assert c["linkable_persons"] == p["person_id"].nunique() == res.truth["n_participants"]["all"]
    assert c["person_registrations"] == len(p)
    assert c["anonymous_registrations"] == (regs["registration_kind"] == "anonymous").sum() > 0
    assert c["registrations"] == len(regs)
    assert c["volume_participations"] == t["sus_volume"]["participations"].sum() > 0
    assert c["episodes"] > c["linkable_persons"]  # some later episodes


def test_truth_participants_match_first_linkable_registration(small):
    res, out, t = small
    tp = pd.read_parquet(out / "truth_participants.parquet")
    regs = t["sus_registrations"]
    p = regs[regs["registration_kind"] == "person"]
    first = p.loc[pd.to_datetime(p["start_date"]).groupby(p["person_id"]).idxmin()]
    ref = pd.Series(
        pd.to_datetime(first["start_date"]).dt.strftime("%Y-%m").to_numpy(), index=first["person_id"]
    )
    assert tp["person_id"].is_unique and len(tp) == len(ref)
    assert (tp.set_index("person_id")["ref_month"] == ref.reindex(tp["person_id"]).to_numpy()).all()
    for o in OUTCOMES:
        for k in (3, 6, 12):
            assert f"{o}_m{k}" in tp and f"{o}_cum{k}" in tp
    # the mean of the individual effects on the uncensored is the ATT of truth.json
    for o in ("public_support", "benefit_sek"):
        for k in (3, 12):
            col = tp[f"{o}_m{k}"]
            assert col.notna().sum() == res.truth["n_uncensored"]["all"][str(k)]
            assert col.mean() == pytest.approx(res.truth["att"]["all"][o][str(k)], rel=1e-9, abs=1e-12)
            assert tp[f"{o}_cum{k}"].mean() == pytest.approx(
                res.truth["att_cumulative"]["all"][o][str(k)], rel=1e-9, abs=1e-12
            )


# ------------------------------------------------------------------------------------------------- truth
def test_common_random_numbers_couple_the_two_paths(small):
    """With common random numbers most participants have the same outcome with and without the insats, and
    the effect on public support is nearly one-signed (independent draws would give many +1 and -1)."""
    _, out, _ = small
    tp = pd.read_parquet(out / "truth_participants.parquet")
    eff = tp["public_support_m12"].dropna()
    assert len(eff) > 80  # 45 % of the participants are anonymous (contamination): fewer linkable ones
    assert (eff != 0).mean() < 0.3
    assert (eff > 0).sum() < 0.25 * (eff < 0).sum()
    assert set(eff.unique()) <= {-1.0, 0.0, 1.0}


def test_not_now_truth_differs_from_never_only_through_later_starts(small):
    """The "not now" counterfactual (no start at u, later start possible) equals the "without any insats" path until
    a later start can have an effect: identical at k = 1 (a start at u+1 acts from u+2 on), and later it differs
    for the few participants who start later on that path, in the direction of the insats' effect (a later start
    lowers public support in the counterfactual, so the effect against "not now" is smaller)."""
    res, out, _ = small
    t = res.truth
    for g in t["att"]:
        for o in OUTCOMES:
            assert t["att_not_now"][g][o]["1"] == t["att"][g][o]["1"], (g, o)
            assert t["att_cumulative_not_now"][g][o]["1"] == t["att_cumulative"][g][o]["1"], (g, o)
    tp = pd.read_parquet(out / "truth_participants.parquet")
    for o in OUTCOMES:
        for k in (3, 6, 12):
            col = tp[f"{o}_m{k}_not_now"]
            assert (col.isna() == tp[f"{o}_m{k}"].isna()).all()
            assert col.mean() == pytest.approx(t["att_not_now"]["all"][o][str(k)], rel=1e-9, abs=1e-12)
            assert tp[f"{o}_cum{k}_not_now"].mean() == pytest.approx(
                t["att_cumulative_not_now"]["all"][o][str(k)], rel=1e-9, abs=1e-12
            )
    # direction: on the shipped world (5 212 participants; the small world has too few later starts)
    tp = pd.read_parquet(SHIPPED / "truth_participants.parquet")
    diff = (tp["public_support_m12_not_now"] - tp["public_support_m12"]).dropna()
    assert 0.005 < (diff != 0).mean() < 0.3
    assert diff.mean() > 0
    assert (tp["self_support_m12_not_now"] - tp["self_support_m12"]).mean() < 0


def test_effect_scale_zero_gives_a_truth_of_exactly_zero(tmp_path):
    res = generate(tmp_path, SynthConfig(persons=1500, seed=5, effect_scale=0.0))
    for key in ("att", "att_cumulative", "att_not_now", "att_cumulative_not_now"):
        for g, by_o in res.truth[key].items():
            for o, by_k in by_o.items():
                vals = [v for v in by_k.values() if v is not None]
                assert vals and all(v == 0.0 for v in vals), (key, g, o)
    tp = pd.read_parquet(tmp_path / "truth_participants.parquet")
    eff = tp.drop(columns=["person_id", "ref_month"])
    assert ((eff == 0) | eff.isna()).all().all()


def test_shipped_truth_has_a_clearly_negative_effect_on_public_support():
    truth = json.loads((SHIPPED / "truth.json").read_text("utf-8"))
    assert set(truth) >= {"estimand", "seed", "persons", "effect_scale", "att", "att_cumulative", "counts"}
    assert set(truth) >= {"estimand_not_now", "att_not_now", "att_cumulative_not_now"}
    att = truth["att"]
    assert att["all"]["public_support"]["12"] < -0.05
    assert att["all"]["self_support"]["12"] > 0.05
    assert att["all"]["benefit_sek"]["12"] < 0
    # builds up over time and is heterogeneous by type, sex and age
    assert att["all"]["public_support"]["3"] > att["all"]["public_support"]["12"]
    assert (
        att["insats_type=rehab_work_education"]["public_support"]["12"]
        < att["insats_type=assessment"]["public_support"]["12"]
    )
    assert att["sex=K"]["public_support"]["12"] < att["sex=M"]["public_support"]["12"]
    assert att["age_band=16-29"]["public_support"]["12"] < att["age_band=50-66"]["public_support"]["12"]
    assert set(truth["att"]) == set(truth["n_participants"]) == set(truth["att_cumulative"])
    assert set(att["all"]) == set(OUTCOMES) and list(att["all"]["public_support"]) == [
        str(k) for k in range(1, 25)
    ]
    assert 2000 <= truth["counts"]["linkable_persons"] <= 10000
    # anonymous participants are in the population (contamination, on by default), about 45 % of all
    assert truth["contamination"] is True and truth["pre_entry_dip"] == 0
    c = truth["counts"]
    share = c["anonymous_participants"] / (c["anonymous_participants"] + c["linkable_persons"])
    assert share == pytest.approx(truth["anonymous_share"], abs=0.03)


def test_participants_look_like_the_national_shares():
    """Marginal shares of the shipped world's linkable participants near the domain note (§1)."""
    regs = pd.read_parquet(SHIPPED / "sus_registrations.parquet")
    p = regs[regs["registration_kind"] == "person"]
    first = p.loc[pd.to_datetime(p["start_date"]).groupby(p["person_id"]).idxmin()]
    age = pd.to_datetime(first["start_date"]).dt.year - first["birth_year"]
    assert 0.5 <= (age < 30).mean() <= 0.65  # over half under 30
    assert 0.4 <= (first["sex"] == "K").mean() <= 0.6
    assert (first["education"] == "compulsory").mean() == pytest.approx(0.40, abs=0.05)
    types = p["insats_type"].value_counts(normalize=True)
    for typ, share in {"rehab_work_education": 0.53, "preparatory": 0.25, "assessment": 0.11}.items():
        assert types[typ] == pytest.approx(share, abs=0.03), typ
    for typ, share in {"other": 0.07, "preventive": 0.05}.items():
        assert types[typ] == pytest.approx(share, abs=0.02), typ
    support = first["support_at_start"]
    assert (~support.isin(["none", "student_aid"])).mean() == pytest.approx(0.90, abs=0.05)
    assert support.str.contains("social_assistance").mean() == pytest.approx(0.40, abs=0.08)
    ended = p[p["end_date"].notna()]
    days = (pd.to_datetime(ended["end_date"]) - pd.to_datetime(ended["start_date"])).dt.days
    assert 0.45 <= (days < 183).mean() <= 0.62  # about half end within 6 months
    assert (days > 730).mean() < 0.06  # few last over 2 years
    costs = pd.read_parquet(SHIPPED / "insats_costs.parquet")
    person_costs = costs[costs["insats_id"].isin(regs["insats_id"])]["cost_sek"].sum()
    assert person_costs / len(regs) == pytest.approx(82_000, rel=0.15)


def test_naive_comparison_is_biased_by_selection(small):
    """Participants vs all non-participants on public support at 12 months misses the truth by many SEs."""
    res, out, t = small
    tp = pd.read_parquet(out / "truth_participants.parquet")
    latent = latent_person_months(SMALL)
    ps = latent.set_index(["person_id", "month"])["public_support"]
    tp = tp[tp["public_support_m12"].notna()]
    m12 = mo.from_index(mo.to_index(tp["ref_month"]) + 12)
    y_t = ps.reindex(pd.MultiIndex.from_arrays([tp["person_id"], m12])).fillna(0.0).to_numpy()
    # non-participants resident in the same calendar months (months without activity are zeros)
    pop = t["population"]
    non = pop.loc[
        ~pop["person_id"].isin(tp["person_id"]) & pop["death_date"].isna() & pop["emigration_date"].isna()
    ]
    months = pd.Series(m12).value_counts()
    y_c = []
    for month, _ in months.items():
        y_c.append(ps.reindex(pd.MultiIndex.from_product([non["person_id"], [month]])).fillna(0.0).mean())
    naive = y_t.mean() - np.average(y_c, weights=months.to_numpy())
    se = np.sqrt(y_t.var(ddof=1) / len(y_t))
    truth = res.truth["att"]["all"]["public_support"]["12"]
    assert truth < 0 < naive
    assert (naive - truth) / se > 5


# ------------------------------------------------------------------------------------------------- options
def test_config_errors_are_actionable(tmp_path):
    with pytest.raises(ConfigError, match=r"--persons must be at least 1, got 0"):
        generate(tmp_path, SynthConfig(persons=0))
    with pytest.raises(ConfigError, match=r"--start must be a month YYYY-MM, got '2016-13'"):
        generate(tmp_path, SynthConfig(start="2016-13"))
    with pytest.raises(ConfigError, match=r"the window 2016-01..2016-06 must span at least 12 months"):
        generate(tmp_path, SynthConfig(end="2016-06"))
    with pytest.raises(ConfigError, match=r"--effect-scale must be a finite number >= 0, got -1"):
        generate(tmp_path, SynthConfig(effect_scale=-1))
    with pytest.raises(ConfigError, match=r"--format must be one of parquet, csv"):
        generate(tmp_path, SynthConfig(persons=10), "xlsx")  # type: ignore[arg-type]


def test_contamination_makes_anonymous_participants_ordinary_residents(tmp_path):
    """With contamination (default) a person-level share of the participants is registered anonymously: they are
    in the population with their ordinary registers, their registrations have no person_id, they are left out of
    the truth; switched off, the same world has every participant linkable and the anonymous registrations of
    persons outside the population."""
    on = generate(tmp_path / "on", SynthConfig(persons=4000, seed=21))
    off = generate(tmp_path / "off", SynthConfig(persons=4000, seed=21, contamination=False))
    t_on = {t: pd.read_parquet(tmp_path / "on" / f"{t}.parquet") for t in TABLES}
    t_off = {t: pd.read_parquet(tmp_path / "off" / f"{t}.parquet") for t in TABLES}
    for t in ("population", "benefit_spells", "social_assistance", "earnings"):
        pd.testing.assert_frame_equal(t_on[t], t_off[t])  # the same world: only who is linkable differs
    anon = pd.read_parquet(tmp_path / "on" / "truth_anonymous.parquet")
    assert len(anon) == on.truth["counts"]["anonymous_participants"] > 0
    assert len(pd.read_parquet(tmp_path / "off" / "truth_anonymous.parquet")) == 0
    assert off.truth["counts"]["anonymous_participants"] == 0
    # every participant of the world without contamination is linkable; with it, 45 % of them are anonymous
    n_all = off.truth["counts"]["linkable_persons"]
    assert on.truth["counts"]["linkable_persons"] + len(anon) == n_all
    assert len(anon) / n_all == pytest.approx(0.45, abs=0.05)
    # anonymous participants are residents with ordinary histories, never person-registered
    pop = t_on["population"]
    assert set(anon["person_id"]) <= set(pop["person_id"])
    regs = t_on["sus_registrations"]
    assert not set(anon["person_id"]) & set(regs["person_id"].dropna())
    assert set(anon["person_id"]) & set(t_on["benefit_spells"]["person_id"])
    # each anonymous participant's first start is the start month of an anonymous registration
    a = regs[regs["registration_kind"] == "anonymous"]
    starts = set(pd.to_datetime(a["start_date"]).dt.strftime("%Y-%m"))
    assert set(anon["ref_month"]) <= starts
    # the truth is about the linkable participants only: they are those of the world without contamination
    tp_on = pd.read_parquet(tmp_path / "on" / "truth_participants.parquet")
    tp_off = pd.read_parquet(tmp_path / "off" / "truth_participants.parquet").set_index("person_id")
    assert not set(tp_on["person_id"]) & set(anon["person_id"])
    pd.testing.assert_frame_equal(
        tp_on.set_index("person_id"), tp_off.loc[tp_on["person_id"]], check_names=False
    )
    # without contamination the anonymous registrations belong to nobody in the population
    assert off.truth["counts"]["anonymous_registrations"] > 0
    assert on.truth["counts"]["anonymous_registrations"] >= len(anon)


def test_pre_entry_dip_enters_on_the_register_status_of_the_last_months(tmp_path):
    """The dip's entry term reads the main source of support exactly as panel.history_features does (the
    generator's rule equals the panel's on every person-month), and it moves entry towards persons who just
    fell sick or unemployed, keeping the number of participants about the same."""
    from finsam_effekt import panel
    from finsam_effekt.schema import SUPPORT_SOURCES
    from finsam_effekt.synth.world import main_source

    cfg = SynthConfig(persons=1500, seed=8, start="2019-01", end="2021-12", pre_entry_dip=1.0)
    latent = latent_person_months(cfg)
    out = tmp_path / "dip"
    res = generate(out, cfg)
    tables = {t: pd.read_parquet(out / f"{t}.parquet") for t in TABLES}
    pm = panel.person_months(
        tables["benefit_spells"], tables["social_assistance"], tables["earnings"], tables["population"],
        end_month=cfg.end,
    )  # fmt: skip
    # the source of month m, read by the panel as source_u1 at u = m + 1
    sample = latent.sample(3000, random_state=1).reset_index(drop=True)
    pairs = pd.DataFrame(
        {"person_id": sample["person_id"], "ref_month": mo.from_index(mo.to_index(sample["month"]) + 1)}
    )
    feats = panel.history_features(pairs, pm)
    gen = np.asarray(SUPPORT_SOURCES)[main_source({o: sample[o].to_numpy() for o in OUTCOMES}, THRESHOLD)]
    assert (feats["source_u1"].to_numpy() == gen).all()
    assert len(set(gen)) >= 5
    # entry on a fresh spell of sickness or a-kassa is more common with the dip than without
    plain = generate(tmp_path / "plain", SynthConfig(persons=1500, seed=8, start="2019-01", end="2021-12"))
    n_dip = res.truth["counts"]["linkable_persons"] + res.truth["counts"]["anonymous_participants"]
    n_plain = plain.truth["counts"]["linkable_persons"] + plain.truth["counts"]["anonymous_participants"]
    assert 0.75 < n_dip / n_plain < 1.33

    def sources_before_start(folder):
        regs = pd.read_parquet(folder / "sus_registrations.parquet")
        first = regs[regs["registration_kind"] == "person"].groupby("person_id")["start_date"].min()
        keys = pd.DataFrame(
            {"person_id": first.index, "ref_month": pd.to_datetime(first).dt.strftime("%Y-%m").to_numpy()}
        )
        t = {n: pd.read_parquet(folder / f"{n}.parquet") for n in TABLES}
        pmf = panel.person_months(
            t["benefit_spells"], t["social_assistance"], t["earnings"], t["population"], end_month=cfg.end
        )
        return panel.history_features(keys, pmf)["source_u1"].value_counts(normalize=True)

    d, p = sources_before_start(out), sources_before_start(tmp_path / "plain")
    fresh = ["sickness", "unemployment"]
    assert d.reindex(fresh).fillna(0).sum() > p.reindex(fresh).fillna(0).sum() + 0.05


def test_mess_switches_off_without_changing_the_world(tmp_path):
    clean = Mess(**{f: False for f in Mess.__dataclass_fields__})
    res = generate(tmp_path / "clean", SynthConfig(persons=800, seed=3, mess=clean))
    messy = generate(tmp_path / "messy", SynthConfig(persons=800, seed=3))
    c = {t: pd.read_parquet(tmp_path / "clean" / f"{t}.parquet") for t in TABLES}
    assert res.truth["att"] == messy.truth["att"]  # the same world, only the registers differ
    assert res.truth["counts"]["anonymous_registrations"] == res.truth["counts"]["double_registrations"] == 0
    assert len(c["sus_volume"]) == 0
    assert not c["benefit_spells"].duplicated().any() and c["benefit_spells"]["to_date"].notna().all()
    assert c["sus_registrations"]["end_date"].notna().all()
    m = {t: pd.read_parquet(tmp_path / "messy" / f"{t}.parquet") for t in ("population", "earnings")}
    for t in ("population", "earnings"):
        pd.testing.assert_frame_equal(c[t], m[t])


def test_cli_writes_the_world_in_a_format_with_its_mapping(tmp_path):
    from typer.testing import CliRunner

    from finsam_effekt.cli import app

    result = CliRunner().invoke(
        app,
        [
            "synth",
            "--out",
            str(tmp_path),
            "--persons",
            "300",
            "--seed",
            "9",
            "--format",
            "agency-csv",
            "--effect-scale",
            "0.5",
            "--start",
            "2019-01",
            "--end",
            "2021-12",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "true ATT" in result.output
    for t in TABLES:
        assert (tmp_path / f"{t}.csv").exists()
    head = (tmp_path / "benefit_spells.csv").read_text("latin-1").splitlines()[0]
    assert head == "LopNr;FORMAN;FROM_DATUM;TOM_DATUM;OMF;BELOPP"
    truth = json.loads((tmp_path / "truth.json").read_text("utf-8"))
    assert truth["effect_scale"] == 0.5 and truth["window"] == ["2019-01", "2021-12"]
    assert (tmp_path / "mapping.yaml").exists() and (tmp_path / "README.md").exists()


# ------------------------------------------------------------------------------------------------- determinism
@pytest.mark.slow
def test_shipped_world_is_regenerated_identically(tmp_path):
    """The README's command regenerates byte-identical files (hashes of every file)."""
    truth = json.loads((SHIPPED / "truth.json").read_text("utf-8"))
    cfg = SynthConfig(
        persons=truth["persons"],
        seed=truth["seed"],
        start=truth["window"][0],
        end=truth["window"][1],
        effect_scale=truth["effect_scale"],
        hidden_confounding=truth["hidden_confounding"],
        contamination=truth["contamination"],
        anonymous_share=truth["anonymous_share"],
        pre_entry_dip=truth["pre_entry_dip"],
    )
    assert cfg.command() in (SHIPPED / "README.md").read_text("utf-8")
    generate(tmp_path, cfg)
    shipped = {k: v for k, v in file_hashes(SHIPPED).items()}
    assert file_hashes(tmp_path) == shipped


def test_parallel_workers_write_identical_files(tmp_path, monkeypatch):
    """Chunks simulated by worker processes are written in order: byte-identical to one process."""
    import finsam_effekt.synth.generator as generator

    monkeypatch.setattr(generator, "CHUNK_PERSONS", 250)  # 3 chunks, simulated by the worker processes
    cfg = SynthConfig(persons=700, seed=4, start="2020-01", end="2021-12")
    generate(tmp_path / "one", cfg)
    generate(tmp_path / "two", cfg, workers=2)
    assert file_hashes(tmp_path / "one") == file_hashes(tmp_path / "two")
    # the tables, mapping.yaml, truth.json, truth_participants.parquet, truth_anonymous.parquet and README.md
    assert len(file_hashes(tmp_path / "one")) == len(TABLES) + 5
