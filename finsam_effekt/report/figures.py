"""Every figure of the report, drawn from published tables (so a figure never shows a suppressed value).

Intervals are drawn from the tables' own ``ci_lower``/``ci_upper`` columns, whose level is ``inference.alpha``;
no figure computes an interval or any other statistic. Texts come from :mod:`finsam_effekt.report.text`.
Figures are saved without timestamps (:func:`save_figure`), so a rerun writes identical PNG and SVG files.
"""

from __future__ import annotations

import io
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .content import FIGURE_OUTCOMES, PATH_OUTCOMES
from .text import ARM_LABELS, FIGURE_LABELS, SAMPLE_LABELS, column_label, lang_index, outcome_label

#: Colours of the two arms (and of before/after in the love plot).
_BLUE, _RED = "#1f5fa8", "#c0504d"


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "finsam_effekt"  # deterministic SVG ids
    return plt


def _interval(d: pd.DataFrame) -> np.ndarray:
    """Error-bar lengths (below, above) of ``estimate`` from the table's own ``ci_lower``/``ci_upper``."""
    return np.vstack(
        [
            (d["estimate"] - d["ci_lower"]).clip(lower=0).to_numpy(float),
            (d["ci_upper"] - d["estimate"]).clip(lower=0).to_numpy(float),
        ]
    )


