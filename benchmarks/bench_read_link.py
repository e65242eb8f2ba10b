"""Benchmark: read + validate + link a large register world from Parquet and from CSV (issue 4).

Generates (once, cached in ``--dir``) a world of ``--persons`` residents and ``--spells`` benefit spells with DuckDB
(no pandas), plus SUS registrations for ``--participants`` persons and volume counts, written as Parquet and as
UTF-8 CSV. Then, for each format, a fresh child process runs

1. ``io.read_inputs`` (validation of every table: parsing, codes, ranges, duplicate keys, persons missing from
   population) and
2. ``linkage.link_participants`` (episodes, participants, attrition report),

and reports wall time and peak RSS (``ru_maxrss`` of the child). The baseline, in the same child, is a bare DuckDB
scan of the same files (``count(*)`` per table): the floor any reader pays. Both must see the same rows.

Usage::

    nice -n 10 .venv/bin/python benchmarks/bench_read_link.py --dir /tmp/bench_read_link   # 5e6 persons, 5e7 spells
    .venv/bin/python benchmarks/bench_read_link.py --persons 100000 --spells 1000000        # quick check

Targets (issue 4): ≤ 2 min from Parquet and ≤ 4 GiB peak RSS on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

TABLES = ("population", "sus_registrations", "sus_volume", "benefit_spells")


def generate(out: Path, persons: int, spells: int, participants: int, fmt: str) -> None:
    """Write the world in ``fmt`` (parquet | csv) with DuckDB; deterministic (hash of the row number)."""
    import duckdb

    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.execute("SET memory_limit = '3GB'")
    opts = "(FORMAT parquet, COMPRESSION zstd)" if fmt == "parquet" else "(FORMAT csv, HEADER true)"
    ext = "parquet" if fmt == "parquet" else "csv"
    h = "CAST(hash(i, {k}) % 1000000 AS BIGINT)"  # a deterministic uniform integer 0..999999 per row and stream k
    queries = {
        "population": f"""
            SELECT 'P' || i AS person_id, CASE WHEN i % 2 = 0 THEN 'K' ELSE 'M' END AS sex,
                   1950 + {h.format(k=1)} % 55 AS birth_year,
                   ['compulsory', 'upper_secondary', 'post_secondary'][1 + {h.format(k=2)} % 3] AS education,
                   lpad(CAST(100 + {h.format(k=3)} % 290 AS VARCHAR), 4, '0') AS kommun,
                   ['sweden', 'nordic', 'europe', 'outside_europe'][1 + {h.format(k=4)} % 4] AS birth_region,
                   CASE WHEN {h.format(k=5)} % 10 = 0 THEN DATE '1990-01-01' + CAST({h.format(k=6)} % 9000 AS INTEGER)
                   END AS immigration_date,
                   CASE WHEN {h.format(k=7)} % 100 = 0 THEN DATE '2020-01-01' + CAST({h.format(k=8)} % 1400 AS INTEGER)
                   END AS emigration_date,
                   CASE WHEN {h.format(k=9)} % 200 = 0 THEN DATE '2019-01-01' + CAST({h.format(k=10)} % 1800 AS INTEGER)
                   END AS death_date
            FROM range({persons}) t(i)""",
        "benefit_spells": f"""
            SELECT 'P' || ({h.format(k=11)} * 7919 + i) % {persons} AS person_id,
                   ['SJP', 'RHP', 'SA', 'AE', 'AKS', 'UTV', 'AKA'][1 + {h.format(k=12)} % 7] AS benefit,
                   DATE '2014-01-01' + CAST({h.format(k=13)} % 3600 AS INTEGER) AS from_date,
                   CASE WHEN {h.format(k=14)} % 20 = 0 THEN NULL
                        ELSE DATE '2014-01-01' + CAST({h.format(k=13)} % 3600 + {h.format(k=15)} % 200 AS INTEGER)
                   END AS to_date,
                   [1.0, 0.75, 0.5, 0.25][1 + {h.format(k=16)} % 4] AS extent,
                   round(i % 100000 + {h.format(k=17)} / 1000.0, 2) AS amount_sek
            FROM range({spells}) t(i)""",
        "sus_registrations": f"""
            SELECT CASE WHEN i % 2 = 0 THEN NULL ELSE 'P' || (i * 37) % {persons} END AS person_id,
                   CASE WHEN i % 2 = 0 THEN 'anonymous' ELSE 'person' END AS registration_kind,
                   'F' || lpad(CAST({h.format(k=21)} % 80 AS VARCHAR), 2, '0') AS forbund_id,
                   'I' || {h.format(k=22)} % 2000 AS insats_id,
                   ['rehab_work_education', 'preparatory', 'assessment', 'preventive', 'other'][1 + i % 5]
                       AS insats_type,
                   DATE '2017-01-01' + CAST({h.format(k=23)} % 2500 AS INTEGER) AS start_date,
                   CASE WHEN {h.format(k=24)} % 10 = 0 THEN NULL
                        ELSE DATE '2017-01-01' + CAST({h.format(k=23)} % 2500 + 30 + {h.format(k=25)} % 300 AS INTEGER)
                   END AS end_date,
                   NULL::VARCHAR AS sex, NULL::BIGINT AS birth_year, NULL::VARCHAR AS education,
                   NULL::VARCHAR AS kommun, 'social_assistance;sickness_benefit' AS support_at_start,
                   NULL::VARCHAR AS support_at_end, NULL::VARCHAR AS status_at_end,
                   'lt1y' AS public_support_before
            FROM range({2 * participants}) t(i)""",
        "sus_volume": """
            SELECT 'F' || lpad(CAST(i % 80 AS VARCHAR), 2, '0') AS forbund_id, 'V' || i AS insats_id,
                   2017 + i % 7 AS year, 10 + i % 50 AS participations
            FROM range(2000) t(i)""",
    }
    for name, sql in queries.items():
        con.execute(f"COPY ({sql}) TO '{out / f'{name}.{ext}'}' {opts}")
    spec = {"base_dir": ".", "tables": {n: {"path": f"{n}.{ext}", "format": fmt} for n in TABLES}}
    (out / "mapping.yaml").write_text(json.dumps(spec), encoding="utf-8")  # JSON is YAML


def child(folder: Path) -> dict:
    """Baseline scan, then read + validate + link; timings and this process' peak RSS."""
    import duckdb

    from finsam_effekt.config import load_input_spec
    from finsam_effekt.io import connect, read_inputs
    from finsam_effekt.linkage import link_participants

    spec = load_input_spec(folder / "mapping.yaml")
    base = duckdb.connect()
    base.execute("SET threads = 2")
    t0 = time.perf_counter()
    raw_rows = {}
    for name, t in spec.tables.items():
        reader = "read_parquet" if t.format == "parquet" else "read_csv"
        # max() of every column forces a read of every value (count(*) alone reads Parquet metadata only)
        raw_rows[name] = base.execute(
            f"SELECT count(*), max(COLUMNS(*)) FROM {reader}('{t.path}')"
        ).fetchone()[0]
    t_base = time.perf_counter() - t0
    base.close()

    con = connect(memory_limit="3GB", threads=2)
    t0 = time.perf_counter()
    con, report = read_inputs(spec, con)
    t_read = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = link_participants(
        con.table("sus_registrations"),
        con.table("population"),
        sus_volume=con.table("sus_volume"),
        window=("2018-01", "2022-12"),
        age_range=(16, 64),
        min_history_months=24,
        register_start="2014-01",
        con=con,
    )
    t_link = time.perf_counter() - t0
    assert report.rows == raw_rows, (report.rows, raw_rows)
    return {
        "rows": report.rows,
        "warnings": [str(p) for p in report.warnings],
        "participants": len(res.participants),
        "baseline_scan_s": round(t_base, 2),
        "read_validate_s": round(t_read, 2),
        "link_s": round(t_link, 2),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        # CPU seconds of this process (all threads): independent of other load on a shared machine
        "cpu_s": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_utime
            + resource.getrusage(resource.RUSAGE_SELF).ru_stime,
            1,
        ),
        "load_avg_1min": round(os.getloadavg()[0], 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=Path("/tmp/bench_read_link"))
    ap.add_argument("--persons", type=int, default=5_000_000)
    ap.add_argument("--spells", type=int, default=50_000_000)
    ap.add_argument("--participants", type=int, default=100_000)
    ap.add_argument("--formats", default="parquet,csv")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    results = {}
    for fmt in args.formats.split(","):
        folder = args.dir / f"{args.persons}_{args.spells}" / fmt
        if not (folder / "mapping.yaml").exists():
            t0 = time.perf_counter()
            generate(folder, args.persons, args.spells, args.participants, fmt)
            print(f"generated {fmt} world in {time.perf_counter() - t0:.0f} s: {folder}", flush=True)
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(folder)], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            sys.exit(f"{fmt} child failed:\n{proc.stderr}")
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        r["total_s"] = round(r["read_validate_s"] + r["link_s"], 2)
        r["ratio_to_baseline_scan"] = round(r["read_validate_s"] / max(r["baseline_scan_s"], 1e-9), 2)
        results[fmt] = r
        print(f"{fmt}: {json.dumps(r)}", flush=True)
    print()
    print(f"{'format':<8} {'rows(spells)':>13} {'scan s':>8} {'read+validate s':>16} {'link s':>7} "
          f"{'total s':>8} {'x scan':>7} {'peak RSS GiB':>13}")  # fmt: skip
    for fmt, r in results.items():
        print(f"{fmt:<8} {r['rows']['benefit_spells']:>13,} {r['baseline_scan_s']:>8} {r['read_validate_s']:>16} "
              f"{r['link_s']:>7} {r['total_s']:>8} {r['ratio_to_baseline_scan']:>7} {r['peak_rss_gib']:>13}")  # fmt: skip


if __name__ == "__main__":
    main()
