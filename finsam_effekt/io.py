"""Reading and writing the canonical tables.

Writing (used by ``synth`` and by tests) supports every format the readers accept:

============  ==========================================================================================
format        what is written
============  ==========================================================================================
parquet       ``{table}.parquet``; dates as ``date32``
csv           ``{table}.csv``, UTF-8, ``,`` separator, ``.`` decimal, ISO dates
csv-latin1    ``{table}.csv``, Latin-1, ``;`` separator, decimal comma, ISO dates
agency-csv    ``{table}.csv`` with agency column names and codes (``schema.AGENCY_COLUMNS``/``AGENCY_CODES``),
              Latin-1, ``;``, decimal comma, dates ``YYYYMMDD``, months ``YYYYMM``
sav           ``{table}.sav`` (SPSS, pyreadstat)
dta           ``{table}.dta`` (Stata 15, pyreadstat)
============  ==========================================================================================

Every writer also writes ``mapping.yaml``, the input spec (``config.InputSpec``) that reads the files back.

Reading (:func:`read_inputs`, :func:`read_table`) and checking (:func:`validate_inputs`) go through DuckDB, never
whole tables in pandas: CSV with DuckDB's ``read_csv`` (text columns, then parsed with the spec's encoding,
separator, decimal mark, date and month formats; encodings DuckDB lacks, e.g. cp1252, via a temporary UTF-8 copy),
Parquet files or directories of parts with ``read_parquet``, SAS (``.sas7bdat``, ``.xpt``), SPSS and Stata
streamed in chunks with pyreadstat into a DuckDB table. Each input becomes a view named after its canonical table:
text ``person_id``, ``DATE`` dates, ``YYYY-MM`` months, ``DOUBLE`` amounts, codes mapped. Validation reports every
problem (:class:`~finsam_effekt.errors.Problem`) with file, column, row count, up to five 1-based data row numbers
(never pseudonyms) and a fix; input files are only ever read.
"""

from __future__ import annotations

import atexit
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from .config import InputSpec, InputTable
from .errors import ConfigError, InputError, Problem
from .schema import AGENCY_CODES, AGENCY_COLUMNS, TABLES, Column

WriteFormat = Literal["parquet", "csv", "csv-latin1", "agency-csv", "sav", "dta"]
WRITE_FORMATS: tuple[str, ...] = ("parquet", "csv", "csv-latin1", "agency-csv", "sav", "dta")

_EXT = {
    "parquet": "parquet",
    "csv": "csv",
    "csv-latin1": "csv",
    "agency-csv": "csv",
    "sav": "sav",
    "dta": "dta",
}
_READ_FORMAT = {
    "parquet": "parquet",
    "csv": "csv",
    "csv-latin1": "csv",
    "agency-csv": "csv",
    "sav": "spss",
    "dta": "stata",
}


def canonical_arrow_schema(table: str) -> pa.Schema:
    """Arrow schema of a canonical table (text, int64, float64, date32)."""
    types = {
        "str": pa.string(),
        "code": pa.string(),
        "codeset": pa.string(),
        "month": pa.string(),
        "int": pa.int64(),
        "float": pa.float64(),
        "date": pa.date32(),
    }
    return pa.schema([pa.field(c.name, types[c.kind]) for c in TABLES[table].columns])


def _to_agency(df: pd.DataFrame, table: str) -> pd.DataFrame:
    out = df.copy()
    for col, codes in AGENCY_CODES.get(table, {}).items():
        inverse = {v: k for k, v in codes.items()}
        out[col] = out[col].map(lambda v, inv=inverse: inv.get(v, v) if isinstance(v, str) else v)
    return out.rename(columns=AGENCY_COLUMNS[table])


def _format_dates(df: pd.DataFrame, table: str, date_format: str, month_format: str) -> pd.DataFrame:
    out = df.copy()
    for c in TABLES[table].columns:
        if c.kind == "date" and c.name in out:
            out[c.name] = pd.to_datetime(out[c.name]).dt.strftime(date_format)
        elif c.kind == "month" and c.name in out and month_format != "%Y-%m":
            out[c.name] = pd.to_datetime(out[c.name], format="%Y-%m").dt.strftime(month_format)
    return out


