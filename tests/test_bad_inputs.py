"""The catalogue of bad inputs (issue 17): reading and validating real-looking extracts that are broken in one way.

Each case copies a small generated world (the session worlds of ``conftest``: Parquet, agency CSV or plain CSV)
into its own folder, breaks one thing, and asserts either a clear error naming the file, the column, example rows
and a fix — from ``io.validate_inputs`` and from ``finsam-effekt validate`` (exit code 1, no traceback) — or a
correct result with any warning visible. Inputs are hashed before and after: validation never changes a file.
Problems every world has (its identical duplicate spells, a warning) are left out of the comparison.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from finsam_effekt.cli import app
from finsam_effekt.config import load_input_spec
from finsam_effekt.errors import ConfigError, FinsamError, InputError
from finsam_effekt.io import ANALYSIS_TABLES, TableWriter, read_inputs, validate_inputs
from finsam_effekt.schema import TABLES
from finsam_effekt.tables import as_pandas

YEAR = date.today().year
DATA_FILES = {"parquet": ".parquet", "agency-csv": ".csv", "csv": ".csv"}
#: What every small world reports anyway (synth writes retroactive corrections twice, on purpose).
BASELINE = "identical duplicate rows (counted once)"


@pytest.fixture(scope="module")
def worlds(small_world, make_world) -> dict[str, Path]:
    return {
        "parquet": small_world.path,
        "agency-csv": make_world(small_world.config, "agency-csv").path,
        "csv": make_world(small_world.config, "csv").path,
    }


def _copy_world(src: Path, dst: Path, fmt: str) -> Path:
    dst.mkdir()
    for name in TABLES:
        shutil.copy2(src / f"{name}{DATA_FILES[fmt]}", dst)
    shutil.copy2(src / "mapping.yaml", dst)
    return dst


def _hashes(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()
    }


# ------------------------------------------------------------------------------------------- ways to break a world
def _parquet(folder: Path, table: str, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    df = edit(pd.read_parquet(folder / f"{table}.parquet"))
    w = TableWriter(folder, table, "parquet")
    w.write(df)
    w.close()


def _lines(
    folder: Path, table: str, edit: Callable[[list[str]], list[str]], encoding: str = "latin-1"
) -> None:
    path = folder / f"{table}.csv"
    lines = path.read_text(encoding=encoding).split("\n")
    path.write_text("\n".join(edit(lines)), encoding=encoding)


def _mapping(folder: Path, edit: Callable[[dict], None]) -> None:
    path = folder / "mapping.yaml"
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(spec)
    path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _set(df: pd.DataFrame, rows: list[int], column: str, value) -> pd.DataFrame:
    """Set ``column`` on 1-based data ``rows``."""
    df = df.copy()
    df.loc[[r - 1 for r in rows], column] = value
    return df


def _cell(lines: list[str], row: int, field: int, value: str) -> list[str]:
    """Set field ``field`` (0-based) of 1-based data ``row`` of ``;``-separated lines."""
    fields = lines[row].split(";")
    fields[field] = value
    lines[row] = ";".join(fields)
    return lines


def _numeric_ids(folder: Path) -> None:
    """Pseudonyms as zero-padded digits (P0000017 -> 0000017) in every Parquet table, as many extracts have them."""
    for table in ("population", "sus_registrations", "benefit_spells", "social_assistance", "earnings"):
        _parquet(folder, table, lambda df: df.assign(person_id=df["person_id"].str.slice(1)))


def _tz_dates(folder: Path) -> None:
    """SUS dates as time-zone-aware timestamps at Europe/Stockholm midnight, as R and pandas write dates."""
    df = pd.read_parquet(folder / "sus_registrations.parquet")
    for c in ("start_date", "end_date"):
        df[c] = pd.to_datetime(df[c]).dt.tz_localize("Europe/Stockholm")
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), folder / "sus_registrations.parquet")


def _fifo(folder: Path) -> None:
    """earnings.csv becomes a named pipe; a writer thread feeds it once, as ``zcat big.gz > fifo`` would."""
    path = folder / "earnings.csv"
    (folder.parent / "earnings.bytes").write_bytes(path.read_bytes())
    path.unlink()
    os.mkfifo(path)
    _feed(folder)


def _feed(folder: Path) -> None:
    """Write the bytes of earnings.csv into its pipe once, from a thread (the reader opens the pipe once)."""
    data = (folder.parent / "earnings.bytes").read_bytes()

    def feed():
        with open(folder / "earnings.csv", "wb") as fh:
            fh.write(data)

    threading.Thread(target=feed, daemon=True).start()


def _no_parts(folder: Path) -> None:
    (folder / "earnings.parquet").unlink()
    (folder / "earnings_parts").mkdir()
    _mapping(folder, lambda s: s["tables"]["earnings"].update(path="earnings_parts"))


def _education_codes(folder: Path, mapped: bool) -> None:
    """Sun2000Niva empty on rows 1-3 and the agency's '9' (unknown) on rows 4-5."""

    def edit(lines):
        for row in (1, 2, 3):
            lines = _cell(lines, row, 3, "")
        for row in (4, 5):
            lines = _cell(lines, row, 3, "9")
        return lines

    _lines(folder, "population", edit)
    if mapped:
        _mapping(
            folder,
            lambda s: s["tables"]["population"].update(codes={"education": {"": "unknown", "9": "unknown"}}),
        )


