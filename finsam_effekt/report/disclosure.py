"""Disclosure control: the rules every published number of a run passes, one function per rule.

``t`` is the threshold (``disclosure_threshold``, default ``schema.DEFAULT_DISCLOSURE_THRESHOLD``). A count ``n``
of persons is **small** when ``0 < n < t``; a count of zero describes no person and is published. Every rule
works on what a table publishes, so each table carries the person counts it is checked with (``n``,
``n_treated``, ``n_control``: persons, or matched units of a person at a reference month, as the estimators count
them). :func:`publish` applies all rules to a run's tables and key figures; nothing is written before it.

1. **Identifiers** (:func:`check_publishable`): no output has a ``person_id`` or any column naming a person or a
   register row (:data:`IDENTIFYING_COLUMNS`); such a table is refused.
2. **Counts** (:func:`suppress_counts`): a small count is blanked and its row marked ``suppressed = True``.
3. **Estimates and means** (:func:`suppress_estimates`): an estimate resting on fewer than ``t`` persons in either
   arm (``n_treated`` or ``n_control``; a missing count counts as too small) is blanked with its standard error,
   interval and p-value; so is a mean with its own count ``n < t``. This covers ``effects``, ``sensitivity``,
   ``event_study`` (each month's persons with the outcome observed, counted by the event-study stage) and
   ``outcome_paths`` (each arm and month). A share computed from counts (:data:`TABLE_SHARES`) goes with them.
4. **Balance** (:func:`suppress_balance`): any mean (continuous too) of a group with fewer than ``t`` persons is
   blanked with the row's SMD, variance ratio, eCDF statistics and flags; the mean of a 0/1 variable (a
   ``name=level`` row, or a binary pre-period outcome: :func:`share_rows`) is a share ``p`` that reveals the
   counts ``p·n`` with the level and ``(1 − p)·n`` without it, so the row is blanked when either lies in
   ``1 .. t − 1`` in either group (after matching: the matched persons and MatchIt's weights, so ``p·n`` is the
   weighted count). The ``before`` minus the ``after`` count of a group is the unmatched persons; when that is
   small, the ``before`` count is blanked.
5. **Tables resting on the matched sample as a whole** (:func:`suppress_resting`): the cost-benefit tables
   (:func:`resting_tables`: items, Monte Carlo summary, one-way sensitivity, methods comparison, per insats type)
   carry the fewest persons behind any effect they use (``n_treated``, ``n_control``; per subgroup its own); every
   number of a row is blanked when either is below ``t``, except the stated assumptions
   (:data:`ASSUMPTION_COLUMNS`).
6. **Secondary suppression**: a blanked count must not be recoverable by subtraction from published counts of the
   same sum. The linkage report closes its margins, its sums of steps and its chain of steps
   (``linkage.suppress_with_margins``), continued through the cohort, the match and the follow-up by the
   attrition stage (``attrition.suppress_attrition``: participants = drops + in the cohort, in the cohort =
   unmatched + matched, matched = censored + observed at each horizon; the totals other tables publish are never
   chosen as complements); key figures close :data:`FACT_SUMS` (:func:`publishable_facts`); the per-förbund
   overview closes national = sum of förbund (:func:`suppress_complements`).
7. **Key figures** (:func:`publishable_facts`): a person count (:data:`COUNT_FACTS`) is blanked like a table
   count; a key figure drawn from rows of a table (declared by the stage as ``basis:<key>``) is blanked when any
   of those rows is suppressed or not published.
8. **Stage sizes** (:func:`publishable_rows`, :func:`rows_text`): ``manifest.json``'s ``rows`` and run.log's
   ``rows=`` of the stages whose rows are persons (:data:`PERSON_STAGES`) are written ``null`` (listed under
   ``suppressed``) and ``<t`` when small. The other stages' sizes are published: the input rows summed over every
   register table, the population's person-months of the panel, and the rows of the statistics' own tables
   (covariates × samples, estimates, files) count no group of persons.
9. **Figures** are drawn from the published tables only, and not at all when nothing in them is published; the
   one figure drawn from person-level values, the propensity-score overlap, merges every histogram bin resting on
   ``1 .. t − 1`` persons with its neighbours (:func:`publishable_bins`) and says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..schema import DEFAULT_DISCLOSURE_THRESHOLD

#: Column names that identify a person or a register row; never published.
IDENTIFYING_COLUMNS: frozenset[str] = frozenset(
    {"person_id", "lopnr", "treated_row", "control_row", "row", "registration_id"}
)
#: Columns treated as person counts by :func:`suppress_counts` when present.
COUNT_COLUMNS: tuple[str, ...] = ("n", "n_treated", "n_control", "n_persons", "participants")
#: Value columns blanked with an estimate by :func:`suppress_estimates`.
ESTIMATE_COLUMNS: tuple[str, ...] = (
    "estimate",
    "std_error",
    "ci_lower",
    "ci_upper",
    "p_value",
    "mean",
    "value",
    "statistic_value",
)
#: Person counts of tables whose counts are not in :data:`COUNT_COLUMNS` (blanked by the same rule).
TABLE_COUNT_COLUMNS: dict[str, tuple[str, ...]] = {
    "support_consistency": ("n_participants", "sus_yes", "register_yes", "disagree"),
}
#: Shares blanked whenever one of the counts they are computed from is blanked.
TABLE_SHARES: dict[str, dict[str, tuple[str, ...]]] = {
    "support_consistency": {"share_disagree": ("disagree", "n_participants")},
}
#: Statistics of a balance row, blanked together (:func:`suppress_balance`).
BALANCE_VALUE_COLUMNS: tuple[str, ...] = (
    "mean_treated",
    "mean_control",
    "smd",
    "var_ratio",
    "ecdf_mean",
    "ecdf_max",
    "smd_flag",
    "var_ratio_flag",
)
#: The person counts each table of a run must carry (a missing one counts as too few persons: the table is blanked).
TABLE_PERSONS: dict[str, tuple[str, ...]] = {
    "effects": ("n_treated", "n_control"),
    "event_study": ("n_treated", "n_control"),
    "sensitivity": ("n_treated", "n_control"),
    "outcome_paths": ("n",),
    "balance": ("n_treated", "n_control"),
    "contamination": ("n_treated", "n_control"),
}
#: Numbers of the cost-benefit tables that are assumptions (parameters), not results: never blanked.
ASSUMPTION_COLUMNS: frozenset[str] = frozenset({"interval_level", "low", "high", "low_value", "high_value"})
#: Facts that are person counts (suppressed below the threshold like table counts).
COUNT_FACTS: frozenset[str] = frozenset(
    {
        "participants",
        "candidate_control_months",
        "matched_treated",
        "matched_controls",
        "unmatched_treated",
        "ipcw_later_starts",
    }
)
#: Key figures that add up: ``(total, parts)``. A total is at least the sum of its parts (participants who leave
#: before the match are in neither part); the rule treats it as equal, which can only hide more.
FACT_SUMS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("participants", ("matched_treated", "unmatched_treated")),
)
#: Prefix of the facts a stage adds to say what a key figure rests on (removed before publishing).
BASIS = "basis:"
#: Stages (labels, as in ``run.log`` and ``manifest.json``) whose size is a number of persons: participants,
#: participants and candidate control person-months, matched units, their horizon outcomes.
PERSON_STAGES: frozenset[str] = frozenset({"link", "cohort", "match", "outcomes"})


def check_publishable(df: pd.DataFrame, name: str) -> None:
    """Refuse a table that carries a person identifier.

    Raises
    ------
    ValueError
        If any column is in :data:`IDENTIFYING_COLUMNS` (case-insensitive). This is a programming error in the
        run, not a user mistake: a stage handed person-level rows to the report.
    """
    bad = [c for c in df.columns if str(c).lower() in IDENTIFYING_COLUMNS]
    if bad:
        raise ValueError(
            f"table {name!r} has identifying column(s) {bad}; person-level rows are never published"
        )


def is_small(n: Any, threshold: int) -> bool:
    """Whether a count of persons must be hidden: ``0 < n < threshold`` (a weighted count may be fractional)."""
    try:
        v = round(float(n), 6)
    except (TypeError, ValueError):
        return False
    return bool(0 < v < threshold)


def _mark(df: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    prev = df["suppressed"].astype(bool).to_numpy() if "suppressed" in df else np.zeros(len(df), dtype=bool)
    df["suppressed"] = prev | mask
    return df


def _small(values: pd.Series, threshold: int) -> np.ndarray:
    v = pd.to_numeric(values, errors="coerce").round(6)
    return ((v > 0) & (v < threshold)).fillna(False).to_numpy(dtype=bool)


def _blank(df: pd.DataFrame, columns: Sequence[str], mask: np.ndarray) -> None:
    """Blank ``columns`` of the rows in ``mask``: flags become nullable booleans, anything else a number (NaN
    where blanked)."""
    for c in columns:
        if c not in df.columns:
            continue
        if pd.api.types.is_bool_dtype(df[c]):
            if mask.any():
                df[c] = df[c].astype("boolean").mask(mask)
        else:
            df[c] = pd.to_numeric(df[c], errors="coerce").mask(mask)


# -- rule 2: counts ----------------------------------------------------------------------------------------------
def suppress_counts(
    df: pd.DataFrame, threshold: int = DEFAULT_DISCLOSURE_THRESHOLD, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """Blank every person count ``0 < n < threshold`` and mark its row ``suppressed``.

    Parameters
    ----------
    df
        A published table.
    threshold
        Smallest publishable number of persons ``t``; a count ``n`` is suppressed when ``0 < n < t``.
    columns
        Count columns; default those of :data:`COUNT_COLUMNS` present in ``df``.

    Returns
    -------
    DataFrame
        A copy; count columns become nullable (``Int64``) with ``<NA>`` where suppressed, and a boolean
        ``suppressed`` column (OR-ed with an existing one).
    """
    out = df.copy()
    cols = [c for c in (columns if columns is not None else COUNT_COLUMNS) if c in out.columns]
    mask = np.zeros(len(out), dtype=bool)
    for c in cols:
        v = pd.to_numeric(out[c], errors="coerce")
        small = _small(v, threshold)
        out[c] = v.round().astype("Int64").mask(small)
        mask |= small
    if cols or "suppressed" in out:
        out = _mark(out, mask)
    return out


# -- rule 3: estimates and means ---------------------------------------------------------------------------------
def _is_value(column: str) -> bool:
    """An estimate (:data:`ESTIMATE_COLUMNS`), its corrected version (``estimate_corrected_plateau``, …) or a share
    of the same persons (``share_contaminated``: of the matched controls)."""
    corrected = "_corrected" in column and column.split("_corrected")[0] in ESTIMATE_COLUMNS
    return column in ESTIMATE_COLUMNS or corrected or column.startswith("share_")


def suppress_estimates(
    df: pd.DataFrame,
    threshold: int = DEFAULT_DISCLOSURE_THRESHOLD,
    n_columns: Sequence[str] = ("n_treated", "n_control"),
    value_columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Blank estimates resting on fewer than ``threshold`` persons in either arm, then small counts.

    A row is suppressed when ``min(n_treated, n_control) < threshold`` (a missing count counts as too small);
    its value columns (default :data:`ESTIMATE_COLUMNS` present, their ``*_corrected*`` versions and ``share_*``
    columns) become NaN and ``suppressed`` is True.
    Counts are then blanked by :func:`suppress_counts`. A table without count columns is returned unchanged
    apart from the ``suppressed`` column.
    """
    out = df.copy()
    ncols = [c for c in n_columns if c in out.columns]
    mask = np.zeros(len(out), dtype=bool)
    for c in ncols:
        v = pd.to_numeric(out[c], errors="coerce")
        mask |= (v.isna() | (v < threshold)).to_numpy(dtype=bool)
    if value_columns is None:
        value_columns = [c for c in out.columns if _is_value(c)]
    vcols = [c for c in value_columns if c in out.columns]
    _blank(out, vcols, mask)
    out = _mark(out, mask)
    return suppress_counts(out, threshold, columns=[c for c in COUNT_COLUMNS if c in out.columns])


