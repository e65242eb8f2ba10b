"""Every number shown to a reader, formatted for the report's language (tables, sentences, figures, Excel formats).

Swedish: decimal comma, a narrow no-break space (U+202F) between thousands, the true minus sign U+2212 and
``< 0,001`` for small p-values; English: decimal point, the same thousands space (SI style, never a comma, which a
Swede reads as a decimal mark) and the same minus sign. Percent signs follow each language's style (``7,3 %``,
``7.3%``). An outcome's effect is shown in the unit of its ``schema.OUTCOME_INFO`` entry: a share's status effect
in percentage points, a share summed over months in months, kronor in kronor, days in days
(:func:`effect_value`). Nothing here computes a statistic: values are only scaled for display and written out.

The same rules reach matplotlib (:func:`axis_formatter`) and ``results.xlsx`` (:func:`excel_format`: Excel keeps
the numbers as numbers and shows them with the user's locale separators and these formats).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..schema import OUTCOME_INFO
from .text import lang_index

#: The true minus sign.
MINUS = "\u2212"
#: Thousands separator: a narrow no-break space (a number never breaks over two lines).
THOUSANDS = "\u202f"
#: A no-break space (between a number and its unit).
NBSP = "\u00a0"


def is_missing(v: Any) -> bool:
    """None, ``pd.NA``, NaN or NaT."""
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    return isinstance(v, float | np.floating) and math.isnan(v)


def fixed(v: float, lang: str, decimals: int = 0, *, sign: bool = False) -> str:
    """``v`` with ``decimals`` decimals, thousands grouped, the language's decimal mark and a true minus sign
    (``sign``: a plus sign on positive values). ``inf`` is written ``∞``."""
    li = lang_index(lang)
    v = float(v)
    if math.isinf(v):
        return ("" if v > 0 else MINUS) + "∞"
    text = f"{abs(v):,.{decimals}f}"
    if float(text.replace(",", "")) == 0:  # no "−0,0"
        return text.replace(",", THOUSANDS).replace(".", ",") if li == 0 else text.replace(",", THOUSANDS)
    body = text.replace(",", THOUSANDS)
    if li == 0:
        body = body.replace(".", ",")
    if v < 0:
        return MINUS + body
    return ("+" + body) if sign else body


def integer(v: Any, lang: str) -> str:
    """A count: thousands grouped (``2 672``)."""
    return fixed(float(v), lang, 0)


def auto(v: float, lang: str) -> str:
    """A number without a known unit: whole above 1 000, three significant digits above 1, else three
    decimals (``1 234``, ``12,3``, ``0,049``)."""
    a = abs(float(v))
    if math.isinf(a):
        return fixed(v, lang)
    if a >= 1000:
        return fixed(v, lang, 0)
    if a >= 1:
        return fixed(v, lang, max(0, 2 - int(math.floor(math.log10(a)))))
    return fixed(v, lang, 3)


def p_value(p: float, lang: str) -> str:
    """A p-value: ``< 0,001`` below 0.001, else three decimals."""
    if float(p) < 0.001:
        return f"<{NBSP}{fixed(0.001, lang, 3)}"
    return fixed(p, lang, 3)


def percent(share: float, lang: str, decimals: int = 1) -> str:
    """A share (0..1) as a percentage: ``7,3 %`` (sv), ``7.3%`` (en)."""
    body = fixed(100 * float(share), lang, decimals)
    return f"{body}{NBSP}%" if lang_index(lang) == 0 else f"{body}%"


def level(alpha: float, lang: str) -> str:
    """The confidence level ``100 (1 − alpha)`` with a percent sign: ``95 %``, ``97,5 %``, ``90%``."""
    lvl = round(100 * (1 - float(alpha)), 6)
    body = fixed(lvl, lang, 0 if float(lvl).is_integer() else 1)
    return f"{body}{NBSP}%" if lang_index(lang) == 0 else f"{body}%"


# -- effects in their units ----------------------------------------------------------------------------------------
def unit_kind(outcome: str, measure: str = "status") -> str:
    """How an outcome's effect is shown: ``pp`` (a share in month k, percentage points), ``months`` (a share
    summed over months 1..k), ``sek`` or ``days``; ``number`` for an outcome without ``OUTCOME_INFO``."""
    info = OUTCOME_INFO.get(outcome)
    if info is None:
        return "number"
    if info.unit == "share":
        return "months" if measure == "cumulative" else "pp"
    return info.unit


#: Decimals of each unit kind.
UNIT_DECIMALS: dict[str, int] = {"pp": 1, "months": 2, "sek": 0, "days": 2}


def scale(kind: str) -> float:
    """The display factor of a unit kind (a share difference × 100 = percentage points)."""
    return 100.0 if kind == "pp" else 1.0


def effect_value(v: float, outcome: str, measure: str, lang: str, *, sign: bool = False) -> str:
    """An effect (or a difference, an interval bound) of ``outcome`` in its unit (:func:`unit_kind`)."""
    kind = unit_kind(outcome, measure)
    if kind == "number":
        return auto(v, lang)
    return fixed(scale(kind) * float(v), lang, UNIT_DECIMALS[kind], sign=sign)


def interval(lo: float, hi: float, outcome: str, measure: str, lang: str) -> str:
    """An interval in the outcome's unit: ``−14,3 till −9,2`` / ``−14.3 to −9.2``."""
    word = ("till", "to")[lang_index(lang)]
    return f"{effect_value(lo, outcome, measure, lang)} {word} {effect_value(hi, outcome, measure, lang)}"


