"""One adapter from any accepted table (pandas, Arrow, DuckDB relation, Parquet path) to what a stage needs.

Stages accept a table in any of four forms (:data:`TableLike`) and need it either in pandas (small tables: the
cohort's design, the matched sample) or queryable in DuckDB (large tables: spells, the person-month panel).
:func:`as_pandas` and :class:`Session` are the only two ways the package turns one into the other (cobalt's
``x2base`` habit: adapt once, at the boundary, then compute on one form).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from .errors import InputError, Problem
from .schema import TABLES

#: The table forms every stage accepts.
TableLike = pd.DataFrame | pa.Table | duckdb.DuckDBPyRelation | str | Path

_KINDS = "a pandas DataFrame, Arrow table, DuckDB relation or Parquet path"


def _parquet_glob(path: str | Path, what: str) -> str:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what}: file or directory {str(p)!r} does not exist.")
    return str(p / "**" / "*.parquet") if p.is_dir() else str(p)


def as_pandas(
    obj: TableLike | None,
    what: str,
    *,
    canonical: str | None = None,
    max_rows: int | None = None,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame | None:
    """The table as a pandas DataFrame (None stays None).

    Parameters
    ----------
    obj : the table in any accepted form.
    what : its name in error messages (e.g. ``"build_cohort: participants"``).
    canonical : name of a canonical table (``schema.TABLES``): its ``date`` columns become ``datetime64[ns]`` and
        its ``int`` columns nullable ``Int64``, whatever the source's types.
    max_rows : refuse a table with more rows (large tables stay in DuckDB).
    columns : only these of its columns, those it has (the others are never read: a national population is
        5·10⁶ rows, whose text columns would be ~2 GB in pandas).
    """
    if obj is None:
        return None
    if isinstance(obj, str | Path):
        obj = duckdb.sql(f"SELECT * FROM read_parquet('{_parquet_glob(obj, what)}')")
    if max_rows is not None:
        n = n_rows(obj)
        if n > max_rows:
            raise InputError(
                f"{what}: {n:,} rows is too many to load into memory (max_rows={max_rows:,}); query it in DuckDB"
            )
    if isinstance(obj, pd.DataFrame):
        df = obj if columns is None else obj[[c for c in obj.columns if c in columns]]
    elif isinstance(obj, pa.Table):
        df = (
            obj if columns is None else obj.select([c for c in obj.column_names if c in columns])
        ).to_pandas()
    elif isinstance(obj, duckdb.DuckDBPyRelation):
        if columns is not None:
            obj = obj.select(*(duckdb.ColumnExpression(c) for c in obj.columns if c in columns))
        df = obj.df()
    else:
        raise InputError(f"{what}: expected {_KINDS}; got {type(obj).__name__}")
    if canonical is None:
        return df
    spec = TABLES[canonical]
    for c in df.columns:
        kind = spec.column(c).kind if c in spec.names else None
        if kind == "date" or str(df[c].dtype).startswith("datetime64"):
            df[c] = pd.to_datetime(df[c]).astype("datetime64[ns]")
        elif kind == "int":
            df[c] = df[c].astype("Int64")
    return df


def n_rows(obj: Any) -> int:
    """Rows of a DataFrame, Arrow table or DuckDB relation (a relation is counted by the engine)."""
    if isinstance(obj, pd.DataFrame):
        return len(obj)
    if isinstance(obj, pa.Table):
        return obj.num_rows
    return int(obj.aggregate("count(*)").fetchone()[0])


def register(con: duckdb.DuckDBPyConnection, name: str, obj: TableLike, what: str | None = None) -> None:
    """Make ``obj`` queryable as the view ``name`` on ``con``; a DuckDB relation of the same connection and a
    Parquet path stay lazy (nothing is read into memory), a relation of another connection is brought over
    through Arrow."""
    what = what or name
    if isinstance(obj, str | Path):
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM read_parquet('{_parquet_glob(obj, what)}')"
        )
    elif isinstance(obj, pd.DataFrame | pa.Table):
        con.register(name, obj)
    elif isinstance(obj, duckdb.DuckDBPyRelation):
        try:
            con.register(name, obj)
            con.execute(f"SELECT * FROM {name} LIMIT 0")
        except duckdb.Error:  # a relation of another connection: materialise it through Arrow
            con.register(name, obj.to_arrow_table())
    else:
        raise InputError(f"{what}: expected {_KINDS}; got {type(obj).__name__}.")


def columns(con: duckdb.DuckDBPyConnection, name: str) -> list[str]:
    """Column names of a view or table on ``con``."""
    return [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {name}").fetchall()]


#: Bytes per unit of DuckDB's size texts (``current_setting('memory_limit')`` is e.g. ``3.7 GiB``).
_SIZE_UNITS = {
    "bytes": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def memory_limit_bytes(con: duckdb.DuckDBPyConnection) -> int:
    """The connection's ``memory_limit`` in bytes (DuckDB states it rounded, e.g. ``3.7 GiB`` for ``4GB``)."""
    text = str(con.execute("SELECT current_setting('memory_limit')").fetchone()[0]).strip()
    number, _, unit = text.partition(" ")
    return int(float(number) * _SIZE_UNITS[unit.strip().lower() or "bytes"])


