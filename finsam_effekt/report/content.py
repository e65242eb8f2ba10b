"""What a run hands to the report (:class:`ReportContent`) and which of its rows and columns the page shows.

The views here select and reshape published tables (:func:`key_rows`, :func:`compact_balance`); they compute no
statistic. The files (CSV, Excel) always keep every row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..diagnostics import DesignWarning

#: Output tables in report order (any other table a run hands over follows, by name).
OUTPUT_TABLES: tuple[str, ...] = (
    "effects",
    "event_study",
    "sensitivity",
    "balance",
    "linkage_report",
    "cost_benefit",
    "cost_benefit_summary",
    "cost_benefit_by_subgroup",
    "outcome_paths",
)
#: Outcomes shown in the effects figure and the report's effect tables (the full set is in the CSV and Excel files).
FIGURE_OUTCOMES: tuple[str, ...] = ("public_support", "self_support", "benefit_sek", "earnings_sek")
#: Outcomes of the report's subgroup and sensitivity tables.
SUBGROUP_OUTCOMES: tuple[str, ...] = ("public_support", "self_support")
#: Outcomes with an outcome-path figure.
PATH_OUTCOMES: tuple[str, ...] = ("public_support", "self_support")
#: Outcomes of the headline table on the first screen, when the run estimated them.
HEADLINE_OUTCOMES: tuple[str, ...] = FIGURE_OUTCOMES
#: Horizons of the headline table (the configured horizons among them; the first three otherwise).
HEADLINE_HORIZONS: tuple[int, ...] = (3, 6, 12)


@dataclass
class ReportContent:
    """What a run hands to the report writer.

    Attributes
    ----------
    tables
        Output tables by name (:data:`OUTPUT_TABLES`), already in the documented tidy formats.
    figures
        Extra figures from the stages (name -> matplotlib Figure), e.g. ``ps_overlap``; figures drawn from the
        tables (effects, subgroups, paths, love plot, the cost-benefit waterfalls and tornado) are added by
        ``write_outputs`` (a stage's figure of the same name takes their place).
    title, question, estimand
        Texts for the report.
    facts
        Key figures by ``report.text.FACT_LABELS`` key (numbers, not text: the report writes them in its
        language; a pre-trend test is ``{"statistic", "df", "p_value"}``); shown under "Data" and in the design
        check, the cost-benefit assumptions (``cost_*``) beside the cost-benefit; counts are suppressed like table
        counts.
    not_run
        Stage -> reason, for stages that did not run (shown in the report).
    main_estimator
        The estimator whose effects are shown first.
    config_hash
        SHA-256 of the resolved config.
    alpha
        ``inference.alpha``: the tables' intervals are ``1 − alpha`` intervals. Figures draw intervals from the
        tables' own ``ci_lower``/``ci_upper``; the captions state the level ``100 (1 − alpha) %``.
    warnings
        Design warnings (``diagnostics.DesignWarning``) the reader must see next to the headline effects.
    outcomes
        The configured outcomes, in the config's order (the headline shows :data:`HEADLINE_OUTCOMES` among them).
    cost_benefit_inputs
        What the cost-benefit was computed from (``cost_benefit.results.CostBenefitInputs``), written to
        ``cost_benefit_inputs.json`` when every effect in it rests on enough persons; None when not run.
    """

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    title: str = "Finsam"
    question: str = ""
    estimand: str = ""
    facts: dict[str, Any] = field(default_factory=dict)
    not_run: dict[str, str] = field(default_factory=dict)
    main_estimator: str = "att"
    config_hash: str = ""
    alpha: float = 0.05
    warnings: tuple[DesignWarning, ...] = ()
    outcomes: tuple[str, ...] = ()
    cost_benefit_inputs: Any = None


def key_rows(
    df: pd.DataFrame, outcomes: Sequence[str] = FIGURE_OUTCOMES, measure: str | None = None
) -> pd.DataFrame:
    """The rows of a tidy table the HTML report shows: the main ``outcomes`` (all outcomes when none of them is
    present, e.g. a run with other outcomes) and, if given, one ``measure``; the files keep every row."""
    if "outcome" in df.columns and df["outcome"].isin(outcomes).any():
        df = df[df["outcome"].isin(outcomes)]
    if measure is not None and "measure" in df.columns and (df["measure"] == measure).any():
        df = df[df["measure"] == measure]
    return df


def headline_rows(effects: pd.DataFrame, estimator: str, outcomes: Sequence[str] = ()) -> pd.DataFrame:
    """The rows of the headline table: the main estimator's status effects for all participants, on
    :data:`HEADLINE_OUTCOMES` (in that order; the first four configured ``outcomes`` when none of them was
    estimated) at :data:`HEADLINE_HORIZONS` (the first three horizons when none of them was estimated)."""
    d = effects[
        (effects["subgroup"] == "all")
        & (effects["estimator"] == estimator)
        & (effects["measure"] == "status")
    ]
    present = list(dict.fromkeys(d["outcome"]))
    outs = [o for o in HEADLINE_OUTCOMES if o in present]
    if not outs:
        outs = [o for o in outcomes if o in present][:4] or present[:4]
    ks = sorted(int(k) for k in d["horizon_months"].dropna().unique())
    horizons = [k for k in HEADLINE_HORIZONS if k in ks] or ks[:3]
    d = d[d["outcome"].isin(outs) & d["horizon_months"].isin(horizons)]
    order = {o: i for i, o in enumerate(outs)}
    return d.assign(_o=d["outcome"].map(order)).sort_values(["_o", "horizon_months"]).drop(columns="_o")


def compact_balance(balance: pd.DataFrame) -> pd.DataFrame:
    """One row per covariate: SMD before and after, variance ratio after (the HTML view of ``balance.csv``)."""
    b = balance.rename(columns={"covariate": "variable", "variance_ratio": "var_ratio"})
    if not {"variable", "sample", "smd"} <= set(b.columns):
        return balance
    smd = b.pivot_table(
        index="variable", columns="sample", values="smd", aggfunc="first", sort=False, dropna=False
    )
    out = pd.DataFrame({"variable": smd.index})
    for s in ("before", "after"):
        if s in smd:
            out[f"smd_{s}"] = smd[s].to_numpy()
    if "var_ratio" in b:
        vr = b[b["sample"] == "after"].set_index("variable")["var_ratio"]
        out["var_ratio_after"] = out["variable"].map(vr).to_numpy()
    return out
