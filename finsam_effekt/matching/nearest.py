"""Greedy nearest-neighbour matching with MatchIt 4.7.2's semantics (:func:`match_nearest`, :class:`MatchResult`).

The matching reproduces R's ``MatchIt::matchit(method = "nearest")`` (Ho, Imai, King & Stuart 2011; version
4.7.2, ``R/matchit2nearest.R``, ``src/nn_matchC_vec.cpp``, ``src/nn_matchC_mahcovs.cpp``) exactly: the same
matches, including its greedy order and its tie-breaking, and the same weights to the last bit. It sorts the
controls once per exact stratum and passes over the treated rows only, jumping over used controls
(:mod:`~finsam_effekt.matching.search`), so that 2·10⁴ treated against 5·10⁶ candidate rows match in about a
third of a second (see ``benchmarks/bench_matching.py``).

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
from ..tables import plain
from .distance import matchit_mahalanobis_transform
from .search import MahalanobisSearch, ScalarSearch, SortedControls, stable_rank
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
        Matched-set id per row (int32: 1, 2, …; 0 = none). Only defined without replacement (as MatchIt); with
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
        ``distance`` columns, as ``MatchIt::match.data()``; columns in compact types (a cohort's categories) as
        plain text and float64 (``tables.plain``)."""
        keep = self.weights > 0
        out = plain(self.data.loc[keep].copy())
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
    """Group codes 0..g-1 of the rows by ``cols`` (missing values form a group); only equality matters."""
    if cols is None:
        return np.zeros(len(data), dtype=np.int64)
    cols = [cols] if isinstance(cols, str) else list(cols)
    missing = [c for c in cols if c not in data.columns]
    if missing:
        raise InputError(f"match_nearest: columns {missing} are not in the data")
    if len(cols) == 1:
        x = data[cols[0]].to_numpy()
        if x.dtype.kind in "iub" and len(x):
            lo, hi = int(x.min()), int(x.max())
            if hi - lo < 2**15:  # small integer codes (months, ids of strata): no hashing needed
                return x.astype(np.int64) - lo if lo else x.astype(np.int64, copy=False)
        codes, _ = pd.factorize(data[cols[0]], use_na_sentinel=False)
        return codes.astype(np.int64, copy=False)
    return data.groupby(cols, sort=True, dropna=False, observed=True).ngroup().to_numpy().astype(np.int64)


