"""Benchmarks of the person-month panel (issues 5 and 14).

Two cases:

``big``
    5·10⁷ benefit spells over 5·10⁶ persons (plus social assistance, earnings and population), generated in the
    script with deterministic hash-based pseudo-random numbers (DuckDB ``hash``) and written to Parquet by a child
    process, so the measured peak RSS is that of the panel work only. Timed: the full panel to Parquet, then the
    history features for all participants plus 5·10⁶ (person, month) control pairs. Each step prints wall and CPU
    seconds (all threads; on a shared machine CPU/2 is the proxy for an idle 2-core wall time).
    Targets: ≤ 3 min on an idle 2-core machine and ≤ 6 GiB peak RSS.
``ratio``
    10⁶ spells over 10⁵ persons: :func:`finsam_effekt.panel.person_months` against a straightforward
    (vectorised) pandas implementation of the same rules kept below, checked to give the same panel (rows exact,
    values to rtol 1e-12: the two add the same terms in different orders). The two run alternately ``--repeat``
    times in one process; the best wall and CPU time of each are compared. Target: ≥ 10× faster.

Usage::

    nice -n 10 .venv/bin/python benchmarks/bench_panel.py ratio
    nice -n 10 .venv/bin/python benchmarks/bench_panel.py big --dir /tmp/bench_panel

Each case prints its figures; record them in ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from finsam_effekt import panel
from finsam_effekt.schema import BENEFIT_GROUPS, DEFAULT_SELF_SUPPORT_THRESHOLD_SEK, SPELL_GROUPS

CODES = list(BENEFIT_GROUPS)
END_MONTH = "2024-12"


# ----------------------------------------------------------------------------------------------- big case
def generate_big(out: Path, n_persons: int, n_spells: int, n_controls: int, threads: int) -> None:
    """Write spells, social assistance, earnings, population and pairs as Parquet (deterministic)."""
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}; SET memory_limit = '4GB'; SET preserve_insertion_order = false")
    codes = "[" + ", ".join(f"'{c}'" for c in CODES) + "]"

    def copy(sql: str, name: str) -> None:
        t = time.perf_counter()
        con.execute(f"COPY ({sql}) TO '{out / name}.parquet' (FORMAT parquet, COMPRESSION zstd)")
        print(f"  generated {name} in {time.perf_counter() - t:.1f} s", flush=True)

    # Spells: start uniform over 2015-01-01 + 0..3649 days, length 1..180 days, 2 % open, extents 1/4..1.
    copy(
        f"""SELECT CAST(hash(i, 1) % {n_persons} AS VARCHAR) AS person_id,
                   {codes}[CAST(1 + hash(i, 2) % 7 AS BIGINT)] AS benefit,
                   DATE '2015-01-01' + CAST(hash(i, 3) % 3650 AS INTEGER) AS from_date,
                   CASE WHEN hash(i, 4) % 50 = 0 THEN NULL
                        ELSE DATE '2015-01-01' + CAST(hash(i, 3) % 3650 + hash(i, 5) % 180 AS INTEGER) END
                        AS to_date,
                   (1 + hash(i, 6) % 4) / 4.0 AS extent,
                   CAST(50 * (1 + hash(i, 5) % 180) AS DOUBLE) AS amount_sek
            FROM range({n_spells}) t(i)""",
        "benefit_spells",
    )
    # Social assistance: 2 rows per person; earnings: 4 rows per person.
    copy(
        f"""SELECT CAST(hash(i, 11) % {n_persons} AS VARCHAR) AS person_id,
                   printf('%04d-%02d', 2015 + (hash(i, 12) % 120) // 12, (hash(i, 12) % 120) % 12 + 1) AS month,
                   CAST(1000 + hash(i, 13) % 9000 AS DOUBLE) AS amount_sek
            FROM range({n_persons * 2}) t(i)""",
        "social_assistance",
    )
    copy(
        f"""SELECT CAST(hash(i, 21) % {n_persons} AS VARCHAR) AS person_id,
                   printf('%04d-%02d', 2015 + (hash(i, 22) % 120) // 12, (hash(i, 22) % 120) % 12 + 1) AS month,
                   CAST(hash(i, 23) % 40000 AS DOUBLE) AS earnings_sek
            FROM range({n_persons * 4}) t(i)""",
        "earnings",
    )
    copy(
        f"""SELECT CAST(i AS VARCHAR) AS person_id, CASE WHEN i % 2 = 0 THEN 'K' ELSE 'M' END AS sex,
                   CAST(1955 + hash(i, 31) % 50 AS BIGINT) AS birth_year,
                   ['compulsory', 'upper_secondary', 'post_secondary'][CAST(1 + hash(i, 32) % 3 AS BIGINT)] AS education,
                   lpad(CAST(100 + hash(i, 33) % 290 AS VARCHAR), 4, '0') AS kommun,
                   ['sweden', 'nordic', 'europe', 'outside_europe'][CAST(1 + hash(i, 34) % 4 AS BIGINT)] AS birth_region,
                   CAST(NULL AS DATE) AS immigration_date,
                   CASE WHEN hash(i, 35) % 100 = 0 THEN DATE '2016-01-01' + CAST(hash(i, 36) % 3000 AS INTEGER)
                   END AS emigration_date,
                   CASE WHEN hash(i, 37) % 100 = 0 THEN DATE '2016-01-01' + CAST(hash(i, 38) % 3000 AS INTEGER)
                   END AS death_date
            FROM range({n_persons}) t(i)""",
        "population",
    )
    # Pairs: 1 % of persons as participants at a start month 2017..2023, plus n_controls control person-months.
    copy(
        f"""SELECT CAST(i AS VARCHAR) AS person_id,
                   printf('%04d-%02d', 2017 + (hash(i, 41) % 84) // 12, (hash(i, 41) % 84) % 12 + 1) AS ref_month,
                   1 AS treated
            FROM range({n_persons}) t(i) WHERE hash(i, 42) % 100 = 0
            UNION ALL
            SELECT CAST(hash(i, 43) % {n_persons} AS VARCHAR) AS person_id,
                   printf('%04d-%02d', 2017 + (hash(i, 44) % 84) // 12, (hash(i, 44) % 84) % 12 + 1) AS ref_month,
                   0 AS treated
            FROM range({n_controls}) t(i)""",
        "pairs",
    )
    con.close()


def run_big(data: Path, threads: int, memory_limit: str, partitions: int = 1) -> None:
    con = duckdb.connect()
    tmp = data / "duckdb_tmp"
    tmp.mkdir(exist_ok=True)
    con.execute(
        f"SET threads = {threads}; SET memory_limit = '{memory_limit}'; SET temp_directory = '{tmp}';"
        " SET preserve_insertion_order = false; SET enable_progress_bar = false"
    )
    n_spells = con.execute(f"SELECT count(*) FROM '{data / 'benefit_spells.parquet'}'").fetchone()[0]
    t0, cpu0 = time.perf_counter(), time.process_time()
    panel.person_months(
        data / "benefit_spells.parquet",
        data / "social_assistance.parquet",
        data / "earnings.parquet",
        data / "population.parquet",
        end_month=END_MONTH,
        con=con,
        parquet_path=data / ("person_months" if partitions > 1 else "person_months.parquet"),
        partitions=partitions,
    )
    t_panel = time.perf_counter() - t0
    cpu_panel = time.process_time() - cpu0
    rss_panel = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    panel_path = data / ("person_months" if partitions > 1 else "person_months.parquet")
    glob = f"{panel_path}/*.parquet" if partitions > 1 else str(panel_path)
    n_rows = con.execute(f"SELECT count(*) FROM read_parquet('{glob}')").fetchone()[0]
    print(
        f"panel: {n_spells:,} spells -> {n_rows:,} person-months in {t_panel:.1f} s wall, {cpu_panel:.1f} s CPU, "
        f"peak RSS {rss_panel:.2f} GiB",
        flush=True,
    )
    pairs = con.read_parquet(str(data / "pairs.parquet")).to_arrow_table()
    t1, cpu1 = time.perf_counter(), time.process_time()
    feats = panel.history_features(
        pairs,
        panel_path,
        data / "population.parquet",
        con=con,
        output="arrow",
    )
    t_hist, cpu_hist = time.perf_counter() - t1, time.process_time() - cpu1
    n_treated = int(pairs["treated"].to_numpy().sum())
    print(
        f"history_features: {feats.num_rows:,} pairs ({n_treated:,} participants) in {t_hist:.1f} s wall, "
        f"{cpu_hist:.1f} s CPU",
        flush=True,
    )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    total = t_panel + t_hist
    print(f"CPU time (all threads) {time.process_time() - cpu0:.1f} s")
    print(
        f"BIG total {total:.1f} s (target <= 180 s), peak RSS {rss:.2f} GiB (target <= 6 GiB), {threads} threads"
    )


# --------------------------------------------------------------------------------------------- ratio case
def generate_small(n_spells: int, n_persons: int, seed: int = 5) -> tuple[pd.DataFrame, ...]:
    rng = np.random.default_rng(seed)
    start = np.datetime64("2018-01-01") + rng.integers(0, 2500, n_spells).astype("timedelta64[D]")
    length = rng.integers(1, 181, n_spells)
    to = start + (length - 1).astype("timedelta64[D]")
    to = np.where(rng.random(n_spells) < 0.02, np.datetime64("NaT"), to)
    sp = pd.DataFrame(
        {
            "person_id": rng.integers(0, n_persons, n_spells).astype(str),
            "benefit": np.array(CODES)[rng.integers(0, 7, n_spells)],
            "from_date": pd.to_datetime(start),
            "to_date": pd.to_datetime(to),
            "extent": rng.integers(1, 5, n_spells) / 4.0,
            "amount_sek": (50.0 * length).astype(float),
        }
    )
    sp = pd.concat([sp, sp.iloc[:1000]], ignore_index=True)  # identical duplicates count once
    m = rng.integers(0, 84, n_persons * 2)
    sa = pd.DataFrame(
        {
            "person_id": rng.integers(0, n_persons, n_persons * 2).astype(str),
            "month": [f"{2018 + x // 12}-{x % 12 + 1:02d}" for x in m],
            "amount_sek": rng.integers(1000, 10000, n_persons * 2).astype(float),
        }
    )
    m = rng.integers(0, 84, n_persons * 12)
    ea = pd.DataFrame(
        {
            "person_id": rng.integers(0, n_persons, n_persons * 12).astype(str),
            "month": [f"{2018 + x // 12}-{x % 12 + 1:02d}" for x in m],
            "earnings_sek": rng.integers(0, 40000, n_persons * 12).astype(float),
        }
    )
    death = np.where(
        rng.random(n_persons) < 0.01,
        np.datetime64("2019-01-01") + rng.integers(0, 2000, n_persons).astype("timedelta64[D]"),
        np.datetime64("NaT"),
    )
    pop = pd.DataFrame(
        {
            "person_id": np.arange(n_persons).astype(str),
            "emigration_date": pd.NaT,
            "death_date": pd.to_datetime(death),
        }
    )
    return sp, sa, ea, pop


def pandas_panel(
    sp: pd.DataFrame,
    sa: pd.DataFrame,
    ea: pd.DataFrame,
    pop: pd.DataFrame,
    end_month: str,
    threshold: float = DEFAULT_SELF_SUPPORT_THRESHOLD_SEK,
) -> pd.DataFrame:
    """The panel rules of ``finsam_effekt.panel`` written straightforwardly in pandas/numpy (baseline)."""
    sp = sp.drop_duplicates()
    end_idx = int(end_month[:4]) * 12 + int(end_month[5:7]) - 1
    end_day = (np.datetime64(end_month, "M") + 1).astype("datetime64[D]") - 1
    f = sp.from_date.to_numpy().astype("datetime64[D]")
    t = sp.to_date.to_numpy().astype("datetime64[D]")
    t = np.where(np.isnat(t), end_day, t)
    per_day = sp.amount_sek.to_numpy() / ((t - f).astype(np.int64) + 1)
    c1 = np.minimum(t, end_day)
    keep = f <= c1
    f, c1, per_day = f[keep], c1[keep], per_day[keep]
    ext = sp.extent.to_numpy()[keep]
    grp = sp.benefit.map(BENEFIT_GROUPS).to_numpy()[keep]
    pid = sp.person_id.to_numpy()[keep]
    m0 = f.astype("datetime64[M]").astype(np.int64)
    m1 = c1.astype("datetime64[M]").astype(np.int64)
    cnt = m1 - m0 + 1
    rep = np.repeat(np.arange(len(f)), cnt)
    m = m0[rep] + (np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt))
    first = m.astype("datetime64[M]").astype("datetime64[D]")
    last = (m + 1).astype("datetime64[M]").astype("datetime64[D]") - 1
    days = (np.minimum(c1[rep], last) - np.maximum(f[rep], first)).astype(np.int64) + 1
    long = pd.DataFrame(
        {
            "person_id": pid[rep],
            "m": m + 1970 * 12,
            "grp": grp[rep],
            "nd": days * ext[rep],
            "sek": days * per_day[rep],
            "dim": (last - first).astype(np.int64) + 1,
        }
    )
    wide = long.groupby(["person_id", "m", "grp"]).agg(
        nd=("nd", "sum"), sek=("sek", "sum"), dim=("dim", "first")
    )
    wide["nd"] = np.minimum(wide["nd"], wide["dim"])
    wide = wide[["nd", "sek"]].unstack("grp", fill_value=0.0)
    out = pd.DataFrame(index=wide.index)
    for g in SPELL_GROUPS:
        out[f"days_{g}"] = wide["nd"][g] if g in wide["nd"] else 0.0
    for g in SPELL_GROUPS:
        out[f"sek_{g}"] = wide["sek"][g] if g in wide["sek"] else 0.0

    def monthly(df: pd.DataFrame, col: str, name: str) -> pd.Series:
        df = df.drop_duplicates()
        mm = df.month.str.slice(0, 4).astype(int) * 12 + df.month.str.slice(5, 7).astype(int) - 1
        s = df.assign(m=mm)[mm <= end_idx].groupby(["person_id", "m"])[col].sum()
        return s.rename(name)

    out = out.join(monthly(sa, "amount_sek", "social_assistance_sek"), how="outer")
    out = out.join(monthly(ea, "earnings_sek", "earnings_sek"), how="outer").fillna(0.0)
    cens = pop.dropna(subset=["death_date"])
    cm = pd.Series(
        cens.death_date.dt.year.to_numpy() * 12 + cens.death_date.dt.month.to_numpy() - 1,
        index=cens.person_id,
    )
    out = out.reset_index()
    c = out.person_id.map(cm)
    out = out[c.isna() | (out.m < c)]
    vals = [*(f"days_{g}" for g in SPELL_GROUPS), *(f"sek_{g}" for g in SPELL_GROUPS)]
    vals += ["social_assistance_sek", "earnings_sek"]
    out = out[(out[vals] != 0).any(axis=1)].copy()
    sek = out[[f"sek_{g}" for g in SPELL_GROUPS]].sum(axis=1)
    out["benefit_sek"] = sek + out.social_assistance_sek
    ps = (
        (out[[f"days_{g}" for g in SPELL_GROUPS]].sum(axis=1) > 0)
        | (sek > 0)
        | (out.social_assistance_sek > 0)
    )
    out["public_support"] = ps.astype(np.int64)
    out["self_support"] = ((out.earnings_sek >= threshold) & ~ps).astype(np.int64)
    out["month"] = [f"{x // 12:04d}-{x % 12 + 1:02d}" for x in out.m]
    out = out.sort_values(["person_id", "month"]).reset_index(drop=True)
    return out[list(panel.PANEL_COLUMNS)]


def run_ratio(n_spells: int, n_persons: int, repeat: int) -> None:
    sp, sa, ea, pop = generate_small(n_spells, n_persons)
    runs: dict[str, list[tuple[float, float]]] = {"panel": [], "pandas": []}
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fast = panel.person_months(sp, sa, ea, pop, end_month=END_MONTH)
        runs["panel"].append((time.perf_counter() - t0, time.process_time() - c0))
        t1, c1 = time.perf_counter(), time.process_time()
        slow = pandas_panel(sp, sa, ea, pop, END_MONTH)
        runs["pandas"].append((time.perf_counter() - t1, time.process_time() - c1))
        pd.testing.assert_frame_equal(fast, slow, check_exact=False, rtol=1e-12, atol=0.0)
        print(
            "  run: panel {:.2f} s wall / {:.2f} s CPU, pandas {:.2f} s wall / {:.2f} s CPU".format(
                *runs["panel"][-1], *runs["pandas"][-1]
            ),
            flush=True,
        )
    (w_fast, _), (w_slow, _) = min(runs["panel"]), min(runs["pandas"])
    c_fast, c_slow = min(c for _, c in runs["panel"]), min(c for _, c in runs["pandas"])
    print(
        f"RATIO {len(sp):,} spells, {len(fast):,} person-months, best of {repeat}: person_months {w_fast:.2f} s "
        f"wall / {c_fast:.2f} s CPU, pandas {w_slow:.2f} s wall / {c_slow:.2f} s CPU; wall ratio "
        f"{w_slow / w_fast:.1f}x, CPU ratio {c_slow / c_fast:.1f}x, pandas CPU / (panel CPU / 2) "
        f"{2 * c_slow / c_fast:.1f}x (target >= 10x); same panel: yes"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", choices=["big", "ratio", "generate"])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/bench_panel"))
    ap.add_argument("--persons", type=int, default=5_000_000)
    ap.add_argument("--spells", type=int, default=50_000_000)
    ap.add_argument("--controls", type=int, default=5_000_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--memory-limit", default="4GB")
    ap.add_argument("--partitions", type=int, default=1, help="write the panel as this many Parquet files")
    ap.add_argument("--repeat", type=int, default=3, help="ratio: runs of each build (best taken)")
    a = ap.parse_args()
    if a.case == "ratio":
        run_ratio(1_000_000 if a.spells == 50_000_000 else a.spells, 100_000, a.repeat)
    elif a.case == "generate":
        generate_big(a.dir, a.persons, a.spells, a.controls, a.threads)
    else:
        if not (a.dir / "pairs.parquet").exists():
            cmd = [sys.executable, __file__, "generate", "--dir", str(a.dir), "--persons", str(a.persons)]
            cmd += ["--spells", str(a.spells), "--controls", str(a.controls), "--threads", str(a.threads)]
            subprocess.run(cmd, check=True)
        run_big(a.dir, a.threads, a.memory_limit, a.partitions)


if __name__ == "__main__":
    main()
