"""A data window per register (issue 17 item 2): each register's last complete month is detected (or set), an
outcome is missing — not zero — after the first end among its registers, and a configured end past the data is an
error."""

from __future__ import annotations

import shutil

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

from finsam_effekt.config import load_config
from finsam_effekt.errors import InputError
from finsam_effekt.io import last_complete_months, register_ends
from finsam_effekt.pipeline import run_until
from finsam_effekt.schema import outcome_end_months


def test_last_complete_month_skips_a_partly_delivered_month():
    con = duckdb.connect()
    months = [f"2021-{m:02d}" for m in range(1, 13)]
    rows = [(f"p{i}", m, 100.0) for m in months[:-1] for i in range(40)] + [
        (f"p{i}", months[-1], 1.0) for i in range(5)
    ]
    con.register("social_assistance", pd.DataFrame(rows, columns=["person_id", "month", "amount_sek"]))
    con.register("earnings", pd.DataFrame(rows, columns=["person_id", "month", "earnings_sek"]))
    got = last_complete_months(con, {"social_assistance", "earnings"})
    assert got == {"social_assistance": "2021-11", "earnings": "2021-11"}  # 5 rows vs a median of 40: partial


def test_register_ends_configured_and_data_end_rules():
    detected = {"benefit_spells": "2023-12", "social_assistance": "2022-06", "earnings": "2023-12"}
    assert register_ends(detected, {}, None) == detected
    assert register_ends(detected, {"earnings": "2023-06"}, None)["earnings"] == "2023-06"
    assert register_ends(detected, {}, "2022-03") == dict.fromkeys(detected, "2022-03")
    with pytest.raises(
        InputError,
        match=r"outcomes.data_end 2023-01 is after the last complete month of social_assistance \(2022-06\)",
    ):
        register_ends(detected, {}, "2023-01")
    with pytest.raises(
        InputError, match=r"register_end: earnings is set to 2024-03, but its data end at 2023-12"
    ):
        register_ends(detected, {"earnings": "2024-03"}, None)
    with pytest.raises(InputError, match=r"names \['earning'\], which are not monthly registers"):
        register_ends(detected, {"earning": "2023-01"}, None)
    ends = outcome_end_months(detected)
    assert ends["public_support"] == ends["social_assistance_sek"] == ends["self_support"] == "2022-06"
    assert ends["earnings_sek"] == ends["days_sickness"] == "2023-12"


@pytest.fixture(scope="module")
def lagging_world(tmp_path_factory, medium_world):
    """The medium world (data to 2021-12) with social assistance delivered only up to 2021-06."""
    d = tmp_path_factory.mktemp("lagging")
    for f in medium_world.path.iterdir():
        if f.is_file():
            shutil.copy2(f, d / f.name)
    sa = pd.read_parquet(d / "social_assistance.parquet")
    sa[sa["month"].astype(str) <= "2021-06"].to_parquet(d / "social_assistance.parquet", index=False)
    return d


def _cfg(root, world, **outcomes):
    path = root / f"c{len(list(root.glob('c*.yaml')))}.yaml"
    data = {
        "inputs": str(world / "mapping.yaml"),
        "window": {"start": "2019-06", "end": "2021-06"},
        "outcomes": {"names": ["public_support", "earnings_sek", "social_assistance_sek"], **outcomes},
        "cost_benefit": {"enabled": False},
        "cache": {"enabled": False},
        "subgroups": [],
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return load_config(path)


@pytest.mark.slow
def test_outcomes_after_a_registers_end_are_missing_not_zero(tmp_path, lagging_world):
    res = run_until(_cfg(tmp_path, lagging_world), "outcomes")
    assert dict(res.read.register_ends) == {"benefit_spells": "2021-12", "social_assistance": "2021-06",
                                            "earnings": "2021-12"}  # fmt: skip
    ho = res.outcomes.outcomes
    u = pd.PeriodIndex(ho["ref_month"], freq="M")
    between = []  # earnings at horizons between the two registers' ends
    for k in (3, 6, 12):
        after_sa = np.asarray((u + k) > pd.Period("2021-06", "M"))
        before_end = np.asarray((u + k) <= pd.Period("2021-12", "M"))
        assert after_sa.any()
        # built from social assistance: missing after its end; earnings: still observed up to its own end
        assert ho.loc[after_sa, f"public_support_m{k}"].isna().all()
        assert ho.loc[after_sa, f"social_assistance_sek_m{k}"].isna().all()
        between.append(ho.loc[after_sa & before_end, f"earnings_sek_m{k}"])
    between = pd.concat(between)
    assert len(between) >= 20 and between.notna().mean() > 0.9
    paths = res.outcomes.path_table()
    late = paths["month"].astype(str) > "2021-06"
    assert paths.loc[late, "social_assistance_sek"].isna().all()
    assert (
        paths.loc[late & (paths["month"].astype(str) <= "2021-12") & ~paths["censored"], "earnings_sek"]
        .notna()
        .all()
    )


@pytest.mark.slow
def test_data_end_or_window_past_a_register_is_an_error(tmp_path, lagging_world):
    with pytest.raises(
        InputError,
        match=r"outcomes.data_end 2021-09 is after the last complete month of social_assistance \(2021-06\)",
    ):
        run_until(_cfg(tmp_path, lagging_world, data_end="2021-09"), "read")
    path = tmp_path / "late_window.yaml"
    data = {
        "inputs": str(lagging_world / "mapping.yaml"),
        "window": {"start": "2019-01", "end": "2021-09"},
        "cache": {"enabled": False},
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(
        InputError,
        match=r"window.end 2021-09 is after the last complete month of social_assistance \(2021-06\)",
    ):
        run_until(load_config(path), "link")


@pytest.mark.slow
def test_an_outcome_absent_from_the_data_is_reported_absent_not_as_a_zero_effect(tmp_path, small_world):
    d = tmp_path / "no_disability"
    d.mkdir()
    for f in small_world.path.iterdir():
        if f.is_file():
            shutil.copy2(f, d / f.name)
    sp = pd.read_parquet(d / "benefit_spells.parquet")
    sp[~sp["benefit"].isin(["SA", "AE"])].to_parquet(d / "benefit_spells.parquet", index=False)
    cfg = _cfg(tmp_path, d)
    cfg = cfg.model_copy(
        update={
            "outcomes": cfg.outcomes.model_copy(
                update={"names": ["public_support", "days_disability", "sek_disability"]}
            )
        }
    )
    res = run_until(cfg, "effects")
    assert dict(res.read.absent_outcomes) == {
        "days_disability": "benefit_spells has no AE/SA spells",
        "sek_disability": "benefit_spells has no AE/SA spells",
    }
    assert set(res.effects.frame["outcome"]) == {"public_support"}  # no precise zero effect on them
    assert res.not_run["effects: days_disability"].startswith(
        "absent from the data (benefit_spells has no AE/SA"
    )
