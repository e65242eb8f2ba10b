"""The cost-benefit result: present values per financier and perspective, with their intervals and break-even.

:class:`CostBenefitResults` also holds the one-way sensitivity and, when run, the before/after result;
:func:`compare_methods` sets the two methods' nets side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..config.cost_benefit import CostBenefitParameters
from ..errors import InputError
from ..options import PERSPECTIVES, check
from . import figures
from .items import PUBLIC_FINANCE

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass
class CostBenefitResults:
    """Cost-benefit per financier and perspective (present values per participant, SEK of ``price_base_year``).

    Attributes
    ----------
    method : ``counterfactual`` (matched effects) or ``before_after`` (the local calculations' method).
    point : item values at the effect estimates (``perspective, financier, item, pv_sek_per_participant``).
    draws : Monte Carlo item values (``n_draws x items``, columns as the rows of ``point``).
    break_even, sensitivity : see :meth:`break_even_frame` and :meth:`sensitivity_frame`.
    """

    method: str
    parameters: CostBenefitParameters
    cost_per_participant_sek: float
    effect_columns: list[tuple[str, int]]
    point: pd.DataFrame
    draws: np.ndarray
    draws_source: str
    break_even: pd.DataFrame
    sensitivity: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    before_after: CostBenefitResults | None = None
    estimator: str = ""
    subgroup: str = "all"

    def _interval(self) -> tuple[np.ndarray, np.ndarray]:
        a = (1 - self.parameters.monte_carlo.interval) / 2
        return np.quantile(self.draws, a, axis=0), np.quantile(self.draws, 1 - a, axis=0)

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: ``perspective, financier, item, pv_sek_per_participant, ci_lower, ci_upper`` (MC interval)."""
        lo, hi = self._interval()
        out = self.point.copy()
        out["ci_lower"], out["ci_upper"] = lo, hi
        return out

    def net(self, perspective: str = PUBLIC_FINANCE) -> pd.Series:
        """Point net present value per financier of one perspective (``options.PERSPECTIVES``)."""
        check("perspective", perspective, PERSPECTIVES)
        p = self.point
        sel = p[(p["perspective"] == perspective) & (p["item"] == "net")]
        return sel.set_index("financier")["pv_sek_per_participant"]

    def monte_carlo_frame(self) -> pd.DataFrame:
        """Per financier: MC mean of the net, its central interval and ``P(net > 0)``."""
        lo, hi = self._interval()
        rows = []
        for i, r in self.point.iterrows():
            if r["item"] != "net":
                continue
            d = self.draws[:, i]
            rows.append(
                {
                    "perspective": r["perspective"],
                    "financier": r["financier"],
                    "net_point": r["pv_sek_per_participant"],
                    "mc_mean": float(d.mean()),
                    "ci_lower": float(lo[i]),
                    "ci_upper": float(hi[i]),
                    "p_net_positive": float((d > 0).mean()),
                }
            )
        return pd.DataFrame(rows)

    def break_even_frame(self) -> pd.DataFrame:
        """Per financier: PV cost, gains, net, benefit-cost ratio and the two break-even figures."""
        return self.break_even.copy()

    def sensitivity_frame(self) -> pd.DataFrame:
        """One-way sensitivity of the net (``parameter, low, high, perspective, financier, net_base, net_low, net_high``)."""
        return self.sensitivity.copy()

    def comparison_frame(self) -> pd.DataFrame:
        """Net per financier by this method and by the before/after method (needs ``before_after``)."""
        if self.before_after is None:
            raise InputError(
                "no before/after result: pass before_after_paths= (the participants' outcome_paths) to cost_benefit"
            )
        return compare_methods(self, self.before_after)

    def summary(self) -> str:
        p = self.parameters
        lines = [
            f"Cost-benefit per participant ({self.method}; effects: estimator {self.estimator}, subgroup "
            f"{self.subgroup}), SEK in {p.price_base_year} prices",
            f"cost per participant {self.cost_per_participant_sek:,.0f}; horizon {p.horizon_years:g} years; "
            f"real discount rate {p.discount_rate:.1%}; persistence {p.persistence.kind}; "
            f"effects estimated to month {max(h for _, h in self.effect_columns)}; mcpf {p.mcpf:g}",
            f"uncertainty: {self.draws_source}; {len(self.draws)} draws, "
            f"{p.monte_carlo.interval:.0%} interval",
            "",
            f"{'perspective':<15}{'financier':<21}{'cost':>11}{'gains':>11}{'net':>11}{'BCR':>7}"
            f"{'P(net>0)':>9}{'interval':>25}{'BE scale':>9}{'BE yrs':>8}",
        ]
        mc = self.monte_carlo_frame().set_index(["perspective", "financier"])
        for _, r in self.break_even.iterrows():
            m = mc.loc[(r["perspective"], r["financier"])]
            bcr = "" if not np.isfinite(r["benefit_cost_ratio"]) else f"{r['benefit_cost_ratio']:.2f}"
            lines.append(
                f"{r['perspective']:<15}{r['financier']:<21}{r['pv_cost']:>11,.0f}{r['pv_gains']:>11,.0f}"
                f"{r['pv_net']:>11,.0f}{bcr:>7}{m['p_net_positive']:>9.2f}"
                f"{f'[{m.ci_lower:,.0f}; {m.ci_upper:,.0f}]':>25}"
                f"{r['break_even_effect_scale']:>9.2f}{r['break_even_years']:>8.2f}"
            )
        lines += ["", "Public finance and socio-economic results are different questions: never add them."]
        if self.before_after is not None:
            lines += [
                "",
                "Beside it, the before/after method of the local calculations on the same participants:",
            ]
            cmp = self.comparison_frame()
            for r in cmp.itertuples(index=False):
                lines.append(
                    f"{r.perspective:<15}{r.financier:<21} net counterfactual {r.net_point_counterfactual:>11,.0f}"
                    f"   before/after {r.net_point_before_after:>11,.0f}   difference {r.difference:>11,.0f}"
                )
            lines.append(
                "The difference is change that would have happened anyway (e.g. regression to the mean)."
            )
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def waterfall_figure(
        self, financier: str = "public_sector_total", perspective: str | None = None
    ) -> Figure:
        """Waterfall of one financier's items (cost, each gain) ending in the net (:func:`figures.waterfall_figure`)."""
        return figures.waterfall_figure(self, financier, perspective)

    def tornado_figure(
        self, financier: str = "public_sector_total", perspective: str | None = None
    ) -> Figure:
        """Tornado chart of the one-way sensitivity of one financier's net (:func:`figures.tornado_figure`)."""
        return figures.tornado_figure(self, financier, perspective)


def compare_methods(counterfactual: CostBenefitResults, before_after: CostBenefitResults) -> pd.DataFrame:
    """Net PV per financier by both methods side by side (``difference = before_after − counterfactual``)."""
    cf = counterfactual.monte_carlo_frame()
    ba = before_after.monte_carlo_frame()
    out = cf[["perspective", "financier", "net_point", "ci_lower", "ci_upper"]].merge(
        ba[["perspective", "financier", "net_point", "ci_lower", "ci_upper"]],
        on=["perspective", "financier"],
        suffixes=("_counterfactual", "_before_after"),
    )
    out["difference"] = out["net_point_before_after"] - out["net_point_counterfactual"]
    return out
