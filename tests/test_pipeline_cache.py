"""The stage cache: every config key a stage reads is declared (the cache key rests on it), a rerun reuses every
cached stage, and changing an input or a key invalidates exactly the stages after it — with the same results."""

from __future__ import annotations

import ast
import inspect
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from finsam_effekt.config import load_config
from finsam_effekt.panel import pre_period_columns, pre_period_outcomes
from finsam_effekt.pipeline import CHAIN, ColumnFile, run, run_until, stages
from finsam_effekt.pipeline.cache import CACHED_STAGES

#: Config attributes that change how a stage computes, not what (not part of any cache key).
NOT_RESULTS = {"engine", "cache", "config_hash", "to_dict"}
#: Properties of the config that stand for a key of the YAML.
ALIASES = {"input_spec": "inputs", "cost_benefit_parameters": "cost_benefit"}


def _cfg_reads(fn) -> set[str]:
    """The dotted ``cfg.a.b`` chains a stage function reads, following calls to other functions of its module."""
    module = ast.parse(inspect.getsource(stages))
    funcs = {n.name: n for n in module.body if isinstance(n, ast.FunctionDef)}
    seen, todo, chains = set(), [fn.__name__], set()
    while todo:
        name = todo.pop()
        if name in seen or name not in funcs:
            continue
        seen.add(name)
        node = funcs[name]
        inner = set()
        for n in ast.walk(node):
            for child in ast.iter_child_nodes(n):
                if isinstance(child, ast.Attribute) and isinstance(n, ast.Attribute) and n.value is child:
                    inner.add(id(child))
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name):
                todo.append(n.func.id)
        for n in ast.walk(node):
            if isinstance(n, ast.Attribute) and id(n) not in inner:
                parts, base = [], n
                while isinstance(base, ast.Attribute):
                    parts.append(base.attr)
                    base = base.value
                if isinstance(base, ast.Name) and base.id == "cfg":
                    parts.reverse()
                    parts[0] = ALIASES.get(parts[0], parts[0])
                    if parts[0] not in NOT_RESULTS:
                        chains.add(".".join(parts))
    return chains


@pytest.mark.parametrize("st", CHAIN, ids=[s.key for s in CHAIN])
def test_every_config_key_a_stage_reads_is_declared(st):
    declared = st.config_keys
    undeclared = {c for c in _cfg_reads(st.run) if not any(c == k or c.startswith(k + ".") for k in declared)}
    assert not undeclared, f"{st.key} reads {sorted(undeclared)}; declare them in Stage.config_keys"


@pytest.fixture(scope="module")
def world_copy(tmp_path_factory, small_world):
    """The small world copied (one test changes an input file)."""
    d = tmp_path_factory.mktemp("cache_world")
    for f in small_world.path.iterdir():
        if f.is_file():
            shutil.copy2(f, d / f.name)
    return d


def _config(root: Path, world: Path, **changes) -> Path:
    data = {
        "inputs": str(world / "mapping.yaml"),
        "window": {"start": "2019-01", "end": "2020-06"},
        "outcomes": {"names": ["public_support", "self_support"], "path_window": 6},
        "cost_benefit": {"enabled": False},
        "subgroups": ["sex"],
        "cache": {"directory": str(root / "cache")},
    }
    for key, value in changes.items():
        node = data
        *head, last = key.split("__")
        for h in head:
            node = node.setdefault(h, {})
        node[last] = value
    path = root / f"config_{len(list(root.glob('config_*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _states(res) -> dict[str, str]:
    return {
        r.name: r.cache for r in res.records if r.name in {s.label for s in CHAIN if s.key in CACHED_STAGES}
    }


@pytest.mark.slow
def test_cache_reuses_and_invalidates_exactly_the_stages_after_a_change(tmp_path, world_copy):
    stored = {
        "read & validate": "stored",
        "link": "stored",
        "panel": "stored",
        "cohort": "stored",
        "match": "stored",
    }

    def states(**changes):
        return _states(
            run_until(load_config(_config(tmp_path, world_copy, **changes)), "match", use_cache=True)
        )

    def only(*changed):
        return {k: ("stored" if k in changed else "hit") for k in stored}

    assert states() == stored
    assert states() == only()  # a rerun reuses every cached stage
    assert states(estimators=["weighted_mean_diff"], subgroups=[], language="en") == only()
    assert states(matching__ratio=2) == only("match")
    assert states(eligibility__candidate_sample_rate=0.5) == only("cohort", "match")
    assert states(window__end="2020-03") == only("link", "cohort", "match")
    assert states(outcomes__self_support_threshold_sek=9000.0) == only("panel", "cohort", "match")
    earnings = world_copy / "earnings.parquet"
    df = pd.read_parquet(earnings)
    df.loc[df.index[0], "earnings_sek"] += 1.0  # one changed value in one input file
    df.to_parquet(earnings, index=False)
    assert states() == stored


