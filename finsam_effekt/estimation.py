"""Effects on försörjning at 3, 6 and 12 months: estimators, inference, subgroups (domain note §4–5).

The estimators work on plain DataFrames so that researchers can use them without the pipeline:

* ``data`` — the matched analysis table as ``MatchResult.matched_data()`` gives it (``person_id``, ``ref_month``,
  ``treated`` 0/1, ``weights``, ``subclass``, covariates) joined with the horizon outcomes of
  ``panel.horizon_outcomes``: ``{o}_m{k}`` (status in month u+k) and ``{o}_cum{k}`` (sum over months u+1..u+k)
  for each outcome ``o`` of :data:`finsam_effekt.schema.OUTCOMES`; NaN when censored. Rows with a NaN outcome are
  dropped *per outcome* and the remaining n is reported.
* ``cohort`` — the unmatched cohort (treated and every candidate control person-month) with the same horizon
  outcomes, for the IPW and AIPW design cross-checks.
* ``panel`` — a long person × calendar-month table for the Callaway & Sant'Anna (2021) cross-check.

One call, inference as an option (linearmodels/pyfixest style)::

    res = estimate_effects(matched, horizons=(3, 6, 12), se="cluster", cluster="person_id")
    res.summary(); res.to_frame(); res.cov("weighted_mean_diff"); res.draws("weighted_mean_diff", 1000, seed=1)

Inference
---------
Every estimator here is asymptotically linear: ``estimate − θ ≈ Σ_i ψ_i`` with an influence contribution ``ψ_i``
per row. The cluster-robust (CR1) variance sums the contributions within a cluster first,

    V = c · Σ_g (Σ_{i∈g} ψ_i)²,   c = G/(G−1) · (n−1)/(n−p),

with G clusters, n rows and p regression coefficients (for IPW, AIPW and the Callaway–Sant'Anna estimator, which
are not regressions, c = G/(G−1)). For the weighted regression estimators ψ is the treatment
row of ``(X'WX)⁻¹ x_i w_i e_i`` and V equals Stata's ``vce(cluster)`` and R's
``sandwich::vcovCL(type = "HC1")`` exactly (Cameron & Miller 2015; Zeileis, Köll & Graham 2020) — the tests check
this against fixtures made with MatchIt 4.7.2 + sandwich. Stacking the per-cluster sums of all outcomes ×
horizons of one estimator gives their joint covariance (:meth:`EffectResults.cov`), used for contrasts and by the
cost-benefit Monte Carlo (:meth:`EffectResults.draws`).

Which cluster? MatchIt's vignette *Estimating Effects After Matching* (Greifer 2024) recommends clustering on the
matched set (``subclass``) after pair matching without replacement (Abadie & Spiess 2022) and on the unit
identifier when units recur (matching with replacement, or the same person in several rows). In the staggered
risk-set design a person can be a control in many months and later a participant, so the default here is
``cluster="person_id"``; ``cluster="subclass"`` is available for 1:k matching without replacement where persons
do not recur. When in doubt, report both: the person level is the conservative choice when persons recur.

``se="bootstrap"`` resamples clusters with replacement (seeded, ``n_boot`` replicates, the same draws for every
estimate so the joint covariance is the covariance of the replicates); the matching itself is held fixed
(conditional on the matched sets, as MatchIt's vignette does). ``se="abadie_imbens"`` gives the Abadie & Imbens
(2006) variance of the nearest-neighbour matching estimator (with replacement) for the weighted difference in
means.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from . import months as _months
from .errors import InputError
from .schema import BINARY_OUTCOMES, OUTCOMES

#: Estimators on the matched sample (``data``).
MATCHED_ESTIMATORS: tuple[str, ...] = ("weighted_mean_diff", "regression_adjustment", "matched_did")
#: Estimators on the unmatched cohort (``cohort=``).
COHORT_ESTIMATORS: tuple[str, ...] = ("ipw", "aipw")
#: Estimators on the long person-month panel (``panel=``).
PANEL_ESTIMATORS: tuple[str, ...] = ("cs_did",)
ESTIMATORS: tuple[str, ...] = MATCHED_ESTIMATORS + COHORT_ESTIMATORS + PANEL_ESTIMATORS
SE_TYPES: tuple[str, ...] = ("cluster", "bootstrap", "abadie_imbens")
MEASURES: tuple[str, ...] = ("status", "cumulative")
FRAME_COLUMNS: list[str] = [
    "outcome",
    "horizon_months",
    "measure",
    "subgroup",
    "estimator",
    "estimate",
    "std_error",
    "ci_lower",
    "ci_upper",
    "p_value",
    "n_treated",
    "n_control",
]
#: Age bands used when ``subgroups`` asks for ``age_band`` and the data has ``age`` (years at u).
AGE_BANDS: tuple[tuple[int, int, str], ...] = (
    (0, 25, "16-24"),
    (25, 30, "25-29"),
    (30, 40, "30-39"),
    (40, 50, "40-49"),
    (50, 200, "50+"),
)
_Z = float(stats.norm.ppf(0.975))


def outcome_column(outcome: str, horizon: int, measure: str) -> str:
    """Name of a horizon-outcome column: ``{o}_m{k}`` (status) or ``{o}_cum{k}`` (cumulative)."""
    return f"{outcome}_m{horizon}" if measure == "status" else f"{outcome}_cum{horizon}"


# ----------------------------------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class _Est:
    """One estimate with what its inference needs."""

    outcome: str
    horizon: int
    measure: str
    subgroup: str
    estimator: str
    estimate: float
    n_treated: int
    n_control: int
    rows: np.ndarray | None = None  # cluster codes (global) of the rows that contributed
    psi: np.ndarray | None = None  # influence contribution per contributing row
    n_params: int = 0  # regression coefficients (for the (n−1)/(n−p) factor); 0 = none
    boot: np.ndarray | None = None  # bootstrap replicates of the estimate
    se_override: float | None = None  # e.g. Abadie–Imbens
    n_groups: int | None = None  # clusters among ``rows`` (computed once)


@dataclass
class EffectResults:
    """Effects per outcome × horizon × measure × subgroup × estimator, with their joint covariance.

    Attributes
    ----------
    se_type, cluster : inference settings used.
    estimand : text describing the estimand (ATT of starting an insats in month u vs not starting then).
    n_boot, random_state : bootstrap settings (``se="bootstrap"``).
    notes : messages about dropped rows, skipped estimates and the like.
    """

    se_type: str
    cluster: str
    estimand: str
    n_clusters: int
    n_boot: int | None = None
    random_state: int | None = None
    notes: list[str] = field(default_factory=list)
    _ests: list[_Est] = field(default_factory=list, repr=False)
    _frame: pd.DataFrame | None = field(default=None, repr=False)

    # -- construction --------------------------------------------------------------------------------------------
    def _finalise(self) -> None:
        rows = []
        # estimates on the same kept rows share one cluster-code array: count its clusters once
        n_groups: dict[int, int] = {}
        for e in self._ests:
            if e.n_groups is None and e.rows is not None:
                if id(e.rows) not in n_groups:
                    n_groups[id(e.rows)] = len(np.unique(e.rows))
                e.n_groups = n_groups[id(e.rows)]
        for e in self._ests:
            se = self._se(e)
            if np.isfinite(se) and se > 0:
                z = e.estimate / se
                p = float(2 * stats.norm.sf(abs(z)))
            else:
                p = float("nan")
            rows.append(
                {
                    "outcome": e.outcome,
                    "horizon_months": int(e.horizon),
                    "measure": e.measure,
                    "subgroup": e.subgroup,
                    "estimator": e.estimator,
                    "estimate": float(e.estimate),
                    "std_error": se,
                    "ci_lower": float(e.estimate - _Z * se),
                    "ci_upper": float(e.estimate + _Z * se),
                    "p_value": p,
                    "n_treated": int(e.n_treated),
                    "n_control": int(e.n_control),
                }
            )
        self._frame = pd.DataFrame(rows, columns=FRAME_COLUMNS)

    def _scale(self, e: _Est) -> float:
        if e.n_groups is None:
            e.n_groups = len(np.unique(e.rows)) if e.rows is not None else 0
        g = e.n_groups
        if g < 2:
            return float("nan")
        c = g / (g - 1)
        n = len(e.rows)
        if e.n_params > 0 and n > e.n_params:
            c *= (n - 1) / (n - e.n_params)
        return c

    def _se(self, e: _Est) -> float:
        if e.se_override is not None:
            return float(e.se_override)
        if e.boot is not None:
            b = e.boot[np.isfinite(e.boot)]
            return float(np.std(b, ddof=1)) if len(b) > 1 else float("nan")
        if e.psi is None:
            return float("nan")
        sums = np.bincount(e.rows, weights=e.psi)
        return float(math.sqrt(self._scale(e) * float(np.sum(sums**2))))

    # -- public API -----------------------------------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """Tidy table: one row per estimate (columns as ``docs/tables.md``, estimation section)."""
        assert self._frame is not None
        return self._frame.copy()

    def _select(self, estimator: str, subgroup: str) -> list[_Est]:
        sel = [e for e in self._ests if e.estimator == estimator and e.subgroup == subgroup]
        if not sel:
            have = sorted({e.estimator for e in self._ests})
            raise InputError(f"no estimates for estimator {estimator!r}, subgroup {subgroup!r}; have {have}")
        return sel

    def cov(self, estimator: str = "weighted_mean_diff", subgroup: str = "all") -> pd.DataFrame:
        """Joint covariance of one estimator's estimates across outcomes × horizons × measures.

        Cluster inference: ``V_jk = sqrt(c_j c_k) Σ_g S_gj S_gk`` with ``S_gj`` the sum of estimate j's
        influence contributions in cluster g and ``c_j`` its CR1 factor (the diagonal equals the reported SEs²).
        Bootstrap: the covariance of the replicates. Abadie–Imbens SEs have no joint form: the off-diagonal is 0.
        """
        sel = self._select(estimator, subgroup)
        idx = pd.MultiIndex.from_tuples(
            [(e.outcome, e.horizon, e.measure) for e in sel], names=["outcome", "horizon_months", "measure"]
        )
        j = len(sel)
        if all(e.boot is not None for e in sel):
            b = np.column_stack([e.boot for e in sel])
            b = b[np.all(np.isfinite(b), axis=1)]
            v = np.atleast_2d(np.cov(b, rowvar=False, ddof=1))
        elif all(e.psi is not None and e.se_override is None for e in sel):
            n_g = self.n_clusters
            s = np.zeros((n_g, j))
            for k, e in enumerate(sel):
                s[:, k] = np.bincount(e.rows, weights=e.psi, minlength=n_g)
            c = np.sqrt(np.array([self._scale(e) for e in sel]))
            v = (s.T @ s) * np.outer(c, c)
        else:
            v = np.diag([self._se(e) ** 2 for e in sel])
        return pd.DataFrame(v, index=idx, columns=idx)

    def draws(
        self, estimator: str = "weighted_mean_diff", n: int = 1000, seed: int = 0, subgroup: str = "all"
    ) -> pd.DataFrame:
        """``n`` joint normal draws of the estimates (mean = estimates, covariance = :meth:`cov`), seeded."""
        v = self.cov(estimator, subgroup)
        sel = self._select(estimator, subgroup)
        mean = np.array([e.estimate for e in sel])
        rng = np.random.default_rng(seed)
        x = rng.multivariate_normal(mean, v.to_numpy(), size=int(n), method="eigh")
        return pd.DataFrame(x, columns=v.columns)

    def summary(self) -> str:
        """Readable text table of every estimate (statsmodels style)."""
        f = self.to_frame()
        lines = [
            "Effects on försörjning (finsam_effekt.estimation)",
            f"Estimand: {self.estimand}",
            f"Inference: {self._se_text()}",
            "=" * 108,
            f"{'outcome':<22}{'k':>3} {'measure':<10}{'subgroup':<18}{'estimator':<22}"
            f"{'estimate':>11}{'s.e.':>10}{'95% CI':>22}",
            "-" * 108,
        ]
        for r in f.itertuples(index=False):
            ci = f"[{r.ci_lower:.4g}, {r.ci_upper:.4g}]"
            lines.append(
                f"{r.outcome:<22}{r.horizon_months:>3} {r.measure:<10}{r.subgroup[:17]:<18}{r.estimator:<22}"
                f"{r.estimate:>11.4g}{r.std_error:>10.3g}{ci:>22}"
            )
        lines.append("-" * 108)
        if len(f):
            lines.append(
                f"n treated {int(f['n_treated'].min())}–{int(f['n_treated'].max())}, "
                f"n control {int(f['n_control'].min())}–{int(f['n_control'].max())} (per outcome after censoring)"
            )
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)

    def _se_text(self) -> str:
        if self.se_type == "bootstrap":
            return f"cluster bootstrap by {self.cluster}, B={self.n_boot}, seed={self.random_state}"
        if self.se_type == "abadie_imbens":
            return "Abadie & Imbens (2006) matching variance (other estimators: CR1 by " + self.cluster + ")"
        return f"cluster-robust CR1 by {self.cluster} ({self.n_clusters} clusters); normal 95% CI"

    def __repr__(self) -> str:
        n = 0 if self._frame is None else len(self._frame)
        return f"EffectResults({n} estimates, se={self.se_type!r}, cluster={self.cluster!r})"


# ----------------------------------------------------------------------------------------------------------------
# Building blocks
# ----------------------------------------------------------------------------------------------------------------
def _design(df: pd.DataFrame, covariates: Sequence[str]) -> np.ndarray:
    """Covariate matrix: numeric columns as they are, text/category columns as 0/1 dummies (first level dropped);
    columns constant in ``df`` are dropped (they are collinear with the intercept)."""
    parts = []
    for c in covariates:
        s = df[c]
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            parts.append(s.astype(float).to_frame(c))
        else:
            d = pd.get_dummies(s.astype("string").fillna("(missing)"), prefix=c, drop_first=True, dtype=float)
            parts.append(d)
    if not parts:
        return np.zeros((len(df), 0))
    x = pd.concat(parts, axis=1).to_numpy(dtype=float)
    if np.isnan(x).any():
        bad = [c for c in covariates if pd.api.types.is_numeric_dtype(df[c]) and df[c].isna().any()]
        raise InputError(
            f"covariate(s) {bad} have missing values; impute or drop them before estimate_effects "
            "(the matching stage's covariates never have missing values)"
        )
    keep = np.ptp(x, axis=0) > 0
    return x[:, keep]


def _independent_columns(x: np.ndarray, w: np.ndarray, col: int) -> tuple[np.ndarray, int]:
    """Drop linearly dependent columns of the weighted design (keeping the intercept, column ``col`` and the
    first of each dependent set); returns the reduced design and the new position of ``col``."""
    xtwx = x.T @ (x * w[:, None])
    if np.linalg.matrix_rank(xtwx) == x.shape[1]:
        return x, col
    keep = [0, col]
    for j in range(x.shape[1]):
        if j in keep:
            continue
        trial = keep + [j]
        if np.linalg.matrix_rank(xtwx[np.ix_(trial, trial)]) == len(trial):
            keep.append(j)
    keep = sorted(keep)
    return x[:, keep], keep.index(col)


def _wls(
    y: np.ndarray, x: np.ndarray, w: np.ndarray, col: int = 1, bread: np.ndarray | None = None
) -> tuple[float, np.ndarray, int]:
    """WLS coefficient ``col`` and its influence contributions ``ψ_i = [(X'WX)⁻¹ x_i]_col w_i e_i``.

    ``bread`` = (X'WX)⁻¹ when already computed for this ``x`` (whose columns are then taken as independent)."""
    if bread is None:
        x, col = _independent_columns(x, w, col)
        bread = np.linalg.inv(x.T @ (x * w[:, None]))
    beta = bread @ (x.T @ (w * y))
    e = y - x @ beta
    psi = (x @ bread[:, col]) * w * e
    return float(beta[col]), psi, x.shape[1]


def _wls_bootstrap(
    y: np.ndarray, x: np.ndarray, w: np.ndarray, col: int, cl: np.ndarray, counts: np.ndarray
) -> np.ndarray:
    """Cluster-bootstrap replicates of a WLS coefficient. A replicate draws cluster g ``counts[b, g]`` times, so
    X'WX and X'Wy are the count-weighted sums of the per-cluster blocks — no refit on copied rows needed."""
    n_g = counts.shape[1]
    p = x.shape[1]
    outer = (x[:, :, None] * x[:, None, :] * w[:, None, None]).reshape(len(y), p * p)
    a = np.zeros((n_g, p * p))
    np.add.at(a, cl, outer)
    b = np.zeros((n_g, p))
    np.add.at(b, cl, x * (w * y)[:, None])
    xtwx = (counts @ a).reshape(-1, p, p)
    xtwy = counts @ b
    reps = np.full(counts.shape[0], np.nan)
    ok = np.linalg.cond(xtwx) < 1e12
    if ok.any():
        reps[ok] = np.linalg.solve(xtwx[ok], xtwy[ok][:, :, None])[:, col, 0]
    return reps


def _logit(x: np.ndarray, d: np.ndarray, w: np.ndarray | None = None, tol: float = 1e-10) -> np.ndarray:
    """Logistic regression by Newton–Raphson (the ML estimate ``glm(family = binomial)`` gives); returns β."""
    return _logit_fit(x, d, w, tol)[0]


def _logit_fit(
    x: np.ndarray, d: np.ndarray, w: np.ndarray | None = None, tol: float = 1e-10
) -> tuple[np.ndarray, bool]:
    """:func:`_logit` and whether it converged (a step below ``tol`` within 100 Newton steps; separation, e.g.
    few treated for many covariates, lets β grow without converging)."""
    w = np.ones(len(d)) if w is None else w
    beta = np.zeros(x.shape[1])
    for _ in range(100):
        p = 1 / (1 + np.exp(-(x @ beta)))
        grad = x.T @ (w * (d - p))
        h = x.T @ (x * (w * p * (1 - p))[:, None])
        step = np.linalg.lstsq(h, grad, rcond=None)[0]
        beta = beta + step
        if np.max(np.abs(step)) < tol:
            return beta, True
    return beta, False


def _dr_att(
    y: np.ndarray,
    d: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    outcome_model: bool,
    ps_cache: dict | None = None,
) -> tuple[float, np.ndarray]:
    """IPW (``outcome_model=False``) or doubly robust (AIPW) ATT with influence contributions.

    Sant'Anna & Zhao (2020), ``drdid_panel`` / ``std_ipw_did_panel`` with the outcome in place of ΔY:
    p̂ from a logit of D on (1, X); ω₁ = w D, ω₀ = w p̂(1−D)/(1−p̂); m̂₀(X) from WLS of Y on (1, X) among
    controls (AIPW; m̂₀ = 0 for IPW);

        ATT = Σ ω₁ (Y − m̂₀) / Σ ω₁ − Σ ω₀ (Y − m̂₀) / Σ ω₀

    (Hájek-normalised weights). The influence function includes the estimation effect of the logit and, for AIPW,
    of the outcome regression (their eqs. 3.4 and A.1); returned contributions are IF_i / n.
    """
    n = len(y)
    xi = np.column_stack([np.ones(n), x])
    # the propensity score depends only on (D, X, w): fit it once per sample, not once per outcome and horizon
    key = None
    if ps_cache is not None:
        key = hash((d.tobytes(), xi.tobytes(), w.tobytes()))
    if key is not None and key in ps_cache:
        beta = ps_cache[key]
    else:
        beta = _logit(xi, d, w)
        if key is not None:
            ps_cache[key] = beta
    ps = 1 / (1 + np.exp(-(xi @ beta)))
    ps = np.minimum(ps, 1 - 1e-6)
    w1 = w * d
    w0 = w * ps * (1 - d) / (1 - ps)
    if outcome_model:
        wo = w * (1 - d)
        xtx = xi.T @ (xi * wo[:, None])
        gam = np.linalg.lstsq(xtx, xi.T @ (wo * y), rcond=None)[0]
        m0 = xi @ gam
    else:
        m0 = np.zeros(n)
    r = y - m0
    eta1 = np.mean(w1 * r) / np.mean(w1)
    eta0 = np.mean(w0 * r) / np.mean(w0)
    att = eta1 - eta0
    # estimation effect of the propensity score: score × (Hessian/n)⁻¹
    hess = xi.T @ (xi * (w * ps * (1 - ps))[:, None]) / n
    lin_ps = (w * (d - ps))[:, None] * xi @ np.linalg.pinv(hess)
    inf_t = w1 * r - w1 * eta1
    inf_c = w0 * r - w0 * eta0 + lin_ps @ np.mean((w0 * (r - eta0))[:, None] * xi, axis=0)
    if outcome_model:
        lin_ols = (wo * r)[:, None] * xi @ np.linalg.pinv(xtx / n)
        inf_t = inf_t - lin_ols @ np.mean(w1[:, None] * xi, axis=0)
        inf_c = inf_c - lin_ols @ np.mean(w0[:, None] * xi, axis=0)
    inf = inf_t / np.mean(w1) - inf_c / np.mean(w0)
    return float(att), inf / n


class _SampleDesign:
    """The covariate design of one sample, coded once; :meth:`rows` gives ``_design(df[keep], covariates)``.

    ``_design`` on a row subset dummies the text columns over the levels present in the subset (first present
    level dropped) and drops columns constant in the subset. Coding every text column once (levels sorted as
    ``pd.get_dummies`` sorts them) and building the dummies of the kept rows from the codes gives the same matrix,
    value for value and column for column, without re-parsing the text per outcome and horizon.
    """

    def __init__(self, df: pd.DataFrame, covariates: Sequence[str]) -> None:
        self.covariates = list(covariates)
        self.n = len(df)
        self.parts: list[tuple[str, str, np.ndarray, int]] = []
        for c in self.covariates:
            s = df[c]
            if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
                self.parts.append(("num", c, s.astype(float).to_numpy(), 0))
            else:
                cat = pd.Categorical(s.astype("string").fillna("(missing)"))
                self.parts.append(("cat", c, np.asarray(cat.codes, dtype=np.int64), len(cat.categories)))

    def rows(self, keep: np.ndarray | None = None) -> np.ndarray:
        """Design of the rows ``keep`` (boolean mask; all rows when None)."""
        cols: list[np.ndarray] = []
        bad = []
        for kind, name, v, n_levels in self.parts:
            v = v if keep is None else v[keep]
            if kind == "num":
                if np.isnan(v).any():
                    bad.append(name)
                cols.append(v[:, None])
            else:
                present = np.flatnonzero(np.bincount(v, minlength=n_levels))
                if len(present) > 1:
                    cols.append((v[:, None] == present[None, 1:]).astype(float))
        n = self.n if keep is None else int(np.sum(keep))
        if not cols:
            return np.zeros((n, 0))
        x = np.column_stack(cols)
        if bad:
            raise InputError(
                f"covariate(s) {bad} have missing values; impute or drop them before estimate_effects "
                "(the matching stage's covariates never have missing values)"
            )
        return x[:, np.ptp(x, axis=0) > 0]


@dataclass
class _DRFit:
    """What the IPW/AIPW estimate and influence function need that does not depend on the outcome.

    One fit per sample (rows, treatment, weights, covariates) serves every outcome, horizon and measure, and both
    estimators: the logit p̂, the Hájek weights ω₁, ω₀, the score of the logit ``w (D − p̂)`` and
    ``(H/n)⁺`` (its Hessian), and for the outcome regression ``(X'W₀X/n)⁺`` applied to the mean design of each arm.
    """

    xi: np.ndarray
    x: np.ndarray
    w1: np.ndarray
    w0: np.ndarray
    wo: np.ndarray
    score_ps: np.ndarray
    hess_pinv: np.ndarray
    xtx: np.ndarray
    ols_t: np.ndarray  # x_i' (X'W₀X/n)⁺ mean(ω₁ x)
    ols_c: np.ndarray  # x_i' (X'W₀X/n)⁺ mean(ω₀ x)
    converged: bool = True  # the propensity logit


def _dr_fit(d: np.ndarray, x: np.ndarray, w: np.ndarray) -> _DRFit:
    """The outcome-free part of :func:`_dr_att` (same formulas, computed once)."""
    n = len(d)
    xi = np.column_stack([np.ones(n), x])
    beta, converged = _logit_fit(xi, d, w)
    ps = 1 / (1 + np.exp(-(xi @ beta)))
    ps = np.minimum(ps, 1 - 1e-6)
    w1 = w * d
    w0 = w * ps * (1 - d) / (1 - ps)
    wo = w * (1 - d)
    hess = xi.T @ (xi * (w * ps * (1 - ps))[:, None]) / n
    xtx = xi.T @ (xi * wo[:, None])
    xtx_pinv = np.linalg.pinv(xtx / n)
    return _DRFit(
        xi=xi,
        x=x,
        w1=w1,
        w0=w0,
        wo=wo,
        score_ps=w * (d - ps),
        hess_pinv=np.linalg.pinv(hess),
        xtx=xtx,
        ols_t=xi @ (xtx_pinv @ (xi.T @ w1 / n)),
        ols_c=xi @ (xtx_pinv @ (xi.T @ w0 / n)),
        converged=converged,
    )


def _dr_att_fit(f: _DRFit, y: np.ndarray, outcome_model: bool) -> tuple[float, np.ndarray]:
    """:func:`_dr_att` from a :class:`_DRFit`: only O(n·p) matrix–vector products per outcome.

    The n×p products of the reference implementation are re-associated, e.g. ``(s x_i')(H⁺ g)`` instead of
    ``(s x_i' H⁺) g``; the results agree to rounding (the tests pin them to 1e-10).
    """
    n = len(y)
    xi = f.xi
    if outcome_model:
        gam = np.linalg.lstsq(f.xtx, xi.T @ (f.wo * y), rcond=None)[0]
        r = y - xi @ gam
    else:
        r = y
    mw1, mw0 = np.mean(f.w1), np.mean(f.w0)
    eta1 = np.mean(f.w1 * r) / mw1
    eta0 = np.mean(f.w0 * r) / mw0
    inf_t = f.w1 * r - f.w1 * eta1
    g = xi.T @ (f.w0 * (r - eta0)) / n
    inf_c = f.w0 * r - f.w0 * eta0 + f.score_ps * (xi @ (f.hess_pinv @ g))
    if outcome_model:
        wr = f.wo * r
        inf_t = inf_t - wr * f.ols_t
        inf_c = inf_c - wr * f.ols_c
    inf = inf_t / mw1 - inf_c / mw0
    return float(eta1 - eta0), inf / n


def _age_band(age: pd.Series) -> pd.Series:
    out = pd.Series(pd.NA, index=age.index, dtype="object")
    for lo, hi, lab in AGE_BANDS:
        out[(age >= lo) & (age < hi)] = lab
    return out


def _subgroup_labels(df: pd.DataFrame, var: str, treatment: str) -> pd.Series:
    """Subgroup value per row. In matched data a control belongs to its treated unit's subgroup (the matched set's
    treated value, via ``subclass``) so every treated keeps its own controls; without ``subclass`` (matching with
    replacement) each row's own value is used — exact-match on the subgroup variable in that case."""
    if var == "age_band" and "age_band" not in df and "age" in df:
        own = _age_band(df["age"])
    elif var in df:
        own = df[var].astype("object")
    else:
        raise InputError(
            f"subgroup variable {var!r} is not a column of the data; columns are {sorted(map(str, df.columns))}"
        )
    if "subclass" in df and df["subclass"].notna().all():
        t = df[treatment].to_numpy() == 1
        first = pd.Series(own[t].to_numpy(), index=df["subclass"][t].to_numpy())
        first = first[~first.index.duplicated()]
        return df["subclass"].map(first).astype("object")
    return own


def pre_period_means(
    paths: pd.DataFrame,
    outcomes: Sequence[str] | None = None,
    window: tuple[int, int] = (-12, -1),
    keys: Sequence[str] = ("person_id", "ref_month", "treated"),
    suffix: str = "_pre",
) -> pd.DataFrame:
    """Each unit's mean outcome over ``rel_month`` in ``window`` (default u−12..u−1) from ``outcome_paths``.

    Returns ``keys`` plus ``{o}{suffix}`` per outcome; the mean is over uncensored months (NaN if none).
    """
    outcomes = [o for o in (outcomes or OUTCOMES) if o in paths]
    _require(paths, [*keys, "rel_month", *outcomes], "outcome paths")
    p = paths[(paths["rel_month"] >= window[0]) & (paths["rel_month"] <= window[1])]
    if "censored" in p:
        p = p[~p["censored"].astype(bool)]
    out = p.groupby(list(keys), sort=False, dropna=False)[outcomes].mean().reset_index()
    return out.rename(columns={o: f"{o}{suffix}" for o in outcomes})


def _require(df: pd.DataFrame, cols: Iterable[str], what: str) -> None:
    missing = [c for c in cols if c not in df]
    if missing:
        raise InputError(
            f"{what} lacks column(s) {missing}; it has {sorted(map(str, df.columns))[:40]}. "
            "See docs/tables.md for the tables the stages pass to each other."
        )


# ----------------------------------------------------------------------------------------------------------------
# The main entry point
# ----------------------------------------------------------------------------------------------------------------
def _one_blas_thread(fn: Callable) -> Callable:
    """Run ``fn`` with one BLAS thread: its products are tall and thin (n × p, p ~ 30), where threads only add
    start-up cost, and on a loaded shared machine a second thread spins waiting for a core (10–30x slower
    measured on the example's IPW/AIPW)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            return fn(*args, **kwargs)

    return wrapper


@_one_blas_thread
def estimate_effects(
    data: pd.DataFrame,
    outcomes: Sequence[str] | None = None,
    horizons: Sequence[int] = (3, 6, 12),
    measures: Sequence[str] = MEASURES,
    estimators: Sequence[str] = ("weighted_mean_diff", "regression_adjustment"),
    treatment: str = "treated",
    weights: str | None = "weights",
    covariates: Sequence[str] | None = None,
    se: str = "cluster",
    cluster: str = "person_id",
    subgroups: Sequence[str] | None = None,
    n_boot: int = 499,
    random_state: int | None = 0,
    cohort: pd.DataFrame | None = None,
    panel: pd.DataFrame | None = None,
    panel_units: pd.DataFrame | None = None,
    pre_period: pd.DataFrame | None = None,
    pairs: pd.DataFrame | None = None,
    distance: str = "distance",
    horizon_weights: str | None = None,
) -> EffectResults:
    """ATT of starting an insats on each outcome at each horizon, by several estimators, with inference.

    Parameters
    ----------
    data : matched analysis table (``MatchResult.matched_data()`` joined with ``panel.horizon_outcomes``).
    outcomes : outcomes ``o`` to estimate (default: every ``schema.OUTCOMES`` with horizon columns present).
    horizons : months k after the reference month u.
    measures : ``"status"`` (``{o}_m{k}``, the value in month u+k) and/or ``"cumulative"`` (``{o}_cum{k}``).
    estimators : any of
        ``weighted_mean_diff`` — ATT = Σ_T w y / Σ_T w − Σ_C w y / Σ_C w with the matching weights (MatchIt;
        Ho, Imai, King & Stuart 2011); identical to the coefficient of WLS ``y ~ treated``.
        ``regression_adjustment`` — coefficient of ``treated`` in WLS ``y ~ treated + covariates`` on the matched
        sample (statsmodels; Ho et al. 2007 "matching as preprocessing").
        ``matched_did`` — weighted mean difference of ``y − ȳ_pre``, ȳ_pre the unit's mean over u−12..u−1
        (cumulative k: ``y_cum − k ȳ_pre``). Needs ``{o}_pre`` columns or ``pre_period`` (the ``outcome_paths``
        table, see :func:`pre_period_means`).
        ``ipw``, ``aipw`` — ATT on the *unmatched* ``cohort`` by inverse probability weighting and the doubly
        robust estimator (Sant'Anna & Zhao 2020), propensity score = logit on ``covariates``.
        ``cs_did`` — Callaway & Sant'Anna (2021) group-time ATTs with not-yet-treated controls on ``panel``,
        aggregated by event time (:func:`callaway_santanna`).
    treatment, weights : column names (``weights=None``: all 1).
    covariates : columns for regression adjustment and the propensity score (text columns become dummies).
    se : ``"cluster"`` (CR1 by ``cluster``), ``"bootstrap"`` (cluster bootstrap, ``n_boot`` replicates seeded by
        ``random_state``) or ``"abadie_imbens"`` (Abadie & Imbens 2006 for ``weighted_mean_diff`` after nearest-
        neighbour matching; needs ``pairs`` and a ``distance`` column; other estimators keep CR1).
    cluster : clustering column (``person_id`` default; ``subclass`` for matched-set clustering; see module doc).
    subgroups : columns to split by (e.g. ``sex``, ``age_band`` — derived from ``age`` —, ``insats_type``,
        ``forbund_id``, ``public_support_before``); each value is a subgroup ``var=value`` with its own n.
    panel, panel_units : for ``cs_did``: the long person × month table and optionally its units (person, first
        start, observed months), which makes ``panel`` sparse — see :func:`callaway_santanna` (``units``).
    pairs : for ``se="abadie_imbens"``: one row per match, ``treated_row`` and ``control_row`` = index labels of
        ``data``.
    horizon_weights : prefix of per-horizon weight columns ``{prefix}{k}`` that multiply ``weights`` for the
        matched-sample estimators at horizon k (status and cumulative), e.g. ``"ipcw_"`` for the censoring weights
        of ``cohort.later_start_ipcw``; rows with a missing (censored) weight are left out at that horizon. The
        weights are treated as known in the standard errors.

    Returns
    -------
    EffectResults
    """
    estimators = list(estimators)
    bad = [e for e in estimators if e not in ESTIMATORS]
    if bad:
        raise InputError(f"unknown estimator(s) {bad}; choose from {list(ESTIMATORS)}")
    if se not in SE_TYPES:
        raise InputError(f"unknown se={se!r}; choose from {list(SE_TYPES)}")
    bad_m = [m for m in measures if m not in MEASURES]
    if bad_m:
        raise InputError(f"unknown measure(s) {bad_m}; choose from {list(MEASURES)}")
    covariates = list(covariates or [])
    if se == "bootstrap" and (n_boot is None or n_boot < 2):
        raise InputError(f"se='bootstrap' needs n_boot >= 2, got {n_boot}")

    frames = {"matched": data}
    if any(e in COHORT_ESTIMATORS for e in estimators):
        if cohort is None:
            raise InputError(
                "estimators 'ipw'/'aipw' run on the unmatched cohort: pass cohort= (the cohort table joined "
                "with horizon outcomes)"
            )
        frames["cohort"] = cohort
    for name, df in frames.items():
        _require(df, [treatment, cluster], f"{name} data")
        vals = set(pd.unique(df[treatment].dropna()))
        if not vals <= {0, 1}:
            raise InputError(
                f"{name} data: treatment column {treatment!r} must be 0/1, found {sorted(vals)[:5]}"
            )
    if any(e in MATCHED_ESTIMATORS for e in estimators) and weights is not None:
        _require(data, [weights], "matched data")
    _require(data, covariates, "matched data")

    if outcomes is None:
        src = (
            frames.get("matched")
            if any(e in MATCHED_ESTIMATORS for e in estimators)
            else frames.get("cohort")
        )
        if src is None:
            src = data
        outcomes = [
            o for o in OUTCOMES if any(outcome_column(o, k, m) in src for k in horizons for m in measures)
        ]
        if not outcomes and "cs_did" not in estimators:
            raise InputError(
                "no horizon outcome columns found (expected e.g. 'public_support_m3'); join "
                "panel.horizon_outcomes onto the matched data first"
            )
    outcomes = list(outcomes)

    # one global cluster coding so estimates of different outcomes/subgroups/estimators stack
    keys = [data[cluster].astype(str)]
    if "cohort" in frames:
        keys.append(frames["cohort"][cluster].astype(str))
    # a sparse panel lacks persons without activity: its units list every person
    if panel_units is not None and "person_id" in panel_units:
        keys.append(panel_units["person_id"].astype(str))
    elif panel is not None and "person_id" in panel:
        keys.append(panel["person_id"].astype(str))
    all_keys = pd.concat(keys, ignore_index=True)
    codes_all, uniques = pd.factorize(all_keys)
    n_g = len(uniques)
    offsets = np.cumsum([0] + [len(k) for k in keys])
    cl_matched = codes_all[offsets[0] : offsets[1]]
    cl_cohort = codes_all[offsets[1] : offsets[2]] if "cohort" in frames else None

    res = EffectResults(
        se_type=se,
        cluster=cluster,
        estimand=(
            "ATT: effect of starting an insats in month u, among participants, vs not starting in u "
            "(matched risk-set controls)"
        ),
        n_clusters=n_g,
        n_boot=n_boot if se == "bootstrap" else None,
        random_state=random_state if se == "bootstrap" else None,
    )
    boot_counts = None
    if se == "bootstrap":
        rng = np.random.default_rng(random_state)
        # multinomial cluster counts: resampling G clusters with replacement
        boot_counts = rng.multinomial(n_g, np.full(n_g, 1.0 / n_g), size=int(n_boot)).astype(float)

    # matched DiD pre-period means
    mdata = data
    if "matched_did" in estimators:
        need = [f"{o}_pre" for o in outcomes]
        if pre_period is not None:
            pre = pre_period_means(pre_period, outcomes)
            on = [k for k in ("person_id", "ref_month", "treated") if k in pre and k in data]
            mdata = data.drop(columns=[c for c in need if c in data]).merge(pre, on=on, how="left")
            mdata.index = data.index
        missing = [c for c in need if c not in mdata]
        if missing:
            raise InputError(
                f"matched_did needs pre-period mean columns {missing[:3]}...: pass pre_period=<outcome_paths "
                "table> or add '{outcome}_pre' columns (mean over months u-12..u-1)"
            )

    groups: list[tuple[str, np.ndarray | None, np.ndarray | None]] = [("all", None, None)]
    for var in subgroups or []:
        lab_m = _subgroup_labels(data, var, treatment)
        lab_c = _subgroup_labels(frames["cohort"], var, treatment) if "cohort" in frames else None
        values = pd.unique(pd.concat([lab_m, lab_c]) if lab_c is not None else lab_m)
        for v in sorted([v for v in values if pd.notna(v)], key=str):
            groups.append(
                (
                    f"{var}={v}",
                    (lab_m == v).to_numpy(),
                    (lab_c == v).to_numpy() if lab_c is not None else None,
                )
            )

    ps_cache: dict = {}
    for est in estimators:
        if est == "cs_did":
            if panel is None:
                raise InputError(
                    "estimator 'cs_did' needs panel= (long person × month table, see callaway_santanna)"
                )
            cs = callaway_santanna(
                panel,
                outcomes=outcomes,
                horizons=horizons,
                measures=measures,
                units=panel_units,
                _codes=(uniques,),
            )
            for e in cs._ests:
                if boot_counts is not None and e.psi is not None:
                    # linearised bootstrap for the panel estimator: estimate + Σ_g (n_g* − 1) S_g
                    s = np.bincount(e.rows, weights=e.psi, minlength=n_g)
                    e.boot = e.estimate + (boot_counts - 1.0) @ s
                res._ests.append(e)
            res.notes += cs.notes
            continue
        on_cohort = est in COHORT_ESTIMATORS
        df = frames["cohort"] if on_cohort else mdata
        cl = cl_cohort if on_cohort else cl_matched
        for sg_name, mask_m, mask_c in groups:
            # designs are cached per sample (estimator × subgroup); the propensity score per (D, X, w)
            wls_cache: dict = {}
            mask = mask_c if on_cohort else mask_m
            sub = df if mask is None else df[mask]
            sub_cl = cl if mask is None else cl[mask]
            for o in outcomes:
                for m in measures:
                    for k in horizons:
                        col = outcome_column(o, k, m)
                        if col not in sub:
                            res.notes.append(f"{est}: column {col!r} absent, skipped")
                            continue
                        e = _estimate_one(
                            est,
                            sub,
                            sub_cl,
                            col,
                            o,
                            k,
                            m,
                            sg_name,
                            treatment,
                            None if on_cohort else weights,
                            covariates,
                            boot_counts,
                            ps_cache,
                            wls_cache,
                            None if on_cohort or not horizon_weights else f"{horizon_weights}{k}",
                        )
                        if e is None:
                            res.notes.append(
                                f"{est}: {col} in {sg_name} has no treated or no controls, skipped"
                            )
                            continue
                        if se == "abadie_imbens" and est == "weighted_mean_diff":
                            e.se_override = _ai_se_from_data(sub, col, treatment, weights, pairs, distance)
                        res._ests.append(e)
    for key, cache in ps_cache.items():
        if isinstance(key, tuple) and key[0] == "dr":
            n_bad = sum(
                1 for v in cache.values() if isinstance(v, tuple) and v[0] is not None and not v[0].converged
            )
            if n_bad:
                res.notes.append(
                    f"ipw/aipw: the propensity logit did not converge in {key[1]} ({n_bad} of its samples; "
                    "separation — few treated or controls for the covariates — makes those estimates unreliable)"
                )
    res._finalise()
    return res


def _estimate_one(
    est: str,
    df: pd.DataFrame,
    cl: np.ndarray,
    col: str,
    outcome: str,
    k: int,
    measure: str,
    subgroup: str,
    treatment: str,
    weights: str | None,
    covariates: list[str],
    boot_counts: np.ndarray | None,
    ps_cache: dict | None = None,
    wls_cache: dict | None = None,
    horizon_weight: str | None = None,
) -> _Est | None:
    y = df[col].to_numpy(dtype=float)
    if est == "matched_did":
        pre = df[f"{outcome}_pre"].to_numpy(dtype=float)
        y = y - (k * pre if measure == "cumulative" else pre)
    w = np.ones(len(df)) if weights is None else df[weights].to_numpy(dtype=float)
    if horizon_weight is not None:
        if horizon_weight not in df.columns:
            raise InputError(
                f"horizon_weights: column {horizon_weight!r} is missing (one weight column per horizon k)"
            )
        w = w * df[horizon_weight].to_numpy(dtype=float)
    ok = np.isfinite(y) & (w > 0)
    d = df[treatment].to_numpy(dtype=float)
    if est in COHORT_ESTIMATORS and ps_cache is not None and boot_counts is None:
        # the propensity (and outcome-model) fits of each subgroup's sample, shared by ipw and aipw
        cache = ps_cache.setdefault(("dr", subgroup), {})
        return _estimate_dr(est, df, cl, y, w, d, ok, outcome, k, measure, subgroup, covariates, cache)
    kept = None
    if not ok.all():
        kept = ok
        y, w, cl, d = y[ok], w[ok], cl[ok], d[ok]

    def kept_df() -> pd.DataFrame:
        # only the covariate columns of the kept rows, and only when a design is built (subsetting the wide
        # frame per outcome was most of this function's time)
        return df if kept is None else df.loc[kept, list(covariates)]

    n_t, n_c = int((d == 1).sum()), int((d == 0).sum())
    if n_t == 0 or n_c == 0:
        return None
    base = _Est(outcome, k, measure, subgroup, est, float("nan"), n_t, n_c, rows=cl)

    if est in ("weighted_mean_diff", "matched_did", "regression_adjustment"):
        adjust = est == "regression_adjustment" and bool(covariates)
        # the design, its reduction to independent columns and (X'WX)⁻¹ depend only on the rows kept, not on the
        # outcome: build them once per sample and reuse them for every outcome, horizon and measure
        key = None
        if wls_cache is not None:
            key = ("wls", adjust, hash((ok.tobytes(), w.tobytes())))
        if key is not None and key in wls_cache:
            x, c, bread, base.rows = wls_cache[key]  # the cached cluster codes: one array, counted once
        else:
            x = np.column_stack([np.ones(len(y)), d])
            if adjust:
                x = np.column_stack([x, _design(kept_df(), covariates)])
            x, c = _independent_columns(x, w, 1)
            bread = np.linalg.inv(x.T @ (x * w[:, None]))
            if key is not None:
                wls_cache[key] = (x, c, bread, cl)
        base.estimate, base.psi, base.n_params = _wls(y, x, w, c, bread=bread)
        if boot_counts is not None:
            base.boot = _wls_bootstrap(y, x, w, c, cl, boot_counts)
        return base

    xc = _design(kept_df(), covariates)
    outcome_model = est == "aipw"
    base.estimate, base.psi = _dr_att(y, d, xc, w, outcome_model, ps_cache)
    if boot_counts is not None:
        reps = np.full(boot_counts.shape[0], np.nan)
        for b in range(boot_counts.shape[0]):
            mult = boot_counts[b, cl]
            dd = d[mult > 0]
            if dd.min() == dd.max():
                continue
            try:
                # rows of clusters not drawn get weight 0; the weighted logit and WLS handle them directly
                reps[b] = _dr_att(y, d, xc, w * mult, outcome_model)[0]
            except np.linalg.LinAlgError:
                continue
        base.boot = reps
    return base


def _estimate_dr(
    est: str,
    df: pd.DataFrame,
    cl: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    d: np.ndarray,
    ok: np.ndarray,
    outcome: str,
    k: int,
    measure: str,
    subgroup: str,
    covariates: list[str],
    cache: dict,
) -> _Est | None:
    """IPW/AIPW with cluster inference, the outcome-free work shared through ``cache``.

    ``cache`` lives for one sample (estimator-independent: ``ipw`` and ``aipw`` share it): the coded design of
    the sample (:class:`_SampleDesign`) and one :class:`_DRFit` per set of kept rows. Rows are kept per outcome
    (censoring), so the outcomes of one horizon share a fit; the result equals :func:`_dr_att` on the kept rows.
    """
    if "design" not in cache:
        cache["design"] = _SampleDesign(df, covariates)
    all_ok = bool(ok.all())
    key = (ok.tobytes(), w.tobytes())
    hit = cache.get(key)
    if hit is None:
        keep = None if all_ok else ok
        dd, ww, cc = (d, w, cl) if all_ok else (d[ok], w[ok], cl[ok])
        n_t, n_c = int((dd == 1).sum()), int((dd == 0).sum())
        fit = None
        if n_t > 0 and n_c > 0:
            fit = _dr_fit(dd, cache["design"].rows(keep), ww)
        hit = cache[key] = (fit, cc, n_t, n_c)
    fit, cc, n_t, n_c = hit
    if fit is None:
        return None
    yy = y if all_ok else y[ok]
    att, psi = _dr_att_fit(fit, yy, est == "aipw")
    return _Est(outcome, k, measure, subgroup, est, att, n_t, n_c, rows=cc, psi=psi)


# ----------------------------------------------------------------------------------------------------------------
# Abadie–Imbens
# ----------------------------------------------------------------------------------------------------------------
def abadie_imbens_se(
    y: np.ndarray,
    treated: np.ndarray,
    distance: np.ndarray,
    matches: Sequence[Sequence[int]],
    n_neighbours_variance: int = 1,
) -> tuple[float, float]:
    """ATT of nearest-neighbour matching (with replacement) and its Abadie & Imbens (2006) standard error.

    ``matches[i]`` lists the M control positions matched to the i-th treated unit (positions into ``y``; treated
    units in the order of ``np.flatnonzero(treated)``). With K(j) the number of times control j is used,

        τ̂ = (1/N₁) Σ_{T} (Y_i − Ŷ_i(0)),   Ŷ_i(0) = mean of i's matches,
        V̂ = (1/N₁²) [ Σ_T (Y_i − Ŷ_i(0) − τ̂)² + Σ_C (K(j)/M)² σ̂²_j − Σ_C (K(j)/M²) σ̂²_j ]

    — i.e. Abadie & Imbens (2006) eq. for the population ATT, the control term ``K(K−1)/M² σ̂²`` (Abadie,
    Drukker, Herr & Imbens 2004, ``nnmatch``). σ̂²_j = J/(J+1) (Y_j − mean of its J nearest same-group
    neighbours in ``distance``)², J = ``n_neighbours_variance``. The distance is treated as known (no Abadie &
    Imbens 2016 correction for an estimated propensity score).
    """
    y = np.asarray(y, float)
    t_pos = np.flatnonzero(np.asarray(treated) == 1)
    mlist = [np.asarray(m, int) for m in matches]
    if len(mlist) != len(t_pos):
        raise InputError(f"matches has {len(mlist)} entries for {len(t_pos)} treated units")
    n1 = len(t_pos)
    m_counts = np.array([len(m) for m in mlist])
    y0hat = np.array([y[m].mean() for m in mlist])
    tau = float(np.mean(y[t_pos] - y0hat))
    kw = np.zeros(len(y))  # Σ over matches of 1/M_i
    for m, mi in zip(mlist, m_counts, strict=True):
        np.add.at(kw, m, 1.0 / mi)
    ksq = np.zeros(len(y))  # Σ over matches of 1/M_i² (= K/M² for constant M)
    for m, mi in zip(mlist, m_counts, strict=True):
        np.add.at(ksq, m, 1.0 / mi**2)
    sig2 = _nn_variance(y, np.asarray(treated), np.asarray(distance, float), n_neighbours_variance)
    c = np.asarray(treated) == 0
    v = np.sum((y[t_pos] - y0hat - tau) ** 2) + np.sum((kw[c] ** 2 - ksq[c]) * sig2[c])
    return tau, float(math.sqrt(v) / n1)


def _nn_variance(y: np.ndarray, d: np.ndarray, dist: np.ndarray, j: int) -> np.ndarray:
    """σ̂²_i = J/(J+1) (Y_i − mean of the J nearest units of the same group in ``dist``)²."""
    out = np.full(len(y), np.nan)
    for g in (0, 1):
        pos = np.flatnonzero(d == g)
        if len(pos) < 2:
            out[pos] = 0.0
            continue
        jj = min(j, len(pos) - 1)
        xs = dist[pos]
        for a, i in enumerate(pos):
            dd = np.abs(xs - xs[a])
            dd[a] = np.inf
            nb = np.argsort(dd, kind="stable")[:jj]
            out[i] = jj / (jj + 1) * (y[i] - y[pos[nb]].mean()) ** 2
    return out


def _ai_se_from_data(
    df: pd.DataFrame, col: str, treatment: str, weights: str | None, pairs: object | None, distance: str
) -> float:
    if pairs is None or distance not in df:
        raise InputError(
            "se='abadie_imbens' needs pairs= (the MatchResult, or a table with treated_row/control_row = index "
            f"labels of the data) and a {distance!r} column (the matching distance)"
        )
    tp, cp = _match_positions(df, pairs, treatment, first_only=False)
    y = df[col].to_numpy(float)
    ok = np.isfinite(y[tp]) & np.isfinite(y[cp])
    tp, cp = tp[ok], cp[ok]
    units = np.unique(np.concatenate([tp, cp]))
    t_units = np.unique(tp)
    order = np.concatenate([t_units, np.setdiff1d(units, t_units)])
    local = pd.Series(np.arange(len(order)), index=order)
    d = np.r_[np.ones(len(t_units)), np.zeros(len(order) - len(t_units))]
    by_t = pd.Series(local[cp].to_numpy()).groupby(local[tp].to_numpy()).apply(list)
    matches = [by_t[i] for i in range(len(t_units))]
    _, s = abadie_imbens_se(y[order], d, df[distance].to_numpy(float)[order], matches)
    return s


def _match_positions(
    data: pd.DataFrame, match: object, treatment: str, first_only: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Positions in ``data`` of the (treated, control) rows of every match.

    ``match`` is a ``MatchResult`` (its ``pairs`` index ``match.data`` by position; rows are found in ``data``
    by ``person_id``, ``ref_month`` and treatment) or a table with ``treated_row``/``control_row`` holding index
    labels of ``data``. ``first_only`` keeps each treated unit's first (closest) match."""
    keys = [k for k in ("person_id", "ref_month", treatment) if k in data]
    if hasattr(match, "pairs") and hasattr(match, "data"):
        pairs = match.pairs
        if first_only and "k" in pairs:
            pairs = pairs[pairs["k"] == 1]
        src = match.data.reset_index(drop=True)
        pos = data[keys].reset_index(drop=True).assign(_pos=np.arange(len(data)))
        out = []
        for c in ("treated_row", "control_row"):
            f = src.loc[pairs[c].to_numpy(), keys].reset_index(drop=True)
            for k in keys:
                f[k] = f[k].astype(pos[k].dtype)
            out.append(f.merge(pos, on=keys, how="left")["_pos"].to_numpy(float))
        ok = np.isfinite(out[0]) & np.isfinite(out[1])
        return out[0][ok].astype(int), out[1][ok].astype(int)
    if not isinstance(match, pd.DataFrame):
        raise InputError(f"pairs must be a MatchResult or a DataFrame, got {type(match).__name__}")
    _require(match, ["treated_row", "control_row"], "pairs")
    pairs = match
    if first_only:
        pairs = pairs[pairs["k"] == 1] if "k" in pairs else pairs.drop_duplicates("treated_row")
    tp = data.index.get_indexer(pairs["treated_row"])
    cp = data.index.get_indexer(pairs["control_row"])
    if (tp < 0).any() or (cp < 0).any():
        raise InputError(
            f"{int((tp < 0).sum() + (cp < 0).sum())} treated_row/control_row values of pairs are not index labels "
            "of the data; pass the MatchResult itself (pairs=match), which is mapped by person_id/ref_month"
        )
    return tp, cp


# ----------------------------------------------------------------------------------------------------------------
# Callaway & Sant'Anna (2021)
# ----------------------------------------------------------------------------------------------------------------
@_one_blas_thread
def callaway_santanna(
    panel: pd.DataFrame,
    outcomes: Sequence[str] | None = None,
    horizons: Sequence[int] = (3, 6, 12),
    measures: Sequence[str] = ("status",),
    first_treated: str = "first_treated",
    id_col: str = "person_id",
    month_col: str = "month",
    fill_value: float | None = None,
    units: pd.DataFrame | None = None,
    _codes: tuple[pd.Index] | None = None,
) -> EffectResults:
    """Staggered-adoption DiD: group-time ATTs with not-yet-treated controls, aggregated by event time.

    Callaway & Sant'Anna (2021), unconditional version with a universal base period g−1. For the group g of units
    first treated in month g and a month t = g + e,

        ATT(g, t) = E[Y_t − Y_{g−1} | G = g] − E[Y_t − Y_{g−1} | G > t]

    where ``G > t`` are the not-yet-treated (including never-treated) units observed in both months. Event-time
    aggregation with weights proportional to group size: θ(e) = Σ_g n_g ATT(g, g+e) / Σ_g n_g over the groups
    with g+e observed. ``status`` at horizon k is θ(k); ``cumulative`` at k is Σ_{e=1..k} θ(e). Influence per
    unit: ψ_i = Σ_g (n_g/N) [D_gi (ΔY_i − m_g)/n_g − C_gi (ΔY_i − m_Cg)/n_Cg], treating the group shares as fixed
    (their estimation effect, included by CS, is second order here and omitted); clustered by person.
    This estimator does not use matching: it is the design cross-check of the matched estimates.

    Computation: the units × months outcome matrix is built once per outcome; for each event time e the changes
    ΔY of every unit for every group g (one units × groups matrix) give all ATT(g, g+e), their counts and ψ in a
    few array operations (column sums and one matrix–vector product), processed in blocks of groups.

    Parameters
    ----------
    panel : long table ``id_col``, ``month_col`` (``YYYY-MM``), ``first_treated`` (``YYYY-MM`` of the first insats
        start, empty/NaN if never) and outcome columns; one row per person and month. Months absent are NaN
        (censored) unless ``fill_value`` is given (e.g. 0 for ``person_months``, whose absent months are zeros).
    units : optional; one row per unit: ``id_col``, ``first_treated``, ``observed_from`` and ``observed_to``
        (``YYYY-MM``, inclusive; a unit with ``observed_from > observed_to`` is left out). With it ``panel`` may be
        sparse, e.g. the rows of ``person_months`` (``first_treated`` not needed there): a unit's months inside its
        observed range are the panel's value or 0 when absent, months outside it are censored (panel rows there
        and rows of other persons are ignored). The result equals that of the dense panel with those zeros filled
        and only the observed months present, without building it.
    """
    outcomes = [o for o in (outcomes or OUTCOMES) if o in panel]
    if units is None:
        _require(panel, [id_col, month_col, first_treated, *outcomes], "panel")
    else:
        _require(panel, [id_col, month_col, *outcomes], "panel")
        _require(units, [id_col, first_treated, "observed_from", "observed_to"], "units")
    if not outcomes:
        raise InputError("panel has none of the requested outcome columns")
    if units is None:
        ids, id_index = pd.factorize(panel[id_col].astype(str))
        t_idx = np.asarray(_months.to_index(panel[month_col]), dtype=np.int64)
        t0 = int(t_idx.min())
        n_t = int(t_idx.max()) - t0 + 1
        n_u = len(id_index)
        ft = panel[[first_treated]].assign(_id=ids).drop_duplicates("_id").set_index("_id")[first_treated]
        ft = ft.reindex(np.arange(n_u))
        rows = np.ones(len(panel), dtype=bool)
        base = np.full((n_u, n_t), np.nan if fill_value is None else float(fill_value))
    else:
        lo_all = np.asarray(_months.to_index(units["observed_from"]), dtype=np.int64)
        hi_all = np.asarray(_months.to_index(units["observed_to"]), dtype=np.int64)
        u = units[lo_all <= hi_all]
        lo, hi = lo_all[lo_all <= hi_all], hi_all[lo_all <= hi_all]
        id_index = pd.Index(u[id_col].astype(str))
        if not id_index.is_unique:
            dup = id_index[id_index.duplicated()][:3].tolist()
            raise InputError(f"units: {id_col} must be unique (one row per unit); repeated e.g. {dup}")
        if not len(id_index):
            raise InputError("units: no unit has an observed month (observed_from <= observed_to)")
        t0 = int(lo.min())
        n_t = int(hi.max()) - t0 + 1
        n_u = len(id_index)
        ft = u[first_treated].reset_index(drop=True)
        ids = id_index.get_indexer(panel[id_col].astype(str))
        t_idx = (
            np.asarray(_months.to_index(panel[month_col]), dtype=np.int64) if len(panel) else np.zeros(0, int)
        )
        safe = np.where(ids >= 0, ids, 0)
        rows = (ids >= 0) & (t_idx >= lo[safe]) & (t_idx <= hi[safe])
        ids, t_idx = ids[rows], t_idx[rows]
        cols = np.arange(t0, t0 + n_t)
        base = np.where((cols >= lo[:, None]) & (cols <= hi[:, None]), 0.0, np.nan)
    g_abs = np.full(n_u, np.iinfo(np.int64).max // 2, dtype=np.int64)
    has = ft.notna() & (ft.astype(str).str.len() >= 7)
    g_abs[has.to_numpy()] = np.asarray(_months.to_index(ft[has].astype(str)), dtype=np.int64)
    g_rel = g_abs - t0
    if _codes is not None:
        global_codes = _codes[0].get_indexer(id_index)
        n_clusters = len(_codes[0])
    else:
        global_codes = np.arange(n_u)
        n_clusters = n_u
    res = EffectResults(
        se_type="cluster",
        cluster=id_col,
        estimand="ATT by event time, not-yet-treated controls (Callaway & Sant'Anna 2021)",
        n_clusters=n_clusters,
    )
    max_e = max(horizons)
    need_e = sorted({k for k in horizons} | (set(range(1, max_e + 1)) if "cumulative" in measures else set()))
    groups = np.unique(g_rel[(g_rel >= 1) & (g_rel < n_t)])
    # blocks of groups so that a units × groups block stays around 2 million cells
    block = max(1, 2_000_000 // max(n_u, 1))
    for o in outcomes:
        y = base.copy()
        y[ids, t_idx - t0] = panel[o].to_numpy(float)[rows]
        # months × units (a month's values contiguous: the blocks below gather whole months)
        seen = np.isfinite(y.T)
        y = np.where(seen, y.T, 0.0)  # unobserved months are excluded through ``seen``
        theta: dict[int, tuple[float, np.ndarray, int, int]] = {}
        for e in need_e:
            gs = groups[groups + e < n_t]
            if not len(gs):
                continue
            # treated: a unit is in its own group only, so its change ΔY = Y_{g+e} − Y_{g−1} is one lookup
            tu = np.flatnonzero(np.isin(g_rel, gs))
            gt = g_rel[tu]
            both = seen[gt + e, tu] & seen[gt - 1, tu]
            tu, gt = tu[both], gt[both]
            dyt = y[gt + e, tu] - y[gt - 1, tu]
            col = np.searchsorted(gs, gt)
            n1 = np.bincount(col, minlength=len(gs))
            m1 = np.bincount(col, weights=dyt, minlength=len(gs)) / np.maximum(n1, 1)
            # controls (not yet treated at g+e, observed at g−1 and g+e): one groups × units block at a time
            n0 = np.zeros(len(gs), dtype=np.int64)
            m0 = np.zeros(len(gs))
            psi_num = np.zeros(n_u)
            for b in range(0, len(gs), block):
                sl = slice(b, b + block)
                g = gs[sl]
                co = seen[g + e] & seen[g - 1] & (g_rel[None, :] > (g + e)[:, None])
                dy = np.where(co, y[g + e] - y[g - 1], 0.0)
                n0[sl] = co.sum(axis=1)
                m0[sl] = dy.sum(axis=1) / np.maximum(n0[sl], 1)
                use = (n1[sl] > 0) & (n0[sl] > 0)
                r = np.where(use, n1[sl] / np.maximum(n0[sl], 1), 0.0)
                # ψ numerator, control part: −Σ_g n_g C_gi (ΔY_i − m_Cg)/n_Cg
                psi_num -= r @ dy - (r * m0[sl]) @ co
            use = (n1 > 0) & (n0 > 0)
            if not use.any():
                continue
            # treated part: Σ_g n_g D_gi (ΔY_i − m_g)/n_g; the sum is divided by N = Σ n_g below
            keep = use[col]
            psi_num[tu[keep]] += dyt[keep] - m1[col[keep]]
            n_tot = int(n1[use].sum())
            num = float(np.dot(n1[use], m1[use] - m0[use]))
            theta[e] = (num / n_tot, psi_num / n_tot, n_tot, int(n0[use].max()))
        for m in measures:
            for k in horizons:
                if m == "status":
                    if k not in theta:
                        res.notes.append(f"cs_did: event time {k} not identified for {o}")
                        continue
                    est, psi, n1, n0 = theta[k]
                else:
                    if any(e not in theta for e in range(1, k + 1)):
                        res.notes.append(f"cs_did: cumulative {k} not identified for {o}")
                        continue
                    est = float(sum(theta[e][0] for e in range(1, k + 1)))
                    psi = np.sum([theta[e][1] for e in range(1, k + 1)], axis=0)
                    n1, n0 = theta[k][2], theta[k][3]
                nz = psi != 0
                res._ests.append(
                    _Est(o, k, m, "all", "cs_did", est, n1, n0, rows=global_codes[nz], psi=psi[nz])
                )
    res._finalise()
    return res


# ----------------------------------------------------------------------------------------------------------------
# Event study
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class EventStudyResults:
    """Monthly effects around the start (event study) with a joint pre-trend test.

    ``table``: ``rel_month``, ``estimate``, ``std_error``, ``ci_lower``, ``ci_upper``, ``p_value`` (the reference
    month has estimate 0 and no SE). ``pretrend_wald``/``pretrend_df``/``pretrend_p``: Wald test that every lead
    (rel_month < reference) is zero, on the clustered covariance.
    """

    outcome: str
    reference: int
    table: pd.DataFrame
    pretrend_wald: float
    pretrend_df: int
    pretrend_p: float
    n_units: int
    n_obs: int
    cluster: str
    cov: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)

    def to_frame(self) -> pd.DataFrame:
        """The event-study table with the outcome name."""
        return self.table.assign(outcome=self.outcome)[
            ["outcome", "rel_month", "estimate", "std_error", "ci_lower", "ci_upper", "p_value"]
        ]

    def summary(self) -> str:
        """Readable text: coefficients by month relative to the start and the pre-trend test."""
        lines = [
            f"Event study: {self.outcome} (treated − matched controls, relative to month {self.reference})",
            f"PanelOLS, unit and calendar-month effects, SE clustered by {self.cluster}; "
            f"{self.n_units} units, {self.n_obs} unit-months",
            f"{'rel_month':>9}{'estimate':>12}{'s.e.':>10}{'95% CI':>24}",
        ]
        for r in self.table.itertuples(index=False):
            ci = "" if not np.isfinite(r.std_error) else f"[{r.ci_lower:.4g}, {r.ci_upper:.4g}]"
            lines.append(f"{r.rel_month:>9}{r.estimate:>12.4g}{r.std_error:>10.3g}{ci:>24}")
        lines.append(
            f"Pre-trend test (all leads = 0): Wald = {self.pretrend_wald:.3f}, df = {self.pretrend_df}, "
            f"p = {self.pretrend_p:.4f}"
        )
        return "\n".join(lines)


def event_study(
    paths: pd.DataFrame,
    outcome: str = "public_support",
    treatment: str = "treated",
    weights: str | None = "weights",
    window: tuple[int, int] = (-24, 24),
    reference: int = -1,
    cluster: str = "person_id",
    unit: Sequence[str] = ("person_id", "ref_month", "treated"),
    engine: str = "fwl",
) -> EventStudyResults:
    """Event study on the matched panel: the weighted two-way fixed-effects regression of linearmodels
    ``PanelOLS``, computed exactly by Frisch–Waugh–Lovell (``engine="fwl"``, default) or by ``PanelOLS`` itself
    (``engine="linearmodels"``; same estimates and covariance, about 50 times slower on the example).

    Model (one row per matched unit i and calendar month t, e = t − u_i):

        Y_it = α_i + λ_t + Σ_{e≠r, e≠e_min} γ_e 1[e_it = e] + Σ_{e≠r} β_e D_i 1[e_it = e] + ε_it

    with unit effects α_i (unit = person × reference month × role), calendar-month effects λ_t, event-time
    effects γ_e common to treated and controls (both were selected at u, so the Ashenfelter dip is shared; one
    more γ is dropped because e = t − u_i is collinear with the two-way effects — Borusyak, Jaravel & Spiess
    2024), and the effects β_e of interest relative to month r = ``reference``. Matching weights as regression
    weights; SEs clustered by ``cluster``. The pre-trend test is the Wald statistic β_pre' V⁻¹ β_pre over all
    leads e < r, χ² with as many df (Roth 2022 on what such tests can and cannot show).

    Computation (``engine="fwl"``, see :func:`_twoway_wls_cluster`): the unit effects are absorbed by weighted
    within-unit demeaning and the calendar-month effects by partialling out the (few) month dummies in the
    normal equations (Frisch–Waugh–Lovell; Lovell 2008), so no n × (units + months) design is ever formed. The
    covariance is PanelOLS's ``cov_type="clustered"`` with its default ``debiased=True`` and effects counted:
    ``V = n/(n − k − (N + T − 1)) · (X̃'X̃)⁻¹ Σ_g (Σ_{i∈g} x̃_i ẽ_i)(…)' (X̃'X̃)⁻¹`` with X̃, ẽ the weighted two-way
    residualised regressors and residuals, N units, T months and k retained regressors; regressors absorbed by
    the effects (residual norm < 1e-5 of the original, as PanelOLS's ``drop_absorbed``) are dropped.
    """
    if engine not in ("fwl", "linearmodels"):
        raise InputError(f"event_study engine must be 'fwl' or 'linearmodels', got {engine!r}")
    _require(paths, [*unit, "rel_month", "month", outcome, treatment, cluster], "outcome paths")
    p = paths[(paths["rel_month"] >= window[0]) & (paths["rel_month"] <= window[1])]
    if "censored" in p:
        p = p[~p["censored"].astype(bool)]
    p = p[p[outcome].notna()]
    if weights is not None and weights in p:
        p = p[p[weights] > 0]
    uid, _ = pd.factorize(pd.MultiIndex.from_frame(p[list(unit)].astype(str)))
    tid = np.asarray(_months.to_index(p["month"]), dtype=np.int64)
    rel = p["rel_month"].to_numpy(int)
    d = p[treatment].to_numpy(float)
    es = [e for e in range(window[0], window[1] + 1) if e != reference and (rel == e).any()]
    common = [e for e in es if e != min(es)]
    names = [f"b{e}" for e in es] + [f"g{e}" for e in common]
    ccode = pd.factorize(p[cluster].astype(str))[0]
    dup = pd.DataFrame({"u": uid, "t": tid}).duplicated()
    if dup.any():
        first = p.iloc[int(np.argmax(dup.to_numpy()))]
        raise InputError(
            f"outcome paths have {int(dup.sum())} repeated unit × month rows (first: "
            f"{', '.join(f'{c}={first[c]}' for c in unit)}, month={first['month']}); a unit ({', '.join(unit)}) "
            "must appear once per calendar month — drop duplicates or add the distinguishing column to unit="
        )
    wv = p[weights].to_numpy(float) if weights is not None and weights in p else None
    if engine == "linearmodels":
        from linearmodels.panel import PanelOLS

        cols = {f"b{e}": (d * (rel == e)).astype(float) for e in es}
        cols.update({f"g{e}": (rel == e).astype(float) for e in common})
        idx = pd.MultiIndex.from_arrays([uid, tid], names=["unit", "time"])
        x = pd.DataFrame(cols, index=idx)
        y = pd.Series(p[outcome].to_numpy(float), index=idx, name=outcome)
        w = pd.Series(wv, index=idx) if wv is not None else None
        clus = pd.DataFrame({"c": ccode}, index=idx)
        mod = PanelOLS(
            y, x, entity_effects=True, time_effects=True, weights=w, drop_absorbed=True, check_rank=False
        )
        fit = mod.fit(cov_type="clustered", clusters=clus)
        params, cov = fit.params, fit.cov
    else:
        import scipy.sparse as sp

        # the indicators as a sparse n × k matrix (at most two non-zeros per row): b_e = D·1[e], g_e = 1[e]
        pos = {e: j for j, e in enumerate(es)}
        gpos = {e: len(es) + j for j, e in enumerate(common)}
        r_all = np.arange(len(p))
        bj = np.array([pos.get(e, -1) for e in rel], dtype=np.int64)
        gj = np.array([gpos.get(e, -1) for e in rel], dtype=np.int64)
        mb, mg = (bj >= 0) & (d != 0), gj >= 0
        xmat = sp.csr_matrix(
            (
                np.concatenate([d[mb], np.ones(int(mg.sum()))]),
                (np.concatenate([r_all[mb], r_all[mg]]), np.concatenate([bj[mb], gj[mg]])),
            ),
            shape=(len(p), len(names)),
        )
        b, v, kept = _twoway_wls_cluster(
            p[outcome].to_numpy(float),
            xmat,
            np.ones(len(p)) if wv is None else wv,
            uid,
            pd.factorize(tid)[0],
            ccode,
        )
        kn = [names[j] for j in kept]
        params = pd.Series(b, index=kn)
        cov = pd.DataFrame(v, index=kn, columns=kn)
    rows = []
    for e in range(window[0], window[1] + 1):
        if e == reference:
            rows.append((e, 0.0, float("nan")))
        elif f"b{e}" in params.index:
            rows.append((e, float(params[f"b{e}"]), float(np.sqrt(cov.loc[f"b{e}", f"b{e}"]))))
    tab = pd.DataFrame(rows, columns=["rel_month", "estimate", "std_error"])
    tab["ci_lower"] = tab["estimate"] - _Z * tab["std_error"]
    tab["ci_upper"] = tab["estimate"] + _Z * tab["std_error"]
    tab["p_value"] = 2 * stats.norm.sf(np.abs(tab["estimate"] / tab["std_error"]))
    leads = [f"b{e}" for e in es if e < reference and f"b{e}" in params.index]
    if leads:
        b = params[leads].to_numpy()
        v = cov.loc[leads, leads].to_numpy()
        wald = float(b @ np.linalg.pinv(v) @ b)
        df_ = int(np.linalg.matrix_rank(v))
        pval = float(stats.chi2.sf(wald, df_))
    else:
        wald, df_, pval = float("nan"), 0, float("nan")
    bcols = [c for c in params.index if c.startswith("b")]
    return EventStudyResults(
        outcome=outcome,
        reference=reference,
        table=tab,
        pretrend_wald=wald,
        pretrend_df=df_,
        pretrend_p=pval,
        n_units=int(uid.max() + 1),
        n_obs=len(p),
        cluster=cluster,
        cov=cov.loc[bcols, bcols],
    )


def _twoway_wls_cluster(
    y: np.ndarray, x, w: np.ndarray, unit: np.ndarray, time: np.ndarray, clusters: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Weighted least squares of ``y`` on ``x`` with unit and time fixed effects, cluster-robust covariance.

    Exactly the estimator of linearmodels ``PanelOLS(entity_effects=True, time_effects=True, weights=w,
    drop_absorbed=True).fit(cov_type="clustered", clusters=...)`` (debiased, effects counted), computed by
    Frisch–Waugh–Lovell (Lovell 2008): with M the weighted within-unit demeaning and D the time dummies, the
    normal equations of the partialled regressors are

        A = Z'WMZ − (Z'WMD)(D'WMD)⁺(D'WMZ),   Z = [x, y],

    each block from per-unit and per-time weighted sums (D'WMD is T × T), so no dense dummy matrix is formed;
    ``x`` may be dense or a scipy.sparse matrix (the event-time indicators are sparse) and stays sparse.
    β = A_xx⁻¹ A_xy; the row-level residualised regressors x̃_i = Mx_i − (MD)_i Γ (Γ = (D'WMD)⁺ D'WMx) give the
    scores w_i x̃_i ẽ_i whose cluster sums make the sandwich
    V = n/(n − k − (N + T − 1)) · A_xx⁻¹ Σ_g s_g s_g' A_xx⁻¹ (the PanelOLS scale with ``debiased=True`` and
    ``count_effects=True``). A column is dropped as absorbed when less than 1e-5 of its weighted norm is left
    after the effects and the retained columns before it (PanelOLS's ``not_absorbed`` rule).

    Returns (coefficients, covariance, positions of the retained columns of ``x``).
    """
    import scipy.sparse as sp

    n, k = x.shape
    n_u = int(unit.max()) + 1
    n_t = int(time.max()) + 1
    rows = np.arange(n)
    z = sp.hstack([sp.csr_matrix(x), sp.csr_matrix(y.reshape(-1, 1))], format="csr")
    wz = sp.csr_matrix(z.multiply(w[:, None]))
    ut = sp.csr_matrix((np.ones(n), (unit, rows)), shape=(n_u, n))
    tt = sp.csr_matrix((np.ones(n), (time, rows)), shape=(n_t, n))
    w_u = np.bincount(unit, weights=w, minlength=n_u)
    s_z = (ut @ wz).toarray()  # N × (k+1): per-unit weighted sums
    zbar_u = s_z / w_u[:, None]
    s_t = sp.csr_matrix((w, (unit, time)), shape=(n_u, n_t)).toarray()  # N × T: per unit-month weights
    tbar_u = s_t / w_u[:, None]  # unit-weighted means of the time dummies
    w_t = np.bincount(time, weights=w, minlength=n_t)
    a_zz = (z.T @ wz).toarray() - s_z.T @ zbar_u
    a_tz = (tt @ wz).toarray() - s_t.T @ zbar_u
    a_tt = np.diag(w_t) - s_t.T @ tbar_u
    gamma = np.linalg.lstsq(a_tt, a_tz, rcond=None)[0]  # T × (k+1)
    a = a_zz - a_tz.T @ gamma
    # PanelOLS's absorbed-column rule, in order: residual norm < 1e-5 of the weighted original norm
    orig = np.asarray(z.multiply(wz).sum(axis=0)).ravel()[:k]
    kept: list[int] = []
    for j in range(k):
        r = a[j, j]
        if kept:
            akk = a[np.ix_(kept, kept)]
            akj = a[kept, j]
            r = a[j, j] - akj @ np.linalg.solve(akk, akj)
        if orig[j] > 0 and r > (1e-5) ** 2 * orig[j]:
            kept.append(j)
    axx = a[np.ix_(kept, kept)]
    beta = np.linalg.solve(axx, a[kept, k])
    # residualised rows: z̃_i = z_i − A[unit_i] − Γ[time_i] with A = z̄_unit − (unit means of the time dummies)·Γ;
    # residual ẽ = z̃·v with v = (−β, 1); cluster sums of the scores w_i ẽ_i x̃_i taken term by term (sparse)
    cols = [*kept, k]
    a_u = zbar_u[:, cols] - tbar_u @ gamma[:, cols]
    g_t = gamma[:, cols]
    vec = np.append(-beta, 1.0)
    e = z[:, cols] @ vec - (a_u @ vec)[unit] - (g_t @ vec)[time]
    q = w * e
    g = int(clusters.max()) + 1
    c_rows = sp.csr_matrix((q, (clusters, rows)), shape=(g, n))
    sums = (
        (c_rows @ z[:, kept]).toarray()
        - sp.csr_matrix((q, (clusters, unit)), shape=(g, n_u)) @ a_u[:, :-1]
        - sp.csr_matrix((q, (clusters, time)), shape=(g, n_t)) @ g_t[:, :-1]
    )
    ainv = np.linalg.inv(axx)
    n_eff = n - len(kept) - (n_u + n_t - 1)
    if n_eff <= 0:
        raise InputError(
            f"event study has no residual degrees of freedom ({n} unit-months, {len(kept)} coefficients, "
            f"{n_u} units, {n_t} months); widen the window or use more matched units"
        )
    v = ainv @ (sums.T @ sums) @ ainv * (n / n_eff)
    return beta, v, kept


# ----------------------------------------------------------------------------------------------------------------
# Sensitivity
# ----------------------------------------------------------------------------------------------------------------
SENSITIVITY_COLUMNS: list[str] = [
    "check",
    "outcome",
    "horizon_months",
    "measure",
    "statistic",
    "value",
    "n_treated",
    "n_control",
]


def rosenbaum_mcnemar(treated_y: np.ndarray, control_y: np.ndarray, gamma: float = 1.0) -> float:
    """Upper bound of the one-sided p-value of McNemar's test for binary outcomes in matched pairs under hidden
    bias Γ (Rosenbaum 2002, §4.3.2).

    The test is taken in the direction of the observed effect. With D discordant pairs of which T go that way,
    p⁺ = Γ/(1+Γ) and the bound is P(Binomial(D, p⁺) ≥ T); at Γ = 1 it is the exact McNemar (sign) test.
    """
    t = np.asarray(treated_y, float)
    c = np.asarray(control_y, float)
    up = int(np.sum((t == 1) & (c == 0)))
    down = int(np.sum((t == 0) & (c == 1)))
    d = up + down
    if d == 0:
        return 1.0
    k = max(up, down)
    return float(stats.binom.sf(k - 1, d, gamma / (1 + gamma)))


def rosenbaum_wilcoxon(treated_y: np.ndarray, control_y: np.ndarray, gamma: float = 1.0) -> float:
    """Upper bound of the one-sided p-value of Wilcoxon's signed-rank test in matched pairs under hidden bias Γ
    (Rosenbaum 2002, §4.3.3; normal approximation).

    d_i = ±(Y_t − Y_c) oriented in the direction of the observed effect (median sign), zero differences dropped,
    r_i = rank of |d_i| (average ranks for ties), T = Σ_{d_i>0} r_i, p⁺ = Γ/(1+Γ):

        E⁺ = p⁺ Σ r_i,   V⁺ = p⁺(1−p⁺) Σ r_i²,   p ≤ 1 − Φ((T − E⁺)/√V⁺).
    """
    d = np.asarray(treated_y, float) - np.asarray(control_y, float)
    d = d[np.isfinite(d) & (d != 0)]
    if len(d) == 0:
        return 1.0
    r = stats.rankdata(np.abs(d))
    if np.sum(r[d > 0]) < np.sum(r[d < 0]):
        d = -d
    t = float(np.sum(r[d > 0]))
    p = gamma / (1 + gamma)
    e = p * np.sum(r)
    v = p * (1 - p) * np.sum(r**2)
    return float(stats.norm.sf((t - e) / math.sqrt(v)))


def critical_gamma(pvalue: Callable[[float], float], alpha: float = 0.05, gamma_max: float = 100.0) -> float:
    """Smallest Γ ≥ 1 at which the upper-bound p-value reaches ``alpha`` (1 when not significant at Γ = 1;
    ``inf`` when still significant at ``gamma_max``)."""
    if pvalue(1.0) >= alpha:
        return 1.0
    if pvalue(gamma_max) < alpha:
        return float("inf")
    from scipy.optimize import brentq

    return float(
        math.exp(brentq(lambda lg: pvalue(math.exp(lg)) - alpha, 0.0, math.log(gamma_max), xtol=1e-8))
    )


def e_value(rr: float) -> float:
    """E-value of a risk ratio (VanderWeele & Ding 2017): RR* = RR if RR ≥ 1 else 1/RR; E = RR* + √(RR*(RR*−1)).

    The minimum strength of association (risk-ratio scale) an unmeasured confounder would need with both
    treatment and outcome to explain the observed risk ratio away."""
    if not np.isfinite(rr) or rr <= 0:
        return float("nan")
    r = rr if rr >= 1 else 1 / rr
    return float(r + math.sqrt(r * (r - 1)))


@dataclass
class SensitivityResults:
    """Sensitivity table: Rosenbaum bounds, E-values, placebo outcomes and placebo start dates.

    ``to_frame()`` columns: ``check`` (``rosenbaum_mcnemar``, ``rosenbaum_wilcoxon``, ``e_value``,
    ``placebo_outcome``, ``placebo_start``), ``outcome``, ``horizon_months`` (for placebo outcomes: the month
    relative to u, −6 or −12), ``measure``, ``statistic``, ``value``, ``n_treated``, ``n_control``.
    """

    table: pd.DataFrame
    alpha: float
    notes: list[str] = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        """The tidy sensitivity table."""
        return self.table.copy()

    def summary(self) -> str:
        """Readable text: one line per check × outcome × horizon."""
        lines = [
            f"Sensitivity analysis (alpha = {self.alpha})",
            f"{'check':<20}{'outcome':<22}{'k':>4} {'measure':<11}{'statistic':<18}{'value':>12}",
        ]
        for r in self.table.itertuples(index=False):
            lines.append(
                f"{r.check:<20}{r.outcome:<22}{r.horizon_months:>4} {r.measure:<11}{r.statistic:<18}{r.value:>12.4g}"
            )
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)


def _pair_positions(
    data: pd.DataFrame, match: object | None, treatment: str
) -> tuple[np.ndarray, np.ndarray]:
    """Positions in ``data`` of (treated, control) for each treated unit's first match."""
    if match is not None:
        return _match_positions(data, match, treatment, first_only=True)
    if "subclass" not in data or data["subclass"].isna().all():
        raise InputError(
            "Rosenbaum bounds need matched pairs: pass match= (the MatchResult) or data with a 'subclass' column"
        )
    sc = data["subclass"].to_numpy()
    d = data[treatment].to_numpy()
    tpos, cpos = [], []
    df = pd.DataFrame({"s": sc, "d": d, "p": np.arange(len(data))}).dropna(subset=["s"])
    for _, g in df.groupby("s", sort=False):
        t, c = g.p[g.d == 1].to_numpy(), g.p[g.d == 0].to_numpy()
        if len(t) == 1 and len(c) >= 1:
            tpos.append(t[0])
            cpos.append(c[0])
    return np.asarray(tpos, int), np.asarray(cpos, int)


def _wmd(df: pd.DataFrame, y: np.ndarray, treatment: str, weights: str | None, cluster: str) -> tuple:
    w = np.ones(len(df)) if weights is None or weights not in df else df[weights].to_numpy(float)
    ok = np.isfinite(y) & (w > 0)
    d = df[treatment].to_numpy(float)[ok]
    if d.min() == d.max():
        return float("nan"), float("nan"), int((d == 1).sum()), int((d == 0).sum())
    est, psi, p = _wls(y[ok], np.column_stack([np.ones(ok.sum()), d]), w[ok])
    cl = pd.factorize(df[cluster].astype(str).to_numpy()[ok])[0]
    s = np.bincount(cl, weights=psi)
    g, n = len(s), int(ok.sum())
    se = math.sqrt(g / (g - 1) * (n - 1) / (n - p) * float(np.sum(s**2))) if g > 1 else float("nan")
    return est, se, int((d == 1).sum()), int((d == 0).sum())


def sensitivity_analysis(
    data: pd.DataFrame,
    match: object | None = None,
    paths: pd.DataFrame | None = None,
    outcomes: Sequence[str] | None = None,
    horizons: Sequence[int] = (3, 6, 12),
    treatment: str = "treated",
    weights: str | None = "weights",
    cluster: str = "person_id",
    alpha: float = 0.05,
) -> SensitivityResults:
    """How strong would hidden bias have to be, and do the effects vanish where they must?

    * **Rosenbaum bounds** on the matched pairs (each treated unit and its first match; with matching with
      replacement a reused control appears in several pairs, which the bounds treat as independent — an
      approximation): binary status outcomes by McNemar's test (:func:`rosenbaum_mcnemar`), other outcomes by
      Wilcoxon's signed-rank test (:func:`rosenbaum_wilcoxon`); reported: the p-value at Γ = 1 and the critical
      Γ at which the upper-bound p-value reaches ``alpha`` (Rosenbaum 2002).
    * **E-value** for binary status outcomes: risk ratio p̄_T/p̄_C of the weighted matched means, its E-value and
      the E-value of the confidence limit nearest 1 (VanderWeele & Ding 2017; CI by the delta method on log RR
      with person-clustered influence contributions; E = 1 when the CI includes 1).
    * **Placebo outcome**: the weighted difference in means of the outcome in months u−6 and u−12 (before the
      start; matched on history, so it must be near 0) from ``paths``.
    * **Placebo start**: the start moved back 12 months, u' = u − 12: the matched difference-in-differences
      Y(u'+k) − mean Y(u'−12..u'−1) for horizons k < 12 (months before the real start; must be near 0).

    ``data`` is the matched table with horizon outcomes (as for :func:`estimate_effects`); ``match`` the
    ``MatchResult`` (optional without replacement: pairs come from ``subclass``); ``paths`` the ``outcome_paths``
    table (needed for the placebo checks).
    """
    outcomes = [
        o
        for o in (outcomes or OUTCOMES)
        if any(outcome_column(o, k, m) in data for k in horizons for m in MEASURES)
    ]
    rows: list[tuple] = []
    notes: list[str] = []
    try:
        tp, cp = _pair_positions(data, match, treatment)
    except InputError as exc:
        tp = cp = np.zeros(0, int)
        notes.append(str(exc))
    for o in outcomes:
        for m in MEASURES:
            for k in horizons:
                col = outcome_column(o, k, m)
                if col not in data or len(tp) == 0:
                    continue
                y = data[col].to_numpy(float)
                yt, yc = y[tp], y[cp]
                ok = np.isfinite(yt) & np.isfinite(yc)
                yt, yc = yt[ok], yc[ok]
                n_p = int(ok.sum())
                if o in BINARY_OUTCOMES and m == "status":
                    check = "rosenbaum_mcnemar"
                    fn = lambda g, a=yt, b=yc: rosenbaum_mcnemar(a, b, g)  # noqa: E731
                else:
                    check = "rosenbaum_wilcoxon"
                    fn = lambda g, a=yt, b=yc: rosenbaum_wilcoxon(a, b, g)  # noqa: E731
                rows.append((check, o, k, m, "n_pairs", float(n_p), n_p, n_p))
                rows.append((check, o, k, m, "p_value_gamma_1", fn(1.0), n_p, n_p))
                rows.append((check, o, k, m, "critical_gamma", critical_gamma(fn, alpha), n_p, n_p))
        for k in horizons:
            col = outcome_column(o, k, "status")
            if o not in BINARY_OUTCOMES or col not in data:
                continue
            rows += _e_value_rows(data, col, o, k, treatment, weights, cluster)
    if paths is None:
        notes.append("placebo outcome and placebo start need paths= (the outcome_paths table); not run")
    else:
        rows += _placebo_rows(paths, outcomes, horizons, treatment, weights, cluster)
    table = pd.DataFrame(rows, columns=SENSITIVITY_COLUMNS)
    return SensitivityResults(table=table, alpha=alpha, notes=notes)


def _e_value_rows(
    data: pd.DataFrame, col: str, o: str, k: int, treatment: str, weights: str | None, cluster: str
) -> list[tuple]:
    y = data[col].to_numpy(float)
    w = np.ones(len(data)) if weights is None or weights not in data else data[weights].to_numpy(float)
    d = data[treatment].to_numpy()
    ok = np.isfinite(y) & (w > 0)
    t, c = ok & (d == 1), ok & (d == 0)
    if not t.any() or not c.any():
        return []
    p1 = float(np.average(y[t], weights=w[t]))
    p0 = float(np.average(y[c], weights=w[c]))
    if p1 <= 0 or p0 <= 0:
        return []
    rr = p1 / p0
    psi = np.zeros(len(y))
    psi[t] = w[t] * (y[t] - p1) / w[t].sum() / p1
    psi[c] = -w[c] * (y[c] - p0) / w[c].sum() / p0
    cl = pd.factorize(data[cluster].astype(str).to_numpy()[ok])[0]
    s = np.bincount(cl, weights=psi[ok])
    g = len(s)
    se = math.sqrt(g / (g - 1) * float(np.sum(s**2))) if g > 1 else float("nan")
    lo, hi = math.exp(math.log(rr) - _Z * se), math.exp(math.log(rr) + _Z * se)
    limit = lo if rr >= 1 else hi
    e_ci = 1.0 if lo <= 1 <= hi else e_value(limit)
    n1, n0 = int(t.sum()), int(c.sum())
    return [
        ("e_value", o, k, "status", "risk_ratio", rr, n1, n0),
        ("e_value", o, k, "status", "risk_ratio_ci_lower", lo, n1, n0),
        ("e_value", o, k, "status", "risk_ratio_ci_upper", hi, n1, n0),
        ("e_value", o, k, "status", "e_value", e_value(rr), n1, n0),
        ("e_value", o, k, "status", "e_value_ci", e_ci, n1, n0),
    ]


def _placebo_rows(
    paths: pd.DataFrame,
    outcomes: Sequence[str],
    horizons: Sequence[int],
    treatment: str,
    weights: str | None,
    cluster: str,
) -> list[tuple]:
    unit = [c for c in ("person_id", "ref_month", treatment) if c in paths]
    _require(paths, [*unit, "rel_month", cluster], "outcome paths")
    p = paths
    if "censored" in p:
        p = p.assign(**{o: p[o].where(~p["censored"].astype(bool)) for o in outcomes if o in p})
    extra = [c for c in {weights, cluster} if c and c in p and c not in unit]
    rows: list[tuple] = []
    outs = [o for o in outcomes if o in p]
    if not outs:
        return rows
    # one row per observed unit (groupby, not pivot_table(dropna=False): that builds the full product of the
    # unit columns' levels — persons × months × roles — and set the 10 GiB peak of the example run)
    wide = p.groupby([*unit, "rel_month"], sort=True, observed=True)[outs].first().unstack("rel_month")
    base = p.drop_duplicates(unit).set_index(unit)[extra].reindex(wide.index).reset_index()
    rels = set(p["rel_month"].unique())
    for o in outs:
        for r in (-6, -12):
            if r not in rels:
                continue
            y = wide[(o, r)].to_numpy(float)
            est, se, n1, n0 = _wmd(base, y, treatment, weights, cluster)
            rows += _est_rows("placebo_outcome", o, r, "status", est, se, n1, n0)
        pre = [r for r in range(-24, -12) if r in rels]
        for k in horizons:
            if k >= 12 or (k - 12) not in rels or not pre:
                continue
            y = (
                wide[(o, k - 12)].to_numpy(float)
                - wide[[(o, r) for r in pre]].mean(axis=1, skipna=True).to_numpy()
            )
            est, se, n1, n0 = _wmd(base, y, treatment, weights, cluster)
            rows += _est_rows("placebo_start", o, k, "status", est, se, n1, n0)
    return rows


def _est_rows(check: str, o: str, k: int, m: str, est: float, se: float, n1: int, n0: int) -> list[tuple]:
    p = float(2 * stats.norm.sf(abs(est / se))) if np.isfinite(se) and se > 0 else float("nan")
    return [
        (check, o, k, m, "estimate", est, n1, n0),
        (check, o, k, m, "std_error", se, n1, n0),
        (check, o, k, m, "p_value", p, n1, n0),
    ]
