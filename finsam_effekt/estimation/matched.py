"""Estimators on the matched sample: weighted mean difference, regression adjustment, matched difference-in-differences.

All three are the coefficient of ``treated`` in a weighted least-squares regression on the matched rows (the
matching weights as regression weights), with influence contributions for CR1 and the cluster bootstrap
(``inference.wls_influence``, ``inference.wls_bootstrap``):

* ``weighted_mean_diff`` — ``y ~ treated``: ATT = Σ_T w y / Σ_T w − Σ_C w y / Σ_C w (MatchIt; Ho, Imai, King &
  Stuart 2011); ``se="abadie_imbens"`` replaces its SE by the Abadie & Imbens (2006) matching variance.
* ``regression_adjustment`` — ``y ~ treated + covariates`` (Ho, Imai, King & Stuart 2007, "matching as
  preprocessing"); the covariates coded by ``design.design_matrix``'s rules.
* ``matched_did`` — the weighted mean difference of ``y − ȳ_pre``, ȳ_pre the unit's mean over u−12..u−1
  (cumulative k: ``y_cum − k ȳ_pre``), from ``{o}_pre`` columns or the ``outcome_paths`` table
  (:func:`pre_period_means`).
"""

from __future__ import annotations

import dataclasses
import math
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from ..schema import OUTCOMES
from .inference import (
    abadie_imbens_from_pairs,
    independent_wls_columns,
    wls_bootstrap,
    wls_influence,
)
from .results import Estimate
from .sample import Cell, FitContext, Fitted, Sample, SampleDesign, fit_cells, path_rows, require_columns

#: Bytes of WLS designs one call keeps (over all subgroups) for the next outcome, horizon and measure with the same
#: subgroup, kept rows and weights (least recently used dropped first). A national run's regression adjustment
#: has designs of 2.6·10⁵ rows × ~60 columns (125 MB) for each distinct set of kept rows.
WLS_CACHE_BYTES: int = 1 << 30


def _wls_cell(
    cell: Cell, context: FitContext, estimator: str, y: np.ndarray, adjust: bool
) -> Estimate | None:
    """The coefficient of treatment in WLS of ``y`` on (1, treatment[, covariates]) over the cell's kept rows."""
    opts = context.options
    w = cell.weights
    ok = np.isfinite(y) & (w > 0)
    d = cell.rows[opts.treatment].to_numpy(dtype=float)
    cl = cell.clusters
    all_ok = bool(ok.all())
    if not all_ok:
        y, w, cl, d = y[ok], w[ok], cl[ok], d[ok]
    n_t, n_c = int((d == 1).sum()), int((d == 0).sum())
    if n_t == 0 or n_c == 0:
        return None
    # the design, its reduction to independent columns and (X'WX)⁻¹ depend only on the rows kept, not on the
    # outcome: built once per subgroup and set of kept rows, reused for every outcome, horizon and measure (and
    # the cached cluster codes are one array, whose clusters the results count once)
    designs: OrderedDict = cell.shared.setdefault("wls", OrderedDict())  # one budget for every subgroup
    key = (cell.subgroup, adjust, ok.tobytes(), w.tobytes())
    hit = designs.get(key)
    if hit is None:
        x = np.column_stack([np.ones(len(y)), d])
        if adjust:
            if "design" not in cell.cache:
                cell.cache["design"] = SampleDesign(cell.rows, opts.covariates)
            x = np.column_stack([x, cell.cache["design"].rows(None if all_ok else ok)])
        x, c = independent_wls_columns(x, w, 1)
        bread = np.linalg.inv(x.T @ (x * w[:, None]))
        hit = designs[key] = (x, c, bread, cl)
        # the most recently used designs only, up to WLS_CACHE_BYTES (the one just built always stays)
        while len(designs) > 1 and sum(e[0].nbytes for e in designs.values()) > WLS_CACHE_BYTES:
            designs.popitem(last=False)
    else:
        designs.move_to_end(key)
    x, c, bread, cl = hit
    est, psi, n_params = wls_influence(y, x, w, c, bread=bread)
    boot = None if context.boot_counts is None else wls_bootstrap(y, x, w, c, cl, context.boot_counts)
    return Estimate(
        **cell.labels(),
        estimator=estimator,
        estimate=est,
        n_treated=n_t,
        n_control=n_c,
        rows=cl,
        psi=psi,
        n_params=n_params,
        boot=boot,
    )


def fit_weighted_mean_diff(sample: Sample, context: FitContext) -> Fitted:
    """``weighted_mean_diff`` on the matched sample (CR1, bootstrap or Abadie–Imbens SE)."""
    opts = context.options

    def one(cell: Cell) -> Estimate | None:
        e = _wls_cell(cell, context, "weighted_mean_diff", cell.values(), adjust=False)
        if e is not None and opts.se == "abadie_imbens":
            se = abadie_imbens_from_pairs(
                cell.rows, cell.column, opts.treatment, context.pairs, opts.distance
            )
            e = dataclasses.replace(e, se_override=se)
        return e

    return fit_cells(sample, context, "weighted_mean_diff", one)


