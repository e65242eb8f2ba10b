"""The panel read as a stream of dense person × month matrices, for the cohort's full candidate pool (issue 14).

At national scale the cohort has ~10⁷ (person, month u) pairs, each needing 24 months of history: as a join of
the pairs with their panel rows and a grouped aggregate (:func:`~finsam_effekt.panel.history_features`) that is
~2.4·10⁸ joined rows. The panel stage stores the panel sorted by person, so it can instead be read a row group
at a time: every person's months form one dense row of a small matrix (persons of the batch × months), and every
history feature of a pair is a read of ``u−1, u−2, …`` in its person's row — NumPy indexing, no join, no hash
table. :func:`history_features_stream` gives exactly the columns of :func:`history_features` (same definitions,
same values; tests compare the two), and :func:`support_month_counts` the eligibility rule's count of months
with public support before each reference month.

The stream needs each person's rows together and in month order within a Parquet file (the panel stage writes
them so); a panel that is not (a user's file written in another order, a person in two files) raises
:class:`NotPersonSorted` before any result is returned, and the caller uses the join instead. In-memory panels
are sorted first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import months
from ..errors import InputError
from ..schema import (
    HISTORY_WINDOWS,
    MAIN_SOURCE_GROUPS,
    SPELL_GROUPS,
    STATUS_MONTHS,
    SUPPORT_SOURCES,
    outcome_column,
)
from ..tables import COUNT_MAX, COUNT_MIN, POSITION_COLUMN, Session, TableLike, is_exact_float32, n_rows
from .build import VALUE_COLUMNS, check_threshold, register_input
from .features import (
    PRE_PERIOD_MEAN_WINDOW,
    PRE_PERIOD_MONTHS,
    PRE_PERIOD_OUTCOMES,
    pre_period_columns,
    require_unique,
)

#: Rows of an in-memory panel per batch of the stream (a Parquet panel is read a row group at a time).
ROWS_PER_BATCH = 1_000_000


class NotPersonSorted(Exception):
    """The panel's rows are not grouped by person in month order (the stream cannot read it)."""


@dataclass(frozen=True)
class PanelBatch:
    """Dense panel rows of a batch of persons: ``values[c][i, j]`` is column ``c`` of person ``codes[i]`` in month
    ``m0 + j`` (0 where the sparse panel has no row), ``present[i, j]`` whether that row exists."""

    codes: np.ndarray
    values: dict[str, np.ndarray]
    present: np.ndarray


def _parquet_files(panel: str | Path) -> list[Path]:
    """The Parquet files of a panel path (a file, or a directory of parts, in name order)."""
    p = Path(panel)
    if not p.exists():
        raise InputError(f"person_months: file or directory {str(p)!r} does not exist.")
    files = sorted(p.rglob("*.parquet")) if p.is_dir() else [p]
    if not files:
        raise InputError(f"person_months: no Parquet files in {str(p)!r}.")
    return files


def _require(have: Sequence[str], need: list[str], where: str = "") -> None:
    missing = [c for c in need if c not in have]
    if missing:
        raise InputError(f"person_months{where} lacks column(s) {', '.join(missing)}.")


def _parts(panel: TableLike, columns: list[str]) -> Iterator[Iterator[pa.Table]]:
    """The panel as parts (files), each an iterator of tables in stored order; in-memory panels as one sorted part."""
    need = ["person_id", "month", *columns]
    if isinstance(panel, str | Path):
        for f in _parquet_files(panel):
            pf = pq.ParquetFile(f, read_dictionary=["person_id", "month"])
            _require(pf.schema_arrow.names, need, f" ({f})")
            yield (pf.read_row_group(i, columns=need) for i in range(pf.num_row_groups))
        return
    if isinstance(panel, duckdb.DuckDBPyRelation):
        panel = panel.to_arrow_table()
    if isinstance(panel, pd.DataFrame):
        _require(list(panel.columns), need)
        panel = pa.Table.from_pandas(panel[need], preserve_index=False)
    if not isinstance(panel, pa.Table):
        raise InputError(f"person_months: expected a table or a Parquet path; got {type(panel).__name__}.")
    _require(panel.column_names, need)
    t = panel.select(need)
    t = t.set_column(0, "person_id", t["person_id"].cast(pa.string()))
    t = t.set_column(1, "month", t["month"].cast(pa.string()))
    t = t.sort_by([("person_id", "ascending"), ("month", "ascending")])
    yield (t.slice(s, ROWS_PER_BATCH) for s in range(0, max(len(t), 1), ROWS_PER_BATCH))


