"""The report of a run: disclosure control and every published output (tables, Excel, figures, HTML, manifest).

Everything a run publishes goes through this package: the tidy CSV tables, ``results.xlsx``, ``figures/``,
the self-contained ``report.html`` and ``manifest.json``. Nothing here computes a statistic: the tables come from
the stages' results objects (``.to_frame()``) and are only suppressed, labelled, drawn and written.

Modules
-------
``text``         every Swedish and English heading, note and page text (outcome labels from
                 ``schema.OUTCOME_INFO``), the glossary
``labels``       every code name's label (attrition steps, checks, subgroups, covariates, financiers, items, units)
``numbers``      every number shown to a reader, in the language's format (decimal comma, true minus, units)
``disclosure``   the disclosure rules, one function per rule, and :func:`publish`, which applies them all
``content``      :class:`ReportContent`, what a run hands over, and the rows the page shows of it
``figures``      every figure (the one love plot, the propensity-score overlap, effects, subgroups, paths, event
                 study, the cost-benefit waterfalls and tornado)
``html``         ``report.html`` from the Jinja2 templates in ``templates/`` (autoescaped), generic tables
``views``        the page as views: the first screen (headline effects, readings, design check, cost-benefit at
                 a glance), the table of contents, the key figures and captions, :func:`views.page_context`
``sections``     the sections' tables: effects in their units, estimators side by side, balance, attrition,
                 sensitivity, cost-benefit per financier and per insats type
``writers``      CSV and Excel files, ``cost_benefit_inputs.json`` and :func:`write_outputs`, which writes
                 everything
``provenance``   ``manifest.json``, hashes, versions, :func:`atomic_output_dir`

Disclosure control
------------------
Counts and estimates resting on fewer than ``threshold`` persons are blanked and their rows marked
``suppressed = True``, so are balance shares revealing small counts, the cost-benefit tables of too few
persons, key figures, small stage sizes in ``manifest.json`` and run.log, and complements of suppressed counts
that a subtraction would reveal (the rules are in :mod:`finsam_effekt.report.disclosure`); a table with a person
identifier is refused. Suppressed cells are empty in the CSV files (with ``suppressed`` = ``True``), empty in
Excel with the same column, shown as "×" in the HTML (a missing or not applicable value as "–", with the legend
under every table that can suppress), and left out of figures with a note in the caption.

Output tables (CSV, one file each; columns as in ``docs/tables.md``)
---------------------------------------------------------------------
``effects.csv``        outcome, horizon_months, measure, subgroup, estimator, estimate, std_error, ci_lower,
                       ci_upper, p_value, n_treated, n_control, suppressed
``event_study.csv``    outcome, rel_month, estimate, std_error, ci_lower, ci_upper, p_value, n_treated,
                       n_control (persons with the outcome observed in the month), suppressed
``sensitivity.csv``    check, outcome, horizon_months, statistic, value, (n_treated, n_control), suppressed
``balance.csv``        variable, sample (before/after), means, smd, var_ratio, ecdf_mean, ecdf_max, flags,
                       n_treated, n_control (persons with positive weight), suppressed
``linkage_report.csv`` step, step_label, forbund_id, start_year, n, suppressed (the linkage steps, then the
                       attrition stage's: cohort, match and follow-up drops by reason, unknown education)
``cost_benefit.csv``   perspective, financier, item, pv_sek_per_participant, ci_lower, ci_upper, n_treated,
                       n_control, suppressed (every cost-benefit table carries the fewest persons behind its
                       effects and is blanked whole below the threshold)
``outcome_paths.csv``  outcome, rel_month, arm (treated/control), mean, ci_lower, ci_upper, n, suppressed
``support_consistency.csv``  source, n_participants, sus_yes, register_yes, disagree, share_disagree, suppressed
                       (its four counts suppressed like ``n``, the share with them; HTML: under data and attrition)
``cost_benefit_methods.csv``  perspective, financier, net_point/ci_lower/ci_upper for ``counterfactual`` and
                       ``before_after``, difference (HTML: the methods comparison under cost-benefit)
``cost_benefit_summary.csv``  perspective, financier, pv_cost, pv_gains, pv_net, ci_lower, ci_upper,
                       p_net_positive, interval_level, benefit_cost_ratio, break_even_years,
                       break_even_effect_scale
``cost_benefit_sensitivity.csv``  parameter, low, high, perspective, financier, net_base, net_low, net_high,
                       low_value, high_value (the tornado)
``cost_benefit_by_subgroup.csv``  subgroup (``insats_type=…``), cost_per_participant_sek and the summary
                       columns, n_treated, n_control (suppressed like an effect)
``cost_benefit_inputs.json`` what the cost-benefit was computed from; ``finsam-effekt cost-benefit`` reads it
Only the tables a run produced are written; the HTML report says which stages did not run and why.
"""

