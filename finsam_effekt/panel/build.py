"""The sparse person-month försörjning panel, built in DuckDB from the canonical register tables.

Every effect the package reports is a month-by-month contrast of försörjning. :func:`person_months` turns the
canonical register tables (``benefit_spells``, ``social_assistance``, ``earnings``, ``population``) into the sparse
person-month panel (``docs/tables.md``, "panel → person_months"); the rest of :mod:`finsam_effekt.panel` reads
history features, horizon outcomes and outcome paths from it.

Everything is computed in DuckDB over the (possibly very large) inputs; no dense persons × months table is ever
built. Inputs may be pandas DataFrames, Arrow tables, DuckDB relations (of the connection passed as ``con``) or
paths to Parquet files / directories of Parquet parts, all in canonical form (``schema.TABLES``).

Panel rules
-----------
Let a spell cover the calendar days ``from_date..to_date`` (both inclusive; an open spell, ``to_date`` empty, runs
to the last day of ``end_month``, the end of data). For calendar month ``m`` with first day ``F(m)`` and last day
``L(m)``:

* ``days(spell, m) = max(0, min(to_date, L(m)) - max(from_date, F(m)) + 1)`` — exact calendar days, so leap years,
  one-day spells and spells starting or ending on a month boundary need no special case.
* nettodagar of group ``g`` in month ``m`` = ``min(Σ_spells of g days(spell, m) × extent, D(m))`` where ``D(m)``
  is the number of days in the month: overlapping spells of one group never count more than one full-time
  benefit on every day of the month (the cap is per month, not per day; spells of *different* groups are never
  capped against each other).
* SEK of group ``g`` in month ``m`` = ``Σ amount_sek × days(spell, m) / N(spell)`` with ``N = to_date − from_date
  + 1`` the spell's length in days (for open spells up to the end of data): a spell's amount is spread evenly
  over its days. SEK is not capped (it is what was paid). Days after the end of data (and before ``start_month``,
  when given) are dropped after spreading, so the window does not change the amount of any kept month.
* A spell split into adjacent pieces (amount split in proportion to days) gives exactly the same months as the
  unsplit spell, because both formulas are sums over days.
* Identical duplicate rows (all columns equal) of any input count once; distinct rows of ``social_assistance``
  or ``earnings`` for the same person and month are summed (several payers / employers).
* ``benefit_sek = Σ_g sek_g + social_assistance_sek``; ``public_support = 1`` if any nettodagar, any benefit SEK
  > 0 or any social assistance SEK > 0 in the month; ``self_support = 1`` if ``earnings_sek ≥ threshold`` and
  ``public_support = 0`` (threshold ``schema.DEFAULT_SELF_SUPPORT_THRESHOLD_SEK`` unless configured).
* Censoring: with ``population``, the censoring month of a person is ``c = min(month(death_date),
  month(emigration_date))`` (either may be empty); months ``m ≥ c`` are not in the panel (the death or emigration
  month itself is censored).
* Sparse: only months with some non-zero value are rows; every other month is an implicit zero.
"""

from __future__ import annotations

import atexit
import functools
import queue
import shutil
import tempfile
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import months
from ..errors import InputError, Problem
from ..schema import (
    BENEFIT_CODES,
    BENEFIT_GROUPS,
    DEFAULT_SELF_SUPPORT_THRESHOLD_SEK,
    PANEL_COLUMNS,
    SPELL_GROUPS,
)
from ..tables import Session, TableLike

#: The value columns of the panel (every column but the keys ``person_id``, ``month``).
VALUE_COLUMNS: tuple[str, ...] = PANEL_COLUMNS[2:]

#: Columns each input of :mod:`finsam_effekt.panel` must have.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "benefit_spells": ("person_id", "benefit", "from_date", "to_date", "extent", "amount_sek"),
    "social_assistance": ("person_id", "month", "amount_sek"),
    "earnings": ("person_id", "month", "earnings_sek"),
    "population": ("person_id", "sex", "birth_year", "education", "kommun", "birth_region"),
    "population_censoring": ("person_id", "emigration_date", "death_date"),
    "kommun_forbund": ("kommun", "forbund_id"),
    "person_months": PANEL_COLUMNS,
    "pairs": ("person_id", "ref_month"),
}

Output = Literal["pandas", "arrow", "relation"]


def check_month(value: str | None, name: str) -> int | None:
    """Month index of a ``YYYY-MM`` argument ``name`` (None stays None); :class:`InputError` for anything else."""
    if value is None:
        return None
    try:
        if len(value) != 7 or value[4] != "-" or not 1 <= int(value[5:7]) <= 12:
            raise ValueError
        return int(months.to_index(value))
    except (ValueError, TypeError):
        raise InputError(f"{name} must be a month as 'YYYY-MM' text; got {value!r}.") from None


