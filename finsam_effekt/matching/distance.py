"""Mahalanobis distances with the pooled within-group covariance, and the covariates as MatchIt transforms them.

:func:`pooled_within_cov` and :func:`mahalanobis` give the distances (MatchIt >= 4.4; Rubin 1980).
:func:`matchit_mahalanobis_transform` reproduces, value for value, the matrix MatchIt 4.7.2 matches on
(``transform_covariates(method = "mahalanobis")``): equal distances in exact arithmetic (a treated row halfway
between two controls) come out unequal by a rounding error, and which control MatchIt picks then depends on that
error; to pick the same control the transform repeats R's arithmetic: its sums in long double, and the reference
LAPACK/BLAS routines R 4.2 on Debian calls (``dgesv`` for ``solve``, ``dpstrf`` for ``chol(pivot = TRUE)``,
``dgemm`` for ``tcrossprod``), ported loop for loop.

References
----------
Rubin, D. (1980). Bias reduction using Mahalanobis-metric matching. Biometrics 36(2).
Anderson, E. et al. (1999). LAPACK Users' Guide, 3rd ed. SIAM (the reference routines ported here).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

_LD = np.longdouble


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


# --- R's arithmetic -------------------------------------------------------------------------------------------


def _r_sum(x: np.ndarray) -> _LD:
    """R's ``sum``/``colSums`` of doubles: one left-to-right accumulation in long double."""
    return np.add.accumulate(np.asarray(x, dtype=_LD))[-1] if len(x) else _LD(0)


def _r_mean(x: np.ndarray) -> float:
    """R's ``mean`` of doubles: long-double mean, then one correction pass (``summary.c``, ``real_mean``)."""
    n = len(x)
    s = _r_sum(x) / n
    s = s + _r_sum(np.asarray(x, dtype=_LD) - s) / n
    return float(s)


def _r_scale(X: np.ndarray) -> np.ndarray:
    """R's ``scale(X)``: subtract ``colMeans`` (long-double sum / n), divide by ``sqrt(sum(v^2) / (n − 1))``."""
    n = X.shape[0]
    out = np.empty_like(X)
    for j in range(X.shape[1]):
        v = X[:, j] - float(_r_sum(X[:, j]) / n)
        sd = np.sqrt(float(_r_sum(v * v)) / max(1.0, n - 1.0))
        out[:, j] = v / sd
    return out


def _r_pooled_cov(X: np.ndarray, treat: np.ndarray) -> np.ndarray:
    """MatchIt's ``pooled_cov``: columns centred on their group means (R's ``mean``), then R's ``cov``
    (``cov.c``, ``cov_na_1``: two-pass long-double means, long-double cross products) · (n − 1) / (n − g)."""
    Xc = X.copy()
    groups = pd.unique(treat)
    for g in groups:
        rows = np.flatnonzero(treat == g)
        for j in range(X.shape[1]):
            Xc[rows, j] = X[rows, j] - _r_mean(X[rows, j])
    n, p = Xc.shape
    means = []
    for j in range(p):
        xx = Xc[:, j]
        tmp = _r_sum(xx) / n
        tmp = tmp + _r_sum(xx.astype(_LD) - tmp) / n
        means.append(float(tmp))
    cov = np.empty((p, p))
    for i in range(p):
        xi = Xc[:, i].astype(_LD) - _LD(means[i])
        for j in range(i + 1):
            yj = Xc[:, j].astype(_LD) - _LD(means[j])
            cov[i, j] = cov[j, i] = float(_r_sum(xi * yj) / (n - 1))
    return cov * (n - 1) / (n - len(groups))


# --- reference LAPACK/BLAS, as R calls them --------------------------------------------------------------------


