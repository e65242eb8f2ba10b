"""Every figure of the report, drawn from published tables (so a figure never shows a suppressed value).

A figure whose table publishes nothing to draw is not drawn. The one figure drawn from person-level values, the
propensity-score overlap (:func:`ps_overlap_plot`), shows no histogram bin resting on fewer persons than the
disclosure threshold (``disclosure.publishable_bins``).

Intervals are drawn from the tables' own ``ci_lower``/``ci_upper`` columns, whose level is ``inference.alpha``;
no figure computes an interval or any other statistic. Texts come from :mod:`~finsam_effekt.report.text` and
:mod:`~finsam_effekt.report.labels` (no code name reaches a figure), numbers from
:mod:`~finsam_effekt.report.numbers` (ticks and annotations in the report's language, effects in their units).
Figures are saved without timestamps (:func:`save_figure`), so a rerun writes identical PNG and SVG files.
"""

from __future__ import annotations

import io
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..schema import DEFAULT_DISCLOSURE_THRESHOLD
from . import numbers as num
from .content import FIGURE_OUTCOMES, PATH_OUTCOMES, SUBGROUP_OUTCOMES
from .disclosure import publishable_bins_of_counts
from .labels import (
    COST_FIGURE_LABELS,
    covariate_label,
    financier_label,
    item_label,
    parameter_label,
    persistence_label,
    subgroup_field_label,
    subgroup_label,
    unit_label,
)
from .text import ARM_LABELS, FIGURE_LABELS, SAMPLE_LABELS, column_label, lang_index, outcome_label, text

#: Colours of the two arms (and of before/after in the love plot), and of the horizons in the forest plots.
_BLUE, _RED = "#1f5fa8", "#c0504d"
_HORIZON_COLOURS = ("#8fb3de", "#3d7cc9", "#123e73")
_GAIN, _LOSS, _NET = "#2a7f62", "#b5442f", "#34495e"


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "finsam_effekt"  # deterministic SVG ids
    plt.rcParams["axes.unicode_minus"] = True
    return plt


def _interval(d: pd.DataFrame) -> np.ndarray:
    """Error-bar lengths (below, above) of ``estimate`` from the table's own ``ci_lower``/``ci_upper``."""
    return np.vstack(
        [
            (d["estimate"] - d["ci_lower"]).clip(lower=0).to_numpy(float),
            (d["ci_upper"] - d["estimate"]).clip(lower=0).to_numpy(float),
        ]
    )


def _months(k: int, lang: str) -> str:
    return f"{k} {('mån', 'mo')[lang_index(lang)]}"


def effect_axis_label(outcome: str, measure: str, lang: str) -> str:
    """The axis title of an effect of ``outcome``: "Skillnad, procentenheter" / "Difference, SEK"."""
    kind = num.unit_kind(outcome, measure)
    unit = unit_label(kind, lang)
    head = ("Skillnad", "Difference")[lang_index(lang)]
    return f"{head}, {unit}" if unit else head