# -------------------------------------------------------------------------------------------------------- the cases
@dataclass(frozen=True)
class Case:
    """One bad input: the world it starts from, how it is broken and what validation must say.

    ``expected``: every problem (``str(Problem)``, the folder written ``DIR``) beyond the world's baseline, errors
    and warnings in report order; for ``config_error`` cases the text of the :class:`ConfigError`. ``ok``: the
    result is usable (a correct result, any warning visible); ``check`` then verifies the canonical tables.
    """

    world: str
    brk: Callable[[Path], None]
    expected: tuple[str, ...]
    ok: bool = False
    config_error: bool = False
    required: tuple[str, ...] = ()
    check: Callable[[object, dict[str, Path]], None] | None = None
    again: Callable[[Path], None] | None = None  # run before the CLI reads the inputs a second time (a pipe)
    cli_exit: int | None = None  # None: 0 when ok, else 1


def _check_tz(con, worlds: dict[str, Path]) -> None:
    got = as_pandas(con.table("sus_registrations"), "sus_registrations", canonical="sus_registrations")
    ref = pd.read_parquet(worlds["parquet"] / "sus_registrations.parquet")
    for c in ("start_date", "end_date"):  # every date on its Stockholm date, none moved a day earlier
        pd.testing.assert_series_equal(
            got[c], pd.to_datetime(ref[c]).astype("datetime64[ns]"), check_names=False
        )


def _check_same_earnings(con, worlds: dict[str, Path]) -> None:
    ref = pd.read_parquet(worlds["parquet"] / "earnings.parquet")
    got = as_pandas(con.table("earnings"), "earnings", canonical="earnings")
    pd.testing.assert_frame_equal(got, ref, check_dtype=False)


def _check_capped(con, worlds: dict[str, Path]) -> None:
    assert con.sql("SELECT max(earnings_sek) FROM earnings").fetchone()[0] == 10_000_000


def _check_education(con, worlds: dict[str, Path]) -> None:
    rows = con.sql("SELECT education FROM population LIMIT 5").fetchall()
    assert [r[0] for r in rows] == ["unknown"] * 5


def _check_kommun(con, worlds: dict[str, Path]) -> None:
    rows = con.sql("SELECT kommun FROM population ORDER BY person_id LIMIT 9").fetchall()
    assert [r[0] for r in rows].count("unknown") == 2


def _check_population_bom(con, worlds: dict[str, Path]) -> None:
    assert con.sql("SELECT count(*) FROM population WHERE person_id LIKE 'P%'").fetchone()[0] == 2000


CASES: dict[str, Case] = {}


def case(name: str, world: str, brk: Callable[[Path], None], *expected: str, **kw) -> None:
    CASES[name] = Case(world, brk, expected, **kw)


def _unlink(name: str) -> Callable[[Path], None]:
    return lambda d: (d / name).unlink()


def _truncate(name: str, size: int) -> Callable[[Path], None]:
    return lambda d: (d / name).write_bytes((d / name).read_bytes()[:size])


def _keep_header(table: str) -> Callable[[Path], None]:
    return lambda d: _lines(d, table, lambda ls: ls[:1])


def _spec(table: str, **update) -> Callable[[Path], None]:
    return lambda d: _mapping(d, lambda s: s["tables"][table].update(update))


