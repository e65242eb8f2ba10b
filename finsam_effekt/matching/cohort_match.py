"""The match stage in one call: the cohort's propensity score, then nearest-neighbour matching or IPW weights.

:func:`match_cohort` does what the analysis config's ``matching`` section says; :class:`CohortMatch` holds the
propensity model, the matching (or weights) and the matched sample.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import ValidationError

from ..config import DEFAULT_COVARIATES, MatchingSettings, format_validation_error
from ..errors import ConfigError, InputError
from ..tables import plain
from .nearest import MatchResult, match_nearest
from .propensity import PropensityResult, estimate_propensity
from .weighting import ipw_weights, sample_sizes


@dataclass
class CohortMatch:
    """Result of :func:`match_cohort`: the propensity model, the matching (or IPW weights) and the matched rows.

    Attributes
    ----------
    data : DataFrame
        The cohort as given (the rows ``match.pairs`` and ``weights`` refer to, by position).
    settings : MatchingSettings
        The validated matching settings used (``finsam_effekt.config.MatchingSettings``).
    covariates : list of str
        Covariates of the propensity model.
    propensity : PropensityResult
        The fitted logit (with calendar-month fixed effects when ``settings.time_effects``).
    distance : numpy.ndarray
        The matching distance per cohort row: the propensity score (``distance: glm``) or its linear predictor
        (``distance: logit``).
    match : MatchResult or None
        The nearest-neighbour matching (``method: nearest``); None under ``method: ipw`` (no pairs).
    weights : numpy.ndarray
        Per cohort row: MatchIt's matching weights (``method: nearest``) or the ATT weights ``e / (1 − e)``
        (``method: ipw``); 0 = not in the matched sample.
    seed : int
        Seed passed to the matching (used by ``m_order: random``).
    """

    data: pd.DataFrame
    settings: MatchingSettings
    covariates: list[str]
    propensity: PropensityResult
    distance: np.ndarray
    match: MatchResult | None
    weights: np.ndarray
    seed: int

    @property
    def method(self) -> str:
        """``nearest`` or ``ipw``."""
        return str(self.settings.method)

    def matched_data(self) -> pd.DataFrame:
        """The matched sample (docs/tables.md, ``matching → MatchResult.matched_data()``).

        ``method: nearest``: ``MatchResult.matched_data()`` — the rows with a positive weight plus ``distance``,
        ``weights`` and ``subclass``. ``method: ipw``: every cohort row with a positive weight plus ``distance``
        and ``weights`` (no ``subclass``: there are no matched sets). The cohort's index is kept (the pairs refer
        to positions in ``data``).
        """
        if self.match is not None:
            return self.match.matched_data()  # plain types (MatchResult.matched_data)
        keep = self.weights > 0
        out = plain(self.data.loc[keep].copy())
        out["distance"] = np.asarray(self.distance, float)[keep]
        out["weights"] = self.weights[keep]
        return out

    def sample_sizes(self) -> pd.DataFrame:
        """Rows per group: all, matched (weight > 0), effective sample size of the weights (ESS = (Σw)² / Σw²)
        and unmatched — MatchIt's ``summary()$nn`` (same table as ``MatchResult.sample_sizes()``)."""
        if self.match is not None:
            return self.match.sample_sizes()
        return sample_sizes(self.data["treated"].to_numpy() == 1, self.weights)

    def summary(self) -> str:
        """The propensity model, then the matching (or weighting) and the sample sizes."""
        s = self.settings
        head = self.propensity.summary()
        if self.match is not None:
            return (
                f"{head}\nDistance: {'propensity score' if s.distance == 'glm' else 'linear predictor'}\n"
                + (self.match.summary())
            )
        trim = f"scores clipped to [{s.ipw_trim}, {1 - s.ipw_trim}]" if s.ipw_trim else "no trimming"
        return (
            f"{head}\nInverse-probability weighting, estimand ATT: treated 1, controls e/(1−e) ({trim}), "
            f"control weights normalised to the number of controls\n{self.sample_sizes().round(2).to_string()}"
        )


