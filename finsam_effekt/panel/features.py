"""Register history at a reference month, the same for treated persons and candidate controls.

:func:`history_features` measures, for any (person, month u) pair, the register history of months u−w..u−1 (never
month u, never SUS) and the demographics at u; the cohort's propensity score and the IPCW censoring hazard use
these columns (``schema.FEATURE_COLUMNS``). :func:`pre_period_outcomes` reads the main outcomes month by month
before u, for the balance table's check of the whole pre-period path.
"""

from __future__ import annotations

from typing import Literal

import duckdb
import pandas as pd
import pyarrow as pa

from .. import months
from ..errors import InputError
from ..schema import (
    DEFAULT_SELF_SUPPORT_THRESHOLD_SEK,
    DEMOGRAPHIC_COLUMNS,
    HISTORY_WINDOWS,
    MAIN_SOURCE_GROUPS,
    SPELL_GROUPS,
    STATUS_MONTHS,
    SUPPORT_SOURCES,
)
from ..tables import Session, TableLike
from .build import check_threshold, register_input
from .pairs import attach, check_output, panel_source, panel_view, register_pairs


def main_source_sql(p: str, threshold: float) -> str:
    """SQL of the main source of support of a panel row ``p`` as its index in ``schema.SUPPORT_SOURCES``.

    The rule (the same as :func:`history_features` documents): with public support, the group of
    ``schema.MAIN_SOURCE_GROUPS`` with the most kronor paid in the month, kronor rounded to whole kronor (so
    that equal payments tie exactly); a tie goes to the most nettodagar (to a quarter day), then to the group
    listed first. Without public support: ``work`` when earnings reach ``threshold``, else ``none``. The three
    keys are packed into one integer per group, ``kr · 10⁴ + quarter days · 10 + priority``, and the largest
    wins: plain arithmetic per row, no list or sort (the panel can have hundreds of millions of rows).
    """
    n = len(MAIN_SOURCE_GROUPS)
    keys = []
    for i, g in enumerate(MAIN_SOURCE_GROUPS):
        sek = f"{p}.social_assistance_sek" if g == "social_assistance" else f"{p}.sek_{g}"
        days = "0" if g == "social_assistance" else f"{p}.days_{g}"
        keys.append(
            f"CAST(round(greatest({sek}, 0)) AS BIGINT) * 10000"
            f" + CAST(round(greatest({days}, 0) * 4) AS BIGINT) * 10 + {n - i}"
        )
    work, none = SUPPORT_SOURCES.index("work"), SUPPORT_SOURCES.index("none")
    # priority n − i of group i decodes to its index in SUPPORT_SOURCES, i + 1 (work is 0)
    return (
        f"CASE WHEN {p}.public_support = 0 THEN "
        f"(CASE WHEN {p}.earnings_sek >= {float(threshold)!r} THEN {work} ELSE {none} END) "
        f"ELSE {n + 1} - greatest({', '.join(keys)}) % 10 END"
    )


def _source_text(code: str) -> str:
    """SQL turning a :func:`main_source_sql` index (NULL: a month without any register activity) into its level."""
    cases = " ".join(f"WHEN {i} THEN '{s}'" for i, s in enumerate(SUPPORT_SOURCES))
    return f"CAST(CASE coalesce({code}, {SUPPORT_SOURCES.index('none')}) {cases} END AS VARCHAR)"


def require_unique(sess: Session, view: str, key: str, table: str) -> None:
    """:class:`InputError` unless ``view`` has one row per ``key`` (``table`` names it in the message)."""
    n, k = sess.con.execute(f"SELECT count(*), count(DISTINCT {key}) FROM {view}").fetchone()
    if n != k:
        raise InputError(f"{table} has {n - k} duplicate {key} value(s); it must have one row per {key}.")