def figure_outcome_paths(paths: pd.DataFrame, outcome: str, lang: str):
    """Mean outcome by month relative to start u, treated vs matched controls, with interval bands.

    ``paths`` has columns ``outcome, rel_month, arm (treated|control), mean``, optional ``ci_lower, ci_upper``
    (``outcome_paths.csv``). A share is shown as a percentage, kronor and days as they are.
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
    kind = num.unit_kind(outcome)
    num.apply_axis_format(ax, lang, x="auto", y="percent" if kind == "pp" else "auto")
    ax.set_ylabel(("Andel", "Share")[li] if kind == "pp" else unit_label(kind, lang).capitalize() or None)
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
    ax.set_ylabel(effect_axis_label(outcome, "status", lang))
    num.apply_axis_format(ax, lang, x="auto", y=num.unit_kind(outcome))
    ax.set_title(outcome_label(outcome, lang))
    fig.tight_layout()
    return fig


def figure_effects(effects: pd.DataFrame, estimator: str, lang: str):
    """Main effects (subgroup ``all``, status measure) with their intervals, one panel row per outcome, each in
    its unit."""
    plt = _plt()
    d = effects[(effects["subgroup"] == "all") & (effects["estimator"] == estimator)]
    d = d[(d["measure"] == "status") & d["estimate"].notna()]
    present = set(d["outcome"])
    outs = [o for o in FIGURE_OUTCOMES if o in present] or list(dict.fromkeys(d["outcome"]))[:4]
    fig, axes = plt.subplots(len(outs) or 1, 1, figsize=(7, 1.7 * max(len(outs), 1) + 0.6), squeeze=False)
    for ax, o in zip(axes[:, 0], outs, strict=False):
        r = d[d["outcome"] == o].sort_values("horizon_months")
        ax.errorbar(
            r["estimate"].to_numpy(float),
            [_months(int(k), lang) for k in r["horizon_months"]],
            xerr=_interval(r),
            fmt="o",
            color=_BLUE,
        )
        ax.axvline(0, color="grey", linewidth=1)
        ax.set_title(outcome_label(o, lang), fontsize=9, loc="left")
        ax.set_xlabel(effect_axis_label(o, "status", lang), fontsize=8)
        num.apply_axis_format(ax, lang, x=num.unit_kind(o), y=None)
    fig.tight_layout()
    return fig


def subgroup_rows(effects: pd.DataFrame, fields: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """The forest plot's rows in order: ``("all", "")`` then, per subgroup field, a header ``("", field)``
    and its subgroups ``(subgroup, field)`` in the order of the table."""
    subs = [s for s in dict.fromkeys(effects["subgroup"]) if s != "all" and "=" in str(s)]
    by_field: dict[str, list[str]] = {}
    for s in subs:
        f = str(s).split("=", 1)[0]
        if fields is None or f in fields:
            by_field.setdefault(f, []).append(s)
    rows: list[tuple[str, str]] = [("all", "")] if (effects["subgroup"] == "all").any() else []
    for f, items in by_field.items():
        rows.append(("", f))
        rows += [(s, f) for s in items]
    return rows


def figure_subgroups(
    effects: pd.DataFrame,
    estimator: str,
    lang: str,
    *,
    outcomes: Sequence[str] = SUBGROUP_OUTCOMES,
    fields: Sequence[str] | None = None,
):
    """Forest plot of the status effects by subgroup: one panel per outcome, one row per subgroup (grouped by
    field, all participants first), a marker with its interval per horizon. Suppressed cells are left out."""
    plt = _plt()
    d = effects[(effects["estimator"] == estimator) & (effects["measure"] == "status")]
    outs = [o for o in outcomes if (d["outcome"] == o).any()]
    rows = subgroup_rows(d, fields)
    horizons = sorted(int(k) for k in d["horizon_months"].dropna().unique())[:3]
    n = max(len(rows), 1)
    fig, axes = plt.subplots(
        1, max(len(outs), 1), figsize=(5.2 * max(len(outs), 1), 0.3 * n + 1.6), squeeze=False, sharey=True
    )
    y = {s: n - 1 - i for i, (s, _) in enumerate(rows)}
    step = 0.22
    for ax, o in zip(axes[0], outs, strict=False):
        for j, k in enumerate(horizons):
            r = d[(d["outcome"] == o) & (d["horizon_months"] == k) & d["estimate"].notna()]
            r = r[r["subgroup"].isin([s for s, _ in rows if s])]
            if r.empty:
                continue
            ys = np.array([y[s] for s in r["subgroup"]], dtype=float) + (1 - j) * step
            ax.errorbar(
                r["estimate"].to_numpy(float),
                ys,
                xerr=_interval(r),
                fmt="o",
                markersize=3.5,
                elinewidth=1,
                color=_HORIZON_COLOURS[j % len(_HORIZON_COLOURS)],
                label=_months(k, lang),
            )
        ax.axvline(0, color="grey", linewidth=1)
        ax.set_title(outcome_label(o, lang), fontsize=9, loc="left")
        ax.set_xlabel(effect_axis_label(o, "status", lang), fontsize=8)
        num.apply_axis_format(ax, lang, x=num.unit_kind(o), y=None)
        ax.grid(axis="x", color="#eeeeee")
    labels = [subgroup_label(s, lang) if s else subgroup_field_label(f, lang) for s, f in rows]
    ax0 = axes[0, 0]
    ax0.set_yticks([n - 1 - i for i in range(len(rows))], labels, fontsize=8)
    for tick, (s, _) in zip(ax0.get_yticklabels(), rows, strict=True):
        if not s:
            tick.set_fontweight("bold")
    ax0.set_ylim(-0.7, n - 0.3)
    handles, names = axes[0, -1].get_legend_handles_labels()
    top = 1.0
    if handles:  # above the panels, where it hides no interval
        top = 1 - 0.35 / fig.get_figheight()
        fig.legend(handles, names, fontsize=8, frameon=False, loc="upper right", ncol=len(handles))
    fig.tight_layout(rect=(0, 0, 1, top))
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

    Covariates are ordered by their SMD before matching, the largest at the top, and labelled for readers
    (``labels.covariate_label``). Returns the Figure.
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
        fig, ax = plt.subplots(figsize=(7.5, 0.25 * len(piv) + 1.2))
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
    ax.set_yticks(y, [covariate_label(str(c), lang) for c in piv.index], fontsize=7)
    ax.set_xlabel(FIGURE_LABELS["abs_smd" if absolute else "smd"][li])
    num.apply_axis_format(ax, lang, x="auto", y=None)
    ax.legend(frameon=False, loc="lower right")
    fig.tight_layout()
    return fig


def ps_overlap_plot(
    ps,
    treatment,
    weights=None,
    *,
    lang: str,
    bins: int = 40,
    ax=None,
    threshold: int = DEFAULT_DISCLOSURE_THRESHOLD,
):
    """Histograms of the propensity score (or any distance) of treated and controls, before and (with
    ``weights``: matching or IPW weights, 0 for unmatched) after weighting; one panel each. Returns the Figure.

    Disclosure control: each arm's bins are merged with their neighbours until none rests on ``1 .. threshold −
    1`` persons (persons with a positive weight; ``disclosure.publishable_bins``); an arm with fewer than
    ``threshold`` persons in a panel is left out of it. The figure says so beneath its panels when it merged or
    left out anything. Returns None (no figure) when no arm of any panel can be shown.
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
    # each score's bin, once (np.histogram's bins: [e_j, e_j+1), the last closed); every panel and arm is then a
    # count per bin — a national cohort has 5·10⁷ scores, and a histogram of them per arm and panel took 11 s
    nbins = len(edges) - 1
    idx = np.minimum(np.searchsorted(edges, ps, side="right") - 1, nbins - 1)
    panels = [("before", None)] + ([("after", np.asarray(weights, float))] if weights is not None else [])
    merged, shown = False, False
    arms = ((t, ARM_LABELS["treated"][li], "C0"), (~t, FIGURE_LABELS["comparison"][li], "C1"))
    for a, (sample, w) in zip(axes, panels, strict=False):
        for arm, label, colour in arms:
            persons_in = arm if w is None else arm & (w > 0)
            persons = np.bincount(idx[persons_in], minlength=nbins)
            mass = persons if w is None else np.bincount(idx[arm], weights=w[arm], minlength=nbins)
            arm_edges, changed = publishable_bins_of_counts(persons, edges, threshold)
            merged |= changed
            if len(arm_edges) < 2:  # fewer persons than the threshold in this arm: nothing can be shown
                continue
            # the weight in each merged bin, drawn as one value at its left edge
            ends = np.searchsorted(edges, arm_edges)
            merged_mass = np.add.reduceat(np.asarray(mass, float), ends[:-1])
            a.hist(
                arm_edges[:-1],
                bins=arm_edges,
                weights=merged_mass,
                density=True,
                alpha=0.5,
                label=label,
                color=colour,
            )
            shown = True
        a.set_title(SAMPLE_LABELS[sample][li])
        a.set_xlabel(FIGURE_LABELS["ps"][li])
        a.set_ylabel(FIGURE_LABELS["density"][li])
        num.apply_axis_format(a, lang)
        if a.get_legend_handles_labels()[0]:
            a.legend()
    if not shown and ax is None:
        plt.close(fig)
        return None
    fig.tight_layout()
    if merged:
        fig.text(0.01, 0.005, text("fig_bins_merged", lang).format(t=threshold), fontsize=7, va="bottom")
        fig.subplots_adjust(bottom=max(fig.subplotpars.bottom, 0.2))
    return fig


