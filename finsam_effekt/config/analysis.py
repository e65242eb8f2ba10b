"""The analysis config (pydantic): one YAML file describes one reproducible analysis.

A config key is read in exactly one place: its model here. Rules that join two settings are validators of
:class:`AnalysisConfig`, so no stage checks them again. Loading a config resolves its paths, reads the input
spec and the cost-benefit parameters, and imports no DuckDB code.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import Discriminator, Field, PrivateAttr, Tag, ValidationError, field_validator, model_validator

from ..errors import ConfigError
from ..options import (
    DEFAULT_ESTIMATORS,
    DEFAULT_SUBGROUPS,
    CensoringWeights,
    ClusterLevel,
    CSControlGroup,
    Distance,
    EligibilityRule,
    Estimator,
    Language,
    LaterTreated,
    MatchingMethod,
    MatchOrder,
    RosenbaumZeros,
    StdErrorKind,
    SubgroupField,
)
from ..schema import (
    DEFAULT_DISCLOSURE_THRESHOLD,
    DEFAULT_EPISODE_GAP_DAYS,
    DEFAULT_SELF_SUPPORT_THRESHOLD_SEK,
    HISTORY_COLUMNS,
    OUTCOMES,
)
from .base import Month, StrictBool, StrictFloat, StrictInt, StrictModel, format_validation_error, load_yaml
from .cost_benefit import CostBenefitParameters, load_cost_benefit_parameters
from .inputs import InputSpec, load_input_spec

#: Register-history covariates produced by ``panel.history_features`` (docs/tables.md), the default PS model:
#: every history column — the counts and amounts over 3, 12 and 24 months and the status month by month at
#: u−1..u−6 (``ps_u1``..``ps_u6`` public support 0/1, ``source_u1``..``source_u6`` the main source of support, as
#: categories) — plus the demographics with few levels (kommun and förbund are left to ``exact``/strata). The
#: month-by-month status is there because entry follows the last month or two (the Ashenfelter dip): counts alone
#: leave the matched sample unbalanced on the status at u−1 (issue 15).
DEFAULT_COVARIATES: tuple[str, ...] = (*HISTORY_COLUMNS, "age", "sex", "education", "birth_region")


class WindowSettings(StrictModel):
    """Calendar months in which participants' reference month (start of first linkable insats) may lie."""

    start: Month = Field(description="first reference month u (YYYY-MM), inclusive")
    end: Month = Field(description="last reference month u (YYYY-MM), inclusive")

    @model_validator(mode="after")
    def _ordered(self) -> WindowSettings:
        if self.end < self.start:
            raise ValueError(f"window.end {self.end} is before window.start {self.start}")
        return self


class AgeSettings(StrictModel):
    """Age range (completed years at the reference month) for treated and candidate controls alike."""

    min: StrictInt = Field(16, ge=0, le=120, description="youngest age at u, inclusive")
    max: StrictInt = Field(64, ge=0, le=120, description="oldest age at u, inclusive")

    @model_validator(mode="after")
    def _ordered(self) -> AgeSettings:
        if self.max < self.min:
            raise ValueError(f"age.max {self.max} is below age.min {self.min}")
        return self


class EligibilitySettings(StrictModel):
    """Who may be a candidate control in month u (treated persons must meet the same rule at their own u)."""

    rule: EligibilityRule = Field(
        "recent_public_support",
        description="recent_public_support: some public support in the lookback months before u; "
        "any_resident: every resident of working age not (yet) in an insats",
    )
    lookback_months: StrictInt = Field(12, ge=1, le=120, description="months before u the rule looks at")
    min_history_months: StrictInt = Field(
        24, ge=0, le=120, description="register history needed before u (months observed in the data)"
    )
    candidate_sample_rate: StrictFloat = Field(
        1.0, gt=0, le=1, description="random share of candidate person-months kept per month (1 = full pool)"
    )