def history_features(
    pairs: TableLike,
    panel: TableLike | None = None,
    population: TableLike | None = None,
    kommun_forbund: TableLike | None = None,
    *,
    spells: TableLike | None = None,
    social_assistance: TableLike | None = None,
    earnings: TableLike | None = None,
    end_month: str | None = None,
    start_month: str | None = None,
    self_support_threshold: float = DEFAULT_SELF_SUPPORT_THRESHOLD_SEK,
    work_lookback: int = 24,
    pre_period: bool = False,
    con: duckdb.DuckDBPyConnection | None = None,
    output: Literal["pandas", "arrow"] = "pandas",
) -> pd.DataFrame | pa.Table:
    """Register-history covariates at a reference month for (person, ``ref_month``) pairs.

    The same covariates are computed for treated persons at their start and for any number of candidate controls
    at any month, only from the registers (never from SUS), and only from months ``u−w .. u−1`` before the
    reference month ``u`` (month ``u`` itself is never used). With ``P(m)`` the panel row of month ``m`` (an
    implicit zero row when absent):

    * ``ps_months_w = #{m in u−w..u−1 : public_support(m) = 1}`` for w = 3, 12, 24;
    * ``days_{g}_w = Σ_{m in u−w..u−1} days_g(m)`` (nettodagar) for each spell group g and w = 3, 12, 24;
    * ``sa_months_w = #{m in u−w..u−1 : social_assistance_sek(m) > 0}`` for w = 12, 24;
    * ``benefit_sek_12 = Σ_{u−12..u−1} benefit_sek``; ``earnings_12 = Σ_{u−12..u−1} earnings_sek``;
    * ``work_months_12 = #{m in u−12..u−1 : earnings_sek(m) ≥ threshold}``;
    * ``months_since_work = u − max{m in u−L..u−1 : earnings_sek(m) ≥ threshold}`` (1 = worked last month), and
      ``L + 1`` when there is no such month within the look-back ``L = work_lookback`` (capped);
    * the status month by month just before u, for k = 1..6 (``schema.STATUS_MONTHS``):
      ``ps_u{k} = public_support(u−k)`` (0/1) and ``source_u{k}`` = the main source of support in month u−k
      (a level of ``schema.SUPPORT_SOURCES``): with public support, the group (sickness, disability,
      labour_market, unemployment, social_assistance) with the most kronor paid that month, kronor rounded to
      whole kronor; a tie goes to the most nettodagar, then to the group listed first. Without public support
      ``work`` when ``earnings_sek(u−k) ≥ threshold`` (self-support), else ``none``. Counts over 3, 12 and 24
      months cannot tell "on support at u−1" from "on support at u−3"; entry into an insats often follows a
      change in the last month or two (Ashenfelter 1978), so the status at u−1, u−2, … is matched on as it is
      (Sianesi 2004; Lechner & Wunsch 2013);
    * demographics at u from ``population``: ``age = year(u) − birth_year`` (age reached during the calendar year
      of u), ``sex``, ``education``, ``birth_region``, ``kommun`` (the register's kommun; the population table is
      not time-varying) and ``forbund_id`` = the förbund of that kommun in ``kommun_forbund`` (empty when the
      kommun is not there or no table is given). Without ``population`` the demographics are empty.

    Months before the first month of data count as zero (no activity). Death and emigration do not affect history
    (the persons were alive and resident before u by eligibility).

    Parameters
    ----------
    pairs
        Table with ``person_id``, ``ref_month`` (``YYYY-MM``) and any other columns (kept).
    panel
        A precomputed :func:`person_months` panel. Alternatively give the raw tables ``spells`` (+
        ``social_assistance``, ``earnings``, ``end_month``) and the panel is built for the pairs' persons only.
    population, kommun_forbund
        Optional canonical ``population`` and ``kommun_forbund`` (``kommun`` → ``forbund_id``) tables.
    pre_period
        Also the :func:`pre_period_outcomes` columns (default outcomes and months), from the same join of the pairs
        with their panel rows: the balance table needs them for every cohort row, and a second join of 10⁷ pairs
        with the panel would cost as much again (issue 14).

    Returns
    -------
    One row per input row, in input order: the input columns followed by :data:`FEATURE_COLUMNS`
    (``source_u{k}`` as text, every other history column a number), then, with ``pre_period``,
    :func:`pre_period_columns`.

    References
    ----------
    Sianesi (2004) and Li, Propert & Rosenbaum (2001): covariates of risk-set matching are measured identically
    for treated and not-yet-treated persons, from the history before the reference month.
    """
    check_output(output)
    threshold = check_threshold(self_support_threshold)
    if work_lookback < 1:
        raise InputError(f"work_lookback must be at least 1 month; got {work_lookback}.")
    look = max(max(HISTORY_WINDOWS), int(work_lookback))
    if pre_period:
        look = max(look, *PRE_PERIOD_MONTHS, PRE_PERIOD_MEAN_WINDOW)
    sess = Session.open(con)
    try:
        pv, persons, pairs_t = register_pairs(sess, pairs)
        pm = panel_source(
            sess, persons, panel, spells, social_assistance, earnings, None, end_month, start_month, threshold
        )
        aggs = [
            f"count(*) FILTER (WHERE p.public_support = 1 AND p.m >= pr.u - {w}) AS ps_months_{w}"
            for w in HISTORY_WINDOWS
        ]
        aggs += [
            f"sum(p.days_{g}) FILTER (WHERE p.m >= pr.u - {w}) AS days_{g}_{w}"
            for g in SPELL_GROUPS
            for w in HISTORY_WINDOWS
        ]
        aggs += [
            f"count(*) FILTER (WHERE p.social_assistance_sek > 0 AND p.m >= pr.u - {w}) AS sa_months_{w}"
            for w in (12, 24)
        ]
        aggs += [
            "sum(p.benefit_sek) FILTER (WHERE p.m >= pr.u - 12) AS benefit_sek_12",
            "sum(p.earnings_sek) FILTER (WHERE p.m >= pr.u - 12) AS earnings_12",
            f"count(*) FILTER (WHERE p.earnings_sek >= {threshold!r} AND p.m >= pr.u - 12) AS work_months_12",
            f"max(p.m) FILTER (WHERE p.earnings_sek >= {threshold!r} AND p.m >= pr.u - {int(work_lookback)}) AS last_work",
        ]
        # (person, month) is unique in the panel: each filter below keeps at most one row of the group
        for k in STATUS_MONTHS:
            aggs.append(f"max(p.public_support) FILTER (WHERE p.m = pr.u - {k}) AS ps_u{k}")
            aggs.append(f"max(p.src) FILTER (WHERE p.m = pr.u - {k}) AS source_u{k}")
        fill = [f"CAST(coalesce(h.ps_months_{w}, 0) AS BIGINT) AS ps_months_{w}" for w in HISTORY_WINDOWS]
        fill += [
            f"CAST(coalesce(h.days_{g}_{w}, 0) AS DOUBLE) AS days_{g}_{w}"
            for g in SPELL_GROUPS
            for w in HISTORY_WINDOWS
        ]
        fill += [f"CAST(coalesce(h.sa_months_{w}, 0) AS BIGINT) AS sa_months_{w}" for w in (12, 24)]
        fill += [
            "CAST(coalesce(h.benefit_sek_12, 0) AS DOUBLE) AS benefit_sek_12",
            "CAST(coalesce(h.earnings_12, 0) AS DOUBLE) AS earnings_12",
            "CAST(coalesce(h.work_months_12, 0) AS BIGINT) AS work_months_12",
            f"CAST(coalesce(pr.u - h.last_work, {int(work_lookback) + 1}) AS BIGINT) AS months_since_work",
        ]
        fill += [f"CAST(coalesce(h.ps_u{k}, 0) AS BIGINT) AS ps_u{k}" for k in STATUS_MONTHS]
        fill += [f"{_source_text(f'h.source_u{k}')} AS source_u{k}" for k in STATUS_MONTHS]
        demo_fill: list[str] = []
        if pre_period:
            pre_aggs, demo_fill = _pre_period_sql(
                PRE_PERIOD_OUTCOMES, PRE_PERIOD_MONTHS, PRE_PERIOD_MEAN_WINDOW
            )
            aggs += pre_aggs
        demo_join = ""
        if population is not None:
            pop = register_input(sess, "population", population)
            require_unique(sess, pop, "person_id", "population")
            demo = [
                f"CAST({months.sql_year('pr.u')} - CAST(pop.birth_year AS BIGINT) AS DOUBLE) AS age",
                "CAST(pop.sex AS VARCHAR) AS sex",
                "CAST(pop.education AS VARCHAR) AS education",
                "CAST(pop.birth_region AS VARCHAR) AS birth_region",
                "CAST(pop.kommun AS VARCHAR) AS kommun",
            ]
            demo_join = f"LEFT JOIN {pop} pop ON CAST(pop.person_id AS VARCHAR) = pr.person_id"
            if kommun_forbund is not None:
                kf = register_input(sess, "kommun_forbund", kommun_forbund)
                require_unique(sess, kf, "kommun", "kommun_forbund")
                demo.append("CAST(kf.forbund_id AS VARCHAR) AS forbund_id")
                demo_join += f" LEFT JOIN {kf} kf ON CAST(kf.kommun AS VARCHAR) = CAST(pop.kommun AS VARCHAR)"
            else:
                demo.append("CAST(NULL AS VARCHAR) AS forbund_id")
        else:
            demo = ["CAST(NULL AS DOUBLE) AS age"] + [
                f"CAST(NULL AS VARCHAR) AS {c}" for c in DEMOGRAPHIC_COLUMNS[1:]
            ]
        sql = f"""
            WITH h AS (
                SELECT pr._row, {", ".join(aggs)}
                FROM {pv} pr JOIN (SELECT *, {main_source_sql("pm", threshold)} AS src FROM {pm} pm) p
                  ON p.person_id = pr.person_id AND p.m >= pr.u - {look} AND p.m < pr.u
                GROUP BY pr._row)
            SELECT {", ".join(fill)}, {", ".join(demo + demo_fill)}
            FROM {pv} pr LEFT JOIN h ON h._row = pr._row {demo_join}
            ORDER BY pr._row"""
        result = sess.con.sql(sql).to_arrow_table()
        return attach(pairs_t, result, output)
    finally:
        sess.close()


