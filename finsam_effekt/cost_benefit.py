"""Cost-benefit per financier, driven by the estimated effects (domain note §6, issue 8).

The calculation answers "is an insats worth its cost, and for whom?" from the *matched counterfactual* effects
(treated minus matched controls), split by financier, with two perspectives that are never summed:

* **public finance** (offentligfinansiell): per financier — Försäkringskassan (``FK``), Arbetsförmedlingen
  (``AF``), the ``state`` in total (FK + AF + state income tax + payroll fees + a-kassa when the state pays it),
  the ``region``, the ``kommun`` — plus ``public_sector_total`` (all of them once) and, for transparency, the
  ``participant`` (change in disposable income; not a financier). Transfers count here.
* **socio-economic** (samhällsekonomisk), financier ``society``: production value (earnings plus payroll fees)
  minus the resource cost of the insats, optionally plus the excess burden of public funds
  ``(mcpf - 1) x net public budget``. Transfers cancel.

Streams and present values
--------------------------
Let ``e_o(h)`` be the status effect on outcome ``o`` (SEK in month ``u+h``) at the estimated horizons
``h_1 < ... < h_J = K``. The monthly stream ``x_o(m)``, ``m = 1..M`` (``M = 12 x horizon_years``) is

* ``m <= h_1``: ``e_o(h_1)``; ``h_j <= m <= h_{j+1}``: linear interpolation (exact when every month is estimated);
* ``m > K``: ``b_o x f(m - K)`` with ``b_o`` the mean of ``x_o`` over the last ``persistence_base_months``
  estimated months and ``f`` the persistence: ``none`` 0, ``constant`` 1, ``linear_decay`` ``max(0, 1 - t/(12Y))``,
  ``exponential`` ``0.5 ** (t / (12 H))``.

``PV_o = sum_m x_o(m) (1 + r) ** (-m / 12)`` with the real discount rate ``r`` (monthly flows, annual rate; the
cost is paid at ``m = 0``, undiscounted). Every item is linear in the effects, ``item = sum_o a_o PV_o + c``,
which makes break-even effect scales closed form and the Monte Carlo a matrix product.

Items (Δ = effect, treated minus counterfactual; taxable base ``Δy = Δearnings + Σ_taxable Δsek_g``)
-----------------------------------------------------------------------------------------------------
* cost: ``-share x C`` (state 50 %, region 25 %, kommuner 25 %; lag 2003:1210), the state share carried by FK
  by default (``state_cost_channel``).
* savings: ``-Δsek_g`` to the payer of group ``g`` (``schema.GROUP_PAYER``; a-kassa to the state or a fund).
* kommunal / regional income tax: ``rate x Δy``; state income tax ``0.20 x share_above_threshold x Δy``;
  payroll fees ``fee x Δearnings`` (state).
* participant: ``Δearnings + Σ Δsek - taxes on Δy``.
* society: ``(1 + fee) Δearnings - C + (mcpf - 1) x public_sector_total.net``.

With ``mcpf = 1``: ``society.net = public_sector_total.net + participant.net`` (transfers cancel), a check the
tests make.

Beside it, :func:`before_after_cost_benefit` runs the same calculation on the local calculations' "effect" —
participants' change from the start (months −3..−1) to the first year (1..12), no comparison group — so the
difference shows how much of that "return" would have happened anyway (regression to the mean, business cycle).

Not counted (state them with the result): grundavdrag and jobbskatteavdrag (they lower the income tax on small
extra earnings, so the tax items are upper bounds), the participant's lost leisure or home production,
displacement of other job seekers, and health-care use (the region's costs other than its share of the insats).

References: Boardman, Greenberg, Vining & Weimer (2018) on perspectives and transfers; ASEK (Trafikverket) for
the discount rate and the tax factor; Card, Kluve & Weber (2018) on the persistence of labour-market programme
effects; Sianesi (2004) on dynamic matching evaluations; Ashenfelter (1978) on the pre-programme dip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .config.cost_benefit import (
    DEFAULT_PARAMETERS_FILE,
    CostBenefitParameters,
    MonteCarloSettings,
    PersistenceSettings,
    SensitivitySettings,
    load_cost_benefit_parameters,
)
from .errors import ConfigError, InputError
from .schema import GROUP_PAYER
from .tables import as_pandas

#: SEK outcome of each benefit group (names of ``schema.OUTCOMES``).
GROUP_OUTCOME: dict[str, str] = {
    "sickness": "sek_sickness",
    "disability": "sek_disability",
    "labour_market": "sek_labour_market",
    "unemployment": "sek_unemployment",
    "social_assistance": "social_assistance_sek",
}
EARNINGS_OUTCOME = "earnings_sek"
#: Outcomes the cost-benefit needs (status effects in month u+h, SEK).
REQUIRED_OUTCOMES: tuple[str, ...] = (*GROUP_OUTCOME.values(), EARNINGS_OUTCOME)



# ---------------------------------------------------------------------------------------------------------------
# Costs per participant
# ---------------------------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------------------------
# Effects: point estimates and draws
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Effects:
    columns: list[tuple[str, int]]  # (outcome, horizon) in column order
    estimate: np.ndarray
    std_error: np.ndarray
    estimator: str = ""


def _select_effects(
    effects: pd.DataFrame,
    estimator: str | None,
    subgroup: str,
    need_se: bool = True,
    notes: list[str] | None = None,
) -> _Effects:
    """The status effects of ``REQUIRED_OUTCOMES`` for one estimator and subgroup, in a fixed order.

    Horizons without an estimate (NaN, e.g. too few uncensored persons) are left out and bridged by the stream's
    interpolation, with a note; a missing standard error is an error only when no draws are given.
    """
    need = {"outcome", "horizon_months", "measure", "subgroup", "estimator", "estimate", "std_error"}
    missing = need - set(effects.columns)
    if missing:
        raise InputError(
            f"effects: missing column(s) {sorted(missing)}; pass EffectResults.to_frame() (docs/tables.md)"
        )
    df = effects[(effects["measure"] == "status") & (effects["subgroup"] == subgroup)]
    df = df[df["outcome"].isin(REQUIRED_OUTCOMES)]
    estimators = sorted(df["estimator"].unique())
    if estimator is None:
        if len(estimators) > 1:
            raise InputError(f"effects: several estimators {estimators}; choose one with estimator=")
    else:
        if estimator not in estimators:
            raise InputError(f"effects: estimator {estimator!r} not found; available: {estimators}")
        df = df[df["estimator"] == estimator]
    nan = df["estimate"].isna()
    if nan.any() and notes is not None:
        dropped = ", ".join(
            f"{o} m{h}" for o, h in zip(df.loc[nan, "outcome"], df.loc[nan, "horizon_months"], strict=True)
        )
        notes.append(f"no estimate for {dropped}: interpolated from the neighbouring months")
    df = df[~nan]
    absent = [o for o in REQUIRED_OUTCOMES if o not in set(df["outcome"])]
    if absent:
        raise InputError(
            f"effects: no status effects (subgroup {subgroup!r}) for {absent}; the cost-benefit needs "
            f"{list(REQUIRED_OUTCOMES)} at horizons 1..K"
        )
    if df.duplicated(["outcome", "horizon_months"]).any():
        raise InputError("effects: more than one row per outcome and horizon after selection")
    if need_se and df["std_error"].isna().any():
        bad = df[df["std_error"].isna()]
        raise InputError(
            f"effects: no std_error for {bad['outcome'].iloc[0]} at month {int(bad['horizon_months'].iloc[0])} "
            f"({len(bad)} row(s)); pass joint draws (draws=) or effects with standard errors"
        )
    df = df.assign(_o=df["outcome"].map(REQUIRED_OUTCOMES.index)).sort_values(["_o", "horizon_months"])
    cols = [(str(o), int(h)) for o, h in zip(df["outcome"], df["horizon_months"], strict=True)]
    return _Effects(
        cols, df["estimate"].to_numpy(float), df["std_error"].to_numpy(float), str(df["estimator"].iloc[0])
    )


def _parse_draw_column(c: Any) -> tuple[str, int] | None:
    if isinstance(c, tuple) and len(c) == 2:
        return str(c[0]), int(c[1])
    if isinstance(c, tuple) and len(c) == 3:  # EffectResults.draws(): (outcome, horizon_months, measure)
        return (str(c[0]), int(c[1])) if c[2] == "status" else None
    if isinstance(c, str) and "_m" in c:
        o, _, h = c.rpartition("_m")
        if h.isdigit():
            return o, int(h)
    return None


def _draw_matrix(eff: _Effects, draws: pd.DataFrame | None, mc: MonteCarloSettings) -> tuple[np.ndarray, str]:
    if draws is None:
        rng = np.random.default_rng(mc.seed)
        z = rng.standard_normal((mc.n_draws, len(eff.columns)))
        return (
            eff.estimate + z * eff.std_error,
            "independent normal draws from the standard errors (correlations across months and outcomes "
            "ignored; pass joint draws for a proper interval)",
        )
    parsed = {_parse_draw_column(c): c for c in draws.columns}
    absent = [c for c in eff.columns if c not in parsed]
    if absent:
        raise InputError(
            f"draws: no column for {absent[:5]}{' …' if len(absent) > 5 else ''}; name columns (outcome, horizon) "
            "or '{outcome}_m{horizon}'"
        )
    mat = draws[[parsed[c] for c in eff.columns]].to_numpy(float)
    if np.isnan(mat).any():
        raise InputError("draws: missing values in the draws")
    return mat, f"{len(mat)} joint draws supplied by the caller"


# ---------------------------------------------------------------------------------------------------------------
# Streams, present values and the linear design
# ---------------------------------------------------------------------------------------------------------------


def _persistence_factor(t: np.ndarray, p: PersistenceSettings) -> np.ndarray:
    """Share of the base effect left ``t`` months after the last estimated month."""
    if p.kind == "none":
        return np.zeros_like(t, dtype=float)
    if p.kind == "constant":
        return np.ones_like(t, dtype=float)
    if p.kind == "linear_decay":
        return np.clip(1.0 - t / (12.0 * p.years), 0.0, None)
    return 0.5 ** (t / (12.0 * p.half_life_years))


def stream_operator(horizons: Sequence[int], n_months: int, params: CostBenefitParameters) -> np.ndarray:
    """Matrix ``L`` (``n_months x J``) mapping the effects at ``horizons`` to the monthly stream ``x = L e``.

    Months up to ``K = max(horizons)`` interpolate linearly between estimated horizons (constant before the
    first); later months carry ``b = mean(x[K-b+1..K])`` (``b = persistence_base_months``) times the
    persistence factor (module docstring).
    """
    h = np.asarray(sorted(horizons), dtype=float)
    k = int(h[-1])
    rows = max(n_months, k)
    L = np.zeros((rows, len(h)))
    for m in range(1, k + 1):
        if m <= h[0]:
            L[m - 1, 0] = 1.0
            continue
        j = int(np.searchsorted(h, m, side="left"))
        if h[j] == m:
            L[m - 1, j] = 1.0
        else:
            t = (m - h[j - 1]) / (h[j] - h[j - 1])
            L[m - 1, j - 1], L[m - 1, j] = 1 - t, t
    b = min(params.persistence_base_months, k)
    base = L[k - b : k].mean(axis=0)
    if rows > k:
        f = _persistence_factor(np.arange(1, rows - k + 1, dtype=float), params.persistence)
        L[k:] = f[:, None] * base[None, :]
    return L[:n_months]


def discount_factors(n_months: int, rate: float) -> np.ndarray:
    """``d_m = (1 + r) ** (-m / 12)`` for ``m = 1..n_months``."""
    return (1.0 + rate) ** (-np.arange(1, n_months + 1) / 12.0)


def _pv_weights(eff: _Effects, params: CostBenefitParameters) -> dict[str, np.ndarray]:
    """Per outcome, the weight vector over all effect columns with ``PV_o = w_o · e``."""
    n_months = int(round(12 * params.horizon_years))
    d = discount_factors(n_months, params.discount_rate)
    price = params.price_factor(params.effects_price_year)
    out: dict[str, np.ndarray] = {}
    for o in REQUIRED_OUTCOMES:
        idx = [i for i, c in enumerate(eff.columns) if c[0] == o]
        L = stream_operator([eff.columns[i][1] for i in idx], n_months, params)
        w = np.zeros(len(eff.columns))
        w[idx] = price * (d @ L)
        out[o] = w
    return out


@dataclass(frozen=True)
class _Item:
    perspective: str
    financier: str
    item: str
    coef: dict[str, float]  # outcome -> coefficient on PV_o
    const: float


def _design(params: CostBenefitParameters, cost: float) -> list[_Item]:
    """All items as linear functions of the outcomes' present values (module docstring)."""
    kt, rt = params.kommunal_tax_rate, params.regional_tax_rate
    st = params.state_tax_rate * params.share_above_state_threshold
    fee = params.payroll_fee_rate
    taxable = {EARNINGS_OUTCOME: 1.0, **{GROUP_OUTCOME[g]: 1.0 for g in params.taxable_groups}}

    def tax(rate: float) -> dict[str, float]:
        return {o: rate * v for o, v in taxable.items()}

    payer = {
        g: ("akassa_fund" if p == "akassa" and params.akassa_payer == "fund" else p)
        for g, p in GROUP_PAYER.items()
    }
    payer = {g: ("state" if p == "akassa" else p) for g, p in payer.items()}

    def savings(who: Sequence[str]) -> dict[str, float]:
        return {GROUP_OUTCOME[g]: -1.0 for g, p in payer.items() if p in who}

    c_state = params.cost_shares["state"] * cost
    c_region = params.cost_shares["region"] * cost
    c_kommun = params.cost_shares["kommun"] * cost
    items: list[_Item] = []

    def add(
        fin: str, item: str, coef: dict[str, float], const: float = 0.0, persp: str = "public_finance"
    ) -> None:
        items.append(_Item(persp, fin, item, coef, const))

    add("FK", "cost", {}, -params.state_cost_channel["FK"] * c_state)
    for g in ("sickness", "disability"):
        add("FK", f"savings_{g}", {GROUP_OUTCOME[g]: -1.0})
    add("AF", "cost", {}, -params.state_cost_channel["AF"] * c_state)
    add("AF", "savings_labour_market", {GROUP_OUTCOME["labour_market"]: -1.0})
    if params.akassa_payer == "fund":
        add("akassa_fund", "savings_unemployment", {GROUP_OUTCOME["unemployment"]: -1.0})
    add("state", "cost", {}, -c_state)
    add("state", "benefit_savings", savings(("FK", "AF", "state")))
    add("state", "state_income_tax", tax(st))
    add("state", "payroll_fees", {EARNINGS_OUTCOME: fee})
    add("region", "cost", {}, -c_region)
    add("region", "regional_income_tax", tax(rt))
    add("kommun", "cost", {}, -c_kommun)
    add("kommun", "savings_social_assistance", {GROUP_OUTCOME["social_assistance"]: -1.0})
    add("kommun", "kommunal_income_tax", tax(kt))
    add("public_sector_total", "cost", {}, -cost)
    add("public_sector_total", "benefit_savings", {o: -1.0 for o in GROUP_OUTCOME.values()})
    add("public_sector_total", "income_tax", tax(kt + rt + st))
    add("public_sector_total", "payroll_fees", {EARNINGS_OUTCOME: fee})
    add("participant", "earnings", {EARNINGS_OUTCOME: 1.0})
    add("participant", "benefits", {o: 1.0 for o in GROUP_OUTCOME.values()})
    add("participant", "income_tax", tax(-(kt + rt + st)))

    # public budget net (for the excess burden) = sum of public_sector_total items
    pub_coef: dict[str, float] = {}
    pub_const = 0.0
    for it in items:
        if it.financier == "public_sector_total":
            pub_const += it.const
            for o, v in it.coef.items():
                pub_coef[o] = pub_coef.get(o, 0.0) + v
    lam = params.mcpf - 1.0
    add("society", "production_value", {EARNINGS_OUTCOME: 1.0 + fee}, 0.0, "socio_economic")
    add("society", "resource_cost", {}, -cost, "socio_economic")
    add(
        "society",
        "excess_burden",
        {o: lam * v for o, v in pub_coef.items()},
        lam * pub_const,
        "socio_economic",
    )

    # gains and net per financier
    out: list[_Item] = []
    seen: list[tuple[str, str]] = []
    for it in items:
        if (it.perspective, it.financier) not in seen:
            seen.append((it.perspective, it.financier))
    for persp, fin in seen:
        parts = [it for it in items if it.financier == fin and it.perspective == persp]
        out.extend(parts)
        gain_coef: dict[str, float] = {}
        for it in parts:
            for o, v in it.coef.items():
                gain_coef[o] = gain_coef.get(o, 0.0) + v
        cost_const = sum(it.const for it in parts)
        out.append(_Item(persp, fin, "net", gain_coef, cost_const))
    return out


