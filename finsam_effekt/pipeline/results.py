"""The typed, frozen result of each pipeline stage, and :class:`StageResults`, the results of one run so far.

A stage function (``pipeline.stages``) maps the config and earlier results to exactly one of these. Each result
holds the stage module's own results object (``LinkageResult``, ``CohortMatch``, ``EffectResults`` …) and says
which tables it contributes to the report (:meth:`report_tables`), which key figures (:meth:`facts`) and what it
could not do (``not_run``); the report assembles them and computes nothing of its own.

Disclosure control (``report.disclosure``) checks every published number against the persons it rests on, so each
report table carries its person counts (``n``, ``n_treated``, ``n_control``) and each key figure drawn from a
table names its rows in a ``basis:<key>`` entry (removed before publishing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
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
        """Key figures for the report's first screen, by ``report.text.FACT_LABELS`` key; a figure drawn from rows
        of a report table adds ``basis:<key>`` = ``{"table": name, "where": {column: value}, "below": {column:
        limit}}`` (those rows; ``report.disclosure.publishable_facts`` blanks the figure when any is suppressed)."""
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

    ``register_start``/``register_end``: the first and last month of register data; ``register_ends``: each
    monthly register's last complete month (``io.register_ends``: detected, or ``outcomes.register_end`` /
    ``outcomes.data_end``); an outcome is missing after the first end among its registers. ``absent_outcomes``:
    outcomes the data cannot show at all (``io.absent_outcomes``), with the reason.
    """

    con: duckdb.DuckDBPyConnection
    validation: ValidationReport
    tables: frozenset[str]
    register_start: str
    register_end: str
    register_ends: Mapping[str, str] = field(default_factory=dict)
    absent_outcomes: Mapping[str, str] = field(default_factory=dict)

    def table(self, name: str) -> Any:
        """A canonical input table as a DuckDB relation, or None when the input spec does not have it."""
        return self.con.table(name) if name in self.tables else None

    def rows(self) -> int:
        return int(sum(v or 0 for v in self.validation.rows.values()))

    def facts(self) -> Mapping[str, Any]:
        out: dict[str, Any] = {"register_months": f"{self.register_start} – {self.register_end}"}
        if len(set(self.register_ends.values())) > 1:  # registers that end at different months: say which
            out["register_ends"] = ", ".join(f"{k} {v}" for k, v in sorted(self.register_ends.items()))
        return out


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
                out["sus_register_disagree_any_public"] = float(anyp["share_disagree"].iloc[0])
                out["basis:sus_register_disagree_any_public"] = {
                    "table": "support_consistency",
                    "where": {"source": "any_public"},
                }
        out["participants"] = self.participants_count()
        # the figure rests on the report's total of the participants: a report that hides it (the attrition
        # stage's continued report can, as a complement of a later step) blanks the figure too
        rep = self.linkage.linkage_report
        where: dict[str, Any] = {"step": self.last_step(), "start_year": 0}
        if (rep["forbund_id"].astype(str) == "ALL").any():
            where["forbund_id"] = "ALL"
        out["basis:participants"] = {"table": "linkage_report", "where": where}
        return out

    @staticmethod
    def last_step() -> str:
        """The linkage report's step of the participants (its last linkage step)."""
        from ..linkage import STEPS  # here, not at the top: importing this module loads no stage module

        return STEPS[-1][0]

    def participants_count(self) -> int | None:
        """The number of participants as the linkage report publishes it: its last step's total (over every
        förbund, or the one förbund of a per-förbund report), None where the report suppressed it (so the key
        figure never reveals a count the report hides as a complement)."""
        from ..linkage import STEPS  # here, not at the top: importing this module loads no stage module

        rep = self.linkage.linkage_report
        tot = rep[(rep["step"] == STEPS[-1][0]) & (rep["start_year"].astype(str) == "0")]
        if (tot["forbund_id"].astype(str) == "ALL").any():
            tot = tot[tot["forbund_id"].astype(str) == "ALL"]
        if len(tot) != 1:
            return len(self.linkage.participants)
        if bool(tot["suppressed"].iloc[0]) or pd.isna(tot["n"].iloc[0]):
            return None
        return int(tot["n"].iloc[0])


