"""End-to-end truth check on a synthetic register world (``finsam_effekt.synth``) with known effects.

Runs the pipeline's stages read → link → panel → cohort → match → outcomes for an analysis config
(:func:`finsam_effekt.pipeline.run_until`, without the balance stage), estimates the effects with
:func:`finsam_effekt.estimation.estimate_effects`, and compares them with the truth of the *same* participants
(``truth_participants.parquet``: Y(with insats) − Y(without), per participant, joined on ``person_id`` and
``ref_month``), and compares the naive participants-vs-every-candidate difference too.

Usage::

    .venv/bin/python validation/truth_check.py CONFIG.yaml [--outcomes public_support self_support]

Prints one row per estimator × outcome × horizon: estimate, SE, truth over the matched participants, z =
(estimate − truth)/SE, and whether |z| < 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from finsam_effekt import pipeline as pl
from finsam_effekt.config import AnalysisConfig, load_config
from finsam_effekt.estimation import estimate_effects, event_study
from finsam_effekt.panel import horizon_outcomes


def prepare(config: Path | AnalysisConfig) -> pl.StageOutputs:
    """Run the stages up to the horizon outcomes (no balance: nothing here reads it) and return their results
    (``data``: cohort, match, outcomes, paths, …)."""
    cfg = config if isinstance(config, AnalysisConfig) else load_config(config)
    return pl.run_until(cfg, "outcomes", skip=("balance",))


def truth_frame(ctx: pl.StageOutputs, truth: pd.DataFrame, outcomes, horizons) -> pd.DataFrame:
    """Estimates (matched estimators and the naive difference) next to the truth over the same participants."""
    data = ctx.data["outcomes"]
    covs = [c for c in ctx.cfg.covariates if c in data.columns]
    res = estimate_effects(
        data,
        outcomes=list(outcomes),
        horizons=tuple(horizons),
        measures=("status",),
        estimators=("weighted_mean_diff", "regression_adjustment", "matched_did"),
        covariates=covs,
        pre_period=ctx.data["paths"],
    ).to_frame()
    # naive: participants vs every candidate person-month, unweighted, outcomes from the panel stage
    cohort = ctx.data["cohort"]
    ho = horizon_outcomes(
        cohort[["person_id", "ref_month", "treated"]].reset_index(drop=True),
        tuple(horizons),
        panel=ctx.data["panel"],
        population=ctx.table("population"),
        end_month=ctx.data["end_month"],
        self_support_threshold=ctx.cfg.outcomes.self_support_threshold_sek,
        con=ctx.con,
    )
    naive = estimate_effects(
        ho, outcomes=list(outcomes), horizons=tuple(horizons), measures=("status",), weights=None
    ).to_frame()
    naive = naive[naive.estimator == "weighted_mean_diff"].assign(estimator="naive_difference")
    out = pd.concat([res[res.subgroup == "all"], naive], ignore_index=True)
    treated = data[data["treated"] == 1][["person_id", "ref_month"]].astype(str)
    tm = treated.merge(
        truth.astype({"person_id": str, "ref_month": str}), on=["person_id", "ref_month"], how="left"
    )
    out["truth"] = [
        float(np.nanmean(tm[f"{o}_m{k}"])) for o, k in zip(out["outcome"], out["horizon_months"], strict=True)
    ]
    out["z"] = (out["estimate"] - out["truth"]) / out["std_error"]
    out["within_2se"] = out["z"].abs() < 2
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("config", type=Path)
    ap.add_argument("--outcomes", nargs="+", default=["public_support", "self_support"])
    ap.add_argument(
        "--event-study", action="store_true", help="also run the event study and its pre-trend test"
    )
    args = ap.parse_args()
    ctx = prepare(args.config)
    truth_path = Path(ctx.cfg.input_spec.tables["population"].path).parent / "truth_participants.parquet"
    truth = pd.read_parquet(truth_path)
    out = truth_frame(ctx, truth, args.outcomes, ctx.cfg.outcomes.horizons)
    cols = ["estimator", "outcome", "horizon_months", "estimate", "std_error", "truth", "z", "within_2se"]
    pd.set_option("display.width", 200)
    print(out[cols].to_string(index=False))
    if args.event_study:
        for o in args.outcomes:
            es = event_study(ctx.data["paths"], outcome=o, window=(-12, 12))
            print(f"pre-trend {o}: Wald {es.pretrend_wald:.2f}, df {es.pretrend_df}, p {es.pretrend_p:.3f}")


if __name__ == "__main__":
    main()