def _agency_cell(table: str, row: int, field: int, value: str) -> Callable[[Path], None]:
    return lambda d: _lines(d, table, lambda ls: _cell(ls, row, field, value))


def _parquet_cell(table: str, rows: list[int], column: str, value) -> Callable[[Path], None]:
    return lambda d: _parquet(d, table, lambda df: _set(df, rows, column, value))


def _unknown_extension(d: Path) -> None:
    (d / "earnings.xlsx").write_bytes(b"PK")
    _spec("earnings", path="earnings.xlsx", format="auto")(d)


def _bom(d: Path) -> None:
    (d / "population.csv").write_bytes(b"\xef\xbb\xbf" + (d / "population.csv").read_bytes())


def _bom_in_latin1_spec(d: Path) -> None:
    text = (d / "population.csv").read_text(encoding="latin-1")
    (d / "population.csv").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))


def _utf16(d: Path) -> None:
    (d / "earnings.csv").write_bytes((d / "earnings.csv").read_text(encoding="utf-8").encode("utf-16"))


def _utf16_declared(d: Path) -> None:
    _utf16(d)
    _spec("earnings", encoding="utf-16")(d)


def _latin1_spec_file(d: Path) -> None:
    text = (d / "mapping.yaml").read_text(encoding="utf-8")
    (d / "mapping.yaml").write_bytes(text.replace("# Input spec", "# Indata för förbundet").encode("latin-1"))


def _yaml_key_twice(d: Path) -> None:
    text = (d / "mapping.yaml").read_text(encoding="utf-8")
    (d / "mapping.yaml").write_text(
        text.replace("    format: parquet\n", "    format: parquet\n    format: csv\n", 1)
    )


def _rename_header(d: Path) -> None:
    _lines(d, "earnings", lambda ls: [ls[0].replace("KontantErsattning", "Lon"), *ls[1:]])


def _repeat_column(d: Path) -> None:
    _lines(d, "earnings", lambda ls: [ls[0] + ";KontantErsattning"] + [x + ";0" if x else x for x in ls[1:]])


def _column_typo(d: Path) -> None:
    _mapping(d, lambda s: s["tables"]["earnings"]["columns"].update(LopNr="persn_id"))


def _code_typo(d: Path) -> None:
    _mapping(d, lambda s: s["tables"]["benefit_spells"]["codes"]["benefit"].update(REHAB="RHX"))


def _kommun_empty(mapped: bool) -> Callable[[Path], None]:
    def brk(d: Path) -> None:
        _lines(d, "population", lambda ls: _cell(_cell(ls, 3, 4, ""), 9, 4, ""))
        if mapped:
            _spec("population", codes={"kommun": {"": "unknown"}})(d)

    return brk


def _duplicate_key(d: Path) -> None:
    _parquet(
        d, "earnings", lambda df: pd.concat([df, df.iloc[[9]].assign(earnings_sek=1.0)], ignore_index=True)
    )


def _capped(d: Path) -> None:
    _parquet_cell("earnings", [7], "earnings_sek", 1e20)(d)
    _spec("earnings", on_implausible="cap")(d)


def _nan_text(d: Path) -> None:
    _lines(d, "earnings", lambda ls: [ls[0], ls[1].rsplit(",", 1)[0] + ",NaN", *ls[2:]], encoding="utf-8")


def _scale(table: str, column: str, factor: float) -> Callable[[Path], None]:
    return lambda d: _parquet(d, table, lambda df: df.assign(**{column: df[column] * factor}))


def _thousands_separators(d: Path) -> None:
    _lines(d, "earnings", lambda ls: [ls[0]] + [_thousands(line) for line in ls[1:]])


def _zeros_lost(d: Path) -> None:
    _numeric_ids(d)
    _parquet(d, "earnings", lambda df: df.assign(person_id=df["person_id"].str.lstrip("0")))


def _decimal_ids(d: Path) -> None:
    _numeric_ids(d)
    for t in ("population", "sus_registrations", "benefit_spells", "earnings"):
        _parquet(d, t, lambda df: df.assign(person_id=df["person_id"].str.lstrip("0")))
    _parquet(d, "social_assistance", lambda df: df.assign(person_id=df["person_id"].str.lstrip("0") + ".0"))


def _other_key(d: Path) -> None:
    def key(p):
        return None if p is None else str(7_000_000_000 + 7919 * int(p[1:]))

    _parquet(d, "sus_registrations", lambda df: df.assign(person_id=df["person_id"].map(key)))