@pytest.mark.slow
def test_outcomes_and_the_contamination_share_are_kept_apart_from_the_estimators(tmp_path, world_copy):
    """A rerun that changes only the estimators takes outcomes and the contamination share (former participants
    scored over the whole pool) from the cache as well; changing a key of the outcomes invalidates the outcomes
    only; the dilution correction, which needs the effects, is computed at every run."""
    labels = [
        "read & validate",
        "link",
        "panel",
        "cohort",
        "match",
        "balance",
        "outcomes",
        "contamination share",
    ]

    def states(**changes):
        res = run_until(
            load_config(_config(tmp_path, world_copy, **changes)), "contamination", use_cache=True
        )
        assert res.contamination is not None and res.records[-1].cache == ""
        return _states(res), res

    def only(*changed):
        return {k: ("stored" if k in changed else "hit") for k in labels}

    first, res = states()
    assert first == only(*labels)
    assert res.contamination_share.estimate.n_anonymous > 0  # the small world has anonymous registrations
    assert states()[0] == only()
    st, res = states(estimators=["weighted_mean_diff"], subgroups=[], language="en")
    assert st == only()
    assert set(res.contamination.frame["estimator"]) == {"weighted_mean_diff"}  # the correction is recomputed
    assert states(outcomes__horizons=[3, 6])[0] == only("outcomes")
    assert states(later_treated="censor")[0] == only(
        "cohort", "match", "balance", "outcomes", "contamination share"
    )
    assert states(matching__ratio=2)[0] == only("match", "balance", "outcomes", "contamination share")
    assert states(eligibility__lookback_months=6)[0] == only(
        "cohort", "match", "balance", "outcomes", "contamination share"
    )


@pytest.mark.slow
def test_cached_results_equal_computed_results(tmp_path, small_world):
    cfg = load_config(_config(tmp_path, small_world.path))
    fresh = run_until(cfg, "contamination")
    run_until(cfg, "contamination", use_cache=True)
    cached = run_until(cfg, "contamination", use_cache=True)
    assert {r.cache for r in cached.records if r.cache} == {"hit"}
    assert {r.name: r.cache for r in cached.records if r.cache} == {
        s.label: "hit" for s in CHAIN if s.key in CACHED_STAGES
    }
    pd.testing.assert_frame_equal(cached.balance.table.to_frame(), fresh.balance.table.to_frame())
    # the pre-period path waits on disk (in the cache entry once stored), not in the cohort held in memory
    pre_cols = pre_period_columns()
    assert not set(pre_cols) & set(cached.cohort.cohort.columns)
    assert (tmp_path / "cache") in cached.cohort.pre_period.path.parents
    pd.testing.assert_frame_equal(cached.cohort.pre_period.load(), fresh.cohort.pre_period.load())
    # … and equals the engine's join of the cohort's pairs with the panel
    keys = cached.cohort.cohort[["person_id", "ref_month"]].astype(str)
    joined = pre_period_outcomes(keys, cached.panel.person_months, output="pandas")[pre_cols]
    pd.testing.assert_frame_equal(
        cached.cohort.pre_period.load().astype(float), joined.astype(float), check_exact=False, rtol=1e-12
    )
    pd.testing.assert_frame_equal(cached.match.matched, fresh.match.matched)
    for name in ("outcomes", "path_summary"):
        pd.testing.assert_frame_equal(getattr(cached.outcomes, name), getattr(fresh.outcomes, name))
    # the paths wait on disk too, moved into the cache entry, and come back as they were written
    assert (tmp_path / "cache") in cached.outcomes.paths.path.parents
    pd.testing.assert_frame_equal(cached.outcomes.path_table(), fresh.outcomes.path_table(), check_exact=True)
    some = cached.outcomes.path_table(["public_support"])
    assert "public_support" in some and "earnings_sek" not in some and "person_id" in some
    pd.testing.assert_frame_equal(cached.effects.frame, fresh.effects.frame)
    a, b = cached.contamination_share.estimate, fresh.contamination_share.estimate
    assert a.share_matched > 0 and a.share_matched_before > 0  # the former participants were scored
    for f in (
        "share_matched",
        "share_matched_now",
        "share_matched_before",
        "share_candidates",
        "n_anonymous",
    ):
        assert getattr(a, f) == getattr(b, f), f
    np.testing.assert_array_equal(a.pi, b.pi)
    pd.testing.assert_frame_equal(a.by_forbund, b.by_forbund)
    pd.testing.assert_frame_equal(cached.contamination.frame, fresh.contamination.frame)


