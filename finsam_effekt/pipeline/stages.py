"""The stages of a run: each takes the config and earlier stages' typed results and returns one typed result.

A stage function holds no statistics of its own: it reads its settings from the config and calls the stage
module's public function(s) with them (``linkage.link_participants``, ``panel.person_months``, …). The order and
the inputs of the stages are declared once, in ``pipeline.chain.CHAIN``.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from .. import attrition as attrition_mod
from .. import balance as balance_mod
from .. import cohort as cohort_mod
from .. import contamination as contamination_mod
from .. import cost_benefit as cb_mod
from .. import estimation, io, linkage, matching, months, tables
from .. import panel as panel_mod
from ..config import AnalysisConfig
from ..cost_benefit.results import CostBenefitInputs
from ..errors import FinsamError, InputError
from ..estimand import short_estimand
from ..schema import outcome_end_months
from .results import (
    AttritionResult,
    BalanceResult,
    CohortResult,
    ColumnFile,
    ContaminationResult,
    ContaminationShareResult,
    CostBenefitResult,
    EffectsResult,
    EventStudyResult,
    LinkResult,
    MatchStageResult,
    OutcomeTables,
    PanelResult,
    ReadResult,
    SensitivityResult,
    TableFile,
)

log = logging.getLogger("finsam_effekt.run")


class StageUnavailable(FinsamError):
    """A stage cannot run on this config or these data (e.g. sensitivity without matched pairs); an optional stage
    that raises it is reported as not run, with the message as the reason."""


# -- read & validate ---------------------------------------------------------------------------------------------
def read(cfg: AnalysisConfig) -> ReadResult:
    """Read every input table into DuckDB as a canonical view and validate it (``io.read_inputs``), on a
    connection with the config's engine settings (threads, memory limit, spill directory)."""
    eng = cfg.engine
    con = io.connect(memory_limit=eng.memory_limit, threads=eng.threads)
    if eng.temp_directory is not None:
        eng.temp_directory.mkdir(parents=True, exist_ok=True)
        con.execute(f"SET temp_directory = '{eng.temp_directory}'")
    con, rep = io.read_inputs(cfg.input_spec, con, required=io.ANALYSIS_TABLES)
    for w in rep.warnings:
        log.warning("validation: %s", w)
    start = first_register_month(con, cfg)
    tables = frozenset(cfg.input_spec.tables)
    ends = io.register_ends(
        io.last_complete_months(con, tables), dict(cfg.outcomes.register_end), cfg.outcomes.data_end
    )
    if not ends:
        raise InputError(
            "cannot tell the months the registers cover: benefit_spells, social_assistance and earnings have no rows"
        )
    return ReadResult(con, rep, tables, start, max(ends.values()), ends, io.absent_outcomes(con, tables))


def first_register_month(con, cfg: AnalysisConfig) -> str:
    """First month of register data: the earliest month in earnings and social assistance."""
    lo = []
    for name in ("earnings", "social_assistance"):
        if name in cfg.input_spec.tables:
            a = con.sql(f"SELECT min(month) FROM {name}").fetchone()[0]
            if a:
                lo.append(str(a))
    if not lo:
        raise InputError(
            "cannot tell the first month of register data: no earnings or social_assistance rows"
        )
    return min(lo)


# -- link ----------------------------------------------------------------------------------------------------------
def link(cfg: AnalysisConfig, read: ReadResult) -> LinkResult:
    """Participants, episodes and the attrition report (``linkage.link_participants``)."""
    first_end = min(read.register_ends, key=read.register_ends.get)
    if cfg.window.end > read.register_ends[first_end]:
        end = read.register_ends[first_end]
        raise InputError(
            f"window.end {cfg.window.end} is after the last complete month of {first_end} ({end}): the register "
            f"history of later starts would read its missing months as none; end the window at {end} or earlier"
        )
    res = linkage.link_participants(
        read.table("sus_registrations"),
        read.table("population"),
        window=(cfg.window.start, cfg.window.end),
        age_range=(cfg.age.min, cfg.age.max),
        sus_volume=read.table("sus_volume"),
        episode_gap_days=cfg.linkage.episode_gap_days,
        min_history_months=cfg.eligibility.min_history_months,
        register_start=read.register_start,
        disclosure_threshold=cfg.disclosure_threshold,
        benefit_spells=read.table("benefit_spells"),
        social_assistance=read.table("social_assistance"),
        con=read.con,
    )
    return LinkResult(res)