from .content import (
    FIGURE_OUTCOMES,
    HEADLINE_OUTCOMES,
    OUTPUT_TABLES,
    SUBGROUP_OUTCOMES,
    ReportContent,
    compact_balance,
    headline_rows,
    key_rows,
)
from .disclosure import (
    COUNT_COLUMNS,
    COUNT_FACTS,
    ESTIMATE_COLUMNS,
    FACT_SUMS,
    IDENTIFYING_COLUMNS,
    PERSON_STAGES,
    apply_disclosure_control,
    check_publishable,
    publish,
    publishable_bins,
    publishable_facts,
    publishable_rows,
    rows_text,
    share_rows,
    suppress_balance,
    suppress_complements,
    suppress_counts,
    suppress_estimates,
    suppress_resting,
)
from .figures import (
    figure_effects,
    figure_event_study,
    figure_outcome_paths,
    figure_subgroups,
    figure_tornado,
    figure_waterfall,
    love_plot,
    ps_overlap_plot,
    save_figure,
)
from .html import html_table, render_html
from .overview import forest_plot, suppress_group_counts, write_group_overview
from .provenance import atomic_output_dir, package_versions, sha256_path, write_manifest
from .text import (
    COLUMN_LABELS,
    FACT_LABELS,
    FIGURE_GUIDES,
    SOURCE_LABELS,
    TABLE_GUIDES,
    TABLE_TITLES,
    TEXT,
    column_label,
    estimator_label,
    fact_label,
    outcome_label,
    text,
)
from .writers import COST_BENEFIT_INPUTS, write_csv, write_excel, write_outputs

__all__ = [
    "forest_plot",
    "suppress_group_counts",
    "write_group_overview",
    "COLUMN_LABELS",
    "COST_BENEFIT_INPUTS",
    "HEADLINE_OUTCOMES",
    "COUNT_COLUMNS",
    "COUNT_FACTS",
    "ESTIMATE_COLUMNS",
    "FACT_LABELS",
    "FACT_SUMS",
    "PERSON_STAGES",
    "FIGURE_GUIDES",
    "FIGURE_OUTCOMES",
    "IDENTIFYING_COLUMNS",
    "OUTPUT_TABLES",
    "SOURCE_LABELS",
    "SUBGROUP_OUTCOMES",
    "TABLE_GUIDES",
    "TABLE_TITLES",
    "TEXT",
    "ReportContent",
    "apply_disclosure_control",
    "atomic_output_dir",
    "check_publishable",
    "column_label",
    "compact_balance",
    "estimator_label",
    "fact_label",
    "figure_effects",
    "figure_event_study",
    "figure_outcome_paths",
    "figure_subgroups",
    "figure_tornado",
    "figure_waterfall",
    "headline_rows",
    "html_table",
    "key_rows",
    "love_plot",
    "outcome_label",
    "package_versions",
    "ps_overlap_plot",
    "publish",
    "publishable_bins",
    "publishable_facts",
    "publishable_rows",
    "rows_text",
    "share_rows",
    "suppress_balance",
    "suppress_complements",
    "suppress_resting",
    "render_html",
    "save_figure",
    "sha256_path",
    "suppress_counts",
    "suppress_estimates",
    "text",
    "write_csv",
    "write_excel",
    "write_manifest",
    "write_outputs",
]
