"""Every code name a table or figure carries, as a reader's label in Swedish and English.

The files (CSV, Excel) keep the code names as data; the page and the figures show these labels instead, and the
workbook puts them beside the codes. Each dict maps a code to a ``(sv, en)`` pair; the lookup functions fall back
to the code itself only for a value no dict knows (a new code shows up rather than disappears). Outcome labels
and units live in ``schema.OUTCOME_INFO``, estimator labels in ``estimation.REGISTRY``.
"""

from __future__ import annotations

import re

from ..schema import OUTCOME_INFO
from .text import lang_index, outcome_label

Pair = tuple[str, str]

# -- units ----------------------------------------------------------------------------------------------------------
#: The unit of an effect by unit kind (``numbers.unit_kind``), long form.
UNIT_LABELS: dict[str, Pair] = {
    "pp": ("procentenheter", "percentage points"),
    "months": ("månader", "months"),
    "sek": ("kronor", "SEK"),
    "days": ("dagar", "days"),
    "number": ("", ""),
}
#: How the effect of an outcome is read, by unit kind and measure: what "k" means for it.
UNIT_READINGS: dict[tuple[str, str], Pair] = {
    ("pp", "status"): ("procentenheter, i månad k", "percentage points, in month k"),
    ("months", "cumulative"): ("antal månader av månad 1–k", "number of months of months 1–k"),
    ("sek", "status"): ("kronor i månad k", "SEK in month k"),
    ("sek", "cumulative"): ("kronor, summa månad 1–k", "SEK, sum over months 1–k"),
    ("days", "status"): ("dagar i månad k", "days in month k"),
    ("days", "cumulative"): ("dagar, summa månad 1–k", "days, sum over months 1–k"),
}

#: The subject of the one-sentence reading of an outcome (what was higher or lower).
OUTCOME_SUBJECTS: dict[str, Pair] = {
    "public_support": ("andelen med offentlig försörjning", "the share on public support"),
    "self_support": ("andelen med egen försörjning", "the share self-supporting"),
    "days_sickness": (
        "antalet nettodagar med sjuk- eller rehabiliteringspenning",
        "net days of sickness benefit",
    ),
    "days_disability": (
        "antalet nettodagar med sjuk- eller aktivitetsersättning",
        "net days of disability benefits",
    ),
    "days_labour_market": ("antalet nettodagar med aktivitetsstöd", "net days of labour-market support"),
    "days_unemployment": ("antalet nettodagar med a-kassa", "net days of unemployment insurance"),
    "sek_sickness": ("sjuk- och rehabiliteringspenningen per månad", "sickness benefit per month"),
    "sek_disability": ("sjuk- och aktivitetsersättningen per månad", "disability benefits per month"),
    "sek_labour_market": ("aktivitetsstödet per månad", "labour-market support per month"),
    "sek_unemployment": ("a-kassan per månad", "unemployment insurance per month"),
    "social_assistance_sek": ("det ekonomiska biståndet per månad", "social assistance per month"),
    "benefit_sek": ("den offentliga försörjningen i kronor per månad", "public support in SEK per month"),
    "earnings_sek": ("arbetsinkomsten per månad", "earnings per month"),
}

