"""The chain of stages, declared once as data, and the functions that run it: ``run``, ``run_until``, ``explain``.

:data:`CHAIN` lists every stage in run order with its function, the earlier stages whose results it takes, the
type of its result, the config keys it reads and whether it is required. ``run`` (the whole analysis and the
report), ``run_until`` (the typed results up to one stage, for validation and notebooks), ``explain``'s plan and
the progress display all read this one declaration.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from .. import report as report_mod
from ..config import AnalysisConfig
from ..diagnostics import DesignWarning
from ..errors import ConfigError, FinsamError
from ..estimand import estimand_text
from ..estimation import REGISTRY
from . import by_group, plan, resources, stages
from .cache import CACHED_STAGES, StageCache, config_values, shared_tables
from .results import (
    AttritionResult,
    BalanceResult,
    CohortResult,
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
    StageRecord,
    StageResult,
    StageResults,
)
from .stages import StageUnavailable

log = logging.getLogger("finsam_effekt.run")


@dataclass(frozen=True)
class Stage:
    """One stage of the chain.

    Attributes
    ----------
    key : attribute of :class:`StageResults` that holds the result (``"event_study"``).
    label : the name shown in the progress display, ``run.log`` and ``manifest.json`` (``"event study"``).
    run : the stage function: ``run(cfg, *results of inputs) -> result``.
    inputs : keys of the earlier stages whose results ``run`` takes, in order.
    result : the type of the result.
    config_keys : the config sections/keys the stage reads (what a change of the config can affect).
    required : a required stage that fails stops the run; an optional one is reported as not run.
    switch : the boolean config key that turns an optional stage off (``"event_study"``), or None.
    describe : the plan line of ``explain``.
    part_of : the key of the stage this one is a part of (``"contamination"`` for ``"contamination_share"``,
        its expensive and cached part), or None. Skipping the whole skips its parts, and a part that does not run
        is reported under the whole's label (the reader knows the whole), so the whole does not run for the
        same reason.
    cohort_features : whether the stage reads the cohort's history features (not only
        ``results.COHORT_KEY_COLUMNS``) under a config, or None (never); after the last stage that does,
        :func:`run` keeps only the cohort's key columns (:func:`drop_cohort_features`).
    """

    key: str
    label: str
    run: Callable[..., StageResult]
    inputs: tuple[str, ...]
    result: type[StageResult]
    config_keys: tuple[str, ...]
    required: bool
    switch: str | None
    describe: Callable[[AnalysisConfig], str]
    part_of: str | None = None
    cohort_features: Callable[[AnalysisConfig], bool] | None = None

    def off_reason(self, cfg: AnalysisConfig) -> str | None:
        """Why the config turns this stage (or the stage it is a part of) off, or None when it runs."""
        whole = None if self.part_of is None else stage(self.part_of).off_reason(cfg)
        if whole is not None or self.switch is None:
            return whole
        value: Any = cfg
        for part in self.switch.split("."):
            value = getattr(value, part)
        return None if value else f"turned off in the config ({self.switch}: false)"


def _always(cfg: AnalysisConfig) -> bool:
    return True


def _cohort_estimators(cfg: AnalysisConfig) -> bool:
    """Whether an estimator fits on the unmatched cohort (with its covariates: ``ipw``, ``aipw``)."""
    return any(REGISTRY[e].sample == "cohort" for e in cfg.estimators if e in REGISTRY)


#: Every stage, in run order.
CHAIN: tuple[Stage, ...] = (
    Stage("read", "read & validate", stages.read, (), ReadResult,
          ("inputs", "outcomes.data_end", "outcomes.register_end"), True, None,
          plan.read),
    Stage("link", "link", stages.link, ("read",), LinkResult,
          ("window", "age", "linkage", "eligibility.min_history_months", "disclosure_threshold"), True, None,
          plan.link),
    Stage("panel", "panel", stages.panel, ("read",), PanelResult, ("outcomes.self_support_threshold_sek",), True,
          None, plan.panel),
    Stage("cohort", "cohort", stages.cohort, ("read", "link", "panel"), CohortResult,
          ("window", "age", "eligibility", "later_treated", "outcomes.self_support_threshold_sek", "seed"), True,
          None, plan.cohort),
    Stage("match", "match", stages.match, ("link", "cohort"), MatchStageResult, ("matching", "covariates", "seed"),
          True, None, plan.match, cohort_features=_always),
    Stage("balance", "balance", stages.balance, ("read", "panel", "cohort", "match"), BalanceResult,
          ("covariates",), False, None, plan.balance, cohort_features=_always),
    Stage("outcomes", "outcomes", stages.outcomes, ("read", "link", "panel", "match"), OutcomeTables,
          ("outcomes", "later_treated", "censoring_weights", "covariates", "cost_benefit.enabled"), True, None,
          plan.outcomes),
    Stage("attrition", "attrition", stages.attrition, ("read", "link", "cohort", "match", "outcomes"),
          AttritionResult, ("outcomes.names", "outcomes.horizons", "disclosure_threshold"), False, None,
          plan.attrition),
    Stage("effects", "effects", stages.effects, ("read", "link", "panel", "cohort", "match", "outcomes"),
          EffectsResult, ("estimators", "inference", "subgroups", "outcomes", "covariates", "window", "later_treated",
                          "censoring_weights", "cs_did", "seed"), True, None, plan.effects,
          cohort_features=_cohort_estimators),
    Stage("contamination_share", "contamination share", stages.contamination_share,
          ("read", "link", "panel", "cohort", "match"), ContaminationShareResult,
          ("window", "age", "eligibility", "outcomes.self_support_threshold_sek", "matching.propensity_fit_rows",
           "seed"), False, None,
          plan.contamination_share, part_of="contamination"),
    Stage("contamination", "contamination", stages.contamination, ("contamination_share", "effects"),
          ContaminationResult, ("estimators", "disclosure_threshold"), False, None, plan.contamination),
    Stage("event_study", "event study", stages.event_study, ("outcomes",), EventStudyResult,
          ("event_study", "event_study_outcomes", "inference", "outcomes.path_window"), False, "event_study",
          plan.event_study),
    Stage("sensitivity", "sensitivity", stages.sensitivity, ("read", "match", "outcomes"), SensitivityResult,
          ("sensitivity", "inference", "outcomes"), False, "sensitivity", plan.sensitivity),
    Stage("cost_benefit", "cost-benefit", stages.cost_benefit_stage, ("read", "link", "outcomes"),
          CostBenefitResult,
          ("cost_benefit", "estimators", "inference", "covariates", "outcomes.horizons", "subgroups", "seed"),
          False,
          "cost_benefit.enabled", plan.cost_benefit),
)  # fmt: skip

#: Stage keys accepted by :func:`run_until`, in run order (labels such as ``"read & validate"`` are accepted too).
STAGE_NAMES: tuple[str, ...] = tuple(s.key for s in CHAIN)


def stage(name: str) -> Stage:
    """The stage with this key or label."""
    for s in CHAIN:
        if name in (s.key, s.label):
            return s
    raise ConfigError(f"unknown stage {name!r}; stages in run order: {', '.join(s.key for s in CHAIN)}")


def reported_label(st: Stage) -> str:
    """The label under which a stage's not-run reason is reported: its own, or for a part (``Stage.part_of``) the
    whole's."""
    return st.label if st.part_of is None else stage(st.part_of).label


