"""The effects a cost-benefit weighs: the status effects on the SEK outcomes, and draws of them for Monte Carlo.

The calculation needs, for one estimator and subgroup, the status effect (treated minus counterfactual, SEK in
month u+h) on each outcome of :data:`REQUIRED_OUTCOMES` at horizons 1..K (:func:`select_effects`), and a matrix of
joint draws of those effects (:func:`draw_matrix`): the caller's (e.g. bootstrap replicates), or independent
normal draws from the standard errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..config.cost_benefit import MonteCarloSettings
from ..errors import InputError
from ..schema import parse_outcome_column

#: SEK outcome of each benefit group (names of ``schema.OUTCOMES``).
GROUP_OUTCOME: dict[str, str] = {
    "sickness": "sek_sickness",
    "disability": "sek_disability",
    "labour_market": "sek_labour_market",
    "unemployment": "sek_unemployment",
    "social_assistance": "social_assistance_sek",
}
EARNINGS_OUTCOME = "earnings_sek"
#: Outcomes the cost-benefit needs (status effects in month u+h, SEK).
REQUIRED_OUTCOMES: tuple[str, ...] = (*GROUP_OUTCOME.values(), EARNINGS_OUTCOME)


@dataclass(frozen=True)
class SelectedEffects:
    """Status effects of :data:`REQUIRED_OUTCOMES` for one estimator and subgroup, one entry per (outcome,
    horizon) in ``columns`` order (outcomes in :data:`REQUIRED_OUTCOMES` order, then horizons ascending)."""

    columns: list[tuple[str, int]]  # (outcome, horizon) in column order
    estimate: np.ndarray
    std_error: np.ndarray
    estimator: str = ""


def select_effects(
    effects: pd.DataFrame,
    estimator: str | None,
    subgroup: str,
    need_se: bool = True,
    notes: list[str] | None = None,
) -> SelectedEffects:
    """The status effects of ``REQUIRED_OUTCOMES`` for one estimator and subgroup, in a fixed order.

    Horizons without an estimate (NaN, e.g. too few uncensored persons) are left out and bridged by the stream's
    interpolation, with a note; a missing standard error is an error only when no draws are given.
    """
    need = {"outcome", "horizon_months", "measure", "subgroup", "estimator", "estimate", "std_error"}
    missing = need - set(effects.columns)
    if missing:
        raise InputError(
            f"effects: missing column(s) {sorted(missing)}; pass EffectResults.to_frame() (docs/tables.md)"
        )
    df = effects[(effects["measure"] == "status") & (effects["subgroup"] == subgroup)]
    df = df[df["outcome"].isin(REQUIRED_OUTCOMES)]
    estimators = sorted(df["estimator"].unique())
    if estimator is None:
        if len(estimators) > 1:
            raise InputError(f"effects: several estimators {estimators}; choose one with estimator=")
    else:
        if estimator not in estimators:
            raise InputError(f"effects: estimator {estimator!r} not found; available: {estimators}")
        df = df[df["estimator"] == estimator]
    nan = df["estimate"].isna()
    if nan.any() and notes is not None:
        dropped = ", ".join(
            f"{o} m{h}" for o, h in zip(df.loc[nan, "outcome"], df.loc[nan, "horizon_months"], strict=True)
        )
        notes.append(f"no estimate for {dropped}: interpolated from the neighbouring months")
    df = df[~nan]
    absent = [o for o in REQUIRED_OUTCOMES if o not in set(df["outcome"])]
    if absent:
        raise InputError(
            f"effects: no status effects (subgroup {subgroup!r}) for {absent}; the cost-benefit needs "
            f"{list(REQUIRED_OUTCOMES)} at horizons 1..K"
        )
    if df.duplicated(["outcome", "horizon_months"]).any():
        raise InputError("effects: more than one row per outcome and horizon after selection")
    if need_se and df["std_error"].isna().any():
        bad = df[df["std_error"].isna()]
        raise InputError(
            f"effects: no std_error for {bad['outcome'].iloc[0]} at month {int(bad['horizon_months'].iloc[0])} "
            f"({len(bad)} row(s)); pass joint draws (draws=) or effects with standard errors"
        )
    df = df.assign(_o=df["outcome"].map(REQUIRED_OUTCOMES.index)).sort_values(["_o", "horizon_months"])
    cols = [(str(o), int(h)) for o, h in zip(df["outcome"], df["horizon_months"], strict=True)]
    return SelectedEffects(
        cols, df["estimate"].to_numpy(float), df["std_error"].to_numpy(float), str(df["estimator"].iloc[0])
    )


def _parse_draw_column(c: Any) -> tuple[str, int] | None:
    if isinstance(c, tuple) and len(c) == 2:
        return str(c[0]), int(c[1])
    if isinstance(c, tuple) and len(c) == 3:  # EffectResults.draws(): (outcome, horizon_months, measure)
        return (str(c[0]), int(c[1])) if c[2] == "status" else None
    if isinstance(c, str):  # "{outcome}_m{horizon}" (schema.outcome_column)
        parsed = parse_outcome_column(c)
        if parsed is not None and parsed[2] == "status":
            return parsed[0], parsed[1]
    return None


def draw_matrix(
    eff: SelectedEffects, draws: pd.DataFrame | None, mc: MonteCarloSettings
) -> tuple[np.ndarray, str]:
    """Draws of the effects (``n_draws x len(eff.columns)``) and a sentence saying where they come from: the
    columns of ``draws`` matching ``eff.columns``, or ``estimate + z x std_error`` with independent standard
    normal ``z`` (seeded by ``mc.seed``)."""
    if draws is None:
        rng = np.random.default_rng(mc.seed)
        z = rng.standard_normal((mc.n_draws, len(eff.columns)))
        return (
            eff.estimate + z * eff.std_error,
            "independent normal draws from the standard errors (correlations across months and outcomes "
            "ignored; pass joint draws for a proper interval)",
        )
    parsed = {_parse_draw_column(c): c for c in draws.columns}
    absent = [c for c in eff.columns if c not in parsed]
    if absent:
        raise InputError(
            f"draws: no column for {absent[:5]}{' …' if len(absent) > 5 else ''}; name columns (outcome, horizon) "
            "or '{outcome}_m{horizon}'"
        )
    mat = draws[[parsed[c] for c in eff.columns]].to_numpy(float)
    if np.isnan(mat).any():
        raise InputError("draws: missing values in the draws")
    return mat, f"{len(mat)} joint draws supplied by the caller"