# -- attrition ------------------------------------------------------------------------------------------------------
#: The steps of the linkage report (``linkage.STEPS``).
STEP_LABELS: dict[str, Pair] = {
    "registrations": ("SUS-registreringar (alla)", "SUS registrations (all)"),
    "anonymous": ("Anonyma registreringar (kan inte kopplas)", "Anonymous registrations (not linkable)"),
    "person_registrations": ("Registreringar med personuppgifter", "Registrations with personal data"),
    "volume_participations": ("Volyminsatser (bara antal)", "Volume insats participations (counts only)"),
    "unique_persons": ("Unika personer med personuppgifter", "Unique persons with personal data"),
    "episodes": (
        "Episoder efter sammanslagna dubbelregistreringar",
        "Episodes after merging double registrations",
    ),
    "double_registrations": (
        "Dubbelregistreringar som slagits ihop till en episod",
        "Double registrations merged into an episode",
    ),
    "found_in_population": (
        "Personer som finns i befolkningsregistret",
        "Persons found in the population register",
    ),
    "in_window": ("Första start inom analysperioden", "First start inside the analysis window"),
    "in_age_range": (
        "Ålder vid första start inom åldersintervallet",
        "Age at first start inside the age range",
    ),
    "enough_history": (
        "Tillräcklig registerhistorik före start (deltagare)",
        "Enough register history before start (participants)",
    ),
    # the attrition stage's steps (``attrition.COHORT_STEPS``, ``MATCH_STEPS``, ``EDUCATION_STEPS``)
    "not_in_population": ("– saknas i befolkningsregistret", "– not in the population register"),
    "died_before_start": ("– avliden före start", "– died before start"),
    "emigrated_before_start": ("– utvandrad före start", "– emigrated before start"),
    "not_yet_resident": (
        "– ännu inte folkbokförd vid start (invandrad startmånaden eller senare)",
        "– not yet resident at start (immigrated in the start month or later)",
    ),
    "outside_age_range": ("– utanför åldersintervallet vid start", "– outside the age range at start"),
    "short_history": (
        "– för kort registerhistorik före start",
        "– too short a register history before start",
    ),
    "not_eligible": (
        "– uppfyller inte urvalsregeln vid start (offentlig försörjning före start)",
        "– not eligible at start (the eligibility rule: public support before start)",
    ),
    "in_cohort": (
        "I kohorten vid start (folkbokförd, ålder, historik, urvalsregel)",
        "In the cohort at start (resident, age, history, eligible)",
    ),
    "unmatched_no_candidate_in_stratum": (
        "– ej matchad: ingen jämförelseperson samma månad och stratum",
        "– unmatched: no comparison person in the same month and stratum",
    ),
    "unmatched_outside_caliper": (
        "– ej matchad: ingen jämförelseperson inom avståndsgränsen (caliper)",
        "– unmatched: no comparison person within the caliper",
    ),
    "unmatched_candidates_used_up": (
        "– ej matchad: jämförelsepersonerna inom avståndsgränsen redan använda",
        "– unmatched: comparison persons within the caliper already used",
    ),
    "matched": ("Matchade deltagare", "Matched participants"),
    "unknown_education_participants": (
        "Matchade deltagare med okänd utbildning",
        "Matched participants with unknown education",
    ),
    "unknown_education_controls": (
        "Matchade jämförelsepersoner med okänd utbildning (personer)",
        "Matched comparison persons with unknown education (persons)",
    ),
}
#: The follow-up steps of the attrition report at horizon k (``attrition.HORIZON_STEPS``; ``{base}_m{k}``).
HORIZON_STEP_LABELS: dict[str, Pair] = {
    "censored_register_end": (
        "– {k} mån: censurerad, registren slutar före månad {k} efter start",
        "– {k} months: censored, the registers end before month {k} after start",
    ),
    "censored_death_emigration": (
        "– {k} mån: censurerad, avliden eller utvandrad efter start",
        "– {k} months: censored, died or emigrated after start",
    ),
    "outcome_observed": (
        "Matchade med huvudutfallet observerat {k} månader efter start",
        "Matched with the main outcome observed {k} months after start",
    ),
}

# -- sensitivity ----------------------------------------------------------------------------------------------------
#: The checks of ``sensitivity.csv``.
CHECK_LABELS: dict[str, Pair] = {
    "rosenbaum_mcnemar": ("Rosenbaums gränser (McNemar, andelar)", "Rosenbaum bounds (McNemar, shares)"),
    "rosenbaum_wilcoxon": ("Rosenbaums gränser (Wilcoxon)", "Rosenbaum bounds (Wilcoxon)"),
    "e_value": ("E-värde", "E-value"),
    "placebo_outcome": ("Placebo-utfall före start", "Placebo outcome before start"),
    "placebo_start": ("Placebo-start ett år tidigare", "Placebo start one year earlier"),
}
#: The statistics of ``sensitivity.csv``.
STATISTIC_LABELS: dict[str, Pair] = {
    "n_pairs": ("Antal par", "Number of pairs"),
    "p_value_gamma_1": ("p-värde utan dold skevhet (Γ = 1)", "p-value without hidden bias (Γ = 1)"),
    "critical_gamma": ("Kritiskt Γ", "Critical Γ"),
    "risk_ratio": ("Riskkvot", "Risk ratio"),
    "risk_ratio_ci_lower": ("Riskkvot, KI nedre", "Risk ratio, CI lower"),
    "risk_ratio_ci_upper": ("Riskkvot, KI övre", "Risk ratio, CI upper"),
    "e_value": ("E-värde (skattningen)", "E-value (estimate)"),
    "e_value_ci": ("E-värde (KI-gränsen närmast 1)", "E-value (CI limit closest to 1)"),
    "estimate": ("Skattning", "Estimate"),
    "std_error": ("Medelfel", "Std. error"),
    "p_value": ("p-värde", "p-value"),
}