# -- panel ---------------------------------------------------------------------------------------------------------
#: The input tables whose rows are the panel build's input stream (the rows its sort orders).
PANEL_STREAM_TABLES = ("benefit_spells", "social_assistance", "earnings")


def panel(cfg: AnalysisConfig, read: ReadResult) -> PanelResult:
    """The sparse person-month panel (``panel.person_months``), written as Parquet parts to the run's work area
    (never held whole in memory; every later stage reads it lazily). The number of parts (hash partitions of the
    persons, each sorted on its own) is ``panel.panel_partitions`` of the input rows and the engine's memory
    limit: one part's sort fits in half of it."""
    rows = sum(int(read.validation.rows.get(t) or 0) for t in PANEL_STREAM_TABLES)
    parts = panel_mod.panel_partitions(rows, tables.memory_limit_bytes(read.con))
    out = work_directory(cfg) / "person_months"
    out.mkdir()
    panel_mod.person_months(
        read.table("benefit_spells"),
        read.table("social_assistance"),
        read.table("earnings"),
        read.table("population"),
        end_month=read.register_end,
        self_support_threshold=cfg.outcomes.self_support_threshold_sek,
        con=read.con,
        parquet_path=out if parts > 1 else out / "part-0000.parquet",
        partitions=parts,
    )
    return PanelResult(out)


def work_directory(cfg: AnalysisConfig) -> Path:
    """A fresh folder for one stage's large tables: in ``engine.temp_directory`` (or the system's temporary
    folder), removed when the process ends unless the stage cache took the tables over."""
    base = cfg.engine.temp_directory
    if base is not None:
        base.mkdir(parents=True, exist_ok=True)
    d = Path(tempfile.mkdtemp(prefix="finsam_work_", dir=base))
    atexit.register(shutil.rmtree, d, True)
    return d


# -- cohort --------------------------------------------------------------------------------------------------------
def cohort(cfg: AnalysisConfig, read: ReadResult, link: LinkResult, panel: PanelResult) -> CohortResult:
    """Participants at u and candidate control person-months with history features (``cohort.build_cohort``),
    and why each participant who does not enter the cohort leaves (``cohort.treated_attrition``, computed once
    and passed to ``build_cohort``)."""
    kw = cohort_arguments(cfg, read, link, panel)
    status = cohort_mod.treated_attrition(
        link.participants,
        kw["panel"],
        kw["population"],
        window=kw["window"],
        age_range=kw["age_range"],
        eligibility=kw["eligibility"],
        lookback_months=kw["lookback_months"],
        min_history_months=kw["min_history_months"],
        register_start=kw["register_start"],
        con=kw["con"],
    )
    # the pre-period path (read by the balance stage only) goes to a file: written by the stream batch by batch,
    # or moved out of the frame the engine's join gave
    path = work_directory(cfg) / "pre_period.parquet"
    co = cohort_mod.build_cohort(
        link.participants, later_treated=cfg.later_treated, treated_status=status, pre_period=path, **kw
    )
    pre = ColumnFile(path) if path.exists() else pre_period_to_disk(co, path)
    return CohortResult(co, status, pre_period=pre)


def pre_period_to_disk(co: pd.DataFrame, path: Path) -> ColumnFile | None:
    """Move the cohort's pre-period path (``panel.pre_period_columns()``, which only the balance stage reads) out
    of ``co`` into the Parquet file ``path``; None when ``co`` does not carry it. At 10⁶ persons the 24 columns
    are 1.2 GB of a 2.5 GB cohort that every later stage would otherwise hold in memory."""
    cols = [c for c in panel_mod.pre_period_columns() if c in co.columns]
    if not cols:
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    with pq.ParquetWriter(path, pa.schema([(c, pa.from_numpy_dtype(co[c].dtype)) for c in cols])) as w:
        for s in range(0, len(co), PRE_PERIOD_ROWS_PER_GROUP):
            part = co.iloc[s : s + PRE_PERIOD_ROWS_PER_GROUP]
            w.write_table(pa.table({c: part[c].to_numpy() for c in cols}))
    for c in cols:
        del co[c]  # in place: the other columns' memory is not copied
    return ColumnFile(path)


#: Rows per row group of the pre-period file (a row group is written from views of the cohort's columns).
PRE_PERIOD_ROWS_PER_GROUP = 1_000_000


