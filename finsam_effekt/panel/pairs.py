"""Reference pairs (person, month u) and the panel restricted to their persons, as features and outcomes read them.

This is the common input side of :mod:`~finsam_effekt.panel.features` and :mod:`~finsam_effekt.panel.outcomes`.

A *pairs* table has ``person_id``, ``ref_month`` (``YYYY-MM``) and any other columns. :func:`register_pairs` gives
each row a number ``_row`` (input order) and its month index ``u``; :func:`panel_source` makes the panel (with a
month index ``m``) available for just those persons, precomputed or built on the fly; :func:`attach` puts the
computed columns back beside the input columns, row for row.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from .. import months
from ..errors import InputError
from ..tables import Session, TableLike
from .build import REQUIRED_COLUMNS, panel_chunks, register_input
from .chunks import CHUNK_SCHEMA


def panel_source(
    sess: Session,
    persons: str,
    panel: TableLike | None,
    spells: TableLike | None,
    social_assistance: TableLike | None,
    earnings: TableLike | None,
    population: TableLike | None,
    end_month: str | None,
    start_month: str | None,
    threshold: float,
) -> str:
    """A view of the panel (with month index ``m``), precomputed or built from raw tables for ``persons`` only."""
    if panel is not None:
        return panel_view(sess, panel)
    if spells is None:
        raise InputError("pass either a precomputed panel (panel=...) or the raw tables (spells=..., ...).")
    tables = panel_chunks(
        sess,
        spells,
        social_assistance,
        earnings,
        population,
        end_month=end_month,
        start_month=start_month,
        threshold=threshold,
        persons=persons,
    )
    with closing(tables):  # the stream's threads stop before the connection is used again
        panel = pa.concat_tables([CHUNK_SCHEMA.empty_table(), *tables])
    name = sess.name("panelm")
    sess.con.register(name, panel)
    return name


def register_pairs(sess: Session, pairs: TableLike) -> tuple[str, str, pa.Table | pd.DataFrame]:
    """Register pairs with a row number ``_row`` (input order); return (pairs view, persons view, pairs)."""
    if isinstance(pairs, str | Path):
        pairs = duckdb.read_parquet(str(pairs)).to_arrow_table()
    if isinstance(pairs, duckdb.DuckDBPyRelation):
        pairs = pairs.to_arrow_table()
    if not isinstance(pairs, pd.DataFrame | pa.Table):
        raise InputError(
            f"pairs: expected a DataFrame, Arrow table or DuckDB relation; got {type(pairs).__name__}."
        )
    cols = list(pairs.columns) if isinstance(pairs, pd.DataFrame) else pairs.column_names
    missing = [c for c in REQUIRED_COLUMNS["pairs"] if c not in cols]
    if missing:
        raise InputError(f"pairs lack column(s) {', '.join(missing)}; they have {', '.join(map(str, cols))}.")
    n = len(pairs)

    def text(col: str) -> pa.Array | pa.ChunkedArray:
        if isinstance(pairs, pd.DataFrame):
            arr = (
                pa.array(pairs[col].to_numpy(dtype=object), from_pandas=True)
                if n
                else pa.array([], pa.string())
            )
        else:
            arr = pairs[col]
        try:
            return arr.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise InputError(f"pairs: column {col} must be text (got {arr.type}).") from None

    keys = pa.table(
        {
            "_row": pa.array(np.arange(n, dtype=np.int64)),
            "person_id": text("person_id"),
            "ref_month": text("ref_month"),
        }
    )
    raw = sess.name("pairs_raw")
    sess.con.register(raw, keys)
    bad = sess.con.execute(
        f"""SELECT count(*) FILTER (WHERE ref_month IS NULL OR NOT regexp_full_match(ref_month, '\\d{{4}}-(0[1-9]|1[0-2])')),
                   count(*) FILTER (WHERE person_id IS NULL)
            FROM {raw}"""
    ).fetchone()
    if bad[0] or bad[1]:
        raise InputError(
            f"pairs: {bad[0]} row(s) with a ref_month that is not 'YYYY-MM' text and {bad[1]} with an empty "
            "person_id."
        )
    view = sess.name("pairs")
    sess.con.execute(
        f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT _row, person_id, {months.sql_index('ref_month')} AS u FROM {raw}"
    )
    persons = sess.name("persons")
    sess.con.execute(f"CREATE OR REPLACE TEMP VIEW {persons} AS SELECT DISTINCT person_id FROM {raw}")
    return view, persons, pairs


def attach(pairs: pd.DataFrame | pa.Table, result: pa.Table, output: str, repeat: np.ndarray | None = None):
    """Input columns (rows repeated by ``repeat`` if given) followed by the ``result`` columns."""
    check_no_clash(pairs, result.column_names)
    if isinstance(pairs, pd.DataFrame):
        out = pairs.iloc[repeat].reset_index(drop=True) if repeat is not None else pairs
        res = result.to_pandas()
        res.index = out.index
        out = pd.concat([out, res], axis=1)
        if output == "arrow":
            return pa.Table.from_pandas(out, preserve_index=False)
        return out
    base = pairs.take(pa.array(repeat)) if repeat is not None else pairs
    for c in result.column_names:
        base = base.append_column(c, result[c])
    return base if output == "arrow" else base.to_pandas()


def check_no_clash(pairs: pd.DataFrame | pa.Table, names) -> None:
    """:class:`InputError` when the pairs already have a column of the result's ``names``."""
    clash = [
        c for c in names if c in (pairs.columns if isinstance(pairs, pd.DataFrame) else pairs.column_names)
    ]
    if clash:
        raise InputError(f"pairs already have column(s) {', '.join(clash)}; drop or rename them first.")


def check_output(output: str) -> None:
    """:class:`InputError` unless ``output`` is ``"pandas"`` or ``"arrow"``."""
    if output not in ("pandas", "arrow"):
        raise InputError(f"output must be 'pandas' or 'arrow'; got {output!r}.")


def panel_view(sess: Session, panel: TableLike) -> str:
    """A view of a precomputed :func:`~finsam_effekt.panel.person_months` panel with its month index ``m``."""
    p = register_input(sess, "person_months", panel)
    name = sess.name("panelm")
    sess.con.execute(
        f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT *, {months.sql_index('month')} AS m FROM {p}"
    )
    return name
