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
    "net_point_counterfactual": ("Netto, matchad (kr)", "Net, matched (SEK)"),
    "ci_lower_counterfactual": ("KI nedre, matchad", "CI lower, matched"),
    "ci_upper_counterfactual": ("KI övre, matchad", "CI upper, matched"),
    "net_point_before_after": ("Netto, före/efter (kr)", "Net, before/after (SEK)"),
    "ci_lower_before_after": ("KI nedre, före/efter", "CI lower, before/after"),
    "ci_upper_before_after": ("KI övre, före/efter", "CI upper, before/after"),
    "difference": ("Skillnad före/efter − matchad (kr)", "Difference before/after − matched (SEK)"),
    "pv_cost": ("Kostnad, nuvärde (kr)", "Cost, PV (SEK)"),
    "pv_gains": ("Vinster, nuvärde (kr)", "Gains, PV (SEK)"),
    "pv_net": ("Netto, nuvärde (kr)", "Net, PV (SEK)"),
    "net_point": ("Netto (kr)", "Net (SEK)"),
    "mc_mean": ("Netto, medel av dragningarna (kr)", "Net, mean of the draws (SEK)"),
    "p_net_positive": ("P(netto > 0)", "P(net > 0)"),
    "benefit_cost_ratio": ("Vinst per kostnadskrona", "Benefit-cost ratio"),
    "break_even_years": ("Återbetalningstid (år)", "Break-even (years)"),
    "break_even_effect_scale": ("Effekt som krävs (× skattad)", "Effect needed (× estimated)"),
    "cost_per_participant_sek": ("Kostnad per deltagare (kr)", "Cost per participant (SEK)"),
    "parameter": ("Antagande", "Assumption"),
    "low": ("Lågt värde", "Low value"),
    "high": ("Högt värde", "High value"),
    "low_value": ("Lågt värde (tal)", "Low value (number)"),
    "high_value": ("Högt värde (tal)", "High value (number)"),
    "net_base": ("Netto, grundantaganden (kr)", "Net, base assumptions (SEK)"),
    "net_low": ("Netto, lågt värde (kr)", "Net, low value (SEK)"),
    "net_high": ("Netto, högt värde (kr)", "Net, high value (SEK)"),
    "interval_level": ("Intervallets nivå", "Interval level"),
    "unit": ("Enhet", "Unit"),
    "ci": ("Konfidensintervall", "Confidence interval"),
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
    "cost_benefit_summary": ("Kostnad och nytta, netto", "Cost-benefit, net"),
    "cost_benefit_sensitivity": ("Kostnad och nytta, känslighet", "Cost-benefit, sensitivity"),
    "cost_benefit_by_subgroup": ("Kostnad och nytta per insatstyp", "Cost-benefit by insats type"),
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
        "Röjandekontroll: värden som bygger på färre än {t} personer i någon grupp visas inte (× i tabellerna, "
        "utelämnade i figurerna); – betyder att ett värde saknas eller inte är tillämpligt.",
        "Disclosure control: values resting on fewer than {t} persons in a group are not shown (× in the tables, "
        "left out of the figures); – means that a value is missing or not applicable.",
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
    "fig_bins_merged": (
        "Staplar som bygger på färre än {t} personer är sammanslagna med grannstaplar eller utelämnade.",
        "Bins resting on fewer than {t} persons are merged with their neighbours or left out.",
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
    # -- the first screen ------------------------------------------------------------------------------------
    "answer": ("Svaret i korthet", "The answer in brief"),
    "headline_note": (
        "Skillnad mellan deltagarna och deras matchade jämförelsepersoner, med {level} konfidensintervall inom "
        "parentes; huvudskattare: {estimator}. Negativa värden betyder lägre hos deltagarna.",
        "Difference between the participants and their matched comparison persons, with the {level} confidence "
        "interval in brackets; main estimator: {estimator}. Negative values mean lower among the participants.",
    ),
    "col_outcome": ("Utfall", "Outcome"),
    "col_unit": ("Enhet", "Unit"),
    "col_months": ("{k} månader", "{k} months"),
    "n_row": ("Antal deltagare / jämförelsepersoner", "Participants / comparison persons"),
    "reading_sig": (
        "{k} månader efter start var {subject} {value} {unit} {direction} ({level} KI {lo}–{hi}) än i den "
        "matchade jämförelsegruppen.",
        "{k} months after the start, {subject} was {value} {unit} {direction} ({level} CI {lo}–{hi}) than in "
        "the matched comparison group.",
    ),
    "reading_ns": (
        "{k} månader efter start var {subject} {value} {unit} {direction} än i den matchade jämförelsegruppen, "
        "men skillnaden är inte statistiskt säkerställd ({level} KI {lo} till {hi}).",
        "{k} months after the start, {subject} was {value} {unit} {direction} than in the matched comparison "
        "group, but the difference is not statistically significant ({level} CI {lo} to {hi}).",
    ),
    "lower": ("lägre", "lower"),
    "higher": ("högre", "higher"),
    "design_check": ("Håller jämförelsen?", "Does the comparison hold?"),
    "warnings_title": ("Varning om designen", "Design warning"),
    "balance_ok": (
        "Balans: största |SMD| efter matchning är {smd} (gräns {limit}); deltagare och jämförelsepersoner "
        "liknar varandra i de matchade bakgrundsvariablerna.",
        "Balance: the largest |SMD| after matching is {smd} (limit {limit}); participants and comparison persons "
        "are alike in the matched covariates.",
    ),
    "balance_bad": (
        "Balans: största |SMD| efter matchning är {smd}, över gränsen {limit}: någon bakgrundsvariabel skiljer "
        "sig fortfarande mellan grupperna (se Jämförbarhet).",
        "Balance: the largest |SMD| after matching is {smd}, above the limit {limit}: some covariate still "
        "differs between the groups (see Comparability).",
    ),
    "pretrend_ok": (
        "Förlopp före start, {outcome}: inga tecken på olika trender (Wald-test χ²({df}) = {stat}; p = {p}).",
        "Paths before the start, {outcome}: no sign of different trends (Wald test χ²({df}) = {stat}; p = {p}).",
    ),
    "pretrend_none": (
        "Förlopp före start, {outcome}: kan inte testas (för få månader före start med jämförbara data).",
        "Paths before the start, {outcome}: cannot be tested (too few months before the start with comparable "
        "data).",
    ),
    "pretrend_bad": (
        "Förlopp före start, {outcome}: grupperna skiljer sig redan före start (Wald-test χ²({df}) = {stat}; "
        "p = {p}); effekten kan delvis spegla skillnader som fanns innan.",
        "Paths before the start, {outcome}: the groups differ already before the start (Wald test "
        "χ²({df}) = {stat}; p = {p}); the effect may partly reflect differences that were there before.",
    ),
    "unmatched": (
        "Matchning: {n} av {total} deltagare ({share}) fick ingen jämförelseperson och ingår inte i "
        "skattningarna.",
        "Matching: {n} of {total} participants ({share}) found no comparison person and are not in the "
        "estimates.",
    ),
    "unmatched_none": (
        "Matchning: alla {total} deltagare fick en jämförelseperson.",
        "Matching: all {total} participants found a comparison person.",
    ),
    "unmatched_small": (
        "Matchning: färre än {t} deltagare fick ingen jämförelseperson.",
        "Matching: fewer than {t} participants found no comparison person.",
    ),
    "cost_overview": ("Lönar det sig? Nettovärde per deltagare", "Does it pay? Net value per participant"),
    "cost_overview_note": (
        "Nuvärde per deltagare i kronor ({year} års priser): finansiärens vinster (minskade ersättningar, "
        "skatter och avgifter) minus dess del av kostnaden, över {years} år med {rate} real "
        "diskonteringsränta; efter månad {k} antas effekten {persistence}. Intervallet är ett {level} Monte "
        "Carlo-intervall av effekternas osäkerhet (effekttabellernas intervall är {effect_level} "
        "konfidensintervall).",
        "Present value per participant in SEK ({year} prices): the financier's gains (less benefits paid, taxes "
        "and fees) minus its share of the cost, over {years} years at a {rate} real discount rate; after month "
        "{k} the effect is assumed to {persistence}. The interval is a {level} Monte Carlo "
        "interval of the effects' uncertainty (the effect tables' intervals are {effect_level} confidence "
        "intervals).",
    ),
    "col_financier": ("Finansiär", "Financier"),
    "col_net": ("Netto (kr)", "Net (SEK)"),
    "col_interval": ("{level} intervall (kr)", "{level} interval (SEK)"),
    "col_p_positive": ("P(netto > 0)", "P(net > 0)"),
    "col_bcr": ("Vinst per kostnadskrona", "Benefit-cost ratio"),
    "col_break_even": ("Brytpunkt: effekten måste bestå", "Break-even: the effect must last"),
    "col_cost": ("Kostnad (kr)", "Cost (SEK)"),
    "col_gains": ("Vinster (kr)", "Gains (SEK)"),
    "years_value": ("{v} år", "{v} years"),
    "never": ("inte inom {v} år", "not within {v} years"),
    "toc": ("Innehåll", "Contents"),
    # -- marks -------------------------------------------------------------------------------------------------
    "legend_suppressed": (
        "× = undertryckt: bygger på färre än {t} personer i någon grupp (röjandekontroll).",
        "× = suppressed: rests on fewer than {t} persons in a group (disclosure control).",
    ),
    "legend_na": ("– = ej tillämpligt eller inget värde.", "– = not applicable or no value."),
    # -- sections ----------------------------------------------------------------------------------------------
    "main_effects": (
        "Huvudskattarens effekter med båda måtten (tabell)",
        "The main estimator's effects, both measures (table)",
    ),
    "balance_full": ("Balans per bakgrundsvariabel (tabell)", "Balance per covariate (table)"),
    "other_estimators": (
        "Samma effekter med varje skattare (värde i månad k)",
        "The same effects by every estimator (value in month k)",
    ),
    "subgroups_full": ("Alla delgruppseffekter (tabell)", "Every subgroup effect (table)"),
    "subgroups_note": (
        "Delgruppernas effekter jämför deltagarna i en delgrupp med deras egna matchade jämförelsepersoner.",
        "A subgroup's effect compares its participants with their own matched comparison persons.",
    ),
    "insats_types": ("Jämförelse mellan insatstyper", "Comparison of insats types"),
    "per_type": ("Per insatstyp", "By insats type"),
    "insats_types_note": (
        "Skillnaden mellan två insatstyper är en skillnad mellan deltagargrupper som valt eller anvisats olika "
        "insatser, inte en randomiserad jämförelse: läs den som ”vem vinner hur mycket”, inte ”vilken insats "
        "är bäst för samma person”.",
        "The difference between two insats types is a difference between groups of participants who chose or "
        'were assigned different insatser, not a randomised comparison: read it as "who gains how much", not '
        '"which insats is best for the same person".',
    ),
    "types_reading": (
        "Efter {k} månader var effekten på {subject} mest gynnsam för {best} ({best_v} {unit}) och minst "
        "gynnsam för {worst} ({worst_v}).",
        "At {k} months, the effect on {subject} was most favourable for {best} ({best_v} {unit}) and least "
        "favourable for {worst} ({worst_v}).",
    ),
    "types_cost_reading": (
        "{financier}: positivt netto för {positive}; negativt för {negative}.",
        "{financier}: positive net for {positive}; negative for {negative}.",
    ),
    "types_cost_none": (
        "{financier}: ingen insatstyp ger positivt netto inom horisonten.",
        "{financier}: no insats type gives a positive net within the horizon.",
    ),
    "types_cost_all": (
        "{financier}: alla insatstyper ger positivt netto.",
        "{financier}: every insats type gives a positive net.",
    ),
    "types_cost_title": (
        "Nettovärde per deltagare per insatstyp och finansiär",
        "Net value per participant by insats type and financier",
    ),
    "types_cost_note": (
        "Nettovärde per deltagare i kronor; inom parentes P(netto > 0), andelen Monte Carlo-dragningar där "
        "nettot är positivt.",
        "Net value per participant in SEK; in brackets P(net > 0), the share of Monte Carlo draws in which the net "
        "is positive.",
    ),
    "and": ("och", "and"),
    "sensitivity_key": (
        "Nyckeltal för huvudutfallen: hur stark en dold skevhet (Γ) eller en okänd förväxlingsfaktor "
        "(E-värde) måste vara för att förklara bort effekten, och placebotest som ska visa noll.",
        "Key figures for the main outcomes: how strong hidden bias (Γ) or an unknown confounder (E-value) would "
        "have to be to explain the effect away, and placebo tests that should show zero.",
    ),
    "sensitivity_full": ("Alla känslighetsrader (tabell)", "Every sensitivity row (table)"),
    "col_gamma": ("Kritiskt Γ", "Critical Γ"),
    "col_e_value": ("E-värde", "E-value"),
    "col_e_value_ci": ("E-värde, KI-gräns", "E-value, CI limit"),
    "col_placebo_start": ("Placebo-start: skillnad (p)", "Placebo start: difference (p)"),
    "placebo_outcome_line": (
        "Placebo-utfall, {outcome}: skillnaden {months} före start, som ska vara noll, är {values}.",
        "Placebo outcome, {outcome}: the difference {months} before the start, which should be zero, is "
        "{values}.",
    ),
    "months_before": ("{k} månader", "{k} months"),
    "cost_assumptions": ("Antaganden", "Assumptions"),
    "cost_items_full": ("Alla poster per finansiär (tabell)", "Every item per financier (table)"),
    "cost_parts_note": (
        "Försäkringskassan (FK) och Arbetsförmedlingen (AF) är delar av staten: deras poster ingår i statens "
        "stapeldiagram och rad. Offentlig sektor totalt räknar varje offentlig aktör en gång. Offentligfinansiellt "
        "och samhällsekonomiskt perspektiv är olika frågor och ska aldrig adderas.",
        "Försäkringskassan (FK) and Arbetsförmedlingen (AF) are parts of the state: their items are in the "
        "state's waterfall and row. The public sector total counts every public body once. The public-finance "
        "and the socio-economic perspective are different questions and are never added.",
    ),
    "methods": (
        "Metodjämförelse: före/efter-metoden (snedvriden)",
        "Methods comparison: the before/after method (biased)",
    ),
    "before_after_why": (
        "Före/efter-metoden i lokala samhällsekonomiska kalkyler räknar deltagarnas hela förändring från före "
        "till efter start som insatsens effekt. Den överskattar effekten: deltagare börjar ofta när behovet av "
        "stöd är som störst, och många hade fått egen försörjning ändå (regression mot medelvärdet, "
        "konjunktur). Den visas här bara som jämförelse; rapportens resultat bygger på den matchade jämförelsen.",
        "The before/after method of local cost-benefit calculations counts the participants' whole change from "
        "before to after the start as the effect of the insats. It overstates the effect: participants often "
        "start when their need for support peaks, and many would have become self-supporting anyway "
        "(regression to the mean, business cycle). It is shown here only for comparison; the report's results "
        "rest on the matched comparison.",
    ),
    "reproduce": (
        "Samma beräkning med andra antaganden (identiska tal med samma parametrar):",
        "The same calculation with other assumptions (identical numbers with the same parameters):",
    ),
    "glossary": ("Ordlista", "Glossary"),
    "linkage_note": (
        "Alla förbund och startår; uppdelningen per förbund och år finns i linkage_report.csv och results.xlsx.",
        "All förbund and start years; the split by förbund and year is in linkage_report.csv and results.xlsx.",
    ),
    "attrition_note": (
        "Varje deltagare som lämnar analysen räknas en gång, med det första skälet i tabellens ordning; raderna med "
        "tankstreck är de som lämnar före nästa summarad. Uppföljningen gäller huvudutfallet ({outcome}): en "
        "matchad deltagare är censurerad k månader efter start när registren slutar före den månaden eller "
        "personen har avlidit eller utvandrat.",
        "Every participant who leaves the analysis is counted once, under the first reason in the table's order; "
        "the rows with a dash are those who leave before the next total. The follow-up is of the main outcome "
        "({outcome}): a matched participant is censored k months after start when the registers end before that "
        "month or the person has died or emigrated.",
    ),
}

