"""estimate_effects refuses a sample it cannot estimate from, with a message a researcher can act on: no rows (a
merge on the wrong keys), no treated or no controls, nothing estimable at all; and regression adjustment without
covariates is never a silent copy of the weighted mean difference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finsam_effekt.errors import InputError
from finsam_effekt.estimation import estimate_effects


def _matched(n: int = 60, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    d = pd.DataFrame(
        {
            "person_id": [f"p{i}" for i in range(n)],
            "ref_month": "2020-01",
            "treated": np.tile([1, 0], n // 2),
            "weights": 1.0,
            "subclass": np.repeat(np.arange(n // 2), 2).astype(str),
            "age": rng.integers(20, 60, size=n),
            "x": rng.normal(size=n),
        }
    )
    d["public_support_m3"] = (rng.random(n) < 0.5 - 0.2 * d["treated"]).astype(float)
    return d


KW = dict(outcomes=["public_support"], horizons=[3], measures=["status"])


def test_an_empty_sample_names_the_merge():
    d = _matched()
    outcomes = d[["person_id", "ref_month", "treated", "public_support_m3"]].assign(ref_month="2020-02")
    merged = d.drop(columns="public_support_m3").merge(outcomes)  # on every shared column: no row matches
    assert merged.empty
    with pytest.raises(
        InputError, match=r"matched data has no rows.*merge found no matching keys.*person_id"
    ):
        estimate_effects(merged, estimators=["weighted_mean_diff"], **KW)


@pytest.mark.parametrize("arm", [0, 1])
def test_a_sample_with_one_arm_only_is_refused(arm):
    d = _matched()
    one = d[d["treated"] == arm]
    n = len(one)
    expected = f"{n if arm else 0} treated and {0 if arm else n} control rows"
    with pytest.raises(InputError, match=expected):
        estimate_effects(one, estimators=["weighted_mean_diff"], **KW)


def test_nothing_estimable_is_an_error_not_an_empty_table():
    d = _matched().assign(public_support_m3=np.nan)  # e.g. a left merge that found no outcomes
    with pytest.raises(InputError, match=r"no effect could be estimated.*public_support_m3"):
        estimate_effects(d, estimators=["weighted_mean_diff"], **KW)
    with pytest.raises(InputError, match=r"no effect could be estimated.*'public_support_m6' absent"):
        estimate_effects(_matched(), estimators=["weighted_mean_diff"], outcomes=["public_support"], horizons=[6],
                         measures=["status"])  # fmt: skip


def test_regression_adjustment_needs_covariates():
    d = _matched()
    with pytest.raises(InputError, match="regression_adjustment needs covariates"):
        estimate_effects(d, estimators=["weighted_mean_diff", "regression_adjustment"], **KW)
    # with covariates it adjusts: a different number from the weighted mean difference
    f = estimate_effects(
        d, estimators=["weighted_mean_diff", "regression_adjustment"], covariates=["x", "age"], **KW
    )
    est = f.to_frame().set_index("estimator")["estimate"]
    assert est["regression_adjustment"] != est["weighted_mean_diff"]


def test_default_estimators_without_covariates_leave_regression_adjustment_out_with_a_note():
    res = estimate_effects(_matched(), **KW)
    assert set(res.to_frame()["estimator"]) == {"weighted_mean_diff"}
    assert any("regression_adjustment left out: no covariates" in n for n in res.notes)
    assert "regression_adjustment left out" in res.summary()


def test_path_rows_keeps_the_window_uncensored_observed_weighted_rows_and_the_columns_asked():
    from finsam_effekt.estimation import path_rows

    paths = pd.DataFrame(
        {
            "person_id": ["a", "a", "a", "b", "b", "c"],
            "rel_month": [-13, -1, 2, -1, 1, 1],
            "censored": [False, False, True, False, False, False],
            "y": [1.0, 2.0, 3.0, np.nan, 5.0, 6.0],
            "weights": [1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
            "other": range(6),
        }
    )
    got = path_rows(paths, (-12, 12), ["person_id", "y", "person_id"], outcome="y", weights="weights")
    pd.testing.assert_frame_equal(got, paths.loc[[1, 4], ["person_id", "y"]])
    # no outcome or weight rule: only the window and censoring
    assert path_rows(paths, (-12, 12), ["rel_month"]).index.tolist() == [1, 3, 4, 5]
