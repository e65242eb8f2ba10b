"""The page's sections as views: the first screen (headline effects, readings, design check, cost-benefit at a
glance), the table of contents and each section's tables, built from the published tables and key figures.

Every view selects, labels and formats; none computes a statistic (a reading sentence says in words what a row of
``effects.csv`` holds). The templates in ``templates/`` render them; :func:`page_context` gathers them all.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from . import numbers as num
from .content import SUBGROUP_OUTCOMES, ReportContent, compact_balance, headline_rows, key_rows
from .disclosure import publishable_facts
from .html import (
    NA_MARK,
    SUPPRESSED_MARK,
    Cell,
    FigureView,
    TableView,
    cell,
    legend,
    table_section,
    table_view,
)
from .labels import (
    covariate_label,
    financier_label,
    outcome_subject,
    persistence_label,
    statistic_label,
    step_label,
    subgroup_label,
    unit_label,
    unit_reading,
    value_label,
)
from .text import (
    COST_FACTS,
    GLOSSARY,
    GLOSSARY_TERMS,
    TEXT,
    column_label,
    estimator_label,
    fact_label,
    figure_guide,
    lang_index,
    measure_label,
    outcome_label,
    text,
)

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
#: |SMD| above which a covariate counts as imbalanced (Austin 2009).
SMD_LIMIT = 0.1


@dataclass(frozen=True)
class Line:
    """A line of the design check: its text and whether it warns."""

    text: str
    warn: bool = False


def _horizon(v: Any, lang: str) -> str:
    return num.fixed(float(v), lang, 0) if not num.is_missing(v) else NA_MARK


def _level(content: ReportContent, lang: str) -> str:
    return num.level(content.alpha, lang)


# -- the first screen -------------------------------------------------------------------------------------------
def headline_table(rows: pd.DataFrame, lang: str, alpha: float) -> TableView:
    """Outcome × horizon: each effect in its unit with its interval beneath, the unit beside the outcome, and
    the persons behind the first outcome's effects in the last row."""
    horizons = sorted(int(k) for k in rows["horizon_months"].unique())
    outs = list(dict.fromkeys(rows["outcome"]))
    headers = (
        text("col_outcome", lang),
        text("col_unit", lang),
        *(text("col_months", lang).format(k=k) for k in horizons),
    )
    body = []
    for o in outs:
        r = rows[rows["outcome"] == o].set_index("horizon_months")
        kind = num.unit_kind(o, "status")
        cells = [Cell(outcome_label(o, lang), True), Cell(unit_reading(kind, "status", lang), True)]
        for k in horizons:
            if k not in r.index:
                cells.append(Cell(NA_MARK))
                continue
            x = r.loc[k]
            if num.is_missing(x["estimate"]):
                cells.append(Cell(SUPPRESSED_MARK if bool(x.get("suppressed", False)) else NA_MARK))
                continue
            ci = ""
            if not (num.is_missing(x["ci_lower"]) or num.is_missing(x["ci_upper"])):
                ci = f"({num.interval(x['ci_lower'], x['ci_upper'], o, 'status', lang)})"
            cells.append(Cell(num.effect_value(x["estimate"], o, "status", lang), sub=ci))
        body.append(tuple(cells))
    if outs:
        first = rows[rows["outcome"] == outs[0]].set_index("horizon_months")
        counts = [Cell(text("n_row", lang), True), Cell("", True)]
        for k in horizons:
            x = first.loc[k] if k in first.index else None
            if x is None:
                counts.append(Cell(NA_MARK))
                continue
            parts = [
                SUPPRESSED_MARK if num.is_missing(x[c]) else num.integer(x[c], lang)
                for c in ("n_treated", "n_control")
            ]
            counts.append(Cell(" / ".join(parts)))
        body.append(tuple(counts))
    return TableView(headers, tuple(body), css="headline")


def reading(row: pd.Series, lang: str, alpha: float) -> str:
    """The one-sentence reading of one effect: "12 månader efter start var andelen med offentlig försörjning
    11,8 procentenheter lägre (95 % KI 9,2–14,3) än i den matchade jämförelsegruppen."."""
    o, est, lo, hi = row["outcome"], float(row["estimate"]), float(row["ci_lower"]), float(row["ci_upper"])
    kind = num.unit_kind(o, "status")
    fields = {
        "k": int(row["horizon_months"]),
        "subject": outcome_subject(o, lang),
        "value": num.effect_value(abs(est), o, "status", lang),
        "unit": unit_label(kind, lang),
        "direction": text("lower" if est < 0 else "higher", lang),
        "level": num.level(alpha, lang),
    }
    if lo > 0 or hi < 0:
        a, b = sorted((abs(lo), abs(hi)))
        lo_s, hi_s = num.effect_value(a, o, "status", lang), num.effect_value(b, o, "status", lang)
        return text("reading_sig", lang).format(lo=lo_s, hi=hi_s, **fields)
    lo_s, hi_s = num.effect_value(lo, o, "status", lang), num.effect_value(hi, o, "status", lang)
    return text("reading_ns", lang).format(lo=lo_s, hi=hi_s, **fields)


