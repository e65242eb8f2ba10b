"""Monte Carlo through the real pipeline: synth.generate → read → link → panel → cohort → match → estimate.

Where ``validation/montecarlo.py`` simulates a compact person-month world in memory, this study runs every
replication through the package's own stages and public functions, exactly as ``finsam_effekt.pipeline.run``
composes them for the shipped example design (``analyses/example_synthetic/config.yaml``):

1. ``synth.generate`` writes a register world of one kind (:data:`WORLDS`: ``SynthConfig(persons=N, seed=s,
   ...)``, distinct seed per replication, window 2016-01..2023-12, all register mess switched on): ``plain``
   (every participant linkable, no pre-entry dip: the world before issue 15), ``dip`` (entry also follows the
   main source of support in the last one or two months, ``pre_entry_dip=1``), ``contaminated`` (45 % of the
   participants anonymous and in the comparison pool: the generator's default), ``dip_contaminated`` (both)
   and ``null_dip_contaminated`` (both, no effect: ``effect_scale=0``);
2. ``pipeline.run_until(cfg, "cohort")``: the pipeline's own stages ``io.read_inputs`` (read and validate),
   ``linkage.link_participants``, ``panel.person_months`` and ``cohort.build_cohort`` (the staggered-entry
   risk-set cohort: participants starting in the analysis window, candidate controls per month u; candidate
   sample rate 1.0 here, i.e. the full pool, because the worlds are small);
3. ``matching.match_cohort`` with the config's matching settings — the pipeline's match stage: logit propensity
   score with calendar-month effects, 1:1 nearest neighbour without replacement, caliper 0.2 SD of the score,
   exact on ``ref_month``, largest first (MatchIt's ``method="nearest"``);
4. ``panel.horizon_outcomes`` of the matched sample, then ``estimation.estimate_effects`` with the default
   estimator (weighted mean difference, CR1 standard errors clustered by person) on the same matched sample for
   each design: **keep** — outcomes as they are (``later_treated: keep``); **censor** — controls' outcomes
   censored from their own later insats start (``cohort.censor_at_later_start``; ``later_treated: censor`` with
   ``censoring_weights: none``); **censor_ipcw** — the same, with the controls still uncensored at u+k weighted
   by the inverse probability of not having started by then (``cohort.later_start_ipcw``, the pipeline's default
   for ``later_treated: censor``).

Truth of a replication: the mean over the *matched* participants of their individual effect in month u+k, from
``truth_participants.parquet`` (common random numbers, so it is the sample ATT of exactly the persons the estimate
is about). Per world, design, outcome and horizon the study reports bias = mean(estimate − truth), bias/SE (bias
over the mean SE), mean z = mean((estimate − truth) / SE), RMSE, mean SE, the SD of the error and the coverage of
the 95 % CI [estimate ± 1.96 SE] for the truth.

Contamination: every replication also runs ``contamination.expected_contamination`` (the pipeline's contamination
stage: the expected share ``s`` of matched controls who are anonymous participants) and records the
dilution-corrected estimate ``estimate / (1 − s)`` (SE likewise) next to the plain one, and the true share among
the matched controls from ``truth_anonymous.parquet`` (anonymous participants whose first start is at or before
u). And the balance of the status at u−1 after matching (SMD of ``ps_u1``, public support in the month before).

Estimand note: the two designs target two estimands, and each is compared with its own truth.

* ``keep`` (controls who start an insats later stay controls): the effect of starting in month u against *not
  starting in month u, but possibly later* (Sianesi 2004) — truth ``not_now``, the columns ``{o}_m{k}_not_now``
  of ``truth_participants.parquet`` (Y(start at u) − Y(not at u, later starts as they would happen)).
* ``censor`` and ``censor_ipcw`` (controls followed only up to their own start): the effect of starting in u
  against *no insats during follow-up* — truth ``never``, the columns ``{o}_m{k}`` (Y(start at u) − Y(no
  insats)). Unweighted (``censor``) this is valid when censoring at the own start is non-informative given the
  matched history; ``censor_ipcw`` needs only that the later start is ignorable given the register history up to
  each month (Robins & Finkelstein 2000).

A world generated before the ``_not_now`` columns existed has only the ``never`` truth; ``keep`` is then compared
with it (truth ``never``, marked † in the table) and its bias includes the dilution by controls' later starts
(their own effects pull the contrast towards zero, growing with k) — an estimand difference, not a defect.

Usage (the committed ``validation/RESULTS_PIPELINE.md`` states the exact command it was made with)::

    nice -n 10 .venv/bin/python validation/montecarlo_pipeline.py --world dip --reps 200 --persons 5000 \
        --out validation/results_worlds/dip.md      # --resume continues a stopped run
    .venv/bin/python validation/montecarlo_pipeline.py --reps 2 --persons small   # smoke run

Results are appended to ``<out>.csv`` after each replication (one row per replication × design × outcome ×
horizon: ``seed``, ``design``, ``truth`` (``not_now``/``never``), ``outcome``, ``horizon_months``, ``estimate``,
``std_error``, ``true_effect``, …) and the Markdown table is rewritten every few replications, so an interrupted
run still leaves a table with the number of replications done.
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

from finsam_effekt import months
from finsam_effekt.balance import balance_stats
from finsam_effekt.cohort import censor_at_later_start, former_participants
from finsam_effekt.config import AnalysisConfig, parse_config
from finsam_effekt.contamination import expected_contamination, plateau_corrected, registration_counts
from finsam_effekt.estimation import estimate_effects
from finsam_effekt.matching import match_cohort
from finsam_effekt.panel import horizon_outcomes
from finsam_effekt.pipeline import later_start_weights, run_until
from finsam_effekt.pipeline.stages import cohort_arguments, outcome_sources
from finsam_effekt.synth import SynthConfig, generate

OUTCOMES = ("public_support", "self_support")
HORIZONS = (3, 6, 12)
SMALL_PERSONS = 1500
#: synth window and the analysis window (participants starting in it); 2016-01 .. 2017-12 gives the 24 months of
#: history the eligibility rule needs, 2023-12 leaves ≥ 12 months of follow-up after the last start.
SYNTH_START, SYNTH_END = "2016-01", "2023-12"
WINDOW = ("2018-01", "2022-06")
SEED0 = 1000
#: The kinds of world, in table order: name → ``SynthConfig`` settings besides persons, seed and window.
WORLDS: dict[str, dict] = {
    "plain": {"contamination": False},
    "dip": {"contamination": False, "pre_entry_dip": 1.0},
    "contaminated": {},
    "dip_contaminated": {"pre_entry_dip": 1.0},
    "null_dip_contaminated": {"pre_entry_dip": 1.0, "effect_scale": 0.0},
}
#: The world of a run without ``--world``: the generator's default.
DEFAULT_WORLD = "contaminated"


def analysis_config(mapping: Path, sample_rate: float = 1.0) -> AnalysisConfig:
    """The design of ``analyses/example_synthetic`` (matching and eligibility); the full candidate pool, or a
    seeded per-month sample of it at ``sample_rate`` (``eligibility.candidate_sample_rate``)."""
    data = {
        "inputs": str(mapping),
        "window": {"start": WINDOW[0], "end": WINDOW[1]},
        "age": {"min": 16, "max": 64},
        "eligibility": {
            "rule": "recent_public_support",
            "lookback_months": 12,
            "min_history_months": 24,
            "candidate_sample_rate": sample_rate,
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


#: The designs, in table order: name → the truth it is compared with (``truth`` column).
DESIGNS = {"keep": "not_now", "censor": "never", "censor_ipcw": "never"}


def analyse(world: Path, cfg: AnalysisConfig | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Run read → link → panel → cohort (``pipeline.run_until``) → match (``matching.match_cohort``) → horizon
    outcomes → effects on a generated world, for every design (:data:`DESIGNS`) on the same matched sample, and
    the contamination stage's expected share.

    Returns the effects (``EffectResults.to_frame()``, subgroup "all", status measure, with a ``design`` column,
    designs in :data:`DESIGNS` order), the matched horizon outcomes as they are (one row per matched unit, with
    ``treated``, ``weights``, ``person_id``, ``ref_month``, ``later_start_month``) and a dict with the expected
    share of contaminated controls (``share_est``, ``share_now_est``, ``share_before_est``) and the SMD of
    ``ps_u1`` after matching (``smd_ps_u1``).
    """
    cfg = cfg or analysis_config(world / "mapping.yaml")
    state = run_until(cfg, "cohort")
    kmax = max(HORIZONS)
    try:
        co = state.cohort.cohort
        res = match_cohort(co, cfg.matching, covariates=cfg.covariates, seed=cfg.seed)
        matched = res.matched_data()
        # the contamination stage (pipeline.stages.contamination) without the effects it corrects
        former = former_participants(
            state.link.participants, **cohort_arguments(cfg, state.read, state.link, state.panel)
        )
        cont = expected_contamination(
            co,
            res.propensity,
            res.weights,
            registration_counts(state.read.table("sus_registrations"), con=state.read.con),
            former,
        )
        extra = {
            "share_est": cont.share_matched,
            "share_now_est": cont.share_matched_now,
            "share_before_est": cont.share_matched_before,
            "smd_ps_u1": balance_stats(co["ps_u1"].to_numpy(float), co["treated"].to_numpy(), res.weights)[
                "smd"
            ],
        }
        ho = horizon_outcomes(
            matched.reset_index(drop=True),
            # the censoring weights need every month 1..k (who is still observed when)
            tuple(range(1, kmax + 1)),
            **outcome_sources(cfg, state.read, state.panel),
        )
        # censor_ipcw: as the pipeline's outcomes stage with censoring_weights: ipcw
        cw = later_start_weights(cfg, state.read, state.link, state.panel, ho, kmax)
        samples: list[tuple[str, pd.DataFrame, str | None]] = [
            ("keep", ho, None),
            ("censor", censor_at_later_start(ho), None),
            ("censor_ipcw", censor_at_later_start(pd.concat([ho, cw.weights], axis=1)), "ipcw_"),
        ]
    finally:
        state.read.con.close()
    frames = []
    for design, data, horizon_weights in samples:
        eff = estimate_effects(
            data,
            outcomes=list(OUTCOMES),
            horizons=HORIZONS,
            measures=("status",),
            estimators=["weighted_mean_diff"],
            se=cfg.inference.se,
            cluster=cfg.inference.cluster,
            horizon_weights=horizon_weights,
        ).to_frame()
        frames.append(eff[eff["subgroup"] == "all"].assign(design=design))
    return pd.concat(frames, ignore_index=True), ho, extra