def _input_missing(results: StageResults, st: Stage) -> str | None:
    """Why a stage cannot run because an (optional) stage whose result it takes did not run: that stage's reason
    (for ``contamination``, its share stage's: the same words), or None when every input is there."""
    for k in st.inputs:
        if results.get(k) is None:
            src = stage(k)
            return results.not_run.get(reported_label(src)) or f"stage '{src.label}' did not run"
    return None


def _run_stage(
    results: StageResults, st: Stage, reason: str | None, keep_going: bool, cache: StageCache | None = None
) -> StageRecord:
    """Run one stage (or take its result from the stage cache, or record why it does not run) and store its result
    on ``results``.

    A stage that cannot run (``StageUnavailable``) stops the run when it is required and is noted otherwise; with
    ``keep_going`` (``run``) any other defect of an optional stage is logged and noted instead of costing the
    whole report, without it (``run_until``) it is raised. A user error (``InputError``/``ConfigError``) always
    stops the run. A stage whose input stage did not run does not run either, for that stage's reason; not-run
    reasons of a part of a stage are reported under the whole's label (:func:`reported_label`)."""
    label = reported_label(st)
    if reason is not None:
        results.not_run[label] = reason
        return StageRecord(st.label, 0.0, None, "not_run", reason)
    read = getattr(results, "read", None)
    # what earlier stages freed, before this one's peak (io.connect set the configured limit on this connection)
    resources.release_memory(getattr(read, "con", None), results.cfg.engine.memory_limit)
    t0, c0 = time.perf_counter(), time.process_time()
    resources.reset_peak_rss()

    def record(res: StageResult | None, status: str, note: str = "", cache_state: str = "") -> StageRecord:
        return StageRecord(
            st.label,
            time.perf_counter() - t0,
            None if res is None else res.rows(),
            status,
            note,
            cpu_seconds=time.process_time() - c0,
            peak_rss_mb=resources.peak_rss_mb(),
            cache=cache_state,
        )

    try:
        missing = _input_missing(results, st)
        if missing is not None:
            raise StageUnavailable(missing)
        cfg = results.cfg
        key = values = None
        if cache is not None and st.key in CACHED_STAGES:
            values = config_values(cfg, st.config_keys)
            inputs = (
                cache.input_hashes(t.path for t in cfg.input_spec.tables.values()) if not st.inputs else {}
            )
            key = cache.key(st.key, values, [results.cache_keys[k] for k in st.inputs], inputs)
            shared = shared_tables(results, st.inputs)  # e.g. the cohort the match holds: stored once
            hit = cache.load(st.key, key, shared)
            if hit is not None:
                setattr(results, st.key, hit.result)
                results.cache_keys[st.key] = key
                results.not_run.update(hit.result.not_run())
                return record(hit.result, "ok", f"from the stage cache ({hit.created})", "hit")
        res = st.run(cfg, *[getattr(results, k) for k in st.inputs])
        if key is not None:
            res = cache.save(st.key, key, res, values, shared)
            results.cache_keys[st.key] = key
        setattr(results, st.key, res)
        results.not_run.update(res.not_run())
        return record(res, "ok", cache_state="stored" if key is not None else "")
    except StageUnavailable as exc:
        if st.required:
            log.error("%s: %s", st.label, exc)
            raise StageUnavailable(f"stage '{st.label}' cannot run: {exc}") from exc
        results.not_run[label] = str(exc)
        return record(None, "not_run", str(exc))
    except FinsamError:
        raise
    except Exception as exc:  # an optional stage's defect must not cost the whole report
        if st.required or not keep_going:
            raise
        log.exception("%s failed", st.label)
        note = f"failed with {type(exc).__name__}: {exc} (traceback in run.log)"
        results.not_run[label] = note
        return record(None, "failed", note)


