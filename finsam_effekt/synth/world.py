"""The world's fixed parts: latent states and their transitions, geography, catalogue, persons of a chunk.

Also the time axis (:class:`World`) and what a month in a state yields in the registers (:func:`monthly_quantities`,
the quantities the panel recomputes from the written tables).

Steps 1-3 of the data-generating process in the package docstring (:mod:`finsam_effekt.synth`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import months as mo
from ..schema import MAIN_SOURCE_GROUPS, SPELL_GROUPS, SUPPORT_SOURCES
from .config import SynthConfig

#: Months simulated before the window so that states and durations have settled.
BURN_IN_MONTHS: int = 36

# ---------------------------------------------------------------------------------------------------------------
# Geography and insats catalogue
# ---------------------------------------------------------------------------------------------------------------
#: förbund -> kommun codes (4-digit text) and relative population weights.
FORBUND_KOMMUNER: dict[str, tuple[tuple[str, float], ...]] = {
    "F01": (("0114", 1.0), ("0115", 0.8), ("0117", 0.9)),
    "F02": (("0380", 3.0), ("0381", 0.4), ("0382", 0.3)),
    "F03": (("0480", 1.5), ("0482", 0.3), ("0483", 0.6), ("0484", 1.2)),
    "F04": (("0580", 2.5), ("0581", 2.0)),
    "F05": (("0680", 2.2), ("0682", 0.4), ("0683", 0.5)),
    "F06": (("1280", 4.0), ("1281", 1.5), ("1282", 0.6)),
    "F07": (("1480", 6.0), ("1481", 1.0), ("1482", 0.5)),
    "F08": (("1880", 2.4), ("1881", 0.3), ("1882", 0.3)),
    "F09": (("2480", 2.0), ("2481", 0.3), ("2482", 1.2), ("2483", 0.2)),
    "F10": (("2580", 1.3), ("2581", 1.2), ("2582", 0.2)),
}
#: National shares of insats types (domain note §1), in ``schema.INSATS_TYPES`` order.
INSATS_TYPE_SHARES: dict[str, float] = {
    "rehab_work_education": 0.53,
    "preparatory": 0.25,
    "assessment": 0.11,
    "preventive": 0.05,
    "other": 0.07,
}
#: Person-registered insatser per förbund by type (I01..I08), then two volume insatser (I09, I10).
CATALOGUE_TYPES: tuple[str, ...] = (
    "rehab_work_education",
    "rehab_work_education",
    "rehab_work_education",
    "preparatory",
    "preparatory",
    "assessment",
    "preventive",
    "other",
)
#: Mean cost per participant (SEK) by insats type; the weighted mean is ≈ 82 000 kr (domain note §1).
_COST_PER_PARTICIPANT: dict[str, float] = {
    "rehab_work_education": 100_000.0,
    "preparatory": 78_000.0,
    "assessment": 35_000.0,
    "preventive": 40_000.0,
    "other": 60_000.0,
}
# ---------------------------------------------------------------------------------------------------------------
# States
# ---------------------------------------------------------------------------------------------------------------
STATES: tuple[str, ...] = (
    "absent",
    "child",
    "work",
    "study",
    "akassa",
    "programme",
    "social_assistance",
    "inactive",
    "sick",
    "sick_half",
    "rehab_benefit",
    "disability",
    "disability_half",
    "programme_sa",
    "sick_sa",
    "akassa_half",
    "sick_akassa",
    "work_part_sa",
    "retired",
)
(
    ABSENT,
    CHILD,
    WORK,
    STUDY,
    AKA,
    PROG,
    SOC,
    INACT,
    SICK,
    SICKP,
    RHP,
    DIS,
    DISP,
    PROG_SA,
    SICK_SA,
    AKAP,
    SICK_AKA,
    WORKP_SA,
    RETIRED,
) = range(len(STATES))
K = len(STATES)

# Activity per state: SJP extent, RHP extent, disability extent (SA/AE), programme extent (AKS/UTV),
# a-kassa extent, social-assistance factor, work fraction.
_ACT = np.zeros((K, 7))
for _s, _row in {
    WORK: (0, 0, 0, 0, 0, 0, 1.0),
    STUDY: (0, 0, 0, 0, 0, 0, 0.1),
    AKA: (0, 0, 0, 0, 1.0, 0, 0),
    PROG: (0, 0, 0, 1.0, 0, 0, 0),
    SOC: (0, 0, 0, 0, 0, 1.0, 0.05),
    SICK: (1.0, 0, 0, 0, 0, 0, 0),
    SICKP: (0.5, 0, 0, 0, 0, 0, 0.5),
    RHP: (0, 1.0, 0, 0, 0, 0, 0),
    DIS: (0, 0, 1.0, 0, 0, 0, 0),
    DISP: (0, 0, 0.5, 0, 0, 0, 0.25),
    PROG_SA: (0, 0, 0, 1.0, 0, 0.5, 0),
    SICK_SA: (1.0, 0, 0, 0, 0, 0.5, 0),
    AKAP: (0, 0, 0, 0, 0.5, 0, 0.5),
    SICK_AKA: (0.5, 0, 0, 0, 0.5, 0, 0),
    WORKP_SA: (0, 0, 0, 0, 0, 0.5, 0.4),
}.items():
    _ACT[_s] = _row
_A_SJP, _A_RHP, _A_DIS, _A_PROG, _A_AKA, _A_SAF, _A_WF = range(7)

#: States with public support or none at all (the effect raises their exit).
NEEDY = np.zeros(K, bool)
NEEDY[[AKA, PROG, SOC, INACT, SICK, SICKP, RHP, DIS, DISP, PROG_SA, SICK_SA, AKAP, SICK_AKA, WORKP_SA]] = True
_GOOD_DEST = np.zeros(K, bool)
_GOOD_DEST[[WORK, STUDY]] = True
_SA_DEST = np.zeros(K, bool)
_SA_DEST[[SOC, PROG_SA, SICK_SA, WORKP_SA]] = True
_DIS_DEST = np.zeros(K, bool)
_DIS_DEST[[DIS, DISP]] = True

_EXIT_BASE = np.full(K, 0.05)
_EXIT_DUR = np.full(K, -0.15)
_EXIT_ETA = np.full(K, 0.4)
for _s, (_b, _d, _e) in {
    WORK: (0.014, -0.25, -0.5),
    STUDY: (0.04, 0.0, 0.0),
    AKA: (0.12, 0.0, 0.4),
    PROG: (0.08, -0.1, 0.4),
    SOC: (0.07, -0.2, 0.4),
    INACT: (0.035, -0.2, 0.4),
    SICK: (0.22, -0.35, 0.3),
    SICKP: (0.12, -0.15, 0.3),
    RHP: (0.15, -0.1, 0.3),
    DIS: (0.004, 0.0, 0.3),
    DISP: (0.01, 0.0, 0.3),
    PROG_SA: (0.08, -0.1, 0.4),
    SICK_SA: (0.10, -0.15, 0.3),
    AKAP: (0.10, -0.1, 0.3),
    SICK_AKA: (0.12, -0.1, 0.3),
    WORKP_SA: (0.08, -0.1, 0.4),
}.items():
    _EXIT_BASE[_s], _EXIT_DUR[_s], _EXIT_ETA[_s] = _b, _d, _e
_EXIT_LOGIT = np.log(_EXIT_BASE / (1 - _EXIT_BASE))

# Destination base weights B[from, to].
_DEST = np.zeros((K, K))
for _s, _w in {
    WORK: {AKA: 3, SICK: 2, SICKP: 0.5, STUDY: 1, SOC: 0.5, PROG: 0.3, INACT: 0.5, AKAP: 0.7, WORKP_SA: 0.2},
    STUDY: {WORK: 5, PROG: 1, SOC: 1, INACT: 1, SICK: 0.3, PROG_SA: 0.3},
    AKA: {WORK: 6, PROG: 2, SOC: 0.5, SICK: 0.8, STUDY: 0.5, AKAP: 1, SICK_AKA: 0.3, PROG_SA: 0.3},
    PROG: {WORK: 4, AKA: 0.3, SOC: 1, STUDY: 0.8, SICK: 0.6, PROG_SA: 0.5, INACT: 0.5},
    SOC: {WORK: 3, PROG: 2, PROG_SA: 2, STUDY: 0.5, SICK_SA: 0.7, INACT: 1, WORKP_SA: 1},
    INACT: {WORK: 2, SOC: 2, STUDY: 1, PROG: 0.5, SICK: 0.3, PROG_SA: 0.5},
    SICK: {WORK: 6, SICKP: 3, RHP: 1, DIS: 0.3, AKA: 0.8, SOC: 0.3, SICK_AKA: 0.3, SICK_SA: 0.2},
    SICKP: {WORK: 5, SICK: 2, DISP: 0.3, RHP: 0.3},
    RHP: {WORK: 4, SICKP: 2, SICK: 1, DIS: 0.2},
    DIS: {WORK: 0.5, DISP: 1},
    DISP: {DIS: 1, WORK: 0.3},
    PROG_SA: {WORK: 3, SOC: 2, PROG: 1, STUDY: 0.5, SICK_SA: 0.3},
    SICK_SA: {SOC: 2, SICK: 1, WORK: 1, DIS: 0.3, PROG_SA: 0.5},
    AKAP: {WORK: 5, AKA: 2, SICKP: 0.3},
    SICK_AKA: {AKA: 2, SICK: 1, WORK: 1.5},
    WORKP_SA: {WORK: 3, SOC: 2, PROG_SA: 0.5},
}.items():
    for _t, _v in _w.items():
        _DEST[_s, _t] = _v
_LOG_DEST = np.where(_DEST > 0, np.log(np.where(_DEST > 0, _DEST, 1.0)), -np.inf)

#: Initial states (burn-in start) of residents aged 20-64 and their weights.
INIT_STATES = np.array([WORK, STUDY, AKA, PROG, SOC, INACT, SICK, SICKP, DIS, PROG_SA, SICK_SA, AKAP])
INIT_W = np.array([0.66, 0.05, 0.04, 0.03, 0.04, 0.05, 0.03, 0.01, 0.04, 0.02, 0.01, 0.02])
_IMMIG_STATES = np.array([WORK, STUDY, PROG, SOC, INACT, PROG_SA])
_IMMIG_W = np.array([0.25, 0.10, 0.15, 0.20, 0.15, 0.15])


# ---------------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------------
def _rate4(x: np.ndarray) -> np.ndarray:
    """Daily rates as positive multiples of 4 SEK: rate × extent (quarters) is then a whole number of kronor."""
    return np.maximum(4.0 * np.round(np.asarray(x, float) / 4.0), 4.0)


def logistic(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))``."""
    return 1.0 / (1.0 + np.exp(-x))