#: One line per term a reader meets in the report.
GLOSSARY: dict[str, tuple[str, str]] = {
    "ATT": (
        "Genomsnittlig effekt för deltagarna: skillnaden mellan deltagarnas utfall och det utfall de skulle ha "
        "haft utan insatsen, skattat med matchade jämförelsepersoner.",
        "Average effect on the participants: the difference between their outcome and the outcome they would "
        "have had without the insats, estimated with matched comparison persons.",
    ),
    "KI": (
        "Konfidensintervall: de effekter som är förenliga med data på den angivna nivån; korsar det noll är "
        "effekten inte statistiskt säkerställd.",
        "Confidence interval: the effects compatible with the data at the stated level; if it crosses zero the "
        "effect is not statistically significant.",
    ),
    "SMD": (
        "Standardiserad medelvärdesskillnad: skillnaden i en bakgrundsvariabel mellan grupperna i "
        "standardavvikelser; under 0,1 räknas som god balans.",
        "Standardised mean difference: the difference in a covariate between the groups in standard "
        "deviations; below 0.1 counts as good balance.",
    ),
    "Wald": (
        "Förtrendstest: Wald-test av att skillnaderna före start alla är noll; ett lågt p-värde tyder på att "
        "grupperna redan var på väg åt olika håll.",
        "Pre-trend test: a Wald test that the differences before the start are all zero; a low p-value suggests "
        "that the groups were already heading apart.",
    ),
    "Γ": (
        "Rosenbaums Γ: hur mycket mer sannolikt en person i ett par kan ha varit att delta på grund av något "
        "omätt; kritiskt Γ är det värde där effekten inte längre är säkerställd (högre = robustare).",
        "Rosenbaum's Γ: how much more likely one person of a pair may have been to take part because of "
        "something unmeasured; critical Γ is the value at which the effect is no longer significant (higher = "
        "more robust).",
    ),
    "E": (
        "E-värde: hur starkt (som riskkvot) en okänd faktor måste hänga ihop med både deltagande och utfall för "
        "att helt förklara effekten (VanderWeele och Ding 2017).",
        "E-value: how strongly (as a risk ratio) an unknown factor would have to be related to both taking part "
        "and the outcome to explain the effect away (VanderWeele and Ding 2017).",
    ),
    "placebo": (
        "Placebotest: samma jämförelse där ingen effekt kan finnas (utfallet före start, eller en låtsad start "
        "ett år tidigare); en tydlig skillnad där tyder på kvarvarande skevhet.",
        "Placebo tests: the same comparison where there can be no effect (the outcome before the start, or a "
        "pretend start a year earlier); a clear difference there points to remaining bias.",
    ),
    "NPV": (
        "Nuvärde: framtida kronor omräknade till dagens värde med diskonteringsräntan.",
        "Present value: future kronor converted to today's value with the discount rate.",
    ),
    "P": (
        "P(netto > 0): andelen Monte Carlo-dragningar av effekterna där finansiärens netto är positivt.",
        "P(net > 0): the share of Monte Carlo draws of the effects in which the financier's net is positive.",
    ),
    "break_even": (
        "Brytpunkt: hur länge effekten måste bestå (oförändrad) för att finansiärens netto ska nå noll.",
        "Break-even: how long the effect must last (unchanged) for the financier's net to reach zero.",
    ),
    "disclosure": (
        "Röjandekontroll: värden som bygger på få personer visas inte (×), så att ingen enskild kan pekas ut.",
        "Disclosure control: values resting on few persons are not shown (×), so that no individual can be "
        "singled out.",
    ),
}

