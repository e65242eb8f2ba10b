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

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import progress
from .design import design_columns
from .errors import ConfigError, InputError

_EPS = float(np.sqrt(np.finfo(float).eps))
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
    """MatchIt's ``bal1var`` for one covariate (ATT, no sampling weights). See the module docstring.
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
    pre_period: pd.DataFrame | Sequence[str] | None = None,
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
        or columns of ``data`` (names).
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
    if not np.isin(t, [0, 1]).all():
        raise InputError(f"balance_table: treatment column {treatment!r} must be 0/1")
    t = t.astype(bool)
    # every level of a categorical covariate as its own indicator ``name=level`` (cobalt), a missing category as
    # the level "(missing)", constant columns kept (a balance table shows them): the models' one design rule
    # the columns are made one at a time when their statistics are computed (design.design_columns): on the full
    # candidate pool of a national register the whole matrix would not fit in memory
    columns = design_columns(data, covariates, what="balance_table")
    kind = ["covariate"] * len(columns)
    dv = None
    if distance is not None:
        dv = data[distance].to_numpy(float) if isinstance(distance, str) else np.asarray(distance, float)
        columns.insert(0, ("distance", lambda: dv))
        kind.insert(0, "distance")
    if pre_period is not None:
        pre = _pre_period_frame(data, pre_period)
        names = {c for c, _ in columns}
        clash = [c for c in pre.columns if c in names]
        if clash:
            raise InputError(f"balance_table: pre-period columns {clash} are also covariates; rename them")
        columns += [(c, lambda c=c: pre[c].to_numpy(dtype=float)) for c in pre.columns]
        kind += ["pre_period"] * pre.shape[1]
    kind_of = dict(zip([c for c, _ in columns], kind, strict=True))
    samples = {"before": np.ones(len(data))}
    if weights is not None:
        w = data[weights].to_numpy(float) if isinstance(weights, str) else np.asarray(weights, dtype=float)
        if len(w) != len(data) or np.any(w < 0) or not np.isfinite(w).all():
            raise InputError("balance_table: weights must be finite, non-negative, one per row")
        samples["after"] = w
    rows = []
    sizes = []
    lo, hi = var_ratio_bounds
    tracker = (
        progress.track("balance, column", len(samples) * len(columns)) if len(data) > 1_000_000 else None
    )
    # a column at a time, built once for all samples (on 10⁷ candidate rows building and sorting a column is
    # what costs); the rows come out sample by sample, as before
    by_sample: dict[str, list[dict]] = {smp: [] for smp in samples}
    for col, values in columns:
        x = values()
        # the eCDF statistics of a non-binary column need its sort order, the same in every sample
        order = None if np.all((x == 0) | (x == 1)) else np.argsort(x, kind="stable")
        for smp, w in samples.items():
            st = balance_stats(x, t, w, binary=binary, order=order)
            if tracker is not None:
                tracker.step()
            st.update(variable=col, sample=smp)
            by_sample[smp].append(st)
        del x
    for smp, w in samples.items():
        rows += by_sample[smp]
        for g, m in (("treated", t), ("control", ~t)):
            sizes.append({"sample": smp, "group": g, "n": int((w[m] > 0).sum()), "ess": ess(w[m])})
    tab = pd.DataFrame(rows)[["variable", "sample", *STAT_COLUMNS]]
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
        weights=samples.get("after"),
    )


def _pre_period_frame(data: pd.DataFrame, pre_period: pd.DataFrame | Sequence[str]) -> pd.DataFrame:
    """The pre-period outcomes as a numeric frame with one row per row of ``data`` (in its order)."""
    if isinstance(pre_period, pd.DataFrame):
        if len(pre_period) != len(data):
            raise InputError(
                f"balance_table: pre_period has {len(pre_period)} rows, the data {len(data)}; give one row per row"
            )
        pre = pre_period  # read by position, a column at a time (no copy of a 10⁷-row frame)
    else:
        missing = [c for c in pre_period if c not in data.columns]
        if missing:
            raise InputError(f"balance_table: pre-period columns {missing} are not in the data")
        pre = data[list(pre_period)]
    bad = [c for c in pre.columns if not pd.api.types.is_numeric_dtype(pre[c]) or pre[c].isna().any()]
    if bad:
        raise InputError(f"balance_table: pre-period columns {bad} must be numeric without missing values")
    return pre


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