def register_input(sess: Session, table: str, obj: TableLike, label: str | None = None) -> str:
    """Register an input of the panel package under a fresh view name, checking its :data:`REQUIRED_COLUMNS`."""
    return sess.register(table, obj, label, required=REQUIRED_COLUMNS[table])


def _check_spells(sess: Session, spells: str) -> None:
    """Reject unusable spells (:class:`InputError` naming each problem and its number of rows)."""
    codes = ", ".join(f"'{c}'" for c in BENEFIT_GROUPS)
    row = sess.con.execute(
        f"""SELECT count(*) FILTER (WHERE CAST(benefit AS VARCHAR) NOT IN ({codes}) OR benefit IS NULL),
                   count(*) FILTER (WHERE extent IS NULL OR extent <= 0 OR extent > 1),
                   count(*) FILTER (WHERE CAST(to_date AS DATE) < CAST(from_date AS DATE)),
                   count(*) FILTER (WHERE person_id IS NULL OR from_date IS NULL OR amount_sek IS NULL)
            FROM {spells}"""
    ).fetchone()
    problems = []
    if row[0]:
        problems.append(
            Problem(
                "benefit_spells",
                "benefit_spells",
                "benefit",
                f"unknown benefit code (expected one of {', '.join(BENEFIT_GROUPS)})",
                row[0],
                hint="map the agency code in the input spec's codes",
            )
        )
    if row[1]:
        problems.append(
            Problem(
                "benefit_spells",
                "benefit_spells",
                "extent",
                "extent (omfattning) must satisfy 0 < extent <= 1",
                row[1],
                hint="give extent as a fraction (0.25, 0.5, 0.75, 1), not as per cent",
            )
        )
    if row[2]:
        problems.append(
            Problem(
                "benefit_spells",
                "benefit_spells",
                "to_date",
                "to_date before from_date",
                row[2],
                hint="reversed spells must be corrected or dropped before the panel",
            )
        )
    if row[3]:
        problems.append(
            Problem(
                "benefit_spells",
                "benefit_spells",
                None,
                "empty person_id, from_date or amount_sek",
                row[3],
            )
        )
    if problems:
        raise InputError(
            "benefit_spells cannot be used for the panel: " + "; ".join(str(p) for p in problems), problems
        )


#: Rows of the sorted input stream (spells, monthly amounts, censoring) handled per chunk; each chunk holds
#: whole persons. Small on purpose: the kernel's arrays (a few MB) then stay in the CPU caches and are reused by
#: the allocator instead of being mapped afresh (page faults cost more than the arithmetic at larger sizes).
ROWS_PER_CHUNK = 1 << 16
#: Cells (persons × months) of one dense block of the kernel: its occupancy and position arrays take
#: 9 bytes per cell, so at most about 40 MB.
CELLS_PER_BLOCK = 1 << 22

_N_CODES = len(BENEFIT_CODES)
_K_SA, _K_EARN, _K_CENS = _N_CODES, _N_CODES + 1, _N_CODES + 2
#: spell group index (position in SPELL_GROUPS) of each benefit code index (position in BENEFIT_CODES)
_GROUP_OF_CODE = np.array([SPELL_GROUPS.index(BENEFIT_GROUPS[c]) for c in BENEFIT_CODES], dtype=np.int64)
_EPOCH = np.datetime64("1970-01-01", "D")

#: Arrow schema of the panel as written (the SQL types of the earlier DuckDB build: flags are INTEGER).
PANEL_SCHEMA = pa.schema(
    [
        ("person_id", pa.string()),
        ("month", pa.string()),
        *((c, pa.float64()) for c in VALUE_COLUMNS[:-2]),
        ("public_support", pa.int32()),
        ("self_support", pa.int32()),
    ]
)
#: Arrow schema of the tables of :func:`panel_chunks`: the panel plus its month index ``m``.
CHUNK_SCHEMA = PANEL_SCHEMA.append(pa.field("m", pa.int64()))


