"""The estimand in words (Swedish and English): the one text shown by ``explain``, the report, the manifest and
the results objects.

Which effect an analysis estimates depends on the design choices of the config: who the participants are
(window, age), the horizons, who may be a comparison person (eligibility), what happens to comparison persons who
start an insats later (``later_treated``: kept → "start now vs not now", Sianesi 2004; censored → "start now vs
no insats during follow-up", with or without IPCW) and the candidate sampling. :func:`estimand_text` writes it
from exactly those settings, :func:`short_estimand` gives the one-line form used in results objects, and
:func:`main_result_text` says which effect is the main result when anonymous participants may sit among the
controls (the plain one; the dilution-corrected one is a sensitivity row) and why.
"""

from __future__ import annotations

from typing import Protocol


class _Design(Protocol):  # the parts of config.AnalysisConfig the text reads
    window: object
    age: object
    outcomes: object
    eligibility: object
    later_treated: str
    censoring_weights: str
    language: str  # eligibility: rule, lookback_months, candidate_sample_rate


#: One-line estimands by ``later_treated`` (and ``censoring_weights`` under ``censor``), English.
SHORT: dict[tuple[str, str], str] = {
    ("keep", "ipcw"): "ATT of starting an insats in month u vs not starting in u (controls may start later)",
    ("keep", "none"): "ATT of starting an insats in month u vs not starting in u (controls may start later)",
    (
        "censor",
        "ipcw",
    ): "ATT of starting an insats in month u vs no insats during follow-up (controls censored "
    "at their own start, IPCW)",
    (
        "censor",
        "none",
    ): "ATT of starting an insats in month u vs no insats during follow-up (controls censored "
    "at their own start, unweighted)",
}


#: The estimand of the Callaway & Sant'Anna cross-check (``estimation.callaway_santanna``).
CS_DID = "ATT by event time, not-yet-treated controls (Callaway & Sant'Anna 2021)"
#: The same with never-treated controls (``cs_did.control_group: never_treated``).
CS_DID_NEVER_TREATED = "ATT by event time, never-treated controls (Callaway & Sant'Anna 2021)"


def short_estimand(later_treated: str = "keep", censoring_weights: str = "ipcw") -> str:
    """The estimand in one line (English), for results objects and logs."""
    return SHORT[(later_treated, censoring_weights)]


def _later_sentence(cfg: _Design, lang: str) -> str:
    if lang == "sv":
        if cfg.later_treated == "keep":
            return (
                "Jämförelsepersoner som själva börjar en insats senare behålls: effekten gäller att börja nu "
                "jämfört med att inte börja just nu (de kan börja senare)."
            )
        text = (
            "Jämförelsepersoner som själva börjar en insats senare följs bara fram till sin egen start: effekten "
            "gäller att börja nu jämfört med att inte delta under uppföljningen."
        )
        if cfg.censoring_weights == "ipcw":
            text += (
                " De som ännu inte har börjat vägs upp med inversen av sannolikheten att inte ha börjat, givet "
                "registerhistoriken månad för månad (IPCW)."
            )
        return text
    if cfg.later_treated == "keep":
        return (
            "Comparison persons who start an insats later are kept: the effect is of starting now versus not "
            "starting now (they may start later)."
        )
    text = (
        "Comparison persons who start an insats later are followed only up to their own start: the effect is of "
        "starting now versus not taking part during follow-up."
    )
    if cfg.censoring_weights == "ipcw":
        text += (
            " Those not yet started are weighted by the inverse probability of not having started, given their "
            "register history month by month (IPCW)."
        )
    return text


def main_result_text(lang: str = "sv") -> str:
    """Which effect is the main result when the comparison pool may hold anonymous participants, and why.

    Anonymous SUS participants are residents whose registration lacks a personal identity number: they cannot be
    left out of the comparison pool, and matched controls who are in fact participants (starting in the same month,
    or former participants) pull the effect towards zero (``contamination``). The main result is the effect on the
    matched controls as they are: it needs no further assumption and errs, if at all, towards no effect. The
    dilution-corrected effect ``estimate / (1 − share)`` rests on an estimated share (anonymous participants like
    the linkable ones) and on contaminated controls differing from their counterfactual by the effect itself (the
    plateau version: former participants by the effect at the longest horizon); it is shown beside it as a
    sensitivity row and tells how large the dilution can be.
    """
    if lang == "sv":
        return (
            "Huvudresultatet är effekten mot de matchade jämförelsepersonerna som de är. Anonymt registrerade "
            "deltagare finns i befolkningen och kan inte skiljas ut ur jämförelsegruppen; de drar effekten mot noll, "
            "så huvudresultatet är försiktigt. Den utspädningskorrigerade effekten (skattning / (1 − skattad andel "
            "anonyma deltagare bland jämförelsepersonerna), och en variant som tar hänsyn till att tidigare "
            "deltagares egen effekt hunnit växa) bygger på fler antaganden och redovisas som känslighetsanalys."
        )
    return (
        "The main result is the effect against the matched comparison persons as they are. Anonymously registered "
        "participants live in the population and cannot be removed from the comparison group; they pull the effect "
        "towards zero, so the main result is conservative. The dilution-corrected effect (estimate / (1 − the "
        "estimated share of anonymous participants among the comparison persons), and a version that allows for "
        "former participants' own effect having grown) rests on further assumptions and is shown as a sensitivity "
        "analysis."
    )