class MatchingSettings(StrictModel):
    """Nearest-neighbour matching with MatchIt's semantics (Ho, Imai, King & Stuart 2011), or IPW."""

    method: MatchingMethod = Field("nearest", description="nearest-neighbour matching or ATT weighting")
    distance: Distance = Field(
        "glm",
        description="glm: propensity score from a logit model (MatchIt's default); logit: its linear predictor "
        "(Austin 2011 recommends the caliper on this scale)",
    )
    ratio: StrictInt = Field(1, ge=1, le=20, description="controls per treated (k:1)")
    replace: StrictBool = Field(
        False, description="match with replacement (a control may serve several treated)"
    )
    caliper: StrictFloat | None = Field(
        0.2, gt=0, description="maximum distance; in SD units of the distance when std_caliper (Austin 2011)"
    )
    std_caliper: StrictBool = Field(
        True, description="caliper in SD units of the distance (MatchIt std.caliper)"
    )
    exact: list[str] = Field(
        default_factory=lambda: ["ref_month"],
        description="exact-matching strata; ref_month (calendar month) is always added in the staggered design",
    )
    m_order: MatchOrder = Field("largest", description="order in which treated are matched (MatchIt m.order)")
    reuse_max: StrictInt | None = Field(None, ge=1, description="max times a control may be reused")
    unit_id: StrictBool = Field(
        False, description="use each person at most once as a control across all months (MatchIt unit.id)"
    )
    ipw_trim: StrictFloat | None = Field(None, gt=0, lt=0.5, description="trim PS outside [t, 1-t] for IPW")
    time_effects: StrictBool = Field(True, description="calendar-month fixed effects in the propensity model")
    propensity_fit_rows: StrictInt | None = Field(
        10_000_000,
        ge=1000,
        description="cohort rows above which the propensity model is fitted on every participant and a seeded "
        "random sample of the candidates, this many rows in all (case-control sampling: the coefficients are "
        "consistent, the intercept is corrected by log(sampling rate), Prentice & Pyke 1979), and then scores "
        "every row; null = always on every row",
    )

    @field_validator("exact")
    @classmethod
    def _month_exact(cls, v: list[str]) -> list[str]:
        return v if "ref_month" in v else ["ref_month", *v]


class OutcomeSettings(StrictModel):
    """Outcomes (domain note §4) and the horizons k at which effects are read."""

    names: list[str] = Field(
        default_factory=lambda: list(OUTCOMES), description="outcomes of schema.OUTCOMES"
    )
    horizons: list[StrictInt] = Field(default_factory=lambda: [3, 6, 12], description="months after u")
    self_support_threshold_sek: StrictFloat = Field(
        DEFAULT_SELF_SUPPORT_THRESHOLD_SEK,
        ge=0,
        description="monthly earnings for self-support (egen försörjning)",
    )
    path_window: StrictInt = Field(
        24, ge=1, le=60, description="outcome paths and event study from u-w to u+w"
    )
    data_end: Month | None = Field(
        None,
        description="last month of data for every register (YYYY-MM); None = each register's own last complete "
        "month, detected from the data; a month after a register's data is an error",
    )
    register_end: dict[str, Month] = Field(
        default_factory=dict,
        description="last complete month per register (benefit_spells, social_assistance, earnings), where the "
        "detection should be overridden (earlier only); outcomes built from it are missing after it",
    )

    @field_validator("names")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        unknown = [o for o in v if o not in OUTCOMES]
        if unknown:
            raise ValueError(f"unknown outcome(s) {unknown}; known outcomes are {list(OUTCOMES)}")
        if not v:
            raise ValueError("at least one outcome is needed")
        return v

    @field_validator("horizons")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if not v or any(k < 1 or k > 60 for k in v):
            raise ValueError("horizons must be a non-empty list of months between 1 and 60")
        return sorted(set(v))


class InferenceSettings(StrictModel):
    """Standard errors (Abadie & Imbens 2006; cluster-robust CR1 after matching, MatchIt vignette)."""

    se: StdErrorKind = Field("cluster", description="standard-error type")
    cluster: ClusterLevel = Field("person_id", description="cluster level for se=cluster")
    bootstrap_reps: StrictInt = Field(199, ge=10, le=100_000, description="cluster-bootstrap replications")
    alpha: StrictFloat = Field(0.05, gt=0, lt=0.5, description="1 - confidence level")
    rosenbaum_zeros: RosenbaumZeros = Field(
        "drop",
        description="zero pair differences in the Rosenbaum signed-rank bound: drop (dropped before ranking, as "
        "rbounds' psens) or pratt (ranked, then given rank 0, as DOS2's senWilcox)",
    )


class CSDidSettings(StrictModel):
    """The Callaway & Sant'Anna (2021) cross-check ``cs_did`` (as R ``did``; base period varying)."""

    control_group: CSControlGroup = Field(
        "not_yet_treated",
        description="comparison units: not_yet_treated (not yet started in the month compared, never-started "
        "included; did's notyettreated) or never_treated (did's nevertreated)",
    )


class CostBenefitSettings(StrictModel):
    """Cost-benefit per financier (domain note §6); parameters from a file, with overrides."""

    enabled: StrictBool = Field(True, description="run the cost-benefit stage")
    parameters: Path | None = Field(
        None, description="parameters YAML (relative to this config); None = the package defaults"
    )
    overrides: dict[str, Any] = Field(default_factory=dict, description="parameter -> value, applied on top")


class LinkageSettings(StrictModel):
    """How double registrations are merged into episodes."""

    episode_gap_days: StrictInt = Field(
        DEFAULT_EPISODE_GAP_DAYS, ge=0, le=3650, description="max gap between registrations of one episode"
    )