def _days_in_month(month_index: np.ndarray) -> np.ndarray:
    m = np.asarray(month_index, np.int64)
    y, mm = m // 12, m % 12 + 1
    d = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[mm - 1]
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    return d + ((mm == 2) & leap)


def _month_start(month_index: np.ndarray) -> np.ndarray:
    """``datetime64[D]`` of the first day of each month index."""
    m = np.asarray(month_index, np.int64)
    return (m - 1970 * 12).astype("datetime64[M]").astype("datetime64[D]")


@dataclass
class People:
    """Person-level arrays of one chunk (registers and hidden traits)."""

    n: int
    pid: np.ndarray
    sex_k: np.ndarray
    birth_year: np.ndarray
    edu: np.ndarray  # 0 compulsory, 1 upper secondary, 2 post-secondary
    region: np.ndarray  # index into schema.BIRTH_REGIONS
    kommun: np.ndarray  # index into KOMMUNER
    immig_t: np.ndarray  # simulation month of immigration (-1 = resident from the start)
    censor_t: np.ndarray  # simulation month of death/emigration (T = none)
    death: np.ndarray  # bool: censor is death (else emigration)
    eta: np.ndarray  # employability index (transitions)
    hidden: np.ndarray  # hidden trait h
    w: np.ndarray  # monthly full-time earnings
    rates: np.ndarray  # (n, 7) daily rates SJP, RHP, SA, AE, AKS, UTV, AKA
    sa_base: np.ndarray
    prior_ps: np.ndarray  # months of public support before the simulation start
    pe: np.ndarray  # partial extent of the partial benefit states, index into PARTIAL_EXTENTS


