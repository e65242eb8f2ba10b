"""The samples the estimators work on, what every estimator is handed, and the loop over their outcome columns.

An estimator family (one module) implements ``fit(sample, context) -> Fitted`` (the signature registered in
``estimation.registry``): :class:`Sample` is the table it needs — the matched sample, the unmatched cohort or the
long panel — prepared once by ``estimate_effects`` (global cluster codes, subgroups, weights); :class:`FitContext`
holds what every estimator shares (the settings, the cluster coding, the bootstrap draws, the auxiliary inputs).
Families that estimate one outcome column at a time use :func:`fit_cells`, which loops over subgroups × outcomes
× measures × horizons in that order and reports the columns it had to skip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..design import categorical_values, design_matrix, is_categorical
from ..errors import InputError
from ..options import AGE_BANDS
from ..schema import outcome_column
from .settings import EffectOptions

if TYPE_CHECKING:
    from .results import Estimate


def require_columns(df: pd.DataFrame, cols: Iterable[str], what: str) -> None:
    """Raise :class:`InputError` naming the columns of ``cols`` that ``df`` lacks."""
    missing = [c for c in cols if c not in df]
    if missing:
        raise InputError(
            f"{what} lacks column(s) {missing}; it has {sorted(map(str, df.columns))[:40]}. "
            "See docs/tables.md for the tables the stages pass to each other."
        )


def path_rows(
    paths: pd.DataFrame,
    window: tuple[int, int],
    columns: Sequence[str],
    *,
    outcome: str | None = None,
    weights: str | None = None,
) -> pd.DataFrame:
    """The rows of ``outcome_paths`` an estimate over months relative to u reads, with ``columns`` only: ``rel_month``
    inside ``window``, not ``censored``, ``outcome`` observed (when given) and a positive ``weights`` (when given
    and present). One mask and one copy of the columns needed — at 5·10⁶ persons the paths are 1.3·10⁷ rows, and a
    copy of every column per filter step cost ~2 GB each."""
    rel = paths["rel_month"].to_numpy()
    keep = (rel >= window[0]) & (rel <= window[1])
    if "censored" in paths:
        keep &= ~paths["censored"].to_numpy().astype(bool)
    if outcome is not None:
        keep &= paths[outcome].notna().to_numpy()
    if weights is not None and weights in paths:
        keep &= paths[weights].to_numpy() > 0
    return paths.loc[keep, list(dict.fromkeys(c for c in columns if c in paths))]


# -- subgroups ---------------------------------------------------------------------------------------------------
def age_band(age: pd.Series) -> pd.Series:
    """The ``options.AGE_BANDS`` label of each age (years at u); missing outside every band."""
    out = pd.Series(pd.NA, index=age.index, dtype="object")
    for lo, hi, lab in AGE_BANDS:
        out[(age >= lo) & (age < hi)] = lab
    return out


def subgroup_labels(df: pd.DataFrame, var: str, treatment: str) -> pd.Series:
    """Subgroup value per row. In matched data a control belongs to its treated unit's subgroup (the matched set's
    treated value, via ``subclass``) so every treated keeps its own controls; without ``subclass`` (matching with
    replacement, or the unmatched cohort) each row's own value is used — exact-match on the subgroup variable in
    that case. ``age_band`` is derived from ``age`` when the data has no ``age_band`` column."""
    if var == "age_band" and "age_band" not in df and "age" in df:
        own = age_band(df["age"])
    elif var in df:
        own = df[var].astype("object")
    else:
        raise InputError(
            f"subgroup variable {var!r} is not a column of the data; columns are {sorted(map(str, df.columns))}"
        )
    if "subclass" in df and df["subclass"].notna().all():
        t = df[treatment].to_numpy() == 1
        first = pd.Series(own[t].to_numpy(), index=df["subclass"][t].to_numpy())
        first = first[~first.index.duplicated()]
        return df["subclass"].map(first).astype("object")
    return own


@dataclass(frozen=True, eq=False)
class Subgroup:
    """A named subset of a sample's rows (``mask`` None: every row, the subgroup ``all``)."""

    name: str
    mask: np.ndarray | None = None


