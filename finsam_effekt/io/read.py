"""Input files as DuckDB relations: every format registered as a raw source, its columns and codes mapped.

Nothing is read whole into pandas: CSV goes through DuckDB's ``read_csv`` (text columns, then parsed with the
spec's encoding, separator, decimal mark, date and month formats; encodings DuckDB lacks, e.g. cp1252, via a
temporary UTF-8 copy), Parquet files or directories of parts through ``read_parquet``, SAS (``.sas7bdat``,
``.xpt``), SPSS and Stata are streamed in chunks with pyreadstat into a DuckDB table. An input that is not a
regular file (a named pipe fed by ``zcat big.gz > fifo``, a device) can be read only once, so it is first copied
to a temporary file and read from there. Time-zone-aware timestamps are read as dates in Europe/Stockholm. A
byte-order mark or UTF-16 text that contradicts the spec's ``encoding`` is reported as such. Each input first
becomes a *raw* relation (:class:`RawSource`: agency column names, text for CSV, native types otherwise); one SQL
expression per canonical column (:class:`ColumnExpr`) maps a raw value onto the canonical type and code (NULL when
it cannot be parsed). :mod:`~finsam_effekt.io.validate` checks the parsed values and :func:`register_canonical`
makes them the view named after the canonical table: text ``person_id``, ``DATE`` dates, ``YYYY-MM`` months,
``DOUBLE`` amounts, codes mapped. Input files are only ever read.
"""

from __future__ import annotations

import atexit
import csv
import shutil
import stat
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
_DUCKDB_ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "utf-8-sig": "utf-8", "utf8-sig": "utf-8",
                     "latin-1": "latin-1", "latin1": "latin-1", "iso-8859-1": "latin-1", "iso8859-1": "latin-1",
                     "utf-16": "utf-16"}  # fmt: skip
#: The time zone of Swedish register dates: a time-zone-aware timestamp (as R and pandas write a date at local
#: midnight) is converted here before its date is taken, never in UTC (which would move it one day earlier).
REGISTER_TIME_ZONE = "Europe/Stockholm"
#: Byte-order marks at the start of a text file, and the encoding each announces.
_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
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
    """A registered raw relation: where it came from and its columns (name → DuckDB type).

    ``file`` is the input as the spec names it (used in every message); ``read_path`` the file actually read (the
    same, or the temporary copy of a pipe); ``header`` the column names exactly as the file writes them (CSV and
    Parquet; None for SAS/SPSS/Stata, which cannot repeat a name), so a name given twice is seen even though
    DuckDB renames the second one.
    """

    table: str
    file: str
    fmt: str
    relation: str  # DuckDB view/table name without row numbers
    rows_relation: str  # the same rows with a 1-based ``__row`` data row number
    columns: dict[str, str]
    read_path: str = ""
    header: list[str] | None = None


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


def _python_encoding(encoding: str) -> str:
    """The Python codec for a spec's encoding (UTF-8 with its byte-order mark removed)."""
    enc = encoding.lower().replace("_", "-")
    return "utf-8-sig" if enc in ("utf-8", "utf8", "utf-8-sig", "utf8-sig") else encoding


def _sniff_encoding(name: str, path: Path, file: str, t: InputTable) -> Problem | None:
    """A problem when the first bytes of a CSV contradict its declared ``encoding`` (byte-order marks, the zero
    bytes of UTF-16): the right cause and fix, instead of a field-count or missing-column message later."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    declared = t.encoding.lower().replace("_", "-")
    announced = next((enc for bom, enc in _BOMS if head.startswith(bom)), None)
    if announced is None and b"\x00" in head[:200]:
        announced = "utf-16"  # UTF-16 without a byte-order mark: every other byte of ASCII text is zero
    if announced == "utf-16" and not declared.startswith(("utf-16", "utf16")):
        return Problem(name, file, None, "the file is UTF-16 encoded",
                       hint="Save it as UTF-8 (or set `encoding: utf-16` for this table in the input spec)")  # fmt: skip
    if announced == "utf-8" and not declared.startswith(("utf-8", "utf8")):
        return Problem(name, file, None, f"the file is UTF-8 (it begins with a UTF-8 byte-order mark, as Excel's "
                       f"'CSV UTF-8' writes) but the input spec says `encoding: {t.encoding}`",
                       hint="Set `encoding: utf-8` for this table in the input spec")  # fmt: skip
    return None


def _csv_header(path: Path, t: InputTable) -> list[str]:
    """The column names of a CSV's header line exactly as written (byte-order mark removed)."""
    with open(path, encoding=_python_encoding(t.encoding), errors="replace", newline="") as fh:
        line = fh.readline(1 << 20)
    fields = next(csv.reader([line], delimiter=t.separator, quotechar='"'), [])
    return [f.strip().lstrip("\ufeff") for f in fields]


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


