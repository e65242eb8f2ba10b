"""Disclosure control and the output writer of an analysis run (issue 9).

Everything a run publishes goes through this module: the tidy CSV tables, ``results.xlsx``, ``figures/``,
the self-contained ``report.html`` and ``manifest.json``. Nothing here computes an estimate: the tables come from
the stages' results objects (``.to_frame()``) and are only suppressed, labelled and written.

Disclosure control
------------------
* A **count** below the threshold ``t`` (default ``schema.DEFAULT_DISCLOSURE_THRESHOLD``; counts of zero are
  published) is blanked and its row marked ``suppressed = True``.
* An **estimate** resting on fewer than ``t`` persons in either arm (``n_treated < t`` or ``n_control < t``) is
  blanked together with its standard error, interval, p-value and the small counts, and marked the same way;
  so is a mean with its own person count ``n < t`` (``outcome_paths``).
* No output may contain a ``person_id`` (or any column that identifies a person or a register row): the writer
  refuses such tables (:func:`check_publishable`), and the run's tests scan every output file for every input
  pseudonym.
Suppressed cells are empty in the CSV files (with ``suppressed`` = ``True``), empty in Excel with the same
column, shown as "–" with a footnote in the HTML, and left out of figures with a note in the caption.

Output tables (CSV, one file each; columns as in ``docs/tables.md``)
---------------------------------------------------------------------
``effects.csv``        outcome, horizon_months, measure, subgroup, estimator, estimate, std_error, ci_lower,
                       ci_upper, p_value, n_treated, n_control, suppressed
``event_study.csv``    outcome, rel_month, estimate, std_error, ci_lower, ci_upper, (n_treated, n_control),
                       suppressed
``sensitivity.csv``    check, outcome, horizon_months, statistic, value, (n_treated, n_control), suppressed
``balance.csv``        covariate, sample (before/after), smd, variance_ratio, ecdf_mean, ecdf_max, ...
``linkage_report.csv`` step, step_label, forbund_id, start_year, n, suppressed
``cost_benefit.csv``   perspective, financier, item, pv_sek_per_participant, ci_lower, ci_upper
``outcome_paths.csv``  outcome, rel_month, arm (treated/control), mean, ci_lower, ci_upper, n, suppressed
``support_consistency.csv``  source, n_participants, sus_yes, register_yes, disagree, share_disagree, suppressed
                       (its four counts suppressed like ``n``, the share with them; HTML: under data and attrition)
``cost_benefit_methods.csv``  perspective, financier, net_point/ci_lower/ci_upper for ``counterfactual`` and
                       ``before_after``, difference (HTML: under cost-benefit)
Only the tables a run produced are written; the HTML report says which stages did not run and why.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import io
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..schema import DEFAULT_DISCLOSURE_THRESHOLD

#: Column names that identify a person or a register row; never published.
IDENTIFYING_COLUMNS: frozenset[str] = frozenset(
    {"person_id", "lopnr", "treated_row", "control_row", "row", "registration_id"}
)
#: Columns treated as person counts by :func:`suppress_counts` when present.
COUNT_COLUMNS: tuple[str, ...] = ("n", "n_treated", "n_control", "n_persons", "participants")
#: Value columns blanked with an estimate by :func:`suppress_estimates`.
ESTIMATE_COLUMNS: tuple[str, ...] = (
    "estimate",
    "std_error",
    "ci_lower",
    "ci_upper",
    "p_value",
    "mean",
    "value",
    "statistic_value",
)
#: Output tables in report order.
OUTPUT_TABLES: tuple[str, ...] = (
    "effects",
    "event_study",
    "sensitivity",
    "balance",
    "linkage_report",
    "cost_benefit",
    "outcome_paths",
)

# --------------------------------------------------------------------------------------------------------------
# Labels (Swedish and English)
# --------------------------------------------------------------------------------------------------------------

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

#: Person counts of tables whose counts are not in :data:`COUNT_COLUMNS` (blanked by the same rule).
TABLE_COUNT_COLUMNS: dict[str, tuple[str, ...]] = {
    "support_consistency": ("n_participants", "sus_yes", "register_yes", "disagree"),
}

#: Shares blanked whenever one of the counts they are computed from is blanked.
TABLE_SHARES: dict[str, dict[str, tuple[str, ...]]] = {
    "support_consistency": {"share_disagree": ("disagree", "n_participants")},
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

OUTCOME_LABELS: dict[str, tuple[str, str]] = {
    "public_support": ("Andel med offentlig försörjning", "Share on public support"),
    "self_support": ("Andel med egen försörjning", "Share self-supporting"),
    "days_sickness": ("Nettodagar sjukpenning/rehabiliteringspenning", "Net days sickness/rehabilitation"),
    "days_disability": ("Nettodagar sjuk-/aktivitetsersättning", "Net days disability benefits"),
    "days_labour_market": (
        "Nettodagar aktivitetsstöd/utvecklingsersättning",
        "Net days labour-market support",
    ),
    "days_unemployment": ("Nettodagar a-kassa", "Net days unemployment insurance"),
    "sek_sickness": ("Kr sjukpenning/rehabiliteringspenning", "SEK sickness/rehabilitation"),
    "sek_disability": ("Kr sjuk-/aktivitetsersättning", "SEK disability benefits"),
    "sek_labour_market": ("Kr aktivitetsstöd/utvecklingsersättning", "SEK labour-market support"),
    "sek_unemployment": ("Kr a-kassa", "SEK unemployment insurance"),
    "social_assistance_sek": ("Kr ekonomiskt bistånd", "SEK social assistance"),
    "benefit_sek": ("Kr offentlig försörjning totalt", "SEK public support, total"),
    "earnings_sek": ("Arbetsinkomst kr", "Earnings SEK"),
}

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
    "weighted_mean_diff": ("viktad medelvärdesskillnad (matchad)", "weighted difference in means (matched)"),
    "regression_adjustment": ("regressionsjusterad", "regression-adjusted"),
    "matched_did": ("matchad skillnad-i-skillnader", "matched difference-in-differences"),
    "ipw": ("inverterad sannolikhetsviktning", "inverse probability weighting"),
    "aipw": ("dubbelt robust (AIPW)", "doubly robust (AIPW)"),
    "cs_did": ("Callaway & Sant'Anna DiD", "Callaway & Sant'Anna DiD"),
    "config_hash": ("Konfigurationens kontrollsumma (SHA-256)", "Config hash (SHA-256)"),
    "figure": ("Figur", "Figure"),
    "columns": ("Kolumner", "Columns"),
    "status": ("andel i månad k", "share in month k"),
    "cumulative": ("summa månad 1..k", "sum over months 1..k"),
}

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
#: Facts that are person counts (suppressed below the threshold like table counts).
COUNT_FACTS: frozenset[str] = frozenset(
    {"participants", "candidate_control_months", "matched_treated", "matched_controls", "unmatched_treated"}
)
#: Outcomes shown in the effects figure and the report's effect tables (the full set is in the CSV and Excel files).
FIGURE_OUTCOMES: tuple[str, ...] = ("public_support", "self_support", "benefit_sek", "earnings_sek")
#: Outcomes of the report's subgroup and sensitivity tables.
SUBGROUP_OUTCOMES: tuple[str, ...] = ("public_support", "self_support")


def key_rows(
    df: pd.DataFrame, outcomes: Sequence[str] = FIGURE_OUTCOMES, measure: str | None = None
) -> pd.DataFrame:
    """The rows of a tidy table the HTML report shows: the main ``outcomes`` (all outcomes when none of them is
    present, e.g. a run with other outcomes) and, if given, one ``measure``; the files keep every row."""
    if "outcome" in df.columns and df["outcome"].isin(outcomes).any():
        df = df[df["outcome"].isin(outcomes)]
    if measure is not None and "measure" in df.columns and (df["measure"] == measure).any():
        df = df[df["measure"] == measure]
    return df


def fact_label(key: str, lang: str) -> str:
    """Label of a key figure (``pretrend:<outcome>`` gets the outcome's name)."""
    base, _, arg = key.partition(":")
    label = FACT_LABELS[base][_li(lang)] if base in FACT_LABELS else key
    return f"{label}: {outcome_label(arg, lang)}" if arg else label


def publishable_facts(facts: Mapping[str, Any], threshold: int) -> dict[str, Any]:
    """Key figures with person counts ``0 < n < threshold`` replaced by None (shown as "–")."""
    out = {}
    for k, v in facts.items():
        small = k in COUNT_FACTS and isinstance(v, int | np.integer) and 0 < int(v) < threshold
        out[k] = None if small else v
    return out


def compact_balance(balance: pd.DataFrame) -> pd.DataFrame:
    """One row per covariate: SMD before and after, variance ratio after (the HTML view of ``balance.csv``)."""
    b = balance.rename(columns={"covariate": "variable", "variance_ratio": "var_ratio"})
    if not {"variable", "sample", "smd"} <= set(b.columns):
        return balance
    smd = b.pivot_table(index="variable", columns="sample", values="smd", aggfunc="first", sort=False)
    out = pd.DataFrame({"variable": smd.index})
    for s in ("before", "after"):
        if s in smd:
            out[f"smd_{s}"] = smd[s].to_numpy()
    if "var_ratio" in b:
        vr = b[b["sample"] == "after"].set_index("variable")["var_ratio"]
        out["var_ratio_after"] = out["variable"].map(vr).to_numpy()
    return out


FIGURE_GUIDES: dict[str, tuple[str, str]] = {
    "outcome_paths": (
        "Linjerna visar utfallet månad för månad för deltagare och matchade jämförelsepersoner; "
        "före start (månad 0) ska de ligga nära varandra, avståndet efter start är effekten.",
        "The lines show the outcome month by month for participants and matched comparison persons; before the "
        "start (month 0) they should be close, the gap after the start is the effect.",
    ),
    "event_study": (
        "Punkterna är skattade skillnader per månad med 95 % konfidensintervall; före start ska de ligga runt noll.",
        "Points are estimated differences per month with 95 % confidence intervals; before the start they should "
        "lie around zero.",
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
        "Skattad effekt med 95 % konfidensintervall per horisont; ett intervall som inte korsar noll är "
        "statistiskt säkerställt.",
        "Estimated effect with 95 % confidence interval per horizon; an interval that does not cross zero is "
        "statistically significant.",
    ),
}


def _li(lang: str) -> int:
    if lang not in ("sv", "en"):
        raise ConfigError(f"language: expected 'sv' or 'en', got {lang!r}")
    return 0 if lang == "sv" else 1


def text(key: str, lang: str) -> str:
    """Report text ``key`` in ``lang``."""
    return TEXT[key][_li(lang)]


def column_label(column: str, lang: str) -> str:
    """Column header in ``lang`` (the column name itself when no label is defined)."""
    return COLUMN_LABELS[column][_li(lang)] if column in COLUMN_LABELS else column


def outcome_label(outcome: str, lang: str) -> str:
    """Readable outcome name in ``lang``."""
    return OUTCOME_LABELS[outcome][_li(lang)] if outcome in OUTCOME_LABELS else outcome


# --------------------------------------------------------------------------------------------------------------
# Disclosure control
# --------------------------------------------------------------------------------------------------------------


def check_publishable(df: pd.DataFrame, name: str) -> None:
    """Refuse a table that carries a person identifier.

    Raises
    ------
    ValueError
        If any column is in :data:`IDENTIFYING_COLUMNS` (case-insensitive). This is a programming error in the
        run, not a user mistake: a stage handed person-level rows to the report.
    """
    bad = [c for c in df.columns if str(c).lower() in IDENTIFYING_COLUMNS]
    if bad:
        raise ValueError(
            f"table {name!r} has identifying column(s) {bad}; person-level rows are never published"
        )


def _mark(df: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    prev = df["suppressed"].astype(bool).to_numpy() if "suppressed" in df else np.zeros(len(df), dtype=bool)
    df["suppressed"] = prev | mask
    return df


def suppress_counts(
    df: pd.DataFrame, threshold: int = DEFAULT_DISCLOSURE_THRESHOLD, columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """Blank every person count ``0 < n < threshold`` and mark its row ``suppressed``.

    Parameters
    ----------
    df
        A published table.
    threshold
        Smallest publishable number of persons ``t``; a count ``n`` is suppressed when ``0 < n < t``.
    columns
        Count columns; default those of :data:`COUNT_COLUMNS` present in ``df``.

    Returns
    -------
    DataFrame
        A copy; count columns become nullable (``Int64``) with ``<NA>`` where suppressed, and a boolean
        ``suppressed`` column (OR-ed with an existing one).
    """
    out = df.copy()
    cols = [c for c in (columns if columns is not None else COUNT_COLUMNS) if c in out.columns]
    mask = np.zeros(len(out), dtype=bool)
    for c in cols:
        v = pd.to_numeric(out[c], errors="coerce")
        small = ((v > 0) & (v < threshold)).fillna(False).to_numpy(dtype=bool)
        out[c] = v.round().astype("Int64").mask(small)
        mask |= small
    if cols or "suppressed" in out:
        out = _mark(out, mask)
    return out


def suppress_estimates(
    df: pd.DataFrame,
    threshold: int = DEFAULT_DISCLOSURE_THRESHOLD,
    n_columns: Sequence[str] = ("n_treated", "n_control"),
    value_columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Blank estimates resting on fewer than ``threshold`` persons in either arm, then small counts.

    A row is suppressed when ``min(n_treated, n_control) < threshold`` (a missing count counts as too small);
    its value columns (default :data:`ESTIMATE_COLUMNS` present) become NaN and ``suppressed`` is True.
    Counts are then blanked by :func:`suppress_counts`. A table without count columns is returned unchanged
    apart from the ``suppressed`` column.
    """
    out = df.copy()
    ncols = [c for c in n_columns if c in out.columns]
    mask = np.zeros(len(out), dtype=bool)
    for c in ncols:
        v = pd.to_numeric(out[c], errors="coerce")
        mask |= (v.isna() | (v < threshold)).to_numpy(dtype=bool)
    vcols = [
        c for c in (value_columns if value_columns is not None else ESTIMATE_COLUMNS) if c in out.columns
    ]
    for c in vcols:
        out[c] = pd.to_numeric(out[c], errors="coerce").mask(mask)
    out = _mark(out, mask)
    return suppress_counts(out, threshold, columns=[c for c in COUNT_COLUMNS if c in out.columns])


def apply_disclosure_control(tables: Mapping[str, pd.DataFrame], threshold: int) -> dict[str, pd.DataFrame]:
    """Apply the rules of the module docstring to every output table (after :func:`check_publishable`)."""
    out = {}
    for name, df in tables.items():
        check_publishable(df, name)
        if {"n_treated", "n_control"} & set(df.columns):
            out[name] = suppress_estimates(df, threshold)
        elif "n" in df.columns and set(ESTIMATE_COLUMNS) & set(df.columns):  # e.g. a mean over n persons
            out[name] = suppress_estimates(df, threshold, n_columns=("n",))
        else:
            extra = TABLE_COUNT_COLUMNS.get(name, ())
            cols = [*(c for c in COUNT_COLUMNS if c in df.columns), *(c for c in extra if c in df.columns)]
            pub = suppress_counts(df, threshold, columns=cols)
            for share, parts in TABLE_SHARES.get(name, {}).items():
                if share in pub:  # a share is as disclosive as the counts it is computed from
                    blank = pub[[c for c in parts if c in pub]].isna().any(axis=1)
                    pub[share] = pd.to_numeric(pub[share], errors="coerce").mask(blank)
            out[name] = pub
    return out


# --------------------------------------------------------------------------------------------------------------
# Figures (from the published tables only, so a figure never shows a suppressed value)
# --------------------------------------------------------------------------------------------------------------


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "finsam_effekt"  # deterministic SVG ids
    return plt


def figure_outcome_paths(paths: pd.DataFrame, outcome: str, lang: str):
    """Mean outcome by month relative to start u, treated vs matched controls, with CI bands.

    ``paths`` has columns ``outcome, rel_month, arm (treated|control), mean``, optional ``ci_lower, ci_upper``.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    d = paths[paths["outcome"] == outcome]
    names = {
        "treated": ("Deltagare", "Participants"),
        "control": ("Matchade jämförelsepersoner", "Matched controls"),
    }
    for arm, color in (("treated", "#1f5fa8"), ("control", "#c0504d")):
        a = d[d["arm"] == arm].sort_values("rel_month")
        ax.plot(a["rel_month"], a["mean"], color=color, label=names[arm][_li(lang)], marker=".")
        if {"ci_lower", "ci_upper"} <= set(a.columns):
            ax.fill_between(
                a["rel_month"], a["ci_lower"], a["ci_upper"], color=color, alpha=0.15, linewidth=0
            )
    ax.axvline(0, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel(column_label("rel_month", lang))
    ax.set_title(outcome_label(outcome, lang))
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def figure_event_study(es: pd.DataFrame, outcome: str, lang: str):
    """Event-study coefficients with 95 % CIs by month relative to start (columns of ``event_study.csv``)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    d = es[es["outcome"] == outcome].sort_values("rel_month")
    d = d[d["estimate"].notna()]
    ax.axhline(0, color="grey", linewidth=1)
    ax.axvline(-0.5, color="grey", linestyle="--", linewidth=1)
    if {"ci_lower", "ci_upper"} <= set(d.columns):
        ax.errorbar(
            d["rel_month"].to_numpy(float),
            d["estimate"].to_numpy(float),
            yerr=np.vstack(
                [
                    (d["estimate"] - d["ci_lower"]).clip(lower=0).to_numpy(float),
                    (d["ci_upper"] - d["estimate"]).clip(lower=0).to_numpy(float),
                ]
            ),
            fmt="o",
            color="#1f5fa8",
            markersize=3,
            elinewidth=1,
        )
    else:
        ax.plot(d["rel_month"], d["estimate"], "o", color="#1f5fa8")
    ax.set_xlabel(column_label("rel_month", lang))
    ax.set_ylabel(column_label("estimate", lang))
    ax.set_title(outcome_label(outcome, lang))
    fig.tight_layout()
    return fig


def figure_effects(effects: pd.DataFrame, estimator: str, lang: str):
    """Main effects (subgroup ``all``, status measure) with CIs, one panel row per outcome."""
    plt = _plt()
    d = effects[(effects["subgroup"] == "all") & (effects["estimator"] == estimator)]
    d = d[(d["measure"] == "status") & d["estimate"].notna()]
    present = set(d["outcome"])
    outs = [o for o in FIGURE_OUTCOMES if o in present] or list(dict.fromkeys(d["outcome"]))[:4]
    fig, axes = plt.subplots(len(outs) or 1, 1, figsize=(7, 1.6 * max(len(outs), 1) + 0.6), squeeze=False)
    for ax, o in zip(axes[:, 0], outs, strict=False):
        r = d[d["outcome"] == o].sort_values("horizon_months")
        ax.errorbar(
            r["estimate"].to_numpy(float),
            r["horizon_months"].astype(str).to_numpy(),
            xerr=np.vstack(
                [
                    (r["estimate"] - r["ci_lower"]).clip(lower=0).to_numpy(float),
                    (r["ci_upper"] - r["estimate"]).clip(lower=0).to_numpy(float),
                ]
            ),
            fmt="o",
            color="#1f5fa8",
        )
        ax.axvline(0, color="grey", linewidth=1)
        ax.set_title(outcome_label(o, lang), fontsize=9, loc="left")
        ax.set_ylabel(column_label("horizon_months", lang), fontsize=8)
    fig.tight_layout()
    return fig


def figure_love_plot(balance: pd.DataFrame, lang: str):
    """|SMD| before and after matching per covariate (cobalt's love plot) from ``balance.csv``."""
    plt = _plt()
    b = balance.rename(columns={"variable": "covariate"})
    piv = b.pivot_table(index="covariate", columns="sample", values="smd", aggfunc="first").abs()
    order = piv.get("before", piv.iloc[:, 0]).sort_values().index
    piv = piv.loc[order]
    fig, ax = plt.subplots(figsize=(7, 0.25 * len(piv) + 1.2))
    y = np.arange(len(piv))
    names = {"before": ("Före matchning", "Before matching"), "after": ("Efter matchning", "After matching")}
    for s, m, color in (("before", "o", "#c0504d"), ("after", "s", "#1f5fa8")):
        if s in piv:
            ax.plot(piv[s], y, m, color=color, label=names[s][_li(lang)], linestyle="none")
    ax.axvline(0.1, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(y, piv.index, fontsize=7)
    ax.set_xlabel("|SMD|")
    ax.legend(frameon=False, loc="lower right")
    fig.tight_layout()
    return fig


def save_figure(fig: Any, fig_dir: Path, name: str) -> bytes:
    """Write ``name.png`` and ``name.svg`` (no timestamps, so reruns are identical); return the PNG bytes."""
    fig_dir.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    png = buf.getvalue()
    (fig_dir / f"{name}.png").write_bytes(png)
    fig.savefig(fig_dir / f"{name}.svg", format="svg", metadata={"Date": None, "Creator": None})
    _plt().close(fig)
    return png


# --------------------------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------------------------


@dataclass
class ReportContent:
    """What a run hands to the report writer.

    Attributes
    ----------
    tables
        Output tables by name (:data:`OUTPUT_TABLES`), already in the documented tidy formats.
    figures
        Extra figures from the stages (name -> matplotlib Figure), e.g. ``ps_overlap``, ``waterfall``,
        ``tornado``; figures drawn from the tables are added by :func:`write_outputs`.
    title, question, estimand
        Texts for the report.
    facts
        Key figures shown under "Data" (label -> value), counts are suppressed like table counts.
    not_run
        Stage -> reason, for stages that did not run (shown in the report).
    main_estimator
        The estimator whose effects are shown first.
    config_hash
        SHA-256 of the resolved config.
    """

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    title: str = "Finsam"
    question: str = ""
    estimand: str = ""
    facts: dict[str, Any] = field(default_factory=dict)
    not_run: dict[str, str] = field(default_factory=dict)
    main_estimator: str = "att"
    config_hash: str = ""


def write_csv(df: pd.DataFrame, path: Path) -> None:
    """Deterministic CSV: UTF-8, ``,``, ``.``, ``\\n``, floats with 10 significant digits, no index."""
    df.to_csv(path, index=False, float_format="%.10g", lineterminator="\n", encoding="utf-8")


def write_excel(tables: Mapping[str, pd.DataFrame], path: Path, lang: str) -> None:
    """``results.xlsx``: one sheet per table, headers in ``lang``, fixed document dates."""
    import datetime as dt

    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    for name, df in tables.items():
        ws = wb.create_sheet(TABLE_TITLES.get(name, (name, name))[_li(lang)][:31])
        ws.append([column_label(c, lang) for c in df.columns])
        for row in df.itertuples(index=False):
            ws.append(
                [None if (v is pd.NA or (isinstance(v, float) and np.isnan(v))) else _py(v) for v in row]
            )
        ws.freeze_panes = "A2"
    fixed = dt.datetime(2000, 1, 1)
    wb.properties.created = fixed
    wb.properties.modified = fixed
    wb.properties.creator = "finsam_effekt"
    wb.save(path)


def _py(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v


def _fmt(v: Any, column: str = "") -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return "–"
    if isinstance(v, bool | np.bool_):
        return "✓" if v else ""
    if isinstance(v, int | np.integer):
        return f"{int(v):,}".replace(",", " ")
    if isinstance(v, float | np.floating):
        if column == "p_value":
            return f"{v:.3f}"
        if column.startswith("share_"):
            return f"{v:.1%}"
        a = abs(v)
        return f"{v:,.0f}".replace(",", " ") if a >= 1000 else f"{v:.3g}" if a >= 1 else f"{v:.3f}"
    return html.escape(str(v))


def html_table(df: pd.DataFrame, lang: str, max_rows: int = 200) -> str:
    """A table as HTML with labelled headers; suppressed cells as "–"."""
    if df.empty:
        return f"<p>{text('none', lang)}</p>"
    d = df.head(max_rows)
    head = "".join(f"<th>{html.escape(column_label(c, lang))}</th>" for c in d.columns)
    rows = []
    for rec in d.itertuples(index=False):
        cells = []
        for c, v in zip(d.columns, rec, strict=True):
            if c == "outcome":
                cells.append(f"<td class='t'>{html.escape(outcome_label(str(v), lang))}</td>")
            elif c == "source" and v in SOURCE_LABELS:
                cells.append(f"<td class='t'>{html.escape(SOURCE_LABELS[str(v)][_li(lang)])}</td>")
            elif c == "estimator" and v in TEXT:
                cells.append(f"<td class='t'>{text(str(v), lang)}</td>")
            elif c == "measure" and v in ("status", "cumulative"):
                cells.append(f"<td class='t'>{text(str(v), lang)}</td>")
            elif isinstance(v, str):
                cells.append(f"<td class='t'>{_fmt(v, c)}</td>")
            else:
                cells.append(f"<td>{_fmt(v, c)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = (
        f"<p class='note'>{text('more_rows', lang).format(n=len(df) - max_rows)}</p>"
        if len(df) > max_rows
        else ""
    )
    body = "".join(rows)
    return f"<div class='tw'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{more}"


_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{font-size:1.7em;border-bottom:3px solid #1f5fa8;padding-bottom:.2em}h2{margin-top:1.8em;color:#1f5fa8}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0}th,td{border:1px solid #ccc;padding:.25em .5em;
text-align:right}th{background:#eef3fa}td.t,th{text-align:left}td.t{max-width:16em}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}figcaption{font-size:.9em;color:#444}
.tw{overflow-x:auto}.note{font-size:.85em;color:#555}.box{background:#f7f9fc;border-left:4px solid #1f5fa8;padding:.5em 1em}
"""


def _figure_html(png: bytes, caption: str) -> str:
    b64 = base64.b64encode(png).decode("ascii")
    return f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{b64}"><figcaption>{html.escape(caption)}</figcaption></figure>'


def render_html(
    content: ReportContent,
    tables: Mapping[str, pd.DataFrame],
    pngs: Mapping[str, bytes],
    lang: str,
    threshold: int,
) -> str:
    """The self-contained ``report.html`` (inline CSS, images as base64; no scripts, no external links)."""
    li = _li(lang)
    title = content.title or text("default_title", lang)
    question = content.question or text("default_question", lang)
    parts = [
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{html.escape(title)}</title>',
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>",
    ]

    def fig(name: str) -> None:
        for key in sorted(k for k in pngs if k == name or k.startswith(name + "__")):
            guide = FIGURE_GUIDES.get(name, ("", ""))[li]
            label = key.split("__", 1)[1] if "__" in key else ""
            cap = f"{outcome_label(label, lang) + ': ' if label else ''}{guide}"
            src = tables.get(name)
            if src is not None and "suppressed" in src and src["suppressed"].astype(bool).any():
                cap += " " + text("fig_suppressed", lang).format(t=threshold)
            parts.append(_figure_html(pngs[key], cap))

    def key_note(files: str) -> str:
        names = ", ".join(outcome_label(o, lang).lower() for o in FIGURE_OUTCOMES)
        return f"<p class='note'>{html.escape(text('key_outcomes_note', lang).format(outcomes=names, files=files))}</p>"

    def table_section(name: str) -> None:
        """A titled table with its reading guide (nothing when the run did not produce it)."""
        if name not in tables:
            return
        parts.append(f"<h3>{html.escape(TABLE_TITLES[name][li])}</h3>")
        parts.append(f"<p class='note'>{html.escape(TABLE_GUIDES[name][li])}</p>")
        parts.append(html_table(tables[name], lang))

    parts.append(f"<h2>{text('question', lang)}</h2><p>{html.escape(question)}</p>")
    parts.append(
        f"<h2>{text('estimand', lang)}</h2><div class='box'><p>{html.escape(content.estimand)}</p></div>"
    )
    parts.append(f"<h2>{text('data', lang)}</h2>")
    if content.facts:
        facts = "".join(
            f"<tr><td class='t'>{html.escape(fact_label(k, lang))}</td><td>{_fmt(v)}</td></tr>"
            for k, v in publishable_facts(content.facts, threshold).items()
        )
        parts.append(f"<table><tbody>{facts}</tbody></table>")
    if "linkage_report" in tables:
        lr = tables["linkage_report"]
        if {"forbund_id", "start_year"} <= set(lr.columns):
            lr = lr[(lr["forbund_id"].astype(str) == "ALL") & (lr["start_year"].astype(str) == "0")]
        parts.append(html_table(lr, lang))
    table_section("support_consistency")
    parts.append(f"<h2>{text('balance', lang)}</h2>")
    fig("love_plot")
    fig("ps_overlap")
    if "balance" in tables:
        parts.append(html_table(compact_balance(tables["balance"]), lang, max_rows=80))
    else:
        parts.append(f"<p>{text('not_run_ref', lang)}</p>")
    parts.append(f"<h2>{text('effects', lang)}</h2>")
    if "effects" in tables:
        eff = tables["effects"]
        main = eff[(eff["subgroup"] == "all") & (eff["estimator"] == content.main_estimator)]
        est = content.main_estimator
        main_label = text(est, lang) if est in TEXT else est
        parts.append(
            f"<p class='note'>{text('main_estimator', lang)}: {html.escape(main_label)}. "
            f"status = {text('status', lang)}; cumulative = {text('cumulative', lang)}.</p>"
        )
        fig("effects")
        parts.append(key_note("effects.csv"))
        parts.append(html_table(key_rows(main).drop(columns=["subgroup", "estimator"]), lang))
        others = eff[(eff["subgroup"] == "all") & (eff["estimator"] != content.main_estimator)]
        if not others.empty:
            parts.append(html_table(key_rows(others, measure="status").drop(columns=["subgroup"]), lang))
        parts.append(f"<h2>{text('subgroups', lang)}</h2>")
        sub = eff[(eff["subgroup"] != "all") & (eff["estimator"] == content.main_estimator)]
        parts.append(
            html_table(
                key_rows(sub, outcomes=SUBGROUP_OUTCOMES, measure="status").drop(columns=["estimator"]), lang
            )
        )
    else:
        parts.append(f"<p>{text('none', lang)}</p>")
    parts.append(f"<h2>{text('event_study', lang)}</h2>")
    fig("outcome_paths")
    fig("event_study")
    parts.append(f"<h2>{text('sensitivity', lang)}</h2>")
    if "sensitivity" in tables:
        parts.append(key_note("sensitivity.csv"))
        parts.append(html_table(key_rows(tables["sensitivity"], outcomes=SUBGROUP_OUTCOMES), lang))
    else:
        parts.append(f"<p>{text('none', lang)}</p>")
    parts.append(f"<h2>{text('cost_benefit', lang)}</h2>")
    fig("waterfall")
    fig("tornado")
    parts.append(
        html_table(tables["cost_benefit"], lang)
        if "cost_benefit" in tables
        else f"<p>{text('none', lang)}</p>"
    )
    table_section("cost_benefit_methods")
    if content.not_run:
        items = "".join(
            f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in content.not_run.items()
        )
        parts.append(f"<h2>{text('not_run', lang)}</h2><ul>{items}</ul>")
    parts.append(
        f"<h2>{text('provenance', lang)}</h2><p class='note'>{text('suppressed_note', lang).format(t=threshold)}</p>"
    )
    parts.append(f"<p class='note'>{text('config_hash', lang)}: <code>{content.config_hash}</code></p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_outputs(
    content: ReportContent, out_dir: Path, *, lang: str = "sv", threshold: int = DEFAULT_DISCLOSURE_THRESHOLD
) -> list[Path]:
    """Write every output of a run into ``out_dir`` (which must exist); return the files written.

    Steps: disclosure control on every table (:func:`apply_disclosure_control`), one CSV per table
    (:func:`write_csv`), ``results.xlsx`` (:func:`write_excel`), figures drawn from the *published* tables plus the
    stages' figures into ``figures/`` (PNG and SVG), then ``report.html`` (:func:`render_html`).
    """
    out_dir = Path(out_dir)
    tables = apply_disclosure_control(
        {
            k: content.tables[k]
            for k in [*OUTPUT_TABLES, *sorted(set(content.tables) - set(OUTPUT_TABLES))]
            if k in content.tables
        },
        threshold,
    )
    written: list[Path] = []
    for name, df in tables.items():
        p = out_dir / f"{name}.csv"
        write_csv(df, p)
        written.append(p)
    if tables:
        write_excel(tables, out_dir / "results.xlsx", lang)
        written.append(out_dir / "results.xlsx")
    fig_dir = out_dir / "figures"
    figs: dict[str, Any] = {}
    if "effects" in tables and not tables["effects"].empty:
        figs["effects"] = figure_effects(tables["effects"], content.main_estimator, lang)
    if "outcome_paths" in tables and not tables["outcome_paths"].empty:
        for o in ("public_support", "self_support"):
            if (tables["outcome_paths"]["outcome"] == o).any():
                figs[f"outcome_paths__{o}"] = figure_outcome_paths(tables["outcome_paths"], o, lang)
    if "event_study" in tables and not tables["event_study"].empty:
        for o in list(dict.fromkeys(tables["event_study"]["outcome"]))[:2]:
            figs[f"event_study__{o}"] = figure_event_study(tables["event_study"], o, lang)
    if (
        "balance" in tables
        and {"sample", "smd"} <= set(tables["balance"].columns)
        and {"covariate", "variable"} & set(tables["balance"].columns)
        and "love_plot" not in content.figures
    ):
        figs["love_plot"] = figure_love_plot(tables["balance"], lang)
    figs.update(content.figures)
    pngs = {}
    for name in sorted(figs):
        pngs[name] = save_figure(figs[name], fig_dir, name)
        written += [fig_dir / f"{name}.png", fig_dir / f"{name}.svg"]
    page = render_html(content, tables, pngs, lang, threshold)
    (out_dir / "report.html").write_text(page, encoding="utf-8")
    written.append(out_dir / "report.html")
    return written


# --------------------------------------------------------------------------------------------------------------
# Provenance and atomic output
# --------------------------------------------------------------------------------------------------------------


def sha256_path(path: Path) -> str:
    """SHA-256 of a file, or of a directory's files (sorted relative names and contents)."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode("utf-8") + b"\0")
        with f.open("rb") as fh:
            for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def package_versions() -> dict[str, str]:
    """Versions of the package, Python and the runtime dependencies."""
    import platform
    from importlib import metadata

    names = [
        "finsam_effekt",
        "numpy",
        "pandas",
        "scipy",
        "statsmodels",
        "scikit-learn",
        "linearmodels",
        "pyreadstat",
        "pyarrow",
        "duckdb",
        "pydantic",
        "pyyaml",
        "matplotlib",
        "openpyxl",
    ]
    out = {"python": platform.python_version()}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = "not installed"
    return out


def write_manifest(
    out_dir: Path,
    *,
    config: Mapping[str, Any],
    config_hash: str,
    inputs: Mapping[str, Path],
    seed: int,
    timings: Mapping[str, float],
    rows: Mapping[str, int],
    outputs: Sequence[Path] = (),
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """``manifest.json``: config and its hash, SHA-256 of every input, versions, seed, timings, rows per stage.

    Everything but ``timings_seconds`` is identical between two runs of the same config on the same inputs.
    """
    out_dir = Path(out_dir)
    manifest = {
        "config": dict(config),
        "config_sha256": config_hash,
        "inputs": {name: {"path": str(p), "sha256": sha256_path(p)} for name, p in sorted(inputs.items())},
        "versions": package_versions(),
        "seed": seed,
        "rows": {k: int(v) for k, v in rows.items()},
        "outputs": sorted(str(Path(p).relative_to(out_dir)) for p in outputs),
        "timings_seconds": {k: round(float(v), 3) for k, v in timings.items()},
        **(dict(extra) if extra else {}),
    }
    path = out_dir / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    return path


@contextlib.contextmanager
def atomic_output_dir(out: Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling directory of ``out``; rename it to ``out`` only when the block succeeds.

    A failed block removes the temporary directory, so a failed run leaves no ``out``. An existing ``out`` is
    replaced only with ``force`` (it is removed just before the rename); without it :class:`ConfigError`
    is raised before anything is written.
    """
    out = Path(out).resolve()
    if out.exists() and not force:
        raise ConfigError(f"{out}: output directory exists; use --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)


def summarise_paths(paths: pd.DataFrame, outcomes: Sequence[str], weights: str = "weights") -> pd.DataFrame:
    """Weighted mean outcome per ``rel_month`` and arm, for the outcome-path figure (``outcome_paths.csv``).

    For arm a (treated = 1 / control = 0), month r and outcome o over uncensored rows i with weights w_i:
    ``mean = Σ w_i y_i / Σ w_i``; ``se = sqrt(Σ w_i² (y_i − mean)²) / Σ w_i`` (the linearised SE of a ratio
    mean, rows treated as independent; the effect table has the clustered inference); ``ci = mean ± 1.96 se``;
    ``n`` = number of distinct persons in the cell (suppressed below the threshold by the writer).
    """
    p = paths
    if "censored" in p:
        p = p[~p["censored"].astype(bool)]
    w_all = p[weights].to_numpy(float) if weights in p else np.ones(len(p))
    rows = []
    arm = np.where(p["treated"].to_numpy() == 1, "treated", "control")
    for o in outcomes:
        if o not in p:
            continue
        d = pd.DataFrame(
            {
                "rel_month": p["rel_month"].to_numpy(),
                "arm": arm,
                "y": p[o].to_numpy(float),
                "w": w_all,
                "person_id": p["person_id"].to_numpy(),
            }
        )
        d = d[np.isfinite(d["y"]) & (d["w"] > 0)]
        for (r, a), g in d.groupby(["rel_month", "arm"], sort=True):
            sw = g["w"].sum()
            m = float((g["w"] * g["y"]).sum() / sw)
            se = float(np.sqrt((g["w"] ** 2 * (g["y"] - m) ** 2).sum()) / sw)
            rows.append(
                (
                    o,
                    int(r),
                    a,
                    m,
                    m - 1.959963984540054 * se,
                    m + 1.959963984540054 * se,
                    g["person_id"].nunique(),
                )
            )
    return pd.DataFrame(rows, columns=["outcome", "rel_month", "arm", "mean", "ci_lower", "ci_upper", "n"])