def _stream_sql(
    sess: Session,
    spells: str,
    social_assistance: TableLike | None,
    earnings: TableLike | None,
    population: TableLike | None,
    end: int,
    start: int | None,
    persons: str | None,
) -> str:
    """SQL of every input row the panel needs, in one stream sorted by person: ``(person_id, k, a, b, x, y)``.

    ``k`` is the benefit code index (``BENEFIT_CODES``) for a spell, with ``a``/``b`` its from/to day number
    (days since 1970-01-01; ``b`` empty when open), ``x`` its extent and ``y`` its amount; ``k = _K_SA``/``_K_EARN``
    for a row of social assistance/earnings with ``a`` its month index (the canonical ``YYYY-MM`` text stands for
    exactly one month) and ``y`` its amount; ``k = _K_CENS`` for a censoring row with ``a`` the first censored
    month index. Sorting by all columns puts identical rows next to each other (dropped in :func:`_rows`) and fixes
    the order of every sum, so the panel is the same in every run.
    """
    pfilter = f"WHERE CAST(person_id AS VARCHAR) IN (SELECT person_id FROM {persons})" if persons else ""
    code = "CASE CAST(benefit AS VARCHAR) " + " ".join(
        f"WHEN '{c}' THEN {i}" for i, c in enumerate(BENEFIT_CODES)
    )
    day = "CAST(CAST({} AS DATE) - DATE '1970-01-01' AS INTEGER)"
    parts = [
        f"""SELECT CAST(person_id AS VARCHAR) AS person_id, CAST({code} END AS TINYINT) AS k,
                   {day.format("from_date")} AS a, {day.format("to_date")} AS b,
                   CAST(extent AS DOUBLE) AS x, CAST(amount_sek AS DOUBLE) AS y
            FROM {spells} {pfilter}"""
    ]
    mfilter = f"AND m >= {start}" if start is not None else ""
    for k, table, obj, col in (
        (_K_SA, "social_assistance", social_assistance, "amount_sek"),
        (_K_EARN, "earnings", earnings, "earnings_sek"),
    ):
        if obj is None:
            continue
        view = register_input(sess, table, obj)
        parts.append(
            f"""SELECT person_id, CAST({k} AS TINYINT), CAST(m AS INTEGER), NULL, NULL, y FROM (
                SELECT CAST(person_id AS VARCHAR) AS person_id, {months.sql_index("month")} AS m,
                       CAST({col} AS DOUBLE) AS y FROM {view} {pfilter})
            WHERE person_id IS NOT NULL AND m <= {end} {mfilter}"""
        )
    if population is not None:
        pop = register_input(sess, "population_censoring", population, "cens_pop")
        cm = (
            f"least({months.sql_date_index('CAST(death_date AS DATE)')}, "
            f"{months.sql_date_index('CAST(emigration_date AS DATE)')})"
        )
        parts.append(
            f"""SELECT CAST(person_id AS VARCHAR), CAST({_K_CENS} AS TINYINT), CAST({cm} AS INTEGER), NULL, NULL, NULL
            FROM {pop} WHERE person_id IS NOT NULL AND (death_date IS NOT NULL OR emigration_date IS NOT NULL)
            {pfilter.replace("WHERE", "AND")}"""
        )
    return " UNION ALL ".join(parts) + " ORDER BY person_id, k, a, b, x, y"


def _record_batches(con: duckdb.DuckDBPyConnection, sql: str) -> Iterator[pa.RecordBatch]:
    res = con.execute(sql)
    reader = (
        res.to_arrow_reader(1 << 17) if hasattr(res, "to_arrow_reader") else res.fetch_record_batch(1 << 17)
    )
    yield from reader


def _read_ahead(batches: Iterator[pa.RecordBatch], depth: int = 4) -> Iterator[pa.RecordBatch]:
    """The batches, read ahead in a thread: DuckDB produces the next batches (without the GIL) while the caller
    computes on these."""
    todo: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def work() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        todo.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            todo.put(end)
        except BaseException as e:  # re-raised in the consuming thread
            todo.put(e)

    thread = threading.Thread(target=work, name="panel-reader", daemon=True)
    thread.start()
    try:
        while (item := todo.get()) is not end:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _chunks(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """The stream cut into tables of about ``rows`` rows (at least one person each), each holding whole persons
    (the stream is sorted by person, so a person's rows are contiguous)."""
    buf: list[pa.RecordBatch] = []
    n = 0
    for batch in batches:
        buf.append(batch)
        n += batch.num_rows
        if n <= rows:
            continue
        tab = pa.Table.from_batches(buf)
        ids = tab.column("person_id").combine_chunks()
        # cut where a person starts, about every `rows` rows; the last person may continue in the next batch
        starts = np.flatnonzero(_numpy(pc.not_equal(ids.slice(1), ids.slice(0, n - 1)), True)) + 1
        cuts = np.unique(
            starts[np.minimum(np.searchsorted(starts, np.arange(rows, n, rows)), len(starts) - 1)]
        )
        if len(cuts) == 0:
            continue
        for c0, c1 in zip(np.r_[0, cuts[:-1]], cuts, strict=True):
            yield tab.slice(int(c0), int(c1 - c0))
        rest = tab.slice(int(cuts[-1]))
        buf, n = rest.to_batches(), rest.num_rows
    if n:
        yield pa.Table.from_batches(buf)


def _numpy(col: pa.Array | pa.ChunkedArray, fill: object) -> np.ndarray:
    """NumPy values of an Arrow column, empty entries as ``fill``."""
    return (col.fill_null(fill) if col.null_count else col).to_numpy(zero_copy_only=False)


def _month_of_day(day: np.ndarray) -> np.ndarray:
    """Month index (12·year + month − 1) of day numbers (days since 1970-01-01), through a table of the days
    between the smallest and the largest (a gather is several times cheaper than NumPy's calendar conversion)."""
    if len(day) == 0:
        return day.astype(np.int64)
    lo = int(day.min())
    table = (_EPOCH + np.arange(lo, int(day.max()) + 1)).astype("datetime64[M]").astype(np.int64) + 1970 * 12
    return table[day - lo]


def _first_day(month: np.ndarray | int) -> np.ndarray:
    """Day number of the first day of month indices."""
    return (np.asarray(month) - 1970 * 12).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)


