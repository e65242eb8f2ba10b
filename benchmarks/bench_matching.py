"""Benchmark of ``matching.match_nearest`` (issue 6).

1. Target case: 2·10⁴ treated against 5·10⁶ candidate rows over 60 calendar months (exact on month),
   (a) 1:1 with a 0.2 SD caliper without replacement and (b) 3:1 with replacement. Target ≤ 10 s each and
   peak RSS ≤ 2 GiB.
2. Baseline: a plain numpy brute force (greedy, every treated row scans all controls of its month) on a smaller
   case; the script checks both give identical matched sets and prints the ratio.
3. MatchIt 4.7.2 through ``Rscript`` (``R_LIBS=/opt/r-matchit``) on a ladder of sizes up to the target case, each
   with a 10-minute limit; the script checks identical matched sets and prints the ratio for the largest case R
   finishes. Without R it says so.

Run once, niced:  ``nice -n 10 .venv/bin/python benchmarks/bench_matching.py [--skip-r]``

Measured 2026-11-23 (load average 17 on 2 shared cores; wall / CPU): target 1:1 caliper 12.9 s / 2.9 s, 3:1 with
replacement 10.6 s / 2.6 s, peak RSS 811 MiB; MatchIt 4.7.2 on the same target cases 49.8 s / 15.0 s and
39.2 s / 11.3 s (CPU ratio 5.2x and 4.3x), identical matched sets; numpy brute force 4x slower, identical.
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from finsam_effekt.matching import match_nearest

R_LIBS = os.environ.get("FINSAM_R_LIBS", "/opt/r-matchit")


def make_case(n_t: int, n_c: int, strata: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "t": np.r_[np.ones(n_t, np.int64), np.zeros(n_c, np.int64)],
            "d": np.r_[rng.normal(1.0, 1.0, n_t), rng.normal(0.0, 1.0, n_c)],
            "m": np.r_[rng.integers(0, strata, n_t), rng.integers(0, strata, n_c)],
        }
    )


def pairs_of(res) -> dict[int, tuple[int, ...]]:
    p = res.pairs.sort_values(["treated_row", "k"])
    return {int(t): tuple(int(c) for c in g["control_row"]) for t, g in p.groupby("treated_row")}


def brute_force(df: pd.DataFrame, caliper_sd: float | None, ratio: int, replace: bool) -> dict:
    """Greedy matching by exhaustive search: each treated row (largest distance first) takes the nearest
    unused controls of its month within the caliper. Continuous distances (no ties)."""
    d, t, m = df["d"].to_numpy(), df["t"].to_numpy() == 1, df["m"].to_numpy()
    cal = np.inf if caliper_sd is None else caliper_sd * d.std(ddof=1)
    ctrl = {s: np.flatnonzero(~t & (m == s)) for s in np.unique(m)}
    used = np.zeros(len(d), dtype=bool)
    t_rows = np.flatnonzero(t)
    order = t_rows if replace else t_rows[np.argsort(-d[t_rows], kind="stable")]
    out = {}
    for tr in order:
        c = ctrl.get(m[tr])
        if c is None or len(c) == 0:
            continue
        dist = np.abs(d[c] - d[tr])
        if not replace:
            dist = np.where(used[c], np.inf, dist)
        k = min(ratio, len(c))
        idx = np.argpartition(dist, k - 1)[:k]
        idx = idx[np.argsort(dist[idx], kind="stable")]
        idx = idx[dist[idx] <= cal]
        if len(idx):
            out[int(tr)] = tuple(int(x) for x in c[idx])
            if not replace:
                used[c[idx]] = True
    return out


R_SCRIPT = r"""
suppressPackageStartupMessages(library(MatchIt))
args <- commandArgs(TRUE)
d <- read.csv(args[1])
ratio <- as.integer(args[3]); replace <- args[4] == "TRUE"
cal <- if (args[5] == "NA") NULL else as.numeric(args[5])
t0 <- proc.time()[["elapsed"]]; cpu0 <- sum(proc.time()[c("user.self", "sys.self")])
m <- suppressWarnings(matchit(t ~ d, data = d, distance = d$d, exact = ~m, ratio = ratio, replace = replace,
                              caliper = cal))
pt <- proc.time()
el <- pt[["elapsed"]] - t0
cpu <- pt[["user.self"]] + pt[["sys.self"]] - cpu0
mm <- m$match.matrix
out <- do.call(rbind, lapply(seq_len(ncol(mm)), function(k) {
  ok <- !is.na(mm[, k]); data.frame(treated_row = as.integer(rownames(mm)[ok]) - 1L, k = k,
                                    control_row = as.integer(mm[ok, k]) - 1L)}))
