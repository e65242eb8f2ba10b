"""Contaminated controls: the expected share of matched controls who are in fact anonymous participants, and the
dilution-corrected effects.

An anonymous SUS registration is a resident whose registration lacks a personal identity number (domain note §2,
§5). The package cannot tell such a person from any other member of the population, so anonymous participants
sit in the comparison pool and, looking like participants, are matched preferentially. Two kinds matter for a
participant starting in month u:

* **now**: anonymous participants who start an insats in month u themselves (treated, but counted as controls);
* **before**: anonymous participants who started before u (former participants: already treated; the linkable
  ones are rightly left out of the pool, the anonymous ones cannot be).

Anonymous participants who start after u are legitimate controls of ``later_treated: keep`` ("not now") and are
not counted.

Estimation (all counts per förbund f, the förbund of the person's kommun; ``o_i = e_i / (1 − e_i)`` odds)
-----------------------------------------------------------------------------------------------------------
Assumption A (exchangeable anonymity): whether a participant is registered anonymously does not depend on the
register history given the förbund, so anonymous participants look like the linkable ones.

* **now**: the expected number of anonymous first starts of eligible persons in (f, u) is
  ``Â_fu = R^a_fu · T_f / R^p_f`` — the anonymous registrations starting in f in month u, times the förbund's
  eligible linkable first starts in the cohort per person registration in the cohort's months (this carries the
  share of registrations that are first starts, and of persons who meet the eligibility rule, over to the
  anonymous registrations). Under A they are distributed over covariates like the treated, so among the
  candidates of (f, u) with covariates x their density relative to the candidates' is ``n_T(x)/n_C(x)``, which
  the propensity score's odds ``o_i`` estimate up to a constant per cell; hence, with the cohort holding a share
  ``ρ_s`` (``eligibility.candidate_sample_rate``) of the pool,

      π_now,i = ρ_s · Â_fu · o_i / Σ_{j ∈ C_fu} o_j     (candidates j of förbund f in month u).

* **before**: the linkable former participants meeting the candidates' rules at u (``cohort.former_participants``,
  sampled as the candidates) mirror the anonymous ones: there are ``r_f = R^a_f / R^p_f`` anonymous per linkable
  (anonymous over person registrations in f, all months). Nearest-neighbour matching picks controls by the
  propensity score s (within u), so what matters is how many of them there are per candidate *at the score* of
  the matched controls: scored with the fitted propensity model (:func:`linear_predictor`), their density
  relative to the candidates' along s is ``g(s) = n_F(s) / n_C(s)``, estimated smoothly as the odds of a logit
  of "former participant" on (s, s²) over candidates and former participants. The calendar month and the
  förbund enter as the cell's former participants per candidate relative to the whole pool (a log-linear model of
  score × cell):

      π_before,i = r_f · g(s_i) · (F_fu / C_fu) / (F / C)     (F, C: former participants and candidates),

  the sampling share cancelling (both tables are sampled alike).

The expected share among the matched controls is ``s = Σ_C w_i π_i / Σ_C w_i`` with ``π_i = min(1, π_now,i +
π_before,i)`` and the matching (or IPW) weights w; ``s_candidates`` is the plain mean of π over all candidates.
The share is treated as known (its sampling error is not in the intervals).

Dilution (Assumption B: a contaminated control's outcome differs from its counterfactual by the ATT itself):
the control mean is ``(1 − s)·μ₀ + s·(μ₀ + ATT)``, so the estimate is ``(1 − s)·ATT`` and

    ATT_corrected = estimate / (1 − s),   interval [lo / (1 − s), hi / (1 − s)],   SE / (1 − s).

For former participants B fails at short horizons: their own insats began months earlier and its effect has had
longer to build up, so they shift the control mean by more than the ATT at u + k, and ``estimate / (1 − s)`` stays
nearer zero than the truth there (in the Monte Carlo, validation/results_worlds, it removes the dilution at 12
months but little of it at 3). Assumption B' (plateau): a former participant's own effect at u + k has reached the
level of the longest horizon K, ``ATT(K)``; then the control mean is shifted by ``s_now·ATT(k) +
s_before·ATT(K)`` and

    ATT_plateau(k) = (estimate(k) + s_before · A) / (1 − s_now),   A = estimate(K) / (1 − s),

(``k · A`` instead of ``A`` for a sum over months 1..k), which equals ``estimate / (1 − s)`` at k = K
(:func:`plateau_corrected`; the interval is shifted and scaled alike, A held fixed). It overcorrects when effects
fade after K.

References
----------
Heckman, LaLonde & Smith (1999), The economics and econometrics of active labor market programs (Handbook of
Labor Economics 3A): comparison groups that receive the programme or substitutes bias the effect towards zero.
Sianesi (2004): the not-yet-treated comparison and the role of past and future participation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import months
from .design import case_control_draw, fit_logit
from .diagnostics import CONTAMINATION_THRESHOLD, DesignWarning, contamination_warning
from .errors import InputError
from .matching import PropensityResult, linear_predictor
from .tables import Session, TableLike, text_codes

#: Columns of :meth:`ContaminationEstimate.corrected` (the ``contamination`` report table).
CORRECTED_COLUMNS: tuple[str, ...] = (
    "estimator",
    "outcome",
    "measure",
    "horizon_months",
    "subgroup",
    "estimate",
    "std_error",
    "ci_lower",
    "ci_upper",
    "share_contaminated",
    "estimate_corrected",
    "std_error_corrected",
    "ci_lower_corrected",
    "ci_upper_corrected",
    "share_now",
    "share_before",
    "estimate_corrected_plateau",
    "std_error_corrected_plateau",
    "ci_lower_corrected_plateau",
    "ci_upper_corrected_plateau",
)


def plateau_corrected(
    value: np.ndarray | float,
    long_status: np.ndarray | float,
    share_now: float,
    share_before: float,
    horizon: np.ndarray | int,
    measure: np.ndarray | str = "status",
) -> np.ndarray:
    """The dilution correction when former participants' own effects have reached their plateau (module
    docstring, Assumption B'): ``(value + s_before · shift) / (1 − s_now)`` with ``shift = A`` for a status at
    horizon k and ``k · A`` for a sum over months 1..k, ``A = long_status / (1 − s_now − s_before)`` the
    (plainly corrected) status effect at the longest horizon. Applied to an estimate or to an interval bound
    (``A`` held fixed)."""
    a = np.asarray(long_status, float) / (1.0 - share_now - share_before)
    k = np.asarray(horizon, float)
    shift = np.where(np.asarray(measure) == "cumulative", k * a, a)
    return (np.asarray(value, float) + share_before * shift) / (1.0 - share_now)


def registration_counts(sus_registrations: TableLike, con=None) -> pd.DataFrame:
    """Person and anonymous SUS registrations per förbund and start month: ``forbund_id``, ``ref_month``,
    ``person``, ``anonymous`` (counts)."""
    sess = Session.open(con)
    try:
        v = sess.register(
            "sus_registrations", sus_registrations, required=("registration_kind", "forbund_id", "start_date")
        )
        out = sess.con.sql(f"""
            SELECT CAST(forbund_id AS VARCHAR) AS forbund_id,
                   {months.sql_text(months.sql_date_index("CAST(start_date AS DATE)"))} AS ref_month,
                   count(*) FILTER (WHERE registration_kind = 'person') AS person,
                   count(*) FILTER (WHERE registration_kind = 'anonymous') AS anonymous
            FROM {v} WHERE start_date IS NOT NULL
            GROUP BY ALL ORDER BY forbund_id, ref_month""").df()
    finally:
        sess.close()
    return out.astype({"person": "int64", "anonymous": "int64"})


@dataclass(frozen=True)
class ContaminationEstimate:
    """The expected share of matched controls who are anonymous participants (module docstring).

    Attributes
    ----------
    share_matched : ``s``, the weighted mean of ``π_i`` over the matched controls (now + before).
    share_matched_now, share_matched_before : its two parts.
    share_candidates : the mean of ``π_i`` over all candidate person-months.
    n_anonymous : anonymous registrations in the cohort's months.
    by_forbund : per förbund: ``person`` and ``anonymous`` registrations (all months), ``ratio`` r_f,
        ``treated`` (eligible linkable first starts in the cohort), ``person_in_window`` and ``first_starts_per_
        registration`` (T_f / R^p_f).
    pi : ``π_i`` per cohort row (0 for treated rows).
    """

    share_matched: float
    share_matched_now: float
    share_matched_before: float
    share_candidates: float
    n_anonymous: int
    by_forbund: pd.DataFrame
    pi: np.ndarray

    def corrected(self, effects: pd.DataFrame, estimators: Sequence[str] | None = None) -> pd.DataFrame:
        """Dilution-corrected effects (columns :data:`CORRECTED_COLUMNS`) for the subgroup ``all`` of
        ``estimators`` (default: every estimator in ``effects``): ``estimate / (1 − s)`` with its SE and interval
        likewise (``*_corrected``), and the plateau correction (``*_corrected_plateau``, :func:`plateau_corrected`,
        A from the status effect at the longest horizon of the same estimator and outcome; NaN without one)."""
        e = effects[effects["subgroup"] == "all"]
        if estimators is not None:
            e = e[e["estimator"].isin(list(estimators))]
        f = 1.0 / (1.0 - self.share_matched)
        out = e[[c for c in CORRECTED_COLUMNS[:9]]].copy().reset_index(drop=True)
        for c in ("n_treated", "n_control"):  # the persons behind each row, for the disclosure control
            out[c] = e[c].to_numpy() if c in e else np.nan
        out["share_contaminated"] = self.share_matched
        for c in ("estimate", "std_error", "ci_lower", "ci_upper"):
            out[f"{c}_corrected"] = out[c] * f
        out["share_now"] = self.share_matched_now
        out["share_before"] = self.share_matched_before
        status = out[out["measure"] == "status"]
        longest = status.loc[status.groupby(["estimator", "outcome"])["horizon_months"].idxmax()]
        long = longest.set_index(["estimator", "outcome"])["estimate"]
        a = long.reindex(pd.MultiIndex.from_frame(out[["estimator", "outcome"]])).to_numpy(float)
        sn, sb = self.share_matched_now, self.share_matched_before
        for c in ("estimate", "ci_lower", "ci_upper"):
            out[f"{c}_corrected_plateau"] = plateau_corrected(
                out[c], a, sn, sb, out["horizon_months"], out["measure"]
            )
        out["std_error_corrected_plateau"] = out["std_error"] / (1.0 - sn)
        return out[[*CORRECTED_COLUMNS, "n_treated", "n_control"]]

    def warnings(
        self, threshold: int = 0, persons: tuple[float | None, ...] | None = None
    ) -> tuple[DesignWarning, ...]:
        """``contamination`` when the share among matched controls exceeds
        :data:`~finsam_effekt.diagnostics.CONTAMINATION_THRESHOLD` (2 %); the number of anonymous registrations
        is written only when it reaches the disclosure ``threshold``; ``persons``: the matched participants and
        controls the shares rest on (:meth:`~finsam_effekt.diagnostics.DesignWarning.published`)."""
        if self.share_matched <= CONTAMINATION_THRESHOLD:
            return ()
        return (
            contamination_warning(
                self.share_matched,
                self.share_candidates,
                self.n_anonymous,
                now=self.share_matched_now,
                before=self.share_matched_before,
                threshold=threshold,
                persons=persons,
            ),
        )

    def summary(self, threshold: int = 0) -> str:
        """The share in words (the number of anonymous registrations only when it reaches ``threshold``)."""
        n = f"fewer than {threshold}" if self.n_anonymous < threshold else f"{self.n_anonymous:g}"
        return (
            f"Expected share of matched controls who are anonymous participants: {self.share_matched:.2%} "
            f"(starting in u {self.share_matched_now:.2%}, started before u {self.share_matched_before:.2%}); "
            f"among all candidates {self.share_candidates:.2%}; {n} anonymous registrations"
        )


def cell_codes(*frames: pd.DataFrame) -> tuple[list[np.ndarray], pd.MultiIndex]:
    """The (``forbund_id``, ``ref_month``) cell of every row of each frame as an integer code into one shared
    MultiIndex of text pairs (what ``MultiIndex.from_frame(frame[...].astype(str))`` would hold, without ~10⁷
    strings per column at national scale, and in 4-byte codes: the candidates of a national cohort are ~10⁷
    rows). Codes number the cells in order of first appearance."""
    per_frame = []
    levels: list[pd.Index] = []
    for col in ("forbund_id", "ref_month"):
        parts = [text_codes(f[col]) for f in frames]
        union = pd.Index(np.unique(np.concatenate([lv.to_numpy() for _, lv in parts] or [[]])), dtype=object)
        levels.append(union)
        per_frame.append([union.get_indexer(lv).astype(np.int32)[c] for c, lv in parts])
    n_u = max(len(levels[1]), 1)
    wide = np.int64 if len(levels[0]) * n_u >= 2**31 else np.int32
    combined = [fc.astype(wide) * n_u + uc for fc, uc in zip(per_frame[0], per_frame[1], strict=True)]
    del per_frame
    inv, uniq = pd.factorize(np.concatenate(combined) if combined else np.zeros(0, wide))
    index = pd.MultiIndex.from_arrays([levels[0][uniq // n_u], levels[1][uniq % n_u]])
    out, at = [], 0
    for c in combined:
        out.append(inv[at : at + len(c)].astype(np.int32))
        at += len(c)
    return out, index


def _cell_allocation(
    keys: pd.DataFrame, odds: np.ndarray, expected: pd.Series, sample: np.ndarray
) -> np.ndarray:
    """``expected[f, u] · odds_i / Σ_{candidates j of (f, u)} odds_j`` per row (0 outside ``sample``)."""
    (cell,), index = cell_codes(keys)
    o = np.where(sample, odds, 0.0)
    tot = pd.Series(o).groupby(cell).transform("sum").to_numpy()
    exp = expected.reindex(index).fillna(0.0).to_numpy()[cell]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sample & (tot > 0), exp * o / tot, 0.0)


def _former_share(
    co: pd.DataFrame,
    cand: np.ndarray,
    fr: pd.DataFrame,
    propensity: PropensityResult,
    ratio: pd.Series,
    r_all: float,
    fit_rows: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """``π_before`` per cohort row: ``r_f · g(s_i) · (F_fu/C_fu)/(F/C)`` (module docstring). With more candidates
    and former participants than ``fit_rows``, the logit behind g is fitted on every former participant and a
    seeded sample of the candidates at the rate r that fills ``fit_rows``, its intercept corrected by log r (a
    logit with an intercept under outcome-dependent sampling: only the intercept moves; Prentice & Pyke 1979,
    King & Zeng 2001), and g computed for every candidate from the three coefficients."""
    lp_c = np.asarray(propensity.linear_predictor, float)[cand]
    lp_f = linear_predictor(propensity, fr)
    # n_F(s)/n_C(s) along the score s: the odds of a logit of "former" on (s, s²) over candidates and former
    # participants — smooth in s, so that the few former participants in the upper tail, where the matched
    # controls are, do not make it jump
    n_c, n_f = len(lp_c), len(lp_f)
    s_all = np.r_[lp_c, lp_f]
    del lp_c
    mu, sd = float(s_all.mean()), float(s_all.std()) or 1.0
    sampled = fit_rows is not None and n_c + n_f > fit_rows and fit_rows - n_f >= 1
    if sampled:  # every former participant, the candidates at the rate that fills fit_rows
        drawn, rate = case_control_draw(n_c, n_f, fit_rows, [seed, 3])
        s_fit, n_fit_c = s_all[np.r_[drawn, np.arange(n_c, n_c + n_f)]], len(drawn)
    else:
        s_fit, n_fit_c = s_all, n_c
    # the design (1, z, z²), z = (s − mean) / sd, built in place as the one (3 × n) block a DataFrame of the three
    # columns holds (no second copy of z, z² or the scores)
    x = np.empty((3, len(s_fit)))
    x[0] = 1.0
    np.subtract(s_fit, mu, out=x[1])
    x[1] /= sd
    del s_fit
    np.square(x[1], out=x[2])
    d = np.zeros(x.shape[1])
    d[n_fit_c:] = 1.0
    fit = fit_logit(pd.DataFrame(x.T, columns=["const", "s", "s2"], copy=False), d)
    del x, d
    if sampled:
        b = fit.params.fillna(0.0)
        # exp(b0 + log r + z (b1 + b2 z)) in place (one array of the candidates' length besides z)
        z = s_all[:n_c] - mu
        z /= sd
        dens = z * b["s2"]
        dens += b["s"]
        dens *= z
        dens += b["const"] + np.log(rate)
        np.exp(dens, out=dens)
        del z
    else:
        dens = np.exp(fit.linear_predictor[:n_c])
    del fit, s_all
    # the calendar month and förbund: former participants per candidate in the cell relative to overall
    (ccell, fcell), index = cell_codes(
        co.loc[cand, ["forbund_id", "ref_month"]], fr[["forbund_id", "ref_month"]]
    )
    c_n = np.bincount(ccell, minlength=len(index)).astype(float)  # candidates per cell (whole counts: exact)
    f_n = np.bincount(fcell, minlength=len(index)).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        cell = (f_n / c_n) / (len(fr) / n_c)
    fcodes, flevels = text_codes(co.loc[cand, "forbund_id"])
    r = ratio.reindex(flevels).fillna(r_all).to_numpy(float)[fcodes]
    dens *= r
    dens *= cell[ccell]
    out = np.zeros(len(co))
    out[cand] = dens
    return out


def expected_contamination(
    cohort: pd.DataFrame,
    propensity: PropensityResult,
    weights: np.ndarray,
    registrations: pd.DataFrame,
    former: pd.DataFrame | None = None,
    *,
    sample_rate: float | None = None,
    fit_rows: int | None = None,
    seed: int = 0,
) -> ContaminationEstimate:
    """The expected share of matched controls who are anonymous participants (formulas in the module docstring).

    Parameters
    ----------
    cohort : the ``cohort`` table (``person_id``, ``ref_month``, ``treated``, ``forbund_id`` and the covariates).
    propensity : the fitted propensity model of the match stage (``matching.CohortMatch.propensity``): its score
        per cohort row, and its coefficients to score the former participants.
    weights : the matching or IPW weights per cohort row (0 = not in the matched sample).
    registrations : :func:`registration_counts` of the SUS registrations.
    former : ``cohort.former_participants`` with the cohort's arguments (None: the "before" part is 0).
    sample_rate : the share of candidate person-months in the cohort (``eligibility.candidate_sample_rate``;
        default ``cohort.attrs["sample_rate"]``, else 1): the anonymous starters of a cell are spread over the
        whole pool, of which the cohort holds this share.
    fit_rows, seed : above ``fit_rows`` candidates and former participants, the density ratio of the "before"
        part is fitted on a seeded case-control sample (:func:`_former_share`; the run passes
        ``matching.propensity_fit_rows`` and the config's seed); None fits on every row.
    """
    need = ["ref_month", "treated", "forbund_id"]
    missing = [c for c in need if c not in cohort.columns]
    if missing:
        raise InputError(
            f"expected_contamination: the cohort lacks {missing} (cohort.build_cohort makes them)"
        )
    ps = np.asarray(propensity.ps, float)
    weights = np.asarray(weights, float)
    if len(ps) != len(cohort) or len(weights) != len(cohort):
        raise InputError("expected_contamination: ps and weights need one value per cohort row")
    # read by position; a copy only when the index is not 0..n−1 (a national cohort is 10⁷ rows)
    co = cohort if cohort.index.equals(pd.RangeIndex(len(cohort))) else cohort.reset_index(drop=True)
    t = co["treated"].to_numpy() == 1
    cand = ~t & co["forbund_id"].notna().to_numpy()

    regs = registrations.astype({"forbund_id": str, "ref_month": str})
    in_window = regs["ref_month"].isin(set(pd.Series(co["ref_month"].unique()).astype(str)))
    per_f = regs.groupby("forbund_id")[["person", "anonymous"]].sum()
    per_f["person_in_window"] = regs[in_window].groupby("forbund_id")["person"].sum()
    per_f["treated"] = co.loc[t, "forbund_id"].astype(str).value_counts()
    per_f = per_f.fillna(0).astype("int64")
    # r_f: anonymous per person registration; ρ_f: eligible linkable first starts per person registration in the
    # cohort's months (the pooled ratio where the förbund has no person registration)
    tot = per_f.sum()
    r_all = tot["anonymous"] / tot["person"] if tot["person"] else 0.0
    rho_all = tot["treated"] / tot["person_in_window"] if tot["person_in_window"] else 0.0
    per_f["ratio"] = np.where(per_f["person"] > 0, per_f["anonymous"] / per_f["person"].clip(lower=1), r_all)
    per_f["first_starts_per_registration"] = np.where(
        per_f["person_in_window"] > 0, per_f["treated"] / per_f["person_in_window"].clip(lower=1), rho_all
    )

    # now: Â_fu = R^a_fu · ρ_f, allocated over the candidates of (f, u) in proportion to the PS odds
    a = regs[in_window & (regs["anonymous"] > 0)].set_index(["forbund_id", "ref_month"])["anonymous"]
    rho = (
        per_f["first_starts_per_registration"].reindex(a.index.get_level_values(0)).fillna(rho_all).to_numpy()
    )
    expected_now = a * rho
    with np.errstate(divide="ignore"):
        odds = ps / (1.0 - ps)
    odds = np.where(np.isfinite(odds), odds, 0.0)
    rate = float(cohort.attrs.get("sample_rate", 1.0) if sample_rate is None else sample_rate)
    pi_now = rate * _cell_allocation(co, odds, expected_now, cand)
    del odds

    pi_before = np.zeros(len(co))
    if former is not None and len(former):
        fr = former.reset_index(drop=True)
        fr = fr[fr["forbund_id"].notna()].reset_index(drop=True)
        if len(fr) and cand.any():
            pi_before = _former_share(co, cand, fr, propensity, per_f["ratio"], r_all, fit_rows, seed)

    pi = np.minimum(1.0, pi_now + pi_before)
    ctrl = ~t & (weights > 0)
    wsum = float(weights[ctrl].sum())

    def share(x: np.ndarray) -> float:
        return float((weights[ctrl] * x[ctrl]).sum() / wsum) if wsum > 0 else 0.0

    n_cand = int((~t).sum())
    return ContaminationEstimate(
        share_matched=share(pi),
        share_matched_now=share(np.minimum(1.0, pi_now)),
        share_matched_before=share(np.minimum(1.0, pi_before)),
        share_candidates=float(pi[~t].sum() / n_cand) if n_cand else 0.0,
        n_anonymous=int(regs.loc[in_window, "anonymous"].sum()),
        by_forbund=per_f.reset_index(),
        pi=pi,
    )