class EngineSettings(StrictModel):
    """The embedded engine (DuckDB) every stage computes large tables in; the defaults fit a 16 GiB laptop."""

    threads: StrictInt | None = Field(
        None, ge=1, le=1024, description="DuckDB worker threads (None = one per CPU core)"
    )
    memory_limit: str = Field(
        "6GB",
        pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$",
        description="DuckDB's memory limit (e.g. 6GB); larger intermediate tables spill to temp_directory",
    )
    temp_directory: Path | None = Field(
        None, description="where DuckDB spills (None = the run's work directory)"
    )


class CacheSettings(StrictModel):
    """The stage cache: results of the expensive stages (``pipeline.cache.CACHED_STAGES``: read … balance, outcomes,
    the contamination share) are kept on disk, keyed by the SHA-256 of their inputs, the config keys they read and
    the package's code, and reused by a rerun."""

    enabled: StrictBool = Field(
        True, description="reuse and store stage results (the CLI's --no-cache turns it off)"
    )
    directory: Path | None = Field(
        None, description="cache folder (None = .finsam_cache beside the config file); relative to the config"
    )


def _inputs_kind(v: Any) -> str:
    return "inline" if isinstance(v, dict | InputSpec) else "file"


class AnalysisConfig(StrictModel):
    """One analysis: inputs, design, estimation, cost-benefit and reporting. See ``configs/analysis_template.yaml``."""

    title: str = Field("", description="title of the report ('' = a standard title in the report language)")
    question: str = Field(
        "",
        description="the question the analysis answers, in words ('' = the standard question of the package)",
    )
    inputs: Annotated[
        Annotated[InputSpec, Tag("inline")] | Annotated[Path, Tag("file")], Discriminator(_inputs_kind)
    ] = Field(description="an input spec inline (base_dir, tables) or the path of an input-spec YAML file")
    window: WindowSettings = Field(description="calendar months of the reference month u (start, end)")
    age: AgeSettings = Field(default_factory=AgeSettings, description="age range at u (min, max)")
    eligibility: EligibilitySettings = Field(
        default_factory=EligibilitySettings, description="who may be a candidate control in month u"
    )
    linkage: LinkageSettings = Field(
        default_factory=LinkageSettings, description="merging double registrations into episodes"
    )
    covariates: list[str] = Field(
        default_factory=lambda: list(DEFAULT_COVARIATES), description="history features in the PS model"
    )
    matching: MatchingSettings = Field(
        default_factory=MatchingSettings, description="matching design (MatchIt semantics)"
    )
    later_treated: LaterTreated = Field(
        "keep",
        description="controls who later start an insats: keep (starting now vs not now, intention to treat) "
        "or censor their follow-up at their own start",
    )
    censoring_weights: CensoringWeights = Field(
        "ipcw",
        description="with later_treated: censor, reweight the controls still uncensored at u+k by the inverse "
        "probability of not having started by then given their register history (ipcw), or not (none: assumes "
        "the later start is unrelated to the outcome)",
    )
    outcomes: OutcomeSettings = Field(
        default_factory=OutcomeSettings, description="outcomes, horizons and the self-support threshold"
    )
    subgroups: list[SubgroupField] = Field(
        default_factory=lambda: list(DEFAULT_SUBGROUPS), description="subgroup effects"
    )
    estimators: list[Estimator] = Field(
        default_factory=lambda: list(DEFAULT_ESTIMATORS),
        description="effect estimators (the first is the main one): weighted_mean_diff (matched ATT), "
        "regression_adjustment, matched_did, ipw and aipw (unmatched cohort), cs_did (Callaway & Sant'Anna 2021)",
    )
    inference: InferenceSettings = Field(
        default_factory=InferenceSettings, description="standard errors and confidence level"
    )
    cs_did: CSDidSettings = Field(
        default_factory=CSDidSettings, description="the cs_did estimator's comparison units"
    )
    event_study: StrictBool = Field(
        True, description="estimate the event study u-w..u+w with a pre-trend test"
    )
    event_study_outcomes: list[str] = Field(
        default_factory=lambda: ["public_support", "self_support"],
        description="outcomes of the event study (one panel regression each; the slowest stage)",
    )
    sensitivity: StrictBool = Field(True, description="Rosenbaum bounds, E-values and placebo checks")
    cost_benefit: CostBenefitSettings = Field(
        default_factory=CostBenefitSettings, description="cost-benefit parameters file and overrides"
    )
    disclosure_threshold: StrictInt = Field(
        DEFAULT_DISCLOSURE_THRESHOLD,
        ge=1,
        description="no published cell may rest on fewer persons than this",
    )
    language: Language = Field("sv", description="report language")
    seed: StrictInt = Field(20240101, ge=0, description="seed of every random step")
    engine: EngineSettings = Field(
        default_factory=EngineSettings, description="DuckDB threads, memory limit and spill directory"
    )
    cache: CacheSettings = Field(default_factory=CacheSettings, description="the stage cache")

    _cost_benefit_parameters: CostBenefitParameters | None = PrivateAttr(None)
    _source: Path | None = PrivateAttr(None)

    @property
    def source(self) -> Path | None:
        """The config file this config was loaded from (None for a config built in code)."""
        return self._source

    @field_validator("event_study_outcomes")
    @classmethod
    def _known_es(cls, v: list[str]) -> list[str]:
        unknown = [o for o in v if o not in OUTCOMES]
        if unknown:
            raise ValueError(f"unknown outcome(s) {unknown}; known outcomes are {list(OUTCOMES)}")
        return v

    @field_validator("estimators")
    @classmethod
    def _some(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one estimator is needed")
        return v

    @model_validator(mode="after")
    def _se_fits_the_design(self) -> AnalysisConfig:
        if self.matching.method == "ipw" and self.inference.se == "abadie_imbens":
            raise ValueError(
                "inference.se: 'abadie_imbens' is the SE of nearest-neighbour matching; with matching.method "
                "'ipw' use se 'cluster' or 'bootstrap'"
            )
        return self

    def resolved(self, root: Path) -> AnalysisConfig:
        """A copy with absolute paths (relative ones taken from ``root``) and the input spec loaded inline."""
        root = Path(root).resolve()
        inputs = self.inputs
        if isinstance(inputs, Path):
            spec_path = inputs if inputs.is_absolute() else (root / inputs).resolve()
            if not spec_path.is_file():
                raise ConfigError(f"inputs: input spec file not found: {spec_path}")
            inputs = load_input_spec(spec_path)
        else:
            inputs = inputs.resolved(root)
        cb = self.cost_benefit
        if cb.parameters is not None and not cb.parameters.is_absolute():
            cb = cb.model_copy(update={"parameters": (root / cb.parameters).resolve()})
            if not cb.parameters.is_file():
                raise ConfigError(f"cost_benefit.parameters: file not found: {cb.parameters}")
        eng = self.engine
        if eng.temp_directory is not None and not eng.temp_directory.is_absolute():
            eng = eng.model_copy(update={"temp_directory": (root / eng.temp_directory).resolve()})
        cache = self.cache.model_copy(
            update={"directory": (root / (self.cache.directory or ".finsam_cache")).resolve()}
        )
        out = self.model_copy(update={"inputs": inputs, "cost_benefit": cb, "engine": eng, "cache": cache})
        out._cost_benefit_parameters = load_cost_benefit_parameters(cb.parameters, dict(cb.overrides))
        return out

    @property
    def cost_benefit_parameters(self) -> CostBenefitParameters:
        """The cost-benefit parameters: ``cost_benefit.parameters`` (or the package defaults) with the overrides
        applied, read and checked when the config was loaded."""
        if self._cost_benefit_parameters is None:
            raise ConfigError("cost_benefit: the config has not been resolved; use load_config()")
        return self._cost_benefit_parameters

    @property
    def input_spec(self) -> InputSpec:
        """The input spec (after :meth:`resolved`)."""
        if not isinstance(self.inputs, InputSpec):
            raise ConfigError("inputs: the config has not been resolved; use load_config()")
        return self.inputs

    def to_dict(self) -> dict:
        """Plain JSON-able dict of the config (paths as text), as written to ``manifest.json``."""
        return self.model_dump(mode="json")

    def config_hash(self) -> str:
        """SHA-256 of the canonical JSON of the resolved config, without ``engine`` and ``cache`` (they change how
        a run computes, not what)."""
        analysis = {k: v for k, v in self.to_dict().items() if k not in ("engine", "cache")}
        text = json.dumps(analysis, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_config(data: dict, root: Path, source: str = "<config>") -> AnalysisConfig:
    """Validate a config mapping and resolve its paths against ``root``; errors name ``source`` and the key."""
    try:
        cfg = AnalysisConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from exc
    except ValueError as exc:  # raised by InputSpec.model_post_init outside pydantic's error collection
        raise ConfigError(f"{source}: inputs: {exc}") from exc
    try:
        return cfg.resolved(root)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def load_config(path: Path, *, language: str | None = None) -> AnalysisConfig:
    """Read an analysis config YAML; relative paths resolve against the config file's folder.

    Raises
    ------
    ConfigError
        Unknown keys, wrong types or missing files, each naming the file and the key path (e.g.
        ``config.yaml: matching.ratio: Input should be a valid integer``).
    """
    path = Path(path)
    data = load_yaml(path)
    if language is not None:
        data = {**data, "language": language}
    cfg = parse_config(data, path.resolve().parent, str(path))
    cfg._source = path.resolve()
    return cfg
