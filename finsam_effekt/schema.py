"""Canonical tables: the package's internal contract (domain note §3).

Readers map agency columns onto these names; every later stage sees only these tables. Each table is described
by a :class:`TableSpec` (columns with a logical type, whether the column is required/nullable and, for coded
columns, the allowed codes). Unknown codes are an error until mapped (``io`` validates them).

Logical types
-------------
``str``      text (pseudonyms are always text, even when they look like numbers)
``int``      integer (nullable where ``nullable=True``)
``float``    real number
``date``     calendar date (``datetime64[ns]`` in pandas, ``DATE`` in DuckDB / ``date32`` in Arrow)
``month``    calendar month as the text ``YYYY-MM``
``code``     text restricted to ``codes``
``codeset``  ``;``-separated set of codes from ``codes`` (SUS support fields)

Derived tables between stages are documented in ``docs/tables.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

INSATS_TYPES: tuple[str, ...] = ("rehab_work_education", "preparatory", "assessment", "preventive", "other")
SUPPORT_CODES: tuple[str, ...] = (
    "sickness_benefit",
    "disability_benefit",
    "unemployment_insurance",
    "activity_support",
    "social_assistance",
    "student_aid",
    "other_public",
    "none",
)
STATUS_AT_END: tuple[str, ...] = (
    "work",
    "studies",
    "job_seeker",
    "other_programme",
    "sick_leave",
    "other",
    "dropout",
)
PUBLIC_SUPPORT_BEFORE: tuple[str, ...] = ("lt1y", "1to3y", "3to6y", "6to10y", "gt10y", "not_applicable")
SEX_CODES: tuple[str, ...] = ("K", "M")
#: The code of a covariate value the register lacks (education of people educated abroad, birth region, kommun).
#: The input spec maps agency codes and empty cells onto it (``codes: {education: {"": unknown, "9": unknown}}``);
#: the design matrix treats it as a category of its own (a missing-indicator).
UNKNOWN: str = "unknown"
BIRTH_REGIONS: tuple[str, ...] = ("sweden", "nordic", "europe", "outside_europe", UNKNOWN)
REGISTRATION_KINDS: tuple[str, ...] = ("person", "anonymous")
EDUCATION_LEVELS: tuple[str, ...] = ("compulsory", "upper_secondary", "post_secondary", UNKNOWN)

#: Benefit codes of ``benefit_spells`` and the outcome group each belongs to (domain note §3).
BENEFIT_GROUPS: dict[str, str] = {
    "SJP": "sickness",  # sjukpenning (FK)
    "RHP": "sickness",  # rehabiliteringspenning (FK)
    "SA": "disability",  # sjukersättning (FK)
    "AE": "disability",  # aktivitetsersättning (FK)
    "AKS": "labour_market",  # aktivitetsstöd (AF)
    "UTV": "labour_market",  # utvecklingsersättning (AF)
    "AKA": "unemployment",  # a-kassa
}
BENEFIT_CODES: tuple[str, ...] = tuple(BENEFIT_GROUPS)
#: Spell-based benefit groups, in report order. Social assistance is a further group (monthly amounts).
SPELL_GROUPS: tuple[str, ...] = ("sickness", "disability", "labour_market", "unemployment")
#: Who pays each group (domain note §6): FK and AF are the state; a-kassa is configurable in cost_benefit.
GROUP_PAYER: dict[str, str] = {
    "sickness": "FK",
    "disability": "FK",
    "labour_market": "AF",
    "unemployment": "akassa",
    "social_assistance": "kommun",
}

#: Monthly outcome columns of the person-month panel (domain note §4), in report order. Adding an outcome: its
#: name here with its :data:`OUTCOME_INFO`, and its computation in ``panel``.
OUTCOMES: tuple[str, ...] = (
    "public_support",
    "self_support",
    *(f"days_{g}" for g in SPELL_GROUPS),
    *(f"sek_{g}" for g in SPELL_GROUPS),
    "social_assistance_sek",
    "benefit_sek",
    "earnings_sek",
)
BINARY_OUTCOMES: tuple[str, ...] = ("public_support", "self_support")


SPELLS, SOCIAL_ASSISTANCE, EARNINGS = "benefit_spells", "social_assistance", "earnings"


@dataclass(frozen=True)
class OutcomeInfo:
    """What an outcome of the panel is: its label in Swedish and English, its unit per month (``share``: 0/1
    status, reported in percentage points; ``days``: nettodagar; ``sek``: kronor) and the monthly registers it is
    built from (after the first of them ends, the outcome is missing, not zero)."""

    label_sv: str
    label_en: str
    unit: str  # share | days | sek
    registers: tuple[str, ...]


#: Labels and units of :data:`OUTCOMES` (one entry per outcome; the report reads its labels from here).
OUTCOME_INFO: dict[str, OutcomeInfo] = {
    "public_support": OutcomeInfo(
        "Andel med offentlig försörjning", "Share on public support", "share", (SPELLS, SOCIAL_ASSISTANCE)
    ),
    "self_support": OutcomeInfo(
        "Andel med egen försörjning", "Share self-supporting", "share", (SPELLS, SOCIAL_ASSISTANCE, EARNINGS)
    ),
    "days_sickness": OutcomeInfo(
        "Nettodagar sjukpenning/rehabiliteringspenning", "Net days sickness/rehabilitation", "days", (SPELLS,)
    ),
    "days_disability": OutcomeInfo(
        "Nettodagar sjuk-/aktivitetsersättning", "Net days disability benefits", "days", (SPELLS,)
    ),
    "days_labour_market": OutcomeInfo(
        "Nettodagar aktivitetsstöd/utvecklingsersättning", "Net days labour-market support", "days", (SPELLS,)
    ),
    "days_unemployment": OutcomeInfo(
        "Nettodagar a-kassa", "Net days unemployment insurance", "days", (SPELLS,)
    ),
    "sek_sickness": OutcomeInfo(
        "Kr sjukpenning/rehabiliteringspenning", "SEK sickness/rehabilitation", "sek", (SPELLS,)
    ),
    "sek_disability": OutcomeInfo(
        "Kr sjuk-/aktivitetsersättning", "SEK disability benefits", "sek", (SPELLS,)
    ),
    "sek_labour_market": OutcomeInfo(
        "Kr aktivitetsstöd/utvecklingsersättning", "SEK labour-market support", "sek", (SPELLS,)
    ),
    "sek_unemployment": OutcomeInfo("Kr a-kassa", "SEK unemployment insurance", "sek", (SPELLS,)),
    "social_assistance_sek": OutcomeInfo(
        "Kr ekonomiskt bistånd", "SEK social assistance", "sek", (SOCIAL_ASSISTANCE,)
    ),
    "benefit_sek": OutcomeInfo(
        "Kr offentlig försörjning totalt", "SEK public support, total", "sek", (SPELLS, SOCIAL_ASSISTANCE)
    ),
    "earnings_sek": OutcomeInfo("Arbetsinkomst kr", "Earnings SEK", "sek", (EARNINGS,)),
}

#: Columns of the person-month panel (``panel.person_months``), in order (docs/tables.md).
PANEL_COLUMNS: tuple[str, ...] = (
    "person_id",
    "month",
    *(f"days_{g}" for g in SPELL_GROUPS),
    *(f"sek_{g}" for g in SPELL_GROUPS),
    "social_assistance_sek",
    "earnings_sek",
    "benefit_sek",
    "public_support",
    "self_support",
)
#: History windows (months before the reference month) of the register-history features.
HISTORY_WINDOWS: tuple[int, ...] = (3, 12, 24)
#: Demographic columns of ``panel.history_features``.
DEMOGRAPHIC_COLUMNS: tuple[str, ...] = ("age", "sex", "education", "birth_region", "kommun", "forbund_id")
#: Months k before the reference month u whose status is a feature of its own (``ps_u{k}``, ``source_u{k}``):
#: the months just before entry, where participants' support changes fastest (the Ashenfelter dip).
STATUS_MONTHS: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
#: Groups of public support that can be a month's main source, in tie-breaking order (first wins a tie).
MAIN_SOURCE_GROUPS: tuple[str, ...] = (*SPELL_GROUPS, "social_assistance")
#: Levels of ``source_u{k}``, the main source of support in a month (``panel.history_features`` defines it):
#: ``work`` (self-support: earnings at or above the threshold and no public support), a group of
#: :data:`MAIN_SOURCE_GROUPS`, or ``none`` (neither).
SUPPORT_SOURCES: tuple[str, ...] = ("work", *MAIN_SOURCE_GROUPS, "none")
#: Register-history columns of ``panel.history_features``, in order (measured from months u−w..u−1).
HISTORY_COLUMNS: tuple[str, ...] = (
    *(f"ps_months_{w}" for w in HISTORY_WINDOWS),
    *(f"days_{g}_{w}" for g in SPELL_GROUPS for w in HISTORY_WINDOWS),
    "sa_months_12",
    "sa_months_24",
    "benefit_sek_12",
    "earnings_12",
    "work_months_12",
    "months_since_work",
    *(f"ps_u{k}" for k in STATUS_MONTHS),
    *(f"source_u{k}" for k in STATUS_MONTHS),
)
#: The history columns that count months (and the 0/1 status flags ``ps_u{k}``): whole numbers of at most a few
#: dozen, held as int8 in the cohort (``tables.narrow_counts``).
HISTORY_COUNT_COLUMNS: tuple[str, ...] = (
    *(f"ps_months_{w}" for w in HISTORY_WINDOWS),
    "sa_months_12",
    "sa_months_24",
    "work_months_12",
    "months_since_work",
    *(f"ps_u{k}" for k in STATUS_MONTHS),
)
#: Every column of ``panel.history_features`` besides the input keys.
FEATURE_COLUMNS: tuple[str, ...] = (*HISTORY_COLUMNS, *DEMOGRAPHIC_COLUMNS)


def outcome_column(outcome: str, horizon: int, measure: str = "status") -> str:
    """Name of a horizon-outcome column of ``panel.horizon_outcomes``: ``{o}_m{k}`` (``measure="status"``, the
    value in month u+k) or ``{o}_cum{k}`` (``"cumulative"``, the sum over months u+1..u+k)."""
    if measure == "status":
        return f"{outcome}_m{horizon}"
    if measure == "cumulative":
        return f"{outcome}_cum{horizon}"
    raise ValueError(f"measure must be 'status' or 'cumulative'; got {measure!r}")


_OUTCOME_COLUMN = re.compile(r"^(?P<o>.+)_(?P<kind>m|cum)(?P<k>\d+)$")


def parse_outcome_column(column: str) -> tuple[str, int, str] | None:
    """``(outcome, horizon, measure)`` of a name made by :func:`outcome_column`, or None for any other name."""
    m = _OUTCOME_COLUMN.match(str(column))
    if m is None:
        return None
    return m["o"], int(m["k"]), "status" if m["kind"] == "m" else "cumulative"


@dataclass(frozen=True)
class Column:
    """One column of a canonical table."""

    name: str
    kind: str  # str | int | float | date | month | code | codeset
    required: bool = True  # must be present after mapping
    nullable: bool = False  # empty values allowed
    codes: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class TableSpec:
    """A canonical table: its columns and the columns that identify one row."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    description: str = ""
    person_column: str | None = "person_id"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")


