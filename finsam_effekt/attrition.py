"""Attrition: the linkage report continued through the cohort, the match and the follow-up at each horizon.

The linkage report (``linkage.STEPS``) ends with the participants (``enough_history``). Every participant who
leaves the analysis after that is counted here under exactly one reason, so each group of steps adds up:

1. **Cohort** (``cohort.treated_attrition``): participants = ``not_in_population`` + ``died_before_start`` +
   ``emigrated_before_start`` + ``not_yet_resident`` + ``outside_age_range`` + ``short_history`` + ``not_eligible``
   (``cohort.TREATED_DROP_REASONS``, each participant under the first it meets) + ``in_cohort`` (the treated rows of
   the cohort: resident, of working age, with enough history and eligible at their own u). The linkage already
   drops the participants outside the window, the ages and the history, so in a run those three are 0.
2. **Match**: ``in_cohort`` = ``unmatched_no_candidate_in_stratum`` (no candidate in the same month and exact
   stratum) + ``unmatched_outside_caliper`` (the nearest candidate is beyond the caliper) +
   ``unmatched_candidates_used_up`` (candidates within the caliper, all taken by other participants) + ``matched``
   (``matching.MatchResult.unmatched``; under ``method: ipw`` every participant keeps its weight: none unmatched).
3. **Follow-up** at each configured horizon k: ``matched`` = ``censored_register_end_m{k}`` (month u+k lies after
   the last month of the registers the main outcome is built from; checked first) + ``censored_death_emigration_m{k}``
   (died or emigrated after u, in or before month u+k) + ``outcome_observed_m{k}``. The main outcome is the first
   configured one (``outcomes.names[0]``, public support by default); its observed participants are the
   ``n_treated`` of that outcome's status effect at k in the effects table (matched-sample estimators, all
   participants). Each horizon splits the matched participants anew; the observed shrink with k.
4. **Unknown education** (``schema.UNKNOWN``): ``unknown_education_participants`` (matched participants) and
   ``unknown_education_controls`` (distinct persons among the matched controls).

Counts are by the participant's förbund and start year (its first registration's, as the linkage report's person
steps), with the margins ``forbund_id = "ALL"`` and ``start_year = 0``; the matched controls' count has only the
total (a control has no förbund or start year of its own). :func:`attrition_report` appends these steps to the
linkage report (same columns) and :func:`suppress_attrition` protects the whole table: the linkage report's rules
plus the sums above and the chain participants ⊇ in the cohort ⊇ matched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from . import months as mo
from .cohort import TREATED_DROP_REASONS
from .errors import InputError
from .linkage import REPORT_COLUMNS, STEP_CHAIN, STEP_SUMS, suppress_with_margins, with_margins
from .linkage import STEPS as LINKAGE_STEPS
from .matching import REASON_CALIPER, REASON_NO_STRATUM, REASON_USED_UP
from .schema import DEFAULT_DISCLOSURE_THRESHOLD, UNKNOWN, outcome_column

_DROP_LABELS: dict[str, str] = {
    "not_in_population": "participants not found in the population register",
    "died_before_start": "participants who died before start",
    "emigrated_before_start": "participants who emigrated before start",
    "not_yet_resident": "participants not yet resident at start (immigrated in the start month or later)",
    "outside_age_range": "participants outside the age range at start",
    "short_history": "participants with too short a register history before start",
    "not_eligible": "participants not eligible at start (eligibility rule)",
}
#: The cohort's steps: each reason of ``cohort.TREATED_DROP_REASONS``, then the participants in the cohort.
COHORT_STEPS: tuple[tuple[str, str], ...] = (
    *((r, _DROP_LABELS[r]) for r in TREATED_DROP_REASONS),
    ("in_cohort", "participants in the cohort (resident, age, history and eligible at start)"),
)
#: The match's steps: the unmatched participants by reason (``matching.MatchResult.unmatched``), then the matched.
MATCH_STEPS: tuple[tuple[str, str], ...] = (
    (f"unmatched_{REASON_NO_STRATUM}", "unmatched: no candidate in the same month and exact stratum"),
    (f"unmatched_{REASON_CALIPER}", "unmatched: no candidate within the caliper"),
    (f"unmatched_{REASON_USED_UP}", "unmatched: candidates within the caliper used by other participants"),
    ("matched", "matched participants"),
)
#: The follow-up's steps at each horizon k (``{step}_m{k}``): the two kinds of censoring, then the observed.
HORIZON_STEPS: tuple[tuple[str, str], ...] = (
    ("censored_register_end", "matched, censored: the registers of {outcome} end before month u+{k}"),
    ("censored_death_emigration", "matched, censored: died or emigrated after start, by month u+{k}"),
    ("outcome_observed", "matched with {outcome} observed in month u+{k}"),
)
#: Persons with an unknown education (``schema.UNKNOWN``).
EDUCATION_STEPS: tuple[tuple[str, str], ...] = (
    ("unknown_education_participants", "matched participants with unknown education"),
    ("unknown_education_controls", "matched controls with unknown education (persons; total only)"),
)
#: Steps counted only in the table's total (not by förbund and start year).
TOTAL_ONLY_STEPS: tuple[str, ...] = ("unknown_education_controls",)
#: Steps whose total other tables publish too (the balance table's participants before and after matching, the
#: effects table's ``n_treated``): never chosen as a complement (``linkage.suppress_with_margins``, ``pinned``).
PINNED_STEPS: tuple[str, ...] = ("in_cohort", "matched")
_HORIZON = re.compile(r"^(?P<base>[a-z_]+)_m(?P<k>\d+)$")


def horizon_step(base: str, k: int) -> str:
    """The step name of a follow-up step at horizon ``k`` (``outcome_observed_m12``)."""
    return f"{base}_m{int(k)}"


def parse_horizon_step(step: str) -> tuple[str, int] | None:
    """``(base, k)`` of a follow-up step name, None for any other step."""
    m = _HORIZON.match(str(step))
    if m is None or m.group("base") not in {b for b, _ in HORIZON_STEPS}:
        return None
    return m.group("base"), int(m.group("k"))


def attrition_steps(
    horizons: Sequence[int] = (3, 6, 12), outcome: str = "public_support"
) -> list[tuple[str, str]]:
    """Every step of the attrition report in order, with its label: the linkage steps, the cohort, the match, the
    follow-up at each horizon, unknown education."""
    follow = [
        (horizon_step(base, k), label.format(outcome=outcome, k=int(k)))
        for k in sorted(set(horizons))
        for base, label in HORIZON_STEPS
    ]
    return [*LINKAGE_STEPS, *COHORT_STEPS, *MATCH_STEPS, *follow, *EDUCATION_STEPS]


def step_sums(steps: Iterable[str]) -> list[tuple[str, tuple[str, ...]]]:
    """The sums the steps present form (``total = Σ parts`` in every förbund × year cell): the linkage report's
    (``linkage.STEP_SUMS``), participants = drops + in the cohort, in the cohort = unmatched + matched, and at each
    horizon matched = censored + observed."""
    present = set(steps)
    out = [(t, tuple(p)) for t, p in STEP_SUMS]
    if "in_cohort" in present:
        out.append((LINKAGE_STEPS[-1][0], tuple(s for s, _ in COHORT_STEPS)))
    if "matched" in present:
        out.append(("in_cohort", tuple(s for s, _ in MATCH_STEPS)))
    ks = sorted({p[1] for s in present if (p := parse_horizon_step(s)) is not None})
    out += [("matched", tuple(horizon_step(b, k) for b, _ in HORIZON_STEPS)) for k in ks]
    return out


def step_chain(steps: Iterable[str]) -> tuple[str, ...]:
    """The chain of steps that can only lose persons: the linkage report's, then in the cohort and matched.

    The follow-up is left out: the observed participants at each horizon are the effects table's ``n_treated``
    and the matched the balance table's, so their difference (the censored) is published there already."""
    present = set(steps)
    return (*STEP_CHAIN, *(s for s in ("in_cohort", "matched") if s in present))


