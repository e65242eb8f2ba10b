"""The event study on the matched panel: monthly effects around the start and the joint pre-trend test.

:func:`event_study` fits the two-way fixed-effects regression of linearmodels ``PanelOLS`` on the outcome paths
(``panel.outcome_paths``) of the matched units, exactly, by Frisch–Waugh–Lovell (:func:`twoway_wls_cluster`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .. import months
from ..errors import InputError
from ..tables import text_codes
from .inference import normal_interval
from .results import EventStudyResults
from .sample import path_rows, require_columns


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
    alpha: float = 0.05,
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

    Computation (``engine="fwl"``, see :func:`twoway_wls_cluster`): the unit effects are absorbed by weighted
    within-unit demeaning and the calendar-month effects by partialling out the (few) month dummies in the
    normal equations (Frisch–Waugh–Lovell; Lovell 2008), so no n × (units + months) design is ever formed. The
    covariance is PanelOLS's ``cov_type="clustered"`` with its default ``debiased=True`` and effects counted:
    ``V = n/(n − k − (N + T − 1)) · (X̃'X̃)⁻¹ Σ_g (Σ_{i∈g} x̃_i ẽ_i)(…)' (X̃'X̃)⁻¹`` with X̃, ẽ the weighted two-way
    residualised regressors and residuals, N units, T months and k retained regressors; regressors absorbed by
    the effects (residual norm < 1e-5 of the original, as PanelOLS's ``drop_absorbed``) are dropped.

    Intervals: ``β_e ± z·SE`` with z = Φ⁻¹(1 − ``alpha``/2) (``inference.critical_value``).
    """
    if engine not in ("fwl", "linearmodels"):
        raise InputError(f"event_study engine must be 'fwl' or 'linearmodels', got {engine!r}")
    require_columns(paths, [*unit, "rel_month", "month", outcome, treatment, cluster], "outcome paths")
    cols = [*unit, "rel_month", "month", outcome, treatment, cluster, *([weights] if weights else [])]
    p = path_rows(paths, window, cols, outcome=outcome, weights=weights)
    n_obs = len(p)
    uid = unit_codes(p, list(unit))
    month_codes, month_text = pd.factorize(p["month"])
    tid = np.asarray(months.to_index(pd.Series(month_text, dtype=object)), dtype=np.int64)[month_codes]
    rel = p["rel_month"].to_numpy(int)
    d = p[treatment].to_numpy(float)
    es = [e for e in range(window[0], window[1] + 1) if e != reference and (rel == e).any()]
    common = [e for e in es if e != min(es)]
    names = [f"b{e}" for e in es] + [f"g{e}" for e in common]
    ccode = unit_codes(p, [cluster])
    ut = pd.Index(uid * (int(tid.max(initial=0)) - int(tid.min(initial=0)) + 1) + (tid - tid.min(initial=0)))
    if not ut.is_unique:  # one int64 key per unit × month: a hash of 1.3·10⁷ keys, not of two-column rows
        dup = ut.duplicated()
        first = p.iloc[int(np.argmax(dup))]
        raise InputError(
            f"outcome paths have {int(np.sum(dup))} repeated unit × month rows (first: "
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
        # column of each row's indicators by a look-up table over the event times (no Python loop over rows)
        lo = int(rel.min(initial=0))
        lut_b = np.full(int(rel.max(initial=0)) - lo + 1, -1, dtype=np.int64)
        lut_g = lut_b.copy()
        for e, j in pos.items():
            lut_b[e - lo] = j
        for e, j in gpos.items():
            lut_g[e - lo] = j
        bj, gj = lut_b[rel - lo], lut_g[rel - lo]
        mb, mg = (bj >= 0) & (d != 0), gj >= 0
        xmat = sp.csr_matrix(
            (
                np.concatenate([d[mb], np.ones(int(mg.sum()))]),
                (np.concatenate([r_all[mb], r_all[mg]]), np.concatenate([bj[mb], gj[mg]])),
            ),
            shape=(len(p), len(names)),
        )
        y = p[outcome].to_numpy(float)
        # what the regression does not read is freed before it (a national run's paths: ~10⁷ rows per array)
        del r_all, bj, gj, mb, mg, ut, rel, d, month_codes, p
        b, v, kept = twoway_wls_cluster(
            y, xmat, np.ones(n_obs) if wv is None else wv, uid, pd.factorize(tid)[0], ccode
        )
        kn = [names[j] for j in kept]
        params = pd.Series(b, index=kn)
        cov = pd.DataFrame(v, index=kn, columns=kn)
    rows = []
    for e in range(window[0], window[1] + 1):
        if e == reference:
            rows.append((e, 0.0, float("nan")))
        elif f"b{e}" in params.index:
            # a cluster-robust variance of a month with one or two clusters can round below zero: no SE then
            var = float(cov.loc[f"b{e}", f"b{e}"])
            rows.append((e, float(params[f"b{e}"]), float(np.sqrt(var)) if var >= 0 else float("nan")))
    tab = pd.DataFrame(rows, columns=["rel_month", "estimate", "std_error"])
    tab["ci_lower"], tab["ci_upper"] = normal_interval(tab["estimate"], tab["std_error"], alpha)
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
        n_obs=n_obs,
        cluster=cluster,
        cov=cov.loc[bcols, bcols],
        alpha=alpha,
    )


def twoway_wls_cluster(
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
    # W·z: each stored value times its row's weight, in a copy of z (z.multiply(w[:, None]) went through an
    # n × (k+1) broadcast of w: ~1 GB at national scale)
    wz = z.copy()
    wz.data *= np.repeat(w, np.diff(z.indptr))
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
    del wz, ut, tt  # (n-row sparse matrices; the scores below need z only)
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


def unit_codes(p: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """One code per distinct combination of ``columns`` (as their text), numbered in order of first appearance:
    ``pd.factorize`` of the rows' text tuples, computed column by column from ``tables.text_codes`` (2.5·10⁶ path
    rows at national scale would otherwise be 2.5·10⁶ tuples of strings)."""
    codes = np.zeros(len(p), dtype=np.int64)
    for c in columns:
        col, levels = text_codes(p[c])
        codes, _ = pd.factorize(codes * len(levels) + col)
    return codes.astype(np.int64)