def stage_cache(cfg: AnalysisConfig) -> StageCache | None:
    """The config's stage cache, or None when ``cache.enabled`` is false."""
    return StageCache(cfg.cache.directory, cfg.engine) if cfg.cache.enabled and cfg.cache.directory else None


@dataclass
class RunResult:
    """What :func:`run` did: the output directory, per-stage records, the files written and the typed results."""

    out: Path
    stages: list[StageRecord]
    files: list[Path]
    results: StageResults | None = None

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


#: Fields ``run(..., by=...)`` can write one report per value of (participants' SUS field).
BY_FIELDS: tuple[str, ...] = ("forbund_id",)


def run(
    cfg: AnalysisConfig,
    out: Path,
    *,
    force: bool = False,
    by: str | None = None,
    on_stage: Callable[[StageRecord], None] | None = None,
    on_start: Callable[[str], None] | None = None,
) -> RunResult:
    """Run the configured analysis and write every output into ``out`` (atomically: a failed run leaves no ``out``).

    Parameters
    ----------
    cfg : a resolved config (:func:`~finsam_effekt.config.load_config`).
    out : output directory; must not exist unless ``force``.
    by : ``"forbund_id"``: besides the national report, one report per samordningsförbund in
        ``out/forbund/<id>/`` (its own participants, controls matched from the whole pool as configured, the same
        disclosure control) and an overview of the effects per förbund (``out/forbund/overview.*``); the
        per-förbund runs reuse the national read, link, panel and cohort.
    on_start, on_stage : callbacks for the progress display, called with the stage label before and the
        :class:`StageRecord` after each stage.

    Raises
    ------
    InputError, ConfigError
        Bad input or config (nothing is written).
    StageUnavailable
        A required stage cannot run (nothing is written).
    """
    if by is not None and by not in BY_FIELDS:
        raise ConfigError(f"run: by must be one of {list(BY_FIELDS)}; got {by!r}")
    np.random.seed(cfg.seed)  # noqa: NPY002 - legacy global RNG, for any library call that still uses it
    results = StageResults(cfg)
    cache = stage_cache(cfg)
    with (
        report_mod.atomic_output_dir(out, force=force, protected=protected_paths(cfg)) as tmp,
        _run_log(tmp / "run.log"),
    ):
        log.info("finsam_effekt run; config hash %s; seed %d", cfg.config_hash(), cfg.seed)
        _run_stages(results, CHAIN, cache, on_start, on_stage, drop_features=by is None)
        files = _write_report(results, tmp, cache, on_start, on_stage, log_file=tmp / "run.log")
        if by is not None:
            files += by_group.run_by_group(
                results, by, tmp / "forbund", _run_stages, _write_report, on_start, on_stage
            )
    out = Path(out).resolve()
    files = [out / p.relative_to(tmp) for p in [*files, tmp / "run.log"]]
    return RunResult(out, results.records, files, results)


