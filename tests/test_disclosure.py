"""Disclosure control on every output (issue 17, item 5): each rule on hand-made tables, the secondary
suppression, and two runs on synthetic worlds whose every output file is scanned for unsuppressed cells: one with
a threshold above every cell, one with a handful of participants."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
import yaml

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from finsam_effekt.attrition import pinned_cells, step_chain, step_sums
from finsam_effekt.config import load_config
from finsam_effekt.linkage import STEPS, suppress_with_margins
from finsam_effekt.pipeline import run
from finsam_effekt.pipeline.stages import event_study_persons
from finsam_effekt.report import (
    apply_disclosure_control,
    ps_overlap_plot,
    publish,
    publishable_bins,
    publishable_facts,
    publishable_rows,
    rows_text,
    share_rows,
    suppress_balance,
    suppress_complements,
    suppress_group_counts,
    suppress_resting,
)
from finsam_effekt.report.figures import table_figures
from finsam_effekt.report.text import ARM_LABELS

ROOT = Path(__file__).resolve().parent.parent
T = 5


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# -- (a) each rule on hand-made tables ---------------------------------------------------------------------------
def test_event_study_months_resting_on_few_persons_are_blanked():
    es = pd.DataFrame(
        {
            "outcome": "public_support",
            "rel_month": [-2, -1, 0, 1],
            "estimate": [0.01, 0.0, -0.1, -0.2],
            "std_error": [0.02, np.nan, 0.03, 0.04],
            "ci_lower": [-0.03, np.nan, -0.16, -0.28],
            "ci_upper": [0.05, np.nan, -0.04, -0.12],
            "p_value": [0.6, np.nan, 0.001, 0.0001],
            "n_treated": [40, 40, 40, 4],
            "n_control": [40, 40, 3, 40],
        }
    )
    out = apply_disclosure_control({"event_study": es}, T)["event_study"]
    assert out["suppressed"].tolist() == [False, False, True, True]
    assert out.loc[2:, ["estimate", "std_error", "ci_lower", "ci_upper", "p_value"]].isna().all().all()
    assert out["n_control"].isna().tolist() == [False, False, True, False]
    # an event study without its persons rests on an unknown number of them: nothing is published
    bare = apply_disclosure_control({"event_study": es.drop(columns=["n_treated", "n_control"])}, T)
    assert bare["event_study"]["estimate"].isna().all() and bare["event_study"]["suppressed"].all()


def test_event_study_persons_counts_each_months_observed_persons():
    paths = pd.DataFrame(
        {
            "person_id": ["a", "a", "b", "b", "c", "c", "d", "e", "f"],
            "treated": [1, 1, 1, 1, 0, 0, 0, 0, 1],
            "rel_month": [-1, 0, -1, 0, -1, 0, 0, 0, 9],
            "public_support": [1, 1, 0, np.nan, 1, 0, 1, 1, 1],
            "weights": [1, 1, 1, 1, 1, 1, 0, 1, 1],  # d unmatched (weight 0)
            "censored": [False, False, False, False, False, True, False, False, False],  # c censored at 0
        }
    )
    n = event_study_persons(paths, "public_support", (-3, 3)).set_index("rel_month")
    # month -1: a, b treated; c control. Month 0: a treated (b missing); e control (c censored, d unmatched)
    assert n.loc[-1].tolist() == [2, 1] and n.loc[0].tolist() == [1, 1]
    assert 9 not in n.index  # outside the window


def _balance(rows: list[tuple]) -> pd.DataFrame:
    cols = ["variable", "sample", "mean_treated", "mean_control", "smd", "var_ratio", "ecdf_mean", "ecdf_max",
            "smd_flag", "var_ratio_flag", "n_treated", "n_control"]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def test_balance_shares_revealing_small_counts_and_means_of_few_persons_are_blanked():
    b = _balance(
        [
            # 0.4 × 5 = 2 women: the case
            ("sex=K", "after", 0.4, 0.5, -0.2, np.nan, 0.1, 0.1, True, False, 5, 5),
            # 0.02 × 200 = 4 controls with the level
            ("birth_region=nordic", "before", 0.5, 0.02, 0.9, np.nan, 0.48, 0.48, True, False, 100, 200),
            # 0.03 × 200 = 6 and 194; 0.5 × 100 = 50: publishable
            ("birth_region=europe", "before", 0.5, 0.03, 0.9, np.nan, 0.47, 0.47, True, False, 100, 200),
            # a continuous mean of two matched participants
            ("age", "after", 41.5, 40.0, 0.1, 1.1, 0.2, 0.3, False, False, 2, 2),
            # a binary pre-period outcome (no '='): 98 of 100 without it → 2 with it... as (1 − 0.98)·100 = 2
            ("public_support_u1", "before", 0.98, 0.5, 1.2, np.nan, 0.48, 0.48, True, False, 100, 400),
            ("ps_months_12", "before", 0.98, 0.5, 1.2, 0.7, 0.3, 0.5, True, False, 100, 400),  # continuous
        ]
    )
    assert share_rows(b).tolist() == [True, True, True, False, True, False]
    out = suppress_balance(b, T)
    assert out["suppressed"].tolist() == [True, True, False, True, True, False]
    stats = ["mean_treated", "mean_control", "smd", "var_ratio", "ecdf_mean", "ecdf_max"]
    assert out.loc[out["suppressed"], stats].isna().all().all()
    assert out.loc[out["suppressed"], ["smd_flag", "var_ratio_flag"]].isna().all().all()
    assert out.loc[2, "mean_control"] == 0.03 and out.loc[5, "mean_treated"] == 0.98
    assert out.loc[3, ["n_treated", "n_control"]].isna().all()  # the counts of 2 too


def test_balance_before_count_hidden_when_the_unmatched_are_few():
    b = _balance(
        [
            ("age", "before", 40.0, 45.0, -0.5, 1.0, 0.1, 0.2, True, False, 103, 5000),
            ("age", "after", 40.0, 40.5, -0.05, 1.0, 0.1, 0.2, False, False, 100, 100),
        ]
    )
    out = suppress_balance(b, T)
    # 103 − 100 = 3 unmatched participants: the before count goes (the after count is every table's n)
    assert pd.isna(out.loc[0, "n_treated"]) and out.loc[1, "n_treated"] == 100
    assert out.loc[0, "n_control"] == 5000 and out["suppressed"].tolist() == [True, False]
    assert out.loc[0, "smd"] == -0.5  # the statistics themselves rest on enough persons


def test_outcome_paths_per_arm_and_month():
    paths = pd.DataFrame(
        {
            "outcome": "public_support",
            "rel_month": [0, 0, 1, 1],
            "arm": ["treated", "control", "treated", "control"],
            "mean": [0.5, 0.4, 0.3, 0.2],
            "ci_lower": [0.4, 0.3, 0.2, 0.1],
            "ci_upper": [0.6, 0.5, 0.4, 0.3],
            "n": [10, 10, 4, 10],
        }
    )
    out = apply_disclosure_control({"outcome_paths": paths}, T)["outcome_paths"]
    assert out["suppressed"].tolist() == [False, False, True, False]
    assert out.loc[2, ["mean", "ci_lower", "ci_upper", "n"]].isna().all()


def test_cost_benefit_tables_are_blanked_whole_below_the_threshold_keeping_assumptions():
    summary = pd.DataFrame(
        {
            "perspective": "public_finance",
            "financier": ["state", "region"],
            "pv_cost": [600.0, 300.0],
            "pv_net": [-80.0, -260.0],
            "p_net_positive": [0.33, 0.0],
            "interval_level": 0.9,
            "n_treated": 4,
            "n_control": 40,
        }
    )
    out = suppress_resting(summary, T)
    assert out[["pv_cost", "pv_net", "p_net_positive", "n_treated"]].isna().all().all()
    assert out["interval_level"].tolist() == [0.9, 0.9] and out["suppressed"].all()
    sens = pd.DataFrame(
        {
            "parameter": ["discount_rate"],
            "low": ["1%"],
            "high": ["6%"],
            "financier": ["state"],
            "net_base": [-80.0],
            "net_low": [-70.0],
            "net_high": [-90.0],
            "low_value": [0.01],
            "high_value": [0.06],
            "n_treated": [40],
            "n_control": [40],
        }  # fmt: skip
    )
    kept = suppress_resting(sens, T)
    assert not kept["suppressed"].any() and kept["net_base"].tolist() == [-80.0]
    # without the persons behind it a cost-benefit table is not published
    blind = apply_disclosure_control(
        {"cost_benefit_methods": sens.drop(columns=["n_treated", "n_control"])}, T
    )
    assert blind["cost_benefit_methods"][["net_base", "net_low", "net_high"]].isna().all().all()
    by_type = summary.assign(
        subgroup=["insats_type=a", "insats_type=b"], n_treated=[4, 50], n_control=[50, 50]
    )
    sub = apply_disclosure_control({"cost_benefit_by_subgroup": by_type}, T)["cost_benefit_by_subgroup"]
    assert sub["suppressed"].tolist() == [True, False] and sub["pv_net"].isna().tolist() == [True, False]


def test_stage_sizes_of_person_stages_in_manifest_and_run_log():
    rows, hidden = publishable_rows(
        {"read & validate": 3, "link": 3, "match": 0, "cohort": 40, "effects": 2}, T
    )
    assert rows == {"read & validate": 3, "link": None, "match": 0, "cohort": 40, "effects": 2}
    assert hidden == ["link"]
    assert rows_text("outcomes", 4, T) == "<5" and rows_text("outcomes", 5, T) == "5"
    assert rows_text("panel", 4, T) == "4" and rows_text("link", None, T) == "None"


# -- (a) secondary suppression -----------------------------------------------------------------------------------
def _report(cells: dict[tuple[str, str, int], int]) -> pd.DataFrame:
    """A linkage report with margins from (step, förbund, year) -> n."""
    rows = []
    steps = list(dict.fromkeys(s for s, _, _ in cells))
    for s in steps:
        mine = {(f, y): n for (t, f, y), n in cells.items() if t == s}
        fbs = sorted({f for f, _ in mine})
        yrs = sorted({y for _, y in mine})
        for f in fbs:
            rows += [(s, f, y, mine.get((f, y), 0)) for y in yrs]
            rows.append((s, f, 0, sum(mine.get((f, y), 0) for y in yrs)))
        for y in yrs:
            rows.append((s, "ALL", y, sum(mine.get((f, y), 0) for f in fbs)))
        rows.append((s, "ALL", 0, sum(mine.values())))
    df = pd.DataFrame(rows, columns=["step", "forbund_id", "start_year", "n"])
    df.insert(1, "step_label", df["step"])
    return df


def assert_closed(report: pd.DataFrame, t: int) -> None:
    """Independent check of what a reader can recover from a published linkage report (continued by the attrition
    stage or not): no small count is published, no line of a step, sum of steps or published pair of the chain
    reveals a hidden count (a line whose other counts other tables publish as well, ``pinned``, excepted: hiding
    any of them would hide nothing)."""
    r = report.assign(fb=report["forbund_id"].astype(str), yr=report["start_year"].astype(int))
    pub = r["n"].notna()
    small = pub & (r["n"] > 0) & (r["n"] < t)
    assert not small.any(), r[small]
    assert (r["suppressed"] == ~pub).all()
    pinned = pd.Series(pinned_cells(report), index=r.index)
    for s, g in r.groupby("step"):
        for key in ("fb", "yr"):
            for v, line in g.groupby(key):
                if line["suppressed"].sum() == 1:
                    assert pinned[line.index[~line["suppressed"]]].all(), (s, key, v)
    cell = r.set_index(["step", "fb", "yr"])
    pin = dict(zip(zip(r["step"], r["fb"], r["yr"], strict=True), pinned, strict=True))
    steps = r["step"].unique()
    for total, parts in step_sums(steps):
        for f, y in set(zip(r["fb"], r["yr"], strict=True)):
            keys = [(s, f, y) for s in (total, *parts)]
            if all(k in cell.index for k in keys):
                hidden = [bool(cell.loc[k, "suppressed"]) for k in keys]
                if sum(hidden) == 1:
                    assert all(pin[k] for k, h in zip(keys, hidden, strict=True) if not h), (f, y, total)
    for f, y in set(zip(r["fb"], r["yr"], strict=True)):
        shown = [cell.loc[(s, f, y), "n"] for s in step_chain(steps) if (s, f, y) in cell.index]
        shown = [int(v) for v in shown if pd.notna(v)]
        for a, b in zip(shown, shown[1:], strict=False):
            assert not 0 < a - b < t, (f, y, a, b)


def test_linkage_report_hides_a_person_recoverable_from_the_chain_of_steps():
    """The issue's case: 23 in the age range, 22 with enough history: 23 − 22 = 1 person without history."""
    cells = {}
    for f, (window, age, hist) in {"F1": (30, 23, 22), "F2": (40, 40, 31)}.items():
        cells |= {("found_in_population", f, 2020): window + 10, ("in_window", f, 2020): window,
                  ("in_age_range", f, 2020): age, ("enough_history", f, 2020): hist}  # fmt: skip
    rep = suppress_with_margins(_report(cells), T)
    assert_closed(rep, T)
    got = rep.set_index(["step", "forbund_id", "start_year"])["n"]
    assert pd.isna(got[("in_age_range", "F1", 2020)])  # 23 is hidden, 22 (the participants) is kept
    assert got[("enough_history", "F1", 2020)] == 22 and got[("in_window", "F1", 2020)] == 30  # 30 − 22 = 8
    assert got[("enough_history", "ALL", 0)] == 53  # the total of participants every later table publishes


