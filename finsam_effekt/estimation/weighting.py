"""Estimators on the unmatched cohort: inverse probability weighting (IPW) and the doubly robust AIPW.

Sant'Anna & Zhao (2020), ``drdid_panel`` / ``std_ipw_did_panel`` with the outcome in place of ΔY: p̂ from a
logit of D on (1, X) (``design.fit_logit``, X by ``design.design_matrix``'s rules); ω₁ = w D,
ω₀ = w p̂(1−D)/(1−p̂); m̂₀(X) from WLS of Y on (1, X) among controls (AIPW; m̂₀ = 0 for IPW);

    ATT = Σ ω₁ (Y − m̂₀) / Σ ω₁ − Σ ω₀ (Y − m̂₀) / Σ ω₀

(Hájek-normalised weights). The influence function includes the estimation effect of the logit and, for AIPW,
of the outcome regression (their eqs. 3.4 and A.1). :func:`dr_att` is the formula as written; the estimators use
:func:`dr_fit` + :func:`dr_att_from_fit`, which compute the outcome-free part once per sample and set of kept
rows (shared by every outcome, horizon and measure and by both estimators) and agree with :func:`dr_att` to
rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..design import fit_logit
from ..errors import InputError
from .results import Estimate
from .sample import Cell, FitContext, Fitted, Sample, SampleDesign, fit_cells

#: Propensity scores are capped below 1 so that control weights p̂/(1−p̂) stay finite.
PS_MAX = 1 - 1e-6


def _propensity(xi: np.ndarray, d: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, bool]:
    """p̂ = P(D = 1 | X) from the weighted logit on the design ``xi`` (with intercept), capped at :data:`PS_MAX`;
    and whether the logit converged."""
    fit = fit_logit(pd.DataFrame(xi), d, weights=w)
    return np.minimum(fit.fitted, PS_MAX), fit.converged


def dr_att(
    y: np.ndarray, d: np.ndarray, x: np.ndarray, w: np.ndarray, outcome_model: bool
) -> tuple[float, np.ndarray]:
    """IPW (``outcome_model=False``) or doubly robust (AIPW) ATT with influence contributions IF_i / n.

    ``x`` is the covariate design without intercept (e.g. ``design_matrix(...).to_numpy()``); formulas in the
    module docstring.
    """
    n = len(y)
    xi = np.column_stack([np.ones(n), x])
    ps, _ = _propensity(xi, d, w)
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


@dataclass(frozen=True, eq=False)
class DRFit:
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


def dr_fit(d: np.ndarray, x: np.ndarray, w: np.ndarray) -> DRFit:
    """The outcome-free part of :func:`dr_att` (same formulas, computed once)."""
    n = len(d)
    xi = np.column_stack([np.ones(n), x])
    ps, converged = _propensity(xi, d, w)
    w1 = w * d
    w0 = w * ps * (1 - d) / (1 - ps)
    wo = w * (1 - d)
    hess = xi.T @ (xi * (w * ps * (1 - ps))[:, None]) / n
    xtx = xi.T @ (xi * wo[:, None])
    xtx_pinv = np.linalg.pinv(xtx / n)
    return DRFit(
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


def dr_att_from_fit(f: DRFit, y: np.ndarray, outcome_model: bool) -> tuple[float, np.ndarray]:
    """:func:`dr_att` from a :class:`DRFit`: only O(n·p) matrix–vector products per outcome.

    The n×p products of :func:`dr_att` are re-associated, e.g. ``(s x_i')(H⁺ g)`` instead of ``(s x_i' H⁺) g``;
    the results agree to rounding (the tests pin them to 1e-10).
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


