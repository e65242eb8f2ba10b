"""Shared foundations: month arithmetic, canonical schema and the table writers' round trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finsam_effekt import months
from finsam_effekt.config import load_input_spec
from finsam_effekt.io import WRITE_FORMATS, write_tables
from finsam_effekt.schema import AGENCY_COLUMNS, OUTCOMES, TABLES


def test_month_index_round_trip():
    assert months.to_index("2020-01") == 2020 * 12
    assert months.from_index(2020 * 12 + 11) == "2020-12"
    idx = months.to_index(pd.Series(["2019-12", "2020-01", "2024-02"]))
    assert list(idx) == [2019 * 12 + 11, 2020 * 12, 2024 * 12 + 1]
    assert list(months.from_index(idx)) == ["2019-12", "2020-01", "2024-02"]
    assert months.last_day(months.to_index("2024-02")) == pd.Timestamp("2024-02-29")
    assert months.month_range("2019-11", "2020-02") == ["2019-11", "2019-12", "2020-01", "2020-02"]


def test_schema_is_consistent():
    for name, spec in TABLES.items():
        assert set(AGENCY_COLUMNS[name]) == set(spec.names), name
        assert set(spec.key) <= set(spec.names)
    assert len(set(OUTCOMES)) == len(OUTCOMES)


@pytest.mark.parametrize("fmt", WRITE_FORMATS)
def test_writers_write_readable_spec(tmp_path, fmt):
    spells = pd.DataFrame(
        {
            "person_id": ["p1", "p2"],
            "benefit": ["RHP", "SA"],
            "from_date": pd.to_datetime(["2020-01-15", "2021-02-01"]),
            "to_date": pd.to_datetime(["2020-03-01", None]),
            "extent": [0.5, 1.0],
            "amount_sek": [1234.5, np.nan],
        }
    )
    paths = write_tables({"benefit_spells": spells}, tmp_path, fmt)
    assert paths["benefit_spells"].exists()
    spec = load_input_spec(tmp_path / "mapping.yaml")
    entry = spec.tables["benefit_spells"]
    assert entry.path == paths["benefit_spells"].resolve()
    if fmt == "agency-csv":
        text = paths["benefit_spells"].read_text(encoding="latin-1")
        assert text.splitlines()[0] == "LopNr;FORMAN;FROM_DATUM;TOM_DATUM;OMF;BELOPP"
        assert "REHAB" in text and "20200115" in text and "1234,5" in text
        assert entry.columns["FORMAN"] == "benefit" and entry.codes["benefit"]["REHAB"] == "RHP"