#: Main outcomes whose pre-period path the balance table checks (besides the model's covariates).
PRE_PERIOD_OUTCOMES: tuple[str, ...] = ("public_support", "self_support", "benefit_sek", "earnings_sek")
#: Months k before u at which :func:`pre_period_outcomes` reads each outcome (``{o}_u{k}``).
PRE_PERIOD_MONTHS: tuple[int, ...] = (1, 2, 3, 6, 12)
#: Months before u over which :func:`pre_period_outcomes` averages each outcome (``{o}_mean{w}``).
PRE_PERIOD_MEAN_WINDOW: int = 24


def _pre_period_sql(
    outcomes: tuple[str, ...], months_before: tuple[int, ...], mean_window: int
) -> tuple[list[str], list[str]]:
    """The aggregates (over panel rows ``p`` of a pair ``pr``) and the output expressions (from the aggregate ``h``)
    of the :func:`pre_period_outcomes` columns."""
    aggs, cols = [], []
    for o in outcomes:
        for k in months_before:
            aggs.append(f"max(p.{o}) FILTER (WHERE p.m = pr.u - {int(k)}) AS {o}_u{int(k)}")
            cols.append(f"CAST(coalesce(h.{o}_u{int(k)}, 0) AS DOUBLE) AS {o}_u{int(k)}")
        aggs.append(f"sum(p.{o}) FILTER (WHERE p.m >= pr.u - {int(mean_window)}) AS {o}_sum")
        cols.append(
            f"CAST(coalesce(h.{o}_sum, 0) AS DOUBLE) / {int(mean_window)} AS {o}_mean{int(mean_window)}"
        )
    return aggs, cols