def _dgetrf2(A: np.ndarray, ipiv: np.ndarray) -> None:
    """Reference LAPACK ``DGETRF2`` (recursive LU with partial pivoting) in place; ``ipiv`` 0-based."""
    m, n = A.shape
    if m == 1 or n == 1:
        if n == 1 and m > 1:
            i = int(np.argmax(np.abs(A[:, 0])))  # IDAMAX: the first largest |a|
            ipiv[0] = i
            if A[i, 0] != 0:
                if i != 0:
                    A[[0, i], 0] = A[[i, 0], 0]
                if abs(A[0, 0]) >= np.finfo(float).tiny:
                    A[1:, 0] *= 1.0 / A[0, 0]  # DSCAL by the reciprocal
                else:
                    A[1:, 0] /= A[0, 0]
        else:
            ipiv[0] = 0
        return
    n1 = min(m, n) // 2
    _dgetrf2(A[:, :n1], ipiv[:n1])
    for i in range(n1):  # DLASWP on A12/A22
        if ipiv[i] != i:
            A[[i, ipiv[i]], n1:] = A[[ipiv[i], i], n1:]
    _dtrsm_lower_unit(A[:n1, :n1], A[:n1, n1:])
    _dgemm_nn_minus(A[n1:, :n1], A[:n1, n1:], A[n1:, n1:])
    sub = ipiv[n1 : min(m, n)]
    _dgetrf2(A[n1:, n1:], sub)
    sub += n1
    for i in range(n1, min(m, n)):  # DLASWP on A21
        if ipiv[i] != i:
            A[[i, ipiv[i]], :n1] = A[[ipiv[i], i], :n1]


def _dtrsm_lower_unit(L: np.ndarray, B: np.ndarray) -> None:
    """Reference ``DTRSM('L', 'L', 'N', 'U')``: B := L⁻¹ B, L unit lower triangular."""
    m = B.shape[0]
    for j in range(B.shape[1]):
        for k in range(m):
            if B[k, j] != 0:
                for i in range(k + 1, m):
                    B[i, j] = B[i, j] - B[k, j] * L[i, k]


def _dtrsm_upper(U: np.ndarray, B: np.ndarray) -> None:
    """Reference ``DTRSM('L', 'U', 'N', 'N')``: B := U⁻¹ B."""
    m = B.shape[0]
    for j in range(B.shape[1]):
        for k in range(m - 1, -1, -1):
            if B[k, j] != 0:
                B[k, j] = B[k, j] / U[k, k]
                for i in range(k):
                    B[i, j] = B[i, j] - B[k, j] * U[i, k]


def _dgemm_nn_minus(A: np.ndarray, B: np.ndarray, C: np.ndarray) -> None:
    """Reference ``DGEMM('N', 'N', alpha = −1, beta = 1)``: C := C − A B, column by column, term by term."""
    for j in range(C.shape[1]):
        for l_ in range(A.shape[1]):
            temp = -B[l_, j]
            for i in range(C.shape[0]):
                C[i, j] = C[i, j] + temp * A[i, l_]


def _r_solve(S: np.ndarray) -> np.ndarray:
    """R's ``solve(S)``: ``DGESV`` with the identity as right-hand side (``DGETRF2`` for n < 64, ``DGETRS``)."""
    p = S.shape[0]
    A = np.array(S, dtype=float, order="F")
    ipiv = np.zeros(p, dtype=np.int64)
    _dgetrf2(A, ipiv)
    B = np.eye(p)
    for i in range(p):
        if ipiv[i] != i:
            B[[i, ipiv[i]], :] = B[[ipiv[i], i], :]
    _dtrsm_lower_unit(A, B)
    _dtrsm_upper(A, B)
    return B


