"""Sensitivity analysis of the matched effects: Rosenbaum bounds, E-values, placebo outcomes and placebo starts.

How strong would hidden bias have to be, and do the effects vanish where they must? :func:`sensitivity_analysis`
collects the checks in one tidy table (``SensitivityResults``); the bounds and the E-value are usable alone.
Conventions, each named in the table's ``method`` column: McNemar's bound is P(B ≥ T) (Rosenbaum 2002; rbounds'
``binarysens`` gives P(B > T)); the signed-rank bound drops zero differences before ranking (rbounds' ``psens``)
or ranks them first (Pratt; DOS2's ``senWilcox``), as ``inference.rosenbaum_zeros`` says. Both agree with the R
functions on their documented examples (``tests/fixtures/rosenbaum``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import InputError
from ..options import MEASURES, ROSENBAUM_ZEROS, check
from ..schema import BINARY_OUTCOMES, OUTCOMES, outcome_column
from .inference import critical_value, match_positions, normal_p_value
from .matched import weighted_mean_difference
from .results import SENSITIVITY_COLUMNS, SensitivityResults
from .sample import require_columns

#: The ``method`` of each Rosenbaum row: McNemar's exact bound, or the signed-rank bound by its handling of zeros.
ROSENBAUM_METHODS: dict[str, str] = {
    "mcnemar": "mcnemar_exact",
    "drop": "wilcoxon_drop_zeros",
    "pratt": "wilcoxon_pratt",
}
#: The ``method`` of the other checks' rows.
E_VALUE_METHOD = "vanderweele_ding"
PLACEBO_METHOD = "weighted_mean_difference"


def rosenbaum_mcnemar(treated_y: np.ndarray, control_y: np.ndarray, gamma: float = 1.0) -> float:
    """Upper bound of the one-sided p-value of McNemar's test for binary outcomes in matched pairs under hidden
    bias Γ (Rosenbaum 2002, §4.3.2).

    The test is taken in the direction of the observed effect. With D discordant pairs of which T go that way,
    p⁺ = Γ/(1+Γ) and the bound is P(B ≥ T), B ~ Binomial(D, p⁺); at Γ = 1 it is the exact McNemar (sign) test.
    (rbounds' ``binarysens`` returns ``1 − pbinom(T, D, p⁺)`` = P(B > T) = P(B ≥ T + 1), which is smaller and
    gives a larger critical Γ; ``tests/fixtures/rosenbaum`` records both.)
    """
    t = np.asarray(treated_y, float)
    c = np.asarray(control_y, float)
    up = int(np.sum((t == 1) & (c == 0)))
    down = int(np.sum((t == 0) & (c == 1)))
    d = up + down
    if d == 0:
        return 1.0
    k = max(up, down)
    return float(stats.binom.sf(k - 1, d, gamma / (1 + gamma)))


def rosenbaum_wilcoxon(
    treated_y: np.ndarray, control_y: np.ndarray, gamma: float = 1.0, zeros: str = "drop"
) -> float:
    """Upper bound of the one-sided p-value of Wilcoxon's signed-rank test in matched pairs under hidden bias Γ
    (Rosenbaum 2002, §4.3.3; normal approximation).

    d_i = Y_t − Y_c, oriented in the direction of the observed effect (the larger of the positive and negative
    rank sums). Zero differences (``zeros``, ``options.ROSENBAUM_ZEROS``):

    * ``"drop"``: dropped, then the others ranked (Wilcoxon 1945; rbounds' ``psens``);
    * ``"pratt"``: every |d_i| ranked, zeros included, then the zeros given rank 0 (Pratt 1959; DOS2's
      ``senWilcox``, Rosenbaum 2015).

    With r_i the rank of |d_i| (average ranks for ties), T = Σ_{d_i>0} r_i and p⁺ = Γ/(1+Γ):

        E⁺ = p⁺ Σ r_i,   V⁺ = p⁺(1−p⁺) Σ r_i²,   p ≤ 1 − Φ((T − E⁺)/√V⁺).

    The two conventions agree without zeros; with many (register outcomes) they differ, e.g. critical Γ 4.43
    (drop) vs 4.34 (Pratt) on DOS2's lead data.
    """
    check("zeros", zeros, ROSENBAUM_ZEROS, where="rosenbaum_wilcoxon")
    return _wilcoxon_bound(_wilcoxon_sums(treated_y, control_y, zeros), gamma)


def _wilcoxon_sums(
    treated_y: np.ndarray, control_y: np.ndarray, zeros: str
) -> tuple[float, float, float] | None:
    """(T, Σ r_i, Σ r_i²) of :func:`rosenbaum_wilcoxon` (the ranks do not depend on Γ: computed once for the
    search of the critical Γ), or None when every difference is zero."""
    d = np.asarray(treated_y, float) - np.asarray(control_y, float)
    d = d[np.isfinite(d)]
    if zeros == "drop":
        d = d[d != 0]
        r = stats.rankdata(np.abs(d))
    else:
        r = stats.rankdata(np.abs(d)) * (d != 0)
    if not np.any(r > 0):
        return None
    if np.sum(r[d > 0]) < np.sum(r[d < 0]):
        d = -d
    return float(np.sum(r[d > 0])), np.sum(r), np.sum(r**2)


def _wilcoxon_bound(sums: tuple[float, float, float] | None, gamma: float) -> float:
    """The bound of :func:`rosenbaum_wilcoxon` at Γ from :func:`_wilcoxon_sums`."""
    if sums is None:
        return 1.0
    t, sum_r, sum_r2 = sums
    p = gamma / (1 + gamma)
    e = p * sum_r
    v = p * (1 - p) * sum_r2
    return float(stats.norm.sf((t - e) / math.sqrt(v)))


def critical_gamma(pvalue: Callable[[float], float], alpha: float = 0.05, gamma_max: float = 100.0) -> float:
    """Smallest Γ ≥ 1 at which the upper-bound p-value reaches ``alpha`` (1 when not significant at Γ = 1;
    ``inf`` when still significant at ``gamma_max``)."""
    if pvalue(1.0) >= alpha:
        return 1.0
    if pvalue(gamma_max) < alpha:
        return float("inf")
    from scipy.optimize import brentq

    return float(
        math.exp(brentq(lambda lg: pvalue(math.exp(lg)) - alpha, 0.0, math.log(gamma_max), xtol=1e-8))
    )


def e_value(rr: float) -> float:
    """E-value of a risk ratio (VanderWeele & Ding 2017): RR* = RR if RR ≥ 1 else 1/RR; E = RR* + √(RR*(RR*−1)).

    The minimum strength of association (risk-ratio scale) an unmeasured confounder would need with both
    treatment and outcome to explain the observed risk ratio away."""
    if not np.isfinite(rr) or rr <= 0:
        return float("nan")
    r = rr if rr >= 1 else 1 / rr
    return float(r + math.sqrt(r * (r - 1)))


def _pair_positions(
    data: pd.DataFrame, match: object | None, treatment: str
) -> tuple[np.ndarray, np.ndarray]:
    """Positions in ``data`` of (treated, control) for each treated unit's first match."""
    if match is not None:
        return match_positions(data, match, treatment, first_only=True)
    if "subclass" not in data or data["subclass"].isna().all():
        raise InputError(
            "Rosenbaum bounds need matched pairs: pass match= (the MatchResult) or data with a 'subclass' column"
        )
    sc = data["subclass"].to_numpy()
    d = data[treatment].to_numpy()
    tpos, cpos = [], []
    df = pd.DataFrame({"s": sc, "d": d, "p": np.arange(len(data))}).dropna(subset=["s"])
    for _, g in df.groupby("s", sort=False):
        t, c = g.p[g.d == 1].to_numpy(), g.p[g.d == 0].to_numpy()
        if len(t) == 1 and len(c) >= 1:
            tpos.append(t[0])
            cpos.append(c[0])
    return np.asarray(tpos, int), np.asarray(cpos, int)


def sensitivity_analysis(
    data: pd.DataFrame,
    match: object | None = None,
    paths: pd.DataFrame | None = None,
    outcomes: Sequence[str] | None = None,
    horizons: Sequence[int] = (3, 6, 12),
    treatment: str = "treated",
    weights: str | None = "weights",
    cluster: str = "person_id",
    alpha: float = 0.05,
    zeros: str = "drop",
) -> SensitivityResults:
    """How strong would hidden bias have to be, and do the effects vanish where they must?

    * **Rosenbaum bounds** on the matched pairs (each treated unit and its first match; with matching with
      replacement a reused control appears in several pairs, which the bounds treat as independent — an
      approximation): binary status outcomes by McNemar's test (:func:`rosenbaum_mcnemar`), other outcomes by
      Wilcoxon's signed-rank test (:func:`rosenbaum_wilcoxon`, zero differences handled as ``zeros`` says:
      ``"drop"`` as rbounds, ``"pratt"`` as DOS2); reported: the p-value at Γ = 1 and the critical Γ at which
      the upper-bound p-value reaches ``alpha`` (Rosenbaum 2002).
    * **E-value** for binary status outcomes: risk ratio p̄_T/p̄_C of the weighted matched means, its E-value and
      the E-value of the confidence limit nearest 1 (VanderWeele & Ding 2017; (1 − ``alpha``) CI by the delta
      method on log RR with person-clustered influence contributions; E = 1 when the CI includes 1).
    * **Placebo outcome**: the weighted difference in means of the outcome in months u−6 and u−12 (before the
      start; matched on history, so it must be near 0) from ``paths``.
    * **Placebo start**: the start moved back 12 months, u' = u − 12: the matched difference-in-differences
      Y(u'+k) − mean Y(u'−12..u'−1) for horizons k < 12 (months before the real start; must be near 0).

    ``data`` is the matched table with horizon outcomes (as for :func:`estimate_effects`); ``match`` the
    ``MatchResult`` (optional without replacement: pairs come from ``subclass``); ``paths`` the ``outcome_paths``
    table (needed for the placebo checks). Every row names its ``method``: ``mcnemar_exact`` (P(B ≥ T)),
    ``wilcoxon_drop_zeros`` or ``wilcoxon_pratt`` (:data:`ROSENBAUM_METHODS`), ``vanderweele_ding`` (E-value),
    ``weighted_mean_difference`` (placebo checks).
    """
    check("zeros", zeros, ROSENBAUM_ZEROS, where="sensitivity_analysis")
    outcomes = [
        o
        for o in (outcomes or OUTCOMES)
        if any(outcome_column(o, k, m) in data for k in horizons for m in MEASURES)
    ]
    rows: list[tuple] = []
    notes: list[str] = []
    try:
        tp, cp = _pair_positions(data, match, treatment)
    except InputError as exc:
        tp = cp = np.zeros(0, int)
        notes.append(str(exc))
    for o in outcomes:
        for m in MEASURES:
            for k in horizons:
                col = outcome_column(o, k, m)
                if col not in data or len(tp) == 0:
                    continue
                y = data[col].to_numpy(float)
                yt, yc = y[tp], y[cp]
                ok = np.isfinite(yt) & np.isfinite(yc)
                yt, yc = yt[ok], yc[ok]
                n_p = int(ok.sum())
                if o in BINARY_OUTCOMES and m == "status":
                    name, method = "rosenbaum_mcnemar", ROSENBAUM_METHODS["mcnemar"]
                    fn = lambda g, a=yt, b=yc: rosenbaum_mcnemar(a, b, g)  # noqa: E731
                else:
                    name, method = "rosenbaum_wilcoxon", ROSENBAUM_METHODS[zeros]
                    sums = _wilcoxon_sums(yt, yc, zeros)
                    fn = lambda g, s=sums: _wilcoxon_bound(s, g)  # noqa: E731
                rows.append((name, o, k, m, "n_pairs", float(n_p), n_p, n_p, method))
                rows.append((name, o, k, m, "p_value_gamma_1", fn(1.0), n_p, n_p, method))
                rows.append((name, o, k, m, "critical_gamma", critical_gamma(fn, alpha), n_p, n_p, method))
        for k in horizons:
            col = outcome_column(o, k, "status")
            if o not in BINARY_OUTCOMES or col not in data:
                continue
            rows += _e_value_rows(data, col, o, k, treatment, weights, cluster, alpha)
    if paths is None:
        notes.append("placebo outcome and placebo start need paths= (the outcome_paths table); not run")
    else:
        rows += _placebo_rows(paths, outcomes, horizons, treatment, weights, cluster)
    table = pd.DataFrame(rows, columns=SENSITIVITY_COLUMNS)
    return SensitivityResults(table=table, alpha=alpha, notes=tuple(notes), rosenbaum_zeros=zeros)


def _e_value_rows(
    data: pd.DataFrame,
    col: str,
    o: str,
    k: int,
    treatment: str,
    weights: str | None,
    cluster: str,
    alpha: float,
) -> list[tuple]:
    y = data[col].to_numpy(float)
    w = np.ones(len(data)) if weights is None or weights not in data else data[weights].to_numpy(float)
    d = data[treatment].to_numpy()
    ok = np.isfinite(y) & (w > 0)
    t, c = ok & (d == 1), ok & (d == 0)
    if not t.any() or not c.any():
        return []
    p1 = float(np.average(y[t], weights=w[t]))
    p0 = float(np.average(y[c], weights=w[c]))
    if p1 <= 0 or p0 <= 0:
        return []
    rr = p1 / p0
    psi = np.zeros(len(y))
    psi[t] = w[t] * (y[t] - p1) / w[t].sum() / p1
    psi[c] = -w[c] * (y[c] - p0) / w[c].sum() / p0
    cl = pd.factorize(data[cluster].astype(str).to_numpy()[ok])[0]
    s = np.bincount(cl, weights=psi[ok])
    g = len(s)
    se = math.sqrt(g / (g - 1) * float(np.sum(s**2))) if g > 1 else float("nan")
    z = critical_value(alpha)
    lo, hi = math.exp(math.log(rr) - z * se), math.exp(math.log(rr) + z * se)
    limit = lo if rr >= 1 else hi
    e_ci = 1.0 if lo <= 1 <= hi else e_value(limit)
    n1, n0 = int(t.sum()), int(c.sum())
    return [
        ("e_value", o, k, "status", stat, value, n1, n0, E_VALUE_METHOD)
        for stat, value in (
            ("risk_ratio", rr),
            ("risk_ratio_ci_lower", lo),
            ("risk_ratio_ci_upper", hi),
            ("e_value", e_value(rr)),
            ("e_value_ci", e_ci),
        )
    ]


#: The months relative to u the placebo checks read (u−6 and u−12; the placebo start's u'+k, k < 12, and its
#: pre-period u'−12..u'−1, with u' = u − 12): the paths' other months need not be loaded for them.
PLACEBO_REL_MONTHS: tuple[int, int] = (-24, -1)


def _placebo_rows(
    paths: pd.DataFrame,
    outcomes: Sequence[str],
    horizons: Sequence[int],
    treatment: str,
    weights: str | None,
    cluster: str,
) -> list[tuple]:
    unit = [c for c in ("person_id", "ref_month", treatment) if c in paths]
    require_columns(paths, [*unit, "rel_month", cluster], "outcome paths")
    extra = [c for c in {weights, cluster} if c and c in paths and c not in unit]
    rows: list[tuple] = []
    outs = [o for o in outcomes if o in paths]
    if not outs:
        return rows
    wide, base = _wide_paths(paths, unit, outs, extra)
    rels = set(wide.columns.get_level_values("rel_month"))
    for o in outs:
        for r in (-6, -12):
            if r not in rels:
                continue
            y = wide[(o, r)].to_numpy(float)
            est, se, n1, n0 = weighted_mean_difference(base, y, treatment, weights, cluster)
            rows += _est_rows("placebo_outcome", o, r, "status", est, se, n1, n0)
        pre = [r for r in range(-24, -12) if r in rels]
        for k in horizons:
            if k >= 12 or (k - 12) not in rels or not pre:
                continue
            y = (
                wide[(o, k - 12)].to_numpy(float)
                - wide[[(o, r) for r in pre]].mean(axis=1, skipna=True).to_numpy()
            )
            est, se, n1, n0 = weighted_mean_difference(base, y, treatment, weights, cluster)
            rows += _est_rows("placebo_start", o, k, "status", est, se, n1, n0)
    return rows


def _wide_paths(
    paths: pd.DataFrame, unit: list[str], outs: list[str], extra: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The outcome paths one row per unit (``unit`` columns, sorted as a sorted groupby orders them) and one
    column per (outcome, ``rel_month``), a censored month missing; and the units' ``extra`` columns (weights,
    cluster) from each unit's first row.

    Where every (unit, month) is one row (the outcome stage's paths) the table is filled by position from the
    units' and months' codes — the paths of a national run are 1.3·10⁷ rows, and a groupby/unstack of them took
    20 s; otherwise the first non-missing value of each (unit, month), by a groupby."""
    cens = paths["censored"].to_numpy(bool) if "censored" in paths else None
    keys = [paths[c] for c in unit]
    codes = [
        k.cat.codes.to_numpy(np.int64)
        if isinstance(k.dtype, pd.CategoricalDtype)
        else pd.factorize(k, sort=True)[0].astype(np.int64)
        for k in keys
    ]
    sizes = [
        len(k.cat.categories) if isinstance(k.dtype, pd.CategoricalDtype) else int(c.max(initial=-1)) + 1
        for k, c in zip(keys, codes, strict=True)
    ]
    rel_code, rel_levels = pd.factorize(paths["rel_month"], sort=True)
    ok = (rel_code >= 0) & np.logical_and.reduce([c >= 0 for c in codes])  # missing keys: dropped, as groupby
    if math.prod([*sizes, len(rel_levels)]) < 2**62:
        key = np.zeros(len(paths), np.int64)
        for c, n in zip(codes, sizes, strict=True):
            key = key * n + c
        units, first, inverse = np.unique(key[ok], return_index=True, return_inverse=True)
        cell = inverse.astype(np.int64) * len(rel_levels) + rel_code[ok]
        if len(np.unique(cell)) == len(cell):
            rows = np.flatnonzero(ok)
            cols = pd.MultiIndex.from_product([outs, rel_levels], names=[None, "rel_month"])
            index = pd.MultiIndex.from_arrays([k.take(rows[first]).values for k in keys], names=unit)
            values = np.full((len(units), len(cols)), np.nan)
            for j, o in enumerate(outs):
                y = paths[o].to_numpy(float)[ok]
                if cens is not None:
                    y = np.where(cens[ok], np.nan, y)
                values[inverse, j * len(rel_levels) + rel_code[ok]] = y
            wide = pd.DataFrame(values, index=index, columns=cols)
            base = pd.DataFrame({c: paths[c].take(rows[first]).to_numpy() for c in [*unit, *extra]})
            return wide, base
    # the columns read only
    p = paths[list(dict.fromkeys([*unit, "rel_month", *outs, *extra]))]
    if cens is not None:
        p = p.assign(**{o: p[o].where(~cens) for o in outs})
    # one row per observed unit (groupby, not pivot_table(dropna=False): that builds the full product of the
    # unit columns' levels — persons × months × roles — and set the 10 GiB peak of the example run)
    wide = p.groupby([*unit, "rel_month"], sort=True, observed=True)[outs].first().unstack("rel_month")
    base = p.drop_duplicates(unit).set_index(unit)[extra].reindex(wide.index).reset_index()
    return wide, base


def _est_rows(name: str, o: str, k: int, m: str, est: float, se: float, n1: int, n0: int) -> list[tuple]:
    p = normal_p_value(est, se)
    return [
        (name, o, k, m, "estimate", est, n1, n0, PLACEBO_METHOD),
        (name, o, k, m, "std_error", se, n1, n0, PLACEBO_METHOD),
        (name, o, k, m, "p_value", p, n1, n0, PLACEBO_METHOD),
    ]
