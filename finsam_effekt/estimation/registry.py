"""The estimator registry: each estimator's name → its implementation, the sample it needs, and its labels.

``estimate_effects`` dispatches through :data:`REGISTRY` instead of ``if name == …`` (linearmodels' covariance
registry; MatchIt's one file per method); the pipeline asks it which sample an estimator needs
(``REGISTRY[name].sample``) and the report reads the labels from it. Adding an estimator is one module with a
``fit(sample, context) -> Fitted`` function (``estimation.sample``), one :class:`Estimator` entry below, and its
name in ``options.Estimator`` — nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, get_args

from ..options import ESTIMATORS
from . import matched, staggered, weighting
from .sample import FitFunction

#: The samples an estimator can need: the matched analysis table (``data``), the unmatched cohort (``cohort=``)
#: or the long person × month panel (``panel=``, ``panel_units=``).
SampleKind = Literal["matched", "cohort", "panel"]
SAMPLE_KINDS: tuple[str, ...] = get_args(SampleKind)


@dataclass(frozen=True)
class Estimator:
    """One registered estimator.

    Attributes
    ----------
    name : its name in ``options.ESTIMATORS`` (the config's ``estimators`` list and the ``estimator`` column).
    sample : the sample it works on (:data:`SampleKind`).
    fit : ``fit(sample, context) -> Fitted``, the implementation.
    label_sv, label_en : its name for readers (report), in Swedish and English.
    description : what it estimates, in one or two sentences with its reference.
    """

    name: str
    sample: SampleKind
    fit: FitFunction
    label_sv: str
    label_en: str
    description: str


_ENTRIES: tuple[Estimator, ...] = (
    Estimator(
        "weighted_mean_diff",
        "matched",
        matched.fit_weighted_mean_diff,
        "viktad medelvärdesskillnad (matchad)",
        "weighted difference in means (matched)",
        "ATT = Σ_T w y / Σ_T w − Σ_C w y / Σ_C w on the matched sample with the matching weights (MatchIt; Ho, "
        "Imai, King & Stuart 2011); the coefficient of WLS y ~ treated.",
    ),
    Estimator(
        "regression_adjustment",
        "matched",
        matched.fit_regression_adjustment,
        "regressionsjusterad",
        "regression-adjusted",
        "Coefficient of treated in WLS y ~ treated + covariates on the matched sample (Ho, Imai, King & Stuart "
        "2007, matching as preprocessing).",
    ),
    Estimator(
        "matched_did",
        "matched",
        matched.fit_matched_did,
        "matchad skillnad-i-skillnader",
        "matched difference-in-differences",
        "Weighted mean difference of y − ȳ_pre on the matched sample, ȳ_pre the unit's mean over months "
        "u−12..u−1 (cumulative k: y_cum − k ȳ_pre).",
    ),
    Estimator(
        "ipw",
        "cohort",
        weighting.fit_ipw,
        "inverterad sannolikhetsviktning",
        "inverse probability weighting",
        "ATT on the unmatched cohort by inverse probability weighting, propensity score a logit on the "
        "covariates (Hájek weights; Sant'Anna & Zhao 2020).",
    ),
    Estimator(
        "aipw",
        "cohort",
        weighting.fit_aipw,
        "dubbelt robust (AIPW)",
        "doubly robust (AIPW)",
        "Doubly robust ATT on the unmatched cohort: IPW of the residuals of the controls' outcome regression "
        "(Sant'Anna & Zhao 2020).",
    ),
    Estimator(
        "cs_did",
        "panel",
        staggered.fit_cs_did,
        "Callaway & Sant'Anna DiD",
        "Callaway & Sant'Anna DiD",
        "Group-time ATTs with not-yet-treated (or never-treated, cs_did.control_group) controls on the person × "
        "month panel, aggregated by event time as R did (Callaway & Sant'Anna 2021); no matching: the design "
        "cross-check.",
    ),
)

#: Every estimator by name, in the order of ``options.ESTIMATORS``.
REGISTRY: Mapping[str, Estimator] = MappingProxyType({e.name: e for e in _ENTRIES})


def estimators_on(sample: SampleKind) -> tuple[str, ...]:
    """Names of the estimators that work on ``sample`` (``"matched"``, ``"cohort"`` or ``"panel"``)."""
    return tuple(name for name in ESTIMATORS if name in REGISTRY and REGISTRY[name].sample == sample)


#: Estimators on the matched sample (``data``).
MATCHED_ESTIMATORS: tuple[str, ...] = estimators_on("matched")
#: Estimators on the unmatched cohort (``cohort=``).
COHORT_ESTIMATORS: tuple[str, ...] = estimators_on("cohort")
#: Estimators on the long person-month panel (``panel=``).
PANEL_ESTIMATORS: tuple[str, ...] = estimators_on("panel")
