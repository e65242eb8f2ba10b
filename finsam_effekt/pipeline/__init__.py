"""The analysis run: read → link → panel → cohort → match → balance → outcomes → attrition → effects →
contamination share → contamination → event study → sensitivity → cost-benefit → report.

``pipeline.chain.CHAIN`` declares the stages once (function, inputs, result type, config keys); ``run`` runs them
and writes the report, ``run_until`` returns the typed results up to one stage (``pipeline.results``), and
``explain`` prints the resolved config, the estimand and the plan. Every stage function lives in
``pipeline.stages`` and calls the stage module's public function with settings from the config.
"""

from ..estimand import estimand_text
from .chain import (
    CHAIN,
    STAGE_NAMES,
    RunResult,
    Stage,
    design_warnings,
    drop_cohort_features,
    explain,
    report_content,
    run,
    run_until,
    stage,
)
from .results import (
    COHORT_KEY_COLUMNS,
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
    StageRecord,
    StageResult,
    StageResults,
    TableFile,
)
from .stages import StageUnavailable, later_start_weights, outcome_sources, with_participant_labels

__all__ = [
    "CHAIN",
    "COHORT_KEY_COLUMNS",
    "STAGE_NAMES",
    "AttritionResult",
    "BalanceResult",
    "CohortResult",
    "ColumnFile",
    "TableFile",
    "ContaminationResult",
    "ContaminationShareResult",
    "CostBenefitResult",
    "EffectsResult",
    "EventStudyResult",
    "LinkResult",
    "MatchStageResult",
    "OutcomeTables",
    "PanelResult",
    "ReadResult",
    "RunResult",
    "SensitivityResult",
    "Stage",
    "StageRecord",
    "StageResult",
    "StageResults",
    "StageUnavailable",
    "estimand_text",
    "explain",
    "later_start_weights",
    "outcome_sources",
    "report_content",
    "design_warnings",
    "drop_cohort_features",
    "run",
    "run_until",
    "stage",
    "with_participant_labels",
]
