"""One national run, a report per samordningsförbund: the per-group stages and the overview across groups.

For each value ``g`` of the participants' field (``forbund_id``: the förbund of the first linkable registration)
the stages from the match on run again on the national results with the cohort restricted to g's participants
and *every* candidate control person-month of the pool (controls are matched from the whole pool, as configured);
read, link, panel and cohort are the national ones, computed (or taken from the stage cache) once. Each group's
report goes to ``<out>/forbund/<g>/`` with the same disclosure control; a group with fewer participants than the
disclosure threshold gets no report, only a line in the overview. The overview (``overview.csv``,
``overview.png``, ``overview.html``) lists the main estimator's effects at each horizon per förbund, with their
intervals, beside the national estimate.

Disclosure control: each group's report slices the linkage and cohort steps of the national linkage report *as
published* (the attrition stage's continued report, after the national key figures' complements,
``report.publish``: the cohort is the national one, so the same counts are published the same way in both) and
continues them with the group's own match and follow-up (the group's attrition stage: its match is its own); the
overview's participant counts are the ones the national and each group's report publish
(:func:`published_participants`), so the overview hides what the reports hide, and its own rule closes national =
sum of the groups (``report.write_group_overview``). A group's own complement (its participants hidden because few
of them were unmatched, or left between the linkage and its match) is not carried back into the national linkage
report, which is written before the groups run: there the group's total stays published.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from .. import report as report_mod
from ..attrition import COHORT_STEPS
from ..linkage import STEPS as LINKAGE_STEPS
from .results import CohortResult, LinkResult, StageResults

log = logging.getLogger("finsam_effekt.run")

#: Outcomes of the overview (the main outcomes of the report's first screen).
OVERVIEW_OUTCOMES: tuple[str, ...] = ("public_support", "self_support")
#: Stages that run again per group (those after the cohort).
PER_GROUP_FROM: str = "match"


def group_results(
    results: StageResults, field: str, value: str, linkage_report: pd.DataFrame | None = None
) -> StageResults:
    """The national results restricted to the participants with ``field == value`` (treated rows of the cohort,
    participants, their reasons for leaving the cohort and the linkage and cohort steps of the attrition report of
    that group); every candidate control person-month stays. ``linkage_report``: the national report to slice
    (default the link stage's; :func:`run_by_group` passes the published one); only its linkage and cohort steps
    are kept, the group's attrition stage continues them with its own match and follow-up."""
    cfg = results.cfg
    link = results.link.linkage
    part = link.participants
    keep = part[part[field].astype(str) == value]
    co = results.cohort.cohort
    labels = keep[["person_id", "ref_month"]].astype(str).drop_duplicates()
    treated = co["treated"] == 1
    keys = pd.MultiIndex.from_frame(co[["person_id", "ref_month"]].astype(str))
    in_group = keys.isin(pd.MultiIndex.from_frame(labels))
    keep_rows = ~treated | in_group
    cohort = co[keep_rows]
    pre = results.cohort.pre_period
    if pre is not None:
        pre = pre.take(np.flatnonzero(keep_rows.to_numpy()))
    report = link.linkage_report if linkage_report is None else linkage_report
    report = report[report["step"].isin([s for s, _ in (*LINKAGE_STEPS, *COHORT_STEPS)])]
    if "forbund_id" in report.columns and field == "forbund_id":
        report = report[report["forbund_id"].astype(str) == value]
    status = results.cohort.treated_status
    if status is not None:
        status = status[status["person_id"].astype(str).isin(keep["person_id"].astype(str))]
    title = f"{cfg.title or 'Finsam'} – {value}"
    sub_cfg = cfg.model_copy(update={"title": title})
    sub_cfg._cost_benefit_parameters = cfg.cost_benefit_parameters
    return StageResults(
        sub_cfg,
        read=results.read,
        link=LinkResult(replace(link, participants=keep.reset_index(drop=True), linkage_report=report)),
        panel=results.panel,
        cohort=CohortResult(cohort, status, pre),
        cache_keys={},
    )


def folder_name(value: str) -> str:
    """A safe folder name for a group value (letters, digits, ``-`` and ``_``)."""
    return re.sub(r"[^0-9A-Za-z_-]+", "_", value).strip("_") or "group"


def run_by_group(
    results: StageResults,
    field: str,
    directory: Path,
    run_stages: Callable,
    write_report: Callable,
    on_start: Callable[[str], None] | None = None,
    on_stage: Callable | None = None,
) -> list[Path]:
    """Run the stages after the cohort once per group and write each group's report and the overview."""
    from .chain import CHAIN

    cfg = results.cfg
    threshold = cfg.disclosure_threshold
    part = results.link.participants
    values = sorted(part[field].dropna().astype(str).unique())
    start = [s.key for s in CHAIN].index(PER_GROUP_FROM)
    files: list[Path] = []
    rows = []
    national_report = published_linkage_report(results)
    for value in values:
        n = int((part[field].astype(str) == value).sum())
        if n < threshold:
            log.info("by %s: %s has fewer than %d participants: no report", field, value, threshold)
            rows.append(_overview_rows(None, value, float(n)))  # blanked as small by the overview
            continue
        if on_start:
            on_start(f"{field} {value}")
        sub = group_results(results, field, value, national_report)
        run_stages(sub, CHAIN[start:], None, None, None)
        files += write_report(sub, directory / folder_name(value), None, None, None)
        rows.append(_overview_rows(sub, value, published_participants(sub)))
        if on_stage:
            on_stage(sub.records[-1])
    national = _overview_rows(results, "national", published_participants(results))
    overview = pd.concat([national, *rows], ignore_index=True)
    files += report_mod.write_group_overview(overview, directory, lang=cfg.language, threshold=threshold,
                                             field=field, alpha=cfg.inference.alpha)  # fmt: skip
    return files


def key_counts(results: StageResults) -> dict:
    """The key figures of the link and match stages (participants, matched, unmatched) with what they rest on."""
    facts: dict = {}
    for key in ("link", "match"):
        res = results.get(key)
        if res is not None:
            facts.update(res.facts())
    return facts


def linkage_table(results: StageResults) -> pd.DataFrame:
    """The linkage report the report of ``results`` shows: the attrition stage's (the linkage steps continued) when
    it ran, else the link stage's."""
    if results.attrition is not None:
        return results.attrition.report
    return results.link.linkage.linkage_report


def published_linkage_report(results: StageResults) -> pd.DataFrame:
    """The national linkage report as the national report publishes it (``report.publish``: with the participants'
    total hidden when it is the complement of a small unmatched count)."""
    threshold = results.cfg.disclosure_threshold
    tables, _ = report_mod.publish({"linkage_report": linkage_table(results)}, key_counts(results), threshold)
    return tables["linkage_report"]


def published_participants(results: StageResults) -> float:
    """The participants as the report of ``results`` publishes them (its key figure, ``report.publish``), NaN
    where that report hides them."""
    _, shown = report_mod.publish(
        {"linkage_report": linkage_table(results)}, key_counts(results), results.cfg.disclosure_threshold
    )
    v = shown.get("participants")
    return float("nan") if v is None else float(v)


def _overview_rows(results: StageResults | None, value: str, n_participants: float) -> pd.DataFrame:
    """The main estimator's effects (subgroup all, status) for the overview, or one empty row."""
    cols = ["group", "participants", "outcome", "horizon_months", "estimate", "ci_lower", "ci_upper",
            "n_treated", "n_control"]  # fmt: skip
    if results is None or results.effects is None:
        return pd.DataFrame([{"group": value, "participants": n_participants}], columns=cols)
    eff = results.effects.frame
    main = results.cfg.estimators[0]
    sel = eff[
        (eff["estimator"] == main)
        & (eff["subgroup"] == "all")
        & (eff["measure"] == "status")
        & eff["outcome"].isin(OVERVIEW_OUTCOMES)
    ]
    out = sel[
        ["outcome", "horizon_months", "estimate", "ci_lower", "ci_upper", "n_treated", "n_control"]
    ].copy()
    out.insert(0, "participants", n_participants)
    out.insert(0, "group", value)
    return out.reindex(columns=cols).reset_index(drop=True)
