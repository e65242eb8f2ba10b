"""Censoring of controls at their own later insats start (``later_treated="censor"``): the outcomes from that month
on are removed (:func:`censor_at_later_start`), and inverse probability of censoring weights restore what the
censoring would otherwise bias when the later start depends on how the control's situation develops after u
(:func:`later_start_ipcw`). Both read the cohort's ``later_start_month`` (``cohort.build_cohort``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import months as mo
from .errors import InputError
from .matching import PropensityResult, estimate_propensity
from .schema import OUTCOMES, outcome_column, parse_outcome_column

#: Month index standing for "no later start" (treated rows, controls who never start).
_NEVER = np.iinfo(np.int64).max


def _later_start_index(frame: pd.DataFrame) -> np.ndarray:
    """Month index of each control's own first start (``later_start_month``); :data:`_NEVER` for treated rows and
    controls who never start."""
    ls = frame["later_start_month"]
    has = (ls.notna() & (ls.astype(str) != "") & (frame["treated"] == 0)).to_numpy()
    L = np.full(len(frame), _NEVER, dtype=np.int64)
    if has.any():
        L[has] = mo.to_index(ls[has].astype(str))
    return L


def censor_at_later_start(frame: pd.DataFrame, outcomes: Sequence[str] = OUTCOMES) -> pd.DataFrame:
    """Censor controls' outcomes from their own first insats start (``later_treated="censor"``).

    Wide ``horizon_outcomes`` frames: ``{o}_m{k}`` and ``{o}_cum{k}`` become NaN for a control whose
    ``later_start_month`` L satisfies ``u + k ≥ L`` (the status or the sum would include a month in insats).
    Long ``outcome_paths`` frames (``month`` column): outcomes NaN and ``censored`` True where ``month ≥ L``.
    Treated rows are never changed. Returns a copy.
    """
    if "later_start_month" not in frame.columns:
        raise InputError("censor_at_later_start: the frame has no later_start_month column (from the cohort)")
    out = frame.copy()
    L = _later_start_index(out)
    if not (L < _NEVER).any():
        return out
    if "month" in out.columns and "rel_month" in out.columns:
        cens = mo.to_index(out["month"].astype(str)) >= L
        cols = [o for o in outcomes if o in out.columns]
        out.loc[cens, cols] = np.nan
        if "censored" in out.columns:
            out.loc[cens, "censored"] = True
        return out
    u = mo.to_index(out["ref_month"].astype(str))
    for c in out.columns:
        parsed = parse_outcome_column(c)
        if parsed is not None and parsed[0] in outcomes:
            cens = u + parsed[1] >= L
            if cens.any():
                out.loc[cens, c] = np.nan
    return out


@dataclass
class CensoringWeights:
    """Inverse probability of censoring weights for controls censored at their own later start.

    Attributes
    ----------
    weights : DataFrame aligned with the input frame (same index): ``ipcw_{k}`` for k = 1..K, 1 for treated rows,
        ``1 / Ŝ_i(k)`` for a control still uncensored at u+k and NaN for a control censored by then.
    hazard : the fitted pooled logit of a later start (``matching.PropensityResult``), or None when no control
        started later (then every weight is 1).
    n_person_months, n_events : rows and later starts the hazard was fitted on.
    """

    weights: pd.DataFrame
    hazard: PropensityResult | None
    n_person_months: int
    n_events: int

    def summary(self) -> str:
        w = self.weights
        last = w.columns[-1]
        ctrl = w[last].dropna()
        return (
            f"IPCW for later starts: pooled logit on {self.n_person_months} control person-months, "
            f"{self.n_events} later starts; weights at {last}: mean {ctrl.mean():.3f}, max {ctrl.max():.3f}"
        )


def later_start_ipcw(
    frame: pd.DataFrame,
    history: Callable[[pd.DataFrame], pd.DataFrame],
    covariates: Sequence[str],
    horizon: int,
    *,
    observed: str = "public_support",
    weights: str = "weights",
) -> CensoringWeights:
    """Inverse probability of censoring weights (IPCW) for ``later_treated="censor"``.

    Censoring a control at its own later start is informative when the start depends on how the control's
    situation develops after u (in the registers: a rise in support before entry). Under sequential
    ignorability of the later start given the register history, weighting each control still uncensored at u+k by
    the inverse of its probability of remaining uncensored restores the distribution of the uncensored
    counterfactual "no insats during follow-up" (Robins & Finkelstein 2000; Hernán & Robins 2020, ch. 12, 17):

        h_ij = P(L_i = u_i + j | L_i ≥ u_i + j, H_i(u_i + j)),   logit h_ij = x_ij'β + γ₁ j + γ₂ j²,
        Ŝ_i(k) = Π_{j=1..k} (1 − ĥ_ij),   ipcw_i(k) = 1 / Ŝ_i(k) if L_i > u_i + k, else censored,

    where ``x_ij`` are ``covariates`` measured at month u+j by ``history`` (the same register-history features
    as the propensity score, from months before u+j only) and the pooled logit is fitted on the control
    person-months at risk: matched controls (``weights`` > 0) with month u+j observed (``{observed}_m{j}`` not
    NaN: alive, resident, inside the data) and no start before u+j. Treated rows get weight 1. The weights multiply
    the matching weights per horizon (``estimate_effects(..., horizon_weights="ipcw_")``); standard errors treat
    them as known.

    Parameters
    ----------
    frame : the matched horizon outcomes before censoring, with ``person_id``, ``ref_month``, ``treated``,
        ``later_start_month`` (controls' own first start, empty if never), ``weights`` and ``{observed}_m{j}``
        for j = 1..``horizon``.
    history : maps a (``person_id``, ``ref_month``) key table to the history features at those months, one row
        per key in the same order (e.g. ``panel.history_features`` with the run's tables bound).
    covariates : feature columns for the hazard model (columns absent from the features or constant are left out).
    horizon : the largest k.
    """
    need = ["person_id", "ref_month", "treated", "later_start_month", weights]
    observed_at = {j: outcome_column(observed, j) for j in range(1, horizon + 1)}
    missing = [c for c in need if c not in frame.columns] + [
        c for c in observed_at.values() if c not in frame.columns
    ]
    if missing:
        raise InputError(
            f"later_start_ipcw: the outcomes table lacks {missing[:4]}; compute horizon_outcomes for every month "
            f"1..{horizon} on the matched cohort (with later_start_month) before censoring"
        )
    n = len(frame)
    u = mo.to_index(frame["ref_month"].astype(str))
    L = _later_start_index(frame)
    is_ctrl = frame["treated"].to_numpy() == 0
    ctrl = is_ctrl & (frame[weights].to_numpy(float) > 0)
    rows, js = [], []
    for j in range(1, horizon + 1):
        at_risk = ctrl & (L >= u + j) & frame[observed_at[j]].notna().to_numpy()
        idx = np.flatnonzero(at_risk)
        rows.append(idx)
        js.append(np.full(idx.size, j))
    r = np.concatenate(rows)
    j = np.concatenate(js)
    event = (L[r] == u[r] + j).astype(int)
    # cumulative log survival per row and horizon: Σ_{j ≤ k} log(1 − ĥ_ij) (0 without later starts: weights 1)
    cum = np.zeros((n, horizon + 1))
    fit = None
    if event.any():
        keys = pd.DataFrame(
            {"person_id": frame["person_id"].to_numpy()[r], "ref_month": mo.from_index(u[r] + j)}
        )
        feats = history(keys).reset_index(drop=True)
        covs = [c for c in covariates if c in feats.columns and feats[c].nunique(dropna=False) > 1]
        design = feats[covs].assign(_event=event, _j=j.astype(float), _j2=(j.astype(float) ** 2) / horizon)
        fit = estimate_propensity(design, "_event", [*covs, "_j", "_j2"])
        np.add.at(cum, (r, j), np.log1p(-fit.ps))
    cum = np.cumsum(cum, axis=1)
    out = pd.DataFrame(index=frame.index)
    cens_at = L - u  # a control is censored at horizon k when k ≥ L − u
    for k in range(1, horizon + 1):
        w = np.exp(-cum[:, k])
        out[f"ipcw_{k}"] = np.where(is_ctrl, np.where(cens_at <= k, np.nan, w), 1.0)
    return CensoringWeights(out, fit, int(r.size), int(event.sum()))
