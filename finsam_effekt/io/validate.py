"""Every check of raw input, the validation report, and the entry points that hand on only valid inputs.

The entry points are :func:`validate_inputs` (check only), :func:`read_inputs` (check, then register every input
as its canonical DuckDB view) and :func:`read_table` (one input); they live here rather than in ``read`` because
reading is validating: the canonical view is registered from the very expressions the checks ran on.

Each input is opened as a raw source and mapped onto canonical columns by :mod:`~finsam_effekt.io.read`; the
checks here run on exactly those parsed values, so a value that validates is exactly the value the canonical view
returns. Validation is one aggregate scan per table plus a LIMIT-5 example query per problem found; nothing is
loaded whole into pandas. Every problem (:class:`~finsam_effekt.errors.Problem`) names the file, the column, the
row count, up to five 1-based data row numbers (never pseudonyms) and a fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from ..config import InputSpec, InputTable
from ..errors import ConfigError, InputError, Problem
from ..schema import TABLES
from .read import (
    ColumnExpr,
    RawSource,
    SourceProblem,
    canonical_exprs,
    column_mapping,
    connect,
    detect_format,
    materialize,
    open_source,
    read_failure,
    register_canonical,
    sql_ident,
    sql_literal,
)

#: Dates outside this range are reported as implausible (typos, placeholders such as 9999-12-31).
PLAUSIBLE_DATES: tuple[str, str] = ("1900-01-01", "2100-12-31")
#: Birth years outside this range are reported as implausible.
PLAUSIBLE_BIRTH_YEARS: tuple[int, int] = (1900, 2100)
#: Columns that may not be negative, and the word used for them in messages.
_NONNEGATIVE = {
    "amount_sek": "amount",
    "earnings_sek": "amount",
    "cost_sek": "amount",
    "participations": "count",
}
#: (table, start column, end column) pairs where the end may not precede the start.
_DATE_ORDER = (("sus_registrations", "start_date", "end_date"), ("benefit_spells", "from_date", "to_date"))


@dataclass
class _Check:
    column: str | None
    condition: str  # SQL over the parsed columns v__<name> / p__<name>; TRUE marks a bad row
    message: str
    hint: str
    severity: str = "error"
    codes: tuple[
        str, ...
    ] = ()  # for unknown-code checks: the allowed codes (examples are added to the message)


def _v(name: str) -> str:
    return sql_ident(f"v__{name}")


def _p(name: str) -> str:
    return sql_ident(f"p__{name}")


def _month_human(fmt: str) -> str:
    return fmt.replace("%Y", "YYYY").replace("%m", "MM")


def _checks(table: str, t: InputTable, mapping: dict[str, str]) -> list[_Check]:
    """Every row-level rule of one canonical table (domain note §3; issue 4's list of problem kinds)."""
    spec = TABLES[table]
    lo, hi = PLAUSIBLE_DATES
    checks: list[_Check] = []
    for col in spec.columns:
        if col.name not in mapping:
            continue
        v, p = _v(col.name), _p(col.name)
        if not col.nullable:
            if col.name == spec.person_column:
                checks.append(_Check(col.name, f"NOT {p}", "missing person_id",
                                     f"Every row of {table} must name a person; drop rows without one before reading "
                                     "or fix the export"))  # fmt: skip
            else:
                checks.append(_Check(col.name, f"NOT {p}", "missing value",
                                     "This column may not be empty; fill it in or drop the rows before reading"))  # fmt: skip
        if col.kind == "date":
            checks.append(_Check(col.name, f"{p} AND {v} IS NULL", f"cannot parse date with date_format {t.date_format!r}",
                                 "Set `date_format` for this table in the input spec to the file's format "
                                 "(e.g. '%Y%m%d' for 20200115)"))  # fmt: skip
            checks.append(_Check(col.name, f"{v} < DATE {sql_literal(lo)} OR {v} > DATE {sql_literal(hi)}",
                                 f"date outside the plausible range {lo} to {hi}",
                                 "Correct the dates; placeholders such as 9999-12-31 for open-ended spells must be "
                                 "left empty instead"))  # fmt: skip
        elif col.kind == "month":
            checks.append(_Check(col.name, f"{p} AND {v} IS NULL",
                                 f"value is not a month in {_month_human(t.month_format)} format",
                                 "Months are calendar months like 2020-01; set `month_format` in the input spec "
                                 "(e.g. '%Y%m' for 202001)"))  # fmt: skip
        elif col.kind in ("int", "float"):
            what = "value is not a whole number" if col.kind == "int" else "non-numeric value"
            checks.append(_Check(col.name, f"{p} AND {v} IS NULL", what,
                                 f"Check the decimal mark (`decimal: {t.decimal!r}` in the input spec) and remove "
                                 "text such as units, spaces or thousands separators"))  # fmt: skip
        elif col.kind == "code":
            allowed = "[" + ", ".join(sql_literal(c) for c in col.codes) + "]"
            checks.append(_Check(col.name, f"{v} IS NOT NULL AND NOT list_contains({allowed}, {v})",
                                 f"unknown {col.name} code", "", codes=col.codes))  # fmt: skip
        elif col.kind == "codeset":
            allowed = "[" + ", ".join(sql_literal(c) for c in col.codes) + "]"
            checks.append(_Check(col.name, f"{v} IS NOT NULL AND len(list_filter(string_split({v}, ';'), "
                                 f"x -> NOT list_contains({allowed}, TRIM(x)))) > 0",
                                 f"unknown {col.name} code", "", codes=col.codes))  # fmt: skip
        if col.name in _NONNEGATIVE:
            checks.append(_Check(col.name, f"{v} < 0", f"negative {_NONNEGATIVE[col.name]}",
                                 "Amounts are paid SEK and cannot be negative; net out reversed or corrected "
                                 "payments before reading"))  # fmt: skip
        if col.name == "extent":
            checks.append(_Check(col.name, f"{v} <= 0 OR {v} > 1", "extent outside (0, 1]",
                                 "Omfattning is a share of full time (1, 0.75, 0.5, 0.25); divide percentages by "
                                 "100"))  # fmt: skip
        if col.name == "kommun":
            checks.append(_Check(col.name, f"{v} IS NOT NULL AND NOT regexp_full_match({v}, '[0-9]{{4}}')",
                                 "kommun is not a 4-digit code",
                                 "Kommun codes have four digits (0180 Stockholm); a lost leading zero (180) means the "
                                 "column was read as a number by the exporting program: export it as text"))  # fmt: skip
        if col.name == "birth_year":
            blo, bhi = PLAUSIBLE_BIRTH_YEARS
            checks.append(_Check(col.name, f"{v} < {blo} OR {v} > {bhi}",
                                 f"birth_year outside the plausible range {blo} to {bhi}",
                                 "Birth years are four-digit calendar years"))  # fmt: skip
    for tab, start, end in _DATE_ORDER:
        if tab == table and start in mapping and end in mapping:
            checks.append(_Check(end, f"{_v(end)} < {_v(start)}", f"{end} before {start}",
                                 f"Check the two date columns (swapped, or a typo); {end} must be on or after "
                                 f"{start}"))  # fmt: skip
    if table == "sus_registrations" and "person_id" in mapping and "registration_kind" in mapping:
        checks.append(_Check("person_id", f"{_v('registration_kind')} = 'person' AND NOT {_p('person_id')}",
                             "person registration without person_id",
                             "Registrations without a pseudonym must have registration_kind 'anonymous'"))  # fmt: skip
    return checks


def _parsed_select(exprs: list[ColumnExpr], source: str, with_row: bool) -> str:
    cols = [f"{e.value} AS {_v(e.name)}, {e.raw_present} AS {_p(e.name)}" for e in exprs]
    if with_row:
        cols.insert(0, "__row")
    return f"SELECT {', '.join(cols)} FROM {sql_ident(source)}"


def _unknown_codes(con: duckdb.DuckDBPyConnection, parsed: str, check: _Check, kind: str) -> list[str]:
    """Up to five distinct unknown codes (codes are not person data, so they may be shown)."""
    v = _v(check.column or "")
    allowed = "[" + ", ".join(sql_literal(c) for c in check.codes) + "]"
    if kind == "codeset":
        sql = (f"SELECT DISTINCT TRIM(x) AS c FROM (SELECT unnest(string_split({v}, ';')) AS x FROM ({parsed})) "
               f"WHERE NOT list_contains({allowed}, TRIM(x)) ORDER BY c LIMIT 5")  # fmt: skip
    else:
        sql = f"SELECT DISTINCT {v} AS c FROM ({parsed}) WHERE {check.condition} ORDER BY c LIMIT 5"
    return [r[0] for r in con.execute(sql).fetchall()]


def _validate_source(
    con: duckdb.DuckDBPyConnection, src: RawSource, t: InputTable
) -> tuple[int | None, list[Problem], list[ColumnExpr] | None]:
    """Row count, problems and canonical expressions of one registered source (None when unreadable)."""
    table = src.table
    mapping, problems = column_mapping(src, t)
    if any(p.severity == "error" for p in problems):
        rows = con.execute(f"SELECT count(*) FROM {sql_ident(src.relation)}").fetchone()[0]
        return rows, problems, None
    exprs = canonical_exprs(src, t, mapping)
    checks = _checks(table, t, mapping)
    parsed = _parsed_select(exprs, src.relation, with_row=False)
    spec = TABLES[table]
    keyed = bool(spec.key) and all(k in mapping for k in spec.key)
    # one scan: row count, every check's count and (keyed tables) a 64-bit hash screen for duplicate keys
    aggs = ["count(*)"] + [f"count_if({c.condition})" for c in checks]
    if keyed:
        aggs.append(f"count(DISTINCT hash({', '.join(_v(k) for k in spec.key)}))")
    result = con.execute(f"SELECT {', '.join(aggs)} FROM ({parsed})").fetchone()
    n_rows, counts = result[0], result[1 : 1 + len(checks)]
    parsed_rows = _parsed_select(exprs, src.rows_relation, with_row=True)
    for check, n in zip(checks, counts, strict=True):
        if not n:
            continue
        rows = [r[0] for r in con.execute(
            f"SELECT __row FROM ({parsed_rows}) WHERE {check.condition} ORDER BY __row LIMIT 5").fetchall()]  # fmt: skip
        message, hint = check.message, check.hint
        if check.codes:
            kind = TABLES[table].column(check.column).kind
            found = _unknown_codes(con, parsed, check, kind)
            message = f"{message}(s) {', '.join(repr(c) for c in found)}"
            hint = (f"Allowed codes: {', '.join(check.codes)}. Map agency codes onto them under "
                    f"`codes: {{{check.column}: {{AGENCY_CODE: canonical}}}}` in the input spec")  # fmt: skip
            if any("Ã" in c for c in found):
                hint += "; the codes look like UTF-8 text read as Latin-1, so check `encoding`"
        problems.append(Problem(table, src.file, check.column, message, n, rows, hint, check.severity))
    if keyed and result[-1] != n_rows:
        problems.extend(_duplicate_keys(con, src, exprs))
    if n_rows == 0:
        severity = "error" if table in ("population", "sus_registrations") else "warning"
        problems.append(Problem(table, src.file, None, "file has no data rows", severity=severity,
                                hint="Export the table again with its rows"))  # fmt: skip
    return n_rows, problems, exprs


def _duplicate_keys(con: duckdb.DuckDBPyConnection, src: RawSource, exprs: list[ColumnExpr]) -> list[Problem]:
    """Rows repeating an earlier row's key; called when the hash screen in :func:`_validate_source` saw fewer
    distinct keys than rows, confirmed here exactly.

    Rows identical in every canonical column are a warning (the later stages count them once, as
    ``panel.person_months`` documents); rows sharing a key with *different* values are an error (which one is
    right cannot be told).
    """
    spec = TABLES[src.table]
    keys = ", ".join(_v(k) for k in spec.key)
    everything = ", ".join(_v(e.name) for e in exprs)
    parsed_rows = _parsed_select(exprs, src.rows_relation, with_row=True)
    ranked = (
        f"SELECT __row, row_number() OVER (PARTITION BY {keys} ORDER BY __row) AS rn_key, "
        f"row_number() OVER (PARTITION BY {everything} ORDER BY __row) AS rn_all FROM ({parsed_rows})"
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE __dups AS SELECT * FROM ({ranked}) WHERE rn_key > 1")
    kinds = (
        ("rn_all > 1", "identical duplicate rows (counted once)", "warning",
         "Identical rows (e.g. retroactive corrections written twice) are counted once by the later stages; "
         "remove them from the extract to silence this warning"),
        ("rn_all = 1", f"more than one row per ({', '.join(spec.key)}) with different values", "error",
         "Keep one row per key (e.g. sum the amounts of one person and month) before reading"),
    )  # fmt: skip
    out = []
    for cond, message, severity, hint in kinds:
        n = con.execute(f"SELECT count(*) FROM __dups WHERE {cond}").fetchone()[0]
        if n:
            rows = [
                r[0]
                for r in con.execute(
                    f"SELECT __row FROM __dups WHERE {cond} ORDER BY __row LIMIT 5"
                ).fetchall()
            ]
            out.append(
                Problem(src.table, src.file, ", ".join(spec.key), message, int(n), rows, hint, severity)
            )
    con.execute("DROP TABLE __dups")
    return out


@dataclass
class ValidationReport:
    """What :func:`validate_inputs` found: every problem, and the data rows per table.

    ``problems`` holds :class:`~finsam_effekt.errors.Problem` objects (``severity`` ``error`` or ``warning``); row
    numbers in them are 1-based data rows of the file (the header is not counted), never pseudonyms.
    """

    problems: list[Problem]
    rows: dict[str, int | None]
    files: dict[str, str]

    @property
    def ok(self) -> bool:
        """True when no problem is an error (warnings allowed): every input is usable."""
        return not self.errors

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def table_frame(self) -> pd.DataFrame:
        """One row per input table: ``table``, ``file``, ``rows``, ``errors``, ``warnings``."""
        out = []
        for name in self.files:
            mine = [p for p in self.problems if p.table == name]
            out.append(
                {
                    "table": name,
                    "file": self.files[name],
                    "rows": self.rows.get(name),
                    "errors": sum(p.severity == "error" for p in mine),
                    "warnings": sum(p.severity == "warning" for p in mine),
                }
            )
        return pd.DataFrame(out, columns=["table", "file", "rows", "errors", "warnings"])

    def to_frame(self) -> pd.DataFrame:
        """One row per problem: ``table``, ``file``, ``column``, ``severity``, ``message``, ``n_rows``,
        ``example_rows`` (text), ``hint``, ``text`` (the full message)."""
        cols = ["table", "file", "column", "severity", "message", "n_rows", "example_rows", "hint", "text"]
        return pd.DataFrame(
            [
                {
                    "table": p.table,
                    "file": p.file,
                    "column": p.column,
                    "severity": p.severity,
                    "message": p.message,
                    "n_rows": p.n_rows,
                    "example_rows": ", ".join(str(r) for r in p.example_rows),
                    "hint": p.hint,
                    "text": str(p),
                }
                for p in self.problems
            ],
            columns=cols,
        )

    def summary(self) -> str:
        """A plain-text report: one line per table, then every problem."""
        tf = self.table_frame()
        lines = [f"{'table':<20} {'rows':>12} {'errors':>7} {'warnings':>9}"]
        for r in tf.itertuples():
            rows = "-" if r.rows is None or pd.isna(r.rows) else f"{int(r.rows):,}"
            lines.append(f"{r.table:<20} {rows:>12} {r.errors:>7} {r.warnings:>9}")
        if self.problems:
            lines.append("")
            lines.extend(f"{p.severity.upper()}: {p}" for p in self.problems)
        lines.append("")
        lines.append(
            "all inputs usable" if self.ok else f"{len(self.errors)} error(s): inputs are not usable"
        )
        return "\n".join(lines)

    def raise_if_errors(self) -> None:
        """Raise :class:`~finsam_effekt.errors.InputError` listing every error (warnings ride along)."""
        if self.ok:
            return
        text = "\n".join(f"- {p}" for p in self.errors)
        raise InputError(
            f"{len(self.errors)} problem(s) make the input data unusable:\n{text}", self.problems
        )


def _persons_missing_from_population(
    con: duckdb.DuckDBPyConnection, name: str, src: RawSource, exprs: list[ColumnExpr]
) -> Problem | None:
    pid = next(e for e in exprs if e.name == "person_id")
    missing = (
        f"SELECT s.pid FROM (SELECT {pid.value} AS pid FROM {sql_ident(src.relation)}) s "
        "ANTI JOIN (SELECT person_id FROM population) p ON p.person_id = s.pid WHERE s.pid IS NOT NULL"
    )
    n_rows = con.execute(f"SELECT count(*) FROM ({missing})").fetchone()[0]
    if not n_rows:
        return None
    n_persons = con.execute(f"SELECT count(DISTINCT pid) FROM ({missing})").fetchone()[0]
    rows = [r[0] for r in con.execute(
        f"SELECT __row FROM (SELECT __row, {pid.value} AS pid FROM {sql_ident(src.rows_relation)}) s WHERE pid IS NOT NULL "
        f"AND NOT EXISTS (SELECT 1 FROM population p WHERE p.person_id = s.pid) ORDER BY __row LIMIT 5").fetchall()]  # fmt: skip
    return Problem(name, src.file, "person_id", f"{n_persons} person(s) not found in population", n_rows, rows,
                   "Their rows are kept but they have no background data; check that all files come from the same "
                   "extract", severity="warning")  # fmt: skip


def _validate(spec: InputSpec, con: duckdb.DuckDBPyConnection) -> ValidationReport:
    problems: list[Problem] = []
    rows: dict[str, int | None] = {}
    files: dict[str, str] = {}
    registered: dict[str, tuple[RawSource, list[ColumnExpr]]] = {}
    for name, t in spec.tables.items():
        files[name] = str(t.path)
        rows[name] = None
        try:
            src = open_source(con, name, t)
            n, found, exprs = _validate_source(con, src, t)
        except SourceProblem as exc:
            problems.append(exc.problem)
            continue
        except duckdb.Error as exc:  # read errors surface lazily, at the first scan of a CSV
            problems.append(read_failure(name, Path(t.path), t, detect_format(t), exc))
            continue
        rows[name] = n
        problems.extend(found)
        if exprs is not None:
            register_canonical(con, name, src, exprs)
            registered[name] = (src, exprs)
    if "population" in registered:
        for name in ("benefit_spells", "social_assistance", "earnings"):
            if name in registered:
                p = _persons_missing_from_population(con, name, *registered[name])
                if p is not None:
                    problems.append(p)
    return ValidationReport(problems, rows, files)


def validate_inputs(spec: InputSpec, con: duckdb.DuckDBPyConnection | None = None) -> ValidationReport:
    """Check every input of ``spec`` without changing any file; returns a :class:`ValidationReport`.

    Per table: the file exists and is not empty, can be decoded (a Latin-1 file read as UTF-8 is an error, never
    silently garbled), every required canonical column is present exactly once after the column mapping, every
    value parses (dates with ``date_format``, months with ``month_format``, numbers with ``decimal``), codes are
    known after the code mapping, dates lie in :data:`PLAUSIBLE_DATES`, ends are not before starts, extents lie in
    (0, 1], amounts are not negative, keys are unique (``schema.TABLES[...].key``). Across tables: persons in
    ``benefit_spells``, ``social_assistance`` and ``earnings`` missing from ``population`` (a warning).
    """
    con = con if con is not None else connect()
    return _validate(spec, con)


def read_inputs(
    spec: InputSpec, con: duckdb.DuckDBPyConnection | None = None, *, materialize_csv: bool = False
) -> tuple[duckdb.DuckDBPyConnection, ValidationReport]:
    """Validate and register every input of ``spec`` as a canonical DuckDB view named after its table.

    Returns the connection (``con.table("benefit_spells")`` is the canonical table: text ``person_id``, DATE
    dates, ``YYYY-MM`` months, DOUBLE amounts) and the validation report (warnings only).

    ``materialize_csv=True`` parses each CSV input once more into a DuckDB table (compressed, columnar; spills to
    the connection's temp directory over its memory limit) instead of a view that re-parses the file at every
    query: worth it when later stages scan a large CSV several times.

    Raises
    ------
    InputError
        When any input has an error; no view is usable then.
    """
    con = con if con is not None else connect()
    report = _validate(spec, con)
    report.raise_if_errors()
    if materialize_csv:
        for name, t in spec.tables.items():
            if detect_format(t) == "csv":
                materialize(con, name)
    return con, report


def read_table(
    name: str, table: InputTable, con: duckdb.DuckDBPyConnection | None = None
) -> duckdb.DuckDBPyRelation:
    """Validate one input and return its canonical table as a DuckDB relation (a view named ``name``)."""
    if name not in TABLES:
        raise ConfigError(f"unknown table {name!r}; known tables are {', '.join(TABLES)}")
    con = con if con is not None else connect()
    report = _validate(InputSpec(tables={name: table}), con)
    report.raise_if_errors()
    return con.table(name)