def readings(rows: pd.DataFrame, lang: str, alpha: float) -> list[str]:
    """One reading per headline outcome, at its longest headline horizon with a published estimate."""
    out = []
    for o in dict.fromkeys(rows["outcome"]):
        r = rows[(rows["outcome"] == o)].dropna(subset=["estimate", "ci_lower", "ci_upper"])
        if len(r):
            out.append(reading(r.sort_values("horizon_months").iloc[-1], lang, alpha))
    return out


def design_check(content: ReportContent, facts: Mapping[str, Any], lang: str, threshold: int) -> list[Line]:
    """The design check in plain words: balance after matching, pre-trends per outcome, unmatched participants."""
    lines: list[Line] = []
    limit = num.fixed(SMD_LIMIT, lang, 1)
    smd = facts.get("max_abs_smd_after")
    if smd is not None and not num.is_missing(smd):
        key = "balance_ok" if float(smd) <= SMD_LIMIT else "balance_bad"
        lines.append(
            Line(text(key, lang).format(smd=num.fixed(smd, lang, 3), limit=limit), key == "balance_bad")
        )
    for key, v in facts.items():
        if key.startswith("pretrend:") and isinstance(v, Mapping):
            o = key.partition(":")[2]
            bad = float(v["p_value"]) < content.alpha
            lines.append(
                Line(
                    text("pretrend_bad" if bad else "pretrend_ok", lang).format(
                        outcome=outcome_label(o, lang).lower(),
                        df=int(v["df"]),
                        stat=num.fixed(v["statistic"], lang, 2),
                        p=num.p_value(v["p_value"], lang),
                    ),
                    bad,
                )
            )
    if "unmatched_treated" in facts:
        n, matched = facts.get("unmatched_treated"), facts.get("matched_treated")
        if n is None:
            lines.append(Line(text("unmatched_small", lang).format(t=threshold)))
        elif matched is not None:
            total = int(n) + int(matched)
            if int(n) == 0:
                lines.append(Line(text("unmatched_none", lang).format(total=num.integer(total, lang))))
            else:
                share = num.percent(int(n) / total, lang)
                lines.append(
                    Line(
                        text("unmatched", lang).format(
                            n=num.integer(n, lang), total=num.integer(total, lang), share=share
                        )
                    )
                )
    return lines


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


def cost_note(facts: Mapping[str, Any], content: ReportContent, lang: str) -> str:
    """The assumptions behind the cost-benefit, in one sentence (horizon, discount rate, persistence, levels)."""
    need = (
        "cost_horizon_years",
        "cost_discount_rate",
        "cost_persistence",
        "cost_interval",
        "cost_price_year",
    )
    if not all(k in facts for k in need):
        return ""
    years = float(facts["cost_horizon_years"])
    return text("cost_overview_note", lang).format(
        year=facts["cost_price_year"],
        years=num.fixed(years, lang, 0 if years.is_integer() else 1),
        rate=num.percent(float(facts["cost_discount_rate"]), lang, 1),
        k=int(facts.get("cost_effects_months", 12)),
        persistence=persistence_label(str(facts["cost_persistence"]), lang),
        level=num.percent(float(facts["cost_interval"]), lang, 0),
        effect_level=_level(content, lang),
    )


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
                Cell(_horizon(r.horizon_months, lang)),
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


def estimator_table(df: pd.DataFrame, lang: str, threshold: int) -> TableView:
    """The other estimators side by side: outcome and horizon, then each estimator's effect and interval."""
    ests = list(dict.fromkeys(df["estimator"]))
    headers = (
        column_label("outcome", lang),
        column_label("horizon_months", lang),
        *(estimator_label(e, lang) for e in ests),
    )
    rows = []
    for (o, k), g in df.groupby(["outcome", "horizon_months"], sort=False):
        g = g.set_index("estimator")
        cells = [Cell(outcome_label(o, lang), True), Cell(_horizon(k, lang))]
        for e in ests:
            if e not in g.index:
                cells.append(Cell(NA_MARK))
                continue
            x = g.loc[e]
            if num.is_missing(x["estimate"]):
                cells.append(Cell(SUPPRESSED_MARK if bool(x.get("suppressed", False)) else NA_MARK))
                continue
            ci = ""
            if not num.is_missing(x["ci_lower"]):
                ci = f"({num.interval(x['ci_lower'], x['ci_upper'], o, x['measure'], lang)})"
            cells.append(Cell(num.effect_value(x["estimate"], o, x["measure"], lang), sub=ci))
        rows.append(tuple(cells))
    return TableView(headers, tuple(rows), legend=legend(threshold, lang), css="effects")


