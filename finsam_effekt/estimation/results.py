"""The results objects of the estimation stage: effects (:class:`EffectResults`), event study, sensitivity.

Each carries what it was computed with (estimand, inference settings, ``alpha``), prints a readable
``summary()``, gives the tidy ``to_frame()`` the report and the CSVs use, and ``conf_int(alpha=None)`` at any
level (linearmodels' habit: the stored level by default). Intervals are normal, ``estimate ± z·SE`` with
``z = Φ⁻¹(1 − α/2)`` (``inference.critical_value``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from ..errors import InputError
from .inference import cr1_factor, critical_value, normal_interval, normal_p_value

#: Columns of :meth:`EffectResults.to_frame` (``docs/tables.md``, estimation section).
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
#: Columns of :meth:`SensitivityResults.to_frame`.
SENSITIVITY_COLUMNS: list[str] = [
    "check",
    "outcome",
    "horizon_months",
    "measure",
    "statistic",
    "value",
    "n_treated",
    "n_control",
    "method",
]
_KEYS = ["outcome", "horizon_months", "measure", "subgroup", "estimator"]


def _level(alpha: float) -> str:
    """``95%`` for alpha 0.05."""
    return f"{100 * (1 - alpha):g}%"


def psd_tolerance(cov: np.ndarray) -> float:
    """The tolerance for numpy's positive-semidefinite check of a covariance, relative to its scale:
    ``max(1e-8, 1e-9 · max |diag|)``. A sandwich covariance ``SᵀS`` of SEK outcomes (variances of 10⁶ and more)
    has rounding eigenvalues far below −1e-8 (numpy's absolute default) although it is PSD; the draws are the
    same, only the false warning goes."""
    d = np.abs(np.diag(cov)) if cov.size else np.zeros(1)
    return float(max(1e-8, 1e-9 * (np.nanmax(d) if np.isfinite(d).any() else 0.0)))


@dataclass(frozen=True, eq=False)
class Estimate:
    """One estimate with what its inference needs (the unit an estimator's ``fit`` returns).

    Attributes
    ----------
    outcome, horizon, measure, subgroup, estimator : what was estimated.
    estimate : the point estimate.
    n_treated, n_control : rows used.
    rows : cluster code of each contributing row (positions in the results' ``clusters``).
    psi : influence contribution of each contributing row (``estimate − θ ≈ Σ ψ_i``).
    n_params : regression coefficients, for the CR1 factor (n−1)/(n−p); 0 for estimators that are no regression.
    boot : bootstrap replicates of the estimate (``se="bootstrap"``), else None.
    se_override : a standard error from elsewhere (Abadie–Imbens), else None.
    """

    outcome: str
    horizon: int
    measure: str
    subgroup: str
    estimator: str
    estimate: float
    n_treated: int
    n_control: int
    rows: np.ndarray | None = None
    psi: np.ndarray | None = None
    n_params: int = 0
    boot: np.ndarray | None = None
    se_override: float | None = None

    def recoded(self, codes: np.ndarray) -> Estimate:
        """The same estimate with its cluster codes mapped through ``codes`` (``rows`` → ``codes[rows]``), e.g.
        from one estimator's own unit coding into the call's global cluster coding."""
        return self if self.rows is None else dataclasses.replace(self, rows=codes[self.rows])


@dataclass(frozen=True, eq=False)
class EffectResults:
    """Effects per outcome × horizon × measure × subgroup × estimator, with their joint covariance.

    Attributes
    ----------
    estimates : every :class:`Estimate`, in the order of :meth:`to_frame`.
    se_type, cluster : inference settings used (``se``, the cluster column).
    estimand : text describing the estimand (ATT of starting an insats in month u vs not starting then).
    clusters : the cluster labels; an estimate's ``rows`` are positions in it.
    alpha : 1 − the confidence level of the intervals in :meth:`to_frame`.
    n_boot, random_state : bootstrap settings (``se="bootstrap"``), else None.
    notes : messages about dropped rows, skipped estimates and the like.
    """

    estimates: tuple[Estimate, ...]
    se_type: str
    cluster: str
    estimand: str
    clusters: pd.Index
    alpha: float = 0.05
    n_boot: int | None = None
    random_state: int | None = None
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        critical_value(self.alpha)  # a valid level, checked once

    @property
    def n_clusters(self) -> int:
        """Number of clusters G (of every sample of the call)."""
        return len(self.clusters)

    # -- inference ---------------------------------------------------------------------------------------------
    @cached_property
    def _inference(self) -> tuple[np.ndarray, np.ndarray]:
        """(standard error, CR1 factor) per estimate. Estimates on the same kept rows share one cluster-code
        array, whose clusters are counted once."""
        n_groups: dict[int, int] = {}
        ses, scales = [], []
        for e in self.estimates:
            c = float("nan")
            if e.rows is not None:
                if id(e.rows) not in n_groups:
                    n_groups[id(e.rows)] = _n_distinct(e.rows)
                c = cr1_factor(n_groups[id(e.rows)], len(e.rows), e.n_params)
            scales.append(c)
            ses.append(self._se(e, c))
        return np.array(ses, dtype=float), np.array(scales, dtype=float)

    @staticmethod
    def _se(e: Estimate, scale: float) -> float:
        if e.se_override is not None:
            return float(e.se_override)
        if e.boot is not None:
            b = e.boot[np.isfinite(e.boot)]
            return float(np.std(b, ddof=1)) if len(b) > 1 else float("nan")
        if e.psi is None:
            return float("nan")
        sums = np.bincount(e.rows, weights=e.psi)
        return float(math.sqrt(scale * float(np.sum(sums**2))))

    @property
    def std_errors(self) -> np.ndarray:
        """Standard error of each estimate (order of :attr:`estimates`)."""
        return self._inference[0].copy()

    # -- tables ------------------------------------------------------------------------------------------------
    @cached_property
    def _frame(self) -> pd.DataFrame:
        ses = self._inference[0]
        z = critical_value(self.alpha)
        rows = []
        for e, se in zip(self.estimates, ses, strict=True):
            se = float(se)
            rows.append(
                {
                    "outcome": e.outcome,
                    "horizon_months": int(e.horizon),
                    "measure": e.measure,
                    "subgroup": e.subgroup,
                    "estimator": e.estimator,
                    "estimate": float(e.estimate),
                    "std_error": se,
                    "ci_lower": float(e.estimate - z * se),
                    "ci_upper": float(e.estimate + z * se),
                    "p_value": normal_p_value(e.estimate, se),
                    "n_treated": int(e.n_treated),
                    "n_control": int(e.n_control),
                }
            )
        return pd.DataFrame(rows, columns=FRAME_COLUMNS)

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: one row per estimate (columns :data:`FRAME_COLUMNS`, as ``docs/tables.md``), intervals at
        the level 1 − :attr:`alpha`."""
        return self._frame.copy()

    def conf_int(self, alpha: float | None = None) -> pd.DataFrame:
        """Normal intervals ``estimate ± z·SE`` at level 1 − ``alpha`` (default: the results' :attr:`alpha`), with
        the columns that identify each estimate."""
        f = self._frame
        lo, hi = normal_interval(f["estimate"], f["std_error"], self.alpha if alpha is None else alpha)
        return f[_KEYS].assign(ci_lower=lo.to_numpy(), ci_upper=hi.to_numpy())

    def _select(self, estimator: str, subgroup: str) -> list[int]:
        sel = [i for i, e in enumerate(self.estimates) if e.estimator == estimator and e.subgroup == subgroup]
        if not sel:
            have = sorted({e.estimator for e in self.estimates})
            raise InputError(f"no estimates for estimator {estimator!r}, subgroup {subgroup!r}; have {have}")
        return sel

    def cov(self, estimator: str = "weighted_mean_diff", subgroup: str = "all") -> pd.DataFrame:
        """Joint covariance of one estimator's estimates across outcomes × horizons × measures.

        Cluster inference: ``V_jk = sqrt(c_j c_k) Σ_g S_gj S_gk`` with ``S_gj`` the sum of estimate j's
        influence contributions in cluster g and ``c_j`` its CR1 factor (the diagonal equals the reported SEs²).
        Bootstrap: the covariance of the replicates. Abadie–Imbens SEs have no joint form: the off-diagonal is 0.
        """
        pos = self._select(estimator, subgroup)
        sel = [self.estimates[i] for i in pos]
        ses, scales = self._inference
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
            c = np.sqrt(scales[pos])
            v = (s.T @ s) * np.outer(c, c)
        else:
            v = np.diag(ses[pos] ** 2)
        return pd.DataFrame(v, index=idx, columns=idx)

    def draws(
        self, estimator: str = "weighted_mean_diff", n: int = 1000, seed: int = 0, subgroup: str = "all"
    ) -> pd.DataFrame:
        """``n`` joint normal draws of the estimates (mean = estimates, covariance = :meth:`cov`), seeded."""
        v = self.cov(estimator, subgroup)
        mean = np.array([self.estimates[i].estimate for i in self._select(estimator, subgroup)])
        rng = np.random.default_rng(seed)
        x = rng.multivariate_normal(
            mean, v.to_numpy(), size=int(n), method="eigh", tol=psd_tolerance(v.to_numpy())
        )
        return pd.DataFrame(x, columns=v.columns)

    # -- text --------------------------------------------------------------------------------------------------
    def summary(self) -> str:
        """Readable text table of every estimate (statsmodels style)."""
        f = self.to_frame()
        lines = [
            "Effects on försörjning (finsam_effekt.estimation)",
            f"Estimand: {self.estimand}",
            f"Inference: {self._se_text()}",
            "=" * 108,
            f"{'outcome':<22}{'k':>3} {'measure':<10}{'subgroup':<18}{'estimator':<22}"
            f"{'estimate':>11}{'s.e.':>10}{_level(self.alpha) + ' CI':>22}",
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
        return f"cluster-robust CR1 by {self.cluster} ({self.n_clusters} clusters); normal {_level(self.alpha)} CI"

    def __repr__(self) -> str:
        return (
            f"EffectResults({len(self.estimates)} estimates, se={self.se_type!r}, cluster={self.cluster!r})"
        )


@dataclass(frozen=True, eq=False)
class EventStudyResults:
    """Monthly effects around the start (event study) with a joint pre-trend test.

    ``table``: ``rel_month``, ``estimate``, ``std_error``, ``ci_lower``, ``ci_upper`` (level 1 − ``alpha``),
    ``p_value`` (the reference month has estimate 0 and no SE). ``pretrend_wald``/``pretrend_df``/``pretrend_p``:
    Wald test that every lead (rel_month < reference) is zero, on the clustered covariance ``cov``.
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
    alpha: float = 0.05

    def to_frame(self) -> pd.DataFrame:
        """The event-study table with the outcome name."""
        return self.table.assign(outcome=self.outcome)[
            ["outcome", "rel_month", "estimate", "std_error", "ci_lower", "ci_upper", "p_value"]
        ]

    def conf_int(self, alpha: float | None = None) -> pd.DataFrame:
        """``rel_month``, ``ci_lower``, ``ci_upper`` at level 1 − ``alpha`` (default: the stored :attr:`alpha`)."""
        t = self.table
        lo, hi = normal_interval(t["estimate"], t["std_error"], self.alpha if alpha is None else alpha)
        return pd.DataFrame({"rel_month": t["rel_month"], "ci_lower": lo, "ci_upper": hi})

    def summary(self) -> str:
        """Readable text: coefficients by month relative to the start and the pre-trend test."""
        lines = [
            f"Event study: {self.outcome} (treated − matched controls, relative to month {self.reference})",
            f"PanelOLS, unit and calendar-month effects, SE clustered by {self.cluster}; "
            f"{self.n_units} units, {self.n_obs} unit-months",
            f"{'rel_month':>9}{'estimate':>12}{'s.e.':>10}{_level(self.alpha) + ' CI':>24}",
        ]
        for r in self.table.itertuples(index=False):
            ci = "" if not np.isfinite(r.std_error) else f"[{r.ci_lower:.4g}, {r.ci_upper:.4g}]"
            lines.append(f"{r.rel_month:>9}{r.estimate:>12.4g}{r.std_error:>10.3g}{ci:>24}")
        lines.append(
            f"Pre-trend test (all leads = 0): Wald = {self.pretrend_wald:.3f}, df = {self.pretrend_df}, "
            f"p = {self.pretrend_p:.4f}"
        )
        return "\n".join(lines)


@dataclass(frozen=True, eq=False)
class SensitivityResults:
    """Sensitivity table: Rosenbaum bounds, E-values, placebo outcomes and placebo start dates.

    ``to_frame()`` columns (:data:`SENSITIVITY_COLUMNS`): ``check`` (``rosenbaum_mcnemar``,
    ``rosenbaum_wilcoxon``, ``e_value``, ``placebo_outcome``, ``placebo_start``), ``outcome``, ``horizon_months``
    (for placebo outcomes: the month relative to u, −6 or −12), ``measure``, ``statistic``, ``value``,
    ``n_treated``, ``n_control``, ``method`` (how the row was computed, e.g. ``wilcoxon_drop_zeros`` or
    ``wilcoxon_pratt``: ``sensitivity.ROSENBAUM_METHODS``). ``alpha`` is the level of the critical Γ and of the
    risk-ratio interval; ``rosenbaum_zeros`` how the signed-rank bound handled zero differences (``drop``, as
    rbounds, or ``pratt``, as DOS2).
    """

    table: pd.DataFrame
    alpha: float
    notes: tuple[str, ...] = ()
    rosenbaum_zeros: str = "drop"

    def to_frame(self) -> pd.DataFrame:
        """The tidy sensitivity table."""
        return self.table.copy()

    def conf_int(self, alpha: float | None = None) -> pd.DataFrame:
        """Normal intervals of the placebo estimates (the checks with an ``estimate`` and a ``std_error``) at level
        1 − ``alpha`` (default: the stored :attr:`alpha`)."""
        keys = ["check", "outcome", "horizon_months", "measure"]
        t = self.table[self.table["statistic"].isin(["estimate", "std_error"])]
        wide = t.pivot_table(index=keys, columns="statistic", values="value", aggfunc="first", sort=False)
        if wide.empty:
            return pd.DataFrame(columns=[*keys, "estimate", "ci_lower", "ci_upper"])
        lo, hi = normal_interval(wide["estimate"], wide["std_error"], self.alpha if alpha is None else alpha)
        return wide[["estimate"]].assign(ci_lower=lo, ci_upper=hi).reset_index()

    def summary(self) -> str:
        """Readable text: one line per check × outcome × horizon."""
        lines = [
            f"Sensitivity analysis (alpha = {self.alpha}; signed-rank zeros: {self.rosenbaum_zeros})",
            f"{'check':<20}{'outcome':<22}{'k':>4} {'measure':<11}{'statistic':<18}{'value':>12}",
        ]
        for r in self.table.itertuples(index=False):
            lines.append(
                f"{r.check:<20}{r.outcome:<22}{r.horizon_months:>4} {r.measure:<11}{r.statistic:<18}{r.value:>12.4g}"
            )
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)


def _n_distinct(codes: np.ndarray) -> int:
    """The number of distinct values of ``codes`` (cluster codes: by counting when they are small non-negative
    integers, as they are, instead of sorting them)."""
    codes = np.asarray(codes)
    if codes.dtype.kind in "iu" and len(codes) and 0 <= codes.min() and codes.max() < 4 * len(codes) + 1024:
        return int(np.count_nonzero(np.bincount(codes)))
    return len(np.unique(codes))
