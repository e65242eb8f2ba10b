"""Reading, checking and writing the canonical tables (the public names of ``read``, ``validate``, ``write``).

- :mod:`~finsam_effekt.io.read`: input files (CSV, Parquet, SAS, SPSS, Stata) as DuckDB relations, the column
  and code mapping onto canonical columns, :func:`connect`, :func:`detect_format`;
- :mod:`~finsam_effekt.io.validate`: every check of raw input, :class:`ValidationReport`, and the entry points
  :func:`validate_inputs`, :func:`read_inputs` (validate, then register every input as a canonical DuckDB view)
  and :func:`read_table`; the rules it applies are in :mod:`~finsam_effekt.io.rules` (row checks, plausible
  ranges, the register's known scale) and :mod:`~finsam_effekt.io.persons` (pseudonyms across tables);
- :mod:`~finsam_effekt.io.coverage`: each monthly register's last complete month (:func:`last_complete_months`,
  :func:`register_ends`);
- :mod:`~finsam_effekt.io.write`: :class:`TableWriter`, :func:`write_tables` and the input spec that reads the
  written files back, in every format of :data:`WRITE_FORMATS`.

A canonical relation becomes a pandas DataFrame through :func:`finsam_effekt.tables.as_pandas` (with
``canonical=`` the table's name, for its date and integer dtypes).
"""

from __future__ import annotations

from ..options import WRITE_FORMATS, WriteFormat
from .coverage import absent_outcomes, last_complete_months, register_ends
from .read import RawSource, connect, detect_format
from .rules import MEDIAN_RANGES, PLAUSIBLE_AMOUNTS, REGISTER_ERA_START, default_plausible
from .validate import (
    ANALYSIS_TABLES,
    ValidationReport,
    read_inputs,
    read_table,
    validate_inputs,
)
from .write import (
    TableWriter,
    canonical_arrow_schema,
    canonical_arrow_table,
    input_spec_for,
    write_input_spec,
    write_tables,
)

__all__ = [
    "ANALYSIS_TABLES",
    "MEDIAN_RANGES",
    "PLAUSIBLE_AMOUNTS",
    "REGISTER_ERA_START",
    "absent_outcomes",
    "default_plausible",
    "last_complete_months",
    "register_ends",
    "RawSource",
    "ValidationReport",
    "connect",
    "detect_format",
    "read_inputs",
    "read_table",
    "validate_inputs",
    "WRITE_FORMATS",
    "WriteFormat",
    "TableWriter",
    "canonical_arrow_schema",
    "canonical_arrow_table",
    "input_spec_for",
    "write_input_spec",
    "write_tables",
]
