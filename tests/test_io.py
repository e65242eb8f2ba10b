"""Reading and validating the registers: every format reads to the same canonical tables, and every kind of bad
input gets a message naming the file, the column, the row count, example data rows and a fix (issue 4)."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from finsam_effekt.config import InputSpec, InputTable, load_input_spec
from finsam_effekt.errors import InputError
from finsam_effekt.io import (
    WRITE_FORMATS,
    read_inputs,
    read_table,
    validate_inputs,
    write_tables,
)
from finsam_effekt.tables import as_pandas

SPELLS = pd.DataFrame(
    {
        "person_id": ["p1", "p2", "p3"],
        "benefit": ["RHP", "SA", "AKA"],
        "from_date": pd.to_datetime(["2020-01-15", "2021-02-01", "2019-06-30"]),
        "to_date": pd.to_datetime(["2020-03-01", None, "2019-12-31"]),
        "extent": [0.5, 1.0, 0.25],
        "amount_sek": [1234.5, 0.0, 99.75],
    }
)
POPULATION = pd.DataFrame(
    {
        "person_id": ["p1", "p2", "p3", "p4"],
        "sex": ["K", "M", "K", "M"],
        "birth_year": [1990, 1985, 2000, 1970],
        "education": ["compulsory", None, "post_secondary", "upper_secondary"],
        "kommun": ["0180", "1480", "0180", "2480"],
        "birth_region": ["sweden", "nordic", None, "outside_europe"],
        "immigration_date": pd.to_datetime([None, "2001-03-04", None, None]),
        "emigration_date": pd.to_datetime([None, None, None, "2023-05-01"]),
        "death_date": pd.to_datetime([None, None, "2022-01-01", None]),
    }
)
SOCIAL = pd.DataFrame({"person_id": ["p1", "p1", "p4"], "month": ["2020-01", "2020-02", "2021-12"],
                       "amount_sek": [500.0, 600.25, 7000.0]})  # fmt: skip
SUS = pd.DataFrame(
    {
        "person_id": ["p1", None, "p2"],
        "registration_kind": ["person", "anonymous", "person"],
        "forbund_id": ["F1", "F1", "F2"],
        "insats_id": ["I1", "I2", "I3"],
        "insats_type": ["preparatory", "other", "rehab_work_education"],
        "start_date": pd.to_datetime(["2020-01-01", "2020-02-01", "2021-03-15"]),
        "end_date": pd.to_datetime([None, "2020-05-01", "2021-09-30"]),
        "sex": ["K", None, "M"],
        "birth_year": pd.array([1990, pd.NA, 1985], dtype="Int64"),
        "education": [None, None, "compulsory"],
        "kommun": ["0180", None, "1480"],
        "support_at_start": ["sickness_benefit;social_assistance", None, "none"],
        "support_at_end": [None, None, "student_aid"],
        "status_at_end": [None, "work", "studies"],
        "public_support_before": ["lt1y", None, "gt10y"],
    }
)
TABLES = {
    "benefit_spells": SPELLS,
    "population": POPULATION,
    "social_assistance": SOCIAL,
    "sus_registrations": SUS,
}


def _hashes(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()
    }


@pytest.mark.parametrize("fmt", WRITE_FORMATS)
def test_every_written_format_reads_to_identical_canonical_tables(tmp_path, fmt):
    write_tables(TABLES, tmp_path, fmt)
    before = _hashes(tmp_path)
    con, report = read_inputs(load_input_spec(tmp_path / "mapping.yaml"))
    assert report.ok and report.problems == []
    assert report.rows == {
        "benefit_spells": 3,
        "population": 4,
        "social_assistance": 3,
        "sus_registrations": 3,
    }
    for name, ref in TABLES.items():
        got = as_pandas(con.table(name), name, canonical=name)
        assert list(got.columns) == list(ref.columns)
        pd.testing.assert_frame_equal(got, ref, check_dtype=False)
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE benefit_spells)").fetchall())
    assert types == {"person_id": "VARCHAR", "benefit": "VARCHAR", "from_date": "DATE", "to_date": "DATE",
                     "extent": "DOUBLE", "amount_sek": "DOUBLE"}  # fmt: skip
    assert con.execute("SELECT min(month) FROM social_assistance").fetchone()[0] == "2020-01"
    assert _hashes(tmp_path) == before  # inputs are never modified
    if "csv" in fmt:  # parsed once into DuckDB: the same tables, and no longer tied to the file
        con, _ = read_inputs(load_input_spec(tmp_path / "mapping.yaml"), materialize_csv=True)
        (tmp_path / "benefit_spells.csv").rename(tmp_path / "moved.csv")
        got = as_pandas(con.table("benefit_spells"), "benefit_spells", canonical="benefit_spells")
        pd.testing.assert_frame_equal(got, SPELLS, check_dtype=False)


def test_parquet_directory_of_parts_and_numeric_pseudonyms(tmp_path):
    parts = tmp_path / "spells"
    parts.mkdir()
    write_tables({"benefit_spells": SPELLS.iloc[:2]}, tmp_path / "a", "parquet")
    write_tables({"benefit_spells": SPELLS.iloc[2:]}, tmp_path / "b", "parquet")
    (tmp_path / "a" / "benefit_spells.parquet").rename(parts / "part-0.parquet")
    (tmp_path / "b" / "benefit_spells.parquet").rename(parts / "part-1.parquet")
    rel = read_table("benefit_spells", InputTable(path=parts))
    pd.testing.assert_frame_equal(
        as_pandas(rel, "benefit_spells", canonical="benefit_spells"), SPELLS, check_dtype=False
    )
    # row numbers run on across parts: the bad extent sits in row 1 of part-1 = data row 3
    bad = SPELLS.assign(extent=[0.5, 1.0, 2.0])
    write_tables({"benefit_spells": bad.iloc[2:]}, tmp_path / "c", "parquet")
    (tmp_path / "c" / "benefit_spells.parquet").replace(parts / "part-1.parquet")
    report = validate_inputs(InputSpec(tables={"benefit_spells": InputTable(path=parts)}))
    assert [(p.message, p.example_rows) for p in report.problems] == [("extent outside (0, 1]", [3])]
    # SAS keeps LopNr as a number: 17.0 must become the text "17", not "17.0"
    (tmp_path / "num.csv").write_text("person_id,month,earnings_sek\n17,2020-01,100\n", encoding="utf-8")
    con = duckdb.connect()
    con.execute(f"COPY (SELECT 17.0::DOUBLE AS person_id, '2020-01' AS month, 100.0 AS earnings_sek) "
                f"TO '{tmp_path / 'num.parquet'}'")  # fmt: skip
    rel = read_table("earnings", InputTable(path=tmp_path / "num.parquet"))
    assert rel.fetchall() == [("17", "2020-01", 100.0)]


def test_agency_stata_with_numeric_dates_and_renamed_columns(tmp_path):
    import pyreadstat

    df = pd.DataFrame({"LOPNR": [1.0, 2.0], "MANAD": [202001.0, 202002.0], "EKB": [10.5, 20.0]})
    pyreadstat.write_dta(df, tmp_path / "ekb.dta")
    spec = InputTable(path=tmp_path / "ekb.dta", month_format="%Y%m",
                      columns={"LopNr": "person_id", "Manad": "month", "Ekb": "amount_sek"})  # fmt: skip
    rel = read_table("social_assistance", spec)  # mapping keys match case-insensitively
    assert rel.order("month").fetchall() == [("1", "2020-01", 10.5), ("2", "2020-02", 20.0)]


# ------------------------------------------------------------------------------------------------ bad inputs
def _problems(tmp_path: Path, name: str, text: str | bytes, **opts) -> list[str]:
    """Validate one hand-written CSV; the files are hashed before and after (never modified)."""
    path = tmp_path / f"{name}.csv"
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    report = validate_inputs(InputSpec(tables={name: InputTable(path=path, **opts)}))
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    return [str(p).replace(str(tmp_path), "DIR") for p in report.problems]


SPELL_HEAD = "person_id,benefit,from_date,to_date,extent,amount_sek\n"
#: every sus_registrations column (all are required; nullable ones may be empty), the last two rows vary
SUS_HEAD = (
    "sex,birth_year,education,kommun,support_at_end,status_at_end,public_support_before,"
    "person_id,registration_kind,forbund_id,insats_id,insats_type,start_date,end_date,support_at_start\n"
)
SUS_FILL = "K,1990,,0180,,,,"


def test_missing_file(tmp_path):
    report = validate_inputs(InputSpec(tables={"earnings": InputTable(path=tmp_path / "nope.csv")}))
    assert not report.ok
    assert [str(p) for p in report.problems] == [
        f"{tmp_path / 'nope.csv'}: file not found. Check `path` for this table in the input spec (relative paths "
        "resolve against the spec file's folder)"
    ]
    with pytest.raises(InputError, match="1 problem\\(s\\) make the input data unusable") as info:
        report.raise_if_errors()
    assert info.value.problems == report.problems


def test_empty_file_and_header_only(tmp_path):
    assert _problems(tmp_path, "earnings", "") == [
        "DIR/earnings.csv: file is empty (0 bytes). Export the table again"
    ]
    header = (
        "person_id,sex,birth_year,education,kommun,birth_region,immigration_date,emigration_date,death_date\n"
    )
    assert _problems(tmp_path, "population", header) == [
        "DIR/population.csv: file has no data rows. Export the table again with its rows"
    ]


def test_rows_with_extra_fields_are_never_skipped(tmp_path):
    text = "person_id,month,earnings_sek\na,2020-01,1\nb,2020-02,2,extra\nc,2020-03,3\n"
    assert _problems(tmp_path, "earnings", text) == [
        "DIR/earnings.csv: rows with a different number of fields than the header (3) (1 row; e.g. row 2). Check "
        "`separator` (',') and quoting; a field containing the separator must be quoted"
    ]


def test_missing_required_column_names_the_mapping(tmp_path):
    got = _problems(tmp_path, "earnings", "LopNr;Manad\n1;202001\n", separator=";", month_format="%Y%m",
                    columns={"LopNr": "person_id", "Manad": "month", "Lon": "earnings_sek"})  # fmt: skip
    assert got == [
        "DIR/earnings.csv, column 'earnings_sek': required column 'earnings_sek' (mapped from 'Lon') not found. "
        "The file has columns LopNr, Manad; map the right one onto 'earnings_sek' under `columns:` in the input spec"
    ]


def test_duplicate_column_after_mapping(tmp_path):
    got = _problems(tmp_path, "earnings", "LopNr,person_id,month,earnings_sek\n1,1,2020-01,5\n",
                    columns={"LopNr": "person_id"})  # fmt: skip
    assert got == [
        "DIR/earnings.csv, column 'person_id': columns 'LopNr', 'person_id' all map to canonical column "
        "'person_id'. Map only one file column onto each canonical column under `columns:` in the input spec (or "
        "drop the extra column)"
    ]


def test_unparseable_date_reports_rows_not_pseudonyms(tmp_path):
    text = (
        SPELL_HEAD
        + "secret1,SJP,2020-01-01,,1,10\nsecret2,SJP,2020-13-45,,1,10\nsecret3,SJP,1/2/2020,,1,10\n"
    )
    got = _problems(tmp_path, "benefit_spells", text)
    assert got == [
        "DIR/benefit_spells.csv, column 'from_date': cannot parse date with date_format '%Y-%m-%d' (2 rows; e.g. "
        "row 2, 3). Set `date_format` for this table in the input spec to the file's format (e.g. '%Y%m%d' for "
        "20200115)"
    ]
    assert "secret" not in " ".join(got)


def test_end_before_start_and_implausible_dates(tmp_path):
    text = (
        SPELL_HEAD
        + "a,SJP,2020-05-01,2020-04-30,1,10\nb,SJP,2020-01-01,9999-12-31,1,10\nc,SJP,1850-01-01,,1,1\n"
    )
    year = date.today().year  # register dates run from 1990 to the end of this year (end dates: next year)
    fix = (
        "Correct the dates (a typo such as 2202 for 2022?); placeholders such as 9999-12-31 for open-ended spells "
        "must be left empty instead; if the dates are real, widen the range with `plausible: {%s: [LOWEST, "
        "HIGHEST]}` for this table in the input spec"
    )
    assert _problems(tmp_path, "benefit_spells", text) == [
        f"DIR/benefit_spells.csv, column 'from_date': date outside the plausible range 1990-01-01 to {year}-12-31 "
        "(1 row; e.g. row 3). " + fix % "from_date",
        f"DIR/benefit_spells.csv, column 'to_date': date outside the plausible range 1990-01-01 to {year + 1}-12-31 "
        "(1 row; e.g. row 2). " + fix % "to_date",
        "DIR/benefit_spells.csv, column 'to_date': to_date before from_date (1 row; e.g. row 1). Check the two "
        "date columns (swapped, or a typo); to_date must be on or after from_date",
    ]


def test_extent_negative_amount_non_numeric_and_unknown_benefit(tmp_path):
    text = SPELL_HEAD + (
        "a,SJP,2020-01-01,,0,10\nb,SJP,2020-01-01,,1.5,10\nc,SJP,2020-01-01,,1,-3\n"
        "d,SJP,2020-01-01,,1,12 kr\ne,FOO,2020-01-01,,1,1\nf,BAR,2020-01-01,,1,1\ng,FOO,2020-01-02,,1,1\n"
    )
    assert _problems(tmp_path, "benefit_spells", text) == [
        "DIR/benefit_spells.csv, column 'benefit': unknown benefit code(s) 'BAR', 'FOO' (3 rows; e.g. row 5, 6, "
        "7). Allowed codes: SJP, RHP, SA, AE, AKS, UTV, AKA. Map agency codes onto them under `codes: {benefit: "
        "{AGENCY_CODE: canonical}}` in the input spec",
        "DIR/benefit_spells.csv, column 'extent': extent outside (0, 1] (2 rows; e.g. row 1, 2). Omfattning is a "
        "share of full time (1, 0.75, 0.5, 0.25); divide percentages by 100",
        "DIR/benefit_spells.csv, column 'amount_sek': non-numeric value (1 row; e.g. row 4). Check the decimal "
        "mark (`decimal: '.'` in the input spec) and remove text such as units, spaces or thousands separators",
        "DIR/benefit_spells.csv, column 'amount_sek': negative amount (1 row; e.g. row 3). Amounts are paid SEK and "
        "cannot be negative; net out reversed or corrected payments before reading",
    ]


def test_decimal_comma_without_decimal_setting_is_non_numeric(tmp_path):
    text = "person_id;month;amount_sek\na;2020-01;10,5\n"
    got = _problems(tmp_path, "social_assistance", text, separator=";")
    assert got[0].startswith(
        "DIR/social_assistance.csv, column 'amount_sek': non-numeric value (1 row; e.g. row 1)"
    )
    assert _problems(tmp_path, "social_assistance", text, separator=";", decimal=",") == []


def test_unknown_insats_type_and_person_registration_without_id(tmp_path):
    text = SUS_HEAD + SUS_FILL + "a,person,F1,I1,preparatory,2020-01-01,,\n"
    text += SUS_FILL + ",person,F1,I1,Kartläggning,2020-01-01,,\n"
    assert _problems(tmp_path, "sus_registrations", text) == [
        "DIR/sus_registrations.csv, column 'insats_type': unknown insats_type code(s) 'Kartläggning' (1 row; e.g. "
        "row 2). Allowed codes: rehab_work_education, preparatory, assessment, preventive, other. Map agency codes "
        "onto them under `codes: {insats_type: {AGENCY_CODE: canonical}}` in the input spec",
        "DIR/sus_registrations.csv, column 'person_id': person registration without person_id (1 row; e.g. row 2). "
        "Registrations without a pseudonym must have registration_kind 'anonymous'",
    ]
    mapped = _problems(
        tmp_path, "sus_registrations", text, codes={"insats_type": {"Kartläggning": "assessment"}}
    )
    assert mapped == [
        "DIR/sus_registrations.csv, column 'person_id': person registration without person_id (1 row; e.g. row 2). "
        "Registrations without a pseudonym must have registration_kind 'anonymous'"
    ]


def test_unknown_support_code_in_a_code_set(tmp_path):
    text = SUS_HEAD + SUS_FILL + "a,person,F1,I1,other,2020-01-01,,none\n"
    text += SUS_FILL + 'b,person,F1,I1,other,2020-01-01,,"social_assistance;bidrag"\n'
    assert _problems(tmp_path, "sus_registrations", text) == [
        "DIR/sus_registrations.csv, column 'support_at_start': unknown support_at_start code(s) 'bidrag' (1 row; "
        "e.g. row 2). Allowed codes: sickness_benefit, disability_benefit, unemployment_insurance, activity_support, "
        "social_assistance, student_aid, other_public, none. Map agency codes onto them under `codes: "
        "{support_at_start: {AGENCY_CODE: canonical}}` in the input spec"
    ]


def test_duplicate_key_rows(tmp_path):
    text = SPELL_HEAD + "a,SJP,2020-01-01,,1,10\nb,SJP,2020-01-01,,1,10\na,SJP,2020-01-01,,1,10\n"
    assert _problems(tmp_path, "benefit_spells", text) == [
        "DIR/benefit_spells.csv, column 'person_id, benefit, from_date, to_date, extent, amount_sek': identical "
        "duplicate rows (counted once) (1 row; e.g. row 3). Identical rows (e.g. retroactive corrections written "
        "twice) are counted once by the later stages; remove them from the extract to silence this warning"
    ]
    text = "person_id,month,amount_sek\na,2020-01,1\na,2020-02,1\na,2020-01,5\nb,2020-01,1\na,2020-01,2\na,2020-02,1\n"
    assert _problems(tmp_path, "social_assistance", text) == [
        "DIR/social_assistance.csv, column 'person_id, month': identical duplicate rows (counted once) (1 row; e.g. "
        "row 6). Identical rows (e.g. retroactive corrections written twice) are counted once by the later stages; "
        "remove them from the extract to silence this warning",
        "DIR/social_assistance.csv, column 'person_id, month': more than one row per (person_id, month) with "
        "different values (2 rows; e.g. row 3, 5). Keep one row per key (e.g. sum the amounts of one person and "
        "month) before reading",
    ]
    report = validate_inputs(
        InputSpec(tables={"social_assistance": InputTable(path=tmp_path / "social_assistance.csv")})
    )
    assert [p.severity for p in report.problems] == ["warning", "error"] and not report.ok


def test_kommun_codes_keep_four_digits(tmp_path):
    head = (
        "person_id,sex,birth_year,education,kommun,birth_region,immigration_date,emigration_date,death_date\n"
    )
    text = head + "a,K,1990,,0180,,,,\nb,M,1980,,180,,,,\n"
    assert _problems(tmp_path, "population", text) == [
        "DIR/population.csv, column 'kommun': kommun is not a 4-digit code (1 row; e.g. row 2). Kommun codes have "
        "four digits (0180 Stockholm); a lost leading zero (180) means the column was read as a number by the "
        "exporting program: export it as text"
    ]
    numeric = POPULATION.assign(kommun=[180.0, 1480.0, 180.0, 2480.0])  # as a Stata export stores it
    import pyreadstat

    pyreadstat.write_dta(numeric.astype({"birth_year": "float64"}), tmp_path / "pop.dta")
    rel = read_table("population", InputTable(path=tmp_path / "pop.dta"))
    assert [r[0] for r in rel.project("kommun").fetchall()] == ["0180", "1480", "0180", "2480"]


def test_missing_person_id_and_bad_months(tmp_path):
    text = "person_id,month,earnings_sek\na,2020-01,1\n,2020-02,1\nb,2020-1,1\nc,202003,1\nd,2020-13,1\n"
    assert _problems(tmp_path, "earnings", text) == [
        "DIR/earnings.csv, column 'person_id': missing person_id (1 row; e.g. row 2). Every row of earnings must "
        "name a person; drop rows without one before reading or fix the export",
        "DIR/earnings.csv, column 'month': value is not a month in YYYY-MM format (3 rows; e.g. row 3, 4, 5). Months "
        "are calendar months like 2020-01; set `month_format` in the input spec (e.g. '%Y%m' for 202001)",
    ]


def test_latin1_read_as_utf8_is_an_error_never_garbled(tmp_path):
    head = SUS_HEAD.replace(",", ";")
    fill = SUS_FILL.replace(",", ";")
    body = "".join(fill + f"{p};person;F1;I1;{t};2020-01-01;;\n" for p, t in [("a", "Förberedande"), ("b", "Övrigt"),
                                                                            ("c", "x")])  # fmt: skip
    raw = (head + body).encode("latin-1")
    codes = {"insats_type": {"Förberedande": "preparatory", "Övrigt": "other", "x": "other"}}
    got = _problems(tmp_path, "sus_registrations", raw, separator=";", codes=codes)
    assert got == [
        "DIR/sus_registrations.csv: file is not valid utf-8 text (bytes that are not utf-8, e.g. å ä ö written as "
        "Latin-1) (2 rows; e.g. row 1, 2). Set `encoding: latin-1` (or the file's encoding, e.g. cp1252) for this "
        "table in the input spec"
    ]
    assert _problems(tmp_path, "sus_registrations", raw, separator=";", codes=codes, encoding="latin-1") == []
    # the other way round: DuckDB refuses UTF-8 declared as Latin-1 ...
    utf8 = (head + body).encode("utf-8")
    assert _problems(tmp_path, "sus_registrations", utf8, separator=";", codes=codes, encoding="latin-1") == [
        "DIR/sus_registrations.csv: file is not Latin-1 text (it looks like UTF-8, which read as Latin-1 would "
        "garble å ä ö). Set `encoding: utf-8` for this table in the input spec"
    ]
    # ... and UTF-8 declared as cp1252 garbles 'ö' into 'Ã¶': the unknown code says so
    got = _problems(tmp_path, "sus_registrations", utf8, separator=";", codes=codes, encoding="cp1252")
    assert len(got) == 1 and "unknown insats_type code(s) 'FÃ¶rberedande', 'Ã–vrigt' (2 rows" in got[0]
    assert got[0].endswith("the codes look like UTF-8 text read as Latin-1, so check `encoding`")


def test_cp1252_is_transcoded_to_a_temporary_copy(tmp_path):
    path = tmp_path / "pop.csv"
    path.write_bytes(
        (
            "person_id;sex;birth_year;kommun;education;birth_region;immigration_date;emigration_date;death_date\n"
            "p1;K;1990;0180;compulsory;sweden;;;\n"
        ).encode("cp1252")
    )
    rel = read_table("population", InputTable(path=path, separator=";", encoding="cp1252"))
    assert rel.project("person_id, kommun").fetchall() == [("p1", "0180")]


def test_persons_missing_from_population_is_a_warning(tmp_path):
    write_tables({"population": POPULATION}, tmp_path, "parquet")
    (tmp_path / "spells.csv").write_text(SPELL_HEAD + "p1,SJP,2020-01-01,,1,1\np2,SJP,2020-01-01,,1,1\n"
                                         "x9,SJP,2020-01-01,,1,1\nx9,AKA,2020-01-01,,1,1\nx8,SJP,2020-01-01,,1,1\n"
                                         "p3,AKA,2020-01-01,,1,1\n")  # fmt: skip
    tables = {"population": InputTable(path=tmp_path / "population.parquet"),
              "benefit_spells": InputTable(path=tmp_path / "spells.csv")}  # fmt: skip
    report = validate_inputs(InputSpec(tables=tables))
    assert report.ok
    assert [str(p).replace(str(tmp_path), "DIR") for p in report.warnings] == [
        "DIR/spells.csv, column 'person_id': 2 person(s) not found in population (3 rows; e.g. row 3, 4, 5). Their "
        "rows are kept but they have no background data; check that all files come from the same extract"
    ]
    frame = report.to_frame()
    assert frame[["table", "severity", "n_rows", "example_rows"]].values.tolist() == [
        ["benefit_spells", "warning", 3, "3, 4, 5"]
    ]
    assert report.table_frame()["rows"].tolist() == [4, 6]
    assert "all inputs usable" in report.summary()
    # 3 of 5 persons found (60 %): below a required share of 70 % the warning becomes an error
    strict = validate_inputs(InputSpec(tables=tables, min_share_in_population=0.7))
    assert [(p.severity, p.message.split(";")[0]) for p in strict.problems] == [
        ("error", "only 3 of 5 pseudonyms (60%) are found in population")
    ]


def test_read_inputs_raises_and_agency_codes_map(tmp_path):
    write_tables({"benefit_spells": SPELLS}, tmp_path, "agency-csv")
    text = (tmp_path / "benefit_spells.csv").read_text(encoding="latin-1")
    (tmp_path / "benefit_spells.csv").write_text(text.replace("REHAB", "REHABX"), encoding="latin-1")
    with pytest.raises(InputError, match="unknown benefit code\\(s\\) 'REHABX'"):
        read_inputs(load_input_spec(tmp_path / "mapping.yaml"))
    assert np.isclose(SPELLS["amount_sek"].sum(), 1334.25)


def test_cli_validate_exit_codes_and_writes_nothing(tmp_path):
    from typer.testing import CliRunner

    from finsam_effekt.cli import app

    write_tables({"earnings": pd.DataFrame({"person_id": ["a", "b"], "month": ["2020-01", "2020-02"],
                                            "earnings_sek": [1.0, 2.0]})}, tmp_path, "agency-csv")  # fmt: skip
    runner = CliRunner()
    ok = runner.invoke(app, ["validate", str(tmp_path / "mapping.yaml")])
    assert ok.exit_code == 0, ok.output
    assert "all inputs usable" in ok.output
    # an analysis config whose `inputs:` names the input spec is accepted too, and needs every register table
    import yaml

    config = {"inputs": "mapping.yaml", "window": {"start": "2020-01", "end": "2020-12"}}
    (tmp_path / "analysis.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    incomplete = runner.invoke(app, ["validate", str(tmp_path / "analysis.yaml")])
    assert incomplete.exit_code == 1
    assert "sus_registrations" in incomplete.output and "population" in incomplete.output
    path = tmp_path / "earnings.csv"
    path.write_text(path.read_text(encoding="latin-1").replace("2,0", "-2,0"), encoding="latin-1")
    before = sorted(p.name for p in tmp_path.iterdir())
    bad = runner.invoke(app, ["validate", str(tmp_path / "mapping.yaml")])
    assert bad.exit_code == 1
    assert "negative amount (1 row; e.g. row 2)" in " ".join(bad.output.split())
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_agency_template_reads_what_synth_agency_csv_writes(tmp_path):
    import yaml

    from finsam_effekt.schema import AGENCY_CODES, AGENCY_COLUMNS

    template = yaml.safe_load(
        (Path(__file__).parents[1] / "configs" / "agency_inputs.yaml").read_text("utf-8")
    )
    for name, entry in template["tables"].items():  # the template names every agency column and code
        assert entry["columns"] == {v: k for k, v in AGENCY_COLUMNS[name].items()}, name
        assert entry.get("codes", {}) == AGENCY_CODES.get(name, {}), name
    write_tables(TABLES, tmp_path, "agency-csv")
    template["tables"] = {k: v for k, v in template["tables"].items() if k in TABLES}
    (tmp_path / "template.yaml").write_text(yaml.safe_dump(template, allow_unicode=True), encoding="utf-8")
    con, report = read_inputs(load_input_spec(tmp_path / "template.yaml"))
    assert report.ok and not report.problems
    for name, ref in TABLES.items():
        pd.testing.assert_frame_equal(
            as_pandas(con.table(name), name, canonical=name), ref, check_dtype=False
        )


def test_sas_like_files_stream_in_chunks(tmp_path, monkeypatch):
    import finsam_effekt.io.read as io_read

    # 4 population rows -> 2 chunks, row numbers run on
    monkeypatch.setattr(io_read, "READSTAT_CHUNK_ROWS", 2)
    bad = POPULATION.assign(birth_year=[1990, 1985, 2000, 1800])
    write_tables({"population": bad}, tmp_path, "sav")
    report = validate_inputs(load_input_spec(tmp_path / "mapping.yaml"))
    assert [(p.message, p.example_rows) for p in report.problems] == [
        (f"birth_year outside the plausible range 1900 to {date.today().year}", [4])
    ]
    write_tables({"population": POPULATION}, tmp_path, "dta")
    con, _ = read_inputs(load_input_spec(tmp_path / "mapping.yaml"))
    pd.testing.assert_frame_equal(
        as_pandas(con.table("population"), "population", canonical="population"),
        POPULATION,
        check_dtype=False,
    )


# ------------------------------------------------------------------------------------------- the synthetic world
SYNTH_PERSONS = 400


@pytest.fixture(scope="module")
def synth_reference(make_world):
    """The small synthetic world as Parquet, read through io, checked against the files read by pyarrow."""
    from finsam_effekt.schema import TABLES as CANONICAL
    from finsam_effekt.synth import SynthConfig

    out = make_world(SynthConfig(persons=SYNTH_PERSONS)).path
    con, report = read_inputs(load_input_spec(out / "mapping.yaml"))
    assert report.ok
    tables = {t: as_pandas(con.table(t), t, canonical=t) for t in CANONICAL}
    for t, df in tables.items():
        direct = pd.read_parquet(out / f"{t}.parquet")
        for c in direct.columns:
            if (
                str(direct[c].dtype).startswith(("datetime64", "object"))
                and CANONICAL[t].column(c).kind == "date"
            ):
                direct[c] = pd.to_datetime(direct[c]).astype("datetime64[ns]")
        pd.testing.assert_frame_equal(df, direct, check_dtype=False)
    return tables


@pytest.mark.parametrize("fmt", [f for f in WRITE_FORMATS if f != "parquet"])
def test_synth_world_reads_to_identical_tables_in_every_format(tmp_path, fmt, synth_reference):
    from finsam_effekt.synth import SynthConfig, generate

    generate(tmp_path, SynthConfig(persons=SYNTH_PERSONS), fmt)
    before = _hashes(tmp_path)
    specs = [load_input_spec(tmp_path / "mapping.yaml")]
    if fmt == "agency-csv":  # the shipped template reads synth's agency files too
        import yaml

        template = yaml.safe_load(
            (Path(__file__).parents[1] / "configs" / "agency_inputs.yaml").read_text("utf-8")
        )
        template["base_dir"] = str(tmp_path)
        specs.append(InputSpec.model_validate(template).resolved(tmp_path))
    for spec in specs:
        con, report = read_inputs(spec)
        assert report.ok
        for t, ref in synth_reference.items():
            pd.testing.assert_frame_equal(
                as_pandas(con.table(t), t, canonical=t), ref, check_dtype=False, obj=f"{fmt} {t}"
            )
    assert _hashes(tmp_path) == before


def test_unknown_extension_and_empty_parts_directory(tmp_path):
    from finsam_effekt.errors import ConfigError

    (tmp_path / "e.xlsx").write_bytes(b"x")
    with pytest.raises(
        ConfigError, match=r"cannot tell the file format from the extension '\.xlsx'; set `format:`"
    ) as err:
        validate_inputs(InputSpec(tables={"earnings": InputTable(path=tmp_path / "e.xlsx")}))
    assert str(err.value) == (
        f"{tmp_path / 'e.xlsx'}: cannot tell the file format from the extension '.xlsx'; set `format:` "
        "(parquet, csv, sas, spss or stata) for this table in the input spec"
    )
    (tmp_path / "parts").mkdir()
    report = validate_inputs(InputSpec(tables={"earnings": InputTable(path=tmp_path / "parts")}))
    assert [str(p) for p in report.problems] == [
        f"{tmp_path / 'parts'}: directory contains no .parquet files. Point `path` at a Parquet file or a directory "
        "of Parquet parts"
    ]


def test_sas_transport_file(tmp_path):
    import pyreadstat

    df = pd.DataFrame({"LOPNR": ["p1", "p2"], "MANAD": ["202001", "202002"], "BELOPP": [1500.5, 200.0]})
    pyreadstat.write_xport(df, tmp_path / "ekb.xpt", file_format_version=5)
    spec = InputTable(path=tmp_path / "ekb.xpt", month_format="%Y%m",
                      columns={"LOPNR": "person_id", "MANAD": "month", "BELOPP": "amount_sek"})  # fmt: skip
    assert read_table("social_assistance", spec).fetchall() == [
        ("p1", "2020-01", 1500.5),
        ("p2", "2020-02", 200.0),
    ]


def test_code_sets_are_mapped_element_by_element(tmp_path):
    text = SUS_HEAD + SUS_FILL + 'a,person,F1,I1,other,2020-01-01,,"Sjukpenning; Ekonomiskt bistånd"\n'
    path = tmp_path / "sus.csv"
    path.write_text(text, encoding="utf-8")
    codes = {
        "support_at_start": {"Sjukpenning": "sickness_benefit", "Ekonomiskt bistånd": "social_assistance"}
    }
    rel = read_table("sus_registrations", InputTable(path=path, codes=codes))
    assert rel.project("support_at_start").fetchall() == [("sickness_benefit;social_assistance",)]


def test_arrow_chunks_write_the_same_parquet_bytes_as_frames(tmp_path):
    """``TableWriter.write_arrow`` (synth's worker processes) writes exactly what ``TableWriter.write`` writes."""
    from finsam_effekt.io import TableWriter, canonical_arrow_table

    for sub, arrow in (("frames", False), ("arrow", True)):
        (tmp_path / sub).mkdir()
        w = TableWriter(tmp_path / sub, "benefit_spells", "parquet")
        for part in (SPELLS.iloc[:2], SPELLS.iloc[2:]):
            if arrow:
                w.write_arrow(canonical_arrow_table(part, "benefit_spells"))
            else:
                w.write(part)
        w.close()
        assert w.rows == len(SPELLS)
    assert _hashes(tmp_path / "frames") == _hashes(tmp_path / "arrow")
    csv = TableWriter(tmp_path, "benefit_spells", "csv")
    with pytest.raises(ValueError, match="write_arrow writes Parquet only; this writer writes 'csv'"):
        csv.write_arrow(canonical_arrow_table(SPELLS, "benefit_spells"))


def test_canonical_relation_to_pandas_refuses_more_than_max_rows(tmp_path):
    """Large canonical tables stay in DuckDB: ``tables.as_pandas`` refuses them with an InputError."""
    write_tables({"benefit_spells": SPELLS}, tmp_path)
    con, _ = read_inputs(load_input_spec(tmp_path / "mapping.yaml"))
    rel = con.table("benefit_spells")
    with pytest.raises(
        InputError, match=r"benefit_spells: 3 rows is too many to load into memory \(max_rows=2\)"
    ):
        as_pandas(rel, "benefit_spells", canonical="benefit_spells", max_rows=2)
    got = as_pandas(rel, "benefit_spells", canonical="benefit_spells", max_rows=3)
    assert str(got["from_date"].dtype) == "datetime64[ns]"
    pd.testing.assert_frame_equal(got, SPELLS, check_dtype=False)


# ------------------------------------------------------------------------------ plausibility settings of the spec
def test_plausible_ranges_can_be_widened_and_tightened(tmp_path):
    text = SPELL_HEAD + "a,SJP,1985-03-01,1985-03-31,1,9300\nb,SJP,2020-01-01,2020-01-31,1,9300\n"
    year = date.today().year
    assert [p.split(" (")[0] for p in _problems(tmp_path, "benefit_spells", text)] == [
        f"DIR/benefit_spells.csv, column 'from_date': date outside the plausible range 1990-01-01 to {year}-12-31",
        f"DIR/benefit_spells.csv, column 'to_date': date outside the plausible range 1990-01-01 to {year + 1}-12-31",
    ]
    wide = {"from_date": ("1980-01-01", "2030-12-31"), "to_date": ("1980-01-01", "2030-12-31")}
    assert _problems(tmp_path, "benefit_spells", text, plausible=wide) == []
    tight = {**wide, "amount_sek": (0, 5000)}
    assert [p.split(" (")[0] for p in _problems(tmp_path, "benefit_spells", text, plausible=tight)] == [
        "DIR/benefit_spells.csv, column 'amount_sek': value outside the plausible range 0 to 5 000"
    ]


def test_known_scale_needs_enough_values_and_can_be_set(tmp_path):
    rows = "".join(f"p{i},2020-{1 + i % 12:02d},{20 + i}\n" for i in range(150))  # median about 95 kr a month
    text = "person_id,month,earnings_sek\n" + rows
    got = _problems(tmp_path, "earnings", text)
    assert len(got) == 1 and got[0].startswith(
        "DIR/earnings.csv, column 'earnings_sek': the median positive monthly earnings is about 94.5 kr, outside "
        "the register's known scale 1 000 to 1 000 000 kr. A thousands separator read as a decimal point"
    )
    assert _problems(tmp_path, "earnings", text, median_range={"earnings_sek": (10, 1000)}) == []
    few = "person_id,month,earnings_sek\n" + "".join(rows.splitlines(keepends=True)[:99])
    assert _problems(tmp_path, "earnings", few) == []  # 99 values say nothing about a register's scale


@pytest.mark.parametrize(
    ("table", "entry", "message"),
    [
        ("earnings", {"plausible": {"month": [1, 2]}},
         "tables.earnings.plausible.month: expected two months [YYYY-MM, YYYY-MM], got [1.0, 2.0]"),
        ("earnings", {"plausible": {"person_id": [1, 2]}},
         "tables.earnings.plausible: 'person_id' is not a column of earnings with numbers, dates or months (month, "
         "earnings_sek)"),
        ("earnings", {"plausible": {"earnings_sek": [5, 1]}},
         "tables.earnings.plausible.earnings_sek: the lowest value 5.0 is above the highest 1.0"),
        ("benefit_spells", {"plausible": {"from_date": ["2020-01-01", "2020-13-01"]}},
         "tables.benefit_spells.plausible.from_date: expected two dates [YYYY-MM-DD, YYYY-MM-DD], got "
         "['2020-01-01', '2020-13-01']"),
        ("earnings", {"median_range": {"month": [1, 2]}},
         "tables.earnings.median_range: 'month' is not an amount column of earnings (earnings_sek)"),
        ("earnings", {"codes": {"month": {"x": "y"}}},
         "tables.earnings.codes: 'month' has no codes to map (coded columns of earnings: none)"),
        ("population", {"codes": {"kommun": {"": "okänd"}}},
         "tables.population.codes.kommun: '' maps onto 'okänd', which is not a canonical kommun code (a 4-digit "
         "kommun code or 'unknown')"),
        ("earnings", {"on_implausible": "drop"}, "tables.earnings.on_implausible: Input should be 'error' or 'cap'"),
    ],
)  # fmt: skip
def test_input_spec_keys_are_checked(tmp_path, table, entry, message):
    import yaml

    from finsam_effekt.errors import ConfigError

    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump({"tables": {table: {"path": "x.csv", **entry}}}), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_input_spec(path)
    assert message in str(err.value)


def test_empty_cells_map_onto_unknown_in_codes_and_code_sets(tmp_path):
    head = (
        "person_id,sex,birth_year,education,kommun,birth_region,immigration_date,emigration_date,death_date\n"
    )
    path = tmp_path / "pop.csv"
    path.write_text(head + "a,K,1990,,,,,,\nb,M,1980,9,0180,nordic,,,\n", encoding="utf-8")
    codes = {
        "education": {"": "unknown", "9": "unknown"},
        "birth_region": {"": "unknown"},
        "kommun": {"": "unknown"},
    }
    rel = read_table("population", InputTable(path=path, codes=codes))
    assert rel.project("education, kommun, birth_region").fetchall() == [
        ("unknown", "unknown", "unknown"),
        ("unknown", "0180", "nordic"),
    ]
    text = (
        SUS_HEAD
        + SUS_FILL
        + "a,person,F1,I1,other,2020-01-01,,\n"
        + SUS_FILL
        + "b,person,F1,I1,other,2020-01-01,,SJ\n"
    )
    path = tmp_path / "sus.csv"
    path.write_text(text, encoding="utf-8")
    rel = read_table(
        "sus_registrations",
        InputTable(path=path, codes={"support_at_start": {"": "none", "SJ": "sickness_benefit"}}),
    )
    assert rel.project("support_at_start").fetchall() == [("none",), ("sickness_benefit",)]
