"""The analysis run: read → validate → link → panel → cohort → match → balance → effects → cost-benefit → report.

:func:`run` composes the stages' public functions with the settings of an :class:`~finsam_effekt.config.
AnalysisConfig`; it holds no stage logic of its own. Every stage is timed and its row count recorded (shown while
running, written to ``DIR/run.log`` and ``DIR/manifest.json``). Output is atomic (``report.atomic_output_dir``):
a failed run leaves no ``DIR``.

Stages marked *required* must succeed for a run to produce anything; the others (balance, event study,
sensitivity, cost-benefit) are reported as "not run" in the report with the reason when they cannot run (e.g. no
cost parameters) or fail (the traceback goes to ``run.log``), so a reader sees exactly what is missing. A user
error (``InputError``/``ConfigError``) in any stage stops the run.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from . import months
from . import report as _report
from .config import AnalysisConfig
from .errors import ConfigError, FinsamError, InputError

log = logging.getLogger("finsam_effekt.run")


class StageUnavailable(FinsamError):
    """A stage's function is not available in this installation (or cannot run on this config)."""


# --------------------------------------------------------------------------------------------------------------
# Explain
# --------------------------------------------------------------------------------------------------------------


def estimand_text(cfg: AnalysisConfig, lang: str | None = None) -> str:
    """The estimand in words (Swedish or English), as reported with every result."""
    lang = lang or cfg.language
    w, a = cfg.window, cfg.age
    hz = ", ".join(str(h) for h in cfg.outcomes.horizons)
    if lang == "sv":
        later = (
            "Jämförelsepersoner som själva börjar en insats senare behålls: effekten gäller att börja nu jämfört med "
            "att inte börja just nu (de kan börja senare)."
            if cfg.later_treated == "keep"
            else "Jämförelsepersoner som själva börjar en insats senare följs bara fram till sin egen start: "
            "effekten gäller att börja nu jämfört med att inte delta under uppföljningen."
            + (
                " De som ännu inte har börjat vägs upp med inversen av sannolikheten att inte ha börjat, givet "
                "registerhistoriken månad för månad (IPCW)."
                if cfg.censoring_weights == "ipcw"
                else ""
            )
        )
        return (
            f"Genomsnittlig effekt för deltagarna (ATT): för personer vars första kopplingsbara insats startade "
            f"mellan {w.start} och {w.end} och som var {a.min}–{a.max} år, skillnaden mellan deras utfall "
            f"{hz} månader efter startmånaden u (i månaden u+k och summerat över månad 1..k) och det utfall de "
            f"skulle ha haft utan att börja en insats i månad u. Det kontrafaktiska utfallet skattas med "
            f"matchade jämförelsepersoner från befolkningen som i månad u var lika i registerhistorik och "
            f"bakgrund, inte deltog i någon insats och uppfyllde behörighetsregeln ({cfg.eligibility.rule}, "
            f"{cfg.eligibility.lookback_months} månader bakåt). {later}"
        )
    later = (
        "Comparison persons who start an insats later are kept: the effect is of starting now versus not starting "
        "now (they may start later)."
        if cfg.later_treated == "keep"
        else "Comparison persons who start an insats later are followed only up to their own start: the effect is "
        "of starting now versus not taking part during follow-up."
        + (
            " Those not yet started are weighted by the inverse probability of not having started, given their "
            "register history month by month (IPCW)."
            if cfg.censoring_weights == "ipcw"
            else ""
        )
    )
    return (
        f"Average effect on the participants (ATT): for persons whose first linkable insats started between "
        f"{w.start} and {w.end}, aged {a.min}–{a.max}, the difference between their outcome {hz} months after the "
        f"start month u (in month u+k and summed over months 1..k) and the outcome they would have had without "
        f"starting an insats in month u. The counterfactual is estimated from matched comparison persons from the "
        f"population who in month u had the same register history and background, were in no insats and met the "
        f"eligibility rule ({cfg.eligibility.rule}, {cfg.eligibility.lookback_months} months back). {later}"
    )


