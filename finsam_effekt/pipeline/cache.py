"""The stage cache: the typed results of the expensive stages kept on disk and reused by a rerun.

A stage's cache key is the SHA-256 of

* the stage's name and the package's code (the SHA-256 of every source file, so a code change never reuses a
  result computed by other code);
* the values of the config keys the stage reads (``Stage.config_keys`` in ``pipeline.chain.CHAIN``; a test checks
  the declaration against what each stage function actually reads);
* for the read stage, the SHA-256 of every input file's content (remembered per path, size and modification
  time, so an unchanged national extract is not re-hashed at every run);
* the keys of the stages whose results it takes (so only stages whose inputs are all cached can be cached:
  balance, after the match, scans every candidate row of the pool; outcomes reads the panel for the matched
  sample; the contamination share builds and scores a second risk set, the former participants, over the whole
  pool; the stages after them — effects, the dilution correction of the contamination stage, event study,
  sensitivity, cost-benefit — take only these small tables and are recomputed).

So changing an input file invalidates every stage; changing ``matching.ratio`` invalidates the match and what
follows; changing ``outcomes.horizons`` invalidates the outcomes only; changing the estimators, subgroups,
cost-benefit parameters or the language invalidates nothing that is cached. Each entry is a folder
``<cache>/<stage>/<key>/`` with the result (large tables as Parquet, small ones pickled) and ``meta.json``; an entry is written to a temporary folder and renamed, so a crash never leaves a
half-written entry that a later run would trust.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import duckdb

from .. import __version__
from ..io import connect
from .results import CohortResult, OutcomeTables, PanelResult, ReadResult, StageResult, TableFile

#: Stages whose results are cached (the expensive ones); the others are recomputed at every run.
CACHED_STAGES: tuple[str, ...] = (
    "read", "link", "panel", "cohort", "match", "balance", "outcomes", "contamination_share"
)  # fmt: skip

_PACKAGE = Path(__file__).resolve().parents[1]


def code_hash() -> str:
    """SHA-256 over the package's source files (paths and contents), in a fixed order."""
    h = hashlib.sha256(__version__.encode())
    for p in sorted(_PACKAGE.rglob("*")):
        if p.suffix in (".py", ".html", ".yaml") and p.is_file():
            h.update(str(p.relative_to(_PACKAGE)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def config_values(cfg: Any, keys: Iterable[str]) -> dict[str, Any]:
    """The values of dotted config keys (``"matching"``, ``"eligibility.min_history_months"``) as JSON-able data."""
    data = cfg.to_dict()
    out = {}
    for key in keys:
        node: Any = data
        for part in key.split("."):
            node = node[part]
        out[key] = node
    return out


def digest(obj: Any) -> str:
    """SHA-256 of the canonical JSON of ``obj``."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CacheHit:
    """What a cache lookup found: the stage's result and when it was stored."""

    result: StageResult
    created: str


class StageCache:
    """The cache folder of one analysis (``config.cache.directory``)."""

    def __init__(self, directory: Path, engine: Any = None):
        self.directory = Path(directory)
        self.engine = engine
        self._code = code_hash()
        self._memo: dict | None = None

    # -- keys -----------------------------------------------------------------------------------------------------
    def input_hashes(self, paths: Iterable[Path]) -> dict[str, str]:
        """SHA-256 of each input file's content (a directory: of its files), remembered by path, size and mtime."""
        memo_path = self.directory / "input_hashes.json"
        try:
            memo = json.loads(memo_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            memo = {}
        out = {}
        for p in paths:
            p = Path(p)
            files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
            h = hashlib.sha256()
            for f in files:
                st = f.stat()
                fp = f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}"
                if fp not in memo:
                    memo[fp] = _file_sha256(f)
                h.update(memo[fp].encode())
            out[str(p)] = h.hexdigest()
        self._memo = memo  # written with the first stored entry: a failed run leaves no cache folder behind
        return out

    def key(self, stage: str, values: dict[str, Any], upstream: Iterable[str], inputs: dict[str, str]) -> str:
        """The cache key of one stage (module docstring)."""
        return digest({"stage": stage, "code": self._code, "config": values, "upstream": list(upstream),
                       "inputs": inputs})  # fmt: skip

    # -- entries --------------------------------------------------------------------------------------------------
    def entry(self, stage: str, key: str) -> Path:
        return self.directory / stage / key

    def load(self, stage: str, key: str, shared: dict[str, Any] | None = None) -> CacheHit | None:
        """The cached result of ``stage`` under ``key``, or None (missing or unreadable entries are misses).
        ``shared``: the earlier stages' tables the entry refers to by name (:meth:`save`)."""
        d = self.entry(stage, key)
        meta = d / "meta.json"
        if not meta.is_file():
            return None
        try:
            info = json.loads(meta.read_text(encoding="utf-8"))
            with open(d / "result.pkl", "rb") as f:
                res = _SharedUnpickler(f, shared or {}).load()
            res = self._reattach(res, d)
        except Exception:
            return None
        return CacheHit(res, info.get("created", ""))

    def save(
        self,
        stage: str,
        key: str,
        result: StageResult,
        values: dict[str, Any],
        shared: dict[str, Any] | None = None,
    ) -> StageResult:
        """Store ``result``; returns the result to go on with (for tables moved into the cache: pointing there).

        ``shared``: tables of earlier stages by name (:func:`shared_tables`). A result that holds one of them (the
        match keeps the cohort it matched) stores the name instead of a second copy, and :meth:`load` puts the
        earlier stage's table back: the stage's key contains that stage's key, so it is the same table."""
        final = self.entry(stage, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        if self._memo is not None:
            try:
                _atomic_write(self.directory / "input_hashes.json", json.dumps(self._memo, sort_keys=True))
            except OSError:
                pass  # a read-only memo only costs the re-hashing next time
        tmp = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=final.parent))
        try:
            stored = self._detach(result, tmp)
            with open(tmp / "result.pkl", "wb") as f:
                _SharedPickler(f, shared or {}).dump(stored)
            meta = {
                "stage": stage,
                "key": key,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "config": values,
            }
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1, default=str), encoding="utf-8")
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return self._reattach(stored, final, con=getattr(result, "con", None))

    # -- what cannot be pickled as it is --------------------------------------------------------------------------
    def _detach(self, result: StageResult, d: Path) -> StageResult:
        if isinstance(result, ReadResult):
            for name in sorted(result.tables):
                result.con.execute(
                    f"COPY (SELECT * FROM {name}) TO '{d / (name + '.parquet')}' (FORMAT parquet, COMPRESSION zstd)"
                )
            return replace(result, con=None)
        if isinstance(result, PanelResult) and isinstance(result.person_months, str | Path):
            # the panel was written to the run's work area: move it into the entry (no second copy)
            shutil.move(str(result.person_months), d / "person_months")
            return replace(result, person_months=Path("person_months"))
        if isinstance(result, CohortResult) and result.pre_period is not None:
            # the pre-period file was written to the run's work area: moved into the entry (no second copy)
            pre = result.pre_period
            shutil.move(str(pre.path), d / "pre_period.parquet")
            return replace(result, pre_period=replace(pre, path=Path("pre_period.parquet")))
        if isinstance(result, OutcomeTables) and isinstance(result.paths, TableFile):
            shutil.move(str(result.paths.path), d / "outcome_paths.parquet")  # as the pre-period file
            return replace(result, paths=TableFile(Path("outcome_paths.parquet")))
        if isinstance(result, PanelResult):  # an in-memory panel: stored as Parquet, read lazily from there
            import pyarrow as pa
            import pyarrow.parquet as pq

            tab = result.person_months
            if isinstance(tab, duckdb.DuckDBPyRelation):
                tab = tab.to_arrow_table()
            if not isinstance(tab, pa.Table):
                tab = pa.Table.from_pandas(tab, preserve_index=False)
            (d / "person_months").mkdir()
            pq.write_table(tab, d / "person_months" / "part-0000.parquet", compression="zstd")
            return replace(result, person_months=Path("person_months"))
        return result

    def _reattach(self, result: StageResult, d: Path, con: Any = None) -> StageResult:
        if isinstance(result, ReadResult) and result.con is None:
            if con is None:
                eng = self.engine
                con = connect(
                    memory_limit=getattr(eng, "memory_limit", None), threads=getattr(eng, "threads", None)
                )
                if getattr(eng, "temp_directory", None):
                    con.execute(f"SET temp_directory = '{eng.temp_directory}'")
                for name in sorted(result.tables):
                    con.execute(
                        f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet('{d / (name + '.parquet')}')"
                    )
            return replace(result, con=con)
        if isinstance(result, PanelResult) and isinstance(result.person_months, Path):
            p = result.person_months
            return replace(result, person_months=p if p.is_absolute() else d / p)
        if isinstance(result, CohortResult) and result.pre_period is not None:
            p = result.pre_period.path
            return replace(
                result, pre_period=replace(result.pre_period, path=p if p.is_absolute() else d / p)
            )
        if isinstance(result, OutcomeTables) and isinstance(result.paths, TableFile):
            p = result.paths.path
            return replace(result, paths=TableFile(p if p.is_absolute() else d / p))
        return result


