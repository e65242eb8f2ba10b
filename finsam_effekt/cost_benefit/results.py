"""The cost-benefit result: present values per financier and perspective, with their intervals and break-even.

:class:`CostBenefitResults` also holds the one-way sensitivity and, when run, the before/after result;
:func:`compare_methods` sets the two methods' nets side by side; :meth:`CostBenefitResults.summary_frame` gives
per financier the net, its interval, ``P(net > 0)``, the benefit-cost ratio and break-even in one row.
:class:`CostBenefitInputs` records what a result was computed from (the monthly effects, their joint covariance
and the seed of the draws, the cost, the parameters), so that ``finsam-effekt cost-benefit`` reproduces a run's
numbers exactly from the run's ``cost_benefit_inputs.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..config.cost_benefit import CostBenefitParameters
from ..errors import InputError
from ..estimation.results import psd_tolerance
from ..options import PERSPECTIVES, check
from . import figures
from .items import PUBLIC_FINANCE

if TYPE_CHECKING:
    from matplotlib.figure import Figure


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
    #: what the result was computed from (set by the pipeline's cost-benefit stage)
    inputs: CostBenefitInputs | None = None
    #: the same calculation per subgroup (``insats_type=…``) with the subgroup's effects and cost
    by_subgroup: dict[str, CostBenefitResults] = field(default_factory=dict)
    #: persons (treated, control) behind each subgroup's effects: the fewest over its outcomes and months
    subgroup_persons: dict[str, tuple[int, int]] = field(default_factory=dict)

    def _interval(self) -> tuple[np.ndarray, np.ndarray]:
        a = (1 - self.parameters.monte_carlo.interval) / 2
        return np.quantile(self.draws, a, axis=0), np.quantile(self.draws, 1 - a, axis=0)

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: ``perspective, financier, item, pv_sek_per_participant, ci_lower, ci_upper`` (MC interval)."""
        lo, hi = self._interval()
        out = self.point.copy()
        out["ci_lower"], out["ci_upper"] = lo, hi
        return out

    def net(self, perspective: str = PUBLIC_FINANCE) -> pd.Series:
        """Point net present value per financier of one perspective (``options.PERSPECTIVES``)."""
        check("perspective", perspective, PERSPECTIVES)
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

    def summary_frame(self) -> pd.DataFrame:
        """One row per perspective and financier: ``pv_cost``, ``pv_gains``, ``pv_net``, the Monte Carlo
        ``ci_lower``/``ci_upper`` (level ``interval_level``), ``p_net_positive``, ``benefit_cost_ratio``,
        ``break_even_years`` and ``break_even_effect_scale`` (:meth:`break_even_frame` and
        :meth:`monte_carlo_frame` side by side)."""
        keys = ["perspective", "financier"]
        be = self.break_even.copy()
        mc = self.monte_carlo_frame()[[*keys, "ci_lower", "ci_upper", "p_net_positive"]]
        out = be[[*keys, "pv_cost", "pv_gains", "pv_net"]].merge(mc, on=keys, how="left")
        out["interval_level"] = self.parameters.monte_carlo.interval
        out = out.merge(
            be[[*keys, "benefit_cost_ratio", "break_even_years", "break_even_effect_scale"]],
            on=keys,
            how="left",
        )
        return out

    def sensitivity_table(self) -> pd.DataFrame:
        """:meth:`sensitivity_frame` with the low and high values of each assumption as numbers (``low_value``,
        ``high_value``: a rate, a number of years, a change of the tax rates in points or of the cost as a share;
        the persistence kind as text), for readers' labels in any language."""
        s = self.parameters.sensitivity
        values: dict[str, tuple[Any, Any]] = {
            "discount_rate": s.discount_rate,
            "persistence": s.persistence,
            "horizon_years": s.horizon_years,
            "income_tax_rates": (-s.tax_rate_points, s.tax_rate_points),
            "cost": (-s.cost_relative, s.cost_relative),
        }
        out = self.sensitivity.copy()
        out["low_value"] = [values.get(p, (None, None))[0] for p in out["parameter"]]
        out["high_value"] = [values.get(p, (None, None))[1] for p in out["parameter"]]
        return out

    def assumptions(self) -> dict[str, Any]:
        """The assumptions a reader needs beside the result: horizon (years), real discount rate, persistence
        after the estimated months, the Monte Carlo interval's level, price year, months of estimated effects."""
        p = self.parameters
        return {
            "horizon_years": p.horizon_years,
            "discount_rate": p.discount_rate,
            "persistence": p.persistence.kind,
            "interval": p.monte_carlo.interval,
            "price_year": p.price_base_year,
            "effects_months": max(h for _, h in self.effect_columns),
        }

    def subgroup_frame(self) -> pd.DataFrame:
        """One row per subgroup, perspective and financier of :attr:`by_subgroup` (:meth:`summary_frame` columns
        after ``subgroup`` and ``cost_per_participant_sek``, then ``n_treated``/``n_control``: the fewest persons
        behind the subgroup's effects, for disclosure control). Empty when no subgroup was run."""
        frames = []
        for sg, res in self.by_subgroup.items():
            f = res.summary_frame()
            f.insert(0, "cost_per_participant_sek", res.cost_per_participant_sek)
            f.insert(0, "subgroup", sg)
            n1, n0 = self.subgroup_persons.get(sg, (np.nan, np.nan))
            f["n_treated"], f["n_control"] = n1, n0
            frames.append(f)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

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

    def waterfall_figure(
        self, financier: str = "public_sector_total", perspective: str | None = None, *, lang: str = "en"
    ) -> Figure:
        """Waterfall of one financier's items (cost, each gain) ending in the net, in ``lang``
        (:func:`figures.waterfall_figure`)."""
        return figures.waterfall_figure(self, financier, perspective, lang=lang)

    def tornado_figure(
        self, financier: str = "public_sector_total", perspective: str | None = None, *, lang: str = "en"
    ) -> Figure:
        """Tornado chart of the one-way sensitivity of one financier's net, in ``lang``
        (:func:`figures.tornado_figure`)."""
        return figures.tornado_figure(self, financier, perspective, lang=lang)


