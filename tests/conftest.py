"""Session-wide synthetic worlds: each world is generated once and shared by every test module that asks for it.

Tests read these folders and never write into them (outputs go to their own ``tmp_path``). ``make_world`` gives
any other world, cached by its settings, so two modules asking for the same world share one copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from finsam_effekt.synth import SynthConfig, generate

ROOT = Path(__file__).resolve().parents[1]
#: The shipped world (synthetic_data/, committed, with its truth).
SHIPPED = ROOT / "synthetic_data"
#: The small world most end-to-end tests share: 2 000 persons over five years.
SMALL = SynthConfig(persons=2000, seed=7, start="2017-01", end="2021-12")
#: A larger world for the tests that need statistical power (balance, bias reduction).
MEDIUM = SynthConfig(persons=20000, seed=11, start="2017-01", end="2021-12")
#: A world without any effect (effect scale 0) of the same size as MEDIUM.
NULL = SynthConfig(persons=20_000, seed=2024, effect_scale=0.0)


@dataclass(frozen=True)
class World:
    """A generated world: its folder (tables, ``mapping.yaml``, truth files) and the config that made it."""

    path: Path
    config: SynthConfig
    fmt: str

    @property
    def mapping(self) -> Path:
        return self.path / "mapping.yaml"


@pytest.fixture(scope="session")
def make_world(tmp_path_factory):
    """``make_world(config, fmt="parquet") -> World``: generate a world once per session and settings."""
    cache: dict[tuple[SynthConfig, str], World] = {}

    def make(config: SynthConfig, fmt: str = "parquet") -> World:
        key = (config, fmt)
        if key not in cache:
            out = tmp_path_factory.mktemp(f"world_{config.persons}_{config.seed}_{fmt}")
            generate(out, config, fmt)
            cache[key] = World(out, config, fmt)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def small_world(make_world) -> World:
    return make_world(SMALL)


@pytest.fixture(scope="session")
def medium_world(make_world) -> World:
    return make_world(MEDIUM)


@pytest.fixture(scope="session")
def null_world_dir(make_world) -> World:
    return make_world(NULL)
