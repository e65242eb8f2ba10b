"""The sparse person-month försörjning panel, built from the canonical register tables.

Every effect the package reports is a month-by-month contrast of försörjning. :func:`person_months` turns the
canonical register tables (``benefit_spells``, ``social_assistance``, ``earnings``, ``population``) into the sparse
person-month panel (``docs/tables.md``, "panel → person_months"); the rest of :mod:`finsam_effekt.panel` reads
history features, horizon outcomes and outcome paths from it.

Inputs may be pandas DataFrames, Arrow tables, DuckDB relations (of the connection passed as ``con``) or paths to
Parquet files / directories of Parquet parts, all in canonical form (``schema.TABLES``; months are ``YYYY-MM``).

How it is computed (national scale: 5·10⁷ spells of 5·10⁶ persons on two cores, ``benchmarks/README.md``):
DuckDB checks the inputs and sorts all their rows into one stream by person (spilling to its temporary directory
within its memory limit); :mod:`~finsam_effekt.panel.chunks` cuts the stream into chunks of whole persons, gives
the pseudonyms dense integer keys there and adds every sum over integer (person, month) cells with NumPy, in the
stream's order, so the panel is the same bit for bit in every run and for every chunking. The text keys come back
only in the output, which is written chunk by chunk (Parquet) while the next chunk is computed; no whole-panel or
persons × months table is ever held in memory.

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
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from .. import months
from ..errors import InputError, Problem
from ..schema import (
    BENEFIT_CODES,
    BENEFIT_GROUPS,
    DEFAULT_SELF_SUPPORT_THRESHOLD_SEK,
    PANEL_COLUMNS,
)
from ..tables import Session, TableLike
from .chunks import (
    KIND_CENSORING,
    KIND_EARNINGS,
    KIND_SOCIAL_ASSISTANCE,
    PANEL_SCHEMA,
    Window,
    panel_parts,
    to_pandas,
    write_parquet,
)

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


def _check_spells(sess: Session, spells: str, win: Window) -> int:
    """Reject unusable spells (:class:`InputError` naming each problem and its number of rows); return the number
    of (spell, month) pairs in the window (a bound on the panel's rows from spells)."""
    codes = ", ".join(f"'{c}'" for c in BENEFIT_GROUPS)
    first = months.sql_date_index("CAST(from_date AS DATE)")
    if win.start is not None:
        first = f"greatest({first}, {win.start})"
    to = f"coalesce(CAST(to_date AS DATE), DATE '{months.last_day(win.end).date().isoformat()}')"
    last = f"least({months.sql_date_index(to)}, {win.end})"
    row = sess.con.execute(
        f"""SELECT count(*) FILTER (WHERE CAST(benefit AS VARCHAR) NOT IN ({codes}) OR benefit IS NULL),
                   count(*) FILTER (WHERE extent IS NULL OR extent <= 0 OR extent > 1),
                   count(*) FILTER (WHERE CAST(to_date AS DATE) < CAST(from_date AS DATE)),
                   count(*) FILTER (WHERE person_id IS NULL OR from_date IS NULL OR amount_sek IS NULL),
                   coalesce(sum(greatest({last} - {first} + 1, 0)), 0)
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
    return int(row[4])


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
    """SQL of every input row the panel needs as one stream ``(person_id, k, a, b, x, y)`` sorted by all its
    columns (the format of :mod:`~finsam_effekt.panel.chunks`). Monthly rows carry the month index of their
    ``YYYY-MM`` text (canonical: one text per month), censoring rows ``min(month(death), month(emigration))``."""
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
        (KIND_SOCIAL_ASSISTANCE, "social_assistance", social_assistance, "amount_sek"),
        (KIND_EARNINGS, "earnings", earnings, "earnings_sek"),
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
            f"""SELECT CAST(person_id AS VARCHAR), CAST({KIND_CENSORING} AS TINYINT), CAST({cm} AS INTEGER), NULL, NULL, NULL
            FROM {pop} WHERE person_id IS NOT NULL AND (death_date IS NOT NULL OR emigration_date IS NOT NULL)
            {pfilter.replace("WHERE", "AND")}"""
        )
    return " UNION ALL ".join(parts) + " ORDER BY person_id, k, a, b, x, y"


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
    sql, win, _ = _prepare(
        sess, spells, social_assistance, earnings, population, end_month, start_month, threshold, persons
    )
    return (c.arrow(win.end) for c in panel_parts(sess.con, sql, win))


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
) -> tuple[str, Window, int]:
    """Check the arguments and inputs; the SQL of the input stream, the window and an upper bound of the panel's
    rows (every spell's months in the window plus every monthly row)."""
    end = check_month(end_month, "end_month")
    start = check_month(start_month, "start_month")
    if end is None:
        raise InputError("end_month (the last month of data, 'YYYY-MM') is required to build the panel.")
    if start is not None and start > end:
        raise InputError(f"start_month {start_month} is after end_month {end_month}.")
    win = Window(end, start, threshold)
    sp = register_input(sess, "benefit_spells", spells)
    bound = _check_spells(sess, sp, win)
    sql = _stream_sql(sess, sp, social_assistance, earnings, population, end, start, persons)
    for table, obj in (("social_assistance", social_assistance), ("earnings", earnings)):
        if obj is not None:
            bound += sess.con.execute(f"SELECT count(*) FROM {register_input(sess, table, obj)}").fetchone()[
                0
            ]
    return sql, win, bound


#: Bytes of the engine's memory one input-stream row takes in the sort of a part: the peak of DuckDB's sort of a
#: part of the 10⁶-person world (2.9·10⁷ rows, 8-character pseudonyms) was 61 B a row. Pseudonyms of more than 12
#: bytes are stored out of line and take about their length more.
SORT_BYTES_PER_ROW = 64
#: The share of the engine's ``memory_limit`` one part's sort is sized to; the rest is for the tables the engine
#: already holds (the read stage's materialised inputs) and the scans' buffers.
SORT_MEMORY_SHARE = 0.5


def panel_partitions(stream_rows: int, memory_limit: int) -> int:
    """How many parts (``person_months(partitions=...)``) to build a panel of ``stream_rows`` input rows in, on an
    engine with ``memory_limit`` bytes: the fewest whose sort fits in half the limit,
    ``ceil(stream_rows × SORT_BYTES_PER_ROW / (SORT_MEMORY_SHARE × memory_limit))``, at least 1.

    ``stream_rows`` = benefit spells + social assistance rows + earnings rows (+ censored persons: few). With a
    4 GB limit: 8.8·10⁷ rows (10⁶ persons) → 3 parts, 4.4·10⁸ (5·10⁶ persons) → 15. A larger part would still be
    sorted (DuckDB spills to its ``temp_directory``), only slower.
    """
    if stream_rows < 0 or memory_limit <= 0:
        raise InputError(
            f"panel_partitions needs rows >= 0 and a positive memory limit; got {stream_rows}, {memory_limit}."
        )
    budget = SORT_MEMORY_SHARE * memory_limit
    return max(1, int(np.ceil(stream_rows * SORT_BYTES_PER_ROW / budget)))


#: From this many parts on, a partitioned build reads the inputs once into scratch buckets of persons; with fewer,
#: each part runs a query of its own. That query repeats only the scan and hash of every input row's person id
#: (the filter on the hash runs below the transformation): ~4 s CPU per 8.8·10⁷ input rows and part; writing the
#: buckets as Parquet and reading them back costs ~19 s per 8.8·10⁷ rows once (10⁶-person world, DuckDB 1.5).
SCAN_ONCE_FROM_PARTS = 5


def _partition_sql(sql: str, i: int, n: int) -> str:
    """The input stream ``sql`` (``… ORDER BY …``) restricted to the persons of hash partition ``i`` of ``n``."""
    body, order = sql.rsplit(" ORDER BY ", 1)
    return f"SELECT * FROM ({body}) s WHERE hash(s.person_id) % {int(n)} = {int(i)} ORDER BY {order}"


def _quoted(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _write_buckets(con: duckdb.DuckDBPyConnection, sql: str, n: int, scratch: Path) -> list[Path | None]:
    """Write the input stream ``sql`` (``… ORDER BY …``, the order dropped) once, unsorted, as Parquet into
    ``scratch`` partitioned by the persons' hash bucket ``hash(person_id) % n``; the folder of each bucket (None:
    no rows)."""
    body = sql.rsplit(" ORDER BY ", 1)[0]
    out = scratch / "buckets"
    con.execute(
        f"COPY (SELECT *, hash(s.person_id) % {int(n)} AS bucket FROM ({body}) s) "
        f"TO {_quoted(out)} (FORMAT parquet, PARTITION_BY (bucket))"
    )
    return [d if (d := out / f"bucket={i}").is_dir() else None for i in range(n)]


def _bucket_sql(sql: str, bucket: Path) -> str:
    """The input stream ``sql`` restricted to the rows of one bucket folder of :func:`_write_buckets`, sorted as
    ``sql`` is."""
    order = sql.rsplit(" ORDER BY ", 1)[1]
    return (
        f"SELECT person_id, k, a, b, x, y FROM read_parquet({_quoted(bucket / '*.parquet')}, hive_partitioning = false) "
        f"ORDER BY {order}"
    )


def _bucket_scratch(con: duckdb.DuckDBPyConnection) -> Path:
    """A fresh folder for the buckets: in the connection's ``temp_directory`` when that is an absolute path (where
    the pipeline's engine spills), else in the system's temporary folder. The caller removes it."""
    base = Path(str(con.execute("SELECT current_setting('temp_directory')").fetchone()[0] or "."))
    if base.is_absolute():
        base.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="finsam_panel_buckets_", dir=base))
    return Path(tempfile.mkdtemp(prefix="finsam_panel_buckets_"))


def _write_part(sess: Session, sql: str, win: Window, file: Path) -> None:
    parts = panel_parts(sess.con, sql, win)
    try:
        write_parquet((c.arrow(win.end) for c in parts), [file])
    finally:
        parts.close()  # stops the threads reading the stream before the connection is used again


def _write_partitions(sess: Session, sql: str, win: Window, n: int, path: Path) -> None:
    """The panel of the stream ``sql`` as ``n`` files ``part-NNNN.parquet`` in ``path``, file ``i`` the persons of
    hash bucket ``i``, sorted. From :data:`SCAN_ONCE_FROM_PARTS` parts on, the inputs are read and transformed
    once (into bucket files in a scratch folder, removed again) and each bucket is then sorted and aggregated on
    its own; with fewer, each part is a filtered query of the inputs."""
    path.mkdir(parents=True, exist_ok=True)
    if n < SCAN_ONCE_FROM_PARTS:  # a query per part: the persons of hash partition i, sorted
        for i in range(n):
            _write_part(sess, _partition_sql(sql, i, n), win, path / f"part-{i:04d}.parquet")
        return
    scratch = _bucket_scratch(sess.con)
    try:
        for i, bucket in enumerate(_write_buckets(sess.con, sql, n, scratch)):
            if bucket is None:  # no input rows of these persons: an empty part
                write_parquet(iter(()), [path / f"part-{i:04d}.parquet"])
                continue
            _write_part(sess, _bucket_sql(sql, bucket), win, path / f"part-{i:04d}.parquet")
            shutil.rmtree(bucket, ignore_errors=True)  # its disk space is free for the next buckets' sorts
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


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
        ``parquet_path``, file ``i`` the persons with ``hash(person_id) % partitions = i``, sorted by person. The
        inputs are read and transformed once, into unsorted Parquet buckets of persons in a scratch folder (under
        the connection's ``temp_directory`` when that is an absolute path, else the system's temporary folder;
        removed again, also on error; below :data:`SCAN_ONCE_FROM_PARTS` parts a filtered query of the inputs per
        part is cheaper and used instead); each bucket is then sorted and aggregated on its own, so the engine sorts
        a ``1/partitions`` share of the input rows at a time (:func:`panel_partitions` sizes it to the memory
        limit). The files hold exactly the rows of the single-file panel, in its order. Every reader of this
        module accepts the directory.

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
    parts = None
    try:
        sql, win, bound = _prepare(
            sess, spells, social_assistance, earnings, population, end_month, start_month, threshold, None
        )
        parts = panel_parts(sess.con, sql, win)
        if parquet_path is None and output != "relation":
            if output == "arrow":
                return pa.concat_tables(
                    [PANEL_SCHEMA.empty_table(), *(c.arrow(win.end).drop_columns(["m"]) for c in parts)]
                )
            return to_pandas(parts, win.end, bound)
        if parquet_path is None:
            path = _scratch_directory() / "person_months.parquet"
            write_parquet((c.arrow(win.end) for c in parts), [path])
        elif partitions > 1:
            parts.close()  # one stream per bucket of persons instead
            path = Path(parquet_path)
            _write_partitions(sess, sql, win, partitions, path)
        else:
            path = Path(parquet_path)
            write_parquet((c.arrow(win.end) for c in parts), [path])
        if parquet_path is None:
            return sess.con.read_parquet(str(path))
        return path
    finally:
        if parts is not None:
            parts.close()  # stops the threads reading the stream before the connection is used again
        sess.close()
