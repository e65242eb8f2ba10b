"""The person-sorted stream (panel/stream.py) against the engine's join (panel.history_features), and its guards."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from finsam_effekt import months, panel
from finsam_effekt.panel.stream import (
    NotPersonSorted,
    history_features_stream,
    panel_batches,
    row_groups,
    support_month_counts,
)
from finsam_effekt.schema import HISTORY_COUNT_COLUMNS, PANEL_COLUMNS, SPELL_GROUPS
from finsam_effekt.tables import compact, narrow_counts, read_positioned

THRESHOLD = 10_000.0


def random_panel(seed: int, persons: int = 60, exact: bool = True) -> pd.DataFrame:
    """A sparse panel over 2019-01..2021-12: quarter days and whole kronor (``exact``, so every order of summation
    gives the same double), or kronor with öre; ties between groups' kronor on purpose (x.5 rounds up)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(persons):
        ms = np.sort(rng.choice(np.arange(months.to_index("2019-01"), months.to_index("2021-12") + 1),
                                size=rng.integers(0, 30), replace=False))  # fmt: skip
        for m in ms:
            r = {"person_id": f"P{i:03d}", "month": months.from_index(int(m))}
            ps = 0
            for g in SPELL_GROUPS:
                on = rng.random() < 0.25
                r[f"days_{g}"] = float(rng.integers(1, 124) / 4) if on else 0.0
                sek = float(rng.choice([1000.0, 1000.5, 2000.0, rng.integers(1, 30_000)])) if on else 0.0
                r[f"sek_{g}"] = sek if exact or not on else sek + float(rng.integers(1, 100)) / 100
                ps |= on
            sa = rng.random() < 0.15
            r["social_assistance_sek"] = float(rng.choice([1000.0, 2000.0, 5000.0])) if sa else 0.0
            r["earnings_sek"] = float(rng.choice([0.0, 5000.0, THRESHOLD, 25_000.0, rng.integers(0, 40_000)]))
            if not exact:
                r["earnings_sek"] += float(rng.integers(0, 100)) / 100
            r["benefit_sek"] = sum(r[f"sek_{g}"] for g in SPELL_GROUPS)
            r["public_support"] = int(ps or sa)
            r["self_support"] = int(not (ps or sa) and r["earnings_sek"] >= THRESHOLD)
            rows.append(r)
    return pd.DataFrame(rows, columns=list(PANEL_COLUMNS))