def protected_paths(cfg: AnalysisConfig) -> list[Path]:
    """What a run's output folder must never replace: the input files and folders, the config file, the stage
    cache, the engine's spill folder and the current directory."""
    paths = [t.path for t in cfg.input_spec.tables.values()]
    paths += [p for p in (cfg.source, cfg.cache.directory, cfg.engine.temp_directory) if p is not None]
    return [*paths, Path.cwd()]


@contextmanager
def _run_log(path: Path) -> Iterator[None]:
    """Log the run (``finsam_effekt.run``) to ``path`` while the block runs."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        handler.close()


def _run_stages(
    results: StageResults,
    chain: Sequence[Stage],
    cache: StageCache | None,
    on_start: Callable[[str], None] | None,
    on_stage: Callable[[StageRecord], None] | None,
    drop_features: bool = False,
) -> None:
    """Run ``chain`` in order on ``results`` (as :func:`run`: optional stages' defects are reported, not raised).
    With ``drop_features``, after the last stage that reads the cohort's history features only the cohort's keys
    are kept (:func:`drop_cohort_features`; the per-förbund runs of ``run(by=)`` need them all), and the effects'
    results objects are released after their stage (``EffectsResult.tables_only``).

    run.log's ``rows=`` of a stage whose rows are persons is ``<t`` when it lies in ``1 .. t − 1``
    (``report.disclosure.rows_text``)."""
    threshold = results.cfg.disclosure_threshold
    for i, st in enumerate(chain):
        if on_start:
            on_start(st.label)
        rec = _run_stage(results, st, st.off_reason(results.cfg), keep_going=True, cache=cache)
        results.records.append(rec)
        log.info(
            "stage %-16s %-8s rows=%s %.2fs cpu=%.2fs peak_rss=%s MB %s",
            rec.name,
            rec.status,
            report_mod.rows_text(rec.name, rec.rows, threshold),
            rec.seconds,
            rec.cpu_seconds,
            "-" if rec.peak_rss_mb is None else f"{rec.peak_rss_mb:.0f}",
            rec.note,
        )
        if on_stage:
            on_stage(rec)
        if drop_features and not any(_reads_cohort_features(s, results.cfg) for s in chain[i + 1 :]):
            drop_cohort_features(results)
        if drop_features and st.key == "effects" and results.get("effects") is not None:
            results.effects = results.effects.tables_only()  # later stages read its table only


def _reads_cohort_features(st: Stage, cfg: AnalysisConfig) -> bool:
    return st.cohort_features is not None and st.off_reason(cfg) is None and st.cohort_features(cfg)


def drop_cohort_features(results: StageResults) -> None:
    """Keep only the cohort's key columns (``CohortResult.keys_only``; the same rows, to which the match refers
    by position) in ``results.cohort`` and in the match, once no later stage reads the history features: a
    national cohort's features are 4.2 GB that the outcome, effect, event-study, sensitivity and cost-benefit
    stages would otherwise hold (issue 14). A no-op before the cohort stage or when already done."""
    co = results.get("cohort")
    if co is None or co.features_dropped:
        return
    results.cohort = co.keys_only()
    if results.get("match") is not None:
        results.match = results.match.on_cohort(results.cohort.cohort)
    log.info("cohort: history features released after their last reader (%d rows kept as keys)", co.rows())


def _write_report(
    results: StageResults,
    directory: Path,
    cache: StageCache | None,
    on_start: Callable[[str], None] | None,
    on_stage: Callable[[StageRecord], None] | None,
    log_file: Path | None = None,
) -> list[Path]:
    """Write the report, tables, figures and ``manifest.json`` of ``results`` into ``directory``.

    The manifest's ``measurements`` (CPU seconds, peak memory and stage-cache use per stage) and
    ``timings_seconds`` describe this run; everything else in it is the same for every run of the same config on
    the same inputs. Its ``rows`` of the stages whose rows are persons are null when they lie in ``1 .. t − 1``,
    each named in ``suppressed`` (``report.disclosure.publishable_rows``)."""
    cfg = results.cfg
    directory.mkdir(parents=True, exist_ok=True)
    if on_start:
        on_start("report")
    t0 = time.perf_counter()
    content = report_content(results)
    for w in content.warnings:
        log.warning("design: %s", w.text_en)
    files = report_mod.write_outputs(
        content, directory, lang=cfg.language, threshold=cfg.disclosure_threshold
    )
    rec = StageRecord("report", time.perf_counter() - t0, len(files), "ok")
    results.records.append(rec)
    log.info("stage %-16s ok rows=%d %.2fs", "report", len(files), rec.seconds)
    if on_stage:
        on_stage(rec)
    rows, hidden = report_mod.publishable_rows(
        {r.name: r.rows for r in results.records if r.rows is not None}, cfg.disclosure_threshold
    )
    manifest = report_mod.write_manifest(
        directory,
        config=cfg.to_dict(),
        config_hash=cfg.config_hash(),
        inputs={k: t.path for k, t in cfg.input_spec.tables.items()},
        seed=cfg.seed,
        timings={r.name: r.seconds for r in results.records},
        rows=rows,
        outputs=[*files, *([log_file] if log_file else [])],
        extra={
            "suppressed": [f"rows.{name}" for name in hidden],
            "not_run": results.not_run,
            "design_warnings": [w.to_dict() for w in content.warnings],
            "stage_cache": {
                "directory": str(cfg.cache.directory) if cache is not None else None,
                "keys": dict(results.cache_keys),
            },
            "measurements": {
                "cpu_seconds": {r.name: round(r.cpu_seconds, 3) for r in results.records},
                "peak_memory_mb": {
                    r.name: r.peak_rss_mb for r in results.records if r.peak_rss_mb is not None
                },
                "stage_cache": {r.name: r.cache for r in results.records if r.cache},
            },
        },
    )
    return [*files, manifest]


def design_warnings(results: StageResults) -> tuple[DesignWarning, ...]:
    """The stages' design warnings as published: without their numbers where these rest on fewer persons than
    the disclosure threshold (``DesignWarning.published``). The report, run.log, the manifest and the console
    all show these."""
    out: list[DesignWarning] = []
    for st in CHAIN:
        res = results.get(st.key)
        if res is not None:
            out += [w.published(results.cfg.disclosure_threshold) for w in res.warnings()]
    return tuple(out)


def report_content(results: StageResults) -> report_mod.ReportContent:
    """What the report shows, gathered from the stages' typed results (the report computes nothing). A table a
    later stage publishes under the name of an earlier stage's replaces it (the attrition stage's
    ``linkage_report``, the linkage steps continued, replaces the link stage's)."""
    cfg = results.cfg
    tables: dict[str, pd.DataFrame] = {}
    facts: dict[str, Any] = {}
    for st in CHAIN:
        res = results.get(st.key)
        if res is not None:
            tables.update(res.report_tables())
            facts.update(res.facts())
    return report_mod.ReportContent(
        tables=tables,
        figures=stage_figures(results),
        title=cfg.title,
        question=cfg.question,
        estimand=estimand_text(cfg),
        facts=facts,
        not_run=results.not_run,
        main_estimator=cfg.estimators[0],
        config_hash=cfg.config_hash(),
        alpha=cfg.inference.alpha,
        warnings=design_warnings(results),
        outcomes=tuple(cfg.outcomes.names),
        cost_benefit_inputs=None if results.cost_benefit is None else results.cost_benefit.result.inputs,
    )


