"""The month-by-month simulation of one chunk: states, entry into an insats, its effect, the paths without it.

The paths without the insats ("without" any insats during follow-up, and "not now") branch at the start month
and run on the same random numbers as the observed path.

Steps 4, 6 and 7 of the data-generating process in the package docstring (:mod:`finsam_effekt.synth`); the
chunk's registers, SUS registrations and truth are built from the simulated states by :mod:`.registers`,
:mod:`.sus` and :mod:`.truth`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import months as mo
from ..schema import INSATS_TYPES, OUTCOMES, SUPPORT_SOURCES
from .registers import register_tables
from .sus import registrations
from .truth import truth_chunk
from .world import (
    ABSENT,
    CHILD,
    DIS,
    INIT_STATES,
    INIT_W,
    INSATS_TYPE_SHARES,
    NEEDY,
    RETIRED,
    STUDY,
    World,
    apply_forced,
    core_quantities,
    draw_population,
    logistic,
    main_source,
    monthly_quantities,
    transition,
)

#: Effect size by insats type (τ_type, package docstring step 6).
_TAU_TYPE = {
    "rehab_work_education": 1.0,
    "preparatory": 0.75,
    "assessment": 0.45,
    "preventive": 0.3,
    "other": 0.5,
}


#: Pre-entry dip (package docstring, step 4): the entry logit's term for the main source of support in the month
#: before, by ``schema.SUPPORT_SOURCES`` (work, sickness, disability, labour_market, unemployment,
#: social_assistance, none); half of it for the month before that. A new spell of sickness or unemployment
#: raises entry most: those states end soonest on their own (sickness exits at 22 % a month, falling with
#: duration), so the participants' counterfactual recovers fastest exactly where the dip is deepest.
DIP_SOURCE_TERMS: dict[str, float] = {
    "work": -1.0,
    "sickness": 1.2,
    "disability": -1.0,
    "labour_market": 0.4,
    "unemployment": 0.9,
    "social_assistance": 0.5,
    "none": -0.2,
}
#: Pre-entry dip: the entry logit's term for a move onto public support in the month before (none at u−2).
DIP_ONSET_TERM: float = 0.8
#: Pre-entry dip: a constant in the entry logit that keeps the number of participants about as without the dip
#: (the dip moves entry towards certain histories; it does not make entry more common).
DIP_OFFSET: float = -0.7
_DIP_TERMS = np.array([DIP_SOURCE_TERMS[s] for s in SUPPORT_SOURCES])
_NO_SUPPORT = np.isin(
    np.arange(len(SUPPORT_SOURCES)), [SUPPORT_SOURCES.index("work"), SUPPORT_SOURCES.index("none")]
)
_NONE = SUPPORT_SOURCES.index("none")


def _dip_term(src: np.ndarray, t: int, tw0: int, strength: float) -> np.ndarray:
    """The pre-entry dip's addition to the entry logit at ``t`` from the main sources of support ``src`` (rows =
    persons, columns = simulation months; months before the window count as ``none``, as the panel sees them)."""
    s1 = src[:, t - 1] if t - 1 >= tw0 else np.full(src.shape[0], _NONE, np.int8)
    s2 = src[:, t - 2] if t - 2 >= tw0 else np.full(src.shape[0], _NONE, np.int8)
    onset = ~_NO_SUPPORT[s1] & _NO_SUPPORT[s2]
    return strength * (_DIP_TERMS[s1] + 0.5 * _DIP_TERMS[s2] + DIP_ONSET_TERM * onset + DIP_OFFSET)


@dataclass
class ChunkOut:
    """What one simulated chunk hands to :func:`~finsam_effekt.synth.generator.generate`: its tables, the
    participants' individual effects and the sums behind the truth (picklable: worker processes return it)."""

    tables: dict[str, pd.DataFrame]
    truth_participants: pd.DataFrame
    # subgroup -> outcome -> (4, 24): status and cumulative sums against "without", then against "not now"
    sums: dict[str, dict[str, np.ndarray]]
    counts: dict[str, np.ndarray]  # subgroup -> (24,) uncensored participants
    n_part: dict[str, int]
    reg_counts: dict[str, int]
    cost_counts: pd.DataFrame  # insats_id, year, n
    anonymous: pd.DataFrame  # person_id, ref_month of the anonymous participants in the population
    latent: pd.DataFrame | None = None


