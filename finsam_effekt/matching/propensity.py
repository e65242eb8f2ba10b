"""The propensity score: a logit of treatment on the register-history covariates, with calendar-month effects.

References
----------
Austin, P. (2011). Optimal caliper widths for propensity-score matching. Pharmaceutical Statistics 10(2).
Li, Y., Propert, K. & Rosenbaum, P. (2001). Balanced risk set matching. JASA 96(455).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from ..design import compact_design_matrix, design_matrix, fit_logit
from ..errors import InputError

#: Rows above which the propensity model's design is held as a :class:`~finsam_effekt.design.CompactDesign`.
COMPACT_ROWS = 1_000_000


@dataclass
class PropensityResult:
    """A fitted propensity-score logit.

    Attributes
    ----------
    ps : numpy.ndarray
        Estimated P(treated | x) per input row.
    linear_predictor : numpy.ndarray
        The logit ``x'b`` per row (``log(ps / (1 − ps))``), the usual matching distance (Austin 2011).
    params : pandas.Series
        Logit coefficients by design column.
    """

    ps: np.ndarray
    linear_predictor: np.ndarray
    params: pd.Series
    covariates: list[str]
    time_effects: str | None
    n_treated: int
    n_control: int
    converged: bool
    design_columns: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [
            "Propensity score: logistic regression (design.fit_logit, the Newton steps of statsmodels Logit)",
            f"  treated {self.n_treated}, control {self.n_control}, design columns {len(self.design_columns)}",
            f"  covariates: {', '.join(self.covariates)}",
            f"  time effects: {self.time_effects or 'none'}; converged: {self.converged}",
        ]
        for q, v in zip(
            ("min", "p25", "median", "p75", "max"), np.quantile(self.ps, [0, 0.25, 0.5, 0.75, 1]), strict=True
        ):
            lines.append(f"  ps {q:>6}: {v:.4f}")
        return "\n".join(lines)

    def to_frame(self) -> pd.DataFrame:
        """Coefficients, one row per design column."""
        return pd.DataFrame({"term": self.params.index, "estimate": self.params.to_numpy()})


def estimate_propensity(
    data: pd.DataFrame,
    treatment: str,
    covariates: Sequence[str],
    *,
    time_effects: str | None = None,
    maxiter: int = 100,
) -> PropensityResult:
    """Fit ``logit P(treated = 1 | x) = x'b`` by maximum likelihood (:func:`finsam_effekt.design.fit_logit`: the
    Newton iterations of statsmodels ``Logit``; with ``time_effects`` on the block structure of the design, so the
    month indicators never form a dense n × T matrix). The design follows :func:`finsam_effekt.design.
    design_matrix` (a missing category is a level of its own; a missing number is an error).

    Parameters
    ----------
    data : DataFrame
        One row per unit (e.g. the ``cohort`` table).
    treatment : str
        0/1 column.
    covariates : sequence of str
        Numeric columns enter linearly; text/categorical columns as indicator sets (first level dropped).
    time_effects : str, optional
        Column with the calendar month or year (e.g. ``ref_month``); enters as fixed effects (one indicator per
        level), so the score compares persons within the same period as in risk-set matching (Li, Propert &
        Rosenbaum 2001).

    Returns
    -------
    PropensityResult
        ``ps`` and the ``linear_predictor`` (logit), the recommended matching distance with a 0.2·SD caliper
        (Austin 2011).
    """
    if treatment not in data.columns:
        raise InputError(f"propensity model: treatment column {treatment!r} is not in the data")
    t = data[treatment].to_numpy()
    if not np.isin(t, [0, 1]).all():
        raise InputError(f"propensity model: treatment column {treatment!r} must be 0/1")
    t = t.astype(float)
    what = "propensity model"
    fe = time_effects if time_effects and time_effects not in covariates else None
    if fe is not None and fe not in data.columns:
        raise InputError(f"{what}: columns {[fe]} are not in the data; available: {list(data.columns)}")
    # a large cohort (the full candidate pool of a national register) is held compactly: the same values,
    # exact, in half the memory (design.CompactDesign)
    if len(data) > COMPACT_ROWS:
        X = compact_design_matrix(data, covariates, intercept=True, what=what)
    else:
        X = design_matrix(data, covariates, intercept=True, what=what)
    # Multi-threaded BLAS on moderate design matrices is slower than one thread (thread start-up and
    # oversubscription on shared machines): 10x on a 40 000 x 52 cohort here. Large designs keep all threads
    # (above 10^6 rows fit_logit's large-data path limits itself to one: it works in cache-sized row blocks)
    with threadpool_limits(limits=1 if X.size < 20_000_000 else None):
        fit = fit_logit(X, t, fixed_effects=data[fe] if fe is not None else None, maxiter=maxiter)
    return PropensityResult(
        ps=fit.fitted,
        linear_predictor=fit.linear_predictor,
        params=fit.params,
        covariates=list(covariates),
        time_effects=time_effects,
        n_treated=int(t.sum()),
        n_control=int((1 - t).sum()),
        converged=fit.converged,
        design_columns=list(fit.params.index),
    )