def stage_figures(results: StageResults) -> dict[str, Any]:
    """The figures drawn from stage results rather than from the published tables: the propensity-score overlap
    (it needs every cohort row's score; its bins rest on at least the disclosure threshold's persons). The love
    plot, the effect, subgroup and path figures and the cost-benefit waterfalls and tornado are drawn by the
    report from its published tables."""
    figs: dict[str, Any] = {}
    if results.balance is not None:
        b = results.balance
        figs["ps_overlap"] = report_mod.ps_overlap_plot(
            b.ps, b.treated, b.weights, lang=results.cfg.language, threshold=results.cfg.disclosure_threshold
        )
    return figs


def run_until(
    cfg: AnalysisConfig, stage_name: str, *, skip: Sequence[str] = (), use_cache: bool = False
) -> StageResults:
    """Run the stages of :func:`run` in order up to and including ``stage_name``, in memory, and return their
    typed results.

    The stages, their settings and the seed are those of :func:`run`, so the tables are the ones a full run
    computes; no report or manifest is written. Stages turned off in the config are skipped (recorded in
    ``not_run``), as are the optional stages named in ``skip``. An optional stage that cannot run
    (``StageUnavailable``) is recorded in ``not_run``; any other error propagates (unlike :func:`run`, which
    reports an optional stage's failure and goes on), so a validation script never reads a silent gap.

    Parameters
    ----------
    cfg : a resolved config (:func:`~finsam_effekt.config.load_config`).
    stage_name : the last stage to run: a key of :data:`STAGE_NAMES` (``"read"``, ``"link"``, ``"panel"``,
        ``"cohort"``, ``"match"``, ``"balance"``, ``"outcomes"``, ``"attrition"``, ``"effects"``,
        ``"contamination_share"``, ``"contamination"``, ``"event_study"``, ``"sensitivity"``, ``"cost_benefit"``) or
        its label (``"read & validate"``, ``"event study"``, …).
    skip : optional stages (balance, attrition, contamination, event study, sensitivity, cost-benefit) not to run;
        skipping contamination skips its share stage too.
    use_cache : reuse and store stage results in the config's stage cache (as ``run`` does when the config's
        ``cache.enabled``); off by default, so validation scripts always compute.

    Returns
    -------
    StageResults
        ``results.cohort.cohort``, ``results.match.matched``, ``results.outcomes.outcomes``,
        ``results.effects.frame``, … (None for stages not run).

    Examples
    --------
    >>> res = run_until(load_config("config.yaml"), "outcomes", skip=["balance"])  # doctest: +SKIP
    >>> res.outcomes.outcomes.filter(like="public_support_m").mean()  # doctest: +SKIP
    """
    last = stage(stage_name)
    skipped = [stage(s) for s in skip]
    bad = [s.label for s in skipped if s.required]
    if bad:
        raise ConfigError(f"run_until: stages {bad} are required by the later stages and cannot be skipped")
    np.random.seed(cfg.seed)  # noqa: NPY002 - as run()
    results = StageResults(cfg)
    cache = stage_cache(cfg) if use_cache else None
    for st in CHAIN[: CHAIN.index(last) + 1]:
        whole = st if st.part_of is None else stage(st.part_of)
        reason = "skipped (run_until skip=)" if st in skipped or whole in skipped else st.off_reason(cfg)
        results.records.append(_run_stage(results, st, reason, keep_going=False, cache=cache))
    return results


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
    for i, st in enumerate(CHAIN, 1):
        reason = st.off_reason(cfg)
        lines.append(f"{i:2d}. {st.label}: {'off' if reason else st.describe(cfg)}")
    lines.append(f"{len(CHAIN) + 1:2d}. report: {plan.report(cfg)}")
    lines.append("")
    lines.append(f"config hash (SHA-256): {cfg.config_hash()}")
    return "\n".join(lines)
