"""Register tables of a chunk from its latent states, with the register mess that changes no monthly quantity.

The tables are ``population``, ``benefit_spells``, ``social_assistance`` and ``earnings``.

Steps 3 and 9 of the data-generating process in the package docstring (:mod:`finsam_effekt.synth`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import months as mo
from .config import Mess
from .world import BENEFIT_ORDER, EDU, KOMMUNER, REGIONS, People, World, code_ext


def as_dates(d: np.ndarray) -> pd.Series:
    """``datetime64[D]`` (NaT allowed) as a pandas datetime column."""
    return pd.Series(np.asarray(d, "datetime64[D]").astype("datetime64[ns]"))


def register_tables(
    world: World,
    p: People,
    state_mat: np.ndarray,
    day_mat: np.ndarray,
    draw_day: np.ndarray,
    earn: np.ndarray,
    sa: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, pd.DataFrame]:
    mess = world.cfg.mess
    T, tw0, n = world.T, world.tw0, p.n
    nat = np.datetime64("NaT", "D")
    rows = np.arange(n)
    imm = np.where(
        p.immig_t >= 0,
        world.mstart[np.maximum(p.immig_t, 0)] + (draw_day[rows, np.maximum(p.immig_t, 0)] - 1),
        nat,
    )
    ct = np.minimum(p.censor_t, T - 1)
    cdate = np.where(p.censor_t < T, world.mstart[ct] + (draw_day[rows, ct] - 1), nat)
    population = pd.DataFrame(
        {
            "person_id": p.pid,
            "sex": np.where(p.sex_k, "K", "M").astype(object),
            "birth_year": p.birth_year.astype(np.int64),
            "education": np.array(EDU, dtype=object)[p.edu],
            "kommun": np.array(KOMMUNER, dtype=object)[p.kommun],
            "birth_region": np.array(REGIONS, dtype=object)[p.region],
            "immigration_date": as_dates(imm),
            "emigration_date": as_dates(np.where(p.death, nat, cdate)),
            "death_date": as_dates(np.where(p.death, cdate, nat)),
        }
    )

    # benefit spells: runs of constant (code, extent) over the month before the window and the window; runs are
    # then clipped to the window (a run ending on day S-1 of the first window month keeps those days)
    cols = np.arange(tw0 - 1, T)
    W1 = T - tw0 + 1
    ages = world.year[cols][None, :] - p.birth_year[:, None]
    st = state_mat[:, cols]
    dm = day_mat[:, cols].astype(np.int64)
    mstart = world.mstart[cols]
    wstart = world.mstart[tw0]
    end_date = world.window_end_date
    first_col = (np.arange(W1) == 0)[None, :]
    last_col = (np.arange(W1) == W1 - 1)[None, :]
    parts = []
    for c in range(len(BENEFIT_ORDER)):
        e = code_ext(st, ages, p.pe[:, None], c)
        differs = np.concatenate([np.ones((n, 1), bool), e[:, 1:] != e[:, :-1]], axis=1)
        nxt_differs = np.concatenate([e[:, 1:] != e[:, :-1], np.ones((n, 1), bool)], axis=1)
        si, sj = np.nonzero((e > 0) & (differs | first_col))
        ei, ej = np.nonzero((e > 0) & (nxt_differs | last_col))
        if si.size == 0:
            continue
        frm = np.maximum(np.where(sj == 0, wstart, mstart[sj] + (dm[si, sj] - 1)), wstart)
        is_open = ej == W1 - 1
        nx = np.minimum(ej + 1, W1 - 1)
        to = np.where(is_open, nat, mstart[nx] + (dm[ei, nx] - 2))
        keep = is_open | (to >= wstart)
        parts.append(
            pd.DataFrame(
                {"row": si, "code": c, "from": frm, "to": to, "ext": e[si, sj], "rate": p.rates[si, c]}
            )[keep]
        )
    sp = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame({"row": [], "code": [], "from": [], "to": [], "ext": [], "rate": []})
    )
    if not mess.open_spells:
        sp["to"] = sp["to"].fillna(pd.Timestamp(end_date))
    if mess.monthly_payment_spells:
        sp = _split_by_month(sp, np.isin(sp["code"].to_numpy(), [2, 3, 4, 5, 6]), end_date)
    sp = _spell_mess(sp, mess, rng, end_date)
    to_eff = sp["to"].to_numpy("datetime64[D]")
    to_eff = np.where(np.isnat(to_eff), end_date, to_eff)
    ndays = (to_eff - sp["from"].to_numpy("datetime64[D]")).astype(np.int64) + 1
    sp["amount_sek"] = sp["rate"].to_numpy() * sp["ext"].to_numpy() * ndays
    order = np.lexsort((sp["code"].to_numpy(), sp["from"].to_numpy("datetime64[D]"), sp["row"].to_numpy()))
    sp = sp.iloc[order].reset_index(drop=True)
    spells = pd.DataFrame(
        {
            "person_id": p.pid[sp["row"].to_numpy(np.int64)],
            "benefit": np.array(BENEFIT_ORDER, dtype=object)[sp["code"].to_numpy(np.int64)],
            "from_date": as_dates(sp["from"].to_numpy("datetime64[D]")),
            "to_date": as_dates(sp["to"].to_numpy("datetime64[D]")),
            "extent": sp["ext"].to_numpy(float),
            "amount_sek": sp["amount_sek"].to_numpy(float),
        }
    )

    month_text = np.asarray(mo.from_index(world.month), dtype=object)

    def monthly(mat: np.ndarray, col: str) -> pd.DataFrame:
        i, j = np.nonzero(mat[:, tw0:] > 0)
        return pd.DataFrame(
            {"person_id": p.pid[i], "month": month_text[tw0 + j], col: mat[i, tw0 + j].astype(float)}
        )

    return {
        "population": population,
        "benefit_spells": spells,
        "social_assistance": monthly(sa, "amount_sek"),
        "earnings": monthly(earn, "earnings_sek"),
    }


def _split_by_month(sp: pd.DataFrame, which: np.ndarray, end_date: np.datetime64) -> pd.DataFrame:
    """Split the rows ``which`` at calendar-month boundaries (payment months); the last piece stays open."""
    frm = sp["from"].to_numpy("datetime64[D]")
    to = sp["to"].to_numpy("datetime64[D]")
    to_eff = np.where(np.isnat(to), end_date, to)
    m_from = frm.astype("datetime64[M]")
    nm = np.where(which, (to_eff.astype("datetime64[M]") - m_from).astype(np.int64) + 1, 1)
    rep = np.repeat(np.arange(len(sp)), nm)
    k = np.arange(rep.size) - np.repeat(np.cumsum(nm) - nm, nm)
    piece_month = m_from[rep] + k
    p_from = np.maximum(frm[rep], piece_month.astype("datetime64[D]"))
    p_to = np.minimum(to_eff[rep], (piece_month + 1).astype("datetime64[D]") - 1)
    last = k == nm[rep] - 1
    p_to = np.where(last, to[rep], p_to)  # keeps an open spell open
    out = sp.iloc[rep].reset_index(drop=True)
    out["from"] = p_from
    out["to"] = p_to
    return out


def _spell_mess(
    sp: pd.DataFrame, mess: Mess, rng: np.random.Generator, end_date: np.datetime64
) -> pd.DataFrame:
    """Split, overlapping and duplicate rows that leave every monthly quantity unchanged.

    A split spell becomes two consecutive rows; an overlapping one (extent 1) becomes one half-extent row over the
    whole spell plus two consecutive half-extent rows; duplicates are exact copies. Amounts follow from
    ``rate × extent × days`` of each row, so SEK per day is unchanged.
    """
    n = len(sp)
    frm = sp["from"].to_numpy("datetime64[D]")
    to = sp["to"].to_numpy("datetime64[D]")
    to_eff = np.where(np.isnat(to), end_date, to)
    ndays = (to_eff - frm).astype(np.int64) + 1
    u = rng.random(n)
    cut = 1 + np.floor(rng.random(n) * np.maximum(ndays - 1, 1)).astype(np.int64)  # days in the first part
    overlap = mess.overlapping_spells & (u < 0.03) & (sp["ext"].to_numpy() == 1.0) & (ndays >= 2)
    split = mess.split_spells & (u >= 0.03) & (u < 0.07) & (ndays >= 2)
    keep = sp[~overlap & ~split]
    out = [keep]
    for mask, half in ((split, False), (overlap, True)):
        if not mask.any():
            continue
        base = sp[mask]
        mid = frm[mask] + cut[mask]
        first = base.assign(to=as_dates(mid - 1).to_numpy())
        second = base.assign(**{"from": as_dates(mid).to_numpy()})
        if half:
            whole = base.assign(ext=0.5)
            first = first.assign(ext=0.5)
            second = second.assign(ext=0.5)
            out += [whole, first, second]
        else:
            out += [first, second]
    res = pd.concat(out, ignore_index=True)
    if mess.duplicate_spells and len(res):
        dup = rng.random(len(res)) < 0.003
        res = pd.concat([res, res[dup]], ignore_index=True)
    return res
