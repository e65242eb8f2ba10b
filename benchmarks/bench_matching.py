"""Benchmark of ``matching.match_nearest`` against MatchIt 4.7.2 on the same problems, in one run (issues 6, 14).

Problems: 2·10⁴ treated against 2·10⁶ and against 5·10⁶ candidate rows over 60 calendar months (exact on month),
each (a) 1:1 with a 0.2 SD caliper without replacement and (b) 3:1 with replacement. For every problem the script
times ``match_nearest`` (median of five calls, wall and CPU seconds) and then, right after, MatchIt 4.7.2's
``matchit()`` on the same data through ``Rscript`` (``R_LIBS=/opt/r-matchit``; median of three calls in one R
session, R's own ``proc.time()`` around ``matchit()`` only, so reading the CSV is not counted), checks that both
give the identical match matrix and the same weights (to 1e-12), and prints both ratios. Target (issue 14): ≥ 20× faster than MatchIt. A numpy brute force on a small problem
checks the matched sets once more without R. The load average is printed beside every figure: the machine is
shared, so the ratio of two timings taken back to back is the figure to read, and CPU seconds are the
load-independent one.

Run once, niced:  ``nice -n 10 .venv/bin/python benchmarks/bench_matching.py [--skip-r] [--sizes 2e6 5e6]``

See benchmarks/README.md for the recorded figures.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from finsam_effekt.matching import match_nearest

R_LIBS = os.environ.get("FINSAM_R_LIBS", "/opt/r-matchit")
N_TREATED = 20_000
N_MONTHS = 60


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
stopifnot(packageVersion("MatchIt") == "4.7.2")
args <- commandArgs(TRUE)
d <- read.csv(args[1])
ratio <- as.integer(args[4]); replace <- args[5] == "TRUE"
cal <- if (args[6] == "NA") NULL else as.numeric(args[6])
for (rep in seq_len(as.integer(args[7]))) {
  gc()
  t0 <- proc.time()
  m <- suppressWarnings(matchit(t ~ d, data = d, distance = d$d, exact = ~m, ratio = ratio, replace = replace,
                                caliper = cal))
  pt <- proc.time() - t0
  cat(sprintf("%.3f %.3f\n", pt[["elapsed"]], pt[["user.self"]] + pt[["sys.self"]]))
}
mm <- m$match.matrix
out <- do.call(rbind, lapply(seq_len(ncol(mm)), function(k) {
  ok <- !is.na(mm[, k]); data.frame(treated_row = as.integer(rownames(mm)[ok]) - 1L, k = k,
                                    control_row = as.integer(mm[ok, k]) - 1L)}))
write.csv(out, args[2], row.names = FALSE)
w <- which(m$weights > 0)
write.csv(data.frame(row = w - 1L, weight = sprintf("%.17g", m$weights[w])), args[3], row.names = FALSE)
"""


def run_r(df: pd.DataFrame, ratio: int, replace: bool, caliper: float | None, timeout: float, repeats: int):
    """MatchIt's answer and the median of its own timings of ``repeats`` calls of ``matchit()`` in one R
    session: ``((wall, cpu), pairs, weights)``, or ``None`` after ``timeout`` seconds."""
    tmp = Path(tempfile.mkdtemp(prefix="bench_r_"))
    try:
        df.to_csv(tmp / "d.csv", index=False)
        (tmp / "m.R").write_text(R_SCRIPT)
        env = dict(os.environ, R_LIBS=R_LIBS)
        cmd = ["Rscript", str(tmp / "m.R"), str(tmp / "d.csv"), str(tmp / "mm.csv"), str(tmp / "w.csv")]
        cmd += [str(ratio), str(replace).upper(), "NA" if caliper is None else repr(caliper), str(repeats)]
        try:
            p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=True)
        except subprocess.TimeoutExpired:
            return None
        times = [[float(x) for x in line.split()] for line in p.stdout.strip().splitlines()[-repeats:]]
        el = statistics.median(t[0] for t in times)
        cpu = statistics.median(t[1] for t in times)
        out = pd.read_csv(tmp / "mm.csv").sort_values(["treated_row", "k"])
        pairs = {int(t): tuple(int(c) for c in g["control_row"]) for t, g in out.groupby("treated_row")}
        wr = pd.read_csv(tmp / "w.csv", float_precision="round_trip")
        weights = np.zeros(len(df))
        weights[wr["row"].to_numpy()] = wr["weight"].to_numpy()
        return (el, cpu), pairs, weights
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def timed(df, repeats: int = 5, **kw):
    """Median wall and CPU seconds of ``repeats`` calls, and the last result."""
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        res = match_nearest(df, "t", "d", exact="m", **kw)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus), res


