"""Every check of raw input, the validation report, and the entry points that hand on only valid inputs.

The entry points are :func:`validate_inputs` (check only), :func:`read_inputs` (check, then register every input
as its canonical DuckDB view) and :func:`read_table` (one input); they live here rather than in ``read`` because
reading is validating: the canonical view is registered from the very expressions the checks ran on.

Each input is opened as a raw source and mapped onto canonical columns by :mod:`~finsam_effekt.io.read`; the
checks run on exactly those parsed values, so a value that validates is exactly the value the canonical view
returns (amounts capped with ``on_implausible: cap`` are capped in the view, and counted in a warning). The rules
are declared in :mod:`~finsam_effekt.io.rules` (row rules, plausible ranges, the register's known scale) and
:mod:`~finsam_effekt.io.persons` (pseudonyms across tables); this module runs them: one aggregate scan per table
plus a LIMIT-5 example query per problem found; nothing is loaded whole into pandas. Every problem
(:class:`~finsam_effekt.errors.Problem`) names the file, the column, the row count, up to five 1-based data row
numbers (never pseudonyms) and a fix.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from ..config import InputSpec, InputTable
from ..errors import ConfigError, InputError, Problem
from ..schema import TABLES, UNKNOWN
from .persons import PERSON_TABLES, anonymous_only, persons_in_population
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
from .rules import (
    MEDIAN_MIN_VALUES,
    Check,
    present,
    raw_text,
    row_checks,
    scale_checks,
    scale_problem_text,
    value,
)

#: The tables an analysis reads (``read_inputs(spec, required=ANALYSIS_TABLES)``): a spec without one of them is an
#: error naming it, and a header-only file of one of them is an error too (a run would report effects as if nobody
#: ever had a benefit). ``sus_volume`` and ``insats_costs`` may be absent or empty.
ANALYSIS_TABLES: tuple[str, ...] = (
    "sus_registrations",
    "population",
    "benefit_spells",
    "social_assistance",
    "earnings",
)
_WHAT = {
    "sus_registrations": "the SUS extract (registrations in insatser)",
    "population": "the population register extract (every resident, with sex, birth year, kommun)",
    "benefit_spells": "the MiDAS extract of paid benefit spells",
    "social_assistance": "the extract of ekonomiskt bistånd per person and month",
    "earnings": "the extract of monthly earnings",
}


def _parsed_select(exprs: list[ColumnExpr], source: str, with_row: bool) -> str:
    cols = [f"{e.value} AS {value(e.name)}, {e.raw_present} AS {present(e.name)}" for e in exprs]
    cols += [f"{e.text} AS {raw_text(e.name)}" for e in exprs if e.text is not None]
    if with_row:
        cols.insert(0, "__row")
    return f"SELECT {', '.join(cols)} FROM {sql_ident(source)}"


def _unknown_codes(con: duckdb.DuckDBPyConnection, parsed: str, check: Check, kind: str) -> list[str]:
    """Up to five distinct unknown codes (codes are not person data, so they may be shown)."""
    v = value(check.column or "")
    allowed = "[" + ", ".join(sql_literal(c) for c in check.codes) + "]"
    if kind == "codeset":
        sql = (f"SELECT DISTINCT TRIM(x) AS c FROM (SELECT unnest(string_split({v}, ';')) AS x FROM ({parsed})) "
               f"WHERE NOT list_contains({allowed}, TRIM(x)) ORDER BY c LIMIT 5")  # fmt: skip
    else:
        sql = f"SELECT DISTINCT {v} AS c FROM ({parsed}) WHERE {check.condition} ORDER BY c LIMIT 5"
    return [r[0] for r in con.execute(sql).fetchall()]


def _capped(exprs: list[ColumnExpr], caps: dict[str, tuple[float, float]]) -> list[ColumnExpr]:
    """The expressions with the values of ``caps``' columns capped to their range (``on_implausible: cap``)."""
    out = []
    for e in exprs:
        if e.name in caps:
            lo, hi = caps[e.name]
            v = f"({e.value})"
            e = ColumnExpr(e.name, e.raw_present, f"CASE WHEN isfinite({v}) THEN least(greatest({v}, {lo}), {hi}) "
                           f"ELSE {v} END", e.text)  # fmt: skip
        out.append(e)
    return out