def _all_anonymous(d: Path) -> None:
    _parquet(d, "sus_registrations", lambda df: df.assign(registration_kind="anonymous", person_id=None))


def _drop_person(d: Path) -> None:
    _parquet(d, "population", lambda df: df[df["person_id"] != "P0000001"])


def _drop_table(table: str) -> Callable[[Path], None]:
    return lambda d: _mapping(d, lambda s: s["tables"].pop(table))


A, P, C = "agency-csv", "parquet", "csv"
SPEC_PATH = (
    "Check `path` for this table in the input spec (relative paths resolve against the spec file's folder)"
)
FIX_DATE = (
    "Correct the dates (a typo such as 2202 for 2022?); placeholders such as 9999-12-31 for open-ended spells must "
    "be left empty instead; if the dates are real, widen the range with `plausible: {%s: [LOWEST, HIGHEST]}` for "
    "this table in the input spec"
)
FIX_MONTH = (
    "A typo such as 2202-01 for 2022-01 or 1918-03 for 2018-03? Correct the months; if they are real, widen the range "
    "with `plausible: {month: [LOWEST, HIGHEST]}` for this table in the input spec"
)
FIX_RANGE = (
    "Correct the rows; if such values are real, widen the range with `plausible: {%s: [LOWEST, HIGHEST]}` for this "
    "table in the input spec or set `on_implausible: cap` to cap them and count them in a warning"
)
FIX_FINITE = (
    "Non-finite numbers never reach the estimation: correct the rows in the export (an overflow or a division by "
    "zero upstream?)"
)
TOO_SMALL = (
    "A thousands separator read as a decimal point (13.738 read as 13.738 kr instead of 13 738)? Or amounts in "
    "thousands of kronor? Correct the export or `decimal:`; if the values are right, set `median_range: {%s: [LOW, "
    "HIGH]}` for this table in the input spec"
)
FEW_FOUND = " (An analysis needs at least 50% found: `min_share_in_population` in the input spec)"
NOT_IN_POPULATION = (
    "Their rows are kept but they have no background data; check that all files come from the same extract"
)

# -- files and formats
case("missing_file", P, _unlink("earnings.parquet"), f"DIR/earnings.parquet: file not found. {SPEC_PATH}")
case("directory_without_parquet_parts", P, _no_parts,
     "DIR/earnings_parts: directory contains no .parquet files. Point `path` at a Parquet file or a directory of "
     "Parquet parts")  # fmt: skip
case(
    "empty_file",
    A,
    _truncate("earnings.csv", 0),
    "DIR/earnings.csv: file is empty (0 bytes). Export the table again",
)
case("header_only_benefit_spells", A, _keep_header("benefit_spells"),
     "DIR/benefit_spells.csv: file has no data rows. Export the table again with its rows; an analysis cannot tell a "
     "missing extract from nobody in benefit_spells, so an empty file is never read as 'none'")  # fmt: skip
case("header_only_sus_volume_is_a_warning", A, _keep_header("sus_volume"),
     "DIR/sus_volume.csv: file has no data rows. Export the table again with its rows", ok=True)  # fmt: skip
case("corrupt_parquet", P, _truncate("earnings.parquet", 5000),
     "DIR/earnings.parquet: cannot read the file as parquet: Parquet magic bytes not found in footer. Either the file "
     "is corrupted or this is not a parquet file. Check `format` in the input spec and that the file is complete")  # fmt: skip
case("unknown_extension", P, _unknown_extension,
     "DIR/earnings.xlsx: cannot tell the file format from the extension '.xlsx'; set `format:` (parquet, csv, sas, "
     "spss or stata) for this table in the input spec", config_error=True)  # fmt: skip
case("ragged_row", A, _agency_cell("earnings", 5, 2, "100,0;7"),
     "DIR/earnings.csv: rows with a different number of fields than the header (3) (1 row; e.g. row 5). Check "
     "`separator` (';') and quoting; a field containing the separator must be quoted")  # fmt: skip
case("named_pipe_input", C, _fifo, ok=True, check=_check_same_earnings, again=_feed)
# -- encodings
case("latin1_file_declared_utf8", A, _spec("sus_registrations", encoding="utf-8"),
     "DIR/sus_registrations.csv: file is not valid utf-8 text (bytes that are not utf-8, e.g. å ä ö written as "
     "Latin-1) (77 rows; e.g. row 2, 4, 11, 12, 13). Set `encoding: latin-1` (or the file's encoding, e.g. cp1252) for "
     "this table in the input spec")  # fmt: skip