def _dictionary(col: pa.ChunkedArray | pa.Array, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(dictionary values as text, index of each row into them) of a column; no missing values allowed."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if not pa.types.is_dictionary(arr.type):
        arr = pc.dictionary_encode(arr.cast(pa.string()))
    if arr.null_count:
        raise InputError(f"person_months: {arr.null_count} row(s) without {what}.")
    values = arr.dictionary.cast(pa.string()).to_numpy(zero_copy_only=False)
    return values, arr.indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)


def row_groups(panel: TableLike) -> int:
    """Number of pieces :func:`panel_batches` reads (row groups of a Parquet panel), for a progress display."""
    if isinstance(panel, str | Path):
        return sum(pq.ParquetFile(f).num_row_groups for f in _parquet_files(panel))
    return max(1, -(-n_rows(panel) // ROWS_PER_BATCH))


def panel_batches(
    panel: TableLike,
    persons: pd.Index,
    m0: int,
    m1: int,
    columns: Sequence[str],
    progress: Callable[[], object] | None = None,
) -> Iterator[PanelBatch]:
    """Dense months ``m0 .. m1`` of ``columns`` for the panel's persons that are in ``persons`` (a sorted index of
    unique pseudonyms; a person's code is its position there), batch by batch (a row group of a Parquet file);
    ``progress`` is called after each piece read (:func:`row_groups` of them).

    Raises :class:`NotPersonSorted` when a person's rows are not together in (person, month) order within a file,
    or a person is in two files: the batch would see only part of a history.
    """
    if not persons.is_monotonic_increasing or not persons.is_unique:
        raise ValueError("panel_batches: persons must be a sorted index of unique pseudonyms")
    cols = list(columns)
    width = m1 - m0 + 1
    seen = np.zeros(len(persons), dtype=bool)

    def dense(code: np.ndarray, m: np.ndarray, vals: dict[str, np.ndarray]) -> PanelBatch:
        starts = np.flatnonzero(np.r_[True, code[1:] != code[:-1]]) if len(code) else np.zeros(0, np.int64)
        codes = code[starts]
        if seen[codes].any():
            raise NotPersonSorted("a person's rows are in more than one place")
        seen[codes] = True
        row = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(code)]))
        col = m - m0
        present = np.zeros((len(codes), width), dtype=bool)
        present[row, col] = True
        out = {}
        for c in cols:
            v = np.zeros((len(codes), width), dtype=vals[c].dtype)
            v[row, col] = vals[c]
            out[c] = v
        return PanelBatch(codes, out, present)

    for part in _parts(panel, cols):
        carry: tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]] | None = None
        last_key = -1
        for tbl in part:
            pvals, pidx = _dictionary(tbl["person_id"], "a person_id")
            pcode = persons.get_indexer(pvals)
            mvals, midx = _dictionary(tbl["month"], "a month")
            mcode = (
                np.asarray(months.to_index(mvals), dtype=np.int64) if len(mvals) else np.zeros(0, np.int64)
            )
            code, m = pcode[pidx], mcode[midx]
            keep = (code >= 0) & (m >= m0) & (m <= m1)
            code, m = code[keep], m[keep]
            vals = {}
            for c in cols:
                a = tbl[c]
                if a.null_count:
                    a = pc.fill_null(a, 0)
                v = a.to_numpy()
                vals[c] = v[keep]
            if carry is not None:
                code = np.concatenate([carry[0], code])
                m = np.concatenate([carry[1], m])
                vals = {c: np.concatenate([carry[2][c], vals[c]]) for c in cols}
                carry = None
            if not len(code):
                if progress is not None:
                    progress()
                continue
            key = code * width + (m - m0)
            if key[0] <= last_key or (len(key) > 1 and (np.diff(key) <= 0).any()):
                raise NotPersonSorted("rows not in (person, month) order")
            # the last person of the row group may go on in the next one: keep its rows back
            cut = int(np.searchsorted(code, code[-1]))
            carry = (code[cut:], m[cut:], {c: vals[c][cut:] for c in cols})
            if cut:
                last_key = int(key[cut - 1])
                yield dense(code[:cut], m[:cut], {c: vals[c][:cut] for c in cols})
            if progress is not None:
                progress()
        if carry is not None:  # never empty: it holds the last person read
            yield dense(*carry)


