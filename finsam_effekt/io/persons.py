"""Checks of pseudonyms across tables: persons missing from population, the share found and its likely cause, and a
SUS extract without a single person registration.

An analysis follows SUS participants and the comparison pool through the registers by pseudonym (LopNr). When the
pseudonyms of one file do not match those of ``population`` (lost leading zeros, numbers written as decimals or in
scientific notation by a spreadsheet, another extract's key), every later stage would see people without benefits
or earnings, and the run would report effects on nobody or on zeros. So below a share of matching pseudonyms
(``InputSpec.min_share_in_population``) validation stops, and says which of these causes the pseudonyms show:
only shapes (length, digits or text) are described, never a pseudonym.
"""

from __future__ import annotations

import duckdb

from ..errors import Problem
from .read import ColumnExpr, RawSource, sql_ident

#: Person tables whose pseudonyms are looked up in ``population``.
PERSON_TABLES: tuple[str, ...] = ("sus_registrations", "benefit_spells", "social_assistance", "earnings")
_POP = "(SELECT person_id AS id FROM population WHERE person_id IS NOT NULL)"


def _expr(exprs: list[ColumnExpr], name: str) -> ColumnExpr:
    return next(e for e in exprs if e.name == name)


def _ids_sql(src: RawSource, exprs: list[ColumnExpr], with_row: bool) -> str:
    """SQL of the table's pseudonyms (SUS: person registrations only), NULLs left out."""
    pid = _expr(exprs, "person_id").value
    rel = src.rows_relation if with_row else src.relation
    where = f"({pid}) IS NOT NULL"
    if src.table == "sus_registrations":
        where += f" AND ({_expr(exprs, 'registration_kind').value}) = 'person'"
    row = "__row, " if with_row else ""
    return f"SELECT {row}{pid} AS pid FROM {sql_ident(rel)} WHERE {where}"


def anonymous_only(con: duckdb.DuckDBPyConnection, src: RawSource, exprs: list[ColumnExpr]) -> Problem | None:
    """An error when SUS has registrations but not one of them is a person registration."""
    kind = _expr(exprs, "registration_kind").value
    n, persons = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE ({kind}) = 'person') FROM {sql_ident(src.relation)}"
    ).fetchone()
    if not n or persons:
        return None
    return Problem(
        src.table,
        src.file,
        "registration_kind",
        "no person registrations: every SUS registration is anonymous, so no participant can be followed in the "
        "registers",
        hint="Export SUS with the person registrations and their pseudonyms (LopNr); if the export has them, check "
        "the mapping of registration_kind under `codes:` in the input spec (e.g. {Person: person, Anonym: "
        "anonymous})",
    )


def _shape(min_len: int, max_len: int, digits: bool) -> str:
    length = f"{min_len}" if min_len == max_len else f"{min_len}–{max_len}"
    return f"{'digits' if digits else 'text'}, {length} characters"


