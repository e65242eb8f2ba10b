"""Effects on försörjning at 3, 6 and 12 months: estimators, inference, event study, sensitivity (domain note §4–5).

The façade of the estimation stage. The estimators work on plain DataFrames so that researchers can use them
without the pipeline::

    from finsam_effekt.estimation import estimate_effects
    res = estimate_effects(matched, horizons=(3, 6, 12), se="cluster", cluster="person_id", alpha=0.05)
    res.summary(); res.to_frame(); res.conf_int(0.10); res.cov("weighted_mean_diff")

Modules: ``effects`` (:func:`estimate_effects`), ``settings`` (:class:`EffectOptions`), ``registry`` (estimator
name → implementation, sample, labels), ``sample`` (what an estimator is handed), ``results``, ``inference``
(CR1, cluster bootstrap, Abadie–Imbens, the level from ``alpha``), one module per estimator family (``matched``,
``weighting``, ``staggered``), ``eventstudy`` and ``sensitivity``.
"""

from __future__ import annotations

from ..options import AGE_BANDS, ESTIMATORS, MEASURES, SE_KINDS
from ..schema import outcome_column
from .effects import estimate_effects
from .eventstudy import event_study, twoway_wls_cluster
from .inference import abadie_imbens_se, critical_value
from .matched import PRE_PERIOD_WINDOW, pre_period_means, with_pre_period_means
from .registry import (
    COHORT_ESTIMATORS,
    MATCHED_ESTIMATORS,
    PANEL_ESTIMATORS,
    REGISTRY,
    SAMPLE_KINDS,
    Estimator,
    SampleKind,
    estimators_on,
)
from .results import (
    FRAME_COLUMNS,
    SENSITIVITY_COLUMNS,
    EffectResults,
    Estimate,
    EventStudyResults,
    SensitivityResults,
)
from .sample import path_rows
from .sensitivity import (
    PLACEBO_REL_MONTHS,
    critical_gamma,
    e_value,
    rosenbaum_mcnemar,
    rosenbaum_wilcoxon,
    sensitivity_analysis,
)
from .settings import EffectOptions
from .staggered import CSResults, callaway_santanna

__all__ = [
    "AGE_BANDS",
    "COHORT_ESTIMATORS",
    "CSResults",
    "ESTIMATORS",
    "FRAME_COLUMNS",
    "MATCHED_ESTIMATORS",
    "MEASURES",
    "PANEL_ESTIMATORS",
    "REGISTRY",
    "SAMPLE_KINDS",
    "SENSITIVITY_COLUMNS",
    "SE_KINDS",
    "EffectOptions",
    "EffectResults",
    "Estimate",
    "Estimator",
    "EventStudyResults",
    "SampleKind",
    "SensitivityResults",
    "abadie_imbens_se",
    "callaway_santanna",
    "critical_gamma",
    "critical_value",
    "e_value",
    "estimate_effects",
    "estimators_on",
    "event_study",
    "outcome_column",
    "path_rows",
    "pre_period_means",
    "with_pre_period_means",
    "PRE_PERIOD_WINDOW",
    "PLACEBO_REL_MONTHS",
    "rosenbaum_mcnemar",
    "rosenbaum_wilcoxon",
    "sensitivity_analysis",
    "twoway_wls_cluster",
]