def shared_tables(results: Any, stages: Iterable[str]) -> dict[str, Any]:
    """The DataFrames held by the results of ``stages`` (``"<stage>.<field>"`` → table): what a later stage's
    cache entry refers to instead of storing again (:meth:`StageCache.save`)."""
    import pandas as pd

    out = {}
    for name in stages:
        res = getattr(results, name, None)
        for field in getattr(res, "__dataclass_fields__", {}):
            value = getattr(res, field, None)
            if isinstance(value, pd.DataFrame):
                out[f"{name}.{field}"] = value
    return out


class _SharedPickler(pickle.Pickler):
    """Pickles a stage result, writing the tables of ``shared`` (name → table) as references by name."""

    def __init__(self, f, shared: dict[str, Any]):
        super().__init__(f, protocol=pickle.HIGHEST_PROTOCOL)
        self._names = {id(v): k for k, v in shared.items()}

    def persistent_id(self, obj: Any) -> str | None:
        return self._names.get(id(obj))


class _SharedUnpickler(pickle.Unpickler):
    """Unpickles a stage result, putting the named tables of ``shared`` back (a name not given: a miss)."""

    def __init__(self, f, shared: dict[str, Any]):
        super().__init__(f)
        self._shared = shared

    def persistent_load(self, pid: str) -> Any:
        if pid not in self._shared:
            raise pickle.UnpicklingError(f"the cache entry refers to {pid}, which this run does not have")
        return self._shared[pid]


def _file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
