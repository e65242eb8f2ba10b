"""The tables of the report's sections, as views: effects with their units, the estimators side by side, balance,
attrition, the sensitivity's key figures and every row, and the cost-benefit per financier and per insats type.

Each view selects, labels and formats rows of a published table (:mod:`~finsam_effekt.report.views` puts them on
the page); none computes a statistic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from . import numbers as num
from .content import SUBGROUP_OUTCOMES, compact_balance, key_rows
from .html import NA_MARK, SUPPRESSED_MARK, Cell, TableView, cell, legend
from .labels import (
    covariate_label,
    financier_label,
    outcome_subject,
    statistic_label,
    step_label,
    subgroup_field_label,
    subgroup_label,
    unit_label,
    unit_reading,
    value_label,
)
from .text import column_label, estimator_label, lang_index, measure_label, outcome_label, text

#: Financiers of the cost-benefit overview on the first screen (FK and AF are parts of the state).
OVERVIEW_FINANCIERS: tuple[str, ...] = ("state", "region", "kommun", "public_sector_total")
#: Financiers of the cost-benefit table in its section, in order.
SUMMARY_FINANCIERS: tuple[str, ...] = (
    "state",
    "FK",
    "AF",
    "region",
    "kommun",
    "public_sector_total",
    "participant",
    "society",
)
#: Whether a higher value of an outcome is the favourable direction (+1) or a lower one (−1).
FAVOURABLE: dict[str, int] = {"self_support": 1, "earnings_sek": 1}


def horizon_text(v: Any, lang: str) -> str:
    return num.fixed(float(v), lang, 0) if not num.is_missing(v) else NA_MARK


def _summary(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame | None:
    s = tables.get("cost_benefit_summary")
    if s is None or s.empty:
        return None
    return s[s["perspective"] == "public_finance"].set_index("financier")


def _net_cells(r: pd.Series, lang: str) -> list[Cell]:
    sup = bool(r.get("suppressed", False))
    net = cell("pv_net", r.get("pv_net"), lang, suppressed=sup, kind="sek")
    if num.is_missing(r.get("ci_lower")) or num.is_missing(r.get("ci_upper")):
        ci = Cell(SUPPRESSED_MARK if sup else NA_MARK)
    else:
        ci = Cell(
            f"{num.sek(r['ci_lower'], lang)} {('till', 'to')[lang_index(lang)]} {num.sek(r['ci_upper'], lang)}"
        )
    p = r.get("p_net_positive")
    pc = (
        Cell(SUPPRESSED_MARK if sup else NA_MARK)
        if num.is_missing(p)
        else Cell(num.percent(float(p), lang, 0))
    )
    return [net, ci, pc]


def cost_overview(tables: Mapping[str, pd.DataFrame], lang: str) -> TableView | None:
    """The first screen's cost-benefit: net per participant, its Monte Carlo interval and ``P(net > 0)`` for
    the state, the region, the kommuner and the public sector in total."""
    s = _summary(tables)
    if s is None:
        return None
    lvl = num.percent(float(s["interval_level"].iloc[0]), lang, 0)
    headers = (
        text("col_financier", lang),
        text("col_net", lang),
        text("col_interval", lang).format(level=lvl),
        text("col_p_positive", lang),
    )
    rows = [
        (Cell(financier_label(f, lang), True), *_net_cells(s.loc[f], lang))
        for f in OVERVIEW_FINANCIERS
        if f in s.index
    ]
    return TableView(headers, tuple(rows), css="compact")


# -- sections ---------------------------------------------------------------------------------------------------
def effect_table(
    df: pd.DataFrame, lang: str, alpha: float, threshold: int, *, subgroup: bool = False
) -> TableView:
    """Effects with their unit: [subgroup,] outcome, unit, horizon, estimate, interval, p-value, persons."""
    lvl = num.level(alpha, lang)
    headers = [
        *([column_label("subgroup", lang)] if subgroup else []),
        column_label("outcome", lang),
        column_label("unit", lang),
        column_label("horizon_months", lang),
        column_label("estimate", lang),
        f"{lvl} {('KI', 'CI')[lang_index(lang)]}",
        column_label("p_value", lang),
        column_label("n_treated", lang),
        column_label("n_control", lang),
    ]
    rows = []
    for r in df.itertuples(index=False):
        sup = bool(getattr(r, "suppressed", False))
        o, m = r.outcome, r.measure
        mark = SUPPRESSED_MARK if sup else NA_MARK
        est = Cell(mark) if num.is_missing(r.estimate) else Cell(num.effect_value(r.estimate, o, m, lang))
        ci = (
            Cell(mark)
            if num.is_missing(r.ci_lower) or num.is_missing(r.ci_upper)
            else Cell(num.interval(r.ci_lower, r.ci_upper, o, m, lang))
        )
        rows.append(
            (
                *([Cell(subgroup_label(r.subgroup, lang), True)] if subgroup else []),
                Cell(outcome_label(o, lang), True),
                Cell(unit_reading(num.unit_kind(o, m), m, lang), True),
                Cell(horizon_text(r.horizon_months, lang)),
                est,
                ci,
                cell("p_value", r.p_value, lang, suppressed=sup),
                cell("n_treated", r.n_treated, lang, suppressed=sup),
                cell("n_control", r.n_control, lang, suppressed=sup),
            )
        )
    return TableView(
        tuple(headers), tuple(rows), none=text("none", lang), legend=legend(threshold, lang), css="effects"
    )


def estimator_table(df: pd.DataFrame, lang: str, threshold: int, first: str | None = None) -> TableView:
    """Every estimator side by side (``first``, the main one, in the first column): outcome and horizon, then
    each estimator's effect with its interval beneath."""
    ests = list(dict.fromkeys(df["estimator"]))
    if first in ests:
        ests = [first, *(e for e in ests if e != first)]
    headers = (
        column_label("outcome", lang),
        column_label("horizon_months", lang),
        *(_capital(estimator_label(e, lang)) for e in ests),
    )
    rows = []
    for (o, k), g in df.groupby(["outcome", "horizon_months"], sort=False):
        g = g.set_index("estimator")
        cells = [Cell(outcome_label(o, lang), True), Cell(horizon_text(k, lang))]
        for e in ests:
            if e not in g.index:
                cells.append(Cell(NA_MARK))
                continue
            x = g.loc[e]
            cells.append(effect_cell(x, o, x["measure"], lang))
        rows.append(tuple(cells))
    return TableView(headers, tuple(rows), legend=legend(threshold, lang), css="effects")


