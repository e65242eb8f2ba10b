"""Design diagnostics that act: warnings about the design a reader must see next to the headline effects.

A :class:`DesignWarning` is a finding about the design of one run (a pre-period outcome still imbalanced after
matching, an event study whose pre-trend test rejects, matched controls who may be anonymous participants, …),
with its text in Swedish and English carrying the numbers. The pipeline collects them from the stage results;
the report shows them at the top, ``run.log`` and ``manifest.json`` record them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .schema import OUTCOME_INFO, OUTCOMES


@dataclass(frozen=True)
class DesignWarning:
    """One design finding for the reader.

    Attributes
    ----------
    code : a stable name (``pre_period_imbalance``, ``pretrend_rejected``, ``contamination``, …) for logs, tests and
        the manifest.
    text_sv, text_en : the finding in plain words with its numbers, in Swedish and English.
    values : the numbers behind it (for the manifest), e.g. ``{"outcome": "public_support", "smd": 0.14}``.
    persons : the fewest persons the numbers rest on in each group compared (e.g. matched participants and
        controls); None when the numbers rest on no persons of the analysis.
    plain_sv, plain_en : the finding without its numbers, published instead when ``persons`` are below the
        disclosure threshold (``{threshold}`` is filled in by :meth:`published`).
    """

    code: str
    text_sv: str
    text_en: str
    values: dict[str, Any] = field(default_factory=dict)
    persons: tuple[float | None, ...] | None = None
    plain_sv: str = ""
    plain_en: str = ""

    def text(self, lang: str) -> str:
        """The finding in ``lang`` (``"sv"`` or ``"en"``)."""
        return self.text_sv if lang == "sv" else self.text_en

    def published(self, threshold: int) -> DesignWarning:
        """The warning as published under the disclosure ``threshold``: itself, or — when any group of
        ``persons`` is unknown or smaller than ``threshold`` — the finding without its numbers (no values)."""
        if self.persons is None or all(p is not None and p == p and p >= threshold for p in self.persons):
            return self
        note_sv = f" Siffrorna vilar på färre än {threshold} personer och visas inte."
        note_en = f" The numbers rest on fewer than {threshold} persons and are not shown."
        return DesignWarning(
            self.code,
            (self.plain_sv or self.code) + note_sv,
            (self.plain_en or self.code) + note_en,
            {"suppressed": True},
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for ``manifest.json``."""
        return {"code": self.code, "text": self.text_en, "values": self.values}


#: |SMD| above which a pre-period outcome after matching is a design warning (the balance table's flag).
PRE_PERIOD_SMD_THRESHOLD: float = 0.1
#: Expected share of matched controls who are anonymous participants above which the dilution is a warning.
CONTAMINATION_THRESHOLD: float = 0.02


def _num(x: float, lang: str, digits: int = 3) -> str:
    """A number for running text: ``0.014`` (en) or ``0,014`` (sv), ``digits`` significant digits."""
    text = f"{float(x):.{digits}g}"
    return text.replace(".", ",").replace("-", "−") if lang == "sv" else text.replace("-", "−")


def _pct(x: float, lang: str) -> str:
    text = f"{100 * float(x):.1f}"
    return f"{text.replace('.', ',')} %" if lang == "sv" else f"{text} %"


def pre_period_name(variable: str, lang: str) -> str:
    """A pre-period row of the balance table in words: ``public_support_u1`` → "share on public support in month
    u−1", ``benefit_sek_mean24`` → "SEK public support, total, mean over u−24..u−1"."""
    for o in sorted(OUTCOMES, key=len, reverse=True):
        if variable.startswith(o + "_"):
            info, rest = OUTCOME_INFO[o], variable[len(o) + 1 :]
            label = info.label_sv if lang == "sv" else info.label_en
            label = label if label.startswith("SEK") else label[0].lower() + label[1:]
            if rest.startswith("u") and rest[1:].isdigit():
                return f"{label}, {'månad' if lang == 'sv' else 'month'} u−{rest[1:]}"
            if rest.startswith("mean") and rest[4:].isdigit():
                w = rest[4:]
                return f"{label}, {'medel' if lang == 'sv' else 'mean over'} u−{w}..u−1"
    return variable


def chance_smd(n_treated: float) -> float:
    """About the largest |SMD| one outcome shows by chance alone (95 %) between n participants and as many
    comparison persons drawn alike: ``1.96 · √(2 / n)`` (the SD of a difference of two means of n, in units of
    the participants' SD)."""
    return 1.96 * (2.0 / n_treated) ** 0.5 if n_treated > 0 else float("nan")