def _entry_logit(
    base: np.ndarray,
    cum_ps: np.ndarray,
    cum_sa: np.ndarray,
    cum_work: np.ndarray,
    t: int,
    tw0: int,
    age: np.ndarray,
    calendar: float,
    dip: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Logit of the monthly hazard of a first start at ``t`` (package docstring, step 4) from the running counts of
    months with public support, social assistance and work before ``t`` inside the window (rows = persons), plus
    the pre-entry dip's term ``dip`` (:func:`_dip_term`)."""
    lo3, lo12, lo24 = max(tw0, t - 3), max(tw0, t - 12), max(tw0, t - 24)
    ps3 = cum_ps[:, t] - cum_ps[:, lo3]
    ps24 = cum_ps[:, t] - cum_ps[:, lo24]
    sa12 = (cum_sa[:, t] - cum_sa[:, lo12]) > 0
    work12 = cum_work[:, t] - cum_work[:, lo12]
    f3, f24 = ps3 / 3.0, ps24 / 24.0
    return (
        base
        + 2.2 * f3
        + 1.6 * np.maximum(0.0, f3 - f24)
        + 0.8 * f24
        + 0.1 * sa12
        - 1.0 * (ps3 == 0)
        - 0.8 * work12 / 12.0
        - 0.06 * np.maximum(age - 22, 0)
        - 1.5 * (age < 18)
        + calendar
        + dip
    )


def _can_enter(state: np.ndarray, age: np.ndarray, censor_t: np.ndarray, t: int) -> np.ndarray:
    """Persons at risk of a first start in month ``t``: resident, aged 16-64, not child or retired."""
    return (
        (age >= 16) & (age <= 64) & (censor_t > t) & (state != ABSENT) & (state != CHILD) & (state != RETIRED)
    )


def _draw_type(u: np.ndarray, type_p: np.ndarray) -> np.ndarray:
    """Insats type index from a uniform and the national type shares."""
    return np.minimum((u[:, None] > np.cumsum(type_p)[None, :]).sum(1), len(type_p) - 1)


def _tau(tau_type: np.ndarray, sex_mult: np.ndarray, age: np.ndarray) -> np.ndarray:
    """Effect size ``τ_type · τ_sex · τ_age`` of a start at ``age`` (package docstring, step 6)."""
    return tau_type * sex_mult * np.where(age < 30, 1.2, np.where(age < 50, 1.0, 0.6))


def simulate_chunk(
    world: World, chunk: int, first: int, n: int, width: int, keep_latent: bool = False
) -> ChunkOut:
    """Simulate chunk number ``chunk`` (persons ``first + 1 .. first + n``) on its own random stream
    ``default_rng([seed, chunk])``; ``keep_latent`` also returns the latent monthly outcomes
    (:func:`~finsam_effekt.synth.generator.latent_person_months`)."""
    cfg = world.cfg
    rng = np.random.default_rng([cfg.seed, chunk])
    p = draw_population(world, rng, first, n, width)
    T, tw0 = world.T, world.tw0
    thr = cfg.self_support_threshold_sek
    # who would register anonymously if they started: a stream of its own, so that contamination on or off
    # leaves every other draw (states, entry, registers) as it is
    anon = np.zeros(n, bool)
    if cfg.contamination and cfg.anonymous_share > 0:
        anon = np.random.default_rng([cfg.seed, chunk, 15]).random(n) < cfg.anonymous_share
    dip = cfg.pre_entry_dip
    # main source of support per month (schema.SUPPORT_SOURCES index) on the observed and the "not now" paths,
    # kept only when the pre-entry dip needs it
    src = np.full((n, T), _NONE, np.int8) if dip else None
    nn_src = np.full((n, T), _NONE, np.int8) if dip else None

    state_mat = np.zeros((n, T), np.int8)
    cf_mat = np.zeros((n, T), np.int8)
    day_mat = np.ones((n, T), np.int8)  # change day (1 = no change in the month)
    draw_day = np.ones((n, T), np.int8)  # drawn day (dates of immigration/death)
    # earnings: a salary revised once a year, with extra pay (overtime, bonus) in one month of ten
    years = world.year - world.year[0]
    yearly = np.exp(0.04 * rng.standard_normal((n, int(years[-1]) + 1), dtype=np.float32))[:, years]
    extra = rng.random((n, T), dtype=np.float32) < 0.1
    earn_noise = yearly * np.where(extra, np.exp(0.15 * rng.standard_normal((n, T), dtype=np.float32)), 1.0)
    earn_noise = earn_noise.astype(np.float32)
    sa_noise = np.exp(0.08 * rng.standard_normal((n, T), dtype=np.float32))
    earn = np.zeros((n, T), np.float32)
    sa = np.zeros((n, T), np.float32)
    ps = np.zeros((n, T), bool)
    work = np.zeros((n, T), bool)
    # running counts over window months < t of months with public support, social assistance and work
    cum_ps = np.zeros((n, T + 1), np.int16)
    cum_sa = np.zeros((n, T + 1), np.int16)
    cum_work = np.zeros((n, T + 1), np.int16)

    # initial states
    age0 = world.year[0] - p.birth_year
    w = INIT_W[None, :] * np.ones((n, 1))
    w[:, 0] *= np.exp(0.7 * p.eta)  # work
    w[:, 1] *= np.where(age0 < 30, 6.0, 0.5)  # studies
    w[:, 8] *= np.exp(0.05 * (age0 - 40))  # disability
    w[:, 2:] *= np.exp(-0.3 * p.eta)[:, None]
    cw = np.cumsum(w, axis=1)
    init = INIT_STATES[(cw < rng.random(n)[:, None] * cw[:, -1:]).sum(1)]
    init = np.where(age0 < 20, np.where(rng.random(n) < 0.8, STUDY, init), init)
    init = np.where(age0 < 16, CHILD, np.where(age0 >= 65, RETIRED, init))
    ever_resident = p.immig_t < 0
    state = np.where(ever_resident, init, ABSENT).astype(np.int8)
    dur = rng.integers(0, 24, n).astype(float)
    prior_ps = np.where(NEEDY[state], np.where(state == DIS, 3.0, 1.0) * p.prior_ps, 0.0)
    state_mat[:, 0] = state
    cf_mat[:, 0] = state

    # participation
    u_start = np.full(n, -1, np.int64)
    age_u = np.zeros(n)
    tau = np.zeros(n)
    type_idx = np.zeros(n, np.int64)
    cf_state = state.copy()
    cf_dur = dur.copy()
    # the "not now" path (Sianesi 2004): its state, a later first start and that start's effect size, and its own
    # running register history (rows of participants are copied from the observed history at their start)
    nn_mat = np.zeros((n, T), np.int8)
    nn_mat[:, 0] = state
    nn_state = state.copy()
    nn_dur = dur.copy()
    nn_start = np.full(n, -1, np.int64)
    nn_tau = np.zeros(n)
    nn_cum_ps = np.zeros_like(cum_ps)
    nn_cum_sa = np.zeros_like(cum_sa)
    nn_cum_work = np.zeros_like(cum_work)
    start_day = np.ones(n, np.int64)
    sex_mult = np.where(p.sex_k, 1.15, 0.85)
    type_p = np.array([INSATS_TYPE_SHARES[t] for t in INSATS_TYPES])
    type_p = type_p / type_p.sum()
    tau_type = np.array([_TAU_TYPE[t] for t in INSATS_TYPES])
    entry_base = (
        -7.5
        + 0.75 * (p.edu == 0)
        - 0.7 * (p.edu == 2)
        + 0.1 * p.sex_k
        + 0.2 * (p.region == 3)
        + world.kommun_effect[p.kommun]
        + 0.8 * cfg.hidden_confounding * p.hidden
    )

    for t in range(1, T):
        age = world.year[t] - p.birth_year
        age_prev = world.year[t - 1] - p.birth_year
        dim = int(world.days[t])
        u_exit = rng.random(n)
        u_dest = rng.random(n)
        u_day = rng.random(n)
        u_init = rng.random(n)
        u_entry = rng.random(n)
        u_type = rng.random(n)
        dd = (1 + np.floor(u_day * dim)).astype(np.int8)
        draw_day[:, t] = dd

        # entry into a first insats at t: observable history from months t-24..t-1 inside the window only
        if tw0 <= t:
            dterm = _dip_term(src, t, tw0, dip) if dip else 0.0
            lg = _entry_logit(entry_base, cum_ps, cum_sa, cum_work, t, tw0, age, world.entry_cal[t], dterm)
            eligible = (u_start < 0) & _can_enter(state, age, p.censor_t, t)
            enter = eligible & (u_entry < logistic(lg))
            if enter.any():
                u_start[enter] = t
                age_u[enter] = age[enter]
                ti = _draw_type(u_type[enter], type_p)
                type_idx[enter] = ti
                tau[enter] = _tau(tau_type[ti], sex_mult[enter], age[enter])
                start_day[enter] = dd[enter]

        m_since = t - u_start
        treated_now = (u_start >= 0) & (m_since >= 1)
        theta = np.where(treated_now, cfg.effect_scale * tau * 0.9 * (1.0 - np.exp(-m_since / 4.0)), 0.0)
        new = transition(
            state, dur, age, p.eta, theta, u_exit, u_dest, world.cycle_work[t], world.cycle_need[t]
        )
        new = apply_forced(new, t, age, p.immig_t, p.censor_t, u_init, ever_resident)
        ever_resident = ever_resident | (p.immig_t == t)
        change = (new != state) | (age != age_prev)
        day_mat[:, t] = np.where(change, dd, 1)
        e_t, sa_t, ps_t = core_quantities(
            state, new, day_mat[:, t], dim, p.w, p.sa_base, earn_noise[:, t], sa_noise[:, t], p.pe
        )
        earn[:, t] = e_t
        sa[:, t] = sa_t
        ps[:, t] = ps_t
        work[:, t] = e_t >= thr
        if t >= tw0:  # the hazard sees register history inside the window only
            cum_ps[:, t + 1] = cum_ps[:, t] + ps[:, t]
            cum_sa[:, t + 1] = cum_sa[:, t] + (sa[:, t] > 0)
            cum_work[:, t + 1] = cum_work[:, t] + work[:, t]
            if dip:
                q = monthly_quantities(
                    state, new, age_prev, age, day_mat[:, t], dim, p.rates, p.w, p.sa_base,
                    earn_noise[:, t].astype(float), sa_noise[:, t].astype(float), thr, p.pe,
                )  # fmt: skip
                src[:, t] = main_source(q, thr)
        dur = np.where(new == state, dur + 1.0, 0.0)
        state = new.astype(np.int8)
        state_mat[:, t] = state

        # the paths without insats at u branch at the start month u with the same random numbers: "without"
        # (no insats during follow-up: entry switched off) and "not now" (no start at u, but the entry hazard of
        # month u+1 on applies to the path's own history, and a later start has its own effect)
        just = u_start == t
        cf_state[just] = state[just]
        cf_dur[just] = dur[just]
        nn_state[just] = state[just]
        nn_dur[just] = dur[just]
        nn_cum_ps[just] = cum_ps[just]
        nn_cum_sa[just] = cum_sa[just]
        nn_cum_work[just] = cum_work[just]
        if dip:
            nn_src[just] = src[just]
        active = (u_start >= 0) & (m_since >= 1) & (m_since <= 24)
        cf_col = state.copy()
        nn_col = state.copy()
        if active.any():
            a = np.nonzero(active)[0]
            cf_new = transition(
                cf_state[a],
                cf_dur[a],
                age[a],
                p.eta[a],
                np.zeros(a.size),
                u_exit[a],
                u_dest[a],
                world.cycle_work[t],
                world.cycle_need[t],
            )
            cf_new = apply_forced(cf_new, t, age[a], p.immig_t[a], p.censor_t[a], u_init[a], ever_resident[a])
            cf_dur[a] = np.where(cf_new == cf_state[a], cf_dur[a] + 1.0, 0.0)
            cf_state[a] = cf_new
            cf_col[a] = cf_new

            # "not now": a later first start on the path's own register history (same hazard as above)
            dterm = _dip_term(nn_src[a], t, tw0, dip) if dip else 0.0
            lg = _entry_logit(
                entry_base[a], nn_cum_ps[a], nn_cum_sa[a], nn_cum_work[a], t, tw0, age[a], world.entry_cal[t],
                dterm,
            )  # fmt: skip
            enter = (
                (nn_start[a] < 0)
                & _can_enter(nn_state[a], age[a], p.censor_t[a], t)
                & (u_entry[a] < logistic(lg))
            )
            if enter.any():
                e = a[enter]
                nn_start[e] = t
                nn_tau[e] = _tau(tau_type[_draw_type(u_type[e], type_p)], sex_mult[e], age[e])
            nn_m = t - nn_start[a]
            nn_theta = np.where(
                (nn_start[a] >= 0) & (nn_m >= 1),
                cfg.effect_scale * nn_tau[a] * 0.9 * (1.0 - np.exp(-nn_m / 4.0)),
                0.0,
            )
            nn_new = transition(
                nn_state[a],
                nn_dur[a],
                age[a],
                p.eta[a],
                nn_theta,
                u_exit[a],
                u_dest[a],
                world.cycle_work[t],
                world.cycle_need[t],
            )
            nn_new = apply_forced(nn_new, t, age[a], p.immig_t[a], p.censor_t[a], u_init[a], ever_resident[a])
            nn_change = (nn_new != nn_state[a]) | (age[a] != age_prev[a])
            nn_e, nn_sa, nn_ps = core_quantities(
                nn_state[a],
                nn_new,
                np.where(nn_change, dd[a], 1),
                dim,
                p.w[a],
                p.sa_base[a],
                earn_noise[a, t],
                sa_noise[a, t],
                p.pe[a],
            )
            nn_cum_ps[a, t + 1] = nn_cum_ps[a, t] + nn_ps
            nn_cum_sa[a, t + 1] = nn_cum_sa[a, t] + (nn_sa > 0)
            nn_cum_work[a, t + 1] = nn_cum_work[a, t] + (nn_e >= thr)
            if dip:
                nn_q = monthly_quantities(
                    nn_state[a], nn_new, age_prev[a], age[a], np.where(nn_change, dd[a], 1), dim, p.rates[a],
                    p.w[a], p.sa_base[a], earn_noise[a, t].astype(float), sa_noise[a, t].astype(float), thr,
                    p.pe[a],
                )  # fmt: skip
                nn_src[a, t] = main_source(nn_q, thr)
            nn_dur[a] = np.where(nn_new == nn_state[a], nn_dur[a] + 1.0, 0.0)
            nn_state[a] = nn_new
            nn_col[a] = nn_new
        cf_mat[:, t] = cf_col
        nn_mat[:, t] = nn_col

    tables = register_tables(world, p, state_mat, day_mat, draw_day, earn, sa, rng)
    regs, reg_counts = registrations(
        world, p, rng, u_start, start_day, type_idx, state_mat, ps, prior_ps, draw_day, anon
    )
    tables["sus_registrations"] = regs
    cost_counts = (
        regs.assign(year=pd.DatetimeIndex(regs["start_date"]).year)
        .groupby(["insats_id", "year"], as_index=False)
        .size()
        .rename(columns={"size": "n"})
    )
    # the truth is about the linkable participants (the estimand); anonymous ones are listed for validation only
    linkable_start = np.where(anon, -1, u_start)
    tp, sums, counts, n_part = truth_chunk(
        world, p, linkable_start, age_u, type_idx, state_mat, cf_mat, nn_mat, draw_day, earn_noise, sa_noise
    )
    a_rows = np.nonzero(anon & (u_start >= 0))[0]
    anonymous = pd.DataFrame(
        {
            "person_id": p.pid[a_rows],
            "ref_month": np.asarray(
                mo.from_index(world.month[u_start[a_rows]]) if a_rows.size else np.array([], str),
                dtype=object,
            ),
        }
    )
    latent = None
    if keep_latent:
        cols = np.arange(tw0, T)
        by = p.birth_year[:, None]
        q = monthly_quantities(
            state_mat[:, cols - 1],
            state_mat[:, cols],
            world.year[cols - 1] - by,
            world.year[cols] - by,
            day_mat[:, cols],
            world.days[cols],
            p.rates[:, None, :],
            p.w[:, None],
            p.sa_base[:, None],
            earn_noise[:, cols].astype(float),
            sa_noise[:, cols].astype(float),
            thr,
            p.pe[:, None],
        )
        active = (q["public_support"] > 0) | (q["earnings_sek"] > 0)
        active &= cols[None, :] < p.censor_t[:, None]
        i, j = np.nonzero(active)
        latent = pd.DataFrame(
            {"person_id": p.pid[i], "month": np.asarray(mo.from_index(world.month[cols[j]]), dtype=object)}
            | {o: q[o][i, j] for o in OUTCOMES}
        )
    return ChunkOut(tables, tp, sums, counts, n_part, reg_counts, cost_counts, anonymous, latent)
