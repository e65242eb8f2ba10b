"""Calendar-month arithmetic shared by the stages.

Months are ``YYYY-MM`` text at every table boundary; internally they are integer month indices
``index = 12 * year + (month - 1)`` so that ``u + k`` is plain addition. The same arithmetic in SQL (DuckDB) is
:func:`sql_index`, :func:`sql_date_index` and :func:`sql_text`, so every stage that works in DuckDB uses one
definition too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def to_index(month: str | pd.Series | np.ndarray) -> int | np.ndarray:
    """Month index of ``YYYY-MM`` text (scalar or vector)."""
    if isinstance(month, str):
        return int(month[:4]) * 12 + int(month[5:7]) - 1
    s = pd.Series(month, copy=False).astype(str)
    return (s.str.slice(0, 4).astype(np.int64) * 12 + s.str.slice(5, 7).astype(np.int64) - 1).to_numpy()


def from_index(index: int | np.ndarray) -> str | np.ndarray:
    """``YYYY-MM`` text of a month index (scalar or vector)."""
    if np.isscalar(index):
        i = int(index)
        return f"{i // 12:04d}-{i % 12 + 1:02d}"
    idx = np.asarray(index, dtype=np.int64)
    years = (idx // 12).astype(str)
    months = np.char.zfill((idx % 12 + 1).astype(str), 2)
    return np.char.add(np.char.add(years, "-"), months).astype(object)


def of_date(dates: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Month index of each date."""
    d = pd.DatetimeIndex(dates)
    return d.year.to_numpy(np.int64) * 12 + d.month.to_numpy(np.int64) - 1


def first_day(index: int) -> pd.Timestamp:
    """First calendar day of a month index."""
    return pd.Timestamp(year=int(index) // 12, month=int(index) % 12 + 1, day=1)


def last_day(index: int) -> pd.Timestamp:
    """Last calendar day of a month index."""
    return first_day(int(index) + 1) - pd.Timedelta(days=1)


def month_range(start: str, end: str) -> list[str]:
    """All months from ``start`` to ``end`` inclusive, as ``YYYY-MM`` text."""
    return [from_index(i) for i in range(to_index(start), to_index(end) + 1)]


def year_of(index: int | np.ndarray) -> int | np.ndarray:
    """Calendar year of a month index (scalar or vector)."""
    return index // 12


def of_dates(dates: pd.Series, missing: int = -1) -> np.ndarray:
    """Month index of each date (anything :func:`pandas.to_datetime` reads); ``missing`` where a date is empty."""
    d = pd.to_datetime(pd.Series(dates, copy=False), errors="coerce")
    out = np.full(len(d), missing, dtype=np.int64)
    ok = d.notna().to_numpy()
    if ok.any():
        out[ok] = of_date(d[ok])
    return out


# -- the same arithmetic in SQL (DuckDB) -----------------------------------------------------------------------
def sql_index(expr: str) -> str:
    """SQL month index ``12*year + month - 1`` of a ``YYYY-MM`` (or ``YYYY-MM-DD``) text expression."""
    e = f"CAST({expr} AS VARCHAR)"
    return f"(CAST(substr({e}, 1, 4) AS BIGINT) * 12 + CAST(substr({e}, 6, 2) AS BIGINT) - 1)"


def sql_date_index(expr: str) -> str:
    """SQL month index of a DATE (or TIMESTAMP) expression."""
    return f"(year({expr}) * 12 + month({expr}) - 1)"


def sql_text(expr: str) -> str:
    """SQL ``YYYY-MM`` text of a month-index expression."""
    return f"printf('%04d-%02d', ({expr}) // 12, ({expr}) % 12 + 1)"


def sql_year(expr: str) -> str:
    """SQL calendar year of a month-index expression."""
    return f"(({expr}) // 12)"