def pre_period_warning(
    rows: list[dict[str, Any]],
    threshold: float = PRE_PERIOD_SMD_THRESHOLD,
    n_treated: int | None = None,
    n_control: int | None = None,
) -> DesignWarning:
    """The warning for pre-period outcomes still imbalanced after matching.

    ``rows``: one dict per flagged balance-table row (``variable``, ``smd``, ``mean_treated``, ``mean_control``),
    largest |SMD| first; the text names the first five with their numbers. ``n_treated`` (the matched
    participants) adds the size of a difference that chance alone gives (:func:`chance_smd`): in a small analysis
    the 0.1 threshold is within chance, and the reader should know. ``n_treated``/``n_control`` are the persons
    the means rest on (:meth:`DesignWarning.published`).
    """

    def listing(lang: str) -> str:
        part = []
        for r in rows[:5]:
            means = (
                f"{'deltagare' if lang == 'sv' else 'participants'} {_num(r['mean_treated'], lang)}, "
                f"{'jämförelse' if lang == 'sv' else 'controls'} {_num(r['mean_control'], lang)}"
            )
            part.append(f"{pre_period_name(r['variable'], lang)}: SMD {_num(r['smd'], lang, 2)} ({means})")
        more = len(rows) - 5
        if more > 0:
            part.append(f"{'och' if lang == 'sv' else 'and'} {more} {'till' if lang == 'sv' else 'more'}")
        return "; ".join(part)

    chance = chance_smd(n_treated) if n_treated else float("nan")
    chance_sv = chance_en = ""
    if n_treated:
        chance_sv = (
            f" Med {n_treated} matchade deltagare kan ett enskilt utfall visa |SMD| upp till omkring "
            f"{_num(chance, 'sv', 2)} av en slump."
        )
        chance_en = (
            f" With {n_treated} matched participants one outcome can show an |SMD| up to about "
            f"{_num(chance, 'en', 2)} by chance alone."
        )
    sv = (
        f"Obalans före start: efter matchningen skiljer sig deltagarna och jämförelsepersonerna fortfarande i "
        f"{len(rows)} utfall före startmånaden (|SMD| > {_num(threshold, 'sv')}): {listing('sv')}. Jämförelse"
        "personerna var alltså inte i deltagarnas situation före start, och skillnaden följer med in i utfallen "
        "de närmaste månaderna: effekterna på kort sikt kan vara snedvridna. Matcha exakt på statusen månaden före "
        "start (matching.exact: [ref_month, ps_u1]) och behåll den månadsvisa historiken bland kovariaterna."
        + chance_sv
    )
    en = (
        f"Pre-period imbalance: after matching, participants and their comparison persons still differ in "
        f"{len(rows)} outcomes before the start month (|SMD| > {_num(threshold, 'en')}): {listing('en')}. The "
        "comparison persons were not in the participants' situation before start, and the difference carries into "
        "the outcomes of the next months: short-horizon effects may be biased. Match exactly on the status in the "
        "month before start (matching.exact: [ref_month, ps_u1]) and keep the month-by-month history among the "
        "covariates." + chance_en
    )
    values = {
        "threshold": threshold,
        "n_treated": n_treated,
        "chance_smd": chance,
        "rows": [
            {
                k: (float(r[k]) if k != "variable" else str(r[k]))
                for k in ("variable", "smd", "mean_treated", "mean_control")
            }
            for r in rows
        ],
    }
    plain_sv = (
        "Obalans före start: efter matchningen skiljer sig deltagarna och jämförelsepersonerna fortfarande i "
        f"utfallen före startmånaden (|SMD| > {_num(threshold, 'sv')}); effekterna på kort sikt kan vara snedvridna. "
        "Matcha exakt på statusen månaden före start (matching.exact: [ref_month, ps_u1])."
    )
    plain_en = (
        "Pre-period imbalance: after matching, participants and their comparison persons still differ in outcomes "
        f"before the start month (|SMD| > {_num(threshold, 'en')}); short-horizon effects may be biased. Match "
        "exactly on the status in the month before start (matching.exact: [ref_month, ps_u1])."
    )
    return DesignWarning("pre_period_imbalance", sv, en, values, (n_treated, n_control), plain_sv, plain_en)


