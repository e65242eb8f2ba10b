"""The nearest-control search for one treated row within its stratum (MatchIt's ``find_control_vec``).

:class:`DistanceSearch` walks outwards over controls sorted by a scalar distance, skipping used controls through
two skip maps; :class:`MahalanobisSearch` takes the nearest controls in Mahalanobis distance. Ties among more than
``ratio`` candidates are broken as MatchIt's compiled code breaks them, by :func:`partial_sort`, a port of
libstdc++'s ``std::partial_sort`` (``bits/stl_heap.h`` and ``bits/stl_algo.h``, ``__heap_select``): it is not
stable, so a stable sort would pick other controls among equal distances.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np


def _adjust_heap(a: list, hole: int, length: int, value, key) -> None:
    top = hole
    second = hole
    while second < (length - 1) // 2:
        second = 2 * (second + 1)
        if key[a[second]] < key[a[second - 1]]:
            second -= 1
        a[hole] = a[second]
        hole = second
    if (length & 1) == 0 and second == (length - 2) // 2:
        second = 2 * (second + 1)
        a[hole] = a[second - 1]
        hole = second - 1
    parent = (hole - 1) // 2
    while hole > top and key[a[parent]] < key[value]:
        a[hole] = a[parent]
        hole = parent
        parent = (hole - 1) // 2
    a[hole] = value


def partial_sort(n: int, k: int, key: list) -> list[int]:
    """Indices 0..n-1 after ``std::partial_sort(first, first + k, last)`` comparing ``key[a] < key[b]``."""
    a = list(range(n))
    if k >= 2:  # make_heap(first, middle)
        parent = (k - 2) // 2
        while True:
            _adjust_heap(a, parent, k, a[parent], key)
            if parent == 0:
                break
            parent -= 1
    for i in range(k, n):
        if key[a[i]] < key[a[0]]:
            value = a[i]
            a[i] = a[0]
            _adjust_heap(a, 0, k, value, key)
    m = k
    while m > 1:  # sort_heap(first, middle)
        m -= 1
        value = a[m]
        a[m] = a[0]
        _adjust_heap(a, 0, m, value, key)
    return a[:k]


class DistanceSearch:
    """Per-stratum nearest-control search over controls sorted by global distance rank.

    Used controls are removed through two skip maps (``removed position → next candidate`` to the left and to the
    right, with path compression), so a search never walks over the used controls one by one.
    """

    def __init__(self, c_rank: np.ndarray, c_d: np.ndarray, cal: float | None):
        self.c_rank = c_rank
        self.c_d = c_d
        self.cal = np.inf if cal is None else cal
        self._left: dict[int, int] = {}
        self._right: dict[int, int] = {}

    def removed(self, p: int) -> bool:
        return p in self._right

    def remove(self, p: int) -> None:
        self._right[p] = p + 1
        self._left[p] = p - 1

    def _next_right(self, p: int) -> int:
        r = self._right
        q = p
        while q in r:
            q = r[q]
        while p in r and r[p] != q:  # path compression
            r[p], p = q, r[p]
        return q

    def _next_left(self, p: int) -> int:
        lft = self._left
        q = p
        while q in lft:
            q = lft[q]
        while p in lft and lft[p] != q:
            lft[p], p = q, lft[p]
        return q

    def find(
        self, ii: int, dt: float, lo: int, hi: int, r: int, prev: Sequence[int], ratio: int
    ) -> list[int]:
        """Controls (positions) for the treated unit at global rank ``ii``: MatchIt's ``find_control_vec``."""
        if hi <= lo:
            return []
        c_rank, c_d, cal = self.c_rank, self.c_d, self.cal
        prev_set = set(prev) if r > 1 else ()
        iil = iir = ii
        min_dist = 0.0
        if r > 1 and prev:
            pr = [int(c_rank[p]) for p in prev]
            iil = min(min(pr), ii)
            iir = max(max(pr), ii)
            if iil == ii:
                min_dist = abs(dt - c_d[prev[pr.index(iir)]])
            elif iir == ii:
                min_dist = abs(dt - c_d[prev[pr.index(iil)]])
            else:
                min_dist = max(abs(dt - c_d[prev[pr.index(iil)]]), abs(dt - c_d[prev[pr.index(iir)]]))
        # first candidate on each side: positions with rank < iil (left) and rank > iir (right)
        pl = bisect.bisect_left(c_rank, iil, lo, hi) - 1
        pr_ = bisect.bisect_right(c_rank, iir, lo, hi)
        pl = self._next_left(pl) if pl >= lo else lo - 1
        pr_ = self._next_right(pr_) if pr_ < hi else hi
        l_on = pl >= lo
        r_on = pr_ < hi
        ids: list[int] = []
        dists: list[float] = []
        nl = nr = 0
        while l_on or r_on:
            if l_on and r_on:
                left = (iil - int(c_rank[pl])) <= (int(c_rank[pr_]) - iir)
            else:
                left = l_on
            z = pl if left else pr_
            # advance this side's pointer past z
            if left:
                q = z - 1
                pl = self._next_left(q) if q >= lo else lo - 1
                if pl < lo:
                    l_on = False
            else:
                q = z + 1
                pr_ = self._next_right(q) if q < hi else hi
                if pr_ >= hi:
                    r_on = False
            if r > 1 and z in prev_set:
                continue
            dc = abs(dt - float(c_d[z]))
            if dc > cal:
                if left:
                    l_on = False
                else:
                    r_on = False
                continue
            if dc < min_dist:
                continue
            if len(ids) >= ratio:
                closer = 0
                for dd in dists:
                    if dd < dc:
                        closer += 1
                        if closer == ratio:
                            break
                if closer >= ratio:
                    if left:
                        l_on = False
                    else:
                        r_on = False
                    continue
            ids.append(z)
            dists.append(dc)
            if left:
                nl += 1
                if nl == ratio:
                    l_on = False
            else:
                nr += 1
                if nr == ratio:
                    r_on = False
        m = len(ids)
        if m <= 1:
            return ids
        if m <= ratio and all(dists[i] <= dists[i + 1] for i in range(m - 1)):
            return ids
        if m > ratio:
            return [ids[i] for i in partial_sort(m, ratio, dists)]
        return [ids[i] for i in sorted(range(m), key=dists.__getitem__)]  # std::sort on ≤ 16 = insertion sort


