"""SUS: the registrations of a chunk's participants, the volume insatser and the yearly costs per insats.

Registrations include double registrations, later episodes and anonymous registrations (the SUS mess).

Steps 5, 8 and 9 of the data-generating process in the package docstring (:mod:`finsam_effekt.synth`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..schema import DEFAULT_EPISODE_GAP_DAYS, INSATS_TYPES
from .registers import as_dates
from .world import (
    CATALOGUE_TYPES,
    EDU,
    FORBUND_KOMMUNER,
    INSATS_TYPE_SHARES,
    KOMMUN_FORBUND,
    KOMMUNER,
    STATUS_OF_STATE,
    SUPPORT_OF_STATE,
    People,
    World,
)

_MISMATCH_CODES = np.array(["other_public", "social_assistance", "sickness_benefit", "none"], dtype=object)
_TYPE_POSITIONS: tuple[tuple[int, ...], ...] = tuple(
    tuple(j for j, t in enumerate(CATALOGUE_TYPES) if t == typ) for typ in INSATS_TYPES
)
_KOMMUN_FORBUND_IDX = np.array([list(FORBUND_KOMMUNER).index(f) for f in KOMMUN_FORBUND])
_PSB_CUTS = np.array([12, 36, 72, 120])
_PSB_LABELS = np.array(["lt1y", "1to3y", "3to6y", "6to10y", "gt10y"], dtype=object)


def _pick_type(u: np.ndarray) -> np.ndarray:
    shares = np.array([INSATS_TYPE_SHARES[t] for t in INSATS_TYPES])
    cum = np.cumsum(shares / shares.sum())
    return np.minimum((u[:, None] > cum[None, :]).sum(1), len(cum) - 1)


def _pick_position(type_idx: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Catalogue position (0..7 within a förbund) of an insats of each type, uniformly among that type's."""
    out = np.zeros(type_idx.size, np.int64)
    for ti, pos in enumerate(_TYPE_POSITIONS):
        sel = type_idx == ti
        out[sel] = np.asarray(pos)[np.minimum((u[sel] * len(pos)).astype(np.int64), len(pos) - 1)]
    return out


def _duration(rng: np.random.Generator, n: int, median: float) -> np.ndarray:
    """Days in insats: lognormal, median ``median``, sigma 0.9 (about half end within 6 months)."""
    return np.maximum(7, np.round(median * np.exp(0.9 * rng.standard_normal(n)))).astype(np.int64)