def _validate_source(
    con: duckdb.DuckDBPyConnection, src: RawSource, t: InputTable, today: date | None = None
) -> tuple[int | None, list[Problem], list[ColumnExpr] | None]:
    """Row count, problems and canonical expressions of one registered source (None when unreadable)."""
    table = src.table
    mapping, problems = column_mapping(src, t)
    if any(p.severity == "error" for p in problems):
        rows = con.execute(f"SELECT count(*) FROM {sql_ident(src.relation)}").fetchone()[0]
        return rows, problems, None
    exprs = canonical_exprs(src, t, mapping)
    checks = row_checks(table, t, mapping, {e.name for e in exprs if e.text is not None}, today)
    scales = scale_checks(table, t, mapping)
    parsed = _parsed_select(exprs, src.relation, with_row=False)
    spec = TABLES[table]
    keyed = bool(spec.key) and all(k in mapping for k in spec.key)
    # one scan: row count, every check's count, the counts of the scale checks and (keyed tables) a 64-bit hash
    # screen for duplicate keys
    aggs = ["count(*)"] + [f"count_if({c.condition})" for c in checks]
    aggs += [agg for sc in scales for agg in sc.aggregates]
    if keyed:
        aggs.append(f"count(DISTINCT hash({', '.join(value(k) for k in spec.key)}))")
    result = con.execute(f"SELECT {', '.join(aggs)} FROM ({parsed})").fetchone()
    n_rows, counts = result[0], result[1 : 1 + len(checks)]
    scale_counts = result[1 + len(checks) : 1 + len(checks) + 3 * len(scales)]
    parsed_rows = _parsed_select(exprs, src.rows_relation, with_row=True)
    caps: dict[str, tuple[float, float]] = {}
    flagged: set[str] = set()  # columns whose thousands separators already explain a wrong scale
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
            if UNKNOWN in check.codes:
                hint += ' (empty cells are the agency code "")'
            if any("Ã" in c for c in found):
                hint += "; the codes look like UTF-8 text read as Latin-1, so check `encoding`"
        if check.cap is not None:
            caps[check.column] = check.cap
        elif check.thousands:
            flagged.add(check.column)
        problems.append(Problem(table, src.file, check.column, message, n, rows, hint, check.severity))
    for i, sc in enumerate(scales):
        # count_if over NULLs only is NULL, not 0
        n_values, below, above = (x or 0 for x in scale_counts[3 * i : 3 * i + 3])
        if sc.column in flagged or n_values < MEDIAN_MIN_VALUES or max(below, above) <= n_values / 2:
            continue
        median = con.execute(f"SELECT {sc.median} FROM ({parsed})").fetchone()[0]
        message, hint = scale_problem_text(sc, median)
        problems.append(Problem(table, src.file, sc.column, message, hint=hint))
    if keyed and result[-1] != n_rows:
        problems.extend(_duplicate_keys(con, src, exprs))
    if n_rows == 0:
        severity = "error" if table in ANALYSIS_TABLES else "warning"
        hint = "Export the table again with its rows"
        if table in ANALYSIS_TABLES and table not in ("population", "sus_registrations"):
            hint += (f"; an analysis cannot tell a missing extract from nobody in {table}, so an empty file is "
                     "never read as 'none'")  # fmt: skip
        problems.append(Problem(table, src.file, None, "file has no data rows", severity=severity, hint=hint))
    return n_rows, problems, _capped(exprs, caps) if caps else exprs


def _duplicate_keys(con: duckdb.DuckDBPyConnection, src: RawSource, exprs: list[ColumnExpr]) -> list[Problem]:
    """Rows repeating an earlier row's key; called when the hash screen in :func:`_validate_source` saw fewer
    distinct keys than rows, confirmed here exactly.

    Rows identical in every canonical column are a warning (the later stages count them once, as
    ``panel.person_months`` documents); rows sharing a key with *different* values are an error (which one is
    right cannot be told).
    """
    spec = TABLES[src.table]
    keys = ", ".join(value(k) for k in spec.key)
    everything = ", ".join(value(e.name) for e in exprs)
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


def _missing_tables(spec: InputSpec, required: Iterable[str]) -> list[Problem]:
    """An error per required table the spec does not name."""
    out = []
    for name in required:
        if name not in spec.tables:
            needed = ", ".join(ANALYSIS_TABLES)
            out.append(Problem(name, "input spec", None, f"no `{name}` table: an analysis reads {needed}",
                               hint=f"Add `{name}:` under `tables:` with the `path` of {_WHAT.get(name, 'its file')} "
                               "(see configs/agency_inputs.yaml)"))  # fmt: skip
    return out


