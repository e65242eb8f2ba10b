"""Callaway & Sant'Anna (2021) staggered-adoption DiD on the long panel: the design cross-check ``cs_did``.

:func:`callaway_santanna` is usable on its own (a researcher's panel) and is the ``cs_did`` estimator of
``estimate_effects`` (:func:`fit_cs_did`), whose results' units are mapped into the call's cluster coding
through the public ``EffectResults.clusters`` and ``Estimate.recoded``. Its results (:class:`CSResults`) also give
the group-time ATT(g, t) (:meth:`CSResults.group_time`) and R ``did``'s simple and event-time aggregations
(:meth:`CSResults.aggregate`), which agree with ``did`` 2.1.1 (``att_gt`` + ``aggte``, analytic standard errors)
on its ``mpdta`` data to 1e-6 (``tests/fixtures/did``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import months
from ..errors import InputError
from ..estimand import CS_DID, CS_DID_NEVER_TREATED
from ..options import CS_CONTROL_GROUPS, check
from ..schema import OUTCOMES
from .inference import critical_value, linearised_bootstrap, normal_p_value, one_blas_thread
from .results import EffectResults, Estimate
from .sample import FitContext, Fitted, Sample, require_columns

#: Relative first month of a unit never treated (in the data).
_NEVER = np.iinfo(np.int64).max // 2
#: Columns of :meth:`CSResults.group_time`.
GROUP_TIME_COLUMNS: list[str] = [
    "outcome",
    "group",
    "time",
    "event_time",
    "base_month",
    "estimate",
    "std_error",
    "ci_lower",
    "ci_upper",
    "p_value",
    "n_treated",
    "n_control",
]
#: Columns of :meth:`CSResults.aggregate` (``"dynamic"``; ``"simple"`` has no ``event_time`` and counts cells).
AGGREGATE_COLUMNS: list[str] = [
    "outcome",
    "event_time",
    "estimate",
    "std_error",
    "ci_lower",
    "ci_upper",
    "p_value",
    "n_treated",
    "n_groups",
]


# -- the panel as a units × months grid -------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Grid:
    """The panel as a units × months grid: unit labels, each unit's first treated month and how to read an
    outcome. Kept by :class:`CSResults` so that the group-time cells and the aggregations can be computed when
    asked for (the effects stage needs only the horizons)."""

    id_index: pd.Index
    t0: int
    n_t: int
    g_rel: np.ndarray  # first treated month − t0 per unit (_NEVER if never)
    ids: np.ndarray  # unit position of each used panel row
    t_idx: np.ndarray  # month index of each used panel row
    rows: np.ndarray  # which panel rows are used (boolean)
    base: np.ndarray  # units × months: NaN = not observed, else the value of an absent row
    panel: pd.DataFrame = field(repr=False)

    @property
    def groups(self) -> np.ndarray:
        """Relative first months with a base month inside the grid (groups treated in the first month have none)."""
        g = self.g_rel
        return np.unique(g[(g >= 1) & (g < self.n_t)])

    def outcome(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(months × units values with 0 where unobserved, months × units observed mask) of one outcome."""
        y = self.base.copy()
        y[self.ids, self.t_idx - self.t0] = self.panel[name].to_numpy(float)[self.rows]
        # months × units (a month's values contiguous: the blocks below gather whole months)
        seen = np.isfinite(y.T)
        return np.where(seen, y.T, 0.0), seen

    def event_times(self) -> range:
        """Every event time e = t − g with a cell: pre-treatment cells need t − 1 ≥ 0, post ones t < n_t."""
        return range(-(self.n_t - 2), self.n_t - 1)