# -- rule 4: balance ---------------------------------------------------------------------------------------------
def share_rows(balance: pd.DataFrame) -> np.ndarray:
    """Rows of a balance table whose means are shares of a 0/1 variable.

    A variable is 0/1 when it is a ``name=level`` indicator, or when any of its rows has the signature
    ``balance.balance_stats`` gives a 0/1 variable — no variance ratio and ``ecdf_mean = ecdf_max = |m_T − m_C|``
    — with both means within [0, 1] (binary pre-period outcomes such as public support in month u − 1).
    """
    b = balance
    var = b["variable"].astype(str) if "variable" in b else b["covariate"].astype(str)
    level = var.str.contains("=", regex=False).to_numpy()
    mt = pd.to_numeric(b["mean_treated"], errors="coerce")
    mc = pd.to_numeric(b["mean_control"], errors="coerce")
    em = pd.to_numeric(b.get("ecdf_mean"), errors="coerce")
    ex = pd.to_numeric(b.get("ecdf_max"), errors="coerce")
    vr = pd.to_numeric(b.get("var_ratio"), errors="coerce")
    diff = (mt - mc).abs()
    signature = (
        vr.isna()
        & np.isclose(em, diff, rtol=0, atol=1e-12)
        & np.isclose(ex, diff, rtol=0, atol=1e-12)
        & mt.between(0, 1)
        & mc.between(0, 1)
    ).to_numpy(dtype=bool)
    binary_vars = set(var[signature | level])
    return var.isin(binary_vars).to_numpy()