def _dr_bootstrap(
    y: np.ndarray, d: np.ndarray, x: np.ndarray, w: np.ndarray, cl: np.ndarray, counts: np.ndarray, aipw: bool
) -> np.ndarray:
    """Cluster-bootstrap replicates by refitting :func:`dr_att` with the drawn clusters' counts as weights (rows
    of clusters not drawn get weight 0, which the weighted logit and WLS handle directly)."""
    reps = np.full(counts.shape[0], np.nan)
    for b in range(counts.shape[0]):
        mult = counts[b, cl]
        dd = d[mult > 0]
        if dd.min() == dd.max():
            continue
        try:
            reps[b] = dr_att(y, d, x, w * mult, aipw)[0]
        except (np.linalg.LinAlgError, InputError):  # a replicate the logit cannot fit: left out of the SE
            continue
    return reps


def _dr_cell(cell: Cell, context: FitContext, estimator: str) -> Estimate | None:
    """IPW/AIPW of one cell. ``cell.cache`` (the subgroup's, shared by ``ipw`` and ``aipw``) keeps the coded
    design of the subgroup's rows and one :class:`DRFit` per set of kept rows: rows are kept per outcome
    (censoring), so the outcomes of one horizon share a fit."""
    opts = context.options
    cache = cell.cache
    y, w = cell.values(), cell.weights
    d = cell.rows[opts.treatment].to_numpy(dtype=float)
    ok = np.isfinite(y) & (w > 0)
    if "design" not in cache:
        cache["design"] = SampleDesign(cell.rows, opts.covariates)
    all_ok = bool(ok.all())
    key = ("dr", ok.tobytes(), w.tobytes())
    hit = cache.get(key)
    if hit is None:
        dd, ww, cc = (d, w, cell.clusters) if all_ok else (d[ok], w[ok], cell.clusters[ok])
        n_t, n_c = int((dd == 1).sum()), int((dd == 0).sum())
        fit = None
        if n_t > 0 and n_c > 0:
            fit = dr_fit(dd, cache["design"].rows(None if all_ok else ok), ww)
            if not fit.converged:
                cache["dr_not_converged"] = cache.get("dr_not_converged", 0) + 1
        hit = cache[key] = (fit, cc, n_t, n_c)
    fit, cc, n_t, n_c = hit
    if fit is None:
        return None
    yy = y if all_ok else y[ok]
    aipw = estimator == "aipw"
    att, psi = dr_att_from_fit(fit, yy, aipw)
    boot = None
    if context.boot_counts is not None:
        dd = d if all_ok else d[ok]
        ww = w if all_ok else w[ok]
        boot = _dr_bootstrap(yy, dd, fit.x, ww, cc, context.boot_counts, aipw)
    return Estimate(
        **cell.labels(),
        estimator=estimator,
        estimate=att,
        n_treated=n_t,
        n_control=n_c,
        rows=cc,
        psi=psi,
        boot=boot,
    )


def _fit_dr(sample: Sample, context: FitContext, estimator: str) -> Fitted:
    fitted = fit_cells(sample, context, estimator, lambda cell: _dr_cell(cell, context, estimator))
    notes = list(fitted.notes)
    for sg in sample.subgroups:
        cache = sample.scratch.get(sg.name, {})
        n_bad = cache.get("dr_not_converged", 0)
        if n_bad and not cache.get("dr_noted"):
            cache["dr_noted"] = True  # ipw and aipw share the fits: one note per subgroup
            notes.append(
                f"ipw/aipw: the propensity logit did not converge in {sg.name} ({n_bad} of its samples; "
                "separation — few treated or controls for the covariates — makes those estimates unreliable)"
            )
    return Fitted(fitted.estimates, tuple(notes))


def fit_ipw(sample: Sample, context: FitContext) -> Fitted:
    """``ipw`` on the unmatched cohort (Hájek-normalised ATT weights p̂/(1−p̂) for the controls)."""
    return _fit_dr(sample, context, "ipw")


def fit_aipw(sample: Sample, context: FitContext) -> Fitted:
    """``aipw`` on the unmatched cohort (IPW of the residuals of the controls' outcome regression)."""
    return _fit_dr(sample, context, "aipw")
