"""Person-month panel, history features, horizon outcomes and the path summary (finsam_effekt.panel, issue 5).

Every hand-computed case writes out its arithmetic. Dates are inclusive: a spell 01-15..01-31 has 17 days.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finsam_effekt import panel, tables
from finsam_effekt.errors import InputError
from finsam_effekt.schema import OUTCOMES, SPELL_GROUPS

THR = 10_000.0


def spells(*rows) -> pd.DataFrame:
    """rows: (person, benefit, from, to or None, extent, amount)."""
    df = pd.DataFrame(rows, columns=["person_id", "benefit", "from_date", "to_date", "extent", "amount_sek"])
    df["from_date"] = pd.to_datetime(df["from_date"])
    df["to_date"] = pd.to_datetime(df["to_date"])
    df["extent"] = df["extent"].astype(float)
    df["amount_sek"] = df["amount_sek"].astype(float)
    return df


def monthly(*rows, value="amount_sek") -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["person_id", "month", value])
    df[value] = df[value].astype(float)
    return df


EMPTY_SA = monthly()
EMPTY_EARN = monthly(value="earnings_sek")


def population(*rows) -> pd.DataFrame:
    """rows: (person, sex, birth_year, kommun, emigration_date, death_date)."""
    df = pd.DataFrame(
        rows, columns=["person_id", "sex", "birth_year", "kommun", "emigration_date", "death_date"]
    )
    df["education"] = "compulsory"
    df["birth_region"] = "sweden"
    df["immigration_date"] = pd.NaT
    df["emigration_date"] = pd.to_datetime(df["emigration_date"])
    df["death_date"] = pd.to_datetime(df["death_date"])
    return df


def pm(sp, sa=EMPTY_SA, ea=EMPTY_EARN, pop=None, **kw) -> pd.DataFrame:
    kw.setdefault("end_month", "2024-12")
    return panel.person_months(sp, sa, ea, pop, **kw)


def cell(df: pd.DataFrame, person: str, month: str, col: str) -> float:
    row = df[(df.person_id == person) & (df.month == month)]
    assert len(row) == 1, (person, month, len(row))
    return float(row[col].iloc[0])


# --------------------------------------------------------------------------------------------- panel rules
def test_panel_columns_follow_the_contract():
    out = pm(spells(("a", "SJP", "2024-01-01", "2024-01-31", 1, 31)))
    assert tuple(out.columns) == panel.PANEL_COLUMNS
    assert out["public_support"].dtype == np.int64


def test_case01_one_day_spell_on_leap_day():
    # 2024-02-29..2024-02-29 = 1 day; × extent 1 = 1 nettodag; 250 SEK over 1 day = 250 SEK in February.
    out = pm(spells(("a", "SJP", "2024-02-29", "2024-02-29", 1, 250)))
    assert list(out.month) == ["2024-02"]
    assert cell(out, "a", "2024-02", "days_sickness") == 1.0
    assert cell(out, "a", "2024-02", "sek_sickness") == 250.0


def test_case02_leap_and_non_leap_february():
    # 2023-02-01..2023-03-01: February 2023 has 28 days, March 1 day -> 29 days, 2900 SEK = 100/day.
    # 2024-02-01..2024-03-01: February 2024 has 29 days (leap), March 1 day -> 30 days, 3000 SEK = 100/day.
    out = pm(
        spells(
            ("a", "SA", "2023-02-01", "2023-03-01", 1, 2900),
            ("b", "SA", "2024-02-01", "2024-03-01", 1, 3000),
        )
    )
    assert cell(out, "a", "2023-02", "days_disability") == 28.0
    assert cell(out, "a", "2023-03", "days_disability") == 1.0
    assert cell(out, "a", "2023-02", "sek_disability") == pytest.approx(2800.0)
    assert cell(out, "b", "2024-02", "days_disability") == 29.0
    assert cell(out, "b", "2024-02", "sek_disability") == pytest.approx(2900.0)
    assert cell(out, "b", "2024-03", "sek_disability") == pytest.approx(100.0)


def test_case03_spell_on_month_and_year_boundaries():
    # 2023-12-31..2024-01-01 = 2 days: 1 in Dec 2023, 1 in Jan 2024; 200 SEK -> 100 + 100; extent 0.5 -> 0.5 each.
    out = pm(spells(("a", "AKA", "2023-12-31", "2024-01-01", 0.5, 200)))
    assert list(out.month) == ["2023-12", "2024-01"]
    assert list(out.days_unemployment) == [0.5, 0.5]
    assert list(out.sek_unemployment) == [100.0, 100.0]


def test_case04_extent_quarter_time_over_april():
    # 2024-04-01..2024-04-30 = 30 days × 0.25 = 7.5 nettodagar.
    out = pm(spells(("a", "AKS", "2024-04-01", "2024-04-30", 0.25, 3000)))
    assert cell(out, "a", "2024-04", "days_labour_market") == 7.5
    assert cell(out, "a", "2024-04", "sek_labour_market") == 3000.0


def test_case05_overlap_within_group_is_capped_between_groups_not():
    # January 2024 (31 days): SJP full month × 1 = 31, RHP 01-10..01-20 = 11 days × 0.5 = 5.5;
    # both are sickness -> 36.5 capped at 31. AKA full month = 31 in its own group (no cap across groups).
    # SEK is not capped: 3100 + 550 = 3650.
    out = pm(
        spells(
            ("a", "SJP", "2024-01-01", "2024-01-31", 1, 3100),
            ("a", "RHP", "2024-01-10", "2024-01-20", 0.5, 550),
            ("a", "AKA", "2024-01-01", "2024-01-31", 1, 1000),
        )
    )
    assert cell(out, "a", "2024-01", "days_sickness") == 31.0
    assert cell(out, "a", "2024-01", "sek_sickness") == 3650.0
    assert cell(out, "a", "2024-01", "days_unemployment") == 31.0
    assert cell(out, "a", "2024-01", "benefit_sek") == 4650.0


def test_case06_open_spell_runs_to_end_of_data():
    # from 2024-11-15, open, end of data 2024-12: Nov 15..30 = 16 days, Dec 31 days -> 47 days; 4700 SEK = 100/day.
    out = pm(spells(("a", "SJP", "2024-11-15", None, 1, 4700)), end_month="2024-12")
    assert list(out.month) == ["2024-11", "2024-12"]
    assert list(out.days_sickness) == [16.0, 31.0]
    assert list(out.sek_sickness) == pytest.approx([1600.0, 3100.0])


def test_case07_spell_past_end_of_data_keeps_its_daily_amount():
    # 2024-12-01..2025-01-31 = 62 days, 6200 SEK = 100/day; end of data 2024-12 keeps Dec: 31 days, 3100 SEK.
    # start_month 2024-12 likewise cuts 2024-11-20..2024-12-09 (20 days, 2000 SEK) to Dec 1..9: 9 days, 900 SEK.
    out = pm(spells(("a", "SJP", "2024-12-01", "2025-01-31", 1, 6200)), end_month="2024-12")
    assert list(out.month) == ["2024-12"]
    assert cell(out, "a", "2024-12", "sek_sickness") == pytest.approx(3100.0)
    out = pm(spells(("b", "AKS", "2024-11-20", "2024-12-09", 1, 2000)), start_month="2024-12")
    assert list(out.month) == ["2024-12"]
    assert cell(out, "b", "2024-12", "days_labour_market") == 9.0
    assert cell(out, "b", "2024-12", "sek_labour_market") == pytest.approx(900.0)


def test_case08_identical_duplicates_count_once():
    # The identical row twice counts once: 10 days. A row differing only in extent is another spell: 10 × 0.5 = 5.
    row = ("a", "SJP", "2024-03-01", "2024-03-10", 1, 1000)
    out = pm(spells(row, row))
    assert cell(out, "a", "2024-03", "days_sickness") == 10.0
    assert cell(out, "a", "2024-03", "sek_sickness") == 1000.0
    out = pm(spells(row, ("a", "SJP", "2024-03-01", "2024-03-10", 0.5, 1000)))
    assert cell(out, "a", "2024-03", "days_sickness") == 15.0
    # Social assistance: identical rows once (500); two different rows in one month are summed (500 + 300).
    sa = monthly(("a", "2024-05", 500), ("a", "2024-05", 500), ("b", "2024-05", 500), ("b", "2024-05", 300))
    out = pm(spells(), sa)
    assert cell(out, "a", "2024-05", "social_assistance_sek") == 500.0
    assert cell(out, "b", "2024-05", "social_assistance_sek") == 800.0


def test_case09_censoring_from_death_or_emigration_month():
    # a emigrates 2024-03-15: Jan, Feb kept; Mar (the emigration month) on censored.
    # b dies 2024-02-01 and emigrates (record error) 2024-06-01: the earlier, Feb, censors from Feb.
    sp = spells(("a", "SA", "2024-01-01", "2024-06-30", 1, 0), ("b", "SA", "2024-01-01", "2024-06-30", 1, 0))
    pop = population(
        ("a", "K", 1990, "0180", "2024-03-15", None), ("b", "M", 1990, "0180", "2024-06-01", "2024-02-01")
    )
    out = pm(sp, pop=pop)
    assert list(out[out.person_id == "a"].month) == ["2024-01", "2024-02"]
    assert list(out[out.person_id == "b"].month) == ["2024-01"]


def test_case10_derived_public_and_self_support():
    # 2024-01: earnings 10 000 (= threshold), no support -> self_support 1, public 0, benefit_sek 0.
    # 2024-02: earnings 10 000 and social assistance 1 SEK -> public 1, self 0, benefit_sek 1.
    # 2024-03: earnings 9 999.99 -> neither (a row: it has activity). 2024-04: a zero SA row -> no row (no activity).
    ea = monthly(
        ("a", "2024-01", THR), ("a", "2024-02", THR), ("a", "2024-03", 9999.99), value="earnings_sek"
    )
    sa = monthly(("a", "2024-02", 1.0), ("a", "2024-04", 0.0))
    out = pm(spells(), sa, ea)
    assert list(out.month) == ["2024-01", "2024-02", "2024-03"]
    assert list(out.public_support) == [0, 1, 0]
    assert list(out.self_support) == [1, 0, 0]
    assert list(out.benefit_sek) == [0.0, 1.0, 0.0]
    # A different threshold (configurable) changes self_support only.
    out = pm(spells(), sa, ea, self_support_threshold=9000.0)
    assert list(out.self_support) == [1, 0, 1]


def test_case11_sparse_months_without_activity_are_absent():
    # Spell in Jan and one in Mar: Feb has nothing -> no row (implicit zero).
    out = pm(
        spells(("a", "AE", "2024-01-05", "2024-01-06", 1, 20), ("a", "AE", "2024-03-05", "2024-03-05", 1, 10))
    )
    assert list(out.month) == ["2024-01", "2024-03"]
    assert list(out.days_disability) == [2.0, 1.0]


def test_case12_benefit_codes_map_to_groups():
    # Each code 1 day in June 2024: SJP, RHP sickness (2), SA, AE disability (2), AKS, UTV labour market (2), AKA (1).
    codes = ["SJP", "RHP", "SA", "AE", "AKS", "UTV", "AKA"]
    out = pm(spells(*[("a", c, "2024-06-03", "2024-06-03", 1, 10) for c in codes]))
    assert [cell(out, "a", "2024-06", f"days_{g}") for g in SPELL_GROUPS] == [2.0, 2.0, 2.0, 1.0]
    assert cell(out, "a", "2024-06", "benefit_sek") == 70.0


def test_inputs_as_arrow_relation_and_parquet_agree(tmp_path):
    sp = spells(
        ("a", "SJP", "2024-01-15", "2024-03-10", 0.75, 5600), ("b", "AKA", "2024-02-01", None, 1, 900)
    )
    sa = monthly(("a", "2024-02", 700))
    ea = monthly(("b", "2024-03", 25000), value="earnings_sek")
    ref = pm(sp, sa, ea)
    out = pm(pa.Table.from_pandas(sp), pa.Table.from_pandas(sa), pa.Table.from_pandas(ea))
    pd.testing.assert_frame_equal(out, ref)
    con = duckdb.connect()
    rel = con.from_df(sp)
    pd.testing.assert_frame_equal(pm(rel, sa, ea, con=con), ref)
    sp.to_parquet(tmp_path / "sp.parquet")
    pd.testing.assert_frame_equal(pm(tmp_path / "sp.parquet", sa, ea), ref)
    path = panel.person_months(sp, sa, ea, end_month="2024-12", parquet_path=tmp_path / "panel.parquet")
    back = pd.read_parquet(path).sort_values(["person_id", "month"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(back, ref, check_dtype=False)
    # Partitioned by hash(person_id): the parts together are the same panel; readers accept the directory.
    parts = panel.person_months(
        sp, sa, ea, end_month="2024-12", parquet_path=tmp_path / "parts", partitions=3
    )
    assert len(list(parts.glob("part-*.parquet"))) == 3
    # each part sorted by (person, month) and a set of persons of its own: the stream of panel.stream reads it
    files = [pd.read_parquet(f) for f in sorted(parts.glob("part-*.parquet"))]
    for f in files:
        assert f[["person_id", "month"]].apply(tuple, axis=1).is_monotonic_increasing
    assert sum(f["person_id"].nunique() for f in files) == ref["person_id"].nunique()
    back = duckdb.sql(f"SELECT * FROM read_parquet('{parts}/*.parquet') ORDER BY person_id, month").df()
    pd.testing.assert_frame_equal(back, ref, check_dtype=False)
    pairs = pd.DataFrame({"person_id": ["a", "b"], "ref_month": ["2024-04", "2024-04"]})
    pd.testing.assert_frame_equal(panel.history_features(pairs, parts), panel.history_features(pairs, ref))
    with pytest.raises(InputError, match="partitions must be 1, or > 1 together with parquet_path"):
        panel.person_months(sp, sa, ea, end_month="2024-12", partitions=2)
    lazy = panel.person_months(sp, sa, ea, end_month="2024-12", con=con, output="relation")
    assert lazy.aggregate("count(*)").fetchone()[0] == len(ref)


def test_invalid_inputs_raise_actionable_errors():
    with pytest.raises(InputError, match=r"extent \(omfattning\) must satisfy 0 < extent <= 1 \(1 row\)"):
        pm(spells(("a", "SJP", "2024-01-01", "2024-01-02", 50, 1)))
    with pytest.raises(InputError, match="unknown benefit code"):
        pm(spells(("a", "XYZ", "2024-01-01", "2024-01-02", 1, 1)))
    with pytest.raises(InputError, match="to_date before from_date"):
        pm(spells(("a", "SJP", "2024-01-05", "2024-01-02", 1, 1)))
    with pytest.raises(InputError, match="benefit_spells lacks column"):
        pm(spells(("a", "SJP", "2024-01-01", "2024-01-02", 1, 1)).drop(columns="extent"))
    with pytest.raises(InputError, match="end_month must be a month as 'YYYY-MM'"):
        pm(spells(), end_month="2024-13")
    with pytest.raises(InputError, match="self_support_threshold must be a positive"):
        pm(spells(), self_support_threshold=0)
    # pairs whose keys cannot be read as text (a nested column from a bad Parquet export) name the column
    nested = pa.table({"person_id": ["a"], "ref_month": pa.array([[2024, 3]], pa.list_(pa.int64()))})
    with pytest.raises(InputError, match=r"pairs: column ref_month must be text \(got list<item: int64>\)\."):
        panel.history_features(nested, spells=spells(("a", "SJP", "2024-01-01", "2024-01-02", 1, 1)),
                               end_month="2024-06")  # fmt: skip


# --------------------------------------------------------------------------------------- a treated person
# Person "t" starts an insats in 2024-07 (u). Registers:
#   SJP 2024-04-16..2024-06-30 extent 1, 7600 SEK (76 days: Apr 15, May 31, Jun 30 -> 100 SEK/day)
#   AKS 2023-09-01..2023-10-31 extent 0.5, 6100 SEK (61 days: Sep 30, Oct 31 -> 100 SEK/day)
#   social assistance 2024-01: 4000, 2024-06: 2000
#   earnings 2023-08: 22 000 (work), 2024-02: 5 000 (not work), 2024-09: 15 000 and 2024-10: 30 000
#   born 1994, woman, kommun 0180 (förbund F01); dies 2024-11-20 (censored from 2024-11); data end 2024-12.
T_SPELLS = spells(
    ("t", "SJP", "2024-04-16", "2024-06-30", 1, 7600),
    ("t", "AKS", "2023-09-01", "2023-10-31", 0.5, 6100),
    ("c", "AKA", "2024-05-01", "2024-05-31", 1, 9300),
)
T_SA = monthly(("t", "2024-01", 4000), ("t", "2024-06", 2000))
T_EARN = monthly(
    ("t", "2023-08", 22000),
    ("t", "2024-02", 5000),
    ("t", "2024-09", 15000),
    ("t", "2024-10", 30000),
    value="earnings_sek",
)
T_POP = population(("t", "K", 1994, "0180", None, "2024-11-20"), ("c", "M", 1960, "0999", None, None))
T_KF = pd.DataFrame({"kommun": ["0180"], "forbund_id": ["F01"]})


def t_panel() -> pd.DataFrame:
    return pm(T_SPELLS, T_SA, T_EARN, T_POP)


def test_treated_person_history_by_hand():
    pairs = pd.DataFrame({"person_id": ["t", "c"], "ref_month": ["2024-07", "2024-06"], "treated": [1, 0]})
    out = panel.history_features(pairs, t_panel(), T_POP, T_KF)
    assert list(out.columns) == ["person_id", "ref_month", "treated", *panel.FEATURE_COLUMNS]
    t = out.iloc[0]
    # u = 2024-07; last 3 months Apr-Jun, 12 months 2023-07..2024-06, 24 months 2022-07..2024-06.
    # Public support months: Sep, Oct 2023 (AKS), Jan 2024 (SA), Apr, May, Jun 2024 (SJP; Jun also SA) -> 6.
    assert (t.ps_months_3, t.ps_months_12, t.ps_months_24) == (3, 6, 6)
    assert t.days_sickness_3 == 15 + 31 + 30 == 76
    assert t.days_labour_market_3 == 0 and t.days_labour_market_12 == (30 + 31) * 0.5 == 30.5
    assert t.sa_months_12 == 2 and t.sa_months_24 == 2
    # benefit SEK in 12 months: SJP 7600 + AKS 6100 + SA 6000 = 19 700; earnings 22 000 + 5 000 = 27 000.
    assert t.benefit_sek_12 == pytest.approx(19700.0)
    assert t.earnings_12 == 27000.0
    # Only 2023-08 reaches the threshold: work_months_12 = 1, months_since_work = 2024-07 − 2023-08 = 11.
    assert t.work_months_12 == 1 and t.months_since_work == 11
    assert (t.age, t.sex, t.kommun, t.forbund_id) == (2024 - 1994, "K", "0180", "F01")
    c = out.iloc[1]
    # c at u = 2024-06: AKA May 2024 = 31 days in the last 3 months; no work in 24 months -> 24 + 1 = 25.
    assert c.days_unemployment_3 == 31.0 and c.ps_months_3 == 1 and c.months_since_work == 25
    assert c.forbund_id is None and c.age == 64


def test_status_month_by_month_by_hand():
    """``ps_u{k}`` and ``source_u{k}`` for the treated person t (u = 2024-07) and control c (u = 2024-06)."""
    pairs = pd.DataFrame({"person_id": ["t", "c"], "ref_month": ["2024-07", "2024-06"]})
    out = panel.history_features(pairs, t_panel(), T_POP, T_KF)
    t, c = out.iloc[0], out.iloc[1]
    # u−1 = Jun: SJP 30 days × 100 = 3 000 kr against social assistance 2 000 kr -> sickness.
    # u−2 = May: SJP 31 days; u−3 = Apr: SJP 15 days -> sickness. u−4 = Mar: nothing -> none.
    # u−5 = Feb: earnings 5 000 < 10 000 and no support -> none. u−6 = Jan: social assistance 4 000 -> it.
    assert [t[f"ps_u{k}"] for k in range(1, 7)] == [1, 1, 1, 0, 0, 1]
    assert [t[f"source_u{k}"] for k in range(1, 7)] == [
        "sickness",
        "sickness",
        "sickness",
        "none",
        "none",
        "social_assistance",
    ]
    # c at u = 2024-06: a-kassa in May (u−1), nothing before.
    assert c.ps_u1 == 1 and c.source_u1 == "unemployment"
    assert [c[f"source_u{k}"] for k in range(2, 7)] == ["none"] * 5 and c.ps_u2 == 0


def test_main_source_ties_work_and_amounts():
    """The group with the most kronor wins; equal kronor go to the most nettodagar, then to the group listed first
    (sickness before unemployment); earnings at the threshold without support are work, with support they are not."""
    sp = spells(
        # March 2024 (31 days). "tie": SJP and AKA both half time, 1 550 kr each -> sickness (listed first).
        ("tie", "SJP", "2024-03-01", "2024-03-31", 0.5, 1550),
        ("tie", "AKA", "2024-03-01", "2024-03-31", 0.5, 1550),
        # "days": same kronor, but a-kassa full time (31 nettodagar against 15.5) -> unemployment.
        ("days", "SJP", "2024-03-01", "2024-03-31", 0.5, 1550),
        ("days", "AKA", "2024-03-01", "2024-03-31", 1.0, 1550),
        # "sa": social assistance 5 000 kr beats sickness 1 000 kr.
        ("sa", "SJP", "2024-03-01", "2024-03-10", 1.0, 1000),
        # "ws": earnings 12 000 but also sickness benefit -> sickness, not work.
        ("ws", "SJP", "2024-03-01", "2024-03-05", 1.0, 500),
    )
    sa = monthly(("sa", "2024-03", 5000))
    ea = monthly(
        ("w", "2024-03", 10000), ("ws", "2024-03", 12000), ("low", "2024-03", 9999), value="earnings_sek"
    )
    who = ["tie", "days", "sa", "w", "ws", "low"]
    pairs = pd.DataFrame({"person_id": who, "ref_month": "2024-04"})
    out = panel.history_features(pairs, pm(sp, sa, ea))
    assert out["source_u1"].tolist() == [
        "sickness",
        "unemployment",
        "social_assistance",
        "work",
        "sickness",
        "none",
    ]
    assert out["ps_u1"].tolist() == [1, 1, 1, 0, 1, 0]
    # with a higher threshold the 10 000 kr month is no longer work
    out = panel.history_features(pairs, pm(sp, sa, ea), self_support_threshold=10_001.0)
    assert out["source_u1"].tolist()[3] == "none"


def test_pre_period_outcomes_by_hand():
    """The main outcomes at u−1, u−2, u−3, u−6, u−12 and their mean over u−24..u−1 (person t, u = 2024-07)."""
    pairs = pd.DataFrame({"person_id": ["t", "x"], "ref_month": ["2024-07", "2024-07"]}, index=[5, 9])
    out = panel.pre_period_outcomes(pairs, t_panel())
    assert list(out.columns) == ["person_id", "ref_month", *panel.pre_period_columns()]
    assert list(out.index) == [5, 9]
    t = out.iloc[0]
    # public support: Jun (u−1), May (u−2), Apr (u−3) sickness, Jan (u−6) social assistance; 2023-07 (u−12) none.
    assert [t[f"public_support_u{k}"] for k in (1, 2, 3, 6, 12)] == [1, 1, 1, 1, 0]
    # six months with public support in 2022-07..2024-06 (see test_treated_person_history_by_hand)
    assert t.public_support_mean24 == pytest.approx(6 / 24)
    # benefit SEK at u−1 (June): SJP 30 days × 100 + social assistance 2 000; the 24-month total 19 700 kr
    assert t.benefit_sek_u1 == pytest.approx(5000.0) and t.benefit_sek_u6 == pytest.approx(4000.0)
    assert t.benefit_sek_mean24 == pytest.approx(19700 / 24)
    # earnings: 22 000 in 2023-08 (u−11, self-supporting) and 5 000 in 2024-02 (u−5): neither month is read
    # singly, both are in the mean
    assert t.earnings_sek_u12 == 0 and t.earnings_sek_mean24 == pytest.approx(27000 / 24)
    assert t.self_support_mean24 == pytest.approx(1 / 24) and t.self_support_u1 == 0
    # a person without any register row has zeros
    assert (out.iloc[1][panel.pre_period_columns()] == 0).all()
    with pytest.raises(InputError, match="months before u must be at least 1"):
        panel.pre_period_outcomes(pairs, t_panel(), months_before=(0, 1))


def test_history_never_uses_the_reference_month():
    # Earnings in u itself (2024-09 for u = 2024-09) are not history; those of 2024-10 are in the future.
    pairs = pd.DataFrame({"person_id": ["t"], "ref_month": ["2024-09"]})
    out = panel.history_features(pairs, t_panel(), T_POP)
    # 12 months 2023-09..2024-08: earnings only 2024-02 (5 000); 2023-08 is 13 months back.
    assert out.earnings_12.iloc[0] == 5000.0 and out.work_months_12.iloc[0] == 0
    assert out.months_since_work.iloc[0] == 2024 * 12 + 8 - (2023 * 12 + 7) == 13


def test_history_from_raw_tables_equals_from_panel():
    pairs = pd.DataFrame(
        {"person_id": ["c", "t", "t", "x"], "ref_month": ["2024-06", "2024-07", "2023-01", "2024-01"]}
    )
    a = panel.history_features(pairs, t_panel(), T_POP, T_KF)
    b = panel.history_features(
        pairs,
        None,
        T_POP,
        T_KF,
        spells=T_SPELLS,
        social_assistance=T_SA,
        earnings=T_EARN,
        end_month="2024-12",
    )
    pd.testing.assert_frame_equal(a, b)
    # A person with no register rows at all has zero history and the capped months_since_work.
    x = a.iloc[3]
    assert x.ps_months_24 == 0 and x.earnings_12 == 0.0 and x.months_since_work == 25 and pd.isna(x.sex)


def test_treated_person_horizon_outcomes_by_hand():
    pairs = pd.DataFrame({"person_id": ["t"], "ref_month": ["2024-07"]}, index=[42])
    out = panel.horizon_outcomes(pairs, (2, 3, 4, 6), t_panel(), T_POP, end_month="2024-12")
    assert list(out.index) == [42]
    r = out.iloc[0]
    # u+1 = Aug: nothing; u+2 = Sep: earnings 15 000 (self-support), u+3 = Oct: 30 000 (self-support).
    assert r.earnings_sek_m2 == 15000.0 and r.earnings_sek_cum2 == 15000.0
    assert r.self_support_m3 == 1.0 and r.self_support_cum3 == 2.0 and r.public_support_cum3 == 0.0
    assert r.earnings_sek_cum3 == 45000.0
    # Death 2024-11-20 censors from Nov = u+4: horizons 4 and 6 are NaN, not zero.
    assert np.isnan(r.earnings_sek_m4) and np.isnan(r.self_support_cum4) and np.isnan(r.benefit_sek_cum6)
    assert [f"{o}_m2" for o in OUTCOMES] == [c for c in out.columns if c.endswith("_m2")]


def test_horizons_past_end_of_data_are_censored():
    # c has no death; end of data 2024-12. u = 2024-10: u+2 = Dec observed (0), u+3 = Jan 2025 censored.
    pairs = pd.DataFrame({"person_id": ["c"], "ref_month": ["2024-10"]})
    out = panel.horizon_outcomes(pairs, (2, 3), t_panel(), T_POP, end_month="2024-12")
    assert out.public_support_m2.iloc[0] == 0.0 and np.isnan(out.public_support_m3.iloc[0])
    # u = 2024-04: u+1 = May, AKA 31 days -> days_unemployment_m1 = cum1 = 31, cum3 = 31.
    out = panel.horizon_outcomes(
        pd.DataFrame({"person_id": ["c"], "ref_month": ["2024-04"]}),
        (1, 3),
        t_panel(),
        T_POP,
        end_month="2024-12",
    )
    assert out.days_unemployment_m1.iloc[0] == 31.0 and out.days_unemployment_cum3.iloc[0] == 31.0
    assert out.sek_unemployment_m3.iloc[0] == 0.0


def test_outcome_paths_by_hand():
    pairs = pd.DataFrame({"person_id": ["t", "c"], "ref_month": ["2024-07", "2024-11"], "w": [1.5, 2.0]})
    out = panel.outcome_paths(pairs, (-1, 4), t_panel(), T_POP, end_month="2024-12")
    assert len(out) == 2 * 6
    t = out[out.person_id == "t"]
    assert list(t.rel_month) == [-1, 0, 1, 2, 3, 4]
    assert list(t.month) == ["2024-06", "2024-07", "2024-08", "2024-09", "2024-10", "2024-11"]
    # Jun: SJP 30 days + SA 2000 -> public support; Nov: death month -> censored, NaN.
    assert list(t.public_support[:5]) == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert list(t.censored) == [False] * 5 + [True]
    assert np.isnan(t.public_support.iloc[5])
    assert list(t.w) == [1.5] * 6
    c = out[out.person_id == "c"]
    assert list(c.censored) == [False, False, False, True, True, True]  # 2025-01 on is past the end of data


def test_densify_fills_zeros_and_marks_censoring():
    ranges = pd.DataFrame({"person_id": ["t"], "first_month": ["2024-06"], "last_month": ["2024-11"]})
    out = panel.densify(t_panel(), ranges, T_POP, end_month="2024-12")
    assert list(out.month) == ["2024-06", "2024-07", "2024-08", "2024-09", "2024-10", "2024-11"]
    assert list(out.earnings_sek[:5]) == [0.0, 0.0, 0.0, 15000.0, 30000.0]
    assert list(out.censored) == [False] * 5 + [True]
    assert list(out.columns) == ["person_id", "month", *panel.PANEL_COLUMNS[2:], "censored"]


def test_pairs_keep_order_columns_and_duplicates():
    pairs = pa.table(
        {"ref_month": ["2024-07", "2024-06", "2024-07"], "person_id": ["t", "c", "t"], "k": [3, 1, 2]}
    )
    out = panel.horizon_outcomes(pairs, (1,), t_panel(), T_POP, end_month="2024-12", output="arrow")
    assert isinstance(out, pa.Table)
    assert out.column_names[:3] == ["ref_month", "person_id", "k"] and out["k"].to_pylist() == [3, 1, 2]
    with pytest.raises(InputError, match="pairs already have column"):
        panel.history_features(
            pd.DataFrame({"person_id": ["t"], "ref_month": ["2024-07"], "age": [1]}), t_panel()
        )
    with pytest.raises(InputError, match="ref_month that is not 'YYYY-MM'"):
        panel.history_features(pd.DataFrame({"person_id": ["t"], "ref_month": ["2024-7"]}), t_panel())


# ----------------------------------------------------------------------------------------- properties
BENEFITS = ["SJP", "RHP", "SA", "AE", "AKS", "UTV", "AKA"]
EXTENTS = [0.25, 0.5, 0.75, 1.0]
BASE = dt.date(2020, 1, 1)


@st.composite
def sequential_spells(draw):
    """Non-overlapping spells of one person (gap >= 0 days), random benefit and extent."""
    n = draw(st.integers(1, 6))
    rows, day = [], draw(st.integers(0, 400))
    for _ in range(n):
        length = draw(st.integers(1, 120))
        start = BASE + dt.timedelta(days=day)
        end = start + dt.timedelta(days=length - 1)
        amount = float(draw(st.integers(0, 50_000)))
        rows.append(
            ("p", draw(st.sampled_from(BENEFITS)), start, end, draw(st.sampled_from(EXTENTS)), amount)
        )
        day += length + draw(st.integers(0, 60))
    return spells(*rows)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequential_spells())
def test_property_total_nettodagar_equals_days_times_extent(sp):
    # the spells end by 2020-01-01 + 400 + 6·120 + 5·60 days (2023-11): the panel must cover them all
    out = pm(sp, end_month="2024-12")
    days = ((sp.to_date - sp.from_date).dt.days + 1) * sp.extent
    total = out[[f"days_{g}" for g in SPELL_GROUPS]].to_numpy().sum()
    assert total == pytest.approx(days.sum())
    assert out[[f"sek_{g}" for g in SPELL_GROUPS]].to_numpy().sum() == pytest.approx(sp.amount_sek.sum())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequential_spells(), st.data())
def test_property_splitting_a_spell_changes_nothing(sp, data):
    i = data.draw(st.integers(0, len(sp) - 1))
    s = sp.iloc[i]
    n = (s.to_date - s.from_date).days + 1
    if n < 2:
        return
    k = data.draw(st.integers(1, n - 1))  # first piece has k days
    first = s.copy()
    second = s.copy()
    first["to_date"] = s.from_date + pd.Timedelta(days=k - 1)
    second["from_date"] = s.from_date + pd.Timedelta(days=k)
    first["amount_sek"] = s.amount_sek * k / n
    second["amount_sek"] = s.amount_sek * (n - k) / n
    split = pd.concat([sp.drop(index=sp.index[i]), pd.DataFrame([first, second])], ignore_index=True)
    a, b = pm(sp, end_month="2022-12"), pm(split, end_month="2022-12")
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, atol=1e-6)


def _shift_years(d, years: int):
    return d if pd.isna(d) else d.replace(year=d.year + years)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequential_spells(), st.integers(-3, 3))
def test_property_shifting_by_whole_months_shifts_the_panel(sp, k):
    # A shift by 48·k months (4·k years) keeps every calendar day valid (leap years recur every 4 years between
    # 1901 and 2099), so the panel must be the same, k·48 months later. Monthly tables shift by any whole month.
    shifted = sp.copy()
    shifted["from_date"] = [_shift_years(d, 4 * k) for d in sp.from_date]
    shifted["to_date"] = [_shift_years(d, 4 * k) for d in sp.to_date]
    sa = monthly(("p", "2021-03", 100.0), ("p", "2021-11", 50.0))
    shift_sa = sa.assign(month=[f"{2021 + 4 * k}-03", f"{2021 + 4 * k}-11"])
    a = pm(sp, sa, end_month="2022-12")
    b = pm(shifted, shift_sa, end_month=f"{2022 + 4 * k}-12")
    a_month = a.month.map(lambda m: f"{int(m[:4]) + 4 * k}{m[4:]}")
    pd.testing.assert_frame_equal(a.assign(month=a_month), b, check_exact=False, rtol=1e-12)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(0, 47), st.floats(1, 1e5)), min_size=1, max_size=10), st.integers(-30, 30)
)
def test_property_monthly_tables_shift_by_any_month(rows, k):
    from finsam_effekt import months

    sa = monthly(*[("p", months.from_index(2020 * 12 + m), v) for m, v in rows])
    shifted = sa.assign(month=[months.from_index(2020 * 12 + m + k) for m, _ in rows])
    a = pm(spells(), sa, end_month="2030-12")
    b = pm(spells(), shifted, end_month="2030-12")
    assert list(b.month) == [months.from_index(months.to_index(m) + k) for m in a.month]
    np.testing.assert_allclose(a.social_assistance_sek, b.social_assistance_sek)


# ---------------------------------------------------------------------- the build in chunks (issue 14)
# Pseudonyms of every kind: text order differs from number order ("10" < "9"), non-ASCII, long, with spaces.
PSEUDONYMS = ["9", "10", "p-001", "ÅSA ö", "x" * 40 + "7", "Z", "a b", "00042", "émile", "ß"]


def random_registers(seed: int, n_spells: int = 400):
    """Messy registers for the pseudonyms: overlapping, open, duplicated and out-of-window spells of every code,
    several and duplicated monthly rows, deaths and emigrations."""
    rng = np.random.default_rng(seed)
    base = np.datetime64("2022-01-01")
    start = base + rng.integers(-400, 1200, n_spells).astype("timedelta64[D]")
    length = rng.integers(1, 200, n_spells)
    to = (start + (length - 1).astype("timedelta64[D]")).astype("datetime64[ns]")
    to[rng.random(n_spells) < 0.1] = np.datetime64("NaT")
    sp = pd.DataFrame(
        {
            "person_id": rng.choice(PSEUDONYMS, n_spells),
            "benefit": rng.choice(BENEFITS, n_spells),
            "from_date": start.astype("datetime64[ns]"),
            "to_date": to,
            "extent": rng.choice(EXTENTS, n_spells),
            "amount_sek": rng.integers(0, 30_000, n_spells).astype(float) + rng.random(n_spells),
        }
    )
    sp = pd.concat([sp, sp.sample(40, random_state=seed)], ignore_index=True)

    def monthly_rows(n: int, value: str) -> pd.DataFrame:
        m = rng.integers(0, 48, n)
        df = pd.DataFrame(
            {
                "person_id": rng.choice(PSEUDONYMS, n),
                "month": [f"{2021 + x // 12}-{x % 12 + 1:02d}" for x in m],
                value: rng.choice([0.0, 500.0, 1234.5, 9999.0, 10_000.0, 25_000.0], n),
            }
        )
        return pd.concat([df, df.sample(n // 5, random_state=seed)], ignore_index=True)

    pop = population(
        *[
            (p, "K", 1980, "0180", "2024-03-15" if i % 4 == 1 else None, "2023-07-31" if i % 3 == 2 else None)
            for i, p in enumerate(PSEUDONYMS)
        ]
    )
    return sp, monthly_rows(150, "amount_sek"), monthly_rows(200, "earnings_sek"), pop


def day_by_day_panel(sp, sa, ea, pop, end_month: str, start_month: str | None = None) -> pd.DataFrame:
    """The panel rules applied day by day in plain Python: an oracle independent of the build's arithmetic."""
    end = pd.Period(end_month, "M")
    last_day = end.end_time.date()
    first_day = pd.Period(start_month, "M").start_time.date() if start_month else dt.date.min
    group = dict(zip(BENEFITS, [0, 0, 1, 1, 2, 2, 3], strict=True))  # the code -> group map of test_case12
    cells: dict[tuple[str, str], np.ndarray] = {}

    def row(p: str, m: str) -> np.ndarray:
        return cells.setdefault((p, m), np.zeros(2 * len(SPELL_GROUPS) + 2))

    for s in sp.drop_duplicates().itertuples():
        f = s.from_date.date()
        t = last_day if pd.isna(s.to_date) else s.to_date.date()
        per_day = s.amount_sek / ((t - f).days + 1)
        d = max(f, first_day)
        while d <= min(t, last_day):
            r = row(s.person_id, f"{d.year:04d}-{d.month:02d}")
            r[group[s.benefit]] += s.extent
            r[len(SPELL_GROUPS) + group[s.benefit]] += per_day
            d += dt.timedelta(days=1)
    for k, (table, col) in enumerate(((sa, "amount_sek"), (ea, "earnings_sek"))):
        for r in table.drop_duplicates().itertuples():
            if r.month <= end_month and (start_month is None or r.month >= start_month):
                row(r.person_id, r.month)[2 * len(SPELL_GROUPS) + k] += getattr(r, col)
    censor = {}
    for r in pop.itertuples():
        dates = [d for d in (r.death_date, r.emigration_date) if not pd.isna(d)]
        if dates:
            censor[r.person_id] = min(dates).strftime("%Y-%m")
    out = []
    for (p, m), v in sorted(cells.items(), key=lambda kv: (kv[0][0].encode(), kv[0][1])):
        if (p in censor and m >= censor[p]) or not v.any():
            continue
        n_days = pd.Period(m, "M").days_in_month
        days = [min(x, n_days) for x in v[: len(SPELL_GROUPS)]]
        sek, sa_m, earn = list(v[len(SPELL_GROUPS) : 2 * len(SPELL_GROUPS)]), v[-2], v[-1]
        support = int(sum(days) > 0 or sum(sek) > 0 or sa_m > 0)
        out.append(
            [p, m, *days, *sek, sa_m, earn, sum(sek) + sa_m, support, int(earn >= THR and not support)]
        )
    return pd.DataFrame(out, columns=list(panel.PANEL_COLUMNS))