# -- subgroups ------------------------------------------------------------------------------------------------------
#: Subgroup fields (``options.SUBGROUP_FIELDS``).
SUBGROUP_FIELD_LABELS: dict[str, Pair] = {
    "sex": ("Kön", "Sex"),
    "age_band": ("Ålder", "Age"),
    "insats_type": ("Insatstyp", "Insats type"),
    "forbund_id": ("Förbund", "Förbund"),
    "public_support_before": (
        "Tid med offentlig försörjning före start",
        "Time on public support before start",
    ),
}
#: Values of the subgroup fields (and of the categorical covariates), by field.
VALUE_LABELS: dict[str, dict[str, Pair]] = {
    "sex": {"K": ("Kvinnor", "Women"), "M": ("Män", "Men")},
    "insats_type": {
        "rehab_work_education": (
            "Arbetslivsinriktad rehabilitering (arbete/studier)",
            "Rehabilitation towards work or education",
        ),
        "preparatory": ("Förberedande insats", "Preparatory insats"),
        "assessment": ("Kartläggning", "Assessment"),
        "preventive": ("Förebyggande insats", "Preventive insats"),
        "other": ("Övrig insats", "Other insats"),
    },
    "public_support_before": {
        "lt1y": ("Mindre än 1 år", "Less than 1 year"),
        "1to3y": ("1–3 år", "1–3 years"),
        "3to6y": ("3–6 år", "3–6 years"),
        "6to10y": ("6–10 år", "6–10 years"),
        "gt10y": ("Mer än 10 år", "More than 10 years"),
        "not_applicable": ("Ej tillämpligt", "Not applicable"),
    },
    "education": {
        "compulsory": ("Förgymnasial utbildning", "Compulsory school"),
        "upper_secondary": ("Gymnasieutbildning", "Upper secondary school"),
        "post_secondary": ("Eftergymnasial utbildning", "Post-secondary education"),
        "unknown": ("Okänd", "Unknown"),
    },
    "birth_region": {
        "sweden": ("Född i Sverige", "Born in Sweden"),
        "nordic": ("Född i Norden utom Sverige", "Born in the Nordic countries outside Sweden"),
        "europe": ("Född i Europa utom Norden", "Born in Europe outside the Nordic countries"),
        "outside_europe": ("Född utanför Europa", "Born outside Europe"),
        "unknown": ("Okänd", "Unknown"),
    },
    #: the main source of support in a month before start (``source_u{k}``, ``schema.SUPPORT_SOURCES``)
    "source": {
        "work": ("Arbete (egen försörjning)", "Work (self-support)"),
        "sickness": ("Sjuk-/rehabiliteringspenning", "Sickness benefit"),
        "disability": ("Sjuk-/aktivitetsersättning", "Disability benefits"),
        "labour_market": (
            "Aktivitetsstöd (arbetsmarknadspolitiskt program)",
            "Labour-market programme support",
        ),
        "unemployment": ("A-kassa", "Unemployment insurance"),
        "social_assistance": ("Ekonomiskt bistånd", "Social assistance"),
        "none": ("Ingen registrerad försörjning", "No registered support"),
    },
}

