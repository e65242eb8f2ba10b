"""Linkage: from SUS registrations to one row per linkable participant, with the attrition at every step.

Steps (domain note §2; issue 4)
-------------------------------
1. Anonymous registrations (no consent or protected identity) cannot be linked: they are counted and dropped.
   Volume insatser (``sus_volume``) are counts only and enter the report as their summed participations.
2. A person's registrations are merged into **episodes** (double registrations). Sorting a person's registrations
   by start date (ties: end date, open ends last, then förbund and insats), registration ``i`` starts a new
   episode when ``start_i > max(end_1 .. end_{i-1}) + episode_gap_days``; otherwise it belongs to the current
   episode (parallel registrations overlap; back-to-back ones and a dropout that returns within the gap are
   within ``episode_gap_days`` of the previous end). An open end (ongoing) counts as +infinity, so nothing
   starts a new episode after an ongoing registration. An episode's end is the latest end of its
   registrations, empty when any is ongoing.
   Registrations that join an existing episode are the report's ``double_registrations``
   (= person registrations − episodes).
3. The **reference month** ``u`` (``ref_month``) is the month of the first linkable start: the start of the
   person's first registration. Every registration is kept in ``episodes`` for descriptive tables.
4. Participants are looked up in ``population`` (``found_in_population``), then kept when ``u`` lies in the
   analysis window, their age ``year(u) − birth_year`` lies in the age range (the same definition as
   ``panel.history_features``), and they have at least ``min_history_months`` of register history before ``u``:
   ``u − max(register_start, month of immigration) ≥ min_history_months`` (register_start omitted: immigration
   only).

The linkage report counts every step by förbund and start year, with margins (``forbund_id = "ALL"``,
``start_year = 0``) and disclosure control (:func:`suppress_with_margins`). The attrition stage continues it
through the cohort, the match and the follow-up (``attrition.attrition_report``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

from . import months
from .errors import InputError
from .io import connect
from .schema import BENEFIT_GROUPS, DEFAULT_DISCLOSURE_THRESHOLD, DEFAULT_EPISODE_GAP_DAYS
from .tables import TableLike, columns
from .tables import register as register_table

#: The steps of the linkage report, in order: (step, label, unit counted).
STEPS: tuple[tuple[str, str], ...] = (
    ("registrations", "SUS registrations (all)"),
    ("anonymous", "anonymous registrations (not linkable)"),
    ("person_registrations", "registrations with personal data"),
    ("volume_participations", "volume insats participations (counts only)"),
    ("unique_persons", "unique persons with personal data"),
    ("episodes", "episodes after merging double registrations"),
    ("double_registrations", "double registrations merged into an episode"),
    ("found_in_population", "persons found in the population register"),
    ("in_window", "first start inside the analysis window"),
    ("in_age_range", "age at first start inside the age range"),
    ("enough_history", "enough register history before start (participants)"),
)
REPORT_COLUMNS = ["step", "step_label", "forbund_id", "start_year", "n", "suppressed"]
PARTICIPANT_COLUMNS = [
    "person_id",
    "forbund_id",
    "insats_id",
    "insats_type",
    "start_date",
    "ref_month",
    "end_date",
    "n_registrations",
    "n_episodes",
    "support_at_start",
    "status_at_end",
    "public_support_before",
]
EPISODE_COLUMNS = [
    "person_id",
    "episode",
    "start_date",
    "end_date",
    "n_registrations",
    "forbund_id",
    "insats_type",
]
#: SUS ``support_at_start`` codes paid as benefit spells, and their spell group (``schema.SPELL_GROUPS``).
SUPPORT_GROUPS: dict[str, str] = {
    "sickness_benefit": "sickness",
    "disability_benefit": "disability",
    "activity_support": "labour_market",
    "unemployment_insurance": "unemployment",
}
#: SUS ``support_at_start`` codes and the register evidence for them in the month before start (panel columns).
SUPPORT_SOURCES: dict[str, tuple[str, ...]] = {
    **{code: (f"days_{g}", f"sek_{g}") for code, g in SUPPORT_GROUPS.items()},
    "social_assistance": ("social_assistance_sek",),
}
#: SUS codes that mean some public support (``any_public`` row of the consistency table).
PUBLIC_SUPPORT_CODES = (*SUPPORT_SOURCES, "other_public")


#: Steps whose counts add up in every förbund × year cell: ``(total, parts)``.
STEP_SUMS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("registrations", ("anonymous", "person_registrations")),
    ("person_registrations", ("episodes", "double_registrations")),
)
#: Steps that can only lose persons, in order: in every cell each is at most the one before, and the drop between
#: two steps (later episodes of a person, persons not found, outside the window or the ages, too short a history)
#: is a count of persons as well.
STEP_CHAIN: tuple[str, ...] = (
    "episodes",
    "unique_persons",
    "found_in_population",
    "in_window",
    "in_age_range",
    "enough_history",
)


def suppress_with_margins(
    report: pd.DataFrame,
    threshold: int = DEFAULT_DISCLOSURE_THRESHOLD,
    *,
    force: np.ndarray | None = None,
    sums: Sequence[tuple[str, Sequence[str]]] = STEP_SUMS,
    chain: Sequence[str] = STEP_CHAIN,
    keep: str | None = None,
    pinned: np.ndarray | None = None,
) -> pd.DataFrame:
    """Disclosure control of the linkage report: primary suppression, then complementary suppression until no
    suppressed count can be recovered by subtraction.

    Primary suppression: a cell with ``0 < n < threshold`` is suppressed (zero cells describe no person and are
    published); so is a cell already suppressed (``n`` missing) and any cell marked in ``force`` (a boolean per
    row: a count the report hides for a reason of its own, e.g. a key figure's complement). Complementary
    suppression repeats three rules until none applies:

    * **margins** — within a step, every line of the table (a förbund's cells over the start years plus its
      total, ``start_year = 0``, or a year's cells over the förbund plus the total, ``forbund_id = "ALL"``) with
      exactly one suppressed cell would let a reader recover it as the total minus the rest, so the smallest other
      non-zero cell of the line is suppressed too (the smallest zero cell if none, the line's total if the line has
      no other cell): the classic hypercube heuristic, cf. Hundepool et al. (2012) *Statistical Disclosure
      Control*, §4.4. A zero cell bounded by a published zero (an earlier step of the chain, the total of its sum
      or line) is known to be zero and never chosen: hiding it would hide nothing;
    * **sums of steps** (:data:`STEP_SUMS`) — in every cell, registrations = anonymous + with personal data and
      registrations with personal data = episodes + double registrations; such a sum with exactly one suppressed
      count is a line like a margin and gets the same complement;
    * **chain of steps** (:data:`STEP_CHAIN`) — each step keeps a subset of the persons of the step before, so
      the difference of two published counts of the chain (e.g. 23 − 22 = 1 person without enough history) is a
      count of persons too. Walking the chain from the step it keeps (``keep``, default its last: the
      participants, whose count every later table publishes) towards its first, a count whose difference from the
      next published count lies in ``1 .. threshold − 1`` is suppressed, and walking from it towards the last
      step, a count whose difference from the previous published count does, so every difference a reader can
      form is 0 or at least ``threshold``.

    ``sums`` and ``chain`` default to the linkage steps' (:data:`STEP_SUMS`, :data:`STEP_CHAIN`); the attrition
    report passes its own (``attrition.suppress_attrition``). ``pinned`` (a boolean per row) marks counts that
    other tables publish as well (e.g. the matched participants, in the balance table): they are never chosen as
    a complement, since hiding them here would hide nothing, and in a small difference of the chain the other
    count is hidden (when both are pinned, the earlier: the other tables hide it by the same rule).

    Suppressed counts become ``<NA>`` and ``suppressed`` True. The rules do not audit every combination of lines
    (that needs linear programming); they close every single line, sum and chain.
    """
    if report.empty:
        return pd.DataFrame(columns=REPORT_COLUMNS)
    g = report.reset_index(drop=True).copy()
    raw = pd.to_numeric(g["n"], errors="coerce")
    n = raw.fillna(0).astype("int64").to_numpy()
    sup = raw.isna().to_numpy() | ((n > 0) & (n < threshold))
    if force is not None:
        sup |= np.asarray(force, dtype=bool)
    pin = np.zeros(len(g), dtype=bool) if pinned is None else np.asarray(pinned, dtype=bool)
    step = g["step"].astype(str).to_numpy()
    fb = g["forbund_id"].astype(str).to_numpy()
    yr = g["start_year"].astype("int64").to_numpy()
    lines: list[tuple[np.ndarray, np.ndarray]] = []  # (cells of the line, its total)
    for s in dict.fromkeys(step):
        in_s = step == s
        for f in np.unique(fb[in_s]):
            lines.append((np.flatnonzero(in_s & (fb == f)), np.flatnonzero(in_s & (fb == f) & (yr == 0))))
        for y in np.unique(yr[in_s]):
            lines.append((np.flatnonzero(in_s & (yr == y)), np.flatnonzero(in_s & (yr == y) & (fb == "ALL"))))
    at = {(a, b, c): i for i, (a, b, c) in enumerate(zip(step, fb, yr, strict=True))}
    cells = list(dict.fromkeys(zip(fb, yr, strict=True)))
    for total, parts in sums:
        for f, y in cells:
            idx = [at.get((s, f, y)) for s in (total, *parts)]
            if None not in idx:
                lines.append((np.array(idx), np.array(idx[:1])))
    chains = [[at[(s, f, y)] for s in chain if (s, f, y) in at] for f, y in cells]
    kept = keep if keep is not None else (chain[-1] if len(chain) else None)
    # the position in each cell's chain of the count the rule keeps (its last when the cell has no such step)
    anchors = [next((j for j, i in enumerate(ch) if step[i] == kept), len(ch) - 1) for ch in chains]
    upper: list[list[int]] = [[] for _ in range(len(g))]  # cells at least as large as each cell
    for idx, tot in lines:
        for i in idx:
            upper[i] += [int(j) for j in tot if j != i]
    for ch in chains:
        for a, b in itertools.pairwise(ch):
            upper[b].append(a)

    def known_zero(i: int, seen: frozenset[int] = frozenset()) -> bool:
        if n[i] != 0:
            return False
        return any(
            (not sup[u] and n[u] == 0) or (sup[u] and u not in seen and known_zero(u, seen | {i}))
            for u in upper[i]
        )

    order = np.arange(len(g))
    changed = True  # the chain can hide a count even when no count is small itself
    while changed:
        changed = False
        for idx, tot in lines:
            if sup[idx].sum() != 1:
                continue
            others = [i for i in idx if not sup[i] and not pin[i] and i not in tot and not known_zero(i)]
            if others:  # smallest non-zero first, zeros last
                pick = min(others, key=lambda i: (n[i] == 0, n[i], fb[i], yr[i], order[i]))
            else:  # the total, or any other cell when the total is hidden already
                rest = [i for i in tot if not sup[i] and not pin[i]] or [
                    i for i in idx if not sup[i] and not pin[i]
                ]
                if not rest:  # a line of one cell, or of cells published elsewhere: nothing to hide here
                    continue
                pick = rest[0]
            sup[pick] = True
            changed = True
        for ch, p in zip(chains, anchors, strict=True):
            changed |= _close_chain(ch, p, n, sup, pin, threshold)
    g["n"] = pd.array(np.where(sup, 0, n), dtype="Int64")
    g.loc[sup, "n"] = pd.NA
    g["suppressed"] = sup
    return g[REPORT_COLUMNS]


def _close_chain(
    ch: list[int], p: int, n: np.ndarray, sup: np.ndarray, pin: np.ndarray, threshold: int
) -> bool:
    """The chain rule of :func:`suppress_with_margins` on one cell's chain (rows ``ch``, the kept step at position
    ``p``): from the pivot (the kept count, or the nearest published one after it, else before it) walk towards
    the first step, hiding the earlier count of a pair of consecutive published counts whose difference lies in
    ``1 .. threshold − 1``, and towards the last step, hiding the later one; a pinned count is spared when the
    other is not (when both are pinned, the earlier is hidden). Updates ``sup``; True when it hid a count."""
    pub = [j for j, i in enumerate(ch) if not sup[i]]
    if len(pub) < 2:
        return False
    after = [j for j in pub if j >= p]
    pivot = after[0] if after else pub[-1]
    hid = False

    def small(a: int, b: int) -> bool:
        return bool(0 < n[a] - n[b] < threshold)

    ref = pivot  # towards the first step: ref is the next published count after j
    for j in reversed([j for j in pub if j < pivot]):
        a, b = ch[j], ch[ref]
        if not small(a, b):
            ref = j
        elif pin[a] and not pin[b]:
            sup[b], ref, hid = True, j, True
        else:
            sup[a], hid = True, True
    ref = pivot  # towards the last step: ref is the previous published count before j
    for j in [j for j in pub if j > pivot]:
        a, b = ch[ref], ch[j]
        if not small(a, b):
            ref = j
        elif pin[b]:
            sup[a], ref, hid = True, j, True
        else:
            sup[b], hid = True, True
    return hid


def with_margins(cells: pd.DataFrame, *, all_forbund: bool = True) -> pd.DataFrame:
    """Add the ``ALL`` förbund (unless ``all_forbund`` is False: a report of one förbund) and the ``0`` (all
    years) margins to (step, forbund_id, start_year, n) cells."""
    cells = cells.assign(
        forbund_id=cells["forbund_id"].astype(str), start_year=cells["start_year"].astype("int64")
    )
    by_year = cells.groupby(["step", "start_year"], as_index=False)["n"].sum().assign(forbund_id="ALL")
    by_fb = cells.groupby(["step", "forbund_id"], as_index=False)["n"].sum().assign(start_year=0)
    total = cells.groupby(["step"], as_index=False)["n"].sum().assign(forbund_id="ALL", start_year=0)
    if not all_forbund:
        return pd.concat([cells, by_fb], ignore_index=True)
    return pd.concat([cells, by_year, by_fb, total], ignore_index=True)


def _complete(cells: pd.DataFrame) -> pd.DataFrame:
    """Every step × förbund × year cell (zeros where nothing was counted), margins included, in report order."""
    fbs = sorted(set(cells["forbund_id"].astype(str)))
    years = sorted(set(cells["start_year"].astype("int64")))
    grid = pd.MultiIndex.from_product(
        [[s for s, _ in STEPS], fbs, years], names=["step", "forbund_id", "start_year"]
    )
    full = (
        cells.assign(
            forbund_id=cells["forbund_id"].astype(str), start_year=cells["start_year"].astype("int64")
        )
        .groupby(["step", "forbund_id", "start_year"])["n"]
        .sum()
        .reindex(grid, fill_value=0)
        .reset_index()
    )
    out = with_margins(full)
    order = {s: i for i, (s, _) in enumerate(STEPS)}
    out["step_label"] = out["step"].map(dict(STEPS))
    out["_o"] = out["step"].map(order)
    out["_f"] = out["forbund_id"].eq("ALL")
    out = out.sort_values(["_o", "_f", "forbund_id", "start_year"], kind="stable").drop(columns=["_o", "_f"])
    return out.reset_index(drop=True)


@dataclass
class LinkageResult:
    """What :func:`link_participants` produced (tables as in ``docs/tables.md``).

    Attributes
    ----------
    participants
        One row per participant kept after every step (the analysis' treated persons).
    episodes
        One row per linkable person and episode (all persons with personal data, for descriptive tables).
    kommun_forbund
        For each kommun (from ``population``) the förbund most found participants registered with.
    linkage_report
        Counts per step × förbund × start year with margins, after disclosure control.
    support_consistency
        SUS ``support_at_start`` against the registers in the month before start (None without register data).
    settings
        The linkage options used.
    """

    participants: pd.DataFrame
    episodes: pd.DataFrame
    kommun_forbund: pd.DataFrame
    linkage_report: pd.DataFrame
    support_consistency: pd.DataFrame | None = None
    settings: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """The linkage report (already disclosure-controlled)."""
        return self.linkage_report

    def summary(self) -> str:
        """The attrition from SUS registrations to analysis participants (totals over förbund and years)."""
        tot = self.linkage_report
        tot = tot[(tot["forbund_id"] == "ALL") & (tot["start_year"] == 0)]
        opts = ", ".join(f"{k}={v}" for k, v in self.settings.items())
        lines = ["Linkage: SUS registrations → participants", f"options: {opts}", ""]
        for r in tot.itertuples():
            n = "suppressed" if r.suppressed else f"{int(r.n):,}"
            lines.append(f"  {r.step_label:<58} {n:>12}")
        if self.support_consistency is not None and len(self.support_consistency):
            lines += ["", "SUS support at start vs registers in the month before start (share disagreeing):"]
            for r in self.support_consistency.itertuples():
                share = "suppressed" if pd.isna(r.share_disagree) else f"{r.share_disagree:.1%}"
                lines.append(f"  {r.source:<24} {share:>12}")
        return "\n".join(lines)


def _participant_steps(con: duckdb.DuckDBPyConnection, window: tuple[str, str], age_range: tuple[int, int],
                       min_history_months: int, register_start: str | None, has_population: bool) -> None:  # fmt: skip
    w0, w1 = months.to_index(window[0]), months.to_index(window[1])
    start_idx = months.to_index(register_start) if register_start else None
    u = months.sql_date_index("f.start_date")
    age = f"({months.sql_year(u)} - p.birth_year)"  # year(u) − birth_year, as panel.history_features
    imm = months.sql_date_index("p.immigration_date")
    history_from = f"greatest({start_idx}, coalesce({imm}, {start_idx}))" if start_idx is not None else imm
    if has_population:
        pop_join = "LEFT JOIN __lk_pop p ON p.person_id = f.person_id"
    else:  # nobody can be found: an empty stand-in keeps one query
        pop_join = (
            "LEFT JOIN (SELECT NULL::VARCHAR AS person_id, NULL::VARCHAR AS kommun, NULL::BIGINT AS birth_year, "
            "NULL::DATE AS immigration_date LIMIT 0) p ON p.person_id = f.person_id"
        )
    found = "p.person_id IS NOT NULL"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE __lk_steps AS
        SELECT f.person_id, f.forbund_id, year(f.start_date) AS start_year, p.kommun AS pop_kommun,
               {found} AS found,
               {found} AND {u} BETWEEN {w0} AND {w1} AS in_window,
               {found} AND {u} BETWEEN {w0} AND {w1}
                 AND {age} BETWEEN {int(age_range[0])} AND {int(age_range[1])} AS in_age,
               {found} AND {u} BETWEEN {w0} AND {w1}
                 AND {age} BETWEEN {int(age_range[0])} AND {int(age_range[1])}
                 AND coalesce({u} - {history_from} >= {int(min_history_months)}, TRUE) AS enough_history
        FROM __lk_first f {pop_join}
    """)  # fmt: skip


def link_participants(
    sus: TableLike,
    population: TableLike | None,
    *,
    window: tuple[str, str],
    age_range: tuple[int, int],
    sus_volume: TableLike | None = None,
    episode_gap_days: int = DEFAULT_EPISODE_GAP_DAYS,
    min_history_months: int = 0,
    register_start: str | None = None,
    disclosure_threshold: int = DEFAULT_DISCLOSURE_THRESHOLD,
    person_months: TableLike | None = None,
    benefit_spells: TableLike | None = None,
    social_assistance: TableLike | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> LinkageResult:
    """Link SUS registrations to the registers: episodes, participants, attrition report (module docstring).

    Parameters
    ----------
    sus, population, sus_volume
        Canonical ``sus_registrations``, ``population`` and ``sus_volume`` (DataFrames or DuckDB relations of
        ``con``; ``population`` is only joined, never loaded).
    window
        First and last allowed reference month ``u`` (``YYYY-MM``, inclusive).
    age_range
        Youngest and oldest age ``year(u) − birth_year`` at ``u``, inclusive.
    episode_gap_days
        A registration starting at most this many days after the previous end joins its episode.
    min_history_months, register_start
        Months of register history required before ``u``, counted from the later of ``register_start`` (first
        month of register data, ``YYYY-MM``) and the month of immigration.
    disclosure_threshold
        Smallest publishable count in the report (:func:`suppress_with_margins`).
    person_months, benefit_spells, social_assistance
        Register data for :func:`support_consistency`: the panel's ``person_months`` or, without it, the canonical
        spells and social assistance (the month-before-start status is then computed here in DuckDB).
    con
        DuckDB connection holding the relations (a new one for DataFrames when omitted).

    Returns
    -------
    LinkageResult
    """
    if episode_gap_days < 0:
        raise InputError(f"episode_gap_days must be 0 or more, got {episode_gap_days}")
    if months.to_index(window[1]) < months.to_index(window[0]):
        raise InputError(f"window end {window[1]} is before window start {window[0]}")
    con = con if con is not None else connect()
    register_table(con, "__lk_sus_in", sus)
    has_pop = population is not None
    if has_pop:
        register_table(con, "__lk_pop", population)
    gap = int(episode_gap_days)
    order = "start_date, end_date NULLS LAST, forbund_id, insats_id, __reg"
    con.execute(
        "CREATE OR REPLACE TEMP TABLE __lk_sus AS SELECT row_number() OVER () AS __reg, * REPLACE "
        "(CAST(start_date AS DATE) AS start_date, CAST(end_date AS DATE) AS end_date) FROM __lk_sus_in"
    )
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE __lk_reg AS
        WITH r AS (
            SELECT *, max(coalesce(end_date, DATE '9999-12-31')) OVER (
                       PARTITION BY person_id ORDER BY {order} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
                   ) AS prev_end,
                   row_number() OVER (PARTITION BY person_id ORDER BY {order}) AS reg_order
            FROM __lk_sus WHERE registration_kind = 'person' AND person_id IS NOT NULL
        )
        SELECT *, sum(CASE WHEN prev_end IS NULL OR start_date > prev_end + {gap} THEN 1 ELSE 0 END) OVER (
                   PARTITION BY person_id ORDER BY reg_order ROWS UNBOUNDED PRECEDING) AS episode
        FROM r
    """)  # fmt: skip
    con.execute("""
        CREATE OR REPLACE TEMP TABLE __lk_ep AS
        SELECT person_id, episode, min(start_date) AS start_date,
               CASE WHEN bool_or(end_date IS NULL) THEN NULL ELSE max(end_date) END AS end_date,
               count(*) AS n_registrations,
               first(forbund_id ORDER BY reg_order) AS forbund_id,
               first(insats_type ORDER BY reg_order) AS insats_type,
               CASE WHEN bool_or(end_date IS NULL) THEN NULL
                    ELSE first(status_at_end ORDER BY end_date DESC, reg_order DESC) END AS status_at_end
        FROM __lk_reg GROUP BY person_id, episode
    """)  # fmt: skip
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE __lk_first AS
        SELECT r.person_id, r.forbund_id, r.insats_id, r.insats_type, r.start_date,
               {months.sql_text(months.sql_date_index("r.start_date"))} AS ref_month, e.end_date,
               c.n_registrations, c.n_episodes, r.support_at_start, e.status_at_end, r.public_support_before
        FROM __lk_reg r
        JOIN __lk_ep e ON e.person_id = r.person_id AND e.episode = 1
        JOIN (SELECT person_id, count(*) AS n_registrations, max(episode) AS n_episodes FROM __lk_reg
              GROUP BY person_id) c ON c.person_id = r.person_id
        WHERE r.reg_order = 1
    """)  # fmt: skip
    _participant_steps(con, window, age_range, min_history_months, register_start, has_pop)

    cells = [
        con.execute(f"""
        SELECT 'registrations' AS step, forbund_id, year(start_date) AS start_year, count(*) AS n FROM __lk_sus GROUP BY ALL
        UNION ALL SELECT 'anonymous', forbund_id, year(start_date), count(*) FROM __lk_sus
            WHERE NOT (registration_kind = 'person' AND person_id IS NOT NULL) GROUP BY ALL
        UNION ALL SELECT 'person_registrations', forbund_id, year(start_date), count(*) FROM __lk_reg GROUP BY ALL
        UNION ALL SELECT 'unique_persons', forbund_id, year(start_date), count(*) FROM __lk_first GROUP BY ALL
        UNION ALL SELECT 'episodes', forbund_id, year(start_date), count(*) FROM __lk_ep GROUP BY ALL
        UNION ALL SELECT 'double_registrations', forbund_id, year(start_date), count(*) FROM __lk_reg
            WHERE NOT (prev_end IS NULL OR start_date > prev_end + {gap}) GROUP BY ALL
        UNION ALL SELECT 'found_in_population', forbund_id, start_year, count_if(found) FROM __lk_steps GROUP BY ALL
        UNION ALL SELECT 'in_window', forbund_id, start_year, count_if(in_window) FROM __lk_steps GROUP BY ALL
        UNION ALL SELECT 'in_age_range', forbund_id, start_year, count_if(in_age) FROM __lk_steps GROUP BY ALL
        UNION ALL SELECT 'enough_history', forbund_id, start_year, count_if(enough_history) FROM __lk_steps
            GROUP BY ALL
        """).df()  # fmt: skip
    ]
    if sus_volume is not None:
        register_table(con, "__lk_vol", sus_volume)
        cells.append(
            con.execute(
                "SELECT 'volume_participations' AS step, forbund_id, year AS start_year, "
                "sum(participations) AS n FROM __lk_vol GROUP BY ALL"
            ).df()
        )
    raw = pd.concat(cells, ignore_index=True)
    raw["n"] = raw["n"].astype("int64")
    report = suppress_with_margins(_complete(raw), disclosure_threshold)

    participants = con.execute(
        f"SELECT {', '.join('f.' + c for c in PARTICIPANT_COLUMNS)} FROM __lk_first f "
        "JOIN __lk_steps s USING (person_id) WHERE s.enough_history ORDER BY f.start_date, f.person_id"
    ).df()
    participants = _dates(participants, ("start_date", "end_date"))
    episodes = _dates(
        con.execute(f"SELECT {', '.join(EPISODE_COLUMNS)} FROM __lk_ep ORDER BY person_id, episode").df(),
        ("start_date", "end_date"),
    )
    kommun_forbund = con.execute("""
        SELECT pop_kommun AS kommun, first(forbund_id ORDER BY n DESC, forbund_id) AS forbund_id
        FROM (SELECT pop_kommun, forbund_id, count(*) AS n FROM __lk_steps WHERE found AND pop_kommun IS NOT NULL
              GROUP BY ALL)
        GROUP BY pop_kommun ORDER BY kommun
    """).df()  # fmt: skip
    consistency = None
    if person_months is not None or benefit_spells is not None or social_assistance is not None:
        consistency = support_consistency(
            participants,
            person_months=person_months,
            benefit_spells=benefit_spells,
            social_assistance=social_assistance,
            disclosure_threshold=disclosure_threshold,
            con=con,
        )
    # the working tables are the connection's memory for the rest of a run (0.4 GB at 5·10⁶ persons): dropped
    for t in ("__lk_steps", "__lk_first", "__lk_ep", "__lk_reg", "__lk_sus"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    settings = {
        "window": f"{window[0]}..{window[1]}",
        "age_range": f"{age_range[0]}..{age_range[1]}",
        "episode_gap_days": gap,
        "min_history_months": min_history_months,
        "register_start": register_start,
        "disclosure_threshold": disclosure_threshold,
    }
    return LinkageResult(participants, episodes, kommun_forbund, report, consistency, settings)


def _dates(df: pd.DataFrame, cols: tuple[str, ...]) -> pd.DataFrame:
    for c in cols:
        df[c] = pd.to_datetime(df[c]).astype("datetime64[ns]")
    return df


def _month_before_status(
    con: duckdb.DuckDBPyConnection,
    person_months: TableLike | None,
    benefit_spells: TableLike | None,
    social_assistance: TableLike | None,
) -> str:
    """SQL of a relation (person_id, flag per source) for each participant's month u−1."""
    if person_months is not None:
        register_table(con, "__sc_pm", person_months)
        cols = columns(con, "__sc_pm")
        flags = []
        for src, evidence in SUPPORT_SOURCES.items():
            present = [c for c in evidence if c in cols]
            cond = " OR ".join(f"coalesce(pm.{c}, 0) > 0" for c in present) or "FALSE"
            flags.append(f"coalesce(bool_or({cond}), FALSE) AS {src}")
        pub = "coalesce(bool_or(pm.public_support = 1), FALSE)" if "public_support" in cols else None
        flags.append(f"{pub or 'FALSE'} AS any_public")
        return (
            f"SELECT q.person_id, {', '.join(flags)} FROM __sc_part q LEFT JOIN __sc_pm pm "
            "ON pm.person_id = q.person_id AND pm.month = q.prev_month GROUP BY q.person_id"
        )
    parts = []
    # the benefit codes of each support code's spell group (schema.BENEFIT_GROUPS)
    groups = {
        src: tuple(code for code, g in BENEFIT_GROUPS.items() if g == group)
        for src, group in SUPPORT_GROUPS.items()
    }
    if benefit_spells is not None:
        register_table(con, "__sc_sp", benefit_spells)
        flag = ", ".join(
            f"bool_or(s.benefit IN ({', '.join(repr(c) for c in codes)})) AS {src}"
            for src, codes in groups.items()
        )
        parts.append(
            f"SELECT q.person_id, {flag} FROM __sc_part q JOIN __sc_sp s ON s.person_id = q.person_id "
            "AND CAST(s.from_date AS DATE) <= CAST(q.prev_last AS DATE) "
            "AND coalesce(CAST(s.to_date AS DATE), DATE '9999-12-31') >= CAST(q.prev_first AS DATE) "
            "GROUP BY q.person_id"
        )
    else:
        parts.append("SELECT person_id, " + ", ".join(f"FALSE AS {s}" for s in groups) + " FROM __sc_part")
    if social_assistance is not None:
        register_table(con, "__sc_sa", social_assistance)
        sa = (
            "SELECT q.person_id, bool_or(a.amount_sek > 0) AS social_assistance FROM __sc_part q JOIN __sc_sa a "
            "ON a.person_id = q.person_id AND a.month = q.prev_month GROUP BY q.person_id"
        )
    else:
        sa = "SELECT person_id, FALSE AS social_assistance FROM __sc_part"
    cols = ", ".join(f"coalesce(b.{s}, FALSE) AS {s}" for s in groups)
    any_pub = " OR ".join(
        [f"coalesce(b.{s}, FALSE)" for s in groups] + ["coalesce(a.social_assistance, FALSE)"]
    )
    return (
        f"SELECT q.person_id, {cols}, coalesce(a.social_assistance, FALSE) AS social_assistance, "
        f"{any_pub} AS any_public FROM __sc_part q LEFT JOIN ({parts[0]}) b USING (person_id) "
        f"LEFT JOIN ({sa}) a USING (person_id)"
    )


def support_consistency(
    participants: pd.DataFrame,
    *,
    person_months: TableLike | None = None,
    benefit_spells: TableLike | None = None,
    social_assistance: TableLike | None = None,
    disclosure_threshold: int = DEFAULT_DISCLOSURE_THRESHOLD,
    con: duckdb.DuckDBPyConnection | None = None,
) -> pd.DataFrame:
    """SUS ``support_at_start`` against the registers in the month before start, per source.

    For each participant with a recorded ``support_at_start`` and each source ``s`` (sickness benefit, disability
    benefit, activity support, unemployment insurance, social assistance, and ``any_public`` = any public support),
    SUS says yes when the code set contains ``s`` (``any_public``: any public code incl. ``other_public``) and the
    registers say yes when the month ``u − 1`` has days or SEK of that group (``person_months``), or a spell of
    one of its benefit codes overlapping ``u − 1`` or social assistance > 0 in ``u − 1`` (canonical tables).

    Returns
    -------
    DataFrame
        ``source``, ``n_participants``, ``sus_yes``, ``register_yes``, ``disagree``, ``share_disagree``
        (= disagree / n_participants), ``suppressed``: counts ``0 < n < disclosure_threshold`` are ``<NA>`` (and
        the share with them).
    """
    con = con if con is not None else connect()
    part = participants.loc[
        participants["support_at_start"].notna(), ["person_id", "ref_month", "support_at_start"]
    ]
    idx = months.to_index(part["ref_month"]) - 1 if len(part) else np.array([], dtype=np.int64)
    part = part.assign(
        prev_month=months.from_index(idx) if len(part) else pd.Series(dtype=object),
        prev_first=[months.first_day(i) for i in idx],
        prev_last=[months.last_day(i) for i in idx],
    )
    register_table(con, "__sc_part", part)
    status = con.execute(_month_before_status(con, person_months, benefit_spells, social_assistance)).df()
    merged = part.merge(status, on="person_id", how="left")
    codes = merged["support_at_start"].fillna("").str.split(";")
    rows = []
    for src in (*SUPPORT_SOURCES, "any_public"):
        wanted = PUBLIC_SUPPORT_CODES if src == "any_public" else (src,)
        sus_yes = codes.map(lambda cs, w=wanted: any(c.strip() in w for c in cs)).to_numpy(dtype=bool)
        reg_yes = merged[src].fillna(False).to_numpy(dtype=bool)
        rows.append(
            {
                "source": src,
                "n_participants": len(merged),
                "sus_yes": int(sus_yes.sum()),
                "register_yes": int(reg_yes.sum()),
                "disagree": int((sus_yes != reg_yes).sum()),
            }
        )
    out = pd.DataFrame(rows)
    out["share_disagree"] = out["disagree"] / out["n_participants"].where(out["n_participants"] > 0)
    suppressed = np.zeros(len(out), dtype=bool)
    for c in ("n_participants", "sus_yes", "register_yes", "disagree"):
        small = (out[c] > 0) & (out[c] < disclosure_threshold)
        suppressed |= small.to_numpy()
        out[c] = out[c].astype("Int64").mask(small)
    out.loc[out["disagree"].isna() | out["n_participants"].isna(), "share_disagree"] = np.nan
    out["suppressed"] = suppressed
    return out
