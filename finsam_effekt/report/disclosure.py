"""Disclosure control: which cells of a published table or key figure are blanked, and which tables are refused.

* A **count** below the threshold ``t`` (default ``schema.DEFAULT_DISCLOSURE_THRESHOLD``; counts of zero are
  published) is blanked and its row marked ``suppressed = True``.
* An **estimate** resting on fewer than ``t`` persons in either arm (``n_treated < t`` or ``n_control < t``) is
  blanked together with its standard error, interval, p-value and the small counts, and marked the same way;
  so is a mean with its own person count ``n < t`` (``outcome_paths``).
* A **share** computed from counts (:data:`TABLE_SHARES`) is blanked with any of them.
* No output may contain a ``person_id`` (or any column that identifies a person or a register row):
  :func:`check_publishable` refuses such tables.
* A **key figure** that is a person count (:data:`COUNT_FACTS`) is blanked like a table count.
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

#: Value columns of tables whose estimates are not in :data:`ESTIMATE_COLUMNS`, blanked with them (a subgroup's
#: cost-benefit rests on the subgroup's effects, so on its persons).
TABLE_VALUE_COLUMNS: dict[str, tuple[str, ...]] = {
    "cost_benefit_by_subgroup": (
        "cost_per_participant_sek",
        "pv_cost",
        "pv_gains",
        "pv_net",
        "p_net_positive",
        "benefit_cost_ratio",
        "break_even_years",
        "break_even_effect_scale",
    ),
}

#: Shares blanked whenever one of the counts they are computed from is blanked.
TABLE_SHARES: dict[str, dict[str, tuple[str, ...]]] = {
    "support_consistency": {"share_disagree": ("disagree", "n_participants")},
}

#: Facts that are person counts (suppressed below the threshold like table counts).
COUNT_FACTS: frozenset[str] = frozenset(
    {"participants", "candidate_control_months", "matched_treated", "matched_controls", "unmatched_treated"}
)


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


def _mark(df: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    prev = df["suppressed"].astype(bool).to_numpy() if "suppressed" in df else np.zeros(len(df), dtype=bool)
    df["suppressed"] = prev | mask
    return df


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
        small = ((v > 0) & (v < threshold)).fillna(False).to_numpy(dtype=bool)
        out[c] = v.round().astype("Int64").mask(small)
        mask |= small
    if cols or "suppressed" in out:
        out = _mark(out, mask)
    return out


def suppress_estimates(
    df: pd.DataFrame,
    threshold: int = DEFAULT_DISCLOSURE_THRESHOLD,
    n_columns: Sequence[str] = ("n_treated", "n_control"),
    value_columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Blank estimates resting on fewer than ``threshold`` persons in either arm, then small counts.

    A row is suppressed when ``min(n_treated, n_control) < threshold`` (a missing count counts as too small);
    its value columns (default :data:`ESTIMATE_COLUMNS` present) become NaN and ``suppressed`` is True.
    Counts are then blanked by :func:`suppress_counts`. A table without count columns is returned unchanged
    apart from the ``suppressed`` column.
    """
    out = df.copy()
    ncols = [c for c in n_columns if c in out.columns]
    mask = np.zeros(len(out), dtype=bool)
    for c in ncols:
        v = pd.to_numeric(out[c], errors="coerce")
        mask |= (v.isna() | (v < threshold)).to_numpy(dtype=bool)
    vcols = [
        c for c in (value_columns if value_columns is not None else ESTIMATE_COLUMNS) if c in out.columns
    ]
    for c in vcols:
        out[c] = pd.to_numeric(out[c], errors="coerce").mask(mask)
    out = _mark(out, mask)
    return suppress_counts(out, threshold, columns=[c for c in COUNT_COLUMNS if c in out.columns])


def apply_disclosure_control(tables: Mapping[str, pd.DataFrame], threshold: int) -> dict[str, pd.DataFrame]:
    """Apply the rules of the module docstring to every output table (after :func:`check_publishable`)."""
    out = {}
    for name, df in tables.items():
        check_publishable(df, name)
        if {"n_treated", "n_control"} & set(df.columns):
            values = [*ESTIMATE_COLUMNS, *TABLE_VALUE_COLUMNS.get(name, ())]
            out[name] = suppress_estimates(df, threshold, value_columns=values)
        elif "n" in df.columns and set(ESTIMATE_COLUMNS) & set(df.columns):  # e.g. a mean over n persons
            out[name] = suppress_estimates(df, threshold, n_columns=("n",))
        else:
            extra = TABLE_COUNT_COLUMNS.get(name, ())
            cols = [*(c for c in COUNT_COLUMNS if c in df.columns), *(c for c in extra if c in df.columns)]
            pub = suppress_counts(df, threshold, columns=cols)
            for share, parts in TABLE_SHARES.get(name, {}).items():
                if share in pub:  # a share is as disclosive as the counts it is computed from
                    blank = pub[[c for c in parts if c in pub]].isna().any(axis=1)
                    pub[share] = pd.to_numeric(pub[share], errors="coerce").mask(blank)
            out[name] = pub
    return out


def publishable_facts(facts: Mapping[str, Any], threshold: int) -> dict[str, Any]:
    """Key figures with person counts ``0 < n < threshold`` replaced by None (shown as "–")."""
    out = {}
    for k, v in facts.items():
        small = k in COUNT_FACTS and isinstance(v, int | np.integer) and 0 < int(v) < threshold
        out[k] = None if small else v
    return out
