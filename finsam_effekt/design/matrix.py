"""Design matrices: covariate columns → numbers by one rule (see the package docstring), in memory as a DataFrame,
column by column for the balance table, or compact (:class:`CompactDesign`) for a national candidate pool."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from ..errors import InputError

#: The level a missing categorical value gets.
MISSING_LEVEL = "(missing)"


def is_categorical(s: pd.Series) -> bool:
    """Whether a column enters a design as indicators (text, category, object) rather than as a number."""
    return not (pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s))


def categorical_values(s: pd.Series) -> pd.Series:
    """The column as text levels, missing values as :data:`MISSING_LEVEL`."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object)
    out = s.astype(object).where(s.notna(), MISSING_LEVEL)
    return out.astype(str)


def level_codes(s: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """The codes and levels of ``pd.Categorical(categorical_values(s))`` (levels: the observed values as text,
    :data:`MISSING_LEVEL` for missing ones, sorted), computed from the codes when ``s`` is already categorical —
    a 10⁷-row cohort column is then never turned into strings."""
    if not isinstance(s.dtype, pd.CategoricalDtype):
        cat = pd.Categorical(categorical_values(s))
        return np.asarray(cat.codes), cat.categories
    codes, levels, lut = _category_levels(s)
    dtype = np.int8 if len(levels) < 127 else np.int16 if len(levels) < 32767 else np.int32
    if lut is None:
        return codes.astype(dtype), levels  # the codes are already these (a copy)
    return lut[codes].astype(dtype), levels


def level_names(s: pd.Series) -> pd.Index:
    """The levels of :func:`level_codes` without the codes (of a categorical column: from its categories and
    which of them occur)."""
    if not isinstance(s.dtype, pd.CategoricalDtype):
        return level_codes(s)[1]
    return _category_levels(s)[1]


def _category_levels(s: pd.Series) -> tuple[np.ndarray, pd.Index, np.ndarray | None]:
    """A categorical column's codes (a view), its levels (the categories that occur, as text, and
    :data:`MISSING_LEVEL` when a value is missing, sorted) and the table from its codes to theirs (its last
    entry for code −1; None when the codes are already the levels')."""
    codes = np.asarray(s.cat.codes)
    cats = s.cat.categories
    missing = bool((codes < 0).any())
    used = np.bincount(codes[codes >= 0] if missing else codes, minlength=len(cats)) > 0
    text = [str(v) for v in cats]
    levels = sorted(
        {t for t, u in zip(text, used, strict=True) if u} | ({MISSING_LEVEL} if missing else set())
    )
    pos = {name: i for i, name in enumerate(levels)}
    # the last entry is where code −1 (missing) goes
    lut = np.array([pos.get(t, -1) for t in text] + [pos.get(MISSING_LEVEL, -1)], dtype=np.int64)
    same = not missing and np.array_equal(lut[:-1], np.arange(len(cats)))
    return codes, pd.Index(levels, dtype=object), None if same else lut


def _no_missing(s: pd.Series, column: str, what: str) -> None:
    """A numeric covariate must be complete (module docstring): the error names the column and the fix."""
    n_missing = int(s.isna().sum())
    if n_missing:
        raise InputError(
            f"{what}: covariate {column!r} has {n_missing} missing value{'s' if n_missing != 1 else ''}; "
            "impute it or code it as categories (a missing category is a level of its own)"
        )


def _check_columns(data: pd.DataFrame, covariates: Sequence[str], what: str) -> None:
    """Every covariate must be a column of ``data``: the error names the missing ones and the available ones."""
    missing = [c for c in covariates if c not in data.columns]
    if missing:
        raise InputError(f"{what}: columns {missing} are not in the data; available: {list(data.columns)}")


def design_matrix(
    data: pd.DataFrame,
    covariates: Sequence[str],
    *,
    levels: Literal["drop_first", "all"] = "drop_first",
    categorical: Sequence[str] = (),
    drop_constant: bool = True,
    intercept: bool = False,
    what: str = "design",
) -> pd.DataFrame:
    """Covariate columns as a float design matrix (rules in the module docstring).

    Parameters
    ----------
    data : one row per unit.
    covariates : columns, in order.
    levels : ``"drop_first"`` (models) or ``"all"`` (balance).
    categorical : columns coded as categories even when numeric (e.g. a calendar month as fixed effects).
    drop_constant : drop columns with zero variance.
    intercept : put a ``const`` column of ones first.
    what : the caller's name for error messages (e.g. ``"propensity model"``).

    Returns
    -------
    DataFrame with ``data``'s index: numeric columns under their own name, indicators as ``{column}={level}``.
    """
    _check_columns(data, covariates, what)
    parts = []
    for c in covariates:
        s = data[c]
        if c in categorical or is_categorical(s):
            parts.append(
                pd.get_dummies(
                    categorical_values(s),
                    prefix=c,
                    prefix_sep="=",
                    drop_first=levels == "drop_first",
                    dtype=float,
                )
            )
        else:
            _no_missing(s, c, what)
            parts.append(s.astype(float).rename(c).to_frame())
    x = pd.concat(parts, axis=1) if parts else pd.DataFrame(index=data.index)
    if drop_constant and x.shape[1]:
        x = x.loc[:, x.std(ddof=0) > 0]
    if intercept:
        x.insert(0, "const", 1.0)
    return x


@dataclass(frozen=True)
class DesignSource:
    """One covariate as stored, before it becomes design columns (the rule of :func:`design_columns`).

    A numeric covariate has ``values``: the column as a NumPy array in its own dtype (no float64 copy; its one
    design column is ``values.astype(float)``, booleans as 0/1). A categorical covariate has ``codes`` into
    ``levels`` (:func:`level_codes`: sorted, a missing value the level ``(missing)``); its design columns are
    the indicators ``codes == j``, named ``{name}={level}``.
    """

    name: str
    values: np.ndarray | None = None
    codes: np.ndarray | None = None
    levels: pd.Index | None = None

    @property
    def columns(self) -> list[str]:
        """The names of the design columns, in order."""
        if self.levels is None:
            return [self.name]
        return [f"{self.name}={level}" for level in self.levels]


def numeric_values(s: pd.Series) -> np.ndarray:
    """A numeric column as a NumPy array: as stored for NumPy dtypes (no copy), else (nullable extension types)
    as float64. ``numeric_values(s).astype(float)`` equals ``s.astype(float).to_numpy()``."""
    return s.to_numpy() if isinstance(s.dtype, np.dtype) else s.to_numpy(dtype=float)


def design_sources(
    data: pd.DataFrame, covariates: Sequence[str], *, what: str = "design", names_only: bool = False
) -> list[DesignSource]:
    """The covariates of ``design_matrix(data, covariates, levels="all", drop_constant=False)`` as
    :class:`DesignSource` (numeric columns as stored, categorical ones as level codes), in order: for statistics
    that read a categorical covariate's codes once for all its levels (the balance table).

    ``names_only=True`` gives the sources without their values and codes (a categorical one with its
    ``levels``), the covariates checked as they are otherwise: what names the design columns before each
    source is made, and dropped, one at a time (:func:`design_source`) — a national cohort's level codes are
    ~50 MB per covariate."""
    _check_columns(data, covariates, what)
    if not names_only:
        return [design_source(data, c, what=what) for c in covariates]
    out: list[DesignSource] = []
    for c in covariates:
        s = data[c]
        if is_categorical(s):
            out.append(DesignSource(c, levels=level_names(s)))
        else:
            _no_missing(s, c, what)
            out.append(DesignSource(c))
    return out


def design_source(data: pd.DataFrame, column: str, *, what: str = "design") -> DesignSource:
    """One covariate of :func:`design_sources`: a numeric column as stored (a missing value is an error), a
    categorical one as its level codes."""
    _check_columns(data, [column], what)
    s = data[column]
    if is_categorical(s):
        codes, categories = level_codes(s)  # levels sorted, as pd.get_dummies orders them
        return DesignSource(column, codes=codes, levels=categories)
    _no_missing(s, column, what)
    return DesignSource(column, values=numeric_values(s))


def design_columns(
    data: pd.DataFrame, covariates: Sequence[str], *, what: str = "design"
) -> list[tuple[str, Callable[[], np.ndarray]]]:
    """The columns of ``design_matrix(data, covariates, levels="all", drop_constant=False)`` as ``(name, make)``
    pairs, in the same order, where ``make()`` builds that one float64 column when called — for statistics
    computed a column at a time on data too large for the whole matrix."""
    out: list[tuple[str, Callable[[], np.ndarray]]] = []
    for src in design_sources(data, covariates, what=what):
        if src.codes is not None:
            for j, name in enumerate(src.columns):
                out.append((name, lambda codes=src.codes, j=j: (codes == j).astype(float)))
        else:
            out.append((src.name, lambda v=src.values: v.astype(float)))
    return out


class CompactDesign:
    """A design matrix held in compact storage, each column in the narrowest type that holds it exactly: 0/1
    indicators and small counts (whole numbers 0..255) as uint8, other values float32 holds exactly (quarter
    days, ages) as float32, the rest (kronor with öre) as float64; the column order puts the float64 columns last.

    Row slices ``x[start:stop]`` give that part of the matrix as float64 — the only access the fitting code needs
    — so a logit on 10⁷ candidate person-months, whose design is mostly month, kommun and source indicators,
    needs about a sixth of the memory of the float64 matrix, with the same values (every stored value is exact).
    Built by :func:`compact_design_matrix`.
    """

    def __init__(self, columns: list[str], n: int, blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]]):
        # blocks: (array n × m, its columns used, their positions in the matrix)
        self.columns = list(columns)
        self._n = n
        self._blocks = blocks
        # per block, the columns used and their positions as pairs of slices where both run on (a view and a plain
        # copy instead of a gather and a scattered assignment, which cost ten times the float64 conversion itself)
        self._runs = [_runs(src, dst) for _a, src, dst in blocks]

    @property
    def blocks(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The storage: ``(array, source columns, design columns)`` per block (uint8, float32, float64)."""
        return self._blocks

    @property
    def shape(self) -> tuple[int, int]:
        return (self._n, len(self.columns))

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1]

    @property
    def nbytes(self) -> int:
        return int(sum(a.nbytes for a, _, _ in self._blocks))

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, rows: slice) -> np.ndarray:
        if not isinstance(rows, slice):
            raise TypeError("CompactDesign: only row slices x[start:stop] are supported")
        start, stop, step = rows.indices(self._n)
        if step == 1:
            return self.read(start, max(start, stop))
        out = np.empty((len(range(start, stop, step)), len(self.columns)), np.float64)
        for a, src, dst in self._blocks:
            if len(src):
                out[:, dst] = a[rows][:, src]
        return out

    def read(self, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``start:stop`` as float64, in the design's column order (``x[start:stop]``), written into the
        first ``stop − start`` rows of ``out`` (C-contiguous float64, as many columns as the design) when given,
        so that a loop over row blocks reuses one buffer instead of allocating a new matrix per block."""
        m, k = stop - start, len(self.columns)
        res = np.empty((m, k), np.float64) if out is None else out[:m]
        if res.shape != (m, k) or res.dtype != np.float64 or not res.flags.c_contiguous:
            raise ValueError(
                f"CompactDesign.read: out must be C-contiguous float64 with {k} columns, ≥ {m} rows"
            )
        for (a, src, dst), runs in zip(self._blocks, self._runs, strict=True):
            if runs is None:
                res[:, dst] = a[start:stop][:, src]
            else:
                for src_run, dst_run in runs:
                    res[:, dst_run] = a[start:stop, src_run]
        return res

    def select(self, keep: np.ndarray) -> CompactDesign:
        """The columns where ``keep`` is True (no copy of the blocks)."""
        keep = np.asarray(keep, bool)
        pos = np.cumsum(keep) - 1
        blocks = [(a, src[keep[dst]], pos[dst[keep[dst]]]) for a, src, dst in self._blocks]
        return CompactDesign([c for c, k in zip(self.columns, keep, strict=True) if k], self._n, blocks)

    def compacted(self) -> CompactDesign:
        """The same matrix with each storage block copied down to the columns it uses, where it has others (after
        :meth:`select` left columns out): a read is then one conversion per block instead of a piece per run of
        columns kept (a third of the time per read), for a copy of those blocks. Copied in row pieces of
        :data:`_FILL_ROWS` rows."""
        blocks = []
        for (a, src, dst), runs in zip(self._blocks, self._runs, strict=True):
            if len(src) == a.shape[1] and runs is not None and len(runs) <= 1:
                blocks.append((a, src, dst))
                continue
            out = np.empty((self._n, len(src)), a.dtype)
            pieces = _runs(src, np.arange(len(src)))
            for s in range(0, self._n, _FILL_ROWS):
                if pieces is None:
                    out[s : s + _FILL_ROWS] = a[s : s + _FILL_ROWS][:, src]
                else:
                    for src_run, out_run in pieces:
                        out[s : s + _FILL_ROWS, out_run] = a[s : s + _FILL_ROWS, src_run]
            blocks.append((out, np.arange(len(src), dtype=np.int64), dst))
        return CompactDesign(self.columns, self._n, blocks)

    def blocked(self) -> tuple[CompactDesign, np.ndarray]:
        """The same matrix with its columns reordered so that each storage block's columns are adjacent (no copy
        of the blocks), and ``order``: for each column of the result, its position in this design.

        Reading row blocks of the result is a plain conversion per storage block; in the design's own order
        (indicators and float32 counts interleaved as the covariates come) each read scatters the columns. A fit
        on the result gives the same coefficients, in the order ``order``."""
        order = np.concatenate([dst for _a, _src, dst in self._blocks]).astype(np.int64)
        blocks, pos = [], 0
        for a, src, _dst in self._blocks:
            blocks.append((a, src, np.arange(pos, pos + len(src), dtype=np.int64)))
            pos += len(src)
        return CompactDesign([self.columns[j] for j in order], self._n, blocks), order

    def take(self, rows: np.ndarray) -> CompactDesign:
        """The rows ``rows`` (integer positions) as a new :class:`CompactDesign` (copies of those rows only)."""
        blocks = []
        for a, src, dst in self._blocks:
            part = a[rows] if np.array_equal(src, np.arange(a.shape[1])) else a[rows][:, src]
            blocks.append((np.ascontiguousarray(part), np.arange(len(src), dtype=np.int64), dst))
        return CompactDesign(self.columns, len(rows), blocks)


def _runs(src: np.ndarray, dst: np.ndarray) -> list[tuple[slice, slice]] | None:
    """The copy ``out[:, dst] = a[:, src]`` as copies between slices: the longest pieces in which both ``src`` and
    ``dst`` run on by 1; None (copy by index) when there are more than a few pieces (at most a quarter as many as
    columns, or 4)."""
    src, dst = np.asarray(src, np.int64), np.asarray(dst, np.int64)
    if not len(src):
        return []
    cuts = np.flatnonzero((np.diff(src) != 1) | (np.diff(dst) != 1)) + 1
    if len(cuts) + 1 > max(4, len(src) // 4):
        return None
    return [
        (slice(int(src[i]), int(src[j - 1]) + 1), slice(int(dst[i]), int(dst[j - 1]) + 1))
        for i, j in zip(np.r_[0, cuts], np.r_[cuts, len(src)], strict=True)
    ]


#: Largest whole number a design column may hold to be stored as uint8 (:class:`CompactDesign`).
_U8_MAX = 255

#: Rows per piece in which :func:`compact_design_matrix` fills its blocks (a piece of every column stays in cache).
_FILL_ROWS = 65_536


def compact_design_matrix(
    data: pd.DataFrame, covariates: Sequence[str], *, intercept: bool = True, what: str = "design"
) -> CompactDesign:
    """:func:`design_matrix` (``levels="drop_first"``, constant columns dropped) as a :class:`CompactDesign`,
    built into its blocks (no n × k float64 intermediate): the same columns, names and values, the float64
    (inexact in float32) columns moved last.

    The blocks are filled in row pieces of :data:`_FILL_ROWS` rows, every column of a piece at a time: filling a
    whole column of a row-major n × m block writes one byte in every m, through memory, and took 6 s of the 13 s
    on a 10⁷-row cohort. A numeric column is non-constant when its minimum is below its maximum (finite); only
    a column that looks constant is given the standard deviation test of :func:`design_matrix` (the same choice,
    without a full pass of a pandas ``std`` over every column). Integer and float32 columns are classified from
    their type where it decides (no float64 copy to test)."""
    _check_columns(data, covariates, what)
    n = len(data)
    # first pass: the columns (names, how to fill, which block) without building them
    plan: list[tuple[str, str, object]] = []  # (name, kind, payload)
    for c in covariates:
        s = data[c]
        if is_categorical(s):
            codes, categories = level_codes(s)  # levels sorted, as pd.get_dummies orders them
            counts = np.bincount(codes.astype(np.int64), minlength=len(categories))
            for j in range(1, len(categories)):  # first level dropped
                if 0 < counts[j] < n:  # a constant indicator is dropped
                    plan.append((f"{c}={categories[j]}", "level", (codes, j)))
        else:
            _no_missing(s, c, what)
            # the column's own numbers when they are plain numpy numbers (the same values in the block as through
            # float64, every value being exact there; no float64 copy of each column made or held meanwhile)
            plain_numbers = isinstance(s.dtype, np.dtype) and s.dtype.kind in "biuf"
            raw = s.to_numpy() if plain_numbers else s.astype(float).to_numpy()
            lo, hi = (float(raw.min()), float(raw.max())) if n else (0.0, 0.0)
            if (np.isfinite(lo) and np.isfinite(hi) and lo < hi) or pd.Series(raw, dtype=float).std(
                ddof=0
            ) > 0:
                # whole numbers: integers, or floats equal to their floor; exact in float32: floats of at most
                # 32 bits, integers up to 2^24, else as the float64 values come back from float32
                integer = raw.dtype.kind in "biu"
                if lo >= 0 and hi <= _U8_MAX and (integer or np.array_equal(np.floor(raw), raw)):
                    kind = "u8"
                elif (raw.dtype.kind == "f" and raw.dtype.itemsize <= 4) or (
                    integer and max(-lo, hi) <= 2**24
                ):
                    kind = "f32"
                else:
                    v = raw.astype(np.float64)
                    kind = "f32" if np.array_equal(v.astype(np.float32).astype(np.float64), v) else "f64"
                plan.append((c, kind, raw))
    if intercept:
        plan.insert(0, ("const", "const", None))
    # the matrix's column order: every column but the float64 ones, then those
    order = [p for p in plan if p[1] != "f64"] + [p for p in plan if p[1] == "f64"]
    block_of = {"const": "u8", "level": "u8", "u8": "u8", "f32": "f32", "f64": "f64"}
    where: dict[str, list[int]] = {"u8": [], "f32": [], "f64": []}
    for j, (_name, kind, _payload) in enumerate(order):
        where[block_of[kind]].append(j)
    arrays = {
        "u8": np.empty((n, len(where["u8"])), np.uint8),
        "f32": np.empty((n, len(where["f32"])), np.float32),
        "f64": np.empty((n, len(where["f64"])), np.float64),
    }
    slot = {"u8": 0, "f32": 0, "f64": 0}
    fills = []  # (block, column in it, kind, payload)
    for _name, kind, payload in order:
        block = block_of[kind]
        fills.append((arrays[block], slot[block], kind, payload))
        slot[block] += 1
    for s0 in range(0, n, _FILL_ROWS):
        e0 = min(s0 + _FILL_ROWS, n)
        for a, i, kind, payload in fills:
            if kind == "const":
                a[s0:e0, i] = 1
            elif kind == "level":
                codes, j = payload
                a[s0:e0, i] = codes[s0:e0] == j
            else:
                a[s0:e0, i] = payload[s0:e0]
    blocks = [
        (arrays[b], np.arange(len(where[b])), np.asarray(where[b], dtype=np.int64))
        for b in ("u8", "f32", "f64")
    ]
    return CompactDesign([p[0] for p in order], n, blocks)