def subgroups_of(df: pd.DataFrame, variables: Sequence[str], treatment: str) -> tuple[Subgroup, ...]:
    """``all`` and one subgroup ``var=value`` per observed value of each variable (values sorted as text)."""
    out = [Subgroup("all")]
    for var in variables:
        lab = subgroup_labels(df, var, treatment)
        for v in sorted([v for v in pd.unique(lab) if pd.notna(v)], key=str):
            out.append(Subgroup(f"{var}={v}", (lab == v).to_numpy()))
    return tuple(out)


# -- samples -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Sample:
    """One table an estimator family works on, prepared once per ``estimate_effects`` call.

    Attributes
    ----------
    kind : ``"matched"``, ``"cohort"`` or ``"panel"`` (``registry.SampleKind``).
    frame : the rows (the matched table, the cohort or the long panel).
    clusters : global cluster code of each row (positions in ``FitContext.cluster_index``); None for the panel,
        whose estimator codes its own units.
    subgroups : ``all`` first, then the subgroups asked for.
    weights, horizon_weights : weight column and per-horizon weight prefix the estimators use (None: 1).
    units : the panel's units (``callaway_santanna(units=...)``); None otherwise.
    scratch : work shared by the estimators of one call on this sample (coded designs, model fits), keyed by
        subgroup; it lives as long as the call.
    """

    kind: str
    frame: pd.DataFrame
    clusters: np.ndarray | None = None
    subgroups: tuple[Subgroup, ...] = (Subgroup("all"),)
    weights: str | None = None
    horizon_weights: str | None = None
    units: pd.DataFrame | None = None
    scratch: dict = field(default_factory=dict, repr=False)

    def cell_weights(self, rows: pd.DataFrame, horizon: int) -> np.ndarray:
        """Weights of ``rows`` at horizon k: the weight column times the horizon's weight column (if any)."""
        w = np.ones(len(rows)) if self.weights is None else rows[self.weights].to_numpy(dtype=float)
        if self.horizon_weights:
            col = f"{self.horizon_weights}{horizon}"
            if col not in rows.columns:
                raise InputError(
                    f"horizon_weights: column {col!r} is missing (one weight column per horizon k)"
                )
            w = w * rows[col].to_numpy(dtype=float)
        return w


@dataclass(frozen=True, eq=False)
class FitContext:
    """What every estimator of one call shares.

    Attributes
    ----------
    options : the call's settings (``outcomes`` resolved).
    cluster_index : the cluster labels of every sample; a cluster code is a position in it.
    boot_counts : ``n_boot × G`` cluster draws (``se="bootstrap"``), else None.
    pre_period : the ``outcome_paths`` table for ``matched_did`` (``pre_period=``), or None.
    pairs : the matches for ``se="abadie_imbens"`` (``pairs=``), or None.
    """

    options: EffectOptions
    cluster_index: pd.Index
    boot_counts: np.ndarray | None = None
    pre_period: pd.DataFrame | None = None
    pairs: object | None = None


@dataclass(frozen=True)
class Fitted:
    """What an estimator's ``fit`` returns: its estimates and notes about what it skipped or doubts."""

    estimates: tuple[Estimate, ...]
    notes: tuple[str, ...] = ()


#: The signature of an estimator family's ``fit`` (see ``registry.Estimator``).
FitFunction = Callable[[Sample, FitContext], Fitted]


@dataclass(frozen=True, eq=False)
class Cell:
    """One outcome column of one subgroup's rows, as :func:`fit_cells` hands it to an estimator.

    ``rows`` and ``clusters`` are the subgroup's rows and their cluster codes, ``weights`` the weights at this
    horizon, ``cache`` the subgroup's share of ``Sample.scratch`` and ``shared`` the share of every subgroup (work
    whose memory is bounded over the whole call, such as the WLS designs of ``matched``).
    """

    rows: pd.DataFrame
    clusters: np.ndarray
    column: str
    outcome: str
    horizon: int
    measure: str
    subgroup: str
    weights: np.ndarray
    cache: dict
    shared: dict = field(default_factory=dict)

    def values(self) -> np.ndarray:
        """The outcome column as floats (NaN where censored)."""
        return self.rows[self.column].to_numpy(dtype=float)

    def labels(self) -> dict[str, object]:
        """What the cell's estimate is of: ``outcome``, ``horizon``, ``measure``, ``subgroup`` (``Estimate`` fields)."""
        return {
            "outcome": self.outcome,
            "horizon": self.horizon,
            "measure": self.measure,
            "subgroup": self.subgroup,
        }


