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

from ..design import case_control_draw, compact_design_matrix, design_matrix, design_sources, fit_logit
from ..errors import InputError
from ..tables import text_codes

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
    #: Rows the model was fitted on and the controls' sampling rate (``estimate_propensity(fit_rows=)``); None
    #: when it was fitted on every row.
    n_fit: int | None = None
    control_sampling_rate: float | None = None

    def summary(self) -> str:
        lines = [
            "Propensity score: logistic regression (design.fit_logit, the Newton steps of statsmodels Logit)",
            f"  treated {self.n_treated}, control {self.n_control}, design columns {len(self.design_columns)}",
            f"  covariates: {', '.join(self.covariates)}",
            f"  time effects: {self.time_effects or 'none'}; converged: {self.converged}",
        ]
        if self.control_sampling_rate is not None:
            lines.append(
                f"  fitted on {self.n_fit} rows: every treated row and {self.control_sampling_rate:.4g} of the "
                "controls (case-control sample; intercept corrected by log of that rate); every row scored"
            )
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
    fit_rows: int | None = None,
    seed: int = 0,
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
    fit_rows : int, optional
        With more rows than this, the model is fitted on every treated row and a random sample of the controls
        (rate ``r``, seeded by ``seed``), ``fit_rows`` rows in all, and then every row is scored
        (:func:`linear_predictor`). Sampling controls at a fixed rate (case-control sampling) leaves the logit's
        slopes consistent and shifts its intercept by ``−log r`` (Prentice & Pyke 1979; King & Zeng 2001, "prior
        correction"): the intercept is corrected by ``+log r``. The slopes' sampling variance grows by about
        ``1/m`` of the treated rows' share, ``m`` the controls drawn per treated row. ``None``: fitted on every
        row.

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
    what = "propensity model"
    fe = _fixed_effects_column(time_effects, covariates)
    if fe is not None and fe not in data.columns:
        raise InputError(f"{what}: columns {[fe]} are not in the data; available: {list(data.columns)}")
    if fit_rows is not None and len(data) > fit_rows:
        return _fit_on_sample(data, t, covariates, time_effects, maxiter, fit_rows, seed)
    t = t.astype(float)
    fit = _fit(_design(data, covariates), t, data[fe] if fe is not None else None, maxiter)
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


def linear_predictor(propensity: PropensityResult, rows: pd.DataFrame) -> np.ndarray:
    """The fitted propensity model's linear predictor ``x'β`` (with its calendar-month effect) for any rows with
    its covariates — e.g. persons it was not fitted on, or every row of a cohort whose model was fitted on a
    sample. Aliased coefficients (NaN) and levels the fit did not see count 0; a month the fit did not see gets
    the reference month's effect.

    Computed a covariate at a time from its stored values (``design.design_sources``: the columns of
    ``design_matrix`` without building them): ``β₀ + Σ_numeric β_j x_j + Σ_categorical β_{j,level(x_j)}`` —
    no dense design of the rows (5·10⁷ candidate person-months: 20 s instead of a design matrix per block)."""
    params = propensity.params.fillna(0.0)
    lp = np.full(len(rows), float(params.get("const", 0.0)))
    for src in design_sources(rows, propensity.covariates, what="propensity model"):
        if src.codes is not None:
            effect = np.array([params.get(name, 0.0) for name in src.columns], dtype=float)
            lp += effect[src.codes]
        elif params.get(src.name, 0.0) != 0.0:  # β_j x_j in float64 (one temporary, not a copy and a product)
            lp += np.multiply(src.values, float(params[src.name]), dtype=np.float64)
    te = _fixed_effects_column(propensity.time_effects, propensity.covariates)
    if te is not None:
        codes, levels = text_codes(rows[te])
        effect = np.array([params.get(f"{te}={m}", 0.0) for m in levels], dtype=float)
        lp += effect[codes]
    return lp


def _fixed_effects_column(time_effects: str | None, covariates: Sequence[str]) -> str | None:
    """The column whose levels enter the model as fixed effects apart from the design (``time_effects``), None
    when there is none or it is one of the covariates (then in the design as indicators)."""
    return time_effects if time_effects and time_effects not in covariates else None


def _design(data: pd.DataFrame, covariates: Sequence[str]):
    """The propensity model's design (intercept first); a large cohort (the full candidate pool of a national
    register) held compactly: the same values, exact, in half the memory (``design.CompactDesign``)."""
    if len(data) > COMPACT_ROWS:
        return compact_design_matrix(data, covariates, intercept=True, what="propensity model")
    return design_matrix(data, covariates, intercept=True, what="propensity model")


def _fit(X, t: np.ndarray, fixed_effects: pd.Series | None, maxiter: int):
    """``design.fit_logit`` of ``t`` on ``X`` (and the fixed effects). Multi-threaded BLAS on moderate design
    matrices is slower than one thread (thread start-up and oversubscription on shared machines): 10x on a
    40 000 x 52 cohort here. Large designs keep all threads (above 10^6 rows fit_logit's large-data path limits
    itself to one: it works in cache-sized row blocks)."""
    with threadpool_limits(limits=1 if X.size < 20_000_000 else None):
        return fit_logit(X, t, fixed_effects=fixed_effects, maxiter=maxiter)


def _fit_on_sample(
    data: pd.DataFrame,
    t: np.ndarray,
    covariates: Sequence[str],
    time_effects: str | None,
    maxiter: int,
    fit_rows: int,
    seed: int,
) -> PropensityResult:
    """:func:`estimate_propensity` fitted on a case-control sample of ``fit_rows`` rows, every row scored."""
    treated = np.flatnonzero(t == 1)
    controls = np.flatnonzero(t == 0)
    want = fit_rows - len(treated)
    if want < len(treated):
        raise InputError(
            f"propensity model: {len(treated)} treated rows leave {max(want, 0)} of matching.propensity_fit_rows "
            f"= {fit_rows} for the controls (fewer than one per treated row); raise propensity_fit_rows"
        )
    picked, rate = case_control_draw(len(controls), len(treated), fit_rows, [seed, 2])
    drawn, n_control = controls[picked], len(controls)
    del controls  # (every candidate row's position: 0.4 GB at national scale)
    rows = np.sort(np.r_[treated, drawn])
    fe = _fixed_effects_column(time_effects, covariates)
    cols = [*covariates, *([fe] if fe else [])]
    # the sample's columns only (a copy of the whole cohort's rows would hold every column), released once its
    # design is built (10⁷ rows at national scale: the sample and its design are each ~1 GB)
    sample = pd.DataFrame({c: data[c].take(rows).reset_index(drop=True) for c in cols}, copy=False)
    X = _design(sample, covariates)
    fixed = sample[fe] if fe is not None else None
    del sample
    fit = _fit(X, t[rows].astype(float), fixed, maxiter)
    del X, fixed
    params = fit.params.copy()
    params["const"] += np.log(rate)  # the design's first column (intercept=True), never aliased
    fit = PropensityResult(
        ps=np.empty(0), linear_predictor=np.empty(0), params=params, covariates=list(covariates),
        time_effects=time_effects, n_treated=len(treated), n_control=n_control, converged=fit.converged,
        design_columns=list(params.index), n_fit=len(rows), control_sampling_rate=rate,
    )  # fmt: skip
    lp = linear_predictor(fit, data)
    fit.linear_predictor = lp
    fit.ps = 1.0 / (1.0 + np.exp(-lp))
    return fit