def test_linkage_report_sums_of_steps_and_known_zeros():
    cells = {
        ("registrations", "F1", 2020): 30, ("anonymous", "F1", 2020): 3, ("person_registrations", "F1", 2020): 27,
        ("registrations", "F2", 2020): 40, ("anonymous", "F2", 2020): 10, ("person_registrations", "F2", 2020): 30,
        ("in_window", "F1", 2021): 0, ("in_window", "F2", 2021): 20, ("in_window", "F1", 2020): 9,
        ("in_window", "F2", 2020): 9,
        ("in_age_range", "F1", 2021): 0, ("in_age_range", "F2", 2021): 20, ("in_age_range", "F1", 2020): 9,
        ("in_age_range", "F2", 2020): 6,
    }  # fmt: skip
    rep = suppress_with_margins(_report(cells), T)
    assert_closed(rep, T)
    got = rep.set_index(["step", "forbund_id", "start_year"])
    # anonymous 3 is primary; registrations − person registrations would give it back
    assert got.loc[("anonymous", "F1", 2020), "suppressed"]
    assert got.loc[("person_registrations", "F1", 2020), "suppressed"]
    # 9 − 6 = 3 outside the ages in F2: 9 in the window is hidden; F1-2021 is 0 in the window, so its age
    # count is known to be 0 and never chosen as a complement
    assert got.loc[("in_window", "F2", 2020), "suppressed"]
    assert not got.loc[("in_age_range", "F1", 2021), "suppressed"]
    # re-protecting a published report with one more hidden count (a key figure's complement) closes it again
    force = (
        (rep["step"] == STEPS[-1][0]) & (rep["forbund_id"] == "ALL") & (rep["start_year"] == 0)
    ).to_numpy()
    again = suppress_with_margins(rep, T, force=force)
    assert again.loc[force, "suppressed"].all()
    assert_closed(again, T)