def _order_position(codes: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Each row's position in R's ``order(codes, x)``; differences within a code are positions in ``order(x)``
    over that code's rows."""
    o = np.argsort(x, kind="stable")
    o = o[np.argsort(codes[o], kind="stable")]
    pos = np.empty(len(x), dtype=np.int64)
    pos[o] = np.arange(len(x))
    return pos


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
    4. The controls are sorted once by (stratum, distance, row); each treated row sits among them where R's
       ``order(distance)`` puts it (equal distances in row order). MatchIt's search walks outwards from the
       treated row over all rows in that order, alternating one position left, one right (left first), skipping
       treated rows, other strata and used controls; a side stops at the caliper, after ``ratio`` candidates, or
       when ``ratio`` candidates already found are strictly closer. The candidates are ranked by distance; ties go
       to the one found first in the alternating walk (and, with more than ``ratio`` candidates, as C++'s
       ``std::partial_sort``). Here the search jumps over used controls with skip maps and goes to the nearest
       unused control on each side of the treated row directly; the walk's order, which counts every row
       between (the global rank, one more sort), is computed only when two candidates tie in distance. With
       replacement nothing is used up, and the nearest controls are taken from the value buckets of the sort's
       first stage around the treated row (``SortedControls.window_nearest``), so the sort is finished only
       where candidates tie.
    5. Without replacement (``reuse_max = 1``): in round r = 1..ratio every treated row still eligible gets its
       r-th control, in the order of step 3; a used control leaves the pool. With ``unit_id``, using a row also
       uses every row with the same unit id (and the treated row's own unit id), so a person is used at most
       ``reuse_max`` times across months. A treated row with no control in a round is not matched further.
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
        Match on the Mahalanobis distance of these numeric covariates instead of the scalar distance (MatchIt's
        ``mahvars =``; Rubin 1980): the covariates are transformed as MatchIt transforms them (standardised,
        pooled within-group covariance, ``distance.matchit_mahalanobis_transform``), and the scalar
        ``distance`` (if given) only orders the treated rows and carries the caliper. With ``distance=None`` it
        is full Mahalanobis matching (``distance = "mahalanobis"``) and the order is ``data`` (or ``random``);
        with one covariate MatchIt then matches on the transformed covariate as a scalar distance, and so does
        this function. The nearest control is the one with the smallest Mahalanobis distance; among equal
        distances (e.g. duplicated covariate rows) the one MatchIt's scan visits last, as MatchIt's
        ``find_control_mahcovs`` (see ``search.MahalanobisSearch``).

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
    if t_raw.dtype != bool and not (
        (t_raw.view(np.uint64) <= 1).all()  # one pass: negative integers are large as unsigned
        if t_raw.dtype.kind == "i" and t_raw.dtype.itemsize == 8
        else ((t_raw == 0) | (t_raw == 1)).all()
    ):
        raise InputError(f"match_nearest: treatment column {treatment!r} must be 0/1")
    t_rows = np.flatnonzero(t_raw)
    treat = np.zeros(len(t_raw), dtype=bool)
    treat[t_rows] = True
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
        d = np.asarray(_column_or_array(data, distance, "distance"), dtype=float)
    if not np.isfinite(d).all():
        raise InputError(
            f"match_nearest: distance has {int((~np.isfinite(d)).sum())} missing or infinite values"
        )
    n = len(d)
    n1 = len(t_rows)
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
    n_t_s = np.bincount(ex[t_rows], minlength=n_str)
    n_c_s = np.bincount(ex, minlength=n_str) - n_t_s
    live = (n_t_s > 0) & (n_c_s > 0)  # strata with treated and controls
    discarded = None if live.all() else ~live[ex]

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
    order_m = "data" if reuse_max >= n1 else m_order
    if order_m == "largest":
        ord_t = t_rows[np.argsort(-d[t_rows], kind="stable")]
    elif order_m == "smallest":
        ord_t = t_rows[np.argsort(d[t_rows], kind="stable")]
    elif order_m == "random":
        rng = np.random.default_rng(random_state)
        ord_t = rng.permutation(t_rows if discarded is None else t_rows[~discarded[t_rows]])
    else:
        ord_t = t_rows
    if discarded is not None:
        ord_t = ord_t[~discarded[ord_t]]  # MatchIt skips them as ineligible

    # the covariates MatchIt matches on with mahvars
    Z = None
    d_match = d
    if mahvars:
        missing = [c for c in mahvars if c not in data.columns]
        if missing:
            raise InputError(f"match_nearest: mahvars {missing} are not in the data")
        X = data[list(mahvars)].to_numpy(dtype=float)
        if not np.isfinite(X).all():
            raise InputError("match_nearest: mahvars have missing or infinite values")
        Z = matchit_mahalanobis_transform(X, t_raw)
        if distance is None and Z.shape[1] == 1:
            # MatchIt: "If mahcovs is only 1 variable, use vec matching for speed" (matchit2nearest.R)
            d_match, Z = Z[:, 0].copy(), None

    # 4. controls sorted by (stratum, distance, row); treated rows placed among them
    with_replacement = reuse_max >= n1 and uid is None
    sc = SortedControls(
        discarded,
        np.sort(ord_t),
        ex,
        d_match,
        np.where(live, n_c_s, 0),
        finish=not with_replacement or Z is not None,
    )

    def rank() -> np.ndarray:  # MatchIt's walk order over all rows, needed only for ties
        return stable_rank(d_match)

    near = None  # per row of ord_t: distance to the nearest control of its stratum, where already known
    if with_replacement and Z is None:
        T, K, C, near = _with_replacement(sc, ord_t, d_match, ratio, cal, rank)
    else:
        search = ScalarSearch(sc, d_match, cal, rank=rank)  # finishes the sort
        c_rows = sc.c_rows
        msearch = None
        if Z is not None:
            split = (
                exact is not None and uid is None
            )  # MatchIt matches stratum by stratum, each scan within it
            msearch = MahalanobisSearch(
                Z, c_rows, sc.c_d, cal, _order_position(ex if split else np.zeros(n, np.int64), Z[:, 0])
            )
        ex_o = ex[ord_t]
        lists = (
            ord_t.tolist(),
            d_match[ord_t].tolist(),
            sc.position(ord_t).tolist(),
            sc.s_start[ex_o].tolist(),
            sc.s_end[ex_o].tolist(),
        )
        T: list[int] = []  # treated row of each match
        K: list[int] = []  # its column in MatchIt's match matrix
        P: list[int] = []  # the control's position in c_rows
        if (
            with_replacement
        ):  # Mahalanobis: the pool never changes, every treated row gets its `ratio` nearest
            for t, dt, _ii, lo, hi in zip(*lists, strict=True):
                found = msearch.find(t, dt, lo, hi, None, ratio)
                T.extend([t] * len(found))
                K.extend(range(1, len(found) + 1))
                P.extend(found)
        elif ratio == 1 and reuse_max == 1 and uid is None and msearch is None:
            # the common case (1:1 without replacement), one pass with nothing else to track
            nearest, remove = search.nearest, search.remove
            n_elig_c = len(c_rows)
            for t, dt, ii, lo, hi in zip(*lists, strict=True):
                if n_elig_c == 0:
                    break
                p = nearest(t, dt, ii, lo, hi)
                if p >= 0:
                    T.append(t)
                    P.append(p)
                    remove(p)
                    n_elig_c -= 1
            K = [1] * len(T)
        else:
            _greedy_rounds(search, msearch, lists, ratio, reuse_max, uid, treat, c_rows, T, K, P)
        C = c_rows[np.asarray(P, dtype=np.int64)]

    # 6. weights, subclasses, pairs
    if len(T) == 0:
        raise InputError(
            "match_nearest: no treated row found a control (check the exact strata and the caliper)"
        )
    T_a = np.asarray(T, dtype=np.int64)
    K_a = np.asarray(K, dtype=np.int64)
    C_a = np.asarray(C, dtype=np.int64)
    # per treated row (index into t_rows, which is in data order)
    tix = np.searchsorted(t_rows, T_a)
    n_per_t = np.bincount(tix, minlength=n1)
    matched = n_per_t > 0
    sub_of = np.zeros(n1, dtype=np.int64)
    # subclasses numbered in data order of the treated rows (MatchIt's mm2subclassC)
    sub_of[matched] = np.arange(1, int(matched.sum()) + 1)
    S = sub_of[tix]
    # MatchIt's weights_matrixC: the match matrix row by row (treated rows in data order), column by column, adds
    # 1 / (controls of that row) to each control; the same order of additions gives the same last bit
    g = np.lexsort((K_a, T_a))
    weights = np.zeros(n)  # zero pages are mapped lazily: only rows that get a weight cost time here
    np.add.at(weights, C_a[g], (1.0 / n_per_t[tix])[g])
    weights[t_rows[matched]] = 1.0
    used_c = np.sort(C_a)
    used_c = used_c[np.r_[True, used_c[1:] != used_c[:-1]]]
    # normalize = TRUE (.make_sum_to_n): n · w / sum(w), with R's sum (one long-double accumulation)
    w_c = weights[used_c]
    weights[used_c] = len(used_c) * w_c / float(np.add.accumulate(w_c.astype(np.longdouble))[-1])
    # 32 bits: subclasses number the matched treated rows (a national cohort's 5·10⁷ rows: 0.2 GB less held)
    subclass = np.zeros(n, dtype=np.int32)
    if reuse_max <= 1:
        subclass[C_a] = S
        subclass[t_rows[matched]] = sub_of[matched]
    o = np.lexsort((K_a, S))
    pairs = pd.DataFrame(
        {
            "subclass": S[o],
            "treated_row": T_a[o],
            "control_row": C_a[o],
            "distance": np.abs(d[T_a[o]] - d[C_a[o]]),
            "k": K_a[o],
        }
    )

    # unmatched treated and why: the nearest control of the stratum, used or not, is beyond the caliper
    um = t_rows[~matched]
    reason = np.full(len(um), REASON_USED_UP, dtype=object)
    no_str = np.zeros(len(um), dtype=bool) if discarded is None else discarded[um]
    reason[no_str] = REASON_NO_STRATUM
    if cal is not None and len(um):
        ok = ~no_str
        uk = um[ok]
        if near is None:
            near_uk = sc.nearest_distance(uk)
        else:
            near_uk = near[np.argsort(ord_t)[np.searchsorted(np.sort(ord_t), uk)]]
        r_ok = reason[ok]
        r_ok[near_uk > cal] = REASON_CALIPER
        reason[ok] = r_ok
    unmatched = pd.DataFrame({"treated_row": um, "reason": pd.Series(reason, dtype=object)})

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


def _with_replacement(sc, ord_t, d, ratio, cal, rank):
    """Every treated row's ``ratio`` nearest controls at once (the pool never changes): from the buckets alone
    (:meth:`SortedControls.window_nearest`), or from the sorted controls when there are many strata; MatchIt's
    scan where candidates tie. Returns matches (treated rows, columns, control rows), grouped by treated row in
    the order of ``ord_t``, and each treated row's distance to its nearest control."""
    if sc.sorted:
        search = ScalarSearch(sc, d, cal, rank=rank)
        ii = sc.position(ord_t)
        lo, hi = sc.s_start[sc.codes[ord_t]], sc.s_end[sc.codes[ord_t]]
        best, n_found, redo = search.nearest_k(ii, d[ord_t], lo, hi, ratio)
        rows = sc.c_rows[best]
        near = sc.nearest_distance(ord_t)
    else:
        rows, n_found, redo, near = sc.window_nearest(ord_t, ratio, cal)
    redo_i = np.flatnonzero(redo)
    if len(redo_i):  # ties: MatchIt's scan on the completed sort decides
        search = ScalarSearch(sc, d, cal, rank=rank)
        q = ord_t[redo_i]
        ii = sc.position(q)
        lo, hi = sc.s_start[sc.codes[q]], sc.s_end[sc.codes[q]]
        near[redo_i] = sc.nearest_distance(q)
        for i, t, t_ii, t_lo, t_hi in zip(
            redo_i.tolist(), q.tolist(), ii.tolist(), lo.tolist(), hi.tolist(), strict=True
        ):
            found = search.scan(t, float(d[t]), t_ii, t_lo, t_hi, ratio)
            rows[i, : len(found)] = sc.c_rows[found]
            n_found[i] = len(found)
    take = np.arange(ratio)[None, :] < n_found[:, None]  # row by row: grouped by treated row, k ascending
    T = np.broadcast_to(ord_t[:, None], take.shape)[take]
    K = np.broadcast_to(np.arange(1, ratio + 1)[None, :], take.shape)[take]
    return T, K, rows[take], near


def _greedy_rounds(search, msearch, lists, ratio, reuse_max, uid, treat, c_rows, T, K, P) -> None:
    """Without replacement or with limited reuse: MatchIt's rounds r = 1..ratio over the treated rows in order,
    each taking its r-th control; using a control (and, with unit ids, every row of its unit and of the treated
    row's unit) counts towards ``reuse_max`` (controls) or ``ratio`` (treated rows)."""
    n = len(treat)
    times: dict[int, int] = {}  # times used, by row
    t_elig = dict.fromkeys(lists[0], True)
    prev_of: dict[int, list[int]] = {}
    n_elig_c = len(c_rows)
    if uid is not None:
        uo = np.argsort(uid, kind="stable")
        u_start = np.searchsorted(uid[uo], np.arange(uid.max() + 1), side="left")
        u_end = np.searchsorted(uid[uo], np.arange(uid.max() + 1), side="right")
        pos_of_row = np.full(n, -1, dtype=np.int64)
        pos_of_row[c_rows] = np.arange(len(c_rows))
    for r in range(1, ratio + 1):
        for t, dt, ii, lo, hi in zip(*lists, strict=True):
            if n_elig_c == 0:
                return
            if not t_elig[t]:
                continue
            prev = prev_of.get(t)
            if msearch is not None:
                found = msearch.find(t, dt, lo, hi, prev, 1)
                p = found[0] if found else -1
            else:
                p = search.nearest(t, dt, ii, lo, hi, prev)
            if p < 0:
                t_elig[t] = False
                continue
            T.append(t)
            K.append(r)
            P.append(p)
            prev_of.setdefault(t, []).append(p)
            if uid is None:
                touched = [(int(c_rows[p]), p), (t, -1)]
            else:
                us = sorted({int(uid[c_rows[p]]), int(uid[t])})
                touched = [(x, int(pos_of_row[x])) for uu in us for x in uo[u_start[uu] : u_end[uu]].tolist()]
            for row, pos in touched:
                if treat[row]:
                    if not t_elig.get(row, False):
                        continue
                    times[row] = times.get(row, 0) + 1
                    if times[row] >= ratio:
                        t_elig[row] = False
                elif pos >= 0 and not search.removed(pos) and (msearch is None or not msearch.removed(pos)):
                    times[row] = times.get(row, 0) + 1
                    if times[row] >= reuse_max:
                        search.remove(pos)
                        if msearch is not None:
                            msearch.remove(pos)
                        n_elig_c -= 1