@pytest.mark.parametrize("seed", [1, 2])
def test_panel_equals_the_rules_applied_day_by_day(seed):
    sp, sa, ea, pop = random_registers(seed)
    for start in (None, "2022-06"):
        out = pm(sp, sa, ea, pop, end_month="2024-10", start_month=start)
        ref = day_by_day_panel(sp, sa, ea, pop, "2024-10", start)
        assert len(out) > 100
        # keys and nettodagar exact (quarter extents are exact in binary); SEK to rounding (sums of days × amount/N
        # against sums of amount/N over days)
        pd.testing.assert_frame_equal(out[["person_id", "month"]], ref[["person_id", "month"]])
        exact = [f"days_{g}" for g in SPELL_GROUPS] + ["earnings_sek", "public_support", "self_support"]
        pd.testing.assert_frame_equal(out[exact], ref[exact], check_exact=True)
        pd.testing.assert_frame_equal(out, ref, check_exact=False, rtol=1e-12, atol=1e-9)


def test_chunks_blocks_and_threads_do_not_change_the_panel(monkeypatch, tmp_path):
    # The build cuts the person-sorted input into chunks of whole persons and the persons × months map into
    # blocks, computed by one or more threads: none of it may change a single bit of the panel.
    sp, sa, ea, pop = random_registers(3)
    ref = pm(sp, sa, ea, pop)
    for rows, cells, threads in ((1, 10, 1), (7, 100, 2), (50, 1, 2), (1 << 16, 1 << 22, 1)):
        monkeypatch.setattr(panel.chunks, "ROWS_PER_CHUNK", rows)
        monkeypatch.setattr(panel.chunks, "CELLS_PER_BLOCK", cells)
        con = duckdb.connect(config={"threads": threads})
        pd.testing.assert_frame_equal(pm(sp, sa, ea, pop, con=con), ref, check_exact=True)
        # the parts of a partitioned panel each hold whole persons and together are the panel
        parts = panel.person_months(
            sp, sa, ea, pop, end_month="2024-12", con=con, parquet_path=tmp_path / f"p{rows}", partitions=3
        )
        files = sorted(parts.glob("part-*.parquet"))
        assert len(files) == 3
        persons = [set(pd.read_parquet(f).person_id) for f in files]
        assert sum(map(len, persons)) == len(set().union(*persons)) == ref.person_id.nunique()
        back = con.sql(f"SELECT * FROM read_parquet('{parts}/*.parquet')").df()
        back = back.sort_values(["person_id", "month"], key=lambda c: c.str.encode("utf-8")).reset_index(
            drop=True
        )
        pd.testing.assert_frame_equal(back, ref, check_exact=True, check_dtype=False)