write.csv(out, args[2], row.names = FALSE)
cat(sprintf("%.3f %.3f\n", el, cpu))
"""


def run_r(df: pd.DataFrame, ratio: int, replace: bool, caliper: float | None, timeout: float):
    tmp = Path(tempfile.mkdtemp(prefix="bench_r_"))
    try:
        df.to_csv(tmp / "d.csv", index=False)
        (tmp / "m.R").write_text(R_SCRIPT)
        env = dict(os.environ, R_LIBS=R_LIBS)
        cmd = [
            "Rscript",
            str(tmp / "m.R"),
            str(tmp / "d.csv"),
            str(tmp / "out.csv"),
            str(ratio),
            str(replace).upper(),
        ]
        cmd.append("NA" if caliper is None else repr(caliper))
        t0 = time.perf_counter()
        try:
            p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=True)
        except subprocess.TimeoutExpired:
            return None, None, time.perf_counter() - t0
        el, cpu = (float(x) for x in p.stdout.strip().splitlines()[-1].split())
        out = pd.read_csv(tmp / "out.csv").sort_values(["treated_row", "k"])
        pairs = {int(t): tuple(int(c) for c in g["control_row"]) for t, g in out.groupby("treated_row")}
        return (el, cpu), pairs, time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def timed(df, **kw):
    """Wall time and CPU time (the machine is shared: CPU time is the load-independent figure)."""
    t0, c0 = time.perf_counter(), time.process_time()
    res = match_nearest(df, "t", "d", exact="m", **kw)
    return time.perf_counter() - t0, res, time.process_time() - c0


CONFIGS = {
    "1:1 caliper 0.2 SD, no replacement": dict(ratio=1, replace=False, caliper=0.2),
    "3:1 with replacement": dict(ratio=3, replace=True, caliper=None),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-r", action="store_true")
    ap.add_argument("--r-timeout", type=float, default=600)
    a = ap.parse_args()

    print("== target: 2e4 treated vs 5e6 candidates, 60 months (exact) ==")
    big = make_case(20_000, 5_000_000, 60)
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    big_times = {}
    for name, kw in CONFIGS.items():
        el, res, cpu = timed(big, **kw)
        big_times[name] = (el, res, cpu)
        print(
            f"{name}: wall {el:.2f} s, CPU {cpu:.2f} s, {len(res.pairs)} matches, {len(res.unmatched)} unmatched"
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process so far: {rss:.0f} MiB (target ≤ 2048)")

    print("\n== numpy brute force, 2e3 treated vs 2e5 candidates, 20 months ==")
    small = make_case(2_000, 200_000, 20, seed=2)
    for name, kw in CONFIGS.items():
        el, res, cpu = timed(small, **kw)
        c0 = time.process_time()
        bf = brute_force(small, kw["caliper"], kw["ratio"], kw["replace"])
        bcpu = time.process_time() - c0
        same = pairs_of(res) == bf
        print(
            f"{name}: CPU ours {cpu:.3f} s, brute force {bcpu:.2f} s, ratio {bcpu / cpu:.1f}x, identical: {same}"
        )
        if not same:
            raise SystemExit("brute force and match_nearest disagree")

    if a.skip_r or shutil.which("Rscript") is None or not Path(R_LIBS).exists():
        print("\nMatchIt comparison skipped: Rscript or the MatchIt 4.7.2 library is not installed")
        return
    print("\n== MatchIt 4.7.2 (Rscript), same data; R timing covers matchit() only ==")
    ladder = [(2_000, 200_000, 20, 2), (20_000, 1_000_000, 60, 3), (20_000, 5_000_000, 60, 1)]
    for n_t, n_c, s, seed in ladder:
        df = big if (n_t, n_c) == (20_000, 5_000_000) else make_case(n_t, n_c, s, seed)
        for name, kw in CONFIGS.items():
            if (n_t, n_c) == (20_000, 5_000_000):
                el, res, cpu = big_times[name]
            else:
                el, res, cpu = timed(df, **kw)
            r_t, r_pairs, wall = run_r(df, kw["ratio"], kw["replace"], kw["caliper"], a.r_timeout)
            if r_t is None:
                print(f"{n_t}x{n_c} {name}: MatchIt did not finish within {a.r_timeout:.0f} s")
                continue
            same = pairs_of(res) == r_pairs
            r_el, r_cpu = r_t
            print(
                f"{n_t}x{n_c} {name}: ours wall {el:.2f} s / CPU {cpu:.2f} s, MatchIt wall {r_el:.2f} s / "
                f"CPU {r_cpu:.2f} s (matchit() only; wall incl. CSV {wall:.0f} s), CPU ratio {r_cpu / cpu:.1f}x, "
                f"identical: {same}"
            )


if __name__ == "__main__":
    main()