def cohort_arguments(cfg: AnalysisConfig, read: ReadResult, link: LinkResult, panel: PanelResult) -> dict:
    """The keyword arguments of ``cohort.build_cohort`` (and ``cohort.former_participants``) in this run."""
    return dict(
        panel=panel.person_months,
        population=read.table("population"),
        kommun_forbund=link.linkage.kommun_forbund,
        sus_registrations=read.table("sus_registrations"),
        window=(cfg.window.start, cfg.window.end),
        age_range=(cfg.age.min, cfg.age.max),
        eligibility=cfg.eligibility.rule,
        lookback_months=cfg.eligibility.lookback_months,
        sample_rate=cfg.eligibility.candidate_sample_rate,
        min_history_months=cfg.eligibility.min_history_months,
        register_start=read.register_start,
        end_month=read.register_end,
        self_support_threshold=cfg.outcomes.self_support_threshold_sek,
        seed=cfg.seed,
        con=read.con,
    )


# -- match ---------------------------------------------------------------------------------------------------------
def match(cfg: AnalysisConfig, link: LinkResult, cohort: CohortResult) -> MatchStageResult:
    """Propensity score, then nearest-neighbour matching or IPW weights (``matching.match_cohort``)."""
    res = matching.match_cohort(cohort.cohort, cfg.matching, covariates=cfg.covariates, seed=cfg.seed)
    return MatchStageResult(res, with_participant_labels(res.matched_data(), link.participants))


def with_participant_labels(matched: pd.DataFrame, participants: pd.DataFrame) -> pd.DataFrame:
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


# -- balance -------------------------------------------------------------------------------------------------------
def balance(
    cfg: AnalysisConfig, read: ReadResult, panel: PanelResult, cohort: CohortResult, match: MatchStageResult
) -> BalanceResult:
    """Balance before and after matching (``balance.match_balance``; IPW: ``balance.balance_table``) on the model's
    covariates and on the main outcomes' pre-period path (``panel.pre_period_outcomes``: u−1, u−2, u−3, u−6,
    u−12 and the mean over u−24..u−1), for every cohort row (before) and the matched sample (after)."""
    co, res = cohort.cohort, match.result
    covs = [c for c in cfg.covariates if c in co.columns]
    pre_cols = panel_mod.pre_period_columns()
    data = co if res.match is None else res.match.data  # the frame balance_table reads (the cohort)
    pre: pd.DataFrame | list[str] | dict
    if cohort.pre_period is not None:  # on disk until now: read a column at a time (24 × 5·10⁷ values: ~6 GB)
        pre = cohort.pre_period.loaders(pre_cols)
    elif all(c in data.columns for c in pre_cols):  # build_cohort measured them with the history features
        pre = list(pre_cols)  # by name: read a column at a time, no copy of 24 columns × 10⁷ rows
    else:
        pre = panel_mod.pre_period_outcomes(
            co[["person_id", "ref_month"]], panel.person_months, con=read.con, output="pandas"
        )[pre_cols]
    if res.match is None:  # matching.method: ipw
        table = balance_mod.balance_table(
            co, "treated", covs, weights=res.weights, distance=res.propensity.ps, pre_period=pre
        )
        weights = res.weights
    else:
        table = balance_mod.match_balance(res.match, covs, pre_period=pre)
        weights = res.match.weights
    return BalanceResult(table, res.propensity.ps, co["treated"].to_numpy() == 1, weights)  # 1 byte a row


# -- outcomes ------------------------------------------------------------------------------------------------------
def outcome_horizon(cfg: AnalysisConfig) -> int:
    """The last month after u whose outcome the run needs (the cost-benefit reads months 1..12)."""
    return max(max(cfg.outcomes.horizons), 12 if cfg.cost_benefit.enabled else 1)


