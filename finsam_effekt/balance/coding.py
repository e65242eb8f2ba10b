"""Value coding: a numeric column as codes into its distinct values, the one pass the balance table's value tables
(``finsam_effekt.balance``: every statistic from the total weight per distinct value and group) are counted from,
without a sort where the values are on a small grid or few."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: A column on a grid ``k / d`` (k whole, d ≤ ``_MAX_STEP``) with at most half its rows plus ``_RANGE_SLACK``
#: grid points is coded as ``k`` (``k − min k`` when min k < 0).
_RANGE_SLACK = 1 << 16
_MAX_STEP = 64
#: Otherwise, a column with at most ``_HASH_DISTINCT`` distinct values among ``_PROBE`` evenly spaced rows is coded
#: by hashing.
_HASH_DISTINCT = 1 << 12
_PROBE = 1 << 16
#: Rows per piece where a column is checked and coded as a grid a piece at a time.
GRID_PIECE = 1 << 22


class ValueCoding:
    """A numeric column as codes into its distinct values: what the balance statistics need instead of a sort.

    Attributes
    ----------
    values : ndarray
        Candidate values, float64, ascending; ``values[code] == x`` for every row.
    counts : ndarray
        Rows per value (int64; int32 when a sort of fewer than 2³¹ rows found them); 0 for a value of a
        whole-number range that no row has.
    method : str
        How the codes were found: ``"grid"`` (every value is ``k / d`` for a whole number k and a small whole d —
        1 for whole numbers, 4 for quarter days, 24 for a mean over 24 months — on at most half the rows
        + 65 536 grid points: ``code = k``, or ``k − min k`` when min k < 0; no sort), ``"hashed"`` (at most 4 096 distinct values
        among 65 536 evenly spaced rows: one ``pd.factorize`` pass, then the distinct values sorted), ``"sorted"``
        (one ``np.sort`` of the column; the codes of some rows by binary search, of more than a quarter of the
        rows, e.g. IPW weights on every control, from one ``argsort``) or ``"levels"`` (a categorical
        covariate's level codes).
    """

    def __init__(
        self, x: np.ndarray, values: np.ndarray, counts: np.ndarray, code: np.ndarray | None, method: str
    ):
        self.x = x
        self.values = values
        self.counts = counts
        self.method = method
        self._code = code

    @property
    def present(self) -> np.ndarray:
        """The values some row has (where the eCDF statistics are read)."""
        return self.counts > 0

    def codes(self, rows: np.ndarray) -> np.ndarray:
        """The codes (positions in ``values``) of ``rows``."""
        if self._code is None and len(rows) > len(self.x) // 4:
            # each row's rank among the distinct values, with as few row-length arrays alive at once as can be
            # (a national cohort's continuous column: 5·10⁷ rows, 0.4 GB per int64 array)
            order = np.argsort(self.x)
            xs = self.x[order]
            new = np.zeros(len(xs), dtype=bool)
            np.not_equal(xs[1:], xs[:-1], out=new[1:])
            del xs
            rank = np.cumsum(new, dtype=np.int64 if len(new) > np.iinfo(np.int32).max else np.int32)
            del new
            self._code = np.empty(len(rank), rank.dtype)
            self._code[order] = rank
        if self._code is not None:
            return self._code[rows]
        keys = self.x[rows]
        order = np.argsort(keys, kind="stable")
        out = np.empty(len(rows), np.intp)
        # keys in ascending order: numpy's binary search then starts each search where the last one ended
        out[order] = np.searchsorted(self.values, keys[order])
        return out

    def table(self, rows: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """The total weight of ``rows`` per value (``weights`` None: the row counts, int64)."""
        return np.bincount(self.codes(rows), weights=weights, minlength=len(self.values))


def _grid(
    x: np.ndarray, probe: np.ndarray, lo: Any, hi: Any, max_size: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(code, values)`` when every value of ``x`` is ``k / d`` (k whole, d the smallest of 1 … 64 that fits the
    ``probe`` rows) and ``values``, the grid ``j / d`` for j from 0 (or from min k when it is negative) to max k,
    has at most ``max_size`` entries; else None. Checked on every row in x's own dtype,
    ``fl(rint(fl(x d)) / d) == x``, and ``values`` computed by the same operations: ``values[code] == x`` exactly."""
    if x.dtype.kind in "iu":
        lo_k, hi_k = int(lo), int(hi)
        if max(-lo_k, hi_k) >= 2**53:
            return None
        k = x
    else:
        lo, hi = float(lo), float(hi)
        d = next((d for d in range(1, _MAX_STEP + 1) if np.array_equal(np.rint(probe * d) / d, probe)), None)
        exact = 2.0 ** (np.finfo(x.dtype).nmant + 1)  # whole numbers below this are exact in x's dtype
        if d is None or (hi - lo) * d >= max_size or max(abs(lo), abs(hi)) * d >= exact:
            return None
        # k = rint(x d) checked and stored as codes a piece at a time (a national cohort's column: 5·10⁷ rows)
        k = np.empty(len(x), np.intp)
        for s in range(0, len(x), GRID_PIECE):
            part = x[s : s + GRID_PIECE]
            kp = np.rint(part * d) if d > 1 else np.rint(part)
            if not np.array_equal(kp / d if d > 1 else kp, part):
                return None
            k[s : s + GRID_PIECE] = kp
        lo_k, hi_k = int(k.min()), int(k.max())
    # the grid from 0 when min k ≥ 0 (the codes are then k itself, no subtraction; values below min k unused)
    start = 0 if 0 <= lo_k and hi_k < max_size else lo_k
    if hi_k - start >= max_size:
        return None
    if start == 0 and k.dtype.kind in "iu" and k.dtype != np.uint64:
        code = k  # np.bincount and indexing take it as it is
    else:
        code = k if k is not x else k.astype(np.intp)
        if start:
            code -= start
    whole = np.arange(start, hi_k + 1)
    values = whole.astype(np.float64) if k is x else np.asarray(whole.astype(x.dtype) / d, dtype=np.float64)
    return code, values


def value_coding(x: np.ndarray) -> ValueCoding | None:
    """The :class:`ValueCoding` of a numeric column (booleans as 0/1), or None when it has a missing or infinite
    value (the balance table then takes the row-level reference path, :func:`balance_stats`)."""
    x = np.asarray(x)
    if x.dtype == bool:
        x = x.view(np.uint8)
    elif x.dtype.kind not in "iuf":
        x = x.astype(float)
    n = len(x)
    if n == 0:
        return ValueCoding(x, np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.intp), "grid")
    lo, hi = x.min(), x.max()
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return None
    probe = x[:: max(1, n // _PROBE)]
    grid = _grid(x, probe, lo, hi, n // 2 + _RANGE_SLACK)
    if grid is not None:
        code, values = grid
        return ValueCoding(x, values, np.bincount(code, minlength=len(values)), code, "grid")
    if np.unique(probe).size <= _HASH_DISTINCT:
        first, uniques = pd.factorize(x)  # codes in order of first appearance
        order = np.argsort(uniques)
        rank = np.empty(len(uniques), np.intp)
        rank[order] = np.arange(len(uniques))
        code = rank[first]
        values = np.asarray(uniques[order], dtype=np.float64)
        return ValueCoding(x, values, np.bincount(code, minlength=len(values)), code, "hashed")
    # with as few column-length arrays alive at once as can be (a national cohort's score: 5·10⁷ distinct values)
    xs = np.sort(x)
    end = np.ones(len(xs), dtype=bool)
    np.not_equal(xs[1:], xs[:-1], out=end[:-1])
    last = np.flatnonzero(end)  # the last row of each distinct value
    del end
    values = xs[last].astype(np.float64, copy=False)
    del xs
    counts = np.empty(len(last), dtype=np.int32 if n < 2**31 else np.int64)  # rows per distinct value
    counts[:1] = last[:1] + 1
    np.subtract(last[1:], last[:-1], out=counts[1:])
    return ValueCoding(x, values, counts, None, "sorted")
