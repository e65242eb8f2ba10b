"""Writing a run's outputs: the CSV tables, ``results.xlsx``, ``figures/``, ``report.html`` and
``cost_benefit_inputs.json`` (:func:`write_outputs`).

Every table and key figure passes disclosure control (``disclosure.publish``) before any file is written, and the
figures and the page are made from the published tables and key figures only. Files are deterministic: a rerun on
the same results writes identical bytes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..schema import DEFAULT_DISCLOSURE_THRESHOLD
from . import numbers as num
from .content import OUTPUT_TABLES, ReportContent
from .disclosure import publish
from .figures import save_figure, table_figures
from .html import code_label, column_kind, render_html
from .text import column_label, table_title

#: File of the cost-benefit's inputs (``finsam-effekt cost-benefit`` reads it to reproduce the run's numbers).
COST_BENEFIT_INPUTS = "cost_benefit_inputs.json"


def write_csv(df: pd.DataFrame, path: Path) -> None:
    """Deterministic CSV: UTF-8, ``,``, ``.``, ``\\n``, floats with 10 significant digits, no index."""
    df.to_csv(path, index=False, float_format="%.10g", lineterminator="\n", encoding="utf-8")


def _py(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v


#: Columns of effect-like tables whose display format follows the row's outcome unit.
EFFECT_VALUE_COLUMNS: frozenset[str] = frozenset({"estimate", "std_error", "ci_lower", "ci_upper", "mean"})


def excel_kind(column: str, row: Mapping[str, Any] | None = None) -> str:
    """The display format (``numbers.excel_format``) of a workbook cell: by column, and for an effect by the
    row's outcome unit (a share's difference as a percentage, kronor whole, days and months with decimals)."""
    kind = column_kind(column)  # the HTML tables' rule by column; p-values here also under longer names
    if kind == "p" or (kind != "count" and column.startswith("p_value")):
        return "p_value"
    if kind != "auto":
        return kind
    if row is not None and column in EFFECT_VALUE_COLUMNS:
        if "outcome" in row and isinstance(row.get("outcome"), str) and "financier" not in row:
            kind = num.unit_kind(row["outcome"], str(row.get("measure", "status")))
            return "number" if kind == "number" else kind
        if "financier" in row:
            return "sek"
    return "number"


#: Columns whose code names get a label column beside them in the workbook, and the header suffix.
LABELLED: tuple[str, ...] = (
    "outcome",
    "subgroup",
    "estimator",
    "measure",
    "check",
    "statistic",
    "step",
    "financier",
    "item",
    "perspective",
    "covariate",
    "variable",
    "parameter",
    "source",
    "arm",
    "sample",
)


def _label_columns(df: pd.DataFrame, lang: str) -> list[tuple[str, list[Any]]]:
    """``(header, values)`` of the label columns appended to a sheet: one per code column present."""
    out = []
    word = ("benämning", "label")[0 if lang == "sv" else 1]
    for c in LABELLED:
        if c in df.columns:
            vals = [code_label(c, v, lang) for v in df[c]]
            out.append((f"{column_label(c, lang)} ({word})", vals))
    return out


def _column_formats(df: pd.DataFrame, lang: str) -> dict[str, list[str] | str]:
    """The display format of each numeric column: one format, or (an effect column) one per row by its
    outcome's unit."""
    out: dict[str, list[str] | str] = {}
    records = None
    for c in df.columns:
        if not pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]):
            continue
        if c in EFFECT_VALUE_COLUMNS and "outcome" in df.columns:
            records = (
                records
                if records is not None
                else df[[x for x in ("outcome", "measure", "financier") if x in df]]
            )
            rows = records.to_dict("records")
            out[c] = [num.excel_format(excel_kind(c, r), lang) for r in rows]
        else:
            out[c] = num.excel_format(excel_kind(c), lang)
    return out