class TableWriter:
    """Write one canonical table in chunks (bounded memory), in one of :data:`WRITE_FORMATS`.

    Parquet and the CSV formats stream chunk by chunk; SPSS and Stata have no append mode, so their chunks are
    collected and written at :meth:`close` (use them for small worlds only).
    """

    def __init__(self, out_dir: Path, table: str, fmt: WriteFormat):
        if fmt not in WRITE_FORMATS:
            raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(WRITE_FORMATS)}")
        self.table, self.fmt = table, fmt
        self.path = Path(out_dir) / f"{table}.{_EXT[fmt]}"
        self._pq: pq.ParquetWriter | None = None
        self._pending: list[pd.DataFrame] = []
        self._csv_started = False
        self.rows = 0

    def write(self, df: pd.DataFrame) -> None:
        df = df[TABLES[self.table].names]
        self.rows += len(df)
        if self.fmt == "parquet":
            tab = pa.Table.from_pandas(df, schema=canonical_arrow_schema(self.table), preserve_index=False)
            if self._pq is None:
                self._pq = pq.ParquetWriter(self.path, tab.schema, compression="zstd")
            self._pq.write_table(tab)
        elif self.fmt in ("csv", "csv-latin1", "agency-csv"):
            agency = self.fmt == "agency-csv"
            out = _format_dates(
                df, self.table, "%Y%m%d" if agency else "%Y-%m-%d", "%Y%m" if agency else "%Y-%m"
            )
            if agency:
                out = _to_agency(out, self.table)
            latin = self.fmt != "csv"
            out.to_csv(
                self.path,
                mode="a" if self._csv_started else "w",
                header=not self._csv_started,
                index=False,
                sep=";" if latin else ",",
                decimal="," if latin else ".",
                encoding="latin-1" if latin else "utf-8",
                lineterminator="\n",
            )
            self._csv_started = True
        else:
            self._pending.append(df)

    def close(self) -> None:
        if self.fmt == "parquet":
            if self._pq is None:  # empty table: still write the schema
                pq.write_table(canonical_arrow_schema(self.table).empty_table(), self.path)
            else:
                self._pq.close()
        elif self.fmt in ("sav", "dta"):
            import pyreadstat

            df = (
                pd.concat(self._pending, ignore_index=True)
                if self._pending
                else pd.DataFrame({c: pd.Series(dtype=object) for c in TABLES[self.table].names})
            )
            for c in TABLES[self.table].columns:
                if c.kind == "date":
                    df[c.name] = pd.to_datetime(df[c.name])
                elif c.kind == "int":
                    df[c.name] = df[c.name].astype("float64")  # pyreadstat: nullable ints as doubles
            if self.fmt == "sav":
                pyreadstat.write_sav(df, self.path)
            else:
                pyreadstat.write_dta(df, self.path, version=15)
        elif not self._csv_started:
            self.write(pd.DataFrame({c: pd.Series(dtype=object) for c in TABLES[self.table].names}))


def input_spec_for(fmt: WriteFormat, tables: list[str]) -> dict:
    """The input spec (as a plain dict for YAML) that reads back what :class:`TableWriter` wrote."""
    spec: dict = {"base_dir": ".", "tables": {}}
    for table in tables:
        entry: dict = {"path": f"{table}.{_EXT[fmt]}", "format": _READ_FORMAT[fmt]}
        if fmt in ("csv-latin1", "agency-csv"):
            entry.update(encoding="latin-1", separator=";", decimal=",")
        if fmt == "agency-csv":
            entry.update(
                date_format="%Y%m%d",
                month_format="%Y%m",
                columns={v: k for k, v in AGENCY_COLUMNS[table].items()},
            )
            if table in AGENCY_CODES:
                entry["codes"] = {col: dict(m) for col, m in AGENCY_CODES[table].items()}
        spec["tables"][table] = entry
    return spec


