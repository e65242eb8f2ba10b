"""Configuration: the input spec, the analysis config and the cost-benefit parameters (pydantic models).

``load_config(path)`` reads one analysis YAML (``configs/analysis_template.yaml`` documents every key), resolves
its paths, loads its input spec and its cost-benefit parameters, and checks every rule that joins two settings.
"""

from .analysis import (
    DEFAULT_COVARIATES,
    AgeSettings,
    AnalysisConfig,
    CacheSettings,
    CostBenefitSettings,
    EligibilitySettings,
    EngineSettings,
    InferenceSettings,
    LinkageSettings,
    MatchingSettings,
    OutcomeSettings,
    WindowSettings,
    load_config,
    parse_config,
)
from .base import StrictModel, format_validation_error, load_yaml
from .cost_benefit import (
    DEFAULT_PARAMETERS_FILE,
    CostBenefitParameters,
    MonteCarloSettings,
    PersistenceSettings,
    SensitivitySettings,
    load_cost_benefit_parameters,
)
from .inputs import InputSpec, InputTable, load_input_spec

__all__ = [
    "DEFAULT_COVARIATES",
    "DEFAULT_PARAMETERS_FILE",
    "AgeSettings",
    "AnalysisConfig",
    "CacheSettings",
    "EngineSettings",
    "CostBenefitParameters",
    "CostBenefitSettings",
    "EligibilitySettings",
    "InferenceSettings",
    "InputSpec",
    "InputTable",
    "LinkageSettings",
    "MatchingSettings",
    "MonteCarloSettings",
    "OutcomeSettings",
    "PersistenceSettings",
    "SensitivitySettings",
    "StrictModel",
    "WindowSettings",
    "format_validation_error",
    "load_config",
    "load_cost_benefit_parameters",
    "load_input_spec",
    "load_yaml",
    "parse_config",
]