def _copy_stream(path: Path) -> Path:
    """Copy a pipe or other non-seekable input to a temporary file, once, in chunks (it can be read only once)."""
    tmp = tempfile.mkdtemp(prefix="finsam_stream_")
    _TEMP_DIRS.append(tmp)
    out = Path(tmp) / path.name
    with open(path, "rb") as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 22)
    return out


def _is_stream(path: Path) -> bool:
    """True for an existing input that is neither a regular file nor a directory (a named pipe, a device)."""
    mode = path.stat().st_mode
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def open_source(con: duckdb.DuckDBPyConnection, name: str, t: InputTable) -> RawSource:
    """Register the raw relation of one input; problems that stop reading raise :class:`SourceProblem`.

    A named pipe or other stream is copied to a temporary file first and read from the copy: DuckDB and the
    checks read a file several times, and a pipe gives its bytes only once.
    """
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
    if _is_stream(path):
        path = _copy_stream(path)
        t = t.model_copy(update={"path": path})
    if path.is_file() and path.stat().st_size == 0:
        raise SourceProblem(
            Problem(name, file, None, "file is empty (0 bytes)", hint="Export the table again")
        )
    header: list[str] | None = None
    try:
        if fmt == "csv":
            wrong = _sniff_encoding(name, path, file, t)
            if wrong is not None:
                raise SourceProblem(wrong)
            rel, rows = _register_csv(con, name, t)
            header = _csv_header(path, t)
        elif fmt == "parquet":
            header = list(pq.read_schema(_parquet_files(path)[0]).names)
            rel, rows = _register_parquet(con, name, t)
        else:
            rel, rows = _register_readstat(con, name, t, fmt)
        described = con.execute(f"DESCRIBE {sql_ident(rel)}").fetchall()
    except SourceProblem:
        raise
    except duckdb.Error as exc:
        raise SourceProblem(read_failure(name, path, t, fmt, exc, file=file)) from exc
    except Exception as exc:  # pyreadstat and pyarrow raise their own types for unreadable files
        if isinstance(exc, ConfigError):
            raise
        raise SourceProblem(
            Problem(
                name,
                file,
                None,
                f"cannot read the file as {fmt}: {str(exc).splitlines()[0].rstrip('.')}",
                hint="Check `format` in the input spec and that the file is complete",
            )  # fmt: skip
        ) from exc
    columns = {r[0]: r[1] for r in described if r[0] != "__row"}
    return RawSource(name, file, fmt, rel, rows, columns, str(path), header)


def read_failure(
    name: str, path: Path, t: InputTable, fmt: str, exc: Exception, file: str | None = None
) -> Problem:
    """Turn a DuckDB read error into a problem a person can act on (``path`` is the file read, ``file`` the name
    the spec gives it, when they differ)."""
    text = str(exc)
    file = file if file is not None else str(path)
    if fmt == "csv" and ("Invalid unicode" in text or "not utf-8 encoded" in text):
        n, rows = _scan_invalid_utf8(path)
        return Problem(
            name,
            file,
            None,
            f"file is not valid {t.encoding} text (bytes that are not {t.encoding}, e.g. å ä ö written as Latin-1)",
            n_rows=n,
            example_rows=rows,
            hint="Set `encoding: latin-1` (or the file's encoding, e.g. cp1252) for this table in the input spec",
        )
    if fmt == "csv" and "not latin-1 encoded" in text:
        return Problem(
            name,
            file,
            None,
            "file is not Latin-1 text (it looks like UTF-8, which read as Latin-1 would garble å ä ö)",
            hint="Set `encoding: utf-8` for this table in the input spec",
        )
    if fmt == "csv":
        n_fields, bad, rows = _scan_field_counts(path, t)
        if bad:
            return Problem(
                name,
                file,
                None,
                f"rows with a different number of fields than the header ({n_fields})",
                n_rows=bad,
                example_rows=rows,
                hint=f"Check `separator` ({t.separator!r}) and quoting; a field containing the separator must be "
                "quoted",
            )
    first = next((line for line in text.splitlines() if line.strip()), text).rstrip(".")
    hint = (
        f"Check `separator` ({t.separator!r}), `encoding` ({t.encoding!r}) and quoting in the input spec"
        if fmt == "csv"
        else "Check `format` in the input spec and that the file is complete"
    )
    return Problem(name, file, None, f"cannot read the file as {fmt}: {first}", hint=hint)


# -------------------------------------------------------------------------------------- column mapping and parsing
def column_mapping(src: RawSource, t: InputTable) -> tuple[dict[str, str], list[Problem]]:
    """Canonical name → raw column, and problems (missing required column, duplicate after mapping).

    Mapping keys match raw names exactly, else case-insensitively (SAS/Stata often change case), and a UTF-8
    byte-order mark glued to the first name is ignored. A name the file's header gives twice is an error when it
    is read (DuckDB would silently read the first and rename the second).
    """
    spec = TABLES[src.table]
    lower = {c.lstrip("\ufeff").lower(): c for c in src.columns}
    lower.update({c.lower(): c for c in src.columns})
    renamed: dict[str, list[str]] = {}
    mapped_raw: set[str] = set()
    for agency, canonical in t.columns.items():
        raw = agency if agency in src.columns else lower.get(agency.lower())
        if raw is not None:
            renamed.setdefault(canonical, []).append(raw)
            mapped_raw.add(raw)
    for raw in src.columns:
        bare = raw.lstrip("\ufeff")
        if raw not in mapped_raw and bare in spec.names:
            renamed.setdefault(bare, []).append(raw)
    problems: list[Problem] = _repeated_header_names(src, t)
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


