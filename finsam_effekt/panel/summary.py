"""The summary of outcome paths per arm and month that the outcome-path figure and ``outcome_paths.csv`` show.

The report computes no statistic: the weighted mean path of each arm, with its interval, is computed here, beside
the paths themselves (:func:`~finsam_effekt.panel.outcome_paths`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def summarise_paths(paths: pd.DataFrame, outcomes: Sequence[str], weights: str = "weights") -> pd.DataFrame:
    """Weighted mean outcome per ``rel_month`` and arm, for the outcome-path figure (``outcome_paths.csv``).

    For arm a (treated = 1 / control = 0), month r and outcome o over uncensored rows i with weights w_i:
    ``mean = Σ w_i y_i / Σ w_i``; ``se = sqrt(Σ w_i² (y_i − mean)²) / Σ w_i`` (the linearised SE of a ratio
    mean, rows treated as independent; the effect table has the clustered inference); ``ci = mean ± 1.96 se``;
    ``n`` = number of distinct persons in the cell (suppressed below the threshold by the writer).
    """
    p = paths
    if "censored" in p:
        p = p[~p["censored"].astype(bool)]
    w_all = p[weights].to_numpy(float) if weights in p else np.ones(len(p))
    rows = []
    arm = np.where(p["treated"].to_numpy() == 1, "treated", "control")
    for o in outcomes:
        if o not in p:
            continue
        d = pd.DataFrame(
            {
                "rel_month": p["rel_month"].to_numpy(),
                "arm": arm,
                "y": p[o].to_numpy(float),
                "w": w_all,
                "person_id": p["person_id"].to_numpy(),
            }
        )
        d = d[np.isfinite(d["y"]) & (d["w"] > 0)]
        for (r, a), g in d.groupby(["rel_month", "arm"], sort=True):
            sw = g["w"].sum()
            m = float((g["w"] * g["y"]).sum() / sw)
            se = float(np.sqrt((g["w"] ** 2 * (g["y"] - m) ** 2).sum()) / sw)
            rows.append(
                (
                    o,
                    int(r),
                    a,
                    m,
                    m - 1.959963984540054 * se,
                    m + 1.959963984540054 * se,
                    g["person_id"].nunique(),
                )
            )
    return pd.DataFrame(rows, columns=["outcome", "rel_month", "arm", "mean", "ci_lower", "ci_upper", "n"])
