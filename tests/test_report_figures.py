"""report.figures: the one love plot, the propensity-score overlap, and intervals drawn from the tables' own
ci_lower/ci_upper columns (so the level is inference.alpha, never a constant in the report)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finsam_effekt.balance import balance_table
from finsam_effekt.errors import ConfigError
from finsam_effekt.matching import match_nearest
from finsam_effekt.report import figure_effects, figure_event_study, love_plot, ps_overlap_plot


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt  # after report.figures chose the Agg backend

    plt.close("all")


def _world(n: int = 600) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    t = (rng.random(n) < 0.3).astype(int)
    df = pd.DataFrame(
        {"t": t, "x": rng.normal(size=n) + t, "g": rng.choice(["a", "b"], size=n), "z": rng.normal(size=n)}
    )
    w = np.where(t == 1, 1.0, rng.random(n))
    return df, t, w


def _dashed(ax) -> list[float]:
    """x positions of the dashed vertical lines (the balance threshold)."""
    return sorted(float(line.get_xdata()[0]) for line in ax.get_lines() if line.get_linestyle() == "--")


def _legend(fig) -> list[str]:
    return [x.get_text() for x in fig.axes[0].get_legend().get_texts()]


def test_love_plot_from_a_balance_table_frame():
    df, t, w = _world()
    bt = balance_table(df, "t", ["x", "g", "z"], weights=w)
    fig = love_plot(bt.to_frame(), "en")
    ax = fig.axes[0]
    assert len(ax.get_yticklabels()) == 4
    # ordered by |SMD| before matching, the largest at the top (highest y)
    before = bt.to_frame().query("sample == 'before'").set_index("variable")["smd"].abs()
    assert [x.get_text() for x in ax.get_yticklabels()] == list(before.sort_values().index)
    assert _legend(fig) == ["Before matching", "After matching"]
    assert _legend(love_plot(bt.to_frame(), "sv")) == ["Före matchning", "Efter matchning"]
    # the threshold as a dashed line; signed SMDs get both ±threshold and zero
    assert _dashed(ax) == [0.1]
    assert _dashed(love_plot(bt.to_frame(), "en", threshold=0.25, absolute=False).axes[0]) == [-0.25, 0.25]
    # balance.csv names the column "covariate"; the same figure
    renamed = bt.to_frame().rename(columns={"variable": "covariate"})
    assert [x.get_text() for x in love_plot(renamed, "en").axes[0].get_yticklabels()] == list(
        before.sort_values().index
    )


def test_love_plot_of_a_match_result_and_ps_overlap():
    df, t, w = _world()
    assert len(ps_overlap_plot(df["x"], t, weights=w, lang="en").axes) == 2
    assert len(ps_overlap_plot(df["x"], t, lang="en").axes) == 1
    res = match_nearest(df, "t", distance="x", caliper=0.2)
    bm = balance_table(res, covariates=["x", "z"])
    fig = ps_overlap_plot(bm.distance, bm.treat, bm.weights, lang="sv")
    assert [a.get_title() for a in fig.axes] == ["Före matchning", "Efter matchning"]
    assert _legend(fig) == ["Deltagare", "Jämförelsepersoner"]
    ticks = [x.get_text() for x in love_plot(bm.to_frame(), "en").axes[0].get_yticklabels()]
    assert set(ticks) == {"Propensity score (distance)", "x", "z"}  # a label for the distance, never its code
    with pytest.raises(ConfigError, match="language"):
        ps_overlap_plot(df["x"], t, lang="de")


def _segments(ax) -> list[tuple[float, float]]:
    """(low, high) of every error bar drawn in ``ax``."""
    out = []
    for coll in ax.collections:
        for seg in coll.get_segments():
            (x0, y0), (x1, y1) = seg
            out.append((min(x0, x1), max(x0, x1)) if y0 == y1 else (min(y0, y1), max(y0, y1)))
    return sorted(out)


def test_intervals_are_the_tables_own_columns():
    """Asymmetric intervals (not estimate ± z·SE) are drawn exactly as the table gives them."""
    eff = pd.DataFrame(
        {
            "outcome": "public_support",
            "horizon_months": [3, 6, 12],
            "measure": "status",
            "subgroup": "all",
            "estimator": "weighted_mean_diff",
            "estimate": [-0.05, -0.1, -0.2],
            "std_error": [0.01, 0.01, 0.01],
            "ci_lower": [-0.09, -0.13, -0.21],
            "ci_upper": [-0.04, -0.02, -0.1],
        }
    )
    ax = figure_effects(eff, "weighted_mean_diff", "en").axes[0]
    np.testing.assert_allclose(_segments(ax), sorted(zip(eff["ci_lower"], eff["ci_upper"], strict=True)))
    es = pd.DataFrame(
        {
            "outcome": "public_support",
            "rel_month": [-1, 0, 1],
            "estimate": [0.0, -0.05, -0.08],
            "std_error": 0.01,
            "ci_lower": [-0.03, -0.06, -0.2],
            "ci_upper": [0.01, 0.0, -0.07],
        }
    )
    ax = figure_event_study(es, "public_support", "en").axes[0]
    np.testing.assert_allclose(_segments(ax), sorted(zip(es["ci_lower"], es["ci_upper"], strict=True)))


def test_report_holds_no_normal_quantile():
    """The report computes no interval: no 1.96 (or any spelling of it) and no quantile function in its code."""
    src = Path(__file__).parents[1] / "finsam_effekt" / "report"
    for f in sorted(src.rglob("*")):
        if f.suffix in (".py", ".html"):
            code = f.read_text(encoding="utf-8")
            assert re.search(r"1\.9[56]|norm\.ppf|ndtri", code) is None, f.name