def test_partitioned_panel_is_the_single_panel_row_for_row(monkeypatch, tmp_path):
    # With many parts the partitioned build reads the inputs once into hash buckets of persons (Parquet in a scratch
    # folder under the connection's temp_directory) and sorts each bucket on its own; with few, each part is a query
    # of its own. Either way part i is exactly the rows of the single-file panel whose person is in bucket
    # hash(person_id) % n = i, in the same order and schema; the scratch is gone afterwards.
    sp, sa, ea, pop = random_registers(5)
    spill = tmp_path / "spill"
    con = duckdb.connect(config={"threads": 2})
    con.execute(f"SET temp_directory = '{spill}'")
    single = panel.person_months(
        sp, sa, ea, pop, end_month="2024-12", con=con, parquet_path=tmp_path / "one.parquet"
    )
    ref = pd.read_parquet(single)
    made: list[str] = []
    mkdtemp = tempfile.mkdtemp
    monkeypatch.setattr(tempfile, "mkdtemp", lambda *a, **k: made.append(mkdtemp(*a, **k)) or made[-1])
    assert panel.build.SCAN_ONCE_FROM_PARTS <= 16
    for n in (3, 16):  # 3: a query per part; 16 (scan once): buckets for 10 persons, some parts empty
        parts = panel.person_months(
            sp, sa, ea, pop, end_month="2024-12", con=con, parquet_path=tmp_path / f"parts{n}", partitions=n
        )
        bucket = dict(
            con.execute(f"SELECT DISTINCT person_id, hash(person_id) % {n} FROM '{single}'").fetchall()
        )
        files = sorted(parts.glob("*"))
        assert [f.name for f in files] == [f"part-{i:04d}.parquet" for i in range(n)]
        for i, f in enumerate(files):
            assert pq.read_schema(f).equals(pq.read_schema(single))
            want = ref[ref.person_id.map(bucket) == i].reset_index(drop=True)
            pd.testing.assert_frame_equal(pd.read_parquet(f), want, check_exact=True)
    assert made and all(Path(d).parent == spill and not Path(d).exists() for d in made)
    assert not list(spill.glob("finsam_panel_*"))


