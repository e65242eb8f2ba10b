"""Monte Carlo through the real pipeline: synth.generate → read → link → panel → cohort → match → estimate.

Where ``validation/montecarlo.py`` simulates a compact person-month world in memory, this study runs every
replication through the package's own stages and public functions, exactly as ``finsam_effekt.pipeline.run``
composes them for the shipped example design (``analyses/example_synthetic/config.yaml``):

1. ``synth.generate`` writes a register world (``SynthConfig(persons=N, seed=s)``, distinct seed per
   replication, window 2016-01..2023-12, all register mess switched on);
2. ``io.read_inputs`` reads and validates it; ``linkage.link_participants`` links SUS to the population;
3. ``panel.person_months`` builds the person-month panel; ``cohort.build_cohort`` the staggered-entry risk-set
   cohort (participants starting in the analysis window, candidate controls per month u; candidate sample
   rate 1.0 here, i.e. the full pool, because the worlds are small);
4. ``matching.estimate_propensity`` (logit) and ``matching.match_nearest`` (1:1 without replacement, caliper 0.2
   SD of the propensity score, exact on ``ref_month``, largest first — MatchIt's ``method="nearest"``);
5. ``panel.horizon_outcomes`` and ``estimation.estimate_effects`` with the default estimator (weighted mean
   difference, CR1 standard errors clustered by person).

Truth of a replication: the mean over the *matched* participants of their individual effect Y(with insats) −
Y(without any insats during follow-up) in month u+k, from ``truth_participants.parquet`` (common random
numbers, so it is the sample ATT of exactly the persons the estimate is about). Per outcome and horizon the study
reports bias = mean(estimate − truth), bias/SE (bias over the mean SE), RMSE, mean SE, the SD of the error and the
coverage of the 95 % CI [estimate ± 1.96 SE] for the truth.

Estimand note: controls may start an insats later (``later_treated: keep``); the estimate is then an
intention-to-treat contrast "start now vs not start now", while the truth is against "no insats during
follow-up". Later starts among controls dilute the estimate towards zero, which shows as a bias of the same sign
as the effect growing with k (see ``RESULTS_PIPELINE.md``).

Usage (the committed ``validation/RESULTS_PIPELINE.md`` states the exact command it was made with)::

    nice -n 10 .venv/bin/python validation/montecarlo_pipeline.py --reps 200 --persons 4000 \
        --out validation/RESULTS_PIPELINE.md
    .venv/bin/python validation/montecarlo_pipeline.py --reps 2 --persons small   # smoke run

Results are appended to ``<out>.csv`` after each replication and the Markdown table is rewritten every few
replications, so an interrupted run still leaves a table with the number of replications done.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from finsam_effekt.cohort import build_cohort
from finsam_effekt.config import AnalysisConfig, parse_config
from finsam_effekt.estimation import estimate_effects
from finsam_effekt.io import read_inputs
from finsam_effekt.linkage import link_participants
from finsam_effekt.matching import estimate_propensity, match_nearest
from finsam_effekt.panel import horizon_outcomes, person_months
from finsam_effekt.synth import SynthConfig, generate

OUTCOMES = ("public_support", "self_support")
HORIZONS = (3, 6, 12)
SMALL_PERSONS = 1500
#: synth window and the analysis window (participants starting in it); 2016-01 .. 2017-12 gives the 24 months of
#: history the eligibility rule needs, 2023-12 leaves ≥ 12 months of follow-up after the last start.
SYNTH_START, SYNTH_END = "2016-01", "2023-12"
WINDOW = ("2018-01", "2022-06")
SEED0 = 1000


def analysis_config(mapping: Path) -> AnalysisConfig:
    """The design of ``analyses/example_synthetic`` (matching and eligibility), full candidate pool."""
    data = {
        "inputs": str(mapping),
        "window": {"start": WINDOW[0], "end": WINDOW[1]},
        "age": {"min": 16, "max": 64},
        "eligibility": {
            "rule": "recent_public_support",
            "lookback_months": 12,
            "min_history_months": 24,
            "candidate_sample_rate": 1.0,
        },
        "matching": {
            "method": "nearest",
            "distance": "glm",
            "ratio": 1,
            "replace": False,
            "caliper": 0.2,
            "std_caliper": True,
            "exact": ["ref_month"],
            "m_order": "largest",
        },
        "later_treated": "keep",
        "outcomes": {"horizons": list(HORIZONS)},
        "estimators": ["weighted_mean_diff"],
        "inference": {"se": "cluster", "cluster": "person_id"},
        "event_study": False,
        "sensitivity": False,
        "cost_benefit": {"enabled": False},
        "seed": 20240101,
    }
    return parse_config(data, mapping.parent, "<montecarlo_pipeline>")


def analyse(world: Path, cfg: AnalysisConfig | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run read → link → panel → cohort → match → outcomes → effects on a generated world.

    Returns the effects table (``EffectResults.to_frame()``, subgroup "all", status measure) and the matched
    horizon outcomes (one row per matched unit, with ``treated``, ``weights``, ``person_id``, ``ref_month``).
    """
    cfg = cfg or analysis_config(world / "mapping.yaml")
    con, _rep = read_inputs(cfg.input_spec)
    t = {name: con.table(name) for name in cfg.input_spec.tables}
    lo, hi = con.sql("SELECT min(month), max(month) FROM earnings").fetchone()
    end = cfg.outcomes.data_end or str(hi)
    link = link_participants(
        t["sus_registrations"],
        t["population"],
        window=(cfg.window.start, cfg.window.end),
        age_range=(cfg.age.min, cfg.age.max),
        sus_volume=t.get("sus_volume"),
        episode_gap_days=cfg.linkage.episode_gap_days,
        min_history_months=cfg.eligibility.min_history_months,
        register_start=str(lo),
        disclosure_threshold=cfg.disclosure_threshold,
        benefit_spells=t["benefit_spells"],
        social_assistance=t["social_assistance"],
        con=con,
    )
    thr = cfg.outcomes.self_support_threshold_sek
    panel = person_months(
        t["benefit_spells"],
        t["social_assistance"],
        t["earnings"],
        t["population"],
        end_month=end,
        self_support_threshold=thr,
        con=con,
        output="arrow",
    )
    cohort = build_cohort(
        link.participants,
        panel=panel,
        population=t["population"],
        kommun_forbund=getattr(link, "kommun_forbund", None),
        sus_registrations=t["sus_registrations"],
        window=(cfg.window.start, cfg.window.end),
        age_range=(cfg.age.min, cfg.age.max),
        eligibility=cfg.eligibility.rule,
        lookback_months=cfg.eligibility.lookback_months,
        later_treated=cfg.later_treated,
        sample_rate=cfg.eligibility.candidate_sample_rate,
        end_month=end,
        self_support_threshold=thr,
        seed=cfg.seed,
        con=con,
    )
    m = cfg.matching
    covs = [c for c in cfg.covariates if c in cohort.columns]
    ps = estimate_propensity(cohort, "treated", covs, time_effects="ref_month" if m.time_effects else None)
    match = match_nearest(
        cohort,
        "treated",
        ps.ps if m.distance == "glm" else ps.linear_predictor,
        ratio=m.ratio,
        replace=m.replace,
        caliper=m.caliper,
        std_caliper=m.std_caliper,
        exact=list(m.exact),
        m_order=m.m_order,
        unit_id="person_id" if m.unit_id else None,
        reuse_max=m.reuse_max,
        random_state=cfg.seed,
    )
    keys = match.matched_data().reset_index(drop=True)
    ho = horizon_outcomes(
        keys,
        HORIZONS,
        panel=panel,
        population=t["population"],
        end_month=end,
        self_support_threshold=thr,
        con=con,
    )
    eff = estimate_effects(
        ho,
        outcomes=list(OUTCOMES),
        horizons=HORIZONS,
        measures=("status",),
        estimators=["weighted_mean_diff"],
        se=cfg.inference.se,
        cluster=cfg.inference.cluster,
    ).to_frame()
    con.close()
    return eff[eff["subgroup"] == "all"].reset_index(drop=True), ho


