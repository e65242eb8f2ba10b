"""The panel's arithmetic: a person-sorted stream of register rows, cut into chunks of whole persons, summed into
person-month rows with NumPy (the rules are :mod:`finsam_effekt.panel.build`'s; this module is how they are
computed fast and in bounded memory).

The stream
----------
One table sorted by all its columns, ``(person_id, k, a, b, x, y)``: ``k`` the benefit code index
(``BENEFIT_CODES``) of a spell with ``a``/``b`` its from/to day number (days since 1970-01-01; ``b`` empty when
open), ``x`` its extent and ``y`` its amount; or ``k =`` :data:`KIND_SOCIAL_ASSISTANCE` / :data:`KIND_EARNINGS`
for a monthly row with ``a`` its month index and ``y`` its amount; or ``k =`` :data:`KIND_CENSORING` with ``a`` a
first censored month. Sorted so, identical rows are neighbours (they count once) and every sum has one order.

The kernel
----------
A chunk's persons get dense integer keys in stream order. Each spell is laid out over the months it touches
(``days(spell, m) = D(m)`` but in its first and last month), a dense occupancy map of the chunk's persons × months
numbers the (person, month) cells that occur, and ``np.bincount`` adds each group's nettodagar and SEK per cell in
stream order. Chunks are small (:data:`ROWS_PER_CHUNK`) so that the kernel's arrays stay in the CPU caches and
are reused by the allocator; they are computed by as many threads as DuckDB uses (the large NumPy operations
release the GIL), while a reader thread fetches the stream and a writer thread writes Parquet.
"""

from __future__ import annotations

import functools
import queue
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import months
from ..schema import BENEFIT_CODES, BENEFIT_GROUPS, PANEL_COLUMNS, SPELL_GROUPS

_VALUES: tuple[str, ...] = PANEL_COLUMNS[2:]

#: Rows of the sorted input stream (spells, monthly amounts, censoring) handled per chunk; each chunk holds
#: whole persons. Small on purpose: the kernel's arrays (a few MB) then stay in the CPU caches and are reused by
#: the allocator instead of being mapped afresh (page faults cost more than the arithmetic at larger sizes).
ROWS_PER_CHUNK = 1 << 16
#: Cells (persons × months) of one dense block of the kernel: its occupancy and position arrays take
#: 9 bytes per cell, so at most about 40 MB.
CELLS_PER_BLOCK = 1 << 22

_N_CODES = len(BENEFIT_CODES)
#: Kinds of row of the input stream (its column ``k``) after the spells' benefit code indices ``0..len(BENEFIT_CODES)
#: − 1``: a row of social assistance, of earnings, a person's censoring month.
KIND_SOCIAL_ASSISTANCE, KIND_EARNINGS, KIND_CENSORING = _N_CODES, _N_CODES + 1, _N_CODES + 2
#: spell group index (position in SPELL_GROUPS) of each benefit code index (position in BENEFIT_CODES)
_GROUP_OF_CODE = np.array([SPELL_GROUPS.index(BENEFIT_GROUPS[c]) for c in BENEFIT_CODES], dtype=np.int64)
_EPOCH = np.datetime64("1970-01-01", "D")

#: Arrow schema of the panel as written (the SQL types of the earlier DuckDB build: flags are INTEGER).
PANEL_SCHEMA = pa.schema(
    [
        ("person_id", pa.string()),
        ("month", pa.string()),
        *((c, pa.float64()) for c in PANEL_COLUMNS[2:-2]),
        ("public_support", pa.int32()),
        ("self_support", pa.int32()),
    ]
)
#: Arrow schema of the panel with its month index ``m`` (:meth:`Chunk.arrow`).
CHUNK_SCHEMA = PANEL_SCHEMA.append(pa.field("m", pa.int64()))


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

    def put(item: object) -> bool:
        while not stop.is_set():  # the consumer may have stopped: never block for good
            try:
                todo.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for batch in batches:
                if not put(batch):
                    return
            put(end)
        except BaseException as e:  # re-raised in the consuming thread
            put(e)

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
        if len(starts) == 0:
            continue
        cuts = np.unique(
            starts[np.minimum(np.searchsorted(starts, np.arange(rows, n, rows)), len(starts) - 1)]
        )
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
class Window:
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


