"""Register-history covariates at a reference month, the same for treated persons and candidate controls.

:func:`history_features` measures, for any (person, month u) pair, the register history of months u−w..u−1 (never
month u, never SUS) and the demographics at u; the cohort's propensity score and the IPCW censoring hazard use
these columns (``schema.FEATURE_COLUMNS``).
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
    HISTORY_COLUMNS,
    HISTORY_WINDOWS,
    SPELL_GROUPS,
)
from ..tables import Session, TableLike
from .build import check_threshold, register_input
from .pairs import attach, check_output, panel_source, register_pairs


def _unique(sess: Session, view: str, key: str, table: str) -> None:
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

    Returns
    -------
    One row per input row, in input order: the input columns followed by :data:`FEATURE_COLUMNS`.

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
        fill = []
        for c in HISTORY_COLUMNS[:-1]:
            kind = "BIGINT" if c.startswith(("ps_", "sa_", "work_")) else "DOUBLE"
            fill.append(f"CAST(coalesce(h.{c}, 0) AS {kind}) AS {c}")
        fill.append(
            f"CAST(coalesce(pr.u - h.last_work, {int(work_lookback) + 1}) AS BIGINT) AS months_since_work"
        )
        demo_join = ""
        if population is not None:
            pop = register_input(sess, "population", population)
            _unique(sess, pop, "person_id", "population")
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
                _unique(sess, kf, "kommun", "kommun_forbund")
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
                FROM {pv} pr JOIN {pm} p ON p.person_id = pr.person_id AND p.m >= pr.u - {look} AND p.m < pr.u
                GROUP BY pr._row)
            SELECT {", ".join(fill)}, {", ".join(demo)}
            FROM {pv} pr LEFT JOIN h ON h._row = pr._row {demo_join}
            ORDER BY pr._row"""
        result = sess.con.sql(sql).to_arrow_table()
        return attach(pairs_t, result, output)
    finally:
        sess.close()