def test_panel_parts_are_sized_so_one_parts_sort_fits_in_half_the_memory_limit():
    # parts = ceil(stream rows × 64 B / (memory_limit / 2)), at least 1
    gb = 10**9
    assert panel.panel_partitions(0, 4 * gb) == panel.panel_partitions(1000, 4 * gb) == 1
    assert panel.panel_partitions(31_250_000, 4 * gb) == 1  # 2.0 GB of sort: exactly half the limit
    assert panel.panel_partitions(31_250_001, 4 * gb) == 2
    assert panel.panel_partitions(87_834_017, 16 * gb) == 1
    # the engine states its limit rounded ("3.7 GiB" for 4GB): the national worlds on 4 GB keep 3 and 15 parts
    con = duckdb.connect()
    for text, low, high in (
        ("4GB", 3.9 * gb, 4 * gb),
        ("1.5GiB", 1.5 * 2**30, 1.5 * 2**30),
        ("500MB", 0.49 * gb, 0.5 * gb),
    ):
        con.execute(f"SET memory_limit = '{text}'")
        assert low <= tables.memory_limit_bytes(con) <= high
    con.execute("SET memory_limit = '4GB'")
    limit = tables.memory_limit_bytes(con)
    assert panel.panel_partitions(87_834_017, limit) == 3 and panel.panel_partitions(440_000_000, limit) == 15
    with pytest.raises(InputError, match="positive memory limit"):
        panel.panel_partitions(10, 0)