def matched_truth(ho: pd.DataFrame, truth: pd.DataFrame) -> dict[tuple[str, str, int], tuple[str, float]]:
    """Mean individual true effect over the matched participants whose month u+k is observed, per design.

    Returns ``{(design, outcome, k): (truth kind, value)}`` for every design of :data:`DESIGNS`: ``censor`` and
    ``censor_ipcw`` → ``never`` (columns ``{o}_m{k}``); ``keep`` → ``not_now`` (``{o}_m{k}_not_now``), or
    ``never`` when the world's truth has no ``_not_now`` columns (a generator before them).
    """
    tr = ho.loc[ho["treated"] == 1, ["person_id", "ref_month"]].astype(str)
    tm = tr.merge(
        truth.astype({"person_id": str, "ref_month": str}), on=["person_id", "ref_month"], how="left"
    )
    if len(tm) != len(tr):
        raise RuntimeError("truth_participants has duplicate (person_id, ref_month) rows")
    out = {}
    for o in OUTCOMES:
        for k in HORIZONS:
            never = ("never", float(np.nanmean(tm[f"{o}_m{k}"])))
            nn = f"{o}_m{k}_not_now"
            for d, kind in DESIGNS.items():
                use_nn = kind == "not_now" and nn in tm
                out[(d, o, k)] = ("not_now", float(np.nanmean(tm[nn]))) if use_nn else never
    return out


