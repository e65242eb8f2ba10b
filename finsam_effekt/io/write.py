"""Writing canonical tables in every format the readers accept, each with the input spec that reads it back.

Used by ``synth`` and by tests. The formats are :data:`~finsam_effekt.options.WRITE_FORMATS`:

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
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from ..options import WRITE_FORMATS, FileFormat, WriteFormat
from ..schema import AGENCY_CODES, AGENCY_COLUMNS, TABLES

#: File extension of each write format.
_EXT: dict[str, str] = {
    "parquet": "parquet",
    "csv": "csv",
    "csv-latin1": "csv",
    "agency-csv": "csv",
    "sav": "sav",
    "dta": "dta",
}
#: The input ``format`` (``options.FILE_FORMATS``) that reads each write format back.
_READ_FORMAT: dict[str, FileFormat] = {
    "parquet": "parquet",
    "csv": "csv",
    "csv-latin1": "csv",
    "agency-csv": "csv",
    "sav": "spss",
    "dta": "stata",
}
#: Write formats that are CSV text.
_CSV_FORMATS: tuple[str, ...] = ("csv", "csv-latin1", "agency-csv")


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


def canonical_arrow_table(df: pd.DataFrame, table: str) -> pa.Table:
    """The canonical columns of ``df`` as an Arrow table with :func:`canonical_arrow_schema` (what Parquet files
    get; built once here so :meth:`TableWriter.write` and ``synth``'s worker processes build it alike)."""
    return pa.Table.from_pandas(
        df[TABLES[table].names], schema=canonical_arrow_schema(table), preserve_index=False
    )


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
        """Append the rows of ``df`` (its canonical columns, in the canonical order)."""
        df = df[TABLES[self.table].names]
        self.rows += len(df)
        if self.fmt == "parquet":
            self._append_parquet(canonical_arrow_table(df, self.table))
        elif self.fmt in _CSV_FORMATS:
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

    def write_arrow(self, tab: pa.Table) -> None:
        """Append an Arrow table built by :func:`canonical_arrow_table` (Parquet only): what :meth:`write` does
        after its conversion, for callers that converted elsewhere (``synth``'s worker processes)."""
        if self.fmt != "parquet":
            raise ValueError(f"write_arrow writes Parquet only; this writer writes {self.fmt!r}")
        self.rows += tab.num_rows
        self._append_parquet(tab)

    def _append_parquet(self, tab: pa.Table) -> None:
        if self._pq is None:
            self._pq = pq.ParquetWriter(self.path, tab.schema, compression="zstd")
        self._pq.write_table(tab)

    def close(self) -> None:
        """Finish the file (SPSS and Stata are written here; an empty table still gets its header or schema)."""
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