def test_complements_of_a_sum():
    values = {"total": 30, "a": 3, "b": 12, "c": 15}
    assert suppress_complements(values, {"a"}, [("total", ("a", "b", "c"))]) == {"a", "b"}
    assert suppress_complements(values, {"a"}, [("total", ("a", "b", "c"))], prefer_total=True) == {
        "a",
        "total",
    }
    assert suppress_complements(values, {"a", "c"}, [("total", ("a", "b", "c"))]) == {"a", "c"}
    assert suppress_complements(values, set(), [("total", ("a", "b", "c"))]) == set()


def test_key_figures_participants_hidden_as_the_complement_of_few_unmatched():
    facts = {"participants": 103, "matched_treated": 100, "matched_controls": 100, "unmatched_treated": 3,
             "max_abs_smd_after": 0.04,
             "basis:max_abs_smd_after": {"table": "balance", "where": {"variable": "age", "sample": "after"}},
             "cost_per_participant_sek": 12000, "basis:cost_per_participant_sek": {"persons": (100, 4)},
             "cost_price_year": 2024}  # fmt: skip
    bal = pd.DataFrame({"variable": ["age", "sex=K"], "sample": "after", "suppressed": [False, True]})
    shown = publishable_facts(facts, T, {"balance": bal})
    assert shown["participants"] is None and shown["unmatched_treated"] is None
    assert shown["matched_treated"] == 100 and shown["max_abs_smd_after"] == 0.04
    assert shown["cost_per_participant_sek"] is None and shown["cost_price_year"] == 2024
    assert not any(k.startswith("basis:") for k in shown)
    assert publishable_facts(shown, T) == shown  # applying the rules again changes nothing
    # the fact's row suppressed, or its table not published: blanked
    assert publishable_facts(facts, T, {"balance": bal.assign(suppressed=True)})["max_abs_smd_after"] is None
    assert publishable_facts(facts, T, {})["max_abs_smd_after"] is None
    # ... and the participants' total is hidden where the tables show it
    link = _report({(STEPS[-1][0], f, 2020): n for f, n in (("F1", 50), ("F2", 53))})
    sc = pd.DataFrame({"source": ["any_public"], "n_participants": [103], "sus_yes": [60], "register_yes": [70],
                       "disagree": [20], "share_disagree": [20 / 103]})  # fmt: skip
    facts |= {"sus_register_disagree_any_public": 20 / 103,
              "basis:sus_register_disagree_any_public": {"table": "support_consistency",
                                                         "where": {"source": "any_public"}}}  # fmt: skip
    tables, shown = publish({"linkage_report": link, "support_consistency": sc, "balance": bal}, facts, T)
    assert shown["sus_register_disagree_any_public"] is None  # the share of n_participants goes with it
    lr = tables["linkage_report"]
    assert lr.loc[(lr["forbund_id"] == "ALL") & (lr["start_year"] == 0), "n"].isna().all()
    assert_closed(lr, T)
    assert tables["support_consistency"][["n_participants", "share_disagree"]].isna().all().all()


