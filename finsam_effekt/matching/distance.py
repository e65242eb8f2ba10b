"""Mahalanobis distances with the pooled within-group covariance, as MatchIt >= 4.4 computes them.

References
----------
Rubin, D. (1980). Bias reduction using Mahalanobis-metric matching. Biometrics 36(2).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def pooled_within_cov(X: np.ndarray, treat: np.ndarray) -> np.ndarray:
    """Pooled within-group covariance as MatchIt ≥ 4.4 (``pooled_cov``): centre each column on its group mean,
    then ``S = cov(Xc) · (n − 1) / (n − g)`` with g groups."""
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    Xc = X.copy()
    groups = np.unique(treat)
    for g in groups:
        m = treat == g
        Xc[m] -= Xc[m].mean(axis=0)
    n = X.shape[0]
    return np.atleast_2d(np.cov(Xc, rowvar=False)) * (n - 1) / (n - len(groups))


def mahalanobis(
    data: pd.DataFrame, treatment: str, covariates: Sequence[str], rows_a=None, rows_b=None
) -> np.ndarray:
    """Mahalanobis distances ``sqrt((x_i − x_j)' S⁻¹ (x_i − x_j))`` between rows ``rows_a`` (default: treated) and
    ``rows_b`` (default: controls), with S the pooled within-group covariance (MatchIt ≥ 4.4; Rubin 1980).
    A generalised inverse is used when S is singular. Returns a ``len(rows_a) × len(rows_b)`` matrix."""
    X = data[list(covariates)].to_numpy(dtype=float)
    t = data[treatment].to_numpy()
    S = pooled_within_cov(X, t)
    Sinv = np.linalg.pinv(S)
    a = np.flatnonzero(t == 1) if rows_a is None else np.asarray(rows_a)
    b = np.flatnonzero(t == 0) if rows_b is None else np.asarray(rows_b)
    Xa, Xb = X[a], X[b]
    qa = np.einsum("ij,jk,ik->i", Xa, Sinv, Xa)
    qb = np.einsum("ij,jk,ik->i", Xb, Sinv, Xb)
    d2 = qa[:, None] + qb[None, :] - 2.0 * (Xa @ Sinv) @ Xb.T
    return np.sqrt(np.maximum(d2, 0.0))
