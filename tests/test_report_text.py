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
