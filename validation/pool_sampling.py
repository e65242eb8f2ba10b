"""Full candidate pool against a seeded per-month sample of it, on the same worlds (issue 14 item 3).

Sampling candidate person-months at a rate r fixed within each calendar month keeps a row with probability r
whatever its history, so among the kept rows the odds of participation in month u are the pool's divided by r:
only the month's intercept of the propensity model changes, and the month effects absorb it. Matching within
the month then estimates the same ATT; what is lost is precision (the nearest controls of the full pool may not be
in the sample). This script shows it on the pipeline Monte Carlo's own replications: the same worlds (same seeds,
``validation/montecarlo_pipeline.py --world W``) analysed with the full pool and with ``--sample-rate R``, and
for each outcome and horizon the bias, bias/SE, coverage and mean SE of both, and the paired difference of the
two estimates (mean and SD over worlds).

    .venv/bin/python validation/pool_sampling.py FULL.csv SAMPLED.csv --out validation/RESULTS_pool_sampling.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

Z95 = 1.959963984540054


def compare(full: pd.DataFrame, sampled: pd.DataFrame, design: str = "keep") -> pd.DataFrame:
    """Per outcome × horizon on the worlds (seeds) both files hold, for ``design``: reps, mean truth, then per
    pool the bias, bias/SE, 95 % coverage and mean SE, and the paired difference sampled − full of the estimates
    (mean, SD, and the mean divided by its Monte Carlo SE)."""
    keys = ["seed", "outcome", "horizon_months"]
    a = full[full["design"] == design].set_index(keys)
    b = sampled[sampled["design"] == design].set_index(keys)
    common = a.index.intersection(b.index)
    a, b = a.loc[common], b.loc[common]
    rows = []
    for (o, k), idx in pd.Series(range(len(common)), index=common).groupby(
        level=["outcome", "horizon_months"]
    ):
        ia = a.iloc[idx.to_numpy()]
        ib = b.iloc[idx.to_numpy()]
        row = {"outcome": o, "k": int(k), "reps": len(ia), "truth": float(ia["true_effect"].mean())}
        for name, d in (("full", ia), ("sampled", ib)):
            err = d["estimate"] - d["true_effect"]
            row[f"bias_{name}"] = float(err.mean())
            row[f"bias_se_{name}"] = float(err.mean() / d["std_error"].mean())
            row[f"coverage_{name}"] = float((err.abs() <= Z95 * d["std_error"]).mean())
            row[f"se_{name}"] = float(d["std_error"].mean())
        diff = ib["estimate"].to_numpy() - ia["estimate"].to_numpy()
        row["diff_mean"] = float(diff.mean())
        row["diff_sd"] = float(diff.std(ddof=1))
        row["diff_z"] = float(diff.mean() / (diff.std(ddof=1) / np.sqrt(len(diff))))
        rows.append(row)
    return pd.DataFrame(rows)


def to_markdown(tab: pd.DataFrame, rate: float, command: str) -> str:
    lines = [
        "# Full candidate pool against a per-month sample of it (same worlds)",
        "",
        "Made with (from the repository root):",
        "",
        "```bash",
        command,
        "```",
        "",
        f"Design `keep`, weighted mean difference, full pool against a seeded {100 * rate:g} % sample of the "
        "candidate person-months in every calendar month (`eligibility.candidate_sample_rate`), on the same "
        "worlds. Bias and coverage against each replication's true effect; `diff` = sampled − full estimate on "
        "the same world (`diff z` = its mean over its Monte Carlo SE).",
        "",
        "| outcome | k | reps | mean truth | bias full | bias sampled | bias/SE full | bias/SE sampled | "
        "coverage full | coverage sampled | mean SE full | mean SE sampled | SE ratio | diff mean | diff SD | "
        "diff z |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in tab.itertuples():
        lines.append(
            f"| {r.outcome} | {r.k} | {r.reps} | {r.truth:.4f} | {r.bias_full:+.4f} | {r.bias_sampled:+.4f} | "
            f"{r.bias_se_full:+.3f} | {r.bias_se_sampled:+.3f} | {100 * r.coverage_full:.1f} % | "
            f"{100 * r.coverage_sampled:.1f} % | {r.se_full:.4f} | {r.se_sampled:.4f} | "
            f"{r.se_sampled / r.se_full:.2f} | {r.diff_mean:+.4f} | {r.diff_sd:.4f} | {r.diff_z:+.2f} |"
        )
    n = int(tab["reps"].min()) if len(tab) else 0
    lines += [
        "",
        f"Monte Carlo SE of a coverage rate with {n} replications: {100 * np.sqrt(0.95 * 0.05 / max(n, 1)):.1f} "
        f"points; of bias/SE: about 1/√reps = {1 / np.sqrt(max(n, 1)):.3f}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("full", type=Path, help="raw CSV of the full-pool run")
    ap.add_argument("sampled", type=Path, help="raw CSV of the sampled-pool run (same world kind and seeds)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    full, sampled = pd.read_csv(args.full), pd.read_csv(args.sampled)
    rate = float(sampled["sample_rate"].iloc[0]) if "sample_rate" in sampled else float("nan")
    tab = compare(full, sampled)
    command = ".venv/bin/python validation/pool_sampling.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    args.out.write_text(to_markdown(tab, rate, command), encoding="utf-8")
    print(tab.to_string(index=False))


if __name__ == "__main__":
    main()