TABLES: dict[str, TableSpec] = {
    "population": TableSpec(
        "population",
        (
            Column("person_id", "str", description="pseudonym (LopNr)"),
            Column("sex", "code", codes=SEX_CODES),
            Column("birth_year", "int"),
            Column("education", "code", codes=EDUCATION_LEVELS, nullable=True),
            Column("kommun", "str", description="4-digit kommun code, or unknown (mapped with `codes`)"),
            Column("birth_region", "code", codes=BIRTH_REGIONS, nullable=True),
            Column("immigration_date", "date", nullable=True),
            Column("emigration_date", "date", nullable=True),
            Column("death_date", "date", nullable=True),
        ),
        key=("person_id",),
        description="every resident person (comparison pool)",
    ),
    "sus_registrations": TableSpec(
        "sus_registrations",
        (
            Column("person_id", "str", nullable=True, description="pseudonym; empty if anonymous"),
            Column("registration_kind", "code", codes=REGISTRATION_KINDS),
            Column("forbund_id", "str"),
            Column("insats_id", "str"),
            Column("insats_type", "code", codes=INSATS_TYPES),
            Column("start_date", "date"),
            Column("end_date", "date", nullable=True, description="empty = ongoing"),
            Column("sex", "code", codes=SEX_CODES, nullable=True),
            Column("birth_year", "int", nullable=True),
            Column("education", "code", codes=EDUCATION_LEVELS, nullable=True),
            Column("kommun", "str", nullable=True),
            Column("support_at_start", "codeset", codes=SUPPORT_CODES, nullable=True),
            Column("support_at_end", "codeset", codes=SUPPORT_CODES, nullable=True),
            Column("status_at_end", "code", codes=STATUS_AT_END, nullable=True),
            Column("public_support_before", "code", codes=PUBLIC_SUPPORT_BEFORE, nullable=True),
        ),
        key=(),
        description="one row per registration of a person in an insats",
    ),
    "sus_volume": TableSpec(
        "sus_volume",
        (
            Column("forbund_id", "str"),
            Column("insats_id", "str"),
            Column("year", "int"),
            Column("participations", "int"),
        ),
        key=("forbund_id", "insats_id", "year"),
        description="volume insatser: counts only",
        person_column=None,
    ),
    "benefit_spells": TableSpec(
        "benefit_spells",
        (
            Column("person_id", "str"),
            Column("benefit", "code", codes=BENEFIT_CODES),
            Column("from_date", "date"),
            Column("to_date", "date", nullable=True, description="empty = open"),
            Column("extent", "float", description="omfattning, 0 < extent <= 1"),
            Column("amount_sek", "float"),
        ),
        key=("person_id", "benefit", "from_date", "to_date", "extent", "amount_sek"),
        description="paid benefit spells (MiDAS-style)",
    ),
    "social_assistance": TableSpec(
        "social_assistance",
        (Column("person_id", "str"), Column("month", "month"), Column("amount_sek", "float")),
        key=("person_id", "month"),
        description="ekonomiskt bistånd per person and month",
    ),
    "earnings": TableSpec(
        "earnings",
        (Column("person_id", "str"), Column("month", "month"), Column("earnings_sek", "float")),
        key=("person_id", "month"),
        description="gross monthly earnings per person",
    ),
    "insats_costs": TableSpec(
        "insats_costs",
        (
            Column("forbund_id", "str"),
            Column("insats_id", "str"),
            Column("year", "int"),
            Column("cost_sek", "float"),
        ),
        key=("forbund_id", "insats_id", "year"),
        description="förbund's cost per insats and year",
        person_column=None,
    ),
}