def balance_table_view(balance: pd.DataFrame, lang: str) -> TableView:
    """One row per covariate (labelled): SMD before and after, variance ratio after."""
    b = compact_balance(balance)
    rows = []
    for rec in b.itertuples(index=False):
        d = rec._asdict()
        cells = [Cell(covariate_label(str(d.pop("variable")), lang), True)]
        for c, v in d.items():
            cells.append(
                cell(c, v, lang, kind="number") if num.is_missing(v) else Cell(num.fixed(v, lang, 3))
            )
        rows.append(tuple(cells))
    return TableView(tuple(column_label(c, lang) for c in b.columns), tuple(rows), none=text("none", lang))


def linkage_view(lr: pd.DataFrame, lang: str, threshold: int) -> TableView:
    """The attrition steps (all förbund and years; the split is in the files): step and count."""
    if {"forbund_id", "start_year"} <= set(lr.columns):
        lr = lr[(lr["forbund_id"].astype(str) == "ALL") & (lr["start_year"].astype(str) == "0")]
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
                    Cell(_horizon(k, lang)),
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
                Cell(_horizon(r.horizon_months, lang)),
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
        be = r["break_even_years"]
        if num.is_missing(be):
            be_cell = Cell(NA_MARK)
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
                cell("pv_cost", r["pv_cost"], lang, kind="sek"),
                cell("pv_gains", r["pv_gains"], lang, kind="sek"),
                net,
                ci,
                Cell(NA_MARK) if num.is_missing(bcr) else Cell(num.fixed(bcr, lang, 2)),
                be_cell,
                p,
            )
        )
    return TableView(headers, tuple(rows), css="compact")


def cost_by_type(
    tables: Mapping[str, pd.DataFrame], lang: str, threshold: int
) -> tuple[TableView | None, list[str]]:
    """Net per participant by insats type (rows) and financier (columns), with ``P(net > 0)`` beneath, and one
    sentence per financier on which types give a positive net."""
    t = tables.get("cost_benefit_by_subgroup")
    if t is None or t.empty:
        return None, []
    t = t[t["perspective"] == "public_finance"]
    fins = [f for f in OVERVIEW_FINANCIERS if (t["financier"] == f).any()]
    subs = list(dict.fromkeys(t["subgroup"]))
    headers = (
        column_label("subgroup", lang),
        column_label("cost_per_participant_sek", lang),
        *(financier_label(f, lang) for f in fins),
    )
    rows = []
    for sg in subs:
        g = t[t["subgroup"] == sg].set_index("financier")
        sup = bool(g["suppressed"].any()) if "suppressed" in g else False
        first = g.iloc[0]
        cells = [
            Cell(subgroup_label(sg, lang), True),
            cell(
                "cost_per_participant_sek",
                first["cost_per_participant_sek"],
                lang,
                suppressed=sup,
                kind="sek",
            ),
        ]
        for f in fins:
            if f not in g.index or num.is_missing(g.loc[f, "pv_net"]):
                cells.append(Cell(SUPPRESSED_MARK if sup else NA_MARK))
                continue
            p = g.loc[f, "p_net_positive"]
            sub = (
                ""
                if num.is_missing(p)
                else f"{text('col_p_positive', lang)} = {num.percent(float(p), lang, 0)}"
            )
            cells.append(Cell(num.sek(g.loc[f, "pv_net"], lang), sub=sub))
        rows.append(tuple(cells))
    lines = []
    for f in fins:
        g = t[(t["financier"] == f) & t["pv_net"].notna()]
        if g.empty:
            continue
        pos = [subgroup_label(s, lang) for s in g.loc[g["pv_net"] > 0, "subgroup"]]
        neg = [subgroup_label(s, lang) for s in g.loc[g["pv_net"] <= 0, "subgroup"]]
        name = financier_label(f, lang)
        if not pos:
            lines.append(text("types_cost_none", lang).format(financier=name))
        elif not neg:
            lines.append(text("types_cost_all", lang).format(financier=name))
        else:
            lines.append(
                text("types_cost_reading", lang).format(
                    financier=name, positive=", ".join(pos), negative=", ".join(neg)
                )
            )
    return TableView(headers, tuple(rows), legend=legend(threshold, lang), css="compact"), lines


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
                best=value_label("insats_type", str(best["subgroup"]).split("=", 1)[1], lang).lower(),
                best_v=num.effect_value(best["estimate"], o, "status", lang),
                unit=unit_label(num.unit_kind(o), lang),
                worst=value_label("insats_type", str(worst["subgroup"]).split("=", 1)[1], lang).lower(),
                worst_v=num.effect_value(worst["estimate"], o, "status", lang),
            )
        )
    return out


