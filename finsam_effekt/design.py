"""One design-matrix builder and one logistic regression, shared by every model the package fits.

The propensity score (``matching``), the censoring hazard of IPCW (``cohort``), IPW/AIPW (``estimation``) and the
balance table (``balance``) all turn covariate columns into numbers with :func:`design_matrix`, and the first three
fit :func:`fit_logit`. One rule for each choice, stated once:

* **numeric** columns enter as they are (booleans as 0/1); a missing numeric value is an error naming the column
  (impute it, or code the variable as categories);
* **categorical** columns (text, categories, or any column named in ``categorical``) enter as one 0/1 indicator
  per level, named ``{column}={level}``, levels in sorted order; a **missing value is a level of its own**,
  ``(missing)`` (the missing-indicator method: persons with an unknown education are compared with each other,
  not dropped and not guessed). Models drop the first level (``levels="drop_first"``, full rank with an
  intercept); balance tables keep every level (``levels="all"``, as cobalt shows them);
* columns that are constant in the data are dropped by models (collinear with the intercept).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import sparse
from threadpoolctl import threadpool_limits

from . import progress
from .errors import InputError

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
    dtype = np.int8 if len(levels) < 127 else np.int16 if len(levels) < 32767 else np.int32
    if not missing and np.array_equal(lut[:-1], np.arange(len(cats))):
        return codes.astype(dtype), pd.Index(levels, dtype=object)  # the codes are already these (a copy)
    return lut[codes].astype(dtype), pd.Index(levels, dtype=object)


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
    data: pd.DataFrame, covariates: Sequence[str], *, what: str = "design"
) -> list[DesignSource]:
    """The covariates of ``design_matrix(data, covariates, levels="all", drop_constant=False)`` as
    :class:`DesignSource` (numeric columns as stored, categorical ones as level codes), in order: for statistics
    that read a categorical covariate's codes once for all its levels (the balance table)."""
    _check_columns(data, covariates, what)
    out: list[DesignSource] = []
    for c in covariates:
        s = data[c]
        if is_categorical(s):
            codes, categories = level_codes(s)  # levels sorted, as pd.get_dummies orders them
            out.append(DesignSource(c, codes=codes, levels=categories))
        else:
            _no_missing(s, c, what)
            out.append(DesignSource(c, values=numeric_values(s)))
    return out


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


def _unit_columns(x, chunk: int = 500_000) -> np.ndarray:
    """Indices of the columns of ``x`` (array or :class:`CompactDesign`) that are 1 in every row."""
    k = x.shape[1]
    ones = np.ones(k, bool)
    for s in range(0, len(x), chunk):
        ones &= (x[s : s + chunk] == 1.0).all(axis=0)
    return np.flatnonzero(ones) if len(x) else np.array([], dtype=int)


@dataclass(frozen=True)
class LogitFit:
    """A fitted logistic regression ``logit P(d = 1 | x) = x'β`` (see :func:`fit_logit`).

    Attributes
    ----------
    params : coefficients by design column (fixed effects as ``{name}={level}``, first level the reference).
    linear_predictor : ``x'β`` per row.
    converged : whether Newton–Raphson converged; False when the fallback fit (separation) was used.
    """

    params: pd.Series
    linear_predictor: np.ndarray
    converged: bool

    @property
    def fitted(self) -> np.ndarray:
        """``P(d = 1 | x) = 1 / (1 + exp(−x'β))`` per row."""
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-self.linear_predictor))


