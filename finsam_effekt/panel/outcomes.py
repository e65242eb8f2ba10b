"""Outcomes read from the panel for reference pairs: at horizons after u, as monthly paths around u, and dense.

:func:`horizon_outcomes` gives each (person, month u) pair its outcomes at horizons k (the status in month u+k,
``schema.outcome_column(o, k)``, and the sum over u+1..u+k, ``outcome_column(o, k, "cumulative")``);
:func:`outcome_paths` the month-by-month path in a window around u; :func:`densify` the panel made dense over
given month ranges. Censored months (death, emigration, outside the data) are marked and NaN, never zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from .. import months
from ..errors import InputError
from ..schema import DEFAULT_SELF_SUPPORT_THRESHOLD_SEK, OUTCOMES, outcome_column
from ..tables import Session, TableLike
from .build import VALUE_COLUMNS, censor_view, check_month, check_threshold
from .pairs import attach, check_no_clash, check_output, panel_source, panel_view, register_pairs
from .stream import NotPersonSorted, horizon_values, path_values


def _censor_flag(end: int, start: int | None, month_expr: str, cm_expr: str | None) -> str:
    parts = [f"{month_expr} > {end}"]
    if start is not None:
        parts.append(f"{month_expr} < {start}")
    if cm_expr is not None:
        parts.append(f"({cm_expr} IS NOT NULL AND {month_expr} >= {cm_expr})")
    return "(" + " OR ".join(parts) + ")"


def outcome_ends(outcome_end: Mapping[str, str] | None, end: int) -> dict[str, int]:
    """Month index of the last observed month of each panel value column: ``outcome_end[o]`` where given (an
    outcome whose register ends earlier, e.g. social assistance lagging earnings), else ``end``."""
    ends = {}
    for o in VALUE_COLUMNS:
        given = (outcome_end or {}).get(o)
        ends[o] = min(end, check_month(given, f"outcome_end[{o!r}]")) if given else end
    return ends


def _check_outcome_args(
    self_support_threshold: float, end_month: str | None, start_month: str | None, what: str
) -> tuple[float, int, int | None]:
    """Checked threshold and month indices of the end (required) and start of data, for outcome functions."""
    threshold = check_threshold(self_support_threshold)
    end = check_month(end_month, "end_month")
    start = check_month(start_month, "start_month")
    if end is None:
        raise InputError(f"end_month (the last month of data, 'YYYY-MM') is required for {what}.")
    return threshold, end, start


def _pairs_and_panel(
    sess, pairs, panel, spells, social_assistance, earnings, population, end_month, start_month, threshold
) -> tuple[str, pa.Table | pd.DataFrame, str]:
    """Register the pairs and the panel restricted to their persons: (pairs view, pair keys, panel view)."""
    pv, persons, pairs_t = register_pairs(sess, pairs)
    pm = panel_source(
        sess,
        persons,
        panel,
        spells,
        social_assistance,
        earnings,
        population,
        end_month,
        start_month,
        threshold,
    )
    return pv, pairs_t, pm


def horizon_outcomes(
    pairs: TableLike,
    horizons: Sequence[int] = (3, 6, 12),
    panel: TableLike | None = None,
    population: TableLike | None = None,
    *,
    end_month: str,
    spells: TableLike | None = None,
    social_assistance: TableLike | None = None,
    earnings: TableLike | None = None,
    start_month: str | None = None,
    self_support_threshold: float = DEFAULT_SELF_SUPPORT_THRESHOLD_SEK,
    con: duckdb.DuckDBPyConnection | None = None,
    output: Literal["pandas", "arrow"] = "pandas",
    outcome_end: Mapping[str, str] | None = None,
) -> pd.DataFrame | pa.Table:
    """Outcomes at horizons ``k`` after the reference month: status in month u+k and cumulated over u+1..u+k.

    For every outcome ``o`` of ``schema.OUTCOMES`` and horizon ``k``:

    * ``{o}_m{k} = o(u + k)`` (0 when the panel has no row for that month: implicit zero);
    * ``{o}_cum{k} = Σ_{j=1..k} o(u + j)`` (for the binary outcomes: the number of months with status 1).

    Censoring: month ``m`` of a person is censored when ``m ≥ c`` (``c`` = the month of death or emigration,
    whichever is first, from ``population``) or ``m > end_month`` (past the end of data) or, for outcome ``o``,
    ``m > outcome_end[o]`` (past the end of the registers ``o`` is built from). A pair is censored at horizon ``k``
    when any month of ``u+1 .. u+k`` is censored — since censoring runs from ``c`` on, exactly when ``u + k`` is
    censored — and then both ``{o}_m{k}`` and ``{o}_cum{k}`` are NaN (never zero).

    Parameters
    ----------
    pairs
        ``person_id``, ``ref_month`` and any other columns (kept).
    horizons
        Positive month offsets.
    panel, population
        Precomputed :func:`person_months` panel (or the raw tables via ``spells=...``), and the population table
        for death/emigration censoring (without it only the end of data censors).
    end_month
        Last month of data (required: the panel alone cannot tell a zero month from a month not yet observed).
    outcome_end
        Optional last month per outcome (``schema.outcome_registers`` tells which registers an outcome needs);
        months after it are censored for that outcome only.

    Returns
    -------
    One row per input row, in input order: input columns, then ``{o}_m{k}`` and ``{o}_cum{k}`` (float64).
    """
    check_output(output)
    hs = [int(k) for k in horizons]
    if not hs or any(k < 1 for k in hs) or len(set(hs)) != len(hs):
        raise InputError(f"horizons must be distinct positive month counts; got {list(horizons)}.")
    threshold, end, start = _check_outcome_args(self_support_threshold, end_month, start_month, "outcomes")
    sess = Session.open(con)
    try:
        pv, pairs_t, pm = _pairs_and_panel(
            sess,
            pairs,
            panel,
            spells,
            social_assistance,
            earnings,
            population,
            end_month,
            start_month,
            threshold,
        )
        cm, cens_join, cens = None, "", None
        if population is not None:
            cm, cens = "cens.cm", censor_view(sess, population)
            cens_join = _censor_join(cens)
        kmax = max(hs)
        ends = outcome_ends(outcome_end, end)
        if panel is not None and spells is None:
            streamed = _horizon_stream(sess, pv, cens, panel, hs, ends, start)
            if streamed is not None:
                return _attach_arrays(pairs_t, streamed, output, None)
        aggs, outs = [], []
        for k in hs:
            for o in OUTCOMES:
                flag = _censor_flag(ends[o], start, f"(pr.u + {k})", cm)
                status, cumulative = outcome_column(o, k, "status"), outcome_column(o, k, "cumulative")
                aggs.append(f"sum(p.{o}) FILTER (WHERE p.m = pr.u + {k}) AS {status}")
                aggs.append(f"sum(p.{o}) FILTER (WHERE p.m <= pr.u + {k}) AS {cumulative}")
                for c in (status, cumulative):
                    outs.append(
                        f"CASE WHEN {flag} THEN CAST(NULL AS DOUBLE) ELSE CAST(coalesce(h.{c}, 0) AS DOUBLE) END"
                        f" AS {c}"
                    )
        h = f"""WITH h AS (
                SELECT pr._row, {", ".join(aggs)}
                FROM {pv} pr JOIN {pm} p ON p.person_id = pr.person_id AND p.m > pr.u AND p.m <= pr.u + {kmax}
                GROUP BY pr._row)"""
        sql = f"""{h}
            SELECT {", ".join(outs)}
            FROM {pv} pr LEFT JOIN h ON h._row = pr._row {cens_join}
            ORDER BY pr._row"""
        result = sess.con.sql(sql).to_arrow_table()
        return attach(pairs_t, result, output)
    finally:
        sess.close()


def _censor_join(cens: str) -> str:
    """SQL joining the censoring view ``cens`` (:func:`censor_view`) to the pairs ``pr``."""
    return f"LEFT JOIN {cens} cens ON cens.person_id = pr.person_id"


def _stream_keys(sess: Session, pv: str, cens: str | None) -> tuple[pd.Categorical, np.ndarray, np.ndarray]:
    """The pairs' persons (categorical), month indices and censoring months (NaN: none; ``cens`` the censoring
    view or None), in input order."""
    keys = sess.con.sql(
        f"""SELECT pr.person_id, pr.u, {"cens.cm" if cens else "NULL"} AS cm
            FROM {pv} pr {_censor_join(cens) if cens else ""} ORDER BY pr._row"""
    ).fetchnumpy()
    person = pd.Categorical(np.asarray(keys["person_id"], dtype=object))
    cm = np.ma.filled(np.ma.asarray(keys["cm"]).astype(float), np.nan)
    return person, np.asarray(keys["u"], np.int64), cm


def _paths_stream(
    sess: Session, pv: str, cens: str | None, panel: TableLike, window, end: int, ends: dict[str, int], start
) -> dict[str, np.ndarray] | None:
    """:func:`outcome_paths`' columns from the person-sorted panel as a stream (``stream.path_values``: the same
    values, without a join), as arrays (NaN where missing; ``month`` text shared by every row of the same month);
    None when the panel is not stored person-sorted."""
    person, u, cm = _stream_keys(sess, pv, cens)
    try:
        month, values, censored = path_values(
            person, u, panel, VALUE_COLUMNS, window, end=end, ends=ends, start=start, censor_month=cm
        )
    except NotPersonSorted:
        return None
    lo, hi = window
    uniq, inv = np.unique(month, return_inverse=True)
    del month
    text = np.array(months.from_index(uniq) if len(uniq) else [], dtype=object)
    return {
        "rel_month": np.tile(np.arange(lo, hi + 1, dtype=np.int64), len(u)),
        "month": text[inv],  # a pointer per row to one string per month (not a string per row)
        **{o: values.pop(o) for o in OUTCOMES},
        "censored": censored,
    }


def _attach_arrays(pairs: pd.DataFrame | pa.Table, columns: dict[str, np.ndarray], output: str, repeat):
    """:func:`~finsam_effekt.panel.pairs.attach` for result columns held as arrays (NaN: missing): for pandas
    output the arrays become the frame's columns as they are — no Arrow table and no copy of it in between
    (at national scale 1.3·10⁷ path rows × 17 columns, which the round trip held three times over)."""
    if output != "pandas":
        table = pa.table({c: pa.array(v, from_pandas=True) for c, v in columns.items()})
        return attach(pairs, table, output, repeat)
    if not isinstance(pairs, pd.DataFrame):
        pairs = pairs.to_pandas()
    check_no_clash(pairs, list(columns))

    def values(c: str):  # the column's values, its rows repeated (a column at a time: no copy of the frame)
        s = pairs[c] if repeat is None else pairs[c].take(repeat)
        return s.to_numpy() if isinstance(s.dtype, np.dtype) else s.array

    out = pd.DataFrame(
        {**{c: values(c) for c in pairs.columns}, **{c: columns.pop(c) for c in list(columns)}}, copy=False
    )
    out.index = pairs.index if repeat is None else pd.RangeIndex(len(repeat))
    return out


def _horizon_stream(
    sess: Session, pv: str, cens: str | None, panel: TableLike, hs: list[int], ends: dict[str, int], start
) -> dict[str, np.ndarray] | None:
    """:func:`horizon_outcomes`' columns from the person-sorted panel as a stream (``stream.horizon_values``: the
    same values, without a join of the pairs with the panel); None when the panel is not stored person-sorted."""
    person, u, cm = _stream_keys(sess, pv, cens)
    try:
        values = horizon_values(person, u, panel, OUTCOMES, hs, ends=ends, start=start, censor_month=cm)
    except NotPersonSorted:
        return None
    return values


def _dense_values(
    rows: str,
    pm: str,
    end: int | None,
    start: int | None,
    cens: str | None,
    ends: Mapping[str, int] | None = None,
) -> str:
    """SQL: for ``rows(_row, _seq, person_id, m)`` the outcomes of month m (zeros filled, NaN when censored;
    ``ends``: a column's own last month, after which only that column is NaN)."""
    cm = "cens.cm" if cens else None

    def flag_at(last: int | None) -> str:
        if last is not None:
            return _censor_flag(last, start, "q.m", cm)
        return f"({cm} IS NOT NULL AND q.m >= {cm})" if cm else "FALSE"

    flag = flag_at(end)
    vals = ", ".join(
        f"CASE WHEN {flag_at((ends or {}).get(o, end))} THEN CAST(NULL AS DOUBLE) "
        f"ELSE CAST(coalesce(p.{o}, 0) AS DOUBLE) END AS {o}"
        for o in VALUE_COLUMNS
    )
    cens_join = f"LEFT JOIN {cens} cens ON cens.person_id = q.person_id" if cens else ""
    return f"""SELECT q._row, q._seq, {months.sql_text("q.m")} AS month, {vals}, {flag} AS censored
        FROM {rows} q LEFT JOIN {pm} p ON p.person_id = q.person_id AND p.m = q.m {cens_join}
        ORDER BY q._row, q._seq"""


def outcome_paths(
    pairs: TableLike,
    window: tuple[int, int] = (-24, 24),
    panel: TableLike | None = None,
    population: TableLike | None = None,
    *,
    end_month: str,
    spells: TableLike | None = None,
    social_assistance: TableLike | None = None,
    earnings: TableLike | None = None,
    start_month: str | None = None,
    self_support_threshold: float = DEFAULT_SELF_SUPPORT_THRESHOLD_SEK,
    con: duckdb.DuckDBPyConnection | None = None,
    output: Literal["pandas", "arrow"] = "pandas",
    outcome_end: Mapping[str, str] | None = None,
) -> pd.DataFrame | pa.Table:
    """The monthly outcome path around the reference month, for plots and event studies.

    One row per pair × ``rel_month`` r in ``window[0] .. window[1]``: the input columns, ``rel_month``, ``month``
    (= u + r as ``YYYY-MM``), every outcome of ``schema.OUTCOMES`` in that month (implicit zeros filled) and
    ``censored``. A month is censored when it is at/after the person's death or emigration month (``population``),
    after ``end_month`` or, when ``start_month`` is given, before the first month of data; its outcome values are
    then NaN. With ``outcome_end``, an outcome is also NaN after its own last month (``censored`` then stays
    False: the person is observed, that register is not).

    Returns
    -------
    Rows ordered by input row, then ``rel_month``.
    """
    check_output(output)
    lo, hi = (int(window[0]), int(window[1]))
    if lo > hi:
        raise InputError(f"window must be (first, last) relative months with first <= last; got {window}.")
    threshold, end, start = _check_outcome_args(
        self_support_threshold, end_month, start_month, "outcome paths"
    )
    sess = Session.open(con)
    try:
        pv, pairs_t, pm = _pairs_and_panel(
            sess,
            pairs,
            panel,
            spells,
            social_assistance,
            earnings,
            population,
            end_month,
            start_month,
            threshold,
        )
        cens = censor_view(sess, population) if population is not None else None
        if panel is not None and spells is None:
            ends = outcome_ends(outcome_end, end)
            streamed = _paths_stream(sess, pv, cens, panel, (lo, hi), end, ends, start)
            if streamed is not None:
                repeat = np.repeat(np.arange(len(pairs_t), dtype=np.int64), hi - lo + 1)
                return _attach_arrays(pairs_t, streamed, output, repeat)
        rows = sess.name("rows")
        sess.con.execute(
            f"""CREATE OR REPLACE TEMP VIEW {rows} AS
                SELECT pr._row, r.r AS _seq, pr.person_id, pr.u + r.r AS m
                FROM {pv} pr CROSS JOIN range({lo}, {hi + 1}) r(r)"""
        )
        sql = _dense_values(rows, pm, end, start, cens, outcome_ends(outcome_end, end))
        res = sess.con.sql(sql).to_arrow_table()
        outcome_cols = ["month", *OUTCOMES, "censored"]
        result = pa.table({"rel_month": res["_seq"].cast(pa.int64()), **{c: res[c] for c in outcome_cols}})
        repeat = np.repeat(np.arange(len(pairs_t), dtype=np.int64), hi - lo + 1)
        return attach(pairs_t, result, output, repeat)
    finally:
        sess.close()


def densify(
    panel: TableLike,
    ranges: TableLike,
    population: TableLike | None = None,
    *,
    end_month: str | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> pd.DataFrame:
    """Make the sparse panel dense over given (person, month range) rows.

    Parameters
    ----------
    panel
        A :func:`person_months` panel.
    ranges
        ``person_id``, ``first_month``, ``last_month`` (``YYYY-MM``, inclusive); one person may have several rows.
    population, end_month
        Optional: months at/after death or emigration, or after ``end_month``, are marked ``censored`` and their
        values are NaN (not zero).

    Returns
    -------
    ``person_id``, ``month`` and every value column of :data:`PANEL_COLUMNS` (implicit zeros filled), plus
    ``censored``; one row per range row × month, in range order then month order.
    """
    end = check_month(end_month, "end_month")
    sess = Session.open(con)
    try:
        if isinstance(ranges, duckdb.DuckDBPyRelation):
            ranges = ranges.df()
        ranges_df = pd.DataFrame(ranges) if not isinstance(ranges, pa.Table) else ranges.to_pandas()
        missing = [c for c in ("person_id", "first_month", "last_month") if c not in ranges_df]
        if missing:
            raise InputError(f"ranges lack column(s) {', '.join(missing)}.")
        first = months.to_index(ranges_df["first_month"]) if len(ranges_df) else np.zeros(0, np.int64)
        last = months.to_index(ranges_df["last_month"]) if len(ranges_df) else np.zeros(0, np.int64)
        if np.any(last < first):
            raise InputError("ranges: last_month before first_month in some rows.")
        counts = (last - first + 1).astype(np.int64)
        row = np.repeat(np.arange(len(ranges_df), dtype=np.int64), counts)
        offs = np.arange(counts.sum(), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
        q = pa.table(
            {
                "_row": row,
                "_seq": offs,
                "person_id": pa.array(
                    np.asarray(ranges_df["person_id"]).astype(str)[row] if len(row) else [], pa.string()
                ),
                "m": np.asarray(first, dtype=np.int64)[row] + offs,
            }
        )
        rows = sess.name("dq")
        sess.con.register(rows, q)
        pm = panel_view(sess, panel)
        cens = censor_view(sess, population) if population is not None else None
        sql = _dense_values(rows, pm, end, None, cens)
        out = sess.con.sql(sql).df()
        out.insert(0, "person_id", q["person_id"].to_pandas())
        return out.drop(columns=["_row", "_seq"])[["person_id", "month", *VALUE_COLUMNS, "censored"]]
    finally:
        sess.close()
