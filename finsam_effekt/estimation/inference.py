"""Inference for the effect estimators: the level from ``alpha``, CR1 cluster-robust, cluster bootstrap, Abadie–Imbens.

Every estimator here is asymptotically linear: ``estimate − θ ≈ Σ_i ψ_i`` with an influence contribution ``ψ_i``
per row. The cluster-robust (CR1) variance sums the contributions within a cluster first,

    V = c · Σ_g (Σ_{i∈g} ψ_i)²,   c = G/(G−1) · (n−1)/(n−p),

with G clusters, n rows and p regression coefficients (for IPW, AIPW and the Callaway–Sant'Anna estimator, which
are not regressions, c = G/(G−1)). For the weighted regression estimators ψ is the treatment row of
``(X'WX)⁻¹ x_i w_i e_i`` (:func:`wls_influence`) and V equals Stata's ``vce(cluster)`` and R's
``sandwich::vcovCL(type = "HC1")`` exactly (Cameron & Miller 2015; Zeileis, Köll & Graham 2020) — the tests check
this against fixtures made with MatchIt 4.7.2 + sandwich. Stacking the per-cluster sums of all outcomes ×
horizons of one estimator gives their joint covariance (``EffectResults.cov``), used for contrasts and by the
cost-benefit Monte Carlo (``EffectResults.draws``).

Which cluster? MatchIt's vignette *Estimating Effects After Matching* (Greifer 2024) recommends clustering on the
matched set (``subclass``) after pair matching without replacement (Abadie & Spiess 2022) and on the unit
identifier when units recur (matching with replacement, or the same person in several rows). In the staggered
risk-set design a person can be a control in many months and later a participant, so the default is
``cluster="person_id"``; ``cluster="subclass"`` is available for 1:k matching without replacement where persons
do not recur. When in doubt, report both: the person level is the conservative choice when persons recur.

``se="bootstrap"`` resamples clusters with replacement (seeded, ``n_boot`` replicates, the same draws for every
estimate so the joint covariance is the covariance of the replicates; :func:`bootstrap_counts`); the matching
itself is held fixed (conditional on the matched sets, as MatchIt's vignette does). ``se="abadie_imbens"`` gives
the Abadie & Imbens (2006) variance of the nearest-neighbour matching estimator (with replacement) for the
weighted difference in means (:func:`abadie_imbens_se`).

Intervals are normal: ``estimate ± z·SE`` with ``z = Φ⁻¹(1 − α/2)`` (:func:`critical_value`; 1.960 at α = 0.05,
1.645 at α = 0.10); bootstrap SEs are the standard deviation of the replicates, used the same way.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import InputError
from .sample import require_columns


# -- level -------------------------------------------------------------------------------------------------------
def critical_value(alpha: float = 0.05) -> float:
    """Two-sided normal critical value ``z = Φ⁻¹(1 − α/2)`` of a (1 − α) interval."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha!r}")
    return float(stats.norm.ppf(1 - alpha / 2))


def normal_interval(estimate, std_error, alpha: float = 0.05) -> tuple:
    """``(estimate − z·SE, estimate + z·SE)`` with z from :func:`critical_value` (scalars or arrays)."""
    z = critical_value(alpha)
    return estimate - z * std_error, estimate + z * std_error


def normal_p_value(estimate: float, std_error: float) -> float:
    """Two-sided p-value ``2 (1 − Φ(|estimate / SE|))``; NaN without a positive, finite SE."""
    if np.isfinite(std_error) and std_error > 0:
        return float(2 * stats.norm.sf(abs(estimate / std_error)))
    return float("nan")


# -- CR1 ---------------------------------------------------------------------------------------------------------
def cr1_factor(n_clusters: int, n_rows: int, n_params: int = 0) -> float:
    """CR1 small-sample factor ``G/(G−1) · (n−1)/(n−p)`` (the second factor only for regressions, p > 0);
    NaN with fewer than two clusters."""
    if n_clusters < 2:
        return float("nan")
    c = n_clusters / (n_clusters - 1)
    if n_params > 0 and n_rows > n_params:
        c *= (n_rows - 1) / (n_rows - n_params)
    return c


# -- weighted least squares --------------------------------------------------------------------------------------
def independent_wls_columns(x: np.ndarray, w: np.ndarray, col: int) -> tuple[np.ndarray, int]:
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


def wls_influence(
    y: np.ndarray, x: np.ndarray, w: np.ndarray, col: int = 1, bread: np.ndarray | None = None
) -> tuple[float, np.ndarray, int]:
    """WLS coefficient ``col`` and its influence contributions ``ψ_i = [(X'WX)⁻¹ x_i]_col w_i e_i``.

    Returns (coefficient, ψ, number of coefficients p). ``bread`` = (X'WX)⁻¹ when already computed for this
    ``x`` (whose columns are then taken as independent); otherwise dependent columns are dropped first
    (:func:`independent_wls_columns`).
    """
    if bread is None:
        x, col = independent_wls_columns(x, w, col)
        bread = np.linalg.inv(x.T @ (x * w[:, None]))
    beta = bread @ (x.T @ (w * y))
    e = y - x @ beta
    psi = (x @ bread[:, col]) * w * e
    return float(beta[col]), psi, x.shape[1]


# -- cluster bootstrap -------------------------------------------------------------------------------------------
def bootstrap_counts(n_clusters: int, n_boot: int, random_state: int | None) -> np.ndarray:
    """``n_boot × G`` multinomial counts: how often each cluster is drawn when G clusters are resampled with
    replacement (seeded by ``random_state``); the same counts serve every estimate of one call."""
    rng = np.random.default_rng(random_state)
    return rng.multinomial(n_clusters, np.full(n_clusters, 1.0 / n_clusters), size=int(n_boot)).astype(float)