def test_overview_participants_complement_national_minus_forbund():
    ov = pd.DataFrame(
        {
            "group": ["national", "F1", "F2", "F3"],
            "participants": [60.0, 3.0, 25.0, 32.0],
            "outcome": None,
            "horizon_months": np.nan,
            "estimate": np.nan,
            "ci_lower": np.nan,
            "ci_upper": np.nan,
            "n_treated": np.nan,
            "n_control": np.nan,
        }  # fmt: skip
    )
    from finsam_effekt.report import suppress_estimates

    out = suppress_group_counts(suppress_estimates(ov, T))
    assert out["participants"].isna().tolist() == [False, True, True, False]  # F2, the smallest other, too


# -- (a) figures -------------------------------------------------------------------------------------------------
def test_publishable_bins_merge_small_bins():
    edges = np.arange(0, 7, dtype=float)  # bins [0,1) .. [5,6]
    values = np.array([0.5] * 6 + [1.5] * 2 + [2.5] * 3 + [4.5] * 7 + [5.5])
    new, merged = publishable_bins(values, edges, T)
    counts, _ = np.histogram(values, bins=new)
    assert merged and ((counts == 0) | (counts >= T)).all() and counts.sum() == len(values)
    assert new.tolist() == [0, 1, 3, 4, 6]  # 6 | 2+3 | 0 | 7+1 (the last small bin joins the one before)
    weights = np.array([1.0] * 6 + [0.0] * 13)  # only the six persons of the first bin have a weight
    kept, changed = publishable_bins(values, edges, T, weights)
    assert kept.tolist() == edges.tolist() and not changed  # 6 and empty bins: nothing to merge
    assert publishable_bins(values[:4], edges, T)[0].size == 0  # fewer persons than the threshold: no bin


