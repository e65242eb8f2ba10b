"""Callaway & Sant'Anna (2021) staggered-adoption DiD on the long panel: the design cross-check ``cs_did``.

:func:`callaway_santanna` is usable on its own (a researcher's panel) and is the ``cs_did`` estimator of
``estimate_effects`` (:func:`fit_cs_did`), whose results' units are mapped into the call's cluster coding
through the public ``EffectResults.clusters`` and ``Estimate.recoded``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .. import months
from ..errors import InputError
from ..estimand import CS_DID
from ..schema import OUTCOMES
from .inference import linearised_bootstrap, one_blas_thread
from .results import EffectResults, Estimate
from .sample import FitContext, Fitted, Sample, require_columns


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
) -> EffectResults:
    """Staggered-adoption DiD: group-time ATTs with not-yet-treated controls, aggregated by event time.

    Callaway & Sant'Anna (2021), unconditional version with a universal base period g−1. For the group g of units
    first treated in month g and a month t = g + e,

        ATT(g, t) = E[Y_t − Y_{g−1} | G = g] − E[Y_t − Y_{g−1} | G > t]

    where ``G > t`` are the not-yet-treated (including never-treated) units observed in both months. Event-time
    aggregation with weights proportional to group size: θ(e) = Σ_g n_g ATT(g, g+e) / Σ_g n_g over the groups
    with g+e observed. ``status`` at horizon k is θ(k); ``cumulative`` at k is Σ_{e=1..k} θ(e). Influence per
    unit: ψ_i = Σ_g (n_g/N) [D_gi (ΔY_i − m_g)/n_g − C_gi (ΔY_i − m_Cg)/n_Cg], treating the group shares as fixed
    (their estimation effect, included by CS, is second order here and omitted); clustered by person.
    This estimator does not use matching: it is the design cross-check of the matched estimates.

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

    Returns
    -------
    EffectResults
        One estimate per outcome × horizon × measure (subgroup ``all``); its ``clusters`` are the units
        (``id_col``), the cluster of each estimate's influence contributions.
    """
    outcomes = [o for o in (outcomes or OUTCOMES) if o in panel]
    if units is None:
        require_columns(panel, [id_col, month_col, first_treated, *outcomes], "panel")
    else:
        require_columns(panel, [id_col, month_col, *outcomes], "panel")
        require_columns(units, [id_col, first_treated, "observed_from", "observed_to"], "units")
    if not outcomes:
        raise InputError("panel has none of the requested outcome columns")
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
        n_u = len(id_index)
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
    g_abs = np.full(n_u, np.iinfo(np.int64).max // 2, dtype=np.int64)
    has = ft.notna() & (ft.astype(str).str.len() >= 7)
    g_abs[has.to_numpy()] = np.asarray(months.to_index(ft[has].astype(str)), dtype=np.int64)
    g_rel = g_abs - t0
    estimates: list[Estimate] = []
    notes: list[str] = []
    max_e = max(horizons)
    need_e = sorted({k for k in horizons} | (set(range(1, max_e + 1)) if "cumulative" in measures else set()))
    groups = np.unique(g_rel[(g_rel >= 1) & (g_rel < n_t)])
    # blocks of groups so that a units × groups block stays around 2 million cells
    block = max(1, 2_000_000 // max(n_u, 1))
    for o in outcomes:
        y = base.copy()
        y[ids, t_idx - t0] = panel[o].to_numpy(float)[rows]
        # months × units (a month's values contiguous: the blocks below gather whole months)
        seen = np.isfinite(y.T)
        y = np.where(seen, y.T, 0.0)  # unobserved months are excluded through ``seen``
        theta: dict[int, tuple[float, np.ndarray, int, int]] = {}
        for e in need_e:
            gs = groups[groups + e < n_t]
            if not len(gs):
                continue
            # treated: a unit is in its own group only, so its change ΔY = Y_{g+e} − Y_{g−1} is one lookup
            tu = np.flatnonzero(np.isin(g_rel, gs))
            gt = g_rel[tu]
            both = seen[gt + e, tu] & seen[gt - 1, tu]
            tu, gt = tu[both], gt[both]
            dyt = y[gt + e, tu] - y[gt - 1, tu]
            col = np.searchsorted(gs, gt)
            n1 = np.bincount(col, minlength=len(gs))
            m1 = np.bincount(col, weights=dyt, minlength=len(gs)) / np.maximum(n1, 1)
            # controls (not yet treated at g+e, observed at g−1 and g+e): one groups × units block at a time
            n0 = np.zeros(len(gs), dtype=np.int64)
            m0 = np.zeros(len(gs))
            psi_num = np.zeros(n_u)
            for b in range(0, len(gs), block):
                sl = slice(b, b + block)
                g = gs[sl]
                co = seen[g + e] & seen[g - 1] & (g_rel[None, :] > (g + e)[:, None])
                dy = np.where(co, y[g + e] - y[g - 1], 0.0)
                n0[sl] = co.sum(axis=1)
                m0[sl] = dy.sum(axis=1) / np.maximum(n0[sl], 1)
                use = (n1[sl] > 0) & (n0[sl] > 0)
                r = np.where(use, n1[sl] / np.maximum(n0[sl], 1), 0.0)
                # ψ numerator, control part: −Σ_g n_g C_gi (ΔY_i − m_Cg)/n_Cg
                psi_num -= r @ dy - (r * m0[sl]) @ co
            use = (n1 > 0) & (n0 > 0)
            if not use.any():
                continue
            # treated part: Σ_g n_g D_gi (ΔY_i − m_g)/n_g; the sum is divided by N = Σ n_g below
            keep = use[col]
            psi_num[tu[keep]] += dyt[keep] - m1[col[keep]]
            n_tot = int(n1[use].sum())
            num = float(np.dot(n1[use], m1[use] - m0[use]))
            theta[e] = (num / n_tot, psi_num / n_tot, n_tot, int(n0[use].max()))
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
    return EffectResults(
        estimates=tuple(estimates),
        se_type="cluster",
        cluster=id_col,
        estimand=CS_DID,
        clusters=id_index,
        alpha=alpha,
        notes=tuple(notes),
    )


def fit_cs_did(sample: Sample, context: FitContext) -> Fitted:
    """``cs_did`` on the panel sample (``panel=``, optionally sparse with ``panel_units=``): every outcome,
    horizon and measure, subgroup ``all``; the bootstrap is linearised (``inference.linearised_bootstrap``)."""
    opts = context.options
    cs = callaway_santanna(
        sample.frame,
        outcomes=opts.outcomes,
        horizons=opts.horizons,
        measures=opts.measures,
        units=sample.units,
        alpha=opts.alpha,
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