def pair_batches(
    person: pd.Categorical,
    m0: int,
    m1: int,
    columns: Sequence[str],
    panel: TableLike,
    progress: Callable[[], object] | None = None,
) -> Iterator[tuple[PanelBatch, np.ndarray, np.ndarray]]:
    """For pairs whose persons are ``person`` (a categorical over sorted pseudonyms, one entry per pair): each
    :func:`panel_batches` batch with the pairs whose persons it holds, as ``(batch, rows, lp)`` — the pairs'
    positions and their persons' rows in the batch's matrices. Pairs of persons without panel rows never appear."""
    persons = pd.Index(person.categories.astype(object))
    if not persons.is_monotonic_increasing:
        raise ValueError("pair_batches: person categories must be sorted")
    code = person.codes.astype(np.int32)  # per pair: 32 bits (a national cohort has ~5·10⁷ pairs)
    order = np.argsort(code, kind="stable").astype(np.int32)
    sorted_code = code[order]
    for b in panel_batches(panel, persons, m0, m1, list(columns), progress):
        lo, hi = np.searchsorted(sorted_code, [b.codes[0], b.codes[-1] + 1])
        rows = order[lo:hi]
        lp = np.minimum(np.searchsorted(b.codes, code[rows]), len(b.codes) - 1)
        mine = b.codes[lp] == code[rows]
        if mine.any():
            yield b, rows[mine], lp[mine]


def support_month_counts(
    panel: TableLike, persons: pd.Index, ref_months: np.ndarray, lookback: int
) -> np.ndarray:
    """``n[i, j] = #{m in u_j−L..u_j−1 : public_support(person i, m) = 1}`` for every person of ``persons`` (a
    sorted index of unique pseudonyms) and reference month ``u_j`` of ``ref_months``, with L = ``lookback``: the
    count behind the ``recent_public_support`` eligibility rule, for the whole pool at once (int16; 0 for
    persons without panel rows). From prefix sums over each person's dense months:
    ``n = S(u−1) − S(u−L−1)``, ``S(t) = Σ_{m ≤ t} 1[public_support(m) = 1]`` (integers, exact)."""
    ref = np.asarray(ref_months, dtype=np.int64)
    out = np.zeros((len(persons), len(ref)), dtype=np.int16)
    if not len(ref) or not len(persons):
        return out
    m0, m1 = int(ref.min()) - int(lookback), int(ref.max()) - 1
    hi = ref - m0  # S(u − 1) is the prefix sum over columns 0 .. u − 1 − m0, i.e. cs[:, u − m0]
    lo = ref - int(lookback) - m0
    for b in panel_batches(panel, persons, m0, m1, ["public_support"]):
        ps = (b.values["public_support"] == 1).astype(np.int32)
        cs = np.zeros((len(b.codes), ps.shape[1] + 1), dtype=np.int32)
        np.cumsum(ps, axis=1, out=cs[:, 1:])
        out[b.codes] = (cs[:, hi] - cs[:, lo]).astype(np.int16)
    return out


def _main_source(b: PanelBatch, threshold: float) -> np.ndarray:
    """Index in ``schema.SUPPORT_SOURCES`` of each dense month's main source (``none`` where the panel has no row):
    the rule of :func:`~finsam_effekt.panel.features.main_source_sql`, in NumPy (kronor and quarter days rounded
    half away from zero, as SQL ``round``)."""

    def round_half_up(x: np.ndarray) -> np.ndarray:  # x ≥ 0
        f = np.floor(x)
        return np.where(x - f >= 0.5, f + 1, f).astype(np.int64)

    n = len(MAIN_SOURCE_GROUPS)
    best = None
    for i, g in enumerate(MAIN_SOURCE_GROUPS):
        sek = b.values["social_assistance_sek" if g == "social_assistance" else f"sek_{g}"]
        key = round_half_up(np.maximum(sek, 0)) * 10000 + (n - i)
        if g != "social_assistance":
            key += round_half_up(np.maximum(b.values[f"days_{g}"], 0) * 4) * 10
        best = key if best is None else np.maximum(best, key)
    work, none = SUPPORT_SOURCES.index("work"), SUPPORT_SOURCES.index("none")
    public = n + 1 - best % 10
    private = np.where(b.values["earnings_sek"] >= threshold, work, none)
    src = np.where(b.values["public_support"] == 0, private, public)
    return np.where(b.present, src, none).astype(np.int8)


