"""Input files as DuckDB relations: every format registered as a raw source, its columns and codes mapped.

Nothing is read whole into pandas: CSV goes through DuckDB's ``read_csv`` (text columns, then parsed with the
spec's encoding, separator, decimal mark, date and month formats; encodings DuckDB lacks, e.g. cp1252, via a
temporary UTF-8 copy), Parquet files or directories of parts through ``read_parquet``, SAS (``.sas7bdat``,
``.xpt``), SPSS and Stata are streamed in chunks with pyreadstat into a DuckDB table. Each input first becomes a
*raw* relation (:class:`RawSource`: agency column names, text for CSV, native types otherwise); one SQL expression
per canonical column (:class:`ColumnExpr`) maps a raw value onto the canonical type and code (NULL when it cannot
be parsed). :mod:`~finsam_effekt.io.validate` checks the parsed values and :func:`register_canonical` makes them the
view named after the canonical table: text ``person_id``, ``DATE`` dates, ``YYYY-MM`` months, ``DOUBLE`` amounts,
codes mapped. Input files are only ever read.
"""

from __future__ import annotations

import atexit
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq

from ..config import InputTable
from ..errors import ConfigError, Problem
from ..options import FILE_FORMATS, FileFormat
from ..schema import TABLES, Column

#: Rows per chunk when SAS/SPSS/Stata files are streamed into DuckDB with pyreadstat.
READSTAT_CHUNK_ROWS = 500_000
#: Encodings DuckDB's CSV reader decodes itself; other encodings are transcoded to a temporary UTF-8 copy.
_DUCKDB_ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "latin-1": "latin-1", "latin1": "latin-1",
                     "iso-8859-1": "latin-1", "iso8859-1": "latin-1", "utf-16": "utf-16"}  # fmt: skip
#: The input format of a file extension (``format: auto``); every value is one of ``options.FILE_FORMATS``.
_EXT_FORMAT: dict[str, FileFormat] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "csv",
    ".sas7bdat": "sas",
    ".xpt": "sas",
    ".sav": "spss",
    ".zsav": "spss",
    ".dta": "stata",
}
_NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                  "UBIGINT", "FLOAT", "DOUBLE", "REAL")  # fmt: skip
#: Temporary folders (DuckDB spill space, transcoded copies), removed when the process ends.
_TEMP_DIRS: list[str] = []


def _cleanup_temp_dirs() -> None:
    import shutil

    for d in _TEMP_DIRS:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup_temp_dirs)