def _grid(
    panel: pd.DataFrame,
    units: pd.DataFrame | None,
    first_treated: str,
    id_col: str,
    month_col: str,
    fill_value: float | None,
) -> _Grid:
    if units is None:
        ids, id_index = pd.factorize(panel[id_col].astype(str))
        t_idx = np.asarray(months.to_index(panel[month_col]), dtype=np.int64)
        t0 = int(t_idx.min())
        n_t = int(t_idx.max()) - t0 + 1
        n_u = len(id_index)
        ft = panel[[first_treated]].assign(_id=ids).drop_duplicates("_id").set_index("_id")[first_treated]
        ft = ft.reindex(np.arange(n_u))
        rows = np.ones(len(panel), dtype=bool)
        base = np.full((n_u, n_t), np.nan if fill_value is None else float(fill_value))
    else:
        lo_all = np.asarray(months.to_index(units["observed_from"]), dtype=np.int64)
        hi_all = np.asarray(months.to_index(units["observed_to"]), dtype=np.int64)
        u = units[lo_all <= hi_all]
        lo, hi = lo_all[lo_all <= hi_all], hi_all[lo_all <= hi_all]
        id_index = pd.Index(u[id_col].astype(str))
        if not id_index.is_unique:
            dup = id_index[id_index.duplicated()][:3].tolist()
            raise InputError(f"units: {id_col} must be unique (one row per unit); repeated e.g. {dup}")
        if not len(id_index):
            raise InputError("units: no unit has an observed month (observed_from <= observed_to)")
        t0 = int(lo.min())
        n_t = int(hi.max()) - t0 + 1
        ft = u[first_treated].reset_index(drop=True)
        ids = id_index.get_indexer(panel[id_col].astype(str))
        t_idx = (
            np.asarray(months.to_index(panel[month_col]), dtype=np.int64) if len(panel) else np.zeros(0, int)
        )
        safe = np.where(ids >= 0, ids, 0)
        rows = (ids >= 0) & (t_idx >= lo[safe]) & (t_idx <= hi[safe])
        ids, t_idx = ids[rows], t_idx[rows]
        cols = np.arange(t0, t0 + n_t)
        base = np.where((cols >= lo[:, None]) & (cols <= hi[:, None]), 0.0, np.nan)
    g_abs = np.full(len(id_index), _NEVER + t0, dtype=np.int64)
    has = ft.notna() & (ft.astype(str).str.len() >= 7)
    g_abs[has.to_numpy()] = np.asarray(months.to_index(ft[has].astype(str)), dtype=np.int64)
    return _Grid(id_index, t0, n_t, g_abs - t0, ids, t_idx, rows, base, panel)


# -- the cells of one event time ---------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Cells:
    """The identified cells ATT(g, g+e) of one event time e and what their aggregation needs.

    ``psi_sum`` is Σ_g n_g ψ_{g,i} per unit (ψ_{g,i} the influence contribution of unit i to ATT(g, g+e), scaled
    so that ATT − θ ≈ Σ_i ψ_i); ``treated``/``cell`` are the treated units of the cells and their cell."""

    e: int
    groups: np.ndarray
    att: np.ndarray
    n_treated: np.ndarray
    n_control: np.ndarray
    std_error: np.ndarray | None
    psi_sum: np.ndarray
    treated: np.ndarray
    cell: np.ndarray

    @property
    def theta(self) -> float:
        """θ(e) = Σ_g n_g ATT(g, g+e) / Σ_g n_g."""
        return float(np.dot(self.n_treated, self.att) / self.n_treated.sum())

    def psi(self) -> np.ndarray:
        """Influence contributions of θ(e) per unit, with the estimation of the group shares (did's ``wif``):
        ψ_i = [Σ_g n_g ψ_{g,i} + 1{i treated in a cell} (ATT(G_i, G_i+e) − θ(e))] / Σ_g n_g."""
        n = float(self.n_treated.sum())
        out = self.psi_sum / n
        out[self.treated] += (self.att[self.cell] - self.theta) / n
        return out