def _arm_counts(fig, ps, treated, weights) -> list[np.ndarray]:
    """Persons behind every drawn bar, per panel and arm (from the drawn bars' own edges)."""
    out = []
    for ax, w in zip(fig.axes, (np.ones(len(ps)), weights), strict=False):
        for container in ax.containers:
            arm = treated if container.patches[0].get_label() == ARM_LABELS["treated"][1] else ~treated
            bars = list(container)
            edges = [b.get_x() for b in bars] + [bars[-1].get_x() + bars[-1].get_width()]
            counts, _ = np.histogram(ps[arm & (w > 0)], bins=edges)
            out.append(counts)
    return out


def test_overlap_histogram_shows_no_bin_of_few_persons():
    rng = np.random.default_rng(3)
    ps = np.r_[rng.beta(2, 5, 400), rng.beta(3, 3, 23)]
    treated = np.r_[np.zeros(400, bool), np.ones(23, bool)]
    weights = np.r_[np.where(np.arange(400) < 23, 1.0, 0.0), np.ones(23)]
    fig = ps_overlap_plot(ps, treated, weights, lang="en", threshold=T)
    counts = _arm_counts(fig, ps, treated, weights)
    assert len(counts) == 4 and all(((c == 0) | (c >= T)).all() for c in counts)
    assert sum(c.sum() for c in counts) == 400 + 23 + 23 + 23
    assert any("merged with their neighbours" in t.get_text() for t in fig.texts)
    assert ps_overlap_plot(ps, treated, weights, lang="en", threshold=10_000) is None


def test_overlap_histogram_bars_are_the_weighted_densities_on_the_merged_bins():
    # the figure bins every score once and draws each merged bin's weight: the bars must be the density
    # histogram of the arm's scores with their weights on the published edges (as matplotlib draws it from the rows)
    rng = np.random.default_rng(4)
    ps = np.r_[rng.beta(2, 5, 3000), rng.beta(3, 3, 300), [0.0, 1.0]]
    treated = np.r_[np.zeros(3000, bool), np.ones(300, bool), [False, True]]
    weights = np.r_[rng.choice([0.0, 0.5, 1.0, 2.0], 3000), np.ones(300), [1.0, 1.0]]
    fig = ps_overlap_plot(ps, treated, weights, lang="en", threshold=T)
    n = 0
    for ax, w in zip(fig.axes, (np.ones(len(ps)), weights), strict=True):
        for container in ax.containers:
            arm = treated if container.patches[0].get_label() == ARM_LABELS["treated"][1] else ~treated
            bars = list(container)
            edges = [b.get_x() for b in bars] + [bars[-1].get_x() + bars[-1].get_width()]
            dens, _ = np.histogram(ps[arm], bins=edges, weights=w[arm], density=True)
            np.testing.assert_allclose([b.get_height() for b in bars], dens, rtol=1e-12)
            n += 1
    assert n == 4


