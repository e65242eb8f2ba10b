"""report.text: one label per option value and language; outcome labels read from schema.OUTCOME_INFO."""

from __future__ import annotations

import pytest

from finsam_effekt.errors import ConfigError
from finsam_effekt.options import ESTIMATORS, LANGUAGES, MEASURES
from finsam_effekt.report import column_label, estimator_label, fact_label, outcome_label, text
from finsam_effekt.report.text import (
    COLUMN_LABELS,
    FACT_LABELS,
    FIGURE_GUIDES,
    MEASURE_LABELS,
    SOURCE_LABELS,
    TABLE_GUIDES,
    TABLE_TITLES,
    TEXT,
    confidence_level,
    figure_guide,
    measure_label,
    source_label,
    table_title,
)
from finsam_effekt.schema import OUTCOME_INFO, OUTCOMES


def test_every_label_has_both_languages():
    for table in (
        COLUMN_LABELS,
        TABLE_TITLES,
        SOURCE_LABELS,
        TABLE_GUIDES,
        TEXT,
        FACT_LABELS,
        MEASURE_LABELS,
        FIGURE_GUIDES,
    ):
        for key, pair in table.items():
            assert len(pair) == len(LANGUAGES) and all(isinstance(s, str) and s for s in pair), key


def test_labels_keyed_by_the_option_vocabularies():
    assert all(
        estimator_label(e, lang) != e for e in ESTIMATORS for lang in LANGUAGES
    )  # every one has labels
    assert set(MEASURE_LABELS) == set(MEASURES)
    assert estimator_label("aipw", "sv") == "dubbelt robust (AIPW)"
    assert estimator_label("something_else", "en") == "something_else"
    assert measure_label("cumulative", "en") == "sum over months 1..k"


def test_outcome_labels_come_from_schema():
    for o in OUTCOMES:
        assert outcome_label(o, "sv") == OUTCOME_INFO[o].label_sv
        assert outcome_label(o, "en") == OUTCOME_INFO[o].label_en
    assert outcome_label("not_an_outcome", "en") == "not_an_outcome"
    assert fact_label("pretrend:self_support", "sv") == (
        "Test av skillnad före start (Wald): Andel med egen försörjning"
    )
    assert fact_label("unknown_fact", "en") == "unknown_fact"


def test_lookups_and_unknown_language():
    assert text("none", "sv") == "Inga resultat." and column_label("n", "en") == "Count"
    assert column_label("no_such_column", "sv") == "no_such_column"
    assert table_title("effects", "sv") == "Effekter" and table_title("extra", "en") == "extra"
    assert source_label("any_public", "en") == "Any public support"
    for f in (text, column_label, outcome_label, estimator_label, table_title):
        with pytest.raises(ConfigError, match="language: expected 'sv' or 'en', got 'de'"):
            f("none", "de")


@pytest.mark.parametrize(
    ("alpha", "sv", "en"),
    [(0.05, "95", "95"), (0.1, "90", "90"), (0.01, "99", "99"), (0.025, "97,5", "97.5")],
)
def test_confidence_level_from_alpha(alpha, sv, en):
    assert confidence_level(alpha, "sv") == sv and confidence_level(alpha, "en") == en
    assert f"{en} % confidence intervals" in figure_guide("event_study", "en", alpha)
    assert f"{sv} % konfidensintervall" in figure_guide("effects", "sv", alpha)
    assert figure_guide("no_such_figure", "en") == ""


# -- numbers: one formatter for every number a reader sees --------------------------------------------------------
MINUS, NNBSP, NBSP = "\u2212", "\u202f", "\u00a0"


def test_numbers_in_swedish_and_english():
    from finsam_effekt.report import numbers as num

    assert num.fixed(-1234.5, "sv", 1) == f"{MINUS}1{NNBSP}234,5"
    assert num.fixed(-1234.5, "en", 1) == f"{MINUS}1{NNBSP}234.5"
    assert num.fixed(-0.04, "sv", 1) == "0,0"  # never "−0,0"
    assert num.fixed(2.5, "sv", 1, sign=True) == "+2,5" and num.fixed(float("inf"), "sv") == "∞"
    assert num.integer(2672, "sv") == f"2{NNBSP}672"
    assert (
        num.auto(0.0491, "sv") == "0,049"
        and num.auto(12.34, "sv") == "12,3"
        and num.auto(-1365.2, "en") == (f"{MINUS}1{NNBSP}365")
    )
    assert num.p_value(0.0004, "sv") == f"<{NBSP}0,001" and num.p_value(0.3441, "sv") == "0,344"
    assert num.p_value(0.0004, "en") == f"<{NBSP}0.001"
    assert num.percent(0.0726, "sv") == f"7,3{NBSP}%" and num.percent(0.0726, "en") == "7.3%"
    assert num.level(0.05, "sv") == f"95{NBSP}%" and num.level(0.025, "sv") == f"97,5{NBSP}%"


def test_effects_are_shown_in_their_units():
    from finsam_effekt.report import numbers as num

    # a share in month k: percentage points; a share summed over months 1..k: months; kronor; days
    assert num.unit_kind("public_support", "status") == "pp"
    assert num.unit_kind("public_support", "cumulative") == "months"
    assert num.unit_kind("benefit_sek") == "sek" and num.unit_kind("days_sickness") == "days"
    assert num.unit_kind("not_an_outcome") == "number"
    assert num.effect_value(-0.118, "public_support", "status", "sv") == f"{MINUS}11,8"
    assert num.effect_value(-0.718, "public_support", "cumulative", "sv") == f"{MINUS}0,72"
    assert num.effect_value(-1365.4, "benefit_sek", "status", "sv") == f"{MINUS}1{NNBSP}365"
    assert num.interval(-0.143, -0.092, "public_support", "status", "sv") == f"{MINUS}14,3 till {MINUS}9,2"
    assert num.interval(-0.143, 0.092, "public_support", "status", "en") == f"{MINUS}14.3 to 9.2"


