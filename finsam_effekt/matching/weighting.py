"""ATT inverse-probability weights and the sample sizes (with Kish's effective size) of any weighting.

References
----------
Hirano, K., Imbens, G. & Ridder, G. (2003). Efficient estimation of average treatment effects using the
estimated propensity score. Econometrica 71(4).
Imbens, G. (2004). Nonparametric estimation of average treatment effects under exogeneity. REStat 86(1).
Li, F., Morgan, K. & Zaslavsky, A. (2018). Balancing covariates via propensity score weighting. JASA 113(521).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ConfigError, InputError


def ipw_weights(
    ps,
    treatment,
    *,
    trim: tuple[float, float] | None = None,
    normalize: bool = True,
) -> np.ndarray:
    """ATT inverse-probability weights: treated ``w = 1``, controls ``w = e / (1 − e)`` (Imbens 2004; Hirano,
    Imbens & Ridder 2003), so the weighted controls mimic the treated covariate distribution.

    Parameters
    ----------
    ps : array-like
        Propensity scores e(x) in (0, 1).
    treatment : array-like
        0/1.
    trim : (lower, upper), optional
        Propensity scores are clipped to ``[lower, upper]`` before weighting (e.g. ``(0.01, 0.99)``; Crump et al.
        2009 use 0.1/0.9 for trimming of the sample); limits extreme control weights.
    normalize : bool
        Scale control weights to sum to the number of controls (as MatchIt/WeightIt report them).
    """
    e = np.asarray(ps, dtype=float)
    t = np.asarray(treatment)
    if e.shape != t.shape:
        raise InputError(f"ipw_weights: ps has {e.shape} values, treatment {t.shape}")
    if not np.isin(t, [0, 1]).all():
        raise InputError("ipw_weights: treatment must be 0/1")
    if trim is not None:
        lo, hi = trim
        if not 0 <= lo < hi <= 1:
            raise ConfigError(f"ipw_weights: trim must satisfy 0 <= lower < upper <= 1, got {trim}")
        e = np.clip(e, lo, hi)
    if np.any((e <= 0) | (e >= 1)):
        raise InputError("ipw_weights: propensity scores must lie strictly between 0 and 1 (use trim=)")
    w = np.where(t == 1, 1.0, e / (1.0 - e))
    if normalize:
        c = t == 0
        w[c] = w[c] * c.sum() / w[c].sum()
    return w


def sample_sizes(treated: np.ndarray, weights: np.ndarray) -> pd.DataFrame:
    """MatchIt's ``summary()$nn`` per group (columns ``treated``, ``control``): ``all`` rows, ``matched_ess`` =
    Kish's effective sample size ``(Σw)² / Σw²`` of the positive weights (0 when none), ``matched`` (rows with a
    positive weight) and ``unmatched``."""
    t = np.asarray(treated, dtype=bool)
    w = np.asarray(weights, dtype=float)
    rows = {}
    for name, m in (("treated", t), ("control", ~t)):
        pos = w[m][w[m] > 0]
        rows[name] = {
            "all": int(m.sum()),
            "matched_ess": float(pos.sum() ** 2 / (pos**2).sum()) if len(pos) else 0.0,
            "matched": len(pos),
            "unmatched": int(m.sum()) - len(pos),
        }
    return pd.DataFrame(rows)