@dataclass(frozen=True)
class PanelResult(StageResult):
    """panel: the sparse person-month panel (``panel.person_months``; docs/tables.md)."""

    person_months: Any  # a folder of Parquet parts (an Arrow table or DuckDB relation also work everywhere)

    def rows(self) -> int | None:
        pm = self.person_months
        if hasattr(pm, "num_rows"):
            return int(pm.num_rows)
        if hasattr(pm, "aggregate"):
            return int(pm.aggregate("count(*)").fetchone()[0])
        if isinstance(pm, str | Path):  # Parquet parts: the row count is in their metadata
            import duckdb

            glob = str(Path(pm) / "**" / "*.parquet") if Path(pm).is_dir() else str(pm)
            return int(duckdb.sql(f"SELECT count(*) FROM read_parquet('{glob}')").fetchone()[0])
        return None


@dataclass(frozen=True)
class ColumnFile:
    """Columns of a large table kept in a Parquet file instead of memory: one row per row of the table, stored in
    its order or in any order with each row's position in ``tables.POSITION_COLUMN`` (as the history stream
    writes them), restricted to ``rows`` (positions, ascending) when given. The cohort's pre-period path (24
    columns, ~45 % of a national cohort's bytes) is read by the balance stage only, so it waits on disk until
    then."""

    path: Path
    rows: np.ndarray | None = None

    @property
    def columns(self) -> list[str]:
        import pyarrow.parquet as pq

        from ..tables import POSITION_COLUMN

        return [c for c in pq.read_schema(self.path).names if c != POSITION_COLUMN]

    def load(self, columns: list[str] | None = None) -> pd.DataFrame:
        """The columns as a DataFrame (index 0..n−1), a column at a time (``tables.read_positioned``: rows in
        the order of the file's position column when it has one)."""
        from ..tables import read_positioned

        frame = read_positioned(self.path, columns)
        if self.rows is None:
            return frame
        return pd.DataFrame({c: frame.pop(c).to_numpy()[self.rows] for c in list(frame.columns)}, copy=False)

    def loaders(self, columns: list[str]) -> dict[str, Any]:
        """Per column a function reading it (``balance.balance_table(pre_period=)``): in the table's row order,
        or — for a file with a position column — as stored, with each value's row: ``(values, rows)``, the rows
        read once for all columns (putting 5·10⁷ values back in row order costs more than the statistics)."""
        import pyarrow.parquet as pq

        from ..tables import POSITION_COLUMN

        f = pq.ParquetFile(self.path)
        if POSITION_COLUMN not in f.schema_arrow.names:
            return {c: (lambda c=c: self.load([c])[c].to_numpy()) for c in columns}
        cache: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}

        def positions() -> tuple[np.ndarray, np.ndarray | None]:
            if "rows" not in cache:
                pos = f.read(columns=[POSITION_COLUMN]).column(0).to_numpy()
                if self.rows is None:
                    cache["rows"] = (pos, None)
                else:  # the rows kept, renumbered among themselves
                    keep = np.isin(pos, self.rows)
                    cache["rows"] = (np.searchsorted(self.rows, pos[keep]), keep)
            return cache["rows"]

        def load(c: str) -> tuple[np.ndarray, np.ndarray]:
            pos, keep = positions()
            v = f.read(columns=[c]).column(0).to_numpy()
            return (v if keep is None else v[keep]), pos

        return {c: (lambda c=c: load(c)) for c in columns}

    def take(self, rows: np.ndarray) -> ColumnFile:
        """The same file restricted to ``rows`` (positions among this one's rows, ascending)."""
        rows = np.asarray(rows, dtype=np.int64)
        return ColumnFile(self.path, rows if self.rows is None else self.rows[rows])