def test_no_figure_from_tables_that_publish_nothing():
    es = pd.DataFrame({"outcome": "public_support", "rel_month": [0, 1], "estimate": np.nan,
                       "ci_lower": np.nan, "ci_upper": np.nan, "suppressed": True})  # fmt: skip
    bal = pd.DataFrame({"variable": ["age"] * 2, "sample": ["before", "after"], "smd": np.nan})
    cb = pd.DataFrame({"perspective": "public_finance", "financier": "state", "item": ["cost", "net"],
                       "pv_sek_per_participant": np.nan})  # fmt: skip
    assert table_figures({"event_study": es, "balance": bal, "cost_benefit": cb}, "att", "en") == {}


# -- (b) and (c): runs on synthetic worlds, every output scanned ------------------------------------------------
COST_OUTCOMES = ["sek_sickness", "sek_disability", "sek_labour_market", "sek_unemployment", "social_assistance_sek",
                 "earnings_sek"]  # fmt: skip
#: Numeric columns that label a row (a horizon, a month, a year, an assumption), never a statistic or a count.
LABEL_COLUMNS = {"horizon_months", "rel_month", "start_year", "interval_level", "low", "high", "low_value",
                 "high_value"}  # fmt: skip
COUNTS = {
    "n",
    "n_treated",
    "n_control",
    "participants",
    "n_participants",
    "sus_yes",
    "register_yes",
    "disagree",
}


#: A handful of participants cannot carry the default propensity model (more coefficients than participants): the
#: small runs use a few covariates.
FEW_COVARIATES = ["age", "sex", "ps_months_12", "ps_u1", "earnings_12"]


def _run(
    world,
    tmp_path: Path,
    window: tuple[str, str],
    threshold: int | None,
    name: str,
    cost_benefit=True,
    covariates=None,
):
    cfg = {
        "inputs": str(world.mapping),
        "window": {"start": window[0], "end": window[1]},
        "estimators": ["weighted_mean_diff", "matched_did"],
        "outcomes": {"names": ["public_support", "self_support", *COST_OUTCOMES], "path_window": 6},
        "event_study_outcomes": ["public_support", "self_support"],
        "subgroups": ["sex", "insats_type"],
        "cost_benefit": {
            "enabled": cost_benefit,
            "parameters": str(ROOT / "configs" / "cost_benefit_parameters.yaml"),
        },
        "cache": {"enabled": False},
    }
    if threshold is not None:
        cfg["disclosure_threshold"] = threshold
    if covariates is not None:
        cfg["covariates"] = covariates
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return run(load_config(path), tmp_path / name)


def _csv_numbers(out: Path) -> dict[str, pd.DataFrame]:
    return {p.stem: pd.read_csv(p) for p in sorted(out.glob("*.csv"))}


def _label_numbers(tables: dict[str, pd.DataFrame]) -> set[float]:
    vals: set[float] = {0.0}
    for df in tables.values():
        for c in LABEL_COLUMNS & set(df.columns):
            vals |= {float(v) for v in pd.to_numeric(df[c], errors="coerce").dropna()}
    return vals


def _workbook_numbers(path: Path) -> list[float]:
    from openpyxl import load_workbook

    wb = load_workbook(path, read_only=True)
    return [
        float(v)
        for ws in wb.worksheets
        for row in ws.iter_rows(min_row=2, values_only=True)
        for v in row
        if isinstance(v, int | float) and not isinstance(v, bool)
    ]


def _page_cells(out: Path) -> list[str]:
    """The value cells of every table on the page (label cells, class 't', left out)."""
    page = (out / "report.html").read_text(encoding="utf-8")
    return [html for html in re.findall(r"<td>(.*?)</td>", page, flags=re.S)]


def _number(text: str) -> float | None:
    t = text.replace("\u202f", "").replace("\xa0", "").replace(" ", "").replace("−", "-").replace(",", ".")
    t = t.rstrip("%").replace("kr", "")
    try:
        return float(t)
    except ValueError:
        return None