# -- covariates -----------------------------------------------------------------------------------------------------
#: The register-history and demographic covariates (``schema.FEATURE_COLUMNS``); ``{w}`` is the window in months.
COVARIATE_LABELS: dict[str, Pair] = {
    "ps_months": ("Månader med offentlig försörjning, senaste {w} mån", "Months on public support, last {w} months"),
    "days_sickness": ("Nettodagar sjuk-/rehabiliteringspenning, senaste {w} mån", "Net days sickness benefit, last {w} months"),
    "days_disability": ("Nettodagar sjuk-/aktivitetsersättning, senaste {w} mån", "Net days disability benefits, last {w} months"),
    "days_labour_market": ("Nettodagar aktivitetsstöd, senaste {w} mån", "Net days labour-market support, last {w} months"),
    "days_unemployment": ("Nettodagar a-kassa, senaste {w} mån", "Net days unemployment insurance, last {w} months"),
    "sa_months": ("Månader med ekonomiskt bistånd, senaste {w} mån", "Months on social assistance, last {w} months"),
    "benefit_sek": ("Offentlig försörjning i kronor, senaste {w} mån", "Public support in SEK, last {w} months"),
    "earnings": ("Arbetsinkomst i kronor, senaste {w} mån", "Earnings in SEK, last {w} months"),
    "work_months": ("Månader med arbetsinkomst, senaste {w} mån", "Months with earnings, last {w} months"),
    "months_since_work": ("Månader sedan senaste arbetsinkomst", "Months since last earnings"),
    "age": ("Ålder", "Age"),
    "sex": ("Kön", "Sex"),
    "education": ("Utbildning", "Education"),
    "birth_region": ("Födelseregion", "Region of birth"),
    "kommun": ("Kommun", "Kommun"),
    "forbund_id": ("Förbund", "Förbund"),
    "ref_month": ("Startmånad", "Start month"),
    "distance": ("Skattad sannolikhet att delta (propensity score)", "Propensity score (distance)"),
    # the status month by month before start (``ps_u{k}``, ``source_u{k}``) and the pre-period outcome path
    # (``{outcome}_u{k}``, ``{outcome}_mean{w}``); ``{k}``/``{w}`` filled in by covariate_label
    "ps_u": ("Offentlig försörjning i månaden u−{k}", "On public support in month u−{k}"),
    "source_u": ("Huvudsaklig försörjning i månaden u−{k}", "Main source of support in month u−{k}"),
    "outcome_u": ("{outcome}, månaden u−{k}", "{outcome}, month u−{k}"),
    "outcome_mean": ("{outcome}, medel u−{w}…u−1", "{outcome}, mean u−{w}…u−1"),
}  # fmt: skip

# -- cost-benefit ---------------------------------------------------------------------------------------------------
#: The financiers (and the participant and society) of the cost-benefit.
FINANCIER_LABELS: dict[str, Pair] = {
    "FK": ("Försäkringskassan (del av staten)", "Försäkringskassan (part of the state)"),
    "AF": ("Arbetsförmedlingen (del av staten)", "Arbetsförmedlingen (part of the state)"),
    "akassa_fund": ("A-kassorna", "Unemployment insurance funds"),
    "state": ("Staten", "The state"),
    "region": ("Regionen", "The region"),
    "kommun": ("Kommunerna", "The kommuner"),
    "public_sector_total": ("Offentlig sektor totalt", "Public sector, total"),
    "participant": ("Deltagaren (ingen finansiär)", "The participant (not a financier)"),
    "society": ("Samhället (samhällsekonomiskt)", "Society (socio-economic)"),
}
#: The items per financier (``cost_benefit.items``).
ITEM_LABELS: dict[str, Pair] = {
    "cost": ("Kostnad för insatsen", "Cost of the insats"),
    "savings_sickness": ("Minskad sjuk-/rehabiliteringspenning", "Less sickness benefit"),
    "savings_disability": ("Minskad sjuk-/aktivitetsersättning", "Less disability benefits"),
    "savings_labour_market": ("Minskat aktivitetsstöd", "Less labour-market support"),
    "savings_unemployment": ("Minskad a-kassa", "Less unemployment insurance"),
    "benefit_savings": ("Minskade ersättningar", "Less benefits paid"),
    "state_income_tax": ("Statlig inkomstskatt", "State income tax"),
    "payroll_fees": ("Arbetsgivaravgifter", "Payroll fees"),
    "regional_income_tax": ("Regionalskatt", "Regional income tax"),
    "savings_social_assistance": ("Minskat ekonomiskt bistånd", "Less social assistance"),
    "kommunal_income_tax": ("Kommunalskatt", "Kommunal income tax"),
    "income_tax": ("Inkomstskatt", "Income tax"),
    "earnings": ("Arbetsinkomst", "Earnings"),
    "benefits": ("Ersättningar", "Benefits"),
    "production_value": ("Produktionsvärde (lön och avgifter)", "Production value (earnings and fees)"),
    "resource_cost": ("Resurskostnad för insatsen", "Resource cost of the insats"),
    "excess_burden": ("Skattefinansieringens merkostnad", "Excess burden of taxation"),
    "net": ("Netto", "Net"),
    "state_other_benefit_savings": ("Minskad a-kassa (staten)", "Less unemployment insurance (state)"),
    "state_other_cost": ("Övrig kostnad (staten)", "Other cost (state)"),
}
#: The two perspectives (``options.PERSPECTIVES``).
PERSPECTIVE_LABELS: dict[str, Pair] = {
    "public_finance": ("Offentligfinansiellt", "Public finance"),
    "socio_economic": ("Samhällsekonomiskt", "Socio-economic"),
}
#: The assumptions varied in the one-way sensitivity (the tornado chart).
PARAMETER_LABELS: dict[str, Pair] = {
    "discount_rate": ("Diskonteringsränta", "Discount rate"),
    "persistence": ("Effektens varaktighet", "Persistence of the effect"),
    "horizon_years": ("Horisont (år)", "Horizon (years)"),
    "income_tax_rates": ("Skattesatser", "Income tax rates"),
    "cost": ("Kostnad per deltagare", "Cost per participant"),
}
#: What the effect is assumed to do after the estimated months (``options.PERSISTENCE_KINDS``), as the verb of
#: "after month k the effect is assumed to …".
PERSISTENCE_LABELS: dict[str, Pair] = {
    "none": ("upphöra", "end"),
    "constant": ("bestå oförändrad", "continue unchanged"),
    "linear_decay": ("avta linjärt", "decay linearly"),
    "exponential": ("avta exponentiellt", "decay exponentially"),
}
#: The figures of the cost-benefit section (axis and legend texts).
COST_FIGURE_LABELS: dict[str, Pair] = {
    "pv_axis": ("Nuvärde per deltagare, kr ({year} års priser)", "Present value per participant, SEK ({year} prices)"),
    "net_axis": ("Nettonuvärde per deltagare, kr ({year} års priser)", "Net present value per participant, SEK ({year} prices)"),
    "low": ("Lågt värde", "Low value"),
    "high": ("Högt värde", "High value"),
    "sensitivity_title": ("Känslighet: {financier}", "Sensitivity: {financier}"),
}  # fmt: skip


