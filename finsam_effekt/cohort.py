"""Staggered-entry (risk-set) cohort: treated participants at their start month and candidate controls per month.

For every calendar month u in which some participant starts, the cohort holds

* **treated**: each linkable participant whose first start (``participants.ref_month``) is u;
* **candidate controls**: every person of the population who, at u, is
  resident (no immigration date, or immigrated in a month before u; not emigrated and not dead in or before u),
  with at least ``min_history_months`` months of register history before u (the linkage rule, from the later of
  ``register_start`` and the immigration month),
  of working age (``year(u) − birth_year`` within ``age_range``, the panel's age definition),
  not in any insats at or before u (own first start after u, or never), and
  eligible (default rule ``recent_public_support``: at least one month with public support in the
  ``lookback_months`` months u−L..u−1; ``any_resident``: no history rule).

The same person may be a candidate in many months (risk-set matching: Li, Propert & Rosenbaum 2001; Sianesi
2004; not-yet-treated controls as in Callaway & Sant'Anna 2021). Treated persons must meet the same residency, age
and eligibility rules at their own u (the estimand is the ATT among eligible participants); those who do not are
counted in ``cohort.attrs['dropped_treated']``, each participant under exactly one reason, the first it meets in
the order of :data:`TREATED_DROP_REASONS` (:func:`treated_attrition` gives the reason of each participant).

Options and their estimands
---------------------------
``later_treated="keep"``
    Controls who start an insats after u stay controls for their whole follow-up: the effect of *starting now*
    versus *not starting now* (possibly later) — an intention-to-treat contrast of timing (Sianesi 2004).
``later_treated="censor"``
    Their follow-up is censored from their own start month (:func:`censor_at_later_start`): the effect of
    starting now versus not (yet) participating, under the assumption that censoring at own start is
    non-informative given the matched history.
A person used at most once as a control across months (MatchIt's ``unit.id``) is a matching option
(``match_nearest(..., unit_id="person_id")``): each matched control then represents one person; otherwise a person
may serve as a control in several months (and the SEs cluster by person).
``sample_rate < 1``
    A random share of candidate person-months is kept in every month (independently, seeded) for quick runs; the
    estimand is unchanged, precision is lower. Default: the full pool.

The ``cohort`` table (docs/tables.md): ``person_id``, ``ref_month``, ``treated`` (0/1), ``later_start_month``
(controls: own first start month, empty if never), then ``panel.FEATURE_COLUMNS`` and the pre-period path
(``panel.pre_period_columns()``), in compact exact types (``tables.compact``: text as categories; counts of months
as int8, ``tables.narrow_counts``; a national pool is 10⁷–5·10⁷ rows); ``tables.plain`` gives it back as text.

:func:`former_participants` gives, by the same rules, the linkable persons who started *before* u — never
controls, but the mirror of the anonymous former participants who cannot be told apart in the comparison pool
(``contamination``).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from . import months as mo
from . import progress
from .censoring import CensoringWeights, censor_at_later_start, later_start_ipcw  # noqa: F401 (the cohort's API)
from .errors import ConfigError, InputError
from .options import ELIGIBILITY_RULES, LATER_TREATED, check
from .panel import history_features
from .panel.stream import NotPersonSorted, history_features_stream, row_groups, support_month_counts
from .schema import DEFAULT_SELF_SUPPORT_THRESHOLD_SEK, HISTORY_COUNT_COLUMNS
from .tables import Session, as_pandas, compact, concat_compact, narrow_counts, plain, take_compact

#: Why a participant whose first start lies in the window does not enter the cohort, in the order the rules are
#: applied (a participant counts under the first reason it meets):
#: ``not_in_population`` (no row in ``population``), ``died_before_start`` (month of death ≤ u),
#: ``emigrated_before_start`` (month of emigration ≤ u), ``not_yet_resident`` (immigrated in month u or later),
#: ``outside_age_range`` (``year(u) − birth_year`` outside ``age_range``, or no birth year), ``short_history``
#: (fewer than ``min_history_months`` months of register history before u), ``not_eligible`` (the eligibility
#: rule fails at u). These are the keys of ``cohort.attrs['dropped_treated']``.
TREATED_DROP_REASONS: tuple[str, ...] = (
    "not_in_population",
    "died_before_start",
    "emigrated_before_start",
    "not_yet_resident",
    "outside_age_range",
    "short_history",
    "not_eligible",
)
#: Columns of :func:`treated_attrition`.
TREATED_STATUS_COLUMNS: tuple[str, ...] = ("person_id", "ref_month", "reason")
_BIG = np.iinfo(np.int64).max


def _first_starts(participants: pd.DataFrame, sus_registrations: pd.DataFrame | None) -> pd.Series:
    """First insats start month index per person (linkable participants and registrations)."""
    first = pd.Series(mo.to_index(participants["ref_month"]), index=participants["person_id"].astype(str))
    first = first.groupby(level=0).min()
    if sus_registrations is not None and len(sus_registrations):
        r = sus_registrations[sus_registrations["person_id"].notna()]
        if "registration_kind" in r.columns:
            r = r[r["registration_kind"] == "person"]
        r = r[r["person_id"].astype(str) != ""]
        if len(r):
            s = pd.Series(mo.of_dates(r["start_date"]), index=r["person_id"].astype(str))
            s = s[s >= 0].groupby(level=0).min()
            first = pd.concat([first, s]).groupby(level=0).min()
    return first


def _persons_of(population, ids: pd.Index, con):
    """The rows of ``population`` whose pseudonym is in ``ids`` — in the engine when it is a DuckDB relation
    (the whole population of a national run is 5·10⁶ rows; the former participants are a few 10⁵ of them)."""
    if isinstance(population, duckdb.DuckDBPyRelation) and isinstance(con, duckdb.DuckDBPyConnection):
        sess = Session.open(con)
        try:
            view = sess.name("persons_of")
            sess.con.register(view, pd.DataFrame({"person_id": np.asarray(ids, dtype=object)}))
            return population.filter(f"CAST(person_id AS VARCHAR) IN (SELECT person_id FROM {view})").df()
        finally:
            sess.close()
    pop = as_pandas(population, "build_cohort: population")
    return None if pop is None else pop[pop["person_id"].astype(str).isin(ids)]


def _support_months(panel, pairs: pd.DataFrame, lookback: int, con) -> np.ndarray:
    """Months with public support in u−L..u−1 for each (person_id, ref_month) pair, from the panel."""
    sess = Session.open(con if isinstance(con, duckdb.DuckDBPyConnection) else None)
    try:
        pm = sess.register("person_months", panel, required=("person_id", "month", "public_support"))
        pv = sess.name("pairs")
        p = pd.DataFrame(
            {
                "_row": np.arange(len(pairs)),
                "person_id": pairs["person_id"].astype(str).to_numpy(),
                "u": pairs["_u"],
            }
        )
        sess.con.register(pv, p)
        sql = f"""
            SELECT pr._row, count(*) AS n
            FROM {pv} pr JOIN (
                SELECT CAST(person_id AS VARCHAR) AS person_id, {mo.sql_index("month")} AS m
                FROM {pm} WHERE public_support = 1) p
              ON p.person_id = pr.person_id AND p.m >= pr.u - {int(lookback)} AND p.m < pr.u
            GROUP BY pr._row"""
        res = sess.con.sql(sql).df()
    finally:
        sess.close()
    out = np.zeros(len(pairs), dtype=np.int64)
    out[res["_row"].to_numpy(np.int64)] = res["n"].to_numpy(np.int64)
    return out


def _pool_support_months(panel, pid: np.ndarray, ref_months: np.ndarray, lookback: int) -> np.ndarray | None:
    """Months with public support in u−L..u−1 for every pool person (rows in the order of ``pid``, the pool's
    pseudonyms, sorted by :meth:`_Pool.of`) at every reference month (columns), from one pass over the
    person-sorted panel (``panel.stream``); None when the panel is not stored person-sorted (the caller then asks
    the engine per pair, :func:`_support_months`)."""
    try:
        return support_month_counts(panel, pd.Index(pid, dtype=object), ref_months, lookback)
    except NotPersonSorted:
        return None


def build_cohort(
    participants,
    panel=None,
    population=None,
    kommun_forbund=None,
    *,
    sus_registrations=None,
    window: tuple[str | None, str | None] | None = None,
    age_range: tuple[int, int] = (16, 64),
    eligibility: str = "recent_public_support",
    lookback_months: int = 12,
    later_treated: str = "keep",
    sample_rate: float = 1.0,
    min_history_months: int = 0,
    register_start: str | None = None,
    end_month: str | None = None,
    self_support_threshold: float | None = None,
    seed: int = 0,
    con=None,
    treated_status: pd.DataFrame | None = None,
    **history_kw,
) -> pd.DataFrame:
    """Build the ``cohort`` table: treated participants at u and candidate control person-months at u.

    Parameters
    ----------
    participants : table
        ``participants`` of the linkage stage (``person_id``, ``ref_month``; further columns ignored).
    panel : table
        The ``person_months`` panel (for the eligibility rule and the history features).
    population : table
        Canonical ``population`` (the comparison pool; residency, age and demographics).
    kommun_forbund : table, optional
        ``kommun`` → ``forbund_id`` (for the ``forbund_id`` feature).
    sus_registrations : table, optional
        Linkable registrations: their earliest start also counts as "in an insats" (belt and braces when the
        participants table was filtered).
    window : (first, last) ``YYYY-MM``, optional
        Reference months u considered; default all months with a participant start.
    age_range : (min, max)
        Working age at u, inclusive, ``age = year(u) − birth_year``.
    eligibility : {"recent_public_support", "any_resident"} (``options.ELIGIBILITY_RULES``)
    lookback_months : int
        L of the eligibility rule.
    later_treated : {"keep", "censor"} (``options.LATER_TREATED``)
        See the module docstring; recorded in ``attrs`` (the table is the same; the estimand in words is
        ``finsam_effekt.estimand``'s).
    sample_rate : float in (0, 1]
        Share of candidate person-months kept per month (seeded by ``seed``).
    min_history_months, register_start : int, ``YYYY-MM``
        Months of register history required before u, for treated and controls alike (the linkage rule):
        ``u − max(register_start, month of immigration) ≥ min_history_months``; without ``register_start`` only
        immigrants are restricted, and persons with neither pass. Treated who fail are counted in
        ``attrs['dropped_treated']['short_history']``.
    end_month, self_support_threshold, con, **history_kw
        Passed to :func:`finsam_effekt.panel.history_features`. ``pre_period`` (default True): the pre-period
        path as columns; a path: written to that Parquet file instead when the panel is stored person-sorted
        (``panel.stream.history_features_stream``; the file then exists after the call), else as columns.
    treated_status : DataFrame, optional
        :func:`treated_attrition` of ``participants`` with the same settings, when the caller needs it as well
        (the pipeline's cohort stage): its participants without a reason are the treated rows. Computed here
        when omitted.

    Returns
    -------
    DataFrame
        One row per treated participant and candidate control person-month, sorted by ``ref_month``,
        ``treated`` (treated first), ``person_id``; ``attrs`` holds the options and counts:
        ``dropped_treated`` (participants in the window who do not enter, by reason: one key per
        :data:`TREATED_DROP_REASONS`, each participant under one reason) and ``n_participants`` (participants whose
        first start lies in the window), so ``n_participants = n_treated + Σ dropped_treated``.
    """
    return _risk_set(
        participants, panel, population, kommun_forbund, sus_registrations=sus_registrations, window=window,
        age_range=age_range, eligibility=eligibility, lookback_months=lookback_months, later_treated=later_treated,
        sample_rate=sample_rate, min_history_months=min_history_months, register_start=register_start,
        end_month=end_month, self_support_threshold=self_support_threshold, seed=seed, con=con, former=False,
        treated_status=treated_status, **history_kw,
    )  # fmt: skip


def treated_attrition(
    participants,
    panel=None,
    population=None,
    *,
    window: tuple[str | None, str | None] | None = None,
    age_range: tuple[int, int] = (16, 64),
    eligibility: str = "recent_public_support",
    lookback_months: int = 12,
    min_history_months: int = 0,
    register_start: str | None = None,
    con=None,
) -> pd.DataFrame:
    """Whether each participant enters the cohort as treated at its own u, and if not, why.

    The rules of :func:`build_cohort` for treated rows (same arguments), applied in the order of
    :data:`TREATED_DROP_REASONS`; a participant gets the first reason it meets:

    1. ``not_in_population``: no row in ``population``;
    2. ``died_before_start``: month of death ≤ u;
    3. ``emigrated_before_start``: month of emigration ≤ u;
    4. ``not_yet_resident``: month of immigration ≥ u (a person is resident from the month after immigrating);
    5. ``outside_age_range``: ``year(u) − birth_year`` outside ``age_range`` (or no birth year);
    6. ``short_history``: ``u − max(register_start, month of immigration) < min_history_months``;
    7. ``not_eligible``: the eligibility rule fails at u (``recent_public_support``: no month with public support
       in u−L..u−1; ``any_resident``: never).

    Returns
    -------
    DataFrame
        One row per participant (``person_id``, duplicates dropped) whose first start ``ref_month`` lies in
        ``window``: ``person_id``, ``ref_month``, ``reason`` (None: enters the cohort). The participants outside
        the window are not rows (the linkage already counts them).
    """
    _check_rules(eligibility, age_range, min_history_months, panel)
    pool = _Pool.of(_pool_columns(population, "treated_attrition: population"), register_start)
    part, u_t = _in_window(_participants(participants), window)
    reason = pool.reasons(part["person_id"].to_numpy(), u_t, age_range, min_history_months)
    if eligibility == "recent_public_support" and len(part):
        open_ = np.flatnonzero(pd.isna(reason))
        pairs = pd.DataFrame({"person_id": part["person_id"].to_numpy()[open_], "_u": u_t[open_]})
        n_ps = _support_months(panel, pairs, lookback_months, con)
        reason[open_[n_ps == 0]] = "not_eligible"
    return pd.DataFrame(
        {
            "person_id": part["person_id"].to_numpy(),
            "ref_month": part["ref_month"].to_numpy(),
            "reason": reason,
        }
    )


def _check_rules(eligibility: str, age_range: tuple[int, int], min_history_months: int, panel) -> None:
    check("eligibility", eligibility, ELIGIBILITY_RULES, where="build_cohort")
    if age_range[1] < age_range[0]:
        raise ConfigError(f"build_cohort: age_range {age_range} has max below min")
    if min_history_months < 0:
        raise ConfigError(f"build_cohort: min_history_months must be 0 or more, got {min_history_months}")
    if panel is None and eligibility == "recent_public_support":
        raise InputError(
            "build_cohort: the eligibility rule 'recent_public_support' needs the person_months panel"
        )


def _participants(participants) -> pd.DataFrame:
    """``person_id`` (text) and ``ref_month`` of the participants, one row per person."""
    part = as_pandas(participants, "build_cohort: participants")
    for col in ("person_id", "ref_month"):
        if col not in part.columns:
            raise InputError(f"build_cohort: participants lack column {col!r}")
    part = part[["person_id", "ref_month"]].copy()
    part["person_id"] = part["person_id"].astype(str)
    return part.drop_duplicates("person_id")


def _in_window(part: pd.DataFrame, window) -> tuple[pd.DataFrame, np.ndarray]:
    """The participants (:func:`_participants`) whose first start lies in ``window``, and their u as indices."""
    u_t = mo.to_index(part["ref_month"]).astype(np.int64)
    lo = mo.to_index(window[0]) if window and window[0] else -(10**9)
    hi = mo.to_index(window[1]) if window and window[1] else 10**9
    in_window = (u_t >= lo) & (u_t <= hi)
    return part[in_window].reset_index(drop=True), u_t[in_window]


#: The population's columns the residency, age and history rules read (:class:`_Pool`).
_POOL_COLUMNS = ("person_id", "birth_year", "immigration_date", "emigration_date", "death_date")


def _pool_columns(population, what: str) -> pd.DataFrame | None:
    """The population's :data:`_POOL_COLUMNS` in pandas (its other columns are not read: a national population's
    text columns would be ~2 GB in pandas while the cohort is built)."""
    return as_pandas(population, what, columns=_POOL_COLUMNS)


@dataclass
class _Pool:
    """The population as arrays, one entry per person, for the residency, age and history rules at a month u
    (``pop``: its :data:`_POOL_COLUMNS`, one row per person in pseudonym order; ``repeated``: the table given had
    pseudonyms on more than one row, of which the first counts)."""

    pop: pd.DataFrame
    pid: np.ndarray
    pos: pd.Series
    imm: np.ndarray  # month of immigration (< 0: none)
    died: np.ndarray  # month of death (_BIG: none)
    emigrated: np.ndarray  # month of emigration (_BIG: none)
    birth: np.ndarray
    hist_from: np.ndarray  # first month of register history: the later of register_start and immigration
    repeated: bool = False

    @classmethod
    def of(cls, population: pd.DataFrame | None, register_start: str | None) -> _Pool:
        if population is None:
            raise InputError("build_cohort: the population table is needed (it is the comparison pool)")
        pop = population.drop_duplicates("person_id")
        pid = pop["person_id"].astype(str).to_numpy()
        by_id = np.argsort(pid, kind="stable")  # the pool in pseudonym order (build_cohort's integer keys)
        pop, pid = pop.iloc[by_id].reset_index(drop=True), pid[by_id]
        none = np.full(len(pop), -1)
        imm = mo.of_dates(pop["immigration_date"]) if "immigration_date" in pop else none
        emi = mo.of_dates(pop["emigration_date"]) if "emigration_date" in pop else none
        dead = mo.of_dates(pop["death_date"]) if "death_date" in pop else none
        hist_from = np.where(imm < 0, np.iinfo(np.int64).min // 2, imm)  # -inf: no immigration known
        if register_start:
            hist_from = np.maximum(hist_from, int(mo.to_index(register_start)))
        return cls(
            pop,
            pid,
            pd.Series(np.arange(len(pid)), index=pid),
            imm,
            np.where(dead < 0, _BIG, dead),
            np.where(emi < 0, _BIG, emi),
            pd.to_numeric(pop["birth_year"], errors="coerce").to_numpy(float),
            hist_from,
            len(pop) < len(population),
        )

    def history_ok(self, idx: np.ndarray, u: np.ndarray, min_history_months: int) -> np.ndarray:
        return u - self.hist_from[idx] >= min_history_months

    def ok_at(self, idx: np.ndarray, u: np.ndarray, age_range: tuple[int, int]) -> np.ndarray:
        """Resident at u (immigrated before u, neither dead nor emigrated in or before u) and of working age."""
        age = mo.year_of(u) - self.birth[idx]
        return (
            ((self.imm[idx] < 0) | (self.imm[idx] < u))
            & (self.died[idx] > u)
            & (self.emigrated[idx] > u)
            & (age >= age_range[0])
            & (age <= age_range[1])
        )

    def reasons(
        self, person_id: np.ndarray, u: np.ndarray, age_range: tuple[int, int], min_history_months: int
    ) -> np.ndarray:
        """The first reason of :data:`TREATED_DROP_REASONS` but the eligibility rule that each (person, u) meets
        (None: none)."""
        p = self.pos.reindex(pd.Index(person_id, dtype=object)).to_numpy(float)
        found = ~np.isnan(p)
        i = np.where(found, p, 0).astype(np.int64)
        age = mo.year_of(u) - self.birth[i]
        rules = (
            ("not_in_population", ~found),
            ("died_before_start", self.died[i] <= u),
            ("emigrated_before_start", self.emigrated[i] <= u),
            ("not_yet_resident", (self.imm[i] >= 0) & (self.imm[i] >= u)),
            ("outside_age_range", ~((age >= age_range[0]) & (age <= age_range[1]))),
            ("short_history", ~self.history_ok(i, u, min_history_months)),
        )
        out = np.full(len(p), None, dtype=object)
        for name, hit in rules:
            out[hit & pd.isna(out)] = name
        return out


def former_participants(
    participants,
    panel=None,
    population=None,
    kommun_forbund=None,
    *,
    sus_registrations=None,
    window: tuple[str | None, str | None] | None = None,
    age_range: tuple[int, int] = (16, 64),
    eligibility: str = "recent_public_support",
    lookback_months: int = 12,
    sample_rate: float = 1.0,
    min_history_months: int = 0,
    register_start: str | None = None,
    end_month: str | None = None,
    self_support_threshold: float | None = None,
    seed: int = 0,
    con=None,
    **history_kw,
) -> pd.DataFrame:
    """Linkable former participants as they would be candidate controls: the mirror of the anonymous ones.

    For every reference month u of the cohort (:func:`build_cohort` with the same arguments), the persons whose
    own first linkable start lies *before* u and who meet the candidates' rules at u (resident, of working age,
    enough register history, eligible), sampled at the same ``sample_rate`` (seeded apart from the cohort's),
    with the same history features at u. :func:`build_cohort` leaves them out of the comparison pool, as it
    must; anonymous former participants cannot be left out (their registration has no personal identity
    number) and are, by assumption, like these persons — so this table tells how many of the candidates look
    like former participants (``contamination.expected_contamination``).

    Returns
    -------
    DataFrame
        ``person_id``, ``ref_month``, ``treated`` (0), ``first_start_month`` (the person's own first start, before
        u), then ``panel.FEATURE_COLUMNS``; sorted by ``ref_month``, ``person_id``; empty when there is none.
    """
    return _risk_set(
        participants, panel, population, kommun_forbund, sus_registrations=sus_registrations, window=window,
        age_range=age_range, eligibility=eligibility, lookback_months=lookback_months, later_treated="keep",
        sample_rate=sample_rate, min_history_months=min_history_months, register_start=register_start,
        end_month=end_month, self_support_threshold=self_support_threshold, seed=seed, con=con, former=True,
        **history_kw,
    )  # fmt: skip


def _risk_set(
    participants,
    panel,
    population,
    kommun_forbund,
    *,
    sus_registrations,
    window,
    age_range,
    eligibility,
    lookback_months,
    later_treated,
    sample_rate,
    min_history_months,
    register_start,
    end_month,
    self_support_threshold,
    seed,
    con,
    former: bool,
    treated_status: pd.DataFrame | None = None,
    **history_kw,
) -> pd.DataFrame:
    """:func:`build_cohort` (``former=False``) or :func:`former_participants` (``former=True``)."""
    check("later_treated", later_treated, LATER_TREATED, where="build_cohort")
    _check_rules(eligibility, age_range, min_history_months, panel)
    if not 0 < sample_rate <= 1:
        raise ConfigError(f"build_cohort: sample_rate must be in (0, 1], got {sample_rate}")
    sus = as_pandas(sus_registrations, "build_cohort: sus_registrations")
    part = _participants(participants)
    first = _first_starts(part, sus)  # every participant's first start, inside the window or not
    if former:  # only persons with a first start can be former participants: the pool is theirs alone
        population = _persons_of(population, first.index, con)
    pool = _Pool.of(_pool_columns(population, "build_cohort: population"), register_start)
    # the demographic features join the population itself (its columns the rules do not need stay unread);
    # a pandas population with repeated pseudonyms gives each person its first row, as the rules take it
    if pool.repeated:
        population = as_pandas(population, "build_cohort: population").drop_duplicates("person_id")
    part, u_t = _in_window(part, window)
    ref_months = np.unique(u_t)

    # treated rows: participants who meet the candidates' rules at their own u (treated_attrition); the former
    # participants' table needs no treated rows, so their eligibility is not looked up
    if treated_status is None:
        treated_status = treated_attrition(
            part, panel, pool.pop, age_range=age_range, min_history_months=min_history_months,
            eligibility="any_resident" if former else eligibility, lookback_months=lookback_months,
            register_start=register_start, con=con,
        )  # fmt: skip
    missing = [c for c in TREATED_STATUS_COLUMNS if c not in treated_status.columns]
    if missing:
        raise InputError(f"build_cohort: treated_status lacks {missing} (treated_attrition makes it)")
    reason = treated_status["reason"]
    dropped = {r: int((reason == r).sum()) for r in TREATED_DROP_REASONS}
    entering = treated_status[reason.isna()]
    if not (reason.isna() | (reason == "not_eligible")).any():
        raise InputError(
            f"build_cohort: no participant starts within the window {window} while resident and aged "
            f"{age_range[0]}-{age_range[1]} ({len(part)} participants in the window; dropped: {dropped}); "
            "check window and age settings"
        )
    # rows as integer person keys, positions in the pool, whose pseudonyms are sorted (so key order is pseudonym
    # order): no string per row of the ~5·10⁷ pairs of a national pool; pseudonyms come back as the categories
    pid = pool.pid
    t_key = pool.pos.reindex(pd.Index(entering["person_id"].astype(str), dtype=object)).to_numpy(float)
    if np.isnan(t_key).any():
        raise InputError("build_cohort: treated_status names participants without a reason who are not in the "
                         "population; compute it with treated_attrition on the same population")  # fmt: skip
    # keys and months as 32-bit integers: the pool's positions and month indices fit, and the ~5·10⁷ candidate
    # rows of a national pool are concatenated, sorted and taken several times below (int64: 0.4 GB per copy)
    t_key = t_key.astype(np.int32)
    t_u = mo.to_index(entering["ref_month"]).astype(np.int32) if len(entering) else np.array([], np.int32)

    # candidate controls per reference month (former=True: persons whose own first start is before u instead)
    own_first = first.reindex(pid).to_numpy(float)  # NaN = never
    keys, months = [t_key[:0]], [t_u[:0]]
    rng = np.random.default_rng([seed, 1] if former else seed)
    all_idx = np.arange(len(pid), dtype=np.int32)
    # the panel read as a stream when it is stored (or held) person-sorted; raw tables go through the engine
    stream = panel is not None and not any(
        k in history_kw for k in ("spells", "social_assistance", "earnings")
    )
    # the eligibility rule (the treated met it in treated_attrition; the same rule for the controls): for the
    # whole pool and every reference month in one pass over the panel (None: not person-sorted, and the rule is
    # checked per pair in the engine below)
    recent = None
    if stream and eligibility == "recent_public_support" and len(ref_months) and len(pid):
        recent = _pool_support_months(panel, pid, ref_months, lookback_months)
        stream = recent is not None  # an unsorted panel is not read a second time for the features
    for j, u in enumerate(ref_months.tolist()):
        uu = np.full(len(pid), u, dtype=np.int64)
        m = (
            pool.ok_at(all_idx, uu, age_range)
            & pool.history_ok(all_idx, uu, min_history_months)
            & ((own_first < u) if former else ~(own_first <= u))
        )
        idx = all_idx[m]  # in pseudonym order: the seeded draws below are those of every earlier version
        if sample_rate < 1:
            idx = idx[rng.random(len(idx)) < sample_rate]
        if recent is not None:  # after the sample, for the same reason
            idx = idx[recent[idx, j] > 0]
        keys.append(idx)
        months.append(np.full(len(idx), u, dtype=np.int32))
    c_key, c_u = np.concatenate(keys), np.concatenate(months)
    del keys, months
    if eligibility == "recent_public_support" and recent is None and len(c_key):
        ok = (
            _support_months(panel, pd.DataFrame({"person_id": pid[c_key], "_u": c_u}), lookback_months, con)
            > 0
        )
        c_key, c_u = c_key[ok], c_u[ok]
    del recent  # (persons × reference months) counts: not needed by the features below
    if former:
        t_key, t_u = t_key[:0], t_u[:0]
    key = np.concatenate([t_key, c_key])
    u_all = np.concatenate([t_u, c_u])
    treated = np.concatenate([np.ones(len(t_key), np.int32), np.zeros(len(c_key), np.int32)])
    del c_key, c_u
    order = np.lexsort((key, -treated, u_all))  # by month, treated first, pseudonym
    key, u_all, treated = key[order], u_all[order], treated[order]
    del order
    later = own_first[key]
    del own_first
    has = (treated == 0) & ~np.isnan(later)
    present = np.unique(key)
    # pseudonyms as categories (those that occur, sorted) and months as categories over their range: no string
    # per row; each batch is turned into text just before its query (tables.plain)
    pairs = pd.DataFrame(
        {
            "person_id": pd.Categorical.from_codes(
                np.searchsorted(present, key), categories=pd.Index(pid[present], dtype=object)
            ),
            "ref_month": _month_categories(u_all, np.ones(len(u_all), bool)),
            "treated": treated,
            "first_start_month" if former else "later_start_month": _month_categories(
                np.where(has, later, 0).astype(np.int64), has
            ),
        }
    )
    del key, u_all, later, has
    kw = dict(history_kw)
    if end_month is not None:
        kw["end_month"] = end_month
    if self_support_threshold is not None:
        kw["self_support_threshold"] = self_support_threshold
    if con is not None:
        kw["con"] = con
    # the cohort's rows carry the pre-period path the balance table checks, from the same join with the panel
    kw.setdefault("pre_period", not former)
    del pool
    cohort = _stream_features(pairs, panel, population, kommun_forbund, kw) if stream else None
    if cohort is None:
        cohort = _engine_features(pairs, panel, population, kommun_forbund, kw)
    narrow_counts(cohort, HISTORY_COUNT_COLUMNS)  # as the stream stores them (the engine's join: int32)
    cohort.attrs.update(
        {
            "later_treated": later_treated,
            "eligibility": eligibility,
            "lookback_months": lookback_months,
            "age_range": tuple(age_range),
            "sample_rate": sample_rate,
            "min_history_months": min_history_months,
            "register_start": register_start,
            "seed": seed,
            "dropped_treated": dropped,
            "n_participants": len(treated_status),
            "n_treated": int((cohort["treated"] == 1).sum()),
            "n_candidates": int((cohort["treated"] == 0).sum()),
        }
    )
    return cohort


#: Pairs whose history features are computed in one query (:func:`build_cohort` batches larger pools): the
#: query's result, its pandas copy and the engine's aggregate grow with the batch (+2.3 GB at 10⁶ pairs), the
#: number of scans of the panel with the number of batches (10⁶ → 2.5·10⁵: peak −0.9 GB, time +40 %).
HISTORY_BATCH = 500_000


def _engine_features(pairs: pd.DataFrame, panel, population, kommun_forbund, kw: dict) -> pd.DataFrame:
    """The cohort: ``pairs`` with :func:`~finsam_effekt.panel.history_features` from the engine's join (a panel
    not stored person-sorted, or raw tables), in compact types. Large pools a batch of pairs at a time: each
    pair's features depend on its own history only, so the rows are the same, and the engine's working memory
    stays that of one batch. Batches hold persons in pseudonym order (a batch's persons then sit in few row groups
    of a panel stored by person: a 2·10⁵-pair query on a 10⁶-person panel took 49 s for persons spread over it,
    20 s for a fifth of it); the rows are put back in the cohort's order after. The pre-period path is kept as
    columns here (``pre_period`` a path asks the stream to write it to a file)."""
    kw = {**kw, "pre_period": bool(kw.get("pre_period", False))}
    if len(pairs) <= HISTORY_BATCH:
        return compact(
            history_features(plain(pairs), panel, population, kommun_forbund, output="pandas", **kw)
        )
    by_person = np.argsort(pd.Categorical(pairs["person_id"]).codes, kind="stable")
    starts = range(0, len(pairs), HISTORY_BATCH)
    tracker = progress.track("history features, batch", len(starts))
    parts = []
    for s in starts:
        batch = plain(pairs.iloc[by_person[s : s + HISTORY_BATCH]])
        parts.append(
            compact(history_features(batch, panel, population, kommun_forbund, output="pandas", **kw))
        )
        del batch
        tracker.step()
    return take_compact(concat_compact(parts), np.argsort(by_person, kind="stable"))


def _stream_features(pairs: pd.DataFrame, panel, population, kommun_forbund, kw: dict) -> pd.DataFrame | None:
    """The cohort: ``pairs`` with the history features from one pass over the person-sorted panel
    (``panel.stream.history_features_stream``), in the compact types the engine path gives after
    ``tables.compact``; None when the panel is not stored person-sorted."""
    person = pd.Categorical(pairs["person_id"])
    u = mo.to_index(pairs["ref_month"].cat.categories).astype(np.int32)[pairs["ref_month"].cat.codes]
    batches = progress.track("history features, panel row group", row_groups(panel))
    try:
        threshold = kw.get("self_support_threshold", DEFAULT_SELF_SUPPORT_THRESHOLD_SEK)
        feats = history_features_stream(
            person, u, panel, population, kommun_forbund, self_support_threshold=threshold,
            work_lookback=kw.get("work_lookback", 24), pre_period=kw.get("pre_period", False), con=kw.get("con"),
            progress=batches.step,
        )  # fmt: skip
    except NotPersonSorted:
        return None
    keys = {"person_id": pd.Series(person), "treated": pairs["treated"].astype(np.int32)}
    for c in pairs.columns.drop(["person_id", "treated"]):  # month categories: only those that occur
        is_cat = isinstance(pairs[c].dtype, pd.CategoricalDtype)
        keys[c] = pairs[c].cat.remove_unused_categories() if is_cat else pairs[c]
    out = pd.DataFrame(
        {**{c: keys[c] for c in pairs.columns}, **{c: feats[c] for c in feats.columns}}, copy=False
    )
    out.index = pd.RangeIndex(len(out))
    return out


def _month_categories(index: np.ndarray, present: np.ndarray) -> pd.Categorical:
    """Month indices as a categorical of ``YYYY-MM`` text over their range (missing where not ``present``)."""
    if not present.any():
        return pd.Categorical([None] * len(index), categories=pd.Index([], dtype=object))
    lo, hi = int(index[present].min()), int(index[present].max())
    codes = np.where(present, index - lo, -1)
    return pd.Categorical.from_codes(
        codes, categories=pd.Index(mo.from_index(np.arange(lo, hi + 1)), dtype=object)
    )
