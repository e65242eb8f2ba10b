"""Covariate balance before and after matching or weighting, with MatchIt's ``summary()`` / cobalt definitions.

For each covariate x, treated group T and comparison group C with weights w (1 before matching, the matching or
IPW weights after; unmatched rows weigh 0):

* means: ``m_g = Σ w x / Σ w`` per group;
* standardized mean difference (ATT): ``SMD = (m_T − m_C) / s_T`` with ``s_T`` the **unweighted, full-sample**
  treated SD (so before and after share one denominator; Stuart 2010, Austin 2009); for binary x
  ``s_T = sqrt(p_T (1 − p_T))``; with ``binary="raw"`` binary covariates report the raw difference in
  proportions instead (cobalt's default, Greifer). When ``|m_T − m_C| ≤ sqrt(machine eps)`` the raw difference
  is reported (as MatchIt);
* variance ratio ``v_T / v_C`` (continuous only) with the weighted reliability variance
  ``v = Σ w'(x − m)² / (1 − Σ w'²)``, ``w' = w / Σ w``; a covariate constant among the (weighted) controls gives
  ``inf`` (``nan`` when constant in both groups), as R's ``x / 0`` in MatchIt — flagged, never an exception;
* when the treated SD is 0 (constant among treated) the SMD denominator is MatchIt's fallback, the pooled SD
  ``sqrt(Σ_g Σ_{i∈g} (x_i − m_g)² / (n − 1))`` (binary ``sqrt(Σ_g n_g p_g (1 − p_g) / n)``);
* eCDF mean and max: with weights scaled to sum to 1 per group, the mean and maximum over the distinct values
  of x of ``|F_T(x) − F_C(x)|`` (binary: ``|m_T − m_C|``);
* effective sample size (Kish 1965): ``ESS = (Σ w)² / Σ w²`` per group.

Flags: ``|SMD| > 0.1`` (Austin 2009; Stuart 2010) and variance ratio outside ``[0.5, 2]`` (Rubin 2001).

Rows of three kinds (column ``kind``): ``distance`` (the matching distance, first, as MatchIt), ``covariate`` (the
model's covariates) and ``pre_period`` (outcomes before the reference month given with ``pre_period=``, e.g.
``panel.pre_period_outcomes``: public support at u−1, u−2, …). The pre-period rows are measured and flagged
exactly like covariates, whether or not they are in the model: a pre-period outcome still different after
matching is a failure of the design (the comparison persons were not in the participants' situation before
start), not a footnote (Heckman & Smith 1999 on the pre-programme dip; Stuart 2010 on balance checks).
These reproduce MatchIt 4.7.2's ``summary.matchit`` (``bal1var``, ``qqsum``, ``wvar``) to 1e-8 (tests).

How they are computed. :func:`balance_stats` follows ``bal1var`` and ``qqsum`` row by row: it is the reference.
Its eCDF statistics sort the column and read the cumulative sum of the signed, per-group normalized weights at
the last row of each distinct value, ``abs(cumsum(w_ord_))[c(diff(x_ord) != 0, TRUE)]`` (MatchIt 4.7.2
``qqsum(standardize = TRUE)``); for a 0/1 variable ``bal1var`` and ``qqsum`` report ``|m_T − m_C|`` instead
("for binary variables, just difference in means"). :func:`balance_table` computes the same numbers from *value
tables*: every statistic above depends on the rows only through ``W_g(v)``, the total weight of group g at each
distinct value v of x — ``Σ w x = Σ_v v W_g(v)``, ``Σ w (x − m)² = Σ_v W_g(v) (v − m)²``,
``F_g(v) = Σ_{u ≤ v} W_g(u) / Σ_u W_g(u)``, read at the values v that some row of the sample has, zero weights
included, as ``qqsum``. A column is coded once (:func:`value_coding`: values ``k / d`` on a small grid by
``np.bincount``, few distinct values by hashing, the rest with one ``np.sort``; a categorical covariate's codes
give all its indicators at once) and each sample and group is one ``np.bincount`` over its rows with positive
weight; the control group before matching is all rows minus the treated. On a national cohort (10⁷ rows, a few
10⁴ matched) most columns need no sort and no per-sample pass over the 10⁷ rows.

The two agree to rounding (1e-12 in the tests). The tables are the more exact: whole-number counts are summed
exactly, so before matching the eCDF statistics are the rational values to 1e-16, where the reference's running
sum over 10⁷ rows drifts by up to 5·10⁻¹² (measured on a national cohort); and a group constant at v has variance
exactly 0 (variance ratio ``inf`` or ``nan``, the rule above) where the reference's weighted mean is v only to
rounding. A column with a missing or infinite value takes the reference path.
The balance figures (the love plot of :meth:`BalanceTable.to_frame`, the propensity-score overlap of
``distance``/``treat``/``weights``) are drawn by ``finsam_effekt.report.figures``.

References
----------
Austin, P. (2009). Balance diagnostics for comparing the distribution of baseline covariates between treatment
groups in propensity-score matched samples. Statistics in Medicine 28.
Stuart, E. (2010). Matching methods for causal inference: a review and a look forward. Statistical Science 25.
Rubin, D. (2001). Using propensity scores to help design observational studies. Health Services & Outcomes
Research Methodology 2.
Ho, Imai, King & Stuart (2011), MatchIt; Greifer, N. cobalt: covariate balance tables and plots (R package).
Kish, L. (1965). Survey Sampling.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import progress
from ..design import DesignSource, design_source, design_sources, numeric_values
from ..errors import ConfigError, InputError
from .coding import ValueCoding, value_coding

_EPS = float(np.sqrt(np.finfo(float).eps))
_WHAT = "balance_table"  # what the covariates' errors name
STAT_COLUMNS = ("mean_treated", "mean_control", "smd", "var_ratio", "ecdf_mean", "ecdf_max")


def _wvar(x: np.ndarray, w: np.ndarray, binary: bool) -> float:
    if binary:
        # the share as Σ w x / Σ w (as R's weighted.mean): with unit weights exactly 0 or 1 for a constant column;
        # normalising w first made an all-ones column 1 − 1e-16, a variance of 2e-16 that passed the zero-SD check
        # and gave an SMD of 4·10⁵ (a dip world of the Monte Carlo, seed 1145)
        mx = float(np.sum(w * x) / np.sum(w))
        return max(mx * (1 - mx), 0.0)  # a share of exactly 1 can sum to 1 + 1e-16
    w = w / w.sum()
    mx = float(np.sum(w * x))
    with np.errstate(
        divide="ignore", invalid="ignore"
    ):  # a single non-zero weight: undefined (NaN), as MatchIt
        return float(np.sum(w * (x - mx) ** 2) / (1 - np.sum(w**2)))


def _pooled_sd(x: np.ndarray, t: np.ndarray, binary: bool) -> float:
    """MatchIt's ``pooled_sd(contribution = "proportional")`` with unit weights, its SMD denominator when the
    treated SD is 0: ``sqrt(Σ_g Σ_{i∈g} (x_i − m_g)² / (n − 1))``; binary ``sqrt(Σ_g n_g p_g (1 − p_g) / n)``."""
    n = len(x)
    if binary:
        v = sum(
            float(x[t == g].sum()) * (1 - float(x[t == g].mean())) for g in (True, False) if (t == g).any()
        )
        return float(np.sqrt(v / n))
    dev = x.copy()
    for g in (True, False):
        m = t == g
        if m.any():
            dev[m] = x[m] - x[m].mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.sqrt(np.sum(dev**2) / (n - 1))) if n > 1 else float("nan")


def _ecdf_stats(
    x: np.ndarray, t: np.ndarray, w: np.ndarray, order: np.ndarray | None = None
) -> tuple[float, float]:
    w = w.astype(float).copy()
    for g in (True, False):
        m = t == g
        w[m] = w[m] / w[m].sum()
    o = np.argsort(x, kind="stable") if order is None else order
    xo, wo, to = x[o], w[o], t[o]
    wo = np.where(to == to[0], -wo, wo)
    cs = np.abs(np.cumsum(wo))
    keep = np.r_[np.diff(xo) != 0, True]
    e = cs[keep]
    return float(e.mean()), float(e.max())


def balance_stats(x, treat, weights=None, *, binary: str = "std", order=None) -> dict[str, float]:
    """MatchIt's ``bal1var`` for one covariate (ATT, no sampling weights), row by row: the reference that
    :func:`balance_table`'s value tables reproduce (module docstring).
    ``order``: ``np.argsort(x, kind="stable")`` when the caller has it (the same column in several samples)."""
    x = np.asarray(x, dtype=float)
    t = np.asarray(treat).astype(bool)
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=float)
    is_bin = bool(np.all((x == 0) | (x == 1)))
    out = dict.fromkeys(STAT_COLUMNS, np.nan)
    i1, i0 = t, ~t
    too_small = (w[i1] != 0).sum() < 2 and (w[i0] != 0).sum() < 2
    mt = float(np.sum(x[i1] * w[i1]) / np.sum(w[i1]))
    mc = float(np.sum(x[i0] * w[i0]) / np.sum(w[i0]))
    out["mean_treated"], out["mean_control"] = mt, mc
    mdiff = mt - mc
    if binary == "raw" and is_bin:
        out["smd"] = mdiff
    elif abs(mdiff) > _EPS:
        if not too_small:
            sd = np.sqrt(_wvar(x[i1], np.ones(int(i1.sum())), is_bin))
            if not np.isfinite(sd) or sd < _EPS:  # constant among treated: pooled SD (MatchIt's fallback)
                sd = _pooled_sd(x, t, is_bin)
            with np.errstate(divide="ignore", invalid="ignore"):
                out["smd"] = float(np.divide(mdiff, sd))
    else:
        out["smd"] = mdiff
    if is_bin:
        out["ecdf_mean"] = out["ecdf_max"] = abs(mdiff)
    elif not too_small:
        # constant among the (weighted) controls: v_C = 0 gives inf (nan if v_T = 0 too), as R's x / 0 in
        # MatchIt's bal1var; flagged as outside the bounds (inf) or left unflagged (nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            out["var_ratio"] = float(
                np.divide(np.float64(_wvar(x[i1], w[i1], False)), np.float64(_wvar(x[i0], w[i0], False)))
            )
        out["ecdf_mean"], out["ecdf_max"] = _ecdf_stats(x, t, w, order)
    return out


def ess(w) -> float:
    """Kish's effective sample size ``(Σ w)² / Σ w²`` (0 if all weights are 0)."""
    w = np.asarray(w, dtype=float)
    s2 = float(np.sum(w**2))
    return float(np.sum(w) ** 2 / s2) if s2 > 0 else 0.0