class MahalanobisSearch:
    """Nearest controls in Mahalanobis distance (rows of ``Z``, whitened covariates) within a stratum, optionally
    within a caliper on the scalar distance; used controls are masked."""

    def __init__(self, Zc: np.ndarray, c_d: np.ndarray, cal: float | None):
        self.Zc = Zc
        self.c_d = c_d
        self.cal = cal
        self.used = np.zeros(len(Zc), dtype=bool)

    def removed(self, p: int) -> bool:
        return bool(self.used[p])

    def remove(self, p: int) -> None:
        self.used[p] = True

    def find(self, z: np.ndarray, dt: float, lo: int, hi: int, r: int, prev, ratio: int) -> list[int]:
        if hi <= lo:
            return []
        d2 = ((self.Zc[lo:hi] - z) ** 2).sum(axis=1)
        bad = self.used[lo:hi].copy()
        if self.cal is not None:
            bad |= np.abs(self.c_d[lo:hi] - dt) > self.cal
        if r > 1 and prev:
            bad[np.asarray(prev, dtype=np.int64) - lo] = True
        d2[bad] = np.inf
        if ratio == 1:
            j = int(np.argmin(d2))
            return [lo + j] if np.isfinite(d2[j]) else []
        o = np.argsort(d2, kind="stable")[:ratio]
        return [lo + int(j) for j in o if np.isfinite(d2[j])]