def sek(v: float, lang: str, *, sign: bool = False) -> str:
    """Kronor, whole: ``−29 985``."""
    return fixed(v, lang, 0, sign=sign)


# -- figures ------------------------------------------------------------------------------------------------------
def axis_formatter(lang: str, kind: str = "auto", decimals: int | None = None):
    """A matplotlib tick formatter writing ticks in ``lang`` (``kind``: a unit kind of :func:`unit_kind`, scaled
    for display, ``percent`` for a share shown as a percentage, or ``auto``)."""
    from matplotlib.ticker import FuncFormatter

    def fmt(x: float, _pos: Any = None) -> str:
        if kind == "percent":
            return percent(x, lang, 0 if decimals is None else decimals)
        if kind in UNIT_DECIMALS:
            v = round(scale(kind) * x, 9)  # −0.04 × 100 is −4.000000000000001: a whole tick all the same
            return fixed(v, lang, decimals) if decimals is not None else _short(v, lang)
        if decimals is not None:
            return fixed(x, lang, decimals)
        return _short(round(x, 9), lang)

    return FuncFormatter(fmt)


def _short(x: float, lang: str) -> str:
    """A tick value with as few decimals as it needs (up to three)."""
    for d in (0, 1, 2, 3):
        if abs(round(x, d) - x) < 1e-9:
            return fixed(x, lang, d)
    return fixed(x, lang, 3)


def apply_axis_format(ax: Any, lang: str, *, x: str | None = "auto", y: str | None = "auto") -> None:
    """Format both axes' ticks of ``ax`` in ``lang`` (None leaves an axis, e.g. one with text labels)."""
    if x is not None:
        ax.xaxis.set_major_formatter(axis_formatter(lang, x))
    if y is not None:
        ax.yaxis.set_major_formatter(axis_formatter(lang, y))


# -- Excel --------------------------------------------------------------------------------------------------------
def excel_format(kind: str, lang: str) -> str:
    """An Excel number format (written in Excel's locale-neutral syntax, shown with the reader's separators) with
    a true minus sign: ``count``, ``sek``, ``pp`` (a share difference shown as ``−11,8 %``), ``percent``,
    ``months``, ``days``, ``p_value`` (``< 0,001``) or ``number``."""
    m = f'"{MINUS}"'
    codes = {
        "count": "#,##0",
        "sek": f"#,##0;{m}#,##0;0",
        "pp": f"0.0%;{m}0.0%;0.0%",
        "percent": "0.0%",
        "months": f"0.00;{m}0.00;0.00",
        "days": f"0.00;{m}0.00;0.00",
        "number": f"0.000;{m}0.000;0.000",
    }
    if kind == "p_value":
        small = f"<{NBSP}{fixed(0.001, lang, 3)}"
        return f'[<0.001]"{small}";0.000'
    return codes.get(kind, codes["number"])
