"""The cost-benefit items per financier and perspective, each linear in the outcomes' present values.

Items (Δ = effect, treated minus counterfactual; taxable base ``Δy = Δearnings + Σ_taxable Δsek_g``), each
``item = Σ_o a_o PV_o + c``:

* cost: ``-share x C`` (state 50 %, region 25 %, kommuner 25 %; lag 2003:1210), the state share carried by FK
  by default (``state_cost_channel``).
* savings: ``-Δsek_g`` to the payer of group ``g`` (``schema.GROUP_PAYER``; a-kassa to the state or a fund).
* kommunal / regional income tax: ``rate x Δy``; state income tax ``0.20 x share_above_threshold x Δy``;
  payroll fees ``fee x Δearnings`` (state).
* participant: ``Δearnings + Σ Δsek - taxes on Δy``.
* society: ``(1 + fee) Δearnings - C + (mcpf - 1) x public_sector_total.net``.

With ``mcpf = 1``: ``society.net = public_sector_total.net + participant.net`` (transfers cancel), a check the
tests make. Every financier ends in a ``net`` item, the sum of its other items.

References: Boardman, Greenberg, Vining & Weimer (2018) on perspectives and transfers; ASEK (Trafikverket) for the
tax factor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..config.cost_benefit import CostBenefitParameters
from ..errors import InputError
from ..options import PERSPECTIVES
from ..schema import GROUP_PAYER
from .effects import EARNINGS_OUTCOME, GROUP_OUTCOME, REQUIRED_OUTCOMES

#: The two perspectives (``options.PERSPECTIVES``): transfers count in the first, cancel in the second.
PUBLIC_FINANCE, SOCIO_ECONOMIC = PERSPECTIVES


@dataclass(frozen=True)
class Item:
    """One item of one financier: ``value = Σ_o coef[o] · PV_o + const``."""

    perspective: str
    financier: str
    item: str
    coef: dict[str, float]  # outcome -> coefficient on PV_o
    const: float


def financier_items(params: CostBenefitParameters, cost: float) -> list[Item]:
    """All items as linear functions of the outcomes' present values (module docstring), each financier's items
    followed by its ``net``."""
    kt, rt = params.kommunal_tax_rate, params.regional_tax_rate
    st = params.state_tax_rate * params.share_above_state_threshold
    fee = params.payroll_fee_rate
    taxable = {EARNINGS_OUTCOME: 1.0, **{GROUP_OUTCOME[g]: 1.0 for g in params.taxable_groups}}

    def tax(rate: float) -> dict[str, float]:
        return {o: rate * v for o, v in taxable.items()}

    payer = {
        g: ("akassa_fund" if p == "akassa" and params.akassa_payer == "fund" else p)
        for g, p in GROUP_PAYER.items()
    }
    payer = {g: ("state" if p == "akassa" else p) for g, p in payer.items()}

    def savings(who: Sequence[str]) -> dict[str, float]:
        return {GROUP_OUTCOME[g]: -1.0 for g, p in payer.items() if p in who}

    c_state = params.cost_shares["state"] * cost
    c_region = params.cost_shares["region"] * cost
    c_kommun = params.cost_shares["kommun"] * cost
    items: list[Item] = []

    def add(
        fin: str, item: str, coef: dict[str, float], const: float = 0.0, persp: str = PUBLIC_FINANCE
    ) -> None:
        items.append(Item(persp, fin, item, coef, const))

    add("FK", "cost", {}, -params.state_cost_channel["FK"] * c_state)
    for g in ("sickness", "disability"):
        add("FK", f"savings_{g}", {GROUP_OUTCOME[g]: -1.0})
    add("AF", "cost", {}, -params.state_cost_channel["AF"] * c_state)
    add("AF", "savings_labour_market", {GROUP_OUTCOME["labour_market"]: -1.0})
    if params.akassa_payer == "fund":
        add("akassa_fund", "savings_unemployment", {GROUP_OUTCOME["unemployment"]: -1.0})
    add("state", "cost", {}, -c_state)
    add("state", "benefit_savings", savings(("FK", "AF", "state")))
    add("state", "state_income_tax", tax(st))
    add("state", "payroll_fees", {EARNINGS_OUTCOME: fee})
    add("region", "cost", {}, -c_region)
    add("region", "regional_income_tax", tax(rt))
    add("kommun", "cost", {}, -c_kommun)
    add("kommun", "savings_social_assistance", {GROUP_OUTCOME["social_assistance"]: -1.0})
    add("kommun", "kommunal_income_tax", tax(kt))
    add("public_sector_total", "cost", {}, -cost)
    add("public_sector_total", "benefit_savings", {o: -1.0 for o in GROUP_OUTCOME.values()})
    add("public_sector_total", "income_tax", tax(kt + rt + st))
    add("public_sector_total", "payroll_fees", {EARNINGS_OUTCOME: fee})
    add("participant", "earnings", {EARNINGS_OUTCOME: 1.0})
    add("participant", "benefits", {o: 1.0 for o in GROUP_OUTCOME.values()})
    add("participant", "income_tax", tax(-(kt + rt + st)))

    # public budget net (for the excess burden) = sum of public_sector_total items
    pub_coef: dict[str, float] = {}
    pub_const = 0.0
    for it in items:
        if it.financier == "public_sector_total":
            pub_const += it.const
            for o, v in it.coef.items():
                pub_coef[o] = pub_coef.get(o, 0.0) + v
    lam = params.mcpf - 1.0
    add("society", "production_value", {EARNINGS_OUTCOME: 1.0 + fee}, 0.0, SOCIO_ECONOMIC)
    add("society", "resource_cost", {}, -cost, SOCIO_ECONOMIC)
    add(
        "society",
        "excess_burden",
        {o: lam * v for o, v in pub_coef.items()},
        lam * pub_const,
        SOCIO_ECONOMIC,
    )

    # gains and net per financier
    out: list[Item] = []
    seen: list[tuple[str, str]] = []
    for it in items:
        if (it.perspective, it.financier) not in seen:
            seen.append((it.perspective, it.financier))
    for persp, fin in seen:
        parts = [it for it in items if it.financier == fin and it.perspective == persp]
        out.extend(parts)
        gain_coef: dict[str, float] = {}
        for it in parts:
            for o, v in it.coef.items():
                gain_coef[o] = gain_coef.get(o, 0.0) + v
        cost_const = sum(it.const for it in parts)
        out.append(Item(persp, fin, "net", gain_coef, cost_const))
    return out


def evaluate(items: list[Item], pv: np.ndarray) -> np.ndarray:
    """Item values for PV rows ``pv`` (``n x len(REQUIRED_OUTCOMES)``) -> ``n x len(items)``."""
    A = np.array([[it.coef.get(o, 0.0) for o in REQUIRED_OUTCOMES] for it in items])
    c = np.array([it.const for it in items])
    return pv @ A.T + c[None, :]


def share_above_threshold(annual_income_sek: Sequence[float] | np.ndarray, threshold_sek: float) -> float:
    """Share of persons whose annual income is at or above ``threshold_sek`` (e.g. the state-tax brytpunkt).

    When extra earnings are spread evenly over the persons, this is the share of the extra kronor taxed at the
    state rate: a value for ``share_above_state_threshold``.
    """
    y = np.asarray(annual_income_sek, dtype=float)
    y = y[~np.isnan(y)]
    if len(y) == 0:
        raise InputError("share_above_threshold: no incomes given")
    return float((y >= threshold_sek).mean())