case("utf8_bom_is_read", C, _bom, ok=True, check=_check_population_bom)
case("utf8_bom_declared_latin1", A, _bom_in_latin1_spec,
     "DIR/population.csv: the file is UTF-8 (it begins with a UTF-8 byte-order mark, as Excel's 'CSV UTF-8' writes) "
     "but the input spec says `encoding: latin-1`. Set `encoding: utf-8` for this table in the input spec")  # fmt: skip
case("utf16_declared_utf8", C, _utf16,
     "DIR/earnings.csv: the file is UTF-16 encoded. Save it as UTF-8 (or set `encoding: utf-16` for this table in the "
     "input spec)")  # fmt: skip
case("utf16_declared_utf16", C, _utf16_declared, ok=True, check=_check_same_earnings)
case("input_spec_saved_in_latin1", P, _latin1_spec_file,
     "DIR/mapping.yaml: not UTF-8 text: byte 0xF6 on line 1 (it looks like Latin-1/Windows-1252, as some Swedish "
     "editors save å, ä, ö); save the file as UTF-8 and try again", config_error=True)  # fmt: skip
case(
    "input_spec_key_given_twice",
    P,
    _yaml_key_twice,
    "DIR/mapping.yaml: key 'format' is given twice (lines 6 and 7); keep one",
    config_error=True,
)
# -- columns, codes and the spec
case("missing_column", A, _rename_header,
     "DIR/earnings.csv, column 'earnings_sek': required column 'earnings_sek' (mapped from 'KontantErsattning') not "
     "found. The file has columns LopNr, Period, Lon; map the right one onto 'earnings_sek' under `columns:` in the "
     "input spec")  # fmt: skip
case("duplicate_column_names", A, _repeat_column,
     "DIR/earnings.csv, column 'KontantErsattning': the header names column 'KontantErsattning' 2 times (columns 3, "
     "4). Keep one column of that name (rename or drop the others) before reading: which one holds the right values "
     "cannot be told")  # fmt: skip
case("unknown_code", A, lambda d: _agency_cell("benefit_spells", 4, 1, "SJUKP")(d) or _agency_cell("benefit_spells", 2, 1, "UTVX")(d),
     "DIR/benefit_spells.csv, column 'benefit': unknown benefit code(s) 'SJUKP', 'UTVX' (2 rows; e.g. row 2, 4). "
     "Allowed codes: SJP, RHP, SA, AE, AKS, UTV, AKA. Map agency codes onto them under `codes: {benefit: "
     "{AGENCY_CODE: canonical}}` in the input spec")  # fmt: skip
case("education_unknown_unmapped", A, lambda d: _education_codes(d, mapped=False),
     "DIR/population.csv, column 'education': unknown education code(s) '9' (2 rows; e.g. row 4, 5). Allowed codes: "
     "compulsory, upper_secondary, post_secondary, unknown. Map agency codes onto them under `codes: {education: "
     '{AGENCY_CODE: canonical}}` in the input spec (empty cells are the agency code "")')  # fmt: skip
case(
    "education_unknown_mapped", A, lambda d: _education_codes(d, mapped=True), ok=True, check=_check_education
)
case("kommun_empty", A, _kommun_empty(mapped=False),
     "DIR/population.csv, column 'kommun': missing value (2 rows; e.g. row 3, 9). This column may not be empty; fill "
     "it in or drop the rows before reading")  # fmt: skip
case("kommun_empty_mapped_to_unknown", A, _kommun_empty(mapped=True), ok=True, check=_check_kommun)
case("spec_column_maps_onto_no_canonical_column", A, _column_typo,
     "DIR/mapping.yaml: (top level): tables.earnings.columns: 'LopNr' maps onto 'persn_id', which is not a column of "
     "earnings (its columns: person_id, month, earnings_sek)", config_error=True)  # fmt: skip
case("spec_code_maps_onto_no_canonical_code", A, _code_typo,
     "DIR/mapping.yaml: (top level): tables.benefit_spells.codes.benefit: 'REHAB' maps onto 'RHX', which is not a "
     "canonical benefit code (SJP, RHP, SA, AE, AKS, UTV, AKA)", config_error=True)  # fmt: skip