def outcomes(
    cfg: AnalysisConfig, read: ReadResult, link: LinkResult, panel: PanelResult, match: MatchStageResult
) -> OutcomeTables:
    """Horizon outcomes 1..K and outcome paths of the matched sample; censoring and IPCW under ``censor``."""
    keys = match.matched.reset_index(drop=True)
    kw = outcome_sources(cfg, read, panel)
    hmax = outcome_horizon(cfg)
    ho = panel_mod.horizon_outcomes(keys, tuple(range(1, hmax + 1)), **kw)
    w = cfg.outcomes.path_window
    keep = ("person_id", "ref_month", "treated", "weights", "subclass", "later_start_month")
    path_keys = [c for c in keep if c in keys.columns]
    paths = panel_mod.outcome_paths(keys[path_keys], (-w, w), **kw)
    censoring = None
    if cfg.later_treated == "censor" and "later_start_month" in ho.columns:
        if cfg.censoring_weights == "ipcw":
            censoring = later_start_weights(cfg, read, link, panel, ho, hmax)
            ho = pd.concat([ho, censoring.weights], axis=1)
        ho, paths = cohort_mod.censor_at_later_start(ho), cohort_mod.censor_at_later_start(paths)
    summary = panel_mod.summarise_paths(paths, cfg.outcomes.names)
    # the paths' text keys (pseudonym, months) as categories, on disk until a later stage reads the columns it
    # needs (OutcomeTables.path_table): a national run's 1.3·10⁷ path rows are 1.5 GB the stages between held
    paths = TableFile.write(tables.text_as_categories(paths), work_directory(cfg) / "outcome_paths.parquet")
    return OutcomeTables(ho, paths, summary, censoring)


def outcome_sources(cfg: AnalysisConfig, read: ReadResult, panel: PanelResult) -> dict:
    """The keyword arguments ``panel.horizon_outcomes``/``outcome_paths`` take in this run: each outcome ends
    with the first register it is built from (``schema.outcome_end_months``)."""
    return dict(
        panel=panel.person_months,
        population=read.table("population"),
        end_month=read.register_end,
        self_support_threshold=cfg.outcomes.self_support_threshold_sek,
        con=read.con,
        outcome_end=outcome_end_months(read.register_ends),
    )


def later_start_weights(
    cfg: AnalysisConfig,
    read: ReadResult,
    link: LinkResult,
    panel: PanelResult,
    ho: pd.DataFrame,
    horizon: int,
) -> cohort_mod.CensoringWeights:
    """Censoring weights for controls censored at their own later start (``cohort.later_start_ipcw``), as the
    outcomes stage computes them under ``later_treated: censor`` with ``censoring_weights: ipcw``: the hazard
    model uses the run's covariates measured month by month with ``panel.history_features`` on the run's panel.
    ``ho``: the matched sample's ``horizon_outcomes`` for every month 1..``horizon``, before censoring."""

    def history(keys: pd.DataFrame) -> pd.DataFrame:
        return panel_mod.history_features(
            keys,
            panel.person_months,
            read.table("population"),
            link.linkage.kommun_forbund,
            end_month=read.register_end,
            self_support_threshold=cfg.outcomes.self_support_threshold_sek,
            con=read.con,
            output="pandas",
        )

    return cohort_mod.later_start_ipcw(ho, history, list(cfg.covariates), horizon)


# -- attrition -----------------------------------------------------------------------------------------------------
def attrition(
    cfg: AnalysisConfig,
    read: ReadResult,
    link: LinkResult,
    cohort: CohortResult,
    match: MatchStageResult,
    outcomes: OutcomeTables,
) -> AttritionResult:
    """The linkage report continued through the cohort (``CohortResult.treated_status``), the match (the unmatched
    participants by reason) and the follow-up of the main outcome (``outcomes.names[0]``) at each horizon
    (``attrition.attrition_report``)."""
    if cohort.treated_status is None:
        raise StageUnavailable("the cohort stage did not record why participants left (treated_status)")
    unmatched = None
    if match.match is not None and len(match.match.unmatched):
        rows = match.match.unmatched["treated_row"].to_numpy(np.int64)
        unmatched = pd.DataFrame(
            {
                # the unmatched rows' pseudonyms only (the cohort's ~10⁷ as text would be ~1 GB)
                "person_id": match.result.data["person_id"].take(rows).astype(str).to_numpy(),
                "reason": match.match.unmatched["reason"].to_numpy(),
            }
        )
    outcome = cfg.outcomes.names[0]
    end = min(read.register_end, outcome_end_months(read.register_ends).get(outcome, read.register_end))
    report = attrition_mod.attrition_report(
        link.linkage.linkage_report,
        link.participants,
        cohort.treated_status,
        outcomes.outcomes,
        unmatched,
        horizons=cfg.outcomes.horizons,
        outcome=outcome,
        outcome_end=end,
        threshold=cfg.disclosure_threshold,
    )
    return AttritionResult(report)