def _likely_cause(con: duckdb.DuckDBPyConnection, table: str, missing: str) -> tuple[str, str]:
    """What the unmatched pseudonyms (``missing``: SQL of their distinct values) show, and the fix."""
    m, zeros, decimals, scientific, case, lead0, lo, hi, digits = con.execute(f"""
        SELECT count(*),
               count(*) FILTER (WHERE ltrim(pid, '0') IN (SELECT ltrim(id, '0') FROM {_POP})),
               count(*) FILTER (WHERE regexp_replace(pid, '\\.0+$', '') IN (SELECT id FROM {_POP})),
               count(*) FILTER (WHERE regexp_full_match(pid, '[0-9.,]+[eE][+-]?[0-9]+')),
               count(*) FILTER (WHERE lower(pid) IN (SELECT lower(id) FROM {_POP})),
               count(*) FILTER (WHERE starts_with(pid, '0')),
               min(length(pid)), max(length(pid)), bool_and(regexp_full_match(pid, '[0-9]+'))
        FROM ({missing})""").fetchone()  # fmt: skip
    p_lead0, p_lo, p_hi, p_digits = con.execute(
        f"SELECT avg(starts_with(id, '0')::INT), min(length(id)), max(length(id)), "
        f"bool_and(regexp_full_match(id, '[0-9]+')) FROM {_POP}"
    ).fetchone()
    half = m / 2
    if zeros >= half and zeros > max(decimals, case):
        where = table if lead0 < half else "population"
        width = p_hi if where == table else hi
        return (
            f"; {zeros} of the {m} unmatched pseudonyms match once leading zeros are ignored: the leading zeros "
            f"were lost in {where}",
            f"Export person_id as text in every file (a program that read it as a number dropped the zeros), or pad "
            f"the pseudonyms of {where} with zeros to {width} characters",
        )
    if decimals >= half:
        return (
            f"; {decimals} of the {m} unmatched pseudonyms match without a trailing '.0': they were written as "
            "decimal numbers",
            "Export person_id as text (or as a whole number) in every file",
        )
    if scientific >= half:
        return (
            f"; {scientific} of the {m} unmatched pseudonyms are written in scientific notation (like 1.23E+11): a "
            "spreadsheet turned them into numbers and lost digits",
            "Export person_id as text again from the source, not through a spreadsheet",
        )
    if case >= half:
        return (
            f"; {case} of the {m} unmatched pseudonyms match when upper and lower case are ignored",
            "Write the pseudonyms in the same case in every file",
        )
    mine, theirs = _shape(lo, hi, bool(digits)), _shape(p_lo, p_hi, bool(p_digits))
    look = (
        f"; the unmatched pseudonyms ({mine}) do not look like those of population ({theirs})"
        if mine != theirs
        else f"; the unmatched pseudonyms look like those of population ({theirs}) but are other persons"
    )
    return (
        look,
        "Check that every file comes from the same extract and uses the same pseudonym key (LopNr); a type "
        "mismatch (numbers in one file, text in another) shows as a different shape",
    )


def persons_in_population(
    con: duckdb.DuckDBPyConnection, src: RawSource, exprs: list[ColumnExpr], min_share: float
) -> Problem | None:
    """Pseudonyms of a person table not found in ``population``: an error naming the likely cause when fewer than
    ``min_share`` of the distinct pseudonyms are found, else a warning counting the persons (benefit spells, social
    assistance and earnings; SUS persons without population data are counted by the linkage report)."""
    ids = _ids_sql(src, exprs, with_row=False)
    flagged = f"SELECT pid, pid IN (SELECT id FROM {_POP}) AS found FROM ({ids})"
    rows_missing, persons, persons_missing = con.execute(
        "SELECT count(*) FILTER (WHERE NOT found), count(DISTINCT pid), count(DISTINCT pid) FILTER (WHERE NOT found) "
        f"FROM ({flagged})"
    ).fetchone()
    if not persons_missing:
        return None
    share = 1 - persons_missing / persons
    examples = [r[0] for r in con.execute(
        f"SELECT __row FROM ({_ids_sql(src, exprs, with_row=True)}) s WHERE NOT EXISTS "
        f"(SELECT 1 FROM {_POP} p WHERE p.id = s.pid) ORDER BY __row LIMIT 5").fetchall()]  # fmt: skip
    found = persons - persons_missing
    if share < min_share:
        cause, hint = _likely_cause(con, src.table, f"SELECT DISTINCT pid FROM ({flagged}) WHERE NOT found")
        return Problem(
            src.table,
            src.file,
            "person_id",
            f"only {found} of {persons} pseudonyms ({share:.0%}) are found in population{cause}",
            rows_missing,
            examples,
            f"{hint}. (An analysis needs at least {min_share:.0%} found: `min_share_in_population` in the input "
            "spec)",
        )
    if src.table == "sus_registrations":
        return None
    return Problem(src.table, src.file, "person_id", f"{persons_missing} person(s) not found in population",
                   rows_missing, examples, "Their rows are kept but they have no background data; check that all "
                   "files come from the same extract", severity="warning")  # fmt: skip
