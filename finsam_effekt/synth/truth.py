"""The truth: every participant's potential-outcome effects, their subgroup means and the estimands in words.

What ``truth.json`` and ``truth_participants.parquet`` hold.

Step 7 and "Truth" in the package docstring (:mod:`finsam_effekt.synth`).
"""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import pandas as pd

from .. import months as mo
from ..schema import INSATS_TYPES, OUTCOMES
from .config import SynthConfig
from .world import People, World, monthly_quantities

#: Horizons (months after the reference month) of the truth.
TRUTH_HORIZONS: tuple[int, ...] = tuple(range(1, 25))
#: Horizons written per participant to ``truth_participants.parquet``.
PARTICIPANT_HORIZONS: tuple[int, ...] = (3, 6, 12)
#: Age bands (label, lowest, highest age at u) of the truth's ``age_band=`` subgroups.
AGE_BANDS: tuple[tuple[str, int, int], ...] = (("16-29", 16, 29), ("30-49", 30, 49), ("50-66", 50, 66))

#: The estimand of ``att``/``att_cumulative`` in ``truth.json`` (and the README), in words.
ESTIMAND = (
    "ATT: for linkable participants (persons with a person registration in SUS), the mean difference between "
    "the outcome in calendar month u+k (status) or summed over months u+1..u+k (cumulative) with the insats and "
    "without any insats during follow-up, where u is the calendar month of the start of the person's first "
    "linkable registration; averaged over participants whose month u+k is observed (resident and inside the "
    "window). Potential outcomes are simulated with common random numbers."
)
#: The estimand of ``att_not_now``/``att_cumulative_not_now`` in ``truth.json``, in words.
ESTIMAND_NOT_NOW = (
    "ATT against 'not now' (Sianesi 2004), the estimand of comparison groups that keep controls who start later "
    "(later_treated: keep): as 'att', but the outcome without the insats is that of not starting in month u while "
    "the entry hazard applies from month u+1 on to the path's own register history, so the person may start an "
    "insats later and then gets that insats' effect (the same uniforms as the other paths)."
)


def _subgroups(p: People, part: np.ndarray, age_u: np.ndarray, type_idx: np.ndarray) -> dict[str, np.ndarray]:
    """Subgroup name -> mask over the participants ``part``: all, sex, insats type, age band at u."""
    groups = {"all": np.ones(part.size, bool)}
    groups["sex=K"] = p.sex_k[part]
    groups["sex=M"] = ~p.sex_k[part]
    for ti, typ in enumerate(INSATS_TYPES):
        groups[f"insats_type={typ}"] = type_idx[part] == ti
    for band, lo, hi in AGE_BANDS:
        groups[f"age_band={band}"] = (age_u[part] >= lo) & (age_u[part] <= hi)
    return groups