def figure_outcome_paths(paths: pd.DataFrame, outcome: str, lang: str):
    """Mean outcome by month relative to start u, treated vs matched controls, with interval bands.

    ``paths`` has columns ``outcome, rel_month, arm (treated|control), mean``, optional ``ci_lower, ci_upper``
    (``outcome_paths.csv``).
    """
    li = lang_index(lang)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    d = paths[paths["outcome"] == outcome]
    for arm, color in (("treated", _BLUE), ("control", _RED)):
        a = d[d["arm"] == arm].sort_values("rel_month")
        ax.plot(a["rel_month"], a["mean"], color=color, label=ARM_LABELS[arm][li], marker=".")
        if {"ci_lower", "ci_upper"} <= set(a.columns):
            ax.fill_between(
                a["rel_month"], a["ci_lower"], a["ci_upper"], color=color, alpha=0.15, linewidth=0
            )
    ax.axvline(0, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel(column_label("rel_month", lang))
    ax.set_title(outcome_label(outcome, lang))
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def figure_event_study(es: pd.DataFrame, outcome: str, lang: str):
    """Event-study coefficients with their intervals by month relative to start (``event_study.csv``)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    d = es[es["outcome"] == outcome].sort_values("rel_month")
    d = d[d["estimate"].notna()]
    ax.axhline(0, color="grey", linewidth=1)
    ax.axvline(-0.5, color="grey", linestyle="--", linewidth=1)
    if {"ci_lower", "ci_upper"} <= set(d.columns):
        ax.errorbar(
            d["rel_month"].to_numpy(float),
            d["estimate"].to_numpy(float),
            yerr=_interval(d),
            fmt="o",
            color=_BLUE,
            markersize=3,
            elinewidth=1,
        )
    else:
        ax.plot(d["rel_month"], d["estimate"], "o", color=_BLUE)
    ax.set_xlabel(column_label("rel_month", lang))
    ax.set_ylabel(column_label("estimate", lang))
    ax.set_title(outcome_label(outcome, lang))
    fig.tight_layout()
    return fig


def figure_effects(effects: pd.DataFrame, estimator: str, lang: str):
    """Main effects (subgroup ``all``, status measure) with their intervals, one panel row per outcome."""
    plt = _plt()
    d = effects[(effects["subgroup"] == "all") & (effects["estimator"] == estimator)]
    d = d[(d["measure"] == "status") & d["estimate"].notna()]
    present = set(d["outcome"])
    outs = [o for o in FIGURE_OUTCOMES if o in present] or list(dict.fromkeys(d["outcome"]))[:4]
    fig, axes = plt.subplots(len(outs) or 1, 1, figsize=(7, 1.6 * max(len(outs), 1) + 0.6), squeeze=False)
    for ax, o in zip(axes[:, 0], outs, strict=False):
        r = d[d["outcome"] == o].sort_values("horizon_months")
        ax.errorbar(
            r["estimate"].to_numpy(float),
            r["horizon_months"].astype(str).to_numpy(),
            xerr=_interval(r),
            fmt="o",
            color=_BLUE,
        )
        ax.axvline(0, color="grey", linewidth=1)
        ax.set_title(outcome_label(o, lang), fontsize=9, loc="left")
        ax.set_ylabel(column_label("horizon_months", lang), fontsize=8)
    fig.tight_layout()
    return fig


def love_plot(balance: pd.DataFrame, lang: str, *, threshold: float = 0.1, absolute: bool = True, ax=None):
    """Love plot (cobalt's): the SMD per covariate before and after matching, from a balance table frame.

    Parameters
    ----------
    balance
        ``balance.csv`` / ``BalanceTable.to_frame()``: columns ``variable`` (or ``covariate``), ``sample``
        (``before``/``after``) and ``smd``.
    lang
        ``sv`` or ``en``.
    threshold
        Balance threshold drawn as a dashed line (Austin 2009: |SMD| = 0.1), at ±threshold when signed.
    absolute
        |SMD| (default) or the signed SMD.
    ax
        Draw into this matplotlib Axes instead of a new figure.

    Covariates are ordered by their SMD before matching, the largest at the top. Returns the Figure.
    """
    li = lang_index(lang)
    plt = _plt()
    b = balance.rename(columns={"variable": "covariate"})
    piv = b.pivot_table(index="covariate", columns="sample", values="smd", aggfunc="first")
    order = piv.get("before", piv.iloc[:, 0]).abs().sort_values().index
    piv = piv.loc[order]
    if absolute:
        piv = piv.abs()
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 0.25 * len(piv) + 1.2))
    else:
        fig = ax.figure
    y = np.arange(len(piv))
    for s, m, color in (("before", "o", _RED), ("after", "s", _BLUE)):
        if s in piv:
            ax.plot(piv[s], y, m, color=color, label=SAMPLE_LABELS[s][li], linestyle="none")
    ax.axvline(threshold, color="grey", linestyle="--", linewidth=1)
    if not absolute:
        ax.axvline(-threshold, color="grey", linestyle="--", linewidth=1)
        ax.axvline(0, color="black", linewidth=0.5)
    ax.set_yticks(y, piv.index, fontsize=7)
    ax.set_xlabel(FIGURE_LABELS["abs_smd" if absolute else "smd"][li])
    ax.legend(frameon=False, loc="lower right")
    fig.tight_layout()
    return fig


def ps_overlap_plot(ps, treatment, weights=None, *, lang: str, bins: int = 40, ax=None):
    """Histograms of the propensity score (or any distance) of treated and controls, before and (with
    ``weights``: matching or IPW weights, 0 for unmatched) after weighting; one panel each. Returns the Figure.
    """
    li = lang_index(lang)
    plt = _plt()
    ps = np.asarray(ps, dtype=float)
    t = np.asarray(treatment).astype(bool)
    ncol = 1 if weights is None else 2
    if ax is None:
        fig, axes = plt.subplots(1, ncol, figsize=(5 * ncol, 3.5), squeeze=False)
        axes = axes[0]
    else:
        fig, axes = ax.figure, [ax]
    edges = np.histogram_bin_edges(ps, bins=bins)
    panels = [("before", np.ones(len(ps)))] + (
        [("after", np.asarray(weights, float))] if weights is not None else []
    )
    for a, (sample, w) in zip(axes, panels, strict=False):
        a.hist(ps[t], bins=edges, weights=w[t], density=True, alpha=0.5, label=ARM_LABELS["treated"][li])
        a.hist(
            ps[~t], bins=edges, weights=w[~t], density=True, alpha=0.5, label=FIGURE_LABELS["comparison"][li]
        )
        a.set_title(SAMPLE_LABELS[sample][li])
        a.set_xlabel(FIGURE_LABELS["ps"][li])
        a.legend()
    fig.tight_layout()
    return fig


def table_figures(
    tables: Mapping[str, pd.DataFrame], main_estimator: str, lang: str, *, skip: Collection[str] = ()
) -> dict[str, Any]:
    """The figures drawn from the published tables, by name (``effects``, ``outcome_paths__<outcome>``,
    ``event_study__<outcome>`` for the first two outcomes, ``love_plot``); names in ``skip`` are not drawn."""

    def usable(name: str) -> bool:
        return name in tables and not tables[name].empty

    figs: dict[str, Any] = {}
    if usable("effects") and "effects" not in skip:
        figs["effects"] = figure_effects(tables["effects"], main_estimator, lang)
    if usable("outcome_paths"):
        for o in PATH_OUTCOMES:
            name = f"outcome_paths__{o}"
            if name not in skip and (tables["outcome_paths"]["outcome"] == o).any():
                figs[name] = figure_outcome_paths(tables["outcome_paths"], o, lang)
    if usable("event_study"):
        for o in list(dict.fromkeys(tables["event_study"]["outcome"]))[:2]:
            if f"event_study__{o}" not in skip:
                figs[f"event_study__{o}"] = figure_event_study(tables["event_study"], o, lang)
    bal = tables.get("balance")
    if (
        bal is not None
        and not bal.empty
        and "love_plot" not in skip
        and {"sample", "smd"} <= set(bal.columns)
        and {"covariate", "variable"} & set(bal.columns)
    ):
        figs["love_plot"] = love_plot(bal, lang)
    return figs


def save_figure(fig: Any, fig_dir: Path, name: str) -> bytes:
    """Write ``name.png`` and ``name.svg`` (no timestamps, so reruns are identical); return the PNG bytes."""
    fig_dir.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    png = buf.getvalue()
    (fig_dir / f"{name}.png").write_bytes(png)
    fig.savefig(fig_dir / f"{name}.svg", format="svg", metadata={"Date": None, "Creator": None})
    _plt().close(fig)
    return png