#: Kommun codes, and the förbund of each (same order).
KOMMUNER: list[str] = [k for ks in FORBUND_KOMMUNER.values() for k, _ in ks]
KOMMUN_FORBUND: list[str] = [f for f, ks in FORBUND_KOMMUNER.items() for _ in ks]
_KOMMUN_W = np.array([w for ks in FORBUND_KOMMUNER.values() for _, w in ks])
_KOMMUN_W = _KOMMUN_W / _KOMMUN_W.sum()
#: Birth regions, education levels and benefit codes, in the order of their indices in :class:`People`.
REGIONS = ("sweden", "nordic", "europe", "outside_europe")
EDU = ("compulsory", "upper_secondary", "post_secondary")
BENEFIT_ORDER = ("SJP", "RHP", "SA", "AE", "AKS", "UTV", "AKA")


class World:
    """Time axis and catalogue shared by all chunks."""

    def __init__(self, cfg: SynthConfig):
        self.cfg = cfg
        self.w0 = int(mo.to_index(cfg.start))
        self.w1 = int(mo.to_index(cfg.end))
        self.m0 = self.w0 - BURN_IN_MONTHS
        self.T = self.w1 - self.m0 + 1  # simulated months
        self.tw0 = BURN_IN_MONTHS  # simulation index of the first window month
        self.month = self.m0 + np.arange(self.T)
        self.year = self.month // 12
        self.cal = self.month % 12 + 1
        self.days = _days_in_month(self.month)
        self.mstart = _month_start(self.month)
        self.window_end_date = self.mstart[-1] + (self.days[-1] - 1)
        # business cycle: job losses up and exits from support down in 2020
        covid = (self.month >= 2020 * 12 + 2) & (self.month <= 2020 * 12 + 11)
        self.cycle_work = np.where(covid, 0.6, 0.0)
        self.cycle_need = np.where(covid, -0.25, 0.0) + 0.02 * (self.year - 2016)
        self.entry_cal = 0.05 * (self.year - 2016) - 0.9 * (self.cal == 7) - 0.4 * covid
        rng = np.random.default_rng([cfg.seed, 10**9])
        self.kommun_effect = rng.normal(0.0, 0.3, len(KOMMUNER))
        # catalogue: per förbund I01..I08 person insatser, I09..I10 volume insatser
        rows = []
        for f in FORBUND_KOMMUNER:
            for j, typ in enumerate(CATALOGUE_TYPES, start=1):
                cpp = _COST_PER_PARTICIPANT[typ] * float(np.exp(rng.normal(0.0, 0.25) - 0.25**2 / 2))
                rows.append((f, f"{f}-I{j:02d}", typ, cpp, False, 0.0))
            for j, typ in ((9, "preventive"), (10, "other")):
                cpp = float(rng.uniform(800.0, 3000.0))
                rows.append((f, f"{f}-I{j:02d}", typ, cpp, True, float(rng.uniform(20.0, 120.0))))
        self.catalogue = pd.DataFrame(
            rows,
            columns=[
                "forbund_id",
                "insats_id",
                "insats_type",
                "cost_per_participant",
                "volume",
                "volume_rate",
            ],
        )
        # person insatser: row = förbund index * 8 + catalogue position (see sus.registrations)
        self.person_catalogue = self.catalogue[~self.catalogue["volume"]].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------------------------