def _chunk_panel(tab: pa.Table, win: Window) -> Chunk | None:
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
    return Chunk(persons, lo, cols[0], cols[1], cols[2:])


@dataclass
class Chunk:
    """Panel rows of a chunk of persons: local person keys, month indices and the value columns (NumPy)."""

    persons: pa.Array  # person_id of each local person key
    lo: int  # the chunk's first month index
    person: np.ndarray
    m: np.ndarray
    values: list[np.ndarray]  # _VALUES, in order

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


def to_pandas(chunks: Iterator[Chunk], end: int, capacity: int = 1 << 20) -> pd.DataFrame:
    """The chunks as one DataFrame, each chunk copied straight into the frame's columns (one column per block, no
    consolidation copy). ``capacity`` is the expected number of rows (an upper bound avoids any regrowth; pages
    of the unused tail are never touched). The text keys are Python strings shared between rows (one object per
    person and month, as pandas holds text), placed by NumPy gathers rather than converted row by row."""
    dtypes = [object, object, *(np.float64,) * (len(_VALUES) - 2), np.int64, np.int64]
    cols = [np.empty(max(capacity, 1), dtype=t) for t in dtypes]
    at = 0
    for c in chunks:
        k = len(c.m)
        if at + k > len(cols[0]):  # more rows than expected: grow by doubling
            grown = [np.empty(max(2 * len(col), at + k), dtype=col.dtype) for col in cols]
            for new, old in zip(grown, cols, strict=True):
                new[:at] = old[:at]
            cols = grown
        rows = slice(at, at + k)
        np.take(c.persons.to_numpy(zero_copy_only=False), c.person, out=cols[0][rows])
        np.take(_month_texts(c.lo, end).to_numpy(zero_copy_only=False), c.m - c.lo, out=cols[1][rows])
        for col, v in zip(cols[2:], c.values, strict=True):
            col[rows] = v
        at += k
    return pd.DataFrame({name: col[:at] for name, col in zip(PANEL_COLUMNS, cols, strict=True)}, copy=False)


def _rows(tab: pa.Table, first: np.ndarray, pid: np.ndarray, n_persons: int, win: Window) -> _Rows | None:
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
    c = np.flatnonzero((k == KIND_CENSORING) & (first | np.r_[True, k[:-1] != KIND_CENSORING]))
    cens_month = np.full(n_persons, win.end + 1, dtype=np.int64)
    cens_month[pid[c]] = np.minimum(a[c], win.end + 1)
    s = np.flatnonzero((k < _N_CODES) & ~repeat)
    frm, to = a[s], np.where(b_open[s], win.w1, b[s])
    per_day = y[s] / (to - frm + 1)  # the amount spread over the spell's days (to the end of data if open)
    c0 = frm if win.w0 is None else np.maximum(frm, win.w0)
    c1 = np.minimum(to, _first_day(cens_month)[pid[s]] - 1)  # the censoring month is at most end + 1
    inside = np.flatnonzero(c0 <= c1)
    s, c0, c1 = s[inside], c0[inside], c1[inside]
    o = np.flatnonzero(
        ((k == KIND_SOCIAL_ASSISTANCE) | (k == KIND_EARNINGS)) & ~repeat & (a < cens_month[pid])
    )
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
        k[o] == KIND_EARNINGS,
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
    used = np.zeros((p1 - p0) * n_months, dtype=bool)
    used[cell] = True
    used[o_cell] = True
    cells = np.flatnonzero(used)  # the cells that occur, in (person, month) order
    n = len(cells)
    if n == 0:
        return None
    pos = np.empty(used.size, dtype=np.int64)
    pos[cells] = np.arange(n)
    person, month = np.divmod(cells, n_months)
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


def panel_parts(con: duckdb.DuckDBPyConnection, sql: str, win: Window) -> Iterator[Chunk]:
    """The panel of the stream ``sql``, chunk by chunk in stream order, computed by as many threads as DuckDB's
    ``threads`` setting (the kernel's large NumPy operations release the GIL)."""
    workers = int(con.execute("SELECT current_setting('threads')").fetchone()[0])
    chunks = _chunks(_read_ahead(_record_batches(con, sql)), ROWS_PER_CHUNK)
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


def write_parquet(tables: Iterator[pa.Table], files: list[Path]) -> None:
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
