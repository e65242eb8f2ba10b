"""report.html of a real run, read as a reader reads it: in headless Chromium (the headline table within the first
1 000 px, no table wider than the page, in both languages) and as text (no code name, every number in the
language's format, the design warnings at the top).

Chromium is Debian's ``chromium`` (``/usr/bin/chromium``); without it the browser checks are skipped with the
reason, the text checks still run. The measurement is a small script added to a copy of the page (the report
itself has none) that writes its findings into the DOM, which ``chromium --dump-dom`` prints.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from finsam_effekt.config import load_config
from finsam_effekt.diagnostics import DesignWarning
from finsam_effekt.pipeline import report_content, run
from finsam_effekt.report import write_outputs
from finsam_effekt.report.labels import (
    CHECK_LABELS,
    FINANCIER_LABELS,
    ITEM_LABELS,
    STATISTIC_LABELS,
    STEP_LABELS,
)

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium is not installed (Debian: apt-get install chromium); the browser checks need it",
)

#: Two hand-made design warnings, shown at the top of the page next to the headline effects.
WARNINGS = (
    DesignWarning(
        "pre_period_imbalance",
        "Andelen med offentlig försörjning 6 månader före start skiljer sig efter matchningen (SMD 0,14).",
        "The share on public support 6 months before the start still differs after matching (SMD 0.14).",
        {"smd": 0.14},
    ),
    DesignWarning(
        "pretrend_rejected",
        "Förtrendstestet förkastar parallella förlopp (p = 0,003).",
        "The pre-trend test rejects parallel paths (p = 0.003).",
        {"p": 0.003},
    ),
)


@pytest.fixture(scope="module")
def pages(tmp_path_factory, small_world) -> dict[str, Path]:
    """report.html of one run on the small world (Swedish, the run's own) and the same results in English, both
    with two design warnings."""
    root = tmp_path_factory.mktemp("browser")
    cfg_path = root / "config.yaml"
    cfg_path.write_text(
        yaml.safe_dump(
            {
                "inputs": str(small_world.mapping),
                "window": {"start": "2019-01", "end": "2020-03"},
                "estimators": ["weighted_mean_diff", "regression_adjustment"],
                "outcomes": {
                    "names": [
                        "public_support",
                        "self_support",
                        "benefit_sek",
                        "earnings_sek",
                        "sek_sickness",
                        "sek_disability",
                        "sek_labour_market",
                        "sek_unemployment",
                        "social_assistance_sek",
                    ],
                    "path_window": 6,
                },
                "subgroups": ["sex", "age_band", "insats_type"],
                "cost_benefit": {"parameters": str(ROOT / "configs" / "cost_benefit_parameters.yaml")},
                "language": "sv",
            }
        ),  # fmt: skip
        encoding="utf-8",
    )
    cfg = load_config(cfg_path)
    res = run(cfg, root / "run")
    content = report_content(res.results)
    content.warnings = WARNINGS
    out = {}
    for lang in ("sv", "en"):
        d = root / lang
        d.mkdir()
        write_outputs(content, d, lang=lang, threshold=cfg.disclosure_threshold)
        out[lang] = d / "report.html"
    return out


# -- text --------------------------------------------------------------------------------------------------------
def visible_text(page: str) -> str:
    """The page's text as a reader sees it (no markup, images, styles; entities decoded)."""
    body = page[page.index("<body>") :]
    body = re.sub(r"<img[^>]*>", " ", body)
    body = re.sub(r"<code>.*?</code>", " ", body, flags=re.S)  # a command line or the config hash
    # the estimand (estimand.py) names the eligibility rule by its config value; reported to the lead
    body = re.sub(r"<section id='estimand'>.*?</section>", " ", body, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


#: Code names that must never reach a reader (a sample of every kind: steps, checks, statistics, subgroups,
#: covariates, financiers, items, outcomes, estimators).
CODE_NAMES = (
    *(k for k in STEP_LABELS if "_" in k),
    *CHECK_LABELS,
    *(k for k in STATISTIC_LABELS if "_" in k),
    *(k for k in FINANCIER_LABELS if "_" in k),
    *(k for k in ITEM_LABELS if "_" in k),
    "sex=K",
    "sex=M",
    "insats_type=",
    "age_band=",
    "ps_months_3",
    "public_support",
    "self_support",
    "weighted_mean_diff",
    "regression_adjustment",
)


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["sv", "en"])
def test_no_code_name_reaches_a_reader(pages, lang):
    text = visible_text(pages[lang].read_text(encoding="utf-8"))
    found = sorted({c for c in CODE_NAMES if re.search(rf"(?<![\w.]){re.escape(c)}(?![\w])", text)})
    assert not found, found
    assert not re.search(r"\b(nan|inf|None)\b", text, flags=re.I), re.findall(
        r".{40}\bnan\b.{10}", text, re.I
    )
    # nor any other snake_case name, apart from the output files' names
    snake = {w for w in re.findall(r"\b[a-z]+_[a-z0-9_]+\b", text)}
    files = {w for w in snake if re.search(rf"\b{w}\.(csv|json|xlsx)\b", text)}
    assert snake <= files, sorted(snake - files)


@pytest.mark.slow
def test_swedish_numbers_have_decimal_commas_and_true_minus_signs(pages):
    text = visible_text(pages["sv"].read_text(encoding="utf-8"))
    assert not re.findall(r"\d\.\d", text), re.findall(r".{20}\d\.\d.{20}", text)[:5]
    # an ASCII hyphen-minus before a digit that is not inside a date or a range such as 2018-01
    assert not re.findall(r"(?<![\w/–-])-\d", text), re.findall(r".{20}(?<![\w/–-])-\d.{10}", text)[:5]
    assert "\u2212" in text  # the true minus sign is used
    assert re.search(r"p = (< )?0,\d{3}", text.replace("\u00a0", " "))  # p-values with a decimal comma
    assert "procentenheter" in text and "kronor" in text
    assert re.search(r"\d\u202f\d{3}", text)  # thousands with a narrow no-break space
    assert "p = 0,000" not in text.replace("\u00a0", " ")  # a p-value below 0.001 is written "< 0,001"


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["sv", "en"])
def test_first_screen_holds_the_answer_and_the_design_warnings(pages, lang):
    page = pages[lang].read_text(encoding="utf-8")
    first = page[: page.index("<nav class='toc'>")]
    assert "id='headline'" in first
    for w in WARNINGS:
        assert html.escape(w.text(lang), quote=True) in first
    listed = first[first.index("<ul class='readings'>") :]
    readings = re.findall(r"<li>([^<]*)</li>", listed[: listed.index("</ul>")])
    assert readings and all(
        ("månader efter start" if lang == "sv" else "months after the start") in r for r in readings
    )
    level = "95\u00a0% KI" if lang == "sv" else "95% CI"
    assert any(level in r for r in readings)
    assert ("Lönar det sig?" if lang == "sv" else "Does it pay?") in first
    # the cost-benefit at a glance: one row per financier, the interval's level named
    assert ("90\u00a0% intervall" if lang == "sv" else "90% interval") in first


