"""report.html: the page rendered from the Jinja2 templates in ``templates/``, with autoescaping on.

Every text on the page (titles, questions and förbund names from a config or a data file, labels, table cells)
reaches the page as a template variable and is escaped by Jinja2; the templates hold the only markup. This
module holds the generic views the templates render (:class:`Cell`, :class:`TableView`, :class:`FigureView`,
:class:`TableSection`) and the generic table: labelled headers, code names replaced by labels
(:mod:`~finsam_effekt.report.labels`), numbers in the report's language (:mod:`~finsam_effekt.report.numbers`),
and distinct marks for a suppressed cell (``×``) and a cell with no value (``–``), with their legend beside every
table that can suppress. The sections' own views are built in :mod:`~finsam_effekt.report.views`.
The page is self-contained: inline CSS, images as base64, no scripts, no external links.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import jinja2
import numpy as np
import pandas as pd

from . import numbers as num
from .disclosure import COUNT_COLUMNS, TABLE_COUNT_COLUMNS
from .labels import CODE_COLUMNS
from .text import (
    ARM_LABELS,
    SAMPLE_LABELS,
    TABLE_GUIDES,
    column_label,
    estimator_label,
    lang_index,
    measure_label,
    outcome_label,
    source_label,
    table_title,
    text,
)

#: Rows of a table shown on the page before it is cut (the files keep every row).
MAX_ROWS = 200
#: The mark of a suppressed cell and of a cell without a value (not applicable).
SUPPRESSED_MARK, NA_MARK = "×", "–"


@dataclass(frozen=True)
class Cell:
    """A formatted table cell; ``text`` cells (labels, names) are left-aligned; ``sub`` is a second, smaller line
    (an interval under its estimate)."""

    value: str
    text: bool = False
    sub: str = ""


@dataclass(frozen=True)
class TableView:
    """A table as the page shows it: labelled headers, formatted rows, the note on cut rows, the empty text, the
    legend of its marks (tables that can suppress) and a CSS class."""

    headers: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    more: str = ""
    none: str = ""
    legend: tuple[str, ...] = ()
    css: str = ""


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


def legend(threshold: int, lang: str) -> tuple[str, ...]:
    """The legend of the marks under a table that can suppress."""
    return (text("legend_suppressed", lang).format(t=threshold), text("legend_na", lang))


#: Columns holding kronor (formatted whole, with thousands grouped).
SEK_COLUMNS: frozenset[str] = frozenset(
    {
        "pv_sek_per_participant",
        "pv_cost",
        "pv_gains",
        "pv_net",
        "net_point",
        "mc_mean",
        "net_base",
        "net_low",
        "net_high",
        "difference",
        "cost_per_participant_sek",
    }
)
#: Shares shown as percentages.
PERCENT_COLUMNS: frozenset[str] = frozenset({"p_net_positive", "interval_level"})
#: Person counts (thousands grouped).
COUNTS: frozenset[str] = frozenset(
    {*COUNT_COLUMNS, *(c for cols in TABLE_COUNT_COLUMNS.values() for c in cols), "n_pairs"}
)


def column_kind(column: str) -> str:
    """How a generic table's column is formatted: ``count``, ``sek``, ``percent``, ``p`` or ``auto``."""
    if column in COUNTS:
        return "count"
    if column == "p_value":
        return "p"
    if column in PERCENT_COLUMNS or column.startswith("share_"):
        return "percent"
    if (
        column in SEK_COLUMNS
        or column.endswith("_sek")
        or column.startswith(("net_point_", "ci_lower_", "ci_upper_"))
    ):
        return "sek"
    return "auto"


def format_value(v: Any, column: str = "", lang: str = "en", kind: str | None = None) -> str:
    """A cell as text in ``lang``: "–" for a missing value, "✓" for True, counts and kronor whole with the
    thousands grouped, p-values with three decimals (``< 0,001``), shares as percentages, other numbers with
    three significant digits (``numbers.auto``). The text is not escaped (the template escapes it)."""
    if num.is_missing(v):
        return NA_MARK
    if isinstance(v, bool | np.bool_):
        return "✓" if v else ""
    kind = kind or column_kind(column)
    if isinstance(v, int | np.integer | float | np.floating):
        if kind == "count":
            return num.integer(v, lang)
        if kind == "p":
            return num.p_value(float(v), lang)
        if kind == "percent":
            return num.percent(float(v), lang)
        if kind == "sek":
            return num.sek(float(v), lang)
        if isinstance(v, int | np.integer):
            return num.integer(v, lang)
        return num.auto(float(v), lang)
    return str(v)


