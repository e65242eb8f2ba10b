"""A synthetic register world with known true effects (``finsam-effekt synth``).

Evaluators cannot show anyone their register data, and nobody can tell whether an effect estimator is right
without knowing the true effect. This module simulates SUS and MiDAS-style registers in which the true effect of
every insats on every participant is known, and in which a naive participant-vs-everyone comparison is visibly
wrong (selection on a rising need for support).

Data-generating process
-----------------------
Persons are simulated in chunks of :data:`CHUNK_PERSONS` (each chunk with its own random stream
``numpy.random.default_rng([seed, chunk])``, so memory is bounded and the result does not depend on the machine),
vectorised over persons and looping over calendar months, from a burn-in of :data:`BURN_IN_MONTHS` months before
the window to its end.

1. **Population.** Sex, birth year (1952-2005), education (compulsory / upper secondary / post-secondary), birth
   region, kommun (4-digit code; ~30 kommuner in 10 samordningsförbund ``F01``-``F10``), an immigration date for
   part of the foreign-born, and exogenous death and emigration dates (which censor follow-up). Two person traits
   are not in any register: employability ``a ~ N(0, 1)`` (drives transitions only) and, when
   ``hidden_confounding > 0``, a trait ``h ~ N(0, 1)`` that drives both entry and outcomes.
2. **Monthly latent state** (:data:`STATES`): work, studies, a-kassa, labour-market programme (AKS, UTV under
   25), social assistance, inactive, sickness (full or part time, SJP), rehabiliteringspenning (RHP), disability
   (full or part; AE under 30, SA from 30), and combinations (programme + social assistance, sick + social
   assistance, part a-kassa + part work, half sick + half a-kassa, part-time work + social assistance); the part
   time extent is a person's own 0.25, 0.5 or 0.75. Children (< 16) study, persons of 65+ are retired,
   non-residents are absent. Each month a person leaves the state with probability
   ``logit p = logit(base_s) + dur_s·log(1+duration) + eta_s·η + cycle_s(t) + effect``, where
   ``η = a + education, sex and birth-region terms - 0.6·X·h`` (history dependence: state and its duration;
   a-kassa ends after 14 months). The destination is drawn from state-specific weights times ``exp(·)`` terms
   in η, age and the effect. A change happens on a day ``S`` of the month: days ``1..S-1`` belong to the old
   state.
3. **Registers from states.** Benefit spells are the runs of constant (benefit code, omfattning) with day-level
   from/to dates (a change of extent splits a spell); the amount is ``daily rate × extent × days`` with per-person
   daily rates from earnings (multiples of 4 SEK, so every monthly figure is exact). Social assistance and
   earnings are monthly amounts prorated over the days of the month in each state, rounded to whole kronor.
   These are exactly the monthly quantities the panel recomputes from the written tables (``docs/tables.md``):
   nettodagar ``= Σ days × extent``, SEK spread evenly over a spell's days (an open spell runs to the last day of
   the window), ``public_support`` = any days or SEK, ``self_support`` = earnings ≥
   ``schema.DEFAULT_SELF_SUPPORT_THRESHOLD_SEK`` and no public support.
4. **Entry into an insats** (first start, month ``u``): a monthly hazard for residents aged 16-64 who never
   started, inside the window, that depends **only on register-observable history** (months u-24..u-1 inside the
   window, exactly as ``panel.history_features`` measures it) and demographics::

       logit h = -7.5 + 2.2·ps3/3 + 1.6·max(0, ps3/3 - ps24/24) + 0.8·ps24/24 - 1.0·[ps3 = 0]
                 + 0.1·[sa_months_12 > 0] - 0.8·work_months_12/12 - 0.06·max(age - 22, 0) - 1.5·[age < 18]
                 + 0.75·[compulsory] - 0.7·[post-secondary] + 0.1·[K] + 0.2·[born outside Europe]
                 + kommun effect ~ N(0, 0.3) + 0.05·(year - 2016) - 0.9·[July] - 0.4·[Mar-Dec 2020] (+ 0.8·X·h)

   (``ps3/ps24``: months with public support in the last 3/24 months; the ``max`` term is the rise before entry,
   the Ashenfelter dip). With ``hidden_confounding X = 0`` entry is independent of every unobserved trait given
   these features, so matching on register history is a valid design; participants still differ strongly from
   the general population.
5. **Insatser.** Type with the national shares (rehab towards work/education 53 %, preparatory 25 %, assessment
   11 %, other 7 %, preventive 5 %), an insats of that type of the person's förbund, duration lognormal (median
   170 days: about half end within 6 months, ~5 % last over 2 years), status at end from the state at the end
   (12 % dropouts), support at start/end from the state.
6. **Treatment effect.** From month ``u+1`` on, with ``m = months since start``::

       θ(m) = effect_scale · τ_type · τ_sex · τ_age · 0.9 · (1 - exp(-m/4))

   (τ_type: rehab 1.0, preparatory 0.75, assessment 0.45, preventive 0.3, other 0.5; τ_sex: K 1.15, M 0.85;
   τ_age: 16-29 1.2, 30-49 1.0, 50-66 0.6). θ raises the exit logit of every public-support or inactive state,
   raises the log destination weight of work and studies, and lowers the exit logit of work by θ/2.
7. **Potential outcomes with common random numbers.** For every participant the path without any insats during
   follow-up is simulated alongside from month ``u`` on with the same uniforms (exit, destination, change day,
   earnings and social-assistance noise) and ``θ = 0``; entry is switched off in it. The true effect on a monthly
   outcome at horizon ``k`` is ``Y(with)(u+k) - Y(without)(u+k)``; ``--effect-scale 0`` gives exactly 0.
   A third path, **"not now"** (Sianesi 2004), also branches at ``u`` with the same uniforms: no start at ``u``,
   but from month ``u+1`` on the entry hazard of step 4 applies to the path's own register history (its own
   public support, social assistance and work months), and a later start ``L`` has its own effect
   ``θ(t - L)`` (type and age at ``L``). ``Y(with) - Y(not now)`` is the estimand of a comparison group that
   keeps controls who start later (``later_treated: keep``); ``Y(with) - Y(without)`` is the one that censors
   them (``later_treated: censor``). The two agree at ``k = 1``.
8. **Register mess** (:class:`Mess`, each switchable, on by default): anonymous registrations (persons without
   consent or with protected identity, who are not in the population register, so they never contaminate the
   comparison pool), volume insatser (counts only), double registrations (a parallel insats, dropout and return
   within the episode gap), later episodes at least a year after the previous one, ongoing insatser (no end
   date), open spells at the end of data, SA/AE/AKS/UTV/AKA spells reported per payment month, spells split into
   consecutive rows, overlapping half-extent rows, a few exact duplicate rows (retroactive corrections), and SUS
   support-at-start fields that disagree with the registers now and then. None of them changes a monthly
   quantity.

Truth (``truth.json``, ``truth_participants.parquet``)
-------------------------------------------------------
ATT at horizon ``k`` = mean over linkable participants with uncensored month ``u+k`` (resident, inside the
window) of ``Y(with insats) - Y(without any insats during follow-up)``; cumulative = sums over months
``u+1..u+k``. Also by sex, insats type (of the first linkable registration) and age band at ``u``
(``year(u) - birth_year``). The same against the "not now" path: ``att_not_now`` and
``att_cumulative_not_now`` in ``truth.json``, columns ``{o}_m{k}_not_now`` and ``{o}_cum{k}_not_now`` in
``truth_participants.parquet``.

References
----------
Sianesi (2004) on dynamic "treated now vs not yet" evaluation; Ashenfelter (1978) on the pre-programme dip;
Rubin (1974) on potential outcomes.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import months as mo
from .errors import ConfigError
from .io import WRITE_FORMATS, TableWriter, WriteFormat, canonical_arrow_schema, write_input_spec
from .schema import (
    DEFAULT_EPISODE_GAP_DAYS,
    DEFAULT_SELF_SUPPORT_THRESHOLD_SEK,
    INSATS_TYPES,
    OUTCOMES,
    SPELL_GROUPS,
    TABLES,
)

#: Persons per simulated chunk. Part of the definition of a world: changing it changes the random streams.
CHUNK_PERSONS: int = 20_000
#: Months simulated before the window so that states and durations have settled.
BURN_IN_MONTHS: int = 36
#: Horizons (months after the reference month) of the truth.
TRUTH_HORIZONS: tuple[int, ...] = tuple(range(1, 25))
#: Horizons written per participant to ``truth_participants.parquet``.
PARTICIPANT_HORIZONS: tuple[int, ...] = (3, 6, 12)
AGE_BANDS: tuple[tuple[str, int, int], ...] = (("16-29", 16, 29), ("30-49", 30, 49), ("50-66", 50, 66))

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
_CATALOGUE_TYPES: tuple[str, ...] = (
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
_TAU_TYPE = {
    "rehab_work_education": 1.0,
    "preparatory": 0.75,
    "assessment": 0.45,
    "preventive": 0.3,
    "other": 0.5,
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
_NEEDY = np.zeros(K, bool)
_NEEDY[[AKA, PROG, SOC, INACT, SICK, SICKP, RHP, DIS, DISP, PROG_SA, SICK_SA, AKAP, SICK_AKA, WORKP_SA]] = (
    True
)
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

# Initial states (burn-in start) of residents aged 20-64 and their weights.
_INIT_STATES = np.array([WORK, STUDY, AKA, PROG, SOC, INACT, SICK, SICKP, DIS, PROG_SA, SICK_SA, AKAP])
_INIT_W = np.array([0.66, 0.05, 0.04, 0.03, 0.04, 0.05, 0.03, 0.01, 0.04, 0.02, 0.01, 0.02])
_IMMIG_STATES = np.array([WORK, STUDY, PROG, SOC, INACT, PROG_SA])
_IMMIG_W = np.array([0.25, 0.10, 0.15, 0.20, 0.15, 0.15])


# ---------------------------------------------------------------------------------------------------------------
# Configuration and results
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Mess:
    """Register mess switches (all on by default, at realistic rates). None changes a monthly quantity."""

    anonymous: bool = True  #: anonymous registrations (not linkable)
    volume: bool = True  #: volume insatser in ``sus_volume``
    double_registrations: bool = True  #: parallel insatser, dropout and return inside the episode gap
    later_episodes: bool = True  #: new episodes at least a year after the previous one
    ongoing: bool = True  #: insatser still running at the end of data have no end date
    open_spells: bool = True  #: spells running at the end of data have no to_date
    monthly_payment_spells: bool = True  #: SA, AE, AKS, UTV and AKA spells reported per payment month
    split_spells: bool = True  #: a spell written as two consecutive rows
    overlapping_spells: bool = True  #: a full-extent spell written as overlapping half-extent rows
    duplicate_spells: bool = True  #: exact duplicate rows (retroactive corrections)
    support_mismatch: bool = True  #: SUS support_at_start disagreeing with the registers


@dataclass(frozen=True)
class SynthConfig:
    """What world to generate. The same config gives byte-identical files."""

    persons: int = 60_000
    seed: int = 2024
    start: str = "2016-01"
    end: str = "2023-12"
    effect_scale: float = 1.0
    hidden_confounding: float = 0.0
    mess: Mess = field(default_factory=Mess)
    self_support_threshold_sek: float = DEFAULT_SELF_SUPPORT_THRESHOLD_SEK

    def validate(self) -> None:
        """Raise :class:`ConfigError` with an actionable message for impossible settings."""
        if self.persons < 1:
            raise ConfigError(f"--persons must be at least 1, got {self.persons}")
        for name in ("start", "end"):
            v = getattr(self, name)
            if not (
                isinstance(v, str) and len(v) == 7 and v[4] == "-" and v[:4].isdigit() and v[5:].isdigit()
            ):
                raise ConfigError(f"--{name} must be a month YYYY-MM, got {v!r}")
            if not 1 <= int(v[5:]) <= 12:
                raise ConfigError(f"--{name} must be a month YYYY-MM, got {v!r}")
        if mo.to_index(self.end) - mo.to_index(self.start) < 11:
            raise ConfigError(f"the window {self.start}..{self.end} must span at least 12 months")
        if self.effect_scale < 0 or not math.isfinite(self.effect_scale):
            raise ConfigError(f"--effect-scale must be a finite number >= 0, got {self.effect_scale}")
        if self.hidden_confounding < 0 or not math.isfinite(self.hidden_confounding):
            raise ConfigError(
                f"--hidden-confounding must be a finite number >= 0, got {self.hidden_confounding}"
            )

    def command(self, out: str = "synthetic_data", fmt: str = "parquet") -> str:
        """The CLI command that regenerates this world."""
        return (
            f"finsam-effekt synth --out {out} --persons {self.persons} --seed {self.seed} --start {self.start} "
            f"--end {self.end} --format {fmt} --effect-scale {self.effect_scale:g} "
            f"--hidden-confounding {self.hidden_confounding:g}"
        )


@dataclass
class SynthResult:
    """What :func:`generate` wrote: paths, rows per table and the truth."""

    out_dir: Path
    config: SynthConfig
    format: str
    rows: dict[str, int]
    truth: dict
    paths: dict[str, Path]

    def to_frame(self) -> pd.DataFrame:
        """One row per written table: ``table``, ``rows``, ``path``."""
        return pd.DataFrame(
            {
                "table": list(self.rows),
                "rows": list(self.rows.values()),
                "path": [str(self.paths[t]) for t in self.rows],
            }
        )

    def summary(self) -> str:
        """Readable summary: tables, counts and the headline true effects."""
        t = self.truth
        c = t["counts"]
        lines = [
            f"Synthetic register world in {self.out_dir} ({self.format})",
            f"  persons {t['persons']}, seed {t['seed']}, window {t['window'][0]}..{t['window'][1]}, "
            f"effect scale {t['effect_scale']:g}, hidden confounding {t['hidden_confounding']:g}",
            "  rows: " + ", ".join(f"{k} {v}" for k, v in self.rows.items()),
            f"  SUS: {c['registrations']} registrations ({c['person_registrations']} person, "
            f"{c['anonymous_registrations']} anonymous, {c['double_registrations']} double), "
            f"{c['linkable_persons']} linkable persons in {c['episodes']} episodes, "
            f"{c['volume_participations']} volume participations",
            "  true ATT on linkable participants (with minus without insats):",
        ]
        for o in ("public_support", "self_support", "benefit_sek", "earnings_sek"):
            a = t["att"]["all"][o]
            lines.append(
                f"    {o:<16} month 3 {_fmt(a['3'])}, month 6 {_fmt(a['6'])}, month 12 {_fmt(a['12'])}"
            )
        lines.append("  true ATT against 'not now' (controls may start later; later_treated: keep):")
        for o in ("public_support", "self_support"):
            a = t["att_not_now"]["all"][o]
            lines.append(
                f"    {o:<16} month 3 {_fmt(a['3'])}, month 6 {_fmt(a['6'])}, month 12 {_fmt(a['12'])}"
            )
        return "\n".join(lines)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.4g}"


# ---------------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------------
def _rate4(x: np.ndarray) -> np.ndarray:
    """Daily rates as positive multiples of 4 SEK: rate × extent (quarters) is then a whole number of kronor."""
    return np.maximum(4.0 * np.round(np.asarray(x, float) / 4.0), 4.0)


def _logistic(x: np.ndarray) -> np.ndarray:
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
class _People:
    """Person-level arrays of one chunk (registers and hidden traits)."""

    n: int
    pid: np.ndarray
    sex_k: np.ndarray
    birth_year: np.ndarray
    edu: np.ndarray  # 0 compulsory, 1 upper secondary, 2 post-secondary
    region: np.ndarray  # index into schema.BIRTH_REGIONS
    kommun: np.ndarray  # index into _KOMMUNER
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


_KOMMUNER: list[str] = [k for ks in FORBUND_KOMMUNER.values() for k, _ in ks]
_KOMMUN_FORBUND: list[str] = [f for f, ks in FORBUND_KOMMUNER.items() for _ in ks]
_KOMMUN_W = np.array([w for ks in FORBUND_KOMMUNER.values() for _, w in ks])
_KOMMUN_W = _KOMMUN_W / _KOMMUN_W.sum()
_REGIONS = ("sweden", "nordic", "europe", "outside_europe")
_EDU = ("compulsory", "upper_secondary", "post_secondary")
_BENEFIT_ORDER = ("SJP", "RHP", "SA", "AE", "AKS", "UTV", "AKA")
_BENEFIT_GROUP_IDX = np.array([0, 0, 1, 1, 2, 2, 3])  # index into SPELL_GROUPS


class _World:
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
        self.kommun_effect = rng.normal(0.0, 0.3, len(_KOMMUNER))
        # catalogue: per förbund I01..I08 person insatser, I09..I10 volume insatser
        rows = []
        for f in FORBUND_KOMMUNER:
            for j, typ in enumerate(_CATALOGUE_TYPES, start=1):
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
        # person insatser: row = förbund index * 8 + catalogue position (see _pick_position)
        self.person_catalogue = self.catalogue[~self.catalogue["volume"]].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------------------------
# Population
# ---------------------------------------------------------------------------------------------------------------
def _population(world: _World, rng: np.random.Generator, first: int, n: int, width: int) -> _People:
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
    kommun = rng.choice(len(_KOMMUNER), n, p=_KOMMUN_W)
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
    return _People(
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


def _code_ext(state: np.ndarray, age: np.ndarray, pe: np.ndarray, c: int) -> np.ndarray:
    """Extent of benefit code ``_BENEFIT_ORDER[c]`` for states, ages (AE under 30, UTV under 25) and partial
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