def contaminated_share(ho: pd.DataFrame, anonymous: pd.DataFrame) -> float:
    """The true share (matching weights) of matched controls who are anonymous participants whose first start is
    at or before their reference month u (``truth_anonymous.parquet``)."""
    c = ho[ho["treated"] == 0]
    first = pd.Series(
        months.to_index(anonymous["ref_month"].astype(str)), index=anonymous["person_id"].astype(str)
    )
    start = first.reindex(c["person_id"].astype(str)).to_numpy(float)
    hit = start <= months.to_index(c["ref_month"].astype(str))  # NaN (not anonymous) compares False
    w = c["weights"].to_numpy(float)
    return float((w * hit).sum() / w.sum())


def one_replication(
    seed: int,
    n_persons: int,
    workdir: Path | None = None,
    world: str = DEFAULT_WORLD,
    sample_rate: float = 1.0,
) -> pd.DataFrame:
    """Generate one world of kind ``world`` (:data:`WORLDS`) with ``seed`` and ``n_persons``, analyse it (with the
    candidate pool sampled at ``sample_rate`` per month), return one row per design × outcome × horizon."""
    tmp = Path(tempfile.mkdtemp(prefix=f"mcp{seed}_", dir=workdir))
    try:
        t0 = time.perf_counter()
        generate(
            tmp, SynthConfig(persons=n_persons, seed=seed, start=SYNTH_START, end=SYNTH_END, **WORLDS[world])
        )
        t_gen = time.perf_counter() - t0
        eff, ho, extra = analyse(tmp, analysis_config(tmp / "mapping.yaml", sample_rate))
        truth = matched_truth(ho, pd.read_parquet(tmp / "truth_participants.parquet"))
        share_true = contaminated_share(ho, pd.read_parquet(tmp / "truth_anonymous.parquet"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows = []
    f = 1.0 / (1.0 - extra["share_est"])
    for r in eff.itertuples():
        kind, value = truth[(r.design, r.outcome, int(r.horizon_months))]
        rows.append(
            {
                "seed": seed,
                "world": world,
                "sample_rate": sample_rate,
                "design": r.design,
                "truth": kind,
                "outcome": r.outcome,
                "horizon_months": int(r.horizon_months),
                "estimate": r.estimate,
                "std_error": r.std_error,
                "true_effect": value,
                "estimate_corrected": r.estimate * f,
                "std_error_corrected": r.std_error * f,
                "share_est": extra["share_est"],
                "share_now_est": extra["share_now_est"],
                "share_before_est": extra["share_before_est"],
                "share_true": share_true,
                "smd_ps_u1": extra["smd_ps_u1"],
                "n_treated": int(r.n_treated),
                "n_control": int(r.n_control),
                "seconds_generate": round(t_gen, 2),
                "seconds_total": round(time.perf_counter() - t0, 2),
            }
        )
    return pd.DataFrame(rows)


Z95 = 1.959963984540054


def _worlds_in(est: pd.DataFrame) -> pd.Series:
    """The world column (rows of a CSV written before worlds existed are the generator's world then: plain)."""
    return est["world"] if "world" in est.columns else pd.Series("plain", index=est.index)


def with_plateau(est: pd.DataFrame) -> pd.DataFrame:
    """The rows with the plateau correction of the contamination stage (``contamination.plateau_corrected``):
    ``estimate_plateau``, ``std_error_plateau`` from each replication's own expected shares and its estimate at
    the longest horizon (same world, seed, design and outcome)."""
    d = est.assign(world=_worlds_in(est))
    keys = ["world", "seed", "design", "outcome"]
    kmax = d.groupby(keys)["horizon_months"].transform("max")
    long = d[d["horizon_months"] == kmax].set_index(keys)["estimate"]
    a = long.reindex(pd.MultiIndex.from_frame(d[keys])).to_numpy(float)
    return d.assign(
        estimate_plateau=plateau_corrected(
            d["estimate"], a, d["share_now_est"], d["share_before_est"], d["horizon_months"]
        ),
        std_error_plateau=d["std_error"] / (1.0 - d["share_now_est"]),
    )


def summarise(est: pd.DataFrame, corrected: str | None = None) -> pd.DataFrame:
    """Bias, bias/SE, mean z, RMSE, mean SE, SD of the error and 95 % CI coverage per world × design × truth ×
    outcome × horizon (worlds in :data:`WORLDS` order, designs in :data:`DESIGNS` order); ``corrected``:
    ``"plain"`` of the dilution-corrected estimates ``estimate / (1 − s)``, ``"plateau"`` of the plateau
    correction (:func:`with_plateau`)."""
    d = est.assign(world=_worlds_in(est))
    if corrected == "plain":
        d = d.assign(estimate=d["estimate_corrected"], std_error=d["std_error_corrected"])
    elif corrected == "plateau":
        d = with_plateau(d)
        d = d.assign(estimate=d["estimate_plateau"], std_error=d["std_error_plateau"])
    d = d.assign(err=d["estimate"] - d["true_effect"])
    d["z"] = d["err"] / d["std_error"]
    d["covered"] = (d["err"].abs() <= Z95 * d["std_error"]).astype(float)
    d["world"] = pd.Categorical(d["world"], categories=list(WORLDS), ordered=True)
    d["design"] = pd.Categorical(d["design"], categories=list(DESIGNS), ordered=True)
    g = d.groupby(["world", "design", "truth", "outcome", "horizon_months"], sort=True, observed=True)
    out = pd.DataFrame(
        {
            "reps": g.size(),
            "truth_mean": g["true_effect"].mean(),
            "bias": g["err"].mean(),
            "mean_se": g["std_error"].mean(),
            "mean_z": g["z"].mean(),
            "sd_error": g["err"].std(ddof=1),
            "rmse": np.sqrt(g["err"].apply(lambda e: float(np.mean(e**2)))),
            "coverage": g["covered"].mean(),
            "n_treated_mean": g["n_treated"].mean(),
            "n_control_mean": g["n_control"].mean(),
        }
    ).reset_index()
    out["world"] = out["world"].astype(str)
    out["design"] = out["design"].astype(str)
    out["bias_over_se"] = out["bias"] / out["mean_se"]
    return out


def summarise_worlds(est: pd.DataFrame) -> pd.DataFrame:
    """Per world: replications, the expected and the true share of contaminated matched controls (means over
    replications) and the SMD of ``ps_u1`` after matching (mean and mean |SMD|)."""
    per_rep = est.assign(world=_worlds_in(est)).drop_duplicates(["world", "seed"])
    if "share_est" not in per_rep.columns:
        return pd.DataFrame()
    per_rep = per_rep.assign(world=pd.Categorical(per_rep["world"], categories=list(WORLDS), ordered=True))
    g = per_rep.groupby("world", observed=True)
    out = pd.DataFrame(
        {
            "reps": g.size(),
            "share_true": g["share_true"].mean(),
            "share_est": g["share_est"].mean(),
            "share_now_est": g["share_now_est"].mean(),
            "share_before_est": g["share_before_est"].mean(),
            "smd_ps_u1": g["smd_ps_u1"].mean(),
            "abs_smd_ps_u1": g["smd_ps_u1"].apply(lambda x: float(np.mean(np.abs(x)))),
            "seconds": g["seconds_total"].mean(),
        }
    ).reset_index()
    out["world"] = out["world"].astype(str)
    return out


def _row(r, mark: str = "") -> str:
    return (
        f"| {r.world} | {r.design} | {r.truth}{mark} | {r.outcome} | {r.horizon_months} | {r.reps} | "
        f"{r.truth_mean:.4f} | {r.bias:+.4f} | {r.bias_over_se:+.3f} | {r.mean_z:+.3f} | {r.rmse:.4f} | "
        f"{r.mean_se:.4f} | {r.sd_error:.4f} | {100 * r.coverage:.1f} % | {r.n_treated_mean:.0f} | "
        f"{r.n_control_mean:.0f} |"
    )


_HEADER = (
    "| world | design | truth | outcome | k | reps | mean truth | bias | bias/SE | mean z | RMSE | mean SE | "
    "SD(error) | coverage 95 % | mean n treated | mean n control |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def to_markdown(
    est: pd.DataFrame, command: str, seconds: float, n_persons: int, reps_done: int, reps_asked: int
) -> str:
    """The results note: command, run size, the main table (one row per world × design × outcome × horizon), the
    dilution-corrected rows of the contaminated worlds and the per-world shares and balance."""
    s = summarise(est)
    status = (
        f"all {reps_asked} replications done"
        if reps_done >= reps_asked
        else f"PARTIAL: {reps_done} of {reps_asked} replications done when this table was written"
    )
    no_not_now = bool(((s["design"] == "keep") & (s["truth"] == "never")).any())
    lines = [
        "# Monte Carlo through the real pipeline (default estimator, both later-treated designs, kinds of world)",
        "",
        "Made with (from the repository root):",
        "",
        "```bash",
        command,
        "```",
        "",
        f"{status}; {n_persons} persons per world; {seconds:.0f} s wall time. Each replication: "
        "`synth.generate` (distinct seed; the kind of world in the `world` column, see "
        '`validation/montecarlo_pipeline.py` `WORLDS`) → `pipeline.run_until(cfg, "cohort")` (`io.read_inputs` → '
        "`linkage.link_participants` → `panel.person_months` → `cohort.build_cohort`, full pool) → "
        "`matching.match_cohort` (propensity score on the default covariates, 1:1, caliper 0.2 SD, exact on "
        "ref_month) → `panel.horizon_outcomes` → `estimate_effects` (weighted mean difference, CR1 by person) on "
        "the same matched sample per design: `keep` (controls' outcomes as they are, `later_treated: keep`), "
        "`censor` (controls censored from their own later start, `cohort.censor_at_later_start`: "
        "`later_treated: censor` with `censoring_weights: none`) and "
        "`censor_ipcw` (the same, uncensored controls weighted by `cohort.later_start_ipcw`: the pipeline's "
        "default for `later_treated: censor`). Truth: mean individual effect over the matched participants "
        "(`truth_participants.parquet`) against `not_now` (not starting in month u, possibly later: columns "
        "`{o}_m{k}_not_now`, the estimand of `keep`) or `never` (no insats during follow-up: `{o}_m{k}`, the "
        "estimand of `censor` and `censor_ipcw`). mean z = mean((estimate − truth) / SE).",
        "",
        _HEADER,
    ]
    for r in s.itertuples():
        lines.append(_row(r, " †" if r.design == "keep" and r.truth == "never" else ""))
    if no_not_now:
        lines += [
            "",
            "† The worlds' `truth_participants.parquet` has no `_not_now` columns (generated before they "
            "existed): `keep` is compared with the `never` truth, so its bias includes the dilution by controls "
            "who start an insats later (an estimand difference, not a defect of the estimator).",
        ]
    if "estimate_corrected" in est.columns:
        for kind, title in (
            ("plain", "Dilution-corrected estimates (contamination stage: estimate / (1 − expected share))"),
            (
                "plateau",
                "Dilution-corrected estimates, plateau (contamination stage: (estimate + s_before · A) / "
                "(1 − s_now), A = the 12-month estimate / (1 − s))",
            ),
        ):
            sc = summarise(est, corrected=kind)
            sc = sc[sc["world"].str.contains("contaminated")]
            if len(sc):
                lines += ["", f"## {title}", "", _HEADER, *(_row(r) for r in sc.itertuples())]
        sw = summarise_worlds(est)
        if len(sw):
            lines += [
                "",
                "## Contaminated controls and the status at u−1, per world",
                "",
                "Share of matched controls (matching weights) who are anonymous participants that started at or "
                "before u: true (`truth_anonymous.parquet`) and expected by the contamination stage (starting in "
                "u, started before u); SMD of `ps_u1` (public support in the month before u) after matching.",
                "",
                "| world | reps | true share | expected share | of which starting in u | of which before u | "
                "mean SMD ps_u1 | mean abs SMD ps_u1 | s per replication |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
            for r in sw.itertuples():
                lines.append(
                    f"| {r.world} | {r.reps} | {100 * r.share_true:.2f} % | {100 * r.share_est:.2f} % | "
                    f"{100 * r.share_now_est:.2f} % | {100 * r.share_before_est:.2f} % | {r.smd_ps_u1:+.3f} | "
                    f"{r.abs_smd_ps_u1:.3f} | {r.seconds:.1f} |"
                )
    if reps_done > 1:
        mc_se = np.sqrt(0.95 * 0.05 / reps_done)
        lines += [
            "",
            f"Monte Carlo SE of a 95 % coverage rate with {reps_done} replications: {100 * mc_se:.1f} points; "
            "of bias/SE and mean z: about 1/√reps = "
            f"{1 / np.sqrt(reps_done):.3f}.",
        ]
    return "\n".join(lines) + "\n"


def _run_command(csv: Path, persons: str) -> str:
    """The command equivalent to the replications a raw CSV holds (a run stopped early did fewer than asked)."""
    d = pd.read_csv(csv, usecols=lambda c: c in ("seed", "world"))
    seeds = d["seed"].drop_duplicates()
    world = f"--world {d['world'].iloc[0]} " if "world" in d.columns and len(d) else ""
    return (
        f"nice -n 10 .venv/bin/python validation/montecarlo_pipeline.py {world}--reps {len(seeds)} "
        f"--first {int(seeds.min()) - SEED0} --persons {persons} --out {csv.with_suffix('.md')}"
    )


def merge(csvs: list[Path], out: Path, reps_asked: int, persons: str) -> None:
    """Summarise the raw rows of runs split over processes (``--first``) or worlds (``--world``) into one
    results note."""
    est = pd.concat([pd.read_csv(c) for c in csvs], ignore_index=True)
    if not {"design", "truth", "true_effect"} <= set(est.columns):
        raise SystemExit(
            "merge: the CSVs lack the design/truth/true_effect columns (written by a version before both "
            "designs were estimated); rerun those replications"
        )
    est = est.assign(world=_worlds_in(est))
    est = est.drop_duplicates(["world", "seed", "design", "outcome", "horizon_months"])
    per_rep = est.drop_duplicates(["world", "seed"])
    n_persons = SMALL_PERSONS if persons == "small" else int(persons)
    first, last = int(per_rep.seed.min()), int(per_rep.seed.max())
    reps_done = int(per_rep.groupby("world").size().min())
    command = (
        f"# replications ran in separate processes (split with --first and by --world), then merged; seeds "
        f"{first}..{last}\n"
        + "\n".join(_run_command(c, persons) for c in csvs)
        + f"\n.venv/bin/python validation/montecarlo_pipeline.py --reps {reps_asked} --persons {persons} "
        f"--out {out} --merge {' '.join(str(c) for c in csvs)}"
    )
    seconds = float(per_rep["seconds_total"].sum())
    text = to_markdown(est, command, seconds, n_persons, reps_done, reps_asked)
    text = text.replace(" s wall time.", " s summed over replications (processes in parallel).")
    out.write_text(text, encoding="utf-8")
    print(text)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--persons", default="4000", help=f"persons per world, or 'small' ({SMALL_PERSONS})")
    ap.add_argument("--world", default=DEFAULT_WORLD, choices=list(WORLDS), help="the kind of world")
    ap.add_argument("--seed0", type=int, default=SEED0, help="replication r uses seed seed0 + r")
    ap.add_argument(
        "--sample-rate",
        type=float,
        default=1.0,
        help="eligibility.candidate_sample_rate: 1 = the full pool; e.g. 0.1 = a seeded 10 %% sample per month",
    )
    ap.add_argument("--first", type=int, default=0, help="first replication index (to split a run)")
    ap.add_argument("--out", type=Path, default=None, help="Markdown results file (raw rows go to OUT.csv)")
    ap.add_argument(
        "--resume",
        action="store_true",
        help="keep OUT.csv and skip the replications it already holds (continue a stopped run)",
    )
    ap.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        default=None,
        help="only summarise: combine the raw CSVs of runs split with --first/--world into --out",
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
    done_seeds: set[int] = set()
    if csv is not None and csv.exists():
        if args.resume:
            done_seeds = set(pd.read_csv(csv, usecols=["seed"])["seed"].astype(int))
        elif args.first == 0:
            csv.unlink()
    t0 = time.perf_counter()
    frames = []
    for r in range(args.first, args.first + args.reps):
        seed = args.seed0 + r
        if seed in done_seeds:
            continue
        one = one_replication(seed, n_persons, world=args.world, sample_rate=args.sample_rate)
        frames.append(one)
        if csv is not None:
            if csv.exists():  # append in the file's own columns (a file from before a column was added)
                head = list(pd.read_csv(csv, nrows=0).columns)
                one.reindex(columns=head).to_csv(csv, mode="a", header=False, index=False)
            else:
                one.to_csv(csv, index=False)
        done = r - args.first + 1
        print(
            f"{args.world} rep {done}/{args.reps} seed {seed}: {one['seconds_total'].iloc[0]:.1f} s, "
            f"n treated {one['n_treated'].iloc[0]}",
            flush=True,
        )
        if args.out is not None and (done % 5 == 0 or done == args.reps):
            est = pd.read_csv(csv)
            args.out.write_text(
                to_markdown(est, command, time.perf_counter() - t0, n_persons, est.seed.nunique(), args.reps),
                encoding="utf-8",
            )
    if frames:
        est = pd.concat(frames, ignore_index=True)
        print(summarise(est).to_string(index=False))


if __name__ == "__main__":
    main()