def pre_period_columns(
    outcomes: tuple[str, ...] = PRE_PERIOD_OUTCOMES,
    months_before: tuple[int, ...] = PRE_PERIOD_MONTHS,
    mean_window: int = PRE_PERIOD_MEAN_WINDOW,
) -> list[str]:
    """Names of the :func:`pre_period_outcomes` columns, in their order: per outcome ``{o}_u{k}`` for each k, then
    ``{o}_mean{w}``."""
    return [c for o in outcomes for c in (*(f"{o}_u{k}" for k in months_before), f"{o}_mean{mean_window}")]


def pre_period_outcomes(
    pairs: TableLike,
    panel: TableLike,
    *,
    outcomes: tuple[str, ...] = PRE_PERIOD_OUTCOMES,
    months_before: tuple[int, ...] = PRE_PERIOD_MONTHS,
    mean_window: int = PRE_PERIOD_MEAN_WINDOW,
    con: duckdb.DuckDBPyConnection | None = None,
    output: Literal["pandas", "arrow"] = "pandas",
) -> pd.DataFrame | pa.Table:
    """The outcome path before the reference month for (person, ``ref_month``) pairs: what the balance table checks
    besides the model's covariates.

    With ``P(m)`` the panel row of month ``m`` (an implicit zero row when absent, as in the sparse panel):
    ``{o}_u{k} = o(u−k)`` for each outcome ``o`` and each k of ``months_before`` (default u−1, u−2, u−3, u−6,
    u−12), and ``{o}_mean{w} = Σ_{m in u−w..u−1} o(m) / w`` (default w = 24; months before the first month of
    data count as zero, as in :func:`history_features`). Month u itself is never used.

    Matching balances the model's covariates; whether the participants and their controls also had the same
    outcomes month by month before u is the check that the design worked (a difference left at u−1 carries into
    the outcomes a few months later; Ashenfelter 1978, Heckman & Smith 1999). The computation is one join of the
    pairs with the panel rows of their persons in u−w..u−1 and a grouped aggregate, as :func:`history_features`.

    Parameters
    ----------
    pairs : table with ``person_id``, ``ref_month`` (``YYYY-MM``) and any other columns (kept).
    panel : a :func:`person_months` panel with the ``outcomes`` as columns.

    Returns
    -------
    One row per input row, in input order: the input columns followed by :func:`pre_period_columns`.
    """
    check_output(output)
    ks = tuple(int(k) for k in months_before)
    if not ks or min(ks) < 1 or mean_window < 1:
        raise InputError(
            f"pre_period_outcomes: months before u must be at least 1; got {months_before} and {mean_window}"
        )
    look = max(*ks, int(mean_window))
    sess = Session.open(con)
    try:
        pv, _, pairs_t = register_pairs(sess, pairs)
        pm = panel_view(sess, panel)
        aggs, cols = _pre_period_sql(outcomes, ks, mean_window)
        sql = f"""
            WITH h AS (
                SELECT pr._row, {", ".join(aggs)}
                FROM {pv} pr JOIN {pm} p ON p.person_id = pr.person_id AND p.m >= pr.u - {look} AND p.m < pr.u
                GROUP BY pr._row)
            SELECT {", ".join(cols)}
            FROM {pv} pr LEFT JOIN h ON h._row = pr._row
            ORDER BY pr._row"""
        return attach(pairs_t, sess.con.sql(sql).to_arrow_table(), output)
    finally:
        sess.close()