def _quantities(
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


_ANY_BENEFIT3 = _GROUP3[..., :4].sum(-1) > 0
_SAF3 = np.ascontiguousarray(_GROUP3[..., 4])
_WF3 = np.ascontiguousarray(_GROUP3[..., 5])


def _core_quantities(
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
    :func:`_quantities` (bit for bit), without the per-group columns the simulation loop does not need."""
    da = (day - 1).astype(float)
    db = (dim - day + 1).astype(float)
    sa = np.round(sa_base * sa_noise.astype(float) * (da * _SAF3[pe, s_prev] + db * _SAF3[pe, s_cur]) / dim)
    earn = np.round(w * earn_noise.astype(float) * (da * _WF3[pe, s_prev] + db * _WF3[pe, s_cur]) / dim)
    ps = ((da > 0) & _ANY_BENEFIT3[pe, s_prev]) | _ANY_BENEFIT3[pe, s_cur] | (sa > 0)
    return earn, sa, ps


# ---------------------------------------------------------------------------------------------------------------
# Transitions
# ---------------------------------------------------------------------------------------------------------------
def _transition(
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
    needy = _NEEDY[state]
    lg = (
        lg + np.where(state == WORK, cycle_work - 0.5 * theta, 0.0) + np.where(needy, cycle_need + theta, 0.0)
    )
    # a-kassa ends after 14 months (300 benefit days)
    p = np.where((state == AKA) & (dur >= 14), 0.9, _logistic(lg))
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


def _forced(
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
# One chunk of persons
# ---------------------------------------------------------------------------------------------------------------
_STATUS_OF_STATE = np.array(
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


_SUPPORT_OF_STATE = np.array([_support_set(s) for s in range(K)], dtype=object)
_MISMATCH_CODES = np.array(["other_public", "social_assistance", "sickness_benefit", "none"], dtype=object)


@dataclass
class _ChunkOut:
    tables: dict[str, pd.DataFrame]
    truth_participants: pd.DataFrame
    # subgroup -> outcome -> (4, 24): status and cumulative sums against "without", then against "not now"
    sums: dict[str, dict[str, np.ndarray]]
    counts: dict[str, np.ndarray]  # subgroup -> (24,) uncensored participants
    n_part: dict[str, int]
    reg_counts: dict[str, int]
    cost_counts: pd.DataFrame  # insats_id, year, n
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
) -> np.ndarray:
    """Logit of the monthly hazard of a first start at ``t`` (module docstring, step 4) from the running counts of
    months with public support, social assistance and work before ``t`` inside the window (rows = persons)."""
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
    """Effect size ``τ_type · τ_sex · τ_age`` of a start at ``age`` (module docstring, step 6)."""
    return tau_type * sex_mult * np.where(age < 30, 1.2, np.where(age < 50, 1.0, 0.6))


def _simulate_chunk(
    world: _World, chunk: int, first: int, n: int, width: int, keep_latent: bool = False
) -> _ChunkOut:
    cfg = world.cfg
    rng = np.random.default_rng([cfg.seed, chunk])
    p = _population(world, rng, first, n, width)
    T, tw0 = world.T, world.tw0
    thr = cfg.self_support_threshold_sek

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
    w = _INIT_W[None, :] * np.ones((n, 1))
    w[:, 0] *= np.exp(0.7 * p.eta)  # work
    w[:, 1] *= np.where(age0 < 30, 6.0, 0.5)  # studies
    w[:, 8] *= np.exp(0.05 * (age0 - 40))  # disability
    w[:, 2:] *= np.exp(-0.3 * p.eta)[:, None]
    cw = np.cumsum(w, axis=1)
    init = _INIT_STATES[(cw < rng.random(n)[:, None] * cw[:, -1:]).sum(1)]
    init = np.where(age0 < 20, np.where(rng.random(n) < 0.8, STUDY, init), init)
    init = np.where(age0 < 16, CHILD, np.where(age0 >= 65, RETIRED, init))
    ever_resident = p.immig_t < 0
    state = np.where(ever_resident, init, ABSENT).astype(np.int8)
    dur = rng.integers(0, 24, n).astype(float)
    prior_ps = np.where(_NEEDY[state], np.where(state == DIS, 3.0, 1.0) * p.prior_ps, 0.0)
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
            lg = _entry_logit(entry_base, cum_ps, cum_sa, cum_work, t, tw0, age, world.entry_cal[t])
            eligible = (u_start < 0) & _can_enter(state, age, p.censor_t, t)
            enter = eligible & (u_entry < _logistic(lg))
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
        new = _transition(
            state, dur, age, p.eta, theta, u_exit, u_dest, world.cycle_work[t], world.cycle_need[t]
        )
        new = _forced(new, t, age, p.immig_t, p.censor_t, u_init, ever_resident)
        ever_resident = ever_resident | (p.immig_t == t)
        change = (new != state) | (age != age_prev)
        day_mat[:, t] = np.where(change, dd, 1)
        e_t, sa_t, ps_t = _core_quantities(
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
        active = (u_start >= 0) & (m_since >= 1) & (m_since <= 24)
        cf_col = state.copy()
        nn_col = state.copy()
        if active.any():
            a = np.nonzero(active)[0]
            cf_new = _transition(
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
            cf_new = _forced(cf_new, t, age[a], p.immig_t[a], p.censor_t[a], u_init[a], ever_resident[a])
            cf_dur[a] = np.where(cf_new == cf_state[a], cf_dur[a] + 1.0, 0.0)
            cf_state[a] = cf_new
            cf_col[a] = cf_new

            # "not now": a later first start on the path's own register history (same hazard as above)
            lg = _entry_logit(
                entry_base[a], nn_cum_ps[a], nn_cum_sa[a], nn_cum_work[a], t, tw0, age[a], world.entry_cal[t]
            )
            enter = (
                (nn_start[a] < 0)
                & _can_enter(nn_state[a], age[a], p.censor_t[a], t)
                & (u_entry[a] < _logistic(lg))
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
            nn_new = _transition(
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
            nn_new = _forced(nn_new, t, age[a], p.immig_t[a], p.censor_t[a], u_init[a], ever_resident[a])
            nn_change = (nn_new != nn_state[a]) | (age[a] != age_prev[a])
            nn_e, nn_sa, nn_ps = _core_quantities(
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
            nn_dur[a] = np.where(nn_new == nn_state[a], nn_dur[a] + 1.0, 0.0)
            nn_state[a] = nn_new
            nn_col[a] = nn_new
        cf_mat[:, t] = cf_col
        nn_mat[:, t] = nn_col

    tables = _register_tables(world, p, state_mat, day_mat, draw_day, earn, sa, rng)
    regs, reg_counts = _registrations(
        world, p, rng, u_start, start_day, type_idx, state_mat, ps, prior_ps, draw_day
    )
    tables["sus_registrations"] = regs
    cost_counts = (
        regs.assign(year=pd.DatetimeIndex(regs["start_date"]).year)
        .groupby(["insats_id", "year"], as_index=False)
        .size()
        .rename(columns={"size": "n"})
    )
    tp, sums, counts, n_part = _truth_chunk(
        world, p, u_start, age_u, type_idx, state_mat, cf_mat, nn_mat, draw_day, earn_noise, sa_noise
    )
    latent = None
    if keep_latent:
        cols = np.arange(tw0, T)
        by = p.birth_year[:, None]
        q = _quantities(
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
    return _ChunkOut(tables, tp, sums, counts, n_part, reg_counts, cost_counts, latent)


def latent_person_months(config: SynthConfig) -> pd.DataFrame:
    """The latent monthly outcomes of the world ``config`` (as ``docs/tables.md`` ``person_months``).

    One row per person and uncensored window month with any public support or earnings, columns ``person_id``,
    ``month`` and every outcome of ``schema.OUTCOMES``. The panel must reproduce these from the written tables;
    used by tests (it simulates the whole world again, so keep ``config.persons`` small).
    """
    config.validate()
    world = _World(config)
    width = max(7, len(str(config.persons)))
    parts = []
    for chunk, first in enumerate(range(0, config.persons, CHUNK_PERSONS)):
        n = min(CHUNK_PERSONS, config.persons - first)
        parts.append(_simulate_chunk(world, chunk, first, n, width, keep_latent=True).latent)
    return pd.concat(parts, ignore_index=True)


# ---------------------------------------------------------------------------------------------------------------
# Register tables of a chunk
# ---------------------------------------------------------------------------------------------------------------
def _dates(d: np.ndarray) -> pd.Series:
    """``datetime64[D]`` (NaT allowed) as a pandas datetime column."""
    return pd.Series(np.asarray(d, "datetime64[D]").astype("datetime64[ns]"))


def _register_tables(
    world: _World,
    p: _People,
    state_mat: np.ndarray,
    day_mat: np.ndarray,
    draw_day: np.ndarray,
    earn: np.ndarray,
    sa: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, pd.DataFrame]:
    mess = world.cfg.mess
    T, tw0, n = world.T, world.tw0, p.n
    nat = np.datetime64("NaT", "D")
    rows = np.arange(n)
    imm = np.where(
        p.immig_t >= 0,
        world.mstart[np.maximum(p.immig_t, 0)] + (draw_day[rows, np.maximum(p.immig_t, 0)] - 1),
        nat,
    )
    ct = np.minimum(p.censor_t, T - 1)
    cdate = np.where(p.censor_t < T, world.mstart[ct] + (draw_day[rows, ct] - 1), nat)
    population = pd.DataFrame(
        {
            "person_id": p.pid,
            "sex": np.where(p.sex_k, "K", "M").astype(object),
            "birth_year": p.birth_year.astype(np.int64),
            "education": np.array(_EDU, dtype=object)[p.edu],
            "kommun": np.array(_KOMMUNER, dtype=object)[p.kommun],
            "birth_region": np.array(_REGIONS, dtype=object)[p.region],
            "immigration_date": _dates(imm),
            "emigration_date": _dates(np.where(p.death, nat, cdate)),
            "death_date": _dates(np.where(p.death, cdate, nat)),
        }
    )

    # benefit spells: runs of constant (code, extent) over the month before the window and the window; runs are
    # then clipped to the window (a run ending on day S-1 of the first window month keeps those days)
    cols = np.arange(tw0 - 1, T)
    W1 = T - tw0 + 1
    ages = world.year[cols][None, :] - p.birth_year[:, None]
    st = state_mat[:, cols]
    dm = day_mat[:, cols].astype(np.int64)
    mstart = world.mstart[cols]
    wstart = world.mstart[tw0]
    end_date = world.window_end_date
    first_col = (np.arange(W1) == 0)[None, :]
    last_col = (np.arange(W1) == W1 - 1)[None, :]
    parts = []
    for c in range(len(_BENEFIT_ORDER)):
        e = _code_ext(st, ages, p.pe[:, None], c)
        differs = np.concatenate([np.ones((n, 1), bool), e[:, 1:] != e[:, :-1]], axis=1)
        nxt_differs = np.concatenate([e[:, 1:] != e[:, :-1], np.ones((n, 1), bool)], axis=1)
        si, sj = np.nonzero((e > 0) & (differs | first_col))
        ei, ej = np.nonzero((e > 0) & (nxt_differs | last_col))
        if si.size == 0:
            continue
        frm = np.maximum(np.where(sj == 0, wstart, mstart[sj] + (dm[si, sj] - 1)), wstart)
        is_open = ej == W1 - 1
        nx = np.minimum(ej + 1, W1 - 1)
        to = np.where(is_open, nat, mstart[nx] + (dm[ei, nx] - 2))
        keep = is_open | (to >= wstart)
        parts.append(
            pd.DataFrame(
                {"row": si, "code": c, "from": frm, "to": to, "ext": e[si, sj], "rate": p.rates[si, c]}
            )[keep]
        )
    sp = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame({"row": [], "code": [], "from": [], "to": [], "ext": [], "rate": []})
    )
    if not mess.open_spells:
        sp["to"] = sp["to"].fillna(pd.Timestamp(end_date))
    if mess.monthly_payment_spells:
        sp = _split_by_month(sp, np.isin(sp["code"].to_numpy(), [2, 3, 4, 5, 6]), end_date)
    sp = _spell_mess(sp, mess, rng, end_date)
    to_eff = sp["to"].to_numpy("datetime64[D]")
    to_eff = np.where(np.isnat(to_eff), end_date, to_eff)
    ndays = (to_eff - sp["from"].to_numpy("datetime64[D]")).astype(np.int64) + 1
    sp["amount_sek"] = sp["rate"].to_numpy() * sp["ext"].to_numpy() * ndays
    order = np.lexsort((sp["code"].to_numpy(), sp["from"].to_numpy("datetime64[D]"), sp["row"].to_numpy()))
    sp = sp.iloc[order].reset_index(drop=True)
    spells = pd.DataFrame(
        {
            "person_id": p.pid[sp["row"].to_numpy(np.int64)],
            "benefit": np.array(_BENEFIT_ORDER, dtype=object)[sp["code"].to_numpy(np.int64)],
            "from_date": _dates(sp["from"].to_numpy("datetime64[D]")),
            "to_date": _dates(sp["to"].to_numpy("datetime64[D]")),
            "extent": sp["ext"].to_numpy(float),
            "amount_sek": sp["amount_sek"].to_numpy(float),
        }
    )

    month_text = np.asarray(mo.from_index(world.month), dtype=object)

    def monthly(mat: np.ndarray, col: str) -> pd.DataFrame:
        i, j = np.nonzero(mat[:, tw0:] > 0)
        return pd.DataFrame(
            {"person_id": p.pid[i], "month": month_text[tw0 + j], col: mat[i, tw0 + j].astype(float)}
        )

    return {
        "population": population,
        "benefit_spells": spells,
        "social_assistance": monthly(sa, "amount_sek"),
        "earnings": monthly(earn, "earnings_sek"),
    }


def _split_by_month(sp: pd.DataFrame, which: np.ndarray, end_date: np.datetime64) -> pd.DataFrame:
    """Split the rows ``which`` at calendar-month boundaries (payment months); the last piece stays open."""
    frm = sp["from"].to_numpy("datetime64[D]")
    to = sp["to"].to_numpy("datetime64[D]")
    to_eff = np.where(np.isnat(to), end_date, to)
    m_from = frm.astype("datetime64[M]")
    nm = np.where(which, (to_eff.astype("datetime64[M]") - m_from).astype(np.int64) + 1, 1)
    rep = np.repeat(np.arange(len(sp)), nm)
    k = np.arange(rep.size) - np.repeat(np.cumsum(nm) - nm, nm)
    piece_month = m_from[rep] + k
    p_from = np.maximum(frm[rep], piece_month.astype("datetime64[D]"))
    p_to = np.minimum(to_eff[rep], (piece_month + 1).astype("datetime64[D]") - 1)
    last = k == nm[rep] - 1
    p_to = np.where(last, to[rep], p_to)  # keeps an open spell open
    out = sp.iloc[rep].reset_index(drop=True)
    out["from"] = p_from
    out["to"] = p_to
    return out


def _spell_mess(
    sp: pd.DataFrame, mess: Mess, rng: np.random.Generator, end_date: np.datetime64
) -> pd.DataFrame:
    """Split, overlapping and duplicate rows that leave every monthly quantity unchanged.

    A split spell becomes two consecutive rows; an overlapping one (extent 1) becomes one half-extent row over the
    whole spell plus two consecutive half-extent rows; duplicates are exact copies. Amounts follow from
    ``rate × extent × days`` of each row, so SEK per day is unchanged.
    """
    n = len(sp)
    frm = sp["from"].to_numpy("datetime64[D]")
    to = sp["to"].to_numpy("datetime64[D]")
    to_eff = np.where(np.isnat(to), end_date, to)
    ndays = (to_eff - frm).astype(np.int64) + 1
    u = rng.random(n)
    cut = 1 + np.floor(rng.random(n) * np.maximum(ndays - 1, 1)).astype(np.int64)  # days in the first part
    overlap = mess.overlapping_spells & (u < 0.03) & (sp["ext"].to_numpy() == 1.0) & (ndays >= 2)
    split = mess.split_spells & (u >= 0.03) & (u < 0.07) & (ndays >= 2)
    keep = sp[~overlap & ~split]
    out = [keep]
    for mask, half in ((split, False), (overlap, True)):
        if not mask.any():
            continue
        base = sp[mask]
        mid = frm[mask] + cut[mask]
        first = base.assign(to=_dates(mid - 1).to_numpy())
        second = base.assign(**{"from": _dates(mid).to_numpy()})
        if half:
            whole = base.assign(ext=0.5)
            first = first.assign(ext=0.5)
            second = second.assign(ext=0.5)
            out += [whole, first, second]
        else:
            out += [first, second]
    res = pd.concat(out, ignore_index=True)
    if mess.duplicate_spells and len(res):
        dup = rng.random(len(res)) < 0.003
        res = pd.concat([res, res[dup]], ignore_index=True)
    return res


# ---------------------------------------------------------------------------------------------------------------
# SUS registrations of a chunk
# ---------------------------------------------------------------------------------------------------------------
_TYPE_POSITIONS: tuple[tuple[int, ...], ...] = tuple(
    tuple(j for j, t in enumerate(_CATALOGUE_TYPES) if t == typ) for typ in INSATS_TYPES
)
_KOMMUN_FORBUND_IDX = np.array([list(FORBUND_KOMMUNER).index(f) for f in _KOMMUN_FORBUND])
_PSB_CUTS = np.array([12, 36, 72, 120])
_PSB_LABELS = np.array(["lt1y", "1to3y", "3to6y", "6to10y", "gt10y"], dtype=object)


def _pick_type(u: np.ndarray) -> np.ndarray:
    shares = np.array([INSATS_TYPE_SHARES[t] for t in INSATS_TYPES])
    cum = np.cumsum(shares / shares.sum())
    return np.minimum((u[:, None] > cum[None, :]).sum(1), len(cum) - 1)


def _pick_position(type_idx: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Catalogue position (0..7 within a förbund) of an insats of each type, uniformly among that type's."""
    out = np.zeros(type_idx.size, np.int64)
    for ti, pos in enumerate(_TYPE_POSITIONS):
        sel = type_idx == ti
        out[sel] = np.asarray(pos)[np.minimum((u[sel] * len(pos)).astype(np.int64), len(pos) - 1)]
    return out


def _duration(rng: np.random.Generator, n: int, median: float) -> np.ndarray:
    """Days in insats: lognormal, median ``median``, sigma 0.9 (about half end within 6 months)."""
    return np.maximum(7, np.round(median * np.exp(0.9 * rng.standard_normal(n)))).astype(np.int64)


def _registrations(
    world: _World,
    p: _People,
    rng: np.random.Generator,
    u_start: np.ndarray,
    start_day: np.ndarray,
    type_idx: np.ndarray,
    state_mat: np.ndarray,
    ps: np.ndarray,
    prior_ps: np.ndarray,
    draw_day: np.ndarray,
) -> tuple[pd.DataFrame, dict[str, int]]:
    mess = world.cfg.mess
    T = world.T
    wend = world.window_end_date
    cat = world.person_catalogue
    rows_all = np.arange(p.n)
    ct = np.minimum(p.censor_t, T - 1)
    censor_date = np.where(p.censor_t < T, world.mstart[ct] + (draw_day[rows_all, ct] - 1), wend + 100_000)
    ps_cum = np.concatenate([np.zeros((p.n, 1), np.int32), np.cumsum(ps, axis=1, dtype=np.int32)], axis=1)
    part = np.nonzero(u_start >= 0)[0]
    m = part.size
    fi = _KOMMUN_FORBUND_IDX[p.kommun[part]]

    def sim_t(d: np.ndarray) -> np.ndarray:
        y = d.astype("datetime64[M]").astype(np.int64) + 1970 * 12
        return np.clip(y - world.m0, 0, T - 1)

    def build(r: np.ndarray, f: np.ndarray, pos: np.ndarray, sd: np.ndarray, dur: np.ndarray) -> dict:
        end = np.minimum(sd + (dur - 1), censor_date[r] - 1)
        end = np.maximum(end, sd)
        ongoing = end > wend
        ts, te = sim_t(sd), sim_t(np.minimum(end, wend))
        crow = f * len(_CATALOGUE_TYPES) + pos
        s_start = state_mat[r, ts]
        sup_start = _SUPPORT_OF_STATE[s_start]
        months_before = prior_ps[r] + ps_cum[r, ts]
        psb = _PSB_LABELS[np.searchsorted(_PSB_CUTS, months_before, side="right")]
        psb = np.where(np.isin(sup_start, ["none", "student_aid"]), "not_applicable", psb)
        status = _STATUS_OF_STATE[state_mat[r, te]]
        status = np.where(rng.random(r.size) < 0.12, "dropout", status)
        sup_end = _SUPPORT_OF_STATE[state_mat[r, te]]
        if mess.ongoing:
            end_out = np.where(ongoing, np.datetime64("NaT", "D"), end)
            status = np.where(ongoing, None, status)
            sup_end = np.where(ongoing, None, sup_end)
        else:
            end_out = np.minimum(end, wend)
        return {
            "r": r,
            "crow": crow,
            "start": sd,
            "end": end_out,
            "end_eff": end,
            "ongoing": ongoing,
            "sup_start": sup_start,
            "sup_end": sup_end,
            "status": status.astype(object),
            "psb": psb,
        }

    sd1 = world.mstart[u_start[part]] + (start_day[part] - 1)
    first = build(part, fi, _pick_position(type_idx[part], rng.random(m)), sd1, _duration(rng, m, 170.0))
    regs = [first]
    n_double = 0
    n_later = 0
    # parallel insats in the same förbund, starting inside the first registration
    u_par, u_when, u_typ, u_pos = rng.random(m), rng.random(m), rng.random(m), rng.random(m)
    dur_par = _duration(rng, m, 90.0)
    last = np.minimum(first["end_eff"], wend)
    span = (last - sd1).astype(np.int64)
    sd_par = sd1 + 1 + np.floor(u_when * np.maximum(span - 1, 0)).astype(np.int64)
    par = (u_par < 0.08) & (span >= 1) & (sd_par <= last) & (sd_par < censor_date[part])
    max_end = first["end_eff"].copy()
    any_ongoing = first["ongoing"].copy()
    if mess.double_registrations and par.any():
        pos = _pick_position(_pick_type(u_typ[par]), u_pos[par])
        pos = np.where(
            pos == first["crow"][par] % len(_CATALOGUE_TYPES), (pos + 1) % len(_CATALOGUE_TYPES), pos
        )
        reg = build(part[par], fi[par], pos, sd_par[par], dur_par[par])
        regs.append(reg)
        n_double += int(par.sum())
        max_end[par] = np.maximum(max_end[par], reg["end_eff"])
        any_ongoing[par] |= reg["ongoing"]
    # dropout and return within the episode gap
    u_ret, u_gap = rng.random(m), rng.random(m)
    dur_ret = _duration(rng, m, 120.0)
    gap = 1 + np.floor(u_gap * (DEFAULT_EPISODE_GAP_DAYS - 10)).astype(np.int64)
    sd_ret = first["end_eff"] + gap
    ret = (u_ret < 0.05) & ~first["ongoing"] & (sd_ret <= wend) & (sd_ret < censor_date[part])
    if mess.double_registrations and ret.any():
        first["status"][ret] = "dropout"
        reg = build(part[ret], fi[ret], first["crow"][ret] % len(_CATALOGUE_TYPES), sd_ret[ret], dur_ret[ret])
        regs.append(reg)
        n_double += int(ret.sum())
        max_end[ret] = np.maximum(max_end[ret], reg["end_eff"])
        any_ongoing[ret] |= reg["ongoing"]
    # a later episode at least a year after the end of the previous one
    u_lat, u_lwhen, u_ltyp, u_lpos = rng.random(m), rng.random(m), rng.random(m), rng.random(m)
    dur_lat = _duration(rng, m, 170.0)
    sd_lat = max_end + 365 + np.floor(u_lwhen * 700).astype(np.int64)
    lat = (u_lat < 0.10) & ~any_ongoing & (sd_lat <= wend) & (sd_lat < censor_date[part])
    if mess.later_episodes and lat.any():
        pos = _pick_position(_pick_type(u_ltyp[lat]), u_lpos[lat])
        regs.append(build(part[lat], fi[lat], pos, sd_lat[lat], dur_lat[lat]))
        n_later += int(lat.sum())

    def frame(reg: dict, kind: str, pid: np.ndarray, demo_rows: np.ndarray) -> pd.DataFrame:
        crow = reg["crow"]
        return pd.DataFrame(
            {
                "person_id": pid,
                "registration_kind": kind,
                "forbund_id": cat["forbund_id"].to_numpy()[crow],
                "insats_id": cat["insats_id"].to_numpy()[crow],
                "insats_type": cat["insats_type"].to_numpy()[crow],
                "start_date": _dates(reg["start"]),
                "end_date": _dates(reg["end"]),
                "sex": np.where(p.sex_k[demo_rows], "K", "M").astype(object),
                "birth_year": p.birth_year[demo_rows].astype(np.int64),
                "education": np.array(_EDU, dtype=object)[p.edu[demo_rows]],
                "kommun": np.array(_KOMMUNER, dtype=object)[p.kommun[demo_rows]],
                "support_at_start": reg["sup_start"],
                "support_at_end": reg["sup_end"],
                "status_at_end": reg["status"],
                "public_support_before": reg["psb"],
            }
        )

    person = pd.concat([frame(r, "person", p.pid[r["r"]], r["r"]) for r in regs], ignore_index=True)
    # SUS support at start disagrees with the registers now and then
    u_mis = rng.random(len(person))
    alt = _MISMATCH_CODES[np.minimum((rng.random(len(person)) * len(_MISMATCH_CODES)).astype(int), 3)]
    if mess.support_mismatch:
        mis = (u_mis < 0.10) & (person["support_at_start"].to_numpy() != alt)
        person.loc[mis, "support_at_start"] = alt[mis]
    person = person.sort_values(["person_id", "start_date", "insats_id"], kind="stable").reset_index(
        drop=True
    )

    # anonymous registrations: persons outside the population register (no consent / protected identity)
    n_anon = int(rng.poisson(0.9 * len(person))) if len(person) else 0
    tmpl = rng.integers(0, max(len(person), 1), n_anon)
    shift = rng.integers(-120, 121, n_anon)
    dur_anon = _duration(rng, n_anon, 170.0)
    anon = pd.DataFrame(columns=person.columns)
    if mess.anonymous and n_anon and len(person):
        anon = person.iloc[tmpl].reset_index(drop=True).copy()
        sd = anon["start_date"].to_numpy("datetime64[D]") + shift
        sd = np.clip(sd, world.mstart[world.tw0], wend)
        end = sd + (dur_anon - 1)
        ongoing = end > wend
        anon["person_id"] = None
        anon["registration_kind"] = "anonymous"
        anon["start_date"] = _dates(sd)
        if mess.ongoing:
            anon["end_date"] = _dates(np.where(ongoing, np.datetime64("NaT", "D"), end))
            anon.loc[ongoing, ["status_at_end", "support_at_end"]] = None
        else:
            anon["end_date"] = _dates(np.minimum(end, wend))
        anon.loc[~ongoing & anon["status_at_end"].isna(), "status_at_end"] = "other"
        anon.loc[~ongoing & anon["support_at_end"].isna(), "support_at_end"] = "none"
    out = pd.concat([person, anon], ignore_index=True) if len(anon) else person
    counts = {
        "registrations": len(out),
        "person_registrations": len(person),
        "anonymous_registrations": len(anon),
        "double_registrations": n_double,
        "linkable_persons": m,
        "episodes": m + n_later,
    }
    return out, counts


# ---------------------------------------------------------------------------------------------------------------
# Truth of a chunk
# ---------------------------------------------------------------------------------------------------------------
def _subgroups(
    p: _People, part: np.ndarray, age_u: np.ndarray, type_idx: np.ndarray
) -> dict[str, np.ndarray]:
    groups = {"all": np.ones(part.size, bool)}
    groups["sex=K"] = p.sex_k[part]
    groups["sex=M"] = ~p.sex_k[part]
    for ti, typ in enumerate(INSATS_TYPES):
        groups[f"insats_type={typ}"] = type_idx[part] == ti
    for band, lo, hi in AGE_BANDS:
        groups[f"age_band={band}"] = (age_u[part] >= lo) & (age_u[part] <= hi)
    return groups


def _truth_chunk(
    world: _World,
    p: _People,
    u_start: np.ndarray,
    age_u: np.ndarray,
    type_idx: np.ndarray,
    state_mat: np.ndarray,
    cf_mat: np.ndarray,
    nn_mat: np.ndarray,
    draw_day: np.ndarray,
    earn_noise: np.ndarray,
    sa_noise: np.ndarray,
) -> tuple[pd.DataFrame, dict, dict, dict]:
    """Individual effects for k = 1..24 and their subgroup sums: ``Y(with)(u+k) - Y(without)(u+k)`` (no insats
    during follow-up) and ``Y(with)(u+k) - Y(not now)(u+k)`` (no start at u, a later start possible)."""
    T = world.T
    part = np.nonzero(u_start >= 0)[0]
    u = u_start[part]
    ks = np.asarray(TRUTH_HORIZONS)
    tk = u[:, None] + ks[None, :]
    valid = (tk <= T - 1) & (tk < p.censor_t[part][:, None])
    tkc = np.minimum(tk, T - 1)
    r = part[:, None]
    by = p.birth_year[part][:, None]
    age_cur, age_prev = world.year[tkc] - by, world.year[tkc - 1] - by
    dim = world.days[tkc]
    en = earn_noise[r, tkc].astype(float)
    sn = sa_noise[r, tkc].astype(float)
    q = {}
    for name, mat in (("with", state_mat), ("without", cf_mat), ("not_now", nn_mat)):
        s_prev, s_cur = mat[r, tkc - 1], mat[r, tkc]
        change = (s_prev != s_cur) | (age_prev != age_cur)
        day = np.where(change, draw_day[r, tkc], 1)
        q[name] = _quantities(
            s_prev,
            s_cur,
            age_prev,
            age_cur,
            day,
            dim,
            p.rates[part][:, None, :],
            p.w[part][:, None],
            p.sa_base[part][:, None],
            en,
            sn,
            world.cfg.self_support_threshold_sek,
            p.pe[part][:, None],
        )
    status = {o: np.where(valid, q["with"][o] - q["without"][o], np.nan) for o in OUTCOMES}
    cumulative = {o: np.cumsum(status[o], axis=1) for o in OUTCOMES}
    status_nn = {o: np.where(valid, q["with"][o] - q["not_now"][o], np.nan) for o in OUTCOMES}
    cumulative_nn = {o: np.cumsum(status_nn[o], axis=1) for o in OUTCOMES}
    groups = _subgroups(p, part, age_u, type_idx)
    sums = {
        g: {
            o: np.stack(
                [
                    np.nansum(status[o][m], 0),
                    np.nansum(cumulative[o][m], 0),
                    np.nansum(status_nn[o][m], 0),
                    np.nansum(cumulative_nn[o][m], 0),
                ]
            )
            for o in OUTCOMES
        }
        for g, m in groups.items()
    }
    counts = {g: valid[m].sum(0) for g, m in groups.items()}
    n_part = {g: int(m.sum()) for g, m in groups.items()}
    cols: dict[str, np.ndarray] = {
        "person_id": p.pid[part],
        "ref_month": np.asarray(mo.from_index(world.month[u]) if u.size else np.array([], str), dtype=object),
    }
    for o in OUTCOMES:
        for k in PARTICIPANT_HORIZONS:
            cols[f"{o}_m{k}"] = status[o][:, k - 1]
    for o in OUTCOMES:
        for k in PARTICIPANT_HORIZONS:
            cols[f"{o}_cum{k}"] = cumulative[o][:, k - 1]
    for o in OUTCOMES:
        for k in PARTICIPANT_HORIZONS:
            cols[f"{o}_m{k}_not_now"] = status_nn[o][:, k - 1]
            cols[f"{o}_cum{k}_not_now"] = cumulative_nn[o][:, k - 1]
    return pd.DataFrame(cols), sums, counts, n_part


# ---------------------------------------------------------------------------------------------------------------
# The whole world
# ---------------------------------------------------------------------------------------------------------------
_PERSON_TABLES = ("population", "sus_registrations", "benefit_spells", "social_assistance", "earnings")

ESTIMAND = (
    "ATT: for linkable participants (persons with a person registration in SUS), the mean difference between "
    "the outcome in calendar month u+k (status) or summed over months u+1..u+k (cumulative) with the insats and "
    "without any insats during follow-up, where u is the calendar month of the start of the person's first "
    "linkable registration; averaged over participants whose month u+k is observed (resident and inside the "
    "window). Potential outcomes are simulated with common random numbers."
)
ESTIMAND_NOT_NOW = (
    "ATT against 'not now' (Sianesi 2004), the estimand of comparison groups that keep controls who start later "
    "(later_treated: keep): as 'att', but the outcome without the insats is that of not starting in month u while "
    "the entry hazard applies from month u+1 on to the path's own register history, so the person may start an "
    "insats later and then gets that insats' effect (the same uniforms as the other paths)."
)


def _volume_and_costs(world: _World, cost_counts: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    cfg = world.cfg
    rng = np.random.default_rng([cfg.seed, 10**9 + 1])
    years = np.arange(world.w0 // 12, world.w1 // 12 + 1)
    vol = world.catalogue[world.catalogue["volume"]].reset_index(drop=True)
    lam = vol["volume_rate"].to_numpy()[:, None] * cfg.persons / 60_000.0 * np.ones((1, years.size))
    counts = rng.poisson(lam)
    volume = pd.DataFrame(
        {
            "forbund_id": np.repeat(vol["forbund_id"].to_numpy(), years.size),
            "insats_id": np.repeat(vol["insats_id"].to_numpy(), years.size),
            "year": np.tile(years, len(vol)).astype(np.int64),
            "participations": counts.ravel().astype(np.int64),
        }
    )
    volume = volume[volume["participations"] > 0].reset_index(drop=True)
    if not cfg.mess.volume:
        volume = volume.iloc[:0]
    cat = world.catalogue.set_index("insats_id")
    per = cost_counts.groupby(["insats_id", "year"], as_index=False)["n"].sum()
    per = pd.concat(
        [per, volume.rename(columns={"participations": "n"})[["insats_id", "year", "n"]]], ignore_index=True
    ).sort_values(["insats_id", "year"], kind="stable")
    noise = np.exp(0.05 * rng.standard_normal(len(per)))
    cpp = cat.loc[per["insats_id"], "cost_per_participant"].to_numpy()
    index = 1.02 ** (per["year"].to_numpy() - years[0])
    costs = pd.DataFrame(
        {
            "forbund_id": cat.loc[per["insats_id"], "forbund_id"].to_numpy(),
            "insats_id": per["insats_id"].to_numpy(),
            "year": per["year"].to_numpy(np.int64),
            "cost_sek": np.round(per["n"].to_numpy() * cpp * index * noise),
        }
    ).reset_index(drop=True)
    return volume, costs


_WORKER_WORLD: _World | None = None


def _init_worker(config: SynthConfig) -> None:
    global _WORKER_WORLD
    _WORKER_WORLD = _World(config)


def _run_chunk(args: tuple[int, int, int, int]) -> _ChunkOut:
    """Simulate one chunk in a worker process and hand back Arrow tables (cheap to pass between processes),
    built exactly as ``io.TableWriter`` builds them for Parquet."""
    chunk, first, n, width = args
    assert _WORKER_WORLD is not None
    co = _simulate_chunk(_WORKER_WORLD, chunk, first, n, width)
    co.tables = {
        t: pa.Table.from_pandas(df[TABLES[t].names], schema=canonical_arrow_schema(t), preserve_index=False)
        for t, df in co.tables.items()
    }
    co.truth_participants = pa.Table.from_pandas(co.truth_participants, preserve_index=False)
    return co


def _chunk_results(world: _World, config: SynthConfig, width: int, workers: int):
    """Yield ``(first, n, chunk output)`` in chunk order, simulated here or by ``workers`` processes."""
    jobs = [
        (chunk, first, min(CHUNK_PERSONS, config.persons - first), width)
        for chunk, first in enumerate(range(0, config.persons, CHUNK_PERSONS))
    ]
    if workers <= 1 or len(jobs) == 1:
        for chunk, first, n, _ in jobs:
            yield first, n, _simulate_chunk(world, chunk, first, n, width)
        return
    import multiprocessing
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(config,)) as pool:
        pending: deque = deque()
        it = iter(jobs)
        for job in it:
            pending.append((job, pool.submit(_run_chunk, job)))
            if len(pending) > workers:
                break
        while pending:
            job, fut = pending.popleft()
            co = fut.result()
            nxt = next(it, None)
            if nxt is not None:
                pending.append((nxt, pool.submit(_run_chunk, nxt)))
            yield job[1], job[2], co


def _write_arrow(writer: TableWriter, tab: pa.Table) -> None:
    """Append an Arrow table built by :func:`_run_chunk` to a Parquet :class:`~finsam_effekt.io.TableWriter`
    (the same ParquetWriter call as ``TableWriter.write``)."""
    writer.rows += tab.num_rows
    if writer._pq is None:
        writer._pq = pq.ParquetWriter(writer.path, tab.schema, compression="zstd")
    writer._pq.write_table(tab)


def _json_number(x: float) -> float | None:
    x = float(x)
    return None if not math.isfinite(x) else x


def generate(
    out_dir: Path | str,
    config: SynthConfig | None = None,
    fmt: WriteFormat = "parquet",
    progress: Callable[[int, int], None] | None = None,
    workers: int = 1,
) -> SynthResult:
    """Generate a synthetic register world into ``out_dir``.

    Writes every canonical table (``schema.TABLES``) in ``fmt`` plus ``mapping.yaml`` (the input spec that reads
    them), ``truth.json``, ``truth_participants.parquet`` and ``README.md``. Persons are simulated in chunks of
    :data:`CHUNK_PERSONS` and streamed to the writers, so memory stays bounded (SPSS/Stata excepted: they are
    written at the end). See the module docstring for the data-generating process.

    Parameters
    ----------
    out_dir : folder to write into (created if missing).
    config : :class:`SynthConfig`; the default is the shipped world.
    fmt : one of ``io.WRITE_FORMATS``.
    progress : called as ``progress(persons_done, persons_total)`` after each chunk.
    workers : processes simulating chunks in parallel (Parquet only; chunks are still written in order, so the
        files are byte-identical to ``workers=1``). At most ``workers + 1`` chunks are in memory at once.
    """
    config = config or SynthConfig()
    config.validate()
    if fmt not in WRITE_FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(WRITE_FORMATS)}, got {fmt!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    world = _World(config)
    width = max(7, len(str(config.persons)))
    writers = {t: TableWriter(out, t, fmt) for t in _PERSON_TABLES}
    tp_path = out / "truth_participants.parquet"
    tp_writer: pq.ParquetWriter | None = None
    sums: dict[str, dict[str, np.ndarray]] = {}
    counts: dict[str, np.ndarray] = {}
    n_part: dict[str, int] = {}
    reg_counts: dict[str, int] = {}
    cost_parts = []
    for first, n, co in _chunk_results(world, config, width, workers if fmt == "parquet" else 1):
        for t, df in co.tables.items():
            if isinstance(df, pa.Table):
                _write_arrow(writers[t], df)
            else:
                writers[t].write(df)
        tab = co.truth_participants
        if not isinstance(tab, pa.Table):
            tab = pa.Table.from_pandas(tab, preserve_index=False)
        if tp_writer is None:
            tp_writer = pq.ParquetWriter(tp_path, tab.schema, compression="zstd")
        tp_writer.write_table(tab)
        for g, d in co.sums.items():
            for o, v in d.items():
                sums.setdefault(g, {}).setdefault(o, np.zeros_like(v))
                sums[g][o] = sums[g][o] + v
            counts[g] = counts.get(g, 0) + co.counts[g]
            n_part[g] = n_part.get(g, 0) + co.n_part[g]
        for k, v in co.reg_counts.items():
            reg_counts[k] = reg_counts.get(k, 0) + v
        cost_parts.append(co.cost_counts)
        del co
        if progress is not None:
            progress(first + n, config.persons)
    volume, costs = _volume_and_costs(world, pd.concat(cost_parts, ignore_index=True))
    for t, df in (("sus_volume", volume), ("insats_costs", costs)):
        writers[t] = TableWriter(out, t, fmt)
        writers[t].write(df)
    for w in writers.values():
        w.close()
    if tp_writer is not None:
        tp_writer.close()
    write_input_spec(out, fmt, list(TABLES))

    # rows of sums[g][o]: 0/1 status/cumulative against "without", 2/3 against "not now"
    blocks = {"att": 0, "att_cumulative": 1, "att_not_now": 2, "att_cumulative_not_now": 3}
    means: dict[str, dict[str, dict]] = {b: {} for b in blocks}
    for g in sums:
        c = counts[g].astype(float)
        for b, row in blocks.items():
            means[b][g] = {}
            for o in OUTCOMES:
                with np.errstate(invalid="ignore", divide="ignore"):
                    v = np.where(c > 0, sums[g][o][row] / np.maximum(c, 1), np.nan)
                means[b][g][o] = {str(k): _json_number(v[i]) for i, k in enumerate(TRUTH_HORIZONS)}
    reg_counts["volume_participations"] = int(volume["participations"].sum())
    order = (
        "registrations",
        "person_registrations",
        "anonymous_registrations",
        "volume_participations",
        "double_registrations",
        "linkable_persons",
        "episodes",
    )
    truth = {
        "estimand": ESTIMAND,
        "seed": config.seed,
        "persons": config.persons,
        "effect_scale": config.effect_scale,
        "hidden_confounding": config.hidden_confounding,
        "window": [config.start, config.end],
        "self_support_threshold_sek": config.self_support_threshold_sek,
        "mess": asdict(config.mess),
        "estimand_not_now": ESTIMAND_NOT_NOW,
        "att": means["att"],
        "att_cumulative": means["att_cumulative"],
        "att_not_now": means["att_not_now"],
        "att_cumulative_not_now": means["att_cumulative_not_now"],
        "n_participants": n_part,
        "n_uncensored": {
            g: {str(k): int(counts[g][i]) for i, k in enumerate(TRUTH_HORIZONS)} for g in counts
        },
        "counts": {k: int(reg_counts.get(k, 0)) for k in order},
    }
    (out / "truth.json").write_text(json.dumps(truth, indent=1) + "\n", encoding="utf-8")
    rows = {t: w.rows for t, w in writers.items()}
    paths = {t: w.path for t, w in writers.items()}
    res = SynthResult(out, config, fmt, rows, truth, paths)
    (out / "README.md").write_text(_readme(res), encoding="utf-8")
    return res


def _readme(res: SynthResult) -> str:
    cfg = res.config
    doc = __doc__ or ""
    dgp = doc[doc.index("Data-generating process") : doc.index("References")].rstrip()
    table = "\n".join(f"| `{t}` | {n} |" for t, n in res.rows.items())
    return f"""# Synthetic register world

Generated by `finsam_effekt.synth` (finsam_effekt). Regenerate it exactly — the files are byte-identical for the
same arguments, whatever folder `--out` names — with:

```bash
{cfg.command("synthetic_data", res.format)}
```

Every table follows the canonical schema (`finsam_effekt/schema.py`); `mapping.yaml` is the input spec that reads
them. `truth.json` holds the true effects (estimand below), `truth_participants.parquet` the individual true
effects of every linkable participant at 3, 6 and 12 months (NaN when censored): columns `{{o}}_m{{k}}` (status in
month u+k) and `{{o}}_cum{{k}}` (sum over months u+1..u+k) against no insats during follow-up (the estimand of
`later_treated: censor`), and `{{o}}_m{{k}}_not_now` / `{{o}}_cum{{k}}_not_now` against not starting in month u but
possibly later (`truth.json` `att_not_now`: the estimand of `later_treated: keep`).

| table | rows |
|---|---|
{table}

{res.summary().replace(str(res.out_dir), "this folder")}

Estimand: {ESTIMAND}

{dgp}
"""


def file_hashes(folder: Path | str) -> dict[str, str]:
    """SHA-256 of every file in ``folder`` (name -> hex digest), for determinism checks."""
    folder = Path(folder)
    return {
        f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(folder.iterdir()) if f.is_file()
    }


__all__ = [
    "CHUNK_PERSONS",
    "ESTIMAND",
    "STATES",
    "Mess",
    "SynthConfig",
    "SynthResult",
    "file_hashes",
    "generate",
    "latent_person_months",
]