def _pick(table: dict[str, Pair], key: str, lang: str) -> str:
    li = lang_index(lang)
    return table[key][li] if key in table else key


_HORIZON_STEP = re.compile(r"^(?P<base>[a-z_]+)_m(?P<k>\d+)$")


def step_label(step: str, lang: str) -> str:
    """An attrition step (``linkage_report.step``; a follow-up step ``{base}_m{k}`` with its horizon)."""
    m = _HORIZON_STEP.match(str(step))
    if step not in STEP_LABELS and m and m.group("base") in HORIZON_STEP_LABELS:
        return HORIZON_STEP_LABELS[m.group("base")][lang_index(lang)].format(k=m.group("k"))
    return _pick(STEP_LABELS, step, lang)


def check_label(check: str, lang: str) -> str:
    """A sensitivity check (``sensitivity.check``)."""
    return _pick(CHECK_LABELS, check, lang)


def statistic_label(statistic: str, lang: str) -> str:
    """A sensitivity statistic (``sensitivity.statistic``)."""
    return _pick(STATISTIC_LABELS, statistic, lang)


def financier_label(financier: str, lang: str) -> str:
    """A financier (``cost_benefit.financier``)."""
    return _pick(FINANCIER_LABELS, financier, lang)


def item_label(item: str, lang: str) -> str:
    """A cost-benefit item (``cost_benefit.item``)."""
    return _pick(ITEM_LABELS, item, lang)


def perspective_label(perspective: str, lang: str) -> str:
    """A cost-benefit perspective."""
    return _pick(PERSPECTIVE_LABELS, perspective, lang)


def parameter_label(parameter: str, lang: str) -> str:
    """An assumption of the one-way sensitivity."""
    return _pick(PARAMETER_LABELS, parameter, lang)


def persistence_label(kind: str, lang: str) -> str:
    """How the effect continues after the estimated months."""
    return _pick(PERSISTENCE_LABELS, kind, lang)


def subgroup_field_label(field: str, lang: str) -> str:
    """A subgroup field (``sex``, ``insats_type``, …)."""
    return _pick(SUBGROUP_FIELD_LABELS, field, lang)


def value_label(field: str, value: str, lang: str) -> str:
    """A value of a subgroup field or categorical covariate (``K`` → ``Kvinnor``; ``16-24`` → ``16–24 år``)."""
    li = lang_index(lang)
    if field == "age_band":
        band = str(value).replace("-", "–")
        return (f"{band} år", f"{band} years")[li]
    table = VALUE_LABELS.get("source" if re.fullmatch(r"source_u\d+", str(field)) else field, {})
    if str(value) in table:
        return table[str(value)][li]
    return str(value)


