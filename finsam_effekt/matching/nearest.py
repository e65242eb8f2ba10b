"""Greedy nearest-neighbour matching with MatchIt 4.7.2's semantics (:func:`match_nearest`, :class:`MatchResult`).

The matching reproduces R's ``MatchIt::matchit(method = "nearest")`` (Ho, Imai, King & Stuart 2011; version
4.7.2, ``R/matchit2nearest.R`` and ``src/nn_matchC_vec.cpp``) exactly, including its greedy order and its
tie-breaking, but runs per exact stratum on sorted distances with a skip structure over used controls
(:mod:`~finsam_effekt.matching.search`), so that 2·10⁴ treated against millions of candidate rows match in
seconds (see ``benchmarks/bench_matching.py``).

References
----------
Ho, D., Imai, K., King, G. & Stuart, E. (2011). MatchIt: nonparametric preprocessing for parametric causal
inference. Journal of Statistical Software 42(8).
Austin, P. (2011). Optimal caliper widths for propensity-score matching. Pharmaceutical Statistics 10(2).
Rosenbaum, P. & Rubin, D. (1985). Constructing a control group using multivariate matched sampling methods that
incorporate the propensity score. The American Statistician 39(1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ConfigError, InputError
from ..options import M_ORDERS, check
from .distance import pooled_within_cov
from .search import DistanceSearch, MahalanobisSearch
from .weighting import sample_sizes

_INT_MAX = 2**31 - 1

#: Reasons a treated row stays unmatched (``MatchResult.unmatched['reason']``).
REASON_NO_STRATUM = "no_candidate_in_stratum"
REASON_CALIPER = "outside_caliper"
REASON_USED_UP = "candidates_used_up"


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
        return sample_sizes(self.data[self.treatment].to_numpy() == 1, self.weights)

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
    check("m_order", m_order, M_ORDERS, where="match_nearest")
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

    matcher = DistanceSearch(c_rank, c_d, cal)
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
        matcher = MahalanobisSearch(Z[c_rows], c_d, cal)

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
