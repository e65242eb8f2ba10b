"""End-to-end truth check on a synthetic register world (``finsam_effekt.synth``) with known effects.

Runs the pipeline's stages read → link → panel → cohort → match → outcomes for an analysis config
(:func:`finsam_effekt.pipeline.run_until`, without the balance stage), estimates the effects with
:func:`finsam_effekt.estimation.estimate_effects`, and compares them with the truth of the *same* participants
(``truth_participants.parquet``, per participant, joined on ``person_id`` and ``ref_month``), and compares the
naive participants-vs-every-candidate difference too. The truth is that of the config's estimand:
``later_treated: keep`` → Y(with) − Y(not now) (columns ``{o}_m{k}_not_now``; controls may start later),
``censor`` → Y(with) − Y(without any insats during follow-up) (``{o}_m{k}``; with IPCW when the outcomes carry
``ipcw_{k}`` weights). Column ``truth_kind`` says which.

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
from finsam_effekt.cohort import censor_at_later_start
from finsam_effekt.config import AnalysisConfig, load_config
from finsam_effekt.estimation import MATCHED_ESTIMATORS, estimate_effects, event_study
from finsam_effekt.options import MEASURES
from finsam_effekt.panel import horizon_outcomes
from finsam_effekt.pipeline.stages import outcome_sources
from finsam_effekt.schema import OUTCOMES, outcome_column

#: The estimators the command reports: those on the matched sample (``estimation.REGISTRY``).
ESTIMATORS = MATCHED_ESTIMATORS


def prepare(config: Path | AnalysisConfig, stage: str = "outcomes") -> pl.StageResults:
    """Run the pipeline's stages up to ``stage`` (default: the horizon outcomes and paths of the matched sample)
    with :func:`finsam_effekt.pipeline.run_until`, without the balance stage (nothing here reads it)."""
    cfg = config if isinstance(config, AnalysisConfig) else load_config(config)
    return pl.run_until(cfg, stage, skip=("balance",))


def outcome_kw(state: pl.StageResults) -> dict:
    """The keyword arguments the outcomes stage gives ``panel.horizon_outcomes`` and ``panel.outcome_paths``."""
    return outcome_sources(state.cfg, state.read, state.panel)


def cohort_outcomes(state: pl.StageResults, horizons) -> pd.DataFrame:
    """``person_id``, ``ref_month``, ``treated`` and the horizon outcomes of every cohort row (treated and every
    candidate control person-month), in cohort order: the sample of the naive difference."""
    keys = state.cohort.cohort[["person_id", "ref_month", "treated"]].reset_index(drop=True)
    return horizon_outcomes(keys, tuple(horizons), **outcome_kw(state))


def matched_outcomes(state: pl.StageResults, horizons, cohort_ho: pd.DataFrame | None = None) -> pd.DataFrame:
    """The matched sample (``state.match.matched``, after the match stage) with its horizon outcomes, controls
    censored at their own start under ``later_treated: censor`` — what the outcomes stage computes, at
    ``horizons`` only.

    With ``cohort_ho`` (:func:`cohort_outcomes` at the same horizons) the outcomes are taken from it instead of
    being computed a second time: ``horizon_outcomes`` is a function of each row's (``person_id``, ``ref_month``)
    only, so the values are the same.
    """
    matched = state.match.matched
    if cohort_ho is None:
        out = horizon_outcomes(matched.reset_index(drop=True), tuple(horizons), **outcome_kw(state))
    else:
        pos = state.cohort.cohort.index.get_indexer(matched.index)
        if (pos < 0).any():
            raise RuntimeError("matched rows not found in the cohort (index changed?)")
        cols = [outcome_column(o, k, m) for k in horizons for o in OUTCOMES for m in MEASURES]
        out = matched.reset_index(drop=True)
        out[cols] = cohort_ho[cols].iloc[pos].to_numpy()
    if state.cfg.later_treated == "censor":
        out = censor_at_later_start(out)
    return out


def truth_frame(
    state: pl.StageResults,
    truth: pd.DataFrame,
    outcomes,
    horizons,
    *,
    estimators=ESTIMATORS,
    data: pd.DataFrame | None = None,
    cohort_ho: pd.DataFrame | None = None,
    naive: bool = True,
) -> pd.DataFrame:
    """Estimates (matched estimators and the naive difference) next to the truth over the same participants.

    ``data`` is the matched sample with outcomes (default: the outcomes stage's ``state.outcomes.outcomes``);
    ``cohort_ho`` the naive sample (default: :func:`cohort_outcomes`); ``naive=False`` leaves the naive
    difference out. ``matched_did`` needs the stage's ``state.outcomes.path_table()`` (its pre-period).
    """
    data = state.outcomes.outcomes if data is None else data
    covs = [c for c in state.cfg.covariates if c in data.columns]
    res = estimate_effects(
        data,
        outcomes=list(outcomes),
        horizons=tuple(horizons),
        measures=("status",),
        estimators=tuple(estimators),
        covariates=covs,
        pre_period=state.outcomes.path_table() if "matched_did" in estimators else None,
        horizon_weights="ipcw_" if "ipcw_1" in data.columns else None,
    ).to_frame()
    out = res[res.subgroup == "all"]
    if naive:  # participants vs every candidate person-month, unweighted, outcomes from the panel stage
        ho = cohort_outcomes(state, horizons) if cohort_ho is None else cohort_ho
        nd = estimate_effects(
            ho, outcomes=list(outcomes), horizons=tuple(horizons), measures=("status",), weights=None
        ).to_frame()
        nd = nd[nd.estimator == "weighted_mean_diff"].assign(estimator="naive_difference")
        out = pd.concat([out, nd], ignore_index=True)
    out = out.reset_index(drop=True)
    treated = data[data["treated"] == 1][["person_id", "ref_month"]].astype(str)
    tm = treated.merge(
        truth.astype({"person_id": str, "ref_month": str}), on=["person_id", "ref_month"], how="left"
    )
    # the truth of the design's estimand: keep → against "not now" (Sianesi), censor → against no insats
    suffix = (
        "_not_now" if state.cfg.later_treated == "keep" and any(c.endswith("_not_now") for c in tm) else ""
    )
    out["truth_kind"] = "not_now" if suffix else "never"
    out["truth"] = [
        float(np.nanmean(tm[f"{o}_m{k}{suffix}"]))
        for o, k in zip(out["outcome"], out["horizon_months"], strict=True)
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
            es = event_study(ctx.outcomes.path_table(), outcome=o, window=(-12, 12))
            print(f"pre-trend {o}: Wald {es.pretrend_wald:.2f}, df {es.pretrend_df}, p {es.pretrend_p:.3f}")


if __name__ == "__main__":
    main()