# -- cost-benefit ------------------------------------------------------------------------------------------------
#: The financiers with a waterfall in the report (FK and AF are parts of the state's).
WATERFALL_FINANCIERS: tuple[str, ...] = ("state", "region", "kommun")


def waterfall_parts(
    cb: pd.DataFrame, financier: str, perspective: str | None = None
) -> list[tuple[str, float]]:
    """The bars of a financier's waterfall as ``(item, value)`` before its net, from ``cost_benefit.csv``.

    The state's bars show Försäkringskassan's and Arbetsförmedlingen's items as parts of the state (``item
    (FK)``), then what the state's totals hold beyond them (a-kassa when the state pays it) and its taxes and
    fees; the bars sum to the state's net. Other financiers show their own items.
    """
    col = "pv_sek_per_participant"
    sel = cb[cb["financier"] == financier]
    if perspective is not None:
        sel = sel[sel["perspective"] == perspective]
    own = sel[sel["item"] != "net"].set_index("item")[col].astype(float)
    if financier != "state" or not {"FK", "AF"} <= set(cb["financier"]):
        return list(own.items())
    parts: list[tuple[str, float]] = []
    agency: dict[str, float] = {"cost": 0.0, "savings": 0.0}
    for fin in ("FK", "AF"):
        rows = cb[(cb["financier"] == fin) & (cb["item"] != "net")]
        for item, v in zip(rows["item"], rows[col].astype(float), strict=True):
            parts.append((f"{item}|{fin}", v))
            agency["cost" if item == "cost" else "savings"] += v
    rest_cost = float(own.get("cost", 0.0)) - agency["cost"]
    rest_savings = float(own.get("benefit_savings", 0.0)) - agency["savings"]
    parts = [p for p in parts if p[0].startswith("cost|")] + [
        p for p in parts if not p[0].startswith("cost|")
    ]
    if abs(rest_cost) >= 0.5:
        parts.insert(2, ("state_other_cost", rest_cost))
    if abs(rest_savings) >= 0.5:
        parts.append(("state_other_benefit_savings", rest_savings))
    parts += [(i, float(v)) for i, v in own.items() if i not in ("cost", "benefit_savings")]
    return parts