@dataclass(frozen=True)
class _Group:
    """The treated or the control group of one sample, weighed as :func:`balance_stats` weighs it."""

    rows: np.ndarray | None  # the rows with a positive weight; None: every row of the group, weight 1
    weights: np.ndarray | None  # the weights of ``rows``; None: 1
    sum_sq: float  # Σ (w / Σ w)²: the reliability variance's 1 − Σ w'²
    nonzero: int  # rows with w ≠ 0


@dataclass(frozen=True)
class _Sample:
    name: str
    treated: _Group
    control: _Group

    @property
    def too_small(self) -> bool:
        return self.treated.nonzero < 2 and self.control.nonzero < 2


def _sample(name: str, t: np.ndarray, w: np.ndarray | None) -> _Sample:
    """A sample of :func:`balance_table`: ``w`` None is every row with weight 1 (the control group then counted
    as all rows minus the treated); ``sum_sq`` is the sum :func:`balance_stats` forms, in the same order."""
    groups = []
    for m in (t, ~t):
        if w is None:  # the treated by their rows, the controls as all rows minus the treated (_tables)
            k = int(m.sum())  # Σ w'²: k values (1/k)², summed as np.sum sums them, from a view of one value
            with np.errstate(divide="ignore"):
                sum_sq = float(np.sum(np.broadcast_to((np.float64(1.0) / np.float64(k)) ** 2, (k,))))
            groups.append(_Group(np.flatnonzero(m) if not groups else None, None, sum_sq, k))
        else:
            q = w[m]  # (w / Σ w)² in one array (a national cohort's controls: 0.4 GB per array)
            with np.errstate(divide="ignore", invalid="ignore"):
                q /= q.sum()
            np.square(q, out=q)
            sum_sq = float(np.sum(q))
            del q
            rows = np.flatnonzero(m & (w != 0))
            groups.append(_Group(rows, w[rows], sum_sq, len(rows)))
    return _Sample(name, *groups)