def suppress_balance(df: pd.DataFrame, threshold: int = DEFAULT_DISCLOSURE_THRESHOLD) -> pd.DataFrame:
    """Rule 4 of the module docstring on a balance table with ``n_treated``/``n_control`` per row (the persons
    with positive weight in the row's sample and group).

    Returns a copy with :data:`BALANCE_VALUE_COLUMNS` blanked in the suppressed rows, small counts blanked, the
    ``before`` count of a group blanked when the unmatched (``before − after``) are small, and ``suppressed``.
    """
    out = _with_counts(df, ("n_treated", "n_control"))
    nt = pd.to_numeric(out["n_treated"], errors="coerce")
    nc = pd.to_numeric(out["n_control"], errors="coerce")
    mask = (nt.isna() | nc.isna() | (nt < threshold) | (nc < threshold)).to_numpy(dtype=bool)
    if {"mean_treated", "mean_control"} <= set(out.columns):
        share = share_rows(out)
        for mean, n in (("mean_treated", nt), ("mean_control", nc)):
            p = pd.to_numeric(out[mean], errors="coerce")
            mask |= share & (_small(p * n, threshold) | _small((1 - p) * n, threshold))
    _blank(out, [*BALANCE_VALUE_COLUMNS, "variance_ratio"], mask)
    out = _mark(out, mask)
    if "sample" in out and {"before", "after"} <= set(out["sample"]):
        before = (out["sample"] == "before").to_numpy()
        after = (out["sample"] == "after").to_numpy()
        for c in ("n_treated", "n_control"):
            v = pd.to_numeric(out[c], errors="coerce")
            b, a = v[before].max(), v[after].max()
            if pd.notna(b) and pd.notna(a) and is_small(b - a, threshold):
                out[c] = v.mask(before)
                out = _mark(out, before)
    return suppress_counts(out, threshold, columns=["n_treated", "n_control"])