def test_figure_ticks_and_excel_formats_follow_the_language():
    from finsam_effekt.report import numbers as num

    pp = num.axis_formatter("sv", "pp")
    assert pp(-0.04) == f"{MINUS}4" and pp(0.025) == "2,5"  # −0.04 × 100 is a whole tick
    assert num.axis_formatter("sv", "sek")(-1750.0) == f"{MINUS}1{NNBSP}750"
    assert num.axis_formatter("sv", "percent")(0.25) == f"25{NBSP}%"
    assert num.axis_formatter("sv")(0.75) == "0,75" and num.axis_formatter("en")(0.75) == "0.75"
    assert f'"{MINUS}"' in num.excel_format("sek", "sv") and num.excel_format("count", "sv") == "#,##0"
    assert "0,001" in num.excel_format("p_value", "sv") and "0.001" in num.excel_format("p_value", "en")
    assert num.excel_format("pp", "sv").startswith("0.0%")


# -- labels: no code name reaches a reader ---------------------------------------------------------------------
def test_every_code_name_has_a_label_in_both_languages():
    from finsam_effekt.attrition import HORIZON_STEPS, attrition_steps, horizon_step
    from finsam_effekt.config import CostBenefitParameters
    from finsam_effekt.cost_benefit.items import financier_items
    from finsam_effekt.linkage import STEPS
    from finsam_effekt.options import PERSISTENCE_KINDS, PERSPECTIVES
    from finsam_effekt.report import labels
    from finsam_effekt.report.text import GLOSSARY, GLOSSARY_TERMS
    from finsam_effekt.schema import INSATS_TYPES

    for table in (
        labels.UNIT_READINGS,
        labels.OUTCOME_SUBJECTS,
        labels.STEP_LABELS,
        labels.CHECK_LABELS,
        labels.STATISTIC_LABELS,
        labels.SUBGROUP_FIELD_LABELS,
        labels.COVARIATE_LABELS,
        labels.FINANCIER_LABELS,
        labels.ITEM_LABELS,
        labels.PERSPECTIVE_LABELS,
        labels.PARAMETER_LABELS,
        labels.PERSISTENCE_LABELS,
        labels.COST_FIGURE_LABELS,
        GLOSSARY,
        GLOSSARY_TERMS,
        *labels.VALUE_LABELS.values(),
    ):
        for key, pair in table.items():
            assert len(pair) == 2 and all(isinstance(s, str) and s for s in pair), key
    attrition = {s for s, _ in attrition_steps((3,))} - {horizon_step(b, 3) for b, _ in HORIZON_STEPS}
    assert set(labels.STEP_LABELS) == {s for s, _ in STEPS} | attrition
    assert set(labels.HORIZON_STEP_LABELS) == {b for b, _ in HORIZON_STEPS}
    for k in (3, 12):  # a follow-up step's label names its horizon, in both languages
        for b, _ in HORIZON_STEPS:
            assert all(str(k) in labels.step_label(horizon_step(b, k), lang) for lang in ("sv", "en"))
    assert set(labels.VALUE_LABELS["insats_type"]) == set(INSATS_TYPES)
    assert set(labels.PERSISTENCE_LABELS) == set(PERSISTENCE_KINDS)
    assert set(labels.PERSPECTIVE_LABELS) == set(PERSPECTIVES)
    assert set(labels.OUTCOME_SUBJECTS) == set(OUTCOMES) and set(GLOSSARY) == set(GLOSSARY_TERMS)
    items = financier_items(CostBenefitParameters(), 1000.0)
    assert {it.financier for it in items} <= set(labels.FINANCIER_LABELS)
    assert {it.item for it in items} <= set(labels.ITEM_LABELS)


def test_code_names_become_labels():
    from finsam_effekt.report import labels
    from finsam_effekt.schema import HISTORY_COLUMNS

    assert (
        labels.subgroup_label("sex=K", "sv") == "Kvinnor"
        and labels.subgroup_label("all", "en") == "All participants"
    )
    assert labels.subgroup_label("age_band=16-24", "sv") == "16–24 år"
    assert labels.subgroup_label("insats_type=rehab_work_education", "en").startswith(
        "Rehabilitation towards work"
    )
    assert labels.subgroup_label("forbund_id=F01", "sv") == "Förbund: F01"
    assert labels.covariate_label("ps_months_3", "sv") == "Månader med offentlig försörjning, senaste 3 mån"
    assert labels.covariate_label("sex=K", "sv") == "Kön: Kvinnor"
    assert labels.covariate_label("months_since_work", "en") == "Months since last earnings"
    assert all(labels.covariate_label(c, lang) != c for c in HISTORY_COLUMNS for lang in ("sv", "en"))
    assert (
        labels.covariate_label("x", "sv") == "x" and labels.covariate_label("g=b", "en") == "g=b"
    )  # unknown: as is
    assert labels.check_label("rosenbaum_mcnemar", "sv").startswith("Rosenbaums gränser")
    assert labels.statistic_label("e_value_ci", "en") == "E-value (CI limit closest to 1)"
    assert labels.financier_label("public_sector_total", "sv") == "Offentlig sektor totalt"
    assert labels.item_label("savings_social_assistance", "sv") == "Minskat ekonomiskt bistånd"
    assert labels.unit_reading("pp", "status", "sv") == "procentenheter, i månad k"
    assert labels.unit_reading("months", "cumulative", "en") == "number of months of months 1–k"
    assert labels.outcome_subject("public_support", "sv") == "andelen med offentlig försörjning"
