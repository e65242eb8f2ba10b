"""Every Swedish and English text of the report: headings, notes, column, table, fact and estimator labels.

Each entry is a ``(sv, en)`` pair and :func:`lang_index` picks one. Outcome labels are not here: they live beside
the outcome names in :data:`finsam_effekt.schema.OUTCOME_INFO`, and :func:`outcome_label` reads them. A text
mentioning the confidence level says ``{level}``, filled from ``inference.alpha`` by :func:`confidence_level`.
"""

from __future__ import annotations

from ..errors import ConfigError
from ..options import LANGUAGES
from ..schema import OUTCOME_INFO

#: Column headers of the tables (HTML and Excel), by column name.
COLUMN_LABELS: dict[str, tuple[str, str]] = {
    "outcome": ("Utfall", "Outcome"),
    "horizon_months": ("Horisont (månader)", "Horizon (months)"),
    "measure": ("Mått", "Measure"),
    "subgroup": ("Delgrupp", "Subgroup"),
    "estimator": ("Skattare", "Estimator"),
    "estimate": ("Skattning", "Estimate"),
    "std_error": ("Medelfel", "Std. error"),
    "ci_lower": ("KI nedre", "CI lower"),
    "ci_upper": ("KI övre", "CI upper"),
    "p_value": ("p-värde", "p-value"),
    "n_treated": ("Antal deltagare", "N treated"),
    "n_control": ("Antal jämförelsepersoner", "N controls"),
    "suppressed": ("Undertryckt", "Suppressed"),
    "rel_month": ("Månad relativt start", "Month relative to start"),
    "check": ("Kontroll", "Check"),
    "statistic": ("Statistika", "Statistic"),
    "value": ("Värde", "Value"),
    "covariate": ("Bakgrundsvariabel", "Covariate"),
    "variable": ("Bakgrundsvariabel", "Covariate"),
    "mean_treated": ("Medel deltagare", "Mean treated"),
    "mean_control": ("Medel jämförelsegrupp", "Mean controls"),
    "var_ratio": ("Varianskvot", "Variance ratio"),
    "smd_flag": ("|SMD| > 0,1", "|SMD| > 0.1"),
    "var_ratio_flag": ("Varianskvot utanför 0,5–2", "Variance ratio outside 0.5–2"),
    "smd_before": ("SMD före matchning", "SMD before matching"),
    "smd_after": ("SMD efter matchning", "SMD after matching"),
    "var_ratio_after": ("Varianskvot efter matchning", "Variance ratio after matching"),
    "sample": ("Urval", "Sample"),
    "smd": ("Standardiserad medelvärdesskillnad", "Std. mean difference"),
    "variance_ratio": ("Varianskvot", "Variance ratio"),
    "ecdf_mean": ("eCDF medel", "eCDF mean"),
    "ecdf_max": ("eCDF max", "eCDF max"),
    "step": ("Steg", "Step"),
    "step_label": ("Beskrivning", "Description"),
    "forbund_id": ("Förbund", "Förbund"),
    "start_year": ("Startår", "Start year"),
    "n": ("Antal", "Count"),
    "perspective": ("Perspektiv", "Perspective"),
    "financier": ("Finansiär", "Financier"),
    "item": ("Post", "Item"),
    "pv_sek_per_participant": ("Nuvärde kr per deltagare", "PV SEK per participant"),
    "arm": ("Grupp", "Group"),
    "mean": ("Medelvärde", "Mean"),
    "source": ("Försörjningskälla", "Support source"),
    "n_participants": ("Antal deltagare med uppgift i SUS", "Participants with SUS data"),
    "sus_yes": ("Ja enligt SUS", "Yes according to SUS"),
    "register_yes": ("Ja enligt registren", "Yes according to registers"),
    "disagree": ("Oeniga", "Disagree"),
    "share_disagree": ("Andel oeniga", "Share disagreeing"),
    "net_point_counterfactual": ("Netto, matchad jämförelse (kr)", "Net, matched comparison (SEK)"),
    "ci_lower_counterfactual": ("KI nedre, matchad jämförelse", "CI lower, matched comparison"),
    "ci_upper_counterfactual": ("KI övre, matchad jämförelse", "CI upper, matched comparison"),
    "net_point_before_after": ("Netto, före/efter (kr)", "Net, before/after (SEK)"),
    "ci_lower_before_after": ("KI nedre, före/efter", "CI lower, before/after"),
    "ci_upper_before_after": ("KI övre, före/efter", "CI upper, before/after"),
    "difference": ("Skillnad före/efter − matchad (kr)", "Difference before/after − matched (SEK)"),
}