def test_threshold_above_every_cell_publishes_no_person_count_or_statistic(small_world, tmp_path):
    res = _run(small_world, tmp_path, ("2019-01", "2020-03"), 100_000, "big")
    out = res.out
    tables = _csv_numbers(out)
    assert {"balance", "event_study", "cost_benefit", "cost_benefit_methods", "outcome_paths"} <= set(tables)
    for name, df in tables.items():
        for c in df.columns:
            if c in LABEL_COLUMNS or df[c].dtype == bool:
                continue
            v = pd.to_numeric(df[c], errors="coerce").dropna()
            if c in COUNTS:
                v = v[v != 0]  # zero persons describe nobody
            assert v.empty, f"{name}.csv column {c} publishes {v.tolist()[:5]}"
    allowed = _label_numbers(tables)
    stray = [v for v in _workbook_numbers(out / "results.xlsx") if v not in allowed]
    assert not stray, stray[:10]
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    for stage in ("link", "cohort", "match", "outcomes"):
        assert manifest["rows"][stage] is None and f"rows.{stage}" in manifest["suppressed"]
    log = (out / "run.log").read_text(encoding="utf-8")
    for stage in ("link", "cohort", "match", "outcomes"):
        assert re.search(rf"stage {stage}\s+ok\s+rows=<100000 ", log), stage
    cells = [_number(c) for c in _page_cells(out)]
    assert not [c for c in cells if c is not None and c not in allowed], cells
    assert "data:image/png;base64," not in (out / "report.html").read_text(encoding="utf-8")
    assert not (out / "figures").exists() or not any((out / "figures").iterdir())  # nothing to draw
    assert not (out / "cost_benefit_inputs.json").exists()


def test_a_handful_of_participants_publishes_nothing_resting_on_fewer_than_the_threshold(
    small_world, tmp_path
):
    """A window of eight months in the small world: a handful of participants start (some results rest on five
    or more persons, many on fewer); a window of one month: two or three participants, nothing to publish."""
    res = _run(small_world, tmp_path, ("2019-02", "2019-09"), None, "few", covariates=FEW_COVARIATES)
    out, results = res.out, res.results
    n_part = len(results.link.participants)
    assert 5 <= n_part <= 12
    tables = _csv_numbers(out)
    for name in ("effects", "event_study", "sensitivity"):
        t = tables[name]
        shown = t["estimate" if "estimate" in t else "value"].notna()
        assert (t.loc[shown, ["n_treated", "n_control"]] >= T).all().all(), name
    paths = tables["outcome_paths"]
    assert (paths.loc[paths["mean"].notna(), "n"] >= T).all()
    bal = tables["balance"]
    sizes = results.balance.table.sample_sizes.pivot(index="sample", columns="group", values="n")
    true_n = pd.DataFrame(  # the persons behind each row, published or hidden as a complement
        {"n_treated": bal["sample"].map(sizes["treated"]), "n_control": bal["sample"].map(sizes["control"])}
    )
    shown = bal["mean_treated"].notna()
    assert shown.any() and (true_n[shown] >= T).all().all()
    assert (bal[["n_treated", "n_control"]].isna() | (bal[["n_treated", "n_control"]] == true_n)).all().all()
    share = bal["variable"].str.contains("=") & shown
    for m, n in (("mean_treated", "n_treated"), ("mean_control", "n_control")):
        k = (bal.loc[share, m] * true_n.loc[share, n]).round(6)
        rest = true_n.loc[share, n] - k
        assert not ((k > 0) & (k < T)).any() and not ((rest > 0) & (rest < T)).any()
    before = bal["sample"] == "before"
    if 0 < sizes.loc["before", "treated"] - sizes.loc["after", "treated"] < T:  # a few unmatched
        assert bal.loc[before, "n_treated"].isna().all()
    for name, t in tables.items():
        if name.startswith("cost_benefit"):
            v = t.drop(columns=[c for c in ("interval_level", "low_value", "high_value") if c in t])
            shown = v.select_dtypes("number").drop(columns=["n_treated", "n_control"]).notna().any(axis=1)
            assert (t.loc[shown, ["n_treated", "n_control"]] >= T).all().all(), name
    assert_closed(tables["linkage_report"], T)
    # the key figures: few unmatched participants hide the participants' total everywhere
    matched = int((results.match.matched["treated"] == 1).sum())
    treated = int((results.cohort.cohort["treated"] == 1).sum())
    lr = tables["linkage_report"]
    total = lr[(lr["step"] == STEPS[-1][0]) & (lr["forbund_id"] == "ALL") & (lr["start_year"] == 0)]["n"]
    if 0 < treated - matched < T:
        assert total.isna().all()
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    for stage, n in manifest["rows"].items():
        assert n is None or stage not in ("link", "cohort", "match", "outcomes") or n >= T
    # the overlap histogram, redrawn from the run's scores as the run drew it: no bar of 1..4 persons
    b = results.balance
    fig = ps_overlap_plot(b.ps, b.treated, b.weights, lang="en", threshold=T)
    if fig is not None:
        counts = _arm_counts(
            fig, np.asarray(b.ps, float), np.asarray(b.treated).astype(bool), np.asarray(b.weights)
        )
        assert all(((c == 0) | (c >= T)).all() for c in counts)
    # every figure of the run is drawn from the published tables: the event study's points are its published
    # estimates
    for o in ("public_support", "self_support"):
        png = out / "figures" / f"event_study__{o}.png"
        published = tables["event_study"]
        assert png.exists() == bool(published.loc[published["outcome"] == o, "estimate"].notna().any())
    # one month: too few participants for the cost-benefit's before/after comparison, which stops a run with an
    # input error of its own (not a disclosure matter): left out here
    one = _run(
        small_world,
        tmp_path,
        ("2019-03", "2019-03"),
        None,
        "one",
        cost_benefit=False,
        covariates=FEW_COVARIATES,
    )
    assert 1 <= len(one.results.link.participants) < T
    for name, t in _csv_numbers(one.out).items():
        for c in t.columns:
            if c in COUNTS:
                v = pd.to_numeric(t[c], errors="coerce").dropna()
                assert not ((v > 0) & (v < T)).any(), (name, c)
        if name in ("effects", "outcome_paths", "event_study", "balance"):
            assert t["suppressed"].all(), name
    log = (one.out / "run.log").read_text(encoding="utf-8")
    assert re.search(r"stage link\s+ok\s+rows=<5 ", log)
    assert not (one.out / "cost_benefit_inputs.json").exists()


