"""Cost-benefit per financier, driven by the estimated effects (domain note §6, issue 8).

The calculation answers "is an insats worth its cost, and for whom?" from the *matched counterfactual* effects
(treated minus matched controls), split by financier, with two perspectives that are never summed
(``options.PERSPECTIVES``):

* **public finance** (offentligfinansiell): per financier — Försäkringskassan (``FK``), Arbetsförmedlingen
  (``AF``), the ``state`` in total (FK + AF + state income tax + payroll fees + a-kassa when the state pays it),
  the ``region``, the ``kommun`` — plus ``public_sector_total`` (all of them once) and, for transparency, the
  ``participant`` (change in disposable income; not a financier). Transfers count here.
* **socio-economic** (samhällsekonomisk), financier ``society``: production value (earnings plus payroll fees)
  minus the resource cost of the insats, optionally plus the excess burden of public funds
  ``(mcpf - 1) x net public budget``. Transfers cancel.

The modules, in the order of the calculation:

* ``costs.py`` — the insats cost per participant (:func:`cost_per_participant`);
* ``effects.py`` — the status effects on the SEK outcomes and their Monte Carlo draws;
* ``streams.py`` — monthly effect streams beyond the estimated months and their present values (formulas there);
* ``items.py`` — the items per financier, each linear in the present values (formulas there), which makes
  break-even effect scales closed form and the Monte Carlo a matrix product;
* ``model.py`` — :func:`cost_benefit` and :func:`before_after_cost_benefit`;
* ``results.py`` — :class:`CostBenefitResults`; ``figures.py`` — its waterfall and tornado charts;
* ``before_after.py`` — the local calculations' before/after "effect", run through the same calculation so the
  difference shows how much of that "return" would have happened anyway (regression to the mean, business
  cycle).

The parameter models live in :mod:`finsam_effekt.config.cost_benefit` and are re-exported here.

Not counted (state them with the result): grundavdrag and jobbskatteavdrag (they lower the income tax on small
extra earnings, so the tax items are upper bounds), the participant's lost leisure or home production,
displacement of other job seekers, and health-care use (the region's costs other than its share of the insats).

References: Boardman, Greenberg, Vining & Weimer (2018) on perspectives and transfers; ASEK (Trafikverket) for
the discount rate and the tax factor; Card, Kluve & Weber (2018) on the persistence of labour-market programme
effects; Sianesi (2004) on dynamic matching evaluations; Ashenfelter (1978) on the pre-programme dip.
"""

from ..config.cost_benefit import (
    DEFAULT_PARAMETERS_FILE,
    CostBenefitParameters,
    MonteCarloSettings,
    PersistenceSettings,
    SensitivitySettings,
    load_cost_benefit_parameters,
)
from .before_after import before_after_effects
from .costs import CostPerParticipant, cost_per_participant
from .effects import EARNINGS_OUTCOME, GROUP_OUTCOME, REQUIRED_OUTCOMES
from .figures import tornado_figure, waterfall_figure
from .items import share_above_threshold
from .model import before_after_cost_benefit, cost_benefit
from .results import CostBenefitInputs, CostBenefitResults, compare_methods
from .streams import discount_factors, stream_operator

__all__ = [
    "DEFAULT_PARAMETERS_FILE",
    "EARNINGS_OUTCOME",
    "GROUP_OUTCOME",
    "REQUIRED_OUTCOMES",
    "CostBenefitParameters",
    "CostBenefitInputs",
    "CostBenefitResults",
    "CostPerParticipant",
    "MonteCarloSettings",
    "PersistenceSettings",
    "SensitivitySettings",
    "before_after_cost_benefit",
    "before_after_effects",
    "compare_methods",
    "cost_benefit",
    "cost_per_participant",
    "discount_factors",
    "load_cost_benefit_parameters",
    "share_above_threshold",
    "stream_operator",
    "tornado_figure",
    "waterfall_figure",
]
