"""report.html: the page rendered from the Jinja2 templates in ``templates/``, with autoescaping on.

Every text on the page (titles, questions and förbund names from a config or a data file, labels, table cells)
reaches the page as a template variable and is escaped by Jinja2; the templates hold the only markup. This
module turns published tables into views the templates render (:class:`TableView`, :class:`FigureView`,
:class:`TableSection`): labelled headers, formatted cells, figure captions in the report's language.
The page is self-contained: inline CSS, images as base64, no scripts, no external links.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import jinja2
import numpy as np
import pandas as pd

from .content import FIGURE_OUTCOMES, SUBGROUP_OUTCOMES, ReportContent, compact_balance, key_rows
from .disclosure import publishable_facts
from .text import (
    TABLE_GUIDES,
    TEXT,
    column_label,
    estimator_label,
    fact_label,
    figure_guide,
    lang_index,
    measure_label,
    outcome_label,
    source_label,
    table_title,
    text,
)

#: Rows of a table shown on the page before it is cut (the files keep every row).
MAX_ROWS = 200


@dataclass(frozen=True)
class Cell:
    """A formatted table cell; ``text`` cells (labels, names) are left-aligned."""

    value: str
    text: bool = False


@dataclass(frozen=True)
class TableView:
    """A table as the page shows it: labelled headers, formatted rows, the note on cut rows, the empty text."""

    headers: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    more: str
    none: str


@dataclass(frozen=True)
class FigureView:
    """A figure on the page: the PNG (base64) and its caption."""

    png_base64: str
    caption: str


@dataclass(frozen=True)
class TableSection:
    """A table the run may or may not produce, shown with its title and reading guide."""

    title: str
    guide: str
    table: TableView


@cache
def environment() -> jinja2.Environment:
    """The templates of ``finsam_effekt.report`` with autoescaping on (every variable is HTML-escaped)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("finsam_effekt.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def format_value(v: Any, column: str = "") -> str:
    """A cell as text: "–" for missing (suppressed), "✓" for True, thin-space thousands, 3 significant digits,
    p-values with 3 decimals and shares as percentages. The text is not escaped (the template escapes it)."""
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return "–"
    if isinstance(v, bool | np.bool_):
        return "✓" if v else ""
    if isinstance(v, int | np.integer):
        return f"{int(v):,}".replace(",", " ")
    if isinstance(v, float | np.floating):
        if column == "p_value":
            return f"{v:.3f}"
        if column.startswith("share_"):
            return f"{v:.1%}"
        a = abs(v)
        return f"{v:,.0f}".replace(",", " ") if a >= 1000 else f"{v:.3g}" if a >= 1 else f"{v:.3f}"
    return str(v)


def _cell(column: str, v: Any, lang: str) -> Cell:
    if column == "outcome":
        return Cell(outcome_label(str(v), lang), True)
    labels = {"source": source_label, "estimator": estimator_label, "measure": measure_label}
    if column in labels and isinstance(v, str):
        return Cell(labels[column](v, lang), True)
    return Cell(format_value(v, column), isinstance(v, str))


def table_view(df: pd.DataFrame, lang: str, max_rows: int = MAX_ROWS) -> TableView:
    """The page's view of a table: headers in ``lang``, labelled names, at most ``max_rows`` rows."""
    d = df.head(max_rows)
    rows = tuple(
        tuple(_cell(c, v, lang) for c, v in zip(d.columns, rec, strict=True))
        for rec in d.itertuples(index=False)
    )
    more = text("more_rows", lang).format(n=len(df) - max_rows) if len(df) > max_rows else ""
    return TableView(tuple(column_label(c, lang) for c in d.columns), rows, more, text("none", lang))


def html_table(df: pd.DataFrame, lang: str, max_rows: int = MAX_ROWS) -> str:
    """A table as HTML with labelled headers; suppressed cells as "–" (the ``table`` macro of the templates)."""
    return str(environment().get_template("macros.html").module.table(table_view(df, lang, max_rows)))


def _table_section(tables: Mapping[str, pd.DataFrame], name: str, lang: str) -> TableSection | None:
    if name not in tables:
        return None
    guide = TABLE_GUIDES[name][lang_index(lang)]
    return TableSection(table_title(name, lang), guide, table_view(tables[name], lang))


def _figures(
    name: str,
    pngs: Mapping[str, bytes],
    tables: Mapping[str, pd.DataFrame],
    content: ReportContent,
    lang: str,
    threshold: int,
) -> list[FigureView]:
    """The figures ``name`` and ``name__<outcome>``, captioned; the caption says when the figure's table has
    suppressed values (they are left out of the figure)."""
    views = []
    for key in sorted(k for k in pngs if k == name or k.startswith(name + "__")):
        label = key.split("__", 1)[1] if "__" in key else ""
        cap = f"{outcome_label(label, lang) + ': ' if label else ''}{figure_guide(name, lang, content.alpha)}"
        src = tables.get(name)
        if src is not None and "suppressed" in src and src["suppressed"].astype(bool).any():
            cap += " " + text("fig_suppressed", lang).format(t=threshold)
        views.append(FigureView(base64.b64encode(pngs[key]).decode("ascii"), cap))
    return views


def render_html(
    content: ReportContent,
    tables: Mapping[str, pd.DataFrame],
    pngs: Mapping[str, bytes],
    lang: str,
    threshold: int,
) -> str:
    """The self-contained ``report.html`` from the published ``tables`` and the figures' PNG bytes ``pngs``."""
    li = lang_index(lang)

    def figs(*names: str) -> list[FigureView]:
        return [f for n in names for f in _figures(n, pngs, tables, content, lang, threshold)]

    def key_note(files: str) -> str:
        names = ", ".join(outcome_label(o, lang).lower() for o in FIGURE_OUTCOMES)
        return text("key_outcomes_note", lang).format(outcomes=names, files=files)

    linkage = None
    if "linkage_report" in tables:
        lr = tables["linkage_report"]
        if {"forbund_id", "start_year"} <= set(lr.columns):  # the totals; per förbund and year in the files
            lr = lr[(lr["forbund_id"].astype(str) == "ALL") & (lr["start_year"].astype(str) == "0")]
        linkage = table_view(lr, lang)
    effects = None
    if "effects" in tables:
        eff, est = tables["effects"], content.main_estimator
        overall = eff["subgroup"] == "all"
        main = eff[overall & (eff["estimator"] == est)]
        others = eff[overall & (eff["estimator"] != est)]
        sub = eff[~overall & (eff["estimator"] == est)]
        effects = {
            "estimator": estimator_label(est, lang),
            "status": measure_label("status", lang),
            "cumulative": measure_label("cumulative", lang),
            "figures": figs("effects"),
            "key_note": key_note("effects.csv"),
            "main": table_view(key_rows(main).drop(columns=["subgroup", "estimator"]), lang),
            "others": None
            if others.empty
            else table_view(key_rows(others, measure="status").drop(columns=["subgroup"]), lang),
            "subgroups": table_view(
                key_rows(sub, outcomes=SUBGROUP_OUTCOMES, measure="status").drop(columns=["estimator"]), lang
            ),
        }
    sensitivity = None
    if "sensitivity" in tables:
        sensitivity = {
            "key_note": key_note("sensitivity.csv"),
            "table": table_view(key_rows(tables["sensitivity"], outcomes=SUBGROUP_OUTCOMES), lang),
        }
    page = (
        environment()
        .get_template("report.html")
        .render(
            lang=lang,
            t={k: v[li] for k, v in TEXT.items()},
            title=content.title or text("default_title", lang),
            question=content.question or text("default_question", lang),
            estimand=content.estimand,
            facts=[
                (fact_label(k, lang), format_value(v))
                for k, v in publishable_facts(content.facts, threshold).items()
            ],
            linkage=linkage,
            support_consistency=_table_section(tables, "support_consistency", lang),
            balance_figures=figs("love_plot", "ps_overlap"),
            balance=table_view(compact_balance(tables["balance"]), lang, max_rows=80)
            if "balance" in tables
            else None,
            effects=effects,
            path_figures=figs("outcome_paths", "event_study"),
            sensitivity=sensitivity,
            cost_figures=figs("waterfall", "tornado"),
            cost_benefit=table_view(tables["cost_benefit"], lang) if "cost_benefit" in tables else None,
            cost_benefit_methods=_table_section(tables, "cost_benefit_methods", lang),
            not_run=list(content.not_run.items()),
            suppressed_note=text("suppressed_note", lang).format(t=threshold),
            config_hash=content.config_hash,
        )
    )
    return page
