"""One design-matrix builder and one logistic regression, shared by every model the package fits.

The propensity score (``matching``), the censoring hazard of IPCW (``cohort``), IPW/AIPW (``estimation``) and the
balance table (``balance``) all turn covariate columns into numbers with :func:`design_matrix`, and the first three
fit :func:`fit_logit`. One rule for each choice, stated once:

* **numeric** columns enter as they are (booleans as 0/1); a missing numeric value is an error naming the column
  (impute it, or code the variable as categories);
* **categorical** columns (text, categories, or any column named in ``categorical``) enter as one 0/1 indicator
  per level, named ``{column}={level}``, levels in sorted order; a **missing value is a level of its own**,
  ``(missing)`` (the missing-indicator method: persons with an unknown education are compared with each other,
  not dropped and not guessed). Models drop the first level (``levels="drop_first"``, full rank with an
  intercept); balance tables keep every level (``levels="all"``, as cobalt shows them);
* columns that are constant in the data are dropped by models (collinear with the intercept).

The package has two modules: ``matrix.py`` (the builders and :class:`CompactDesign`) and ``logit.py``
(:func:`fit_logit` and its large-data path).
"""

from .logit import (
    BLOCK_ROWS,
    RIDGE_PENALTY,
    SUBSAMPLE_ROWS,
    WARM_START_ROWS,
    LogitFit,
    case_control_draw,
    fit_logit,
    independent_columns,
    large_design,
    null_model_start,
    subsample_start,
)
from .matrix import (
    MISSING_LEVEL,
    CompactDesign,
    DesignSource,
    categorical_values,
    compact_design_matrix,
    design_columns,
    design_matrix,
    design_source,
    design_sources,
    is_categorical,
    level_codes,
    level_names,
    numeric_values,
)

__all__ = [
    "BLOCK_ROWS",
    "MISSING_LEVEL",
    "RIDGE_PENALTY",
    "SUBSAMPLE_ROWS",
    "WARM_START_ROWS",
    "CompactDesign",
    "DesignSource",
    "LogitFit",
    "case_control_draw",
    "categorical_values",
    "compact_design_matrix",
    "design_columns",
    "design_matrix",
    "design_source",
    "design_sources",
    "fit_logit",
    "independent_columns",
    "is_categorical",
    "large_design",
    "level_codes",
    "level_names",
    "null_model_start",
    "numeric_values",
    "subsample_start",
]