def pinned_cells(report: pd.DataFrame) -> np.ndarray:
    """The rows of ``report`` whose count another table publishes as well: the total (``ALL``, year 0; in a report
    of one förbund its own total) of :data:`PINNED_STEPS` and of every ``outcome_observed_m{k}``."""
    step = report["step"].astype(str)
    fb = report["forbund_id"].astype(str)
    observed = step.map(lambda s: (p := parse_horizon_step(s)) is not None and p[0] == "outcome_observed")
    total = report["start_year"].astype("int64").eq(0) & (fb.eq("ALL") if fb.eq("ALL").any() else True)
    return ((step.isin(PINNED_STEPS) | observed) & total).to_numpy(dtype=bool)


def suppress_attrition(
    report: pd.DataFrame, threshold: int = DEFAULT_DISCLOSURE_THRESHOLD, *, force: np.ndarray | None = None
) -> pd.DataFrame:
    """Disclosure control of the attrition report (or of a linkage report: then exactly the linkage's):
    ``linkage.suppress_with_margins`` with the sums (:func:`step_sums`) and the chain (:func:`step_chain`) of the
    steps present, and the totals other tables publish pinned (:func:`pinned_cells`). ``force``: counts to hide
    for a reason of their own (e.g. the participants' total as a key figure's complement)."""
    steps = report["step"].astype(str).unique()
    return suppress_with_margins(
        report,
        threshold,
        force=force,
        sums=step_sums(steps),
        chain=step_chain(steps),
        keep=LINKAGE_STEPS[-1][0],
        pinned=pinned_cells(report),
    )


