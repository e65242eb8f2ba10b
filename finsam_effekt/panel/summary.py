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
    p = paths  # censored rows are left out below (ok), not by a copy of the whole table without them
    seen = ~p["censored"].to_numpy(bool) if "censored" in p else np.ones(len(p), dtype=bool)
    w_all = p[weights].to_numpy(float) if weights in p else np.ones(len(p))
    rows = []
    treated = p["treated"].to_numpy() == 1
    rel = p["rel_month"].to_numpy()
    person = pd.factorize(p["person_id"])[0]
    # one stable sort by (rel_month, arm; control before treated, as the names sort): every cell is then a run,
    # its rows in input order as a groupby would give them, so the sums below are the same floating-point sums
    rel_codes, rel_levels = pd.factorize(rel, sort=True)
    key = rel_codes.astype(np.int64) * 2 + treated
    order = np.argsort(key, kind="stable")
    key_s, w_s, person_s, seen_s = key[order], w_all[order], person[order], seen[order]
    for o in outcomes:
        if o not in p:
            continue
        y_s = p[o].to_numpy(float)[order]
        ok = np.isfinite(y_s) & (w_s > 0) & seen_s
        k, w, y, who = key_s[ok], w_s[ok], y_s[ok], person_s[ok]
        bounds = np.flatnonzero(np.r_[True, k[1:] != k[:-1], True]) if len(k) else np.zeros(1, np.int64)
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            gw, gy = w[a:b], y[a:b]
            sw = gw.sum()
            m = float((gw * gy).sum() / sw)
            se = float(np.sqrt((gw**2 * (gy - m) ** 2).sum()) / sw)
            rows.append(
                (
                    o,
                    int(rel_levels[k[a] // 2]),
                    "treated" if k[a] % 2 else "control",
                    m,
                    m - 1.959963984540054 * se,
                    m + 1.959963984540054 * se,
                    len(np.unique(who[a:b])),
                )
            )
    return pd.DataFrame(rows, columns=["outcome", "rel_month", "arm", "mean", "ci_lower", "ci_upper", "n"])