#: The terms of :data:`GLOSSARY` as a reader sees them.
GLOSSARY_TERMS: dict[str, tuple[str, str]] = {
    "ATT": ("ATT", "ATT"),
    "KI": ("KI", "CI"),
    "SMD": ("SMD", "SMD"),
    "Wald": ("Förtrendstest", "Pre-trend test"),
    "Γ": ("Rosenbaums Γ", "Rosenbaum's Γ"),
    "E": ("E-värde", "E-value"),
    "placebo": ("Placebotest", "Placebo tests"),
    "NPV": ("Nuvärde", "Present value"),
    "P": ("P(netto > 0)", "P(net > 0)"),
    "break_even": ("Brytpunkt", "Break-even"),
    "disclosure": ("Röjandekontroll", "Disclosure control"),
}

#: Key figures shown under "Data" (``ReportContent.facts``); ``pretrend:<outcome>`` adds the outcome.
FACT_LABELS: dict[str, tuple[str, str]] = {
    "register_months": ("Registerdata, månader", "Register data, months"),
    "participants": (
        "Deltagare i analysen (efter bortfall)",
        "Participants in the analysis (after attrition)",
    ),
    "candidate_control_months": ("Möjliga jämförelsepersonmånader", "Candidate control person-months"),
    "propensity_fit_control_share": (
        "Propensitymodellen skattad på alla deltagare och denna andel av jämförelsepersonmånaderna (slumpurval; "
        "konstanten korrigerad), sedan tillämpad på alla",
        "Propensity model fitted on every participant and this share of the candidate person-months (random "
        "sample; intercept corrected), then applied to all",
    ),
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
    "ipcw_later_starts": (
        "Jämförelsepersoner som började en insats senare (censurerade, viktade)",
        "Comparison persons who started an insats later (censored, weighted)",
    ),
    "contamination_share_matched": (
        "Väntad andel anonyma deltagare bland de matchade jämförelsepersonerna",
        "Expected share of anonymous participants among the matched comparison persons",
    ),
    "contamination_share_matched_now": (
        "… av dem som började en insats samma månad",
        "… of whom started an insats in the same month",
    ),
    "contamination_share_matched_before": (
        "… av dem som började en insats tidigare",
        "… of whom started an insats earlier",
    ),
    "contamination_share_candidates": (
        "Väntad andel anonyma deltagare bland alla möjliga jämförelsepersoner",
        "Expected share of anonymous participants among all candidate comparison persons",
    ),
    "cost_horizon_years": ("Kalkylens horisont (år)", "Horizon of the calculation (years)"),
    "cost_discount_rate": ("Real diskonteringsränta", "Real discount rate"),
    "cost_persistence": ("Effekten efter de skattade månaderna", "The effect after the estimated months"),
    "cost_interval": ("Monte Carlo-intervallets nivå", "Level of the Monte Carlo interval"),
    "cost_price_year": ("Prisår", "Price year"),
    "cost_effects_months": ("Skattade effektmånader", "Months of estimated effects"),
}