# Population
# ---------------------------------------------------------------------------------------------------------------
def draw_population(world: World, rng: np.random.Generator, first: int, n: int, width: int) -> People:
    """The ``n`` persons of a chunk, numbered from ``first + 1`` (pseudonyms ``P`` + ``width`` digits): their
    register background and hidden traits (package docstring, step 1)."""
    T = world.T
    pid = np.char.add("P", np.char.zfill(np.arange(first + 1, first + n + 1).astype(str), width)).astype(
        object
    )
    sex_k = rng.random(n) < 0.5
    birth_year = rng.integers(1952, 2006, n)
    u = rng.random(n)
    edu = np.where(u < 0.18, 0, np.where(u < 0.62, 1, 2))
    young = (world.year[world.tw0] - birth_year) < 20
    edu = np.where(young & (edu == 2), 1, edu)
    u = rng.random(n)
    region = np.where(u < 0.80, 0, np.where(u < 0.84, 1, np.where(u < 0.90, 2, 3)))
    kommun = rng.choice(len(KOMMUNER), n, p=_KOMMUN_W)
    # immigration: part of the foreign-born arrive during the burn-in or the window
    immig = (region > 0) & (rng.random(n) < 0.35)
    immig_t = np.where(immig, rng.integers(1, T, n), -1)
    # death and emigration (exogenous censoring), only inside the window
    age_mid = world.year[world.tw0] - birth_year + 4
    p_death = np.clip(0.003 * np.exp(0.07 * (age_mid - 40)), 0.001, 0.2)
    p_emig = np.where(region > 0, 0.06, 0.015)
    u = rng.random(n)
    when = rng.integers(world.tw0, T, n)
    censor = (u < p_death + p_emig) & (when > np.maximum(immig_t, 0) + 1)
    censor_t = np.where(censor, when, T)
    death = censor & (u < p_death)
    a = rng.normal(0.0, 1.0, n)
    hidden = rng.normal(0.0, 1.0, n)
    eta = a + 0.35 * (edu == 2) - 0.45 * (edu == 0) - 0.35 * (region == 3) + 0.1 * (~sex_k)
    eta = eta - 0.6 * world.cfg.hidden_confounding * hidden
    logw = 10.2 + 0.2 * (edu == 2) - 0.15 * (edu == 0) + 0.08 * (~sex_k) + 0.1 * a + rng.normal(0.0, 0.2, n)
    w = np.exp(logw)
    daily = w * 12.0 / 365.0
    sick = _rate4(np.minimum(0.8 * daily, 1000.0))
    aka = _rate4(np.clip(0.8 * daily, 260.0, 760.0))
    sa_rate = _rate4(np.clip(0.64 * daily, 300.0, 600.0))
    rates = np.column_stack(
        [sick, sick, sa_rate, np.full(n, 300.0), _rate4(np.maximum(0.5 * aka, 160.0)), np.full(n, 108.0), aka]
    )
    sa_base = np.clip(rng.normal(8000.0, 2000.0, n), 3000.0, 20000.0)
    prior_ps = rng.geometric(1.0 / 30.0, n).astype(float)
    pe = np.searchsorted([0.25, 0.75], rng.random(n), side="right")  # index into PARTIAL_EXTENTS
    return People(
        n,
        pid,
        sex_k,
        birth_year,
        edu,
        region,
        kommun,
        immig_t,
        censor_t,
        death,
        eta,
        hidden,
        w,
        rates,
        sa_base,
        prior_ps,
        pe,
    )