def effect_cell(x: pd.Series, outcome: str, measure: str, lang: str) -> Cell:
    """An effect (row ``x`` of the effects table) with its interval below it; where the estimate is blank, the
    suppressed mark when disclosure control blanked it, else the not-applicable mark."""
    if num.is_missing(x["estimate"]):
        return Cell(SUPPRESSED_MARK if bool(x.get("suppressed", False)) else NA_MARK)
    ci = ""
    if not (num.is_missing(x["ci_lower"]) or num.is_missing(x["ci_upper"])):
        ci = f"({num.interval(x['ci_lower'], x['ci_upper'], outcome, measure, lang)})"
    return Cell(num.effect_value(x["estimate"], outcome, measure, lang), sub=ci)


def _capital(label: str) -> str:
    return label[:1].upper() + label[1:]


def balance_table_view(balance: pd.DataFrame, lang: str, threshold: int | None = None) -> TableView:
    """One row per covariate (labelled): SMD before and after, variance ratio after; a value blanked by
    disclosure control shows the suppressed mark (with the legend when ``threshold`` is given)."""
    b = compact_balance(balance)
    var = "variable" if "variable" in balance else "covariate"
    hidden: set[tuple[str, str]] = set()
    if "suppressed" in balance and "sample" in balance:
        sup = balance[balance["suppressed"].fillna(False).astype(bool)]
        hidden = set(zip(sup[var].astype(str), sup["sample"].astype(str), strict=True))
    rows = []
    for rec in b.itertuples(index=False):
        d = rec._asdict()
        name = str(d.pop("variable"))
        cells = [Cell(covariate_label(name, lang), True)]
        for c, v in d.items():
            blanked = (name, c.rsplit("_", 1)[-1]) in hidden
            cells.append(
                cell(c, v, lang, kind="number", suppressed=blanked)
                if num.is_missing(v)
                else Cell(num.fixed(v, lang, 3))
            )
        rows.append(tuple(cells))
    marks = legend(threshold, lang) if threshold is not None and hidden else ()
    return TableView(
        tuple(column_label(c, lang) for c in b.columns), tuple(rows), none=text("none", lang), legend=marks
    )