class _Column:
    """A full-length output column filled batch by batch: float32 while every value is exactly a float32 (as
    ``tables.compact`` stores it), float64 from the first value that is not; counts of months (``"int"``) as
    int8 while every count fits (``tables.narrow_counts``), int32 from the first that does not."""

    def __init__(self, n: int, kind: str):
        self.kind = kind
        self.data = np.zeros(n, dtype=np.float32 if kind == "float" else np.int8)

    def put(self, rows: np.ndarray, values: np.ndarray) -> None:
        if self.kind == "float" and self.data.dtype == np.float32 and not is_exact_float32(values):
            self.data = self.data.astype(np.float64)
        elif self.kind == "int" and self.data.dtype == np.int8 and len(values):
            if values.min() < COUNT_MIN or values.max() > COUNT_MAX:
                self.data = self.data.astype(np.int32)
        self.data[rows] = values


#: Rows per piece of the age column (a whole column's values would otherwise be copied several times at once).
_PIECE = 1 << 20


def _source_categorical(index: np.ndarray) -> pd.Categorical:
    """Indices into ``schema.SUPPORT_SOURCES`` as a categorical with the levels that occur, sorted (as
    ``tables.compact`` makes a text column)."""
    levels = np.array(SUPPORT_SOURCES, dtype=object)
    order = np.argsort(levels)
    rank = np.empty(len(levels), dtype=np.int8)
    rank[order] = np.arange(len(levels))
    cat = pd.Categorical.from_codes(rank[index], categories=pd.Index(levels[order], dtype=object))
    return cat.remove_unused_categories()