def test_panel_is_sorted_by_person_id_text_and_month():
    # pandas and Arrow output: sorted by person_id as text (byte order, "10" before "9") and month.
    sp, sa, ea, pop = random_registers(4)
    out = pm(sp, sa, ea, pop)
    key = list(zip(out.person_id.str.encode("utf-8"), out.month, strict=True))
    assert key == sorted(key) and len(set(key)) == len(key)
    arrow = panel.person_months(sp, sa, ea, pop, end_month="2024-12", output="arrow")
    assert arrow.schema.names == list(panel.PANEL_COLUMNS)
    pd.testing.assert_frame_equal(
        arrow.to_pandas().astype({"public_support": "int64", "self_support": "int64"}), out
    )


def test_pandas_output_grows_past_a_low_row_estimate():
    # person_months sizes the DataFrame by an upper bound of its rows; a lower estimate only costs regrowth.
    sp, sa, ea, pop = random_registers(5)
    ref = panel.person_months(sp, sa, ea, pop, end_month="2024-12", output="arrow")
    end = 2024 * 12 + 11
    rows = ref.to_pandas()
    m = (
        rows.month.str.slice(0, 4).astype(int).to_numpy() * 12
        + rows.month.str.slice(5, 7).astype(int).to_numpy()
        - 1
    )
    persons = pa.array(sorted(set(rows.person_id), key=str.encode))
    person = np.searchsorted(np.array(persons.to_pylist(), dtype=object), rows.person_id.to_numpy())
    values = [ref[c].to_numpy() for c in panel.PANEL_COLUMNS[2:]]
    chunk = panel.chunks.Chunk(persons, int(m.min()), person, m, values)
    out = panel.chunks.to_pandas(iter([chunk, chunk]), end, capacity=1)
    expected = pd.concat([rows, rows], ignore_index=True).astype(
        {"public_support": "int64", "self_support": "int64"}
    )
    pd.testing.assert_frame_equal(out, expected, check_exact=True)


