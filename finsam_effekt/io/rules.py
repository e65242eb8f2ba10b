"""The rules every raw value must follow: one SQL check per rule and column, plausible ranges and known scales.

:func:`row_checks` lists the row-level rules of one canonical table as SQL conditions over the parsed columns
(``v__<name>`` the canonical value, ``p__<name>`` whether the raw cell is filled, ``t__<name>`` the raw text of a
number read from text); :mod:`~finsam_effekt.io.validate` counts them all in one scan. Three kinds of rule guard
against numbers that are wrong but parse:

- **finite and plausible**: every amount is a finite number (``inf``, ``NaN`` and ``1e308`` never reach the
  estimation) within a plausible range per column (:func:`default_plausible`, replaced per column by the input
  spec's ``plausible:``). Values outside stop validation, or with ``on_implausible: cap`` are capped to the range
  and counted in a warning. Months and register dates lie in the register era (from :data:`REGISTER_ERA_START` to
  the end of the current year; end dates one year more), so a typo such as 2202-01 or 1918-03 is an error naming
  its rows instead of stretching the register window by two centuries.
- **known scale** (:func:`scale_checks`): the median positive value of an amount column lies in the band the
  register is known to have (:data:`MEDIAN_RANGES`; the input spec's ``median_range:``), so a 1 000-fold unit
  error in a whole column, e.g. a thousands separator read as a decimal point, is caught.
- **thousands separators**: in a file whose decimal mark is ``,``, a number written with ``.`` is an error
  (``13.738`` would otherwise be read as 13.738 kr).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ..config import InputTable
from ..schema import TABLES, UNKNOWN
from .read import sql_ident, sql_literal

#: First month of the register era: months and register dates (SUS, benefit spells) before it are typos.
REGISTER_ERA_START: str = "1990-01"
#: Earliest plausible date of a life event in ``population`` (immigration, emigration, death) and birth year.
EARLIEST_LIFE_DATE: str = "1900-01-01"
#: Default plausible range of each amount and count, per (table, column). The ranges catch a corrupted cell or a
#: unit error in single rows and leave real extremes alone: ten million kronor of earnings in one month, half a
#: million of social assistance in one month, fifty million on one benefit spell (decades of sickness
#: compensation stay far below), a thousand million on one insats in one year.
PLAUSIBLE_AMOUNTS: dict[tuple[str, str], tuple[float, float]] = {
    ("earnings", "earnings_sek"): (0, 10_000_000),
    ("social_assistance", "amount_sek"): (0, 500_000),
    ("benefit_spells", "amount_sek"): (0, 50_000_000),
    ("insats_costs", "cost_sek"): (0, 1_000_000_000),
    ("sus_volume", "participations"): (0, 1_000_000),
}
#: The register's known scale: the band the median positive value of a column must lie in, per (table, column).
#: Monthly earnings (the Swedish median is about 30 000 kr), social assistance per month (about 8 000 kr), SEK per
#: nettodag of a closed benefit spell (about 100 to 1 200 kr), cost per insats and year. Outside the band the
#: whole column is off by a unit (a thousands separator read as a decimal point, thousands of kronor, öre).
MEDIAN_RANGES: dict[tuple[str, str], tuple[float, float]] = {
    ("earnings", "earnings_sek"): (1_000, 1_000_000),
    ("social_assistance", "amount_sek"): (100, 100_000),
    ("benefit_spells", "amount_sek"): (20, 5_000),
    ("insats_costs", "cost_sek"): (1_000, 100_000_000),
}
#: The median is compared with the known scale only from this many positive values on (a handful of rows say
#: nothing about a register's scale).
MEDIAN_MIN_VALUES: int = 100
#: Columns that may not be negative, and the word used for them in messages.
NONNEGATIVE: dict[str, str] = {
    "amount_sek": "amount",
    "earnings_sek": "amount",
    "cost_sek": "amount",
    "participations": "count",
}
#: (table, start column, end column) pairs where the end may not precede the start.
DATE_ORDER: tuple[tuple[str, str, str], ...] = (
    ("sus_registrations", "start_date", "end_date"),
    ("benefit_spells", "from_date", "to_date"),
)
#: The largest finite double: ``v BETWEEN -MAX AND MAX`` is false for inf, -inf and NaN (DuckDB orders NaN above
#: every number) and scans several times faster than ``isfinite``.
_MAX = "1.7976931348623157e308"
_LIFE_DATES = {("population", c) for c in ("immigration_date", "emigration_date", "death_date")}
_END_DATES = {("sus_registrations", "end_date"), ("benefit_spells", "to_date")}


def default_plausible(table: str, today: date | None = None) -> dict[str, tuple]:
    """The default plausible range of every column of ``table`` that has one: amounts and counts
    (:data:`PLAUSIBLE_AMOUNTS`), dates and months (register era, or from :data:`EARLIEST_LIFE_DATE` for life
    events; up to the end of ``today``'s year, end dates one year more, life events up to ``today``), birth years
    (1900 to this year) and years (from the register era to next year). Dates are ``YYYY-MM-DD`` text, months
    ``YYYY-MM``."""
    today = today or date.today()
    era_year = int(REGISTER_ERA_START[:4])
    out: dict[str, tuple] = {}
    for col in TABLES[table].columns:
        key = (table, col.name)
        if key in PLAUSIBLE_AMOUNTS:
            out[col.name] = PLAUSIBLE_AMOUNTS[key]
        elif col.kind == "date" and key in _LIFE_DATES:
            out[col.name] = (EARLIEST_LIFE_DATE, today.isoformat())
        elif col.kind == "date":
            out[col.name] = (f"{REGISTER_ERA_START}-01", f"{today.year + (key in _END_DATES)}-12-31")
        elif col.kind == "month":
            out[col.name] = (REGISTER_ERA_START, f"{today.year}-12")
        elif col.name == "birth_year":
            out[col.name] = (int(EARLIEST_LIFE_DATE[:4]), today.year)
        elif col.name == "year":
            out[col.name] = (era_year, today.year + 1)
    return out


def plausible_ranges(table: str, t: InputTable, today: date | None = None) -> dict[str, tuple]:
    """The plausible ranges in force: :func:`default_plausible`, each column replaced by the spec's ``plausible``."""
    return {**default_plausible(table, today), **t.plausible}


def median_ranges(table: str, t: InputTable) -> dict[str, tuple[float, float]]:
    """The known-scale bands in force: :data:`MEDIAN_RANGES`, each column replaced by the spec's ``median_range``."""
    out = {c: band for (tab, c), band in MEDIAN_RANGES.items() if tab == table}
    return {**out, **t.median_range}


def finite(sql: str) -> str:
    """SQL: ``sql`` is a finite number (false for inf, -inf and NaN, NULL for NULL)."""
    return f"({sql} BETWEEN -{_MAX} AND {_MAX})"


def value(name: str) -> str:
    """SQL name of the parsed canonical value of column ``name``."""
    return sql_ident(f"v__{name}")


def present(name: str) -> str:
    """SQL name of the flag "the raw cell of ``name`` is filled"."""
    return sql_ident(f"p__{name}")


def raw_text(name: str) -> str:
    """SQL name of the raw text of number column ``name`` (sources read as text only)."""
    return sql_ident(f"t__{name}")


@dataclass
class Check:
    """One row-level rule: ``condition`` (SQL over the parsed columns) is TRUE on a bad row."""

    column: str | None
    condition: str
    message: str
    hint: str
    severity: str = "error"
    codes: tuple[
        str, ...
    ] = ()  # for unknown-code checks: the allowed codes (examples are added to the message)
    cap: tuple[float, float] | None = None  # for capped plausibility checks: the range values are capped to
    thousands: bool = (
        False  # the thousands-separator rule (when it fires, the known-scale check is not repeated)
    )


def _month_human(fmt: str) -> str:
    return fmt.replace("%Y", "YYYY").replace("%m", "MM")


def _num(x: float) -> str:
    """A number for a message: whole numbers with a space between thousands (10 000 000)."""
    return f"{x:,.0f}".replace(",", " ") if float(x).is_integer() else f"{x:g}"


def _range_checks(table: str, col, t: InputTable, rng: tuple, text_source: bool) -> list[Check]:
    """Finite, thousands-separator and plausible-range rules of one number, date or month column."""
    v, name = value(col.name), col.name
    lo, hi = rng
    out = []
    widen = (
        f"widen the range with `plausible: {{{name}: [LOWEST, HIGHEST]}}` for this table in the input spec"
    )
    if col.kind == "date":
        out.append(Check(name, f"{v} < DATE {sql_literal(lo)} OR {v} > DATE {sql_literal(hi)}",
                         f"date outside the plausible range {lo} to {hi}",
                         "Correct the dates (a typo such as 2202 for 2022?); placeholders such as 9999-12-31 for "
                         f"open-ended spells must be left empty instead; if the dates are real, {widen}"))  # fmt: skip
        return out
    if col.kind == "month":
        out.append(Check(name, f"{v} < {sql_literal(lo)} OR {v} > {sql_literal(hi)}",
                         f"month outside the plausible range {lo} to {hi}",
                         "A typo such as 2202-01 for 2022-01 or 1918-03 for 2018-03? Correct the months; if they "
                         f"are real, {widen}"))  # fmt: skip
        return out
    if col.kind == "float":
        out.append(Check(name, f"{present(name)} AND NOT {finite(v)}", "not a finite number (inf or NaN)",
                         "Non-finite numbers never reach the estimation: correct the rows in the export (an "
                         "overflow or a division by zero upstream?)"))  # fmt: skip
    if col.kind == "float" and text_source and t.decimal == ",":
        out.append(Check(name, f"contains({raw_text(name)}, '.')",
                         "number written with '.' in a file whose decimal mark is ',' (a thousands separator read "
                         "as a decimal point?)",
                         "Remove thousands separators from the export (13738, not 13.738), or set `decimal: '.'` "
                         "if the file uses decimal points", thousands=True))  # fmt: skip
    if name == "birth_year":
        out.append(Check(name, f"{v} < {lo} OR {v} > {hi}", f"birth_year outside the plausible range {lo} to {hi}",
                         "Birth years are four-digit calendar years"))  # fmt: skip
        return out
    # negative values have their own rule (NONNEGATIVE); non-finite ones the rule above
    floor = "0" if name in NONNEGATIVE else f"-{_MAX}"
    condition = f"({v} < {lo} AND {v} >= {floor}) OR ({v} > {hi} AND {v} <= {_MAX})"
    if col.kind == "float" and t.on_implausible == "cap":
        out.append(Check(name, condition, f"value outside the plausible range {_num(lo)} to {_num(hi)}, capped to "
                         "it", "`on_implausible: cap` is set for this table, so the capped values enter the "
                         "analysis; check the rows", severity="warning", cap=(lo, hi)))  # fmt: skip
    else:
        cap = (
            " or set `on_implausible: cap` to cap them and count them in a warning"
            if col.kind == "float"
            else ""
        )
        out.append(Check(name, condition, f"value outside the plausible range {_num(lo)} to {_num(hi)} (a "
                         "corrupted cell or a unit error?)", f"Correct the rows; if such values are real, {widen}"
                         f"{cap}"))  # fmt: skip
    return out


def row_checks(
    table: str, t: InputTable, mapping: dict[str, str], text_columns: set[str], today: date | None = None
) -> list[Check]:
    """Every row-level rule of one canonical table (domain note §3; issues 4 and 17), for the columns the file
    has (``mapping``: canonical → raw column; ``text_columns``: number columns read from text)."""
    spec = TABLES[table]
    ranges = plausible_ranges(table, t, today)
    checks: list[Check] = []
    for col in spec.columns:
        if col.name not in mapping:
            continue
        v, p = value(col.name), present(col.name)
        if not col.nullable:
            if col.name == spec.person_column:
                checks.append(Check(col.name, f"NOT {p}", "missing person_id",
                                    f"Every row of {table} must name a person; drop rows without one before reading "
                                    "or fix the export"))  # fmt: skip
            else:
                checks.append(Check(col.name, f"NOT {p}", "missing value",
                                    "This column may not be empty; fill it in or drop the rows before reading"))  # fmt: skip
        if col.kind == "date":
            checks.append(Check(col.name, f"{p} AND {v} IS NULL", f"cannot parse date with date_format {t.date_format!r}",
                                "Set `date_format` for this table in the input spec to the file's format "
                                "(e.g. '%Y%m%d' for 20200115)"))  # fmt: skip
        elif col.kind == "month":
            checks.append(Check(col.name, f"{p} AND {v} IS NULL",
                                f"value is not a month in {_month_human(t.month_format)} format",
                                "Months are calendar months like 2020-01; set `month_format` in the input spec "
                                "(e.g. '%Y%m' for 202001)"))  # fmt: skip
        elif col.kind in ("int", "float"):
            what = "value is not a whole number" if col.kind == "int" else "non-numeric value"
            checks.append(Check(col.name, f"{p} AND {v} IS NULL", what,
                                f"Check the decimal mark (`decimal: {t.decimal!r}` in the input spec) and remove "
                                "text such as units, spaces or thousands separators"))  # fmt: skip
        elif col.kind == "code":
            allowed = "[" + ", ".join(sql_literal(c) for c in col.codes) + "]"
            checks.append(Check(col.name, f"{v} IS NOT NULL AND NOT list_contains({allowed}, {v})",
                                f"unknown {col.name} code", "", codes=col.codes))  # fmt: skip
        elif col.kind == "codeset":
            allowed = "[" + ", ".join(sql_literal(c) for c in col.codes) + "]"
            checks.append(Check(col.name, f"{v} IS NOT NULL AND len(list_filter(string_split({v}, ';'), "
                                f"x -> NOT list_contains({allowed}, TRIM(x)))) > 0",
                                f"unknown {col.name} code", "", codes=col.codes))  # fmt: skip
        if col.name in ranges:
            checks.extend(_range_checks(table, col, t, ranges[col.name], col.name in text_columns))
        if col.name in NONNEGATIVE:
            checks.append(Check(col.name, f"{v} < 0 AND {v} >= -{_MAX}", f"negative {NONNEGATIVE[col.name]}",
                                "Amounts are paid SEK and cannot be negative; net out reversed or corrected "
                                "payments before reading"))  # fmt: skip
        if col.name == "extent":
            checks.append(Check(col.name, f"({v} <= 0 AND {v} >= -{_MAX}) OR ({v} > 1 AND {v} <= {_MAX})",
                                "extent outside (0, 1]",
                                "Omfattning is a share of full time (1, 0.75, 0.5, 0.25); divide percentages by "
                                "100"))  # fmt: skip
            checks.append(Check(col.name, f"{p} AND NOT {finite(v)}", "not a finite number (inf or NaN)",
                                "Non-finite numbers never reach the estimation: correct the rows in the export"))  # fmt: skip
        if col.name == "kommun":
            four_digits = f"regexp_full_match({v}, '[0-9]{{4}}')"
            checks.append(Check(col.name, f"{v} IS NOT NULL AND {v} <> {sql_literal(UNKNOWN)} AND NOT {four_digits}",
                                "kommun is not a 4-digit code",
                                "Kommun codes have four digits (0180 Stockholm); a lost leading zero (180) means the "
                                "column was read as a number by the exporting program: export it as text"))  # fmt: skip
    for tab, start, end in DATE_ORDER:
        if tab == table and start in mapping and end in mapping:
            checks.append(Check(end, f"{value(end)} < {value(start)}", f"{end} before {start}",
                                f"Check the two date columns (swapped, or a typo); {end} must be on or after "
                                f"{start}"))  # fmt: skip
    if table == "sus_registrations" and "person_id" in mapping and "registration_kind" in mapping:
        checks.append(Check("person_id", f"{value('registration_kind')} = 'person' AND NOT {present('person_id')}",
                            "person registration without person_id",
                            "Registrations without a pseudonym must have registration_kind 'anonymous'"))  # fmt: skip
    return checks


@dataclass
class ScaleCheck:
    """The median positive value of one column against the register's known scale.

    The median lies below the band exactly when more than half of the values do (above likewise), so the scan
    only counts (``aggregates``: values, below, above); the median itself is computed for the message only.
    """

    column: str
    quantity: str  # SQL: the value compared (NULL when it does not count: not positive, not finite)
    band: tuple[float, float]
    what: str  # the quantity, for the message
    direct: bool = (
        False  # ``quantity`` is the column itself: count with plain comparisons (a CASE scans slower)
    )

    @property
    def aggregates(self) -> tuple[str, str, str]:
        lo, hi = self.band
        q = self.quantity
        if self.direct:
            return (f"count_if({q} > 0 AND {q} <= {_MAX})", f"count_if({q} > 0 AND {q} < {lo})",
                    f"count_if({q} > {hi} AND {q} <= {_MAX})")  # fmt: skip
        return f"count({q})", f"count_if({q} < {lo})", f"count_if({q} > {hi})"

    @property
    def median(self) -> str:
        """SQL aggregate: the median of the values compared."""
        q = f"CASE WHEN {self.quantity} > 0 AND {finite(self.quantity)} THEN {self.quantity} END"
        return f"median({q if self.direct else self.quantity})"


def scale_checks(table: str, t: InputTable, mapping: dict[str, str]) -> list[ScaleCheck]:
    """The known-scale checks of ``table`` (:func:`median_ranges`) for the columns the file has. For
    ``benefit_spells.amount_sek`` the value is SEK per nettodag of a closed spell: amount / ((to − from + 1 days)
    × extent)."""
    out = []
    for name, band in median_ranges(table, t).items():
        if name not in mapping:
            continue
        v = value(name)
        if table == "benefit_spells" and name == "amount_sek":
            if not {"from_date", "to_date", "extent"} <= set(mapping):
                continue
            f, to, e = value("from_date"), value("to_date"), value("extent")
            per_day = (f"CASE WHEN {v} > 0 AND {finite(v)} AND {to} >= {f} AND {e} > 0 AND {e} <= 1 "
                       f"THEN {v} / ((({to} - {f}) + 1) * {e}) END")  # fmt: skip
            out.append(ScaleCheck(name, per_day, band, "benefit per nettodag of the closed spells"))
        else:
            what = {"earnings_sek": "monthly earnings", "cost_sek": "cost per insats and year"}.get(
                name, "amount per month" if table == "social_assistance" else name
            )
            out.append(ScaleCheck(name, v, band, what, direct=True))
    return out


def scale_problem_text(check: ScaleCheck, median: float) -> tuple[str, str]:
    """Message and hint for a median outside its band, naming the likely cause."""
    lo, hi = check.band
    message = (f"the median positive {check.what} is about {_num(round(median, 2))} kr, outside the register's "
               f"known scale {_num(lo)} to {_num(hi)} kr")  # fmt: skip
    if median < lo:
        cause = ("A thousands separator read as a decimal point (13.738 read as 13.738 kr instead of 13 738)? "
                 "Or amounts in thousands of kronor?")  # fmt: skip
    else:
        cause = "Amounts in öre, or decimal marks lost (1234,50 read as 123450)?"
    fix = (f"Correct the export or `decimal:`; if the values are right, set `median_range: {{{check.column}: "
           "[LOW, HIGH]}` for this table in the input spec")  # fmt: skip
    return message, f"{cause} {fix}"