# -- effects -------------------------------------------------------------------------------------------------------
def effects(
    cfg: AnalysisConfig,
    read: ReadResult,
    link: LinkResult,
    panel: PanelResult,
    cohort: CohortResult,
    match: MatchStageResult,
    outcomes: OutcomeTables,
) -> EffectsResult:
    """Every configured estimator at every horizon, with subgroups (``estimation.estimate_effects``)."""
    data = outcomes.outcomes
    covs = [c for c in cfg.covariates if c in data.columns]
    # the registry says which sample each estimator needs: the matched table and the panel are estimated in one
    # call (one clustering), the unmatched cohort in a second (its own subgroups and standard errors)
    sample_of = {e: estimation.REGISTRY[e].sample for e in cfg.estimators}
    on_cohort = [e for e in cfg.estimators if sample_of[e] == "cohort"]
    others = [e for e in cfg.estimators if sample_of[e] != "cohort"]
    common = dict(
        outcomes=present_outcomes(cfg, read),
        horizons=tuple(cfg.outcomes.horizons),
        covariates=covs,
        cluster=cfg.inference.cluster,
        n_boot=cfg.inference.bootstrap_reps,
        random_state=cfg.seed,
        horizon_weights="ipcw_" if "ipcw_1" in data.columns else None,
        alpha=cfg.inference.alpha,
        estimand=short_estimand(cfg.later_treated, cfg.censoring_weights),
    )
    if "matched_did" in cfg.estimators:  # its pre-period means joined now, from those months' paths alone
        win, names = estimation.PRE_PERIOD_WINDOW, common["outcomes"]
        data = estimation.with_pre_period_means(data, outcomes.path_table(names, rel_months=win), names)
    frames, results = [], []
    skipped = {
        f"effects: {o}": f"absent from the data ({why}): an effect on it cannot be estimated, and it is not zero"
        for o, why in read.absent_outcomes.items()
        if o in cfg.outcomes.names
    }
    for name, why in skipped.items():
        log.warning("%s %s", name, why)
    if others:
        cs = cs_did_inputs(cfg, read, panel, cohort) if "panel" in sample_of.values() else None
        res = estimation.estimate_effects(
            data,
            estimators=others,
            se=cfg.inference.se,
            subgroups=[
                s for s in cfg.subgroups if s in data.columns or (s == "age_band" and "age" in data.columns)
            ],
            pairs=match.match if cfg.inference.se == "abadie_imbens" else None,
            panel=cs[0] if cs else None,
            panel_units=cs[1] if cs else None,
            cs_control_group=cfg.cs_did.control_group,
            **common,
        )
        frames.append(res.to_frame())
        results.append(res)
    if on_cohort:
        # per subgroup the unmatched-cohort cross-checks fit their models on the subgroup's treated rows and
        # candidate control person-months; a subgroup variable known for participants only (a SUS field such as
        # insats_type) has no controls in the cohort, so it is left out for these estimators
        co = cohort_outcomes(cfg, read, link, panel, cohort, match, outcomes)
        controls = co[co["treated"] == 0]
        sub_c, no_controls = [], []
        for s in cfg.subgroups:
            col = "age" if s == "age_band" and s not in co.columns else s
            known = col in co.columns and controls[col].notna().any()
            (sub_c if known else no_controls).append(s)
        res_c = estimation.estimate_effects(
            data,
            estimators=on_cohort,
            se="cluster" if cfg.inference.se == "abadie_imbens" else cfg.inference.se,
            subgroups=sub_c,
            cohort=co,
            **common,
        )
        frames.append(res_c.to_frame())
        results.append(res_c)
        for note in res_c.notes:
            if "did not converge" in note:
                log.warning("effects: %s", note)
        if no_controls:
            skipped[f"effects: {', '.join(on_cohort)} by {', '.join(no_controls)}"] = (
                "the unmatched comparison pool has no value of this participant-only field (the matched estimators "
                "give these subgroups: a control takes its matched participant's value)"
            )
    return EffectsResult(tuple(results), pd.concat(frames, ignore_index=True), skipped)


def present_outcomes(cfg: AnalysisConfig, read: ReadResult) -> list[str]:
    """The configured outcomes the data can show (``ReadResult.absent_outcomes`` left out)."""
    return [o for o in cfg.outcomes.names if o not in read.absent_outcomes]