def _item_text(key: str, lang: str) -> str:
    item, _, fin = key.partition("|")
    return f"{item_label(item, lang)} ({fin})" if fin else item_label(item, lang)


def figure_waterfall(cb: pd.DataFrame, financier: str, lang: str, *, price_year: int | None = None):
    """Waterfall of one financier's present values per participant (cost, each gain) ending in its net, from
    ``cost_benefit.csv``; bars and annotations in kronor in the report's language."""
    plt = _plt()
    li = lang_index(lang)
    parts = [(k, v) for k, v in waterfall_parts(cb, financier) if abs(v) >= 0.5]  # a zero item has no bar
    netrow = cb[(cb["financier"] == financier) & (cb["item"] == "net")]
    net = float(netrow["pv_sek_per_participant"].iloc[0])
    fig, ax = plt.subplots(figsize=(8.5, 4.6) if len(parts) > 4 else (5.2, 4.4))
    running = 0.0
    span = max([abs(v) for _, v in parts] + [abs(net), 1.0])
    for i, (_, v) in enumerate(parts):
        ax.bar(i, v, bottom=running, color=_GAIN if v >= 0 else _LOSS, width=0.7)
        running += v
        ax.text(i, running + (0.015 * span if v >= 0 else -0.015 * span), num.sek(v, lang, sign=True),
                ha="center", va="bottom" if v >= 0 else "top", fontsize=7)  # fmt: skip
    ax.bar(len(parts), net, color=_NET, width=0.7)
    ax.text(len(parts), net + (0.015 * span if net >= 0 else -0.015 * span), num.sek(net, lang),
            ha="center", va="bottom" if net >= 0 else "top", fontsize=7, fontweight="bold")  # fmt: skip
    names = [_item_text(k, lang) for k, _ in parts] + [item_label("net", lang)]
    ax.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=7)
    ax.axhline(0, color="black", lw=0.8)
    year = "" if price_year is None else price_year
    ax.set_ylabel(COST_FIGURE_LABELS["pv_axis"][li].format(year=year), fontsize=8)
    num.apply_axis_format(ax, lang, x=None, y="sek")
    ax.set_title(financier_label(financier, lang), fontsize=10)
    ax.margins(y=0.12)
    fig.tight_layout()
    return fig