def subgroup_label(subgroup: str, lang: str) -> str:
    """A subgroup of the effect tables: ``all`` → ``Alla``, ``sex=K`` → ``Kvinnor``, ``forbund_id=F01`` →
    ``Förbund: F01``."""
    if subgroup == "all":
        return ("Alla deltagare", "All participants")[lang_index(lang)]
    field, sep, value = str(subgroup).partition("=")
    if not sep:
        return str(subgroup)
    if field in VALUE_LABELS or field == "age_band":
        known = field == "age_band" or value in VALUE_LABELS[field]
        if known:
            return value_label(field, value, lang)
    return f"{subgroup_field_label(field, lang)}: {value}"


_WINDOWED = re.compile(r"^(?P<base>[a-z_]+?)_(?P<w>\d+)$")
#: ``ps_u1``, ``source_u3``, ``public_support_u12``: a status or outcome k months before u.
_BEFORE = re.compile(r"^(?P<base>[a-z_]+?)_u(?P<k>\d+)$")
#: ``public_support_mean24``: an outcome's mean over the w months before u.
_MEAN = re.compile(r"^(?P<base>[a-z_]+?)_mean(?P<w>\d+)$")


def covariate_label(name: str, lang: str) -> str:
    """A covariate of the balance table and love plot: ``ps_months_3`` → "Månader med offentlig försörjning,
    senaste 3 mån"; ``sex=K`` → "Kön: Kvinnor"; an unknown name is shown as it is."""
    li = lang_index(lang)
    field, sep, value = str(name).partition("=")
    if sep:
        if field not in COVARIATE_LABELS and not _BEFORE.match(field):
            return str(name)
        return f"{covariate_label(field, lang)}: {value_label(field, value, lang)}"
    if name in COVARIATE_LABELS:
        return COVARIATE_LABELS[name][li].replace(", senaste {w} mån", "").replace(", last {w} months", "")
    before, mean = _BEFORE.match(str(name)), _MEAN.match(str(name))
    if before and before.group("base") in ("ps", "source"):
        return COVARIATE_LABELS[f"{before.group('base')}_u"][li].format(k=before.group("k"))
    if before and before.group("base") in OUTCOME_INFO:
        o = outcome_label(before.group("base"), lang)
        return COVARIATE_LABELS["outcome_u"][li].format(outcome=o, k=before.group("k"))
    if mean and mean.group("base") in OUTCOME_INFO:
        o = outcome_label(mean.group("base"), lang)
        return COVARIATE_LABELS["outcome_mean"][li].format(outcome=o, w=mean.group("w"))
    m = _WINDOWED.match(str(name))
    if m and m.group("base") in COVARIATE_LABELS:
        return COVARIATE_LABELS[m.group("base")][li].format(w=m.group("w"))
    if name in OUTCOME_INFO:
        return outcome_label(name, lang)
    return str(name)


def unit_label(kind: str, lang: str) -> str:
    """The unit of a unit kind (``numbers.unit_kind``): ``procentenheter``, ``månader``, ``kronor``, ``dagar``."""
    return _pick(UNIT_LABELS, kind, lang)


def unit_reading(kind: str, measure: str, lang: str) -> str:
    """How an effect of this unit kind and measure is read (``procentenheter, i månad k``)."""
    pair = UNIT_READINGS.get((kind, measure))
    return pair[lang_index(lang)] if pair else unit_label(kind, lang)


def outcome_subject(outcome: str, lang: str) -> str:
    """The subject of an outcome's one-sentence reading (``andelen med offentlig försörjning``)."""
    li = lang_index(lang)
    if outcome in OUTCOME_SUBJECTS:
        return OUTCOME_SUBJECTS[outcome][li]
    label = outcome_label(outcome, lang)
    return label[:1].lower() + label[1:]


#: Columns whose values are code names, and the function that labels each value.
CODE_COLUMNS = {
    "step": step_label,
    "check": check_label,
    "statistic": statistic_label,
    "financier": financier_label,
    "item": item_label,
    "perspective": perspective_label,
    "subgroup": subgroup_label,
    "covariate": covariate_label,
    "variable": covariate_label,
    "parameter": parameter_label,
}
