"""The page as views: the first screen (headline effects, readings, design check, cost-benefit at a glance), the
table of contents, key figures and captions, gathered for the templates by :func:`page_context` (the sections'
tables are built in :mod:`~finsam_effekt.report.sections`).

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
from .content import SUBGROUP_OUTCOMES, ReportContent, headline_rows, key_rows
from .disclosure import publishable_facts
from .figures import WATERFALL_FINANCIERS
from .html import NA_MARK, SUPPRESSED_MARK, Cell, FigureView, TableView, legend, table_section, table_view
from .labels import financier_label, outcome_subject, persistence_label, unit_label, unit_reading
from .sections import (
    attrition_note,
    balance_table_view,
    cost_by_type,
    cost_overview,
    cost_summary,
    effect_cell,
    effect_table,
    estimator_table,
    linkage_view,
    sensitivity_full,
    sensitivity_key,
    types_readings,
)
from .text import (
    COST_FACTS,
    GLOSSARY,
    GLOSSARY_TERMS,
    TEXT,
    estimator_label,
    fact_label,
    figure_guide,
    lang_index,
    outcome_label,
    text,
)

#: |SMD| above which a covariate counts as imbalanced (Austin 2009).
SMD_LIMIT = 0.1


@dataclass(frozen=True)
class Line:
    """A line of the design check: its text and whether it warns."""

    text: str
    warn: bool = False


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
        r = rows[rows["outcome"] == o].drop_duplicates("horizon_months").set_index("horizon_months")
        kind = num.unit_kind(o, "status")
        cells = [Cell(outcome_label(o, lang), True), Cell(unit_reading(kind, "status", lang), True)]
        for k in horizons:
            if k not in r.index:
                cells.append(Cell(NA_MARK))
                continue
            cells.append(effect_cell(r.loc[k], o, "status", lang))
        body.append(tuple(cells))
    if outs:
        first = rows[rows["outcome"] == outs[0]].drop_duplicates("horizon_months").set_index("horizon_months")
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
            if int(v["df"]) == 0 or num.is_missing(v["p_value"]):  # no lead with a standard error: no test
                lines.append(
                    Line(text("pretrend_none", lang).format(outcome=outcome_label(o, lang).lower()), True)
                )
                continue
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


# -- facts and figures ------------------------------------------------------------------------------------------
#: How each key figure is written.
FACT_KINDS: dict[str, str] = {
    "max_abs_smd_after": "smd",
    "sus_register_disagree_any_public": "percent",
    "contamination_share_matched": "percent",
    "contamination_share_matched_now": "percent",
    "contamination_share_matched_before": "percent",
    "contamination_share_candidates": "percent",
    "propensity_fit_control_share": "percent",
    "cost_per_participant_sek": "sek",
    "net_public_sector_counterfactual_sek": "sek",
    "net_public_sector_before_after_sek": "sek",
}


def fact_value(key: str, v: Any, lang: str) -> str:
    """A key figure in ``lang`` (a suppressed count as the suppressed mark)."""
    if v is None:
        return SUPPRESSED_MARK
    if isinstance(v, Mapping) and {"statistic", "df", "p_value"} <= set(v):
        if int(v["df"]) == 0 or num.is_missing(v["p_value"]):
            return "kan inte testas" if lang == "sv" else "not testable"
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
    order = {f"waterfall__{f}": i for i, f in enumerate(WATERFALL_FINANCIERS)}
    keys = sorted(
        (k for k in pngs if k == name or k.startswith(name + "__")), key=lambda k: (order.get(k, 99), k)
    )
    for key in keys:
        part = key.split("__", 1)[1] if "__" in key else ""
        label = financier_label(part, lang) if name in ("waterfall", "tornado") else outcome_label(part, lang)
        cap = f"{label + ': ' if part else ''}{figure_guide(name, lang, content.alpha)}"
        src = tables.get(source or name)
        if src is not None and "suppressed" in src and src["suppressed"].astype(bool).any():
            cap += " " + text("fig_suppressed", lang).format(t=threshold)
        if name == "ps_overlap":  # drawn from person-level scores: the rule its bins follow
            cap += " " + text("fig_bins_merged", lang).format(t=threshold)
        views.append(FigureView(base64.b64encode(pngs[key]).decode("ascii"), cap))
    return views


def persons_left_out(df: pd.DataFrame) -> pd.DataFrame:
    """A cost-benefit table as the page shows it: without the persons behind it (the same in every row; in the
    files) and without its ``suppressed`` column when nothing in it is suppressed."""
    out = df.drop(columns=[c for c in ("n_treated", "n_control") if c in df.columns])
    if "suppressed" in out and not out["suppressed"].fillna(False).astype(bool).any():
        out = out.drop(columns="suppressed")
    return out


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
            "types": [],
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
            else estimator_table(key_rows(eff[overall], measure="status"), lang, threshold, first=est),
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
            if first is not None:  # the question "which kind?" is answered on the first screen too
                public = [x for x in cb_lines if x.startswith(financier_label("public_sector_total", lang))]
                first["types"] = [*insats["readings"], *public]
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
            "figures": figs("waterfall", source="cost_benefit")[:1],  # the state's, with FK and AF
            "more_figures": figs("waterfall", source="cost_benefit")[1:],
            "tornado": figs("tornado", source="cost_benefit_sensitivity"),
            "item_table": table_view(
                persons_left_out(tables["cost_benefit"]), lang, threshold=threshold, kinds=cb_kinds
            )
            if "cost_benefit" in tables
            else None,
            "methods": table_section(
                {k: persons_left_out(v) for k, v in tables.items() if k == "cost_benefit_methods"},
                "cost_benefit_methods",
                lang,
                threshold,
            ),
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
        "attrition_note": attrition_note(tables.get("linkage_report"), content.outcomes, lang),
        "support_consistency": table_section(tables, "support_consistency", lang, threshold),
        "balance_figures": figs("love_plot", "ps_overlap"),
        "balance": balance_table_view(tables["balance"], lang, threshold) if "balance" in tables else None,
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
