"""Propensity scores, nearest-neighbour matching with MatchIt 4.7.2's semantics, IPW weights and the match stage.

* :func:`estimate_propensity` (``propensity.py``) — the logit of treatment on the covariates, with calendar-month
  effects;
* :func:`match_nearest` and :class:`MatchResult` (``nearest.py``) — greedy nearest-neighbour matching exactly as
  ``MatchIt::matchit(method = "nearest")``, with the per-stratum search in ``search.py`` and the Mahalanobis
  distance in ``distance.py``;
* :func:`ipw_weights` (``weighting.py``) — ATT weights ``e / (1 − e)``;
* :func:`match_cohort` and :class:`CohortMatch` (``cohort_match.py``) — the pipeline's match stage in one call.

References
----------
Ho, D., Imai, K., King, G. & Stuart, E. (2011). MatchIt: nonparametric preprocessing for parametric causal
inference. Journal of Statistical Software 42(8).
"""

from ..options import M_ORDERS
from .cohort_match import CohortMatch, match_cohort
from .distance import mahalanobis, pooled_within_cov
from .nearest import REASON_CALIPER, REASON_NO_STRATUM, REASON_USED_UP, MatchResult, match_nearest
from .propensity import PropensityResult, estimate_propensity, linear_predictor
from .weighting import ipw_weights, sample_sizes

__all__ = [
    "M_ORDERS",
    "REASON_CALIPER",
    "REASON_NO_STRATUM",
    "REASON_USED_UP",
    "CohortMatch",
    "MatchResult",
    "PropensityResult",
    "estimate_propensity",
    "linear_predictor",
    "ipw_weights",
    "mahalanobis",
    "match_cohort",
    "match_nearest",
    "pooled_within_cov",
    "sample_sizes",
]