def registrations(
    world: World,
    p: People,
    rng: np.random.Generator,
    u_start: np.ndarray,
    start_day: np.ndarray,
    type_idx: np.ndarray,
    state_mat: np.ndarray,
    ps: np.ndarray,
    prior_ps: np.ndarray,
    draw_day: np.ndarray,
    anon: np.ndarray | None = None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The SUS registrations of a chunk's participants and the counts of ``truth.json``.

    Every participant gets a first registration (and, with the mess, parallel ones, dropout and return, a later
    episode), built alike. Participants flagged in ``anon`` (``SynthConfig.contamination``) are registered
    anonymously: their rows keep their förbund, insats, dates and SUS fields but have no ``person_id`` — they
    stay ordinary members of the population. Without contamination the anonymous registrations are copies of
    person registrations with shifted dates, of persons outside the population register.
    """
    mess = world.cfg.mess
    anon = np.zeros(p.n, bool) if anon is None else anon
    T = world.T
    wend = world.window_end_date
    cat = world.person_catalogue
    rows_all = np.arange(p.n)
    ct = np.minimum(p.censor_t, T - 1)
    censor_date = np.where(p.censor_t < T, world.mstart[ct] + (draw_day[rows_all, ct] - 1), wend + 100_000)
    ps_cum = np.concatenate([np.zeros((p.n, 1), np.int32), np.cumsum(ps, axis=1, dtype=np.int32)], axis=1)
    part = np.nonzero(u_start >= 0)[0]
    m = part.size
    fi = _KOMMUN_FORBUND_IDX[p.kommun[part]]

    def sim_t(d: np.ndarray) -> np.ndarray:
        y = d.astype("datetime64[M]").astype(np.int64) + 1970 * 12
        return np.clip(y - world.m0, 0, T - 1)

    def build(r: np.ndarray, f: np.ndarray, pos: np.ndarray, sd: np.ndarray, dur: np.ndarray) -> dict:
        end = np.minimum(sd + (dur - 1), censor_date[r] - 1)
        end = np.maximum(end, sd)
        ongoing = end > wend
        ts, te = sim_t(sd), sim_t(np.minimum(end, wend))
        crow = f * len(CATALOGUE_TYPES) + pos
        s_start = state_mat[r, ts]
        sup_start = SUPPORT_OF_STATE[s_start]
        months_before = prior_ps[r] + ps_cum[r, ts]
        psb = _PSB_LABELS[np.searchsorted(_PSB_CUTS, months_before, side="right")]
        psb = np.where(np.isin(sup_start, ["none", "student_aid"]), "not_applicable", psb)
        status = STATUS_OF_STATE[state_mat[r, te]]
        status = np.where(rng.random(r.size) < 0.12, "dropout", status)
        sup_end = SUPPORT_OF_STATE[state_mat[r, te]]
        if mess.ongoing:
            end_out = np.where(ongoing, np.datetime64("NaT", "D"), end)
            status = np.where(ongoing, None, status)
            sup_end = np.where(ongoing, None, sup_end)
        else:
            end_out = np.minimum(end, wend)
        return {
            "r": r,
            "crow": crow,
            "start": sd,
            "end": end_out,
            "end_eff": end,
            "ongoing": ongoing,
            "sup_start": sup_start,
            "sup_end": sup_end,
            "status": status.astype(object),
            "psb": psb,
        }

    sd1 = world.mstart[u_start[part]] + (start_day[part] - 1)
    first = build(part, fi, _pick_position(type_idx[part], rng.random(m)), sd1, _duration(rng, m, 170.0))
    regs = [first]
    linkable = ~anon[part]  # per participant: registered with a personal identity number
    n_double = 0
    n_later = 0
    # parallel insats in the same förbund, starting inside the first registration
    u_par, u_when, u_typ, u_pos = rng.random(m), rng.random(m), rng.random(m), rng.random(m)
    dur_par = _duration(rng, m, 90.0)
    last = np.minimum(first["end_eff"], wend)
    span = (last - sd1).astype(np.int64)
    sd_par = sd1 + 1 + np.floor(u_when * np.maximum(span - 1, 0)).astype(np.int64)
    par = (u_par < 0.08) & (span >= 1) & (sd_par <= last) & (sd_par < censor_date[part])
    max_end = first["end_eff"].copy()
    any_ongoing = first["ongoing"].copy()
    if mess.double_registrations and par.any():
        pos = _pick_position(_pick_type(u_typ[par]), u_pos[par])
        pos = np.where(
            pos == first["crow"][par] % len(CATALOGUE_TYPES), (pos + 1) % len(CATALOGUE_TYPES), pos
        )
        reg = build(part[par], fi[par], pos, sd_par[par], dur_par[par])
        regs.append(reg)
        n_double += int((par & linkable).sum())
        max_end[par] = np.maximum(max_end[par], reg["end_eff"])
        any_ongoing[par] |= reg["ongoing"]
    # dropout and return within the episode gap
    u_ret, u_gap = rng.random(m), rng.random(m)
    dur_ret = _duration(rng, m, 120.0)
    gap = 1 + np.floor(u_gap * (DEFAULT_EPISODE_GAP_DAYS - 10)).astype(np.int64)
    sd_ret = first["end_eff"] + gap
    ret = (u_ret < 0.05) & ~first["ongoing"] & (sd_ret <= wend) & (sd_ret < censor_date[part])
    if mess.double_registrations and ret.any():
        first["status"][ret] = "dropout"
        reg = build(part[ret], fi[ret], first["crow"][ret] % len(CATALOGUE_TYPES), sd_ret[ret], dur_ret[ret])
        regs.append(reg)
        n_double += int((ret & linkable).sum())
        max_end[ret] = np.maximum(max_end[ret], reg["end_eff"])
        any_ongoing[ret] |= reg["ongoing"]
    # a later episode at least a year after the end of the previous one
    u_lat, u_lwhen, u_ltyp, u_lpos = rng.random(m), rng.random(m), rng.random(m), rng.random(m)
    dur_lat = _duration(rng, m, 170.0)
    sd_lat = max_end + 365 + np.floor(u_lwhen * 700).astype(np.int64)
    lat = (u_lat < 0.10) & ~any_ongoing & (sd_lat <= wend) & (sd_lat < censor_date[part])
    if mess.later_episodes and lat.any():
        pos = _pick_position(_pick_type(u_ltyp[lat]), u_lpos[lat])
        regs.append(build(part[lat], fi[lat], pos, sd_lat[lat], dur_lat[lat]))
        n_later += int((lat & linkable).sum())

    def frame(reg: dict, kind: str, pid: np.ndarray, demo_rows: np.ndarray) -> pd.DataFrame:
        crow = reg["crow"]
        return pd.DataFrame(
            {
                "person_id": pid,
                "registration_kind": kind,
                "forbund_id": cat["forbund_id"].to_numpy()[crow],
                "insats_id": cat["insats_id"].to_numpy()[crow],
                "insats_type": cat["insats_type"].to_numpy()[crow],
                "start_date": as_dates(reg["start"]),
                "end_date": as_dates(reg["end"]),
                "sex": np.where(p.sex_k[demo_rows], "K", "M").astype(object),
                "birth_year": p.birth_year[demo_rows].astype(np.int64),
                "education": np.array(EDU, dtype=object)[p.edu[demo_rows]],
                "kommun": np.array(KOMMUNER, dtype=object)[p.kommun[demo_rows]],
                "support_at_start": reg["sup_start"],
                "support_at_end": reg["sup_end"],
                "status_at_end": reg["status"],
                "public_support_before": reg["psb"],
            }
        )

    person = pd.concat([frame(r, "person", p.pid[r["r"]], r["r"]) for r in regs], ignore_index=True)
    # SUS support at start disagrees with the registers now and then
    u_mis = rng.random(len(person))
    alt = _MISMATCH_CODES[np.minimum((rng.random(len(person)) * len(_MISMATCH_CODES)).astype(int), 3)]
    if mess.support_mismatch:
        mis = (u_mis < 0.10) & (person["support_at_start"].to_numpy() != alt)
        person.loc[mis, "support_at_start"] = alt[mis]
    # contamination: anonymous participants' rows lose their personal identity number (they stay in the
    # population); they follow the person rows, in start order
    is_anon = anon[np.concatenate([r["r"] for r in regs])] if len(person) else np.zeros(0, bool)
    contaminated = person[is_anon].copy()
    person = person[~is_anon]
    person = person.sort_values(["person_id", "start_date", "insats_id"], kind="stable").reset_index(
        drop=True
    )
    contaminated["person_id"] = None
    contaminated["registration_kind"] = "anonymous"
    contaminated = contaminated.sort_values(["start_date", "forbund_id", "insats_id"], kind="stable")
    if not mess.anonymous:
        contaminated = contaminated.iloc[:0]

    # anonymous registrations of persons outside the population register (the world without contamination)
    n_anon = int(rng.poisson(0.9 * len(person))) if len(person) else 0
    tmpl = rng.integers(0, max(len(person), 1), n_anon)
    shift = rng.integers(-120, 121, n_anon)
    dur_anon = _duration(rng, n_anon, 170.0)
    outside = pd.DataFrame(columns=person.columns)
    if mess.anonymous and not world.cfg.contamination and n_anon and len(person):
        outside = person.iloc[tmpl].reset_index(drop=True).copy()
        sd = outside["start_date"].to_numpy("datetime64[D]") + shift
        sd = np.clip(sd, world.mstart[world.tw0], wend)
        end = sd + (dur_anon - 1)
        ongoing = end > wend
        outside["person_id"] = None
        outside["registration_kind"] = "anonymous"
        outside["start_date"] = as_dates(sd)
        if mess.ongoing:
            outside["end_date"] = as_dates(np.where(ongoing, np.datetime64("NaT", "D"), end))
            outside.loc[ongoing, ["status_at_end", "support_at_end"]] = None
        else:
            outside["end_date"] = as_dates(np.minimum(end, wend))
        outside.loc[~ongoing & outside["status_at_end"].isna(), "status_at_end"] = "other"
        outside.loc[~ongoing & outside["support_at_end"].isna(), "support_at_end"] = "none"
    extra = [x for x in (contaminated, outside) if len(x)]
    out = pd.concat([person, *extra], ignore_index=True) if extra else person
    n_linkable = int(linkable.sum())
    counts = {
        "registrations": len(out),
        "person_registrations": len(person),
        "anonymous_registrations": len(contaminated) + len(outside),
        "double_registrations": n_double,
        "linkable_persons": n_linkable,
        "episodes": n_linkable + n_later,
        "anonymous_participants": int((~linkable).sum()),
    }
    return out, counts


def volume_and_costs(world: World, cost_counts: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    cfg = world.cfg
    rng = np.random.default_rng([cfg.seed, 10**9 + 1])
    years = np.arange(world.w0 // 12, world.w1 // 12 + 1)
    vol = world.catalogue[world.catalogue["volume"]].reset_index(drop=True)
    lam = vol["volume_rate"].to_numpy()[:, None] * cfg.persons / 60_000.0 * np.ones((1, years.size))
    counts = rng.poisson(lam)
    volume = pd.DataFrame(
        {
            "forbund_id": np.repeat(vol["forbund_id"].to_numpy(), years.size),
            "insats_id": np.repeat(vol["insats_id"].to_numpy(), years.size),
            "year": np.tile(years, len(vol)).astype(np.int64),
            "participations": counts.ravel().astype(np.int64),
        }
    )
    volume = volume[volume["participations"] > 0].reset_index(drop=True)
    if not cfg.mess.volume:
        volume = volume.iloc[:0]
    cat = world.catalogue.set_index("insats_id")
    per = cost_counts.groupby(["insats_id", "year"], as_index=False)["n"].sum()
    per = pd.concat(
        [per, volume.rename(columns={"participations": "n"})[["insats_id", "year", "n"]]], ignore_index=True
    ).sort_values(["insats_id", "year"], kind="stable")
    noise = np.exp(0.05 * rng.standard_normal(len(per)))
    cpp = cat.loc[per["insats_id"], "cost_per_participant"].to_numpy()
    index = 1.02 ** (per["year"].to_numpy() - years[0])
    costs = pd.DataFrame(
        {
            "forbund_id": cat.loc[per["insats_id"], "forbund_id"].to_numpy(),
            "insats_id": per["insats_id"].to_numpy(),
            "year": per["year"].to_numpy(np.int64),
            "cost_sek": np.round(per["n"].to_numpy() * cpp * index * noise),
        }
    ).reset_index(drop=True)
    return volume, costs