def _tables(coding: ValueCoding, smp: _Sample) -> tuple[np.ndarray, np.ndarray]:
    """The treated and control value tables of one sample."""
    tr, co = smp.treated, smp.control
    tt = coding.table(tr.rows, tr.weights)
    return tt, coding.counts - tt if co.rows is None else coding.table(co.rows, co.weights)


def _table_var(values: np.ndarray, tab: np.ndarray, g: _Group, binary: bool) -> float:
    """``_wvar`` from a value table: ``Σ_v W(v)/ΣW (v − m)² / (1 − Σ w'²)``, ``m = Σ_v v W(v)/ΣW``; binary
    ``m (1 − m)``. Normalized by the table's own total, a group constant at v has ``m = v`` and variance 0
    exactly. The sums a piece at a time (:func:`_pairwise_sum`): the numbers of whole-table arrays."""
    n = len(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        total = tab.sum()
        if binary:
            mx = float(_table_dot(tab, values) / total)
            return max(mx * (1 - mx), 0.0)
        mx = _pairwise_sum(n, lambda a, b: tab[a:b] / total * values[a:b])  # Σ w' v, w' = W / ΣW

        def deviation(a: int, b: int) -> np.ndarray:  # (v − m)² w'
            d = np.subtract(values[a:b], mx)
            np.square(d, out=d)
            d *= tab[a:b] / total
            return d

        return float(_pairwise_sum(n, deviation) / (1 - g.sum_sq))


#: Values per piece of a value table's sums and running sums (at least 128: numpy's pairwise block).
SUM_PIECE = 1 << 20


def _pairwise_sum(n: int, piece: Callable[[int, int], np.ndarray]) -> float:
    """``np.sum`` of a float64 array of ``n`` values given a piece at a time (``piece(a, b)``: values a..b−1,
    asked for left to right), to the bit: numpy sums a contiguous array pairwise, splitting n > 128 values at
    ``h = ⌊n/2⌋ − (⌊n/2⌋ mod 8)`` and adding the halves' sums (numpy's ``pairwise_sum``, ``loops_utils.h``);
    this splits the same way down to pieces of at most :data:`SUM_PIECE` values, each summed by ``np.sum``. A
    continuous column's tables are as long as the cohort (a national cohort's distance: 5·10⁷ values, 0.4 GB
    per array); its products and deviations are never whole arrays."""
    return _pairwise_part(piece, 0, n, max(SUM_PIECE, 128))


def _pairwise_part(piece: Callable[[int, int], np.ndarray], a: int, m: int, limit: int):
    """The sum of values a..a+m−1 (:func:`_pairwise_sum`; a module function, not a closure calling itself: that
    would be a reference cycle keeping ``piece``, and the tables it reads, until the next garbage collection)."""
    if m <= limit:
        return np.sum(piece(a, a + m))
    h = m // 2 - (m // 2) % 8
    return _pairwise_part(piece, a, h, limit) + _pairwise_part(piece, a + h, m - h, limit)


def _table_dot(tab: np.ndarray, values: np.ndarray):
    """``np.sum(tab * values)`` without the product as a whole array."""
    return _pairwise_sum(len(values), lambda a, b: tab[a:b] * values[a:b])


class _EcdfGap:
    """``|F_T(v) − F_C(v)|`` at each value of a sample's tables, ``F_g`` = running sum of the group's table / its
    total, for the values a..b−1 when called with ``(a, b)``, left to right: each running sum continues from the
    last sum of the piece before (prepended), so every partial sum is the one ``np.cumsum`` of the whole table
    forms, in its order. ``maxima`` keeps each piece's largest gap."""

    def __init__(self, tt: np.ndarray, ct: np.ndarray, wt, wc):
        self.groups = ((tt, wt), (ct, wc))
        self.carry = [np.zeros(1), np.zeros(1)]
        self.end = 0
        self.maxima: list[float] = []

    def __call__(self, a: int, b: int) -> np.ndarray:
        if a != self.end:
            raise RuntimeError("_EcdfGap: pieces must be asked for in order")
        runs = []
        for j, (tab, total) in enumerate(self.groups):
            run = np.cumsum(np.concatenate([self.carry[j], tab[a:b]]), dtype=np.float64)[1:]
            self.carry[j] = run[-1:].copy()  # (before the division below)
            run /= total
            runs.append(run)
        gap = runs[0]
        gap -= runs[1]
        np.abs(gap, out=gap)
        self.end = b
        if len(gap):
            self.maxima.append(gap.max())
        return gap


def _table_pooled_sd(values: np.ndarray, tabs: tuple[np.ndarray, np.ndarray], binary: bool) -> float:
    """``_pooled_sd`` from the unit-weight value tables of the two groups."""
    n = sum(int(tab.sum()) for tab in tabs)
    if binary:
        v = 0.0
        for tab in tabs:
            if (ng := int(tab.sum())) > 0:
                s = float(np.sum(tab * values))
                v += s * (1 - s / ng)
        return float(np.sqrt(v / n))
    ss = 0.0
    for tab in tabs:
        if (ng := int(tab.sum())) > 0:
            ss += float(np.sum(tab * (values - np.sum(tab * values) / ng) ** 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.sqrt(ss / (n - 1))) if n > 1 else float("nan")


def _table_stats(
    values: np.ndarray,
    present: np.ndarray,
    tabs: dict[str, tuple[np.ndarray, np.ndarray]],
    samples: list[_Sample],
    binary: str,
) -> dict[str, dict[str, float]]:
    """:func:`balance_stats` of one column in every sample, from its value tables (``tabs``: sample → treated and
    control tables). The first sample is every row with weight 1: its tables give the SMD's denominator."""
    is_bin = bool(np.all((values[present] == 0) | (values[present] == 1)))
    unit = samples[0]
    sd: list[float] = []  # the treated SD (MatchIt's pooled fallback), computed when first needed

    def denominator() -> float:
        if not sd:
            s = float(np.sqrt(_table_var(values, tabs[unit.name][0], unit.treated, is_bin)))
            if not np.isfinite(s) or s < _EPS:  # constant among treated: pooled SD (MatchIt's fallback)
                s = _table_pooled_sd(values, tabs[unit.name], is_bin)
            sd.append(s)
        return sd[0]

    out = {}
    for smp in samples:
        tt, ct = tabs[smp.name]
        wt, wc = tt.sum(), ct.sum()  # Σ w per group
        st = dict.fromkeys(STAT_COLUMNS, np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            mt = float(_table_dot(tt, values) / wt)
            mc = float(_table_dot(ct, values) / wc)
        st["mean_treated"], st["mean_control"] = mt, mc
        mdiff = mt - mc
        if binary == "raw" and is_bin:
            st["smd"] = mdiff
        elif abs(mdiff) > _EPS:
            if not smp.too_small:
                with np.errstate(divide="ignore", invalid="ignore"):
                    st["smd"] = float(np.divide(mdiff, denominator()))
        else:
            st["smd"] = mdiff
        if is_bin:
            st["ecdf_mean"] = st["ecdf_max"] = abs(mdiff)
        elif not smp.too_small:
            with np.errstate(divide="ignore", invalid="ignore"):
                st["var_ratio"] = float(
                    np.divide(
                        np.float64(_table_var(values, tt, smp.treated, False)),
                        np.float64(_table_var(values, ct, smp.control, False)),
                    )
                )
                # MatchIt's qqsum: |F_T − F_C| at each distinct value some row has, F_g = cumulated weight / Σ w,
                # a piece at a time where every value is present (the tables of a continuous column)
                gap = _EcdfGap(tt, ct, wt, wc)
                if present.all():
                    mean = _pairwise_sum(len(values), gap) / len(values)  # = np.mean of the whole
                    st["ecdf_mean"], st["ecdf_max"] = float(mean), float(np.max(gap.maxima))
                else:
                    e = gap(0, len(values))[present]
                    st["ecdf_mean"], st["ecdf_max"] = float(e.mean()), float(e.max())
        out[smp.name] = st
        tt = ct = gap = e = None  # not held while the next sample's tables are made
        if isinstance(tabs, _LazyTables):  # this sample's tables are done with (the SMD's denominator kept)
            if smp is unit:
                with np.errstate(all="ignore"):
                    denominator()
            tabs.pop(smp.name, None)
    return out


def _numeric_stats(
    x: np.ndarray,
    t: np.ndarray,
    samples: list[_Sample],
    weights: Callable[[], dict[str, np.ndarray]],
    binary: str,
) -> dict[str, dict[str, float]]:
    """The statistics of one numeric column in every sample (value tables; a column with a missing or infinite
    value by the reference :func:`balance_stats`, with the row weights ``weights()`` gives)."""
    coding = value_coding(x)
    if coding is None:
        xf = np.asarray(x, dtype=float)
        order = np.argsort(xf, kind="stable")
        w = weights()
        return {s.name: balance_stats(xf, t, w[s.name], binary=binary, order=order) for s in samples}
    return _table_stats(coding.values, coding.present, _LazyTables(coding, samples), samples, binary)


class _LazyTables(dict):
    """A sample's value tables computed when first read (``_table_stats`` reads them sample by sample and drops
    each after use): a continuous column's tables are as long as the cohort, so only one sample's are held."""

    def __init__(self, coding: ValueCoding, samples: list[_Sample]):
        super().__init__()
        self.coding, self.samples = coding, {s.name: s for s in samples}

    def __missing__(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        self[name] = _tables(self.coding, self.samples[name])
        return self[name]


def _level_stats(
    codes: np.ndarray, n_levels: int, samples: list[_Sample], binary: str
) -> list[dict[str, dict[str, float]]]:
    """The statistics of the indicators ``codes == j`` of a categorical covariate, each level's value table
    ``[Σ w − W_j, W_j]`` (weights of the values 0 and 1) read from one ``np.bincount`` of the codes per sample
    and group."""
    levels = ValueCoding(
        codes, np.arange(n_levels, dtype=float), np.bincount(codes, minlength=n_levels), codes, "levels"
    )
    counts = levels.counts
    per_sample = {smp.name: _tables(levels, smp) for smp in samples}
    values = np.array([0.0, 1.0])
    out = []
    for j in range(n_levels):
        present = np.array([counts[j] < len(codes), counts[j] > 0])
        tabs = {
            s.name: (np.array([tt.sum() - tt[j], tt[j]]), np.array([ct.sum() - ct[j], ct[j]]))
            for s in samples
            for tt, ct in [per_sample[s.name]]
        }
        out.append(_table_stats(values, present, tabs, samples, binary))
    return out


@dataclass
class BalanceTable:
    """Balance statistics before (``sample='before'``) and, when weights were given, after (``'after'``).

    Attributes
    ----------
    table : DataFrame
        ``variable``, ``sample``, ``mean_treated``, ``mean_control``, ``smd``, ``var_ratio``, ``ecdf_mean``,
        ``ecdf_max``, ``smd_flag`` (|SMD| > threshold), ``var_ratio_flag`` (outside the bounds), ``kind``
        (``distance``, ``covariate`` or ``pre_period``; see the module docstring).
    sample_sizes : DataFrame
        Per sample and group: ``n`` (rows with positive weight) and ``ess`` (Kish).
    """

    table: pd.DataFrame
    sample_sizes: pd.DataFrame
    smd_threshold: float
    var_ratio_bounds: tuple[float, float]
    binary: str
    unmatched_reasons: pd.Series | None = None
    treat: np.ndarray | None = None
    distance: np.ndarray | None = None
    weights: np.ndarray | None = None

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def max_abs_smd(self, sample: str = "after") -> float:
        s = self.table.loc[self.table["sample"] == sample, "smd"].abs()
        return float(s.max())

    def flagged(self, kind: str = "pre_period", sample: str = "after") -> pd.DataFrame:
        """The rows of one ``kind`` in one ``sample`` with |SMD| above the threshold, largest |SMD| first."""
        t = self.table
        out = t[(t["kind"] == kind) & (t["sample"] == sample) & t["smd_flag"]]
        return out.reindex(out["smd"].abs().sort_values(ascending=False, kind="stable").index)

    def summary(self) -> str:
        lines = [
            f"Covariate balance (ATT; SMD by the treated SD; binary: {self.binary}); flags: |SMD| > "
            f"{self.smd_threshold}, variance ratio outside {self.var_ratio_bounds}"
        ]
        wide = self.table.pivot(index="variable", columns="sample", values=["smd", "var_ratio"])
        wide = wide.reindex(self.table["variable"].drop_duplicates())
        wide.columns = [f"{a}_{b}" for a, b in wide.columns]
        lines.append(wide.round(3).to_string())
        lines.append(self.sample_sizes.round(1).to_string())
        for smp in self.table["sample"].unique():
            t = self.table[(self.table["sample"] == smp) & (self.table["kind"] != "pre_period")]
            lines.append(
                f"  {smp}: {int(t['smd_flag'].sum())} of {len(t)} covariates with |SMD| > {self.smd_threshold}; "
                f"{int(t['var_ratio_flag'].sum())} variance ratios outside bounds"
            )
            pre = self.table[(self.table["sample"] == smp) & (self.table["kind"] == "pre_period")]
            if len(pre):
                lines.append(
                    f"  {smp}: {int(pre['smd_flag'].sum())} of {len(pre)} pre-period outcomes with |SMD| > "
                    f"{self.smd_threshold}"
                )
        if self.unmatched_reasons is not None and len(self.unmatched_reasons):
            lines.append(
                "  unmatched treated: " + ", ".join(f"{k} {v}" for k, v in self.unmatched_reasons.items())
            )
        return "\n".join(lines)


def balance_table(
    data: pd.DataFrame,
    treatment: str | None = None,
    covariates: Sequence[str] | None = None,
    weights=None,
    *,
    distance=None,
    binary: str = "std",
    smd_threshold: float = 0.1,
    var_ratio_bounds: tuple[float, float] = (0.5, 2.0),
    pre_period: pd.DataFrame | Sequence[str] | Mapping[str, Callable[[], np.ndarray]] | None = None,
) -> BalanceTable:
    """Balance of ``covariates`` between treated and controls, before and (with ``weights``) after.

    Parameters
    ----------
    data : DataFrame or MatchResult
        All rows (treated and every candidate control), not only the matched ones: the SMD denominator and the
        "before" columns come from the full sample. A :class:`~finsam_effekt.matching.MatchResult` is taken as
        ``match_balance(result, covariates)``.
    treatment : str
        0/1 column.
    covariates : sequence of str
        Numeric columns as they are (a missing value is an error); text/categorical columns as one indicator per
        level, a missing category as the level ``(missing)`` (:func:`finsam_effekt.design.design_matrix`).
    weights : array-like or str, optional
        Matching weights (``MatchResult.weights``, 0 for unmatched) or IPW weights.
    distance : array-like or str, optional
        The matching distance, shown first as ``distance`` (as MatchIt).
    binary : {"std", "raw"}
        Binary covariates standardized by ``sqrt(p_T(1 − p_T))`` (MatchIt) or as raw differences (cobalt).
    pre_period : DataFrame or sequence of str, optional
        Outcomes before the reference month (e.g. ``panel.pre_period_outcomes``), shown after the covariates as
        rows of kind ``pre_period``: numeric columns, one row per row of ``data`` in the same order (a DataFrame)
        or columns of ``data`` (names), or a mapping name → function returning such a column, each called once
        when its rows are computed (a national cohort's path read from disk a column at a time), or a pair
        ``(values, rows)``: ``values[i]`` belongs to row ``rows[i]`` (a file in another order, read as stored:
        the statistics do not depend on the order of the rows).
    """
    if binary not in ("std", "raw"):
        raise ConfigError(f"balance_table: binary must be 'std' or 'raw', got {binary!r}")
    if hasattr(data, "weights") and hasattr(
        data, "pairs"
    ):  # a MatchResult: balance_table(result, covariates)
        if covariates is None and isinstance(treatment, list | tuple):
            treatment, covariates = None, treatment
        return match_balance(
            data, covariates, binary=binary, smd_threshold=smd_threshold, var_ratio_bounds=var_ratio_bounds
        )
    if treatment not in data.columns:
        raise InputError(f"balance_table: treatment column {treatment!r} is not in the data")
    if not covariates:
        raise InputError("balance_table: give at least one covariate")
    t = data[treatment].to_numpy()
    if not ((t == 0) | (t == 1)).all():
        raise InputError(f"balance_table: treatment column {treatment!r} must be 0/1")
    t = t.astype(bool)
    # every level of a categorical covariate as its own indicator ``name=level`` (cobalt), a missing category as
    # the level "(missing)", constant columns kept (a balance table shows them): the models' one design rule
    # (design.design_sources: numeric columns as stored, categorical ones as level codes; on the full candidate
    # pool the float64 design matrix would not fit in memory), each covariate's codes made just before its rows
    sources = [(src, "covariate") for src in design_sources(data, covariates, what=_WHAT, names_only=True)]
    dv = None
    if distance is not None:
        dv = data[distance].to_numpy(float) if isinstance(distance, str) else np.asarray(distance, float)
        sources.insert(0, (DesignSource("distance", values=dv), "distance"))
    if pre_period is not None:
        pre = _pre_period_sources(data, pre_period)
        names = {c for src, _ in sources for c in src.columns}
        clash = [src.name for src in pre if src.name in names]
        if clash:
            raise InputError(f"balance_table: pre-period columns {clash} are also covariates; rename them")
        sources += [(src, "pre_period") for src in pre]
    kind_of = {c: kind for src, kind in sources for c in src.columns}
    # the unweighted sample's weights: every row 1, as a read-only view of one value (a national cohort's 5·10⁷
    # ones, and their copy in a pre-period file's row order, were 0.8 GB)
    weights_of = {"before": np.broadcast_to(np.float64(1.0), (len(data),))}
    if weights is not None:
        w = data[weights].to_numpy(float) if isinstance(weights, str) else np.asarray(weights, dtype=float)
        if len(w) != len(data) or np.any(w < 0) or not np.isfinite(w).all():
            raise InputError("balance_table: weights must be finite, non-negative, one per row")
        weights_of["after"] = w
    samples = [_sample(smp, t, None if smp == "before" else w) for smp, w in weights_of.items()]
    rows = []
    sizes = []
    lo, hi = var_ratio_bounds
    n_columns = sum(len(src.columns) for src, _ in sources)
    tracker = progress.track("balance, column", len(samples) * n_columns) if len(data) > 1_000_000 else None
    # a covariate at a time, its value tables for every sample at once (module docstring); the rows come out
    # sample by sample
    by_sample: dict[str, list[dict]] = {smp.name: [] for smp in samples}
    moved = None  # (positions, treatment, samples, weights) in the order of a pre-period file (loaders)

    def row_weights() -> dict[str, np.ndarray]:  # the weights as _numeric_stats takes them
        return weights_of

    for src, kind in sources:
        if kind == "covariate":
            src = design_source(data, src.name, what=_WHAT)
        if src.codes is not None:
            stats = _level_stats(src.codes, len(src.columns), samples, binary)
        elif src.values is not None:
            stats = [_numeric_stats(src.values, t, samples, row_weights, binary)]
        else:  # a pre-period loader: the column in the data's row order, or in another with each value's row
            values, pos = _pre_period_column(src.name, pre_period, len(t))
            if pos is None:
                stats = [_numeric_stats(values, t, samples, row_weights, binary)]
            else:  # the statistics do not depend on the rows' order: treatment and weights taken into the file's
                if moved is None or moved[0] is not pos:  # (built once for the columns sharing ``pos``)
                    if not _each_row_once(pos, len(t)):
                        raise InputError(
                            f"balance_table: the rows of pre-period column {src.name!r} are not each row once"
                        )
                    tp = t[pos]
                    sp = [
                        _sample(smp.name, tp, None if smp.name == "before" else weights_of[smp.name][pos])
                        for smp in samples
                    ]

                    def moved_weights(pos=pos) -> dict[str, np.ndarray]:  # made where read (0.4 GB each)
                        return {k: v if k == "before" else v[pos] for k, v in weights_of.items()}  # ones stay

                    moved = (pos, tp, sp, moved_weights)
                stats = [_numeric_stats(values, moved[1], moved[2], moved[3], binary)]
            del values
        for col, per_sample in zip(src.columns, stats, strict=True):
            for smp, st in per_sample.items():
                if tracker is not None:
                    tracker.step()
                st.update(variable=col, sample=smp)
                by_sample[smp].append(st)
    for smp, w in weights_of.items():
        rows += by_sample[smp]
        for g, m in (("treated", t), ("control", ~t)):
            sizes.append({"sample": smp, "group": g, "n": int((w[m] > 0).sum()), "ess": ess(w[m])})
    tab = pd.DataFrame(rows)[["variable", "sample", *STAT_COLUMNS]].copy()
    tab["smd_flag"] = tab["smd"].abs() > smd_threshold
    vr = tab["var_ratio"]
    tab["var_ratio_flag"] = vr.notna() & ((vr < lo) | (vr > hi))
    tab["kind"] = tab["variable"].map(kind_of)
    return BalanceTable(
        table=tab,
        sample_sizes=pd.DataFrame(sizes),
        smd_threshold=smd_threshold,
        var_ratio_bounds=(lo, hi),
        binary=binary,
        treat=t,
        distance=dv,
        weights=weights_of.get("after"),
    )


def _pre_period_sources(
    data: pd.DataFrame, pre_period: pd.DataFrame | Sequence[str] | Mapping[str, Callable[[], np.ndarray]]
) -> list[DesignSource]:
    """The pre-period outcomes as numeric columns with one row per row of ``data`` (in its order), read a column
    at a time (no copy of a 10⁷-row frame); from a mapping of loaders without values (:func:`_pre_period_column`
    loads each when its rows are computed)."""
    if isinstance(pre_period, Mapping):
        return [DesignSource(str(c)) for c in pre_period]
    if isinstance(pre_period, pd.DataFrame):
        if len(pre_period) != len(data):
            raise InputError(
                f"balance_table: pre_period has {len(pre_period)} rows, the data {len(data)}; give one row per row"
            )
        pre = pre_period
    else:
        missing = [c for c in pre_period if c not in data.columns]
        if missing:
            raise InputError(f"balance_table: pre-period columns {missing} are not in the data")
        pre = data
    columns = list(pre.columns) if isinstance(pre_period, pd.DataFrame) else list(pre_period)
    bad = [c for c in columns if not pd.api.types.is_numeric_dtype(pre[c]) or pre[c].isna().any()]
    if bad:
        raise InputError(f"balance_table: pre-period columns {bad} must be numeric without missing values")
    return [DesignSource(str(c), values=numeric_values(pre[c])) for c in columns]


def _each_row_once(pos: np.ndarray, n: int) -> bool:
    """Whether ``pos`` (n positions, as checked) holds each of 0..n−1 once: all in range and every row seen (a
    flag per row, not a count: 5·10⁷ rows)."""
    if n == 0:
        return True
    if pos.min() < 0 or pos.max() >= n:
        return False
    seen = np.zeros(n, dtype=bool)
    seen[pos] = True
    return bool(seen.all())


def _pre_period_column(name: str, pre_period, n: int) -> tuple[np.ndarray, np.ndarray | None]:
    """A pre-period column from its loader, checked as :func:`_pre_period_sources` checks the others: the values
    and None (the data's row order), or the values and their rows (a permutation of 0..n−1, checked where the
    treatment and weights are taken into that order)."""
    got = pre_period[name]()
    values, pos = got if isinstance(got, tuple) else (got, None)
    s = pd.Series(values)
    if len(s) != n or (pos is not None and len(pos) != n):
        raise InputError(f"balance_table: pre-period column {name!r} has {len(s)} rows, the data {n}")
    if not pd.api.types.is_numeric_dtype(s) or s.isna().any():
        raise InputError(f"balance_table: pre-period columns {[name]} must be numeric without missing values")
    return numeric_values(s), pos


def match_balance(result, covariates: Sequence[str], *, binary: str = "std", **kw) -> BalanceTable:
    """:func:`balance_table` for a :class:`~finsam_effekt.matching.MatchResult` (its data, weights and distance,
    as ``summary(matchit_object)``), with the unmatched treated counted by reason. ``pre_period=`` (one row per
    row of the result's data) adds the pre-period outcome rows."""
    bt = balance_table(
        result.data,
        result.treatment,
        covariates,
        result.weights,
        distance=result.distance if result.options.get("has_distance", True) else None,
        binary=binary,
        **kw,
    )
    bt.unmatched_reasons = result.unmatched["reason"].value_counts().sort_index()
    return bt
