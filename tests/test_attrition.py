"""Attrition accounts for everyone (issue 17, items 3 and 10): the reason of each participant who does not enter
the cohort, the attrition report continued through the cohort, the match and the follow-up on a hand-built world,
its disclosure control, and a run on a synthetic world whose steps add up."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finsam_effekt.attrition import (
    attrition_report,
    attrition_steps,
    pinned_cells,
    step_chain,
    step_sums,
    suppress_attrition,
)
from finsam_effekt.cohort import TREATED_DROP_REASONS, build_cohort, treated_attrition
from finsam_effekt.config import parse_config
from finsam_effekt.linkage import REPORT_COLUMNS, link_participants
from finsam_effekt.matching import match_nearest
from finsam_effekt.panel import horizon_outcomes, person_months
from finsam_effekt.pipeline import run, run_until
from finsam_effekt.report import publish

T = 5


def _person(pid, birth=1990, edu="compulsory", imm=None, emi=None, death=None):
    return {"person_id": pid, "sex": "K", "birth_year": birth, "education": edu, "kommun": "0180",
            "birth_region": "sweden", "immigration_date": pd.Timestamp(imm) if imm else pd.NaT,
            "emigration_date": pd.Timestamp(emi) if emi else pd.NaT,
            "death_date": pd.Timestamp(death) if death else pd.NaT}  # fmt: skip


def _reg(pid, start, kind="person", fb="F1"):
    return {"person_id": pid, "registration_kind": kind, "forbund_id": fb, "insats_id": f"I{start}",
            "insats_type": "preparatory", "start_date": pd.Timestamp(start), "end_date": pd.NaT, "sex": None,
            "birth_year": None, "education": None, "kommun": None, "support_at_start": None,
            "support_at_end": None, "status_at_end": None, "public_support_before": None}  # fmt: skip


def _spells(pids):
    """A-kassa in January and February 2020: public support before the starts of March and June 2020."""
    return pd.DataFrame({"person_id": list(pids), "benefit": "AKA", "from_date": pd.Timestamp("2020-01-01"),
                         "to_date": pd.Timestamp("2020-02-29"), "extent": 1.0, "amount_sek": 9000.0})  # fmt: skip


# -- (a) one reason per participant who does not enter the cohort ------------------------------------------------
def test_each_participant_who_does_not_enter_the_cohort_has_exactly_one_reason():
    pop = pd.DataFrame(
        [
            _person("dead", death="2020-02-10"),
            _person("dead_old", birth=1940, death="2020-01-05"),  # both: the first reason counts
            _person("gone", emi="2020-03-31"),  # emigrated in the start month itself
            _person("new", imm="2020-03-02"),  # immigrated in the start month: not yet resident
            _person("old", birth=1950),
            _person("short", imm="2019-12-01"),  # 3 months of history < 6
            _person("idle"),  # no public support before start
            _person("ok"),
            _person("ok_late", death="2020-09-01"),  # dies after start: enters the cohort
            _person("ctrl"),
        ]
    )
    part = pd.DataFrame(
        {
            "person_id": ["dead", "dead_old", "gone", "new", "old", "short", "idle", "ok", "ok_late", "ghost",
                          "early"],
            "ref_month": ["2020-03"] * 10 + ["2019-01"],  # early: outside the window, not a row
        }
    )  # fmt: skip
    panel = person_months(_spells(["dead", "gone", "new", "old", "short", "ok", "ok_late", "ctrl"]), None,
                          None, pop, end_month="2021-06")  # fmt: skip
    kw = dict(window=("2020-01", "2020-12"), min_history_months=6, register_start="2018-01")
    status = treated_attrition(part, panel, pop, **kw)
    assert dict(zip(status["person_id"], status["reason"], strict=True)) == {
        "dead": "died_before_start",
        "dead_old": "died_before_start",
        "gone": "emigrated_before_start",
        "new": "not_yet_resident",
        "old": "outside_age_range",
        "short": "short_history",
        "idle": "not_eligible",
        "ok": None,
        "ok_late": None,
        "ghost": "not_in_population",
    }
    co = build_cohort(part, panel, pop, end_month="2021-06", **kw)
    dropped = co.attrs["dropped_treated"]
    assert list(dropped) == list(TREATED_DROP_REASONS)
    assert dropped == {"not_in_population": 1, "died_before_start": 2, "emigrated_before_start": 1,
                       "not_yet_resident": 1, "outside_age_range": 1, "short_history": 1, "not_eligible": 1}  # fmt: skip
    # everyone in the window is counted once: treated rows + every drop = participants in the window
    assert co.attrs["n_participants"] == 10 == co.attrs["n_treated"] + sum(dropped.values())
    assert set(co.loc[co["treated"] == 1, "person_id"]) == {"ok", "ok_late"}
    # the status computed once and passed in gives the same cohort
    again = build_cohort(part, panel, pop, end_month="2021-06", treated_status=status, **kw)
    pd.testing.assert_frame_equal(again, co)
    assert again.attrs["dropped_treated"] == dropped


# -- (b) the attrition report on a hand-built world ---------------------------------------------------------------
def _world():
    """Thirteen SUS registrations; who leaves where is known by construction (comments), data end 2021-04."""
    pop = pd.DataFrame(
        [
            _person("A", death="2020-02-15"),  # registered after death: died before start
            _person("B", emi="2020-03-20"),  # emigrated in the start month
            _person("C", imm="2020-03-01"),  # immigrated in the start month: not yet resident
            _person("D", birth=1950),  # 70 at start: the linkage drops it
            _person("E"),  # no public support before start: not eligible
            _person("F"),  # first start 2018: outside the window (linkage)
            _person("T1", edu="unknown"),  # matched, observed at every horizon; unknown education
            _person("T2", death="2021-01-15"),  # matched, dies at u+10: censored at 12 months
            _person("T3"),  # no candidate within the caliper
            _person("T4"),  # alone in its exact stratum: no candidate
            _person("T5"),  # starts 2020-06, matched; u+12 = 2021-06 lies after the data's end
            _person("c1", edu="unknown"),  # the matched controls: c1 (twice) and c2
            _person("c2"),
            _person("c3"),
        ]
    )
    sus = pd.DataFrame(
        [
            _reg(None, "2020-03-02", kind="anonymous"),
            *(_reg(p, "2020-03-10") for p in ("A", "B", "C", "D", "E", "T1", "T2", "T3")),
            _reg("F", "2018-05-10"),
            _reg("G", "2020-03-10"),  # not in the population
            _reg("T4", "2020-06-10"),
            _reg("T5", "2020-06-10"),
        ]
    )
    spells = _spells(["A", "B", "C", "D", "F", "T1", "T2", "T3", "T4", "T5", "c1", "c2", "c3"])
    return pop, sus, spells


#: Distance per (person, month) and the exact stratum: T3 is 0.39 from its nearest candidate (caliper 0.05), T4
#: alone in stratum "b".
DISTANCE = {("T1", "2020-03"): 0.50, ("T2", "2020-03"): 0.30, ("T3", "2020-03"): 0.90, ("c1", "2020-03"): 0.51,
            ("c2", "2020-03"): 0.31, ("c3", "2020-03"): 0.10, ("T4", "2020-03"): 0.20, ("T5", "2020-03"): 0.15,
            ("T4", "2020-06"): 0.40, ("T5", "2020-06"): 0.40, ("c1", "2020-06"): 0.41, ("c2", "2020-06"): 0.60,
            ("c3", "2020-06"): 0.70}  # fmt: skip


def _hand_report(threshold: int):
    pop, sus, spells = _world()
    end = "2021-04"
    link = link_participants(sus, pop, window=("2020-01", "2020-12"), age_range=(16, 64), min_history_months=0,
                             register_start="2019-01", disclosure_threshold=threshold)  # fmt: skip
    panel = person_months(spells, None, None, pop, end_month=end)
    kw = dict(window=("2020-01", "2020-12"), register_start="2019-01")
    status = treated_attrition(link.participants, panel, pop, **kw)
    co = build_cohort(link.participants, panel, pop, sus_registrations=sus, end_month=end, treated_status=status,
                      **kw)  # fmt: skip
    co["grp"] = np.where((co["person_id"] == "T4") & (co["treated"] == 1), "b", "a")
    d = [DISTANCE[(p, m)] for p, m in zip(co["person_id"], co["ref_month"], strict=True)]
    m = match_nearest(co, "treated", np.array(d), caliper=0.05, std_caliper=False, exact=["ref_month", "grp"])
    unmatched = pd.DataFrame(
        {"person_id": co["person_id"].to_numpy()[m.unmatched["treated_row"]], "reason": m.unmatched["reason"]}
    )
    outcomes = horizon_outcomes(
        m.matched_data().reset_index(drop=True), (3, 6, 12), panel, pop, end_month=end
    )
    rep = attrition_report(link.linkage_report, link.participants, status, outcomes, unmatched,
                           horizons=(3, 6, 12), outcome="public_support", outcome_end=end, threshold=threshold)  # fmt: skip
    return rep, link, outcomes


def _totals(report: pd.DataFrame) -> dict[str, int]:
    tot = report[(report["forbund_id"] == "ALL") & (report["start_year"] == 0)]
    return dict(zip(tot["step"], tot["n"], strict=True))


def test_the_attrition_report_counts_every_participant_once_by_hand():
    rep, link, outcomes = _hand_report(threshold=1)
    assert list(rep.columns) == REPORT_COLUMNS
    assert [s for s in dict.fromkeys(rep["step"])] == [s for s, _ in attrition_steps((3, 6, 12))]
    got = _totals(rep)
    expected = {
        "registrations": 13, "anonymous": 1, "person_registrations": 12, "volume_participations": 0,
        "unique_persons": 12, "episodes": 12, "double_registrations": 0, "found_in_population": 11,
        "in_window": 10, "in_age_range": 9, "enough_history": 9,
        "not_in_population": 0, "died_before_start": 1, "emigrated_before_start": 1, "not_yet_resident": 1,
        "outside_age_range": 0, "short_history": 0, "not_eligible": 1, "in_cohort": 5,
        "unmatched_no_candidate_in_stratum": 1, "unmatched_outside_caliper": 1, "unmatched_candidates_used_up": 0,
        "matched": 3,
        "censored_register_end_m3": 0, "censored_death_emigration_m3": 0, "outcome_observed_m3": 3,
        "censored_register_end_m6": 0, "censored_death_emigration_m6": 0, "outcome_observed_m6": 3,
        "censored_register_end_m12": 1, "censored_death_emigration_m12": 1, "outcome_observed_m12": 1,
        "unknown_education_participants": 1, "unknown_education_controls": 1,
    }  # fmt: skip
    assert got == expected
    assert not rep["suppressed"].any()
    # every step adds up, from the registrations to the participants observed 12 months after start
    for total, parts in step_sums(got):
        assert got[total] == sum(got[p] for p in parts), total
    lost = ["anonymous", "double_registrations"]
    gone = ["found_in_population", "in_window", "in_age_range", "enough_history", "in_cohort", "matched"]
    assert got["registrations"] - sum(got[s] for s in lost) == got["unique_persons"]
    drops = [got["unique_persons"] - got["found_in_population"]] + [
        got[a] - got[b] for a, b in zip(gone, gone[1:], strict=False)
    ]
    assert drops == [1, 1, 1, 0, 4, 2]  # G; F; D; nobody; A, B, C, E; T3, T4
    # the linkage steps are the linkage report's; the per-förbund cells add up to the totals
    assert rep.iloc[: len(link.linkage_report)].equals(link.linkage_report)
    cells = rep[(rep["forbund_id"] != "ALL") & (rep["start_year"] != 0)]
    by_step = cells.groupby("step", sort=False)["n"].sum()
    assert all(by_step[s] == got[s] for s in by_step.index)
    # the observed participants are those with the outcome, as the effects count them
    assert (
        got["outcome_observed_m12"]
        == outcomes.loc[outcomes["treated"] == 1, "public_support_m12"].notna().sum()
    )


def test_the_attrition_report_is_closed_against_subtraction():
    rep, _, _ = _hand_report(threshold=T)
    got = _totals(rep)
    assert_closed(rep, T)
    assert pd.isna(got["died_before_start"]) and pd.isna(got["matched"])  # 1 and 3: small


def _cells(values: dict[str, dict[str, int]]) -> pd.DataFrame:
    """An attrition report of the steps in ``values`` (step -> förbund -> count, start year 2020), with margins."""
    from finsam_effekt.linkage import with_margins

    rows = [
        {"step": s, "forbund_id": f, "start_year": 2020, "n": n}
        for s, by in values.items()
        for f, n in by.items()
    ]
    out = with_margins(pd.DataFrame(rows))
    return out.assign(step_label=out["step"], n=out["n"].astype("Int64"), suppressed=False)[REPORT_COLUMNS]


def test_small_drops_at_the_cohort_hide_the_cohort_in_a_cell_and_the_participants_in_the_total():
    """F1: 40 participants, 2 died before start, 38 in the cohort. In F1's cells the cohort's 38 goes (the chain
    keeps the linkage's participants where it can); in the total the cohort's 88 is the balance table's count of
    participants before matching (published there), so the participants' total 90 goes instead."""
    zero = {"F1": 0, "F2": 0}
    values = {
        "enough_history": {"F1": 40, "F2": 50},
        **{r: dict(zero) for r in TREATED_DROP_REASONS},
        "in_cohort": {"F1": 38, "F2": 50},
        "unmatched_no_candidate_in_stratum": dict(zero),
        "unmatched_outside_caliper": {"F1": 8, "F2": 10},
        "unmatched_candidates_used_up": dict(zero),
        "matched": {"F1": 30, "F2": 40},
    }
    values["died_before_start"]["F1"] = 2
    rep = suppress_attrition(_cells(values), T)
    assert_closed(rep, T)
    got = rep.set_index(["step", "forbund_id", "start_year"])["n"]
    assert pd.isna(got[("died_before_start", "F1", 2020)]) and pd.isna(got[("in_cohort", "F1", 2020)])
    assert got[("enough_history", "F2", 2020)] == 50  # (F1's 40 goes with the total, as its complement)
    assert pd.isna(got[("enough_history", "ALL", 0)])
    assert got[("in_cohort", "ALL", 0)] == 88 and got[("matched", "ALL", 0)] == 70
    # the key figure rests on the table's total (LinkResult.facts names it): it goes with it, and so does the
    # consistency table's count of participants
    basis = {
        "table": "linkage_report",
        "where": {"step": "enough_history", "start_year": 0, "forbund_id": "ALL"},
    }
    sc = pd.DataFrame({"source": ["any_public"], "n_participants": [90], "sus_yes": [60], "register_yes": [61],
                       "disagree": [9], "share_disagree": [0.1]})  # fmt: skip
    tables, shown = publish({"linkage_report": rep, "support_consistency": sc},
                            {"participants": 90, "basis:participants": basis}, T)  # fmt: skip
    assert shown["participants"] is None and tables["support_consistency"]["n_participants"].isna().all()
    # few unmatched: the cohort's total goes (the matched are published elsewhere), as the balance table's does
    values["unmatched_outside_caliper"] = {"F1": 1, "F2": 10}
    values["matched"]["F1"] = 37
    rep = suppress_attrition(_cells(values), T)
    assert_closed(rep, T)
    got = rep.set_index(["step", "forbund_id", "start_year"])["n"]
    assert got[("matched", "ALL", 0)] == 77 and pd.isna(got[("unmatched_outside_caliper", "F1", 2020)])
    # a table that hides the participants in the cohort hides the balance table's count of them (before matching)
    hidden = rep.assign(suppressed=rep["suppressed"] | (rep["step"].eq("in_cohort") & rep["forbund_id"].eq("ALL")
                                                        & rep["start_year"].eq(0)))  # fmt: skip
    bal = pd.DataFrame({"variable": ["age", "age"], "sample": ["before", "after"], "mean_treated": [30.0, 30.0],
                        "mean_control": [31.0, 30.5], "smd": [0.1, 0.05], "var_ratio": [1.1, 1.0],
                        "ecdf_mean": [0.05, 0.02], "ecdf_max": [0.1, 0.05], "smd_flag": [False, False],
                        "var_ratio_flag": [False, False], "n_treated": [88, 77], "n_control": [900, 77]})  # fmt: skip
    tables, _ = publish({"linkage_report": hidden, "balance": bal}, {}, T)
    assert tables["balance"]["n_treated"].isna().tolist() == [True, False]


def assert_closed(report: pd.DataFrame, t: int) -> None:
    """What a reader can recover from the published attrition report: no small count, no line of a step, sum of
    steps or pair of the chain that reveals a hidden count (unless every other count of it is published
    elsewhere: pinned)."""
    r = report.assign(fb=report["forbund_id"].astype(str), yr=report["start_year"].astype(int))
    pub = r["n"].notna()
    assert not (pub & (r["n"] > 0) & (r["n"] < t)).any()
    assert (r["suppressed"] == ~pub).all()
    pinned = pd.Series(pinned_cells(report), index=r.index)
    for s, g in r.groupby("step"):
        for key in ("fb", "yr"):
            for _, line in g.groupby(key):
                if line["suppressed"].sum() == 1:
                    assert pinned[line.index[~line["suppressed"]]].all(), (s, key)
    cell = r.set_index(["step", "fb", "yr"])
    keys = set(zip(r["fb"], r["yr"], strict=True))
    for total, parts in step_sums(r["step"].unique()):
        for f, y in keys:
            k = [(s, f, y) for s in (total, *parts)]
            if all(x in cell.index for x in k):
                hidden = [bool(cell.loc[x, "suppressed"]) for x in k]
                if sum(hidden) == 1:
                    open_ = [x for x, h in zip(k, hidden, strict=True) if not h]
                    assert all(pinned[r.index[(r["step"] == x[0]) & (r["fb"] == f) & (r["yr"] == y)]].all()
                               for x in open_), (f, y, total)  # fmt: skip
    for f, y in keys:
        shown = [cell.loc[(s, f, y), "n"] for s in step_chain(r["step"].unique()) if (s, f, y) in cell.index]
        shown = [int(v) for v in shown if pd.notna(v)]
        for a, b in zip(shown, shown[1:], strict=False):
            assert not 0 < a - b < t, (f, y, a, b)


def test_suppression_of_a_linkage_report_alone_is_the_linkage_rule():
    """suppress_attrition on a table without the later steps is linkage.suppress_with_margins, and reapplying it
    to its own result changes nothing."""
    from finsam_effekt.linkage import suppress_with_margins

    rep, link, _ = _hand_report(threshold=1)
    raw = link.linkage_report
    assert suppress_attrition(raw, T).equals(suppress_with_margins(raw, T))
    once = suppress_attrition(rep, T)
    assert suppress_attrition(once, T).equals(once)


# -- (c) a run on a synthetic world --------------------------------------------------------------------------------
def _config(world, tmp_path, threshold: int):
    return parse_config(
        {
            "inputs": str(world.mapping),
            "window": {"start": "2018-01", "end": "2021-06"},  # the last starts: u + 12 after the data
            "outcomes": {"names": ["public_support", "self_support"], "path_window": 6},
            "estimators": ["weighted_mean_diff"],
            "subgroups": [],
            "event_study": False,
            "sensitivity": False,
            "cost_benefit": {"enabled": False},
            "cache": {"enabled": False},
            "disclosure_threshold": threshold,
        },
        tmp_path,
    )


@pytest.mark.slow
def test_a_run_accounts_for_every_participant(small_world, tmp_path):
    res = run_until(_config(small_world, tmp_path, 1), "effects", skip=["balance", "contamination"])
    got = _totals(res.attrition.report)
    # participants in the window = analysed at horizon k + every drop on the way
    for k in (3, 6, 12):
        left = (got["in_window"] - got["in_age_range"]) + (got["in_age_range"] - got["enough_history"])
        left += sum(got[s] for s in TREATED_DROP_REASONS) + sum(
            got[s] for s in got if s.startswith("unmatched_")
        )
        left += got[f"censored_register_end_m{k}"] + got[f"censored_death_emigration_m{k}"]
        assert got["in_window"] == got[f"outcome_observed_m{k}"] + left
    for total, parts in step_sums(got):
        assert got[total] == sum(got[p] for p in parts), total
    assert got["censored_register_end_m12"] > 0 and got["outcome_observed_m12"] > 0
    co = res.cohort.cohort
    assert got["enough_history"] == len(res.link.participants) == co.attrs["n_participants"]
    assert got["in_cohort"] == co.attrs["n_treated"] == int((co["treated"] == 1).sum())
    assert {s: got[s] for s in TREATED_DROP_REASONS} == co.attrs["dropped_treated"]
    assert got["matched"] == int((res.match.matched["treated"] == 1).sum())
    unmatched = res.match.match.unmatched["reason"].value_counts()
    assert sum(got[s] for s in got if s.startswith("unmatched_")) == len(res.match.match.unmatched)
    assert all(got[f"unmatched_{r}"] == n for r, n in unmatched.items())
    eff = res.effects.frame
    for k in (3, 6, 12):
        row = eff[(eff["outcome"] == "public_support") & (eff["horizon_months"] == k) & (eff["measure"] == "status")
                  & (eff["subgroup"] == "all")]  # fmt: skip
        assert got[f"outcome_observed_m{k}"] == int(row["n_treated"].iloc[0])  # the effects' participants


@pytest.mark.slow
def test_a_published_run_hides_no_small_step(small_world, tmp_path):
    out = tmp_path / "out"
    res = run(_config(small_world, tmp_path, T), out)
    lr = pd.read_csv(out / "linkage_report.csv")
    assert "outcome_observed_m12" in set(lr["step"]) and "in_cohort" in set(lr["step"])
    assert_closed(lr.assign(n=lr["n"].astype("Int64")), T)
    # the published table is the attrition stage's, after the key figures' complements (publish is idempotent)
    tables, facts = publish({"linkage_report": res.results.attrition.report}, {}, T)
    shown = tables["linkage_report"].reset_index(drop=True)
    assert (shown["suppressed"].to_numpy() <= lr["suppressed"].to_numpy()).all()
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "Matchade deltagare" in page and "outcome_observed" not in page and "died_before_start" not in page


@pytest.mark.slow
def test_a_forbund_report_continues_the_national_cohort_steps_with_its_own_match(small_world, tmp_path):
    """``run --by forbund_id``: a förbund's table has the national linkage and cohort steps of that förbund as
    published, then its own match and follow-up, which add up to its cohort."""
    from finsam_effekt.pipeline import stages
    from finsam_effekt.pipeline.by_group import group_results, published_linkage_report

    res = run_until(_config(small_world, tmp_path, 1), "attrition", skip=["balance"])
    national = published_linkage_report(res)
    value = res.link.participants["forbund_id"].astype(str).value_counts().index[0]
    sub = group_results(res, "forbund_id", value, national)
    match = stages.match(sub.cfg, sub.link, sub.cohort)
    outcomes = stages.outcomes(sub.cfg, sub.read, sub.link, sub.panel, match)
    rep = stages.attrition(sub.cfg, sub.read, sub.link, sub.cohort, match, outcomes).report
    assert set(rep["forbund_id"]) == {value}
    key = ["step", "start_year"]
    shared_steps = [s for s, _ in attrition_steps()][: list(national["step"].unique()).index("in_cohort") + 1]
    given = national[(national["forbund_id"] == value) & national["step"].isin(shared_steps)]
    given = given.set_index(key)[["n", "suppressed"]]
    shared = rep.set_index(key).loc[given.index, ["n", "suppressed"]]
    # the linkage and the cohort steps: the national report's
    pd.testing.assert_frame_equal(shared, given, check_dtype=False)
    got = rep[rep["start_year"] == 0].set_index("step")["n"]
    for total, parts in step_sums(got.index):
        assert got[total] == sum(got[p] for p in parts), total
    assert got["matched"] == int((match.matched["treated"] == 1).sum())