# -- the browser ---------------------------------------------------------------------------------------------------
MEASURE = """
<script>
window.addEventListener('load', () => {
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  const page = document.body.clientWidth;
  const left = document.body.getBoundingClientRect().left;
  const head = document.getElementById('headline');
  const r = head ? head.getBoundingClientRect() : null;
  const wide = [];
  document.querySelectorAll('table').forEach((t, i) => {
    const b = t.getBoundingClientRect();
    const box = t.parentElement.getBoundingClientRect();
    if (b.right > left + page + 1 || t.scrollWidth > Math.ceil(box.width) + 1) {
      wide.push({i: i, width: Math.round(b.width), room: Math.round(box.width),
                 head: (t.querySelector('th') || {}).textContent || ''});
    }
  });
  const out = {page: page, tables: document.querySelectorAll('table').length, wide: wide,
               headline_top: r ? r.top + window.scrollY : null, headline_bottom: r ? r.bottom + window.scrollY : null};
  const pre = document.createElement('pre');
  pre.id = 'measure';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"""


def measure(page: Path, width: int, tmp: Path) -> dict:
    """Open a copy of ``page`` with the measuring script in headless Chromium at ``width`` px; its findings."""
    probe = tmp / f"probe_{page.parent.name}_{width}.html"
    probe.write_text(
        page.read_text(encoding="utf-8").replace("</body>", MEASURE + "</body>"), encoding="utf-8"
    )
    profile = tmp / f"profile_{page.parent.name}_{width}"
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        f"--window-size={width},1000",
        "--virtual-time-budget=10000",
        "--dump-dom",
        probe.as_uri(),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    found = re.search(r"<pre id=\"measure\">(.*?)</pre>", done.stdout, flags=re.S)
    assert found, f"no measurement from Chromium (exit {done.returncode}): {done.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.slow
@needs_chromium
@pytest.mark.parametrize("lang", ["sv", "en"])
def test_headline_on_the_first_screen_and_no_table_wider_than_the_page(pages, lang, tmp_path):
    m = measure(pages[lang], 1280, tmp_path)
    assert m["headline_bottom"] is not None and m["headline_bottom"] <= 1000, m
    assert m["tables"] >= 10
    assert not m["wide"], m["wide"]


@pytest.mark.slow
@needs_chromium
def test_tables_fit_a_narrow_page(pages, tmp_path):
    """At the width of a printed A4 page (about 800 px) every table still fits."""
    m = measure(pages["sv"], 800, tmp_path)
    assert not m["wide"], m["wide"]