CONFIGS = {
    "1:1 caliper 0.2 SD, no replacement": dict(ratio=1, replace=False, caliper=0.2),
    "3:1 with replacement": dict(ratio=3, replace=True, caliper=None),
}


def load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-r", action="store_true")
    ap.add_argument("--r-timeout", type=float, default=1800)
    ap.add_argument("--r-repeats", type=int, default=3, help="matchit() calls per problem (median)")
    ap.add_argument("--sizes", nargs="+", type=float, default=[2e6, 5e6], help="candidate rows per problem")
    a = ap.parse_args()
    have_r = not a.skip_r and shutil.which("Rscript") is not None and Path(R_LIBS).exists()
    print(f"{os.cpu_count()} cores, load average at start {load()}; R/MatchIt: {'yes' if have_r else 'no'}")

    print("\n== numpy brute force, 2e3 treated vs 2e5 candidates, 20 months ==")
    small = make_case(2_000, 200_000, 20, seed=2)
    for name, kw in CONFIGS.items():
        _, cpu, res = timed(small, **kw)
        c0 = time.process_time()
        bf = brute_force(small, kw["caliper"], kw["ratio"], kw["replace"])
        bcpu = time.process_time() - c0
        same = pairs_of(res) == bf
        print(
            f"{name}: CPU ours {cpu:.3f} s, brute force {bcpu:.2f} s ({bcpu / cpu:.0f}x), identical: {same}"
        )
        if not same:
            raise SystemExit("brute force and match_nearest disagree")

    rows = []
    for n_c in (int(s) for s in a.sizes):
        print(f"\n== {N_TREATED:.0e} treated vs {n_c:.0e} candidates, {N_MONTHS} months (exact) ==")
        df = make_case(N_TREATED, n_c, N_MONTHS)
        for name, kw in CONFIGS.items():
            l0 = load()
            wall, cpu, res = timed(df, **kw)
            line = (
                f"{name}: ours wall {wall:.3f} s, CPU {cpu:.3f} s (load {l0}); "
                f"{len(res.pairs)} matches, {len(res.unmatched)} unmatched"
            )
            row = dict(n_c=n_c, case=name, wall=wall, cpu=cpu, load=l0)
            if have_r:
                l1 = load()
                r = run_r(df, kw["ratio"], kw["replace"], kw["caliper"], a.r_timeout, a.r_repeats)
                if r is None:
                    line += f"; MatchIt did not finish within {a.r_timeout:.0f} s"
                else:
                    (r_wall, r_cpu), r_pairs, r_w = r
                    same = pairs_of(res) == r_pairs
                    dw = float(np.abs(res.weights - r_w).max())
                    row.update(r_wall=r_wall, r_cpu=r_cpu, r_load=l1, same=same, dw=dw)
                    line += (
                        f"; MatchIt wall {r_wall:.2f} s, CPU {r_cpu:.2f} s (load {l1}); "
                        f"ratio wall {r_wall / wall:.1f}x, CPU {r_cpu / cpu:.1f}x; identical match matrix: {same}, "
                        f"max |weight difference| {dw:.1e}"
                    )
                    if not same or dw > 1e-12:
                        print(line)
                        raise SystemExit("MatchIt and match_nearest disagree")
            print(line, flush=True)
            rows.append(row)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of this process: {rss:.0f} MiB; load average at the end {load()}")
    if have_r:
        print("\n| candidates | case | ours wall / CPU | MatchIt wall / CPU | ratio wall / CPU | identical |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            if "r_wall" in r:
                print(
                    f"| {r['n_c']:.0e} | {r['case']} | {r['wall']:.2f} s / {r['cpu']:.2f} s | "
                    f"{r['r_wall']:.1f} s / {r['r_cpu']:.1f} s | {r['r_wall'] / r['wall']:.0f}× / "
                    f"{r['r_cpu'] / r['cpu']:.0f}× | {'yes' if r['same'] else 'no'} (weights ±{r['dw']:.0e}) |"
                )


if __name__ == "__main__":
    main()