def stage_plan(cfg: AnalysisConfig) -> list[tuple[str, str]]:
    """(stage, what it will do) for :func:`explain`, in run order."""
    m = cfg.matching
    cal = (
        "no caliper"
        if m.caliper is None
        else f"caliper {m.caliper}{' SD' if m.std_caliper else ''} of the distance"
    )
    return [
        (
            "read & validate",
            f"read {len(cfg.input_spec.tables)} input tables ({', '.join(cfg.input_spec.tables)}) "
            "into canonical tables and stop with a message on any error (io.read_inputs)",
        ),
        (
            "link",
            "drop anonymous registrations, merge double registrations into episodes (gap "
            f"{cfg.linkage.episode_gap_days} days), take the first linkable start as reference month u, find persons "
            "in the population and count the attrition at each step (linkage)",
        ),
        (
            "panel",
            "build the person-month panel of nettodagar, SEK per benefit group, social assistance and "
            f"earnings; self-support at ≥ {cfg.outcomes.self_support_threshold_sek:g} SEK/month (panel.person_months)",
        ),
        (
            "cohort",
            f"participants starting {cfg.window.start}..{cfg.window.end} aged {cfg.age.min}-{cfg.age.max} and, "
            f"per month u, candidate controls: residents not in any insats by u with rule {cfg.eligibility.rule} "
            f"and ≥ {cfg.eligibility.min_history_months} months of register history (as the participants) "
            f"(sample rate {cfg.eligibility.candidate_sample_rate:g}); register-history covariates at u (cohort, "
            "panel.history_features)",
        ),
        (
            "match",
            f"ipw: propensity score (logit{' + calendar-month effects' if m.time_effects else ''}) on "
            f"{len(cfg.covariates)} covariates; ATT weights e/(1−e) for every candidate control person-month"
            f"{f', scores clipped to [{m.ipw_trim}, {1 - m.ipw_trim}]' if m.ipw_trim else ''} "
            "(matching.ipw_weights; no matched pairs)"
            if m.method == "ipw"
            else f"{m.method}: propensity score (logit{' + calendar-month effects' if m.time_effects else ''}) on "
            f"{len(cfg.covariates)} covariates, distance {m.distance}, {m.ratio}:1, replace={m.replace}, {cal}, exact "
            f"on {', '.join(m.exact)}, order {m.m_order} (matching.match_nearest, MatchIt semantics)",
        ),
        (
            "balance",
            "standardized mean differences, variance ratios and eCDF statistics before/after (balance)",
        ),
        (
            "effects",
            f"estimators {', '.join(cfg.estimators)} for {len(cfg.outcomes.names)} outcomes at "
            f"{cfg.outcomes.horizons} months, se={cfg.inference.se} (cluster {cfg.inference.cluster}), subgroups "
            f"{', '.join(cfg.subgroups) or 'none'} (estimation.estimate_effects)",
        ),
        (
            "event study",
            f"{', '.join(cfg.event_study_outcomes)}: monthly effects u−{cfg.outcomes.path_window}.."
            f"u+{cfg.outcomes.path_window} with a pre-trend Wald test (estimation.event_study)"
            if cfg.event_study
            else "off",
        ),
        (
            "sensitivity",
            "Rosenbaum bounds, E-values, placebo outcomes and start dates" if cfg.sensitivity else "off",
        ),
        (
            "cost-benefit",
            "present values per financier, public-finance and socio-economic perspectives, from the "
            "estimated monthly effects (cost_benefit.cost_benefit)"
            if cfg.cost_benefit.enabled
            else "off",
        ),
        (
            "report",
            f"CSV, results.xlsx, figures/, report.html ({cfg.language}) and manifest.json, with every cell "
            f"resting on fewer than {cfg.disclosure_threshold} persons suppressed (report)",
        ),
    ]