def cohort_outcomes(
    cfg: AnalysisConfig,
    read: ReadResult,
    link: LinkResult,
    panel: PanelResult,
    cohort: CohortResult,
    match: MatchStageResult,
    outcomes: OutcomeTables,
) -> pd.DataFrame:
    """The unmatched cohort (every treated row and candidate control person-month) with horizon outcomes and the
    participants' subgroup labels: the sample of the ``ipw``/``aipw`` estimators. Under ``matching.method: ipw``
    the outcomes table already covers the whole cohort and is reused."""
    if match.match is None:
        return outcomes.outcomes
    # text keys for the joins with the participants and the panel (the cohort holds them as categories)
    co = with_participant_labels(tables.plain(cohort.cohort), link.participants).reset_index(drop=True)
    ho = panel_mod.horizon_outcomes(co, tuple(cfg.outcomes.horizons), **outcome_sources(cfg, read, panel))
    if cfg.later_treated == "censor" and "later_start_month" in ho.columns:
        ho = cohort_mod.censor_at_later_start(ho)
    return ho


def cs_did_inputs(
    cfg: AnalysisConfig, read: ReadResult, panel: PanelResult, cohort: CohortResult
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sparse panel and its units for Callaway & Sant'Anna (2021) (``estimation.callaway_santanna(units=...)``).

    Units: everybody in the cohort (participants and candidate controls, i.e. persons eligible in some month),
    with ``first_treated`` (a participant's ``ref_month``; for a candidate control its own first insats start,
    ``later_start_month``; empty if never) and the observed months ``observed_from``..``observed_to``: from the
    month before the window up to the last horizon after the window's end (at most the end of data), from
    immigration on and before death/emigration. Panel: the units' rows of the sparse ``person_months`` in that
    range; the estimator reads absent months inside a unit's range as 0 (as ``person_months`` means them), so the
    dense person × month panel is never built.
    """
    co = tables.plain(cohort.cohort[["person_id", "ref_month", "treated", "later_start_month"]])
    first = co["ref_month"].where(co["treated"] == 1, co["later_start_month"])
    persons = (
        pd.DataFrame({"person_id": co["person_id"].astype(str), "first_treated": first})
        .sort_values(["person_id", "first_treated"], na_position="last")
        .drop_duplicates("person_id")
    )
    m0 = int(months.to_index(cfg.window.start)) - 1
    m1 = min(
        int(months.to_index(cfg.window.end)) + max(cfg.outcomes.horizons),
        int(months.to_index(read.register_end)),
    )
    cols = ", ".join(f"coalesce(pm.{o}, 0)::DOUBLE AS {o}" for o in cfg.outcomes.names)
    con = read.con
    con.register("__cs_persons", persons)
    tables.register(con, "__cs_panel", panel.person_months)
    pop_join = (
        "LEFT JOIN population p ON p.person_id = c.person_id"
        if "population" in read.tables
        else "LEFT JOIN (SELECT NULL::VARCHAR AS "
        "person_id, NULL::DATE AS death_date, NULL::DATE AS emigration_date, NULL::DATE AS immigration_date "
        "LIMIT 0) p ON p.person_id = c.person_id"
    )
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
            WHERE pm.month BETWEEN '{months.from_index(m0)}' AND '{months.from_index(m1)}'
            ORDER BY pm.person_id, pm.month
        """).df()
    finally:
        con.unregister("__cs_persons")
        con.execute("DROP VIEW IF EXISTS __cs_panel")
    units["observed_from"] = months.from_index(units.pop("lo").to_numpy(np.int64))
    units["observed_to"] = months.from_index(units.pop("hi").to_numpy(np.int64))
    return sparse, units


# -- contamination -------------------------------------------------------------------------------------------------
def contamination_share(
    cfg: AnalysisConfig,
    read: ReadResult,
    link: LinkResult,
    panel: PanelResult,
    cohort: CohortResult,
    match: MatchStageResult,
) -> ContaminationShareResult:
    """The expected share of matched controls who are anonymous participants
    (``contamination.expected_contamination``; the former participants by ``cohort.former_participants`` with the
    cohort's own settings, scored with the match's propensity model). The expensive part of the contamination: a
    second risk set with history features over the whole pool; it does not depend on the estimators."""
    if "sus_registrations" not in read.tables:
        raise StageUnavailable("no sus_registrations table: the anonymous registrations are unknown")
    counts = contamination_mod.registration_counts(read.table("sus_registrations"), con=read.con)
    former = None
    if counts["anonymous"].sum() > 0:  # without anonymous registrations the share is 0: no mirror needed
        former = cohort_mod.former_participants(link.participants, **cohort_arguments(cfg, read, link, panel))
    res, fit = match.result, {"fit_rows": cfg.matching.propensity_fit_rows, "seed": cfg.seed}
    est = contamination_mod.expected_contamination(
        cohort.cohort, res.propensity, res.weights, counts, former, **fit
    )
    return ContaminationShareResult(est)


