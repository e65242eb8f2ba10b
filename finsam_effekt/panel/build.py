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

from pathlib import Path
from typing import Literal

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from .. import months
from ..errors import InputError, Problem
from ..schema import (
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


def _check_spells(sess: Session, spells: str) -> int:
    """Reject unusable spells; return the smallest month index of ``from_date`` (for the month table)."""
    codes = ", ".join(f"'{c}'" for c in BENEFIT_GROUPS)
    row = sess.con.execute(
        f"""SELECT count(*) FILTER (WHERE CAST(benefit AS VARCHAR) NOT IN ({codes}) OR benefit IS NULL),
                   count(*) FILTER (WHERE extent IS NULL OR extent <= 0 OR extent > 1),
                   count(*) FILTER (WHERE CAST(to_date AS DATE) < CAST(from_date AS DATE)),
                   count(*) FILTER (WHERE person_id IS NULL OR from_date IS NULL OR amount_sek IS NULL),
                   min({months.sql_date_index("CAST(from_date AS DATE)")})
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
    return row[4]


def _months_table(sess: Session, lo: int, hi: int) -> str:
    """A small table of month index -> first day, last day, days in month for ``lo..hi``."""
    name = sess.name("months")
    idx = np.arange(lo, hi + 1, dtype=np.int64)
    first = pd.Series([months.first_day(i) for i in idx.tolist()], dtype="datetime64[ns]")
    last = pd.Series([months.last_day(i) for i in idx.tolist()], dtype="datetime64[ns]")
    frame = pd.DataFrame(
        {"m": idx, "f": first.dt.date, "l": last.dt.date, "nd": (last - first).dt.days.to_numpy() + 1}
    )
    src = sess.name("months_src")
    sess.con.register(src, frame)
    sess.con.execute(
        f"CREATE TEMP TABLE {name} AS SELECT m, CAST(f AS DATE) AS f, CAST(l AS DATE) AS l, nd FROM {src}"
    )
    return name


def panel_query(
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
    part: tuple[int, int] | None = None,
) -> str:
    """SQL of the panel with an extra integer month index ``m`` (internal form).

    ``persons`` restricts to the persons of that view; ``part = (i, P)`` to persons with ``hash(person_id) % P = i``.
    """
    end = check_month(end_month, "end_month")
    start = check_month(start_month, "start_month")
    if end is None:
        raise InputError("end_month (the last month of data, 'YYYY-MM') is required to build the panel.")
    if start is not None and start > end:
        raise InputError(f"start_month {start_month} is after end_month {end_month}.")
    sp = register_input(sess, "benefit_spells", spells)
    if ("min_from", sp) not in sess.cache:
        sess.cache[("min_from", sp)] = _check_spells(sess, sp)
    min_from = sess.cache[("min_from", sp)]
    lo = start if start is not None else min(min_from if min_from is not None else end, end)
    if ("months", lo, end) not in sess.cache:
        sess.cache[("months", lo, end)] = _months_table(sess, lo, end)
    mt = sess.cache[("months", lo, end)]
    w0 = months.first_day(lo).date().isoformat()
    w1 = months.last_day(end).date().isoformat()
    mfilter = f"AND m >= {start}" if start is not None else ""
    conds = [f"CAST(person_id AS VARCHAR) IN (SELECT person_id FROM {persons})"] if persons else []
    if part is not None:
        conds.append(f"hash(CAST(person_id AS VARCHAR)) % {int(part[1])} = {int(part[0])}")
    pfilter = ("WHERE " + " AND ".join(conds)) if conds else ""

    group_case = "CASE benefit " + " ".join(
        f"WHEN '{code}' THEN {SPELL_GROUPS.index(g)}" for code, g in BENEFIT_GROUPS.items()
    )
    group_case += " END"
    days_cols = ",\n".join(
        f"least(coalesce(sum(days * extent) FILTER (WHERE g = {i}), 0), any_value(nd)) AS days_{g}"
        for i, g in enumerate(SPELL_GROUPS)
    )
    sek_cols = ",\n".join(
        f"coalesce(sum(days * per_day) FILTER (WHERE g = {i}), 0) AS sek_{g}"
        for i, g in enumerate(SPELL_GROUPS)
    )
    ctes = [
        f"""sp AS (
            SELECT DISTINCT CAST(person_id AS VARCHAR) AS person_id, CAST(benefit AS VARCHAR) AS benefit,
                   CAST(from_date AS DATE) AS from_date, CAST(to_date AS DATE) AS to_date,
                   CAST(extent AS DOUBLE) AS extent, CAST(amount_sek AS DOUBLE) AS amount_sek
            FROM {sp} {pfilter})""",
        f"""sp1 AS (
            SELECT person_id, {group_case} AS g, extent,
                   amount_sek / (coalesce(to_date, DATE '{w1}') - from_date + 1) AS per_day,
                   greatest(from_date, DATE '{w0}') AS c0, least(coalesce(to_date, DATE '{w1}'), DATE '{w1}') AS c1
            FROM sp)""",
        f"""sm AS (
            SELECT person_id, g, extent, per_day, c0, c1,
                   unnest(range({months.sql_date_index("c0")}, {months.sql_date_index("c1")} + 1)) AS m
            FROM sp1 WHERE c0 <= c1)""",
        f"""smd AS (
            SELECT sm.person_id, sm.m, sm.g, sm.extent, sm.per_day, mt.nd,
                   least(sm.c1, mt.l) - greatest(sm.c0, mt.f) + 1 AS days
            FROM sm JOIN {mt} mt ON mt.m = sm.m)""",
        f"""spm AS (
            SELECT person_id, m,
            {days_cols},
            {sek_cols}
            FROM smd GROUP BY person_id, m)""",
    ]
    parts = ["spm"]
    if social_assistance is not None:
        sa = register_input(sess, "social_assistance", social_assistance)
        ctes.append(
            f"""sam AS (
            SELECT person_id, m, sum(a) AS social_assistance_sek FROM (
                SELECT person_id, {months.sql_index("month")} AS m, a FROM (
                    SELECT DISTINCT CAST(person_id AS VARCHAR) AS person_id, CAST(month AS VARCHAR) AS month,
                           CAST(amount_sek AS DOUBLE) AS a FROM {sa} {pfilter}))
            WHERE m <= {end} {mfilter} GROUP BY person_id, m)"""
        )
        parts.append("sam")
    if earnings is not None:
        ea = register_input(sess, "earnings", earnings)
        ctes.append(
            f"""eam AS (
            SELECT person_id, m, sum(a) AS earnings_sek FROM (
                SELECT person_id, {months.sql_index("month")} AS m, a FROM (
                    SELECT DISTINCT CAST(person_id AS VARCHAR) AS person_id, CAST(month AS VARCHAR) AS month,
                           CAST(earnings_sek AS DOUBLE) AS a FROM {ea} {pfilter}))
            WHERE m <= {end} {mfilter} GROUP BY person_id, m)"""
        )
        parts.append("eam")
    # Each part is unique on (person_id, m): a full outer join merges them (cheaper than union + aggregate).
    cols = [
        *(
            f"coalesce({c}, 0) AS {c}"
            for c in (*(f"days_{g}" for g in SPELL_GROUPS), *(f"sek_{g}" for g in SPELL_GROUPS))
        ),
        "coalesce(social_assistance_sek, 0) AS social_assistance_sek"
        if social_assistance is not None
        else "0.0 AS social_assistance_sek",
        "coalesce(earnings_sek, 0) AS earnings_sek" if earnings is not None else "0.0 AS earnings_sek",
    ]
    joined = " FULL JOIN ".join(parts)
    if len(parts) > 1:
        joined = parts[0] + "".join(f" FULL JOIN {x} USING (person_id, m)" for x in parts[1:])
    ctes.append(f"agg AS (SELECT person_id, m, {', '.join(cols)} FROM {joined})")
    censor_join, censor_where = "", ""
    if population is not None:
        cens = censor_cte(sess, population)
        ctes.append(cens)
        censor_join = "LEFT JOIN cens USING (person_id)"
        censor_where = "AND (cens.cm IS NULL OR agg.m < cens.cm)"
    days_sum = " + ".join(f"days_{g}" for g in SPELL_GROUPS)
    sek_sum = " + ".join(f"sek_{g}" for g in SPELL_GROUPS)
    values = ", ".join(
        c
        for c in (
            *(f"days_{g}" for g in SPELL_GROUPS),
            *(f"sek_{g}" for g in SPELL_GROUPS),
            "social_assistance_sek",
            "earnings_sek",
        )
    )
    nonzero = " OR ".join(f"{c} <> 0" for c in values.split(", "))
    ps = f"({days_sum} > 0 OR ({sek_sum}) > 0 OR social_assistance_sek > 0)"
    return (
        "WITH "
        + ",\n".join(ctes)
        + f"""
        SELECT agg.person_id, {months.sql_text("agg.m")} AS month, {values},
               {sek_sum} + social_assistance_sek AS benefit_sek,
               CAST({ps} AS INTEGER) AS public_support,
               CAST(earnings_sek >= {float(threshold)!r} AND NOT {ps} AS INTEGER) AS self_support,
               agg.m AS m
        FROM agg {censor_join}
        WHERE ({nonzero}) {censor_where}"""
    )


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
        DuckDB connection to compute in (default: a private in-memory one).
    output
        ``"pandas"`` (sorted by person and month), ``"arrow"`` (sorted) or ``"relation"`` (a lazy, unsorted DuckDB
        relation on ``con``; ``con`` is then required and the inputs must stay alive while it is used).
    parquet_path
        If given, the panel is written there as Parquet (unsorted, national scale) and the path is returned.
    partitions
        With ``parquet_path``: build the panel in this many parts by ``hash(person_id) % partitions`` (each part
        is a complete set of persons), written as ``part-NNNN.parquet`` into the directory ``parquet_path``, so
        that each part's aggregation fits in memory instead of spilling (national scale). Every reader of this
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
    cols = ", ".join(PANEL_COLUMNS)
    try:
        kw = dict(end_month=end_month, start_month=start_month, threshold=threshold)
        if partitions > 1:
            out_dir = Path(parquet_path)
            out_dir.mkdir(parents=True, exist_ok=True)
            for i in range(partitions):
                sql = panel_query(
                    sess, spells, social_assistance, earnings, population, part=(i, partitions), **kw
                )
                sess.con.execute(
                    f"COPY (SELECT {cols} FROM ({sql})) TO '{out_dir / f'part-{i:04d}.parquet'}' "
                    "(FORMAT parquet, COMPRESSION zstd)"
                )
            return out_dir
        sql = panel_query(sess, spells, social_assistance, earnings, population, **kw)
        if parquet_path is not None:
            path = Path(parquet_path)
            sess.con.execute(
                f"COPY (SELECT {cols} FROM ({sql})) TO '{path}' (FORMAT parquet, COMPRESSION zstd)"
            )
            return path
        if output == "relation":
            sess.names.clear()  # the relation reads the registered inputs lazily: keep them
            return sess.con.sql(f"SELECT {cols} FROM ({sql})")
        rel = sess.con.sql(f"SELECT {cols} FROM ({sql}) ORDER BY person_id, m")
        if output == "arrow":
            return rel.to_arrow_table()
        return _panel_dtypes(rel.df())
    finally:
        if output != "relation" or parquet_path is not None:
            sess.close()


def _panel_dtypes(df: pd.DataFrame) -> pd.DataFrame:
    for c in ("public_support", "self_support"):
        if c in df:
            df[c] = df[c].astype("int64")
    return df
