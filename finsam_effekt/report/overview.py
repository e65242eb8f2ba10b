"""The overview of a run by group (``run --by forbund_id``): effects per förbund as a table and a forest plot.

Disclosure control: effects resting on fewer than the threshold's persons and small participant counts are blanked
(``disclosure.suppress_estimates``); the national count is the sum of the groups', so one blanked group count gets
a complement (``disclosure.suppress_complements``). The forest plot is drawn from the blanked table.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
import numpy as np
import pandas as pd

from ..schema import OUTCOME_INFO
from .disclosure import suppress_complements, suppress_estimates

_TITLE = {"sv": "Effekter per samordningsförbund", "en": "Effects by samordningsförbund"}
_GUIDE = {
    "sv": "Huvudskattarens effekt i månad k efter start för varje förbunds egna deltagare, jämförda med "
    "matchade personer ur hela jämförelsepoolen; {level} % konfidensintervall. Förbund med färre än {t} deltagare "
    "får ingen egen rapport; värden som vilar på färre än {t} personer visas inte.",
    "en": "The main estimator's effect in month k after the start for each förbund's own participants, compared "
    "with matched persons from the whole comparison pool; {level} % confidence intervals. A förbund with fewer "
    "than {t} participants gets no report of its own; values resting on fewer than {t} persons are not shown.",
}
_NATIONAL = {"sv": "Hela riket", "en": "National"}

_PAGE = jinja2.Environment(autoescape=True).from_string(
    """<!doctype html><html lang="{{ lang }}"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse;font-size:.9rem}td,th{padding:.2rem .5rem;border-bottom:1px solid #ddd;
text-align:right}td:first-child,th:first-child{text-align:left}img{max-width:100%}</style></head><body>
<h1>{{ title }}</h1><p>{{ guide }}</p><img src="overview.png" alt="{{ title }}">
<table><thead><tr>{% for c in columns %}<th>{{ c }}</th>{% endfor %}</tr></thead><tbody>
{% for row in rows %}<tr>{% for v in row %}<td>{{ v }}</td>{% endfor %}</tr>{% endfor %}</tbody></table>
</body></html>"""
)


def write_group_overview(
    overview: pd.DataFrame, directory: Path, *, lang: str, threshold: int, field: str, alpha: float
) -> list[Path]:
    """Write ``overview.csv`` (disclosure-controlled), ``overview.png`` (forest plot) and ``overview.html``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    table = suppress_group_counts(suppress_estimates(overview, threshold))
    csv = directory / "overview.csv"
    table.to_csv(csv, index=False)
    png = directory / "overview.png"
    fig = forest_plot(table, lang)
    fig.savefig(png, dpi=120, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    level = round(100 * (1 - alpha), 1)
    shown = table.assign(group=table["group"].replace({"national": _NATIONAL[lang]}))
    rows = [
        ["" if pd.isna(v) else (f"{v:.3f}" if isinstance(v, float) else v) for v in r]
        for r in shown.itertuples(index=False)
    ]
    html = directory / "overview.html"
    html.write_text(
        _PAGE.render(
            lang=lang,
            title=_TITLE[lang],
            guide=_GUIDE[lang].format(level=f"{level:g}", t=threshold),
            columns=list(shown.columns),
            rows=rows,
        ),
        encoding="utf-8",
    )
    return [csv, png, html]


def suppress_group_counts(table: pd.DataFrame, national: str = "national") -> pd.DataFrame:
    """Blank, beside the groups' blanked participant counts, a complement so that no blanked count equals the
    national count minus the published ones (``disclosure.suppress_complements`` on national = Σ groups); every
    row with a blank count is marked ``suppressed``."""
    per_group = table.drop_duplicates("group").set_index("group")["participants"]
    if national not in per_group.index:
        return table
    values = {str(g): v for g, v in per_group.items()}
    hidden = {g for g, v in values.items() if pd.isna(v)}
    groups = tuple(g for g in values if g != national)
    hide = suppress_complements(values, hidden, [(national, groups)])
    out = table.copy()
    rows = out["group"].astype(str).isin(hide)  # hidden here, or already where the reports hide it
    out["participants"] = out["participants"].mask(rows)
    out["suppressed"] = out["suppressed"].astype(bool) | rows.to_numpy()
    return out


def forest_plot(table: pd.DataFrame, lang: str):
    """One panel per main outcome: each group's effect with its interval, one marker per horizon."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outcomes = [o for o in table["outcome"].dropna().unique()]
    groups = list(dict.fromkeys(table["group"]))
    fig, axes = plt.subplots(
        1, max(1, len(outcomes)), figsize=(5 * max(1, len(outcomes)), 0.35 * len(groups) + 1.5)
    )
    axes = np.atleast_1d(axes)
    horizons = sorted(table["horizon_months"].dropna().unique())
    for ax, o in zip(axes, outcomes, strict=False):
        part = table[table["outcome"] == o]
        scale = 100.0 if OUTCOME_INFO[o].unit == "share" else 1.0
        for j, h in enumerate(horizons):
            r = part[part["horizon_months"] == h].set_index("group").reindex(groups)
            y = np.arange(len(groups)) + (j - (len(horizons) - 1) / 2) * 0.2
            est = r["estimate"].to_numpy(float) * scale
            lo = r["ci_lower"].to_numpy(float) * scale
            hi = r["ci_upper"].to_numpy(float) * scale
            ax.errorbar(est, y, xerr=[est - lo, hi - est], fmt="o", ms=4, capsize=2, label=f"k = {int(h)}")
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_yticks(np.arange(len(groups)), [_NATIONAL[lang] if g == "national" else g for g in groups])
        ax.invert_yaxis()
        info = OUTCOME_INFO[o]
        unit = {"share": {"sv": "procentenheter", "en": "percentage points"}, "sek": {"sv": "kr", "en": "SEK"},
                "days": {"sv": "dagar", "en": "days"}}[info.unit][lang]  # fmt: skip
        ax.set_title(info.label_sv if lang == "sv" else info.label_en, fontsize=10)
        ax.set_xlabel(unit)
    axes[0].legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig
