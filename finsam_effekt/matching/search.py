"""The nearest-control search of MatchIt 4.7.2 (``find_control_vec``, ``find_control_mahcovs``) on sorted controls.

:class:`SortedControls` sorts the candidate controls once, by (exact stratum, distance, row) — a radix sort by
stratum and into value buckets, then the stable sort of the almost sorted values — and places each treated row
between them. :class:`ScalarSearch` finds a treated row's nearest unused controls on that order, with two skip maps
over used controls; with replacement, :meth:`SortedControls.window_nearest` reads them off the value buckets;
:class:`MahalanobisSearch` does the same for Mahalanobis distances. MatchIt walks all rows sorted by distance,
alternately one position left and one right; its order of visits only decides ties, so the global rank of every
row (one more sort) is computed only when a tie occurs. Ties among more than ``ratio`` candidates are broken as
MatchIt's compiled code breaks them, by :func:`partial_sort`, a port of libstdc++'s ``std::partial_sort``
(``bits/stl_heap.h`` and ``bits/stl_algo.h``, ``__heap_select``): it is not stable, so a stable sort would pick
other controls among equal distances.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: Above this many exact strata one global sort is cheaper than one sort per stratum.
_PER_STRATUM_SORT_MAX = 512


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


_BUCKETS = 65000


def _bucket_order(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """A stable radix sort of ``x`` into ``_BUCKETS`` buckets of equal width: the order, the bucket of each value in
    that order, and the bucket function ``floor((x − lo) · scale)`` (non-decreasing in x; scale 0 when all values
    are equal)."""
    lo, hi = float(x.min()), float(x.max())
    scale = _BUCKETS / (hi - lo) if hi > lo else 0.0  # hi − lo may overflow to inf: scale 0
    if not 0 < scale < np.inf:
        return np.arange(len(x)), np.zeros(len(x), dtype=np.uint16), lo, 0.0
    key = x - lo
    key *= scale
    key = key.astype(np.uint16)
    o = np.argsort(key, kind="stable")
    return o, key[o], lo, scale


def _stable_sort(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``o = np.argsort(x, kind="stable")`` and ``x[o]``, about twice as fast for spread-out values: the bucket
    radix sort (:func:`_bucket_order`) first, then the stable (adaptive) sort of the almost sorted values. Equal
    values share a bucket and keep their order in both passes; the buckets only decide the speed, not the
    result."""
    if len(x) < 2048:
        o = np.argsort(x, kind="stable")
        return o, x[o]
    o, _, _, _ = _bucket_order(x)
    xo = x[o]
    o2 = np.argsort(xo, kind="stable")
    return o[o2], xo[o2]  # o2 is almost the identity: cheap gathers


def stable_rank(x: np.ndarray) -> np.ndarray:
    """Position of every element in R's ``order(x)`` (ascending, ties in input order), 0-based."""
    o, _ = _stable_sort(x)
    rank = np.empty(len(x), dtype=np.int64)
    rank[o] = np.arange(len(x))
    return rank


class SortedControls:
    """The controls that are not ``discarded``, sorted by (exact stratum, distance, row), and where each treated
    row of ``t_rows`` (all treated rows not discarded) falls among them; ``n_c_s`` counts those controls by
    stratum.

    The sort is done in two stages: a stable radix sort by stratum and, within a stratum, into 65 000 buckets of
    equal width (:func:`_bucket_order`); then (:meth:`finish`) the stable sort of the almost sorted values. With
    ``finish=False`` the second stage waits: :meth:`window_nearest` needs only the buckets. With many strata the
    controls are sorted at once (one stable sort of all values, a stable sort by stratum).

    Attributes
    ----------
    c_rows : ndarray
        Row numbers of the controls in (bucket or final) order; a control's *position* is its index here.
    c_d : ndarray
        Their distances.
    s_start, s_end : ndarray
        Positions ``[s_start[s], s_end[s])`` hold the controls of stratum ``s``.
    t_rows, t_pos : ndarray
        After :meth:`finish`: the treated rows and their insertion positions: ``t_pos`` = the number of controls
        sorted before the treated row, i.e. the controls of its stratum at positions ``< t_pos`` come before it in
        R's ``order(distance)`` (smaller distance, or equal distance and a smaller row number).
    """

    def __init__(
        self,
        discarded: np.ndarray | None,
        t_rows: np.ndarray,
        codes: np.ndarray,
        d: np.ndarray,
        n_c_s: np.ndarray,
        finish: bool = True,
    ):
        n_str = len(n_c_s)
        self.t_rows = t_rows
        self.codes = codes
        self.d = d
        # treated and discarded rows go to an extra stratum at the end, so one sort by stratum also drops them
        key = codes.astype(np.int16) if n_str < 2**15 - 1 else codes.copy()
        key[t_rows] = n_str
        if discarded is not None:
            key[discarded] = n_str
        bounds = np.zeros(n_str + 1, dtype=np.int64)
        np.cumsum(n_c_s, out=bounds[1:])
        self.s_start, self.s_end = bounds[:-1], bounds[1:]
        n_c = int(bounds[-1])
        self.t_pos = None
        self.c_key = None
        if n_str > _PER_STRATUM_SORT_MAX:
            o, _ = _stable_sort(d)
            self.c_rows = o[np.argsort(key[o], kind="stable")][:n_c]
            self.c_d = d[self.c_rows]
            self.sorted = True
        else:
            rows = np.argsort(key, kind="stable")[:n_c]
            xv = d[rows]
            self.c_rows = np.empty_like(rows)
            self.c_d = np.empty_like(xv)
            self.c_key = np.empty(n_c, dtype=np.uint16)
            self.s_lo = np.zeros(n_str)
            self.s_scale = np.zeros(n_str)
            for s in np.flatnonzero(n_c_s > 0).tolist():
                a, b = int(bounds[s]), int(bounds[s + 1])
                o, self.c_key[a:b], self.s_lo[s], self.s_scale[s] = _bucket_order(xv[a:b])
                if finish:  # both stages at once: fewer passes over the data
                    xo = xv[a:b][o]
                    o2 = np.argsort(xo, kind="stable")  # adaptive: the buckets leave it almost sorted
                    np.take(xo, o2, out=self.c_d[a:b])
                    o = o[o2]
                else:
                    np.take(xv[a:b], o, out=self.c_d[a:b])
                np.take(rows[a:b], o, out=self.c_rows[a:b])
            self.sorted = finish
        if finish:
            self.finish()

    def finish(self) -> None:
        """Complete the sort within each stratum and place the treated rows (``t_pos``)."""
        if self.t_pos is not None:
            return
        if not self.sorted:
            c_rows, c_d = np.empty_like(self.c_rows), np.empty_like(self.c_d)
            for s in np.flatnonzero(self.s_end > self.s_start).tolist():
                a, b = int(self.s_start[s]), int(self.s_end[s])
                o = np.argsort(self.c_d[a:b], kind="stable")  # adaptive: the buckets leave it almost sorted
                np.take(self.c_d[a:b], o, out=c_d[a:b])
                np.take(self.c_rows[a:b], o, out=c_rows[a:b])
            self.c_rows, self.c_d = c_rows, c_d
            self.sorted = True
        self.c_key = None
        c_rows, c_d = self.c_rows, self.c_d
        t_rows = self.t_rows
        tc = self.codes[t_rows]
        t_order = np.argsort(tc, kind="stable")
        t_bounds = np.zeros(len(self.s_start) + 1, dtype=np.int64)
        np.cumsum(np.bincount(tc, minlength=len(self.s_start)), out=t_bounds[1:])
        t_sorted = t_rows[t_order]
        t_pos_sorted = np.empty(len(t_rows), dtype=np.int64)
        for s in np.flatnonzero(np.diff(t_bounds) > 0).tolist():
            a, b = int(self.s_start[s]), int(self.s_end[s])
            ta, tb = int(t_bounds[s]), int(t_bounds[s + 1])
            ts = t_sorted[ta:tb]
            tv = self.d[ts]
            left = np.searchsorted(c_d[a:b], tv, side="left")
            right = np.searchsorted(c_d[a:b], tv, side="right")
            # controls with the same value as the treated row come before it when their row number is smaller
            for i in np.flatnonzero(right > left).tolist():
                left[i] += int(np.searchsorted(c_rows[a + left[i] : a + right[i]], ts[i]))
            t_pos_sorted[ta:tb] = a + left
        self.t_pos = np.empty(len(t_rows), dtype=np.int64)
        self.t_pos[t_order] = t_pos_sorted

    def position(self, q: np.ndarray) -> np.ndarray:
        """Insertion positions (``t_pos``) of the treated rows ``q``."""
        self.finish()
        return self.t_pos[np.searchsorted(self.t_rows, q)]

    def nearest_distance(self, q: np.ndarray) -> np.ndarray:
        """Distance of each treated row in ``q`` to the nearest control of its stratum, used or not (inf if none):
        the controls just before and just after its insertion position."""
        ii = self.position(q)
        lo, hi = self.s_start[self.codes[q]], self.s_end[self.codes[q]]
        near = np.full(len(q), np.inf)
        for j in (ii - 1, ii):
            inside = (j >= lo) & (j < hi)
            near[inside] = np.minimum(near[inside], np.abs(self.c_d[j[inside]] - self.d[q[inside]]))
        return near

    def window_nearest(self, q: np.ndarray, ratio: int, cal: float | None, max_window: int = 64):
        """The ``ratio`` nearest controls of the treated rows ``q`` with replacement, from the buckets alone.

        A treated row's ``ratio`` nearest controls on each side lie in the whole buckets around its own bucket
        that hold at least ``ratio`` controls below and above it (a lower bucket holds only smaller values). Within
        that window the distances are exact; without ties MatchIt's answer is the ``ratio`` smallest, in
        ascending order (see :meth:`ScalarSearch.nearest_k`). Returns ``(rows, n_found, redo, near)``: control
        rows ``rows[i, :n_found[i]]`` in MatchIt's column order; ``redo[i]`` where candidates tie in distance or
        the window is longer than ``max_window`` (those need :meth:`ScalarSearch.scan` after :meth:`finish`);
        ``near[i]``, the distance to the nearest control of the stratum, used or not (inf if none)."""
        n_q = len(q)
        xq = self.d[q]
        start = np.zeros(n_q, dtype=np.int64)
        end = np.zeros(n_q, dtype=np.int64)
        cq = self.codes[q]
        order = np.argsort(cq, kind="stable")
        cuts = np.flatnonzero(np.diff(cq[order])) + 1
        for grp in np.split(order, cuts):
            s = int(cq[grp[0]])
            a, b = int(self.s_start[s]), int(self.s_end[s])
            if b == a:
                start[grp] = end[grp] = a
                continue
            keys = self.c_key[a:b]
            with np.errstate(invalid="ignore", over="ignore"):
                v = (xq[grp] - self.s_lo[s]) * self.s_scale[s]  # the controls' bucket function, clipped
            v[np.isnan(v)] = 0.0
            bt = np.clip(v, 0, _BUCKETS).astype(np.uint16)
            lp = np.searchsorted(keys, bt, side="left") - ratio  # the ratio-th control below the bucket
            rp = np.searchsorted(keys, bt, side="right") + ratio - 1  # the ratio-th control above it
            ws = np.where(lp > 0, np.searchsorted(keys, keys[np.clip(lp, 0, b - a - 1)], side="left"), 0)
            we = np.where(
                rp < b - a - 1, np.searchsorted(keys, keys[np.clip(rp, 0, b - a - 1)], side="right"), b - a
            )
            start[grp] = a + ws
            end[grp] = a + we
        length = end - start
        redo = length > max_window
        W = max(int(length[~redo].max(initial=0)), 1)
        pos = start[:, None] + np.arange(W)[None, :]
        valid = (np.arange(W)[None, :] < length[:, None]) & ~redo[:, None]
        posc = np.minimum(pos, max(len(self.c_d) - 1, 0))
        dist = np.where(valid, np.abs(xq[:, None] - self.c_d[posc]) if len(self.c_d) else np.inf, np.inf)
        near = dist.min(axis=1)
        if cal is not None:
            dist[dist > cal] = np.inf
        o = np.argsort(dist, axis=1, kind="stable")
        ds = np.take_along_axis(dist, o, axis=1)
        kk = min(ratio + 1, W)
        # a tie among the ratio + 1 nearest decides membership or order: MatchIt's scan settles it
        redo |= (np.isfinite(ds[:, 1:kk]) & (ds[:, 1:kk] == ds[:, : kk - 1])).any(axis=1)
        k = min(ratio, W)
        rows = np.full((n_q, ratio), -1, dtype=np.int64)
        rows[:, :k] = self.c_rows[np.take_along_axis(posc, o[:, :k], axis=1)]
        n_found = np.isfinite(ds[:, :k]).sum(axis=1)
        rows[np.arange(ratio)[None, :] >= n_found[:, None]] = -1
        return rows, n_found, redo, near


class ScalarSearch:
    """MatchIt's ``find_control_vec`` on :class:`SortedControls`.

    Used controls are removed through two skip maps (``removed position → next candidate`` to the left and to the
    right, with path compression), so a search never walks over the used controls one by one. ``rank`` returns
    the position of every row in R's ``order(distance)`` over all rows; it is called only to break a tie between
    equally distant controls on either side, by the order in which MatchIt's alternating walk reaches them.
    """

    def __init__(
        self,
        sc: SortedControls,
        d: np.ndarray,
        cal: float | None,
        rank: Callable[[], np.ndarray],
    ):
        sc.finish()
        self.c_rows = sc.c_rows
        self.c_d = sc.c_d
        self.d = d
        self.cal = np.inf if cal is None else float(cal)
        self._rank_fn = rank
        self._rank: np.ndarray | None = None
        self._left: dict[int, int] = {}
        self._right: dict[int, int] = {}

    def rank(self) -> np.ndarray:
        if self._rank is None:
            self._rank = self._rank_fn()
        return self._rank

    def removed(self, p: int) -> bool:
        return p in self._right

    def remove(self, p: int) -> None:
        self._right[p] = p + 1
        self._left[p] = p - 1

    def _next_right(self, p: int) -> int:
        r = self._right
        if p not in r:
            return p
        q = p
        while q in r:
            q = r[q]
        while r[p] != q:  # path compression
            r[p], p = q, r[p]
        return q

    def _next_left(self, p: int) -> int:
        lft = self._left
        if p not in lft:
            return p
        q = p
        while q in lft:
            q = lft[q]
        while lft[p] != q:
            lft[p], p = q, lft[p]
        return q

    def nearest(self, t: int, dt: float, ii: int, lo: int, hi: int, prev: list[int] | None = None) -> int:
        """The control MatchIt's ``find_control_vec(..., ratio = 1)`` returns for treated row ``t`` (distance
        ``dt``, insertion position ``ii`` in stratum ``[lo, hi)``), or -1.

        ``prev`` (positions of the controls ``t`` already has, rounds r > 1) moves the start of each side beyond
        them and sets MatchIt's ``min_dist``. The result is the nearer of the first unused control within the
        caliper on each side; at equal distance, the one the alternating walk reaches first."""
        c_d, cal = self.c_d, self.cal
        min_dist = 0.0
        left_anchor = right_anchor = -1  # a previous match that the side starts beyond (-1: the treated row)
        start_l, start_r = ii - 1, ii
        if prev:
            pmin, pmax = min(prev), max(prev)
            if pmin < ii:
                left_anchor, start_l = pmin, pmin - 1
            if pmax >= ii:
                right_anchor, start_r = pmax, pmax + 1
            if left_anchor < 0:
                min_dist = abs(dt - c_d[right_anchor])
            elif right_anchor < 0:
                min_dist = abs(dt - c_d[left_anchor])
            else:
                min_dist = max(abs(dt - c_d[left_anchor]), abs(dt - c_d[right_anchor]))
        dl = dr = np.inf
        pl = self._next_left(start_l) if start_l >= lo else -1
        while pl >= lo:
            dl = abs(dt - c_d[pl])
            if dl > cal:
                pl = -1
            elif dl < min_dist:  # MatchIt skips closer controls than those already matched (r > 1)
                pl = self._next_left(pl - 1) if pl > lo else -1
                continue
            break
        pr = self._next_right(start_r) if start_r < hi else hi
        while pr < hi:
            dr = abs(c_d[pr] - dt)
            if dr > cal:
                pr = hi
            elif dr < min_dist:
                pr = self._next_right(pr + 1) if pr + 1 < hi else hi
                continue
            break
        l_ok = pl >= lo
        r_ok = pr < hi
        if l_ok and r_ok:
            if dl < dr:
                return pl
            if dr < dl:
                return pr
            rank = self.rank()
            c_rows = self.c_rows
            iil = rank[t] if left_anchor < 0 else rank[c_rows[left_anchor]]
            iir = rank[t] if right_anchor < 0 else rank[c_rows[right_anchor]]
            # MatchIt steps left first: the left control `a` positions away is visited at step 2a − 1, the right
            # one `b` positions away at step 2b
            return pl if iil - rank[c_rows[pl]] <= rank[c_rows[pr]] - iir else pr
        if l_ok:
            return pl
        if r_ok:
            return pr
        return -1

    def scan(self, t: int, dt: float, ii: int, lo: int, hi: int, ratio: int) -> list[int]:
        """Controls (positions) for treated row ``t`` with ``ratio`` > 1 and no previous matches: MatchIt's
        ``find_control_vec`` step by step (its order of visits decides ties, also inside ``std::partial_sort``)."""
        c_d, cal, c_rows = self.c_d, self.cal, self.c_rows
        rank = self.rank()
        rt = int(rank[t])
        pl = self._next_left(ii - 1) if ii - 1 >= lo else lo - 1
        pr = self._next_right(ii) if ii < hi else hi
        l_on = pl >= lo
        r_on = pr < hi
        ids: list[int] = []
        dists: list[float] = []
        nl = nr = 0
        while l_on or r_on:
            left = (rt - int(rank[c_rows[pl]])) <= (int(rank[c_rows[pr]]) - rt) if l_on and r_on else l_on
            z = pl if left else pr
            if left:
                pl = self._next_left(z - 1) if z - 1 >= lo else lo - 1
                l_on = pl >= lo
            else:
                pr = self._next_right(z + 1) if z + 1 < hi else hi
                r_on = pr < hi
            dc = abs(dt - float(c_d[z]))
            if dc > cal:
                if left:
                    l_on = False
                else:
                    r_on = False
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

    def nearest_k(self, t_pos: np.ndarray, dt: np.ndarray, lo: np.ndarray, hi: np.ndarray, ratio: int):
        """The ``ratio`` nearest controls of many treated rows at once, with replacement (nothing removed).

        Returns ``(best, n_found, tie)``: positions ``best[i, :n_found[i]]`` in MatchIt's column order, and
        ``tie[i]`` for the rows whose candidates tie in distance; those need :meth:`scan`. Without ties MatchIt's
        answer is the ``ratio`` nearest of the ``ratio`` neighbours on each side (a side stops after ``ratio``
        candidates or at the caliper), sorted by distance."""
        n_c = len(self.c_d)
        pos = t_pos[:, None] + np.arange(-ratio, ratio)[None, :]
        valid = (pos >= lo[:, None]) & (pos < hi[:, None])
        posc = np.clip(pos, 0, max(n_c - 1, 0))
        dist = np.where(valid, np.abs(dt[:, None] - self.c_d[posc]) if n_c else np.inf, np.inf)
        dist[dist > self.cal] = np.inf
        o = np.argsort(dist, axis=1, kind="stable")
        ds = np.take_along_axis(dist, o, axis=1)
        tie = (np.isfinite(ds[:, 1:]) & (ds[:, 1:] == ds[:, :-1])).any(axis=1)
        best = np.take_along_axis(posc, o, axis=1)[:, :ratio]
        n_found = np.isfinite(ds[:, :ratio]).sum(axis=1)
        return best, n_found, tie


class MahalanobisSearch:
    """MatchIt's ``find_control_mahcovs``: the nearest controls in Mahalanobis distance, within a stratum and
    optionally within a caliper on the scalar distance.

    ``Z`` holds the covariates as MatchIt transforms them (``distance.matchit_mahalanobis_transform``), so the
    squared Euclidean distance ``Σ_j (z_tj − z_cj)²``, summed in column order as MatchIt sums it, is the squared
    Mahalanobis distance, and the first column is MatchIt's ``match_var``: its scan visits the rows in
    ``order(match_var)``, alternately one position left and one right of the treated row (left first). Each
    candidate replaces a kept one whose distance is greater *or equal*, so among equal distances the candidate
    visited last wins; a side's scan stops only where no later candidate could enter. Hence the result is the
    ``ratio`` candidates first in the order (squared distance ascending, visit step descending), where the visit
    step of a candidate ``a`` positions to the left is ``2a − 1`` and of one ``b`` positions to the right ``2b``.
    ``upos`` gives each row's position in the order MatchIt scans: within its exact stratum when MatchIt matches
    stratum by stratum (``exact`` without ``unit.id``), else among all rows.
    """

    def __init__(
        self, Z: np.ndarray, c_rows: np.ndarray, c_d: np.ndarray, cal: float | None, upos: np.ndarray
    ):
        self.Z = Z
        self.c_rows = c_rows
        self.Zc = Z[c_rows]
        self.c_d = c_d
        self.cal = cal
        self.c_upos = upos[c_rows]
        self.upos = upos
        self.used = np.zeros(len(c_rows), dtype=bool)

    def removed(self, p: int) -> bool:
        return bool(self.used[p])

    def remove(self, p: int) -> None:
        self.used[p] = True

    def find(self, t: int, dt: float, lo: int, hi: int, prev, ratio: int) -> list[int]:
        """Positions of the controls MatchIt picks for treated row ``t`` in stratum ``[lo, hi)``, in its order."""
        if hi <= lo:
            return []
        zt = self.Z[t]
        Zs = self.Zc[lo:hi]
        # MatchIt's euc_dist_sq: out += (z_t − z_c)² column by column, from 0
        d2 = np.zeros(hi - lo)
        for j in range(Zs.shape[1]):
            diff = zt[j] - Zs[:, j]
            d2 += diff * diff
        bad = self.used[lo:hi].copy()
        if self.cal is not None:
            bad |= np.abs(dt - self.c_d[lo:hi]) > self.cal
        if prev:
            bad[np.asarray(prev, dtype=np.int64) - lo] = True
        cand = np.flatnonzero(~bad)
        if len(cand) == 0:
            return []
        e = d2[cand]
        off = self.c_upos[lo:hi][cand] - self.upos[t]
        visit = np.where(off < 0, -2 * off - 1, 2 * off)
        if ratio == 1:
            best = cand[e == e.min()]
            return [lo + int(best[np.argmax(visit[e == e.min()])])]
        o = np.lexsort((-visit, e))[:ratio]
        return [lo + int(j) for j in cand[o]]
