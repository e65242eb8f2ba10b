"""The person-month panel and what the stages read from it: history features, horizon outcomes, outcome paths.

The package turns the canonical register tables into

* :func:`person_months` (``build.py``) — the sparse person-month försörjning panel (``docs/tables.md``,
  "panel → person_months"), with the panel rules in that module's docstring, built in :func:`panel_partitions`
  parts at national scale;
* :func:`history_features` (``features.py``) — register-history covariates for (person, reference month) pairs,
  measured from the months before the reference month only (never from SUS), and :func:`pre_period_outcomes`,
  the main outcomes month by month before it (the balance table's pre-period rows);
* :func:`horizon_outcomes`, :func:`outcome_paths` and :func:`densify` (``outcomes.py``) — outcomes at horizons
  after the reference month, the monthly path around it and the dense panel, censored months marked (NaN), never
  filled with zeros;
* :func:`summarise_paths` (``summary.py``) — the weighted mean path per arm and month, for the figure.

The panel is built and joined in DuckDB over the (possibly very large) inputs. The cohort's history features and
the outcomes of a stored, person-sorted panel are read from it as a stream instead (``stream.py``: a row group at
a time, each person's months one dense row of a small matrix; the same values as the joins, which remain for a
panel not stored in person order and for raw tables). Inputs may be pandas DataFrames, Arrow tables, DuckDB
relations (of the connection passed as ``con``) or paths to Parquet files / directories of Parquet parts, all in
canonical form (``schema.TABLES``).
"""

from ..schema import DEMOGRAPHIC_COLUMNS, FEATURE_COLUMNS, HISTORY_COLUMNS, PANEL_COLUMNS
from .build import panel_partitions, person_months
from .features import (
    PRE_PERIOD_MEAN_WINDOW,
    PRE_PERIOD_MONTHS,
    PRE_PERIOD_OUTCOMES,
    history_features,
    pre_period_columns,
    pre_period_outcomes,
)
from .outcomes import densify, horizon_outcomes, outcome_paths
from .summary import summarise_paths

__all__ = [
    "DEMOGRAPHIC_COLUMNS",
    "FEATURE_COLUMNS",
    "HISTORY_COLUMNS",
    "PANEL_COLUMNS",
    "PRE_PERIOD_MEAN_WINDOW",
    "PRE_PERIOD_MONTHS",
    "PRE_PERIOD_OUTCOMES",
    "densify",
    "history_features",
    "horizon_outcomes",
    "outcome_paths",
    "panel_partitions",
    "person_months",
    "pre_period_columns",
    "pre_period_outcomes",
    "summarise_paths",
]