def _repeated_header_names(src: RawSource, t: InputTable) -> list[Problem]:
    """An error per column name the header gives more than once (ignoring case) when the name is read: as a
    canonical column or under `columns:`. Unread repeated columns are ignored like every other unread column."""
    if not src.header:
        return []
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(src.header, start=1):
        positions.setdefault(name.lower(), []).append(i)
    read = {c.lower() for c in TABLES[src.table].names} | {c.lower() for c in t.columns}
    out = []
    for key, where in positions.items():
        if len(where) > 1 and key in read:
            name = src.header[where[0] - 1]
            out.append(
                Problem(
                    src.table,
                    src.file,
                    name,
                    f"the header names column {name!r} {len(where)} times (columns "
                    f"{', '.join(str(w) for w in where)})",
                    hint="Keep one column of that name (rename or drop the others) before reading: which "
                    "one holds the right values cannot be told",
                )  # fmt: skip
            )
    return out


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
    """SQL mapping agency codes onto canonical ones; the agency code ``""`` maps empty cells."""
    if not codes:
        return text
    whens = " ".join(f"WHEN {sql_literal(k)} THEN {sql_literal(v)}" for k, v in codes.items() if k != "")
    mapped = f"(CASE {text} {whens} ELSE {text} END)" if whens else text
    if "" in codes:
        return f"(CASE WHEN {text} IS NULL THEN {sql_literal(codes[''])} ELSE {mapped} END)"
    return mapped


def _temporal_date(raw: str, duck_type: str) -> str:
    """SQL: the calendar date of a DATE/TIMESTAMP value; time-zone-aware ones on their Europe/Stockholm date."""
    if "TIME ZONE" in duck_type.upper():
        return f"CAST(timezone({sql_literal(REGISTER_TIME_ZONE)}, {raw}) AS DATE)"
    return f"CAST({raw} AS DATE)"


@dataclass
class ColumnExpr:
    """One canonical column of a raw source, as SQL over the raw relation's columns."""

    name: str
    raw_present: str  # SQL: the raw value is present (not missing)
    value: str  # SQL: canonical value, NULL if missing or unparseable
    text: str | None = None  # SQL: the raw text of a number read from text (for the thousands-separator rule)


def _column_expr(col: Column, raw_name: str, duck_type: str, t: InputTable) -> ColumnExpr:
    raw = sql_ident(raw_name)
    text = _text_expr(raw, duck_type)
    present = f"({text}) IS NOT NULL"
    codes = t.codes.get(col.name, {})
    if "" in codes:  # empty cells are mapped onto a code (e.g. unknown), so they are present
        present = "TRUE"
    if col.kind in ("str",):
        if col.name == "kommun" and _is_numeric(duck_type):  # SAS/Stata store 0180 as the number 180
            text = f"lpad({text}, 4, '0')"
        return ColumnExpr(col.name, present, _code_map_expr(text, codes))
    if col.kind == "code":
        return ColumnExpr(col.name, present, _code_map_expr(text, codes))
    if col.kind == "codeset":
        if codes:
            elem = _code_map_expr("TRIM(x)", {k: v for k, v in codes.items() if k != ""})
            empty = sql_literal(codes[""]) if "" in codes else "NULL"
            value = f"CASE WHEN {text} IS NULL THEN {empty} ELSE array_to_string(list_transform(string_split({text}, ';'), x -> {elem}), ';') END"
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
        source_text = None if _is_numeric(duck_type) else text
        if col.kind == "float":
            return ColumnExpr(col.name, present, num, source_text)
        return ColumnExpr(
            col.name,
            present,
            f"CASE WHEN {num} = floor({num}) AND abs({num}) < 1e18 THEN CAST({num} AS BIGINT) END",
            source_text,
        )
    if col.kind == "date":
        if _is_temporal(duck_type):
            present = f"({raw} IS NOT NULL)"
            return ColumnExpr(col.name, present, _temporal_date(raw, duck_type))
        return ColumnExpr(
            col.name, present, f"CAST(TRY_STRPTIME({text}, {sql_literal(t.date_format)}) AS DATE)"
        )
    if col.kind == "month":
        if _is_temporal(duck_type):
            present = f"({raw} IS NOT NULL)"
            return ColumnExpr(col.name, present, f"strftime({_temporal_date(raw, duck_type)}, '%Y-%m')")
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
