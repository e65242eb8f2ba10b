"""Which months each register covers: its last complete month, detected from the data (or set in the config).

Registers end at different months (social assistance often lags earnings and MiDAS by months); after its last
complete month a register's values are missing, not zero (domain note §2). A month counts as complete when it has
at least half as many rows as the median of the twelve months before it (for ``benefit_spells``: spells starting
in the month), so a partly delivered last month is not taken for a month in which nobody had that income.
"""

from __future__ import annotations

import duckdb

from ..errors import InputError

#: The monthly registers and the column that dates a row.
REGISTER_MONTH: dict[str, str] = {
    "benefit_spells": "strftime(CAST(from_date AS DATE), '%Y-%m')",
    "social_assistance": "month",
    "earnings": "month",
}
#: Share of the trailing median a month's row count must reach to count as complete.
COMPLETE_SHARE = 0.5


def last_complete_months(con: duckdb.DuckDBPyConnection, tables: set[str] | frozenset[str]) -> dict[str, str]:
    """The last complete month (``YYYY-MM``) of each monthly register among ``tables`` that has rows."""
    out = {}
    for name, expr in REGISTER_MONTH.items():
        if name not in tables:
            continue
        row = con.sql(f"""
            WITH c AS (SELECT {expr} AS month, count(*) AS n FROM {name} WHERE {expr} IS NOT NULL GROUP BY 1),
            w AS (SELECT month, n, median(n) OVER (ORDER BY month ROWS BETWEEN 12 PRECEDING AND 1 PRECEDING)
                         AS med FROM c)
            SELECT max(month) FROM w WHERE med IS NULL OR n >= {COMPLETE_SHARE} * med""").fetchone()
        if row and row[0]:
            out[name] = str(row[0])
    return out


def register_ends(
    detected: dict[str, str], configured: dict[str, str], data_end: str | None
) -> dict[str, str]:
    """Each register's last month: the configured one (``outcomes.register_end``), else the detected one, capped
    by ``outcomes.data_end``. A configured month after the detected one is an error: the register has no data
    there, and reading those months as zero would fabricate outcomes."""
    ends = {}
    for name, last in detected.items():
        given = configured.get(name)
        if given is not None and given > last:
            raise InputError(
                f"outcomes.register_end: {name} is set to {given}, but its data end at {last} (the last complete "
                f"month); months after {last} would be read as none — set {last} or earlier"
            )
        end = given or last
        if data_end is not None:
            if data_end > last and given is None:
                raise InputError(
                    f"outcomes.data_end {data_end} is after the last complete month of {name} ({last}): months "
                    f"after it would be read as none — set outcomes.data_end to {last} or earlier (or remove it: each "
                    "register then ends at its own last month)"
                )
            end = min(end, data_end)
        ends[name] = end
    unknown = sorted(set(configured) - set(detected))
    if unknown:
        raise InputError(
            f"outcomes.register_end names {unknown}, which are not monthly registers of this run "
            f"(known: {sorted(REGISTER_MONTH)})"
        )
    return ends


def absent_outcomes(con: duckdb.DuckDBPyConnection, tables: set[str] | frozenset[str]) -> dict[str, str]:
    """Outcomes the data cannot show at all, with the reason: a benefit group without a single spell (e.g. no
    SA/AE spells: no disability outcomes), or an empty monthly table. Their effects are absent, not zero."""
    from ..schema import BENEFIT_GROUPS, SPELL_GROUPS

    out: dict[str, str] = {}
    if "benefit_spells" in tables:
        present = {r[0] for r in con.sql("SELECT DISTINCT benefit FROM benefit_spells").fetchall()}
        for g in SPELL_GROUPS:
            codes = sorted(c for c, grp in BENEFIT_GROUPS.items() if grp == g)
            if not present & set(codes):
                why = f"benefit_spells has no {'/'.join(codes)} spells"
                out[f"days_{g}"] = out[f"sek_{g}"] = why
    for name, outcome in (("social_assistance", "social_assistance_sek"), ("earnings", "earnings_sek")):
        if name in tables and not con.sql(f"SELECT 1 FROM {name} LIMIT 1").fetchone():
            out[outcome] = f"{name} has no rows"
    return out