# ---------------------------------------------------------------------------------------------------------------
# Monthly quantities (exactly what the panel recomputes from the written tables)
# ---------------------------------------------------------------------------------------------------------------
_PARTIAL = np.zeros(K, bool)
_PARTIAL[[SICKP, DISP, AKAP]] = True
#: Extents of the partial states (half-time sick, disability, a-kassa), per person (index into this).
PARTIAL_EXTENTS: tuple[float, ...] = (0.25, 0.5, 0.75)
# _ACT3[pe, state, col]: activity with the person's partial extent: benefit extent pe, work (1 - pe) (half of it
# for disability).
_ACT3 = np.repeat(_ACT[None, :, :], len(PARTIAL_EXTENTS), axis=0)
for _i, _pe in enumerate(PARTIAL_EXTENTS):
    for _s in np.nonzero(_PARTIAL)[0]:
        for _c in (_A_SJP, _A_RHP, _A_DIS, _A_PROG, _A_AKA):
            if _ACT[_s, _c] > 0:
                _ACT3[_i, _s, _c] = _pe
        _ACT3[_i, _s, _A_WF] = (1.0 - _pe) * (0.5 if _s == DISP else 1.0)
# group extents per (pe, state): sickness (SJP+RHP), disability, labour market, unemployment; SAF; WF
_GROUP3 = np.stack(
    [
        _ACT3[..., _A_SJP] + _ACT3[..., _A_RHP],
        _ACT3[..., _A_DIS],
        _ACT3[..., _A_PROG],
        _ACT3[..., _A_AKA],
        _ACT3[..., _A_SAF],
        _ACT3[..., _A_WF],
    ],
    axis=-1,
)


