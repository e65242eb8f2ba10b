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

   **Pre-entry dip** (``pre_entry_dip = D > 0``; off in the shipped world): entry also depends on the status in
   the last one or two months, by source of support, as ``panel.history_features`` reads it (``source_u1``,
   ``source_u2``: the group with the most kronor that month; work; none)::

       + D·(b[source(u-1)] + 0.5·b[source(u-2)] + 0.8·[support at u-1, none at u-2] - 0.7)

   with ``b`` = work −1.0, sickness +1.2, disability −1.0, labour-market programme +0.4, a-kassa +0.9, social
   assistance +0.5, none −0.2 (``simulate.DIP_SOURCE_TERMS``; the constant keeps the number of participants
   about the same). The states persist very differently (sickness ends at 22 % a month, falling with duration;
   social assistance at 7 %; disability hardly ever), so persons entering on a fresh sickness or a-kassa spell
   would have recovered soon anyway: counts over 3, 12 and 24 months cannot tell them from persons on support
   for the same number of months but not in the last one, and a design that matches only on counts leaves the
   status at u−1 unbalanced and the short-horizon effects biased. The month-by-month features do tell them
   apart.
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
8. **Anonymous participants** (``contamination``, on by default): a share ``anonymous_share`` (45 %; roughly
   half of all SUS registrations are linkable) of the persons who start an insats is registered without a
   personal identity number — a person-level draw from a random stream of its own, so the world is otherwise
   the same with the switch on or off. They are ordinary members of the population with ordinary register
   histories and the same effects, so they sit in the comparison pool: at their own start month (starting now),
   after it (former participants, who are not "not yet treated") and before it. ``truth_anonymous.parquet``
   lists them (person, first start month) for validation. With ``contamination`` off every participant is
   linkable and the anonymous registrations are copies of person registrations of persons outside the
   population register (the world before issue 15).
9. **Register mess** (:class:`Mess`, each switchable, on by default): anonymous registrations (without them
   the anonymous participants' registrations are simply not written), volume insatser (counts only), double registrations (a parallel insats, dropout and return
   within the episode gap), later episodes at least a year after the previous one, ongoing insatser (no end
   date), open spells at the end of data, SA/AE/AKS/UTV/AKA spells reported per payment month, spells split into
   consecutive rows, overlapping half-extent rows, a few exact duplicate rows (retroactive corrections), and SUS
   support-at-start fields that disagree with the registers now and then. None of them changes a monthly
   quantity.

Truth (``truth.json``, ``truth_participants.parquet``, ``truth_anonymous.parquet``)
-----------------------------------------------------------------------------------
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

from .config import Mess, SynthConfig, SynthResult
from .generator import CHUNK_PERSONS, file_hashes, generate, latent_person_months
from .truth import AGE_BANDS, ESTIMAND, ESTIMAND_NOT_NOW, PARTICIPANT_HORIZONS, TRUTH_HORIZONS
from .world import BURN_IN_MONTHS, FORBUND_KOMMUNER, INSATS_TYPE_SHARES, PARTIAL_EXTENTS, STATES

__all__ = [
    "AGE_BANDS",
    "BURN_IN_MONTHS",
    "CHUNK_PERSONS",
    "ESTIMAND",
    "ESTIMAND_NOT_NOW",
    "FORBUND_KOMMUNER",
    "INSATS_TYPE_SHARES",
    "PARTIAL_EXTENTS",
    "PARTICIPANT_HORIZONS",
    "STATES",
    "TRUTH_HORIZONS",
    "Mess",
    "SynthConfig",
    "SynthResult",
    "file_hashes",
    "generate",
    "latent_person_months",
]