def linkage_view(lr: pd.DataFrame, lang: str, threshold: int) -> TableView:
    """The attrition steps (all förbund and years, or the förbund's own total in a report of one förbund; the
    split is in the files): step and count."""
    if {"forbund_id", "start_year"} <= set(lr.columns):
        fb = lr["forbund_id"].astype(str)
        total = fb.eq("ALL") if fb.eq("ALL").any() else pd.Series(True, index=lr.index)
        lr = lr[total & (lr["start_year"].astype(str) == "0")]
    rows = tuple(
        (
            Cell(step_label(str(r.step), lang), True),
            cell("n", r.n, lang, suppressed=bool(getattr(r, "suppressed", False))),
        )
        for r in lr.itertuples(index=False)
    )
    return TableView(
        (column_label("step", lang), column_label("n", lang)), rows, legend=legend(threshold, lang)
    )


def attrition_note(lr: pd.DataFrame | None, outcomes: Sequence[str], lang: str) -> str:
    """The note under the attrition steps when the report continues them through the cohort, the match and the
    follow-up (its steps ``in_cohort`` …): one reason per person, and which outcome the follow-up counts (the
    first configured, ``attrition``'s main outcome)."""
    if lr is None or "step" not in lr or not lr["step"].astype(str).eq("in_cohort").any():
        return ""
    main = outcome_label(outcomes[0], lang).lower() if outcomes else ""
    return text("attrition_note", lang).format(outcome=main)


def _sens_value(statistic: str, v: Any, outcome: str, measure: str, lang: str) -> str:
    if statistic.startswith("p_value"):
        return num.p_value(float(v), lang)
    if statistic == "n_pairs":
        return num.integer(v, lang)
    if statistic in ("estimate", "std_error"):
        return num.effect_value(v, outcome, measure, lang)
    return num.fixed(float(v), lang, 2)


def sensitivity_key(sens: pd.DataFrame, lang: str, threshold: int) -> tuple[TableView, list[str]]:
    """Key figures per main outcome and horizon (critical Γ, E-values, placebo start) and one sentence per
    outcome on the placebo outcomes before the start."""
    s = sens[sens["outcome"].isin(SUBGROUP_OUTCOMES)]

    def get(check: str, o: str, k: int, stat: str) -> Any:
        r = s[
            (s["check"] == check)
            & (s["outcome"] == o)
            & (s["horizon_months"] == k)
            & (s["statistic"] == stat)
        ]
        return None if r.empty else r.iloc[0]

    rows = []
    lines = []
    for o in [x for x in SUBGROUP_OUTCOMES if (s["outcome"] == x).any()]:
        ks = sorted(
            int(k) for k in s.loc[(s["outcome"] == o) & (s["horizon_months"] > 0), "horizon_months"].unique()
        )
        for k in ks:

            def val(check: str, stat: str, o: str = o, k: int = k) -> Cell:
                r = get(check, o, k, stat)
                if r is None:
                    return Cell(NA_MARK)
                if num.is_missing(r["value"]):
                    return Cell(SUPPRESSED_MARK if bool(r.get("suppressed", False)) else NA_MARK)
                return Cell(_sens_value(stat, r["value"], o, "status", lang))

            ps = get("placebo_start", o, k, "estimate")
            pp = get("placebo_start", o, k, "p_value")
            if ps is None or num.is_missing(ps["value"]):
                placebo = Cell(NA_MARK if ps is None else SUPPRESSED_MARK)
            else:
                placebo = Cell(
                    f"{num.effect_value(ps['value'], o, 'status', lang)} ({num.p_value(pp['value'], lang)})"
                    if pp is not None and not num.is_missing(pp["value"])
                    else num.effect_value(ps["value"], o, "status", lang)
                )
            rows.append(
                (
                    Cell(outcome_label(o, lang), True),
                    Cell(horizon_text(k, lang)),
                    val("rosenbaum_mcnemar", "critical_gamma"),
                    val("e_value", "e_value"),
                    val("e_value", "e_value_ci"),
                    placebo,
                )
            )
        po = s[(s["check"] == "placebo_outcome") & (s["outcome"] == o)]
        parts, months = [], []
        for r in sorted(po["horizon_months"].unique(), reverse=True):
            est = po[(po["horizon_months"] == r) & (po["statistic"] == "estimate")]["value"]
            p = po[(po["horizon_months"] == r) & (po["statistic"] == "p_value")]["value"]
            if len(est) and not num.is_missing(est.iloc[0]):
                unit = unit_label(num.unit_kind(o), lang)
                pv = (
                    f" (p = {num.p_value(p.iloc[0], lang)})"
                    if len(p) and not num.is_missing(p.iloc[0])
                    else ""
                )
                parts.append(f"{num.effect_value(est.iloc[0], o, 'status', lang)} {unit}{pv}")
                months.append(text("months_before", lang).format(k=abs(int(r))))
        if parts:
            join = f" {text('and', lang)} "
            lines.append(
                text("placebo_outcome_line", lang).format(
                    outcome=outcome_label(o, lang).lower(), months=join.join(months), values=join.join(parts)
                )
            )
    headers = (
        column_label("outcome", lang),
        column_label("horizon_months", lang),
        text("col_gamma", lang),
        text("col_e_value", lang),
        text("col_e_value_ci", lang),
        text("col_placebo_start", lang),
    )
    return TableView(headers, tuple(rows), none=text("none", lang), legend=legend(threshold, lang)), lines