def history_features_stream(
    person_id: pd.Categorical,
    u: np.ndarray,
    panel: TableLike,
    population: TableLike | None,
    kommun_forbund: TableLike | None,
    *,
    self_support_threshold: float,
    work_lookback: int = 24,
    pre_period: bool | str | Path = False,
    con: duckdb.DuckDBPyConnection | None = None,
    progress=None,
) -> pd.DataFrame:
    """The columns of :func:`~finsam_effekt.panel.history_features` for pairs (``person_id[i]``, month index
    ``u[i]``), computed from the person-sorted panel as a stream (:func:`panel_batches`), in the compact exact
    types of ``tables.compact`` (counts int32; amounts float32 where every value is exactly one, else float64;
    text as categories with sorted levels). Same definitions and values as the join (see that function's
    docstring): for a pair with dense history row ``x`` of its person, ``x[u−k]`` for k = 1..w is read directly,
    and a window's count or sum is over those w entries. Persons without panel rows get the features of an empty
    history. Raises :class:`NotPersonSorted` (before returning anything) for a panel the stream cannot read.

    ``person_id`` is a categorical (its categories the sorted pseudonyms), ``u`` integer month indices, one per
    pair; ``progress`` (optional) is called once per piece of the panel read (:func:`row_groups`).
    ``pre_period``: True adds the pre-period path (``pre_period_columns()``) as columns; a path writes it to that
    Parquet file instead, a batch at a time in the order the panel is read, as float64 with each pair's position
    in column ``tables.POSITION_COLUMN`` (one row per pair; ``tables.read_positioned`` puts them back in pair
    order) — at national scale the 24 columns would be ~5 GB more in memory.
    """
    threshold = check_threshold(self_support_threshold)
    if work_lookback < 1:
        raise InputError(f"work_lookback must be at least 1 month; got {work_lookback}.")
    L = int(work_lookback)
    look = max(max(HISTORY_WINDOWS), L)
    if pre_period:
        look = max(look, *PRE_PERIOD_MONTHS, PRE_PERIOD_MEAN_WINDOW)
    n = len(u)
    # per-pair arrays in 32 bits (month indices and person codes fit): a national cohort has ~5·10⁷ pairs
    u = np.asarray(u, dtype=np.int32)
    code = person_id.codes.astype(np.int32)

    cols: dict[str, _Column] = {}
    for w in HISTORY_WINDOWS:
        cols[f"ps_months_{w}"] = _Column(n, "int")
    for g in SPELL_GROUPS:
        for w in HISTORY_WINDOWS:
            cols[f"days_{g}_{w}"] = _Column(n, "float")
    for w in (12, 24):
        cols[f"sa_months_{w}"] = _Column(n, "int")
    cols["benefit_sek_12"] = _Column(n, "float")
    cols["earnings_12"] = _Column(n, "float")
    cols["work_months_12"] = _Column(n, "int")
    cols["months_since_work"] = _Column(n, "int")
    for k in STATUS_MONTHS:
        cols[f"ps_u{k}"] = _Column(n, "int")
    src_codes = {k: np.full(n, SUPPORT_SOURCES.index("none"), dtype=np.int8) for k in STATUS_MONTHS}
    pre_names = pre_period_columns() if pre_period else []
    writer = None
    if isinstance(pre_period, str | Path):
        fields = [(POSITION_COLUMN, pa.int64()), *((c, pa.float64()) for c in pre_names)]
        writer = pq.ParquetWriter(pre_period, pa.schema(fields))
    else:
        for c in pre_names:
            cols[c] = _Column(n, "float")
    steps = np.arange(1, look + 1)

    def features(b: PanelBatch, rows: np.ndarray, lp: np.ndarray, m0: int) -> None:
        """Every feature of the pairs ``rows`` (their persons at rows ``lp`` of the batch's matrices)."""
        at = (u[rows] - m0)[:, None] - steps[None, :]  # column of month u − k, k = 1..look
        width = b.present.shape[1]
        # the cells [lp, at] of the batch's (persons × months) matrices as one flat index
        flat = lp[:, None] * width + at

        def hist(values: np.ndarray, w: int) -> np.ndarray:
            return values.ravel()[flat[:, :w]]

        ps = hist(b.values["public_support"], look) == 1
        for w in HISTORY_WINDOWS:
            cols[f"ps_months_{w}"].put(rows, ps[:, :w].sum(axis=1))
        for g in SPELL_GROUPS:
            d = hist(b.values[f"days_{g}"], max(HISTORY_WINDOWS))
            for w in HISTORY_WINDOWS:
                cols[f"days_{g}_{w}"].put(rows, d[:, :w].sum(axis=1))
        sa = hist(b.values["social_assistance_sek"], 24) > 0
        for w in (12, 24):
            cols[f"sa_months_{w}"].put(rows, sa[:, :w].sum(axis=1))
        cols["benefit_sek_12"].put(rows, hist(b.values["benefit_sek"], 12).sum(axis=1))
        e = hist(b.values["earnings_sek"], max(L, 12))
        cols["earnings_12"].put(rows, e[:, :12].sum(axis=1))
        worked = e >= threshold
        cols["work_months_12"].put(rows, worked[:, :12].sum(axis=1))
        hit = worked[:, :L]
        cols["months_since_work"].put(rows, np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, L + 1))
        src = _main_source(b, threshold)
        for k in STATUS_MONTHS:
            cols[f"ps_u{k}"].put(rows, ps[:, k - 1].astype(np.int32))
            src_codes[k][rows] = src.ravel()[flat[:, k - 1]]
        pre: dict[str, np.ndarray] = {POSITION_COLUMN: rows.astype(np.int64)}
        for o in PRE_PERIOD_OUTCOMES if pre_names else ():
            x = hist(b.values[o], PRE_PERIOD_MEAN_WINDOW).astype(np.float64)
            for k in PRE_PERIOD_MONTHS:
                pre[f"{o}_u{k}"] = x[:, k - 1]
            pre[f"{o}_mean{PRE_PERIOD_MEAN_WINDOW}"] = x.sum(axis=1) / PRE_PERIOD_MEAN_WINDOW
        if writer is not None:
            writer.write_table(pa.table(pre))
        else:
            for c in pre_names:
                cols[c].put(rows, pre[c])

    done = np.zeros(n, dtype=bool)
    try:
        if n:
            m0, m1 = int(u.min()) - look, int(u.max()) - 1
            for b, rows, lp in pair_batches(person_id, m0, m1, VALUE_COLUMNS, panel, progress):
                features(b, rows, lp, m0)
                done[rows] = True
            rest = np.flatnonzero(~done)
            if len(rest):  # persons without panel rows in the months read: an empty history
                width = m1 - m0 + 1
                empty = PanelBatch(
                    np.zeros(1, np.int64),
                    {c: np.zeros((1, width)) for c in VALUE_COLUMNS},
                    np.zeros((1, width), dtype=bool),
                )
                features(empty, rest, np.zeros(len(rest), np.int64), m0)
    except BaseException:
        if writer is not None:
            writer.close()
            Path(pre_period).unlink(missing_ok=True)  # type: ignore[arg-type]
        raise
    if writer is not None:
        writer.close()

    out: dict[str, pd.Series | np.ndarray | pd.Categorical] = {
        c: cols[c].data for c in cols if c not in pre_names
    }
    for k in STATUS_MONTHS:
        out[f"source_u{k}"] = _source_categorical(src_codes[k])
    persons = pd.Index(person_id.categories.astype(object))
    out.update(_demographics(persons, code, u, population, kommun_forbund, con))
    for c in pre_names if writer is None else ():
        out[c] = cols[c].data
    return pd.DataFrame(out, copy=False)


