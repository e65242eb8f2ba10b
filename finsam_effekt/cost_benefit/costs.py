"""Insats cost per participant, from the förbund's costs per insats and year and its participant counts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..config.cost_benefit import CostBenefitParameters, load_cost_benefit_parameters
from ..errors import InputError
from ..tables import as_pandas


@dataclass
class CostPerParticipant:
    """Insats cost per participant, per insats-year and averaged over the analysed participants."""

    mean_sek: float
    per_insats: pd.DataFrame
    n_participants: int
    price_base_year: int
    #: the participants' columns (no ``person_id``) with each one's ``cost_per_participant_sek``
    per_participant: pd.DataFrame | None = None

    def for_subgroup(self, subgroup: str = "all") -> float:
        """Mean cost over the participants of a subgroup ``var=value`` (e.g. ``insats_type=assessment``).

        A subgroup's effects are weighed against the cost of *its* insatser: ``cost_benefit`` calls this with its
        ``subgroup`` when given a :class:`CostPerParticipant`.
        """
        if subgroup == "all":
            return self.mean_sek
        var, _, val = subgroup.partition("=")
        pp = self.per_participant
        if pp is None or var not in pp.columns:
            raise InputError(
                f"cost per participant: the participants have no column {var!r} for subgroup {subgroup!r}; "
                "pass a number as cost_per_participant_sek"
            )
        sel = pp.loc[pp[var].astype(str) == val, "cost_per_participant_sek"]
        if sel.empty:
            raise InputError(f"cost per participant: no participant in subgroup {subgroup!r}")
        return float(sel.mean())

    def summary(self) -> str:
        return (
            f"Cost per participant: {self.mean_sek:,.0f} SEK ({self.price_base_year} prices), mean over "
            f"{self.n_participants} participants and {len(self.per_insats)} insats-years"
        )

    def to_frame(self) -> pd.DataFrame:
        return self.per_insats.copy()


def cost_per_participant(
    insats_costs: pd.DataFrame,
    participants: pd.DataFrame,
    sus_registrations: pd.DataFrame,
    params: CostBenefitParameters | None = None,
    sus_volume: pd.DataFrame | None = None,
) -> CostPerParticipant:
    """Cost per participant from the förbund's costs and its participant counts.

    Rule: for each insats and year, ``cost_per_participant = cost_sek / n`` where ``n`` = distinct linkable
    persons with a registration *starting* that year in that insats (a person registered twice counts once)
    + anonymous registrations starting that year (each counts as one participant; they cannot be deduplicated)
    + volume participations of that insats-year from ``sus_volume`` (when given). Costs are moved to
    ``price_base_year`` prices with the KPI. Each analysed participant (``participants``: ``forbund_id``,
    ``insats_id``, ``start_date``) is given the cost per participant of its first linkable insats in its start
    year; the result is their mean.

    Raises
    ------
    InputError
        When an analysed participant's insats-year has no cost row or no counted participants.
    """
    params = params or load_cost_benefit_parameters()
    insats_costs = as_pandas(insats_costs, "cost_per_participant: insats_costs")
    participants = as_pandas(participants, "cost_per_participant: participants")
    reg = as_pandas(sus_registrations, "cost_per_participant: sus_registrations").copy()
    if sus_volume is not None:
        sus_volume = as_pandas(sus_volume, "cost_per_participant: sus_volume")
    reg["year"] = pd.to_datetime(reg["start_date"]).dt.year
    key = ["forbund_id", "insats_id", "year"]
    person = reg[reg["registration_kind"] == "person"]
    n_person = person.groupby(key)["person_id"].nunique().rename("n_linkable")
    n_anon = reg[reg["registration_kind"] == "anonymous"].groupby(key).size().rename("n_anonymous")
    costs = insats_costs[[*key, "cost_sek"]].copy()
    costs["year"] = costs["year"].astype(int)
    per = costs.merge(n_person.reset_index(), on=key, how="left").merge(
        n_anon.reset_index(), on=key, how="left"
    )
    if sus_volume is not None and len(sus_volume):
        vol = sus_volume.groupby(key)["participations"].sum().rename("n_volume").reset_index()
        per = per.merge(vol, on=key, how="left")
    else:
        per["n_volume"] = 0
    for c in ("n_linkable", "n_anonymous", "n_volume"):
        per[c] = per[c].fillna(0).astype(int)
    per["n_participants"] = per["n_linkable"] + per["n_anonymous"] + per["n_volume"]
    factors = per["year"].map(params.price_factor)
    with np.errstate(divide="ignore", invalid="ignore"):
        per["cost_per_participant_sek"] = np.where(
            per["n_participants"] > 0, per["cost_sek"] * factors / per["n_participants"], np.nan
        )
    p = participants.drop(columns=["person_id", "year"], errors="ignore").copy()
    p["year"] = pd.to_datetime(participants["start_date"]).dt.year.to_numpy()
    p = p.merge(per[[*key, "cost_per_participant_sek"]], on=key, how="left")
    missing = p["cost_per_participant_sek"].isna()
    if missing.any():
        raise InputError(
            f"insats_costs: {int(missing.sum())} of {len(p)} participants start in an insats-year without a cost "
            "row (or with no counted participants); add the costs to insats_costs or set "
            "cost_per_participant_sek in the cost-benefit parameters"
        )
    return CostPerParticipant(
        mean_sek=float(p["cost_per_participant_sek"].mean()),
        per_insats=per,
        n_participants=len(p),
        price_base_year=params.price_base_year,
        per_participant=p,
    )