#: Titles of the output tables (HTML headings and Excel sheet names).
TABLE_TITLES: dict[str, tuple[str, str]] = {
    "effects": ("Effekter", "Effects"),
    "event_study": ("Händelsestudie", "Event study"),
    "sensitivity": ("Känslighetsanalys", "Sensitivity"),
    "balance": ("Balans", "Balance"),
    "linkage_report": ("Bortfall och koppling", "Linkage and attrition"),
    "cost_benefit": ("Kostnad och nytta", "Cost-benefit"),
    "outcome_paths": ("Utfallsförlopp", "Outcome paths"),
    "support_consistency": ("SUS mot registren", "SUS vs registers"),
    "cost_benefit_methods": ("Kostnad och nytta, metoder", "Cost-benefit, methods"),
}

#: Readable names of the ``source`` rows of ``support_consistency`` (``linkage.SUPPORT_SOURCES`` + any_public).
SOURCE_LABELS: dict[str, tuple[str, str]] = {
    "sickness_benefit": ("Sjukpenning/rehabiliteringspenning", "Sickness/rehabilitation benefit"),
    "disability_benefit": ("Sjuk-/aktivitetsersättning", "Disability benefits"),
    "activity_support": ("Aktivitetsstöd/utvecklingsersättning", "Activity support"),
    "unemployment_insurance": ("A-kassa", "Unemployment insurance"),
    "social_assistance": ("Ekonomiskt bistånd", "Social assistance"),
    "any_public": ("Någon offentlig försörjning", "Any public support"),
}


#: One-line reading guides printed under a table in the HTML report.
TABLE_GUIDES: dict[str, tuple[str, str]] = {
    "support_consistency": (
        "Per källa: hur många deltagare som enligt SUS respektive registren (månaden före start) hade stödet, "
        "och andelen där de är oeniga; en hög andel betyder att SUS-uppgiften om försörjning vid start är osäker.",
        "Per source: how many participants had the support according to SUS and according to the registers (the "
        "month before start), and the share where they disagree; a high share means the support at start "
        "recorded in SUS is unreliable.",
    ),
    "cost_benefit_methods": (
        "Nettovärde per deltagare med matchad jämförelse (effekten) bredvid före/efter-metoden på samma "
        "deltagare; skillnaden är förändring som hade skett ändå och som före/efter-metoden räknar som vinst.",
        "Net value per participant with the matched comparison (the effect) beside the before/after method on "
        "the same participants; the difference is change that would have happened anyway and that the "
        "before/after method counts as gain.",
    ),
}

#: Headings and notes of report.html.
TEXT: dict[str, tuple[str, str]] = {
    "lang": ("sv", "en"),
    "question": ("Frågan", "The question"),
    "estimand": ("Vad som skattas", "What is estimated"),
    "data": ("Data och bortfall", "Data and attrition"),
    "balance": ("Jämförbarhet (balans)", "Comparability (balance)"),
    "effects": ("Effekter efter 3, 6 och 12 månader", "Effects at 3, 6 and 12 months"),
    "subgroups": ("Effekter i delgrupper", "Effects in subgroups"),
    "event_study": ("Förlopp före och efter start", "Paths before and after the start"),
    "sensitivity": ("Känslighetsanalys", "Sensitivity analysis"),
    "cost_benefit": ("Kostnad och nytta per finansiär", "Cost and benefit per financier"),
    "provenance": ("Spårbarhet", "Provenance"),
    "not_run": ("Steg som inte kördes", "Stages that did not run"),
    "suppressed_note": (
        "– = undertryckt: bygger på färre än {t} personer i någon grupp (röjandekontroll).",
        "– = suppressed: rests on fewer than {t} persons in a group (disclosure control).",
    ),
    "none": ("Inga resultat.", "No results."),
    "key_outcomes_note": (
        "Tabellerna här visar huvudutfallen ({outcomes}); alla utfall och båda måtten finns i {files} och i "
        "results.xlsx.",
        "The tables here show the main outcomes ({outcomes}); every outcome and both measures are in {files} and "
        "in results.xlsx.",
    ),
    "more_rows": (
        "… ytterligare {n} rader finns i CSV-filen och i results.xlsx.",
        "… {n} more rows are in the CSV file and results.xlsx.",
    ),
    "fig_suppressed": (
        "Värden som bygger på färre än {t} personer är undertryckta och visas inte.",
        "Values resting on fewer than {t} persons are suppressed and not shown.",
    ),
    "not_run_ref": (
        'Inga resultat: steget kördes inte (se "Steg som inte kördes").',
        'No results: the stage did not run (see "Stages that did not run").',
    ),
    "default_title": (
        "Effekter av Finsam-insatser på offentlig försörjning",
        "Effects of Finsam insatser on public support",
    ),
    "default_question": (
        "Minskar insatsen deltagarnas beroende av offentlig försörjning och ökar den egen försörjning efter 3, 6 "
        "och 12 månader, jämfört med liknande personer som inte började en insats samma månad? Och vad kostar "
        "och ger det staten, regionen och kommunerna?",
        "Does the insats reduce the participants' dependence on public support and raise self-support after 3, 6 "
        "and 12 months, compared with similar persons who did not start an insats in the same month? And what "
        "does it cost and return for the state, the region and the kommuner?",
    ),
    "main_estimator": ("Huvudskattare", "Main estimator"),
    "config_hash": ("Konfigurationens kontrollsumma (SHA-256)", "Config hash (SHA-256)"),
    "figure": ("Figur", "Figure"),
    "columns": ("Kolumner", "Columns"),
}