def test_no_identifier_and_no_small_count_in_the_workbook_of_a_small_run(small_world, tmp_path):
    """results.xlsx holds the published tables only: its cells are the CSVs' (same blanks)."""
    res = _run(small_world, tmp_path, ("2019-02", "2019-09"), None, "wb", covariates=FEW_COVARIATES)
    tables = _csv_numbers(res.out)
    csv_numbers = np.unique(
        np.concatenate(
            [
                pd.to_numeric(df[c], errors="coerce").dropna().to_numpy(float)
                for df in tables.values()
                for c in df
            ]
        )
    )
    with zipfile.ZipFile(res.out / "results.xlsx") as z:
        assert not any("person_id" in z.read(n).decode("utf-8", "ignore") for n in z.namelist())
    book = np.array(_workbook_numbers(res.out / "results.xlsx"))
    pos = np.clip(np.searchsorted(csv_numbers, book), 1, len(csv_numbers) - 1)
    nearest = np.minimum(np.abs(csv_numbers[pos] - book), np.abs(csv_numbers[pos - 1] - book))
    stray = book[nearest > 1e-8 * np.maximum(1.0, np.abs(book))]  # the CSVs keep 10 significant digits
    assert not stray.size, stray[:10]


def test_participants_who_left_before_the_match_are_not_recoverable_from_the_balance_counts():
    """participants (key figure) − the balance table's participants before matching = those who left between
    the linkage and the match: when few, the balance count goes."""
    bal = pd.DataFrame(
        {
            "variable": "age",
            "sample": ["before", "after"],
            "mean_treated": [40.0, 40.0],
            "mean_control": [45.0, 40.5],
            "smd": [-0.5, -0.05],
            "var_ratio": [1.0, 1.0],
            "ecdf_mean": [0.1, 0.1],
            "ecdf_max": [0.2, 0.2],
            "smd_flag": [True, False],
            "var_ratio_flag": False,
            "n_treated": [97, 90],
            "n_control": [5000, 90],
        }  # fmt: skip
    )
    facts = {"participants": 100, "matched_treated": 90, "unmatched_treated": 7}
    tables, shown = publish({"balance": bal}, facts, T)
    assert shown["participants"] == 100 and pd.isna(tables["balance"].loc[0, "n_treated"])
    assert tables["balance"].loc[1, "n_treated"] == 90 and tables["balance"]["smd"].notna().all()
    tables, _ = publish({"balance": bal}, {**facts, "participants": 110}, T)  # 13 left: publishable
    assert tables["balance"].loc[0, "n_treated"] == 97


def test_consistency_counts_follow_a_hidden_total_of_the_linkage_report():
    raw = _report({(STEPS[-1][0], "F1", 2020): 40, (STEPS[-1][0], "F2", 2020): 3})
    total = ((raw["forbund_id"] == "ALL") & (raw["start_year"] == 0)).to_numpy()
    link = suppress_with_margins(raw, T, force=total)  # the report hides its total for a reason of its own
    assert link.loc[total, "suppressed"].all()
    sc = pd.DataFrame({"source": ["any_public"], "n_participants": [43], "sus_yes": [30], "register_yes": [35],
                       "disagree": [10], "share_disagree": [10 / 43]})  # fmt: skip
    tables, _ = publish({"linkage_report": link, "support_consistency": sc}, {"participants": None}, T)
    assert tables["support_consistency"][["n_participants", "share_disagree"]].isna().all().all()