def write_input_spec(out_dir: Path, fmt: WriteFormat, tables: list[str]) -> Path:
    """Write ``mapping.yaml`` describing the files written in ``out_dir``."""
    path = Path(out_dir) / "mapping.yaml"
    header = f"# Input spec for the {fmt} files in this folder (finsam_effekt.config.InputSpec).\n"
    path.write_text(
        header + yaml.safe_dump(input_spec_for(fmt, tables), sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    return path


def write_tables(
    tables: dict[str, pd.DataFrame], out_dir: Path, fmt: WriteFormat = "parquet"
) -> dict[str, Path]:
    """Write whole canonical tables to ``out_dir`` in ``fmt`` plus ``mapping.yaml``; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, df in tables.items():
        w = TableWriter(out_dir, name, fmt)
        w.write(df)
        w.close()
        paths[name] = w.path
    write_input_spec(out_dir, fmt, list(tables))
    return paths


__all__ = [
    "PLAUSIBLE_DATES",
    "ValidationReport",
    "connect",
    "detect_format",
    "read_inputs",
    "read_table",
    "to_pandas",
    "validate_inputs",
    "WRITE_FORMATS",
    "TableWriter",
    "canonical_arrow_schema",
    "input_spec_for",
    "write_input_spec",
    "write_tables",
]


# ---------------------------------------------------------------------------------------------------------------
# Reading and validation
# ---------------------------------------------------------------------------------------------------------------
# Design: every input file becomes a *raw* DuckDB relation (agency column names, text for CSV, native types for
# Parquet, SAS, SPSS and Stata). One SQL expression per canonical column maps the raw value onto the canonical
# type and code (NULL when it cannot be parsed), so validation and reading share the same parsing: a value that
# validates is exactly the value the canonical view returns. Validation is one aggregate scan per table plus a
# LIMIT-5 example query per problem found; nothing is loaded whole into pandas.

#: Dates outside this range are reported as implausible (typos, placeholders such as 9999-12-31).
PLAUSIBLE_DATES: tuple[str, str] = ("1900-01-01", "2100-12-31")
#: Birth years outside this range are reported as implausible.
PLAUSIBLE_BIRTH_YEARS: tuple[int, int] = (1900, 2100)
#: Rows per chunk when SAS/SPSS/Stata files are streamed into DuckDB with pyreadstat.
READSTAT_CHUNK_ROWS = 500_000
#: Encodings DuckDB's CSV reader decodes itself; other encodings are transcoded to a temporary UTF-8 copy.
_DUCKDB_ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "latin-1": "latin-1", "latin1": "latin-1",
                     "iso-8859-1": "latin-1", "iso8859-1": "latin-1", "utf-16": "utf-16"}  # fmt: skip
_EXT_FORMAT = {
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
#: Columns that may not be negative, and the word used for them in messages.
_NONNEGATIVE = {
    "amount_sek": "amount",
    "earnings_sek": "amount",
    "cost_sek": "amount",
    "participations": "count",
}
#: (table, start column, end column) pairs where the end may not precede the start.
_DATE_ORDER = (("sus_registrations", "start_date", "end_date"), ("benefit_spells", "from_date", "to_date"))
_TEMP_DIRS: list[str] = []


def _cleanup_temp_dirs() -> None:
    import shutil

    for d in _TEMP_DIRS:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup_temp_dirs)


def _q(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _lit(value: object) -> str:
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
        raise ConfigError(
            f"{p}: cannot tell the file format from the extension {p.suffix!r}; set `format:` "
            f"(parquet, csv, sas, spss or stata) for this table in the input spec"
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


class _SourceProblem(Exception):
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
        f"read_csv({_lit(str(path))}, all_varchar=true, header=true, delim={_lit(t.separator)}, "
        f"quote='\"', skip=0, strict_mode=true, encoding={_lit(enc)})"
    )
    rel, rows = f"__raw_{name}", f"__rawrows_{name}"
    con.execute(f"CREATE OR REPLACE VIEW {_q(rel)} AS SELECT * FROM {src}")
    # DuckDB keeps the file's row order (preserve_insertion_order), so row_number() over () is the data row.
    con.execute(f"CREATE OR REPLACE VIEW {_q(rows)} AS SELECT row_number() OVER () AS __row, * FROM {src}")
    return rel, rows


def _parquet_files(path: Path) -> list[Path]:
    return sorted(path.glob("*.parquet")) if path.is_dir() else [path]


def _register_parquet(con: duckdb.DuckDBPyConnection, name: str, t: InputTable) -> tuple[str, str]:
    path = Path(t.path)
    files = _parquet_files(path)
    file_list = "[" + ", ".join(_lit(str(f)) for f in files) + "]"
    rel, rows = f"__raw_{name}", f"__rawrows_{name}"
    con.execute(f"CREATE OR REPLACE VIEW {_q(rel)} AS SELECT * FROM read_parquet({file_list})")
    if len(files) == 1:
        con.execute(
            f"CREATE OR REPLACE VIEW {_q(rows)} AS SELECT file_row_number + 1 AS __row, * EXCLUDE (file_row_number) "
            f"FROM read_parquet({file_list}, file_row_number=true)"
        )
    else:  # parts are numbered consecutively in file-name order
        offsets, total = [], 0
        for f in files:
            offsets.append(f"({_lit(str(f))}, {total})")
            total += pq.ParquetFile(f).metadata.num_rows
        con.execute(
            f"CREATE OR REPLACE VIEW {_q(rows)} AS SELECT o.off + p.file_row_number + 1 AS __row, "
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
    con.execute(f"DROP TABLE IF EXISTS {_q(rel)}")
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
        select = ", ".join(f"NULL AS {_q(c)}" if c in empty else _q(c) for c in chunk.columns)
        if not created:
            con.execute(f"CREATE TABLE {_q(rel)} AS SELECT {select} FROM __chunk")
            untyped = set(empty)
            created = True
        else:
            for c in sorted(untyped - empty):
                typ = con.execute(f"SELECT typeof({_q(c)}) FROM __chunk LIMIT 1").fetchone()[0]
                con.execute(f"ALTER TABLE {_q(rel)} ALTER {_q(c)} SET DATA TYPE {typ} USING NULL")
                untyped.discard(c)
            con.execute(f"INSERT INTO {_q(rel)} BY NAME SELECT {select} FROM __chunk")
        con.unregister("__chunk")
    if not created:  # no rows: take the column names from the metadata
        _df, meta = reader(str(path), metadataonly=True)
        cols = ", ".join(f"NULL::VARCHAR AS {_q(c)}" for c in meta.column_names)
        con.execute(
            f"CREATE TABLE {_q(rel)} AS SELECT NULL::BIGINT AS __row{', ' + cols if cols else ''} LIMIT 0"
        )
    con.execute(f"CREATE OR REPLACE VIEW {_q(rows)} AS SELECT * FROM {_q(rel)}")
    return rel, rows


def _open_source(con: duckdb.DuckDBPyConnection, name: str, t: InputTable) -> RawSource:
    """Register the raw relation of one input; problems that stop reading raise :class:`_SourceProblem`."""
    path = Path(t.path)
    file = str(path)
    if not path.exists():
        raise _SourceProblem(
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
        raise _SourceProblem(
            Problem(
                name,
                file,
                None,
                "directory contains no .parquet files",
                hint="Point `path` at a Parquet file or a directory of Parquet parts",
            )  # fmt: skip
        )
    if path.is_file() and path.stat().st_size == 0:
        raise _SourceProblem(
            Problem(name, file, None, "file is empty (0 bytes)", hint="Export the table again")
        )
    try:
        if fmt == "csv":
            rel, rows = _register_csv(con, name, t)
        elif fmt == "parquet":
            rel, rows = _register_parquet(con, name, t)
        else:
            rel, rows = _register_readstat(con, name, t, fmt)
        described = con.execute(f"DESCRIBE {_q(rel)}").fetchall()
    except duckdb.Error as exc:
        raise _SourceProblem(_read_failure(name, path, t, fmt, exc)) from exc
    except Exception as exc:  # pyreadstat and pyarrow raise their own types for unreadable files
        if isinstance(exc, ConfigError):
            raise
        raise _SourceProblem(
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


def _read_failure(name: str, path: Path, t: InputTable, fmt: str, exc: Exception) -> Problem:
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
def _column_mapping(src: RawSource, t: InputTable) -> tuple[dict[str, str], list[Problem]]:
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
    whens = " ".join(f"WHEN {_lit(k)} THEN {_lit(v)}" for k, v in codes.items())
    return f"(CASE {text} {whens} ELSE {text} END)"


@dataclass
class _ColumnExpr:
    name: str
    raw_present: str  # SQL: the raw value is present (not missing)
    value: str  # SQL: canonical value, NULL if missing or unparseable


def _column_expr(col: Column, raw_name: str, duck_type: str, t: InputTable) -> _ColumnExpr:
    raw = _q(raw_name)
    text = _text_expr(raw, duck_type)
    present = f"({text}) IS NOT NULL"
    if col.kind in ("str",):
        if col.name == "kommun" and _is_numeric(duck_type):  # SAS/Stata store 0180 as the number 180
            return _ColumnExpr(col.name, present, f"lpad({text}, 4, '0')")
        return _ColumnExpr(col.name, present, text)
    if col.kind == "code":
        return _ColumnExpr(col.name, present, _code_map_expr(text, t.codes.get(col.name, {})))
    if col.kind == "codeset":
        codes = t.codes.get(col.name, {})
        if codes:
            elem = _code_map_expr("TRIM(x)", codes)
            value = f"CASE WHEN {text} IS NULL THEN NULL ELSE array_to_string(list_transform(string_split({text}, ';'), x -> {elem}), ';') END"
        else:
            value = text
        return _ColumnExpr(col.name, present, value)
    if col.kind in ("int", "float"):
        if _is_numeric(duck_type):
            num = f"CAST({raw} AS DOUBLE)"
            present = f"({raw} IS NOT NULL AND NOT isnan({raw}::DOUBLE))"
        else:
            s = text if t.decimal == "." else f"replace({text}, {_lit(t.decimal)}, '.')"
            num = f"TRY_CAST({s} AS DOUBLE)"
        if col.kind == "float":
            return _ColumnExpr(col.name, present, num)
        return _ColumnExpr(
            col.name,
            present,
            f"CASE WHEN {num} = floor({num}) AND abs({num}) < 1e18 THEN CAST({num} AS BIGINT) END",
        )
    if col.kind == "date":
        if _is_temporal(duck_type):
            present = f"({raw} IS NOT NULL)"
            return _ColumnExpr(col.name, present, f"CAST({raw} AS DATE)")
        return _ColumnExpr(col.name, present, f"CAST(TRY_STRPTIME({text}, {_lit(t.date_format)}) AS DATE)")
    if col.kind == "month":
        if _is_temporal(duck_type):
            present = f"({raw} IS NOT NULL)"
            return _ColumnExpr(col.name, present, f"strftime(CAST({raw} AS DATE), '%Y-%m')")
        parsed = f"TRY_STRPTIME({text}, {_lit(t.month_format)})"
        # strict: the text must be exactly the formatted month (try_strptime alone accepts 2020-1)
        return _ColumnExpr(
            col.name,
            present,
            f"CASE WHEN strftime({parsed}, {_lit(t.month_format)}) = {text} THEN strftime({parsed}, '%Y-%m') END",
        )
    raise ValueError(f"unknown column kind {col.kind!r}")  # pragma: no cover - schema is fixed


def _canonical_exprs(src: RawSource, t: InputTable, mapping: dict[str, str]) -> list[_ColumnExpr]:
    out = []
    for col in TABLES[src.table].columns:
        if col.name in mapping:
            raw = mapping[col.name]
            out.append(_column_expr(col, raw, src.columns[raw], t))
        else:  # optional column absent from the file: all missing
            out.append(_ColumnExpr(col.name, "FALSE", f"CAST(NULL AS {_SQL_TYPES[col.kind]})"))
    return out


_SQL_TYPES = {"str": "VARCHAR", "code": "VARCHAR", "codeset": "VARCHAR", "month": "VARCHAR", "int": "BIGINT",
              "float": "DOUBLE", "date": "DATE"}  # fmt: skip


# ---------------------------------------------------------------------------------------------------- validation
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
    return _q(f"v__{name}")


def _p(name: str) -> str:
    return _q(f"p__{name}")


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
            checks.append(_Check(col.name, f"{v} < DATE {_lit(lo)} OR {v} > DATE {_lit(hi)}",
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
            allowed = "[" + ", ".join(_lit(c) for c in col.codes) + "]"
            checks.append(_Check(col.name, f"{v} IS NOT NULL AND NOT list_contains({allowed}, {v})",
                                 f"unknown {col.name} code", "", codes=col.codes))  # fmt: skip
        elif col.kind == "codeset":
            allowed = "[" + ", ".join(_lit(c) for c in col.codes) + "]"
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


def _parsed_select(exprs: list[_ColumnExpr], source: str, with_row: bool) -> str:
    cols = [f"{e.value} AS {_v(e.name)}, {e.raw_present} AS {_p(e.name)}" for e in exprs]
    if with_row:
        cols.insert(0, "__row")
    return f"SELECT {', '.join(cols)} FROM {_q(source)}"


def _unknown_codes(con: duckdb.DuckDBPyConnection, parsed: str, check: _Check, kind: str) -> list[str]:
    """Up to five distinct unknown codes (codes are not person data, so they may be shown)."""
    v = _v(check.column or "")
    allowed = "[" + ", ".join(_lit(c) for c in check.codes) + "]"
    if kind == "codeset":
        sql = (f"SELECT DISTINCT TRIM(x) AS c FROM (SELECT unnest(string_split({v}, ';')) AS x FROM ({parsed})) "
               f"WHERE NOT list_contains({allowed}, TRIM(x)) ORDER BY c LIMIT 5")  # fmt: skip
    else:
        sql = f"SELECT DISTINCT {v} AS c FROM ({parsed}) WHERE {check.condition} ORDER BY c LIMIT 5"
    return [r[0] for r in con.execute(sql).fetchall()]


def _validate_source(
    con: duckdb.DuckDBPyConnection, src: RawSource, t: InputTable
) -> tuple[int | None, list[Problem], list[_ColumnExpr] | None]:
    """Row count, problems and canonical expressions of one registered source (None when unreadable)."""
    table = src.table
    mapping, problems = _column_mapping(src, t)
    if any(p.severity == "error" for p in problems):
        rows = con.execute(f"SELECT count(*) FROM {_q(src.relation)}").fetchone()[0]
        return rows, problems, None
    exprs = _canonical_exprs(src, t, mapping)
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


def _duplicate_keys(
    con: duckdb.DuckDBPyConnection, src: RawSource, exprs: list[_ColumnExpr]
) -> list[Problem]:
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
    con: duckdb.DuckDBPyConnection, name: str, src: RawSource, exprs: list[_ColumnExpr]
) -> Problem | None:
    pid = next(e for e in exprs if e.name == "person_id")
    missing = (
        f"SELECT s.pid FROM (SELECT {pid.value} AS pid FROM {_q(src.relation)}) s "
        "ANTI JOIN (SELECT person_id FROM population) p ON p.person_id = s.pid WHERE s.pid IS NOT NULL"
    )
    n_rows = con.execute(f"SELECT count(*) FROM ({missing})").fetchone()[0]
    if not n_rows:
        return None
    n_persons = con.execute(f"SELECT count(DISTINCT pid) FROM ({missing})").fetchone()[0]
    rows = [r[0] for r in con.execute(
        f"SELECT __row FROM (SELECT __row, {pid.value} AS pid FROM {_q(src.rows_relation)}) s WHERE pid IS NOT NULL "
        f"AND NOT EXISTS (SELECT 1 FROM population p WHERE p.person_id = s.pid) ORDER BY __row LIMIT 5").fetchall()]  # fmt: skip
    return Problem(name, src.file, "person_id", f"{n_persons} person(s) not found in population", n_rows, rows,
                   "Their rows are kept but they have no background data; check that all files come from the same "
                   "extract", severity="warning")  # fmt: skip


def _register_canonical(
    con: duckdb.DuckDBPyConnection, name: str, src: RawSource, exprs: list[_ColumnExpr]
) -> None:
    cols = ", ".join(f"{e.value} AS {_q(e.name)}" for e in exprs)
    con.execute(f"CREATE OR REPLACE VIEW {_q(name)} AS SELECT {cols} FROM {_q(src.relation)}")


def _validate(spec: InputSpec, con: duckdb.DuckDBPyConnection) -> ValidationReport:
    problems: list[Problem] = []
    rows: dict[str, int | None] = {}
    files: dict[str, str] = {}
    registered: dict[str, tuple[RawSource, list[_ColumnExpr]]] = {}
    for name, t in spec.tables.items():
        files[name] = str(t.path)
        rows[name] = None
        try:
            src = _open_source(con, name, t)
            n, found, exprs = _validate_source(con, src, t)
        except _SourceProblem as exc:
            problems.append(exc.problem)
            continue
        except duckdb.Error as exc:  # read errors surface lazily, at the first scan of a CSV
            problems.append(_read_failure(name, Path(t.path), t, detect_format(t), exc))
            continue
        rows[name] = n
        problems.extend(found)
        if exprs is not None:
            _register_canonical(con, name, src, exprs)
            registered[name] = (src, exprs)
    if "population" in registered:
        for name in ("benefit_spells", "social_assistance", "earnings"):
            if name in registered:
                p = _persons_missing_from_population(con, name, *registered[name])
                if p is not None:
                    problems.append(p)
    return ValidationReport(problems, rows, files)


def connect(memory_limit: str | None = None, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection for the pipeline (in memory; spills to a temporary directory when over the limit)."""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")  # the CLI prints its own progress; keep stderr readable
    if memory_limit:
        con.execute(f"SET memory_limit = {_lit(memory_limit)}")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    tmp = tempfile.mkdtemp(prefix="finsam_duckdb_")
    _TEMP_DIRS.append(tmp)
    con.execute(f"SET temp_directory = {_lit(tmp)}")
    return con


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
                con.execute(f"CREATE OR REPLACE TEMP TABLE {_q('__mat_' + name)} AS SELECT * FROM {_q(name)}")
                con.execute(f"CREATE OR REPLACE VIEW {_q(name)} AS SELECT * FROM {_q('__mat_' + name)}")
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


def to_pandas(
    rel: duckdb.DuckDBPyRelation, table: str | None = None, max_rows: int | None = 20_000_000
) -> pd.DataFrame:
    """A small canonical relation as a pandas DataFrame (dates as ``datetime64[ns]``, ints as ``Int64``).

    Refuses relations over ``max_rows`` rows: large tables stay in DuckDB.
    """
    if max_rows is not None:
        n = rel.aggregate("count(*)").fetchone()[0]
        if n > max_rows:
            raise ValueError(
                f"{n:,} rows is too many to load into pandas (max_rows={max_rows:,}); query in DuckDB"
            )
    df = rel.df()
    spec = TABLES.get(table) if table else None
    for c in df.columns:
        kind = spec.column(c).kind if spec is not None and c in spec.names else None
        if kind == "date" or str(df[c].dtype).startswith("datetime64"):
            df[c] = pd.to_datetime(df[c]).astype("datetime64[ns]")
        elif kind == "int":
            df[c] = df[c].astype("Int64")
    return df
