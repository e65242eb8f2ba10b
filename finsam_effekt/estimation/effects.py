"""The entry point of the effects stage: check the inputs once, prepare each sample, dispatch through the registry.

:func:`estimate_effects` resolves its settings into one :class:`~finsam_effekt.estimation.settings.EffectOptions`,
checks the tables the chosen estimators need, codes the clusters of every sample once (so that estimates of
different samples, outcomes and subgroups stack into one joint covariance), draws the bootstrap clusters once,
and hands each estimator the sample its registry entry names.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError
from ..estimand import short_estimand
from ..schema import OUTCOMES, outcome_column
from .inference import bootstrap_counts, one_blas_thread
from .registry import REGISTRY
from .results import EffectResults, Estimate
from .sample import FitContext, Sample, Subgroup, require_columns, subgroups_of
from .settings import EffectOptions


@one_blas_thread
def estimate_effects(
    data: pd.DataFrame,
    options: EffectOptions | None = None,
    *,
    cohort: pd.DataFrame | None = None,
    panel: pd.DataFrame | None = None,
    panel_units: pd.DataFrame | None = None,
    pre_period: pd.DataFrame | None = None,
    pairs: object | None = None,
    **settings: object,
) -> EffectResults:
    """ATT of starting an insats on each outcome at each horizon, by several estimators, with inference.

    One call, inference as an option (linearmodels/pyfixest style)::

        res = estimate_effects(matched, horizons=(3, 6, 12), se="cluster", cluster="person_id", alpha=0.05)
        res.summary(); res.to_frame(); res.conf_int(0.1); res.cov("weighted_mean_diff"); res.draws(...)

    Parameters
    ----------
    data : the matched analysis table as ``MatchResult.matched_data()`` gives it (``person_id``, ``ref_month``,
        ``treated`` 0/1, ``weights``, ``subclass``, covariates) joined with the horizon outcomes of
        ``panel.horizon_outcomes``: ``{o}_m{k}`` (status in month u+k) and ``{o}_cum{k}`` (sum over months
        u+1..u+k); NaN when censored. Rows with a NaN outcome are dropped *per outcome* and the remaining n is
        reported.
    options : the settings as one :class:`EffectOptions`; keyword ``settings`` replace its fields.
    cohort : the unmatched cohort (treated and every candidate control person-month) with the same horizon
        outcomes, for the estimators on the ``"cohort"`` sample (``ipw``, ``aipw``).
    panel, panel_units : for the ``"panel"`` estimators (``cs_did``): the long person × month table and optionally
        its units (person, first start, observed months), which makes ``panel`` sparse — see
        :func:`~finsam_effekt.estimation.callaway_santanna` (``units``).
    pre_period : the ``outcome_paths`` table, for ``matched_did`` without ``{o}_pre`` columns
        (:func:`~finsam_effekt.estimation.pre_period_means`).
    pairs : for ``se="abadie_imbens"``: the ``MatchResult``, or a table with one row per match, ``treated_row``
        and ``control_row`` = index labels of ``data``.
    **settings : fields of :class:`EffectOptions`: ``outcomes``, ``horizons``, ``measures``, ``estimators``,
        ``treatment``, ``weights``, ``covariates``, ``se``, ``cluster``, ``subgroups``, ``n_boot``,
        ``random_state``, ``distance``, ``horizon_weights``, ``alpha``. Each estimator's definition, reference
        and sample is in ``estimation.REGISTRY``.

    Returns
    -------
    EffectResults

    Raises
    ------
    InputError
        When a sample has no rows (e.g. a merge on the wrong keys left it empty), no treated or no control rows,
        when no effect at all could be estimated (every outcome column absent or empty), or when
        ``regression_adjustment`` is asked for without ``covariates`` (it would equal the weighted mean
        difference). With the default estimators and no covariates, ``regression_adjustment`` is left out with a
        note instead.
    """
    opts = EffectOptions.of(options, **settings)
    chosen = "estimators" in settings or (
        options is not None and options.estimators != EffectOptions().estimators
    )
    opts, notes = _needs_covariates(opts, explicit=chosen)
    entries = [REGISTRY[name] for name in opts.estimators]
    kinds = {e.sample for e in entries}
    frames = _checked_frames(opts, kinds, data, cohort, panel)
    source = frames["cohort"] if "cohort" in kinds and "matched" not in kinds else data
    opts = _with_outcomes(opts, source, with_panel="panel" in kinds)
    samples, cluster_index = _samples(opts, kinds, frames, panel, panel_units)
    boot = None
    if opts.se == "bootstrap":
        boot = bootstrap_counts(len(cluster_index), opts.n_boot, opts.random_state)
    context = FitContext(
        options=opts, cluster_index=cluster_index, boot_counts=boot, pre_period=pre_period, pairs=pairs
    )
    estimates: list[Estimate] = []
    for entry in entries:
        fitted = entry.fit(samples[entry.sample], context)
        estimates += fitted.estimates
        notes += fitted.notes
    if not estimates:
        shown = "; ".join(notes[:3]) + (f"; … ({len(notes)} notes)" if len(notes) > 3 else "")
        raise InputError(
            f"estimate_effects: no effect could be estimated for outcomes {list(opts.outcomes or [])} at horizons "
            f"{list(opts.horizons)}: {shown or 'nothing to estimate'}. Check that the horizon outcome columns "
            "(e.g. 'public_support_m3') are in the data and not all missing."
        )
    bootstrap = opts.se == "bootstrap"
    return EffectResults(
        estimates=tuple(estimates),
        se_type=opts.se,
        cluster=opts.cluster,
        estimand=opts.estimand or short_estimand(),
        clusters=cluster_index,
        alpha=opts.alpha,
        n_boot=opts.n_boot if bootstrap else None,
        random_state=opts.random_state if bootstrap else None,
        notes=tuple(notes),
    )


def _checked_frames(
    opts: EffectOptions,
    kinds: set[str],
    data: pd.DataFrame,
    cohort: pd.DataFrame | None,
    panel: pd.DataFrame | None,
) -> dict[str, pd.DataFrame]:
    """The row samples the estimators need (the matched ``data`` always, the cohort when asked for), checked:
    treatment 0/1, cluster, covariate and weight columns present; a missing cohort or panel is an error."""
    frames: dict[str, pd.DataFrame] = {"matched": data}
    for kind, given in (("cohort", cohort), ("panel", panel)):
        if kind in kinds and given is None:
            names = [n for n in opts.estimators if REGISTRY[n].sample == kind]
            what = (
                "the unmatched cohort: pass cohort= (the cohort table joined with horizon outcomes)"
                if kind == "cohort"
                else "the panel: pass panel= (long person × month table, see callaway_santanna)"
            )
            raise InputError(f"estimator(s) {names} run on {what}")
    if "cohort" in kinds:
        frames["cohort"] = cohort
    for kind, df in frames.items():
        if len(df) == 0:
            raise InputError(
                f"{kind} data has no rows. If it comes from a merge, the merge found no matching keys: join the "
                "horizon outcomes on the unit keys only (e.g. matched.merge(outcomes, on=['person_id', "
                "'ref_month', 'treated'])), or use panel.horizon_outcomes(matched, ...), which keeps every row."
            )
        require_columns(df, [opts.treatment, opts.cluster], f"{kind} data")
        vals = set(pd.unique(df[opts.treatment].dropna()))
        if not vals <= {0, 1}:
            raise InputError(
                f"{kind} data: treatment column {opts.treatment!r} must be 0/1, found {sorted(vals)[:5]}"
            )
        n1 = int((df[opts.treatment] == 1).sum())
        n0 = int((df[opts.treatment] == 0).sum())
        if n1 == 0 or n0 == 0:
            raise InputError(
                f"{kind} data has {n1} treated and {n0} control rows ({opts.treatment!r}); an effect needs both. "
                "Was the sample filtered to one arm, or did a merge drop one arm's rows?"
            )
        require_columns(df, opts.covariates, f"{kind} data")
    if "matched" in kinds and opts.weights is not None:
        require_columns(data, [opts.weights], "matched data")
    return frames


def _needs_covariates(opts: EffectOptions, explicit: bool) -> tuple[EffectOptions, list[str]]:
    """``regression_adjustment`` without covariates would be the weighted mean difference under another name:
    an error when the caller asked for it, left out with a note when it came with the default estimators."""
    if "regression_adjustment" not in opts.estimators or opts.covariates:
        return opts, []
    if explicit:
        raise InputError(
            "estimate_effects: regression_adjustment needs covariates (covariates=[...], e.g. the matching "
            "covariates); without them it equals the weighted mean difference. Pass covariates, or ask for "
            "estimators=['weighted_mean_diff']."
        )
    kept = tuple(e for e in opts.estimators if e != "regression_adjustment")
    note = (
        "regression_adjustment left out: no covariates were given, and without them it equals "
        "weighted_mean_diff; pass covariates=[...] to adjust"
    )
    return EffectOptions.of(opts, estimators=kept), [note]


def _samples(
    opts: EffectOptions,
    kinds: set[str],
    frames: dict[str, pd.DataFrame],
    panel: pd.DataFrame | None,
    panel_units: pd.DataFrame | None,
) -> tuple[dict[str, Sample], pd.Index]:
    """Each sample the estimators need, with one global cluster coding (so that estimates of different samples,
    outcomes and subgroups stack into one joint covariance); returns the samples and the cluster labels."""
    keys = [frames[k][opts.cluster].astype(str) for k in frames]
    if "panel" in kinds:  # a sparse panel lacks persons without activity: its units list every person
        ids = panel_units["person_id"] if panel_units is not None and "person_id" in panel_units else None
        if ids is None and "person_id" in panel:
            ids = panel["person_id"]
        if ids is not None:
            keys.append(ids.astype(str))
    codes, cluster_index = pd.factorize(pd.concat(keys, ignore_index=True))
    offsets = np.cumsum([0] + [len(k) for k in keys])
    samples: dict[str, Sample] = {}
    for i, kind in enumerate(frames):
        if kind in kinds:
            on_matched = kind == "matched"
            samples[kind] = Sample(
                kind=kind,
                frame=frames[kind],
                clusters=codes[offsets[i] : offsets[i + 1]],
                subgroups=subgroups_of(frames[kind], opts.subgroups, opts.treatment),
                # the cohort estimators weight by their own propensity model, not by the matching weights
                weights=opts.weights if on_matched else None,
                horizon_weights=opts.horizon_weights if on_matched else None,
            )
    if "panel" in kinds:
        samples["panel"] = Sample(kind="panel", frame=panel, subgroups=(Subgroup("all"),), units=panel_units)
    return samples, cluster_index


def _with_outcomes(opts: EffectOptions, source: pd.DataFrame, with_panel: bool) -> EffectOptions:
    """``opts`` with ``outcomes`` resolved: as given, or every ``schema.OUTCOMES`` with a horizon column in
    ``source`` (the matched data, or the cohort when no matched estimator runs); none found is an error unless a
    panel estimator runs (it finds its outcomes in the panel)."""
    if opts.outcomes is not None:
        return opts
    found = tuple(
        o
        for o in OUTCOMES
        if any(outcome_column(o, k, m) in source for k in opts.horizons for m in opts.measures)
    )
    if not found and not with_panel:
        raise InputError(
            "no horizon outcome columns found (expected e.g. 'public_support_m3'); join "
            "panel.horizon_outcomes onto the matched data first"
        )
    return EffectOptions.of(opts, outcomes=found)