#: Key figures shown under "Data" (``ReportContent.facts``); ``pretrend:<outcome>`` adds the outcome.
FACT_LABELS: dict[str, tuple[str, str]] = {
    "register_months": ("Registerdata, månader", "Register data, months"),
    "participants": (
        "Deltagare i analysen (efter bortfall)",
        "Participants in the analysis (after attrition)",
    ),
    "candidate_control_months": ("Möjliga jämförelsepersonmånader", "Candidate control person-months"),
    "matched_treated": ("Matchade deltagare", "Matched participants"),
    "matched_controls": ("Matchade jämförelsepersoner", "Matched comparison persons"),
    "unmatched_treated": ("Deltagare utan matchning", "Participants without a match"),
    "max_abs_smd_after": ("Största |SMD| efter matchning", "Largest |SMD| after matching"),
    "cost_per_participant_sek": ("Kostnad per deltagare (kr)", "Cost per participant (SEK)"),
    "pretrend": ("Test av skillnad före start (Wald)", "Test of pre-start differences (Wald)"),
    "sus_register_disagree_any_public": (
        "Andel där SUS och registren är oeniga om offentlig försörjning vid start",
        "Share where SUS and the registers disagree on public support at start",
    ),
    "net_public_sector_counterfactual_sek": (
        "Nettovärde för offentlig sektor per deltagare, matchad jämförelse (kr)",
        "Net value for the public sector per participant, matched comparison (SEK)",
    ),
    "net_public_sector_before_after_sek": (
        "Nettovärde för offentlig sektor per deltagare, före/efter-metoden (kr)",
        "Net value for the public sector per participant, before/after method (SEK)",
    ),
}

#: Estimators by name (``options.ESTIMATORS``). To move into the estimator registry's entries
#: How an outcome is read at horizon k (``options.MEASURES``).
MEASURE_LABELS: dict[str, tuple[str, str]] = {
    "status": ("andel i månad k", "share in month k"),
    "cumulative": ("summa månad 1..k", "sum over months 1..k"),
}

#: The two arms of the outcome-path figure.
ARM_LABELS: dict[str, tuple[str, str]] = {
    "treated": ("Deltagare", "Participants"),
    "control": ("Matchade jämförelsepersoner", "Matched controls"),
}

#: The samples of the balance figures: before matching (all rows) and after (matching or IPW weights).
SAMPLE_LABELS: dict[str, tuple[str, str]] = {
    "before": ("Före matchning", "Before matching"),
    "after": ("Efter matchning", "After matching"),
}

#: Axis and legend texts of the figures.
FIGURE_LABELS: dict[str, tuple[str, str]] = {
    "abs_smd": ("|SMD|", "|SMD|"),
    "smd": ("Standardiserad medelvärdesskillnad", "Standardized mean difference"),
    "ps": ("Skattad sannolikhet att delta (avstånd)", "Propensity score (distance)"),
    "comparison": ("Jämförelsepersoner", "Comparison persons"),
}

