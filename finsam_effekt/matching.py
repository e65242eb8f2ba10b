"""Propensity scores, greedy nearest-neighbour matching with MatchIt 4.7.2's semantics, and IPW weights.

The matching reproduces R's ``MatchIt::matchit(method = "nearest")`` (Ho, Imai, King & Stuart 2011; version
4.7.2, ``R/matchit2nearest.R`` and ``src/nn_matchC_vec.cpp``) exactly, including its greedy order and its
tie-breaking, but runs per exact stratum on sorted distances with a skip structure over used controls, so that
2·10⁴ treated against millions of candidate rows match in seconds (see ``benchmarks/bench_matching.py``).

References
----------
Ho, D., Imai, K., King, G. & Stuart, E. (2011). MatchIt: nonparametric preprocessing for parametric causal
inference. Journal of Statistical Software 42(8).
Austin, P. (2011). Optimal caliper widths for propensity-score matching. Pharmaceutical Statistics 10(2).
Rosenbaum, P. & Rubin, D. (1985). Constructing a control group using multivariate matched sampling methods that
incorporate the propensity score. The American Statistician 39(1).
Li, F., Morgan, K. & Zaslavsky, A. (2018) and Imbens, G. (2004) for ATT weights e/(1−e).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pydantic import ValidationError
from threadpoolctl import threadpool_limits

from .config import DEFAULT_COVARIATES, MatchingSettings, format_validation_error
from .design import design_matrix, fit_logit
from .errors import ConfigError, InputError

_INT_MAX = 2**31 - 1
M_ORDERS = ("largest", "smallest", "data", "random")

#: Reasons a treated row stays unmatched (``MatchResult.unmatched['reason']``).
REASON_NO_STRATUM = "no_candidate_in_stratum"
REASON_CALIPER = "outside_caliper"
REASON_USED_UP = "candidates_used_up"


# ----------------------------------------------------------------------------------------------------------------
# Propensity score
# ----------------------------------------------------------------------------------------------------------------
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
            "Propensity score: logistic regression (statsmodels Logit)",
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
    X = design_matrix(data, covariates, intercept=True, what=what)
    # Multi-threaded BLAS on moderate design matrices is slower than one thread (thread start-up and
    # oversubscription on shared machines): 10x on a 40 000 x 52 cohort here. Large designs keep all threads.
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


# ----------------------------------------------------------------------------------------------------------------
# Mahalanobis distance
# ----------------------------------------------------------------------------------------------------------------
def pooled_within_cov(X: np.ndarray, treat: np.ndarray) -> np.ndarray:
    """Pooled within-group covariance as MatchIt ≥ 4.4 (``pooled_cov``): centre each column on its group mean,
    then ``S = cov(Xc) · (n − 1) / (n − g)`` with g groups."""
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    Xc = X.copy()
    groups = np.unique(treat)
    for g in groups:
        m = treat == g
        Xc[m] -= Xc[m].mean(axis=0)
    n = X.shape[0]
    return np.atleast_2d(np.cov(Xc, rowvar=False)) * (n - 1) / (n - len(groups))


def mahalanobis(
    data: pd.DataFrame, treatment: str, covariates: Sequence[str], rows_a=None, rows_b=None
) -> np.ndarray:
    """Mahalanobis distances ``sqrt((x_i − x_j)' S⁻¹ (x_i − x_j))`` between rows ``rows_a`` (default: treated) and
    ``rows_b`` (default: controls), with S the pooled within-group covariance (MatchIt ≥ 4.4; Rubin 1980).
    A generalised inverse is used when S is singular. Returns a ``len(rows_a) × len(rows_b)`` matrix."""
    X = data[list(covariates)].to_numpy(dtype=float)
    t = data[treatment].to_numpy()
    S = pooled_within_cov(X, t)
    Sinv = np.linalg.pinv(S)
    a = np.flatnonzero(t == 1) if rows_a is None else np.asarray(rows_a)
    b = np.flatnonzero(t == 0) if rows_b is None else np.asarray(rows_b)
    Xa, Xb = X[a], X[b]
    qa = np.einsum("ij,jk,ik->i", Xa, Sinv, Xa)
    qb = np.einsum("ij,jk,ik->i", Xb, Sinv, Xb)
    d2 = qa[:, None] + qb[None, :] - 2.0 * (Xa @ Sinv) @ Xb.T
    return np.sqrt(np.maximum(d2, 0.0))


# ----------------------------------------------------------------------------------------------------------------
# libstdc++ heap routines: std::partial_sort is not stable, so ties among > ratio candidates are broken the way
# MatchIt's compiled code breaks them. Ported from bits/stl_heap.h and bits/stl_algo.h (__heap_select).
# ----------------------------------------------------------------------------------------------------------------
def _adjust_heap(a: list, hole: int, length: int, value, key) -> None:
    top = hole
    second = hole
    while second < (length - 1) // 2:
        second = 2 * (second + 1)
        if key[a[second]] < key[a[second - 1]]:
            second -= 1
        a[hole] = a[second]
        hole = second
    if (length & 1) == 0 and second == (length - 2) // 2:
        second = 2 * (second + 1)
        a[hole] = a[second - 1]
        hole = second - 1
    parent = (hole - 1) // 2
    while hole > top and key[a[parent]] < key[value]:
        a[hole] = a[parent]
        hole = parent
        parent = (hole - 1) // 2
    a[hole] = value


def _partial_sort(n: int, k: int, key: list) -> list[int]:
    """Indices 0..n-1 after ``std::partial_sort(first, first + k, last)`` comparing ``key[a] < key[b]``."""
    a = list(range(n))
    if k >= 2:  # make_heap(first, middle)
        parent = (k - 2) // 2
        while True:
            _adjust_heap(a, parent, k, a[parent], key)
            if parent == 0:
                break
            parent -= 1
    for i in range(k, n):
        if key[a[i]] < key[a[0]]:
            value = a[i]
            a[i] = a[0]
            _adjust_heap(a, 0, k, value, key)
    m = k
    while m > 1:  # sort_heap(first, middle)
        m -= 1
        value = a[m]
        a[m] = a[0]
        _adjust_heap(a, 0, m, value, key)
    return a[:k]


# ----------------------------------------------------------------------------------------------------------------
# Nearest-neighbour matching
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class MatchResult:
    """Result of :func:`match_nearest`.

    Attributes
    ----------
    data : DataFrame
        The input rows (unchanged).
    weights : numpy.ndarray
        MatchIt's matching weights per input row (0 = unmatched).
    subclass : numpy.ndarray
        Matched-set id per row (1, 2, …; 0 = none). Only defined without replacement (as MatchIt); with
        replacement all zeros and ``pairs`` carries the sets.
    pairs : DataFrame
        ``subclass``, ``treated_row``, ``control_row`` (positions in ``data``), ``distance`` (|d_t − d_c|), ``k``
        (1 for the first/closest match of the treated row, 2 for the second, …): every match.
    unmatched : DataFrame
        ``treated_row`` and ``reason`` (``no_candidate_in_stratum``, ``outside_caliper``,
        ``candidates_used_up``) for each treated row without a match.
    caliper : float or None
        The caliper actually used, in distance units (``caliper × SD(distance)`` when ``std_caliper``).
    """

    data: pd.DataFrame
    treatment: str
    distance: np.ndarray
    weights: np.ndarray
    subclass: np.ndarray
    pairs: pd.DataFrame
    unmatched: pd.DataFrame
    caliper: float | None
    options: dict

    @property
    def n_treated(self) -> int:
        return int((self.data[self.treatment].to_numpy() == 1).sum())

    @property
    def n_control(self) -> int:
        return int((self.data[self.treatment].to_numpy() == 0).sum())

    def matched_data(self) -> pd.DataFrame:
        """Rows with a positive weight, with ``weights``, ``subclass`` (``<NA>`` with replacement) and
        ``distance`` columns, as ``MatchIt::match.data()``."""
        keep = self.weights > 0
        out = self.data.loc[keep].copy()
        out["distance"] = self.distance[keep]
        out["weights"] = self.weights[keep]
        sub = pd.array(self.subclass[keep], dtype="Int64")
        out["subclass"] = (
            sub if self.options["reuse_max"] <= 1 else pd.array([pd.NA] * int(keep.sum()), "Int64")
        )
        return out

    def sample_sizes(self) -> pd.DataFrame:
        """MatchIt's ``summary()$nn``: all, matched (ESS), matched, unmatched, per group."""
        t = self.data[self.treatment].to_numpy() == 1
        w = self.weights
        rows = {}
        for name, m in (("treated", t), ("control", ~t)):
            wm = w[m]
            pos = wm[wm > 0]
            ess = float(pos.sum() ** 2 / (pos**2).sum()) if len(pos) else 0.0
            rows[name] = {
                "all": int(m.sum()),
                "matched_ess": ess,
                "matched": len(pos),
                "unmatched": int(m.sum()) - len(pos),
            }
        return pd.DataFrame(rows)

    def summary(self) -> str:
        o = self.options
        lines = [
            "Nearest-neighbour matching (MatchIt 4.7.2 semantics), estimand ATT",
            f"  ratio {o['ratio']}:1, replace={o['replace']}, reuse_max={o['reuse_max_arg']}, m_order={o['m_order']}",
            f"  caliper: {'none' if self.caliper is None else f'{self.caliper:.6g} (distance units)'}"
            + (f" = {o['caliper_arg']} SD" if self.caliper is not None and o["std_caliper"] else ""),
            f"  exact: {o['exact'] or 'none'}; unit_id: {o['unit_id'] or 'none'}",
            f"  matches: {len(self.pairs)} pairs",
            self.sample_sizes().round(2).to_string(),
        ]
        if len(self.unmatched):
            lines.append("  unmatched treated by reason:")
            for r, n in self.unmatched["reason"].value_counts().sort_index().items():
                lines.append(f"    {r}: {n}")
        return "\n".join(lines)

    def to_frame(self) -> pd.DataFrame:
        """Tidy table of every match (``pairs``) — the same numbers ``summary`` reports."""
        return self.pairs.copy()


def _column_or_array(data: pd.DataFrame, x, name: str) -> np.ndarray:
    if isinstance(x, str):
        if x not in data.columns:
            raise InputError(f"match_nearest: {name} column {x!r} is not in the data")
        return data[x].to_numpy()
    arr = np.asarray(x)
    if len(arr) != len(data):
        raise InputError(f"match_nearest: {name} has {len(arr)} values for {len(data)} rows")
    return arr


def _codes(data: pd.DataFrame, cols) -> np.ndarray:
    if cols is None:
        return np.zeros(len(data), dtype=np.int64)
    cols = [cols] if isinstance(cols, str) else list(cols)
    missing = [c for c in cols if c not in data.columns]
    if missing:
        raise InputError(f"match_nearest: columns {missing} are not in the data")
    return data.groupby(cols, sort=True, dropna=False, observed=True).ngroup().to_numpy().astype(np.int64)


def match_nearest(
    data: pd.DataFrame,
    treatment: str,
    distance,
    ratio: int = 1,
    replace: bool = False,
    caliper: float | None = None,
    std_caliper: bool = True,
    exact: str | Sequence[str] | None = None,
    m_order: str = "largest",
    unit_id: str | None = None,
    reuse_max: int | None = None,
    random_state: int | None = None,
    mahvars: Sequence[str] | None = None,
) -> MatchResult:
    """Greedy nearest-neighbour matching on a scalar distance, ATT, exactly as MatchIt 4.7.2.

    Algorithm (``matchit(method = "nearest", distance = <vector>)``; Ho et al. 2011, Rosenbaum & Rubin 1985):

    1. Strata: rows are grouped by the ``exact`` columns; strata without treated or without controls are
       discarded (their treated rows get reason ``no_candidate_in_stratum``).
    2. Caliper: ``c = caliper · SD(distance over all rows)`` when ``std_caliper`` (0.2 SD of the logit,
       Austin 2011), else ``c = caliper``; a pair is allowed when ``|d_t − d_c| ≤ c``.
    3. Order of treated rows: ``largest`` distance first (stable for ties, as R's ``order(decreasing = TRUE)``),
       ``smallest`` first, ``data`` (input order), or ``random`` (a permutation drawn with ``random_state``; it
       cannot reproduce R's RNG).
    4. All rows are sorted by distance (stable: ties in input order). For a treated row the search walks
       outwards from its sorted position, alternating one position left, one right (MatchIt's scan), skipping
       treated rows, other strata and used controls; a side stops at the caliper, after ``ratio`` candidates, or
       when ``ratio`` candidates already found are strictly closer. The candidates are ranked by distance; ties go
       to the one found first in the alternating walk (and, with more than ``ratio`` candidates, as C++'s
       ``std::partial_sort``).
    5. Without replacement (``reuse_max = 1``): in round r = 1..ratio every treated row still eligible gets its
       r-th control, in the order of step 3; a used control leaves the pool. With ``unit_id``, using a row also
       uses every row with the same unit id (and the treated row's own unit id), so a person is used at most
       ``reuse_max`` times across months. A treated row with no control in round 1 is unmatched.
       With replacement (``reuse_max ≥ number of treated``) every treated row gets its ``ratio`` nearest at once.
    6. Weights (ATT): treated 1 if matched; a control gets Σ over its matches of 1/(number of controls matched
       to that treated row); then each group's non-zero weights are scaled to sum to its number of matched
       units (MatchIt's ``normalize = TRUE``).

    Parameters
    ----------
    data : DataFrame
    treatment : str
        0/1 column.
    distance : str or array-like
        Column name or vector (e.g. ``PropensityResult.linear_predictor``).
    ratio : int
        Controls per treated row (k:1).
    replace : bool
        With replacement (``reuse_max`` defaults to unlimited) or without (``reuse_max`` 1).
    caliper, std_caliper : see step 2.
    exact : column name(s)
        Exact-match strata; in the staggered design always include ``ref_month``.
    m_order : {"largest", "smallest", "data", "random"}
    unit_id : str, optional
        Column identifying a person across rows (MatchIt's ``unit.id``); used only when ``reuse_max`` < number
        of treated.
    reuse_max : int, optional
        Times a control (or unit id) may be used; overrides ``replace`` (``replace = reuse_max > 1``).
    random_state : int, optional
        Seed for ``m_order = "random"``.
    mahvars : sequence of str, optional
        Match on the Mahalanobis distance of these covariates (pooled within-group covariance, MatchIt ≥ 4.4;
        Rubin 1980) instead of the scalar distance; the scalar ``distance`` (if given) then only orders the
        treated rows and carries the caliper (MatchIt's ``mahvars =`` with a PS caliper). With
        ``distance=None`` it is full Mahalanobis matching and the order is ``data`` (or ``random``). The nearest
        control is the one with the smallest Mahalanobis distance; exact ties (rare with continuous covariates)
        go to the control with the smaller distance rank, which may differ from MatchIt's scan.

    Returns
    -------
    MatchResult
    """
    if treatment not in data.columns:
        raise InputError(f"match_nearest: treatment column {treatment!r} is not in the data")
    if m_order not in M_ORDERS:
        raise ConfigError(f"match_nearest: m_order must be one of {M_ORDERS}, got {m_order!r}")
    if int(ratio) != ratio or ratio < 1:
        raise ConfigError(f"match_nearest: ratio must be a positive integer, got {ratio!r}")
    ratio = int(ratio)
    t_raw = data[treatment].to_numpy()
    if not np.isin(t_raw, [0, 1]).all():
        raise InputError(f"match_nearest: treatment column {treatment!r} must be 0/1")
    treat = t_raw.astype(bool)
    if distance is None:
        if not mahvars:
            raise ConfigError(
                "match_nearest: give a distance (column or vector) or mahvars for Mahalanobis matching"
            )
        if caliper is not None:
            raise ConfigError("match_nearest: a caliper needs a scalar distance (e.g. the propensity score)")
        d = np.zeros(len(data))
        if m_order in ("largest", "smallest"):
            m_order = "data"
    else:
        d = _column_or_array(data, distance, "distance").astype(float)
    if not np.isfinite(d).all():
        raise InputError(
            f"match_nearest: distance has {int((~np.isfinite(d)).sum())} missing or infinite values"
        )
    n = len(d)
    n1 = int(treat.sum())
    if n1 == 0 or n1 == n:
        raise InputError("match_nearest: need both treated and control rows")

    reuse_max_arg = reuse_max
    if reuse_max is None:
        reuse_max = _INT_MAX if replace else 1
    elif int(reuse_max) < 1:
        raise ConfigError(f"match_nearest: reuse_max must be >= 1, got {reuse_max!r}")
    reuse_max = min(int(reuse_max), _INT_MAX)
    replace = reuse_max > 1

    # 1. exact strata and discarding
    ex = _codes(data, exact)
    n_str = int(ex.max()) + 1
    has_t = np.bincount(ex[treat], minlength=n_str) > 0
    has_c = np.bincount(ex[~treat], minlength=n_str) > 0
    discarded = ~(has_t & has_c)[ex]

    # 2. caliper
    cal = None
    if caliper is not None:
        if caliper < 0:
            raise ConfigError("match_nearest: negative calipers are not supported")
        # SD over all rows: MatchIt takes it before its exact-stratum discarding (only ``discard =`` drops rows)
        cal = float(caliper) * (float(np.std(d, ddof=1)) if std_caliper else 1.0)

    # unit ids (only with limited reuse, and only when they are not all distinct)
    uid = None
    if unit_id is not None and reuse_max < n1:
        u = _codes(data, unit_id)
        if not (len(np.unique(u[~treat])) == n - n1 and len(np.unique(u[treat])) == n1):
            uid = u

    # 3. order of treated rows
    t_rows = np.flatnonzero(treat)
    order_m = "data" if reuse_max >= n1 else m_order
    if order_m == "largest":
        ord_t = t_rows[np.argsort(-d[t_rows], kind="stable")]
    elif order_m == "smallest":
        ord_t = t_rows[np.argsort(d[t_rows], kind="stable")]
    elif order_m == "random":
        rng = np.random.default_rng(random_state)
        ord_t = rng.permutation(t_rows[~discarded[t_rows]])
    else:
        ord_t = t_rows[~discarded[t_rows]]

    # 4. sorted structure: global stable rank; controls per stratum in rank order
    go = np.argsort(d, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[go] = np.arange(n)
    # controls ordered by (stratum, rank): the rank-ordered controls, stably sorted by stratum (a radix sort for
    # small integer codes; 6x faster than lexsort on 5e6 rows)
    c_rows = go[~treat[go] & ~discarded[go]]
    ex_c = ex[c_rows]
    if n_str < 2**15:
        ex_c = ex_c.astype(np.int16)
    c_rows = c_rows[np.argsort(ex_c, kind="stable")]
    c_rank = rank[c_rows]
    c_d = d[c_rows]
    c_ex = ex[c_rows]
    s_start = np.searchsorted(c_ex, np.arange(n_str), side="left")
    s_end = np.searchsorted(c_ex, np.arange(n_str), side="right")
    pos_of_row = np.full(n, -1, dtype=np.int64)
    pos_of_row[c_rows] = np.arange(len(c_rows))

    matcher = _Matcher(c_rank, c_d, cal)
    mm: dict[int, list[int]] = {}  # treated row -> control positions (in c_rows)
    rank_l = rank  # local aliases
    s_start_l, s_end_l = s_start.tolist(), s_end.tolist()

    if mahvars:
        missing = [c for c in mahvars if c not in data.columns]
        if missing:
            raise InputError(f"match_nearest: mahvars {missing} are not in the data")
        X = data[list(mahvars)].to_numpy(dtype=float)
        if not np.isfinite(X).all():
            raise InputError("match_nearest: mahvars have missing or infinite values")
        vals, vecs = np.linalg.eigh(pooled_within_cov(X, treat))
        keep = vals > vals.max() * 1e-10
        Z = X @ (
            vecs[:, keep] / np.sqrt(vals[keep])
        )  # squared Euclidean on Z = Mahalanobis² (generalised inverse)
        matcher = _MahMatcher(Z[c_rows], c_d, cal)

        def find(t: int, r: int, prev, k: int) -> list[int]:
            s = int(ex[t])
            return matcher.find(Z[t], float(d[t]), s_start_l[s], s_end_l[s], r, prev, k)
    else:

        def find(t: int, r: int, prev, k: int) -> list[int]:
            s = int(ex[t])
            return matcher.find(int(rank_l[t]), float(d[t]), s_start_l[s], s_end_l[s], r, prev, k)

    if reuse_max >= n1 and uid is None and mahvars:
        for t in ord_t.tolist():
            if not discarded[t]:
                found = find(t, 1, (), ratio)
                if found:
                    mm[t] = found
    elif reuse_max >= n1 and uid is None:
        # With replacement the pool never changes, so each treated row's answer is the `ratio` nearest controls
        # of its stratum within the caliper, found among the `ratio` neighbours on each side in sorted order.
        # Rows whose candidate distances tie are resolved by the exact scan (MatchIt's tie-breaking).
        tt = ord_t[~discarded[ord_t]]
        key_c = c_ex * n + c_rank
        p = np.searchsorted(key_c, ex[tt] * n + rank[tt])
        pos = p[:, None] + np.arange(-ratio, ratio)[None, :]
        valid = (pos >= s_start[ex[tt]][:, None]) & (pos < s_end[ex[tt]][:, None])
        posc = np.clip(pos, 0, max(len(c_rows) - 1, 0))
        dist = np.where(valid, np.abs(d[tt][:, None] - c_d[posc]) if len(c_rows) else np.inf, np.inf)
        if cal is not None:
            dist[dist > cal] = np.inf
        o = np.argsort(dist, axis=1, kind="stable")
        ds = np.take_along_axis(dist, o, axis=1)
        tie = (np.isfinite(ds[:, 1:]) & (ds[:, 1:] == ds[:, :-1])).any(axis=1)
        best = np.take_along_axis(posc, o, axis=1)[:, :ratio]
        nfound = np.isfinite(ds[:, :ratio]).sum(axis=1)
        for i in np.flatnonzero(~tie & (nfound > 0)).tolist():
            mm[int(tt[i])] = best[i, : nfound[i]].tolist()
        for t in tt[tie].tolist():
            found = find(t, 1, (), ratio)
            if found:
                mm[t] = found
    else:
        times: dict[int, int] = {}
        t_elig = ~discarded & treat
        n_elig_c = len(c_rows)
        ratio_of = np.full(n, ratio, dtype=np.int64)
        if uid is not None:
            uo = np.argsort(uid, kind="stable")
            u_start = np.searchsorted(uid[uo], np.arange(uid.max() + 1), side="left")
            u_end = np.searchsorted(uid[uo], np.arange(uid.max() + 1), side="right")
        stop = False
        for r in range(1, ratio + 1):
            if stop:
                break
            for t in ord_t.tolist():
                if n_elig_c == 0:
                    stop = True
                    break
                if not t_elig[t]:
                    continue
                prev = mm.get(t, [])
                found = find(t, r, prev, 1)
                if not found:
                    if r == 1:
                        t_elig[t] = False
                    continue
                c = found[0]
                mm.setdefault(t, []).append(c)
                crow = int(c_rows[c])
                if uid is None:
                    touched = (crow, t)
                else:
                    us = {int(uid[crow]), int(uid[t])}
                    touched = [int(x) for uu in sorted(us) for x in uo[u_start[uu] : u_end[uu]]]
                for ck in touched:
                    if treat[ck]:
                        if not t_elig[ck]:
                            continue
                        times[ck] = times.get(ck, 0) + 1
                        if times[ck] >= ratio_of[ck]:
                            t_elig[ck] = False
                    else:
                        p = int(pos_of_row[ck])
                        if p < 0 or matcher.removed(p):
                            continue
                        times[ck] = times.get(ck, 0) + 1
                        if times[ck] >= reuse_max:
                            matcher.remove(p)
                            n_elig_c -= 1

    # 6. weights, subclasses, pairs
    if not mm:
        raise InputError(
            "match_nearest: no treated row found a control (check the exact strata and the caliper)"
        )
    tl: list[int] = []
    kl: list[int] = []
    cl: list[int] = []
    for t, cs in mm.items():
        tl.extend([t] * len(cs))
        kl.extend(range(1, len(cs) + 1))
        cl.extend(cs)
    T = np.asarray(tl, dtype=np.int64)
    K = np.asarray(kl, dtype=np.int64)
    C = c_rows[np.asarray(cl, dtype=np.int64)]
    matched_t = np.asarray(sorted(mm), dtype=np.int64)
    sub_of = np.zeros(n, dtype=np.int64)
    # subclasses numbered in data order of the treated rows (MatchIt's mm2subclassC)
    sub_of[matched_t] = np.arange(1, len(matched_t) + 1)
    S = sub_of[T]
    n_per_t = np.bincount(T, minlength=n)
    weights = np.zeros(n)
    np.add.at(weights, C, 1.0 / n_per_t[T])
    weights[matched_t] = 1.0
    cmask = (~treat) & (weights > 0)
    weights[cmask] = weights[cmask] * cmask.sum() / weights[cmask].sum()
    subclass = np.zeros(n, dtype=np.int64)
    if reuse_max <= 1:
        subclass[C] = S
        subclass[matched_t] = sub_of[matched_t]
    o = np.lexsort((K, S))
    pairs = pd.DataFrame(
        {
            "subclass": S[o],
            "treated_row": T[o],
            "control_row": C[o],
            "distance": np.abs(d[T[o]] - d[C[o]]),
            "k": K[o],
        }
    )

    # unmatched treated and why (controls of a stratum are sorted by distance in c_d)
    um = t_rows[sub_of[t_rows] == 0]
    reasons = []
    for t in um.tolist():
        s = int(ex[t])
        lo_, hi_ = int(s_start[s]), int(s_end[s])
        if discarded[t] or hi_ == lo_:
            reasons.append(REASON_NO_STRATUM)
            continue
        if cal is not None:
            i = int(np.searchsorted(c_d[lo_:hi_], d[t]))
            near = min(abs(c_d[lo_ + j] - d[t]) for j in (i - 1, i) if 0 <= j < hi_ - lo_)
            if near > cal:
                reasons.append(REASON_CALIPER)
                continue
        reasons.append(REASON_USED_UP)
    unmatched = pd.DataFrame({"treated_row": um, "reason": pd.Series(reasons, dtype=object)})

    options = {
        "ratio": ratio,
        "replace": replace,
        "reuse_max": reuse_max,
        "reuse_max_arg": reuse_max_arg if reuse_max_arg is not None else ("unlimited" if replace else 1),
        "m_order": m_order,
        "caliper_arg": caliper,
        "std_caliper": std_caliper,
        "exact": exact,
        "unit_id": unit_id,
        "mahvars": list(mahvars) if mahvars else None,
        "has_distance": distance is not None,
    }
    return MatchResult(
        data=data,
        treatment=treatment,
        distance=d,
        weights=weights,
        subclass=subclass,
        pairs=pairs,
        unmatched=unmatched,
        caliper=cal,
        options=options,
    )


class _Matcher:
    """Per-stratum nearest-control search over controls sorted by global distance rank.

    Used controls are removed through two skip maps (``removed position → next candidate`` to the left and to the
    right, with path compression), so a search never walks over the used controls one by one.
    """

    def __init__(self, c_rank: np.ndarray, c_d: np.ndarray, cal: float | None):
        self.c_rank = c_rank
        self.c_d = c_d
        self.cal = np.inf if cal is None else cal
        self._left: dict[int, int] = {}
        self._right: dict[int, int] = {}

    def removed(self, p: int) -> bool:
        return p in self._right

    def remove(self, p: int) -> None:
        self._right[p] = p + 1
        self._left[p] = p - 1

    def _next_right(self, p: int) -> int:
        r = self._right
        q = p
        while q in r:
            q = r[q]
        while p in r and r[p] != q:  # path compression
            r[p], p = q, r[p]
        return q

    def _next_left(self, p: int) -> int:
        lft = self._left
        q = p
        while q in lft:
            q = lft[q]
        while p in lft and lft[p] != q:
            lft[p], p = q, lft[p]
        return q

    def find(
        self, ii: int, dt: float, lo: int, hi: int, r: int, prev: Sequence[int], ratio: int
    ) -> list[int]:
        """Controls (positions) for the treated unit at global rank ``ii``: MatchIt's ``find_control_vec``."""
        if hi <= lo:
            return []
        c_rank, c_d, cal = self.c_rank, self.c_d, self.cal
        prev_set = set(prev) if r > 1 else ()
        iil = iir = ii
        min_dist = 0.0
        if r > 1 and prev:
            pr = [int(c_rank[p]) for p in prev]
            iil = min(min(pr), ii)
            iir = max(max(pr), ii)
            if iil == ii:
                min_dist = abs(dt - c_d[prev[pr.index(iir)]])
            elif iir == ii:
                min_dist = abs(dt - c_d[prev[pr.index(iil)]])
            else:
                min_dist = max(abs(dt - c_d[prev[pr.index(iil)]]), abs(dt - c_d[prev[pr.index(iir)]]))
        # first candidate on each side: positions with rank < iil (left) and rank > iir (right)
        pl = bisect.bisect_left(c_rank, iil, lo, hi) - 1
        pr_ = bisect.bisect_right(c_rank, iir, lo, hi)
        pl = self._next_left(pl) if pl >= lo else lo - 1
        pr_ = self._next_right(pr_) if pr_ < hi else hi
        l_on = pl >= lo
        r_on = pr_ < hi
        ids: list[int] = []
        dists: list[float] = []
        nl = nr = 0
        while l_on or r_on:
            if l_on and r_on:
                left = (iil - int(c_rank[pl])) <= (int(c_rank[pr_]) - iir)
            else:
                left = l_on
            z = pl if left else pr_
            # advance this side's pointer past z
            if left:
                q = z - 1
                pl = self._next_left(q) if q >= lo else lo - 1
                if pl < lo:
                    l_on = False
            else:
                q = z + 1
                pr_ = self._next_right(q) if q < hi else hi
                if pr_ >= hi:
                    r_on = False
            if r > 1 and z in prev_set:
                continue
            dc = abs(dt - float(c_d[z]))
            if dc > cal:
                if left:
                    l_on = False
                else:
                    r_on = False
                continue
            if dc < min_dist:
                continue
            if len(ids) >= ratio:
                closer = 0
                for dd in dists:
                    if dd < dc:
                        closer += 1
                        if closer == ratio:
                            break
                if closer >= ratio:
                    if left:
                        l_on = False
                    else:
                        r_on = False
                    continue
            ids.append(z)
            dists.append(dc)
            if left:
                nl += 1
                if nl == ratio:
                    l_on = False
            else:
                nr += 1
                if nr == ratio:
                    r_on = False
        m = len(ids)
        if m <= 1:
            return ids
        if m <= ratio and all(dists[i] <= dists[i + 1] for i in range(m - 1)):
            return ids
        if m > ratio:
            return [ids[i] for i in _partial_sort(m, ratio, dists)]
        return [ids[i] for i in sorted(range(m), key=dists.__getitem__)]  # std::sort on ≤ 16 = insertion sort


class _MahMatcher:
    """Nearest controls in Mahalanobis distance (rows of ``Z``, whitened covariates) within a stratum, optionally
    within a caliper on the scalar distance; used controls are masked."""

    def __init__(self, Zc: np.ndarray, c_d: np.ndarray, cal: float | None):
        self.Zc = Zc
        self.c_d = c_d
        self.cal = cal
        self.used = np.zeros(len(Zc), dtype=bool)

    def removed(self, p: int) -> bool:
        return bool(self.used[p])

    def remove(self, p: int) -> None:
        self.used[p] = True

    def find(self, z: np.ndarray, dt: float, lo: int, hi: int, r: int, prev, ratio: int) -> list[int]:
        if hi <= lo:
            return []
        d2 = ((self.Zc[lo:hi] - z) ** 2).sum(axis=1)
        bad = self.used[lo:hi].copy()
        if self.cal is not None:
            bad |= np.abs(self.c_d[lo:hi] - dt) > self.cal
        if r > 1 and prev:
            bad[np.asarray(prev, dtype=np.int64) - lo] = True
        d2[bad] = np.inf
        if ratio == 1:
            j = int(np.argmin(d2))
            return [lo + j] if np.isfinite(d2[j]) else []
        o = np.argsort(d2, kind="stable")[:ratio]
        return [lo + int(j) for j in o if np.isfinite(d2[j])]


# ----------------------------------------------------------------------------------------------------------------
# Inverse probability weighting
# ----------------------------------------------------------------------------------------------------------------
def ipw_weights(
    ps,
    treatment,
    *,
    trim: tuple[float, float] | None = None,
    normalize: bool = True,
) -> np.ndarray:
    """ATT inverse-probability weights: treated ``w = 1``, controls ``w = e / (1 − e)`` (Imbens 2004; Hirano,
    Imbens & Ridder 2003), so the weighted controls mimic the treated covariate distribution.

    Parameters
    ----------
    ps : array-like
        Propensity scores e(x) in (0, 1).
    treatment : array-like
        0/1.
    trim : (lower, upper), optional
        Propensity scores are clipped to ``[lower, upper]`` before weighting (e.g. ``(0.01, 0.99)``; Crump et al.
        2009 use 0.1/0.9 for trimming of the sample); limits extreme control weights.
    normalize : bool
        Scale control weights to sum to the number of controls (as MatchIt/WeightIt report them).
    """
    e = np.asarray(ps, dtype=float)
    t = np.asarray(treatment)
    if e.shape != t.shape:
        raise InputError(f"ipw_weights: ps has {e.shape} values, treatment {t.shape}")
    if not np.isin(t, [0, 1]).all():
        raise InputError("ipw_weights: treatment must be 0/1")
    if trim is not None:
        lo, hi = trim
        if not 0 <= lo < hi <= 1:
            raise ConfigError(f"ipw_weights: trim must satisfy 0 <= lower < upper <= 1, got {trim}")
        e = np.clip(e, lo, hi)
    if np.any((e <= 0) | (e >= 1)):
        raise InputError("ipw_weights: propensity scores must lie strictly between 0 and 1 (use trim=)")
    w = np.where(t == 1, 1.0, e / (1.0 - e))
    if normalize:
        c = t == 0
        w[c] = w[c] * c.sum() / w[c].sum()
    return w


# ----------------------------------------------------------------------------------------------------------------
# The cohort, matched as the config says (the pipeline's match stage)
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class CohortMatch:
    """Result of :func:`match_cohort`: the propensity model, the matching (or IPW weights) and the matched rows.

    Attributes
    ----------
    data : DataFrame
        The cohort as given (the rows ``match.pairs`` and ``weights`` refer to, by position).
    settings : MatchingSettings
        The validated matching settings used (``finsam_effekt.config.MatchingSettings``).
    covariates : list of str
        Covariates of the propensity model.
    propensity : PropensityResult
        The fitted logit (with calendar-month fixed effects when ``settings.time_effects``).
    distance : numpy.ndarray
        The matching distance per cohort row: the propensity score (``distance: glm``) or its linear predictor
        (``distance: logit``).
    match : MatchResult or None
        The nearest-neighbour matching (``method: nearest``); None under ``method: ipw`` (no pairs).
    weights : numpy.ndarray
        Per cohort row: MatchIt's matching weights (``method: nearest``) or the ATT weights ``e / (1 − e)``
        (``method: ipw``); 0 = not in the matched sample.
    seed : int
        Seed passed to the matching (used by ``m_order: random``).
    """

    data: pd.DataFrame
    settings: MatchingSettings
    covariates: list[str]
    propensity: PropensityResult
    distance: np.ndarray
    match: MatchResult | None
    weights: np.ndarray
    seed: int

    @property
    def method(self) -> str:
        """``nearest`` or ``ipw``."""
        return str(self.settings.method)

    def matched_data(self) -> pd.DataFrame:
        """The matched sample (docs/tables.md, ``matching → MatchResult.matched_data()``).

        ``method: nearest``: ``MatchResult.matched_data()`` — the rows with a positive weight plus ``distance``,
        ``weights`` and ``subclass``. ``method: ipw``: every cohort row with a positive weight plus ``distance``
        and ``weights`` (no ``subclass``: there are no matched sets). The cohort's index is kept (the pairs refer
        to positions in ``data``).
        """
        if self.match is not None:
            return self.match.matched_data()
        keep = self.weights > 0
        out = self.data.loc[keep].copy()
        out["distance"] = np.asarray(self.distance, float)[keep]
        out["weights"] = self.weights[keep]
        return out

    def sample_sizes(self) -> pd.DataFrame:
        """Rows per group: all, matched (weight > 0), effective sample size of the weights (ESS = (Σw)² / Σw²)
        and unmatched — MatchIt's ``summary()$nn`` (same table as ``MatchResult.sample_sizes()``)."""
        if self.match is not None:
            return self.match.sample_sizes()
        t = self.data["treated"].to_numpy() == 1
        rows = {}
        for name, m in (("treated", t), ("control", ~t)):
            pos = self.weights[m][self.weights[m] > 0]
            rows[name] = {
                "all": int(m.sum()),
                "matched_ess": float(pos.sum() ** 2 / (pos**2).sum()) if len(pos) else 0.0,
                "matched": len(pos),
                "unmatched": int(m.sum()) - len(pos),
            }
        return pd.DataFrame(rows)

    def summary(self) -> str:
        """The propensity model, then the matching (or weighting) and the sample sizes."""
        s = self.settings
        head = self.propensity.summary()
        if self.match is not None:
            return (
                f"{head}\nDistance: {'propensity score' if s.distance == 'glm' else 'linear predictor'}\n"
                + (self.match.summary())
            )
        trim = f"scores clipped to [{s.ipw_trim}, {1 - s.ipw_trim}]" if s.ipw_trim else "no trimming"
        return (
            f"{head}\nInverse-probability weighting, estimand ATT: treated 1, controls e/(1−e) ({trim}), "
            f"control weights normalised to the number of controls\n{self.sample_sizes().round(2).to_string()}"
        )


def match_cohort(
    cohort: pd.DataFrame,
    settings: MatchingSettings | Mapping | None = None,
    *,
    covariates: Sequence[str] | None = None,
    seed: int,
    **options,
) -> CohortMatch:
    """Match the staggered-entry cohort as an analysis config says — the pipeline's match stage in one call.

    ``finsam_effekt.pipeline`` (stage "match") and ``validation/montecarlo_pipeline.py`` both call this function,
    so a config and a direct call give the same matched sample bit for bit.

    Steps:

    1. Propensity score: :func:`estimate_propensity` of ``treated`` on ``covariates``, with calendar-month fixed
       effects (``time_effects="ref_month"``) when ``settings.time_effects`` (Li, Propert & Rosenbaum 2001).
    2. Distance: the score ``e`` (``distance: glm``, MatchIt's default) or its linear predictor
       ``log(e / (1 − e))`` (``distance: logit``; Austin 2011).
    3. ``method: nearest``: :func:`match_nearest` (MatchIt 4.7.2's ``method = "nearest"``) with ``ratio``,
       ``replace``, ``caliper``/``std_caliper``, ``exact`` (always including ``ref_month``), ``m_order``,
       ``reuse_max``, ``unit_id`` (→ ``unit_id="person_id"``) and ``random_state=seed``.
       ``method: ipw``: :func:`ipw_weights` on ``e`` — treated 1, controls ``e / (1 − e)`` normalised to the number
       of controls, ``e`` clipped to ``[ipw_trim, 1 − ipw_trim]`` when set (Hirano, Imbens & Ridder 2003).

    Parameters
    ----------
    cohort : DataFrame
        The ``cohort`` table (docs/tables.md): ``person_id``, ``ref_month``, ``treated`` (0/1) and the covariates.
    settings : MatchingSettings or mapping, optional
        The config's ``matching`` section (``AnalysisConfig.matching``) or a mapping with its keys; default: the
        config defaults (1:1 nearest on the propensity score without replacement, caliper 0.2 SD, exact on
        ``ref_month``, largest first, calendar-month effects in the score).
    covariates : sequence of str, optional
        Propensity-model covariates; default ``config.DEFAULT_COVARIATES`` (the config's default).
    seed : int
        The analysis seed (``AnalysisConfig.seed``); only ``m_order: random`` draws from it.
    **options
        Matching settings as keyword arguments (``ratio=2``, ``caliper=None``, …); they override ``settings``
        and are validated as the config's ``matching`` section is.

    Returns
    -------
    CohortMatch
        ``matched_data()`` is the matched sample for the outcome stage; ``match`` the :class:`MatchResult`
        (None under IPW); ``propensity``, ``distance`` and ``weights`` per cohort row.

    Raises
    ------
    ConfigError
        Invalid settings (an unknown key, a value out of range).
    InputError
        A covariate, ``treated`` or ``ref_month`` is not in the cohort.

    Examples
    --------
    >>> res = match_cohort(cohort, cfg.matching, covariates=cfg.covariates, seed=cfg.seed)  # doctest: +SKIP
    >>> res = match_cohort(cohort, ratio=2, replace=True, seed=1)  # doctest: +SKIP
    """
    if isinstance(settings, MatchingSettings) and not options:
        m = settings
    else:
        if settings is None:
            base: dict = {}
        elif isinstance(settings, MatchingSettings):
            base = settings.model_dump()
        elif isinstance(settings, Mapping):
            base = dict(settings)
        else:
            raise ConfigError(
                "match_cohort: settings must be the config's MatchingSettings or a mapping, got "
                f"{type(settings).__name__}"
            )
        try:
            m = MatchingSettings.model_validate({**base, **options})
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, "match_cohort: matching")) from exc
    covs = list(DEFAULT_COVARIATES if covariates is None else covariates)
    missing = [c for c in covs if c not in cohort.columns]
    if missing:
        raise InputError(f"covariates {missing} are not in the cohort table; known: {sorted(cohort.columns)}")
    for col in ("treated", "ref_month"):
        if col not in cohort.columns:
            raise InputError(f"match_cohort: the cohort has no {col!r} column (cohort.build_cohort makes it)")
    ps = estimate_propensity(cohort, "treated", covs, time_effects="ref_month" if m.time_effects else None)
    distance = ps.ps if m.distance == "glm" else ps.linear_predictor
    if m.method == "ipw":
        trim = (m.ipw_trim, 1 - m.ipw_trim) if m.ipw_trim else None
        w = ipw_weights(np.asarray(ps.ps, float), cohort["treated"].to_numpy(), trim=trim)
        return CohortMatch(cohort, m, covs, ps, np.asarray(distance, float), None, w, seed)
    res = match_nearest(
        cohort,
        "treated",
        distance,
        ratio=m.ratio,
        replace=m.replace,
        caliper=m.caliper,
        std_caliper=m.std_caliper,
        exact=list(m.exact),
        m_order=m.m_order,
        unit_id="person_id" if m.unit_id else None,
        reuse_max=m.reuse_max,
        random_state=seed,
    )
    return CohortMatch(cohort, m, covs, ps, distance, res, res.weights, seed)