def test_empty_panel_keeps_columns_and_types():
    out = pm(spells(("a", "SJP", "2025-01-01", "2025-01-31", 1, 31)))  # after the end of data
    assert len(out) == 0 and tuple(out.columns) == panel.PANEL_COLUMNS
    assert out.person_id.dtype == object and out.days_sickness.dtype == np.float64
    assert out.public_support.dtype == np.int64
    arrow = panel.person_months(spells(), None, None, end_month="2024-12", output="arrow")
    assert arrow.num_rows == 0 and arrow.schema.field("public_support").type == pa.int32()


# ------------------------------------------------------------------------------------- the synthetic world
@pytest.fixture(scope="module")
def small_latent(small_world):
    from finsam_effekt import synth

    return small_world.config, small_world.path, synth.latent_person_months(small_world.config)


def test_synthetic_world_panel_equals_generator_latent_states(small_latent):
    # The generator writes messy registers (split, overlapping half-extent, duplicate, open and monthly-payment
    # spells) from latent monthly states; the panel must recover every monthly figure exactly.
    cfg, d, latent = small_latent
    out = panel.person_months(
        d / "benefit_spells.parquet",
        d / "social_assistance.parquet",
        d / "earnings.parquet",
        d / "population.parquet",
        end_month=cfg.end,
        start_month=cfg.start,
    )
    both = out.merge(latent, on=["person_id", "month"], how="outer", suffixes=("", "_latent"), indicator=True)
    assert (both["_merge"] == "both").all()
    for o in OUTCOMES:
        np.testing.assert_allclose(both[o], both[f"{o}_latent"], rtol=1e-9, atol=1e-6, err_msg=o)
    # In particular participants' monthly public_support before their start month (the pre-period).
    tp = pd.read_parquet(d / "truth_participants.parquet")[["person_id", "ref_month"]]
    pre = both.merge(tp, on="person_id")
    pre = pre[pre.month < pre.ref_month]
    assert len(pre) > 100 and pre.public_support.sum() > 0
    assert (pre.public_support == pre.public_support_latent).all()