def _evaluate(items: list[_Item], pv: np.ndarray) -> np.ndarray:
    """Item values for PV rows ``pv`` (``n x len(REQUIRED_OUTCOMES)``) -> ``n x len(items)``."""
    A = np.array([[it.coef.get(o, 0.0) for o in REQUIRED_OUTCOMES] for it in items])
    c = np.array([it.const for it in items])
    return pv @ A.T + c[None, :]


def _pv_matrix(eff_values: np.ndarray, weights: dict[str, np.ndarray]) -> np.ndarray:
    W = np.column_stack([weights[o] for o in REQUIRED_OUTCOMES])
    return np.atleast_2d(eff_values) @ W


# ---------------------------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class CostBenefitResults:
    """Cost-benefit per financier and perspective (present values per participant, SEK of ``price_base_year``).

    Attributes
    ----------
    method : ``counterfactual`` (matched effects) or ``before_after`` (the local calculations' method).
    point : item values at the effect estimates (``perspective, financier, item, pv_sek_per_participant``).
    draws : Monte Carlo item values (``n_draws x items``, columns as the rows of ``point``).
    break_even, sensitivity : see :meth:`break_even_frame` and :meth:`sensitivity_frame`.
    """

    method: str
    parameters: CostBenefitParameters
    cost_per_participant_sek: float
    effect_columns: list[tuple[str, int]]
    point: pd.DataFrame
    draws: np.ndarray
    draws_source: str
    break_even: pd.DataFrame
    sensitivity: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    before_after: CostBenefitResults | None = None
    estimator: str = ""
    subgroup: str = "all"

    def _interval(self) -> tuple[np.ndarray, np.ndarray]:
        a = (1 - self.parameters.monte_carlo.interval) / 2
        return np.quantile(self.draws, a, axis=0), np.quantile(self.draws, 1 - a, axis=0)

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: ``perspective, financier, item, pv_sek_per_participant, ci_lower, ci_upper`` (MC interval)."""
        lo, hi = self._interval()
        out = self.point.copy()
        out["ci_lower"], out["ci_upper"] = lo, hi
        return out

    def net(self, perspective: str = "public_finance") -> pd.Series:
        """Point net present value per financier of one perspective."""
        p = self.point
        sel = p[(p["perspective"] == perspective) & (p["item"] == "net")]
        return sel.set_index("financier")["pv_sek_per_participant"]

    def monte_carlo_frame(self) -> pd.DataFrame:
        """Per financier: MC mean of the net, its central interval and ``P(net > 0)``."""
        lo, hi = self._interval()
        rows = []
        for i, r in self.point.iterrows():
            if r["item"] != "net":
                continue
            d = self.draws[:, i]
            rows.append(
                {
                    "perspective": r["perspective"],
                    "financier": r["financier"],
                    "net_point": r["pv_sek_per_participant"],
                    "mc_mean": float(d.mean()),
                    "ci_lower": float(lo[i]),
                    "ci_upper": float(hi[i]),
                    "p_net_positive": float((d > 0).mean()),
                }
            )
        return pd.DataFrame(rows)

    def break_even_frame(self) -> pd.DataFrame:
        """Per financier: PV cost, gains, net, benefit-cost ratio and the two break-even figures."""
        return self.break_even.copy()

    def sensitivity_frame(self) -> pd.DataFrame:
        """One-way sensitivity of the net (``parameter, low, high, perspective, financier, net_base, net_low, net_high``)."""
        return self.sensitivity.copy()

    def comparison_frame(self) -> pd.DataFrame:
        """Net per financier by this method and by the before/after method (needs ``before_after``)."""
        if self.before_after is None:
            raise InputError(
                "no before/after result: pass before_after_paths= (the participants' outcome_paths) to cost_benefit"
            )
        return compare_methods(self, self.before_after)

    def summary(self) -> str:
        p = self.parameters
        lines = [
            f"Cost-benefit per participant ({self.method}; effects: estimator {self.estimator}, subgroup "
            f"{self.subgroup}), SEK in {p.price_base_year} prices",
            f"cost per participant {self.cost_per_participant_sek:,.0f}; horizon {p.horizon_years:g} years; "
            f"real discount rate {p.discount_rate:.1%}; persistence {p.persistence.kind}; "
            f"effects estimated to month {max(h for _, h in self.effect_columns)}; mcpf {p.mcpf:g}",
            f"uncertainty: {self.draws_source}; {len(self.draws)} draws, "
            f"{p.monte_carlo.interval:.0%} interval",
            "",
            f"{'perspective':<15}{'financier':<21}{'cost':>11}{'gains':>11}{'net':>11}{'BCR':>7}"
            f"{'P(net>0)':>9}{'interval':>25}{'BE scale':>9}{'BE yrs':>8}",
        ]
        mc = self.monte_carlo_frame().set_index(["perspective", "financier"])
        for _, r in self.break_even.iterrows():
            m = mc.loc[(r["perspective"], r["financier"])]
            bcr = "" if not np.isfinite(r["benefit_cost_ratio"]) else f"{r['benefit_cost_ratio']:.2f}"
            lines.append(
                f"{r['perspective']:<15}{r['financier']:<21}{r['pv_cost']:>11,.0f}{r['pv_gains']:>11,.0f}"
                f"{r['pv_net']:>11,.0f}{bcr:>7}{m['p_net_positive']:>9.2f}"
                f"{f'[{m.ci_lower:,.0f}; {m.ci_upper:,.0f}]':>25}"
                f"{r['break_even_effect_scale']:>9.2f}{r['break_even_years']:>8.2f}"
            )
        lines += ["", "Public finance and socio-economic results are different questions: never add them."]
        if self.before_after is not None:
            lines += [
                "",
                "Beside it, the before/after method of the local calculations on the same participants:",
            ]
            cmp = self.comparison_frame()
            for r in cmp.itertuples(index=False):
                lines.append(
                    f"{r.perspective:<15}{r.financier:<21} net counterfactual {r.net_point_counterfactual:>11,.0f}"
                    f"   before/after {r.net_point_before_after:>11,.0f}   difference {r.difference:>11,.0f}"
                )
            lines.append(
                "The difference is change that would have happened anyway (e.g. regression to the mean)."
            )
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def waterfall_figure(self, financier: str = "public_sector_total", perspective: str | None = None):
        """Waterfall of one financier's items (cost, each gain) ending in the net (matplotlib Figure, Agg)."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        persp = perspective or ("socio_economic" if financier == "society" else "public_finance")
        sel = self.point[(self.point["financier"] == financier) & (self.point["perspective"] == persp)]
        if sel.empty:
            raise InputError(f"no financier {financier!r} in perspective {persp!r}")
        parts = sel[sel["item"] != "net"]
        fig, ax = plt.subplots(figsize=(7, 4))
        running = 0.0
        for i, v in enumerate(parts["pv_sek_per_participant"]):
            ax.bar(i, v, bottom=running, color="#2a7f62" if v >= 0 else "#b5442f")
            running += v
            ax.text(i, running, f"{v:,.0f}", ha="center", va="bottom", fontsize=7)
        net = float(sel.loc[sel["item"] == "net", "pv_sek_per_participant"].iloc[0])
        ax.bar(len(parts), net, color="#34495e")
        ax.text(len(parts), net, f"{net:,.0f}", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(parts) + 1), [*parts["item"], "net"], rotation=30, ha="right", fontsize=8)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_ylabel(f"PV per participant, SEK ({self.parameters.price_base_year})")
        ax.set_title(f"{financier} ({persp}, {self.method})")
        fig.tight_layout()
        return fig

    def tornado_figure(self, financier: str = "public_sector_total", perspective: str | None = None):
        """Tornado chart of the one-way sensitivity of one financier's net (matplotlib Figure, Agg)."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        persp = perspective or ("socio_economic" if financier == "society" else "public_finance")
        s = self.sensitivity
        s = s[(s["financier"] == financier) & (s["perspective"] == persp)].copy()
        if s.empty:
            raise InputError(f"no financier {financier!r} in perspective {persp!r}")
        s["swing"] = (s["net_high"] - s["net_low"]).abs()
        s = s.sort_values("swing")
        base = float(s["net_base"].iloc[0])
        fig, ax = plt.subplots(figsize=(8.5, 0.5 * len(s) + 1.8))
        y = np.arange(len(s))
        ax.barh(y, s["net_low"] - base, left=base, color="#b5442f", label="low value")
        ax.barh(y, s["net_high"] - base, left=base, color="#2a7f62", label="high value")
        ax.set_yticks(
            y, [f"{p} ({lo} / {hi})" for p, lo, hi in zip(s["parameter"], s["low"], s["high"], strict=True)]
        )
        ax.axvline(base, color="black", lw=0.8)
        ax.set_xlabel(f"net PV per participant, SEK ({self.parameters.price_base_year})")
        ax.set_title(f"One-way sensitivity: {financier} ({persp}, {self.method})", fontsize=10)
        ax.legend(fontsize=7)
        fig.tight_layout()
        return fig


# ---------------------------------------------------------------------------------------------------------------
# The calculation
# ---------------------------------------------------------------------------------------------------------------


def _point_values(
    eff: _Effects, params: CostBenefitParameters, cost: float
) -> tuple[list[_Item], np.ndarray]:
    items = _design(params, cost)
    pv = _pv_matrix(eff.estimate, _pv_weights(eff, params))
    return items, _evaluate(items, pv)[0]


def _break_even(
    eff: _Effects, params: CostBenefitParameters, cost: float, items: list[_Item], values: np.ndarray
) -> pd.DataFrame:
    """Benefit-cost ratio, effect scale and persistence years at which each financier's net reaches zero.

    Effect scale ``s*``: the net is ``s G + c`` when every effect is multiplied by ``s``, so ``s* = -c / G``
    (``inf`` when the gains are not positive). Persistence years: with *constant* persistence, the shortest
    duration ``T`` of the effect stream (counted from the start, discounted, cost at 0) with net ≥ 0, searched up
    to ``break_even_max_years`` and interpolated within the month; ``inf`` if never, 0 if the cost is nil.
    """
    long = params.model_copy(
        update={
            "horizon_years": params.break_even_max_years,
            "persistence": PersistenceSettings(kind="constant"),
        }
    )
    n = int(round(12 * long.horizon_years))
    d = discount_factors(n, long.discount_rate)
    price = long.price_factor(long.effects_price_year)
    # cumulative PV per outcome and month: n x outcomes
    cum = np.zeros((n, len(REQUIRED_OUTCOMES)))
    for j, o in enumerate(REQUIRED_OUTCOMES):
        idx = [i for i, c in enumerate(eff.columns) if c[0] == o]
        L = stream_operator([eff.columns[i][1] for i in idx], n, long)
        cum[:, j] = np.cumsum(price * d * (L @ eff.estimate[idx]))
    cum_items = _evaluate(items, cum)
    rows = []
    for i, it in enumerate(items):
        if it.item != "net":
            continue
        parts = [
            k
            for k, x in enumerate(items)
            if x.financier == it.financier and x.perspective == it.perspective and x.item != "net"
        ]
        cost_pv = 0.0 - sum(values[k] for k in parts if items[k].item in ("cost", "resource_cost"))
        gains = values[i] + cost_pv
        g_lin = values[i] - it.const  # effect-proportional part of the net
        if it.const == 0:
            scale = np.nan
        elif g_lin > 0:
            scale = -it.const / g_lin
        else:
            scale = np.inf
        with np.errstate(over="ignore", divide="ignore"):  # a near-zero cost gives an infinite ratio
            bcr = float(gains / cost_pv) if cost_pv > 0 else np.nan
        path = cum_items[:, i]
        if it.const == 0:
            years = np.nan
        else:
            ok = np.nonzero(path >= 0)[0]
            if len(ok) == 0:
                years = np.inf
            else:
                m = ok[0]
                prev = it.const if m == 0 else path[m - 1]
                frac = 1.0 if path[m] == prev else (0 - prev) / (path[m] - prev)
                years = (m + frac) / 12.0
        rows.append(
            {
                "perspective": it.perspective,
                "financier": it.financier,
                "pv_cost": cost_pv,
                "pv_gains": gains,
                "pv_net": values[i],
                "benefit_cost_ratio": bcr,
                "break_even_effect_scale": scale,
                "break_even_years": years,
            }
        )
    return pd.DataFrame(rows)


def _sensitivity(
    eff: _Effects, params: CostBenefitParameters, cost: float, items: list[_Item], values: np.ndarray
) -> pd.DataFrame:
    s = params.sensitivity
    kt, rt = params.kommunal_tax_rate, params.regional_tax_rate
    d = s.tax_rate_points
    cases: list[tuple[str, str, str, CostBenefitParameters, CostBenefitParameters, float, float]] = [
        (
            "discount_rate",
            f"{s.discount_rate[0]:.1%}",
            f"{s.discount_rate[1]:.1%}",
            params.model_copy(update={"discount_rate": s.discount_rate[0]}),
            params.model_copy(update={"discount_rate": s.discount_rate[1]}),
            cost,
            cost,
        ),
        (
            "persistence",
            s.persistence[0],
            s.persistence[1],
            params.model_copy(
                update={"persistence": params.persistence.model_copy(update={"kind": s.persistence[0]})}
            ),
            params.model_copy(
                update={"persistence": params.persistence.model_copy(update={"kind": s.persistence[1]})}
            ),
            cost,
            cost,
        ),
        (
            "horizon_years",
            f"{s.horizon_years[0]:g}",
            f"{s.horizon_years[1]:g}",
            params.model_copy(update={"horizon_years": s.horizon_years[0]}),
            params.model_copy(update={"horizon_years": s.horizon_years[1]}),
            cost,
            cost,
        ),
        (
            "income_tax_rates",
            f"-{d * 100:g} pp",
            f"+{d * 100:g} pp",
            params.model_copy(
                update={"kommunal_tax_rate": max(kt - d, 0.0), "regional_tax_rate": max(rt - d, 0.0)}
            ),
            params.model_copy(update={"kommunal_tax_rate": kt + d, "regional_tax_rate": rt + d}),
            cost,
            cost,
        ),
        (
            "cost",
            f"-{s.cost_relative:.0%}",
            f"+{s.cost_relative:.0%}",
            params,
            params,
            cost * (1 - s.cost_relative),
            cost * (1 + s.cost_relative),
        ),
    ]
    rows = []
    for name, lo_label, hi_label, p_lo, p_hi, c_lo, c_hi in cases:
        _, v_lo = _point_values(eff, p_lo, c_lo)
        _, v_hi = _point_values(eff, p_hi, c_hi)
        for i, it in enumerate(items):
            if it.item != "net":
                continue
            rows.append(
                {
                    "parameter": name,
                    "low": lo_label,
                    "high": hi_label,
                    "perspective": it.perspective,
                    "financier": it.financier,
                    "net_base": values[i],
                    "net_low": v_lo[i],
                    "net_high": v_hi[i],
                }
            )
    return pd.DataFrame(rows)


def cost_benefit(
    effects: pd.DataFrame,
    params: CostBenefitParameters | None = None,
    *,
    cost_per_participant_sek: float | CostPerParticipant | None = None,
    draws: pd.DataFrame | None = None,
    estimator: str | None = None,
    subgroup: str = "all",
    method: str = "counterfactual",
    before_after_paths: pd.DataFrame | None = None,
) -> CostBenefitResults:
    """Cost-benefit per financier from the estimated monthly status effects.

    Parameters
    ----------
    effects : ``EffectResults.to_frame()`` (docs/tables.md); status effects (``measure == "status"``) of
        ``REQUIRED_OUTCOMES`` at horizons 1..K for ``subgroup`` and one ``estimator``.
    params : parameters (default: ``load_cost_benefit_parameters()``).
    cost_per_participant_sek : cost per participant in ``price_base_year`` prices (a number or the result of
        :func:`cost_per_participant`); default ``params.cost_per_participant_sek`` moved from
        ``params.cost_price_year``.
    draws : joint draws of the effects, one column per (outcome, horizon) — tuples or ``"{outcome}_m{h}"`` — and
        one row per draw (e.g. ``EffectResults.draws(...)`` or bootstrap replicates). Without it the draws are
        independent normals from the standard errors (stated in the results).
    method : label carried in the results (``counterfactual`` or ``before_after``).
    before_after_paths : the participants' ``outcome_paths`` (rows with ``treated == 1`` are used when the column
        exists); when given, the before/after calculation of the local "samhällsekonomiska" reports is run with
        the same parameters and cost (:func:`before_after_cost_benefit`) and kept as ``results.before_after``,
        shown beside the counterfactual result in :meth:`CostBenefitResults.summary` and
        :meth:`CostBenefitResults.comparison_frame`.

    Returns
    -------
    CostBenefitResults
    """
    params = params or load_cost_benefit_parameters()
    if isinstance(cost_per_participant_sek, CostPerParticipant):
        cost = cost_per_participant_sek.for_subgroup(subgroup)
    elif cost_per_participant_sek is not None:
        cost = float(cost_per_participant_sek)
    elif params.cost_per_participant_sek is not None:
        cost = params.cost_per_participant_sek * params.price_factor(params.cost_price_year)
    else:
        raise ConfigError(
            "cost-benefit: no cost per participant; pass cost_per_participant_sek (e.g. from "
            "cost_per_participant(insats_costs, ...)) or set cost_per_participant_sek in the parameters file"
        )
    if not np.isfinite(cost) or cost < 0:
        raise ConfigError(f"cost-benefit: cost per participant must be a non-negative number, got {cost}")
    notes: list[str] = []
    eff = _select_effects(effects, estimator, subgroup, need_se=draws is None, notes=notes)
    items, values = _point_values(eff, params, cost)
    mat, source = _draw_matrix(eff, draws, params.monte_carlo)
    draw_values = _evaluate(items, _pv_matrix(mat, _pv_weights(eff, params)))
    point = pd.DataFrame(
        {
            "perspective": [it.perspective for it in items],
            "financier": [it.financier for it in items],
            "item": [it.item for it in items],
            "pv_sek_per_participant": values,
        }
    )
    k = max(h for _, h in eff.columns)
    if k * 1.0 > 12 * params.horizon_years:
        notes.append(
            f"effects estimated to month {k} but the horizon is {params.horizon_years:g} years: truncated"
        )
    notes.append(
        "state = FK + AF + the rest of the state budget; public_sector_total counts every public body once; "
        "participant is not a financier"
    )
    notes.append(
        "not counted: grundavdrag/jobbskatteavdrag (tax items are upper bounds), lost leisure, displacement, "
        "health-care use"
    )
    return CostBenefitResults(
        method=method,
        parameters=params,
        cost_per_participant_sek=cost,
        effect_columns=eff.columns,
        point=point,
        draws=draw_values,
        draws_source=source,
        break_even=_break_even(eff, params, cost, items, values),
        sensitivity=_sensitivity(eff, params, cost, items, values),
        notes=notes,
        estimator=eff.estimator,
        subgroup=subgroup,
        before_after=(
            None
            if before_after_paths is None
            else before_after_cost_benefit(before_after_paths, params, cost_per_participant_sek=cost)
        ),
    )


# ---------------------------------------------------------------------------------------------------------------
# The before/after method of the local calculations, on the same participants
# ---------------------------------------------------------------------------------------------------------------


def share_above_threshold(annual_income_sek: Sequence[float] | np.ndarray, threshold_sek: float) -> float:
    """Share of persons whose annual income is at or above ``threshold_sek`` (e.g. the state-tax brytpunkt).

    When extra earnings are spread evenly over the persons, this is the share of the extra kronor taxed at the
    state rate: a value for ``share_above_state_threshold``.
    """
    y = np.asarray(annual_income_sek, dtype=float)
    y = y[~np.isnan(y)]
    if len(y) == 0:
        raise InputError("share_above_threshold: no incomes given")
    return float((y >= threshold_sek).mean())


def before_after_effects(
    paths: pd.DataFrame,
    before: tuple[int, int] = (-3, -1),
    after: tuple[int, int] = (1, 12),
    n_draws: int = 2000,
    seed: int = 20240801,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The local calculations' "effect": participants' change from before to after the start, no counterfactual.

    For each participant (``person_id``, ``ref_month``) of ``paths`` (the panel's ``outcome_paths`` for the
    participants: ``rel_month``, ``censored`` and the outcome columns; with a ``treated`` column only rows with
    ``treated == 1`` are used, so the panel's paths of treated and controls can be passed) and outcome ``o`` of
    ``REQUIRED_OUTCOMES``: ``before_i`` = mean of ``o`` over the uncensored months ``rel_month`` in
    ``before`` (default −3..−1), ``after_i`` = the same over ``after`` (default 1..12), and
    ``Δ_i = after_i − before_i``. Participants without an uncensored month in either window are left out. The
    "effect" is ``mean_i Δ_i``, taken as constant in every month ``1..after[1]`` (the local calculations
    credit the whole yearly change to the insats every year), with ``std_error = sd(Δ) / sqrt(n)``.

    Why −3..−1: the local calculations take the participant's försörjning *at the start* of the insats (SUS
    records it as ``support_at_start``) as what would have continued without it; the three months before the
    start month measure that situation from the registers with less month-to-month noise than one month. Since
    participants enter on a rising need for support (Ashenfelter 1978), this baseline is where regression to
    the mean inflates a before/after "effect" most; ``before=(-12, -1)`` gives the year-before variant.

    Returns
    -------
    effects : frame in the ``EffectResults.to_frame()`` layout (``estimator = "before_after"``, status measure).
    draws : joint draws (``n_draws`` rows, columns ``(outcome, horizon)``) from the normal with the sample
        covariance of the Δ across outcomes divided by n — one draw per outcome, the same in every month.
    """
    need = {"person_id", "ref_month", "rel_month", "censored", *REQUIRED_OUTCOMES}
    missing = need - set(paths.columns)
    if missing:
        raise InputError(f"outcome_paths: missing column(s) {sorted(missing)} (docs/tables.md)")
    df = paths[~paths["censored"].astype(bool)]
    if "treated" in df.columns:
        df = df[df["treated"] == 1]
    key = ["person_id", "ref_month"]

    def window(lo: int, hi: int) -> pd.DataFrame:
        w = df[(df["rel_month"] >= lo) & (df["rel_month"] <= hi)]
        return w.groupby(key)[list(REQUIRED_OUTCOMES)].mean()

    b, a = window(*before), window(*after)
    both = a.join(b, how="inner", lsuffix="_after", rsuffix="_before")
    delta = pd.DataFrame(
        {o: both[f"{o}_after"] - both[f"{o}_before"] for o in REQUIRED_OUTCOMES}, index=both.index
    ).dropna()
    n = len(delta)
    if n < 2:
        raise InputError(f"outcome_paths: {n} participant(s) with months both before and after the start")
    mean = delta.mean().to_numpy()
    cov = np.atleast_2d(np.cov(delta.to_numpy().T, ddof=1)) / n
    se = np.sqrt(np.diag(cov))
    horizons = range(1, after[1] + 1)
    rows = [
        {
            "outcome": o,
            "horizon_months": h,
            "measure": "status",
            "subgroup": "all",
            "estimator": "before_after",
            "estimate": mean[j],
            "std_error": se[j],
            "ci_lower": mean[j] - 1.959964 * se[j],
            "ci_upper": mean[j] + 1.959964 * se[j],
            "p_value": np.nan,
            "n_treated": n,
            "n_control": 0,
        }
        for j, o in enumerate(REQUIRED_OUTCOMES)
        for h in horizons
    ]
    rng = np.random.default_rng(seed)
    z = rng.multivariate_normal(mean, cov, size=n_draws, method="eigh")
    draws = pd.DataFrame({(o, h): z[:, j] for j, o in enumerate(REQUIRED_OUTCOMES) for h in horizons})
    return pd.DataFrame(rows), draws