def sql_ident(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def sql_literal(value: object) -> str:
    """An SQL literal for a string or number."""
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def detect_format(t: InputTable) -> str:
    """The reader of an input table: its ``format``, or by extension when ``auto`` (a directory = Parquet parts)."""
    if t.format != "auto":
        return t.format
    p = Path(t.path)
    if p.is_dir():
        return "parquet"
    fmt = _EXT_FORMAT.get(p.suffix.lower())
    if fmt is None:
        readers = [f for f in FILE_FORMATS if f != "auto"]
        raise ConfigError(
            f"{p}: cannot tell the file format from the extension {p.suffix!r}; set `format:` "
            f"({', '.join(readers[:-1])} or {readers[-1]}) for this table in the input spec"
        )
    return fmt


@dataclass
class RawSource:
    """A registered raw relation: where it came from and its columns (name → DuckDB type)."""

    table: str
    file: str
    fmt: str
    relation: str  # DuckDB view/table name without row numbers
    rows_relation: str  # the same rows with a 1-based ``__row`` data row number
    columns: dict[str, str]


class SourceProblem(Exception):
    """A problem that stops one input from being read at all (raised by :func:`open_source`)."""

    def __init__(self, problem: Problem):
        super().__init__(str(problem))
        self.problem = problem


def _scan_invalid_utf8(path: Path, header: bool = True) -> tuple[int, list[int]]:
    """Count lines of ``path`` that are not valid UTF-8; return (count, first five 1-based data row numbers)."""
    bad, examples = 0, []
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, start=0 if header else 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                bad += 1
                if len(examples) < 5:
                    examples.append(lineno)
    return bad, examples


def _scan_field_counts(path: Path, t: InputTable) -> tuple[int, int, list[int]]:
    """Fields in the header, data rows with another field count and the first five of them (failure path only)."""
    import csv

    bad, examples, n_fields = 0, [], 0
    try:
        with open(path, encoding=t.encoding, newline="", errors="replace") as fh:
            for i, fields in enumerate(csv.reader(fh, delimiter=t.separator, quotechar='"')):
                if i == 0:
                    n_fields = len(fields)
                elif fields and len(fields) != n_fields:
                    bad += 1
                    if len(examples) < 5:
                        examples.append(i)
    except (LookupError, csv.Error):
        return n_fields, 0, []
    return n_fields, bad, examples


def _transcode_to_utf8(path: Path, encoding: str) -> Path:
    """A temporary UTF-8 copy of a text file in an encoding DuckDB cannot read itself (the input is untouched)."""
    import codecs

    try:
        codecs.lookup(encoding)
    except LookupError as exc:
        raise ConfigError(f"{path}: unknown encoding {encoding!r} in the input spec") from exc
    tmp = tempfile.mkdtemp(prefix="finsam_transcode_")
    _TEMP_DIRS.append(tmp)
    out = Path(tmp) / (path.stem + ".utf8.csv")
    with (
        open(path, encoding=encoding, newline="") as src,
        open(out, "w", encoding="utf-8", newline="") as dst,
    ):
        while chunk := src.read(1 << 22):
            dst.write(chunk)
    return out


def _register_csv(con: duckdb.DuckDBPyConnection, name: str, t: InputTable) -> tuple[str, str]:
    path = Path(t.path)
    enc = _DUCKDB_ENCODINGS.get(t.encoding.lower().replace("_", "-"))
    if enc is None:
        path, enc = _transcode_to_utf8(path, t.encoding), "utf-8"
    src = (
        f"read_csv({sql_literal(str(path))}, all_varchar=true, header=true, delim={sql_literal(t.separator)}, "
        f"quote='\"', skip=0, strict_mode=true, encoding={sql_literal(enc)})"
    )
    rel, rows = f"__raw_{name}", f"__rawrows_{name}"
    con.execute(f"CREATE OR REPLACE VIEW {sql_ident(rel)} AS SELECT * FROM {src}")
    # DuckDB keeps the file's row order (preserve_insertion_order), so row_number() over () is the data row.
    con.execute(
        f"CREATE OR REPLACE VIEW {sql_ident(rows)} AS SELECT row_number() OVER () AS __row, * FROM {src}"
    )
    return rel, rows


def _parquet_files(path: Path) -> list[Path]:
    return sorted(path.glob("*.parquet")) if path.is_dir() else [path]


def _register_parquet(con: duckdb.DuckDBPyConnection, name: str, t: InputTable) -> tuple[str, str]:
    path = Path(t.path)
    files = _parquet_files(path)
    file_list = "[" + ", ".join(sql_literal(str(f)) for f in files) + "]"
    rel, rows = f"__raw_{name}", f"__rawrows_{name}"
    con.execute(f"CREATE OR REPLACE VIEW {sql_ident(rel)} AS SELECT * FROM read_parquet({file_list})")
    if len(files) == 1:
        con.execute(
            f"CREATE OR REPLACE VIEW {sql_ident(rows)} AS SELECT file_row_number + 1 AS __row, * EXCLUDE (file_row_number) "
            f"FROM read_parquet({file_list}, file_row_number=true)"
        )
    else:  # parts are numbered consecutively in file-name order
        offsets, total = [], 0
        for f in files:
            offsets.append(f"({sql_literal(str(f))}, {total})")
            total += pq.ParquetFile(f).metadata.num_rows
        con.execute(
            f"CREATE OR REPLACE VIEW {sql_ident(rows)} AS SELECT o.off + p.file_row_number + 1 AS __row, "
            f"p.* EXCLUDE (file_row_number, filename) FROM read_parquet({file_list}, file_row_number=true, "
            f"filename=true) p JOIN (VALUES {', '.join(offsets)}) o(fname, off) ON p.filename = o.fname"
        )
    return rel, rows


def _readstat_reader(path: Path, fmt: str) -> Callable:
    import pyreadstat

    if fmt == "spss":
        return pyreadstat.read_sav
    if fmt == "stata":
        return pyreadstat.read_dta
    return pyreadstat.read_xport if path.suffix.lower() == ".xpt" else pyreadstat.read_sas7bdat


def _register_readstat(con: duckdb.DuckDBPyConnection, name: str, t: InputTable, fmt: str) -> tuple[str, str]:
    """Stream a SAS/SPSS/Stata file into a DuckDB table in chunks (pyreadstat), never whole into pandas."""
    import pyreadstat

    path = Path(t.path)
    reader = _readstat_reader(path, fmt)
    kwargs: dict = {"dates_as_pandas_datetime": True}
    if fmt == "sas" and t.encoding.lower() not in ("utf-8", "utf8"):
        kwargs["encoding"] = t.encoding
    rel, rows = f"__raw_{name}", f"__rawrows_{name}"
    con.execute(f"DROP TABLE IF EXISTS {sql_ident(rel)}")
    offset = 0
    created = False
    untyped: set[str] = set()
    for chunk, _meta in pyreadstat.read_file_in_chunks(
        reader, str(path), chunksize=READSTAT_CHUNK_ROWS, **kwargs
    ):
        chunk = chunk.reset_index(drop=True)
        chunk.insert(0, "__row", np.arange(offset + 1, offset + len(chunk) + 1, dtype=np.int64))
        offset += len(chunk)
        empty = {c for c in chunk.columns if c != "__row" and chunk[c].isna().all()}
        con.register("__chunk", chunk)
        # a column with no value in this chunk has no reliable type: insert typed NULLs, and let the first chunk
        # with values set the column's type
        select = ", ".join(f"NULL AS {sql_ident(c)}" if c in empty else sql_ident(c) for c in chunk.columns)
        if not created:
            con.execute(f"CREATE TABLE {sql_ident(rel)} AS SELECT {select} FROM __chunk")
            untyped = set(empty)
            created = True
        else:
            for c in sorted(untyped - empty):
                typ = con.execute(f"SELECT typeof({sql_ident(c)}) FROM __chunk LIMIT 1").fetchone()[0]
                con.execute(
                    f"ALTER TABLE {sql_ident(rel)} ALTER {sql_ident(c)} SET DATA TYPE {typ} USING NULL"
                )
                untyped.discard(c)
            con.execute(f"INSERT INTO {sql_ident(rel)} BY NAME SELECT {select} FROM __chunk")
        con.unregister("__chunk")
    if not created:  # no rows: take the column names from the metadata
        _df, meta = reader(str(path), metadataonly=True)
        cols = ", ".join(f"NULL::VARCHAR AS {sql_ident(c)}" for c in meta.column_names)
        con.execute(
            f"CREATE TABLE {sql_ident(rel)} AS SELECT NULL::BIGINT AS __row{', ' + cols if cols else ''} LIMIT 0"
        )
    con.execute(f"CREATE OR REPLACE VIEW {sql_ident(rows)} AS SELECT * FROM {sql_ident(rel)}")
    return rel, rows


def open_source(con: duckdb.DuckDBPyConnection, name: str, t: InputTable) -> RawSource:
    """Register the raw relation of one input; problems that stop reading raise :class:`SourceProblem`."""
    path = Path(t.path)
    file = str(path)
    if not path.exists():
        raise SourceProblem(
            Problem(
                name,
                file,
                None,
                "file not found",
                hint="Check `path` for this table in the input spec (relative paths resolve against the "
                "spec file's folder)",
            )  # fmt: skip
        )
    fmt = detect_format(t)
    if path.is_dir() and not _parquet_files(path):
        raise SourceProblem(
            Problem(
                name,
                file,
                None,
                "directory contains no .parquet files",
                hint="Point `path` at a Parquet file or a directory of Parquet parts",
            )  # fmt: skip
        )
    if path.is_file() and path.stat().st_size == 0:
        raise SourceProblem(
            Problem(name, file, None, "file is empty (0 bytes)", hint="Export the table again")
        )
    try:
        if fmt == "csv":
            rel, rows = _register_csv(con, name, t)
        elif fmt == "parquet":
            rel, rows = _register_parquet(con, name, t)
        else:
            rel, rows = _register_readstat(con, name, t, fmt)
        described = con.execute(f"DESCRIBE {sql_ident(rel)}").fetchall()
    except duckdb.Error as exc:
        raise SourceProblem(read_failure(name, path, t, fmt, exc)) from exc
    except Exception as exc:  # pyreadstat and pyarrow raise their own types for unreadable files
        if isinstance(exc, ConfigError):
            raise
        raise SourceProblem(
            Problem(
                name,
                file,
                None,
                f"cannot read the file as {fmt}: {str(exc).splitlines()[0]}",
                hint="Check `format` in the input spec and that the file is complete",
            )  # fmt: skip
        ) from exc
    columns = {r[0]: r[1] for r in described if r[0] != "__row"}
    return RawSource(name, file, fmt, rel, rows, columns)


def read_failure(name: str, path: Path, t: InputTable, fmt: str, exc: Exception) -> Problem:
    """Turn a DuckDB read error into a problem a person can act on."""
    text = str(exc)
    if fmt == "csv" and ("Invalid unicode" in text or "not utf-8 encoded" in text):
        n, rows = _scan_invalid_utf8(path)
        return Problem(
            name,
            str(path),
            None,
            f"file is not valid {t.encoding} text (bytes that are not {t.encoding}, e.g. å ä ö written as Latin-1)",
            n_rows=n,
            example_rows=rows,
            hint="Set `encoding: latin-1` (or the file's encoding, e.g. cp1252) for this table in the input spec",
        )
    if fmt == "csv" and "not latin-1 encoded" in text:
        return Problem(
            name,
            str(path),
            None,
            "file is not Latin-1 text (it looks like UTF-8, which read as Latin-1 would garble å ä ö)",
            hint="Set `encoding: utf-8` for this table in the input spec",
        )
    if fmt == "csv":
        n_fields, bad, rows = _scan_field_counts(path, t)
        if bad:
            return Problem(
                name,
                str(path),
                None,
                f"rows with a different number of fields than the header ({n_fields})",
                n_rows=bad,
                example_rows=rows,
                hint=f"Check `separator` ({t.separator!r}) and quoting; a field containing the separator must be "
                "quoted",
            )
    first = next((line for line in text.splitlines() if line.strip()), text)
    hint = (
        f"Check `separator` ({t.separator!r}), `encoding` ({t.encoding!r}) and quoting in the input spec"
        if fmt == "csv"
        else "Check `format` in the input spec and that the file is complete"
    )
    return Problem(name, str(path), None, f"cannot read the file as {fmt}: {first}", hint=hint)


# -------------------------------------------------------------------------------------- column mapping and parsing
def column_mapping(src: RawSource, t: InputTable) -> tuple[dict[str, str], list[Problem]]:
    """Canonical name → raw column, and problems (missing required column, duplicate after mapping).

    Mapping keys match raw names exactly, else case-insensitively (SAS/Stata often change case).
    """
    spec = TABLES[src.table]
    lower = {c.lower(): c for c in src.columns}
    renamed: dict[str, list[str]] = {}
    mapped_raw: set[str] = set()
    for agency, canonical in t.columns.items():
        raw = agency if agency in src.columns else lower.get(agency.lower())
        if raw is not None:
            renamed.setdefault(canonical, []).append(raw)
            mapped_raw.add(raw)
    for raw in src.columns:
        if raw not in mapped_raw and raw in spec.names:
            renamed.setdefault(raw, []).append(raw)
    problems: list[Problem] = []
    mapping: dict[str, str] = {}
    for canonical, raws in renamed.items():
        if canonical not in spec.names:
            continue
        if len(raws) > 1:
            problems.append(
                Problem(
                    src.table,
                    src.file,
                    canonical,
                    f"columns {', '.join(repr(r) for r in raws)} all map to canonical column {canonical!r}",
                    hint="Map only one file column onto each canonical column under `columns:` in the input "
                    "spec (or drop the extra column)",
                )  # fmt: skip
            )
        mapping[canonical] = raws[0]
    inverse = {v: k for k, v in t.columns.items()}
    for col in spec.columns:
        if col.required and col.name not in mapping:
            agency = inverse.get(col.name)
            where = f" (mapped from {agency!r})" if agency else ""
            problems.append(
                Problem(
                    src.table,
                    src.file,
                    col.name,
                    f"required column {col.name!r}{where} not found",
                    hint=f"The file has columns {', '.join(src.columns)}; map the right one onto "
                    f"{col.name!r} under `columns:` in the input spec",
                )  # fmt: skip
            )
    return mapping, problems


def _is_numeric(duck_type: str) -> bool:
    return duck_type.upper().startswith(_NUMERIC_TYPES) or duck_type.upper().startswith("DECIMAL")


def _is_temporal(duck_type: str) -> bool:
    return duck_type.upper().startswith(("DATE", "TIMESTAMP"))


def _text_expr(raw: str, duck_type: str) -> str:
    """Raw value as trimmed text (NULL for empty); whole numbers without a trailing ``.0`` (SAS keys)."""
    if _is_numeric(duck_type):
        return (
            f"CASE WHEN {raw} IS NULL OR isnan({raw}::DOUBLE) THEN NULL WHEN {raw}::DOUBLE = floor({raw}::DOUBLE) "
            f"AND abs({raw}::DOUBLE) < 1e18 THEN CAST(CAST({raw} AS BIGINT) AS VARCHAR) ELSE CAST({raw} AS VARCHAR) END"
        )
    return f"NULLIF(TRIM(CAST({raw} AS VARCHAR)), '')"


def _code_map_expr(text: str, codes: dict[str, str]) -> str:
    if not codes:
        return text
    whens = " ".join(f"WHEN {sql_literal(k)} THEN {sql_literal(v)}" for k, v in codes.items())
    return f"(CASE {text} {whens} ELSE {text} END)"


@dataclass
class ColumnExpr:
    """One canonical column of a raw source, as SQL over the raw relation's columns."""

    name: str
    raw_present: str  # SQL: the raw value is present (not missing)
    value: str  # SQL: canonical value, NULL if missing or unparseable


def _column_expr(col: Column, raw_name: str, duck_type: str, t: InputTable) -> ColumnExpr:
    raw = sql_ident(raw_name)
    text = _text_expr(raw, duck_type)
    present = f"({text}) IS NOT NULL"
    if col.kind in ("str",):
        if col.name == "kommun" and _is_numeric(duck_type):  # SAS/Stata store 0180 as the number 180
            return ColumnExpr(col.name, present, f"lpad({text}, 4, '0')")
        return ColumnExpr(col.name, present, text)
    if col.kind == "code":
        return ColumnExpr(col.name, present, _code_map_expr(text, t.codes.get(col.name, {})))
    if col.kind == "codeset":
        codes = t.codes.get(col.name, {})
        if codes:
            elem = _code_map_expr("TRIM(x)", codes)
            value = f"CASE WHEN {text} IS NULL THEN NULL ELSE array_to_string(list_transform(string_split({text}, ';'), x -> {elem}), ';') END"
        else:
            value = text
        return ColumnExpr(col.name, present, value)
    if col.kind in ("int", "float"):
        if _is_numeric(duck_type):
            num = f"CAST({raw} AS DOUBLE)"
            present = f"({raw} IS NOT NULL AND NOT isnan({raw}::DOUBLE))"
        else:
            s = text if t.decimal == "." else f"replace({text}, {sql_literal(t.decimal)}, '.')"
            num = f"TRY_CAST({s} AS DOUBLE)"
        if col.kind == "float":
            return ColumnExpr(col.name, present, num)
        return ColumnExpr(
            col.name,
            present,
            f"CASE WHEN {num} = floor({num}) AND abs({num}) < 1e18 THEN CAST({num} AS BIGINT) END",
        )
    if col.kind == "date":
        if _is_temporal(duck_type):
            present = f"({raw} IS NOT NULL)"
            return ColumnExpr(col.name, present, f"CAST({raw} AS DATE)")
        return ColumnExpr(
            col.name, present, f"CAST(TRY_STRPTIME({text}, {sql_literal(t.date_format)}) AS DATE)"
        )
    if col.kind == "month":
        if _is_temporal(duck_type):
            present = f"({raw} IS NOT NULL)"
            return ColumnExpr(col.name, present, f"strftime(CAST({raw} AS DATE), '%Y-%m')")
        parsed = f"TRY_STRPTIME({text}, {sql_literal(t.month_format)})"
        # strict: the text must be exactly the formatted month (try_strptime alone accepts 2020-1)
        return ColumnExpr(
            col.name,
            present,
            f"CASE WHEN strftime({parsed}, {sql_literal(t.month_format)}) = {text} THEN strftime({parsed}, '%Y-%m') END",
        )
    raise ValueError(f"unknown column kind {col.kind!r}")  # pragma: no cover - schema is fixed


def canonical_exprs(src: RawSource, t: InputTable, mapping: dict[str, str]) -> list[ColumnExpr]:
    """One expression per canonical column of ``src.table``, in the canonical order (``mapping`` from
    :func:`column_mapping`)."""
    out = []
    for col in TABLES[src.table].columns:
        if col.name in mapping:
            raw = mapping[col.name]
            out.append(_column_expr(col, raw, src.columns[raw], t))
        else:  # optional column absent from the file: all missing
            out.append(ColumnExpr(col.name, "FALSE", f"CAST(NULL AS {_SQL_TYPES[col.kind]})"))
    return out


_SQL_TYPES = {"str": "VARCHAR", "code": "VARCHAR", "codeset": "VARCHAR", "month": "VARCHAR", "int": "BIGINT",
              "float": "DOUBLE", "date": "DATE"}  # fmt: skip


def register_canonical(
    con: duckdb.DuckDBPyConnection, name: str, src: RawSource, exprs: list[ColumnExpr]
) -> None:
    """Make the parsed columns of ``src`` the canonical view ``name``."""
    cols = ", ".join(f"{e.value} AS {sql_ident(e.name)}" for e in exprs)
    con.execute(f"CREATE OR REPLACE VIEW {sql_ident(name)} AS SELECT {cols} FROM {sql_ident(src.relation)}")


def materialize(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Parse the canonical view ``name`` once into a DuckDB table (compressed, columnar; spills to the
    connection's temp directory over its memory limit) and point the view at it."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {sql_ident('__mat_' + name)} AS SELECT * FROM {sql_ident(name)}"
    )
    con.execute(f"CREATE OR REPLACE VIEW {sql_ident(name)} AS SELECT * FROM {sql_ident('__mat_' + name)}")


def connect(memory_limit: str | None = None, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection for the pipeline (in memory; spills to a temporary directory when over the limit)."""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")  # the CLI prints its own progress; keep stderr readable
    if memory_limit:
        con.execute(f"SET memory_limit = {sql_literal(memory_limit)}")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    tmp = tempfile.mkdtemp(prefix="finsam_duckdb_")
    _TEMP_DIRS.append(tmp)
    con.execute(f"SET temp_directory = {sql_literal(tmp)}")
    return con