def wls_bootstrap(
    y: np.ndarray, x: np.ndarray, w: np.ndarray, col: int, clusters: np.ndarray, counts: np.ndarray
) -> np.ndarray:
    """Cluster-bootstrap replicates of a WLS coefficient. A replicate draws cluster g ``counts[b, g]`` times, so
    X'WX and X'Wy are the count-weighted sums of the per-cluster blocks — no refit on copied rows needed."""
    n_g = counts.shape[1]
    p = x.shape[1]
    outer = (x[:, :, None] * x[:, None, :] * w[:, None, None]).reshape(len(y), p * p)
    a = np.zeros((n_g, p * p))
    np.add.at(a, clusters, outer)
    b = np.zeros((n_g, p))
    np.add.at(b, clusters, x * (w * y)[:, None])
    xtwx = (counts @ a).reshape(-1, p, p)
    xtwy = counts @ b
    reps = np.full(counts.shape[0], np.nan)
    ok = np.linalg.cond(xtwx) < 1e12
    if ok.any():
        reps[ok] = np.linalg.solve(xtwx[ok], xtwy[ok][:, :, None])[:, col, 0]
    return reps


def linearised_bootstrap(
    estimate: float, clusters: np.ndarray, psi: np.ndarray, counts: np.ndarray
) -> np.ndarray:
    """Replicates ``estimate + Σ_g (n*_g − 1) S_g`` of an asymptotically linear estimator (S_g the sum of its
    influence contributions in cluster g): the bootstrap without refitting, for estimators too costly to refit."""
    s = np.bincount(clusters, weights=psi, minlength=counts.shape[1])
    return estimate + (counts - 1.0) @ s


# -- Abadie–Imbens -----------------------------------------------------------------------------------------------
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
    neighbours in ``distance``)², J = ``n_neighbours_variance`` (:func:`nn_variance`). The distance is treated as
    known (no Abadie & Imbens 2016 correction for an estimated propensity score).
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
    sig2 = nn_variance(y, np.asarray(treated), np.asarray(distance, float), n_neighbours_variance)
    c = np.asarray(treated) == 0
    v = np.sum((y[t_pos] - y0hat - tau) ** 2) + np.sum((kw[c] ** 2 - ksq[c]) * sig2[c])
    return tau, float(math.sqrt(v) / n1)


def nn_variance(y: np.ndarray, d: np.ndarray, dist: np.ndarray, j: int) -> np.ndarray:
    """σ̂²_i = J/(J+1) (Y_i − mean of the J nearest units of the same group in ``dist``)² (Abadie & Imbens 2006)."""
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


def abadie_imbens_from_pairs(
    data: pd.DataFrame, column: str, treatment: str, pairs: object | None, distance: str
) -> float:
    """:func:`abadie_imbens_se` of the outcome ``column`` of the matched ``data``, the matches taken from ``pairs``
    (a ``MatchResult`` or a ``treated_row``/``control_row`` table, see :func:`match_positions`)."""
    if pairs is None or distance not in data:
        raise InputError(
            "se='abadie_imbens' needs pairs= (the MatchResult, or a table with treated_row/control_row = index "
            f"labels of the data) and a {distance!r} column (the matching distance)"
        )
    tp, cp = match_positions(data, pairs, treatment, first_only=False)
    y = data[column].to_numpy(float)
    ok = np.isfinite(y[tp]) & np.isfinite(y[cp])
    tp, cp = tp[ok], cp[ok]
    units = np.unique(np.concatenate([tp, cp]))
    t_units = np.unique(tp)
    order = np.concatenate([t_units, np.setdiff1d(units, t_units)])
    local = pd.Series(np.arange(len(order)), index=order)
    d = np.r_[np.ones(len(t_units)), np.zeros(len(order) - len(t_units))]
    by_t = pd.Series(local[cp].to_numpy()).groupby(local[tp].to_numpy()).apply(list)
    matches = [by_t[i] for i in range(len(t_units))]
    _, s = abadie_imbens_se(y[order], d, data[distance].to_numpy(float)[order], matches)
    return s


def match_positions(
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
        pos = data[keys].reset_index(drop=True).assign(_pos=np.arange(len(data)))
        out = []
        for c in ("treated_row", "control_row"):
            # the pairs' rows of match.data by position (not a copy of match.data: a national cohort)
            f = match.data.iloc[pairs[c].to_numpy()][keys].reset_index(drop=True)
            for k in keys:
                f[k] = f[k].astype(pos[k].dtype)
            out.append(f.merge(pos, on=keys, how="left")["_pos"].to_numpy(float))
        ok = np.isfinite(out[0]) & np.isfinite(out[1])
        return out[0][ok].astype(int), out[1][ok].astype(int)
    if not isinstance(match, pd.DataFrame):
        raise InputError(f"pairs must be a MatchResult or a DataFrame, got {type(match).__name__}")
    require_columns(match, ["treated_row", "control_row"], "pairs")
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


# -- computation -------------------------------------------------------------------------------------------------
def one_blas_thread(fn: Callable) -> Callable:
    """Run ``fn`` with one BLAS thread: its products are tall and thin (n × p, p ~ 30), where threads only add
    start-up cost, and on a loaded shared machine a second thread spins waiting for a core (10–30x slower
    measured on the example's IPW/AIPW)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            return fn(*args, **kwargs)

    return wrapper