def random_pairs(seed: int, persons: int = 60, n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(seed + 1)
    # persons P000.. (some without panel rows), plus two that exist nowhere; months from before the data on
    ids = np.array([f"P{i:03d}" for i in range(persons)] + ["Q001", "Q002"], dtype=object)
    u = rng.integers(months.to_index("2018-11"), months.to_index("2022-01") + 1, size=n)
    return pd.DataFrame({"person_id": rng.choice(ids, size=n), "ref_month": months.from_index(u)})


def population(persons: int = 60) -> pd.DataFrame:
    ids = [f"P{i:03d}" for i in range(persons - 3)]  # the last three persons are not in the population
    return pd.DataFrame(
        {
            "person_id": ids,
            "sex": ["F" if i % 2 else "M" for i in range(len(ids))],
            "birth_year": [1960 + i % 40 for i in range(len(ids))],
            "education": [["low", "mid", "high"][i % 3] for i in range(len(ids))],
            "kommun": [f"{1000 + i % 4}" for i in range(len(ids))],
            "birth_region": [["sweden", "nordic", "other"][i % 3] for i in range(len(ids))],
        }
    )


KOMMUN_FORBUND = pd.DataFrame({"kommun": ["1000", "1001", "1002"], "forbund_id": ["F1", "F1", "F2"]})


def shuffled(pm: pd.DataFrame, d) -> str:
    """The panel as a Parquet file in random row order: the stream refuses it and the readers use the join."""
    f = d / "shuffled_panel.parquet"
    pq.write_table(pa.Table.from_pandas(pm.sample(frac=1, random_state=4), preserve_index=False), f)
    with pytest.raises(NotPersonSorted):
        list(panel_batches(f, pd.Index(sorted(pm["person_id"].unique())), 0, 10**6, ["public_support"]))
    return str(f)


def stream(pairs: pd.DataFrame, pm, **kw) -> pd.DataFrame:
    person = pd.Categorical(pairs["person_id"].astype(object))
    u = months.to_index(pairs["ref_month"])
    return history_features_stream(
        person, u, pm, population(), KOMMUN_FORBUND, self_support_threshold=THRESHOLD, **kw
    )


def engine(pairs: pd.DataFrame, pm, **kw) -> pd.DataFrame:
    out = panel.history_features(
        pairs, pm, population(), KOMMUN_FORBUND, self_support_threshold=THRESHOLD, **kw
    )
    return narrow_counts(compact(out.drop(columns=["person_id", "ref_month"])), HISTORY_COUNT_COLUMNS)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("kw", [{}, {"pre_period": True}, {"work_lookback": 36, "pre_period": True}])
def test_stream_equals_the_join_exactly_on_exact_amounts(seed, kw):
    pm, pairs = random_panel(seed), random_pairs(seed)
    a, b = stream(pairs, pm, **kw), engine(pairs, pm, **kw)
    assert list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_stream_equals_the_join_on_amounts_with_ore():
    pm, pairs = random_panel(5, exact=False), random_pairs(5)
    a, b = stream(pairs, pm, pre_period=True), engine(pairs, pm, pre_period=True)
    # sums of kronor with öre in another order: equal to the last bits; float32 only where exact in both
    pd.testing.assert_frame_equal(a, b, check_dtype=False, rtol=1e-12, atol=1e-9)


def test_stream_reads_row_groups_and_files_like_one_table(tmp_path):
    """Persons cut by row-group boundaries (carried into the next group) and a panel in two files (persons
    hash-partitioned, each file sorted) give the same features as the in-memory table."""
    pm, pairs = random_panel(7), random_pairs(7)
    pm = pm.sort_values(["person_id", "month"])
    odd = pm["person_id"].str[-1].astype(int) % 2 == 1
    d = tmp_path / "person_months"
    d.mkdir()
    pq.write_table(
        pa.Table.from_pandas(pm[odd], preserve_index=False), d / "part-0000.parquet", row_group_size=7
    )
    pq.write_table(
        pa.Table.from_pandas(pm[~odd], preserve_index=False), d / "part-0001.parquet", row_group_size=5
    )
    assert row_groups(d) == -(-int(odd.sum()) // 7) + -(-int((~odd).sum()) // 5)
    steps = []
    a = stream(pairs, d, pre_period=True, progress=lambda: steps.append(1))
    assert len(steps) == row_groups(d)
    pd.testing.assert_frame_equal(a, stream(pairs, pm, pre_period=True), check_exact=True)


def test_the_pre_period_written_to_a_file_equals_the_columns(tmp_path):
    """``pre_period=path``: the same values (in pair order after ``tables.read_positioned``) as the columns, and
    the other columns unchanged; a panel the stream refuses leaves no file behind."""
    pm, pairs = random_panel(6), random_pairs(6)
    pm = pm.sort_values(["person_id", "month"])
    d = tmp_path / "person_months"
    d.mkdir()
    pq.write_table(pa.Table.from_pandas(pm, preserve_index=False), d / "part-0000.parquet", row_group_size=9)
    f = tmp_path / "pre.parquet"
    cols = stream(pairs, d, pre_period=True)
    rest = stream(pairs, d, pre_period=f)
    pre = panel.pre_period_columns()
    pd.testing.assert_frame_equal(rest, cols.drop(columns=pre), check_exact=True)
    assert pq.read_metadata(f).num_row_groups > 1  # written batch by batch
    pd.testing.assert_frame_equal(read_positioned(f), cols[pre], check_exact=True)
    g = tmp_path / "refused.parquet"
    with pytest.raises(NotPersonSorted):
        stream(pairs, shuffled(pm, tmp_path), pre_period=g)
    assert not g.exists()


def test_a_panel_not_in_person_order_is_refused_before_any_result(tmp_path):
    pm, pairs = random_panel(8), random_pairs(8)
    f = tmp_path / "shuffled.parquet"
    pq.write_table(pa.Table.from_pandas(pm.sample(frac=1, random_state=1), preserve_index=False), f)
    with pytest.raises(NotPersonSorted):
        stream(pairs, f)
    # a person in two files: the batch would see half a history
    s = pm.sort_values(["person_id", "month"])
    d = tmp_path / "split"
    d.mkdir()
    first = s["person_id"] == "P001"
    pq.write_table(pa.Table.from_pandas(s[first].iloc[:3], preserve_index=False), d / "a.parquet")
    pq.write_table(pa.Table.from_pandas(pd.concat([s[first].iloc[3:], s[~first]]), preserve_index=False),
                   d / "b.parquet")  # fmt: skip
    assert first.sum() > 3
    with pytest.raises(NotPersonSorted):
        list(panel_batches(d, pd.Index(sorted(s["person_id"].unique())), 0, 10**6, ["public_support"]))


def test_support_month_counts_by_hand():
    pm = random_panel(9)
    ids = np.array(sorted({f"P{i:03d}" for i in range(60)} | {"Q001"}), dtype=object)
    ref = months.to_index(pd.Series(["2019-02", "2020-01", "2020-07", "2021-12", "2022-01"]))
    counts = support_month_counts(pm, pd.Index(ids), ref, 12)
    on = pm[pm["public_support"] == 1]
    m = months.to_index(on["month"])
    for i, pid in enumerate(ids):
        mine = m[(on["person_id"] == pid).to_numpy()]
        expected = [int(((mine >= u - 12) & (mine < u)).sum()) for u in ref]
        assert counts[i].tolist() == expected, pid
    assert counts.max() > 0 and counts[ids.tolist().index("Q001")].max() == 0


def test_build_cohort_falls_back_to_the_join_for_an_unsorted_panel(tmp_path):
    """The cohort from a shuffled Parquet panel (stream refused, engine path) equals the one from the sorted
    panel (stream), column for column and type for type."""
    from finsam_effekt.cohort import build_cohort

    pm = random_panel(11)
    pop = population()
    pop["immigration_date"] = None
    parts = pd.DataFrame(
        {"person_id": ["P001", "P002", "P005"], "ref_month": ["2020-06", "2021-02", "2020-06"]}
    )
    sorted_f, shuffled_f = tmp_path / "sorted.parquet", tmp_path / "shuffled.parquet"
    pq.write_table(
        pa.Table.from_pandas(pm.sort_values(["person_id", "month"]), preserve_index=False), sorted_f
    )
    pq.write_table(pa.Table.from_pandas(pm.sample(frac=1, random_state=2), preserve_index=False), shuffled_f)
    kw = dict(window=("2020-01", "2021-06"), age_range=(18, 64), eligibility="recent_public_support",
              lookback_months=12, min_history_months=0, self_support_threshold=THRESHOLD)  # fmt: skip
    a = build_cohort(parts, sorted_f, pop, KOMMUN_FORBUND, **kw)
    b = build_cohort(parts, shuffled_f, pop, KOMMUN_FORBUND, **kw)
    assert (a["treated"] == 0).sum() > 50
    pd.testing.assert_frame_equal(a, b, check_exact=True)


@pytest.mark.parametrize("exact", [True, False])
def test_horizon_outcomes_stream_equals_the_join(tmp_path, exact):
    """horizon_outcomes from the stream (a panel in person order) and from the join (the same panel shuffled):
    the same columns and values, censoring by death/emigration, end of data, an outcome's own end and the start
    of data included."""
    pm, pairs = random_panel(12, exact=exact), random_pairs(12)
    pop = population()
    pop["death_date"] = [("2020-05-17" if i % 7 == 0 else None) for i in range(len(pop))]
    pop["emigration_date"] = [("2021-03-01" if i % 5 == 0 else None) for i in range(len(pop))]
    kw = dict(end_month="2021-10", start_month="2019-01", outcome_end={"social_assistance_sek": "2021-06"})
    a = panel.horizon_outcomes(pairs, (1, 3, 6, 12), pm, pop, **kw)
    b = panel.horizon_outcomes(pairs, (1, 3, 6, 12), shuffled(pm, tmp_path), pop, **kw)
    assert a.isna().any().any() and (a.select_dtypes("number").fillna(0) != 0).any().any()
    if exact:
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    else:
        pd.testing.assert_frame_equal(a, b, rtol=1e-12, atol=1e-9)
    arrow = panel.horizon_outcomes(pairs, (1, 3), pm, pop, output="arrow", **kw)
    assert arrow.column("public_support_m3").null_count == int(a["public_support_m3"].isna().sum())


@pytest.mark.parametrize("start", [None, "2019-03"])
def test_outcome_paths_stream_equals_the_join(tmp_path, start):
    """outcome_paths from the stream and from the join (shuffled panel): the same rows, months, values and
    censoring."""
    pm, pairs = random_panel(13), random_pairs(13, n=120)
    pairs["weights"] = np.arange(len(pairs), dtype=float)
    pop = population()
    pop["death_date"] = [("2020-05-17" if i % 7 == 0 else None) for i in range(len(pop))]
    pop["emigration_date"] = [("2021-03-01" if i % 5 == 0 else None) for i in range(len(pop))]
    kw = dict(end_month="2021-10", start_month=start, outcome_end={"earnings_sek": "2021-06"})
    a = panel.outcome_paths(pairs, (-6, 12), pm, pop, **kw)
    b = panel.outcome_paths(pairs, (-6, 12), shuffled(pm, tmp_path), pop, **kw)
    assert a["censored"].any() and a["earnings_sek"].isna().sum() > a["censored"].sum()
    pd.testing.assert_frame_equal(a, b, check_exact=True)