def sensitivity_full(sens: pd.DataFrame, lang: str, threshold: int) -> TableView:
    """Every sensitivity row of the main outcomes, labelled (the folded table)."""
    s = key_rows(sens, outcomes=SUBGROUP_OUTCOMES)
    rows = []
    for r in s.itertuples(index=False):
        sup = bool(getattr(r, "suppressed", False))
        value = (
            Cell(SUPPRESSED_MARK if sup else NA_MARK)
            if num.is_missing(r.value)
            else Cell(_sens_value(str(r.statistic), r.value, r.outcome, r.measure, lang))
        )
        rows.append(
            (
                cell("check", r.check, lang),
                Cell(outcome_label(r.outcome, lang), True),
                Cell(horizon_text(r.horizon_months, lang)),
                Cell(measure_label(r.measure, lang), True),
                Cell(statistic_label(str(r.statistic), lang), True),
                value,
                cell("n_treated", getattr(r, "n_treated", None), lang, suppressed=sup),
                cell("n_control", getattr(r, "n_control", None), lang, suppressed=sup),
            )
        )
    headers = tuple(
        column_label(c, lang)
        for c in (
            "check",
            "outcome",
            "horizon_months",
            "measure",
            "statistic",
            "value",
            "n_treated",
            "n_control",
        )
    )
    return TableView(headers, tuple(rows), none=text("none", lang), legend=legend(threshold, lang))


def cost_summary(tables: Mapping[str, pd.DataFrame], lang: str, facts: Mapping[str, Any]) -> TableView | None:
    """Per financier: cost, gains, net, its interval, benefit-cost ratio, break-even and ``P(net > 0)``."""
    s = tables.get("cost_benefit_summary")
    if s is None or s.empty:
        return None
    s = s.set_index("financier")
    lvl = num.percent(float(s["interval_level"].iloc[0]), lang, 0)
    horizon = facts.get("cost_horizon_years")
    headers = (
        text("col_financier", lang),
        text("col_cost", lang),
        text("col_gains", lang),
        text("col_net", lang),
        text("col_interval", lang).format(level=lvl),
        text("col_bcr", lang),
        text("col_break_even", lang),
        text("col_p_positive", lang),
    )
    rows = []
    for f in [x for x in SUMMARY_FINANCIERS if x in s.index]:
        r = s.loc[f]
        sup = bool(r.get("suppressed", False))
        be = r["break_even_years"]
        if num.is_missing(be):
            be_cell = Cell(SUPPRESSED_MARK if sup else NA_MARK)
        elif be == float("inf"):
            limit = "" if horizon is None else num.fixed(float(horizon), lang, 0)
            be_cell = Cell(text("never", lang).format(v=limit) if limit else "∞")
        else:
            be_cell = Cell(text("years_value", lang).format(v=num.fixed(be, lang, 1)))
        bcr = r["benefit_cost_ratio"]
        net, ci, p = _net_cells(r, lang)
        rows.append(
            (
                Cell(financier_label(f, lang), True),
                cell("pv_cost", r["pv_cost"], lang, kind="sek", suppressed=sup),
                cell("pv_gains", r["pv_gains"], lang, kind="sek", suppressed=sup),
                net,
                ci,
                Cell(SUPPRESSED_MARK if sup else NA_MARK)
                if num.is_missing(bcr)
                else Cell(num.fixed(bcr, lang, 2)),
                be_cell,
                p,
            )
        )
    return TableView(headers, tuple(rows), css="compact")