# -- rule 5: tables resting on the matched sample ----------------------------------------------------------------
def resting_tables(name: str) -> bool:
    """Whether table ``name`` rests as a whole on the matched sample's persons (the cost-benefit tables)."""
    return name == "cost_benefit" or name.startswith("cost_benefit_")


def suppress_resting(df: pd.DataFrame, threshold: int = DEFAULT_DISCLOSURE_THRESHOLD) -> pd.DataFrame:
    """Rule 5: every number of a row (all numeric columns but counts and :data:`ASSUMPTION_COLUMNS`) is blanked
    when the row's ``n_treated`` or ``n_control`` is below ``threshold`` or missing (a table without them rests
    on an unknown number of persons and is blanked whole)."""
    out = _with_counts(df, ("n_treated", "n_control"))
    values = [
        c
        for c in out.columns
        if c not in COUNT_COLUMNS
        and c not in ASSUMPTION_COLUMNS
        and c != "suppressed"
        and pd.api.types.is_numeric_dtype(out[c])
        and not pd.api.types.is_bool_dtype(out[c])
    ]
    return suppress_estimates(out, threshold, value_columns=values)


def _with_counts(df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """A copy of ``df`` with every count column in ``columns`` (missing ones as unknown: too few persons)."""
    out = df.copy()
    for c in columns:
        if c not in out:
            out[c] = np.nan
    return out


# -- rule 6: secondary suppression -------------------------------------------------------------------------------
def suppress_complements(
    values: Mapping[str, Any],
    hidden: set[str],
    sums: Sequence[tuple[str, Sequence[str]]],
    *,
    prefer_total: bool = False,
) -> set[str]:
    """The cells to hide so that no hidden cell of a sum can be recovered by subtraction.

    Parameters
    ----------
    values
        Cell name -> its count (the true value; None or NaN when unknown).
    hidden
        Cells hidden already (primary suppression).
    sums
        ``(total, parts)``: ``total = Σ parts``. A sum whose cells are all present and exactly one of them hidden
        lets a reader recover it, so one more cell is hidden: the smallest non-zero other part (a zero part if
        none), or the total when the hidden cell is a part and ``prefer_total`` (a part published in other
        tables as well cannot be hidden), or when no other part is left. Repeated until no sum has exactly one
        hidden cell.

    Returns
    -------
    set of str
        ``hidden`` and the complements.
    """
    out = set(hidden)
    changed = True
    while changed:
        changed = False
        for total, parts in sums:
            cells = [total, *parts]
            if any(c not in values for c in cells):
                continue
            off = [c for c in cells if c in out]
            if len(off) != 1:
                continue
            others = [c for c in parts if c not in out]
            if prefer_total and off[0] != total:
                pick = total
            elif others:
                pick = min(others, key=lambda c: (_num(values[c]) == 0, _num(values[c])))
            else:
                pick = total
            out.add(pick)
            changed = True
    return out


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("inf")


# -- rule 7: key figures -----------------------------------------------------------------------------------------
def _basis_rows(tables: Mapping[str, pd.DataFrame], basis: Mapping[str, Any]) -> bool:
    """Whether every row a key figure is drawn from is published (``basis``: ``{"table": name, "where": {column:
    value or list of values}, "below": {column: value}}``)."""
    t = tables.get(basis["table"])
    if t is None or t.empty:
        return False
    sel = np.ones(len(t), dtype=bool)
    for col, want in basis.get("where", {}).items():
        if col not in t:
            return False
        vals = want if isinstance(want, list | tuple) else [want]
        sel &= t[col].isin(vals).to_numpy()
    for col, limit in basis.get("below", {}).items():
        sel &= (pd.to_numeric(t[col], errors="coerce") < limit).fillna(False).to_numpy()
    if not sel.any():
        return False
    return not ("suppressed" in t and t.loc[sel, "suppressed"].fillna(True).astype(bool).any())


def publishable_facts(
    facts: Mapping[str, Any], threshold: int, tables: Mapping[str, pd.DataFrame] | None = None
) -> dict[str, Any]:
    """Key figures as published (rule 7, with rule 6 on :data:`FACT_SUMS`); a blanked figure is None (shown as
    the suppressed mark).

    A person count (:data:`COUNT_FACTS`) ``0 < n < threshold`` is blanked. A figure with a ``basis:<key>`` entry is
    blanked when the persons it names (``"persons": (n_treated, n_control)``) are fewer than ``threshold`` or,
    with the published ``tables``, when any row it is drawn from (``"table"``, ``"where"``, ``"below"``) is
    suppressed or absent. Among the counts of a sum of :data:`FACT_SUMS`, one blanked count gets a complement:
    the total (the matched counts are published in every table of the matched sample, the total is not). The
    ``basis:`` entries are not published. Applying the function to its own result changes nothing.
    """
    out: dict[str, Any] = {}
    basis = {k[len(BASIS) :]: v for k, v in facts.items() if k.startswith(BASIS)}
    for k, v in facts.items():
        if k.startswith(BASIS):
            continue
        if k in COUNT_FACTS and v is not None and is_small(v, threshold):
            v = None
        b = basis.get(k)
        if v is not None and b is not None:
            persons = b.get("persons")
            if persons is not None and any(p is None or pd.isna(p) or p < threshold for p in persons):
                v = None
            elif tables is not None and "table" in b and not _basis_rows(tables, b):
                v = None
        out[k] = v
    counts = {k: v for k, v in facts.items() if k in COUNT_FACTS}
    hidden = {k for k in counts if out.get(k) is None}
    for k in suppress_complements(counts, hidden, FACT_SUMS, prefer_total=True):
        if k in out:
            out[k] = None
    return out


def hidden_complements(facts: Mapping[str, Any], published: Mapping[str, Any], threshold: int) -> set[str]:
    """Count facts that :func:`publishable_facts` hid although they are not small themselves (complements)."""
    return {
        k
        for k in COUNT_FACTS
        if k in facts
        and facts[k] is not None
        and published.get(k, 0) is None
        and not is_small(facts[k], threshold)
    }


# -- rule 8: stage sizes -----------------------------------------------------------------------------------------
def publishable_rows(
    rows: Mapping[str, int | None], threshold: int
) -> tuple[dict[str, int | None], list[str]]:
    """``manifest.json``'s ``rows`` (stage label -> rows) as published, and the stages whose size was blanked
    (rule 8: a person stage's size in ``1 .. threshold − 1`` becomes None)."""
    out: dict[str, int | None] = {}
    hidden = []
    for name, n in rows.items():
        if name in PERSON_STAGES and n is not None and is_small(n, threshold):
            out[name] = None
            hidden.append(name)
        else:
            out[name] = n
    return out, hidden


def rows_text(name: str, n: int | None, threshold: int) -> str:
    """run.log's ``rows=`` value of a stage: the size, ``<t`` for a person stage's small size (rule 8)."""
    if name in PERSON_STAGES and n is not None and is_small(n, threshold):
        return f"<{threshold}"
    return str(n)


# -- rule 9: figures drawn from person-level values --------------------------------------------------------------
def publishable_bins(
    values: np.ndarray, edges: np.ndarray, threshold: int, weights: np.ndarray | None = None
) -> tuple[np.ndarray, bool]:
    """Histogram edges on which no bin rests on ``1 .. threshold − 1`` persons (rule 9).

    Persons are the values with a positive weight (all without ``weights``). Scanning from the left, bins are
    merged until the merged bin holds no person or at least ``threshold``; a last bin still too small joins the
    bins before it until the merged bin holds at least ``threshold``. When fewer than ``threshold`` persons are
    there at all, no bin can be shown: the edges come back empty.

    Returns
    -------
    (edges, merged)
        The new edges (a subset of ``edges``) and whether any bin was merged or dropped.
    """
    v = np.asarray(values, dtype=float)
    if weights is not None:
        v = v[np.asarray(weights, dtype=float) > 0]
    counts, _ = np.histogram(v, bins=edges)
    return publishable_bins_of_counts(counts, edges, threshold)


def publishable_bins_of_counts(
    counts: np.ndarray, edges: np.ndarray, threshold: int
) -> tuple[np.ndarray, bool]:
    """:func:`publishable_bins` from the persons in each bin of ``edges`` (``counts``, one fewer than ``edges``)."""
    total = int(np.sum(counts))
    if 0 < total < threshold:
        return np.array([], dtype=float), True
    closed: list[tuple[int, int]] = []  # (end of a merged bin, its persons)
    run = 0
    for j, c in enumerate(counts):
        run += int(c)
        if run == 0 or run >= threshold:
            closed.append((j + 1, run))
            run = 0
    if run:  # the last bins are too few: they join the bins before them until the merged bin is large enough
        while closed and run < threshold:
            run += closed.pop()[1]
        closed.append((len(counts), run))
    keep = [0, *(end for end, _ in closed)]
    new = np.asarray(edges, dtype=float)[keep]
    return new, len(new) != len(edges)


# -- all rules on a run's outputs --------------------------------------------------------------------------------
def apply_disclosure_control(tables: Mapping[str, pd.DataFrame], threshold: int) -> dict[str, pd.DataFrame]:
    """Apply rules 1–5 to every output table (by name: ``balance``, the cost-benefit tables, the tables of
    :data:`TABLE_PERSONS` with their counts, then any other table by its columns)."""
    out = {}
    for name, df in tables.items():
        check_publishable(df, name)
        df = _with_counts(df, TABLE_PERSONS.get(name, ()))
        if name == "balance":
            out[name] = suppress_balance(df, threshold)
        elif resting_tables(name):
            out[name] = suppress_resting(df, threshold)
        elif {"n_treated", "n_control"} & set(df.columns):
            out[name] = suppress_estimates(df, threshold)
        elif "n" in df.columns and set(ESTIMATE_COLUMNS) & set(df.columns):  # e.g. a mean over n persons
            out[name] = suppress_estimates(df, threshold, n_columns=("n",))
        else:
            extra = TABLE_COUNT_COLUMNS.get(name, ())
            cols = [*(c for c in COUNT_COLUMNS if c in df.columns), *(c for c in extra if c in df.columns)]
            out[name] = _with_shares(suppress_counts(df, threshold, columns=cols), name)
    return out


def _with_shares(pub: pd.DataFrame, name: str) -> pd.DataFrame:
    for share, parts in TABLE_SHARES.get(name, {}).items():
        if share in pub:  # a share is as disclosive as the counts it is computed from
            blank = pub[[c for c in parts if c in pub]].isna().any(axis=1)
            pub[share] = pd.to_numeric(pub[share], errors="coerce").mask(blank)
    return pub


def hide_participants(
    tables: Mapping[str, pd.DataFrame], threshold: int, *, linkage: bool = True
) -> dict[str, pd.DataFrame]:
    """Hide the participants' total where the published tables show it (after the key figure ``participants``
    became a complement, rule 6): the linkage report's total of the participants (with ``linkage``; its margins,
    sums and chain closed again by ``attrition.suppress_attrition``, which also closes the attrition steps when
    the report has them) and the consistency table's ``n_participants`` (the participants with a recorded support
    at start: often all of them)."""
    from ..attrition import suppress_attrition
    from ..linkage import STEPS

    out = dict(tables)
    lr = out.get("linkage_report")
    if linkage and lr is not None and len(lr):
        fb = lr["forbund_id"].astype(str)
        # the total over every förbund, or the förbund's own total in a per-förbund report (no "ALL" rows)
        where = fb.eq("ALL") if fb.eq("ALL").any() else pd.Series(True, index=lr.index)
        force = ((lr["step"] == STEPS[-1][0]) & (lr["start_year"].astype(str) == "0") & where).to_numpy()
        out["linkage_report"] = suppress_attrition(lr, threshold, force=force)
    sc = out.get("support_consistency")
    if sc is not None and "n_participants" in sc:
        sc = sc.copy()
        sc["n_participants"] = sc["n_participants"].astype("Int64").mask(np.ones(len(sc), dtype=bool))
        out["support_consistency"] = _with_shares(
            _mark(sc, np.ones(len(sc), dtype=bool)), "support_consistency"
        )
    return out


def publish(
    tables: Mapping[str, pd.DataFrame], facts: Mapping[str, Any], threshold: int
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Every rule on a run's outputs: the published tables (:func:`apply_disclosure_control`) and key figures
    (:func:`publishable_facts`), then the counts of the participants across tables (rule 6):

    * when the key figure ``participants`` is a complement (few unmatched), the linkage report's total and the
      consistency table's ``n_participants`` are hidden too (:func:`hide_participants`); when the linkage report
      hides its total itself, ``n_participants`` goes with it;
    * the balance table's ``before`` count of participants is the participants who reached the match, so when
      the published participants minus it (those who left between the linkage and the match) is small, it is
      hidden; and so it is when the linkage report, continued by the attrition stage, hides that count itself
      (its step ``in_cohort``, all förbund and years).
    """
    pub = apply_disclosure_control(tables, threshold)
    shown = publishable_facts(facts, threshold, pub)
    if "participants" in hidden_complements(facts, shown, threshold):
        pub = hide_participants(pub, threshold)
    elif _total_hidden(pub.get("linkage_report")):
        pub = hide_participants(pub, threshold, linkage=False)
    shown = publishable_facts(facts, threshold, pub)  # key figures drawn from rows hidden just now go too
    n = shown.get("participants")
    bal, raw = pub.get("balance"), tables.get("balance")
    if n is not None and bal is not None and raw is not None and {"sample", "n_treated"} <= set(raw.columns):
        before = (raw["sample"] == "before").to_numpy()
        reached = pd.to_numeric(raw.loc[before, "n_treated"], errors="coerce").max()
        if pd.notna(reached) and is_small(float(n) - float(reached), threshold):
            bal = bal.copy()
            bal["n_treated"] = bal["n_treated"].mask(before)
            pub["balance"] = _mark(bal, before)
    bal = pub.get("balance")
    if bal is not None and "sample" in bal and _total_hidden(pub.get("linkage_report"), "in_cohort"):
        before = (bal["sample"] == "before").to_numpy()
        bal = bal.copy()
        bal["n_treated"] = pd.to_numeric(bal["n_treated"], errors="coerce").astype("Int64").mask(before)
        pub["balance"] = _mark(bal, before)
    return pub, shown


def _total_hidden(lr: pd.DataFrame | None, step: str | None = None) -> bool:
    """Whether a published linkage report hides the total of ``step`` (default its participants')."""
    if lr is None or lr.empty:
        return False
    from ..linkage import STEPS

    tot = lr[(lr["step"] == (step or STEPS[-1][0])) & (lr["start_year"].astype(str) == "0")]
    fb = tot["forbund_id"].astype(str)
    tot = tot[fb == "ALL"] if fb.eq("ALL").any() else tot
    return len(tot) == 1 and bool(tot["suppressed"].iloc[0])