@dataclass(frozen=True)
class _Window:
    end: int  # last month index of data
    start: int | None  # first month index kept, or None
    threshold: float

    @property
    def w0(self) -> int | None:
        return None if self.start is None else int(_first_day(self.start))

    @property
    def w1(self) -> int:
        return int(_first_day(self.end + 1)) - 1


@dataclass
class _Rows:
    """A chunk's spells (one row per distinct spell, clipped to the window and censoring) and monthly rows."""

    pid: np.ndarray  # local person key of each spell
    group: np.ndarray  # spell group index
    extent: np.ndarray
    per_day: np.ndarray  # amount / N(spell)
    c0: np.ndarray  # first and last day counted
    c1: np.ndarray
    m0: np.ndarray  # their month indices
    m1: np.ndarray
    o_pid: np.ndarray  # social assistance and earnings rows: local person key, month index, earnings?, amount
    o_m: np.ndarray
    o_earn: np.ndarray
    o_val: np.ndarray

    def part(self, spells: slice, other: slice) -> _Rows:
        """The spells ``spells`` and the monthly rows ``other``."""
        return _Rows(
            *(
                getattr(self, f)[spells]
                for f in ("pid", "group", "extent", "per_day", "c0", "c1", "m0", "m1")
            ),
            *(getattr(self, f)[other] for f in ("o_pid", "o_m", "o_earn", "o_val")),
        )