def fit_logit(
    x: pd.DataFrame | CompactDesign,
    d: np.ndarray,
    *,
    weights: np.ndarray | None = None,
    fixed_effects: pd.Series | None = None,
    maxiter: int = 100,
    tol: float = 1e-8,
    chunk: int = 500_000,
    large_rows: int | None = None,
) -> LogitFit:
    """Maximum-likelihood logistic regression by Newton–Raphson, with optional weights and fixed effects.

    Maximises ``Σ w_i [d_i η_i − log(1 + exp η_i)]`` with ``η = Xβ + E γ``, where ``E`` holds one indicator per
    level of ``fixed_effects`` but the first (sorted; the reference). Start β = 0, full Newton steps, stop when
    max |Δβ| ≤ ``tol`` — the iterations of statsmodels ``Logit.fit(method="newton")`` (with ``w = 1``), hence
    the same estimate. The fixed-effect block is never built as a dense n × T matrix: with W = diag(w p(1 − p))
    the Hessian blocks are X'WX, X'WE (per-level sums of W·X) and the diagonal E'WE, and the step solves them by
    the Schur complement ``S = X'WX − X'WE (E'WE)⁻¹ E'WX`` (Greene 2018, §17.3; Hastie, Tibshirani & Friedman
    2009, §4.4.1). ``X`` is processed in row chunks, so memory stays at a few copies of ``X``.

    When the iterations fail (non-finite values, or no convergence in ``maxiter`` steps — typically separation:
    a covariate level or a month with only treated or only controls, so that some β runs off to ±∞), the model
    is fitted again with a small ridge penalty ``Σ λ_j β_j² / 2`` on every coefficient but the intercept, scaled
    to the column and the outcome's rate (``λ_j = λ p̄(1 − p̄) Σ_i x_ij²`` with ``p̄`` the (weighted) share of
    ``d = 1``: a fraction λ = :data:`RIDGE_PENALTY` of the coefficient's information at the null model, so the
    penalty acts on the standardised coefficient, does not depend on the unit of a covariate and stays small
    when treatment is rare), by Newton steps with step halving (a strictly
    concave objective with a unique finite maximum; Le Cessie & van Houwelingen 1992), and the result is marked
    ``converged=False``; callers report that. Columns of ``x`` that are linear combinations of
    earlier columns (e.g. kommun indicators inside förbund indicators) are left out of the fit and get a NaN
    coefficient, as R's ``glm`` reports aliased coefficients as NA; the fitted values are unchanged by this.

    Above ``large_rows`` rows (default :data:`WARM_START_ROWS`, 10⁶: a national pool of candidate person-months)
    the same iterations run on fewer and cheaper passes over the design, since each pass reads all of it: the
    rank check and the unit (intercept) column come from one pass (:func:`_gram_pass`); the Newton iterations
    start from a fit on a case-control subsample (:func:`subsample_start`; if there is none, from the null model,
    :func:`null_model_start`) and run over the rows in cache-sized blocks with the columns in storage order
    (:func:`_newton_blocks`). The stopping rule is the same, so the estimate agrees with the small-data path's to
    the tolerance; the fallbacks (a start at 0, then the ridge) are the same too.

    Parameters
    ----------
    x : design matrix (usually from :func:`design_matrix` with ``intercept=True``), or a :class:`CompactDesign`
        (:func:`compact_design_matrix`) for large data: the same fit in half the memory.
    d : 0/1 outcome per row.
    weights : non-negative case weights (default 1).
    fixed_effects : a level per row (e.g. the calendar month), entered as indicators.
    chunk : rows per pass over the design (memory against speed; the estimate is the same to rounding).
    large_rows : rows above which the large-data path is taken (default :data:`WARM_START_ROWS`).
    """
    names = list(x.columns)
    xm = x if isinstance(x, CompactDesign) else x.to_numpy(dtype=float)
    d = np.asarray(d, dtype=float)
    w = None if weights is None else np.asarray(weights, dtype=float)
    if fixed_effects is not None:
        fe_codes, fe_levels = level_codes(pd.Series(fixed_effects).reset_index(drop=True))
        code = fe_codes.astype(np.int64) - 1  # −1 = first (reference) level
        fe_names = [f"{fixed_effects.name}={c}" for c in fe_levels[1:]]
    else:
        code = np.full(len(d), -1, dtype=np.int64)
        fe_names = []
    n_lev = len(fe_names)
    if len(d) > (WARM_START_ROWS if large_rows is None else large_rows):
        # one BLAS thread: the products per block are small, and on a shared machine a second thread waiting for a
        # busy core made a pass 15 times slower (73 s against 5 s on 10⁷ rows)
        with threadpool_limits(limits=1):
            cols, res, converged = _fit(xm, d, w, code, n_lev, maxiter, tol, chunk, large=True)
    else:
        cols, res, converged = _fit(xm, d, w, code, n_lev, maxiter, tol, chunk, large=False)
    beta, lp = res
    params = np.full(len(names) + n_lev, np.nan)
    params[np.r_[cols, np.arange(len(names), len(names) + n_lev)].astype(np.int64)] = beta
    return LogitFit(pd.Series(params, index=names + fe_names), lp, converged)


