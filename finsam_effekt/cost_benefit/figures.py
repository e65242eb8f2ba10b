"""The cost-benefit figures of a results object: one financier's waterfall and the tornado of its sensitivity.

They are the report's figures (``report.figures.figure_waterfall`` / ``figure_tornado``: labels and numbers in
the report's language, no code names) drawn from the result's own tables, so a notebook, the ``cost-benefit``
command and ``report.html`` show the same chart. Both return a matplotlib Figure drawn with the Agg backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    results: CostBenefitResults,
    financier: str = "public_sector_total",
    perspective: str | None = None,
    *,
    lang: str = "en",
) -> Figure:
    """Waterfall of one financier's items (its share of the cost, each gain) ending in the net, in ``lang``;
    the state's shows Försäkringskassan's and Arbetsförmedlingen's items as its parts."""
    from ..report.figures import figure_waterfall  # the one drawing, labelled for readers

    persp = _perspective(financier, perspective)
    frame = results.to_frame()
    frame = frame[frame["perspective"] == persp]
    if not (frame["financier"] == financier).any():
        raise InputError(f"no financier {financier!r} in perspective {persp!r}")
    return figure_waterfall(frame, financier, lang, price_year=results.parameters.price_base_year)


def tornado_figure(
    results: CostBenefitResults,
    financier: str = "public_sector_total",
    perspective: str | None = None,
    *,
    lang: str = "en",
) -> Figure:
    """Tornado chart of the one-way sensitivity of one financier's net, in ``lang``."""
    from ..report.figures import figure_tornado  # the one drawing, labelled for readers

    persp = _perspective(financier, perspective)
    s = results.sensitivity_table()
    s = s[s["perspective"] == persp]
    if not (s["financier"] == financier).any():
        raise InputError(f"no financier {financier!r} in perspective {persp!r}")
    return figure_tornado(s, financier, lang, price_year=results.parameters.price_base_year)