#: Agency-style column names (MiDAS/SUS/SCB habits), used by ``synth --format agency-csv`` and the
#: agency config template. Canonical name -> agency name, per table.
AGENCY_COLUMNS: dict[str, dict[str, str]] = {
    "population": {
        "person_id": "LopNr",
        "sex": "Kon",
        "birth_year": "FodelseAr",
        "education": "Sun2000Niva",
        "kommun": "Kommun",
        "birth_region": "FodelseRegion",
        "immigration_date": "InvandringDatum",
        "emigration_date": "UtvandringDatum",
        "death_date": "DodDatum",
    },
    "sus_registrations": {
        "person_id": "LopNr",
        "registration_kind": "RegTyp",
        "forbund_id": "ForbundId",
        "insats_id": "InsatsId",
        "insats_type": "InsatsTyp",
        "start_date": "StartDatum",
        "end_date": "SlutDatum",
        "sex": "Kon",
        "birth_year": "FodelseAr",
        "education": "Utbildning",
        "kommun": "Kommun",
        "support_at_start": "ForsorjningStart",
        "support_at_end": "ForsorjningSlut",
        "status_at_end": "StatusAvslut",
        "public_support_before": "TidOffForsorjning",
    },
    "sus_volume": {
        "forbund_id": "ForbundId",
        "insats_id": "InsatsId",
        "year": "Ar",
        "participations": "AntalDeltagande",
    },
    "benefit_spells": {
        "person_id": "LopNr",
        "benefit": "FORMAN",
        "from_date": "FROM_DATUM",
        "to_date": "TOM_DATUM",
        "extent": "OMF",
        "amount_sek": "BELOPP",
    },
    "social_assistance": {"person_id": "LopNr", "month": "Manad", "amount_sek": "EkBistand"},
    "earnings": {"person_id": "LopNr", "month": "Period", "earnings_sek": "KontantErsattning"},
    "insats_costs": {"forbund_id": "ForbundId", "insats_id": "InsatsId", "year": "Ar", "cost_sek": "Kostnad"},
}