#: The key of ``Sample.scratch`` whose dict every subgroup's cells share (``Cell.shared``); a tuple, so no
#: subgroup name can be it.
SHARED_SCRATCH = ("shared",)


def fit_cells(
    sample: Sample, context: FitContext, estimator: str, one: Callable[[Cell], Estimate | None]
) -> Fitted:
    """Apply ``one`` to every subgroup × outcome × measure × horizon of ``sample``; a missing column or a cell
    without treated or controls (``one`` returns None) is skipped with a note."""
    opts = context.options
    estimates: list[Estimate] = []
    notes: list[str] = []
    for sg in sample.subgroups:
        rows = sample.frame if sg.mask is None else sample.frame[sg.mask]
        clusters = sample.clusters if sg.mask is None else sample.clusters[sg.mask]
        cache = sample.scratch.setdefault(sg.name, {})
        shared = sample.scratch.setdefault(SHARED_SCRATCH, {})
        for o in opts.outcomes:
            for m in opts.measures:
                for k in opts.horizons:
                    col = outcome_column(o, k, m)
                    if col not in rows:
                        notes.append(f"{estimator}: column {col!r} absent, skipped")
                        continue
                    cell = Cell(
                        rows, clusters, col, o, k, m, sg.name, sample.cell_weights(rows, k), cache, shared
                    )
                    e = one(cell)
                    if e is None:
                        notes.append(
                            f"{estimator}: {col} in {sg.name} has no treated or no controls, skipped"
                        )
                        continue
                    estimates.append(e)
    return Fitted(tuple(estimates), tuple(notes))


# -- covariates --------------------------------------------------------------------------------------------------
class SampleDesign:
    """The covariate design of one sample, coded once: :meth:`rows` gives ``design.design_matrix`` of a row subset.

    ``design_matrix`` on a row subset makes indicators of the categorical levels present in the subset (first
    present level dropped, a missing category a level of its own) and drops columns constant in the subset.
    Coding every categorical column once (levels sorted as ``design_matrix`` sorts them) and building the
    indicators of the kept rows from the codes gives the same matrix, value for value and column for column,
    without re-parsing text for every outcome and horizon (the kept rows change with censoring).
    """

    def __init__(self, frame: pd.DataFrame, covariates: Sequence[str]) -> None:
        require_columns(frame, covariates, "covariates of estimate_effects: the data")
        self.covariates = list(covariates)
        self.frame = frame[self.covariates]  # (for the message about a missing value) not the whole table
        self.n = len(frame)
        self.parts: list[tuple[str, str, np.ndarray, int]] = []
        for c in self.covariates:
            s = frame[c]
            if is_categorical(s):
                cat = pd.Categorical(categorical_values(s))
                self.parts.append(("cat", c, np.asarray(cat.codes, dtype=np.int64), len(cat.categories)))
            else:
                self.parts.append(("num", c, s.astype(float).to_numpy(), 0))

    def rows(self, keep: np.ndarray | None = None) -> np.ndarray:
        """Design of the rows ``keep`` (boolean mask; all rows when None), as a float array."""
        cols: list[np.ndarray] = []
        bad = []
        for kind, name, v, n_levels in self.parts:
            v = v if keep is None else v[keep]
            if kind == "num":
                if np.isnan(v).any():
                    bad.append(name)
                cols.append(v[:, None])
            else:
                present = np.flatnonzero(np.bincount(v, minlength=n_levels))
                if len(present) > 1:
                    cols.append((v[:, None] == present[None, 1:]).astype(float))
        if bad:  # the design's rule and message: a missing number is an error
            design_matrix(self.frame if keep is None else self.frame[keep], bad, what="estimate_effects")
        n = self.n if keep is None else int(np.sum(keep))
        if not cols:
            return np.zeros((n, 0))
        x = np.column_stack(cols)
        return x[:, np.ptp(x, axis=0) > 0]