#: Captions of the figures in report.html (a figure per outcome gets the outcome's label in front).
FIGURE_GUIDES: dict[str, tuple[str, str]] = {
    "outcome_paths": (
        "Linjerna visar utfallet månad för månad för deltagare och matchade jämförelsepersoner; "
        "före start (månad 0) ska de ligga nära varandra, avståndet efter start är effekten.",
        "The lines show the outcome month by month for participants and matched comparison persons; before the "
        "start (month 0) they should be close, the gap after the start is the effect.",
    ),
    "event_study": (
        "Punkterna är skattade skillnader per månad med {level} % konfidensintervall; före start ska de ligga "
        "runt noll.",
        "Points are estimated differences per month with {level} % confidence intervals; before the start they "
        "should lie around zero.",
    ),
    "love_plot": (
        "Varje rad är en bakgrundsvariabel; efter matchning ska alla punkter ligga inom ±0,1.",
        "Each row is a covariate; after matching every point should lie within ±0.1.",
    ),
    "ps_overlap": (
        "Fördelningen av skattad sannolikhet att delta; grupperna ska överlappa.",
        "Distribution of the estimated probability of taking part; the groups should overlap.",
    ),
    "waterfall": (
        "Staplarna visar hur kostnad och vinster summeras till nettot för varje finansiär.",
        "The bars show how cost and gains add up to the net for each financier.",
    ),
    "tornado": (
        "Hur mycket nettot ändras när ett antagande ändras; längst stapel = viktigast antagande.",
        "How much the net changes when one assumption changes; longest bar = most important assumption.",
    ),
    "effects": (
        "Skattad effekt med {level} % konfidensintervall per horisont; ett intervall som inte korsar noll är "
        "statistiskt säkerställt.",
        "Estimated effect with {level} % confidence interval per horizon; an interval that does not cross zero "
        "is statistically significant.",
    ),
}


def lang_index(lang: str) -> int:
    """Position of ``lang`` in every ``(sv, en)`` pair; :class:`ConfigError` for any other language."""
    if lang not in LANGUAGES:
        raise ConfigError(f"language: expected 'sv' or 'en', got {lang!r}")
    return LANGUAGES.index(lang)


def _pick(table: dict[str, tuple[str, str]], key: str, lang: str) -> str:
    li = lang_index(lang)  # an unknown language is an error even for a key without a label
    return table[key][li] if key in table else key


def text(key: str, lang: str) -> str:
    """Report text ``key`` in ``lang``."""
    return TEXT[key][lang_index(lang)]


def column_label(column: str, lang: str) -> str:
    """Column header in ``lang`` (the column name itself when no label is defined)."""
    return _pick(COLUMN_LABELS, column, lang)


def table_title(name: str, lang: str) -> str:
    """Title of output table ``name`` in ``lang`` (the name itself when no title is defined)."""
    return _pick(TABLE_TITLES, name, lang)


def outcome_label(outcome: str, lang: str) -> str:
    """Readable outcome name in ``lang``, from :data:`finsam_effekt.schema.OUTCOME_INFO` (else the name)."""
    li = lang_index(lang)
    info = OUTCOME_INFO.get(outcome)
    if info is None:
        return outcome
    return (info.label_sv, info.label_en)[li]


def estimator_label(estimator: str, lang: str) -> str:
    """Readable estimator name in ``lang``, from its entry in ``estimation.REGISTRY`` (else the name)."""
    from ..estimation.registry import REGISTRY  # labels live with the estimator; imported late: numpy-heavy

    li = lang_index(lang)
    entry = REGISTRY.get(estimator)
    return estimator if entry is None else (entry.label_sv, entry.label_en)[li]


def measure_label(measure: str, lang: str) -> str:
    """What ``status`` / ``cumulative`` mean, in ``lang``."""
    return _pick(MEASURE_LABELS, measure, lang)


def source_label(source: str, lang: str) -> str:
    """Readable name of a ``support_consistency`` source row in ``lang``."""
    return _pick(SOURCE_LABELS, source, lang)


def fact_label(key: str, lang: str) -> str:
    """Label of a key figure (``pretrend:<outcome>`` gets the outcome's name)."""
    base, _, arg = key.partition(":")
    label = _pick(FACT_LABELS, base, lang)
    return f"{label}: {outcome_label(arg, lang)}" if arg else label


def confidence_level(alpha: float, lang: str) -> str:
    """The confidence level ``100 (1 − alpha)`` as written in ``lang`` (``95``; ``97,5`` / ``97.5``)."""
    level = f"{round(100 * (1 - alpha), 6):g}"
    return level.replace(".", ",") if lang_index(lang) == 0 else level


def figure_guide(name: str, lang: str, alpha: float = 0.05) -> str:
    """Caption of figure ``name`` in ``lang``, with the confidence level of ``alpha`` (empty when none)."""
    guide = FIGURE_GUIDES.get(name)
    return guide[lang_index(lang)].format(level=confidence_level(alpha, lang)) if guide else ""