# a bare input spec may name any tables (``validate`` checks what it names); an analysis requires these five
case("spec_without_sus_registrations", P, _drop_table("sus_registrations"),
     "input spec: no `sus_registrations` table: an analysis reads sus_registrations, population, benefit_spells, "
     "social_assistance, earnings. Add `sus_registrations:` under `tables:` with the `path` of the SUS extract "
     "(registrations in insatser) (see configs/agency_inputs.yaml)", required=ANALYSIS_TABLES, cli_exit=0)  # fmt: skip
# -- values
case("unparseable_date", A, _agency_cell("benefit_spells", 3, 2, "2017-04-09"),
     "DIR/benefit_spells.csv, column 'from_date': cannot parse date with date_format '%Y%m%d' (1 row; e.g. row 3). "
     "Set `date_format` for this table in the input spec to the file's format (e.g. '%Y%m%d' for 20200115)")  # fmt: skip
case("end_before_start", P, _parquet_cell("benefit_spells", [1], "to_date", pd.Timestamp("2017-01-01")),
     "DIR/benefit_spells.parquet, column 'to_date': to_date before from_date (1 row; e.g. row 1). Check the two date "
     "columns (swapped, or a typo); to_date must be on or after from_date")  # fmt: skip
case("duplicate_keys_with_different_values", P, _duplicate_key,
     "DIR/earnings.parquet, column 'person_id, month': more than one row per (person_id, month) with different "
     "values (1 row; e.g. row 89172). Keep one row per key (e.g. sum the amounts of one person and month) before "
     "reading")  # fmt: skip
case("negative_amount", P, _parquet_cell("social_assistance", [3], "amount_sek", -500.0),
     "DIR/social_assistance.parquet, column 'amount_sek': negative amount (1 row; e.g. row 3). Amounts are paid SEK "
     "and cannot be negative; net out reversed or corrected payments before reading")  # fmt: skip
case("extent_in_percent", P, _parquet_cell("benefit_spells", [2, 4], "extent", 100.0),
     "DIR/benefit_spells.parquet, column 'extent': extent outside (0, 1] (2 rows; e.g. row 2, 4). Omfattning is a "
     "share of full time (1, 0.75, 0.5, 0.25); divide percentages by 100")  # fmt: skip
case("amount_1e20", P, _parquet_cell("earnings", [7], "earnings_sek", 1e20),
     "DIR/earnings.parquet, column 'earnings_sek': value outside the plausible range 0 to 10 000 000 (a corrupted "
     "cell or a unit error?) (1 row; e.g. row 7). " + FIX_RANGE % "earnings_sek")  # fmt: skip
case("amount_1e20_capped", P, _capped,
     "DIR/earnings.parquet, column 'earnings_sek': value outside the plausible range 0 to 10 000 000, capped to it "
     "(1 row; e.g. row 7). `on_implausible: cap` is set for this table, so the capped values enter the analysis; "
     "check the rows", ok=True, check=_check_capped)  # fmt: skip
case("amount_inf", P, _parquet_cell("earnings", [3, 8], "earnings_sek", np.inf),
     "DIR/earnings.parquet, column 'earnings_sek': not a finite number (inf or NaN) (2 rows; e.g. row 3, 8). "
     + FIX_FINITE)  # fmt: skip
case("amount_1e308_text", A, _agency_cell("social_assistance", 2, 2, "1e308"),
     "DIR/social_assistance.csv, column 'amount_sek': value outside the plausible range 0 to 500 000 (a corrupted "
     "cell or a unit error?) (1 row; e.g. row 2). " + FIX_RANGE % "amount_sek")  # fmt: skip
case(
    "amount_nan_text",
    C,
    _nan_text,
    "DIR/earnings.csv, column 'earnings_sek': not a finite number (inf or NaN) (1 row; e.g. row 1). "
    + FIX_FINITE,
)
case("thousands_separator_in_decimal_comma_file", A, _thousands_separators,
     "DIR/earnings.csv, column 'earnings_sek': number written with '.' in a file whose decimal mark is ',' (a "
     "thousands separator read as a decimal point?) (88251 rows; e.g. row 1, 2, 3, 4, 5). Remove thousands "
     "separators from the export (13738, not 13.738), or set `decimal: '.'` if the file uses decimal points")  # fmt: skip
