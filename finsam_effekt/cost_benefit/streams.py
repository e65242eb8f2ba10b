"""Monthly effect streams beyond the estimated horizons, and their discounted present values.

Let ``e_o(h)`` be the status effect on outcome ``o`` (SEK in month ``u+h``) at the estimated horizons
``h_1 < ... < h_J = K``. The monthly stream ``x_o(m)``, ``m = 1..M`` (``M = 12 x horizon_years``) is

* ``m <= h_1``: ``e_o(h_1)``; ``h_j <= m <= h_{j+1}``: linear interpolation (exact when every month is estimated);
* ``m > K``: ``b_o x f(m - K)`` with ``b_o`` the mean of ``x_o`` over the last ``persistence_base_months``
  estimated months and ``f`` the persistence: ``none`` 0, ``constant`` 1, ``linear_decay`` ``max(0, 1 - t/(12Y))``,
  ``exponential`` ``0.5 ** (t / (12 H))``.

``PV_o = sum_m x_o(m) (1 + r) ** (-m / 12)`` with the real discount rate ``r`` (monthly flows, annual rate; the
cost is paid at ``m = 0``, undiscounted). Both steps are linear in the effects, so ``PV_o = w_o · e``
(:func:`pv_weights`): the Monte Carlo is a matrix product (:func:`pv_matrix`).

References: Card, Kluve & Weber (2018) on the persistence of labour-market programme effects; ASEK (Trafikverket)
for the discount rate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..config.cost_benefit import CostBenefitParameters, PersistenceSettings
from .effects import REQUIRED_OUTCOMES, SelectedEffects


def _persistence_factor(t: np.ndarray, p: PersistenceSettings) -> np.ndarray:
    """Share of the base effect left ``t`` months after the last estimated month."""
    if p.kind == "none":
        return np.zeros_like(t, dtype=float)
    if p.kind == "constant":
        return np.ones_like(t, dtype=float)
    if p.kind == "linear_decay":
        return np.clip(1.0 - t / (12.0 * p.years), 0.0, None)
    return 0.5 ** (t / (12.0 * p.half_life_years))


def stream_operator(horizons: Sequence[int], n_months: int, params: CostBenefitParameters) -> np.ndarray:
    """Matrix ``L`` (``n_months x J``) mapping the effects at ``horizons`` to the monthly stream ``x = L e``.

    Months up to ``K = max(horizons)`` interpolate linearly between estimated horizons (constant before the
    first); later months carry ``b = mean(x[K-b+1..K])`` (``b = persistence_base_months``) times the
    persistence factor (module docstring).
    """
    h = np.asarray(sorted(horizons), dtype=float)
    k = int(h[-1])
    rows = max(n_months, k)
    L = np.zeros((rows, len(h)))
    for m in range(1, k + 1):
        if m <= h[0]:
            L[m - 1, 0] = 1.0
            continue
        j = int(np.searchsorted(h, m, side="left"))
        if h[j] == m:
            L[m - 1, j] = 1.0
        else:
            t = (m - h[j - 1]) / (h[j] - h[j - 1])
            L[m - 1, j - 1], L[m - 1, j] = 1 - t, t
    b = min(params.persistence_base_months, k)
    base = L[k - b : k].mean(axis=0)
    if rows > k:
        f = _persistence_factor(np.arange(1, rows - k + 1, dtype=float), params.persistence)
        L[k:] = f[:, None] * base[None, :]
    return L[:n_months]


def discount_factors(n_months: int, rate: float) -> np.ndarray:
    """``d_m = (1 + r) ** (-m / 12)`` for ``m = 1..n_months``."""
    return (1.0 + rate) ** (-np.arange(1, n_months + 1) / 12.0)


def pv_weights(eff: SelectedEffects, params: CostBenefitParameters) -> dict[str, np.ndarray]:
    """Per outcome, the weight vector over all effect columns with ``PV_o = w_o · e``."""
    n_months = int(round(12 * params.horizon_years))
    d = discount_factors(n_months, params.discount_rate)
    price = params.price_factor(params.effects_price_year)
    out: dict[str, np.ndarray] = {}
    for o in REQUIRED_OUTCOMES:
        idx = [i for i, c in enumerate(eff.columns) if c[0] == o]
        L = stream_operator([eff.columns[i][1] for i in idx], n_months, params)
        w = np.zeros(len(eff.columns))
        w[idx] = price * (d @ L)
        out[o] = w
    return out


def pv_matrix(eff_values: np.ndarray, weights: dict[str, np.ndarray]) -> np.ndarray:
    """Present values ``PV_o`` (columns in :data:`REQUIRED_OUTCOMES` order) for effect rows ``eff_values`` (one
    row per draw, or a single vector), with the :func:`pv_weights`."""
    W = np.column_stack([weights[o] for o in REQUIRED_OUTCOMES])
    return np.atleast_2d(eff_values) @ W
