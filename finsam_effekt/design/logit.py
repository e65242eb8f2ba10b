"""The one logistic regression (:func:`fit_logit`): Newton–Raphson with weights and fixed effects, a ridge fallback
under separation, and a large-data path (row blocks, one rank-check pass, a warm start from a case-control
subsample) for designs over 10⁶ rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from threadpoolctl import threadpool_limits

from .. import progress
from ..errors import InputError
from .matrix import CompactDesign, level_codes


def _unit_columns(x, chunk: int = 500_000) -> np.ndarray:
    """Indices of the columns of ``x`` (array or :class:`CompactDesign`) that are 1 in every row."""
    k = x.shape[1]
    ones = np.ones(k, bool)
    for s in range(0, len(x), chunk):
        ones &= (x[s : s + chunk] == 1.0).all(axis=0)
    return np.flatnonzero(ones) if len(x) else np.array([], dtype=int)


@dataclass(frozen=True)
class LogitFit:
    """A fitted logistic regression ``logit P(d = 1 | x) = x'β`` (see :func:`fit_logit`).

    Attributes
    ----------
    params : coefficients by design column (fixed effects as ``{name}={level}``, first level the reference).
    linear_predictor : ``x'β`` per row.
    converged : whether Newton–Raphson converged; False when the fallback fit (separation) was used.
    """

    params: pd.Series
    linear_predictor: np.ndarray
    converged: bool

    @property
    def fitted(self) -> np.ndarray:
        """``P(d = 1 | x) = 1 / (1 + exp(−x'β))`` per row."""
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-self.linear_predictor))