# -- facts and figures ------------------------------------------------------------------------------------------
#: How each key figure is written.
FACT_KINDS: dict[str, str] = {
    "max_abs_smd_after": "smd",
    "sus_register_disagree_any_public": "percent",
    "cost_per_participant_sek": "sek",
    "net_public_sector_counterfactual_sek": "sek",
    "net_public_sector_before_after_sek": "sek",
}


def fact_value(key: str, v: Any, lang: str) -> str:
    """A key figure in ``lang`` (a suppressed count as the suppressed mark)."""
    if v is None:
        return SUPPRESSED_MARK
    if isinstance(v, Mapping) and {"statistic", "df", "p_value"} <= set(v):
        return f"χ²({int(v['df'])}) = {num.fixed(v['statistic'], lang, 2)}; p = {num.p_value(v['p_value'], lang)}"
    kind = FACT_KINDS.get(key.partition(":")[0])
    if kind == "smd":
        return num.fixed(v, lang, 3)
    if kind == "percent":
        return num.percent(float(v), lang)
    if kind == "sek":
        return num.sek(float(v), lang)
    if isinstance(v, bool):
        return "✓" if v else ""
    if isinstance(v, int | float):
        return num.integer(v, lang) if float(v).is_integer() else num.auto(v, lang)
    return str(v)


def figures(
    name: str,
    pngs: Mapping[str, bytes],
    tables: Mapping[str, pd.DataFrame],
    content: ReportContent,
    lang: str,
    threshold: int,
    source: str | None = None,
) -> list[FigureView]:
    """The figures ``name`` and ``name__<part>``, captioned (a part is an outcome or a financier); the caption
    says when the figure's table (``source``, default ``name``) has suppressed values (left out of the figure)."""
    views = []
    for key in sorted(k for k in pngs if k == name or k.startswith(name + "__")):
        part = key.split("__", 1)[1] if "__" in key else ""
        label = financier_label(part, lang) if name in ("waterfall", "tornado") else outcome_label(part, lang)
        cap = f"{label + ': ' if part else ''}{figure_guide(name, lang, content.alpha)}"
        src = tables.get(source or name)
        if src is not None and "suppressed" in src and src["suppressed"].astype(bool).any():
            cap += " " + text("fig_suppressed", lang).format(t=threshold)
        views.append(FigureView(base64.b64encode(pngs[key]).decode("ascii"), cap))
    return views


def toc(sections: Sequence[tuple[str, str, bool]]) -> list[tuple[str, str]]:
    """The table of contents: ``(id, title)`` of the sections present."""
    return [(i, title) for i, title, present in sections if present]