def pretrend_warning(
    outcome: str,
    wald: float,
    df: int,
    p: float,
    alpha: float,
    lead: dict[str, float] | None = None,
    persons: tuple[float | None, ...] | None = None,
) -> DesignWarning:
    """The warning for an event study whose pre-trend Wald test rejects at level ``alpha``.

    ``lead``: the lead with the largest |estimate / SE| (``rel_month``, ``estimate``, ``std_error``), named in the
    text. ``persons``: the fewest participants and controls behind the leads (:meth:`DesignWarning.published`).
    """
    info = OUTCOME_INFO.get(outcome)
    name_sv = info.label_sv.lower() if info else outcome
    name_en = info.label_en.lower() if info else outcome
    lead_sv = lead_en = ""
    if lead is not None:
        m = str(int(lead["rel_month"])).replace("-", "−")
        est, se = lead["estimate"], lead["std_error"]
        lead_sv = f"; störst i månad {m}: {_num(est, 'sv')} (medelfel {_num(se, 'sv', 2)})"
        lead_en = f"; largest in month {m}: {_num(est, 'en')} (SE {_num(se, 'en', 2)})"
    sv = (
        f"Förtrendstestet förkastar för {name_sv}: i händelsestudien skiljer sig deltagarna och de matchade "
        f"jämförelsepersonerna redan före start (Wald χ²({df}) = {_num(wald, 'sv')}, p = {_num(p, 'sv', 2)} < "
        f"{_num(alpha, 'sv')}{lead_sv}). Antagandet att jämförelsepersonerna visar deltagarnas utveckling utan insats "
        "får då inget stöd före start; läs effekterna på kort sikt med försiktighet och se balansen på utfallen före "
        "start."
    )
    en = (
        f"The pre-trend test rejects for {name_en}: in the event study participants and their matched comparison "
        f"persons already differ before start (Wald χ²({df}) = {_num(wald, 'en')}, p = {_num(p, 'en', 2)} < "
        f"{_num(alpha, 'en')}{lead_en}). The assumption that the comparison persons show the participants' course "
        "without the insats has no support before start; read the short-horizon effects with care and see the "
        "balance of the pre-period outcomes."
    )
    values: dict[str, Any] = {
        "outcome": outcome,
        "wald": float(wald),
        "df": int(df),
        "p": float(p),
        "alpha": alpha,
    }
    if lead is not None:
        values["lead"] = {k: float(v) for k, v in lead.items()}
    plain_sv = (
        f"Förtrendstestet förkastar för {name_sv} på nivån {_num(alpha, 'sv')}: deltagarna och de matchade "
        "jämförelsepersonerna skiljer sig redan före start; läs effekterna på kort sikt med försiktighet."
    )
    plain_en = (
        f"The pre-trend test rejects for {name_en} at level {_num(alpha, 'en')}: participants and their matched "
        "comparison persons already differ before start; read the short-horizon effects with care."
    )
    return DesignWarning("pretrend_rejected", sv, en, values, persons, plain_sv, plain_en)


def contamination_warning(
    share: float,
    share_candidates: float,
    n_anonymous: float,
    *,
    now: float = float("nan"),
    before: float = float("nan"),
    threshold: int = 0,
    persons: tuple[float | None, ...] | None = None,
) -> DesignWarning:
    """The warning for matched controls who may be anonymous participants (dilution of the effect towards 0):
    ``share`` among the matched controls (``now``: starting in the same month, ``before``: former participants),
    ``share_candidates`` among all candidates, ``n_anonymous`` anonymous registrations behind the estimate (written
    as "fewer than ``threshold``" below the disclosure threshold, and left out of ``values``)."""
    small = n_anonymous < threshold
    n_sv = f"färre än {threshold}" if small else _num(n_anonymous, "sv", 6)
    n_en = f"fewer than {threshold}" if small else _num(n_anonymous, "en", 6)
    sv = (
        f"Utspädning: i genomsnitt {_pct(share, 'sv')} av de matchade jämförelsepersonerna väntas själva vara "
        f"anonymt registrerade deltagare ({_pct(now, 'sv')} som började samma månad, {_pct(before, 'sv')} som "
        f"började tidigare; {_pct(share_candidates, 'sv')} av alla kandidater; skattat från "
        f"{n_sv} anonyma registreringar, räknade per förbund och månad). De kan inte skiljas ut, "
        "eftersom registreringen saknar personnummer, och drar effekten mot noll. Den utspädningskorrigerade "
        "effekten (skattning / (1 − andel)) redovisas som känslighetsrad."
    )
    en = (
        f"Dilution: on average {_pct(share, 'en')} of the matched comparison persons are expected to be anonymously "
        f"registered participants themselves ({_pct(now, 'en')} starting in the same month, {_pct(before, 'en')} "
        f"who started earlier; {_pct(share_candidates, 'en')} of all candidates; estimated from "
        f"{n_en} anonymous registrations, counted per förbund and month). They cannot be told apart, "
        "as their registration has no personal identity number, and they pull the effect towards zero. The "
        "dilution-corrected effect (estimate / (1 − share)) is shown as a sensitivity row."
    )
    values = {
        "share_matched": float(share),
        "share_matched_now": float(now),
        "share_matched_before": float(before),
        "share_candidates": float(share_candidates),
    }
    if not small:
        values["n_anonymous"] = float(n_anonymous)
    plain_sv = (
        "Utspädning: en del av de matchade jämförelsepersonerna väntas själva vara anonymt registrerade deltagare; "
        "de drar effekten mot noll."
    )
    plain_en = (
        "Dilution: some of the matched comparison persons are expected to be anonymously registered participants "
        "themselves; they pull the effect towards zero."
    )
    return DesignWarning("contamination", sv, en, values, persons, plain_sv, plain_en)