case("earnings_in_thousands", P, _scale("earnings", "earnings_sek", 1 / 1000),
     "DIR/earnings.parquet, column 'earnings_sek': the median positive monthly earnings is about 28.12 kr, outside "
     "the register's known scale 1 000 to 1 000 000 kr. " + TOO_SMALL % "earnings_sek")  # fmt: skip
case("earnings_in_ore", P, _scale("earnings", "earnings_sek", 100),
     "DIR/earnings.parquet, column 'earnings_sek': the median positive monthly earnings is about 2 812 400 kr, "
     "outside the register's known scale 1 000 to 1 000 000 kr. Amounts in öre, or decimal marks lost (1234,50 read "
     "as 123450)? Correct the export or `decimal:`; if the values are right, set `median_range: {earnings_sek: "
     "[LOW, HIGH]}` for this table in the input spec")  # fmt: skip
case("benefit_amounts_in_thousands", P, _scale("benefit_spells", "amount_sek", 1 / 1000),
     "DIR/benefit_spells.parquet, column 'amount_sek': the median positive benefit per nettodag of the closed spells "
     "is about 0.43 kr, outside the register's known scale 20 to 5 000 kr. " + TOO_SMALL % "amount_sek")  # fmt: skip
case("month_typo_2202", P, _parquet_cell("earnings", [4], "month", "2202-01"),
     f"DIR/earnings.parquet, column 'month': month outside the plausible range 1990-01 to {YEAR}-12 (1 row; e.g. row "
     "4). " + FIX_MONTH)  # fmt: skip
case("month_typo_1918", A, _agency_cell("social_assistance", 2, 1, "191803"),
     f"DIR/social_assistance.csv, column 'month': month outside the plausible range 1990-01 to {YEAR}-12 (1 row; e.g. "
     "row 2). " + FIX_MONTH)  # fmt: skip
case("start_date_typo_2202", P, _parquet_cell("sus_registrations", [1], "start_date", pd.Timestamp("2202-05-01")),
     "DIR/sus_registrations.parquet, column 'start_date': date outside the plausible range 1990-01-01 to "
     f"{YEAR}-12-31 (1 row; e.g. row 1). " + FIX_DATE % "start_date",
     "DIR/sus_registrations.parquet, column 'end_date': end_date before start_date (1 row; e.g. row 1). Check the two "
     "date columns (swapped, or a typo); end_date must be on or after start_date")  # fmt: skip
case("birth_year_in_the_future", P, _parquet_cell("population", [2], "birth_year", 2090),
     f"DIR/population.parquet, column 'birth_year': birth_year outside the plausible range 1900 to {YEAR} (1 row; "
     "e.g. row 2). Birth years are four-digit calendar years")  # fmt: skip
case("death_date_in_the_future", P, _parquet_cell("population", [6], "death_date", pd.Timestamp("2099-01-01")),
     "DIR/population.parquet, column 'death_date': date outside the plausible range 1900-01-01 to "
     f"{date.today().isoformat()} (1 row; e.g. row 6). " + FIX_DATE % "death_date")  # fmt: skip
case("tz_aware_timestamps", P, _tz_dates, ok=True, check=_check_tz)
# -- pseudonyms across tables
case("leading_zeros_lost_in_earnings", P, _zeros_lost,
     "DIR/earnings.parquet, column 'person_id': only 0 of 1852 pseudonyms (0%) are found in population; 1852 of the "
     "1852 unmatched pseudonyms match once leading zeros are ignored: the leading zeros were lost in earnings (89171 "
     "rows; e.g. row 1, 2, 3, 4, 5). Export person_id as text in every file (a program that read it as a number "
     "dropped the zeros), or pad the pseudonyms of earnings with zeros to 7 characters." + FEW_FOUND)  # fmt: skip
case("pseudonyms_written_as_decimals", P, _decimal_ids,
     "DIR/social_assistance.parquet, column 'person_id': only 0 of 344 pseudonyms (0%) are found in population; 344 "
     "of the 344 unmatched pseudonyms match without a trailing '.0': they were written as decimal numbers (8203 "
     "rows; e.g. row 1, 2, 3, 4, 5). Export person_id as text (or as a whole number) in every file." + FEW_FOUND)  # fmt: skip