def contamination(
    cfg: AnalysisConfig, contamination_share: ContaminationShareResult, effects: EffectsResult
) -> ContaminationResult:
    """The expected share of matched controls who are anonymous participants (the contamination share stage) and
    the dilution-corrected effects of the matched-sample estimators (``ContaminationEstimate.corrected``)."""
    est = contamination_share.estimate
    matched = [e for e in cfg.estimators if estimation.REGISTRY[e].sample == "matched"]
    log.info("contamination: %s", est.summary(cfg.disclosure_threshold))
    return ContaminationResult(est, est.corrected(effects.frame, matched), cfg.disclosure_threshold)


# -- event study ---------------------------------------------------------------------------------------------------
def event_study(cfg: AnalysisConfig, outcomes: OutcomeTables) -> EventStudyResult:
    """Monthly effects u−w..u+w with a pre-trend Wald test per configured outcome (``estimation.event_study``),
    with the persons behind each month's estimate (:func:`event_study_persons`). Too few matched units for the
    regression's fixed effects make the stage not run (the reason names no count)."""
    w = cfg.outcomes.path_window
    paths = outcomes.path_table(cfg.event_study_outcomes)
    cluster = cfg.inference.cluster if cfg.inference.cluster in paths.columns else "person_id"
    studies, frames = {}, []
    for o in cfg.event_study_outcomes:
        try:
            r = estimation.event_study(
                paths, outcome=o, window=(-w, w), cluster=cluster, alpha=cfg.inference.alpha
            )
        except InputError as exc:
            if "degrees of freedom" not in str(exc):
                raise
            raise StageUnavailable(
                f"too few matched units for the event study of {o} (its fixed effects leave no residual degrees "
                "of freedom); widen outcomes.path_window or the analysis window"
            ) from exc
        t = r.to_frame()
        if "outcome" not in t.columns:
            t.insert(0, "outcome", o)
        t = t.merge(event_study_persons(paths, o, (-w, w)), on="rel_month", how="left")
        t[["n_treated", "n_control"]] = t[["n_treated", "n_control"]].fillna(0).astype("int64")
        studies[o] = r
        frames.append(t)
    return EventStudyResult(studies, pd.concat(frames, ignore_index=True) if frames else pd.DataFrame())


def event_study_persons(paths: pd.DataFrame, outcome: str, window: tuple[int, int]) -> pd.DataFrame:
    """Per month relative to u: the distinct persons among the treated (``n_treated``) and the controls
    (``n_control``) with ``outcome`` observed in that month, as the event study uses the paths (inside the window,
    not censored, outcome present, positive weight)."""
    p = estimation.path_rows(
        paths, window, ["rel_month", "treated", "person_id"], outcome=outcome, weights="weights"
    )
    n = (
        p.assign(arm=np.where(p["treated"].to_numpy() == 1, "n_treated", "n_control"))
        .groupby(["rel_month", "arm"])["person_id"]
        .nunique()
        .unstack("arm")
        .reindex(columns=["n_treated", "n_control"])
        .fillna(0)
        .astype("int64")
        .reset_index()
    )
    n.columns.name = None
    n["rel_month"] = n["rel_month"].astype("int64")
    return n


# -- sensitivity ---------------------------------------------------------------------------------------------------
def sensitivity(
    cfg: AnalysisConfig, read: ReadResult, match: MatchStageResult, outcomes: OutcomeTables
) -> SensitivityResult:
    """Rosenbaum bounds, E-values, placebo outcomes and start dates (``estimation.sensitivity_analysis``)."""
    if match.match is None:
        raise StageUnavailable(
            "Rosenbaum bounds and the placebo checks need matched pairs; matching.method is 'ipw' (no pairs)"
        )
    res = estimation.sensitivity_analysis(
        outcomes.outcomes,
        match.match,
        paths=outcomes.path_table(present_outcomes(cfg, read), rel_months=estimation.PLACEBO_REL_MONTHS),
        outcomes=present_outcomes(cfg, read),
        horizons=cfg.outcomes.horizons,
        cluster=cfg.inference.cluster,
        alpha=cfg.inference.alpha,
        zeros=cfg.inference.rosenbaum_zeros,
    )
    return SensitivityResult(res)