@dataclass(frozen=True)
class CostBenefitInputs:
    """What a cost-benefit result was computed from, enough to compute it again (``cost_benefit_inputs.json``).

    Attributes
    ----------
    effects : the monthly status effects used, ``EffectResults.to_frame()`` rows of one estimator, subgroup
        ``all``.
    covariance : their joint covariance (``EffectResults.cov``; index and columns ``(outcome, horizon, measure)``),
        or None when the draws are independent normals from the standard errors.
    draws_seed : seed of the joint normal draws (:meth:`draws`).
    cost_per_participant_sek : the cost per participant used (SEK of ``price_base_year``).
    parameters : the parameters used.
    estimator : the estimator of ``effects``.
    """

    effects: pd.DataFrame
    covariance: pd.DataFrame | None
    draws_seed: int
    cost_per_participant_sek: float
    parameters: CostBenefitParameters
    estimator: str

    def draws(self, n: int | None = None) -> pd.DataFrame | None:
        """``n`` (default ``parameters.monte_carlo.n_draws``) joint normal draws of the effects: mean = the
        estimates, covariance = :attr:`covariance`, ``numpy.random.default_rng(draws_seed)``'s
        ``multivariate_normal`` with the ``eigh`` factorisation — the draws ``EffectResults.draws`` makes."""
        if self.covariance is None:
            return None
        cols = list(self.covariance.columns)
        f = self.effects
        key = dict(zip(zip(f["outcome"], f["horizon_months"].astype(int), f["measure"], strict=True),
                       f["estimate"].to_numpy(float), strict=True))  # fmt: skip
        mean = np.array([key[(str(o), int(h), str(m))] for o, h, m in cols])
        rng = np.random.default_rng(self.draws_seed)
        n = self.parameters.monte_carlo.n_draws if n is None else n
        v = self.covariance.to_numpy()
        x = rng.multivariate_normal(mean, v, size=int(n), method="eigh", tol=psd_tolerance(v))
        return pd.DataFrame(x, columns=self.covariance.columns)

    def min_persons(self) -> int:
        """The fewest persons in either arm behind any of the effects (for disclosure control)."""
        n = pd.concat([self.effects["n_treated"], self.effects["n_control"]])
        return int(n.min()) if len(n) and n.notna().all() else 0

    def to_json(self) -> str:
        """The inputs as JSON (floats written exactly, so :meth:`from_json` gives identical numbers)."""
        cov = self.covariance
        data = {
            "what": "inputs of a finsam_effekt cost-benefit; rerun: finsam-effekt cost-benefit THIS_FILE --out DIR",
            "estimator": self.estimator,
            "cost_per_participant_sek": self.cost_per_participant_sek,
            "draws_seed": self.draws_seed,
            "parameters": self.parameters.model_dump(mode="json"),
            "effects": json.loads(self.effects.to_json(orient="split", index=False, double_precision=15)),
            "effect_values": {
                "estimate": self.effects["estimate"].astype(float).tolist(),
                "std_error": self.effects["std_error"].astype(float).tolist(),
            },
            "covariance": None
            if cov is None
            else {"columns": [list(c) for c in cov.columns], "values": cov.to_numpy().tolist()},
        }
        return json.dumps(data, indent=1, ensure_ascii=False, allow_nan=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> CostBenefitInputs:
        """The inputs written by :meth:`to_json`."""
        data = json.loads(text)
        eff = pd.DataFrame(data["effects"]["data"], columns=data["effects"]["columns"])
        for c in ("estimate", "std_error"):  # exact values (the split frame rounds to 15 digits)
            eff[c] = np.array(data["effect_values"][c], dtype=float)
        cov = data.get("covariance")
        covariance = None
        if cov is not None:
            cols = pd.MultiIndex.from_tuples([(str(o), int(h), str(m)) for o, h, m in cov["columns"]])
            covariance = pd.DataFrame(np.array(cov["values"], dtype=float), index=cols, columns=cols)
        return cls(
            effects=eff,
            covariance=covariance,
            draws_seed=int(data["draws_seed"]),
            cost_per_participant_sek=float(data["cost_per_participant_sek"]),
            parameters=CostBenefitParameters.model_validate(data["parameters"]),
            estimator=str(data["estimator"]),
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
