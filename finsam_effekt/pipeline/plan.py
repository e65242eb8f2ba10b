"""What each stage will do with a given config, in words: the plan ``finsam-effekt explain`` prints."""

from __future__ import annotations

from ..config import AnalysisConfig


def read(cfg: AnalysisConfig) -> str:
    return (
        f"read {len(cfg.input_spec.tables)} input tables ({', '.join(cfg.input_spec.tables)}) into canonical "
        "tables and stop with a message on any error (io.read_inputs)"
    )


def link(cfg: AnalysisConfig) -> str:
    return (
        "drop anonymous registrations, merge double registrations into episodes (gap "
        f"{cfg.linkage.episode_gap_days} days), take the first linkable start as reference month u, find persons in "
        "the population and count the attrition at each step (linkage.link_participants)"
    )


def panel(cfg: AnalysisConfig) -> str:
    return (
        "build the person-month panel of nettodagar, SEK per benefit group, social assistance and earnings; "
        f"self-support at ≥ {cfg.outcomes.self_support_threshold_sek:g} SEK/month (panel.person_months)"
    )


def cohort(cfg: AnalysisConfig) -> str:
    return (
        f"participants starting {cfg.window.start}..{cfg.window.end} aged {cfg.age.min}-{cfg.age.max} and, per "
        f"month u, candidate controls: residents not in any insats by u with rule {cfg.eligibility.rule} and ≥ "
        f"{cfg.eligibility.min_history_months} months of register history (as the participants) (sample rate "
        f"{cfg.eligibility.candidate_sample_rate:g}); register-history covariates at u (cohort.build_cohort, "
        "panel.history_features)"
    )


def match(cfg: AnalysisConfig) -> str:
    m = cfg.matching
    te = " + calendar-month effects" if m.time_effects else ""
    if m.method == "ipw":
        trim = f", scores clipped to [{m.ipw_trim}, {1 - m.ipw_trim}]" if m.ipw_trim else ""
        return (
            f"ipw: propensity score (logit{te}) on {len(cfg.covariates)} covariates; ATT weights e/(1−e) for "
            f"every candidate control person-month{trim} (matching.match_cohort; no matched pairs)"
        )
    cal = (
        "no caliper"
        if m.caliper is None
        else f"caliper {m.caliper}{' SD' if m.std_caliper else ''} of the distance"
    )
    return (
        f"{m.method}: propensity score (logit{te}) on {len(cfg.covariates)} covariates, distance {m.distance}, "
        f"{m.ratio}:1, replace={m.replace}, {cal}, exact on {', '.join(m.exact)}, order {m.m_order} "
        "(matching.match_cohort, MatchIt semantics)"
    )


def balance(cfg: AnalysisConfig) -> str:
    return (
        "standardized mean differences, variance ratios and eCDF statistics before/after on the covariates and on "
        "the pre-period path of public support, self-support, benefit and earnings SEK (u−1, u−2, u−3, u−6, "
        "u−12, mean over u−24..u−1); a pre-period |SMD| > 0.1 after matching is a design warning (balance, "
        "panel.pre_period_outcomes)"
    )


def contamination_share(cfg: AnalysisConfig) -> str:
    return (
        "expected share of the matched controls who are anonymous participants (starting in u, from the anonymous "
        "registrations per förbund and month; started before u, mirrored by the linkable former participants "
        "scored with the propensity model) (contamination.expected_contamination, cohort.former_participants)"
    )


def contamination(cfg: AnalysisConfig) -> str:
    return (
        "the dilution-corrected effects of the matched-sample estimators, estimate / (1 − share), and the plateau "
        "correction; a share above 2 % is a design warning (contamination.ContaminationEstimate.corrected)"
    )


def outcomes(cfg: AnalysisConfig) -> str:
    text = (
        f"outcomes of the matched sample in months u+1..u+k and the monthly paths u−{cfg.outcomes.path_window}.."
        f"u+{cfg.outcomes.path_window} (panel.horizon_outcomes, panel.outcome_paths)"
    )
    if cfg.later_treated == "censor":
        text += "; controls censored at their own later start" + (
            ", weighted by IPCW (cohort.later_start_ipcw)" if cfg.censoring_weights == "ipcw" else ""
        )
    return text


def attrition(cfg: AnalysisConfig) -> str:
    return (
        "continue the attrition report after the linkage: participants who leave the cohort by reason (death, "
        "emigration, not yet resident, age, history, eligibility), the unmatched by reason, and the matched "
        f"participants with {cfg.outcomes.names[0]} observed or censored at {cfg.outcomes.horizons} months; "
        "unknown education (attrition.attrition_report)"
    )


def effects(cfg: AnalysisConfig) -> str:
    level = f"{1 - cfg.inference.alpha:.0%}"
    return (
        f"estimators {', '.join(cfg.estimators)} for {len(cfg.outcomes.names)} outcomes at "
        f"{cfg.outcomes.horizons} months, se={cfg.inference.se} (cluster {cfg.inference.cluster}), {level} "
        f"intervals, subgroups {', '.join(cfg.subgroups) or 'none'} (estimation.estimate_effects)"
    )


def event_study(cfg: AnalysisConfig) -> str:
    w = cfg.outcomes.path_window
    return (
        f"{', '.join(cfg.event_study_outcomes)}: monthly effects u−{w}..u+{w} with a pre-trend Wald test "
        "(estimation.event_study)"
    )


def sensitivity(cfg: AnalysisConfig) -> str:
    return "Rosenbaum bounds, E-values, placebo outcomes and start dates (estimation.sensitivity_analysis)"


def cost_benefit(cfg: AnalysisConfig) -> str:
    return (
        "present values per financier, public-finance and socio-economic perspectives, from the estimated "
        "monthly effects (cost_benefit.cost_benefit)"
    )


def report(cfg: AnalysisConfig) -> str:
    return (
        f"CSV, results.xlsx, figures/, report.html ({cfg.language}) and manifest.json, with every cell resting on "
        f"fewer than {cfg.disclosure_threshold} persons suppressed (report.write_outputs)"
    )