def cost_by_type(
    tables: Mapping[str, pd.DataFrame], lang: str, threshold: int
) -> tuple[TableView | None, list[str]]:
    """Net per participant by insats type (rows, the public sector's best first) and financier (columns), with
    ``P(net > 0)`` beneath, and one sentence per financier on which types give a positive net."""
    t = tables.get("cost_benefit_by_subgroup")
    if t is None or t.empty:
        return None, []
    t = t[t["perspective"] == "public_finance"]
    fins = [f for f in OVERVIEW_FINANCIERS if (t["financier"] == f).any()]
    total = t[t["financier"] == "public_sector_total"].set_index("subgroup")["pv_net"]

    def order(sg: str) -> float:  # the public sector's net, the best first; suppressed ones last
        v = total.get(sg)
        return float("inf") if v is None or num.is_missing(v) else -float(v)

    subs = sorted(dict.fromkeys(t["subgroup"]), key=order)
    fields = {str(sg).split("=", 1)[0] for sg in subs}
    head = subgroup_field_label(fields.pop(), lang) if len(fields) == 1 else column_label("subgroup", lang)
    headers = (
        head,
        column_label("cost_per_participant_sek", lang),
        *(financier_label(f, lang) for f in fins),
    )
    rows = []
    for sg in subs:
        g = t[t["subgroup"] == sg].set_index("financier")
        sup = bool(g["suppressed"].any()) if "suppressed" in g else False
        cost = g["cost_per_participant_sek"].iloc[0]
        cells = [
            Cell(subgroup_label(sg, lang), True),
            cell("cost_per_participant_sek", cost, lang, suppressed=sup, kind="sek"),
        ]
        for f in fins:
            if f not in g.index or num.is_missing(g.loc[f, "pv_net"]):
                cells.append(Cell(SUPPRESSED_MARK if sup else NA_MARK))
                continue
            p = g.loc[f, "p_net_positive"]
            sub = (
                "" if num.is_missing(p) else f"({num.percent(float(p), lang, 0)})"
            )  # P(net > 0): the note says
            cells.append(Cell(num.sek(g.loc[f, "pv_net"], lang), sub=sub))
        rows.append(tuple(cells))
    lines = []
    for f in fins:
        g = t[(t["financier"] == f) & t["pv_net"].notna()].set_index("subgroup")
        g = g.reindex([s for s in subs if s in g.index])
        if g.empty:
            continue
        pos = [_lower(subgroup_label(s, lang)) for s in g.index[g["pv_net"] > 0]]
        neg = [_lower(subgroup_label(s, lang)) for s in g.index[g["pv_net"] <= 0]]
        name = financier_label(f, lang)
        if not pos:
            lines.append(text("types_cost_none", lang).format(financier=name))
        elif not neg:
            lines.append(text("types_cost_all", lang).format(financier=name))
        else:
            lines.append(
                text("types_cost_reading", lang).format(
                    financier=name, positive=_listed(pos, lang), negative=_listed(neg, lang)
                )
            )
    return TableView(headers, tuple(rows), legend=legend(threshold, lang), css="compact"), lines


def _lower(label: str) -> str:
    """A label inside a sentence: its first letter in lower case (``Kartläggning`` → ``kartläggning``)."""
    return label[:1].lower() + label[1:]


def _listed(items: Sequence[str], lang: str) -> str:
    """``a, b och c`` / ``a, b and c``."""
    if len(items) < 2:
        return "".join(items)
    return f"{', '.join(items[:-1])} {text('and', lang)} {items[-1]}"


def types_readings(effects: pd.DataFrame, estimator: str, lang: str) -> list[str]:
    """For each main outcome, the insats types with the most and the least favourable effect at the longest
    horizon (favourable: lower public support, higher self-support)."""
    d = effects[
        (effects["estimator"] == estimator) & (effects["measure"] == "status") & effects["estimate"].notna()
    ]
    d = d[d["subgroup"].astype(str).str.startswith("insats_type=")]
    out = []
    for o in [x for x in SUBGROUP_OUTCOMES if (d["outcome"] == x).any()]:
        r = d[d["outcome"] == o]
        k = int(r["horizon_months"].max())
        r = r[r["horizon_months"] == k]
        if len(r) < 2:
            continue
        sign = FAVOURABLE.get(o, -1)
        r = r.assign(_score=sign * r["estimate"]).sort_values("_score", ascending=False)
        best, worst = r.iloc[0], r.iloc[-1]
        out.append(
            text("types_reading", lang).format(
                k=k,
                subject=outcome_subject(o, lang),
                best=_lower(value_label("insats_type", str(best["subgroup"]).split("=", 1)[1], lang)),
                best_v=num.effect_value(best["estimate"], o, "status", lang),
                unit=unit_label(num.unit_kind(o), lang),
                worst=_lower(value_label("insats_type", str(worst["subgroup"]).split("=", 1)[1], lang)),
                worst_v=num.effect_value(worst["estimate"], o, "status", lang),
            )
        )
    return out