def require_columns(con: duckdb.DuckDBPyConnection, name: str, table: str, required: Sequence[str]) -> None:
    """Raise :class:`InputError` naming ``table`` when the view ``name`` lacks any of ``required``."""
    cols = columns(con, name)
    missing = [c for c in required if c not in cols]
    if missing:
        raise InputError(
            f"{table} lacks column(s) {', '.join(missing)}; it has {', '.join(cols)}.",
            [
                Problem(
                    table,
                    table,
                    c,
                    "required column missing",
                    hint="map the agency column onto it in the input spec",
                )
                for c in missing
            ],
        )


@dataclass
class Session:
    """A DuckDB connection plus the views one call registered on it (dropped again at :meth:`close`).

    ``Session.open(con)`` borrows ``con`` (or opens a private in-memory connection when None, closed at
    :meth:`close`); use it as a context manager.
    """

    con: duckdb.DuckDBPyConnection
    own: bool
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    names: list[str] = field(default_factory=list)
    cache: dict = field(default_factory=dict)

    @classmethod
    def open(cls, con: duckdb.DuckDBPyConnection | None = None) -> Session:
        return cls(duckdb.connect() if con is None else con, con is None)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def name(self, base: str) -> str:
        """A fresh view/table name owned by this session."""
        n = f"_fe_{base}_{self.tag}"
        self.names.append(n)
        return n

    def register(
        self, table: str, obj: TableLike, label: str | None = None, required: Sequence[str] = ()
    ) -> str:
        """Register ``obj`` under a fresh view name and check its ``required`` columns (once per object)."""
        key = (table, id(obj))
        if key in self.cache:
            return self.cache[key][0]
        name = self.name(label or table)
        register(self.con, name, obj, table)
        require_columns(self.con, name, table, required)
        self.cache[key] = (name, obj)  # keep obj alive so its id is not reused
        return name

    def close(self) -> None:
        for n in self.names:
            for stmt in (f"DROP VIEW IF EXISTS {n}", f"DROP TABLE IF EXISTS {n}"):
                try:
                    self.con.execute(stmt)
                except duckdb.Error:
                    pass
            try:
                self.con.unregister(n)
            except duckdb.Error:
                pass
        self.names.clear()
        if self.own:
            self.con.close()


def _is_text(s: pd.Series) -> bool:
    """A column :func:`compact` and :func:`text_as_categories` make categorical (object or string dtype)."""
    return s.dtype == object or pd.api.types.is_string_dtype(s.dtype)


#: Values per piece of :func:`is_exact_float32`'s check.
EXACT_CHECK_PIECE = 1 << 20


def is_exact_float32(values: np.ndarray) -> bool:
    """Whether every value is exactly a float32 (NaN counts as one): the rule by which :func:`compact` and the
    history stream store a float column as float32. Checked a piece at a time (a national cohort's column is
    5·10⁷ values, whose whole-column copies in the check were ~1.5 GB)."""
    for s in range(0, len(values), EXACT_CHECK_PIECE):
        v = values[s : s + EXACT_CHECK_PIECE]
        if not np.array_equal(v.astype(np.float32).astype(np.float64), v, equal_nan=True):
            return False
    return True


