"""The local calculations' before/after "effect": participants' change from just before to after the start.

The local "samhällsekonomiska" calculations credit an insats with the participants' whole change in försörjning,
with no comparison group. :func:`before_after_effects` computes that "effect" from the participants' outcome
paths in the layout of an effect table, so the same cost-benefit can run on it
(``cost_benefit.before_after_cost_benefit``) and the difference to the matched result shows how much of the
"return" would have happened anyway (regression to the mean, business cycle).

References: Ashenfelter (1978) on the pre-programme dip.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError
from .effects import REQUIRED_OUTCOMES


def before_after_effects(
    paths: pd.DataFrame,
    before: tuple[int, int] = (-3, -1),
    after: tuple[int, int] = (1, 12),
    n_draws: int = 2000,
    seed: int = 20240801,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The local calculations' "effect": participants' change from before to after the start, no counterfactual.

    For each participant (``person_id``, ``ref_month``) of ``paths`` (the panel's ``outcome_paths`` for the
    participants: ``rel_month``, ``censored`` and the outcome columns; with a ``treated`` column only rows with
    ``treated == 1`` are used, so the panel's paths of treated and controls can be passed) and outcome ``o`` of
    ``REQUIRED_OUTCOMES``: ``before_i`` = mean of ``o`` over the uncensored months ``rel_month`` in
    ``before`` (default −3..−1), ``after_i`` = the same over ``after`` (default 1..12), and
    ``Δ_i = after_i − before_i``. Participants without an uncensored month in either window are left out. The
    "effect" is ``mean_i Δ_i``, taken as constant in every month ``1..after[1]`` (the local calculations
    credit the whole yearly change to the insats every year), with ``std_error = sd(Δ) / sqrt(n)``.

    Why −3..−1: the local calculations take the participant's försörjning *at the start* of the insats (SUS
    records it as ``support_at_start``) as what would have continued without it; the three months before the
    start month measure that situation from the registers with less month-to-month noise than one month. Since
    participants enter on a rising need for support (Ashenfelter 1978), this baseline is where regression to
    the mean inflates a before/after "effect" most; ``before=(-12, -1)`` gives the year-before variant.

    Returns
    -------
    effects : frame in the ``EffectResults.to_frame()`` layout (``estimator = "before_after"``, status measure).
    draws : joint draws (``n_draws`` rows, columns ``(outcome, horizon)``) from the normal with the sample
        covariance of the Δ across outcomes divided by n — one draw per outcome, the same in every month.
    """
    need = {"person_id", "ref_month", "rel_month", "censored", *REQUIRED_OUTCOMES}
    missing = need - set(paths.columns)
    if missing:
        raise InputError(f"outcome_paths: missing column(s) {sorted(missing)} (docs/tables.md)")
    key = ["person_id", "ref_month"]
    # one mask and the columns read (the paths of a national run are 1.3·10⁷ rows × 22 columns)
    keep = ~paths["censored"].to_numpy().astype(bool)
    if "treated" in paths.columns:
        keep &= paths["treated"].to_numpy() == 1
    df = paths.loc[keep, [*key, "rel_month", *REQUIRED_OUTCOMES]]

    def window(lo: int, hi: int) -> pd.DataFrame:
        w = df[(df["rel_month"] >= lo) & (df["rel_month"] <= hi)]
        return w.groupby(key, observed=True)[list(REQUIRED_OUTCOMES)].mean()

    b, a = window(*before), window(*after)
    both = a.join(b, how="inner", lsuffix="_after", rsuffix="_before")
    delta = pd.DataFrame(
        {o: both[f"{o}_after"] - both[f"{o}_before"] for o in REQUIRED_OUTCOMES}, index=both.index
    ).dropna()
    n = len(delta)
    if n < 2:
        raise InputError(f"outcome_paths: {n} participant(s) with months both before and after the start")
    mean = delta.mean().to_numpy()
    cov = np.atleast_2d(np.cov(delta.to_numpy().T, ddof=1)) / n
    se = np.sqrt(np.diag(cov))
    horizons = range(1, after[1] + 1)
    rows = [
        {
            "outcome": o,
            "horizon_months": h,
            "measure": "status",
            "subgroup": "all",
            "estimator": "before_after",
            "estimate": mean[j],
            "std_error": se[j],
            "ci_lower": mean[j] - 1.959964 * se[j],
            "ci_upper": mean[j] + 1.959964 * se[j],
            "p_value": np.nan,
            "n_treated": n,
            "n_control": 0,
        }
        for j, o in enumerate(REQUIRED_OUTCOMES)
        for h in horizons
    ]
    rng = np.random.default_rng(seed)
    z = rng.multivariate_normal(mean, cov, size=n_draws, method="eigh")
    draws = pd.DataFrame({(o, h): z[:, j] for j, o in enumerate(REQUIRED_OUTCOMES) for h in horizons})
    return pd.DataFrame(rows), draws