def code_ext(state: np.ndarray, age: np.ndarray, pe: np.ndarray, c: int) -> np.ndarray:
    """Extent of benefit code ``BENEFIT_ORDER[c]`` for states, ages (AE under 30, UTV under 25) and partial
    extent indices ``pe``."""
    col = (_A_SJP, _A_RHP, _A_DIS, _A_DIS, _A_PROG, _A_PROG, _A_AKA)[c]
    e = _ACT3[pe, state, col]
    if c == 2:
        return e * (age >= 30)
    if c == 3:
        return e * (age < 30)
    if c == 4:
        return e * (age >= 25)
    if c == 5:
        return e * (age < 25)
    return e


def monthly_quantities(
    s_prev: np.ndarray,
    s_cur: np.ndarray,
    age_prev: np.ndarray,
    age_cur: np.ndarray,
    day: np.ndarray,
    dim: np.ndarray,
    rates: np.ndarray,
    w: np.ndarray,
    sa_base: np.ndarray,
    earn_noise: np.ndarray,
    sa_noise: np.ndarray,
    threshold: float,
    pe: np.ndarray,
) -> dict[str, np.ndarray]:
    """Monthly outcomes of one month from the states before/after the change day ``day`` (1 = no split).

    ``days_g = (day-1)·ext_g(prev) + (dim-day+1)·ext_g(cur)``; SEK likewise with the per-person daily rates
    (``rates[..., code]``; SJP and RHP share a rate; SA/AE and AKS/UTV by age); social assistance and earnings
    are the base amounts times noise, prorated over the days, rounded to kronor. Arrays broadcast.
    """
    da = (day - 1).astype(float)
    db = (dim - day + 1).astype(float)
    gp = _GROUP3[pe, s_prev]
    gc = _GROUP3[pe, s_cur]
    r = rates
    rate_prev = (
        r[..., 0],
        np.where(age_prev >= 30, r[..., 2], r[..., 3]),
        np.where(age_prev >= 25, r[..., 4], r[..., 5]),
        r[..., 6],
    )
    rate_cur = (
        r[..., 0],
        np.where(age_cur >= 30, r[..., 2], r[..., 3]),
        np.where(age_cur >= 25, r[..., 4], r[..., 5]),
        r[..., 6],
    )
    out: dict[str, np.ndarray] = {}
    total_days = 0.0
    benefit = 0.0
    for gi, g in enumerate(SPELL_GROUPS):
        dprev = da * gp[..., gi]
        dcur = db * gc[..., gi]
        out[f"days_{g}"] = dprev + dcur
        out[f"sek_{g}"] = dprev * rate_prev[gi] + dcur * rate_cur[gi]
        total_days = total_days + out[f"days_{g}"]
        benefit = benefit + out[f"sek_{g}"]
    saf = da * gp[..., 4] + db * gc[..., 4]
    out["social_assistance_sek"] = np.round(sa_base * sa_noise * saf / dim)
    wf = da * gp[..., 5] + db * gc[..., 5]
    out["earnings_sek"] = np.round(w * earn_noise * wf / dim)
    out["benefit_sek"] = benefit + out["social_assistance_sek"]
    ps = (total_days > 0) | (out["social_assistance_sek"] > 0)
    out["public_support"] = ps.astype(float)
    out["self_support"] = ((out["earnings_sek"] >= threshold) & ~ps).astype(float)
    return out


