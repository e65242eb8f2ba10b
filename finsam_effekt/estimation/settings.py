"""The settings of one effect estimation, typed and frozen (:class:`EffectOptions`), checked once.

``estimate_effects(data, se="bootstrap", n_boot=999)`` and ``estimate_effects(data, EffectOptions(se="bootstrap",
n_boot=999))`` are the same call: keyword settings are the fields of :class:`EffectOptions` (pyfixest resolves its
options into a typed spec the same way before handing them to a runner). Vocabularies come from
:mod:`finsam_effekt.options`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, fields

from ..errors import ConfigError
from ..options import CS_CONTROL_GROUPS, ESTIMATORS, MEASURES, SE_KINDS, check


def _names(value: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """A sequence of names as a tuple (one name given as a string is a sequence of one)."""
    if value is None:
        return None
    return (value,) if isinstance(value, str) else tuple(value)


@dataclass(frozen=True)
class EffectOptions:
    """What to estimate and how to infer, for :func:`~finsam_effekt.estimation.estimate_effects`.

    Attributes
    ----------
    outcomes : outcomes ``o`` to estimate (default None: every ``schema.OUTCOMES`` with horizon columns present).
    horizons : months k after the reference month u.
    measures : ``"status"`` (``{o}_m{k}``, the value in month u+k) and/or ``"cumulative"`` (``{o}_cum{k}``, the
        sum over months u+1..u+k); ``options.MEASURES``.
    estimators : names from ``options.ESTIMATORS``; what each does and which sample it needs is in
        ``estimation.REGISTRY``.
    treatment, weights : column names of the 0/1 treatment and the matching weights (``weights=None``: all 1).
    covariates : columns for regression adjustment and the propensity score (``design.design_matrix`` rules:
        text columns become indicators, a missing category is a level of its own, a missing number an error).
    se : ``"cluster"`` (CR1 by ``cluster``), ``"bootstrap"`` (cluster bootstrap, ``n_boot`` replicates seeded by
        ``random_state``) or ``"abadie_imbens"`` (Abadie & Imbens 2006 for ``weighted_mean_diff`` after
        nearest-neighbour matching; needs ``pairs=`` and a ``distance`` column; other estimators keep CR1).
    cluster : clustering column (``person_id`` default; ``subclass`` for matched-set clustering).
    subgroups : columns to split by (e.g. ``sex``, ``age_band`` — derived from ``age`` —, ``insats_type``,
        ``forbund_id``, ``public_support_before``); each value is a subgroup ``var=value`` with its own n.
    n_boot, random_state : bootstrap replicates and seed (``se="bootstrap"``).
    distance : the matching-distance column (``se="abadie_imbens"``).
    horizon_weights : prefix of per-horizon weight columns ``{prefix}{k}`` that multiply ``weights`` for the
        matched-sample estimators at horizon k, e.g. ``"ipcw_"`` (``cohort.later_start_ipcw``); rows with a
        missing (censored) weight are left out at that horizon; the weights are treated as known in the SEs.
    alpha : 1 − confidence level of every interval: ``estimate ± z·SE`` with z = Φ⁻¹(1 − α/2).
    estimand : the estimand in words for the results (default ``estimand.short_estimand()``: start now vs not
        now); the pipeline passes the one its ``later_treated`` design targets.
    cs_control_group : comparison units of ``cs_did``: ``"not_yet_treated"`` or ``"never_treated"``
        (``options.CS_CONTROL_GROUPS``; :func:`~finsam_effekt.estimation.callaway_santanna`).
    """

    outcomes: tuple[str, ...] | None = None
    horizons: tuple[int, ...] = (3, 6, 12)
    measures: tuple[str, ...] = MEASURES
    estimators: tuple[str, ...] = ("weighted_mean_diff", "regression_adjustment")
    treatment: str = "treated"
    weights: str | None = "weights"
    covariates: tuple[str, ...] = ()
    se: str = "cluster"
    cluster: str = "person_id"
    subgroups: tuple[str, ...] = ()
    n_boot: int = 499
    random_state: int | None = 0
    distance: str = "distance"
    horizon_weights: str | None = None
    alpha: float = 0.05
    estimand: str | None = None
    cs_control_group: str = "not_yet_treated"

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise the sequences once, here
        set_(self, "outcomes", _names(self.outcomes))
        set_(self, "horizons", tuple(int(k) for k in self.horizons))
        for name in ("measures", "estimators", "covariates", "subgroups"):
            set_(self, name, _names(getattr(self, name)) or ())
        where = "estimate_effects"
        check("estimators", list(self.estimators), ESTIMATORS, where=where)
        check("measures", list(self.measures), MEASURES, where=where)
        check("se", self.se, SE_KINDS, where=where)
        check("cs_control_group", self.cs_control_group, CS_CONTROL_GROUPS, where=where)
        if not 0 < float(self.alpha) < 1:
            raise ConfigError(
                f"{where}: alpha must be between 0 and 1 (e.g. 0.05 for 95 % intervals); got {self.alpha!r}"
            )
        if self.se == "bootstrap" and (self.n_boot is None or self.n_boot < 2):
            raise ConfigError(f"{where}: se='bootstrap' needs n_boot >= 2, got {self.n_boot}")

    @classmethod
    def of(cls, options: EffectOptions | None = None, **settings: object) -> EffectOptions:
        """``options`` (default: the defaults) with the keyword ``settings`` replacing its fields."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise TypeError(
                f"estimate_effects() got unknown setting(s) {unknown}; the settings are the fields of "
                f"EffectOptions: {sorted(known)}"
            )
        base = options if options is not None else cls()
        return dataclasses.replace(base, **settings) if settings else base