def code_label(column: str, v: Any, lang: str) -> str | None:
    """The reader's label of code name ``v`` in ``column`` (an outcome, estimator, subgroup, step, financier, …),
    or None when ``column`` holds no code names or ``v`` is not text."""
    if not isinstance(v, str):
        return None
    li = lang_index(lang)
    if column == "outcome":
        return outcome_label(v, lang)
    simple: dict[str, Callable[[str, str], str]] = {
        "source": source_label,
        "estimator": estimator_label,
        "measure": measure_label,
        **CODE_COLUMNS,
    }
    if column in simple:
        return simple[column](v, lang)
    if column == "arm" and v in ARM_LABELS:
        return ARM_LABELS[v][li]
    if column == "sample" and v in SAMPLE_LABELS:
        return SAMPLE_LABELS[v][li]
    if column == "forbund_id" and v == "ALL":
        return ("Alla förbund", "All förbund")[li]
    return None


def cell(column: str, v: Any, lang: str, *, suppressed: bool = False, kind: str | None = None) -> Cell:
    """The page's cell for value ``v`` of ``column``: a label for a code name, the suppressed mark for a value
    blanked by disclosure control, the not-applicable mark for another missing value, else the formatted value."""
    if num.is_missing(v):
        return Cell(SUPPRESSED_MARK if suppressed else NA_MARK)
    labelled = code_label(column, v, lang)
    if labelled is not None:
        return Cell(labelled, True)
    return Cell(format_value(v, column, lang, kind), isinstance(v, str))


def table_view(
    df: pd.DataFrame,
    lang: str,
    max_rows: int = MAX_ROWS,
    *,
    threshold: int | None = None,
    kinds: Mapping[str, str] | None = None,
) -> TableView:
    """The page's view of a table: headers in ``lang``, labelled code names, formatted numbers, at most
    ``max_rows`` rows; a table with a ``suppressed`` column gets the legend of the marks (``threshold``: the
    disclosure threshold it states)."""
    d = df.head(max_rows)
    sup = (
        d["suppressed"].fillna(False).astype(bool).to_numpy()
        if "suppressed" in d
        else np.zeros(len(d), dtype=bool)
    )
    kinds = kinds or {}
    rows = tuple(
        tuple(
            cell(c, v, lang, suppressed=bool(s), kind=kinds.get(c))
            for c, v in zip(d.columns, rec, strict=True)
        )
        for rec, s in zip(d.itertuples(index=False), sup, strict=True)
    )
    more = text("more_rows", lang).format(n=len(df) - max_rows) if len(df) > max_rows else ""
    marks = legend(threshold, lang) if threshold is not None and "suppressed" in df else ()
    return TableView(tuple(column_label(c, lang) for c in d.columns), rows, more, text("none", lang), marks)


def html_table(df: pd.DataFrame, lang: str, max_rows: int = MAX_ROWS, *, threshold: int | None = None) -> str:
    """A table as HTML with labelled headers and marks (the ``table`` macro of the templates)."""
    view = table_view(df, lang, max_rows, threshold=threshold)
    return str(environment().get_template("macros.html").module.table(view))


def table_section(
    tables: Mapping[str, pd.DataFrame], name: str, lang: str, threshold: int | None = None
) -> TableSection | None:
    """Table ``name`` with its title and reading guide, or None when the run did not produce it."""
    if name not in tables:
        return None
    guide = TABLE_GUIDES[name][lang_index(lang)]
    return TableSection(table_title(name, lang), guide, table_view(tables[name], lang, threshold=threshold))


def render_html(
    content: Any,
    tables: Mapping[str, pd.DataFrame],
    pngs: Mapping[str, bytes],
    lang: str,
    threshold: int,
    *,
    reproducible: bool = False,
) -> str:
    """The self-contained ``report.html`` from the published ``tables`` and the figures' PNG bytes ``pngs``
    (``content``: the run's :class:`~finsam_effekt.report.content.ReportContent`; ``reproducible``: the run
    wrote ``cost_benefit_inputs.json``, and the page says how to rerun the cost-benefit from it)."""
    from .views import page_context  # the views build on this module's cells and tables

    context = page_context(content, tables, pngs, lang, threshold, reproducible=reproducible)
    return environment().get_template("report.html").render(**context)
