"""The cost-benefit figures: one financier's waterfall of items and the tornado chart of its one-way sensitivity.

Both take a :class:`~finsam_effekt.cost_benefit.results.CostBenefitResults` and return a matplotlib Figure drawn
with the Agg backend (no display needed); ``CostBenefitResults.waterfall_figure``/``tornado_figure`` call them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from ..options import PERSPECTIVES, check
from .items import PUBLIC_FINANCE, SOCIO_ECONOMIC

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .results import CostBenefitResults


def _perspective(financier: str, perspective: str | None) -> str:
    """The perspective asked for, or the financier's own: ``society`` is socio-economic, every other public
    finance."""
    if perspective is None:
        return SOCIO_ECONOMIC if financier == "society" else PUBLIC_FINANCE
    check("perspective", perspective, PERSPECTIVES)
    return perspective


def waterfall_figure(
    results: CostBenefitResults, financier: str = "public_sector_total", perspective: str | None = None
) -> Figure:
    """Waterfall of one financier's items (cost, each gain) ending in the net (matplotlib Figure, Agg)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    persp = _perspective(financier, perspective)
    point = results.point
    sel = point[(point["financier"] == financier) & (point["perspective"] == persp)]
    if sel.empty:
        raise InputError(f"no financier {financier!r} in perspective {persp!r}")
    parts = sel[sel["item"] != "net"]
    fig, ax = plt.subplots(figsize=(7, 4))
    running = 0.0
    for i, v in enumerate(parts["pv_sek_per_participant"]):
        ax.bar(i, v, bottom=running, color="#2a7f62" if v >= 0 else "#b5442f")
        running += v
        ax.text(i, running, f"{v:,.0f}", ha="center", va="bottom", fontsize=7)
    net = float(sel.loc[sel["item"] == "net", "pv_sek_per_participant"].iloc[0])
    ax.bar(len(parts), net, color="#34495e")
    ax.text(len(parts), net, f"{net:,.0f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(parts) + 1), [*parts["item"], "net"], rotation=30, ha="right", fontsize=8)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel(f"PV per participant, SEK ({results.parameters.price_base_year})")
    ax.set_title(f"{financier} ({persp}, {results.method})")
    fig.tight_layout()
    return fig


def tornado_figure(
    results: CostBenefitResults, financier: str = "public_sector_total", perspective: str | None = None
) -> Figure:
    """Tornado chart of the one-way sensitivity of one financier's net (matplotlib Figure, Agg)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    persp = _perspective(financier, perspective)
    s = results.sensitivity
    s = s[(s["financier"] == financier) & (s["perspective"] == persp)].copy()
    if s.empty:
        raise InputError(f"no financier {financier!r} in perspective {persp!r}")
    s["swing"] = (s["net_high"] - s["net_low"]).abs()
    s = s.sort_values("swing")
    base = float(s["net_base"].iloc[0])
    fig, ax = plt.subplots(figsize=(8.5, 0.5 * len(s) + 1.8))
    y = np.arange(len(s))
    ax.barh(y, s["net_low"] - base, left=base, color="#b5442f", label="low value")
    ax.barh(y, s["net_high"] - base, left=base, color="#2a7f62", label="high value")
    ax.set_yticks(
        y, [f"{p} ({lo} / {hi})" for p, lo, hi in zip(s["parameter"], s["low"], s["high"], strict=True)]
    )
    ax.axvline(base, color="black", lw=0.8)
    ax.set_xlabel(f"net PV per participant, SEK ({results.parameters.price_base_year})")
    ax.set_title(f"One-way sensitivity: {financier} ({persp}, {results.method})", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