def test_synthetic_world_censoring_matches_truth(small_latent):
    # truth_participants has NaN exactly where month u+k is censored (death, emigration, past the window).
    cfg, d, _ = small_latent
    tp = pd.read_parquet(d / "truth_participants.parquet")
    pop = pd.read_parquet(d / "population.parquet")
    out = panel.horizon_outcomes(
        tp[["person_id", "ref_month"]],
        (3, 6, 12),
        None,
        pop,
        spells=d / "benefit_spells.parquet",
        social_assistance=d / "social_assistance.parquet",
        earnings=d / "earnings.parquet",
        end_month=cfg.end,
        start_month=cfg.start,
    )
    for k in (3, 6, 12):
        assert (out[f"public_support_m{k}"].isna() == tp[f"public_support_m{k}"].isna()).all(), k
    assert tp["public_support_m12"].isna().any() and tp["public_support_m3"].notna().any()


# ------------------------------------------------------------------------------------- summarise_paths
def _path_rows() -> pd.DataFrame:
    # treated a, b, c and controls d, e at rel_month 0 and 1; c weighs 2; e's month 1 is censored; d's month 1 has
    # weight 0 (an unmatched row) and b's month 1 a missing outcome: both left out of their cells.
    return pd.DataFrame(
        {
            "person_id": ["a", "b", "c", "a", "b", "c", "d", "e", "d", "e"],
            "treated": [1, 1, 1, 1, 1, 1, 0, 0, 0, 0],
            "rel_month": [0, 0, 0, 1, 1, 1, 0, 0, 1, 1],
            "public_support": [1.0, 0.0, 1.0, 1.0, np.nan, 0.0, 0.0, 1.0, 1.0, 1.0],
            "earnings_sek": [0.0, 100.0, 0.0, 0.0, 0.0, 300.0, 50.0, 0.0, 0.0, 0.0],
            "weights": [1.0, 1.0, 2.0, 1.0, 1.0, 2.0, 1.0, 3.0, 0.0, 3.0],
            "censored": [False] * 9 + [True],
        }
    )


