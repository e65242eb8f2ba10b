"""The person-month försörjning panel, register-history covariates and horizon outcomes (domain note §3–5).

Every effect the package reports is a month-by-month contrast of försörjning. This module turns the canonical
register tables (``benefit_spells``, ``social_assistance``, ``earnings``, ``population``) into

* :func:`person_months` — the sparse person-month panel (``docs/tables.md``, "panel → person_months");
* :func:`densify` — the same panel made dense over given (person, month range) rows, censored months marked;
* :func:`history_features` — register-history covariates for (person, reference month) pairs, measured from the
  months before the reference month only (never from SUS);
* :func:`horizon_outcomes` and :func:`outcome_paths` — outcomes at horizons 3/6/12 and the monthly path around the
  reference month, with censored months marked (NaN), never filled with zeros.

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

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from . import months as _months
from .errors import InputError, Problem
from .schema import (
    BENEFIT_GROUPS,
    DEFAULT_SELF_SUPPORT_THRESHOLD_SEK,
    DEMOGRAPHIC_COLUMNS,
    FEATURE_COLUMNS,
    HISTORY_COLUMNS,
    HISTORY_WINDOWS,
    OUTCOMES,
    PANEL_COLUMNS,
    SPELL_GROUPS,
)
from .tables import Session, TableLike

_VALUE_COLUMNS: tuple[str, ...] = PANEL_COLUMNS[2:]

_REQUIRED = {
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


def _check_month(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        if len(value) != 7 or value[4] != "-" or not 1 <= int(value[5:7]) <= 12:
            raise ValueError
        return int(_months.to_index(value))
    except (ValueError, TypeError):
        raise InputError(f"{name} must be a month as 'YYYY-MM' text; got {value!r}.") from None


def _register(sess: Session, table: str, obj: TableLike, label: str | None = None) -> str:
    """Register an input of this module under a fresh view name, checking the columns this module needs."""
    return sess.register(table, obj, label, required=_REQUIRED[table])


def _check_spells(sess: Session, spells: str) -> int:
    """Reject unusable spells; return the smallest month index of ``from_date`` (for the month table)."""
    codes = ", ".join(f"'{c}'" for c in BENEFIT_GROUPS)
    row = sess.con.execute(
        f"""SELECT count(*) FILTER (WHERE CAST(benefit AS VARCHAR) NOT IN ({codes}) OR benefit IS NULL),
                   count(*) FILTER (WHERE extent IS NULL OR extent <= 0 OR extent > 1),
                   count(*) FILTER (WHERE CAST(to_date AS DATE) < CAST(from_date AS DATE)),
                   count(*) FILTER (WHERE person_id IS NULL OR from_date IS NULL OR amount_sek IS NULL),
                   min({_months.sql_date_index("CAST(from_date AS DATE)")})
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
    first = pd.to_datetime({"year": idx // 12, "month": idx % 12 + 1, "day": 1})
    last = first + pd.offsets.MonthEnd(0)
    frame = pd.DataFrame(
        {"m": idx, "f": first.dt.date, "l": last.dt.date, "nd": (last - first).dt.days.to_numpy() + 1}
    )
    src = sess.name("months_src")
    sess.con.register(src, frame)
    sess.con.execute(
        f"CREATE TEMP TABLE {name} AS SELECT m, CAST(f AS DATE) AS f, CAST(l AS DATE) AS l, nd FROM {src}"
    )
    return name


def _panel_query(
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
    end = _check_month(end_month, "end_month")
    start = _check_month(start_month, "start_month")
    if end is None:
        raise InputError("end_month (the last month of data, 'YYYY-MM') is required to build the panel.")
    if start is not None and start > end:
        raise InputError(f"start_month {start_month} is after end_month {end_month}.")
    sp = _register(sess, "benefit_spells", spells)
    if ("min_from", sp) not in sess.cache:
        sess.cache[("min_from", sp)] = _check_spells(sess, sp)
    min_from = sess.cache[("min_from", sp)]
    lo = start if start is not None else min(min_from if min_from is not None else end, end)
    if ("months", lo, end) not in sess.cache:
        sess.cache[("months", lo, end)] = _months_table(sess, lo, end)
    mt = sess.cache[("months", lo, end)]
    w0 = _months.first_day(lo).date().isoformat()
    w1 = _months.last_day(end).date().isoformat()
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
                   unnest(range({_months.sql_date_index("c0")}, {_months.sql_date_index("c1")} + 1)) AS m
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
        sa = _register(sess, "social_assistance", social_assistance)
        ctes.append(
            f"""sam AS (
            SELECT person_id, m, sum(a) AS social_assistance_sek FROM (
                SELECT person_id, {_months.sql_index("month")} AS m, a FROM (
                    SELECT DISTINCT CAST(person_id AS VARCHAR) AS person_id, CAST(month AS VARCHAR) AS month,
                           CAST(amount_sek AS DOUBLE) AS a FROM {sa} {pfilter}))
            WHERE m <= {end} {mfilter} GROUP BY person_id, m)"""
        )
        parts.append("sam")
    if earnings is not None:
        ea = _register(sess, "earnings", earnings)
        ctes.append(
            f"""eam AS (
            SELECT person_id, m, sum(a) AS earnings_sek FROM (
                SELECT person_id, {_months.sql_index("month")} AS m, a FROM (
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
        cens = _censor_cte(sess, population)
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
        SELECT agg.person_id, {_months.sql_text("agg.m")} AS month, {values},
               {sek_sum} + social_assistance_sek AS benefit_sek,
               CAST({ps} AS INTEGER) AS public_support,
               CAST(earnings_sek >= {float(threshold)!r} AND NOT {ps} AS INTEGER) AS self_support,
               agg.m AS m
        FROM agg {censor_join}
        WHERE ({nonzero}) {censor_where}"""
    )


def _censor_cte(sess: Session, population: TableLike) -> str:
    pop = _register(sess, "population_censoring", population, "cens_pop")
    return f"""cens AS (
        SELECT CAST(person_id AS VARCHAR) AS person_id,
               min(least({_months.sql_date_index("CAST(death_date AS DATE)")},
                         {_months.sql_date_index("CAST(emigration_date AS DATE)")})) AS cm
        FROM {pop} WHERE death_date IS NOT NULL OR emigration_date IS NOT NULL
        GROUP BY 1)"""


def _censor_view(sess: Session, population: TableLike) -> str:
    """A view ``(person_id, cm)``: each censored person's first censored month index."""
    name = sess.name("cens")
    sess.con.execute(
        f"CREATE OR REPLACE TEMP VIEW {name} AS WITH {_censor_cte(sess, population)} SELECT * FROM cens"
    )
    return name


def _check_threshold(threshold: float) -> float:
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
    threshold = _check_threshold(self_support_threshold)
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
                sql = _panel_query(
                    sess, spells, social_assistance, earnings, population, part=(i, partitions), **kw
                )
                sess.con.execute(
                    f"COPY (SELECT {cols} FROM ({sql})) TO '{out_dir / f'part-{i:04d}.parquet'}' "
                    "(FORMAT parquet, COMPRESSION zstd)"
                )
            return out_dir
        sql = _panel_query(sess, spells, social_assistance, earnings, population, **kw)
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


def _panel_source(
    sess: Session,
    persons: str,
    panel: TableLike | None,
    spells: TableLike | None,
    social_assistance: TableLike | None,
    earnings: TableLike | None,
    population: TableLike | None,
    end_month: str | None,
    start_month: str | None,
    threshold: float,
) -> str:
    """A view of the panel (with month index ``m``), precomputed or built from raw tables for ``persons`` only."""
    name = sess.name("panelm")
    if panel is not None:
        p = _register(sess, "person_months", panel)
        sess.con.execute(
            f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT *, {_months.sql_index('month')} AS m FROM {p}"
        )
    elif spells is not None:
        sql = _panel_query(
            sess,
            spells,
            social_assistance,
            earnings,
            population,
            end_month=end_month,
            start_month=start_month,
            threshold=threshold,
            persons=persons,
        )
        sess.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")
    else:
        raise InputError("pass either a precomputed panel (panel=...) or the raw tables (spells=..., ...).")
    return name


def _register_pairs(sess: Session, pairs: TableLike) -> tuple[str, str, pa.Table | pd.DataFrame]:
    """Register pairs with a row number ``_row`` (input order); return (pairs view, persons view, pairs)."""
    if isinstance(pairs, str | Path):
        pairs = duckdb.read_parquet(str(pairs)).to_arrow_table()
    if isinstance(pairs, duckdb.DuckDBPyRelation):
        pairs = pairs.to_arrow_table()
    if not isinstance(pairs, pd.DataFrame | pa.Table):
        raise InputError(
            f"pairs: expected a DataFrame, Arrow table or DuckDB relation; got {type(pairs).__name__}."
        )
    cols = list(pairs.columns) if isinstance(pairs, pd.DataFrame) else pairs.column_names
    missing = [c for c in _REQUIRED["pairs"] if c not in cols]
    if missing:
        raise InputError(f"pairs lack column(s) {', '.join(missing)}; they have {', '.join(map(str, cols))}.")
    n = len(pairs)

    def text(col: str) -> pa.Array | pa.ChunkedArray:
        if isinstance(pairs, pd.DataFrame):
            arr = (
                pa.array(pairs[col].to_numpy(dtype=object), from_pandas=True)
                if n
                else pa.array([], pa.string())
            )
        else:
            arr = pairs[col]
        try:
            return arr.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise InputError(f"pairs: column {col} must be text (got {arr.type}).") from None

    keys = pa.table(
        {
            "_row": pa.array(np.arange(n, dtype=np.int64)),
            "person_id": text("person_id"),
            "ref_month": text("ref_month"),
        }
    )
    raw = sess.name("pairs_raw")
    sess.con.register(raw, keys)
    bad = sess.con.execute(
        f"""SELECT count(*) FILTER (WHERE ref_month IS NULL OR NOT regexp_full_match(ref_month, '\\d{{4}}-(0[1-9]|1[0-2])')),
                   count(*) FILTER (WHERE person_id IS NULL)
            FROM {raw}"""
    ).fetchone()
    if bad[0] or bad[1]:
        raise InputError(
            f"pairs: {bad[0]} row(s) with a ref_month that is not 'YYYY-MM' text and {bad[1]} with an empty "
            "person_id."
        )
    view = sess.name("pairs")
    sess.con.execute(
        f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT _row, person_id, {_months.sql_index('ref_month')} AS u FROM {raw}"
    )
    persons = sess.name("persons")
    sess.con.execute(f"CREATE OR REPLACE TEMP VIEW {persons} AS SELECT DISTINCT person_id FROM {raw}")
    return view, persons, pairs


def _attach(pairs: pd.DataFrame | pa.Table, result: pa.Table, output: str, repeat: np.ndarray | None = None):
    """Input columns (rows repeated by ``repeat`` if given) followed by the ``result`` columns."""
    clash = [
        c
        for c in result.column_names
        if c in (pairs.columns if isinstance(pairs, pd.DataFrame) else pairs.column_names)
    ]
    if clash:
        raise InputError(f"pairs already have column(s) {', '.join(clash)}; drop or rename them first.")
    if isinstance(pairs, pd.DataFrame):
        out = pairs.iloc[repeat].reset_index(drop=True) if repeat is not None else pairs
        res = result.to_pandas()
        res.index = out.index
        out = pd.concat([out, res], axis=1)
        if output == "arrow":
            return pa.Table.from_pandas(out, preserve_index=False)
        return out
    base = pairs.take(pa.array(repeat)) if repeat is not None else pairs
    for c in result.column_names:
        base = base.append_column(c, result[c])
    return base if output == "arrow" else base.to_pandas()


def _check_output(output: str) -> None:
    if output not in ("pandas", "arrow"):
        raise InputError(f"output must be 'pandas' or 'arrow'; got {output!r}.")


def _unique(sess: Session, view: str, key: str, table: str) -> None:
    n, k = sess.con.execute(f"SELECT count(*), count(DISTINCT {key}) FROM {view}").fetchone()
    if n != k:
        raise InputError(f"{table} has {n - k} duplicate {key} value(s); it must have one row per {key}.")


def history_features(
    pairs: TableLike,
    panel: TableLike | None = None,
    population: TableLike | None = None,
    kommun_forbund: TableLike | None = None,
    *,
    spells: TableLike | None = None,
    social_assistance: TableLike | None = None,
    earnings: TableLike | None = None,
    end_month: str | None = None,
    start_month: str | None = None,
    self_support_threshold: float = DEFAULT_SELF_SUPPORT_THRESHOLD_SEK,
    work_lookback: int = 24,
    con: duckdb.DuckDBPyConnection | None = None,
    output: Literal["pandas", "arrow"] = "pandas",
) -> pd.DataFrame | pa.Table:
    """Register-history covariates at a reference month for (person, ``ref_month``) pairs.

    The same covariates are computed for treated persons at their start and for any number of candidate controls
    at any month, only from the registers (never from SUS), and only from months ``u−w .. u−1`` before the
    reference month ``u`` (month ``u`` itself is never used). With ``P(m)`` the panel row of month ``m`` (an
    implicit zero row when absent):

    * ``ps_months_w = #{m in u−w..u−1 : public_support(m) = 1}`` for w = 3, 12, 24;
    * ``days_{g}_w = Σ_{m in u−w..u−1} days_g(m)`` (nettodagar) for each spell group g and w = 3, 12, 24;
    * ``sa_months_w = #{m in u−w..u−1 : social_assistance_sek(m) > 0}`` for w = 12, 24;
    * ``benefit_sek_12 = Σ_{u−12..u−1} benefit_sek``; ``earnings_12 = Σ_{u−12..u−1} earnings_sek``;
    * ``work_months_12 = #{m in u−12..u−1 : earnings_sek(m) ≥ threshold}``;
    * ``months_since_work = u − max{m in u−L..u−1 : earnings_sek(m) ≥ threshold}`` (1 = worked last month), and
      ``L + 1`` when there is no such month within the look-back ``L = work_lookback`` (capped);
    * demographics at u from ``population``: ``age = year(u) − birth_year`` (age reached during the calendar year
      of u), ``sex``, ``education``, ``birth_region``, ``kommun`` (the register's kommun; the population table is
      not time-varying) and ``forbund_id`` = the förbund of that kommun in ``kommun_forbund`` (empty when the
      kommun is not there or no table is given). Without ``population`` the demographics are empty.

    Months before the first month of data count as zero (no activity). Death and emigration do not affect history
    (the persons were alive and resident before u by eligibility).

    Parameters
    ----------
    pairs
        Table with ``person_id``, ``ref_month`` (``YYYY-MM``) and any other columns (kept).
    panel
        A precomputed :func:`person_months` panel. Alternatively give the raw tables ``spells`` (+
        ``social_assistance``, ``earnings``, ``end_month``) and the panel is built for the pairs' persons only.
    population, kommun_forbund
        Optional canonical ``population`` and ``kommun_forbund`` (``kommun`` → ``forbund_id``) tables.

    Returns
    -------
    One row per input row, in input order: the input columns followed by :data:`FEATURE_COLUMNS`.

    References
    ----------
    Sianesi (2004) and Li, Propert & Rosenbaum (2001): covariates of risk-set matching are measured identically
    for treated and not-yet-treated persons, from the history before the reference month.
    """
    _check_output(output)
    threshold = _check_threshold(self_support_threshold)
    if work_lookback < 1:
        raise InputError(f"work_lookback must be at least 1 month; got {work_lookback}.")
    look = max(max(HISTORY_WINDOWS), int(work_lookback))
    sess = Session.open(con)
    try:
        pv, persons, pairs_t = _register_pairs(sess, pairs)
        pm = _panel_source(
            sess, persons, panel, spells, social_assistance, earnings, None, end_month, start_month, threshold
        )
        aggs = [
            f"count(*) FILTER (WHERE p.public_support = 1 AND p.m >= pr.u - {w}) AS ps_months_{w}"
            for w in HISTORY_WINDOWS
        ]
        aggs += [
            f"sum(p.days_{g}) FILTER (WHERE p.m >= pr.u - {w}) AS days_{g}_{w}"
            for g in SPELL_GROUPS
            for w in HISTORY_WINDOWS
        ]
        aggs += [
            f"count(*) FILTER (WHERE p.social_assistance_sek > 0 AND p.m >= pr.u - {w}) AS sa_months_{w}"
            for w in (12, 24)
        ]
        aggs += [
            "sum(p.benefit_sek) FILTER (WHERE p.m >= pr.u - 12) AS benefit_sek_12",
            "sum(p.earnings_sek) FILTER (WHERE p.m >= pr.u - 12) AS earnings_12",
            f"count(*) FILTER (WHERE p.earnings_sek >= {threshold!r} AND p.m >= pr.u - 12) AS work_months_12",
            f"max(p.m) FILTER (WHERE p.earnings_sek >= {threshold!r} AND p.m >= pr.u - {int(work_lookback)}) AS last_work",
        ]
        fill = []
        for c in HISTORY_COLUMNS[:-1]:
            kind = "BIGINT" if c.startswith(("ps_", "sa_", "work_")) else "DOUBLE"
            fill.append(f"CAST(coalesce(h.{c}, 0) AS {kind}) AS {c}")
        fill.append(
            f"CAST(coalesce(pr.u - h.last_work, {int(work_lookback) + 1}) AS BIGINT) AS months_since_work"
        )
        demo_join = ""
        if population is not None:
            pop = _register(sess, "population", population)
            _unique(sess, pop, "person_id", "population")
            demo = [
                "CAST(pr.u // 12 - CAST(pop.birth_year AS BIGINT) AS DOUBLE) AS age",
                "CAST(pop.sex AS VARCHAR) AS sex",
                "CAST(pop.education AS VARCHAR) AS education",
                "CAST(pop.birth_region AS VARCHAR) AS birth_region",
                "CAST(pop.kommun AS VARCHAR) AS kommun",
            ]
            demo_join = f"LEFT JOIN {pop} pop ON CAST(pop.person_id AS VARCHAR) = pr.person_id"
            if kommun_forbund is not None:
                kf = _register(sess, "kommun_forbund", kommun_forbund)
                _unique(sess, kf, "kommun", "kommun_forbund")
                demo.append("CAST(kf.forbund_id AS VARCHAR) AS forbund_id")
                demo_join += f" LEFT JOIN {kf} kf ON CAST(kf.kommun AS VARCHAR) = CAST(pop.kommun AS VARCHAR)"
            else:
                demo.append("CAST(NULL AS VARCHAR) AS forbund_id")
        else:
            demo = ["CAST(NULL AS DOUBLE) AS age"] + [
                f"CAST(NULL AS VARCHAR) AS {c}" for c in DEMOGRAPHIC_COLUMNS[1:]
            ]
        sql = f"""
            WITH h AS (
                SELECT pr._row, {", ".join(aggs)}
                FROM {pv} pr JOIN {pm} p ON p.person_id = pr.person_id AND p.m >= pr.u - {look} AND p.m < pr.u
                GROUP BY pr._row)
            SELECT {", ".join(fill)}, {", ".join(demo)}
            FROM {pv} pr LEFT JOIN h ON h._row = pr._row {demo_join}
            ORDER BY pr._row"""
        result = sess.con.sql(sql).to_arrow_table()
        return _attach(pairs_t, result, output)
    finally:
        sess.close()


def _censor_flag(end: int, start: int | None, month_expr: str, cm_expr: str | None) -> str:
    parts = [f"{month_expr} > {end}"]
    if start is not None:
        parts.append(f"{month_expr} < {start}")
    if cm_expr is not None:
        parts.append(f"({cm_expr} IS NOT NULL AND {month_expr} >= {cm_expr})")
    return "(" + " OR ".join(parts) + ")"


def _check_outcome_args(
    self_support_threshold: float, end_month: str | None, start_month: str | None, what: str
) -> tuple[float, int, int | None]:
    """Checked threshold and month indices of the end (required) and start of data, for outcome functions."""
    threshold = _check_threshold(self_support_threshold)
    end = _check_month(end_month, "end_month")
    start = _check_month(start_month, "start_month")
    if end is None:
        raise InputError(f"end_month (the last month of data, 'YYYY-MM') is required for {what}.")
    return threshold, end, start


def _pairs_and_panel(
    sess, pairs, panel, spells, social_assistance, earnings, population, end_month, start_month, threshold
) -> tuple[str, pa.Table | pd.DataFrame, str]:
    """Register the pairs and the panel restricted to their persons: (pairs view, pair keys, panel view)."""
    pv, persons, pairs_t = _register_pairs(sess, pairs)
    pm = _panel_source(
        sess,
        persons,
        panel,
        spells,
        social_assistance,
        earnings,
        population,
        end_month,
        start_month,
        threshold,
    )
    return pv, pairs_t, pm


def horizon_outcomes(
    pairs: TableLike,
    horizons: Sequence[int] = (3, 6, 12),
    panel: TableLike | None = None,
    population: TableLike | None = None,
    *,
    end_month: str,
    spells: TableLike | None = None,
    social_assistance: TableLike | None = None,
    earnings: TableLike | None = None,
    start_month: str | None = None,
    self_support_threshold: float = DEFAULT_SELF_SUPPORT_THRESHOLD_SEK,
    con: duckdb.DuckDBPyConnection | None = None,
    output: Literal["pandas", "arrow"] = "pandas",
) -> pd.DataFrame | pa.Table:
    """Outcomes at horizons ``k`` after the reference month: status in month u+k and cumulated over u+1..u+k.

    For every outcome ``o`` of ``schema.OUTCOMES`` and horizon ``k``:

    * ``{o}_m{k} = o(u + k)`` (0 when the panel has no row for that month: implicit zero);
    * ``{o}_cum{k} = Σ_{j=1..k} o(u + j)`` (for the binary outcomes: the number of months with status 1).

    Censoring: month ``m`` of a person is censored when ``m ≥ c`` (``c`` = the month of death or emigration,
    whichever is first, from ``population``) or ``m > end_month`` (past the end of data). A pair is censored at
    horizon ``k`` when any month of ``u+1 .. u+k`` is censored — since censoring runs from ``c`` on, exactly when
    ``u + k`` is censored — and then both ``{o}_m{k}`` and ``{o}_cum{k}`` are NaN (never zero).

    Parameters
    ----------
    pairs
        ``person_id``, ``ref_month`` and any other columns (kept).
    horizons
        Positive month offsets.
    panel, population
        Precomputed :func:`person_months` panel (or the raw tables via ``spells=...``), and the population table
        for death/emigration censoring (without it only the end of data censors).
    end_month
        Last month of data (required: the panel alone cannot tell a zero month from a month not yet observed).

    Returns
    -------
    One row per input row, in input order: input columns, then ``{o}_m{k}`` and ``{o}_cum{k}`` (float64).
    """
    _check_output(output)
    hs = [int(k) for k in horizons]
    if not hs or any(k < 1 for k in hs) or len(set(hs)) != len(hs):
        raise InputError(f"horizons must be distinct positive month counts; got {list(horizons)}.")
    threshold, end, start = _check_outcome_args(self_support_threshold, end_month, start_month, "outcomes")
    sess = Session.open(con)
    try:
        pv, pairs_t, pm = _pairs_and_panel(
            sess,
            pairs,
            panel,
            spells,
            social_assistance,
            earnings,
            population,
            end_month,
            start_month,
            threshold,
        )
        cm, cens_join = None, ""
        if population is not None:
            cm = "cens.cm"
            cens_join = f"LEFT JOIN {_censor_view(sess, population)} cens ON cens.person_id = pr.person_id"
        kmax = max(hs)
        aggs, outs = [], []
        for k in hs:
            flag = _censor_flag(end, start, f"(pr.u + {k})", cm)
            for o in OUTCOMES:
                aggs.append(f"sum(p.{o}) FILTER (WHERE p.m = pr.u + {k}) AS {o}_m{k}")
                aggs.append(f"sum(p.{o}) FILTER (WHERE p.m <= pr.u + {k}) AS {o}_cum{k}")
                for kind in ("m", "cum"):
                    outs.append(
                        f"CASE WHEN {flag} THEN CAST(NULL AS DOUBLE) ELSE CAST(coalesce(h.{o}_{kind}{k}, 0) AS DOUBLE) END"
                        f" AS {o}_{kind}{k}"
                    )
        h = f"""WITH h AS (
                SELECT pr._row, {", ".join(aggs)}
                FROM {pv} pr JOIN {pm} p ON p.person_id = pr.person_id AND p.m > pr.u AND p.m <= pr.u + {kmax}
                GROUP BY pr._row)"""
        sql = f"""{h}
            SELECT {", ".join(outs)}
            FROM {pv} pr LEFT JOIN h ON h._row = pr._row {cens_join}
            ORDER BY pr._row"""
        result = sess.con.sql(sql).to_arrow_table()
        return _attach(pairs_t, result, output)
    finally:
        sess.close()


def _dense_values(rows: str, pm: str, end: int | None, start: int | None, cens: str | None) -> str:
    """SQL: for ``rows(_row, _seq, person_id, m)`` the outcomes of month m (zeros filled, NaN when censored)."""
    cm = "cens.cm" if cens else None
    if end is not None:
        flag = _censor_flag(end, start, "q.m", cm)
    else:
        flag = f"({cm} IS NOT NULL AND q.m >= {cm})" if cm else "FALSE"
    vals = ", ".join(
        f"CASE WHEN {flag} THEN CAST(NULL AS DOUBLE) ELSE CAST(coalesce(p.{o}, 0) AS DOUBLE) END AS {o}"
        for o in _VALUE_COLUMNS
    )
    cens_join = f"LEFT JOIN {cens} cens ON cens.person_id = q.person_id" if cens else ""
    return f"""SELECT q._row, q._seq, {_months.sql_text("q.m")} AS month, {vals}, {flag} AS censored
        FROM {rows} q LEFT JOIN {pm} p ON p.person_id = q.person_id AND p.m = q.m {cens_join}
        ORDER BY q._row, q._seq"""


def outcome_paths(
    pairs: TableLike,
    window: tuple[int, int] = (-24, 24),
    panel: TableLike | None = None,
    population: TableLike | None = None,
    *,
    end_month: str,
    spells: TableLike | None = None,
    social_assistance: TableLike | None = None,
    earnings: TableLike | None = None,
    start_month: str | None = None,
    self_support_threshold: float = DEFAULT_SELF_SUPPORT_THRESHOLD_SEK,
    con: duckdb.DuckDBPyConnection | None = None,
    output: Literal["pandas", "arrow"] = "pandas",
) -> pd.DataFrame | pa.Table:
    """The monthly outcome path around the reference month, for plots and event studies.

    One row per pair × ``rel_month`` r in ``window[0] .. window[1]``: the input columns, ``rel_month``, ``month``
    (= u + r as ``YYYY-MM``), every outcome of ``schema.OUTCOMES`` in that month (implicit zeros filled) and
    ``censored``. A month is censored when it is at/after the person's death or emigration month (``population``),
    after ``end_month`` or, when ``start_month`` is given, before the first month of data; its outcome values are
    then NaN.

    Returns
    -------
    Rows ordered by input row, then ``rel_month``.
    """
    _check_output(output)
    lo, hi = (int(window[0]), int(window[1]))
    if lo > hi:
        raise InputError(f"window must be (first, last) relative months with first <= last; got {window}.")
    threshold, end, start = _check_outcome_args(
        self_support_threshold, end_month, start_month, "outcome paths"
    )
    sess = Session.open(con)
    try:
        pv, pairs_t, pm = _pairs_and_panel(
            sess,
            pairs,
            panel,
            spells,
            social_assistance,
            earnings,
            population,
            end_month,
            start_month,
            threshold,
        )
        cens = _censor_view(sess, population) if population is not None else None
        rows = sess.name("rows")
        sess.con.execute(
            f"""CREATE OR REPLACE TEMP VIEW {rows} AS
                SELECT pr._row, r.r AS _seq, pr.person_id, pr.u + r.r AS m
                FROM {pv} pr CROSS JOIN range({lo}, {hi + 1}) r(r)"""
        )
        sql = _dense_values(rows, pm, end, start, cens)
        res = sess.con.sql(sql).to_arrow_table()
        outcome_cols = ["month", *OUTCOMES, "censored"]
        result = pa.table({"rel_month": res["_seq"].cast(pa.int64()), **{c: res[c] for c in outcome_cols}})
        repeat = np.repeat(np.arange(len(pairs_t), dtype=np.int64), hi - lo + 1)
        return _attach(pairs_t, result, output, repeat)
    finally:
        sess.close()


def densify(
    panel: TableLike,
    ranges: TableLike,
    population: TableLike | None = None,
    *,
    end_month: str | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> pd.DataFrame:
    """Make the sparse panel dense over given (person, month range) rows.

    Parameters
    ----------
    panel
        A :func:`person_months` panel.
    ranges
        ``person_id``, ``first_month``, ``last_month`` (``YYYY-MM``, inclusive); one person may have several rows.
    population, end_month
        Optional: months at/after death or emigration, or after ``end_month``, are marked ``censored`` and their
        values are NaN (not zero).

    Returns
    -------
    ``person_id``, ``month`` and every value column of :data:`PANEL_COLUMNS` (implicit zeros filled), plus
    ``censored``; one row per range row × month, in range order then month order.
    """
    end = _check_month(end_month, "end_month")
    sess = Session.open(con)
    try:
        if isinstance(ranges, duckdb.DuckDBPyRelation):
            ranges = ranges.df()
        ranges_df = pd.DataFrame(ranges) if not isinstance(ranges, pa.Table) else ranges.to_pandas()
        missing = [c for c in ("person_id", "first_month", "last_month") if c not in ranges_df]
        if missing:
            raise InputError(f"ranges lack column(s) {', '.join(missing)}.")
        first = _months.to_index(ranges_df["first_month"]) if len(ranges_df) else np.zeros(0, np.int64)
        last = _months.to_index(ranges_df["last_month"]) if len(ranges_df) else np.zeros(0, np.int64)
        if np.any(last < first):
            raise InputError("ranges: last_month before first_month in some rows.")
        counts = (last - first + 1).astype(np.int64)
        row = np.repeat(np.arange(len(ranges_df), dtype=np.int64), counts)
        offs = np.arange(counts.sum(), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
        q = pa.table(
            {
                "_row": row,
                "_seq": offs,
                "person_id": pa.array(
                    np.asarray(ranges_df["person_id"]).astype(str)[row] if len(row) else [], pa.string()
                ),
                "m": np.asarray(first, dtype=np.int64)[row] + offs,
            }
        )
        rows = sess.name("dq")
        sess.con.register(rows, q)
        p = _register(sess, "person_months", panel)
        pm = sess.name("panelm")
        sess.con.execute(f"CREATE OR REPLACE TEMP VIEW {pm} AS SELECT *, {_months.sql_index('month')} AS m FROM {p}")
        cens = _censor_view(sess, population) if population is not None else None
        sql = _dense_values(rows, pm, end, None, cens)
        out = sess.con.sql(sql).df()
        out.insert(0, "person_id", q["person_id"].to_pandas())
        return out.drop(columns=["_row", "_seq"])[["person_id", "month", *_VALUE_COLUMNS, "censored"]]
    finally:
        sess.close()


__all__ = [
    "DEMOGRAPHIC_COLUMNS",
    "FEATURE_COLUMNS",
    "HISTORY_COLUMNS",
    "PANEL_COLUMNS",
    "densify",
    "history_features",
    "horizon_outcomes",
    "outcome_paths",
    "person_months",
]