# -- cost-benefit --------------------------------------------------------------------------------------------------
def cost_benefit_stage(
    cfg: AnalysisConfig, read: ReadResult, link: LinkResult, outcomes: OutcomeTables
) -> CostBenefitResult:
    """Present values per financier from the monthly effects 1..12 (``cost_benefit.cost_benefit``).

    The result records its inputs (``CostBenefitResults.inputs``: the monthly effects, their joint covariance,
    the seed of the draws, the cost, the parameters), which the report writes to ``cost_benefit_inputs.json``
    so that ``finsam-effekt cost-benefit`` reproduces these numbers. When the config asks for ``insats_type``
    subgroups, the same calculation runs per insats type with that type's effects and cost
    (``CostBenefitResults.by_subgroup``).
    """
    params = cfg.cost_benefit_parameters
    main = cfg.estimators[0]
    data = outcomes.outcomes
    # the required outcomes' paths, read once: matched_did's pre-period (as the main estimator), the before/after
    paths = outcomes.path_table(cb_mod.REQUIRED_OUTCOMES) if main == "matched_did" else None
    common = dict(
        outcomes=list(cb_mod.REQUIRED_OUTCOMES),
        horizons=tuple(range(1, outcome_horizon(cfg) + 1)),
        measures=("status",),
        # the monthly effects 1..12 come from the main estimator when it works on the matched sample
        estimators=[main if estimation.REGISTRY[main].sample == "matched" else "weighted_mean_diff"],
        covariates=[c for c in cfg.covariates if c in data.columns],
        se="cluster",
        cluster=cfg.inference.cluster,
        random_state=cfg.seed,
        pre_period=paths,
    )
    eff = estimation.estimate_effects(data, **common)
    cost = None
    if "insats_costs" in read.tables:
        cost = cb_mod.cost_per_participant(
            read.table("insats_costs").df(),
            link.participants,
            sus_volume=read.table("sus_volume"),
            sus_registrations=read.table("sus_registrations"),
            params=params,
        )
    frame = eff.to_frame()
    est = frame["estimator"].iloc[0]
    draws = eff.draws(est, n=params.monte_carlo.n_draws, seed=cfg.seed)
    skipped: dict[str, str] = {}
    try:
        res = cb_mod.cost_benefit(
            frame, params, cost_per_participant_sek=cost, draws=draws,
            before_after_paths=outcomes.path_table(cb_mod.REQUIRED_OUTCOMES) if paths is None else paths,
        )  # fmt: skip
    except InputError as exc:  # the before/after comparison needs participants observed before and after u
        if "outcome_paths" not in str(exc):
            raise
        skipped["cost-benefit: before/after comparison"] = f"left out: {exc}"
        log.warning("cost-benefit: the before/after comparison is left out: %s", exc)
        res = cb_mod.cost_benefit(frame, params, cost_per_participant_sek=cost, draws=draws)
    res.inputs = CostBenefitInputs(
        effects=frame,
        covariance=eff.cov(est),
        draws_seed=cfg.seed,
        cost_per_participant_sek=res.cost_per_participant_sek,
        parameters=params,
        estimator=est,
    )
    if "insats_type" in cfg.subgroups and "insats_type" in data.columns:
        by_type = estimation.estimate_effects(data, subgroups=["insats_type"], **common)
        by_type_frame = by_type.to_frame()
        for sg in dict.fromkeys(by_type_frame["subgroup"]):
            if sg == "all":
                continue
            rows = by_type_frame[by_type_frame["subgroup"] == sg]
            try:
                res.by_subgroup[sg] = cb_mod.cost_benefit(
                    by_type_frame,
                    params,
                    cost_per_participant_sek=cost,
                    subgroup=sg,
                    draws=by_type.draws(est, n=params.monte_carlo.n_draws, seed=cfg.seed, subgroup=sg),
                )
            except FinsamError as exc:  # too few persons of this type for effects in every month
                log.warning("cost-benefit by insats type: %s left out: %s", sg, exc)
                continue
            res.subgroup_persons[sg] = (int(rows["n_treated"].min()), int(rows["n_control"].min()))
    return CostBenefitResult(res, skipped)


__all__ = [
    "StageUnavailable",
    "attrition",
    "balance",
    "cohort",
    "cohort_arguments",
    "cohort_outcomes",
    "contamination",
    "contamination_share",
    "cost_benefit_stage",
    "cs_did_inputs",
    "effects",
    "event_study",
    "event_study_persons",
    "later_start_weights",
    "link",
    "match",
    "outcome_horizon",
    "outcome_sources",
    "outcomes",
    "panel",
    "read",
    "first_register_month",
    "sensitivity",
    "with_participant_labels",
]