def fit_logit(
    x: pd.DataFrame | CompactDesign,
    d: np.ndarray,
    *,
    weights: np.ndarray | None = None,
    fixed_effects: pd.Series | None = None,
    maxiter: int = 100,
    tol: float = 1e-8,
    chunk: int = 500_000,
    large_rows: int | None = None,
) -> LogitFit:
    """Maximum-likelihood logistic regression by Newton–Raphson, with optional weights and fixed effects.

    Maximises ``Σ w_i [d_i η_i − log(1 + exp η_i)]`` with ``η = Xβ + E γ``, where ``E`` holds one indicator per
    level of ``fixed_effects`` but the first (sorted; the reference). Start β = 0, full Newton steps, stop when
    max |Δβ| ≤ ``tol`` — the iterations of statsmodels ``Logit.fit(method="newton")`` (with ``w = 1``), hence
    the same estimate. The fixed-effect block is never built as a dense n × T matrix: with W = diag(w p(1 − p))
    the Hessian blocks are X'WX, X'WE (per-level sums of W·X) and the diagonal E'WE, and the step solves them by
    the Schur complement ``S = X'WX − X'WE (E'WE)⁻¹ E'WX`` (Greene 2018, §17.3; Hastie, Tibshirani & Friedman
    2009, §4.4.1). ``X`` is processed in row chunks, so memory stays at a few copies of ``X``.

    When the iterations fail (non-finite values, or no convergence in ``maxiter`` steps — typically separation:
    a covariate level or a month with only treated or only controls, so that some β runs off to ±∞), the model
    is fitted again with a small ridge penalty ``Σ λ_j β_j² / 2`` on every coefficient but the intercept, scaled
    to the column and the outcome's rate (``λ_j = λ p̄(1 − p̄) Σ_i x_ij²`` with ``p̄`` the (weighted) share of
    ``d = 1``: a fraction λ = :data:`RIDGE_PENALTY` of the coefficient's information at the null model, so the
    penalty acts on the standardised coefficient, does not depend on the unit of a covariate and stays small
    when treatment is rare), by Newton steps with step halving (a strictly
    concave objective with a unique finite maximum; Le Cessie & van Houwelingen 1992), and the result is marked
    ``converged=False``; callers report that. Columns of ``x`` that are linear combinations of
    earlier columns (e.g. kommun indicators inside förbund indicators) are left out of the fit and get a NaN
    coefficient, as R's ``glm`` reports aliased coefficients as NA; the fitted values are unchanged by this.

    Above ``large_rows`` rows (default :data:`WARM_START_ROWS`, 10⁶: a national pool of candidate person-months)
    the same iterations run on fewer and cheaper passes over the design, since each pass reads all of it: the
    rank check and the unit (intercept) column come from one pass (:func:`_gram_pass`); the Newton iterations
    start from a fit on a case-control subsample (:func:`subsample_start`; if there is none, from the null model,
    :func:`null_model_start`) and run over the rows in cache-sized blocks with the columns in storage order
    (:func:`_newton_blocks`). The stopping rule is the same, so the estimate agrees with the small-data path's to
    the tolerance; the fallbacks (a start at 0, then the ridge) are the same too.

    Parameters
    ----------
    x : design matrix (usually from :func:`design_matrix` with ``intercept=True``), or a :class:`CompactDesign`
        (:func:`compact_design_matrix`) for large data: the same fit in half the memory.
    d : 0/1 outcome per row.
    weights : non-negative case weights (default 1).
    fixed_effects : a level per row (e.g. the calendar month), entered as indicators.
    chunk : rows per pass over the design (memory against speed; the estimate is the same to rounding).
    large_rows : rows above which the large-data path is taken (default :data:`WARM_START_ROWS`).
    """
    names = list(x.columns)
    xm = x if isinstance(x, CompactDesign) else x.to_numpy(dtype=float)
    d = np.asarray(d, dtype=float)
    w = None if weights is None else np.asarray(weights, dtype=float)
    if fixed_effects is not None:
        fe_codes, fe_levels = level_codes(pd.Series(fixed_effects).reset_index(drop=True))
        code = fe_codes.astype(np.int64) - 1  # −1 = first (reference) level
        fe_names = [f"{fixed_effects.name}={c}" for c in fe_levels[1:]]
    else:
        code = np.full(len(d), -1, dtype=np.int64)
        fe_names = []
    n_lev = len(fe_names)
    if len(d) > (WARM_START_ROWS if large_rows is None else large_rows):
        # one BLAS thread: the products per block are small, and on a shared machine a second thread waiting for a
        # busy core made a pass 15 times slower (73 s against 5 s on 10⁷ rows)
        with threadpool_limits(limits=1):
            cols, res, converged = _fit(xm, d, w, code, n_lev, maxiter, tol, chunk, large=True)
    else:
        cols, res, converged = _fit(xm, d, w, code, n_lev, maxiter, tol, chunk, large=False)
    beta, lp = res
    params = np.full(len(names) + n_lev, np.nan)
    params[np.r_[cols, np.arange(len(names), len(names) + n_lev)].astype(np.int64)] = beta
    return LogitFit(pd.Series(params, index=names + fe_names), lp, converged)


def _fit(
    xm: np.ndarray | CompactDesign,
    d: np.ndarray,
    w: np.ndarray | None,
    code: np.ndarray,
    n_lev: int,
    maxiter: int,
    tol: float,
    chunk: int,
    *,
    large: bool,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], bool]:
    """The fit of :func:`fit_logit`: ``(cols, (β, linear predictor), converged)``, ``cols`` the position in ``xm``
    of each column fitted (the linearly independent ones), then the fixed effects."""
    if large:
        block = min(chunk, BLOCK_ROWS)
        xk, cols, const = large_design(xm, block)
        start = subsample_start(xk, d, w, code, n_lev, const, block=block)
        if start is None:
            start = null_model_start(xk, d, w, code, n_lev, const, min_rows=0)
        res = _newton_blocks(xk, d, w, code, n_lev, maxiter, tol, start=start, block=block)
    else:
        keep = independent_columns(xm, chunk=chunk)
        if keep.all():
            xk = xm
        else:
            xk = xm.select(keep) if isinstance(xm, CompactDesign) else xm[:, keep]
        cols = np.flatnonzero(keep)
        const = _unit_columns(xk, chunk=chunk)
        start = null_model_start(xk, d, w, code, n_lev, const)
        res = _newton(xk, d, w, code, n_lev, maxiter, tol, penalty=0.0, free=const, start=start, chunk=chunk)
    if res is None and start is not None:  # the fit from β = 0, as without a warm start, before the ridge
        res = _newton(xk, d, w, code, n_lev, maxiter, tol, penalty=0.0, free=const, chunk=chunk)
    converged = res is not None
    if res is None:
        # the penalty is a fixed fraction of each coefficient's information at the null model, Σ p̄(1 − p̄) x_ij²:
        # scaled by Σ x_ij² alone it would outweigh the information of every coefficient when treatment is rare
        # (p̄ = 0.3 % in a cohort of candidate person-months) and shrink the whole score, not only the separated
        # terms (age balance after matching went from 0.1 to 0.4 SD in small worlds)
        pbar = float(np.average(d, weights=w))
        res = _newton(
            xk, d, w, code, n_lev, max(maxiter, 200), tol,
            penalty=RIDGE_PENALTY * pbar * (1.0 - pbar), free=const, chunk=chunk,
        )  # fmt: skip
    if res is None:  # not even the penalised fit: the data cannot identify a logit (e.g. all rows one class)
        raise InputError(
            "logistic regression failed even with a ridge penalty; check that both outcome classes occur and "
            "that the covariates are finite"
        )
    return cols, res, converged


