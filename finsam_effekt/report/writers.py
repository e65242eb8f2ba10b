"""Writing a run's outputs: the CSV tables, ``results.xlsx``, ``figures/`` and ``report.html`` (:func:`write_outputs`).

Every table passes disclosure control before any file is written, and the figures and the page are made from the
published tables only. Files are deterministic: a rerun on the same results writes identical bytes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..schema import DEFAULT_DISCLOSURE_THRESHOLD
from .content import OUTPUT_TABLES, ReportContent
from .disclosure import apply_disclosure_control
from .figures import save_figure, table_figures
from .html import render_html
from .text import column_label, table_title


def write_csv(df: pd.DataFrame, path: Path) -> None:
    """Deterministic CSV: UTF-8, ``,``, ``.``, ``\\n``, floats with 10 significant digits, no index."""
    df.to_csv(path, index=False, float_format="%.10g", lineterminator="\n", encoding="utf-8")


def _py(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v


def write_excel(tables: Mapping[str, pd.DataFrame], path: Path, lang: str) -> None:
    """``results.xlsx``: one sheet per table, headers in ``lang``, fixed document dates."""
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    for name, df in tables.items():
        ws = wb.create_sheet(table_title(name, lang)[:31])  # Excel's limit on sheet names
        ws.append([column_label(c, lang) for c in df.columns])
        for row in df.itertuples(index=False):
            ws.append(
                [None if (v is pd.NA or (isinstance(v, float) and np.isnan(v))) else _py(v) for v in row]
            )
        ws.freeze_panes = "A2"
    fixed = dt.datetime(2000, 1, 1)
    wb.properties.created = fixed
    wb.properties.modified = fixed
    wb.properties.creator = "finsam_effekt"
    wb.save(path)


def write_outputs(
    content: ReportContent, out_dir: Path, *, lang: str = "sv", threshold: int = DEFAULT_DISCLOSURE_THRESHOLD
) -> list[Path]:
    """Write every output of a run into ``out_dir`` (which must exist); return the files written.

    Steps: disclosure control on every table (``apply_disclosure_control``), one CSV per table
    (:func:`write_csv`), ``results.xlsx`` (:func:`write_excel`), the figures drawn from the *published* tables
    (``figures.table_figures``) plus the stages' figures (a stage's figure replaces a drawn one of the same name)
    into ``figures/`` (PNG and SVG), then ``report.html`` (``html.render_html``).
    """
    out_dir = Path(out_dir)
    order = [*OUTPUT_TABLES, *sorted(set(content.tables) - set(OUTPUT_TABLES))]
    tables = apply_disclosure_control({k: content.tables[k] for k in order if k in content.tables}, threshold)
    written: list[Path] = []
    for name, df in tables.items():
        p = out_dir / f"{name}.csv"
        write_csv(df, p)
        written.append(p)
    if tables:
        write_excel(tables, out_dir / "results.xlsx", lang)
        written.append(out_dir / "results.xlsx")
    fig_dir = out_dir / "figures"
    figs = table_figures(tables, content.main_estimator, lang, skip=content.figures.keys())
    figs.update(content.figures)
    pngs = {}
    for name in sorted(figs):
        pngs[name] = save_figure(figs[name], fig_dir, name)
        written += [fig_dir / f"{name}.png", fig_dir / f"{name}.svg"]
    page = render_html(content, tables, pngs, lang, threshold)
    (out_dir / "report.html").write_text(page, encoding="utf-8")
    written.append(out_dir / "report.html")
    return written