def compact(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame in compact exact types: text columns as categories (levels sorted), 64-bit integer columns as
    32-bit ones when they fit (never narrower, so arithmetic on them cannot overflow where 64 bits would not),
    float64 columns as float32 when every value is exactly a float32 (0/1 flags, whole or quarter days, ages).
    Values are unchanged: :func:`plain` gives the frame back as it was (and the design builders read float32
    columns as float64).

    A national cohort has ~10⁷ rows with a dozen text columns (pseudonym, months, demographics, sources): as
    Python strings they take ~1 KB a row, as category codes a few bytes (issue 14).
    """
    out = {}
    for c in frame.columns:
        s = frame[c]
        if _is_text(s):
            out[c] = pd.Series(pd.Categorical(s), index=s.index, name=c)
        elif s.dtype == "int64" and (len(s) == 0 or (s.min() >= -(2**31) and s.max() < 2**31)):
            out[c] = s.astype("int32")
        elif s.dtype == "float64":
            v = s.to_numpy()
            exact = is_exact_float32(v)
            out[c] = pd.Series(v.astype(np.float32), index=s.index, name=c) if exact else s.copy()
        else:
            out[c] = s.copy()
    # one block per column, none a view of ``frame``'s blocks: ``frame`` can be freed, and concat_compact
    # releases a column's memory as soon as it is joined
    res = pd.DataFrame(out, index=frame.index, copy=False)
    res.attrs.update(frame.attrs)
    return res


#: The range a count of months is stored in as int8 (:func:`narrow_counts`).
COUNT_MIN, COUNT_MAX = -128, 127


def narrow_counts(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``columns`` of ``frame`` (integer counts of months and 0/1 flags, e.g. ``ps_months_12``, ``ps_u1``) as
    int8 when every value lies in ``COUNT_MIN..COUNT_MAX``, in place; returns ``frame``. A national cohort holds
    14 such columns for 5·10⁷ rows: 2.8 GB as int32, 0.7 GB as int8. Sums and means of int8 columns are computed
    in 64 bits by NumPy and pandas (no overflow); the design builders read them as 0..255 or as float64."""
    for c in columns:
        if c in frame.columns and frame[c].dtype.kind in "iu" and frame[c].dtype.itemsize > 1:
            v = frame[c].to_numpy()
            if len(v) == 0 or (v.min() >= COUNT_MIN and v.max() <= COUNT_MAX):
                frame[c] = v.astype(np.int8)
    return frame


def concat_compact(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """:func:`pandas.concat` of :func:`compact` frames with the same columns that keeps the categories: each
    categorical column gets the sorted union of the frames' levels (``union_categoricals``), integers the widest
    of the frames' types.

    The frames are consumed (``frames`` is emptied) and joined a column at a time, each column's parts released
    once joined, so the peak is the result plus one column — not twice the result, as ``pd.concat`` of the
    batches of a 10⁷-row cohort would need.
    """
    from pandas.api.types import union_categoricals

    if len(frames) == 1:
        return frames.pop().reset_index(drop=True)
    names = list(frames[0].columns)
    by_column = {c: [f[c] for f in frames] for c in names}
    frames.clear()
    out = {}
    for c in names:
        parts = by_column.pop(c)
        if all(isinstance(p.dtype, pd.CategoricalDtype) for p in parts):
            out[c] = pd.Series(union_categoricals([p.array for p in parts], sort_categories=True), name=c)
        else:
            out[c] = pd.concat(parts, ignore_index=True)
        del parts
    return pd.DataFrame(out, copy=False)


def take_compact(frame: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """``frame.take(rows)`` (new RangeIndex) a column at a time; ``frame`` is consumed (each of its columns is
    dropped once taken), so the peak is the frame plus one column (a :func:`compact` frame has one block per
    column)."""
    out = {}
    for c in list(frame.columns):
        out[c] = frame[c].take(rows).reset_index(drop=True)
        del frame[c]
    res = pd.DataFrame(out, copy=False)
    res.attrs.update(frame.attrs)
    return res


def text_codes(s: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """``s.astype(str)`` as (int32 codes, sorted unique text levels) without a string per row: a categorical's
    codes through a lookup table over its categories as text (a missing value is ``"nan"``, as ``astype(str)``
    writes it); another column's values factorized first and only the distinct values made text (a missing
    value as ``astype(str)`` writes it: ``"None"`` or ``"nan"``). Values with equal text share a code (1 and
    "1"). A national cohort's columns are ~10⁷ rows: as text, ~60 bytes a row each."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes = s.cat.codes.to_numpy()
        text = [str(c) for c in s.cat.categories] + ["nan"]  # code −1 (missing) reads the last entry
    else:
        codes, levels = pd.factorize(s)
        text = [str(v) for v in levels]
        missing = codes < 0
        if missing.any():
            na_codes, na_text = pd.factorize(s[missing].astype(str))
            codes = codes.copy()
            codes[missing] = len(text) + na_codes
            text += list(na_text)
    levels, first = np.unique(np.asarray(text, dtype=object), return_inverse=True)
    return first.astype(np.int32)[codes], pd.Index(levels, dtype=object)


def text_as_categories(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its text columns as categories (levels sorted, so sorting and grouping order the rows as
    the text does); every other column as it is (unlike :func:`compact`, numbers keep their types)."""
    text = [c for c in frame.columns if _is_text(frame[c])]
    if not text:
        return frame
    # a new frame of the same column objects (assign would copy, and consolidate, every other column: at
    # national scale 1.5 GB of outcome paths twice over)
    out = pd.DataFrame(
        {c: pd.Categorical(frame[c]) if c in text else frame[c] for c in frame.columns},
        index=frame.index,
        copy=False,
    )
    out.attrs.update(frame.attrs)
    return out


def plain(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its categorical columns back as text (``object``, missing as None), float32 columns as
    float64 and int32 columns as int64: the inverse of :func:`compact` for the small tables taken out of a
    compact one (the matched sample), so grouping, merging, labelling and arithmetic behave as on the types the
    registers gave."""
    cats = [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)]
    f32 = [c for c in frame.columns if frame[c].dtype == np.float32]
    i32 = [c for c in frame.columns if frame[c].dtype == np.int32]
    if not cats and not f32 and not i32:
        return frame
    out = frame.copy()
    for c in cats:
        s = frame[c]
        codes = s.cat.codes.to_numpy()
        values = np.full(len(s), None, dtype=object)
        values[codes >= 0] = s.cat.categories.to_numpy(dtype=object)[codes[codes >= 0]]
        out[c] = pd.Series(values, index=s.index, dtype=object)
    for c in f32:
        out[c] = frame[c].astype(np.float64)
    for c in i32:
        out[c] = frame[c].astype(np.int64)
    return out


#: The column of a file written in pieces that holds each row's position (:func:`read_positioned`).
POSITION_COLUMN = "_row"


def read_positioned(path: str | Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Columns of a Parquet file, a column at a time, in :func:`compact` types; rows in the order of the file's
    :data:`POSITION_COLUMN` (each row's position, e.g. a cohort row written in panel order) when it has one, else
    as stored. The pre-period path of a national cohort (``panel.stream.history_features_stream``) is read so."""
    import pyarrow.parquet as pq

    f = pq.ParquetFile(path)
    names = f.schema_arrow.names
    order = f.read(columns=[POSITION_COLUMN]).column(0).to_numpy() if POSITION_COLUMN in names else None
    out = {}
    for c in columns if columns is not None else [c for c in names if c != POSITION_COLUMN]:
        v = f.read(columns=[c]).column(0).to_numpy()
        if order is not None:
            full = np.empty_like(v)
            full[order] = v
            v = full
        out[c] = compact(pd.DataFrame({c: v}, copy=False))[c]
        del v
    return pd.DataFrame(out, copy=False)