def page_context(
    content: ReportContent,
    tables: Mapping[str, pd.DataFrame],
    pngs: Mapping[str, bytes],
    lang: str,
    threshold: int,
    *,
    reproducible: bool = False,
) -> dict[str, Any]:
    """Everything ``report.html`` renders, from the published tables and key figures (``reproducible``: the
    run wrote ``cost_benefit_inputs.json``)."""
    li = lang_index(lang)
    facts = publishable_facts(content.facts, threshold)

    def figs(*names: str, source: str | None = None) -> list[FigureView]:
        return [f for n in names for f in figures(n, pngs, tables, content, lang, threshold, source)]

    def key_note(files: str) -> str:
        names = (
            ", ".join(outcome_label(o, lang).lower() for o in dict.fromkeys(headline["outcome"]))
            if headline is not None
            else ""
        )
        return text("key_outcomes_note", lang).format(outcomes=names, files=files)

    eff = tables.get("effects")
    est = content.main_estimator
    headline = None if eff is None else headline_rows(eff, est, content.outcomes)
    first = None
    if headline is not None and len(headline):
        first = {
            "table": headline_table(headline, lang, content.alpha),
            "note": text("headline_note", lang).format(
                level=_level(content, lang), estimator=estimator_label(est, lang)
            ),
            "readings": readings(headline, lang, content.alpha),
        }
    effects = None
    subgroups = None
    insats = None
    if eff is not None:
        overall = eff["subgroup"] == "all"
        main = eff[overall & (eff["estimator"] == est)]
        others = eff[overall & (eff["estimator"] != est)]
        sub = eff[~overall & (eff["estimator"] == est)]
        effects = {
            "estimator": estimator_label(est, lang),
            "figures": figs("effects"),
            "key_note": key_note("effects.csv"),
            "main": effect_table(key_rows(main), lang, content.alpha, threshold),
            "others": None
            if others.empty
            else estimator_table(key_rows(others, measure="status"), lang, threshold),
        }
        if len(sub):
            subgroups = {
                "figures": figs("subgroups", source="effects"),
                "table": effect_table(
                    key_rows(sub, outcomes=SUBGROUP_OUTCOMES, measure="status"),
                    lang,
                    content.alpha,
                    threshold,
                    subgroup=True,
                ),
            }
        types = sub[sub["subgroup"].astype(str).str.startswith("insats_type=")]
        cb_types, cb_lines = cost_by_type(tables, lang, threshold)
        if len(types) or cb_types is not None:
            insats = {
                "figures": figs("insats_types", source="effects"),
                "readings": types_readings(eff, est, lang),
                "cost": cb_types,
                "cost_readings": cb_lines,
            }
    sensitivity = None
    if "sensitivity" in tables:
        key, lines = sensitivity_key(tables["sensitivity"], lang, threshold)
        sensitivity = {
            "key": key,
            "placebo": lines,
            "full": sensitivity_full(tables["sensitivity"], lang, threshold),
        }
    cost = None
    if {"cost_benefit", "cost_benefit_methods"} & set(tables):
        cb_kinds = {"ci_lower": "sek", "ci_upper": "sek"}
        cost = {
            "note": cost_note(facts, content, lang),
            "summary": cost_summary(tables, lang, facts),
            "figures": figs("waterfall", source="cost_benefit"),
            "tornado": figs("tornado", source="cost_benefit_sensitivity"),
            "item_table": table_view(tables["cost_benefit"], lang, threshold=threshold, kinds=cb_kinds)
            if "cost_benefit" in tables
            else None,
            "methods": table_section(tables, "cost_benefit_methods", lang, threshold),
            "methods_facts": [
                (fact_label(k, lang), fact_value(k, facts[k], lang))
                for k in ("net_public_sector_counterfactual_sek", "net_public_sector_before_after_sek")
                if k in facts
            ],
            "reproduce": reproducible,
        }
    cost_first = cost_overview(tables, lang)
    data_facts = [
        (fact_label(k, lang), fact_value(k, v, lang)) for k, v in facts.items() if k not in COST_FACTS
    ]
    sections = [
        ("estimand", text("estimand", lang), bool(content.estimand)),
        ("data", text("data", lang), True),
        ("balance", text("balance", lang), True),
        ("effects", text("effects", lang), True),
        ("subgroups", text("subgroups", lang), subgroups is not None),
        ("insats-types", text("insats_types", lang), insats is not None),
        ("paths", text("event_study", lang), True),
        ("sensitivity", text("sensitivity", lang), True),
        ("cost-benefit", text("cost_benefit", lang), True),
        ("glossary", text("glossary", lang), True),
        ("not-run", text("not_run", lang), bool(content.not_run)),
        ("provenance", text("provenance", lang), True),
    ]
    return {
        "lang": lang,
        "t": {k: v[li] for k, v in TEXT.items()},
        "title": content.title or text("default_title", lang),
        "question": content.question or text("default_question", lang),
        "estimand": content.estimand,
        "first": first,
        "design": design_check(content, facts, lang, threshold),
        "warnings": [w.text(lang) for w in content.warnings],
        "cost_first": cost_first,
        "cost_first_note": cost_note(facts, content, lang) if cost_first is not None else "",
        "toc": toc(sections),
        "facts": data_facts,
        "linkage": linkage_view(tables["linkage_report"], lang, threshold)
        if "linkage_report" in tables
        else None,
        "support_consistency": table_section(tables, "support_consistency", lang, threshold),
        "balance_figures": figs("love_plot", "ps_overlap"),
        "balance": balance_table_view(tables["balance"], lang) if "balance" in tables else None,
        "effects": effects,
        "subgroups": subgroups,
        "insats": insats,
        "path_figures": figs("outcome_paths", "event_study"),
        "sensitivity": sensitivity,
        "cost": cost,
        "glossary": [(GLOSSARY_TERMS[k][li], v[li]) for k, v in GLOSSARY.items()],
        "not_run": list(content.not_run.items()),
        "suppressed_note": text("suppressed_note", lang).format(t=threshold),
        "legend": legend(threshold, lang),
        "config_hash": content.config_hash,
    }