def before_after_cost_benefit(
    paths: pd.DataFrame,
    params: CostBenefitParameters | None = None,
    *,
    cost_per_participant_sek: float | CostPerParticipant | None = None,
    before: tuple[int, int] = (-3, -1),
    after: tuple[int, int] = (1, 12),
) -> CostBenefitResults:
    """The cost-benefit by the local calculations' before/after method, with the same parameters.

    Uses :func:`before_after_effects` as if they were effects, with the same persistence, horizon, discounting,
    taxes and costs as the counterfactual calculation, so that the difference between the two results is the part
    of the before/after "return" that the matched comparison attributes to regression to the mean, the business
    cycle and other changes that would have happened anyway.
    """
    params = params or load_cost_benefit_parameters()
    eff, draws = before_after_effects(
        paths, before, after, n_draws=params.monte_carlo.n_draws, seed=params.monte_carlo.seed
    )
    return cost_benefit(
        eff, params, cost_per_participant_sek=cost_per_participant_sek, draws=draws, method="before_after"
    )


def compare_methods(counterfactual: CostBenefitResults, before_after: CostBenefitResults) -> pd.DataFrame:
    """Net PV per financier by both methods side by side (``difference = before_after − counterfactual``)."""
    cf = counterfactual.monte_carlo_frame()
    ba = before_after.monte_carlo_frame()
    out = cf[["perspective", "financier", "net_point", "ci_lower", "ci_upper"]].merge(
        ba[["perspective", "financier", "net_point", "ci_lower", "ci_upper"]],
        on=["perspective", "financier"],
        suffixes=("_counterfactual", "_before_after"),
    )
    out["difference"] = out["net_point_before_after"] - out["net_point_counterfactual"]
    return out


__all__ = [
    "DEFAULT_PARAMETERS_FILE",
    "REQUIRED_OUTCOMES",
    "before_after_cost_benefit",
    "before_after_effects",
    "compare_methods",
    "share_above_threshold",
    "CostBenefitParameters",
    "CostBenefitResults",
    "CostPerParticipant",
    "MonteCarloSettings",
    "PersistenceSettings",
    "SensitivitySettings",
    "cost_benefit",
    "cost_per_participant",
    "discount_factors",
    "load_cost_benefit_parameters",
    "stream_operator",
]