def fit_regression_adjustment(sample: Sample, context: FitContext) -> Fitted:
    """``regression_adjustment`` on the matched sample (without covariates: the weighted mean difference)."""
    adjust = bool(context.options.covariates)
    return fit_cells(
        sample,
        context,
        "regression_adjustment",
        lambda cell: _wls_cell(cell, context, "regression_adjustment", cell.values(), adjust=adjust),
    )


def fit_matched_did(sample: Sample, context: FitContext) -> Fitted:
    """``matched_did`` on the matched sample: the pre-period means joined from ``pre_period=`` when given."""
    outcomes = list(context.options.outcomes)
    data = sample.frame
    need = [f"{o}_pre" for o in outcomes]
    if context.pre_period is not None:
        merged = with_pre_period_means(data, context.pre_period, outcomes)
        sample = dataclasses.replace(sample, frame=merged, scratch={})
    missing = [c for c in need if c not in sample.frame]
    if missing:
        raise InputError(
            f"matched_did needs pre-period mean columns {missing[:3]}...: pass pre_period=<outcome_paths "
            "table> or add '{outcome}_pre' columns (mean over months u-12..u-1)"
        )

    def one(cell: Cell) -> Estimate | None:
        pre = cell.rows[f"{cell.outcome}_pre"].to_numpy(dtype=float)
        y = cell.values() - (cell.horizon * pre if cell.measure == "cumulative" else pre)
        return _wls_cell(cell, context, "matched_did", y, adjust=False)

    return fit_cells(sample, context, "matched_did", one)


#: The months relative to u whose mean outcome is ``matched_did``'s pre-period value (u−12..u−1).
PRE_PERIOD_WINDOW: tuple[int, int] = (-12, -1)


def with_pre_period_means(data: pd.DataFrame, paths: pd.DataFrame, outcomes: Sequence[str]) -> pd.DataFrame:
    """``data`` with the ``{o}_pre`` columns of :func:`pre_period_means` of ``paths`` (replacing any it has),
    joined on the keys both have (``person_id``, ``ref_month``, ``treated``); ``data``'s index kept. What
    ``matched_did`` does with ``pre_period=``; done beforehand, only these columns need to stay in memory (the
    pipeline joins them from the paths' pre-period months alone)."""
    need = [f"{o}_pre" for o in outcomes]
    pre = pre_period_means(paths, outcomes)
    on = [k for k in ("person_id", "ref_month", "treated") if k in pre and k in data]
    merged = data.drop(columns=[c for c in need if c in data]).merge(pre, on=on, how="left")
    merged.index = data.index
    return merged


def pre_period_means(
    paths: pd.DataFrame,
    outcomes: Sequence[str] | None = None,
    window: tuple[int, int] = PRE_PERIOD_WINDOW,
    keys: Sequence[str] = ("person_id", "ref_month", "treated"),
    suffix: str = "_pre",
) -> pd.DataFrame:
    """Each unit's mean outcome over ``rel_month`` in ``window`` (default u−12..u−1) from ``outcome_paths``.

    Returns ``keys`` plus ``{o}{suffix}`` per outcome; the mean is over uncensored months (NaN if none).
    """
    outcomes = [o for o in (outcomes or OUTCOMES) if o in paths]
    require_columns(paths, [*keys, "rel_month", *outcomes], "outcome paths")
    p = path_rows(paths, window, [*keys, *outcomes])
    out = p.groupby(list(keys), sort=False, dropna=False, observed=True)[outcomes].mean().reset_index()
    return out.rename(columns={o: f"{o}{suffix}" for o in outcomes})


def weighted_mean_difference(
    df: pd.DataFrame, y: np.ndarray, treatment: str, weights: str | None, cluster: str
) -> tuple[float, float, int, int]:
    """Weighted difference in means of ``y`` (one value per row of ``df``) with its CR1 SE clustered by
    ``cluster``: (estimate, SE, n treated, n control); rows with a missing ``y`` or zero weight are left out and
    the estimate is NaN without treated or without controls. A plain-array form of ``weighted_mean_diff`` for
    outcomes that are no horizon column (the placebo checks of the sensitivity analysis)."""
    w = np.ones(len(df)) if weights is None or weights not in df else df[weights].to_numpy(float)
    ok = np.isfinite(y) & (w > 0)
    d = df[treatment].to_numpy(float)[ok]
    if len(d) == 0 or d.min() == d.max():  # no row observed (a month censored for all), or one arm only
        return float("nan"), float("nan"), int((d == 1).sum()), int((d == 0).sum())
    est, psi, p = wls_influence(y[ok], np.column_stack([np.ones(ok.sum()), d]), w[ok])
    cl = pd.factorize(df[cluster].astype(str).to_numpy()[ok])[0]
    s = np.bincount(cl, weights=psi)
    g, n = len(s), int(ok.sum())
    # CR1 needs more clusters than one and more rows than coefficients; otherwise the SE does not exist
    se = math.sqrt(g / (g - 1) * (n - 1) / (n - p) * float(np.sum(s**2))) if g > 1 and n > p else float("nan")
    return est, se, int((d == 1).sum()), int((d == 0).sum())