@pytest.mark.slow
def test_a_run_from_the_cache_writes_the_same_csvs_as_a_run_without_it(tmp_path, small_world):
    """Byte for byte: every CSV of a rerun that takes read … contamination share from the stage cache equals the
    CSV of a run with the cache off."""
    cfg = load_config(_config(tmp_path, small_world.path))
    off = cfg.model_copy(update={"cache": cfg.cache.model_copy(update={"enabled": False})})
    plain = run(off, tmp_path / "plain")
    run(cfg, tmp_path / "store")
    again = run(cfg, tmp_path / "again")
    assert {r.name for r in again.stages if r.cache == "hit"} == {
        s.label for s in CHAIN if s.key in CACHED_STAGES
    }
    assert not any(r.cache for r in plain.stages)
    csvs = sorted(p.relative_to(plain.out) for p in plain.out.rglob("*.csv"))
    assert Path("contamination.csv") in csvs and Path("effects.csv") in csvs
    assert csvs == sorted(p.relative_to(again.out) for p in again.out.rglob("*.csv"))
    for name in csvs:
        assert (again.out / name).read_bytes() == (plain.out / name).read_bytes(), name


def test_an_entry_holding_an_earlier_stage_table_stores_its_name_not_a_copy(tmp_path):
    """The match keeps the cohort it matched: its entry names the cohort stage's table instead of a second copy
    (at national scale 10⁷ rows), and loading puts that very table back; without it the entry is a miss."""
    from finsam_effekt.pipeline.cache import StageCache
    from finsam_effekt.pipeline.results import CohortResult

    cohort = pd.DataFrame({"x": np.arange(200_000, dtype=np.int64)})
    cache = StageCache(tmp_path)
    shared = {"cohort.cohort": cohort}
    cache.save("match", "k1", CohortResult(cohort), {}, shared)  # any result holding the table
    cache.save("alone", "k2", CohortResult(cohort), {})
    size = {
        k: (tmp_path / k / key / "result.pkl").stat().st_size for k, key in (("match", "k1"), ("alone", "k2"))
    }
    assert size["match"] < 2_000 < 1_600_000 < size["alone"]
    hit = cache.load("match", "k1", shared)
    assert hit is not None and hit.result.cohort is cohort
    assert cache.load("match", "k1") is None  # the named table is not there: recompute, never guess


def test_a_column_file_reads_its_rows_and_restricts_them(tmp_path):
    """``ColumnFile``: every column, or the rows ``take`` selected (composed), in compact types (float32 where
    exact); a file written in pieces (``_row`` = each row's position) comes back in position order."""
    path = tmp_path / "cols.parquet"
    pd.DataFrame({"a": np.arange(6.0), "b": np.arange(6, dtype=np.int32) * 10}).to_parquet(path)
    f = ColumnFile(path)
    assert f.columns == ["a", "b"]
    pd.testing.assert_frame_equal(f.load(["b"]), pd.DataFrame({"b": np.arange(6, dtype=np.int32) * 10}))
    g = f.take(np.array([1, 3, 4])).take(np.array([0, 2]))
    expected = pd.DataFrame({"a": np.array([1.0, 4.0], np.float32), "b": np.array([10, 40], np.int32)})
    pd.testing.assert_frame_equal(g.load(), expected)

    pieces = tmp_path / "pieces.parquet"
    pd.DataFrame({"_row": [2, 0, 3, 1], "x": [0.1, 7.0, 0.5, 2.0]}).to_parquet(pieces)
    h = ColumnFile(pieces)
    assert h.columns == ["x"]
    pd.testing.assert_frame_equal(h.load(), pd.DataFrame({"x": [7.0, 2.0, 0.1, 0.5]}))  # 0.1: float64 kept
    pd.testing.assert_frame_equal(h.take(np.array([1, 3])).load(), pd.DataFrame({"x": [2.0, 0.5]}))
    # loaders: as stored, with each value's row (the rows of a restriction renumbered among themselves)
    values, rows = h.loaders(["x"])["x"]()
    np.testing.assert_array_equal(values, [0.1, 7.0, 0.5, 2.0])
    np.testing.assert_array_equal(rows, [2, 0, 3, 1])
    values, rows = h.take(np.array([1, 3])).loaders(["x"])["x"]()
    np.testing.assert_array_equal(values, [0.5, 2.0])
    np.testing.assert_array_equal(rows, [1, 0])
    np.testing.assert_array_equal(f.loaders(["b"])["b"](), np.arange(6) * 10)  # no position column: row order