#: Agency codes for coded columns (agency code -> canonical code), used with ``AGENCY_COLUMNS``.
AGENCY_CODES: dict[str, dict[str, dict[str, str]]] = {
    "benefit_spells": {
        "benefit": {
            "SJP": "SJP",
            "REHAB": "RHP",
            "SJE": "SA",
            "AKE": "AE",
            "AKTSTOD": "AKS",
            "UTVERS": "UTV",
            "AKASSA": "AKA",
        }
    },
    "sus_registrations": {
        "insats_type": {
            "Arbetslivsinriktad rehabilitering": "rehab_work_education",
            "Förberedande": "preparatory",
            "Kartläggning": "assessment",
            "Förebyggande": "preventive",
            "Övrigt": "other",
        },
        "registration_kind": {"Person": "person", "Anonym": "anonymous"},
    },
}


def month_str(year: int, month: int) -> str:
    """``YYYY-MM`` text of a calendar month."""
    return f"{year:04d}-{month:02d}"


#: Default monthly earnings (SEK) at or above which a month with no public support counts as self-support
#: (egen försörjning). Configurable per analysis; synth's truth uses the same default.
DEFAULT_SELF_SUPPORT_THRESHOLD_SEK: float = 10_000.0
#: Registrations of one person belong to the same episode when they overlap or the next starts at most this many
#: days after the previous one ended (double registrations; dropout and return). Configurable in linkage.
DEFAULT_EPISODE_GAP_DAYS: int = 90
#: Disclosure threshold: no published cell may rest on fewer persons than this.
DEFAULT_DISCLOSURE_THRESHOLD: int = 5


assert set(OUTCOME_INFO) == set(OUTCOMES), "every outcome needs its OUTCOME_INFO"


def outcome_end_months(register_end: dict[str, str], outcomes=None) -> dict[str, str]:
    """The last observed month of each outcome: the earliest end among the registers it is built from
    (registers missing from ``register_end`` do not limit it)."""
    out = {}
    for o in outcomes or OUTCOMES:
        ends = [register_end[r] for r in OUTCOME_INFO[o].registers if r in register_end]
        if ends:
            out[o] = min(ends)
    return out