@dataclass(frozen=True)
class TableFile:
    """A large table kept in a Parquet file (written from pandas, so its column types come back as they were:
    categories, nullable integers) rather than in memory: the outcome paths of a national run are 1.3·10⁷ rows ×
    25 columns (1.5 GB) that the event study, sensitivity and cost-benefit stages read a few columns of."""

    path: Path

    @property
    def columns(self) -> list[str]:
        import pyarrow.parquet as pq

        return list(pq.read_schema(self.path).names)

    def load(self, columns: Sequence[str] | None = None, filters: list | None = None) -> pd.DataFrame:
        """The columns (all: None) as the DataFrame that was written, index 0..n−1; with ``filters`` (pyarrow's
        ``[(column, op, value), …]``) only the rows that meet them, in their order."""
        import pyarrow.parquet as pq

        table = pq.read_table(self.path, columns=None if columns is None else list(columns), filters=filters)
        # each Arrow column released as it is converted (not the table and its pandas copy at once)
        return table.to_pandas(self_destruct=True, split_blocks=True)

    @classmethod
    def write(cls, frame: pd.DataFrame, path: Path) -> TableFile:
        """``frame`` (its index dropped) to the Parquet file ``path``."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=1_000_000)
        return cls(Path(path))


@dataclass(frozen=True)
class CohortResult(StageResult):
    """cohort: participants at their reference month and candidate control person-months with history features;
    ``treated_status``: each participant of the window and why it did not enter the cohort
    (``cohort.treated_attrition``; None when not computed); ``pre_period``: the cohort's pre-period path
    (``panel.pre_period_columns()``, one row per cohort row) when it is kept on disk rather than in ``cohort``."""

    cohort: pd.DataFrame
    treated_status: pd.DataFrame | None = None
    pre_period: ColumnFile | None = None
    #: True when ``cohort`` holds only :data:`COHORT_KEY_COLUMNS` (:meth:`keys_only`).
    features_dropped: bool = False

    def rows(self) -> int:
        return len(self.cohort)

    def keys_only(self) -> CohortResult:
        """This result with only the cohort's :data:`COHORT_KEY_COLUMNS` (the same rows in the same order, so the
        match's row positions still hold): what the stages after the last reader of the history features use
        (``run`` swaps it in there; at 5·10⁶ persons the features are 4.2 of the cohort's 4.7 GB)."""
        keep = [c for c in COHORT_KEY_COLUMNS if c in self.cohort.columns]
        narrow = pd.DataFrame({c: self.cohort[c].copy() for c in keep}, index=self.cohort.index, copy=False)
        narrow.attrs.update(self.cohort.attrs)
        return replace(self, cohort=narrow, features_dropped=True)

    def facts(self) -> Mapping[str, Any]:
        return {"candidate_control_months": int((self.cohort["treated"] == 0).sum())}


#: The cohort columns the stages after the match read besides the history features (keys, roles, the förbund of
#: the contamination share): what :meth:`CohortResult.keys_only` keeps.
COHORT_KEY_COLUMNS: tuple[str, ...] = ("person_id", "ref_month", "treated", "later_start_month", "forbund_id")


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

    def on_cohort(self, cohort: pd.DataFrame) -> MatchStageResult:
        """This result with ``cohort`` (the same rows in the same order, e.g. :meth:`CohortResult.keys_only`'s) as
        the table the propensity scores, weights and pairs refer to by position."""
        if len(cohort) != len(self.result.data):
            raise ValueError(f"on_cohort: {len(cohort)} rows for a match of {len(self.result.data)}")
        m = self.result.match
        return replace(
            self,
            result=replace(self.result, data=cohort, match=None if m is None else replace(m, data=cohort)),
        )

    def facts(self) -> Mapping[str, Any]:
        out: dict[str, Any] = {
            "matched_treated": int((self.matched["treated"] == 1).sum()),
            "matched_controls": int((self.matched["treated"] == 0).sum()),
        }
        if self.result.match is not None:
            out["unmatched_treated"] = len(self.result.match.unmatched)
        # matching.propensity_fit_rows: the model fitted on a case-control sample, the candidates' share of it
        rate = self.result.propensity.control_sampling_rate
        if rate is not None:
            out["propensity_fit_control_share"] = rate
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
        """``balance``: the balance table with ``n_treated``/``n_control``, the persons with a positive weight in
        the row's sample and group (``BalanceTable.sample_sizes``), which disclosure control checks its means
        and shares against."""
        frame = self.table.to_frame()
        sizes = self.table.sample_sizes
        for group, col in (("treated", "n_treated"), ("control", "n_control")):
            n = sizes[sizes["group"] == group].set_index("sample")["n"]
            frame[col] = frame["sample"].map(n).astype("Int64")
        return {"balance": frame}

    def facts(self) -> Mapping[str, Any]:
        frame = self.table.to_frame()
        after = frame[frame["sample"] == "after"]
        smd = after["smd"].abs()
        if not len(after) or smd.isna().all():
            return {}
        top = after.loc[smd.idxmax(), "variable"]
        return {
            "max_abs_smd_after": round(float(smd.max()), 3),
            "basis:max_abs_smd_after": {"table": "balance", "where": {"variable": top, "sample": "after"}},
        }

    def warnings(self) -> tuple[DesignWarning, ...]:
        """``pre_period_imbalance`` when a pre-period outcome (a row of kind ``pre_period``) has |SMD| above the
        table's threshold (0.1) after matching; the text also gives the size of a chance difference with this many
        matched participants."""
        flagged = self.table.flagged("pre_period", "after")
        if flagged.empty:
            return ()
        sizes = self.table.sample_sizes
        after = sizes[sizes["sample"] == "after"].set_index("group")["n"]
        n_treated = int(after["treated"]) if "treated" in after else None
        n_control = int(after["control"]) if "control" in after else None
        return (
            pre_period_warning(flagged.to_dict("records"), self.table.smd_threshold, n_treated, n_control),
        )


@dataclass(frozen=True)
class OutcomeTables(StageResult):
    """outcomes: the matched sample's horizon outcomes (months 1..K, wide) and outcome paths (long), controls
    censored at their own later start under ``later_treated: censor`` (with IPCW weights ``ipcw_k`` when
    configured), and the weighted summary of the paths."""

    outcomes: pd.DataFrame
    #: the paths in memory, or in a Parquet file of the run's work area (the pipeline's outcome stage): read with
    #: :meth:`path_table`, the columns a reader needs
    paths: pd.DataFrame | TableFile
    path_summary: pd.DataFrame
    censoring: CensoringWeights | None = None

    def rows(self) -> int:
        return len(self.outcomes)

    def path_table(
        self, outcomes: Sequence[str] | None = None, rel_months: tuple[int, int] | None = None
    ) -> pd.DataFrame:
        """The outcome paths with every column that is no outcome (the pair's keys, ``rel_month``, ``month``,
        ``censored``) and the ``outcomes`` given (None: all of ``schema.OUTCOMES``), from memory or their file;
        with ``rel_months`` (first, last) only the rows of those months relative to u, in their order."""
        from ..schema import OUTCOMES

        names = self.paths.columns if isinstance(self.paths, TableFile) else list(self.paths.columns)
        keep = [c for c in names if c not in OUTCOMES or outcomes is None or c in outcomes]
        if isinstance(self.paths, TableFile):
            rows = (
                None
                if rel_months is None
                else [("rel_month", ">=", rel_months[0]), ("rel_month", "<=", rel_months[1])]
            )
            return self.paths.load(keep, filters=rows)
        out = self.paths if len(keep) == len(names) else self.paths[keep]
        if rel_months is not None:
            rel = out["rel_month"].to_numpy()
            out = out[(rel >= rel_months[0]) & (rel <= rel_months[1])].reset_index(drop=True)
        return out

    def report_tables(self) -> Mapping[str, pd.DataFrame]:
        return {"outcome_paths": self.path_summary}

    def facts(self) -> Mapping[str, Any]:
        return {"ipcw_later_starts": int(self.censoring.n_events)} if self.censoring is not None else {}


@dataclass(frozen=True)
class AttritionResult(StageResult):
    """attrition: the linkage report continued through the cohort, the match and the follow-up at each horizon
    (``attrition.attrition_report``; same columns, the later steps appended), already disclosure-controlled.

    It is published as ``linkage_report`` and replaces the link stage's table of that name in the report (the
    report takes a later stage's table over an earlier one's); without this stage the report has the linkage
    steps only."""

    report: pd.DataFrame

    def rows(self) -> int:
        return len(self.report)

    def report_tables(self) -> Mapping[str, pd.DataFrame]:
        return {"linkage_report": self.report}


@dataclass(frozen=True)
class EffectsResult(StageResult):
    """effects: every configured estimator's ATT table (``EffectResults.to_frame()`` of each sample, stacked)."""

    results: tuple[EffectResults, ...]
    frame: pd.DataFrame
    skipped: Mapping[str, str] = field(default_factory=dict)
    #: True when ``results`` were released after the stage (:meth:`tables_only`; ``frame`` is kept)
    released: bool = False

    @property
    def main(self) -> EffectResults:
        """The results object of the first sample estimated (holds the first configured estimator)."""
        if self.released:
            raise ValueError(
                "the effect results objects were released after the effects stage (pipeline.run keeps the effect "
                "table, .frame); run_until(cfg, 'effects') keeps them"
            )
        return self.results[0]

    def tables_only(self) -> EffectsResult:
        """This result without its results objects, whose influence functions (one value per matched row and
        estimate: 1.3 GB at 5·10⁶ persons) no later stage reads — the effect table ``frame`` stays."""
        return replace(self, results=(), released=True)

    def rows(self) -> int:
        return len(self.frame)

    def report_tables(self) -> Mapping[str, pd.DataFrame]:
        return {"effects": self.frame}

    def not_run(self) -> Mapping[str, str]:
        return self.skipped


@dataclass(frozen=True)
class ContaminationShareResult(StageResult):
    """contamination share: the expected share of matched controls who are anonymous participants
    (``contamination.expected_contamination``, the former participants scored with the match's propensity model).

    It rests on the match and the cohort only, not on the estimators, so it is cached: a rerun that changes the
    estimators reuses it. It publishes nothing itself; the contamination stage publishes the shares with the
    corrected effects (:class:`ContaminationResult`)."""

    estimate: ContaminationEstimate


@dataclass(frozen=True)
class ContaminationResult(StageResult):
    """contamination: the expected share of matched controls who are anonymous participants and the
    dilution-corrected effects of the matched-sample estimators (``contamination.expected_contamination``)."""

    estimate: ContaminationEstimate
    frame: pd.DataFrame
    #: the run's disclosure threshold: the count of anonymous registrations is written only when it reaches it
    threshold: int = 0

    def rows(self) -> int:
        return len(self.frame)

    def report_tables(self) -> Mapping[str, pd.DataFrame]:
        return {"contamination": self.frame}

    def persons(self) -> tuple[float | None, ...]:
        """The fewest matched participants and controls behind the shares (None when unknown)."""
        n = [
            self.frame[c].min() if c in self.frame and len(self.frame) else None
            for c in ("n_treated", "n_control")
        ]
        return tuple(None if v is None or v != v else float(v) for v in n)

    def facts(self) -> Mapping[str, Any]:
        e = self.estimate
        out: dict[str, Any] = {
            "contamination_share_matched": float(e.share_matched),
            "contamination_share_matched_now": float(e.share_matched_now),
            "contamination_share_matched_before": float(e.share_matched_before),
            "contamination_share_candidates": float(e.share_candidates),
        }
        # the shares describe the matched sample: published with the persons behind it
        return out | {f"basis:{k}": {"persons": self.persons()} for k in out}

    def warnings(self) -> tuple[DesignWarning, ...]:
        """``contamination`` when more than 2 % of the matched controls are expected to be anonymous
        participants."""
        return self.estimate.warnings(self.threshold, self.persons())


@dataclass(frozen=True)
class EventStudyResult(StageResult):
    """event study: monthly effects around u with a pre-trend Wald test, per configured outcome; ``frame`` has
    ``n_treated``/``n_control`` per month: the persons with the outcome observed in that month."""

    studies: Mapping[str, EventStudyResults]
    frame: pd.DataFrame

    def rows(self) -> int:
        return len(self.frame)

    def report_tables(self) -> Mapping[str, pd.DataFrame]:
        return {"event_study": self.frame}

    def facts(self) -> Mapping[str, Any]:
        # the numbers of the pre-trend Wald test; the report writes them in its language. The test rests on the
        # months before the reference month: it is published when all of them are
        out: dict[str, Any] = {}
        for o, r in self.studies.items():
            out[f"pretrend:{o}"] = {
                "statistic": float(r.pretrend_wald),
                "df": int(r.pretrend_df),
                "p_value": float(r.pretrend_p),
            }
            out[f"basis:pretrend:{o}"] = {
                "table": "event_study",
                "where": {"outcome": o},
                "below": {"rel_month": int(r.reference)},
            }
        return out

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
            persons = None  # the fewest participants and controls behind the leads (the frame's counts)
            if {"outcome", "rel_month", "n_treated", "n_control"} <= set(self.frame.columns):
                rows = self.frame[(self.frame["outcome"] == o) & (self.frame["rel_month"] < r.reference)]
                persons = tuple(
                    float(rows[c].min()) if len(rows) and rows[c].notna().all() else None
                    for c in ("n_treated", "n_control")
                )
            out.append(
                pretrend_warning(o, r.pretrend_wald, r.pretrend_df, r.pretrend_p, r.alpha, lead, persons)
            )
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
    skipped: Mapping[str, str] = field(default_factory=dict)

    def not_run(self) -> Mapping[str, str]:
        return self.skipped

    def rows(self) -> int:
        return len(self.result.to_frame())

    def persons(self) -> tuple[float, float]:
        """The fewest persons (treated, control) behind any of the monthly effects the cost-benefit uses (its
        ``inputs``; NaN when unknown): every number of the cost-benefit tables rests on them."""
        inputs = getattr(self.result, "inputs", None)
        if inputs is None or not {"n_treated", "n_control"} <= set(inputs.effects.columns):
            return float("nan"), float("nan")
        eff = inputs.effects
        return float(eff["n_treated"].min()), float(eff["n_control"].min())

    def report_tables(self) -> Mapping[str, pd.DataFrame]:
        """The cost-benefit tables, each with ``n_treated``/``n_control`` (:meth:`persons`; per insats type the
        type's own), which disclosure control checks them against."""
        res = self.result
        out = {
            "cost_benefit": res.to_frame(),
            "cost_benefit_summary": res.summary_frame(),
            "cost_benefit_sensitivity": res.sensitivity_table(),
        }
        if getattr(res, "before_after", None) is not None:
            out["cost_benefit_methods"] = res.comparison_frame()
        n_treated, n_control = self.persons()
        out = {k: v.assign(n_treated=n_treated, n_control=n_control) for k, v in out.items()}
        by_subgroup = res.subgroup_frame()
        if len(by_subgroup):
            out["cost_benefit_by_subgroup"] = by_subgroup
        return out

    def facts(self) -> Mapping[str, Any]:
        out: dict[str, Any] = {f"cost_{k}": v for k, v in self.result.assumptions().items()}
        if getattr(self.result, "before_after", None) is not None:
            cmp = self.result.comparison_frame()
            tot = cmp[(cmp["perspective"] == "public_finance") & (cmp["financier"] == "public_sector_total")]
            if len(tot):
                r = tot.iloc[0]
                where = {"perspective": "public_finance", "financier": "public_sector_total"}
                for k, col in (
                    ("counterfactual", "net_point_counterfactual"),
                    ("before_after", "net_point_before_after"),
                ):
                    out[f"net_public_sector_{k}_sek"] = round(float(r[col]))
                    out[f"basis:net_public_sector_{k}_sek"] = {
                        "table": "cost_benefit_methods",
                        "where": where,
                    }
        out["cost_per_participant_sek"] = round(float(self.result.cost_per_participant_sek))
        out["basis:cost_per_participant_sek"] = {"table": "cost_benefit_summary"}
        return out


@dataclass
class StageRecord:
    """Timing, size and memory of one stage in one run.

    ``cache``: ``"hit"`` (the result was reused from the stage cache), ``"stored"`` (computed and stored),
    ``""`` (not a cached stage, or the cache is off). ``peak_rss_mb``: the process's peak resident memory while the
    stage ran (Linux: VmHWM after resetting it at the start of the stage; elsewhere the peak so far)."""

    name: str
    seconds: float
    rows: int | None
    status: str  # ok | not_run | failed (optional stages only)
    note: str = ""
    cpu_seconds: float = 0.0
    peak_rss_mb: float | None = None
    cache: str = ""


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
    attrition: AttritionResult | None = None
    effects: EffectsResult | None = None
    contamination_share: ContaminationShareResult | None = None
    contamination: ContaminationResult | None = None
    event_study: EventStudyResult | None = None
    sensitivity: SensitivityResult | None = None
    cost_benefit: CostBenefitResult | None = None
    records: list[StageRecord] = field(default_factory=list)
    not_run: dict[str, str] = field(default_factory=dict)
    cache_keys: dict[str, str] = field(default_factory=dict)

    def get(self, key: str) -> StageResult | None:
        """The result of stage ``key`` (a ``pipeline.CHAIN`` key such as ``"match"``)."""
        return getattr(self, key)

    def table(self, name: str) -> Any:
        """A canonical input table as a DuckDB relation (after the read stage), or None."""
        return None if self.read is None else self.read.table(name)