def attrition_report(
    linkage_report: pd.DataFrame,
    participants: pd.DataFrame,
    treated_status: pd.DataFrame,
    outcomes: pd.DataFrame,
    unmatched: pd.DataFrame | None = None,
    *,
    horizons: Sequence[int] = (3, 6, 12),
    outcome: str = "public_support",
    outcome_end: str,
    threshold: int = DEFAULT_DISCLOSURE_THRESHOLD,
) -> pd.DataFrame:
    """The linkage report with the later steps appended (module docstring), after disclosure control.

    Parameters
    ----------
    linkage_report
        ``linkage.LinkageResult.linkage_report`` (suppressed counts stay suppressed; a report of one förbund,
        without ``ALL`` rows, gets later steps without them too). Steps it has already (a per-förbund report's
        cohort steps, taken from the national report as published) are kept as given, not counted again.
    participants
        ``participants`` of the linkage (``person_id``, ``forbund_id``, ``start_date``): each participant's cell.
    treated_status
        ``cohort.treated_attrition`` (``person_id``, ``reason``; None = in the cohort).
    outcomes
        The matched sample with its horizon outcomes (``panel.horizon_outcomes`` of ``matched_data()``):
        ``person_id``, ``ref_month``, ``treated``, ``weights`` (optional), ``education`` (optional) and
        ``{outcome}_m{k}`` for every horizon.
    unmatched
        The unmatched participants: ``person_id``, ``reason`` (``matching.MatchResult.unmatched``' reasons); None
        or empty when every participant in the cohort was matched (or weighted).
    horizons, outcome
        The follow-up's horizons and the main outcome.
    outcome_end
        The last month (``YYYY-MM``) of the registers ``outcome`` is built from (``schema.outcome_end_months``,
        capped by the end of data): a horizon month after it is censored by the registers' end.
    threshold
        The disclosure threshold (:func:`suppress_attrition`).

    Returns
    -------
    DataFrame
        ``step``, ``step_label``, ``forbund_id``, ``start_year``, ``n``, ``suppressed`` (``linkage.REPORT_COLUMNS``).
    """
    if linkage_report.empty:
        return linkage_report
    need = {"person_id", "ref_month", "treated"} | {outcome_column(outcome, k) for k in horizons}
    missing = sorted(need - set(outcomes.columns))
    if missing:
        raise InputError(f"attrition_report: the outcomes table lacks {missing[:4]} (panel.horizon_outcomes)")
    fb_all = linkage_report["forbund_id"].astype(str)
    all_forbund = bool(fb_all.eq("ALL").any())
    fbs = sorted(set(fb_all[fb_all != "ALL"]))
    years = sorted(set(linkage_report["start_year"].astype("int64")) - {0})

    part = participants.drop_duplicates("person_id")
    cell = pd.DataFrame(
        {
            "forbund_id": part["forbund_id"].astype(str).to_numpy(),
            "start_year": pd.to_datetime(part["start_date"]).dt.year.to_numpy(),
        },
        index=pd.Index(part["person_id"].astype(str), name="person_id"),
    )

    def counts(step: str, persons: pd.Series) -> pd.DataFrame:
        """One step's count per cell of the given participants."""
        at = cell.reindex(pd.Index(persons.astype(str).unique(), name="person_id"))
        if at.isna().any().any():
            raise InputError(f"attrition_report: {step}: persons not among the participants")
        n = at.groupby(["forbund_id", "start_year"]).size()
        return n.rename("n").reset_index().assign(step=step)

    status = treated_status.assign(reason=treated_status["reason"].astype(object))
    frames = [counts(r, status.loc[status["reason"] == r, "person_id"]) for r in TREATED_DROP_REASONS]
    frames.append(counts("in_cohort", status.loc[status["reason"].isna(), "person_id"]))
    um = unmatched if unmatched is not None else pd.DataFrame(columns=["person_id", "reason"])
    for step, _ in MATCH_STEPS[:-1]:
        frames.append(counts(step, um.loc[um["reason"].map(lambda r: f"unmatched_{r}") == step, "person_id"]))
    weights = outcomes["weights"] if "weights" in outcomes else pd.Series(1.0, index=outcomes.index)
    kept = outcomes[(weights > 0).to_numpy()]
    treated = kept[kept["treated"].to_numpy() == 1]
    frames.append(counts("matched", treated["person_id"]))
    u = mo.to_index(treated["ref_month"].astype(str)) if len(treated) else np.array([], dtype=np.int64)
    end = int(mo.to_index(outcome_end))
    for k in sorted(set(horizons)):
        seen = treated[outcome_column(outcome, k)].notna().to_numpy()
        past_end = u + int(k) > end
        for base, rows in (
            ("censored_register_end", ~seen & past_end),
            ("censored_death_emigration", ~seen & ~past_end),
            ("outcome_observed", seen),
        ):
            frames.append(counts(horizon_step(base, k), treated.loc[rows, "person_id"]))
    if "education" in treated:
        unknown = treated["education"].fillna(UNKNOWN).astype(str).eq(UNKNOWN).to_numpy()
        frames.append(counts("unknown_education_participants", treated.loc[unknown, "person_id"]))

    steps = attrition_steps(horizons, outcome)
    later = [s for s, _ in steps[len(LINKAGE_STEPS) :] if s not in TOTAL_ONLY_STEPS]
    grid = pd.MultiIndex.from_product([later, fbs, years], names=["step", "forbund_id", "start_year"])
    cells = (
        pd.concat(frames, ignore_index=True)
        .groupby(["step", "forbund_id", "start_year"])["n"]
        .sum()
        .reindex(grid, fill_value=0)
        .reset_index()
    )
    out = with_margins(cells, all_forbund=all_forbund)
    controls = kept[kept["treated"].to_numpy() == 0]
    if "education" in controls:
        unknown = controls["education"].fillna(UNKNOWN).astype(str).eq(UNKNOWN).to_numpy()
        total = ("ALL", 0) if all_forbund or len(fbs) != 1 else (fbs[0], 0)
        n_c = int(controls.loc[unknown, "person_id"].nunique())
        out = pd.concat(
            [out, pd.DataFrame([{"step": "unknown_education_controls", "forbund_id": total[0],
                                 "start_year": total[1], "n": n_c}])],
            ignore_index=True,
        )  # fmt: skip
    out = out[
        ~out["step"].isin(set(linkage_report["step"]))
    ]  # steps the given report has already stay as given
    order = {s: i for i, (s, _) in enumerate(steps)}
    out["step_label"] = out["step"].map(dict(steps))
    out = out.assign(_o=out["step"].map(order), _f=out["forbund_id"].eq("ALL"))
    out = out.sort_values(["_o", "_f", "forbund_id", "start_year"], kind="stable").drop(columns=["_o", "_f"])
    out["n"] = out["n"].astype("Int64")
    out["suppressed"] = False
    base = linkage_report[REPORT_COLUMNS].assign(n=linkage_report["n"].astype("Int64"))
    full = pd.concat([base, out[REPORT_COLUMNS]], ignore_index=True)
    return suppress_attrition(full, threshold)