def matched_truth(ho: pd.DataFrame, truth: pd.DataFrame) -> dict[tuple[str, int], float]:
    """Mean individual true effect over the matched participants whose month u+k is observed."""
    tr = ho.loc[ho["treated"] == 1, ["person_id", "ref_month"]].astype(str)
    tm = tr.merge(
        truth.astype({"person_id": str, "ref_month": str}), on=["person_id", "ref_month"], how="left"
    )
    if len(tm) != len(tr):
        raise RuntimeError("truth_participants has duplicate (person_id, ref_month) rows")
    return {(o, k): float(np.nanmean(tm[f"{o}_m{k}"])) for o in OUTCOMES for k in HORIZONS}


def one_replication(seed: int, n_persons: int, workdir: Path | None = None) -> pd.DataFrame:
    """Generate one world with ``seed`` and ``n_persons``, analyse it, return one row per outcome × horizon."""
    tmp = Path(tempfile.mkdtemp(prefix=f"mcp{seed}_", dir=workdir))
    try:
        t0 = time.perf_counter()
        generate(tmp, SynthConfig(persons=n_persons, seed=seed, start=SYNTH_START, end=SYNTH_END))
        t_gen = time.perf_counter() - t0
        eff, ho = analyse(tmp)
        truth = matched_truth(ho, pd.read_parquet(tmp / "truth_participants.parquet"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows = []
    for r in eff.itertuples():
        rows.append(
            {
                "seed": seed,
                "outcome": r.outcome,
                "horizon_months": int(r.horizon_months),
                "estimate": r.estimate,
                "std_error": r.std_error,
                "truth": truth[(r.outcome, int(r.horizon_months))],
                "n_treated": int(r.n_treated),
                "n_control": int(r.n_control),
                "seconds_generate": round(t_gen, 2),
                "seconds_total": round(time.perf_counter() - t0, 2),
            }
        )
    return pd.DataFrame(rows)


def summarise(est: pd.DataFrame) -> pd.DataFrame:
    """Bias, bias/SE, RMSE, mean SE, SD of the error and 95 % CI coverage per outcome × horizon."""
    d = est.assign(err=est["estimate"] - est["truth"])
    d["covered"] = (d["err"].abs() <= 1.959963984540054 * d["std_error"]).astype(float)
    g = d.groupby(["outcome", "horizon_months"], sort=True)
    out = pd.DataFrame(
        {
            "reps": g.size(),
            "truth_mean": g["truth"].mean(),
            "bias": g["err"].mean(),
            "mean_se": g["std_error"].mean(),
            "sd_error": g["err"].std(ddof=1),
            "rmse": np.sqrt(g["err"].apply(lambda e: float(np.mean(e**2)))),
            "coverage": g["covered"].mean(),
            "n_treated_mean": g["n_treated"].mean(),
        }
    ).reset_index()
    out["bias_over_se"] = out["bias"] / out["mean_se"]
    return out


def to_markdown(
    s: pd.DataFrame, command: str, seconds: float, n_persons: int, reps_done: int, reps_asked: int
) -> str:
    """The results note: command, run size and one table row per outcome × horizon."""
    status = (
        f"all {reps_asked} replications done"
        if reps_done >= reps_asked
        else f"PARTIAL: {reps_done} of {reps_asked} replications done when this table was written"
    )
    lines = [
        "# Monte Carlo through the real pipeline (default estimator)",
        "",
        "Made with (from the repository root):",
        "",
        "```bash",
        command,
        "```",
        "",
        f"{status}; {n_persons} persons per world; {seconds:.0f} s wall time. Each replication: "
        "`synth.generate` (distinct seed) → `io.read_inputs` → `linkage.link_participants` → "
        "`panel.person_months` → `cohort.build_cohort` (full pool) → `matching.estimate_propensity` + "
        "`match_nearest` (1:1, caliper 0.2 SD, exact on ref_month) → `panel.horizon_outcomes` → "
        "`estimate_effects` (weighted mean difference, CR1 by person). Truth: mean individual effect over the "
        "matched participants (`truth_participants.parquet`).",
        "",
        "| outcome | k | reps | mean truth | bias | bias/SE | RMSE | mean SE | SD(error) | coverage 95 % | "
        "mean n treated |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in s.itertuples():
        lines.append(
            f"| {r.outcome} | {r.horizon_months} | {r.reps} | {r.truth_mean:.4f} | {r.bias:+.4f} | "
            f"{r.bias_over_se:+.3f} | {r.rmse:.4f} | {r.mean_se:.4f} | {r.sd_error:.4f} | "
            f"{100 * r.coverage:.1f} % | {r.n_treated_mean:.0f} |"
        )
    if reps_done > 1:
        mc_se = np.sqrt(0.95 * 0.05 / reps_done)
        lines += [
            "",
            f"Monte Carlo SE of a 95 % coverage rate with {reps_done} replications: {100 * mc_se:.1f} points; "
            "of bias/SE: about 1/√reps = "
            f"{1 / np.sqrt(reps_done):.3f}.",
        ]
    return "\n".join(lines) + "\n"


def _run_command(csv: Path, persons: str) -> str:
    """The command equivalent to the replications a raw CSV holds (a run stopped early did fewer than asked)."""
    seeds = pd.read_csv(csv, usecols=["seed"])["seed"].drop_duplicates()
    return (
        f"nice -n 10 .venv/bin/python validation/montecarlo_pipeline.py --reps {len(seeds)} "
        f"--first {int(seeds.min()) - SEED0} --persons {persons} --out {csv.with_suffix('.md')}"
    )


def merge(csvs: list[Path], out: Path, reps_asked: int, persons: str) -> None:
    """Summarise the raw rows of runs split over processes (``--first``) into one results note."""
    est = pd.concat([pd.read_csv(c) for c in csvs], ignore_index=True)
    est = est.drop_duplicates(["seed", "outcome", "horizon_months"])
    per_rep = est.drop_duplicates("seed")
    n_persons = SMALL_PERSONS if persons == "small" else int(persons)
    first, last = int(per_rep.seed.min()), int(per_rep.seed.max())
    command = (
        f"# replications ran in separate processes, split with --first, then merged; seeds {first}..{last} "
        f"({per_rep.seed.nunique()} distinct)\n"
        + "\n".join(_run_command(c, persons) for c in csvs)
        + f"\n.venv/bin/python validation/montecarlo_pipeline.py --reps {reps_asked} --persons {persons} "
        f"--out {out} --merge {' '.join(str(c) for c in csvs)}"
    )
    seconds = float(per_rep["seconds_total"].sum())
    text = to_markdown(summarise(est), command, seconds, n_persons, per_rep.seed.nunique(), reps_asked)
    text = text.replace(" s wall time.", " s summed over replications (two processes in parallel).")
    out.write_text(text, encoding="utf-8")
    print(text)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--persons", default="4000", help=f"persons per world, or 'small' ({SMALL_PERSONS})")
    ap.add_argument("--seed0", type=int, default=SEED0, help="replication r uses seed seed0 + r")
    ap.add_argument("--first", type=int, default=0, help="first replication index (to split a run)")
    ap.add_argument("--out", type=Path, default=None, help="Markdown results file (raw rows go to OUT.csv)")
    ap.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        default=None,
        help="only summarise: combine the raw CSVs of runs split with --first (seeds counted once) into --out",
    )
    args = ap.parse_args(argv)
    if args.merge:
        merge(args.merge, args.out, args.reps, args.persons)
        return
    n_persons = SMALL_PERSONS if args.persons == "small" else int(args.persons)
    command = "nice -n 10 .venv/bin/python validation/montecarlo_pipeline.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    csv = args.out.with_suffix(".csv") if args.out else None
    if csv is not None and csv.exists() and args.first == 0:
        csv.unlink()
    t0 = time.perf_counter()
    frames = []
    for r in range(args.first, args.first + args.reps):
        one = one_replication(args.seed0 + r, n_persons)
        frames.append(one)
        if csv is not None:
            one.to_csv(csv, mode="a", header=not csv.exists(), index=False)
        done = r - args.first + 1
        print(
            f"rep {done}/{args.reps} seed {args.seed0 + r}: {one['seconds_total'].iloc[0]:.1f} s, "
            f"n treated {one['n_treated'].iloc[0]}",
            flush=True,
        )
        if args.out is not None and (done % 5 == 0 or done == args.reps):
            est = pd.read_csv(csv)
            args.out.write_text(
                to_markdown(
                    summarise(est),
                    command,
                    time.perf_counter() - t0,
                    n_persons,
                    est.seed.nunique(),
                    args.reps,
                ),
                encoding="utf-8",
            )
    est = pd.concat(frames, ignore_index=True)
    print(summarise(est).to_string(index=False))


if __name__ == "__main__":
    main()