def _fit(
    xm: np.ndarray | CompactDesign,
    d: np.ndarray,
    w: np.ndarray | None,
    code: np.ndarray,
    n_lev: int,
    maxiter: int,
    tol: float,
    chunk: int,
    *,
    large: bool,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], bool]:
    """The fit of :func:`fit_logit`: ``(cols, (β, linear predictor), converged)``, ``cols`` the position in ``xm``
    of each column fitted (the linearly independent ones), then the fixed effects."""
    if large:
        block = min(chunk, BLOCK_ROWS)
        xk, cols, const = _large_design(xm, block)
        start = subsample_start(xk, d, w, code, n_lev, const, block=block)
        if start is None:
            start = null_model_start(xk, d, w, code, n_lev, const, min_rows=0)
        res = _newton_blocks(xk, d, w, code, n_lev, maxiter, tol, start=start, block=block)
    else:
        keep = independent_columns(xm, chunk=chunk)
        if keep.all():
            xk = xm
        else:
            xk = xm.select(keep) if isinstance(xm, CompactDesign) else xm[:, keep]
        cols = np.flatnonzero(keep)
        const = _unit_columns(xk, chunk=chunk)
        start = null_model_start(xk, d, w, code, n_lev, const)
        res = _newton(xk, d, w, code, n_lev, maxiter, tol, penalty=0.0, free=const, start=start, chunk=chunk)
    if res is None and start is not None:  # the fit from β = 0, as without a warm start, before the ridge
        res = _newton(xk, d, w, code, n_lev, maxiter, tol, penalty=0.0, free=const, chunk=chunk)
    converged = res is not None
    if res is None:
        # the penalty is a fixed fraction of each coefficient's information at the null model, Σ p̄(1 − p̄) x_ij²:
        # scaled by Σ x_ij² alone it would outweigh the information of every coefficient when treatment is rare
        # (p̄ = 0.3 % in a cohort of candidate person-months) and shrink the whole score, not only the separated
        # terms (age balance after matching went from 0.1 to 0.4 SD in small worlds)
        pbar = float(np.average(d, weights=w))
        res = _newton(
            xk, d, w, code, n_lev, max(maxiter, 200), tol,
            penalty=RIDGE_PENALTY * pbar * (1.0 - pbar), free=const, chunk=chunk,
        )  # fmt: skip
    if res is None:  # not even the penalised fit: the data cannot identify a logit (e.g. all rows one class)
        raise InputError(
            "logistic regression failed even with a ridge penalty; check that both outcome classes occur and "
            "that the covariates are finite"
        )
    return cols, res, converged


def independent_columns(x, tol: float = 1e-9, chunk: int = 500_000) -> np.ndarray:
    """Boolean mask of the columns of ``x`` that are not linear combinations of earlier columns.

    Gram–Schmidt on the cross-product ``G = X'X`` in column order: column j is kept when its residual sum of
    squares after projection on the kept earlier columns, ``G_jj − G_jS G_SS⁻¹ G_Sj``, exceeds ``tol · G_jj``
    (the first of each dependent set stays, as R's ``lm``/``glm`` keep it).
    """
    k = x.shape[1]
    g = np.zeros((k, k))
    for s in range(0, len(x), chunk):
        xc = x[s : s + chunk]
        g += xc.T @ xc
    return _independent_from_gram(g, tol)