case("sus_pseudonyms_of_another_key", P, _other_key,
     "DIR/sus_registrations.parquet, column 'person_id': only 0 of 81 pseudonyms (0%) are found in population; the "
     "unmatched pseudonyms (digits, 10 characters) do not look like those of population (text, 8 characters) (94 "
     "rows; e.g. row 1, 2, 3, 4, 5). Check that every file comes from the same extract and uses the same pseudonym "
     "key (LopNr); a type mismatch (numbers in one file, text in another) shows as a different shape." + FEW_FOUND)  # fmt: skip
case("every_registration_anonymous", P, _all_anonymous,
     "DIR/sus_registrations.parquet, column 'registration_kind': no person registrations: every SUS registration is "
     "anonymous, so no participant can be followed in the registers. Export SUS with the person registrations and "
     "their pseudonyms (LopNr); if the export has them, check the mapping of registration_kind under `codes:` in the "
     "input spec (e.g. {Person: person, Anonym: anonymous})")  # fmt: skip
case("person_missing_from_population", P, _drop_person,
     "DIR/benefit_spells.parquet, column 'person_id': 1 person(s) not found in population (1 row; e.g. row 1). "
     + NOT_IN_POPULATION,
     "DIR/earnings.parquet, column 'person_id': 1 person(s) not found in population (58 rows; e.g. row 1, 2, 3, 4, "
     "5). " + NOT_IN_POPULATION, ok=True)  # fmt: skip


def _thousands(line: str) -> str:
    """35148,0 -> 35.148 (a thousands separator and no decimals), as some exports write kronor."""
    if not line:
        return line
    head, amount = line.rsplit(";", 1)
    whole = amount.split(",")[0]
    if len(whole) > 3:
        whole = whole[:-3] + "." + whole[-3:]
    return f"{head};{whole}"


# -------------------------------------------------------------------------------------------------------- the test
def _in_thread(fn: Callable[[], object], timeout: float = 300) -> object:
    """Run ``fn`` in a thread and fail (instead of hanging the suite) when it does not finish in ``timeout`` s."""
    out: dict[str, object] = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as exc:  # handed to the test thread below
            out["error"] = exc

    th = threading.Thread(target=run, daemon=True)
    th.start()
    th.join(timeout)
    assert not th.is_alive(), f"still running after {timeout} s: an input is read more than once?"
    if "error" in out:
        raise out["error"]  # type: ignore[misc]
    return out["value"]


def _read(mapping: Path, required: tuple[str, ...]):
    """(usable, problems, connection): ``read_inputs`` on the spec, its InputError taken apart."""
    try:
        con, report = read_inputs(load_input_spec(mapping), required=required)
    except InputError as exc:
        return False, exc.problems, None
    return True, report.problems, con


def _cli(mapping: Path) -> tuple[int, str]:
    """Exit code and whitespace-normalised output of ``finsam-effekt validate``; a user's mistake
    (:class:`FinsamError`) is what the console script prints with exit code 1, anything else a traceback."""
    res = CliRunner().invoke(app, ["validate", str(mapping)])
    exc = res.exception
    assert exc is None or isinstance(exc, (SystemExit, FinsamError)), f"traceback: {exc!r}"
    text = res.output + (str(exc) if isinstance(exc, FinsamError) else "")
    return res.exit_code, " ".join(text.split())


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name, worlds, tmp_path):
    c = CASES[name]
    folder = _copy_world(worlds[c.world], tmp_path / "world", c.world)
    c.brk(folder)
    mapping = folder / "mapping.yaml"
    before = _hashes(folder)
    if c.config_error:
        with pytest.raises(ConfigError) as err:
            validate_inputs(load_input_spec(mapping))
        got, usable = [str(err.value)], False
    else:
        usable, problems, con = _in_thread(lambda: _read(mapping, c.required))
        got = [str(p) for p in problems if BASELINE not in p.message]
    assert [g.replace(str(folder), "DIR") for g in got] == list(c.expected)
    assert usable == c.ok
    if c.check is not None:
        c.check(con, worlds)
    if c.again is not None:
        c.again(folder)
    code, output = _in_thread(lambda: _cli(mapping))
    assert code == (c.cli_exit if c.cli_exit is not None else (0 if c.ok else 1)), output
    for text in c.expected if not c.required else ():  # the CLI checks the tables a bare spec names
        assert " ".join(text.replace("DIR", str(folder)).split()) in output
    assert _hashes(folder) == before  # validation never changes an input