def _cells(
    y: np.ndarray,
    seen: np.ndarray,
    g_rel: np.ndarray,
    groups: np.ndarray,
    e: int,
    never_only: bool,
    cell_se: bool = False,
) -> _Cells | None:
    """ATT(g, g+e) for every group g with both months in the grid, treated and comparison units observed.

    Months compared: g+e with the base month g−1 for e ≥ 0 (long difference) and with g+e−1 for e < 0 (did's
    ``base_period = "varying"``). Comparison units: observed in both months and not yet treated in month g+e
    (first month > g+e, not in g; never-treated included), or never treated (``never_only``).

    Computation: the treated change ΔY = Y_{g+e} − Y_base of a unit is one lookup (a unit is in its own group
    only); the comparison units of a block of groups form one groups × units matrix, whose row sums give the
    comparison means and whose product with the group weights gives Σ_g n_g ψ_g in one matrix–vector product.
    """
    n_t, n_u = y.shape
    gs = groups[groups + e < n_t] if e >= 0 else groups[groups + e - 1 >= 0]
    if not len(gs):
        return None
    lag = (lambda g: g - 1) if e >= 0 else (lambda g: g + e - 1)
    tu = np.flatnonzero(np.isin(g_rel, gs))
    gt = g_rel[tu]
    both = seen[gt + e, tu] & seen[lag(gt), tu]
    tu, gt = tu[both], gt[both]
    dyt = y[gt + e, tu] - y[lag(gt), tu]
    col = np.searchsorted(gs, gt)
    n1 = np.bincount(col, minlength=len(gs))
    m1 = np.bincount(col, weights=dyt, minlength=len(gs)) / np.maximum(n1, 1)
    n0 = np.zeros(len(gs), dtype=np.int64)
    m0 = np.zeros(len(gs))
    ss0 = np.zeros(len(gs))
    psi_sum = np.zeros(n_u)
    never = (g_rel == _NEVER)[None, :]
    # blocks of groups so that a groups × units block stays around 2 million cells
    block = max(1, 2_000_000 // max(n_u, 1))
    for b in range(0, len(gs), block):
        sl = slice(b, b + block)
        g = gs[sl]
        if never_only:
            eligible = never
        else:
            eligible = g_rel[None, :] > (g + e)[:, None]
            if e < 0:  # a later month than g+e may be g itself
                eligible = eligible & (g_rel[None, :] != g[:, None])
        co = seen[g + e] & seen[lag(g)] & eligible
        dy = np.where(co, y[g + e] - y[lag(g)], 0.0)
        n0[sl] = co.sum(axis=1)
        m0[sl] = dy.sum(axis=1) / np.maximum(n0[sl], 1)
        if cell_se:
            ss0[sl] = np.square(np.where(co, dy - m0[sl][:, None], 0.0)).sum(axis=1)
        use = (n1[sl] > 0) & (n0[sl] > 0)
        r = np.where(use, n1[sl] / np.maximum(n0[sl], 1), 0.0)
        # control part of Σ_g n_g ψ_g: −Σ_g n_g C_gi (ΔY_i − m_Cg)/n_Cg
        psi_sum -= r @ dy - (r * m0[sl]) @ co
    use = (n1 > 0) & (n0 > 0)
    if not use.any():
        return None
    # treated part: Σ_g n_g D_gi (ΔY_i − m_g)/n_g
    keep = use[col]
    psi_sum[tu[keep]] += dyt[keep] - m1[col[keep]]
    se = None
    if cell_se:
        # the cell's own influence: ψ = D (ΔY − m1)/n1 − C (ΔY − m0)/n0, SE² = Σ ψ² (did's analytic SE)
        ss1 = np.bincount(col, weights=np.square(dyt - m1[col]), minlength=len(gs))
        se = np.sqrt(ss1[use] / n1[use] ** 2.0 + ss0[use] / n0[use] ** 2.0)
    new = np.cumsum(use) - 1  # position of a used cell among the used ones
    return _Cells(
        e=e,
        groups=gs[use],
        att=(m1 - m0)[use],
        n_treated=n1[use],
        n_control=n0[use],
        std_error=se,
        psi_sum=psi_sum,
        treated=tu[keep],
        cell=new[col[keep]],
    )


def _each_event_time(
    grid: _Grid, outcome: str, event_times: Sequence[int], never_only: bool, cell_se: bool = False
) -> Iterator[_Cells]:
    """The cells of each event time in ``event_times`` that has any (one outcome matrix built once)."""
    y, seen = grid.outcome(outcome)
    groups = grid.groups
    for e in event_times:
        c = _cells(y, seen, grid.g_rel, groups, e, never_only, cell_se)
        if c is not None:
            yield c


# -- results -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class CSResults(EffectResults):
    """Results of :func:`callaway_santanna`: the effects at the horizons (as every :class:`EffectResults`), plus
    the group-time ATTs and R ``did``'s aggregations on demand.

    Conventions (as R ``did`` 2.1.1 with ``xformla = ~1``, ``panel = TRUE``, ``bstrap = FALSE``):

    * ``base_period = "varying"`` (did's default): ATT(g, t) for t ≥ g compares Y_t with Y_{g−1}; for t < g
      (pre-treatment, a placebo) it compares Y_t with Y_{t−1}. For t ≥ g the two base-period conventions agree.
    * ``control_group``: ``"not_yet_treated"`` (units first treated after t, never-treated included; did's
      ``"notyettreated"``) or ``"never_treated"`` (did's ``"nevertreated"``).
    * Aggregation weights are the treated counts n_g of the cells (did's group shares P(G = g); the same when the
      panel is balanced); the influence function of an aggregate includes the estimation of those shares (did's
      ``wif``).
    * The standard errors of :meth:`group_time` and :meth:`aggregate` are did's analytic ones, SE = √(Σ_i ψ_i²)
      with no small-sample factor. The effects table (:meth:`to_frame`, the pipeline's ``cs_did`` rows) uses the
      package's one convention, CR1 by unit: SE · √(G/(G−1)) with G the units contributing (treated and
      comparison units of the cells).
    """

    control_group: str = "not_yet_treated"
    base_period: str = "varying"
    grid: _Grid | None = field(default=None, repr=False)
    _cache: dict = field(default_factory=dict, repr=False)

    def _outcomes(self, outcome: str | None) -> list[str]:
        done = list(dict.fromkeys(e.outcome for e in self.estimates))
        if self.grid is None:
            raise InputError(
                "these results carry no panel: group_time()/aggregate() need callaway_santanna()'s"
            )
        if outcome is None:
            return done or [o for o in OUTCOMES if o in self.grid.panel]
        if outcome not in self.grid.panel:
            raise InputError(f"outcome {outcome!r} is not a column of the panel")
        return [outcome]

    @one_blas_thread
    def group_time(self, outcome: str | None = None) -> pd.DataFrame:
        """ATT(g, t) for every group g (first treated month) and month t with treated and comparison units,
        pre-treatment cells included (columns :data:`GROUP_TIME_COLUMNS`; ``group``, ``time`` and ``base_month``
        as ``YYYY-MM``; did's analytic SE; intervals at the level 1 − :attr:`alpha`)."""
        frames = []
        for o in self._outcomes(outcome):
            key = ("group_time", o)
            if key not in self._cache:
                rows = []
                g = self.grid
                never = self.control_group == "never_treated"
                for c in _each_event_time(g, o, g.event_times(), never, cell_se=True):
                    base = c.groups - 1 if c.e >= 0 else c.groups + c.e - 1
                    for j in range(len(c.groups)):
                        rows.append(
                            (o, c.groups[j], c.groups[j] + c.e, c.e, base[j], c.att[j], c.std_error[j],
                             c.n_treated[j], c.n_control[j])
                        )  # fmt: skip
                cols = ["outcome", "group", "time", "event_time", "base_month", "estimate", "std_error"]
                t = pd.DataFrame(rows, columns=[*cols, "n_treated", "n_control"])
                t = t.sort_values(["group", "time"], kind="stable").reset_index(drop=True)
                for c in ("group", "time", "base_month"):
                    t[c] = (
                        months.from_index(t[c].to_numpy(np.int64) + g.t0) if len(t) else t[c].astype(object)
                    )
                self._cache[key] = t
            frames.append(self._cache[key])
        return self._with_intervals(pd.concat(frames, ignore_index=True))[GROUP_TIME_COLUMNS]

    @one_blas_thread
    def aggregate(
        self,
        kind: str = "dynamic",
        outcome: str | None = None,
        min_e: int | None = None,
        max_e: int | None = None,
    ) -> pd.DataFrame:
        """R ``did``'s ``aggte``: ``"dynamic"`` (event-time) or ``"simple"`` aggregation of the ATT(g, t).

        * dynamic: θ(e) = Σ_g n_g ATT(g, g+e) / Σ_g n_g for each event time e = t − g in [``min_e``, ``max_e``]
          (pre-treatment e < 0 included, as did);
        * simple: θ = Σ n_g ATT(g, t) / Σ n_g over every post-treatment cell t ≥ g (t ≤ g + ``max_e``).

        Influence per unit: ψ_i = [Σ_cells n_g ψ_{g,t,i} + Σ_{cells where i is treated} (ATT(g, t) − θ)] / Σ n_g
        (sums over the aggregated cells) — the weighted cell influences plus the estimation of the group shares
        (did's ``wif``); SE = √(Σ_i ψ_i²).
        Columns :data:`AGGREGATE_COLUMNS` (simple: no ``event_time``; ``n_groups`` counts the cells).
        """
        check("kind", kind, ("dynamic", "simple"), where="CSResults.aggregate")
        lo = -(10**9) if min_e is None else int(min_e)
        hi = 10**9 if max_e is None else int(max_e)
        frames = []
        for o in self._outcomes(outcome):
            key = (kind, o, lo, hi)
            if key not in self._cache:
                ev = [e for e in self.grid.event_times() if lo <= e <= hi and (kind == "dynamic" or e >= 0)]
                never = self.control_group == "never_treated"
                cells = _each_event_time(self.grid, o, ev, never)
                self._cache[key] = _dynamic(o, cells) if kind == "dynamic" else _simple(o, cells)
            frames.append(self._cache[key])
        out = self._with_intervals(pd.concat(frames, ignore_index=True))
        cols = AGGREGATE_COLUMNS if kind == "dynamic" else [c for c in AGGREGATE_COLUMNS if c != "event_time"]
        return out[cols]

    def _with_intervals(self, t: pd.DataFrame) -> pd.DataFrame:
        z = critical_value(self.alpha)
        est, se = t["estimate"].to_numpy(float), t["std_error"].to_numpy(float)
        return t.assign(
            ci_lower=est - z * se,
            ci_upper=est + z * se,
            p_value=[normal_p_value(a, b) for a, b in zip(est, se, strict=True)],
        )

    def __repr__(self) -> str:
        return (
            f"CSResults({len(self.estimates)} estimates, control_group={self.control_group!r}, "
            f"base_period={self.base_period!r}, {self.n_clusters} units)"
        )


def _dynamic(outcome: str, cells: Iterator[_Cells]) -> pd.DataFrame:
    rows = []
    for c in cells:
        psi = c.psi()
        rows.append(
            (outcome, c.e, c.theta, float(np.sqrt(np.sum(psi**2))), int(c.n_treated.sum()), len(c.groups))
        )
    cols = ["outcome", "event_time", "estimate", "std_error", "n_treated", "n_groups"]
    return pd.DataFrame(rows, columns=cols)


def _simple(outcome: str, cells: Iterator[_Cells]) -> pd.DataFrame:
    psi_sum = None
    att_sum = count = None
    num = den = 0.0
    n_cells = 0
    for c in cells:
        if psi_sum is None:
            psi_sum = np.zeros_like(c.psi_sum)
            att_sum, count = np.zeros_like(c.psi_sum), np.zeros_like(c.psi_sum)
        psi_sum += c.psi_sum
        # the share term: Σ over the cells of unit i's group of (ATT(g, t) − θ), θ known only at the end
        np.add.at(att_sum, c.treated, c.att[c.cell])
        np.add.at(count, c.treated, 1.0)
        num += float(np.dot(c.n_treated, c.att))
        den += float(c.n_treated.sum())
        n_cells += len(c.groups)
    if psi_sum is None:
        return pd.DataFrame(
            [(outcome, np.nan, np.nan, 0, 0)],
            columns=["outcome", "estimate", "std_error", "n_treated", "n_groups"],
        )
    theta = num / den
    psi = (psi_sum + att_sum - count * theta) / den
    row = (outcome, theta, float(np.sqrt(np.sum(psi**2))), int(den), n_cells)
    return pd.DataFrame([row], columns=["outcome", "estimate", "std_error", "n_treated", "n_groups"])


# -- the estimator -----------------------------------------------------------------------------------------------
@one_blas_thread
def callaway_santanna(
    panel: pd.DataFrame,
    outcomes: Sequence[str] | None = None,
    horizons: Sequence[int] = (3, 6, 12),
    measures: Sequence[str] = ("status",),
    first_treated: str = "first_treated",
    id_col: str = "person_id",
    month_col: str = "month",
    fill_value: float | None = None,
    units: pd.DataFrame | None = None,
    alpha: float = 0.05,
    control_group: str = "not_yet_treated",
) -> CSResults:
    """Staggered-adoption DiD: group-time ATTs, aggregated by event time, as R ``did`` (Callaway & Sant'Anna 2021).

    Unconditional version (no covariates). For the group g of units first treated in month g and a month
    t = g + e ≥ g,

        ATT(g, t) = E[Y_t − Y_{g−1} | G = g] − E[Y_t − Y_{g−1} | C]

    where C are the comparison units observed in both months: with ``control_group="not_yet_treated"`` (default)
    the units not yet treated in t (G > t, never-treated included), with ``"never_treated"`` the never-treated
    only. Pre-treatment cells (t < g) compare t with t−1 (did's default ``base_period = "varying"``; for t ≥ g
    the base month is g−1 under either convention); they are in :meth:`CSResults.group_time` and
    :meth:`CSResults.aggregate`, not in the effects. Event-time aggregation with weights proportional to the
    treated counts: θ(e) = Σ_g n_g ATT(g, g+e) / Σ_g n_g over the groups with g+e observed. ``status`` at
    horizon k is θ(k); ``cumulative`` at k is Σ_{e=1..k} θ(e).

    Influence per unit (estimate − θ ≈ Σ_i ψ_i), clustered by unit:

        ψ_i = (1/N) Σ_g n_g [D_gi (ΔY_i − m_g)/n_g − C_gi (ΔY_i − m_Cg)/n_Cg] + (1/N) D_i (ATT(G_i, G_i+e) − θ(e))

    with N = Σ_g n_g; the last term is the estimation of the group shares n_g/N (did's ``wif``: first order,
    largest when effects differ between groups). This estimator does not use matching: it is the design
    cross-check of the matched estimates. Its effects use the package's CR1 standard error (G/(G−1) times
    did's; see :class:`CSResults`).

    Computation: the units × months outcome matrix is built once per outcome; for each event time e the changes
    ΔY of every unit for every group g (one units × groups matrix) give all ATT(g, g+e), their counts and ψ in a
    few array operations (column sums and one matrix–vector product), processed in blocks of groups.

    Parameters
    ----------
    panel : long table ``id_col``, ``month_col`` (``YYYY-MM``), ``first_treated`` (``YYYY-MM`` of the first insats
        start, empty/NaN if never) and outcome columns; one row per person and month. Months absent are NaN
        (censored) unless ``fill_value`` is given (e.g. 0 for ``person_months``, whose absent months are zeros).
    units : optional; one row per unit: ``id_col``, ``first_treated``, ``observed_from`` and ``observed_to``
        (``YYYY-MM``, inclusive; a unit with ``observed_from > observed_to`` is left out). With it ``panel`` may be
        sparse, e.g. the rows of ``person_months`` (``first_treated`` not needed there): a unit's months inside its
        observed range are the panel's value or 0 when absent, months outside it are censored (panel rows there
        and rows of other persons are ignored). The result equals that of the dense panel with those zeros filled
        and only the observed months present, without building it.
    alpha : 1 − the level of the intervals.
    control_group : ``"not_yet_treated"`` or ``"never_treated"`` (``options.CS_CONTROL_GROUPS``).

    Returns
    -------
    CSResults
        One estimate per outcome × horizon × measure (subgroup ``all``); its ``clusters`` are the units
        (``id_col``), the cluster of each estimate's influence contributions; ``group_time()`` and
        ``aggregate("simple" | "dynamic")`` give did's tables.
    """
    check("control_group", control_group, CS_CONTROL_GROUPS, where="callaway_santanna")
    outcomes = [o for o in (outcomes or OUTCOMES) if o in panel]
    if units is None:
        require_columns(panel, [id_col, month_col, first_treated, *outcomes], "panel")
    else:
        require_columns(panel, [id_col, month_col, *outcomes], "panel")
        require_columns(units, [id_col, first_treated, "observed_from", "observed_to"], "units")
    if not outcomes:
        raise InputError("panel has none of the requested outcome columns")
    grid = _grid(panel, units, first_treated, id_col, month_col, fill_value)
    never = control_group == "never_treated"
    estimates: list[Estimate] = []
    notes: list[str] = []
    max_e = max(horizons)
    need_e = sorted({k for k in horizons} | (set(range(1, max_e + 1)) if "cumulative" in measures else set()))
    for o in outcomes:
        theta: dict[int, tuple[float, np.ndarray, int, int]] = {}
        for c in _each_event_time(grid, o, need_e, never):
            theta[c.e] = (c.theta, c.psi(), int(c.n_treated.sum()), int(c.n_control.max()))
        for m in measures:
            for k in horizons:
                if m == "status":
                    if k not in theta:
                        notes.append(f"cs_did: event time {k} not identified for {o}")
                        continue
                    est, psi, n1, n0 = theta[k]
                else:
                    if any(e not in theta for e in range(1, k + 1)):
                        notes.append(f"cs_did: cumulative {k} not identified for {o}")
                        continue
                    est = float(sum(theta[e][0] for e in range(1, k + 1)))
                    psi = np.sum([theta[e][1] for e in range(1, k + 1)], axis=0)
                    n1, n0 = theta[k][2], theta[k][3]
                nz = psi != 0
                # rows: positions of the contributing units in ``id_index`` (the results' clusters)
                estimates.append(
                    Estimate(o, k, m, "all", "cs_did", est, n1, n0, rows=np.flatnonzero(nz), psi=psi[nz])
                )
    return CSResults(
        estimates=tuple(estimates),
        se_type="cluster",
        cluster=id_col,
        estimand=CS_DID if not never else CS_DID_NEVER_TREATED,
        clusters=grid.id_index,
        alpha=alpha,
        notes=tuple(notes),
        control_group=control_group,
        grid=grid,
    )


def fit_cs_did(sample: Sample, context: FitContext) -> Fitted:
    """``cs_did`` on the panel sample (``panel=``, optionally sparse with ``panel_units=``): every outcome,
    horizon and measure, subgroup ``all``, comparison units ``options.cs_control_group``; the bootstrap is
    linearised (``inference.linearised_bootstrap``)."""
    opts = context.options
    cs = callaway_santanna(
        sample.frame,
        outcomes=opts.outcomes,
        horizons=opts.horizons,
        measures=opts.measures,
        units=sample.units,
        alpha=opts.alpha,
        control_group=opts.cs_control_group,
    )
    codes = context.cluster_index.get_indexer(cs.clusters)
    out = []
    for e in cs.estimates:
        e = e.recoded(codes)
        if context.boot_counts is not None and e.psi is not None:
            e = dataclasses.replace(
                e, boot=linearised_bootstrap(e.estimate, e.rows, e.psi, context.boot_counts)
            )
        out.append(e)
    return Fitted(tuple(out), cs.notes)