def test_summarise_paths_by_hand():
    z = 1.959963984540054
    out = panel.summarise_paths(_path_rows(), ["public_support", "days_sickness"])
    assert list(out.columns) == ["outcome", "rel_month", "arm", "mean", "ci_lower", "ci_upper", "n"]
    # days_sickness is not in the paths: no rows; cells in (rel_month, arm) order, "control" before "treated"
    assert list(zip(out["rel_month"], out["arm"], strict=True)) == [
        (0, "control"),
        (0, "treated"),
        (1, "treated"),
    ]
    assert set(out["outcome"]) == {"public_support"}
    cell = out.set_index(["rel_month", "arm"])
    # treated, month 0: y = 1, 0, 1 with w = 1, 1, 2 → mean 3/4; se = sqrt(1·¼² + 1·¾² + 4·¼²) / 4
    se = np.sqrt(1 / 16 + 9 / 16 + 4 / 16) / 4
    assert cell.loc[(0, "treated"), "mean"] == pytest.approx(0.75)
    assert cell.loc[(0, "treated"), "ci_lower"] == pytest.approx(0.75 - z * se)
    assert cell.loc[(0, "treated"), "ci_upper"] == pytest.approx(0.75 + z * se)
    assert cell.loc[(0, "treated"), "n"] == 3
    # control, month 0: y = 0, 1 with w = 1, 3 → mean 3/4; se = sqrt(1·¾² + 9·¼²) / 4
    se_c = np.sqrt(9 / 16 + 9 / 16) / 4
    assert cell.loc[(0, "control"), "mean"] == pytest.approx(0.75)
    assert cell.loc[(0, "control"), "ci_upper"] == pytest.approx(0.75 + z * se_c)
    # treated, month 1: b's NaN left out → y = 1, 0 with w = 1, 2 → mean 1/3, n = 2 persons
    assert cell.loc[(1, "treated"), "mean"] == pytest.approx(1 / 3)
    assert cell.loc[(1, "treated"), "n"] == 2
    # control, month 1: d has weight 0 and e is censored → no cell


def test_summarise_paths_unweighted_and_several_outcomes():
    paths = _path_rows().drop(columns=["weights", "censored"])
    out = panel.summarise_paths(paths, ["earnings_sek", "public_support"])
    assert list(out["outcome"].drop_duplicates()) == ["earnings_sek", "public_support"]
    cell = out[out["outcome"] == "earnings_sek"].set_index(["rel_month", "arm"])
    # without weights every row weighs 1 and nothing is censored: treated month 1 = mean(0, 0, 300) = 100
    assert cell.loc[(1, "treated"), "mean"] == pytest.approx(100.0)
    se = np.sqrt(100**2 + 100**2 + 200**2) / 3
    assert cell.loc[(1, "treated"), "ci_lower"] == pytest.approx(100.0 - 1.959963984540054 * se)
    assert cell.loc[(1, "control"), "n"] == 2 and cell.loc[(1, "control"), "mean"] == 0.0