def _demographics(
    persons: pd.Index,
    code: np.ndarray,
    u: np.ndarray,
    population: TableLike | None,
    kommun_forbund: TableLike | None,
    con: duckdb.DuckDBPyConnection | None,
) -> dict[str, object]:
    """``age`` (float: year of u − birth year) and the demographics as text categories, per pair: the population
    (and the kommun → förbund table) joined once per person in DuckDB with the casts of ``history_features``."""
    n = len(code)
    if population is None:
        empty = pd.Categorical([None] * n, categories=pd.Index([], dtype=object))
        return {"age": np.full(n, np.nan, dtype=np.float32), **{c: empty for c in ("sex", "education", "birth_region", "kommun")},
                "forbund_id": empty}  # fmt: skip
    sess = Session.open(con)
    try:
        pop = register_input(sess, "population", population)
        require_unique(sess, pop, "person_id", "population")
        pv = sess.name("persons")
        sess.con.register(pv, pa.table({"_code": np.arange(len(persons)), "person_id": persons.to_numpy()}))
        kf_join, kf_col = "", "CAST(NULL AS VARCHAR) AS forbund_id"
        if kommun_forbund is not None:
            kf = register_input(sess, "kommun_forbund", kommun_forbund)
            require_unique(sess, kf, "kommun", "kommun_forbund")
            kf_join = f"LEFT JOIN {kf} kf ON CAST(kf.kommun AS VARCHAR) = CAST(pop.kommun AS VARCHAR)"
            kf_col = "CAST(kf.forbund_id AS VARCHAR) AS forbund_id"
        t = sess.con.sql(
            f"""SELECT pr._code, CAST(pop.birth_year AS BIGINT) AS birth_year,
                       CAST(pop.sex AS VARCHAR) AS sex, CAST(pop.education AS VARCHAR) AS education,
                       CAST(pop.birth_region AS VARCHAR) AS birth_region, CAST(pop.kommun AS VARCHAR) AS kommun,
                       {kf_col}
                FROM {pv} pr LEFT JOIN {pop} pop ON CAST(pop.person_id AS VARCHAR) = pr.person_id {kf_join}
                ORDER BY pr._code"""
        ).to_arrow_table()
    finally:
        sess.close()
    by = t["birth_year"].to_pandas().to_numpy(dtype=float)
    age = _Column(n, "float")
    for s in range(0, n, _PIECE):  # a piece at a time: no copies of the whole column
        e = min(n, s + _PIECE)
        age.put(np.arange(s, e), (u[s:e] // 12 - by[code[s:e]]).astype(np.float64))
    out: dict[str, object] = {"age": age.data}
    for c in ("sex", "education", "birth_region", "kommun", "forbund_id"):
        per_person = pd.Categorical(t[c].to_pandas())
        codes = per_person.codes[code] if n else np.zeros(0, np.int8)
        out[c] = pd.Categorical.from_codes(codes, categories=per_person.categories).remove_unused_categories()
    return out


def _window_values(
    person: pd.Categorical, u: np.ndarray, panel: TableLike, columns: Sequence[str], lo: int, hi: int
) -> dict[str, np.ndarray]:
    """``x[o][i, r − lo] = o(u_i + r)`` for r = lo..hi (0 where the panel has no row), per column ``o``."""
    width = hi - lo + 1
    raw = {o: np.zeros((len(u), width)) for o in columns}
    if len(u):
        m0, m1 = int(u.min()) + lo, int(u.max()) + hi
        steps = np.arange(width)
        for b, rows, lp in pair_batches(person, m0, m1, columns, panel):
            flat = (lp * b.present.shape[1] + u[rows] + lo - m0)[:, None] + steps[None, :]
            for o in columns:
                raw[o][rows] = b.values[o].ravel()[flat]
    return raw


def _censored(month: np.ndarray, censor_month: np.ndarray, start: int | None, last: int) -> np.ndarray:
    """Months after ``last``, before ``start`` or at/after the person's censoring month (NaN: none)."""
    flag = (month > last) | (censor_month <= month)  # NaN compares False
    if start is not None:
        flag |= month < start
    return flag


def horizon_values(
    person: pd.Categorical,
    u: np.ndarray,
    panel: TableLike,
    columns: Sequence[str],
    horizons: Sequence[int],
    *,
    ends: dict[str, int],
    start: int | None,
    censor_month: np.ndarray,
) -> dict[str, np.ndarray]:
    """The values of :func:`~finsam_effekt.panel.horizon_outcomes` from the person-sorted panel as a stream:
    for each horizon k and column o, ``outcome_column(o, k)`` = o(u + k) and ``outcome_column(o, k,
    "cumulative")`` = Σ_{j=1..k} o(u + j) (implicit zeros where the panel has no row), both NaN when month u + k
    is censored for o: after ``ends[o]``, before ``start`` or at/after the pair's ``censor_month`` (NaN: none).
    The cumulative sums run over u+1, u+2, … in order. Raises :class:`NotPersonSorted` like
    :func:`panel_batches`."""
    hs = [int(k) for k in horizons]
    u = np.asarray(u, dtype=np.int64)
    raw = _window_values(person, u, panel, columns, 1, max(hs))
    cm = np.asarray(censor_month, dtype=float)
    out = {}
    for k in hs:
        for o in columns:
            flag = _censored(u + k, cm, start, ends[o])
            out[outcome_column(o, k, "status")] = np.where(flag, np.nan, raw[o][:, k - 1])
            out[outcome_column(o, k, "cumulative")] = np.where(
                flag, np.nan, raw[o][:, :k].cumsum(axis=1)[:, -1]
            )
    return out


def path_values(
    person: pd.Categorical,
    u: np.ndarray,
    panel: TableLike,
    columns: Sequence[str],
    window: tuple[int, int],
    *,
    end: int,
    ends: dict[str, int],
    start: int | None,
    censor_month: np.ndarray,
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """The values of :func:`~finsam_effekt.panel.outcome_paths` from the person-sorted panel as a stream, pair by
    pair and month ``u + r`` for r in ``window`` (row ``i · (hi − lo + 1) + (r − lo)``): (month index, values of
    each column, censored). A month is censored when it is after ``end``, before ``start`` or at/after the pair's
    ``censor_month`` (NaN: none); a column's value is NaN when the month is censored for it (after ``ends[o]``
    instead of ``end``), else the panel's value (0 where the panel has no row). Raises :class:`NotPersonSorted`
    like :func:`panel_batches`."""
    lo, hi = int(window[0]), int(window[1])
    u = np.asarray(u, dtype=np.int64)
    raw = _window_values(person, u, panel, columns, lo, hi)
    month = (u[:, None] + np.arange(lo, hi + 1)[None, :]).ravel()
    cm = np.repeat(np.asarray(censor_month, dtype=float), hi - lo + 1)
    values = {}
    for o in columns:  # in place: each column's window is written over, not copied (15 × 10⁷ values at scale)
        v = raw.pop(o).reshape(-1)
        v[_censored(month, cm, start, ends.get(o, end))] = np.nan
        values[o] = v
    return month, values, _censored(month, cm, start, end)