def _tornado_value(parameter: str, value: Any, lang: str) -> str:
    """A low or high value of an assumption, as a reader writes it."""
    if parameter == "persistence":
        return persistence_label(str(value), lang)
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if parameter == "horizon_years":
        return f"{num.fixed(v, lang, 0 if v.is_integer() else 1)} {('år', 'years')[lang_index(lang)]}"
    if parameter == "income_tax_rates":
        return f"{num.fixed(100 * v, lang, 1, sign=True)} {('procentenheter', 'points')[lang_index(lang)]}"
    if parameter == "cost":
        return num.percent(v, lang, 0).replace("+", "") if v < 0 else "+" + num.percent(v, lang, 0)
    return num.percent(v, lang, 1)


def figure_tornado(sens: pd.DataFrame, financier: str, lang: str, *, price_year: int | None = None):
    """Tornado chart of the one-way sensitivity of one financier's net (``cost_benefit_sensitivity.csv``: one
    row per assumption with ``net_base``, ``net_low``, ``net_high`` and the values ``low_value``/``high_value``)."""
    plt = _plt()
    li = lang_index(lang)
    s = sens[sens["financier"] == financier].copy()
    s["swing"] = (s["net_high"] - s["net_low"]).abs()
    s = s.sort_values("swing", kind="stable")
    base = float(s["net_base"].iloc[0])
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(s) + 1.9))
    y = np.arange(len(s))
    ax.barh(y, s["net_low"] - base, left=base, color=_LOSS, label=COST_FIGURE_LABELS["low"][li])
    ax.barh(y, s["net_high"] - base, left=base, color=_GAIN, label=COST_FIGURE_LABELS["high"][li])
    low = s["low_value"] if "low_value" in s else s["low"]
    high = s["high_value"] if "high_value" in s else s["high"]
    names = [
        f"{parameter_label(p, lang)} ({_tornado_value(p, lo, lang)} / {_tornado_value(p, hi, lang)})"
        for p, lo, hi in zip(s["parameter"], low, high, strict=True)
    ]
    ax.set_yticks(y, names, fontsize=8)
    ax.axvline(base, color="black", lw=0.8)
    year = "" if price_year is None else price_year
    ax.set_xlabel(COST_FIGURE_LABELS["net_axis"][li].format(year=year), fontsize=8)
    num.apply_axis_format(ax, lang, x="sek", y=None)
    title = COST_FIGURE_LABELS["sensitivity_title"][li].format(financier=financier_label(financier, lang))
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def table_figures(
    tables: Mapping[str, pd.DataFrame],
    main_estimator: str,
    lang: str,
    *,
    skip: Collection[str] = (),
    price_year: int | None = None,
) -> dict[str, Any]:
    """The figures drawn from the published tables, by name: ``effects``, ``subgroups``, ``insats_types``,
    ``outcome_paths__<outcome>``, ``event_study__<outcome>`` (the first two outcomes), ``love_plot``,
    ``waterfall__<financier>`` and ``tornado__public_sector_total``; names in ``skip`` are not drawn."""

    def usable(name: str) -> bool:
        return name in tables and not tables[name].empty

    def drawn(d: pd.DataFrame, column: str) -> bool:  # anything published to draw
        return column in d and bool(pd.to_numeric(d[column], errors="coerce").notna().any())

    figs: dict[str, Any] = {}
    if usable("effects") and "effects" not in skip:
        eff = tables["effects"]
        main = eff[
            (eff["estimator"] == main_estimator) & (eff["measure"] == "status") & eff["estimate"].notna()
        ]
        if (main["subgroup"] == "all").any():
            figs["effects"] = figure_effects(eff, main_estimator, lang)
        shown = main[main["subgroup"] != "all"]
        if "subgroups" not in skip and shown["outcome"].isin(SUBGROUP_OUTCOMES).any():
            figs["subgroups"] = figure_subgroups(eff, main_estimator, lang)
        types = shown[shown["subgroup"].astype(str).str.startswith("insats_type=")]
        if "insats_types" not in skip and types["outcome"].isin(SUBGROUP_OUTCOMES).any():
            figs["insats_types"] = figure_subgroups(eff, main_estimator, lang, fields=("insats_type",))
    if usable("outcome_paths"):
        for o in PATH_OUTCOMES:
            name = f"outcome_paths__{o}"
            paths = tables["outcome_paths"]
            if name not in skip and drawn(paths[paths["outcome"] == o], "mean"):
                figs[name] = figure_outcome_paths(paths, o, lang)
    if usable("event_study"):
        es = tables["event_study"]
        for o in list(dict.fromkeys(es["outcome"]))[:2]:
            if f"event_study__{o}" not in skip and drawn(es[es["outcome"] == o], "estimate"):
                figs[f"event_study__{o}"] = figure_event_study(es, o, lang)
    bal = tables.get("balance")
    if (
        bal is not None
        and not bal.empty
        and "love_plot" not in skip
        and {"sample", "smd"} <= set(bal.columns)
        and {"covariate", "variable"} & set(bal.columns)
        and drawn(bal, "smd")
    ):
        figs["love_plot"] = love_plot(bal, lang)
    if usable("cost_benefit"):
        cb = tables["cost_benefit"]
        for fin in WATERFALL_FINANCIERS:
            rows = cb[cb["financier"] == fin]
            if f"waterfall__{fin}" not in skip and drawn(
                rows[rows["item"] == "net"], "pv_sek_per_participant"
            ):
                figs[f"waterfall__{fin}"] = figure_waterfall(cb, fin, lang, price_year=price_year)
    if usable("cost_benefit_sensitivity") and "tornado__public_sector_total" not in skip:
        sens = tables["cost_benefit_sensitivity"]
        if drawn(sens[sens["financier"] == "public_sector_total"], "net_base"):
            figs["tornado__public_sector_total"] = figure_tornado(
                sens, "public_sector_total", lang, price_year=price_year
            )
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


__all__ = [
    "WATERFALL_FINANCIERS",
    "effect_axis_label",
    "figure_effects",
    "figure_event_study",
    "figure_outcome_paths",
    "figure_subgroups",
    "figure_tornado",
    "figure_waterfall",
    "love_plot",
    "ps_overlap_plot",
    "save_figure",
    "subgroup_rows",
    "table_figures",
    "waterfall_parts",
    "text",
]