#: Facts shown in the cost-benefit section rather than under "Data".
COST_FACTS: tuple[str, ...] = (
    "cost_horizon_years",
    "cost_discount_rate",
    "cost_persistence",
    "cost_interval",
    "cost_price_year",
    "cost_effects_months",
)

#: How an outcome is read at horizon k (``options.MEASURES``).
MEASURE_LABELS: dict[str, tuple[str, str]] = {
    "status": ("värde i månad k", "value in month k"),
    "cumulative": ("summa över månad 1–k", "sum over months 1..k"),
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
    "density": ("Täthet", "Density"),
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
        "Staplarna visar hur finansiärens del av kostnaden och dess vinster summeras till nettot per deltagare "
        "(nuvärde i kronor).",
        "The bars show how the financier's share of the cost and its gains add up to the net per participant "
        "(present value in SEK).",
    ),
    "tornado": (
        "Hur mycket nettot för offentlig sektor ändras när ett antagande i taget ändras; längst stapel = "
        "viktigast antagande.",
        "How much the public sector's net changes when one assumption at a time changes; longest bar = most "
        "important assumption.",
    ),
    "subgroups": (
        "Effekten i varje delgrupp med {level} % konfidensintervall, efter 3, 6 och 12 månader (en färg per "
        "horisont); överst alla deltagare. Delgrupper med få personer har breda intervall.",
        "The effect in each subgroup with {level} % confidence intervals, at 3, 6 and 12 months (one colour per "
        "horizon); all participants at the top. Subgroups with few persons have wide intervals.",
    ),
    "insats_types": (
        "Effekten per insatstyp med {level} % konfidensintervall efter 3, 6 och 12 månader; varje typ jämförs "
        "med sina egna matchade jämförelsepersoner.",
        "The effect by insats type with {level} % confidence intervals at 3, 6 and 12 months; each type is "
        "compared with its own matched comparison persons.",
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