def _eligibility_words(rule: str, lookback: int, lang: str) -> str:
    """The eligibility rule in words (``options.EligibilityRule``)."""
    if rule == "recent_public_support":
        return (
            f"offentlig försörjning minst en av de {lookback} månaderna före u"
            if lang == "sv"
            else f"public support in at least one of the {lookback} months before u"
        )
    return "folkbokförd i Sverige, inget krav på försörjning" if lang == "sv" else "resident, no support rule"


def sampling_text(sample_rate: float, lang: str) -> str:
    """The candidate pool in words: the full pool, or a seeded sample at a fixed rate within each calendar month.

    A sample at a rate r fixed within month u keeps each eligible person-month of u with probability r,
    independently of the history: the odds of participation among the kept rows are those of the pool divided
    by r, so only the month's intercept in the propensity model changes (absorbed by the month effects), the
    propensity ranking within u is unchanged, and matching within u estimates the same ATT (validation/
    RESULTS_pool_sampling.md: full pool vs 10 % on the same worlds). Precision is lower, as the nearest
    controls of the full pool may not be in the sample.
    """
    if sample_rate >= 1:
        return (
            "Alla möjliga jämförelsepersonmånader används."
            if lang == "sv"
            else "Every eligible comparison person-month is used."
        )
    pct = f"{100 * sample_rate:g}".replace(".", ",") if lang == "sv" else f"{100 * sample_rate:g}"
    if lang == "sv":
        return (
            f"Jämförelsepersonerna väljs ur ett slumpurval om {pct} % av de möjliga jämförelsepersonmånaderna i "
            "varje kalendermånad. En fast urvalsandel inom månaden ändrar bara månadens konstant i "
            "propensitymodellen, som månadseffekterna fångar upp; skattningen gäller samma effekt, med något "
            "lägre precision."
        )
    return (
        f"Comparison persons are drawn from a random sample of {pct} % of the eligible comparison person-months "
        "in each calendar month. A sampling rate fixed within the month changes only that month's intercept in "
        "the propensity model, which the month effects absorb; the estimate is of the same effect, with somewhat "
        "lower precision."
    )


def estimand_text(cfg: _Design, lang: str | None = None) -> str:
    """The estimand in words for a resolved analysis config, in Swedish (``"sv"``) or English (``"en"``)."""
    lang = lang or cfg.language
    w, a, el = cfg.window, cfg.age, cfg.eligibility
    hz = ", ".join(str(h) for h in cfg.outcomes.horizons)
    later = f"{_later_sentence(cfg, lang)} {sampling_text(el.candidate_sample_rate, lang)} {main_result_text(lang)}"
    rule = _eligibility_words(el.rule, el.lookback_months, lang)
    if lang == "sv":
        return (
            f"Genomsnittlig effekt för deltagarna (ATT): för personer vars första kopplingsbara insats startade "
            f"mellan {w.start} och {w.end} och som var {a.min}–{a.max} år, skillnaden mellan deras utfall "
            f"{hz} månader efter startmånaden u (i månaden u+k och summerat över månaderna 1 till k) och det "
            f"utfall de skulle ha haft utan att börja en insats i månad u. Det kontrafaktiska utfallet skattas med "
            f"matchade jämförelsepersoner från befolkningen som i månad u var lika i registerhistorik och "
            f"bakgrund, inte deltog i någon insats och uppfyllde behörighetsregeln ({rule}). {later}"
        )
    return (
        f"Average effect on the participants (ATT): for persons whose first linkable insats started between "
        f"{w.start} and {w.end}, aged {a.min}–{a.max}, the difference between their outcome {hz} months after the "
        f"start month u (in month u+k and summed over months 1 to k) and the outcome they would have had without "
        f"starting an insats in month u. The counterfactual is estimated from matched comparison persons from the "
        f"population who in month u had the same register history and background, were in no insats and met the "
        f"eligibility rule ({rule}). {later}"
    )
