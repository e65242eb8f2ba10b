"""Every option vocabulary of the package, declared once (config, estimators and report import them from here).

Each vocabulary is a ``Literal`` type (for pydantic and type checkers) and the tuple of its values, derived from
the type with :func:`typing.get_args` so the two can never disagree (pyfixest's ``literals.py`` habit). The config
models use the types; the functions that researchers call directly check their arguments with :func:`check`.
Labels for readers (Swedish/English) live in :mod:`finsam_effekt.report.text`, keyed by these values.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, get_args

from .errors import ConfigError
from .schema import OUTCOMES as _OUTCOMES

# -- effect estimation ------------------------------------------------------------------------------------------
#: Effect estimators (``estimation.estimate_effects``); the sample each needs is in ``estimation.REGISTRY``.
Estimator = Literal["weighted_mean_diff", "regression_adjustment", "matched_did", "ipw", "aipw", "cs_did"]
ESTIMATORS: tuple[str, ...] = get_args(Estimator)
#: The estimators a config runs when it names none (the first is the main one).
DEFAULT_ESTIMATORS: tuple[str, ...] = ESTIMATORS[:3]
#: Standard errors: cluster-robust CR1, cluster bootstrap, Abadie–Imbens (nearest-neighbour matching only).
StdErrorKind = Literal["cluster", "bootstrap", "abadie_imbens"]
SE_KINDS: tuple[str, ...] = get_args(StdErrorKind)
#: Cluster level of ``se: cluster``.
ClusterLevel = Literal["person_id", "subclass"]
CLUSTER_LEVELS: tuple[str, ...] = get_args(ClusterLevel)
#: How an outcome is read at horizon k: the status in month u+k, or the sum over months u+1..u+k.
Measure = Literal["status", "cumulative"]
MEASURES: tuple[str, ...] = get_args(Measure)
#: Outcomes of the person-month panel (``schema.OUTCOMES``, domain note §4).
OUTCOMES: tuple[str, ...] = _OUTCOMES
#: Subgroup fields: register (sex, age band, förbund) or SUS (insats type, time on support before start).
SubgroupField = Literal["sex", "age_band", "insats_type", "forbund_id", "public_support_before"]
SUBGROUP_FIELDS: tuple[str, ...] = get_args(SubgroupField)
#: The subgroups a config reports when it names none.
DEFAULT_SUBGROUPS: tuple[str, ...] = SUBGROUP_FIELDS[:3]
#: Age bands of the ``age_band`` subgroup: (lower, upper exclusive, label), years at u.
AGE_BANDS: tuple[tuple[int, int, str], ...] = (
    (0, 25, "16-24"),
    (25, 30, "25-29"),
    (30, 40, "30-39"),
    (40, 50, "40-49"),
    (50, 200, "50+"),
)

#: Comparison units of the Callaway & Sant'Anna estimator (``cs_did``): units not yet treated in the month
#: compared (R ``did``'s ``"notyettreated"``, never-treated included) or never-treated units only (``"nevertreated"``).
CSControlGroup = Literal["not_yet_treated", "never_treated"]
CS_CONTROL_GROUPS: tuple[str, ...] = get_args(CSControlGroup)
#: Zero pair differences in Rosenbaum's signed-rank bound: dropped before ranking (rbounds ``psens``; Wilcoxon
#: 1945) or ranked with the others and then given rank 0 (Pratt 1959; DOS2 ``senWilcox``).
RosenbaumZeros = Literal["drop", "pratt"]
ROSENBAUM_ZEROS: tuple[str, ...] = get_args(RosenbaumZeros)

# -- design ---------------------------------------------------------------------------------------------------
#: Controls who start an insats later: kept (start now vs not now) or censored at their own start.
LaterTreated = Literal["keep", "censor"]
LATER_TREATED: tuple[str, ...] = get_args(LaterTreated)
#: Weights for controls censored at their own later start (``later_treated: censor``).
CensoringWeights = Literal["ipcw", "none"]
CENSORING_WEIGHTS: tuple[str, ...] = get_args(CensoringWeights)
#: Who may be a candidate control in month u.
EligibilityRule = Literal["recent_public_support", "any_resident"]
ELIGIBILITY_RULES: tuple[str, ...] = get_args(EligibilityRule)

# -- matching -------------------------------------------------------------------------------------------------
#: Nearest-neighbour matching or ATT weighting.
MatchingMethod = Literal["nearest", "ipw"]
MATCHING_METHODS: tuple[str, ...] = get_args(MatchingMethod)
#: Matching distance: the propensity score (MatchIt ``glm``) or its linear predictor (``logit``).
Distance = Literal["glm", "logit"]
DISTANCES: tuple[str, ...] = get_args(Distance)
#: Order in which treated units are matched (MatchIt ``m.order``).
MatchOrder = Literal["largest", "smallest", "data", "random"]
M_ORDERS: tuple[str, ...] = get_args(MatchOrder)

# -- input and output -----------------------------------------------------------------------------------------
#: Formats of an input table (``auto``: by the file's extension).
FileFormat = Literal["auto", "parquet", "csv", "sas", "spss", "stata"]
FILE_FORMATS: tuple[str, ...] = get_args(FileFormat)
#: Formats ``synth``/``io.write_tables`` can write.
WriteFormat = Literal["parquet", "csv", "csv-latin1", "agency-csv", "sav", "dta"]
WRITE_FORMATS: tuple[str, ...] = get_args(WriteFormat)
#: Report languages.
Language = Literal["sv", "en"]
LANGUAGES: tuple[str, ...] = get_args(Language)

# -- cost-benefit ---------------------------------------------------------------------------------------------
#: Persistence of effects beyond the observed months.
Persistence = Literal["none", "constant", "linear_decay", "exponential"]
PERSISTENCE_KINDS: tuple[str, ...] = get_args(Persistence)
#: Who gains when a-kassa payments fall.
AkassaPayer = Literal["state", "fund"]
AKASSA_PAYERS: tuple[str, ...] = get_args(AkassaPayer)
#: The two cost-benefit perspectives, never mixed.
Perspective = Literal["public_finance", "socio_economic"]
PERSPECTIVES: tuple[str, ...] = get_args(Perspective)


def check(name: str, value: object, allowed: Iterable[str], *, where: str = "") -> None:
    """Raise :class:`~finsam_effekt.errors.ConfigError` unless ``value`` (or each of a list of values) is one of
    ``allowed``; the message names the option, what was given and what is allowed."""
    allowed = tuple(allowed)
    values = list(value) if isinstance(value, list | tuple | set | frozenset) else [value]
    bad = [v for v in values if v not in allowed]
    if bad:
        shown = bad[0] if len(values) == 1 and not isinstance(value, list | tuple) else bad
        prefix = f"{where}: " if where else ""
        raise ConfigError(f"{prefix}{name} must be one of {list(allowed)}; got {shown!r}")