def _chunk_panel(tab: pa.Table, win: _Window) -> _Chunk | None:
    """The panel rows of one chunk (of whole persons) of the stream.

    Persons get dense integer keys in stream order (the order of ``person_id``) and every sum runs over integer
    cell positions (:func:`_block`); the text keys come back only in the output.
    """
    ids = tab.column("person_id").combine_chunks()
    n = len(ids)
    first = np.ones(n, dtype=bool)
    if n > 1:
        first[1:] = _numpy(pc.not_equal(ids.slice(1), ids.slice(0, n - 1)), True)
    pid = np.cumsum(first) - 1
    persons = ids.filter(pa.array(first))
    rows = _rows(tab, first, pid, len(persons), win)
    if rows is None:
        return None
    lo = int(min(rows.m0.min(initial=win.end), rows.o_m.min(initial=win.end)))
    n_months = win.end - lo + 1
    step = max(1, CELLS_PER_BLOCK // n_months)  # persons per block: a dense persons × months map stays small
    bounds = np.arange(0, len(persons) + step, step)
    sp_cut, o_cut = np.searchsorted(rows.pid, bounds), np.searchsorted(rows.o_pid, bounds)
    blocks = []
    for i in range(len(bounds) - 1):
        p1 = min(int(bounds[i + 1]), len(persons))
        if int(bounds[i]) >= p1:
            break
        part = rows.part(slice(sp_cut[i], sp_cut[i + 1]), slice(o_cut[i], o_cut[i + 1]))
        block = _block(int(bounds[i]), p1, lo, n_months, part, win.threshold)
        if block is not None:
            blocks.append(block)
    if not blocks:
        return None
    cols = [np.concatenate([blk[i] for blk in blocks]) for i in range(len(blocks[0]))]
    return _Chunk(persons, lo, cols[0], cols[1], cols[2:])


@dataclass
class _Chunk:
    """Panel rows of a chunk of persons: local person keys, month indices and the value columns (NumPy)."""

    persons: pa.Array  # person_id of each local person key
    lo: int  # the chunk's first month index
    person: np.ndarray
    m: np.ndarray
    values: list[np.ndarray]  # VALUE_COLUMNS, in order

    def arrow(self, end: int) -> pa.Table:
        """The rows as a table of :data:`CHUNK_SCHEMA`."""
        keys = [
            self.persons.take(pa.array(self.person)),
            _month_texts(self.lo, end).take(pa.array(self.m - self.lo)),
        ]
        return pa.Table.from_arrays(
            [*keys, *map(pa.array, self.values), pa.array(self.m)], schema=CHUNK_SCHEMA
        )


@functools.lru_cache(maxsize=64)
def _month_texts(lo: int, end: int) -> pa.Array:
    return pa.array([months.from_index(i) for i in range(lo, end + 1)], pa.string())


def _pandas(chunks: Iterator[_Chunk], end: int) -> pd.DataFrame:
    """The chunks as one DataFrame, copied once into its final blocks. The text keys are Python strings shared
    between rows (one object per person and month, as pandas holds text), placed by NumPy gathers rather than
    converted row by row."""
    parts = list(chunks)
    n = sum(len(c.m) for c in parts)
    keys = np.empty((2, n), dtype=object)
    floats = np.empty((len(VALUE_COLUMNS) - 2, n), dtype=np.float64)
    flags = np.empty((2, n), dtype=np.int64)
    at = 0
    for c in parts:
        rows = slice(at, at + len(c.m))
        keys[0, rows] = c.persons.to_numpy(zero_copy_only=False)[c.person]
        keys[1, rows] = _month_texts(c.lo, end).to_numpy(zero_copy_only=False)[c.m - c.lo]
        for i, v in enumerate(c.values):
            (floats[i] if i < len(floats) else flags[i - len(floats)])[rows] = v
        at += len(c.m)
    df = pd.DataFrame(floats.T, columns=list(VALUE_COLUMNS[:-2]), copy=False)
    df.insert(0, "person_id", keys[0])
    df.insert(1, "month", keys[1])
    for name, v in zip(VALUE_COLUMNS[-2:], flags, strict=True):
        df[name] = v
    return df


def _rows(tab: pa.Table, first: np.ndarray, pid: np.ndarray, n_persons: int, win: _Window) -> _Rows | None:
    """Decode a chunk of the stream (:func:`_stream_sql`): drop repeated spells, spread amounts, clip spells to
    the window and every row to the months before the person's censoring month."""
    k = tab.column("k").to_numpy()
    a = tab.column("a").to_numpy().astype(np.int64)
    b_col = tab.column("b")
    b_open = _numpy(b_col.is_null(), True)
    b = _numpy(b_col, 0).astype(np.int64)
    x = _numpy(tab.column("x"), 0.0)
    y = _numpy(tab.column("y"), 0.0)
    n = len(k)
    # identical rows (all columns equal; the stream is sorted by all of them, so they are neighbours) count once
    repeat = np.zeros(n, dtype=bool)
    if n > 1:
        repeat[1:] = (
            ~first[1:]
            & (k[1:] == k[:-1])
            & (a[1:] == a[:-1])
            & (b[1:] == b[:-1])
            & (b_open[1:] == b_open[:-1])
            & ((x[1:] == x[:-1]) | (np.isnan(x[1:]) & np.isnan(x[:-1])))
            & ((y[1:] == y[:-1]) | (np.isnan(y[1:]) & np.isnan(y[:-1])))
        )
    # the first censoring row of a person has its smallest month (sorted); months from it on are not kept
    c = np.flatnonzero((k == _K_CENS) & (first | np.r_[True, k[:-1] != _K_CENS]))
    cens_month = np.full(n_persons, win.end + 1, dtype=np.int64)
    cens_month[pid[c]] = np.minimum(a[c], win.end + 1)
    s = np.flatnonzero((k < _N_CODES) & ~repeat)
    frm, to = a[s], np.where(b_open[s], win.w1, b[s])
    per_day = y[s] / (to - frm + 1)  # the amount spread over the spell's days (to the end of data if open)
    c0 = frm if win.w0 is None else np.maximum(frm, win.w0)
    c1 = np.minimum(to, _first_day(cens_month)[pid[s]] - 1)  # the censoring month is at most end + 1
    inside = np.flatnonzero(c0 <= c1)
    s, c0, c1 = s[inside], c0[inside], c1[inside]
    o = np.flatnonzero(((k == _K_SA) | (k == _K_EARN)) & ~repeat & (a < cens_month[pid]))
    if len(s) == 0 and len(o) == 0:
        return None
    return _Rows(
        pid[s],
        _GROUP_OF_CODE[k[s]],
        x[s],
        per_day[inside],
        c0,
        c1,
        _month_of_day(c0),
        _month_of_day(c1),
        pid[o],
        a[o],
        k[o] == _K_EARN,
        y[o],
    )


def _sums(index: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """``out[i] = Σ weights[index == i]`` for ``i < n``, added in input order (float64 even when empty)."""
    return np.bincount(index, weights=weights, minlength=n).astype(np.float64, copy=False)


def _block(p0: int, p1: int, lo: int, n_months: int, r: _Rows, threshold: float) -> list[np.ndarray] | None:
    """Panel columns (local person key, month index, values, flags) of the persons ``p0..p1−1`` of a chunk.

    A spell's months are laid out as (person, month) cells, a dense occupancy map of the persons × months
    numbers the cells that occur (in person, month order), and ``np.bincount`` sums each group's days and SEK per
    cell in stream order.
    """
    first = _first_day(np.arange(lo, lo + n_months + 1))
    f_day, l_day = first[:-1], first[1:] - 1
    # one entry per spell and month it touches: days(spell, m) = min(c1, L(m)) − max(c0, F(m)) + 1, which is
    # D(m) but in the spell's first and last month
    count = r.m1 - r.m0 + 1
    start = np.cumsum(count) - count
    j = np.arange(int(count.sum()), dtype=np.int64) - np.repeat(start - (r.m0 - lo), count)
    n_days = l_day - f_day + 1
    days = n_days[j]
    last = start + count - 1
    days[last] = r.c1 - np.maximum(r.c0, f_day[r.m1 - lo]) + 1
    days[start] = np.minimum(r.c1, l_day[r.m0 - lo]) - r.c0 + 1
    cell = np.repeat((r.pid - p0) * n_months, count)
    cell += j
    o_cell = (r.o_pid - p0) * n_months + (r.o_m - lo)
    used = np.zeros((p1 - p0, n_months), dtype=bool)
    used.flat[cell] = True
    used.flat[o_cell] = True
    person, month = np.nonzero(used)  # the cells that occur, in (person, month) order
    n = len(person)
    if n == 0:
        return None
    pos = np.empty(used.size, dtype=np.int64)
    pos[person * n_months + month] = np.arange(n)
    n_groups = len(SPELL_GROUPS)
    at = np.repeat(r.group * n, count)
    at += pos[cell]
    weight = np.repeat(r.extent, count)
    weight *= days
    nd = _sums(at, weight, n_groups * n).reshape(n_groups, n)
    weight = np.repeat(r.per_day, count)
    weight *= days
    sek = _sums(at, weight, n_groups * n).reshape(n_groups, n)
    o_at = pos[o_cell]
    sa = _sums(o_at[~r.o_earn], r.o_val[~r.o_earn], n)
    earn = _sums(o_at[r.o_earn], r.o_val[r.o_earn], n)
    # nettodagar of a group are capped at the days of the month (overlapping spells of one group)
    np.minimum(nd, n_days.astype(np.float64)[month], out=nd)
    keep = (sa != 0) | (earn != 0)
    for g in range(n_groups):
        keep |= (nd[g] != 0) | (sek[g] != 0)
    if not keep.all():  # a cell whose amounts sum to zero is an implicit zero
        idx = np.flatnonzero(keep)
        nd, sek, sa, earn, person, month = (
            nd[:, idx],
            sek[:, idx],
            sa[idx],
            earn[idx],
            person[idx],
            month[idx],
        )
    days_sum, sek_sum = nd[0], sek[0]
    for g in range(1, n_groups):  # left to right, as the SQL sum a + b + c + d of the earlier build
        days_sum, sek_sum = days_sum + nd[g], sek_sum + sek[g]
    support = (days_sum > 0) | (sek_sum > 0) | (sa > 0)
    return [
        person + p0,
        month + lo,
        *nd,
        *sek,
        sa,
        earn,
        sek_sum + sa,
        support.astype(np.int32),
        ((earn >= threshold) & ~support).astype(np.int32),
    ]


def censor_cte(sess: Session, population: TableLike) -> str:
    """SQL common table expression ``cens(person_id, cm)``: each censored person's first censored month index
    ``cm = min(month(death_date), month(emigration_date))``."""
    pop = register_input(sess, "population_censoring", population, "cens_pop")
    return f"""cens AS (
        SELECT CAST(person_id AS VARCHAR) AS person_id,
               min(least({months.sql_date_index("CAST(death_date AS DATE)")},
                         {months.sql_date_index("CAST(emigration_date AS DATE)")})) AS cm
        FROM {pop} WHERE death_date IS NOT NULL OR emigration_date IS NOT NULL
        GROUP BY 1)"""


def censor_view(sess: Session, population: TableLike) -> str:
    """A view ``(person_id, cm)``: each censored person's first censored month index."""
    name = sess.name("cens")
    sess.con.execute(
        f"CREATE OR REPLACE TEMP VIEW {name} AS WITH {censor_cte(sess, population)} SELECT * FROM cens"
    )
    return name


def check_threshold(threshold: float) -> float:
    """The self-support threshold as a positive float; :class:`InputError` otherwise."""
    if not np.isfinite(threshold) or threshold <= 0:
        raise InputError(
            f"self_support_threshold must be a positive SEK amount; got {threshold!r} "
            "(months below it are implicit zeros in the sparse panel)."
        )
    return float(threshold)


def panel_chunks(
    sess: Session,
    spells: TableLike,
    social_assistance: TableLike | None,
    earnings: TableLike | None,
    population: TableLike | None,
    *,
    end_month: str,
    start_month: str | None,
    threshold: float,
    persons: str | None = None,
) -> Iterator[pa.Table]:
    """The panel as Arrow tables (:data:`CHUNK_SCHEMA`: the panel plus its month index ``m``) of whole persons, in
    ``(person_id, month)`` order. ``persons`` restricts to the persons of that view.

    The inputs are checked before this returns. The connection ``sess.con`` streams the inputs until the iterator
    is exhausted: run no other query on it meanwhile.
    """
    sql, win = _prepare(
        sess, spells, social_assistance, earnings, population, end_month, start_month, threshold, persons
    )
    return (c.arrow(win.end) for c in _panel_parts(sess.con, sql, win))


def _prepare(
    sess: Session,
    spells: TableLike,
    social_assistance: TableLike | None,
    earnings: TableLike | None,
    population: TableLike | None,
    end_month: str,
    start_month: str | None,
    threshold: float,
    persons: str | None,
) -> tuple[str, _Window]:
    """Check the arguments and inputs; the SQL of the input stream and the window."""
    end = check_month(end_month, "end_month")
    start = check_month(start_month, "start_month")
    if end is None:
        raise InputError("end_month (the last month of data, 'YYYY-MM') is required to build the panel.")
    if start is not None and start > end:
        raise InputError(f"start_month {start_month} is after end_month {end_month}.")
    sp = register_input(sess, "benefit_spells", spells)
    _check_spells(sess, sp)
    sql = _stream_sql(sess, sp, social_assistance, earnings, population, end, start, persons)
    return sql, _Window(end, start, threshold)


def _panel_parts(con: duckdb.DuckDBPyConnection, sql: str, win: _Window) -> Iterator[_Chunk]:
    """The panel of the stream ``sql``, chunk by chunk in stream order, computed by as many threads as DuckDB's
    ``threads`` setting (the kernel's large NumPy operations release the GIL)."""
    chunks = _chunks(_read_ahead(_record_batches(con, sql)), ROWS_PER_CHUNK)
    workers = int(con.execute("SELECT current_setting('threads')").fetchone()[0])
    if workers <= 1:
        yield from filter(None, (_chunk_panel(c, win) for c in chunks))
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="panel-kernel") as pool:
        running: deque = deque()
        for chunk in chunks:
            running.append(pool.submit(_chunk_panel, chunk, win))
            while len(running) > 2 * workers or (running and running[0].done()):
                if (out := running.popleft().result()) is not None:
                    yield out
        while running:
            if (out := running.popleft().result()) is not None:
                yield out


#: How the panel's Parquet files are written: Snappy (about 1/9 of the uncompressed size; Zstandard's fastest
#: level gives 2/3 of that size for 1.7× the writing time), dictionary encoding and statistics only for the keys
#: (the value columns are mostly zero and compress well without them; key statistics let readers skip row groups
#: by person).
PARQUET_OPTIONS: dict[str, object] = {
    "compression": "snappy",
    "use_dictionary": ["person_id", "month"],
    "write_statistics": ["person_id", "month"],
}
#: Rows per Parquet row group of the panel files.
ROW_GROUP_ROWS = 1 << 20


def _row_groups(tables: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """The tables (without ``m``) gathered into tables of at least :data:`ROW_GROUP_ROWS` rows (but the last)."""
    buf: list[pa.Table] = []
    n = 0
    for tab in tables:
        buf.append(tab.drop_columns(["m"]))
        n += tab.num_rows
        if n >= ROW_GROUP_ROWS:
            yield pa.concat_tables(buf)
            buf, n = [], 0
    if buf:
        yield pa.concat_tables(buf)


def _write_parquet(tables: Iterator[pa.Table], files: list[Path]) -> None:
    """Write the tables round-robin, a row group at a time, into ``files`` (a person's rows go to one file).

    A writer thread writes while the next rows are computed (Parquet encoding releases the GIL, and so do the
    larger NumPy operations of the kernel), so the two use both cores of a small machine.
    """
    writers = [pq.ParquetWriter(f, PANEL_SCHEMA, **PARQUET_OPTIONS) for f in files]
    todo: queue.Queue = queue.Queue(maxsize=2)
    failed: list[BaseException] = []

    def work() -> None:
        while (item := todo.get()) is not None:
            if failed:
                continue  # drain after an error
            try:
                writers[item[0]].write_table(item[1], row_group_size=2 * ROW_GROUP_ROWS)
            except BaseException as e:  # re-raised in the calling thread
                failed.append(e)

    thread = threading.Thread(target=work, name="panel-writer", daemon=True)
    thread.start()
    try:
        for i, tab in enumerate(_row_groups(tables)):
            if failed:
                break
            todo.put((i % len(files), tab))
    finally:
        todo.put(None)
        thread.join()
        for w in writers:
            w.close()
    if failed:
        raise failed[0]


def _scratch_directory() -> Path:
    d = Path(tempfile.mkdtemp(prefix="finsam_panel_"))
    atexit.register(shutil.rmtree, d, True)
    return d


def person_months(
    spells: TableLike,
    social_assistance: TableLike | None,
    earnings: TableLike | None,
    population: TableLike | None = None,
    *,
    end_month: str,
    start_month: str | None = None,
    self_support_threshold: float = DEFAULT_SELF_SUPPORT_THRESHOLD_SEK,
    con: duckdb.DuckDBPyConnection | None = None,
    output: Output = "pandas",
    parquet_path: str | Path | None = None,
    partitions: int = 1,
) -> pd.DataFrame | pa.Table | duckdb.DuckDBPyRelation | Path:
    """Build the sparse person-month försörjning panel (``docs/tables.md``, "panel → person_months").

    Parameters
    ----------
    spells, social_assistance, earnings, population
        Canonical ``benefit_spells``, ``social_assistance``, ``earnings`` and (optional, for censoring at death or
        emigration) ``population`` tables: DataFrames, Arrow tables, DuckDB relations of ``con`` or Parquet paths.
        ``social_assistance`` and ``earnings`` may be ``None`` (then zero).
    end_month
        Last month of data ``YYYY-MM``: open spells run to its last day; later months are dropped.
    start_month
        First month kept (optional; default the month of the earliest spell start).
    self_support_threshold
        Monthly earnings (SEK) at or above which a month without public support is ``self_support``.
    con
        DuckDB connection to compute in (default: a private in-memory one). Its ``threads`` and ``memory_limit``
        bound the sort of the inputs (which spills to its ``temp_directory``); the rest of the build works on
        chunks of :data:`ROWS_PER_CHUNK` input rows.
    output
        ``"pandas"`` or ``"arrow"`` (sorted by person and month), or ``"relation"`` (a DuckDB relation on ``con``,
        sorted, over a temporary Parquet copy of the panel that is removed when the process ends).
    parquet_path
        If given, the panel is written there as Parquet and the path is returned (national scale: the panel is
        never held whole in memory).
    partitions
        With ``parquet_path``: write the panel as ``partitions`` files ``part-NNNN.parquet`` into the directory
        ``parquet_path``, each a complete set of persons (several files can be read in parallel). Every reader
        of this module accepts the directory.

    Returns
    -------
    The panel with columns :data:`PANEL_COLUMNS`. The rules (day-exact overlap, the per-month cap of nettodagar,
    spreading amounts over days, duplicates, open spells, censoring) are stated in the module docstring:
    ``days_g(m) = min(Σ days(spell, m) × extent, D(m))``, ``sek_g(m) = Σ amount × days(spell, m) / N(spell)``,
    ``benefit_sek = Σ sek_g + social_assistance_sek``.

    References
    ----------
    Försäkringskassan (MiDAS): nettodagar = days × omfattning; 365 nettodagar = one helårsekvivalent.
    """
    threshold = check_threshold(self_support_threshold)
    if output == "relation" and con is None:
        raise InputError("output='relation' needs a DuckDB connection (con=...) that outlives the call.")
    if partitions < 1 or (partitions > 1 and parquet_path is None):
        raise InputError(f"partitions must be 1, or > 1 together with parquet_path; got {partitions}.")
    sess = Session.open(con)
    try:
        sql, win = _prepare(
            sess, spells, social_assistance, earnings, population, end_month, start_month, threshold, None
        )
        parts = _panel_parts(sess.con, sql, win)
        if parquet_path is None and output != "relation":
            if output == "arrow":
                return pa.concat_tables(
                    [PANEL_SCHEMA.empty_table(), *(c.arrow(win.end).drop_columns(["m"]) for c in parts)]
                )
            return _pandas(parts, win.end)
        if parquet_path is None:
            path = _scratch_directory() / "person_months.parquet"
            files = [path]
        elif partitions > 1:
            path = Path(parquet_path)
            path.mkdir(parents=True, exist_ok=True)
            files = [path / f"part-{i:04d}.parquet" for i in range(partitions)]
        else:
            path = Path(parquet_path)
            files = [path]
        _write_parquet((c.arrow(win.end) for c in parts), files)
        if parquet_path is None:
            return sess.con.read_parquet(str(path))
        return path
    finally:
        sess.close()


def _panel_dtypes(df: pd.DataFrame) -> pd.DataFrame:
    for c in ("public_support", "self_support"):
        if c in df:
            df[c] = df[c].astype("int64")
    return df
