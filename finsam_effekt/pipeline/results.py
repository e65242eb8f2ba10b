"""The typed, frozen result of each pipeline stage, and :class:`StageResults`, the results of one run so far.

A stage function (``pipeline.stages``) maps the config and earlier results to exactly one of these. Each result
holds the stage module's own results object (``LinkageResult``, ``CohortMatch``, ``EffectResults`` …) and says
which tables it contributes to the report (:meth:`report_tables`), which key figures (:meth:`facts`) and what it
could not do (``not_run``); the report assembles them and computes nothing of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..diagnostics import DesignWarning, pre_period_warning, pretrend_warning

if TYPE_CHECKING:  # annotations only: importing this module loads no stage module
    import duckdb

    from ..balance import BalanceTable
    from ..cohort import CensoringWeights
    from ..config import AnalysisConfig
    from ..contamination import ContaminationEstimate
    from ..cost_benefit import CostBenefitResults
    from ..estimation import EffectResults, EventStudyResults, SensitivityResults
    from ..io import ValidationReport
    from ..linkage import LinkageResult
    from ..matching import CohortMatch

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class StageResult:
    """Base of every stage result: its rows (for the stage table), report tables, key figures, not-run notes."""

    def rows(self) -> int | None:
        """The size shown in the stage table (rows of the stage's main table)."""
        return None

    def report_tables(self) -> Mapping[str, pd.DataFrame]:
        """Tables this stage contributes to the report, by output name (``effects`` → ``effects.csv``)."""
        return _EMPTY

    def facts(self) -> Mapping[str, Any]:
        """Key figures for the report's first screen, by ``report.text.FACT_LABELS`` key."""
        return _EMPTY

    def not_run(self) -> Mapping[str, str]:
        """Parts of the stage that did not run, with the reason (shown in the report)."""
        return _EMPTY

    def warnings(self) -> tuple[DesignWarning, ...]:
        """Design warnings this stage's result gives the reader (``diagnostics.DesignWarning``)."""
        return ()


@dataclass(frozen=True)
class ReadResult(StageResult):
    """read & validate: the canonical input tables as DuckDB views on ``con`` and the validation report.

    ``register_start``/``register_end``: the first and last month of register data (``outcomes.data_end`` when
    set, else the months in earnings and social assistance).
    """

    con: duckdb.DuckDBPyConnection
    validation: ValidationReport
    tables: frozenset[str]
    register_start: str
    register_end: str

    def table(self, name: str) -> Any:
        """A canonical input table as a DuckDB relation, or None when the input spec does not have it."""
        return self.con.table(name) if name in self.tables else None

    def rows(self) -> int:
        return int(sum(v or 0 for v in self.validation.rows.values()))

    def facts(self) -> Mapping[str, Any]:
        return {"register_months": f"{self.register_start} – {self.register_end}"}


@dataclass(frozen=True)
class LinkResult(StageResult):
    """link: participants, episodes and the attrition report (``linkage.LinkageResult``)."""

    linkage: LinkageResult

    @property
    def participants(self) -> pd.DataFrame:
        return self.linkage.participants

    def rows(self) -> int:
        return len(self.linkage.participants)

    def report_tables(self) -> Mapping[str, pd.DataFrame]:
        out = {"linkage_report": self.linkage.linkage_report}
        sc = self.linkage.support_consistency
        if sc is not None and len(sc):
            out["support_consistency"] = sc
        return out

    def facts(self) -> Mapping[str, Any]:
        out: dict[str, Any] = {}
        sc = self.linkage.support_consistency
        if sc is not None and len(sc):
            anyp = sc[sc["source"] == "any_public"]
            if len(anyp) and pd.notna(anyp["share_disagree"].iloc[0]):
                out["sus_register_disagree_any_public"] = f"{float(anyp['share_disagree'].iloc[0]):.1%}"
        out["participants"] = len(self.linkage.participants)
        return out


@dataclass(frozen=True)
class PanelResult(StageResult):
    """panel: the sparse person-month panel (``panel.person_months``; docs/tables.md)."""

    person_months: Any  # an Arrow table (or DuckDB relation / Parquet path: every stage accepts them)

    def rows(self) -> int | None:
        pm = self.person_months
        if hasattr(pm, "num_rows"):
            return int(pm.num_rows)
        if hasattr(pm, "aggregate"):
            return int(pm.aggregate("count(*)").fetchone()[0])
        return None


@dataclass(frozen=True)
class CohortResult(StageResult):
    """cohort: participants at their reference month and candidate control person-months with history features."""

    cohort: pd.DataFrame

    def rows(self) -> int:
        return len(self.cohort)

    def facts(self) -> Mapping[str, Any]:
        return {"candidate_control_months": int((self.cohort["treated"] == 0).sum())}


@dataclass(frozen=True)
class MatchStageResult(StageResult):
    """match: the propensity model and the matching or IPW weights (``matching.CohortMatch``), and the matched
    sample with the participants' SUS subgroup fields (``insats_type``, ``public_support_before``)."""

    result: CohortMatch
    matched: pd.DataFrame

    @property
    def match(self) -> Any:
        """The nearest-neighbour ``MatchResult``, or None under ``matching.method: ipw`` (no pairs)."""
        return self.result.match

    def rows(self) -> int:
        return len(self.matched)

    def facts(self) -> Mapping[str, Any]:
        out: dict[str, Any] = {
            "matched_treated": int((self.matched["treated"] == 1).sum()),
            "matched_controls": int((self.matched["treated"] == 0).sum()),
        }
        if self.result.match is not None:
            out["unmatched_treated"] = len(self.result.match.unmatched)
        return out


@dataclass(frozen=True)
class BalanceResult(StageResult):
    """balance: balance statistics before and after matching (``balance.BalanceTable``) and what the figures
    need (propensity score, treatment, weights per cohort row)."""

    table: BalanceTable
    ps: Any
    treated: Any
    weights: Any

    def rows(self) -> int:
        return len(self.table.to_frame())

    def report_tables(self) -> Mapping[str, pd.DataFrame]:
        return {"balance": self.table.to_frame()}

    def facts(self) -> Mapping[str, Any]:
        frame = self.table.to_frame()
        after = frame.loc[frame["sample"] == "after", "smd"].abs()
        return {"max_abs_smd_after": round(float(after.max()), 3)} if len(after) else {}

    def warnings(self) -> tuple[DesignWarning, ...]:
        """``pre_period_imbalance`` when a pre-period outcome (a row of kind ``pre_period``) has |SMD| above the
        table's threshold (0.1) after matching; the text also gives the size of a chance difference with this many
        matched participants."""
        flagged = self.table.flagged("pre_period", "after")
        if flagged.empty:
            return ()
        sizes = self.table.sample_sizes
        n = sizes.loc[(sizes["sample"] == "after") & (sizes["group"] == "treated"), "n"]
        n_treated = int(n.iloc[0]) if len(n) else None
        return (pre_period_warning(flagged.to_dict("records"), self.table.smd_threshold, n_treated),)


@dataclass(frozen=True)
class OutcomeTables(StageResult):
    """outcomes: the matched sample's horizon outcomes (months 1..K, wide) and outcome paths (long), controls
    censored at their own later start under ``later_treated: censor`` (with IPCW weights ``ipcw_k`` when
    configured), and the weighted summary of the paths."""

    outcomes: pd.DataFrame
    paths: pd.DataFrame
    path_summary: pd.DataFrame
    censoring: CensoringWeights | None = None

    def rows(self) -> int:
        return len(self.outcomes)

    def report_tables(self) -> Mapping[str, pd.DataFrame]:
        return {"outcome_paths": self.path_summary}

    def facts(self) -> Mapping[str, Any]:
        return {"ipcw_later_starts": self.censoring.n_events} if self.censoring is not None else {}


@dataclass(frozen=True)
class EffectsResult(StageResult):
    """effects: every configured estimator's ATT table (``EffectResults.to_frame()`` of each sample, stacked)."""

    results: tuple[EffectResults, ...]
    frame: pd.DataFrame
    skipped: Mapping[str, str] = field(default_factory=dict)

    @property
    def main(self) -> EffectResults:
        """The results object of the first sample estimated (holds the first configured estimator)."""
        return self.results[0]

    def rows(self) -> int:
        return len(self.frame)

    def report_tables(self) -> Mapping[str, pd.DataFrame]:
        return {"effects": self.frame}

    def not_run(self) -> Mapping[str, str]:
        return self.skipped


@dataclass(frozen=True)
class ContaminationResult(StageResult):
    """contamination: the expected share of matched controls who are anonymous participants and the
    dilution-corrected effects of the matched-sample estimators (``contamination.expected_contamination``)."""

    estimate: ContaminationEstimate
    frame: pd.DataFrame

    def rows(self) -> int:
        return len(self.frame)

    def report_tables(self) -> Mapping[str, pd.DataFrame]:
        return {"contamination": self.frame}

    def facts(self) -> Mapping[str, Any]:
        e = self.estimate
        return {
            "contamination_share_matched": f"{e.share_matched:.1%}",
            "contamination_share_matched_now": f"{e.share_matched_now:.1%}",
            "contamination_share_matched_before": f"{e.share_matched_before:.1%}",
            "contamination_share_candidates": f"{e.share_candidates:.1%}",
        }

    def warnings(self) -> tuple[DesignWarning, ...]:
        """``contamination`` when more than 2 % of the matched controls are expected to be anonymous
        participants."""
        return self.estimate.warnings()


@dataclass(frozen=True)
class EventStudyResult(StageResult):
    """event study: monthly effects around u with a pre-trend Wald test, per configured outcome."""

    studies: Mapping[str, EventStudyResults]
    frame: pd.DataFrame

    def rows(self) -> int:
        return len(self.frame)

    def report_tables(self) -> Mapping[str, pd.DataFrame]:
        return {"event_study": self.frame}

    def facts(self) -> Mapping[str, Any]:
        return {
            f"pretrend:{o}": f"χ²({r.pretrend_df}) = {r.pretrend_wald:.2f}, p = {r.pretrend_p:.3f}"
            for o, r in self.studies.items()
        }

    def warnings(self) -> tuple[DesignWarning, ...]:
        """``pretrend_rejected`` for each outcome whose pre-trend Wald test rejects at the study's ``alpha``
        (``inference.alpha``), naming the lead with the largest |estimate / SE|."""
        out = []
        for o, r in self.studies.items():
            if not (np.isfinite(r.pretrend_p) and r.pretrend_p < r.alpha):
                continue
            t = r.table
            leads = t[(t["rel_month"] < r.reference) & (t["std_error"] > 0)]
            lead = None
            if len(leads):
                row = leads.loc[(leads["estimate"] / leads["std_error"]).abs().idxmax()]
                lead = {k: float(row[k]) for k in ("rel_month", "estimate", "std_error")}
            out.append(pretrend_warning(o, r.pretrend_wald, r.pretrend_df, r.pretrend_p, r.alpha, lead))
        return tuple(out)


@dataclass(frozen=True)
class SensitivityResult(StageResult):
    """sensitivity: Rosenbaum bounds, E-values, placebo outcomes and start dates."""

    result: SensitivityResults

    def rows(self) -> int:
        return len(self.result.to_frame())

    def report_tables(self) -> Mapping[str, pd.DataFrame]:
        return {"sensitivity": self.result.to_frame()}


@dataclass(frozen=True)
class CostBenefitResult(StageResult):
    """cost-benefit: present values per financier and perspective (``cost_benefit.CostBenefitResults``)."""

    result: CostBenefitResults

    def rows(self) -> int:
        return len(self.result.to_frame())

    def report_tables(self) -> Mapping[str, pd.DataFrame]:
        out = {"cost_benefit": self.result.to_frame()}
        if getattr(self.result, "before_after", None) is not None:
            out["cost_benefit_methods"] = self.result.comparison_frame()
        return out

    def facts(self) -> Mapping[str, Any]:
        out: dict[str, Any] = {}
        if getattr(self.result, "before_after", None) is not None:
            cmp = self.result.comparison_frame()
            tot = cmp[(cmp["perspective"] == "public_finance") & (cmp["financier"] == "public_sector_total")]
            if len(tot):
                r = tot.iloc[0]
                out["net_public_sector_counterfactual_sek"] = round(float(r["net_point_counterfactual"]))
                out["net_public_sector_before_after_sek"] = round(float(r["net_point_before_after"]))
        out["cost_per_participant_sek"] = round(float(self.result.cost_per_participant_sek))
        return out


@dataclass
class StageRecord:
    """Timing and size of one stage in one run."""

    name: str
    seconds: float
    rows: int | None
    status: str  # ok | not_run | failed (optional stages only)
    note: str = ""


@dataclass
class StageResults:
    """The typed results of the stages run so far (``run_until``; ``run`` builds the report from them).

    One attribute per stage of ``pipeline.CHAIN`` (None until that stage ran, or when it did not run), plus the
    config, the stage records and the not-run notes. ``results.match.matched`` is the matched sample,
    ``results.outcomes.outcomes`` its horizon outcomes, ``results.effects.frame`` the effect table, and so on.
    """

    cfg: AnalysisConfig
    read: ReadResult | None = None
    link: LinkResult | None = None
    panel: PanelResult | None = None
    cohort: CohortResult | None = None
    match: MatchStageResult | None = None
    balance: BalanceResult | None = None
    outcomes: OutcomeTables | None = None
    effects: EffectsResult | None = None
    contamination: ContaminationResult | None = None
    event_study: EventStudyResult | None = None
    sensitivity: SensitivityResult | None = None
    cost_benefit: CostBenefitResult | None = None
    records: list[StageRecord] = field(default_factory=list)
    not_run: dict[str, str] = field(default_factory=dict)

    def get(self, key: str) -> StageResult | None:
        """The result of stage ``key`` (a ``pipeline.CHAIN`` key such as ``"match"``)."""
        return getattr(self, key)

    def table(self, name: str) -> Any:
        """A canonical input table as a DuckDB relation (after the read stage), or None."""
        return None if self.read is None else self.read.table(name)
