"""Design diagnostics that act: warnings about the design a reader must see next to the headline effects.

A :class:`DesignWarning` is a finding about the design of one run (a pre-period outcome still imbalanced after
matching, an event study whose pre-trend test rejects, matched controls who may be anonymous participants, …),
with its text in Swedish and English carrying the numbers. The pipeline collects them from the stage results;
the report shows them at the top, ``run.log`` and ``manifest.json`` record them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DesignWarning:
    """One design finding for the reader.

    Attributes
    ----------
    code : a stable name (``pre_period_imbalance``, ``pretrend_rejected``, ``contamination``, …) for logs, tests and
        the manifest.
    text_sv, text_en : the finding in plain words with its numbers, in Swedish and English.
    values : the numbers behind it (for the manifest), e.g. ``{"outcome": "public_support", "smd": 0.14}``.
    """

    code: str
    text_sv: str
    text_en: str
    values: dict[str, Any] = field(default_factory=dict)

    def text(self, lang: str) -> str:
        """The finding in ``lang`` (``"sv"`` or ``"en"``)."""
        return self.text_sv if lang == "sv" else self.text_en

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for ``manifest.json``."""
        return {"code": self.code, "text": self.text_en, "values": self.values}