def truth_chunk(
    world: World,
    p: People,
    u_start: np.ndarray,
    age_u: np.ndarray,
    type_idx: np.ndarray,
    state_mat: np.ndarray,
    cf_mat: np.ndarray,
    nn_mat: np.ndarray,
    draw_day: np.ndarray,
    earn_noise: np.ndarray,
    sa_noise: np.ndarray,
) -> tuple[pd.DataFrame, dict, dict, dict]:
    """Individual effects for k = 1..24 and their subgroup sums: ``Y(with)(u+k) - Y(without)(u+k)`` (no insats
    during follow-up) and ``Y(with)(u+k) - Y(not now)(u+k)`` (no start at u, a later start possible)."""
    T = world.T
    part = np.nonzero(u_start >= 0)[0]
    u = u_start[part]
    ks = np.asarray(TRUTH_HORIZONS)
    tk = u[:, None] + ks[None, :]
    valid = (tk <= T - 1) & (tk < p.censor_t[part][:, None])
    tkc = np.minimum(tk, T - 1)
    r = part[:, None]
    by = p.birth_year[part][:, None]
    age_cur, age_prev = world.year[tkc] - by, world.year[tkc - 1] - by
    dim = world.days[tkc]
    en = earn_noise[r, tkc].astype(float)
    sn = sa_noise[r, tkc].astype(float)
    q = {}
    for name, mat in (("with", state_mat), ("without", cf_mat), ("not_now", nn_mat)):
        s_prev, s_cur = mat[r, tkc - 1], mat[r, tkc]
        change = (s_prev != s_cur) | (age_prev != age_cur)
        day = np.where(change, draw_day[r, tkc], 1)
        q[name] = monthly_quantities(
            s_prev,
            s_cur,
            age_prev,
            age_cur,
            day,
            dim,
            p.rates[part][:, None, :],
            p.w[part][:, None],
            p.sa_base[part][:, None],
            en,
            sn,
            world.cfg.self_support_threshold_sek,
            p.pe[part][:, None],
        )
    status = {o: np.where(valid, q["with"][o] - q["without"][o], np.nan) for o in OUTCOMES}
    cumulative = {o: np.cumsum(status[o], axis=1) for o in OUTCOMES}
    status_nn = {o: np.where(valid, q["with"][o] - q["not_now"][o], np.nan) for o in OUTCOMES}
    cumulative_nn = {o: np.cumsum(status_nn[o], axis=1) for o in OUTCOMES}
    groups = _subgroups(p, part, age_u, type_idx)
    sums = {
        g: {
            o: np.stack(
                [
                    np.nansum(status[o][m], 0),
                    np.nansum(cumulative[o][m], 0),
                    np.nansum(status_nn[o][m], 0),
                    np.nansum(cumulative_nn[o][m], 0),
                ]
            )
            for o in OUTCOMES
        }
        for g, m in groups.items()
    }
    counts = {g: valid[m].sum(0) for g, m in groups.items()}
    n_part = {g: int(m.sum()) for g, m in groups.items()}
    cols: dict[str, np.ndarray] = {
        "person_id": p.pid[part],
        "ref_month": np.asarray(mo.from_index(world.month[u]) if u.size else np.array([], str), dtype=object),
    }
    for o in OUTCOMES:
        for k in PARTICIPANT_HORIZONS:
            cols[f"{o}_m{k}"] = status[o][:, k - 1]
    for o in OUTCOMES:
        for k in PARTICIPANT_HORIZONS:
            cols[f"{o}_cum{k}"] = cumulative[o][:, k - 1]
    for o in OUTCOMES:
        for k in PARTICIPANT_HORIZONS:
            cols[f"{o}_m{k}_not_now"] = status_nn[o][:, k - 1]
            cols[f"{o}_cum{k}_not_now"] = cumulative_nn[o][:, k - 1]
    return pd.DataFrame(cols), sums, counts, n_part


def _json_number(x: float) -> float | None:
    x = float(x)
    return None if not math.isfinite(x) else x


def truth_summary(
    config: SynthConfig,
    sums: dict[str, dict[str, np.ndarray]],
    counts: dict[str, np.ndarray],
    n_part: dict[str, int],
    reg_counts: dict[str, int],
) -> dict:
    """The content of ``truth.json``: the world's settings, the estimands in words, the true ATTs per subgroup,
    outcome and horizon (means of the chunks' summed individual effects over the uncensored participants; None
    where nobody is uncensored) and the SUS counts.

    ``sums[g][o]`` has 4 rows: status and cumulative against "without", then against "not now" (summed over the
    chunks' :func:`truth_chunk` output); ``counts[g]`` the uncensored participants per horizon.
    """
    # rows of sums[g][o]: 0/1 status/cumulative against "without", 2/3 against "not now"
    blocks = {"att": 0, "att_cumulative": 1, "att_not_now": 2, "att_cumulative_not_now": 3}
    means: dict[str, dict[str, dict]] = {b: {} for b in blocks}
    for g in sums:
        c = counts[g].astype(float)
        for b, row in blocks.items():
            means[b][g] = {}
            for o in OUTCOMES:
                with np.errstate(invalid="ignore", divide="ignore"):
                    v = np.where(c > 0, sums[g][o][row] / np.maximum(c, 1), np.nan)
                means[b][g][o] = {str(k): _json_number(v[i]) for i, k in enumerate(TRUTH_HORIZONS)}
    order = (
        "registrations",
        "person_registrations",
        "anonymous_registrations",
        "volume_participations",
        "double_registrations",
        "linkable_persons",
        "episodes",
        "anonymous_participants",
    )
    return {
        "estimand": ESTIMAND,
        "seed": config.seed,
        "persons": config.persons,
        "effect_scale": config.effect_scale,
        "hidden_confounding": config.hidden_confounding,
        "window": [config.start, config.end],
        "self_support_threshold_sek": config.self_support_threshold_sek,
        "contamination": config.contamination,
        "anonymous_share": config.anonymous_share if config.contamination else 0.0,
        "pre_entry_dip": config.pre_entry_dip,
        "mess": asdict(config.mess),
        "estimand_not_now": ESTIMAND_NOT_NOW,
        "att": means["att"],
        "att_cumulative": means["att_cumulative"],
        "att_not_now": means["att_not_now"],
        "att_cumulative_not_now": means["att_cumulative_not_now"],
        "n_participants": n_part,
        "n_uncensored": {
            g: {str(k): int(counts[g][i]) for i, k in enumerate(TRUTH_HORIZONS)} for g in counts
        },
        "counts": {k: int(reg_counts.get(k, 0)) for k in order},
    }