def _r_chol_pivot(S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R's ``chol(S, pivot = TRUE)``: reference ``DPSTF2`` (upper, ``tol = −1``) on S with its lower triangle
    zeroed. Returns the factor and the pivot (0-based)."""
    n = S.shape[0]
    A = np.triu(np.array(S, dtype=float))
    piv = np.arange(n)
    diag = np.diag(A)
    pvt = int(np.argmax(diag))  # the first largest
    ajj = diag[pvt]
    if not ajj > 0:
        return A, piv
    dstop = n * np.finfo(float).eps * ajj
    work = np.zeros(2 * n)
    for j in range(n):
        for i in range(j, n):
            if j > 0:
                work[i] = work[i] + A[j - 1, i] * A[j - 1, i]
            work[n + i] = A[i, i] - work[i]
        if j > 0:
            pvt = j + int(np.argmax(work[n + j : 2 * n]))
            ajj = work[n + pvt]
            if ajj <= dstop or np.isnan(ajj):
                A[j, j] = ajj
                break
        if j != pvt:
            A[pvt, pvt] = A[j, j]
            A[:j, [j, pvt]] = A[:j, [pvt, j]]
            if pvt < n - 1:
                A[[j, pvt], pvt + 1 :] = A[[pvt, j], pvt + 1 :]
            seg = A[j, j + 1 : pvt].copy()
            A[j, j + 1 : pvt] = A[j + 1 : pvt, pvt]
            A[j + 1 : pvt, pvt] = seg
            work[[j, pvt]] = work[[pvt, j]]
            piv[[j, pvt]] = piv[[pvt, j]]
        ajj = np.sqrt(ajj)
        A[j, j] = ajj
        if j < n - 1:
            for c in range(j + 1, n):  # DGEMV('T', alpha = −1, beta = 1)
                temp = 0.0
                for i in range(j):
                    temp = temp + A[i, c] * A[i, j]
                A[j, c] = A[j, c] + (-temp)
            A[j, j + 1 :] *= 1.0 / ajj  # DSCAL by the reciprocal
    return A, piv


def _generalized_inverse(S: np.ndarray, tol: float = 1e-8) -> np.ndarray:
    """MatchIt's ``generalized_inverse``: the SVD pseudo-inverse dropping singular values ≤ tol · the largest."""
    u, s, vt = np.linalg.svd(S)
    pos = s > max(tol * s[0], 0.0)
    return vt[pos].T @ (u[:, pos] / s[pos]).T


def matchit_mahalanobis_transform(X: np.ndarray, treat: np.ndarray) -> np.ndarray:
    """The covariates MatchIt 4.7.2 matches on with ``mahvars`` (``transform_covariates(method =
    "mahalanobis")``, ``dist_functions.R``): the squared Euclidean distance between two rows is their squared
    Mahalanobis distance with the pooled within-group covariance, and the first column is the ``match_var`` by
    which MatchIt's scan orders the rows.

    Steps, as MatchIt: drop columns without variance (``max − min < sqrt(eps)``; if none has any, keep the first
    column unscaled, MatchIt's Euclidean fallback); ``Xs = scale(X)``; ``S = pooled_cov(Xs, treat)``;
    ``S⁻¹ = solve(S)`` if ``det(S) > 1e-8``, else the generalised inverse; ``U = chol(S⁻¹, pivot = TRUE)``;
    return ``Xs · U[, order(pivot)]ᵀ``. Every step repeats R's floating-point operations (see the module
    docstring), so the values are R's to the last bit for a non-singular S.
    """
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    eps = np.finfo(float).eps
    keep = [j for j in range(X.shape[1]) if not abs(X[:, j].max() - X[:, j].min()) < np.sqrt(eps)]
    if not keep:
        return X[:, :1].copy()
    Xs = _r_scale(X[:, keep])
    S = _r_pooled_cov(Xs, np.asarray(treat))
    # R's solve() stops when the reciprocal condition number is below machine epsilon; MatchIt then (as for a
    # small determinant) takes the generalised inverse
    if np.linalg.det(S) > 1e-8 and 1.0 / np.linalg.cond(S, 1) >= np.finfo(float).eps:
        S_inv = _r_solve(S)
    else:
        S_inv = _generalized_inverse(S)
    U, piv = _r_chol_pivot(S_inv)
    B = U[:, np.argsort(piv)]  # ch[, order(pivot)]
    Z = np.zeros((Xs.shape[0], B.shape[0]))
    for j in range(B.shape[0]):  # DGEMM('N', 'T'): Z[:, j] accumulated over the columns of Xs in order
        for l_ in range(Xs.shape[1]):
            Z[:, j] = Z[:, j] + B[j, l_] * Xs[:, l_]
    return Z