def write_excel(tables: Mapping[str, pd.DataFrame], path: Path, lang: str) -> None:
    """``results.xlsx``: one sheet per table with headers in ``lang``, the raw numbers kept as numbers with display
    formats in the language's style (true minus sign, ``< 0,001``, percentages, kronor), label columns beside
    the code names (appended after the table's own columns), column widths, an autofilter, the header frozen and
    fixed document dates."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook(write_only=True)  # streamed: every cell is written once, with its format
    bold = Font(bold=True)
    for name, df in tables.items():
        ws = wb.create_sheet(table_title(name, lang)[:31])  # Excel's limit on sheet names
        labels = _label_columns(df, lang)
        headers = [column_label(c, lang) for c in df.columns] + [h for h, _ in labels]
        names = [*df.columns, *(h for h, _ in labels)]
        widths = [len(str(h)) for h in headers]
        for i, col in enumerate(names):
            vals = df[col] if i < len(df.columns) else pd.Series(labels[i - len(df.columns)][1], dtype=object)
            longest = max((len(str(v)) for v in vals.head(500) if not num.is_missing(v)), default=0)
            widths[i] = max(min(widths[i], 24), min(longest, 48))
        for i, w in enumerate(widths, start=1):
            ws.column_dimensions[get_column_letter(i)].width = max(8, w + 2)
        ws.freeze_panes = "A2"
        if len(df):
            ws.auto_filter.ref = f"A1:{get_column_letter(len(headers))}{len(df) + 1}"
        head = []
        for h in headers:
            cell = WriteOnlyCell(ws, value=h)
            cell.font = bold
            head.append(cell)
        ws.append(head)
        formats = _column_formats(df, lang)
        for i, row in enumerate(df.itertuples(index=False)):
            values: list[Any] = []
            for c, v in zip(df.columns, row, strict=True):
                v = None if num.is_missing(v) else _py(v)
                fmt = formats.get(c)
                if fmt is not None and isinstance(v, int | float) and not isinstance(v, bool):
                    cell = WriteOnlyCell(ws, value=v)
                    cell.number_format = fmt if isinstance(fmt, str) else fmt[i]
                    values.append(cell)
                else:
                    values.append(v)
            ws.append(values + [vals[i] for _, vals in labels])
    fixed = dt.datetime(2000, 1, 1)
    wb.properties.created = fixed
    wb.properties.modified = fixed
    wb.properties.creator = "finsam_effekt"
    wb.save(path)


def _price_year(content: ReportContent) -> int | None:
    year = content.facts.get("cost_price_year")
    return None if year is None else int(year)


def write_outputs(
    content: ReportContent, out_dir: Path, *, lang: str = "sv", threshold: int = DEFAULT_DISCLOSURE_THRESHOLD
) -> list[Path]:
    """Write every output of a run into ``out_dir`` (which must exist); return the files written.

    Steps: disclosure control on every table and key figure (``disclosure.publish``), one CSV per table
    (:func:`write_csv`), ``results.xlsx`` (:func:`write_excel`), the figures drawn from the *published* tables
    (``figures.table_figures``) plus the stages' figures (a stage's figure replaces a drawn one of the same name)
    into ``figures/`` (PNG and SVG), ``report.html`` (``html.render_html``), and ``cost_benefit_inputs.json``
    when the run has a cost-benefit whose effects all rest on at least ``threshold`` persons in each arm.
    """
    out_dir = Path(out_dir)
    order = [*OUTPUT_TABLES, *sorted(set(content.tables) - set(OUTPUT_TABLES))]
    tables, facts = publish(
        {k: content.tables[k] for k in order if k in content.tables}, content.facts, threshold
    )
    content = dataclasses.replace(content, facts=facts)  # the page shows the published key figures only
    written: list[Path] = []
    for name, df in tables.items():
        p = out_dir / f"{name}.csv"
        write_csv(df, p)
        written.append(p)
    if tables:
        write_excel(tables, out_dir / "results.xlsx", lang)
        written.append(out_dir / "results.xlsx")
    fig_dir = out_dir / "figures"
    figs = table_figures(
        tables, content.main_estimator, lang, skip=content.figures.keys(), price_year=_price_year(content)
    )
    figs.update({k: f for k, f in content.figures.items() if f is not None})  # None: nothing publishable
    pngs = {}
    for name in sorted(figs):
        pngs[name] = save_figure(figs[name], fig_dir, name)
        written += [fig_dir / f"{name}.png", fig_dir / f"{name}.svg"]
    inputs = content.cost_benefit_inputs
    if inputs is not None and inputs.min_persons() < threshold:
        inputs = None  # an effect resting on too few persons is never published, not even as an input
    page = render_html(content, tables, pngs, lang, threshold, reproducible=inputs is not None)
    (out_dir / "report.html").write_text(page, encoding="utf-8")
    written.append(out_dir / "report.html")
    if inputs is not None:
        p = out_dir / COST_BENEFIT_INPUTS
        p.write_text(inputs.to_json(), encoding="utf-8")
        written.append(p)
    return written