def main_source(q: dict[str, np.ndarray], threshold: float) -> np.ndarray:
    """The main source of support of a month as its index in ``schema.SUPPORT_SOURCES`` (int8), from
    :func:`monthly_quantities` ``q``: the rule of ``panel.history_features`` (``source_u{k}``), computed the same
    way — with public support, the group with the most kronor (rounded to whole kronor), then the most nettodagar
    (to a quarter day), then the group listed first in ``schema.MAIN_SOURCE_GROUPS``; without, ``work`` when
    earnings reach ``threshold``, else ``none``."""
    n = len(MAIN_SOURCE_GROUPS)
    best = None
    for i, g in enumerate(MAIN_SOURCE_GROUPS):
        sek = q["social_assistance_sek"] if g == "social_assistance" else q[f"sek_{g}"]
        days = 0.0 if g == "social_assistance" else q[f"days_{g}"]
        # floor(x + 0.5): DuckDB's round of a non-negative number (half away from zero)
        key = (
            np.floor(np.maximum(sek, 0.0) + 0.5) * 10000
            + np.floor(np.maximum(days, 0.0) * 4 + 0.5) * 10
            + (n - i)
        )
        best = key if best is None else np.maximum(best, key)
    code = (n + 1 - np.mod(best, 10)).astype(np.int8)
    other = np.where(
        q["earnings_sek"] >= threshold, SUPPORT_SOURCES.index("work"), SUPPORT_SOURCES.index("none")
    )
    return np.where(q["public_support"] > 0, code, other).astype(np.int8)


_ANY_BENEFIT3 = _GROUP3[..., :4].sum(-1) > 0
_SAF3 = np.ascontiguousarray(_GROUP3[..., 4])
_WF3 = np.ascontiguousarray(_GROUP3[..., 5])