def match_cohort(
    cohort: pd.DataFrame,
    settings: MatchingSettings | Mapping | None = None,
    *,
    covariates: Sequence[str] | None = None,
    seed: int,
    **options,
) -> CohortMatch:
    """Match the staggered-entry cohort as an analysis config says — the pipeline's match stage in one call.

    ``finsam_effekt.pipeline`` (stage "match") and ``validation/montecarlo_pipeline.py`` both call this function,
    so a config and a direct call give the same matched sample bit for bit.

    Steps:

    1. Propensity score: :func:`estimate_propensity` of ``treated`` on ``covariates``, with calendar-month fixed
       effects (``time_effects="ref_month"``) when ``settings.time_effects`` (Li, Propert & Rosenbaum 2001).
    2. Distance: the score ``e`` (``distance: glm``, MatchIt's default) or its linear predictor
       ``log(e / (1 − e))`` (``distance: logit``; Austin 2011).
    3. ``method: nearest``: :func:`match_nearest` (MatchIt 4.7.2's ``method = "nearest"``) with ``ratio``,
       ``replace``, ``caliper``/``std_caliper``, ``exact`` (always including ``ref_month``), ``m_order``,
       ``reuse_max``, ``unit_id`` (→ ``unit_id="person_id"``) and ``random_state=seed``.
       ``method: ipw``: :func:`ipw_weights` on ``e`` — treated 1, controls ``e / (1 − e)`` normalised to the number
       of controls, ``e`` clipped to ``[ipw_trim, 1 − ipw_trim]`` when set (Hirano, Imbens & Ridder 2003).

    Parameters
    ----------
    cohort : DataFrame
        The ``cohort`` table (docs/tables.md): ``person_id``, ``ref_month``, ``treated`` (0/1) and the covariates.
    settings : MatchingSettings or mapping, optional
        The config's ``matching`` section (``AnalysisConfig.matching``) or a mapping with its keys; default: the
        config defaults (1:1 nearest on the propensity score without replacement, caliper 0.2 SD, exact on
        ``ref_month``, largest first, calendar-month effects in the score).
    covariates : sequence of str, optional
        Propensity-model covariates; default ``config.DEFAULT_COVARIATES`` (the config's default).
    seed : int
        The analysis seed (``AnalysisConfig.seed``); only ``m_order: random`` draws from it.
    **options
        Matching settings as keyword arguments (``ratio=2``, ``caliper=None``, …); they override ``settings``
        and are validated as the config's ``matching`` section is.

    Returns
    -------
    CohortMatch
        ``matched_data()`` is the matched sample for the outcome stage; ``match`` the :class:`MatchResult`
        (None under IPW); ``propensity``, ``distance`` and ``weights`` per cohort row.

    Raises
    ------
    ConfigError
        Invalid settings (an unknown key, a value out of range).
    InputError
        A covariate, ``treated`` or ``ref_month`` is not in the cohort.

    Examples
    --------
    >>> res = match_cohort(cohort, cfg.matching, covariates=cfg.covariates, seed=cfg.seed)  # doctest: +SKIP
    >>> res = match_cohort(cohort, ratio=2, replace=True, seed=1)  # doctest: +SKIP
    """
    if isinstance(settings, MatchingSettings) and not options:
        m = settings
    else:
        if settings is None:
            base: dict = {}
        elif isinstance(settings, MatchingSettings):
            base = settings.model_dump()
        elif isinstance(settings, Mapping):
            base = dict(settings)
        else:
            raise ConfigError(
                "match_cohort: settings must be the config's MatchingSettings or a mapping, got "
                f"{type(settings).__name__}"
            )
        try:
            m = MatchingSettings.model_validate({**base, **options})
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, "match_cohort: matching")) from exc
    covs = list(DEFAULT_COVARIATES if covariates is None else covariates)
    missing = [c for c in covs if c not in cohort.columns]
    if missing:
        raise InputError(f"covariates {missing} are not in the cohort table; known: {sorted(cohort.columns)}")
    for col in ("treated", "ref_month"):
        if col not in cohort.columns:
            raise InputError(f"match_cohort: the cohort has no {col!r} column (cohort.build_cohort makes it)")
    ps = estimate_propensity(
        cohort, "treated", covs, time_effects="ref_month" if m.time_effects else None,
        fit_rows=m.propensity_fit_rows, seed=seed,
    )  # fmt: skip
    distance = ps.ps if m.distance == "glm" else ps.linear_predictor
    if m.method == "ipw":
        trim = (m.ipw_trim, 1 - m.ipw_trim) if m.ipw_trim else None
        w = ipw_weights(np.asarray(ps.ps, float), cohort["treated"].to_numpy(), trim=trim)
        return CohortMatch(cohort, m, covs, ps, np.asarray(distance, float), None, w, seed)
    try:
        res = match_nearest(
            cohort,
            "treated",
            distance,
            ratio=m.ratio,
            replace=m.replace,
            caliper=m.caliper,
            std_caliper=m.std_caliper,
            exact=list(m.exact),
            m_order=m.m_order,
            unit_id="person_id" if m.unit_id else None,
            reuse_max=m.reuse_max,
            random_state=seed,
        )
    except InputError as exc:
        k, n = len(ps.design_columns), int(ps.n_treated)
        if "no treated row found a control" not in str(exc) or n > k:
            raise
        # more coefficients than participants: the model separates them from every candidate
        raise InputError(
            f"{exc}. The propensity model has {k} coefficients for {n} participants, so it separates the "
            "participants from every candidate and no candidate lies within the caliper. Widen the window (more "
            "participants) or give fewer covariates (`covariates:` in the config)"
        ) from None
    return CohortMatch(cohort, m, covs, ps, distance, res, res.weights, seed)