def _independent_from_gram(g: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """The column choice of :func:`independent_columns` from the cross-product ``G = X'X`` itself."""
    k = g.shape[0]
    keep = np.zeros(k, bool)
    for j in range(k):
        sel = np.flatnonzero(keep)
        resid = g[j, j]
        if sel.size:
            coef = np.linalg.solve(g[np.ix_(sel, sel)], g[sel, j])
            resid = g[j, j] - g[j, sel] @ coef
        keep[j] = g[j, j] > 0 and resid > tol * g[j, j]
    return keep


#: Rows above which :func:`fit_logit` takes its large-data path: Newton started from a subsample's fit
#: (:func:`subsample_start`) or the null model's estimate (:func:`null_model_start`), not at 0, in row blocks.
WARM_START_ROWS = 1_000_000


def null_model_start(
    x, d, w, code, n_lev, free, *, min_rows: int | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """Starting values for the Newton iterations on more than :data:`WARM_START_ROWS` rows when
    :func:`subsample_start` gives none, and for the subsample's own fit: the maximum-likelihood
    estimate of the model with the intercept and the fixed effects only, which has a closed form — the logit of
    the (weighted) share of ``d = 1`` per level, ``η_l = log(p̄_l / (1 − p̄_l))``: intercept ``η_ref``, level
    effects ``η_l − η_ref`` (shares clipped to ``[½/n_l, 1 − ½/n_l]``), every other coefficient 0.

    Each Newton iteration passes over the whole design (η, score and X'WX by chunk), and on a national pool of 10⁷
    candidate rows those passes are most of the run's time. Treatment is rare among candidate person-months
    (p̄ ≈ 0.5 %), so from β = 0 Newton spends most of its 12–14 iterations walking the intercept and the month
    effects down to log(p̄) about one unit a step; from the null model it only has the covariates' effects left.
    The maximum found is the same (the log-likelihood is concave; the stopping rule is unchanged), so the estimate
    agrees with a start at 0 to the tolerance. None (start at 0, as statsmodels) for smaller data (at most
    ``min_rows``, default :data:`WARM_START_ROWS`) or a design without an intercept column."""
    n = len(d)
    if n <= (WARM_START_ROWS if min_rows is None else min_rows) or len(free) != 1:
        return None
    wt = np.ones(n) if w is None else w
    lev = code + 1  # 0 = the reference level
    tot = np.bincount(lev, weights=wt, minlength=n_lev + 1)
    hit = np.bincount(lev, weights=wt * d, minlength=n_lev + 1)
    cnt = np.bincount(lev, minlength=n_lev + 1)
    if (cnt == 0).any() or (tot <= 0).any():
        return None
    share = np.clip(hit / tot, 0.5 / cnt, 1 - 0.5 / cnt)
    eta = np.log(share / (1 - share))
    a = np.zeros(x.shape[1])
    a[free[0]] = eta[0]
    return a, eta[1:] - eta[0]


#: Relative ridge penalty of the fallback fit under separation (see :func:`fit_logit`).
RIDGE_PENALTY = 1e-3


def _newton(
    x: np.ndarray,
    t: np.ndarray,
    w: np.ndarray | None,
    code: np.ndarray,
    n_lev: int,
    maxiter: int,
    tol: float,
    *,
    penalty: float,
    free: np.ndarray,
    chunk: int = 500_000,
    start: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Newton–Raphson for :func:`fit_logit`: ``(β, linear predictor)``, or None when it fails or does not
    converge. ``penalty`` λ adds ``−λ β_j`` to the score and ``λ`` to the Hessian's diagonal for every
    coefficient but the columns ``free`` (the intercept). ``start``: the first (β, γ) (default 0)."""
    k = x.shape[1]
    a = np.zeros(k) if start is None else np.array(start[0], dtype=float)
    c = np.zeros(n_lev) if start is None else np.array(start[1], dtype=float)
    sel = code >= 0
    cs = code[sel]
    n = len(t)
    lam_a = np.zeros(k)
    lam_c = np.zeros(n_lev)
    if penalty:
        for s in range(0, n, chunk):
            lam_a += (x[s : s + chunk] ** 2).sum(axis=0)
        lam_a *= penalty
        lam_a[free] = 0.0
        if n_lev:
            lam_c = penalty * np.bincount(cs, minlength=n_lev).astype(float)

    def eta_of() -> np.ndarray:
        eta = np.empty(n)
        for s in range(0, n, chunk):
            eta[s : s + chunk] = x[s : s + chunk] @ a
        if n_lev:
            eta[sel] += c[cs]
        return eta

    tracker = progress.track("propensity model, Newton iteration") if n > chunk else None
    for _ in range(maxiter):
        if tracker is not None:
            tracker.step()
        # one pass over the design per iteration: each chunk's η, p, score and Hessian blocks from one read of it
        # (the chunk's float64 copy is what costs on a compact 10⁷-row design)
        g_a = -lam_a * a
        h_aa = np.diag(lam_a)
        h_ac = np.zeros((k, n_lev))
        g_c = np.zeros(n_lev)
        h_cc = np.zeros(n_lev)
        for s in range(0, n, chunk):
            xc = x[s : s + chunk]
            eta = xc @ a
            m = sel[s : s + chunk]
            cc = code[s : s + chunk][m]
            if n_lev:
                eta[m] += c[cc]
            with np.errstate(over="ignore"):  # exp(−η) = ∞ under separation means p = 0: no harm
                p = 1.0 / (1.0 + np.exp(-eta))
            r = t[s : s + chunk] - p
            wgt = p * (1.0 - p)
            if w is not None:
                r = r * w[s : s + chunk]
                wgt = wgt * w[s : s + chunk]
            del p, eta
            xw = xc * wgt[:, None]
            g_a += xc.T @ r
            h_aa += xc.T @ xw
            if n_lev:
                g_c += np.bincount(cc, weights=r[m], minlength=n_lev)
                h_cc += np.bincount(cc, weights=wgt[m], minlength=n_lev)
                if n > chunk:  # X'WE: E the chunk's level indicators (sparse)
                    rows = np.flatnonzero(m)
                    e = sparse.csr_matrix((np.ones(len(rows)), (cc, rows)), shape=(n_lev, len(xc)))
                    h_ac += (e @ xw).T
                else:  # X'WE: per-level sums of w·x
                    xs, ws = xc[m], wgt[m]
                    for j in range(k):
                        h_ac[j] = np.bincount(cc, weights=xs[:, j] * ws, minlength=n_lev)
                    del xs, ws
        if n_lev:
            g_c -= lam_c * c
            h_cc += lam_c
        step = _newton_step(g_a, h_aa, h_ac, g_c, h_cc, n_lev)
        if step is None:
            return None
        step_a, step_c = step
        if penalty:  # step halving: the penalised log-likelihood must not fall (Newton alone can overshoot)
            step_a, step_c = _halve(eta_of, x, t, w, code, a, c, step_a, step_c, lam_a, lam_c, n_lev, chunk)
        a += step_a
        if n_lev:
            c += step_c
        if max(np.abs(step_a).max(initial=0.0), np.abs(step_c).max(initial=0.0) if n_lev else 0.0) <= tol:
            break
    else:
        return None
    return np.concatenate([a, c]), eta_of()


def _newton_step(
    g_a: np.ndarray, h_aa: np.ndarray, h_ac: np.ndarray, g_c: np.ndarray, h_cc: np.ndarray, n_lev: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """The Newton step ``(Δβ, Δγ)`` from the score ``(g_a, g_c)`` and the Hessian blocks X'WX, X'WE and the
    diagonal E'WE: ``Δβ = S⁻¹ (g_a − X'WE (E'WE)⁻¹ g_c)`` with the Schur complement ``S`` (:func:`fit_logit`),
    ``Δγ = (E'WE)⁻¹ (g_c − E'WX Δβ)``. None when the system is singular or the step not finite (separation)."""
    if n_lev:
        if not (np.all(np.isfinite(h_cc)) and np.all(h_cc > 1e-12 * max(1.0, h_cc.max()))):
            return None
        q = h_ac / h_cc
        schur = h_aa - q @ h_ac.T
        rhs = g_a - q @ g_c
    else:
        schur, rhs = h_aa, g_a
    try:
        step_a = np.linalg.solve(schur, rhs)
    except np.linalg.LinAlgError:  # weights p(1 − p) gone to 0: separation
        return None
    step_c = (g_c - h_ac.T @ step_a) / h_cc if n_lev else np.zeros(0)
    if not (np.all(np.isfinite(step_a)) and np.all(np.isfinite(step_c))):
        return None
    return step_a, step_c


def _penalised_loglik(eta: np.ndarray, t: np.ndarray, w: np.ndarray | None, a, c, lam_a, lam_c) -> float:
    ll = t * eta - np.logaddexp(0.0, eta)
    total = float(np.sum(ll if w is None else w * ll))
    return total - 0.5 * float(lam_a @ (a * a)) - 0.5 * float(lam_c @ (c * c))


def _halve(eta_of, x, t, w, code, a, c, step_a, step_c, lam_a, lam_c, n_lev, chunk=500_000):
    """Shorten a Newton step until the penalised log-likelihood does not fall (at most 30 halvings)."""
    base = _penalised_loglik(eta_of(), t, w, a, c, lam_a, lam_c)
    sel = code >= 0
    for _ in range(30):
        a_new = a + step_a
        c_new = c + step_c if n_lev else c
        eta = np.empty(len(t))
        for s in range(0, len(t), chunk):
            eta[s : s + chunk] = x[s : s + chunk] @ a_new
        if n_lev:
            eta[sel] += c_new[code[sel]]
        if _penalised_loglik(eta, t, w, a_new, c_new, lam_a, lam_c) >= base - 1e-12 * abs(base):
            break
        step_a, step_c = step_a / 2, step_c / 2
    return step_a, step_c


# -- the large-data path of fit_logit ---------------------------------------------------------------------------------

#: Rows per block in the passes of the large-data path: a block of 71 float64 columns (2.3 MB) and its weighted
#: copy stay in the processor's cache between the conversion from compact storage, η, the weighting and X'WX, where
#: blocks of 500 000 rows (280 MB) go through memory at every step (a pass over a 10⁷ × 71 design: 3.5 s against
#: 18 s on one core).
BLOCK_ROWS = 4096

#: Rows of the case-control subsample :func:`subsample_start` fits: every row with ``d = 1`` and controls up to
#: this many rows in all.
SUBSAMPLE_ROWS = 500_000

#: Seed of the subsample's draw. The start values depend on it, the estimate does not (same stopping rule).
SUBSAMPLE_SEED = 20240101

#: Stopping rule of the subsample's fit: its estimate differs from the full data's by sampling error anyway.
SUBSAMPLE_TOL = 1e-6

#: Iterations of the subsample's fit before it gives up (separation in the subsample: start from the null model).
SUBSAMPLE_MAXITER = 30


def _rows(x, start: int, stop: int, buf: np.ndarray | None) -> np.ndarray:
    """Rows ``start:stop`` of ``x`` (array or :class:`CompactDesign`, then read into ``buf``) as float64."""
    if isinstance(x, CompactDesign):
        return x.read(start, stop, out=buf)
    return x[start:stop]


def _buffer(x, block: int) -> np.ndarray | None:
    """The float64 buffer :func:`_rows` reads a :class:`CompactDesign`'s blocks into (None for an array)."""
    return np.empty((min(block, len(x)), x.shape[1])) if isinstance(x, CompactDesign) else None


def _gram_pass(x, block: int) -> tuple[np.ndarray, np.ndarray]:
    """``X'X`` and the mask of the columns that are 1 in every row, from one pass over ``x``: what
    :func:`independent_columns` and :func:`_unit_columns` compute in a pass each."""
    n, k = x.shape
    g = np.zeros((k, k))
    unit = np.full(k, n > 0)
    buf = _buffer(x, block)
    for s in range(0, n, block):
        xc = _rows(x, s, min(s + block, n), buf)
        g += xc.T @ xc
        if unit.any():
            unit[unit] = (xc[:, unit] == 1.0).all(axis=0)
    return g, unit


def _large_design(x, block: int) -> tuple[np.ndarray | CompactDesign, np.ndarray, np.ndarray]:
    """The design the large-data path fits: ``(xk, cols, const)`` — the columns of ``x`` that
    :func:`independent_columns` keeps, a :class:`CompactDesign`'s in storage order (:meth:`CompactDesign.blocked`);
    ``cols``, the position in ``x`` of each column of ``xk``; ``const``, the columns of ``xk`` that are 1 in every
    row. One pass (:func:`_gram_pass`); the rank check runs on ``X'X`` in ``x``'s own column order, so the same
    columns are kept as by :func:`independent_columns` (the first of each dependent set)."""
    if isinstance(x, CompactDesign):
        xb, order = x.blocked()
    else:
        xb, order = x, np.arange(x.shape[1])
    g, unit = _gram_pass(xb, block)
    back = np.argsort(order)  # X'X in x's column order: G[i, j] = G_b[back[i], back[j]]
    keep = _independent_from_gram(g[np.ix_(back, back)])[order]
    if not keep.all():
        xb = xb.select(keep).compacted() if isinstance(xb, CompactDesign) else xb[:, keep]
    return xb, order[keep], np.flatnonzero(unit[keep])


def subsample_start(
    x, d, w, code, n_lev, free, *, rows: int | None = None, block: int = BLOCK_ROWS
) -> tuple[np.ndarray, np.ndarray] | None:
    """Starting values for the Newton iterations on a large design: the logit fitted on a case-control subsample
    — every row with ``d = 1`` and the rows with ``d = 0`` drawn independently with probability ``r`` (seeded,
    :data:`SUBSAMPLE_SEED`) so that about ``rows`` rows (default :data:`SUBSAMPLE_ROWS`) are fitted — with the
    intercept moved by ``log r``.

    Sampling the controls at a rate ``r`` that does not depend on ``x`` multiplies the odds of ``d = 1`` among
    the sampled rows by ``1 / r`` and leaves the rest of the model unchanged: ``logit P(d = 1 | x, sampled) =
    x'β − log r`` (Prentice & Pyke 1979; King & Zeng 2001, "prior correction"). So the subsample's estimate with
    its intercept plus ``log r`` estimates the full data's β, with the sampling error of the left-out controls;
    the full iterations then start a fraction of a standard error from the maximum, where Newton needs 3 steps and
    a checking one instead of the 9 it takes from the null model (10⁷ candidate person-months, 500 000 rows in
    the subsample, whose fit costs less than one pass over the full design). With rare treatment (0.25 % of the
    candidate person-months) nearly all the information is in the treated rows, all of which the subsample keeps.

    The subsample is fitted from its null model (:func:`null_model_start`) to :data:`SUBSAMPLE_TOL`; columns that
    are dependent in the subsample (a rare level none of whose controls was drawn) start at 0. None — start from
    the null model instead — for a design without exactly one intercept column ``free``, an outcome that is not
    0/1, more treated rows than ``rows``, too few controls to gain from sampling (fewer than twice those drawn),
    or a subsample fit that fails (separation among the sampled rows)."""
    if len(free) != 1 or not np.isin(d, (0.0, 1.0)).all():
        return None
    treated = np.flatnonzero(d == 1.0)
    controls = np.flatnonzero(d == 0.0)
    want = (SUBSAMPLE_ROWS if rows is None else rows) - len(treated)
    if want < 1 or 2 * want > len(controls):
        return None
    rate = want / len(controls)
    drawn = controls[np.random.default_rng(SUBSAMPLE_SEED).random(len(controls)) < rate]
    sub = np.sort(np.concatenate([treated, drawn]))
    xs = x.take(sub) if isinstance(x, CompactDesign) else x[sub]
    d_s, code_s = d[sub], code[sub]
    w_s = None if w is None else w[sub]
    g, _unit = _gram_pass(xs, block)
    keep = _independent_from_gram(g)
    if not keep[free[0]]:
        return None
    if not keep.all():
        xs = xs.select(keep) if isinstance(xs, CompactDesign) else xs[:, keep]
    const = np.flatnonzero(np.flatnonzero(keep) == free[0])
    start = null_model_start(xs, d_s, w_s, code_s, n_lev, const, min_rows=0)
    res = _newton_blocks(
        xs, d_s, w_s, code_s, n_lev, SUBSAMPLE_MAXITER, SUBSAMPLE_TOL, start=start, block=block, track=False
    )
    if res is None:
        return None
    k = int(keep.sum())
    a = np.zeros(x.shape[1])
    a[keep] = res[0][:k]
    a[free[0]] += np.log(rate)
    return a, res[0][k:]


def _level_sums(lev: np.ndarray, v: np.ndarray, xw: np.ndarray, n_rows: int) -> np.ndarray:
    """``E'V X`` for one block: row ``l`` is the sum of ``v_i x_i`` over the block's rows at level ``l``
    (``lev``: level per row, 0 the reference). Rows sorted by level (the cohort is in month order) make most
    blocks a single level: one matrix–vector product; otherwise a sparse product with the level indicators."""
    out = np.zeros((n_rows, xw.shape[1]))
    if lev[0] == lev[-1] and (lev == lev[0]).all():
        out[lev[0]] = v @ xw
        return out
    e = sparse.csc_matrix((v, lev, np.arange(len(lev) + 1)), shape=(n_rows, len(lev)))
    return np.asarray(e @ xw)


def _newton_blocks(
    x: np.ndarray | CompactDesign,
    t: np.ndarray,
    w: np.ndarray | None,
    code: np.ndarray,
    n_lev: int,
    maxiter: int,
    tol: float,
    *,
    start: tuple[np.ndarray, np.ndarray] | None,
    block: int = BLOCK_ROWS,
    track: bool = True,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The unpenalised Newton–Raphson of :func:`_newton` for the large-data path: ``(β, linear predictor)`` or
    None when it fails or does not converge; the same steps (:func:`_newton_step`) and stopping rule.

    One pass per iteration, over blocks of ``block`` rows read into one reused buffer. With ``s = √(w p(1 − p))``
    per row, X'WX is the symmetric product ``(sX)'(sX)`` (half the multiplications of ``X'(WX)``) and X'WE the
    per-level sums of ``s · (sX)`` (:func:`_level_sums`).

    Once a step is at most ``√tol``, the next iteration keeps that step's Hessian and computes only the score (a
    chord step; Kelley 1995, ch. 5), which is most of the cost of a pass saved: the Hessian at the new point differs
    by O(‖Δ‖) ≤ √tol relative, so the step differs from the Newton step by O(√tol ‖step‖), and when the step
    meets the stopping rule (≤ ``tol``) the estimate is within O(√tol · tol) (≈ 10⁻¹² at ``tol`` = 10⁻⁸) of the
    one full Newton steps reach — the same estimate to the tolerance. On a 10⁷-row design this is the final,
    checking iteration, whose step is ~10⁻⁹."""
    n, k = x.shape
    a = np.zeros(k) if start is None else np.array(start[0], dtype=float)
    c = np.zeros(n_lev) if start is None else np.array(start[1], dtype=float)
    buf = _buffer(x, block)
    scaled = np.empty((min(block, n), k))
    tracker = progress.track("propensity model, Newton iteration") if track and n > block else None
    hessian = True  # compute the Hessian in this pass (else keep the last one: a chord step)
    for _ in range(maxiter):
        if tracker is not None:
            tracker.step()
        c_ext = np.r_[0.0, c]  # level effects with the reference level's 0 first
        g_a = np.zeros(k)
        g_e = np.zeros(n_lev + 1)
        if hessian:
            h_aa = np.zeros((k, k))
            h_e = np.zeros(n_lev + 1)
            h_ea = np.zeros((n_lev + 1, k))
        for s in range(0, n, block):
            e = min(s + block, n)
            xc = _rows(x, s, e, buf)
            lev = code[s:e] + 1
            eta = xc @ a
            if n_lev:
                eta += c_ext[lev]
            with np.errstate(over="ignore"):  # exp(−η) = ∞ under separation means p = 0: no harm
                p = 1.0 / (1.0 + np.exp(-eta))
            r = t[s:e] - p
            if w is not None:
                r *= w[s:e]
            g_a += r @ xc
            if n_lev:
                g_e += np.bincount(lev, weights=r, minlength=n_lev + 1)
            if not hessian:
                continue
            wgt = p * (1.0 - p)
            if w is not None:
                wgt *= w[s:e]
            sw = np.sqrt(wgt)
            xs = np.multiply(xc, sw[:, None], out=scaled[: e - s])
            h_aa += xs.T @ xs
            if n_lev:
                h_e += np.bincount(lev, weights=wgt, minlength=n_lev + 1)
                h_ea += _level_sums(lev, sw, xs, n_lev + 1)
        step = _newton_step(g_a, h_aa, h_ea[1:].T, g_e[1:], h_e[1:], n_lev)
        if step is None:
            return None
        step_a, step_c = step
        a += step_a
        if n_lev:
            c += step_c
        size = max(np.abs(step_a).max(initial=0.0), np.abs(step_c).max(initial=0.0))
        if size <= tol:
            break
        hessian = size > np.sqrt(tol)
    else:
        return None
    c_ext = np.r_[0.0, c]
    eta = np.empty(n)
    for s in range(0, n, block):
        e = min(s + block, n)
        eta[s:e] = _rows(x, s, e, buf) @ a
        if n_lev:
            eta[s:e] += c_ext[code[s:e] + 1]
    return np.concatenate([a, c]), eta