def core_quantities(
    s_prev: np.ndarray,
    s_cur: np.ndarray,
    day: np.ndarray,
    dim: int,
    w: np.ndarray,
    sa_base: np.ndarray,
    earn_noise: np.ndarray,
    sa_noise: np.ndarray,
    pe: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Earnings, social assistance and public support of one month: the same arithmetic as
    :func:`monthly_quantities` (bit for bit), without the per-group columns the simulation loop does not need."""
    da = (day - 1).astype(float)
    db = (dim - day + 1).astype(float)
    sa = np.round(sa_base * sa_noise.astype(float) * (da * _SAF3[pe, s_prev] + db * _SAF3[pe, s_cur]) / dim)
    earn = np.round(w * earn_noise.astype(float) * (da * _WF3[pe, s_prev] + db * _WF3[pe, s_cur]) / dim)
    ps = ((da > 0) & _ANY_BENEFIT3[pe, s_prev]) | _ANY_BENEFIT3[pe, s_cur] | (sa > 0)
    return earn, sa, ps


# ---------------------------------------------------------------------------------------------------------------
# Transitions
# ---------------------------------------------------------------------------------------------------------------
def transition(
    state: np.ndarray,
    dur: np.ndarray,
    age: np.ndarray,
    eta: np.ndarray,
    theta: np.ndarray,
    u_exit: np.ndarray,
    u_dest: np.ndarray,
    cycle_work: float,
    cycle_need: float,
) -> np.ndarray:
    """Next state from the current one (free transitions only; forced ones are applied by the caller).

    ``logit p_exit = logit(base_s) + dur_s·log(1+dur) + eta_s·η + cycle + θ·[needy] - θ/2·[work]``; the
    destination is the first ``j`` with cumulative weight share above ``u_dest``, weights
    ``B[s, j]·exp(0.5·η·[good] + θ·[good] - 0.4·η·[social assistance] + 0.04·(age-40)·[disability]
    - 0.12·max(age-22, 0)·[studies])``.
    """
    lg = _EXIT_LOGIT[state] + _EXIT_DUR[state] * np.log1p(dur) + _EXIT_ETA[state] * eta
    needy = NEEDY[state]
    lg = (
        lg + np.where(state == WORK, cycle_work - 0.5 * theta, 0.0) + np.where(needy, cycle_need + theta, 0.0)
    )
    # a-kassa ends after 14 months (300 benefit days)
    p = np.where((state == AKA) & (dur >= 14), 0.9, logistic(lg))
    movable = (state != ABSENT) & (state != CHILD) & (state != RETIRED)
    move = movable & (u_exit < p)
    new = state.copy()
    idx = np.nonzero(move)[0]
    if idx.size:
        s = state[idx]
        lw = _LOG_DEST[s].copy()
        e, th, a = eta[idx, None], theta[idx, None], age[idx, None]
        lw = lw + np.where(_GOOD_DEST[None, :], 0.5 * e + th, 0.0)
        lw = lw - np.where(_SA_DEST[None, :], 0.4 * e, 0.0)
        lw = lw + np.where(_DIS_DEST[None, :], 0.04 * (a - 40), 0.0)
        lw = lw - np.where(np.arange(K)[None, :] == STUDY, 0.12 * np.maximum(a - 22, 0), 0.0)
        aka_out = (s == AKA) & (dur[idx] >= 14)
        lw[aka_out, AKA] = -np.inf
        lw[aka_out, AKAP] = -np.inf
        wts = np.exp(lw - lw.max(axis=1, keepdims=True))
        cum = np.cumsum(wts, axis=1)
        dest = (cum < u_dest[idx, None] * cum[:, -1:]).sum(axis=1)
        new[idx] = np.minimum(dest, K - 1)
    return new


def apply_forced(
    new: np.ndarray,
    t: int,
    age: np.ndarray,
    immig_t: np.ndarray,
    censor_t: np.ndarray,
    u_init: np.ndarray,
    ever_resident: np.ndarray,
) -> np.ndarray:
    """Apply forced transitions: immigration, death/emigration, children (< 16), retirement (65+)."""
    new = np.where(age < 16, CHILD, new)
    new = np.where((new == CHILD) & (age >= 16), STUDY, new)
    new = np.where(age >= 65, RETIRED, new)
    arrive = immig_t == t
    if arrive.any():
        cw = np.cumsum(_IMMIG_W) / _IMMIG_W.sum()
        init = _IMMIG_STATES[np.minimum((u_init[:, None] > cw[None, :]).sum(1), len(cw) - 1)]
        init = np.where(age < 16, CHILD, np.where(age >= 65, RETIRED, init))
        new = np.where(arrive, init, new)
    new = np.where(~ever_resident & ~arrive, ABSENT, new)
    new = np.where(t >= censor_t, ABSENT, new)
    return new


# ---------------------------------------------------------------------------------------------------------------
# What a state means in SUS
# ---------------------------------------------------------------------------------------------------------------
#: SUS ``status_at_end`` of each state.
STATUS_OF_STATE = np.array(
    [
        "other",  # absent
        "other",  # child
        "work",
        "studies",
        "job_seeker",
        "other_programme",
        "other",
        "other",
        "sick_leave",
        "sick_leave",
        "sick_leave",
        "sick_leave",
        "sick_leave",
        "other_programme",
        "sick_leave",
        "job_seeker",
        "job_seeker",
        "work",
        "other",
    ],
    dtype=object,
)


def _support_set(s: int) -> str:
    a = _ACT[s]
    codes = []
    if a[_A_SJP] > 0 or a[_A_RHP] > 0:
        codes.append("sickness_benefit")
    if a[_A_DIS] > 0:
        codes.append("disability_benefit")
    if a[_A_AKA] > 0:
        codes.append("unemployment_insurance")
    if a[_A_PROG] > 0:
        codes.append("activity_support")
    if a[_A_SAF] > 0:
        codes.append("social_assistance")
    if s == STUDY:
        codes.append("student_aid")
    return ";".join(codes) if codes else "none"


#: SUS ``support_at_start``/``support_at_end`` code set of each state.
SUPPORT_OF_STATE = np.array([_support_set(s) for s in range(K)], dtype=object)