def _validate(
    spec: InputSpec, con: duckdb.DuckDBPyConnection, required: Iterable[str] = (), today: date | None = None
) -> ValidationReport:
    problems: list[Problem] = []
    rows: dict[str, int | None] = {}
    files: dict[str, str] = {}
    registered: dict[str, tuple[RawSource, list[ColumnExpr]]] = {}
    for name, t in spec.tables.items():
        files[name] = str(t.path)
        rows[name] = None
        src = None
        try:
            src = open_source(con, name, t)
            n, found, exprs = _validate_source(con, src, t, today)
        except SourceProblem as exc:
            problems.append(exc.problem)
            continue
        except duckdb.Error as exc:  # read errors surface lazily, at the first scan of a CSV
            read_path = Path(src.read_path) if src is not None else Path(t.path)
            problems.append(read_failure(name, read_path, t, detect_format(t), exc, file=str(t.path)))
            continue
        rows[name] = n
        problems.extend(found)
        if exprs is not None:
            register_canonical(con, name, src, exprs)
            registered[name] = (src, exprs)
    if "sus_registrations" in registered:
        p = anonymous_only(con, *registered["sus_registrations"])
        if p is not None:
            problems.append(p)
    if "population" in registered and rows.get("population"):
        for name in PERSON_TABLES:
            if name in registered:
                p = persons_in_population(con, *registered[name], spec.min_share_in_population)
                if p is not None:
                    problems.append(p)
    missing = _missing_tables(spec, required)
    for p in missing:
        files[p.table], rows[p.table] = "(not in the input spec)", None
    return ValidationReport(missing + problems, rows, files)


def validate_inputs(
    spec: InputSpec, con: duckdb.DuckDBPyConnection | None = None, *, required: Iterable[str] = ()
) -> ValidationReport:
    """Check every input of ``spec`` without changing any file; returns a :class:`ValidationReport`.

    Per table: the file exists and is not empty, can be decoded (a Latin-1 file read as UTF-8 is an error, never
    silently garbled; a UTF-16 file or a byte-order mark contradicting ``encoding`` says so), every required
    canonical column is present exactly once after the column mapping (a name the header repeats is an error),
    every value parses (dates with ``date_format``, months with ``month_format``, numbers with ``decimal``), codes
    are known after the code mapping, amounts are finite, not negative and within their plausible range, dates and
    months lie in the register era (:mod:`~finsam_effekt.io.rules`), the median of each amount column matches the
    register's known scale, ends are not before starts, extents lie in (0, 1], keys are unique
    (``schema.TABLES[...].key``), and the tables of :data:`ANALYSIS_TABLES` have rows. Across tables: SUS has person
    registrations, and the pseudonyms of SUS, ``benefit_spells``, ``social_assistance`` and ``earnings`` are found
    in ``population`` (an error below ``spec.min_share_in_population``, naming the likely cause; a warning
    counting the persons otherwise).

    ``required``: tables the spec must name (an error naming each missing one); :data:`ANALYSIS_TABLES` for an
    analysis, none for checking a few files.
    """
    con = con if con is not None else connect()
    return _validate(spec, con, required)


def read_inputs(
    spec: InputSpec,
    con: duckdb.DuckDBPyConnection | None = None,
    *,
    materialize_csv: bool = False,
    required: Iterable[str] = (),
) -> tuple[duckdb.DuckDBPyConnection, ValidationReport]:
    """Validate and register every input of ``spec`` as a canonical DuckDB view named after its table.

    Returns the connection (``con.table("benefit_spells")`` is the canonical table: text ``person_id``, DATE
    dates, ``YYYY-MM`` months, DOUBLE amounts) and the validation report (warnings only).

    ``materialize_csv=True`` parses each CSV input once more into a DuckDB table (compressed, columnar; spills to
    the connection's temp directory over its memory limit) instead of a view that re-parses the file at every
    query: worth it when later stages scan a large CSV several times.

    ``required``: tables the spec must name, e.g. :data:`ANALYSIS_TABLES` (the pipeline's); a missing one is an
    error naming it and the fix.

    Raises
    ------
    InputError
        When any input has an error (or a required table is missing); no view is usable then.
    """
    con = con if con is not None else connect()
    report = _validate(spec, con, required)
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
