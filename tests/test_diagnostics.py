"""Design warnings that act: from the balance table's pre-period rows, the event study's pre-trend test and the
contamination stage; their words and numbers; and a world built to trigger them through ``pipeline.run``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from finsam_effekt.balance import balance_table
from finsam_effekt.diagnostics import (
    DesignWarning,
    chance_smd,
    pre_period_name,
    pre_period_warning,
    pretrend_warning,
)
from finsam_effekt.estimation.results import EventStudyResults
from finsam_effekt.pipeline.results import BalanceResult, EventStudyResult


def _balance(shift: float) -> BalanceResult:
    """Treated and matched controls with x balanced; public support at u−1 of the controls shifted by
    ``shift`` (a share of rows set from 1 to 0)."""
    rng = np.random.default_rng(0)
    n = 400
    t = np.r_[np.ones(n), np.zeros(n)].astype(int)
    x = rng.normal(size=2 * n)
    ps_u1 = np.ones(2 * n)
    ps_u1[:n][rng.random(n) < 0.2] = 0  # participants: 80 % on support in the month before
    ps_u1[n:][rng.random(n) < 0.2 + shift] = 0
    pre = pd.DataFrame({"public_support_u1": ps_u1, "earnings_sek_mean24": rng.gamma(2.0, 1000.0, 2 * n)})
    bt = balance_table(pd.DataFrame({"t": t, "x": x}), "t", ["x"], weights=np.ones(2 * n), pre_period=pre)
    return BalanceResult(bt, None, t, np.ones(2 * n))


def test_balance_result_warns_on_a_pre_period_outcome_left_unbalanced():
    (w,) = _balance(0.15).warnings()
    assert isinstance(w, DesignWarning) and w.code == "pre_period_imbalance"
    (row,) = [r for r in w.values["rows"] if r["variable"] == "public_support_u1"]
    assert row["smd"] > 0.1 and row["mean_treated"] > row["mean_control"]
    assert w.values["threshold"] == 0.1
    smd = f"{row['smd']:.2g}"
    assert f"share on public support, month u−1: SMD {smd}" in w.text_en
    assert f"andel med offentlig försörjning, månad u−1: SMD {smd.replace('.', ',')}" in w.text_sv
    assert "exact: [ref_month, ps_u1]" in w.text_en and w.text("sv") == w.text_sv
    # 400 matched participants: chance alone gives |SMD| up to 1.96 · √(2 / 400) = 0.139 in one outcome
    assert w.values["n_treated"] == 400 and w.values["chance_smd"] == pytest.approx(1.96 * np.sqrt(2 / 400))
    assert (
        "With 400 matched participants one outcome can show an |SMD| up to about 0.14 by chance" in w.text_en
    )
    assert "Med 400 matchade deltagare kan ett enskilt utfall visa |SMD| upp till omkring 0,14" in w.text_sv
    assert w.to_dict()["code"] == "pre_period_imbalance"
    assert _balance(0.0).warnings() == ()  # balanced: nothing to say
    # disclosure: 400 participants and 400 controls publish the numbers; under a threshold of 401 none of them
    assert w.persons == (400, 400) and w.published(400) is w
    hidden = w.published(401)
    assert hidden.code == w.code and hidden.values == {"suppressed": True}
    assert hidden.text_en.startswith("Pre-period imbalance: after matching") and "SMD 0" not in hidden.text_en
    assert "rest on fewer than 401 persons" in hidden.text_en and "färre än 401 personer" in hidden.text_sv
    assert not any(
        ch.isdigit() for ch in hidden.text_en.split("|SMD| > 0.1")[1].replace("401", "").replace("u1", "")
    ), hidden.text_en


def test_pre_period_names_and_the_five_largest():
    assert pre_period_name("benefit_sek_mean24", "en") == "SEK public support, total, mean over u−24..u−1"
    assert pre_period_name("earnings_sek_u12", "sv") == "arbetsinkomst kr, månad u−12"
    assert pre_period_name("ps_u1", "en") == "ps_u1"  # not a pre-period row: the name itself
    rows = [
        {"variable": f"public_support_u{k}", "smd": 0.3 - k / 100, "mean_treated": 0.9, "mean_control": 0.8}
        for k in (1, 2, 3, 6, 12, 24)
    ]
    w = pre_period_warning(rows)
    assert "6 outcomes" in w.text_en and "and 1 more" in w.text_en and "och 1 till" in w.text_sv
    assert "month u−24" not in w.text_en and len(w.values["rows"]) == 6


def _study(p: float, alpha: float = 0.05) -> EventStudyResults:
    table = pd.DataFrame(
        {
            "rel_month": [-3, -2, -1, 0, 1],
            "estimate": [-0.02, -0.01, 0.0, 0.01, -0.03],
            "std_error": [0.005, 0.006, np.nan, 0.006, 0.007],
            "ci_lower": np.nan,
            "ci_upper": np.nan,
            "p_value": np.nan,
        }
    )
    return EventStudyResults("public_support", -1, table, 17.3, 2, p, 100, 1000, "person_id", alpha=alpha)


def test_event_study_result_warns_when_the_pretrend_test_rejects_at_the_configured_level():
    res = EventStudyResult({"public_support": _study(0.0002)}, pd.DataFrame())
    (w,) = res.warnings()
    assert w.code == "pretrend_rejected"
    # the lead with the largest |estimate / SE|: month −3 (t = −4) rather than −2 (t = −1.7)
    assert w.values["lead"] == {"rel_month": -3.0, "estimate": -0.02, "std_error": 0.005}
    assert "χ²(2) = 17.3, p = 0.0002 < 0.05; largest in month −3: −0.02 (SE 0.005)" in w.text_en
    assert "χ²(2) = 17,3, p = 0,0002 < 0,05; störst i månad −3: −0,02 (medelfel 0,005)" in w.text_sv
    assert "share on public support" in w.text_en
    # the level is inference.alpha: p = 0.07 rejects at 0.10, not at 0.05
    assert EventStudyResult({"o": _study(0.07, alpha=0.05)}, pd.DataFrame()).warnings() == ()
    # the persons behind the leads decide what is published
    counts = pd.DataFrame({"outcome": "public_support", "rel_month": [-3, -2, -1, 0, 1],
                           "n_treated": [3, 40, 40, 40, 40], "n_control": 50})  # fmt: skip
    (few,) = EventStudyResult({"public_support": _study(0.0002)}, counts).warnings()
    assert few.persons == (3, 50) and few.published(3) is few
    assert (
        "χ²" not in few.published(5).text_en
        and "rejects for share on public support" in few.published(5).text_en
    )
    (w10,) = EventStudyResult({"public_support": _study(0.07, alpha=0.10)}, pd.DataFrame()).warnings()
    assert w10.values["alpha"] == 0.10 and "< 0.1" in w10.text_en


def test_pretrend_warning_without_a_lead():
    w = pretrend_warning("self_support", 30.0, 11, 0.001, 0.05)
    assert "lead" not in w.values and "largest" not in w.text_en and "share self-supporting" in w.text_en


@pytest.mark.slow
def test_a_world_built_to_trigger_the_warnings(make_world, tmp_path):
    """A world with a pre-entry dip analysed with a design that leaves the register history out of the propensity
    score (demographics only): the matched controls were not on support before start as the participants were.
    The run says so — the pre-period imbalance and the rejected pre-trend test (and the contaminated controls of
    the default world) — in manifest.json, run.log and the report content."""
    from finsam_effekt.config import parse_config
    from finsam_effekt.pipeline import report_content, run
    from finsam_effekt.synth import SynthConfig

    world = make_world(SynthConfig(persons=12_000, seed=3, start="2016-01", end="2021-12", pre_entry_dip=1.0))
    cfg = parse_config(
        {
            "inputs": str(world.mapping),
            "window": {"start": "2018-01", "end": "2020-06"},
            "covariates": ["age", "sex", "education", "birth_region"],
            "estimators": ["weighted_mean_diff"],
            "outcomes": {"path_window": 12},
            "subgroups": [],
            "sensitivity": False,
            "cost_benefit": {"enabled": False},
        },
        tmp_path,
    )
    res = run(cfg, tmp_path / "out")
    man = json.loads((res.out / "manifest.json").read_text(encoding="utf-8"))
    codes = [w["code"] for w in man["design_warnings"]]
    assert {"pre_period_imbalance", "pretrend_rejected", "contamination"} <= set(codes)
    pre = next(w for w in man["design_warnings"] if w["code"] == "pre_period_imbalance")
    top = pre["values"]["rows"][0]
    assert abs(top["smd"]) > 0.3  # participants were on support much more often just before start
    pt = next(w for w in man["design_warnings"] if w["code"] == "pretrend_rejected")
    assert pt["values"]["p"] < 0.05 and pt["values"]["outcome"] == "public_support"
    log = (res.out / "run.log").read_text(encoding="utf-8")
    assert log.count("WARNING design:") == len(codes)
    balance = pd.read_csv(res.out / "balance.csv")
    flagged = balance[
        (balance["kind"] == "pre_period") & (balance["sample"] == "after") & balance["smd_flag"]
    ]
    assert top["variable"] in set(flagged["variable"])
    content = report_content(res.results)
    assert [w.code for w in content.warnings] == codes


@pytest.mark.slow
def test_a_world_with_the_dip_is_balanced_on_the_status_before_start(make_world, tmp_path):
    """Issue 15: on a world whose entry follows the status of the last one or two months, the default design
    (month-by-month history among the covariates) balances the status at u−1 (|SMD| ≤ 0.05), and the
    recommended exact stratum on ps_u1 balances it exactly; without the month-by-month history it is not."""
    from finsam_effekt.balance import balance_table
    from finsam_effekt.config import DEFAULT_COVARIATES, parse_config
    from finsam_effekt.matching import match_cohort
    from finsam_effekt.pipeline import run_until
    from finsam_effekt.synth import SynthConfig

    world = make_world(SynthConfig(persons=12_000, seed=3, start="2016-01", end="2021-12", pre_entry_dip=1.0))
    cfg = parse_config(
        {
            "inputs": str(world.mapping),
            "window": {"start": "2018-01", "end": "2020-06"},
            "cost_benefit": {"enabled": False},
        },
        tmp_path,
    )
    co = run_until(cfg, "cohort").cohort.cohort

    def status_smd(covariates, exact):
        res = match_cohort(co, cfg.matching, covariates=covariates, seed=cfg.seed, exact=exact)
        tab = balance_table(co, "treated", ["ps_u1", "source_u1"], weights=res.weights).to_frame()
        return tab[tab["sample"] == "after"].set_index("variable")["smd"].abs()

    default = status_smd(list(DEFAULT_COVARIATES), ["ref_month"])
    assert default["ps_u1"] <= 0.05, default.to_dict()
    # the main source at u−1 within chance with ~170 matched participants (chance_smd: 0.21)
    assert default.max() <= chance_smd(len(co[co["treated"] == 1])), default.to_dict()
    assert status_smd(list(DEFAULT_COVARIATES), ["ref_month", "ps_u1"])["ps_u1"] == 0.0
    # the entry hazard's sources at u−1 differ among participants and the pool: before matching they are unbalanced
    before = balance_table(co, "treated", ["source_u1"]).to_frame()["smd"].abs()
    assert before.max() > 0.3
