"""Parameters of the cost-benefit calculation (domain note §6), read and checked with the analysis config.

Defaults and sources are in ``configs/cost_benefit_parameters.yaml`` (the package carries the same values as the
models' defaults). ``load_cost_benefit_parameters`` reads a parameters file and applies a config's overrides.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from ..errors import ConfigError
from ..options import PERSISTENCE_KINDS, AkassaPayer, Persistence
from ..schema import GROUP_PAYER
from .base import StrictModel, load_yaml

DEFAULT_PARAMETERS_FILE = Path(__file__).resolve().parents[2] / "configs" / "cost_benefit_parameters.yaml"


class PersistenceSettings(StrictModel):
    """Effects beyond the last estimated month K: ``none | constant | linear_decay(years) | exponential(half_life)``."""

    kind: Persistence = Field("exponential", description="shape of the effect after the last estimated month")
    years: float = Field(3.0, gt=0, description="linear_decay: years until the effect reaches zero")
    half_life_years: float = Field(2.0, gt=0, description="exponential: half-life of the effect in years")


class MonteCarloSettings(StrictModel):
    """Monte Carlo over the effect estimates."""

    n_draws: int = Field(2000, ge=100, le=200_000, description="number of draws")
    seed: int = Field(20240801, ge=0, description="seed of the draws")
    interval: float = Field(0.90, gt=0, lt=1, description="central interval reported (0.90 = 5 %..95 %)")


class SensitivitySettings(StrictModel):
    """One-way (one-at-a-time) sensitivity ranges for the tornado chart."""

    discount_rate: tuple[float, float] = Field((0.01, 0.06), description="low, high real discount rate")
    persistence: tuple[str, str] = Field(("none", "constant"), description="low, high persistence kind")
    horizon_years: tuple[float, float] = Field((1.0, 10.0), description="low, high horizon in years")
    tax_rate_points: float = Field(
        0.01, ge=0, lt=0.2, description="± change of the kommunal and regional tax rates (each)"
    )
    cost_relative: float = Field(
        0.20, ge=0, lt=1, description="± relative change of the cost per participant"
    )


class CostBenefitParameters(StrictModel):
    """Every parameter of the cost-benefit (defaults and sources in ``configs/cost_benefit_parameters.yaml``)."""

    price_base_year: int = Field(2024, description="prices of all results (SEK of this year)")
    price_index: dict[int, float] = Field(
        default_factory=lambda: {
            2015: 313.35,
            2016: 316.43,
            2017: 322.11,
            2018: 328.40,
            2019: 334.47,
            2020: 335.02,
            2021: 343.19,
            2022: 371.92,
            2023: 403.54,
            2024: 414.84,
        },
        description="KPI annual averages (1980 = 100) by year",
    )
    effects_price_year: int | None = Field(
        None, description="price year of the effect estimates; None = already in price_base_year"
    )
    cost_per_participant_sek: float | None = Field(
        None, ge=0, description="insats cost per participant; None = from insats_costs"
    )
    cost_price_year: int | None = Field(None, description="price year of cost_per_participant_sek")
    cost_shares: dict[str, float] = Field(
        default_factory=lambda: {"state": 0.50, "region": 0.25, "kommun": 0.25},
        description="financing shares of a förbund (lag 2003:1210)",
    )
    state_cost_channel: dict[str, float] = Field(
        default_factory=lambda: {"FK": 1.0, "AF": 0.0},
        description="how the state's share is paid between FK and AF (sums to 1)",
    )
    kommunal_tax_rate: float = Field(0.2071, ge=0, lt=1, description="average kommunal income tax rate")
    regional_tax_rate: float = Field(0.1166, ge=0, lt=1, description="average regional income tax rate")
    state_tax_rate: float = Field(0.20, ge=0, lt=1, description="state income tax rate above the threshold")
    state_tax_threshold_sek: float = Field(
        615_300, ge=0, description="annual gross income above which state income tax is paid (brytpunkt)"
    )
    share_above_state_threshold: float = Field(
        0.0, ge=0, le=1, description="share of the extra taxable income taxed at the state rate"
    )
    payroll_fee_rate: float = Field(0.3142, ge=0, lt=1, description="arbetsgivaravgifter on gross earnings")
    taxable_groups: tuple[str, ...] = Field(
        ("sickness", "disability", "labour_market", "unemployment"),
        description="benefit groups that are taxable income (social assistance is not)",
    )
    akassa_payer: AkassaPayer = Field("state", description="who gains when a-kassa falls")
    discount_rate: float = Field(0.035, ge=0, lt=1, description="real annual discount rate")
    horizon_years: float = Field(5.0, gt=0, le=60, description="years after the start that count")
    persistence: PersistenceSettings = Field(default_factory=PersistenceSettings)
    persistence_base_months: int = Field(
        3, ge=1, le=60, description="effect carried beyond K = mean of the last this many estimated months"
    )
    mcpf: float = Field(1.0, ge=1, le=3, description="marginal cost of public funds (1 = off)")
    break_even_max_years: float = Field(40.0, gt=0, le=100, description="search range for break-even years")
    monte_carlo: MonteCarloSettings = Field(default_factory=MonteCarloSettings)
    sensitivity: SensitivitySettings = Field(default_factory=SensitivitySettings)

    @model_validator(mode="after")
    def _check(self) -> CostBenefitParameters:
        if set(self.cost_shares) != {"state", "region", "kommun"}:
            raise ValueError("cost_shares must have exactly the keys state, region, kommun")
        if abs(sum(self.cost_shares.values()) - 1) > 1e-9:
            raise ValueError(f"cost_shares must sum to 1, got {sum(self.cost_shares.values())}")
        if (
            set(self.state_cost_channel) != {"FK", "AF"}
            or abs(sum(self.state_cost_channel.values()) - 1) > 1e-9
        ):
            raise ValueError("state_cost_channel must have the keys FK and AF and sum to 1")
        unknown = set(self.taxable_groups) - set(GROUP_PAYER)
        if unknown:
            raise ValueError(
                f"unknown taxable_groups {sorted(unknown)}; known groups are {list(GROUP_PAYER)}"
            )
        if self.price_base_year not in self.price_index:
            raise ValueError(f"price_base_year {self.price_base_year} is not in price_index; add its KPI")
        for kind in self.sensitivity.persistence:
            if kind not in PERSISTENCE_KINDS:
                raise ValueError(f"sensitivity.persistence: unknown kind {kind!r}")
        return self

    def price_factor(self, year: int | None) -> float:
        """``KPI[price_base_year] / KPI[year]`` (1 when ``year`` is None)."""
        if year is None or year == self.price_base_year:
            return 1.0
        if year not in self.price_index:
            raise ConfigError(
                f"cost-benefit: no price index for {year}; add it to price_index in the parameters file "
                f"(known years {min(self.price_index)}..{max(self.price_index)})"
            )
        return self.price_index[self.price_base_year] / self.price_index[year]


def _set_dotted(data: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"cost_benefit.overrides: {key!r}: {p!r} is not a group of parameters")
    node[parts[-1]] = value


def load_cost_benefit_parameters(
    path: Path | None = None, overrides: dict[str, Any] | None = None
) -> CostBenefitParameters:
    """Read the parameters YAML (default ``configs/cost_benefit_parameters.yaml``) and apply overrides.

    ``overrides`` maps a parameter to a value; nested parameters use dots (``persistence.kind``). Without a file
    at the default location the model's defaults (identical to the shipped file) are used.
    """
    data: dict = {}
    if path is not None:
        data = load_yaml(Path(path))
    elif DEFAULT_PARAMETERS_FILE.is_file():
        data = load_yaml(DEFAULT_PARAMETERS_FILE)
    source = str(path or DEFAULT_PARAMETERS_FILE)
    for k, v in (overrides or {}).items():
        _set_dotted(data, k, v)
    try:
        return CostBenefitParameters.model_validate(data)
    except ValidationError as exc:
        lines = [
            f"{source}: {'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
            for e in exc.errors()
        ]
        raise ConfigError("\n".join(lines)) from exc