def explain(cfg: AnalysisConfig, lang: str | None = None) -> str:
    """The resolved config (YAML), the estimand in words and what each stage will do."""
    resolved = yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True, width=110)
    lines = [
        "# Resolved config",
        resolved.rstrip(),
        "",
        "# Estimand",
        estimand_text(cfg, lang),
        "",
        "# Stages",
    ]
    for i, (name, what) in enumerate(stage_plan(cfg), 1):
        lines.append(f"{i:2d}. {name}: {what}")
    lines.append("")
    lines.append(f"config hash (SHA-256): {cfg.config_hash()}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------------
# Run
# --------------------------------------------------------------------------------------------------------------


@dataclass
class StageRecord:
    """Timing and size of one stage."""

    name: str
    seconds: float
    rows: int | None
    status: str  # ok | not_run | failed (optional stages only)
    note: str = ""


@dataclass
class RunResult:
    """What :func:`run` did: the output directory, per-stage records and the files written."""

    out: Path
    stages: list[StageRecord]
    files: list[Path]

    def to_frame(self) -> pd.DataFrame:
        """One row per stage: ``stage, status, rows, seconds, note``."""
        return pd.DataFrame(
            [(s.name, s.status, s.rows, round(s.seconds, 3), s.note) for s in self.stages],
            columns=["stage", "status", "rows", "seconds", "note"],
        )

    def summary(self) -> str:
        """Readable stage table and total time."""
        total = sum(s.seconds for s in self.stages)
        return f"run → {self.out}\n{self.to_frame().to_string(index=False)}\ntotal {total:.1f} s"


def _module(name: str) -> Any:
    try:
        return importlib.import_module(f"finsam_effekt.{name}")
    except ModuleNotFoundError as exc:
        raise StageUnavailable(f"module finsam_effekt.{name} is not available in this installation") from exc


def _fn(module: str, name: str) -> Callable:
    mod = _module(module)
    fn = getattr(mod, name, None)
    if fn is None:
        raise StageUnavailable(f"finsam_effekt.{module}.{name} is not available in this installation")
    return fn


@dataclass
class _Ctx:
    cfg: AnalysisConfig
    con: Any = None
    data: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    not_run: dict[str, str] = field(default_factory=dict)


def _rows(x: Any) -> int | None:
    if x is None:
        return None
    if isinstance(x, pd.DataFrame):
        return len(x)
    if hasattr(x, "num_rows"):
        return int(x.num_rows)
    if hasattr(x, "aggregate"):
        return int(x.aggregate("count(*)").fetchone()[0])
    return None


# -- stages: each calls one stage's public functions with typed settings ---------------------------------------


def _stage_read(ctx: _Ctx) -> int | None:
    io = _module("io")
    con, rep = io.read_inputs(ctx.cfg.input_spec)
    ctx.con = con
    ctx.data["validation"] = rep
    for w in rep.warnings:
        log.warning("validation: %s", w)
    return int(sum(v or 0 for v in rep.rows.values()))


def _table(ctx: _Ctx, name: str) -> Any:
    if name not in ctx.cfg.input_spec.tables:
        return None
    return ctx.con.table(name)


def _stage_link(ctx: _Ctx) -> int | None:
    link = _fn("linkage", "link_participants")
    cfg = ctx.cfg
    start, end = _data_range(ctx)
    ctx.data["start_month"], ctx.data["end_month"] = start, end
    ctx.facts["register_months"] = f"{start} – {end}"
    res = link(
        _table(ctx, "sus_registrations"),
        _table(ctx, "population"),
        window=(cfg.window.start, cfg.window.end),
        age_range=(cfg.age.min, cfg.age.max),
        sus_volume=_table(ctx, "sus_volume"),
        episode_gap_days=cfg.linkage.episode_gap_days,
        min_history_months=cfg.eligibility.min_history_months,
        register_start=start,
        disclosure_threshold=cfg.disclosure_threshold,
        benefit_spells=_table(ctx, "benefit_spells"),
        social_assistance=_table(ctx, "social_assistance"),
        con=ctx.con,
    )
    ctx.data["linkage"] = res
    ctx.tables["linkage_report"] = res.linkage_report
    sc = getattr(res, "support_consistency", None)
    if sc is not None and len(sc):
        ctx.tables["support_consistency"] = sc
        anyp = sc[sc["source"] == "any_public"]
        if len(anyp) and pd.notna(anyp["share_disagree"].iloc[0]):
            ctx.facts["sus_register_disagree_any_public"] = f"{float(anyp['share_disagree'].iloc[0]):.1%}"
    ctx.facts["participants"] = len(res.participants)
    return len(res.participants)


def _data_range(ctx: _Ctx) -> tuple[str, str]:
    """First and last month of register data: ``outcomes.data_end`` or the months in earnings/social assistance."""
    lo, hi = [], []
    for name in ("earnings", "social_assistance"):
        if name in ctx.cfg.input_spec.tables:
            a, b = ctx.con.sql(f"SELECT min(month), max(month) FROM {name}").fetchone()
            if a:
                lo.append(str(a))
                hi.append(str(b))
    if not hi:
        raise InputError(
            "cannot tell the months covered by the registers: no earnings or social_assistance rows; "
            "set outcomes.data_end in the config"
        )
    return min(lo), ctx.cfg.outcomes.data_end or max(hi)


def _stage_panel(ctx: _Ctx) -> int | None:
    person_months = _fn("panel", "person_months")
    end = ctx.data["end_month"]
    panel = person_months(
        _table(ctx, "benefit_spells"),
        _table(ctx, "social_assistance"),
        _table(ctx, "earnings"),
        _table(ctx, "population"),
        end_month=end,
        self_support_threshold=ctx.cfg.outcomes.self_support_threshold_sek,
        con=ctx.con,
        output="arrow",
    )
    ctx.data["panel"] = panel
    return _rows(panel)


def _stage_cohort(ctx: _Ctx) -> int | None:
    build = _fn("cohort", "build_cohort")
    cfg = ctx.cfg
    link = ctx.data["linkage"]
    cohort = build(
        link.participants,
        panel=ctx.data["panel"],
        population=_table(ctx, "population"),
        kommun_forbund=getattr(link, "kommun_forbund", None),
        sus_registrations=_table(ctx, "sus_registrations"),
        window=(cfg.window.start, cfg.window.end),
        age_range=(cfg.age.min, cfg.age.max),
        eligibility=cfg.eligibility.rule,
        lookback_months=cfg.eligibility.lookback_months,
        later_treated=cfg.later_treated,
        sample_rate=cfg.eligibility.candidate_sample_rate,
        min_history_months=cfg.eligibility.min_history_months,
        register_start=ctx.data["start_month"],
        end_month=ctx.data["end_month"],
        self_support_threshold=cfg.outcomes.self_support_threshold_sek,
        seed=cfg.seed,
        con=ctx.con,
    )
    ctx.data["cohort"] = cohort
    ctx.facts["candidate_control_months"] = int((cohort["treated"] == 0).sum())
    return len(cohort)


def _stage_match(ctx: _Ctx) -> int | None:
    cfg, m = ctx.cfg, ctx.cfg.matching
    if m.method == "ipw" and cfg.inference.se == "abadie_imbens":  # stop before the slow stages
        raise ConfigError(
            "inference.se: 'abadie_imbens' is the SE of nearest-neighbour matching; with matching.method "
            "'ipw' use se 'cluster' or 'bootstrap'"
        )
    res = _fn("matching", "match_cohort")(ctx.data["cohort"], m, covariates=cfg.covariates, seed=cfg.seed)
    ctx.data["propensity"] = res.propensity
    ctx.data["match"] = res.match  # None under matching.method: ipw (no pairs)
    if res.match is None:
        ctx.data["ipw_weights"] = res.weights
    matched = _with_participant_labels(res.matched_data(), ctx.data["linkage"].participants)
    ctx.data["matched"] = matched
    ctx.facts["matched_treated"] = int((matched["treated"] == 1).sum())
    ctx.facts["matched_controls"] = int((matched["treated"] == 0).sum())
    if res.match is not None:
        ctx.facts["unmatched_treated"] = len(res.match.unmatched)
    return len(matched)


def _with_participant_labels(matched: pd.DataFrame, participants: pd.DataFrame) -> pd.DataFrame:
    """Add the participants' SUS fields used for subgroups (``insats_type``, ``public_support_before``) to the
    treated rows (controls have none; ``estimation`` gives a control its matched treated's subgroup). Keeps the
    index, which the matching pairs refer to."""
    keys = ["person_id", "ref_month", "treated"]
    extra = [c for c in ("insats_type", "public_support_before") if c in participants and c not in matched]
    if not extra:
        return matched
    lab = participants[["person_id", "ref_month", *extra]].drop_duplicates(["person_id", "ref_month"]).copy()
    lab["person_id"] = lab["person_id"].astype(str)
    lab["ref_month"] = lab["ref_month"].astype(str)
    lab["treated"] = 1
    out = matched.copy()
    out["person_id"] = out["person_id"].astype(str)
    out["ref_month"] = out["ref_month"].astype(str)
    out["treated"] = out["treated"].astype(int)
    return out.join(lab.set_index(keys), on=keys)


def _stage_balance(ctx: _Ctx) -> int | None:
    bal = _module("balance")
    for name in ("match_balance", "love_plot", "ps_overlap_plot"):
        if not hasattr(bal, name):
            raise StageUnavailable(f"finsam_effekt.balance.{name} is not available in this installation")
    cohort, match = ctx.data["cohort"], ctx.data["match"]
    covs = [c for c in ctx.cfg.covariates if c in cohort.columns]
    if match is None:  # matching.method: ipw
        weights = ctx.data["ipw_weights"]
        res = bal.balance_table(cohort, "treated", covs, weights=weights, distance=ctx.data["propensity"].ps)
    else:
        weights = match.weights
        res = bal.match_balance(match, covs)
    ctx.data["balance"] = res
    frame = res.to_frame()
    ctx.tables["balance"] = frame
    ctx.figures["love_plot"] = bal.love_plot(res)
    ctx.figures["ps_overlap"] = bal.ps_overlap_plot(
        ctx.data["propensity"].ps, cohort["treated"].to_numpy(), weights
    )
    after = frame.loc[frame["sample"] == "after", "smd"].abs()
    if len(after):
        ctx.facts["max_abs_smd_after"] = round(float(after.max()), 3)
    return len(frame)


def _stage_outcomes(ctx: _Ctx) -> int | None:
    panel = _module("panel")
    cfg = ctx.cfg
    matched = ctx.data["matched"]
    hmax = max(max(cfg.outcomes.horizons), 12 if cfg.cost_benefit.enabled else 1)
    keys = matched.reset_index(drop=True)
    common = dict(
        panel=ctx.data["panel"],
        population=_table(ctx, "population"),
        end_month=ctx.data["end_month"],
        self_support_threshold=cfg.outcomes.self_support_threshold_sek,
        con=ctx.con,
    )
    ctx.data["outcome_kw"] = common
    ho = panel.horizon_outcomes(keys, tuple(range(1, hmax + 1)), **common)
    w = cfg.outcomes.path_window
    path_keys = [
        c
        for c in ("person_id", "ref_month", "treated", "weights", "subclass", "later_start_month")
        if c in keys.columns
    ]
    paths = panel.outcome_paths(keys[path_keys], (-w, w), **common)
    if cfg.later_treated == "censor" and "later_start_month" in ho.columns:
        if cfg.censoring_weights == "ipcw":
            cw = later_start_weights(ctx, ho, hmax)
            ho = pd.concat([ho, cw.weights], axis=1)
            ctx.facts["ipcw_later_starts"] = cw.n_events
        cens = _fn("cohort", "censor_at_later_start")
        ho, paths = cens(ho), cens(paths)
    ctx.data["outcomes"] = ho
    ctx.data["paths"] = paths
    ctx.tables["outcome_paths"] = _report.summarise_paths(paths, cfg.outcomes.names)
    return len(ho)


def later_start_weights(ctx: _Ctx | StageOutputs, ho: pd.DataFrame, horizon: int) -> Any:
    """Censoring weights for controls censored at their own later start (``cohort.later_start_ipcw``), as the
    outcomes stage computes them under ``later_treated: censor`` with ``censoring_weights: ipcw``: the hazard
    model uses the run's covariates measured month by month with ``panel.history_features`` on the run's panel.

    ``ctx``: the stages' results up to the cohort (a :class:`StageOutputs` from :func:`run_until`); ``ho``: the
    matched sample's ``horizon_outcomes`` for every month 1..``horizon``, before censoring."""
    cfg = ctx.cfg
    link = ctx.data["linkage"]

    def history(keys: pd.DataFrame) -> pd.DataFrame:
        return _module("panel").history_features(
            keys,
            ctx.data["panel"],
            _table(ctx, "population"),
            getattr(link, "kommun_forbund", None),
            end_month=ctx.data["end_month"],
            self_support_threshold=cfg.outcomes.self_support_threshold_sek,
            con=ctx.con,
            output="pandas",
        )

    return _fn("cohort", "later_start_ipcw")(ho, history, list(cfg.covariates), horizon)


def _stage_effects(ctx: _Ctx) -> int | None:
    est = _module("estimation")
    cfg = ctx.cfg
    data = ctx.data["outcomes"]
    covs = [c for c in cfg.covariates if c in data.columns]
    needs_pre = "matched_did" in cfg.estimators
    pairs = None
    if cfg.inference.se == "abadie_imbens":
        if ctx.data["match"] is None:
            raise ConfigError(
                "inference.se: 'abadie_imbens' is the SE of nearest-neighbour matching; with matching.method "
                "'ipw' use se 'cluster' or 'bootstrap'"
            )
        pairs = ctx.data["match"]  # the MatchResult: estimation maps its pairs by person_id/ref_month
    on_cohort = [e for e in cfg.estimators if e in est.COHORT_ESTIMATORS]
    others = [e for e in cfg.estimators if e not in est.COHORT_ESTIMATORS]
    common = dict(
        outcomes=list(cfg.outcomes.names),
        horizons=tuple(cfg.outcomes.horizons),
        covariates=covs,
        cluster=cfg.inference.cluster,
        n_boot=cfg.inference.bootstrap_reps,
        random_state=cfg.seed,
        horizon_weights="ipcw_" if "ipcw_1" in data.columns else None,
    )
    frames, res = [], None
    cs = _cs_panel(ctx) if any(e in est.PANEL_ESTIMATORS for e in others) else None
    if others:
        res = est.estimate_effects(
            data,
            estimators=others,
            se=cfg.inference.se,
            subgroups=[
                s for s in cfg.subgroups if s in data.columns or (s == "age_band" and "age" in data.columns)
            ],
            pre_period=ctx.data["paths"] if needs_pre else None,
            pairs=pairs,
            panel=cs[0] if cs else None,
            panel_units=cs[1] if cs else None,
            **common,
        )
        frames.append(res.to_frame())
    if on_cohort:
        # per subgroup the unmatched-cohort cross-checks fit their models on the subgroup's treated rows and
        # candidate control person-months; a subgroup variable known for participants only (a SUS field such as
        # insats_type) has no controls in the cohort, so it is left out for these estimators
        cohort = _cohort_outcomes(ctx)
        controls = cohort[cohort["treated"] == 0]
        sub_c, no_controls = [], []
        for s in cfg.subgroups:
            col = "age" if s == "age_band" and s not in cohort.columns else s
            known = col in cohort.columns and controls[col].notna().any()
            (sub_c if known else no_controls).append(s)
        res_c = est.estimate_effects(
            data,
            estimators=on_cohort,
            se="cluster" if cfg.inference.se == "abadie_imbens" else cfg.inference.se,
            subgroups=sub_c,
            cohort=cohort,
            **common,
        )
        frames.append(res_c.to_frame())
        for note in res_c.notes:
            if "did not converge" in note:
                log.warning("effects: %s", note)
        res = res or res_c
        if no_controls:
            ctx.not_run[f"effects: {', '.join(on_cohort)} by {', '.join(no_controls)}"] = (
                "the unmatched comparison pool has no value of this participant-only field (the matched estimators "
                "give these subgroups: a control takes its matched participant's value)"
            )
    frame = pd.concat(frames, ignore_index=True)
    ctx.data["effects"] = res
    ctx.tables["effects"] = frame
    return len(frame)


def _cohort_outcomes(ctx: _Ctx) -> pd.DataFrame:
    """The unmatched cohort (every treated row and candidate control person-month) with horizon outcomes and the
    participants' subgroup labels: the sample of the ``ipw``/``aipw`` estimators. Under ``matching.method: ipw``
    the outcomes table already covers the whole cohort and is reused."""
    cfg = ctx.cfg
    if ctx.data.get("match", True) is None:
        return ctx.data["outcomes"]
    cohort = _with_participant_labels(ctx.data["cohort"], ctx.data["linkage"].participants).reset_index(
        drop=True
    )
    ho = _module("panel").horizon_outcomes(cohort, tuple(cfg.outcomes.horizons), **ctx.data["outcome_kw"])
    if cfg.later_treated == "censor" and "later_start_month" in ho.columns:
        ho = _fn("cohort", "censor_at_later_start")(ho)
    return ho


def _cs_panel(ctx: _Ctx) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sparse panel and its units for Callaway & Sant'Anna (2021) (``estimation.callaway_santanna(units=...)``).

    Units: everybody in the cohort (participants and candidate controls, i.e. persons eligible in some month),
    with ``first_treated`` (a participant's ``ref_month``; for a candidate control its own first insats start,
    ``later_start_month``; empty if never) and the observed months ``observed_from``..``observed_to``: from the
    month before the window up to the last horizon after the window's end (at most the end of data), from
    immigration on and before death/emigration. Panel: the units' rows of the sparse ``person_months`` in that
    range; the estimator reads absent months inside a unit's range as 0 (as ``person_months`` means them), so the
    dense person × month panel (~1.2 million rows on the example) is never built.
    """
    cfg = ctx.cfg
    mo = _module("months")
    cohort = ctx.data["cohort"]
    first = cohort["ref_month"].where(cohort["treated"] == 1, cohort["later_start_month"])
    persons = (
        pd.DataFrame({"person_id": cohort["person_id"].astype(str), "first_treated": first})
        .sort_values(["person_id", "first_treated"], na_position="last")
        .drop_duplicates("person_id")
    )
    m0 = int(mo.to_index(cfg.window.start)) - 1
    m1 = min(
        int(mo.to_index(cfg.window.end)) + max(cfg.outcomes.horizons), int(mo.to_index(ctx.data["end_month"]))
    )
    outs = [o for o in cfg.outcomes.names]
    con = ctx.con
    con.register("__cs_persons", persons)
    con.register("__cs_panel", ctx.data["panel"])
    has_pop = "population" in cfg.input_spec.tables
    pop_join = (
        "LEFT JOIN population p ON p.person_id = c.person_id"
        if has_pop
        else "LEFT JOIN (SELECT NULL::VARCHAR AS "
        "person_id, NULL::DATE AS death_date, NULL::DATE AS emigration_date, NULL::DATE AS immigration_date "
        "LIMIT 0) p ON p.person_id = c.person_id"
    )
    cols = ", ".join(f"coalesce(pm.{o}, 0)::DOUBLE AS {o}" for o in outs)
    try:
        units = con.sql(f"""
            SELECT c.person_id, c.first_treated,
                   greatest({m0}, coalesce({months.sql_date_index("p.immigration_date")}, -1)) AS lo,
                   least({m1}, least(coalesce({months.sql_date_index("p.death_date")}, 1e9),
                                     coalesce({months.sql_date_index("p.emigration_date")}, 1e9)) - 1)::BIGINT AS hi
            FROM __cs_persons c {pop_join}
            ORDER BY c.person_id
        """).df()
        sparse = con.sql(f"""
            SELECT pm.person_id, pm.month, {cols}
            FROM __cs_panel pm SEMI JOIN __cs_persons c ON c.person_id = pm.person_id
            WHERE pm.month BETWEEN '{mo.from_index(m0)}' AND '{mo.from_index(m1)}'
            ORDER BY pm.person_id, pm.month
        """).df()
    finally:
        con.unregister("__cs_persons")
        con.unregister("__cs_panel")
    units["observed_from"] = mo.from_index(units.pop("lo").to_numpy(np.int64))
    units["observed_to"] = mo.from_index(units.pop("hi").to_numpy(np.int64))
    return sparse, units


def _stage_event_study(ctx: _Ctx) -> int | None:
    es_fn = _fn("estimation", "event_study")
    w = ctx.cfg.outcomes.path_window
    frames, tests = [], []
    for o in ctx.cfg.event_study_outcomes:
        r = es_fn(
            ctx.data["paths"],
            outcome=o,
            window=(-w, w),
            cluster=ctx.cfg.inference.cluster
            if ctx.cfg.inference.cluster in ctx.data["paths"].columns
            else "person_id",
        )
        t = r.to_frame()
        if "outcome" not in t.columns:
            t.insert(0, "outcome", o)
        frames.append(t)
        tests.append((o, r.pretrend_wald, r.pretrend_df, r.pretrend_p))
    ctx.tables["event_study"] = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    for o, wald, df_, p in tests:
        ctx.facts[f"pretrend:{o}"] = f"χ²({df_}) = {wald:.2f}, p = {p:.3f}"
    return len(ctx.tables["event_study"])


def _stage_sensitivity(ctx: _Ctx) -> int | None:
    fn = _fn("estimation", "sensitivity_analysis")
    if ctx.data["match"] is None:
        raise StageUnavailable(
            "Rosenbaum bounds and the placebo checks need matched pairs; matching.method is 'ipw' (no pairs)"
        )
    res = fn(
        ctx.data["outcomes"],
        ctx.data["match"],
        paths=ctx.data["paths"],
        outcomes=list(ctx.cfg.outcomes.names),
        horizons=ctx.cfg.outcomes.horizons,
        cluster=ctx.cfg.inference.cluster,
        alpha=ctx.cfg.inference.alpha,
    )
    frame = res.to_frame() if hasattr(res, "to_frame") else res
    ctx.tables["sensitivity"] = frame
    return len(frame)


def _stage_cost_benefit(ctx: _Ctx) -> int | None:
    cb = _module("cost_benefit")
    cfg = ctx.cfg
    est = _module("estimation")
    params = cfg.cost_benefit_parameters
    main = cfg.estimators[0]
    data = ctx.data["outcomes"]
    hmax = max(max(cfg.outcomes.horizons), 12)
    eff = est.estimate_effects(
        data,
        outcomes=list(cb.REQUIRED_OUTCOMES),
        horizons=tuple(range(1, hmax + 1)),
        measures=("status",),
        estimators=[main if main in est.MATCHED_ESTIMATORS else "weighted_mean_diff"],
        covariates=[c for c in cfg.covariates if c in data.columns],
        se="cluster",
        cluster=cfg.inference.cluster,
        random_state=cfg.seed,
        pre_period=ctx.data["paths"] if main == "matched_did" else None,
    )
    cost = None
    if "insats_costs" in cfg.input_spec.tables and hasattr(cb, "cost_per_participant"):
        try:
            cost = cb.cost_per_participant(
                ctx.con.table("insats_costs").df(),
                ctx.data["linkage"].participants,
                sus_volume=_table(ctx, "sus_volume"),
                sus_registrations=_table(ctx, "sus_registrations"),
                params=params,
            )
        except TypeError as exc:  # signature not as expected: fall back to the parameters' cost
            log.warning("cost_per_participant not used: %s", exc)
    draws = eff.draws(eff.to_frame()["estimator"].iloc[0], n=params.monte_carlo.n_draws, seed=cfg.seed)
    res = cb.cost_benefit(
        eff.to_frame(),
        params,
        cost_per_participant_sek=cost,
        draws=draws,
        before_after_paths=ctx.data["paths"],
    )
    ctx.data["cost_benefit"] = res
    ctx.tables["cost_benefit"] = res.to_frame()
    if getattr(res, "before_after", None) is not None:
        cmp = res.comparison_frame()
        ctx.tables["cost_benefit_methods"] = cmp
        tot = cmp[(cmp["perspective"] == "public_finance") & (cmp["financier"] == "public_sector_total")]
        if len(tot):
            r = tot.iloc[0]
            ctx.facts["net_public_sector_counterfactual_sek"] = round(float(r["net_point_counterfactual"]))
            ctx.facts["net_public_sector_before_after_sek"] = round(float(r["net_point_before_after"]))
    for name, meth in (("waterfall", "waterfall_figure"), ("tornado", "tornado_figure")):
        ctx.figures[name] = getattr(res, meth)()
    ctx.facts["cost_per_participant_sek"] = round(float(res.cost_per_participant_sek))
    return len(ctx.tables["cost_benefit"])


#: (name, function, required) in run order.
STAGES: tuple[tuple[str, Callable[[_Ctx], int | None], bool], ...] = (
    ("read & validate", _stage_read, True),
    ("link", _stage_link, True),
    ("panel", _stage_panel, True),
    ("cohort", _stage_cohort, True),
    ("match", _stage_match, True),
    ("balance", _stage_balance, False),
    ("outcomes", _stage_outcomes, True),
    ("effects", _stage_effects, True),
    ("event study", _stage_event_study, False),
    ("sensitivity", _stage_sensitivity, False),
    ("cost-benefit", _stage_cost_benefit, False),
)


def _enabled(cfg: AnalysisConfig, name: str) -> str | None:
    if name == "event study" and not cfg.event_study:
        return "turned off in the config (event_study: false)"
    if name == "sensitivity" and not cfg.sensitivity:
        return "turned off in the config (sensitivity: false)"
    if name == "cost-benefit" and not cfg.cost_benefit.enabled:
        return "turned off in the config (cost_benefit.enabled: false)"
    return None


def _run_stage(
    ctx: _Ctx,
    name: str,
    fn: Callable[[_Ctx], int | None],
    required: bool,
    reason: str | None,
    keep_going: bool,
) -> StageRecord:
    """Run one stage (or record why it does not run). A stage that cannot run (``StageUnavailable``) stops the run
    when it is required and is noted otherwise; with ``keep_going`` (``run``) any other defect of an optional
    stage is logged and noted instead of costing the whole report, without it (``run_until``) it is raised."""
    if reason is not None:
        ctx.not_run[name] = reason
        return StageRecord(name, 0.0, None, "not_run", reason)
    t0 = time.perf_counter()
    try:
        rows = fn(ctx)
        return StageRecord(name, time.perf_counter() - t0, rows, "ok")
    except StageUnavailable as exc:
        if required:
            log.error("%s: %s", name, exc)
            raise StageUnavailable(f"stage '{name}' cannot run: {exc}") from exc
        ctx.not_run[name] = str(exc)
        return StageRecord(name, time.perf_counter() - t0, None, "not_run", str(exc))
    except FinsamError:
        raise
    except Exception as exc:  # an optional stage's defect must not cost the whole report
        if required or not keep_going:
            raise
        log.exception("%s failed", name)
        note = f"failed with {type(exc).__name__}: {exc} (traceback in run.log)"
        ctx.not_run[name] = note
        return StageRecord(name, time.perf_counter() - t0, None, "failed", note)


def run(
    cfg: AnalysisConfig,
    out: Path,
    *,
    force: bool = False,
    on_stage: Callable[[StageRecord], None] | None = None,
    on_start: Callable[[str], None] | None = None,
) -> RunResult:
    """Run the configured analysis and write every output into ``out`` (atomically).

    Parameters
    ----------
    cfg
        A resolved config (:func:`~finsam_effekt.config.load_config`).
    out
        Output directory; must not exist unless ``force``.
    on_start, on_stage
        Callbacks for progress display: called with the stage name before and the :class:`StageRecord` after
        each stage.

    Raises
    ------
    InputError, ConfigError
        Bad input or config (nothing is written).
    StageUnavailable
        A required stage is missing in this installation (nothing is written).
    """
    np.random.seed(cfg.seed)  # noqa: NPY002 - legacy global RNG, for any library call that still uses it
    records: list[StageRecord] = []
    with _report.atomic_output_dir(out, force=force) as tmp:
        handler = logging.FileHandler(tmp / "run.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        try:
            log.info("finsam_effekt run; config hash %s; seed %d", cfg.config_hash(), cfg.seed)
            ctx = _Ctx(cfg)
            for name, fn, required in STAGES:
                reason = _enabled(cfg, name)
                if on_start:
                    on_start(name)
                rec = _run_stage(ctx, name, fn, required, reason, keep_going=True)
                records.append(rec)
                log.info(
                    "stage %-16s %-8s rows=%s %.2fs %s", name, rec.status, rec.rows, rec.seconds, rec.note
                )
                if on_stage:
                    on_stage(rec)
            if on_start:
                on_start("report")
            t0 = time.perf_counter()
            content = _report.ReportContent(
                tables=ctx.tables,
                figures=ctx.figures,
                title=cfg.title,
                question=cfg.question,
                estimand=estimand_text(cfg),
                facts=ctx.facts,
                not_run=ctx.not_run,
                main_estimator=cfg.estimators[0],
                config_hash=cfg.config_hash(),
            )
            files = _report.write_outputs(content, tmp, lang=cfg.language, threshold=cfg.disclosure_threshold)
            rec = StageRecord("report", time.perf_counter() - t0, len(files), "ok")
            records.append(rec)
            log.info("stage %-16s ok rows=%d %.2fs", "report", len(files), rec.seconds)
            if on_stage:
                on_stage(rec)
            manifest = _report.write_manifest(
                tmp,
                config=cfg.to_dict(),
                config_hash=cfg.config_hash(),
                inputs={k: t.path for k, t in cfg.input_spec.tables.items()},
                seed=cfg.seed,
                timings={r.name: r.seconds for r in records},
                rows={r.name: r.rows for r in records if r.rows is not None},
                outputs=[*files, tmp / "run.log"],
                extra={"not_run": ctx.not_run},
            )
            files.append(manifest)
        finally:
            log.removeHandler(handler)
            handler.close()
    out = Path(out).resolve()
    files = [out / p.relative_to(tmp) for p in [*files, tmp / "run.log"]]
    return RunResult(out, records, files)


# --------------------------------------------------------------------------------------------------------------
# Run part of the analysis (validation, notebooks)
# --------------------------------------------------------------------------------------------------------------


@dataclass
class StageOutputs:
    """What the stages up to a given stage produced (:func:`run_until`), in memory; nothing is written.

    ``data`` holds the stage results under these keys (present once their stage ran):

    - read: ``validation`` (``io.ValidationReport``);
    - link: ``linkage`` (``linkage.LinkageResult``: ``participants``, ``linkage_report``, …), ``start_month``
      and ``end_month`` (first and last register month, ``YYYY-MM``);
    - panel: ``panel`` (``person_months``, an Arrow table);
    - cohort: ``cohort`` (the ``cohort`` table);
    - match: ``propensity`` (``matching.PropensityResult``), ``match`` (``matching.MatchResult``; None under
      ``matching.method: ipw``), ``ipw_weights`` (per cohort row, IPW only), ``matched`` (the matched sample
      with the participants' subgroup labels) — see :func:`finsam_effekt.matching.match_cohort`;
    - balance: ``balance`` (``balance.BalanceTable``);
    - outcomes: ``outcomes`` (``horizon_outcomes`` of the matched sample, horizons 1..max) and ``paths``
      (``outcome_paths``), controls censored at their own start under ``later_treated: censor``; ``outcome_kw``
      (the keyword arguments the outcome functions got: panel, population, end month, …);
    - effects: ``effects`` (``estimation.EffectResults``).

    Attributes
    ----------
    cfg : AnalysisConfig
    con : duckdb.DuckDBPyConnection
        Holds the canonical input tables (``table(name)``); stays open while this object is used.
    data : dict
        See above.
    tables, facts, not_run : dict
        The report tables, key figures and "not run" notes so far (as :func:`run` collects them).
    stages : list of StageRecord
        Timing, rows and status of each stage that was considered.
    """

    cfg: AnalysisConfig
    con: Any
    data: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    facts: dict[str, Any]
    not_run: dict[str, str]
    stages: list[StageRecord]

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def table(self, name: str) -> Any:
        """A canonical input table as a DuckDB relation, or None when the input spec does not have it."""
        if name not in self.cfg.input_spec.tables:
            return None
        return self.con.table(name)


#: Stage names accepted by :func:`run_until`, in run order.
STAGE_NAMES: tuple[str, ...] = tuple(name for name, _fn_, _req in STAGES)


def run_until(cfg: AnalysisConfig, stage: str, *, skip: Sequence[str] = ()) -> StageOutputs:
    """Run the stages of :func:`run` in order up to and including ``stage``, in memory, and return their results.

    The stages, their settings and the seed (``numpy``'s global seed is set as in :func:`run`) are those of
    :func:`run`, so the tables are the ones a full run computes; no report or manifest is written. Stages turned
    off in the config are skipped (recorded in ``not_run``), as are the optional stages named in ``skip`` (e.g.
    ``skip=("balance",)`` when only the effects are wanted). An optional stage that cannot run
    (``StageUnavailable``) is recorded in ``not_run``; any other error propagates (unlike :func:`run`, which
    reports an optional stage's failure and goes on), so a validation script never reads a silent gap.

    Parameters
    ----------
    cfg : AnalysisConfig
        A resolved config (:func:`~finsam_effekt.config.load_config`).
    stage : str
        The last stage to run, one of :data:`STAGE_NAMES` (``"read & validate"``, ``"link"``, ``"panel"``,
        ``"cohort"``, ``"match"``, ``"balance"``, ``"outcomes"``, ``"effects"``, ``"event study"``,
        ``"sensitivity"``, ``"cost-benefit"``).
    skip : sequence of str
        Optional stages (balance, event study, sensitivity, cost-benefit) not to run.

    Returns
    -------
    StageOutputs

    Raises
    ------
    ConfigError
        ``stage`` or a name in ``skip`` is not a stage, or ``skip`` names a required stage.
    InputError, StageUnavailable
        As :func:`run`.

    Examples
    --------
    >>> out = run_until(load_config("config.yaml"), "outcomes", skip=["balance"])  # doctest: +SKIP
    >>> out["outcomes"].filter(like="public_support_m").mean()  # doctest: +SKIP
    """
    names = [name for name, _f, _r in STAGES]
    if stage not in names:
        raise ConfigError(f"run_until: unknown stage {stage!r}; stages in run order: {', '.join(names)}")
    required = {name for name, _f, req in STAGES if req}
    bad = [s for s in skip if s not in names]
    if bad:
        raise ConfigError(f"run_until: skip names unknown stages {bad}; stages: {', '.join(names)}")
    bad = [s for s in skip if s in required]
    if bad:
        raise ConfigError(f"run_until: stages {bad} are required by the later stages and cannot be skipped")
    np.random.seed(cfg.seed)  # noqa: NPY002 - as run()
    ctx = _Ctx(cfg)
    records: list[StageRecord] = []
    for name, fn, req in STAGES[: names.index(stage) + 1]:
        reason = "skipped (run_until skip=)" if name in skip else _enabled(cfg, name)
        records.append(_run_stage(ctx, name, fn, req, reason, keep_going=False))
    return StageOutputs(ctx.cfg, ctx.con, ctx.data, ctx.tables, ctx.facts, ctx.not_run, records)