def independent_columns(x, tol: float = 1e-9, chunk: int = 500_000) -> np.ndarray:
    """Boolean mask of the columns of ``x`` that are not linear combinations of earlier columns.

    Gram–Schmidt on the cross-product ``G = X'X`` in column order: column j is kept when its residual sum of
    squares after projection on the kept earlier columns, ``G_jj − G_jS G_SS⁻¹ G_Sj``, exceeds ``tol · G_jj``
    (the first of each dependent set stays, as R's ``lm``/``glm`` keep it).
    """
    k = x.shape[1]
    g = np.zeros((k, k))
    for s in range(0, len(x), chunk):
        xc = x[s : s + chunk]
        g += xc.T @ xc
    return _independent_from_gram(g, tol)


def _independent_from_gram(g: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """The column choice of :func:`independent_columns` from the cross-product ``G = X'X`` itself."""
    k = g.shape[0]
    keep = np.zeros(k, bool)
    for j in range(k):
        sel = np.flatnonzero(keep)
        resid = g[j, j]
        if sel.size:
            coef = np.linalg.solve(g[np.ix_(sel, sel)], g[sel, j])
            resid = g[j, j] - g[j, sel] @ coef
        keep[j] = g[j, j] > 0 and resid > tol * g[j, j]
    return keep


#: Rows above which :func:`fit_logit` takes its large-data path: Newton started from a subsample's fit
#: (:func:`subsample_start`) or the null model's estimate (:func:`null_model_start`), not at 0, in row blocks.
WARM_START_ROWS = 1_000_000


def null_model_start(
    x, d, w, code, n_lev, free, *, min_rows: int | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """Starting values for the Newton iterations on more than :data:`WARM_START_ROWS` rows when
    :func:`subsample_start` gives none, and for the subsample's own fit: the maximum-likelihood
    estimate of the model with the intercept and the fixed effects only, which has a closed form — the logit of
    the (weighted) share of ``d = 1`` per level, ``η_l = log(p̄_l / (1 − p̄_l))``: intercept ``η_ref``, level
    effects ``η_l − η_ref`` (shares clipped to ``[½/n_l, 1 − ½/n_l]``), every other coefficient 0.

    Each Newton iteration passes over the whole design (η, score and X'WX by chunk), and on a national pool of 10⁷
    candidate rows those passes are most of the run's time. Treatment is rare among candidate person-months
    (p̄ ≈ 0.5 %), so from β = 0 Newton spends most of its 12–14 iterations walking the intercept and the month
    effects down to log(p̄) about one unit a step; from the null model it only has the covariates' effects left.
    The maximum found is the same (the log-likelihood is concave; the stopping rule is unchanged), so the estimate
    agrees with a start at 0 to the tolerance. None (start at 0, as statsmodels) for smaller data (at most
    ``min_rows``, default :data:`WARM_START_ROWS`) or a design without an intercept column."""
    n = len(d)
    if n <= (WARM_START_ROWS if min_rows is None else min_rows) or len(free) != 1:
        return None
    wt = np.ones(n) if w is None else w
    lev = code + 1  # 0 = the reference level
    tot = np.bincount(lev, weights=wt, minlength=n_lev + 1)
    hit = np.bincount(lev, weights=wt * d, minlength=n_lev + 1)
    cnt = np.bincount(lev, minlength=n_lev + 1)
    if (cnt == 0).any() or (tot <= 0).any():
        return None
    share = np.clip(hit / tot, 0.5 / cnt, 1 - 0.5 / cnt)
    eta = np.log(share / (1 - share))
    a = np.zeros(x.shape[1])
    a[free[0]] = eta[0]
    return a, eta[1:] - eta[0]


#: Relative ridge penalty of the fallback fit under separation (see :func:`fit_logit`).
RIDGE_PENALTY = 1e-3


def _newton(
    x: np.ndarray,
    t: np.ndarray,
    w: np.ndarray | None,
    code: np.ndarray,
    n_lev: int,
    maxiter: int,
    tol: float,
    *,
    penalty: float,
    free: np.ndarray,
    chunk: int = 500_000,
    start: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Newton–Raphson for :func:`fit_logit`: ``(β, linear predictor)``, or None when it fails or does not
    converge. ``penalty`` λ adds ``−λ β_j`` to the score and ``λ`` to the Hessian's diagonal for every
    coefficient but the columns ``free`` (the intercept). ``start``: the first (β, γ) (default 0)."""
    k = x.shape[1]
    a = np.zeros(k) if start is None else np.array(start[0], dtype=float)
    c = np.zeros(n_lev) if start is None else np.array(start[1], dtype=float)
    sel = code >= 0
    cs = code[sel]
    n = len(t)
    lam_a = np.zeros(k)
    lam_c = np.zeros(n_lev)
    if penalty:
        for s in range(0, n, chunk):
            lam_a += (x[s : s + chunk] ** 2).sum(axis=0)
        lam_a *= penalty
        lam_a[free] = 0.0
        if n_lev:
            lam_c = penalty * np.bincount(cs, minlength=n_lev).astype(float)

    def eta_of() -> np.ndarray:
        eta = np.empty(n)
        for s in range(0, n, chunk):
            eta[s : s + chunk] = x[s : s + chunk] @ a
        if n_lev:
            eta[sel] += c[cs]
        return eta

    tracker = progress.track("propensity model, Newton iteration") if n > chunk else None
    for _ in range(maxiter):
        if tracker is not None:
            tracker.step()
        # one pass over the design per iteration: each chunk's η, p, score and Hessian blocks from one read of it
        # (the chunk's float64 copy is what costs on a compact 10⁷-row design)
        g_a = -lam_a * a
        h_aa = np.diag(lam_a)
        h_ac = np.zeros((k, n_lev))
        g_c = np.zeros(n_lev)
        h_cc = np.zeros(n_lev)
        for s in range(0, n, chunk):
            xc = x[s : s + chunk]
            eta = xc @ a
            m = sel[s : s + chunk]
            cc = code[s : s + chunk][m]
            if n_lev:
                eta[m] += c[cc]
            with np.errstate(over="ignore"):  # exp(−η) = ∞ under separation means p = 0: no harm
                p = 1.0 / (1.0 + np.exp(-eta))
            r = t[s : s + chunk] - p
            wgt = p * (1.0 - p)
            if w is not None:
                r = r * w[s : s + chunk]
                wgt = wgt * w[s : s + chunk]
            del p, eta
            xw = xc * wgt[:, None]
            g_a += xc.T @ r
            h_aa += xc.T @ xw
            if n_lev:
                g_c += np.bincount(cc, weights=r[m], minlength=n_lev)
                h_cc += np.bincount(cc, weights=wgt[m], minlength=n_lev)
                if n > chunk:  # X'WE: E the chunk's level indicators (sparse)
                    rows = np.flatnonzero(m)
                    e = sparse.csr_matrix((np.ones(len(rows)), (cc, rows)), shape=(n_lev, len(xc)))
                    h_ac += (e @ xw).T
                else:  # X'WE: per-level sums of w·x
                    xs, ws = xc[m], wgt[m]
                    for j in range(k):
                        h_ac[j] = np.bincount(cc, weights=xs[:, j] * ws, minlength=n_lev)
                    del xs, ws
        if n_lev:
            g_c -= lam_c * c
            h_cc += lam_c
        step = _newton_step(g_a, h_aa, h_ac, g_c, h_cc, n_lev)
        if step is None:
            return None
        step_a, step_c = step
        if penalty:  # step halving: the penalised log-likelihood must not fall (Newton alone can overshoot)
            step_a, step_c = _halve(eta_of, x, t, w, code, a, c, step_a, step_c, lam_a, lam_c, n_lev, chunk)
        a += step_a
        if n_lev:
            c += step_c
        if max(np.abs(step_a).max(initial=0.0), np.abs(step_c).max(initial=0.0) if n_lev else 0.0) <= tol:
            break
    else:
        return None
    return np.concatenate([a, c]), eta_of()


def _newton_step(
    g_a: np.ndarray, h_aa: np.ndarray, h_ac: np.ndarray, g_c: np.ndarray, h_cc: np.ndarray, n_lev: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """The Newton step ``(Δβ, Δγ)`` from the score ``(g_a, g_c)`` and the Hessian blocks X'WX, X'WE and the
    diagonal E'WE: ``Δβ = S⁻¹ (g_a − X'WE (E'WE)⁻¹ g_c)`` with the Schur complement ``S`` (:func:`fit_logit`),
    ``Δγ = (E'WE)⁻¹ (g_c − E'WX Δβ)``. None when the system is singular or the step not finite (separation)."""
    if n_lev:
        if not (np.all(np.isfinite(h_cc)) and np.all(h_cc > 1e-12 * max(1.0, h_cc.max()))):
            return None
        q = h_ac / h_cc
        schur = h_aa - q @ h_ac.T
        rhs = g_a - q @ g_c
    else:
        schur, rhs = h_aa, g_a
    try:
        step_a = np.linalg.solve(schur, rhs)
    except np.linalg.LinAlgError:  # weights p(1 − p) gone to 0: separation
        return None
    step_c = (g_c - h_ac.T @ step_a) / h_cc if n_lev else np.zeros(0)
    if not (np.all(np.isfinite(step_a)) and np.all(np.isfinite(step_c))):
        return None
    return step_a, step_c


def _penalised_loglik(eta: np.ndarray, t: np.ndarray, w: np.ndarray | None, a, c, lam_a, lam_c) -> float:
    ll = t * eta - np.logaddexp(0.0, eta)
    total = float(np.sum(ll if w is None else w * ll))
    return total - 0.5 * float(lam_a @ (a * a)) - 0.5 * float(lam_c @ (c * c))


def _halve(eta_of, x, t, w, code, a, c, step_a, step_c, lam_a, lam_c, n_lev, chunk=500_000):
    """Shorten a Newton step until the penalised log-likelihood does not fall (at most 30 halvings)."""
    base = _penalised_loglik(eta_of(), t, w, a, c, lam_a, lam_c)
    sel = code >= 0
    for _ in range(30):
        a_new = a + step_a
        c_new = c + step_c if n_lev else c
        eta = np.empty(len(t))
        for s in range(0, len(t), chunk):
            eta[s : s + chunk] = x[s : s + chunk] @ a_new
        if n_lev:
            eta[sel] += c_new[code[sel]]
        if _penalised_loglik(eta, t, w, a_new, c_new, lam_a, lam_c) >= base - 1e-12 * abs(base):
            break
        step_a, step_c = step_a / 2, step_c / 2
    return step_a, step_c


# -- the large-data path of fit_logit ---------------------------------------------------------------------------------

#: Rows per block in the passes of the large-data path: a block of 71 float64 columns (2.3 MB) and its weighted
#: copy stay in the processor's cache between the conversion from compact storage, η, the weighting and X'WX, where
#: blocks of 500 000 rows (280 MB) go through memory at every step (a pass over a 10⁷ × 71 design: 3.5 s against
#: 18 s on one core).
BLOCK_ROWS = 4096

#: Rows of the case-control subsample :func:`subsample_start` fits: every row with ``d = 1`` and controls up to
#: this many rows in all.
SUBSAMPLE_ROWS = 500_000

#: Seed of the subsample's draw. The start values depend on it, the estimate does not (same stopping rule).
SUBSAMPLE_SEED = 20240101

#: Stopping rule of the subsample's fit: its estimate differs from the full data's by sampling error anyway.
SUBSAMPLE_TOL = 1e-6

#: Iterations of the subsample's fit before it gives up (separation in the subsample: start from the null model).
SUBSAMPLE_MAXITER = 30


def _rows(x, start: int, stop: int, buf: np.ndarray | None) -> np.ndarray:
    """Rows ``start:stop`` of ``x`` (array or :class:`CompactDesign`, then read into ``buf``) as float64."""
    if isinstance(x, CompactDesign):
        return x.read(start, stop, out=buf)
    return x[start:stop]


def _buffer(x, block: int) -> np.ndarray | None:
    """The float64 buffer :func:`_rows` reads a :class:`CompactDesign`'s blocks into (None for an array)."""
    return np.empty((min(block, len(x)), x.shape[1])) if isinstance(x, CompactDesign) else None


def _gram_pass(x, block: int) -> tuple[np.ndarray, np.ndarray]:
    """``X'X`` and the mask of the columns that are 1 in every row, from one pass over ``x``: what
    :func:`independent_columns` and :func:`_unit_columns` compute in a pass each."""
    n, k = x.shape
    g = np.zeros((k, k))
    unit = np.full(k, n > 0)
    buf = _buffer(x, block)
    for s in range(0, n, block):
        xc = _rows(x, s, min(s + block, n), buf)
        g += xc.T @ xc
        if unit.any():
            unit[unit] = (xc[:, unit] == 1.0).all(axis=0)
    return g, unit


def large_design(x, block: int) -> tuple[np.ndarray | CompactDesign, np.ndarray, np.ndarray]:
    """The design the large-data path fits: ``(xk, cols, const)`` — the columns of ``x`` that
    :func:`independent_columns` keeps, a :class:`CompactDesign`'s in storage order (:meth:`CompactDesign.blocked`);
    ``cols``, the position in ``x`` of each column of ``xk``; ``const``, the columns of ``xk`` that are 1 in every
    row. One pass (:func:`_gram_pass`); the rank check runs on ``X'X`` in ``x``'s own column order, so the same
    columns are kept as by :func:`independent_columns` (the first of each dependent set)."""
    if isinstance(x, CompactDesign):
        xb, order = x.blocked()
    else:
        xb, order = x, np.arange(x.shape[1])
    g, unit = _gram_pass(xb, block)
    back = np.argsort(order)  # X'X in x's column order: G[i, j] = G_b[back[i], back[j]]
    keep = _independent_from_gram(g[np.ix_(back, back)])[order]
    if not keep.all():
        xb = xb.select(keep).compacted() if isinstance(xb, CompactDesign) else xb[:, keep]
    return xb, order[keep], np.flatnonzero(unit[keep])


def subsample_start(
    x, d, w, code, n_lev, free, *, rows: int | None = None, block: int = BLOCK_ROWS
) -> tuple[np.ndarray, np.ndarray] | None:
    """Starting values for the Newton iterations on a large design: the logit fitted on a case-control subsample
    — every row with ``d = 1`` and the rows with ``d = 0`` drawn independently with probability ``r`` (seeded,
    :data:`SUBSAMPLE_SEED`) so that about ``rows`` rows (default :data:`SUBSAMPLE_ROWS`) are fitted — with the
    intercept moved by ``log r``.

    Sampling the controls at a rate ``r`` that does not depend on ``x`` multiplies the odds of ``d = 1`` among
    the sampled rows by ``1 / r`` and leaves the rest of the model unchanged: ``logit P(d = 1 | x, sampled) =
    x'β − log r`` (Prentice & Pyke 1979; King & Zeng 2001, "prior correction"). So the subsample's estimate with
    its intercept plus ``log r`` estimates the full data's β, with the sampling error of the left-out controls;
    the full iterations then start a fraction of a standard error from the maximum, where Newton needs 3 steps and
    a checking one instead of the 9 it takes from the null model (10⁷ candidate person-months, 500 000 rows in
    the subsample, whose fit costs less than one pass over the full design). With rare treatment (0.25 % of the
    candidate person-months) nearly all the information is in the treated rows, all of which the subsample keeps.

    The subsample is fitted from its null model (:func:`null_model_start`) to :data:`SUBSAMPLE_TOL`; columns that
    are dependent in the subsample (a rare level none of whose controls was drawn) start at 0. None — start from
    the null model instead — for a design without exactly one intercept column ``free``, an outcome that is not
    0/1, more treated rows than ``rows``, too few controls to gain from sampling (fewer than twice those drawn),
    or a subsample fit that fails (separation among the sampled rows)."""
    if len(free) != 1 or not np.isin(d, (0.0, 1.0)).all():
        return None
    treated = np.flatnonzero(d == 1.0)
    controls = np.flatnonzero(d == 0.0)
    want = (SUBSAMPLE_ROWS if rows is None else rows) - len(treated)
    if want < 1 or 2 * want > len(controls):
        return None
    rate = want / len(controls)
    drawn = controls[np.random.default_rng(SUBSAMPLE_SEED).random(len(controls)) < rate]
    sub = np.sort(np.concatenate([treated, drawn]))
    xs = x.take(sub) if isinstance(x, CompactDesign) else x[sub]
    d_s, code_s = d[sub], code[sub]
    w_s = None if w is None else w[sub]
    g, _unit = _gram_pass(xs, block)
    keep = _independent_from_gram(g)
    if not keep[free[0]]:
        return None
    if not keep.all():
        xs = xs.select(keep) if isinstance(xs, CompactDesign) else xs[:, keep]
    const = np.flatnonzero(np.flatnonzero(keep) == free[0])
    start = null_model_start(xs, d_s, w_s, code_s, n_lev, const, min_rows=0)
    res = _newton_blocks(
        xs, d_s, w_s, code_s, n_lev, SUBSAMPLE_MAXITER, SUBSAMPLE_TOL, start=start, block=block, track=False
    )
    if res is None:
        return None
    k = int(keep.sum())
    a = np.zeros(x.shape[1])
    a[keep] = res[0][:k]
    a[free[0]] += np.log(rate)
    return a, res[0][k:]


def _level_sums(lev: np.ndarray, v: np.ndarray, xw: np.ndarray, n_rows: int) -> np.ndarray:
    """``E'V X`` for one block: row ``l`` is the sum of ``v_i x_i`` over the block's rows at level ``l``
    (``lev``: level per row, 0 the reference). Rows sorted by level (the cohort is in month order) make most
    blocks a single level: one matrix–vector product; otherwise a sparse product with the level indicators."""
    out = np.zeros((n_rows, xw.shape[1]))
    if lev[0] == lev[-1] and (lev == lev[0]).all():
        out[lev[0]] = v @ xw
        return out
    e = sparse.csc_matrix((v, lev, np.arange(len(lev) + 1)), shape=(n_rows, len(lev)))
    return np.asarray(e @ xw)


def _newton_blocks(
    x: np.ndarray | CompactDesign,
    t: np.ndarray,
    w: np.ndarray | None,
    code: np.ndarray,
    n_lev: int,
    maxiter: int,
    tol: float,
    *,
    start: tuple[np.ndarray, np.ndarray] | None,
    block: int = BLOCK_ROWS,
    track: bool = True,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The unpenalised Newton–Raphson of :func:`_newton` for the large-data path: ``(β, linear predictor)`` or
    None when it fails or does not converge; the same steps (:func:`_newton_step`) and stopping rule.

    One pass per iteration, over blocks of ``block`` rows read into one reused buffer. With ``s = √(w p(1 − p))``
    per row, X'WX is the symmetric product ``(sX)'(sX)`` (half the multiplications of ``X'(WX)``) and X'WE the
    per-level sums of ``s · (sX)`` (:func:`_level_sums`).

    Once a step is at most ``√tol``, the next iteration keeps that step's Hessian and computes only the score (a
    chord step; Kelley 1995, ch. 5), which is most of the cost of a pass saved: the Hessian at the new point differs
    by O(‖Δ‖) ≤ √tol relative, so the step differs from the Newton step by O(√tol ‖step‖), and when the step
    meets the stopping rule (≤ ``tol``) the estimate is within O(√tol · tol) (≈ 10⁻¹² at ``tol`` = 10⁻⁸) of the
    one full Newton steps reach — the same estimate to the tolerance. On a 10⁷-row design this is the final,
    checking iteration, whose step is ~10⁻⁹."""
    n, k = x.shape
    a = np.zeros(k) if start is None else np.array(start[0], dtype=float)
    c = np.zeros(n_lev) if start is None else np.array(start[1], dtype=float)
    buf = _buffer(x, block)
    scaled = np.empty((min(block, n), k))
    tracker = progress.track("propensity model, Newton iteration") if track and n > block else None
    hessian = True  # compute the Hessian in this pass (else keep the last one: a chord step)
    for _ in range(maxiter):
        if tracker is not None:
            tracker.step()
        c_ext = np.r_[0.0, c]  # level effects with the reference level's 0 first
        g_a = np.zeros(k)
        g_e = np.zeros(n_lev + 1)
        if hessian:
            h_aa = np.zeros((k, k))
            h_e = np.zeros(n_lev + 1)
            h_ea = np.zeros((n_lev + 1, k))
        for s in range(0, n, block):
            e = min(s + block, n)
            xc = _rows(x, s, e, buf)
            lev = code[s:e] + 1
            eta = xc @ a
            if n_lev:
                eta += c_ext[lev]
            with np.errstate(over="ignore"):  # exp(−η) = ∞ under separation means p = 0: no harm
                p = 1.0 / (1.0 + np.exp(-eta))
            r = t[s:e] - p
            if w is not None:
                r *= w[s:e]
            g_a += r @ xc
            if n_lev:
                g_e += np.bincount(lev, weights=r, minlength=n_lev + 1)
            if not hessian:
                continue
            wgt = p * (1.0 - p)
            if w is not None:
                wgt *= w[s:e]
            sw = np.sqrt(wgt)
            xs = np.multiply(xc, sw[:, None], out=scaled[: e - s])
            h_aa += xs.T @ xs
            if n_lev:
                h_e += np.bincount(lev, weights=wgt, minlength=n_lev + 1)
                h_ea += _level_sums(lev, sw, xs, n_lev + 1)
        step = _newton_step(g_a, h_aa, h_ea[1:].T, g_e[1:], h_e[1:], n_lev)
        if step is None:
            return None
        step_a, step_c = step
        a += step_a
        if n_lev:
            c += step_c
        size = max(np.abs(step_a).max(initial=0.0), np.abs(step_c).max(initial=0.0))
        if size <= tol:
            break
        hessian = size > np.sqrt(tol)
    else:
        return None
    c_ext = np.r_[0.0, c]
    eta = np.empty(n)
    for s in range(0, n, block):
        e = min(s + block, n)
        eta[s:e] = _rows(x, s, e, buf) @ a
        if n_lev:
            eta[s:e] += c_ext[code[s:e] + 1]
    return np.concatenate([a, c]), eta


def case_control_draw(n_controls: int, n_cases: int, fit_rows: int, seed) -> tuple[np.ndarray, float]:
    """A case-control sample for a logit fitted on ``fit_rows`` rows: every one of the ``n_cases`` rows with
    d = 1 and each of the ``n_controls`` rows with d = 0 drawn with probability r = (fit_rows − n_cases) /
    n_controls (seeded by ``seed``). Returns (positions of the drawn controls among the controls, ascending; r).

    Such sampling on the outcome leaves a logit's slopes consistent and shifts its intercept by −log r (Prentice &
    Pyke 1979; King & Zeng 2001): the caller adds log r to the fitted intercept before scoring every row."""
    rate = (fit_rows - n_cases) / n_controls
    return np.flatnonzero(np.random.default_rng(seed).random(n_controls) < rate), rate
