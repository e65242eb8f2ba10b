"""The cost-benefit calculation: effects → present values → items per financier, break-even and sensitivity.

:func:`cost_benefit` adds the Monte Carlo over the effects' draws, the break-even figures and the one-way
sensitivity; :func:`before_after_cost_benefit` runs the same calculation on the before/after "effect".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..config.cost_benefit import (
    CostBenefitParameters,
    PersistenceSettings,
    load_cost_benefit_parameters,
)
from ..errors import ConfigError
from .before_after import before_after_effects
from .costs import CostPerParticipant
from .effects import REQUIRED_OUTCOMES, SelectedEffects, draw_matrix, select_effects
from .items import Item, evaluate, financier_items
from .results import CostBenefitResults
from .streams import discount_factors, pv_matrix, pv_weights, stream_operator


def _point_values(
    eff: SelectedEffects, params: CostBenefitParameters, cost: float
) -> tuple[list[Item], np.ndarray]:
    items = financier_items(params, cost)
    pv = pv_matrix(eff.estimate, pv_weights(eff, params))
    return items, evaluate(items, pv)[0]


def _break_even(
    eff: SelectedEffects, params: CostBenefitParameters, cost: float, items: list[Item], values: np.ndarray
) -> pd.DataFrame:
    """Benefit-cost ratio, effect scale and persistence years at which each financier's net reaches zero.

    Effect scale ``s*``: the net is ``s G + c`` when every effect is multiplied by ``s``, so ``s* = -c / G``
    (``inf`` when the gains are not positive). Persistence years: with *constant* persistence, the shortest
    duration ``T`` of the effect stream (counted from the start, discounted, cost at 0) with net ≥ 0, searched up
    to ``break_even_max_years`` and interpolated within the month; ``inf`` if never, 0 if the cost is nil.
    """
    long = params.model_copy(
        update={
            "horizon_years": params.break_even_max_years,
            "persistence": PersistenceSettings(kind="constant"),
        }
    )
    n = int(round(12 * long.horizon_years))
    d = discount_factors(n, long.discount_rate)
    price = long.price_factor(long.effects_price_year)
    # cumulative PV per outcome and month: n x outcomes
    cum = np.zeros((n, len(REQUIRED_OUTCOMES)))
    for j, o in enumerate(REQUIRED_OUTCOMES):
        idx = [i for i, c in enumerate(eff.columns) if c[0] == o]
        L = stream_operator([eff.columns[i][1] for i in idx], n, long)
        cum[:, j] = np.cumsum(price * d * (L @ eff.estimate[idx]))
    cum_items = evaluate(items, cum)
    rows = []
    for i, it in enumerate(items):
        if it.item != "net":
            continue
        parts = [
            k
            for k, x in enumerate(items)
            if x.financier == it.financier and x.perspective == it.perspective and x.item != "net"
        ]
        cost_pv = 0.0 - sum(values[k] for k in parts if items[k].item in ("cost", "resource_cost"))
        gains = values[i] + cost_pv
        g_lin = values[i] - it.const  # effect-proportional part of the net
        if it.const == 0:
            scale = np.nan
        elif g_lin > 0:
            scale = -it.const / g_lin
        else:
            scale = np.inf
        with np.errstate(over="ignore", divide="ignore"):  # a near-zero cost gives an infinite ratio
            bcr = float(gains / cost_pv) if cost_pv > 0 else np.nan
        path = cum_items[:, i]
        if it.const == 0:
            years = np.nan
        else:
            ok = np.nonzero(path >= 0)[0]
            if len(ok) == 0:
                years = np.inf
            else:
                m = ok[0]
                prev = it.const if m == 0 else path[m - 1]
                frac = 1.0 if path[m] == prev else (0 - prev) / (path[m] - prev)
                years = (m + frac) / 12.0
        rows.append(
            {
                "perspective": it.perspective,
                "financier": it.financier,
                "pv_cost": cost_pv,
                "pv_gains": gains,
                "pv_net": values[i],
                "benefit_cost_ratio": bcr,
                "break_even_effect_scale": scale,
                "break_even_years": years,
            }
        )
    return pd.DataFrame(rows)


def _sensitivity(
    eff: SelectedEffects, params: CostBenefitParameters, cost: float, items: list[Item], values: np.ndarray
) -> pd.DataFrame:
    """Each financier's net when one assumption at a time takes its low and its high value
    (``params.sensitivity``)."""
    s = params.sensitivity
    kt, rt = params.kommunal_tax_rate, params.regional_tax_rate
    d = s.tax_rate_points
    cases: list[tuple[str, str, str, CostBenefitParameters, CostBenefitParameters, float, float]] = [
        (
            "discount_rate",
            f"{s.discount_rate[0]:.1%}",
            f"{s.discount_rate[1]:.1%}",
            params.model_copy(update={"discount_rate": s.discount_rate[0]}),
            params.model_copy(update={"discount_rate": s.discount_rate[1]}),
            cost,
            cost,
        ),
        (
            "persistence",
            s.persistence[0],
            s.persistence[1],
            params.model_copy(
                update={"persistence": params.persistence.model_copy(update={"kind": s.persistence[0]})}
            ),
            params.model_copy(
                update={"persistence": params.persistence.model_copy(update={"kind": s.persistence[1]})}
            ),
            cost,
            cost,
        ),
        (
            "horizon_years",
            f"{s.horizon_years[0]:g}",
            f"{s.horizon_years[1]:g}",
            params.model_copy(update={"horizon_years": s.horizon_years[0]}),
            params.model_copy(update={"horizon_years": s.horizon_years[1]}),
            cost,
            cost,
        ),
        (
            "income_tax_rates",
            f"-{d * 100:g} pp",
            f"+{d * 100:g} pp",
            params.model_copy(
                update={"kommunal_tax_rate": max(kt - d, 0.0), "regional_tax_rate": max(rt - d, 0.0)}
            ),
            params.model_copy(update={"kommunal_tax_rate": kt + d, "regional_tax_rate": rt + d}),
            cost,
            cost,
        ),
        (
            "cost",
            f"-{s.cost_relative:.0%}",
            f"+{s.cost_relative:.0%}",
            params,
            params,
            cost * (1 - s.cost_relative),
            cost * (1 + s.cost_relative),
        ),
    ]
    rows = []
    for name, lo_label, hi_label, p_lo, p_hi, c_lo, c_hi in cases:
        _, v_lo = _point_values(eff, p_lo, c_lo)
        _, v_hi = _point_values(eff, p_hi, c_hi)
        for i, it in enumerate(items):
            if it.item != "net":
                continue
            rows.append(
                {
                    "parameter": name,
                    "low": lo_label,
                    "high": hi_label,
                    "perspective": it.perspective,
                    "financier": it.financier,
                    "net_base": values[i],
                    "net_low": v_lo[i],
                    "net_high": v_hi[i],
                }
            )
    return pd.DataFrame(rows)


def cost_benefit(
    effects: pd.DataFrame,
    params: CostBenefitParameters | None = None,
    *,
    cost_per_participant_sek: float | CostPerParticipant | None = None,
    draws: pd.DataFrame | None = None,
    estimator: str | None = None,
    subgroup: str = "all",
    method: str = "counterfactual",
    before_after_paths: pd.DataFrame | None = None,
) -> CostBenefitResults:
    """Cost-benefit per financier from the estimated monthly status effects.

    Parameters
    ----------
    effects : ``EffectResults.to_frame()`` (docs/tables.md); status effects (``measure == "status"``) of
        ``REQUIRED_OUTCOMES`` at horizons 1..K for ``subgroup`` and one ``estimator``.
    params : parameters (default: ``load_cost_benefit_parameters()``).
    cost_per_participant_sek : cost per participant in ``price_base_year`` prices (a number or the result of
        :func:`cost_per_participant`); default ``params.cost_per_participant_sek`` moved from
        ``params.cost_price_year``.
    draws : joint draws of the effects, one column per (outcome, horizon) — tuples or ``"{outcome}_m{h}"`` — and
        one row per draw (e.g. ``EffectResults.draws(...)`` or bootstrap replicates). Without it the draws are
        independent normals from the standard errors (stated in the results).
    method : label carried in the results (``counterfactual`` or ``before_after``).
    before_after_paths : the participants' ``outcome_paths`` (rows with ``treated == 1`` are used when the column
        exists); when given, the before/after calculation of the local "samhällsekonomiska" reports is run with
        the same parameters and cost (:func:`before_after_cost_benefit`) and kept as ``results.before_after``,
        shown beside the counterfactual result in :meth:`CostBenefitResults.summary` and
        :meth:`CostBenefitResults.comparison_frame`.

    Returns
    -------
    CostBenefitResults
    """
    params = params or load_cost_benefit_parameters()
    if isinstance(cost_per_participant_sek, CostPerParticipant):
        cost = cost_per_participant_sek.for_subgroup(subgroup)
    elif cost_per_participant_sek is not None:
        cost = float(cost_per_participant_sek)
    elif params.cost_per_participant_sek is not None:
        cost = params.cost_per_participant_sek * params.price_factor(params.cost_price_year)
    else:
        raise ConfigError(
            "cost-benefit: no cost per participant; pass cost_per_participant_sek (e.g. from "
            "cost_per_participant(insats_costs, ...)) or set cost_per_participant_sek in the parameters file"
        )
    if not np.isfinite(cost) or cost < 0:
        raise ConfigError(f"cost-benefit: cost per participant must be a non-negative number, got {cost}")
    notes: list[str] = []
    eff = select_effects(effects, estimator, subgroup, need_se=draws is None, notes=notes)
    items, values = _point_values(eff, params, cost)
    mat, source = draw_matrix(eff, draws, params.monte_carlo)
    draw_values = evaluate(items, pv_matrix(mat, pv_weights(eff, params)))
    point = pd.DataFrame(
        {
            "perspective": [it.perspective for it in items],
            "financier": [it.financier for it in items],
            "item": [it.item for it in items],
            "pv_sek_per_participant": values,
        }
    )
    k = max(h for _, h in eff.columns)
    if k * 1.0 > 12 * params.horizon_years:
        notes.append(
            f"effects estimated to month {k} but the horizon is {params.horizon_years:g} years: truncated"
        )
    notes.append(
        "state = FK + AF + the rest of the state budget; public_sector_total counts every public body once; "
        "participant is not a financier"
    )
    notes.append(
        "not counted: grundavdrag/jobbskatteavdrag (tax items are upper bounds), lost leisure, displacement, "
        "health-care use"
    )
    return CostBenefitResults(
        method=method,
        parameters=params,
        cost_per_participant_sek=cost,
        effect_columns=eff.columns,
        point=point,
        draws=draw_values,
        draws_source=source,
        break_even=_break_even(eff, params, cost, items, values),
        sensitivity=_sensitivity(eff, params, cost, items, values),
        notes=notes,
        estimator=eff.estimator,
        subgroup=subgroup,
        before_after=(
            None
            if before_after_paths is None
            else before_after_cost_benefit(before_after_paths, params, cost_per_participant_sek=cost)
        ),
    )


def before_after_cost_benefit(
    paths: pd.DataFrame,
    params: CostBenefitParameters | None = None,
    *,
    cost_per_participant_sek: float | CostPerParticipant | None = None,
    before: tuple[int, int] = (-3, -1),
    after: tuple[int, int] = (1, 12),
) -> CostBenefitResults:
    """The cost-benefit by the local calculations' before/after method, with the same parameters.

    Uses :func:`before_after_effects` as if they were effects, with the same persistence, horizon, discounting,
    taxes and costs as the counterfactual calculation, so that the difference between the two results is the part
    of the before/after "return" that the matched comparison attributes to regression to the mean, the business
    cycle and other changes that would have happened anyway.
    """
    params = params or load_cost_benefit_parameters()
    eff, draws = before_after_effects(
        paths, before, after, n_draws=params.monte_carlo.n_draws, seed=params.monte_carlo.seed
    )
    return cost_benefit(
        eff, params, cost_per_participant_sek=cost_per_participant_sek, draws=draws, method="before_after"
    )
