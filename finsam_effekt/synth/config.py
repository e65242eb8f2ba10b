"""The settings of a world (:class:`SynthConfig`, :class:`Mess`) and what was written (:class:`SynthResult`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import months as mo
from ..errors import ConfigError
from ..schema import DEFAULT_SELF_SUPPORT_THRESHOLD_SEK


@dataclass(frozen=True)
class Mess:
    """Register mess switches (all on by default, at realistic rates). None changes a monthly quantity."""

    anonymous: bool = (
        True  #: anonymous registrations (not linkable; whose they are: SynthConfig.contamination)
    )
    volume: bool = True  #: volume insatser in ``sus_volume``
    double_registrations: bool = True  #: parallel insatser, dropout and return inside the episode gap
    later_episodes: bool = True  #: new episodes at least a year after the previous one
    ongoing: bool = True  #: insatser still running at the end of data have no end date
    open_spells: bool = True  #: spells running at the end of data have no to_date
    monthly_payment_spells: bool = True  #: SA, AE, AKS, UTV and AKA spells reported per payment month
    split_spells: bool = True  #: a spell written as two consecutive rows
    overlapping_spells: bool = True  #: a full-extent spell written as overlapping half-extent rows
    duplicate_spells: bool = True  #: exact duplicate rows (retroactive corrections)
    support_mismatch: bool = True  #: SUS support_at_start disagreeing with the registers


@dataclass(frozen=True)
class SynthConfig:
    """What world to generate. The same config gives byte-identical files."""

    persons: int = 60_000
    seed: int = 2024
    start: str = "2016-01"
    end: str = "2023-12"
    effect_scale: float = 1.0
    hidden_confounding: float = 0.0
    mess: Mess = field(default_factory=Mess)
    self_support_threshold_sek: float = DEFAULT_SELF_SUPPORT_THRESHOLD_SEK
    #: Anonymous participants are ordinary members of the population (residents whose SUS registrations lack a
    #: personal identity number): a share ``anonymous_share`` of the persons who start an insats is registered
    #: anonymously, keeps an ordinary register history and can be drawn as a control (contaminated controls,
    #: issue 15). False: every participant is linkable and the anonymous registrations belong to persons outside
    #: the population register (the world before issue 15).
    contamination: bool = True
    #: Share of participants registered anonymously when ``contamination`` (SUS: roughly half of all
    #: registrations are linkable; domain note §2).
    anonymous_share: float = 0.45
    #: Strength of the pre-entry dip (0 = off): entry also depends on the main source of support in the last one
    #: or two months and on a change onto support in the last month (package docstring, step 4).
    pre_entry_dip: float = 0.0

    def validate(self) -> None:
        """Raise :class:`ConfigError` with an actionable message for impossible settings."""
        if self.persons < 1:
            raise ConfigError(f"--persons must be at least 1, got {self.persons}")
        for name in ("start", "end"):
            v = getattr(self, name)
            if not (
                isinstance(v, str) and len(v) == 7 and v[4] == "-" and v[:4].isdigit() and v[5:].isdigit()
            ):
                raise ConfigError(f"--{name} must be a month YYYY-MM, got {v!r}")
            if not 1 <= int(v[5:]) <= 12:
                raise ConfigError(f"--{name} must be a month YYYY-MM, got {v!r}")
        if mo.to_index(self.end) - mo.to_index(self.start) < 11:
            raise ConfigError(f"the window {self.start}..{self.end} must span at least 12 months")
        if self.effect_scale < 0 or not math.isfinite(self.effect_scale):
            raise ConfigError(f"--effect-scale must be a finite number >= 0, got {self.effect_scale}")
        if self.hidden_confounding < 0 or not math.isfinite(self.hidden_confounding):
            raise ConfigError(
                f"--hidden-confounding must be a finite number >= 0, got {self.hidden_confounding}"
            )
        if not 0 <= self.anonymous_share < 1:
            raise ConfigError(f"--anonymous-share must be in [0, 1), got {self.anonymous_share}")
        if self.pre_entry_dip < 0 or not math.isfinite(self.pre_entry_dip):
            raise ConfigError(f"--pre-entry-dip must be a finite number >= 0, got {self.pre_entry_dip}")

    def command(self, out: str = "synthetic_data", fmt: str = "parquet") -> str:
        """The CLI command that regenerates this world (the issue-15 switches only when they differ from their
        defaults)."""
        extra = ""
        if not self.contamination:
            extra += " --no-contamination"
        elif self.anonymous_share != SynthConfig.anonymous_share:
            extra += f" --anonymous-share {self.anonymous_share:g}"
        if self.pre_entry_dip:
            extra += f" --pre-entry-dip {self.pre_entry_dip:g}"
        return (
            f"finsam-effekt synth --out {out} --persons {self.persons} --seed {self.seed} --start {self.start} "
            f"--end {self.end} --format {fmt} --effect-scale {self.effect_scale:g} "
            f"--hidden-confounding {self.hidden_confounding:g}{extra}"
        )


@dataclass
class SynthResult:
    """What :func:`generate` wrote: paths, rows per table and the truth."""

    out_dir: Path
    config: SynthConfig
    format: str
    rows: dict[str, int]
    truth: dict
    paths: dict[str, Path]

    def to_frame(self) -> pd.DataFrame:
        """One row per written table: ``table``, ``rows``, ``path``."""
        return pd.DataFrame(
            {
                "table": list(self.rows),
                "rows": list(self.rows.values()),
                "path": [str(self.paths[t]) for t in self.rows],
            }
        )

    def summary(self) -> str:
        """Readable summary: tables, counts and the headline true effects."""
        t = self.truth
        c = t["counts"]
        lines = [
            f"Synthetic register world in {self.out_dir} ({self.format})",
            f"  persons {t['persons']}, seed {t['seed']}, window {t['window'][0]}..{t['window'][1]}, "
            f"effect scale {t['effect_scale']:g}, hidden confounding {t['hidden_confounding']:g}",
            "  rows: " + ", ".join(f"{k} {v}" for k, v in self.rows.items()),
            f"  SUS: {c['registrations']} registrations ({c['person_registrations']} person, "
            f"{c['anonymous_registrations']} anonymous, {c['double_registrations']} double), "
            f"{c['linkable_persons']} linkable persons in {c['episodes']} episodes, "
            f"{c['volume_participations']} volume participations",
            f"  anonymous participants: {c['anonymous_participants']} "
            + (
                "(in the population: they can be drawn as controls)"
                if t.get("contamination", False)
                else "(outside the population)"
            )
            + (f"; pre-entry dip {t['pre_entry_dip']:g}" if t.get("pre_entry_dip") else ""),
            "  true ATT on linkable participants (with minus without insats):",
        ]
        for o in ("public_support", "self_support", "benefit_sek", "earnings_sek"):
            a = t["att"]["all"][o]
            lines.append(
                f"    {o:<16} month 3 {_fmt(a['3'])}, month 6 {_fmt(a['6'])}, month 12 {_fmt(a['12'])}"
            )
        lines.append("  true ATT against 'not now' (controls may start later; later_treated: keep):")
        for o in ("public_support", "self_support"):
            a = t["att_not_now"]["all"][o]
            lines.append(
                f"    {o:<16} month 3 {_fmt(a['3'])}, month 6 {_fmt(a['6'])}, month 12 {_fmt(a['12'])}"
            )
        return "\n".join(lines)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.4g}"
