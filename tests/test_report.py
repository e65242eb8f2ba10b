"""Disclosure control and the output writer, on small hand-made result frames in the documented formats."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from finsam_effekt.errors import ConfigError
from finsam_effekt.report import (
    ReportContent,
    atomic_output_dir,
    check_publishable,
    sha256_path,
    suppress_counts,
    suppress_estimates,
    write_manifest,
    write_outputs,
)


def _effects() -> pd.DataFrame:
    rows = []
    for k in (3, 6, 12):
        e = -0.05 * k / 3
        rows.append(
            ("public_support", k, "status", "all", "att", e, 0.01, e - 0.02, e + 0.02, 0.001, 120, 240)
        )
    rows.append(
        ("public_support", 3, "status", "sex=K", "att", -0.2, 0.1, -0.4, 0.0, 0.05, 4, 80)
    )  # 4 treated
    rows.append(
        ("public_support", 3, "status", "sex=M", "att", -0.1, 0.05, -0.2, 0.0, 0.04, 116, 3)
    )  # 3 controls
    cols = [
        "outcome",
        "horizon_months",
        "measure",
        "subgroup",
        "estimator",
        "estimate",
        "std_error",
        "ci_lower",
        "ci_upper",
        "p_value",
        "n_treated",
        "n_control",
    ]
    return pd.DataFrame(rows, columns=cols)


def _content() -> ReportContent:
    linkage = pd.DataFrame(
        {
            "step": ["registrations", "anonymous", "persons"],
            "step_label": ["Registreringar", "Anonyma", "Personer"],
            "forbund_id": ["ALL", "ALL", "ALL"],
            "start_year": [0, 0, 0],
            "n": [500, 3, 0],
            "suppressed": [False, False, False],
        }
    )
    balance = pd.DataFrame(
        {
            "covariate": ["age", "age", "ps_months_12", "ps_months_12"],
            "sample": ["before", "after", "before", "after"],
            "smd": [0.5, 0.02, 1.1, -0.05],
            "variance_ratio": [1.2, 1.0, 0.8, 0.97],
            "n_treated": [130, 120, 130, 120],  # the persons behind each row (disclosure control)
            "n_control": [5000, 240, 5000, 240],
        }
    )
    es = pd.DataFrame(
        {
            "outcome": "public_support",
            "rel_month": np.arange(-3, 4),
            "estimate": [0.0, 0.01, -0.01, 0.0, -0.05, -0.08, -0.1],
            "std_error": 0.01,
            "ci_lower": np.array([0.0, 0.01, -0.01, 0.0, -0.05, -0.08, -0.1]) - 0.02,
            "ci_upper": np.array([0.0, 0.01, -0.01, 0.0, -0.05, -0.08, -0.1]) + 0.02,
            "n_treated": 120,
            "n_control": 240,
        }
    )
    return ReportContent(
        tables={"effects": _effects(), "linkage_report": linkage, "balance": balance, "event_study": es},
        title="Test",
        question="Minskar insatsen beroendet av offentlig försörjning?",
        estimand="ATT at 3, 6 and 12 months",
        not_run={"cost_benefit": "no cost parameters"},
        config_hash="abc",
    )


def test_suppress_counts_hand_case():
    df = pd.DataFrame({"n": [0, 1, 4, 5, 100]})
    out = suppress_counts(df, threshold=5)
    assert out["n"].tolist()[0] == 0 and out["n"].tolist()[3:] == [5, 100]
    assert out["n"].isna().tolist() == [False, True, True, False, False]
    assert out["suppressed"].tolist() == [False, True, True, False, False]


def test_suppress_estimates_blanks_small_arms():
    out = suppress_estimates(_effects(), threshold=5)
    small = out["subgroup"].isin(["sex=K", "sex=M"])
    assert out.loc[small, ["estimate", "std_error", "ci_lower", "ci_upper", "p_value"]].isna().all().all()
    assert out.loc[small, "suppressed"].all() and not out.loc[~small, "suppressed"].any()
    assert out.loc[~small, "estimate"].notna().all()
    assert pd.isna(out.loc[out["subgroup"] == "sex=K", "n_treated"]).all()  # 4 < 5 blanked
    assert out.loc[out["subgroup"] == "sex=K", "n_control"].iloc[0] == 80  # 80 is publishable
    assert pd.isna(out.loc[out["subgroup"] == "sex=M", "n_control"]).all()
    # threshold 3: only the 4-treated row survives, the 3-control row too
    assert not suppress_estimates(_effects(), threshold=3)["suppressed"].any()


def test_check_publishable_refuses_person_ids():
    with pytest.raises(ValueError, match="identifying column"):
        check_publishable(pd.DataFrame({"person_id": ["a"], "x": [1]}), "t")
    with pytest.raises(ValueError, match="never published"):
        write_outputs(
            ReportContent(tables={"effects": pd.DataFrame({"LopNr": ["a"]})}), __import__("pathlib").Path(".")
        )


def test_write_outputs_sv_and_en(tmp_path):
    for lang in ("sv", "en"):
        d = tmp_path / lang
        d.mkdir()
        files = write_outputs(_content(), d, lang=lang, threshold=5)
        names = {p.relative_to(d).as_posix() for p in files}
        assert {
            "effects.csv",
            "balance.csv",
            "linkage_report.csv",
            "event_study.csv",
            "results.xlsx",
            "report.html",
            "figures/love_plot.png",
            "figures/love_plot.svg",
            "figures/effects.png",
            "figures/event_study__public_support.svg",
        } <= names
        eff = pd.read_csv(d / "effects.csv")
        assert list(eff.columns[:12]) == list(_effects().columns)
        assert eff["suppressed"].tolist() == [False, False, False, True, True]
        assert eff.loc[3, ["estimate", "n_treated"]].isna().all()
        lr = pd.read_csv(d / "linkage_report.csv")
        assert lr["n"].isna().tolist() == [False, True, False]  # 3 anonymous suppressed, 0 kept
        page = (d / "report.html").read_text(encoding="utf-8")
        assert "<script" not in page and "http://" not in page and "https://" not in page
        assert page.count("data:image/png;base64,") == 3
        assert re.search(r"<img[^>]+src=\"(?!data:)", page) is None
        assert ('lang="sv"' in page) == (lang == "sv")
        assert ("Effekter efter 3, 6 och 12 månader" in page) == (lang == "sv")
        assert ("Effects at 3, 6 and 12 months" in page) == (lang == "en")
        assert "no cost parameters" in page
        wb = load_workbook(d / "results.xlsx")
        sheet = "Effekter" if lang == "sv" else "Effects"
        assert wb[sheet]["F1"].value == ("Skattning" if lang == "sv" else "Estimate")
        assert wb[sheet]["F5"].value is None  # suppressed estimate left empty


def test_csv_and_figures_are_byte_identical_on_rerun(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    fa = write_outputs(_content(), a)
    write_outputs(_content(), b)
    for p in fa:
        rel = p.relative_to(a)
        if p.suffix in (".csv", ".svg", ".png", ".html"):
            assert p.read_bytes() == (b / rel).read_bytes(), rel


def test_atomic_output_dir(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(RuntimeError), atomic_output_dir(out) as tmp:
        (tmp / "x.csv").write_text("1")
        raise RuntimeError("stage failed")
    assert not out.exists() and list(tmp_path.iterdir()) == []
    with atomic_output_dir(out) as tmp:
        (tmp / "x.csv").write_text("1")
        (tmp / "manifest.json").write_text('{"config_sha256": "x", "outputs": []}')  # what a run writes
    assert (out / "x.csv").read_text() == "1"
    with pytest.raises(ConfigError, match="output directory exists; use --force"), atomic_output_dir(out):
        pass
    with atomic_output_dir(out, force=True) as tmp:
        (tmp / "y.csv").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == ["y.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no lock, temporary or old folder left


def test_manifest(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("a,b\n1,2\n")
    m = write_manifest(
        tmp_path,
        config={"seed": 3},
        config_hash="h",
        inputs={"earnings": src},
        seed=3,
        timings={"read": 0.1234},
        rows={"read": 2},
    )
    data = json.loads(m.read_text())
    assert data["inputs"]["earnings"]["sha256"] == sha256_path(src)
    assert data["inputs"]["earnings"]["sha256"] == __import__("hashlib").sha256(b"a,b\n1,2\n").hexdigest()
    assert data["seed"] == 3 and data["rows"] == {"read": 2} and data["timings_seconds"] == {"read": 0.123}
    assert "pandas" in data["versions"]


def test_facts_counts_suppressed_and_labelled(tmp_path):
    from finsam_effekt.report import fact_label, publishable_facts

    facts = {
        "participants": 3,
        "matched_controls": 40,
        "max_abs_smd_after": 0.04,
        "pretrend:public_support": "p",
    }
    pub = publishable_facts(facts, threshold=5)
    assert pub == {
        "participants": None,
        "matched_controls": 40,
        "max_abs_smd_after": 0.04,
        "pretrend:public_support": "p",
    }
    assert fact_label("pretrend:public_support", "en").endswith(": Share on public support")
    c = _content()
    c.facts = facts
    write_outputs(c, tmp_path, lang="en")
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    # a suppressed count gets the suppressed mark (distinct from "–", no value)
    assert "<td class='t'>Participants in the analysis (after attrition)</td><td>×</td>" in page
    assert "<td class='t'>Matched comparison persons</td><td>40</td>" in page


def test_means_over_few_persons_are_suppressed():
    from finsam_effekt.report import apply_disclosure_control

    paths = pd.DataFrame(
        {
            "outcome": "public_support",
            "rel_month": [1, 1],
            "arm": ["treated", "control"],
            "mean": [0.5, 0.25],
            "ci_lower": [0.1, 0.0],
            "ci_upper": [0.9, 0.6],
            "n": [3, 8],
        }
    )
    out = apply_disclosure_control({"outcome_paths": paths}, threshold=5)["outcome_paths"]
    assert out["suppressed"].tolist() == [True, False]
    assert out.loc[0, ["mean", "ci_lower", "ci_upper", "n"]].isna().all()
    assert out.loc[1, "mean"] == 0.25 and out.loc[1, "n"] == 8


def test_figure_caption_marks_suppressed_values(tmp_path):
    write_outputs(_content(), tmp_path, lang="en", threshold=5)  # two subgroup effects are suppressed
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    captions = re.findall(r"<figcaption>([^<]*)</figcaption>", page)
    marked = [
        c for c in captions if "Values resting on fewer than 5 persons are suppressed and not shown." in c
    ]
    assert len(captions) == 3 and len(marked) == 1 and marked[0].startswith("Estimated effect")


def test_long_tables_are_cut_with_a_note_in_the_report_language():
    from finsam_effekt.report import html_table

    df = pd.DataFrame({"n": range(5)})
    assert "3 more rows are in the CSV file" in html_table(df, "en", max_rows=2)
    assert "ytterligare 3 rader finns i CSV-filen" in html_table(df, "sv", max_rows=2)
    assert html_table(df, "en", max_rows=2).count("<tr>") == 3  # header + 2 rows


def _consistency_and_methods() -> dict[str, pd.DataFrame]:
    """The two extra run tables, in the formats of ``linkage.support_consistency`` and ``compare_methods``."""
    sc = pd.DataFrame(
        {
            "source": ["sickness_benefit", "social_assistance", "any_public"],
            "n_participants": [200, 200, 200],
            "sus_yes": [40, 28, 150],
            "register_yes": [44, 30, 160],
            "disagree": [10, 4, 20],  # below the threshold: the report blanks it and the share made from it
            "share_disagree": [0.05, 0.02, 0.1],
            "suppressed": [False, False, False],
        }
    )
    cmp = pd.DataFrame(
        {
            "perspective": ["public_finance", "socio_economic"],
            "financier": ["public_sector_total", "society"],
            "net_point_counterfactual": [-41000.0, -12000.0],
            "ci_lower_counterfactual": [-60000.0, -30000.0],
            "ci_upper_counterfactual": [-20000.0, 5000.0],
            "net_point_before_after": [95000.0, 120000.0],
            "ci_lower_before_after": [np.nan, 90000.0],
            "ci_upper_before_after": [np.nan, 150000.0],
            "difference": [136000.0, 132000.0],
            "n_treated": 120,
            "n_control": 240,
        }
    )
    return {"support_consistency": sc, "cost_benefit_methods": cmp}


def test_support_consistency_and_methods_tables_in_report_sv_and_en(tmp_path):
    from finsam_effekt.report import COLUMN_LABELS, TABLE_GUIDES, TABLE_TITLES

    c = _content()
    c.tables.update(_consistency_and_methods())
    c.not_run = {}
    expect = {
        "sv": ("Data och bortfall", "Jämförbarhet (balans)", "Kostnad och nytta per finansiär"),
        "en": ("Data and attrition", "Comparability (balance)", "Cost and benefit per financier"),
    }
    for li, lang in enumerate(("sv", "en")):
        d = tmp_path / lang
        d.mkdir()
        write_outputs(c, d, lang=lang, threshold=5)
        page = (d / "report.html").read_text(encoding="utf-8")
        data_h, balance_h, cb_h = (page.index(f"<h2>{h}</h2>") for h in expect[lang])
        for name, section in (
            ("support_consistency", (data_h, balance_h)),
            ("cost_benefit_methods", (cb_h, None)),
        ):
            title = page.index(f"<h3>{TABLE_TITLES[name][li]}</h3>")
            assert section[0] < title and (section[1] is None or title < section[1]), name
            tail = page[title:]
            assert tail.index(TABLE_GUIDES[name][li].split(";")[0]) < tail.index("<table>")
            head = tail[: tail.index("</thead>")]
            for col in _consistency_and_methods()[name].columns:
                if name == "cost_benefit_methods" and col in ("n_treated", "n_control"):
                    # the persons behind the cost-benefit (the same in every row) are in its files only
                    assert f"<th>{COLUMN_LABELS[col][li]}</th>" not in head, (lang, col)
                    continue
                assert f"<th>{COLUMN_LABELS[col][li]}</th>" in head, (lang, col)
            other = COLUMN_LABELS["difference"][1 - li]
            assert other not in page  # only the report's language
        sc_rows = page[page.index(f"<h3>{TABLE_TITLES['support_consistency'][li]}</h3>") :]
        sc_rows = sc_rows[: sc_rows.index("</table>")]
        label = ("Ekonomiskt bistånd", "Social assistance")[li]
        # the small count and the share computed with it are disclosure-marked (×, distinct from "–": no value),
        # the others shown; the share as a percentage in the report's language
        assert (
            f"<td class='t'>{label}</td><td>200</td><td>28</td><td>30</td><td>×</td><td>×</td><td>✓</td>"
            in sc_rows
        )
        assert ("<td>5,0\u00a0%</td>", "<td>5.0%</td>")[li] in sc_rows and "sickness_benefit" not in sc_rows
        sc = pd.read_csv(d / "support_consistency.csv")
        assert sc["disagree"].isna().tolist() == [False, True, False]
        assert sc["share_disagree"].isna().tolist() == [False, True, False]
        assert sc["suppressed"].tolist() == [False, True, False]
        m_rows = page[page.index(f"<h3>{TABLE_TITLES['cost_benefit_methods'][li]}</h3>") :]
        m_rows = m_rows[: m_rows.index("</table>")]
        # kronor whole with a narrow no-break space between thousands and a true minus sign; a missing interval
        # of a row that is not suppressed is "not applicable"
        assert (
            "<td>\u221241\u202f000</td>" in m_rows
            and "<td>136\u202f000</td>" in m_rows
            and "<td>–</td>" in m_rows
        )
        wb = load_workbook(d / "results.xlsx")
        assert wb[TABLE_TITLES["cost_benefit_methods"][li]]["I1"].value == COLUMN_LABELS["difference"][li]
        assert wb[TABLE_TITLES["support_consistency"][li]]["A1"].value == COLUMN_LABELS["source"][li]


def test_extra_tables_absent_leave_no_heading(tmp_path):
    from finsam_effekt.report import TABLE_TITLES

    write_outputs(_content(), tmp_path, lang="en", threshold=5)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert TABLE_TITLES["support_consistency"][1] not in page
    assert TABLE_TITLES["cost_benefit_methods"][1] not in page


def test_report_tables_show_main_outcomes_and_status_subgroups_the_files_everything(tmp_path):
    """report.html lists the main outcomes (and status-only subgroups); effects.csv keeps every row."""
    eff = _effects()
    extra = eff.iloc[:3].assign(outcome="days_sickness", estimate=[1.25, 2.5, 3.75])
    cum = eff.iloc[3:4].assign(measure="cumulative", subgroup="sex=K", estimate=-0.625, n_treated=50)
    content = _content()
    content.tables["effects"] = pd.concat([eff, extra, cum], ignore_index=True)
    for lang in ("sv", "en"):
        d = tmp_path / lang
        d.mkdir()
        write_outputs(content, d, lang=lang, threshold=5)
        assert len(pd.read_csv(d / "effects.csv")) == len(eff) + 4
        page = (d / "report.html").read_text(encoding="utf-8")
        assert "3.75" not in page and "-0.625" not in page and "−0.625" not in page
        assert ("alla utfall och båda måtten finns i effects.csv" in page) == (lang == "sv")
        assert ("every outcome and both measures are in effects.csv" in page) == (lang == "en")


def test_texts_from_a_config_or_a_data_file_are_escaped(tmp_path):
    """Every text reaches report.html through the autoescaping templates: a title, question, estimand, förbund
    name, attrition label, key figure, stage note or main estimator with markup is shown, never run."""
    evil = "<script>alert('x')</script>"
    shown = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
    c = _content()
    c.title = f"Titel {evil}"
    c.question = f"Fråga {evil}?"
    c.estimand = f"ATT & {evil}"
    c.tables["linkage_report"] = c.tables["linkage_report"].assign(step_label=evil)
    c.tables["support_consistency"] = _consistency_and_methods()["support_consistency"].assign(source=evil)
    c.facts = {"register_months": evil}
    c.not_run = {evil: evil}
    c.main_estimator = evil
    c.config_hash = evil
    for lang in ("sv", "en"):
        d = tmp_path / lang
        d.mkdir()
        write_outputs(c, d, lang=lang, threshold=5)
        page = (d / "report.html").read_text(encoding="utf-8")
        assert "<script" not in page and "alert('x')" not in page
        assert f"<title>Titel {shown}</title>" in page
        assert f"<h1>Titel {shown}</h1>" in page
        assert page.count(shown) >= 10  # title ×2, question, estimand, steps ×3, source ×3, ...
        assert "ATT &amp; " in page


def test_captions_state_the_level_of_inference_alpha(tmp_path):
    """The intervals are the tables' (level 1 − alpha); the captions name that level, not a fixed 95 %."""
    c = _content()
    c.alpha = 0.1
    write_outputs(c, tmp_path, lang="en", threshold=5)
    captions = re.findall(r"<figcaption>([^<]*)</figcaption>", (tmp_path / "report.html").read_text("utf-8"))
    assert any("with 90 % confidence interval per horizon" in cap for cap in captions)
    assert any("with 90 % confidence intervals;" in cap for cap in captions)
    assert not any("95" in cap for cap in captions)
    c.alpha = 0.025
    sv = tmp_path / "sv"
    sv.mkdir()
    write_outputs(c, sv, lang="sv", threshold=5)
    assert "med 97,5 % konfidensintervall per horisont" in (sv / "report.html").read_text("utf-8")


def test_templates_are_package_data():
    """A non-editable install finds every template: pyproject's package-data patterns cover each file."""
    import tomllib
    from fnmatch import fnmatch
    from pathlib import Path

    from finsam_effekt.report.html import environment

    root = Path(__file__).parents[1]
    data = tomllib.loads((root / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]["package-data"]
    patterns = data["finsam_effekt.report"]
    pkg = root / "finsam_effekt" / "report"
    files = sorted(p.relative_to(pkg).as_posix() for p in (pkg / "templates").rglob("*") if p.is_file())
    assert "templates/report.html" in files and "templates/base.html" in files
    for f in files:
        assert any(fnmatch(f, pat) and f.count("/") == pat.count("/") for pat in patterns), f
        if f.endswith(".html"):
            environment().get_template(f.removeprefix("templates/"))  # parses
    assert "jinja2" in " ".join(
        tomllib.loads((root / "pyproject.toml").read_text("utf-8"))["project"]["dependencies"]
    )


# -- the first screen ----------------------------------------------------------------------------------------------
MINUS, NNBSP, NBSP = "\u2212", "\u202f", "\u00a0"


def _headline_effects() -> pd.DataFrame:
    """Status effects of two share outcomes and one SEK outcome at 3, 6, 12 months (main estimator att)."""
    rows = []
    spec = {
        "public_support": [(-0.013, -0.031, 0.005), (-0.056, -0.078, -0.035), (-0.118, -0.143, -0.092)],
        "self_support": [(0.013, -0.003, 0.030), (0.054, 0.033, 0.074), (0.110, 0.086, 0.135)],
        "benefit_sek": [(-128.0, -501.0, 244.0), (-618.0, -989.0, -248.0), (-1365.0, -1730.0, -1000.0)],
    }
    for o, vals in spec.items():
        for k, (e, lo, hi) in zip((3, 6, 12), vals, strict=True):
            rows.append((o, k, "status", "all", "att", e, 0.01, lo, hi, 0.0004, 2521, 2518))
    return pd.DataFrame(rows, columns=_effects().columns)


def test_headline_table_and_readings_in_units_and_words(tmp_path):
    c = _content()
    c.tables["effects"] = pd.concat([_headline_effects(), _effects().iloc[3:]], ignore_index=True)
    for lang in ("sv", "en"):
        d = tmp_path / lang
        d.mkdir()
        write_outputs(c, d, lang=lang, threshold=5)
        page = (d / "report.html").read_text(encoding="utf-8")
        first = page[: page.index("<nav class='toc'>")]
        table = first[first.index("id='headline'") : first.index("</table>", first.index("id='headline'"))]
        head = re.findall(r"<th>([^<]*)</th>", table)
        assert head == (
            ["Utfall", "Enhet", "3 månader", "6 månader", "12 månader"]
            if lang == "sv"
            else ["Outcome", "Unit", "3 months", "6 months", "12 months"]
        )
        # −0.118 as percentage points with its interval beneath; kronor whole; the persons in the last row
        if lang == "sv":
            assert f"<td>{MINUS}11,8<span class='ci'>({MINUS}14,3 till {MINUS}9,2)</span></td>" in table
            assert (
                f"<td>{MINUS}1{NNBSP}365<span class='ci'>({MINUS}1{NNBSP}730 till {MINUS}1{NNBSP}000)</span></td>"
                in table
            )
            assert f"<td>2{NNBSP}521 / 2{NNBSP}518</td>" in table
            assert (
                f"12 månader efter start var andelen med offentlig försörjning 11,8 procentenheter lägre "
                f"(95{NBSP}% KI 9,2–14,3) än i den matchade jämförelsegruppen." in first
            )
            assert "12 månader efter start var den offentliga försörjningen i kronor per månad 1" in first
        else:
            assert f"<td>{MINUS}11.8<span class='ci'>({MINUS}14.3 to {MINUS}9.2)</span></td>" in table
            assert (
                "12 months after the start, the share self-supporting was 11.0 percentage points higher "
                "(95% CI 8.6–13.5) than in the matched comparison group." in first
            )
        assert (
            "Andel med offentlig försörjning" in table if lang == "sv" else "Share on public support" in table
        )


def test_a_reading_says_when_the_interval_crosses_zero(tmp_path):
    eff = _headline_effects()
    eff = eff[eff["horizon_months"] == 3]  # every interval at 3 months crosses zero
    c = _content()
    c.tables["effects"] = eff
    write_outputs(c, tmp_path, lang="sv", threshold=5)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert (
        "3 månader efter start var andelen med offentlig försörjning 1,3 procentenheter lägre än i den matchade "
        f"jämförelsegruppen, men skillnaden är inte statistiskt säkerställd (95{NBSP}% KI {MINUS}3,1 till 0,5)."
        in page
    )


def test_design_warnings_beside_the_headline_and_escaped(tmp_path):
    from finsam_effekt.diagnostics import DesignWarning

    c = _content()
    c.tables["effects"] = _headline_effects()
    c.warnings = (
        DesignWarning(
            "pretrend_rejected", "Förtrenden <förkastas> (p = 0,003).", "The pre-trend <is> rejected."
        ),
    )
    c.facts = {
        "max_abs_smd_after": 0.14,
        "pretrend:public_support": {"statistic": 45.2, "df": 23, "p_value": 0.003},
    }
    for lang, shown, check in (
        ("sv", "Förtrenden &lt;förkastas&gt; (p = 0,003).", "grupperna skiljer sig redan före start"),
        ("en", "The pre-trend &lt;is&gt; rejected.", "the groups differ already before the start"),
    ):
        d = tmp_path / lang
        d.mkdir()
        write_outputs(c, d, lang=lang, threshold=5)
        page = (d / "report.html").read_text(encoding="utf-8")
        at = page.index(shown)
        assert (
            page.index("id='headline'")
            < at
            < page.index("<ul class='readings'>")
            < page.index("<nav class='toc'>")
        )
        assert "class='warn-box'" in page[at - 200 : at]
        design = page[
            page.index("<ul class='checks'>") : page.index("</ul>", page.index("<ul class='checks'>"))
        ]
        assert check in design and design.count("class='warn'") == 2  # the SMD above 0.1 and the pre-trend


def test_suppressed_and_not_applicable_cells_have_distinct_marks_and_a_legend(tmp_path):
    c = _content()
    eff = _effects().copy()
    eff.loc[0, "p_value"] = np.nan  # no p-value, not suppressed: "–"
    c.tables["effects"] = eff
    write_outputs(c, tmp_path, lang="sv", threshold=5)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    sub = page[
        page.index("<section id='subgroups'>") : page.index(
            "</section>", page.index("<section id='subgroups'>")
        )
    ]
    assert "<td>×</td>" in sub and "× = undertryckt: bygger på färre än 5 personer" in sub
    assert "– = ej tillämpligt eller inget värde." in sub
    main = page[page.index("<section id='effects'>") :]
    main = main[: main.index("</details>")]
    assert "<td>–</td>" in main and "<td>×</td>" not in main
    # every table that can suppress (its data has a suppressed column) has the legend right after it
    tables = page.count("</table></div>\n<p class='legend'>")
    assert tables >= 3  # the effects, the subgroups and the attrition steps


def test_cost_benefit_at_a_glance_and_per_financier(tmp_path):
    from finsam_effekt.report.figures import waterfall_parts

    cb = pd.DataFrame(
        [
            ("public_finance", "FK", "cost", -500.0),
            ("public_finance", "FK", "savings_sickness", 300.0),
            ("public_finance", "FK", "net", -200.0),
            ("public_finance", "AF", "cost", -100.0),
            ("public_finance", "AF", "savings_labour_market", 50.0),
            ("public_finance", "AF", "net", -50.0),
            ("public_finance", "state", "cost", -600.0),
            ("public_finance", "state", "benefit_savings", 420.0),  # 300 + 50 + 70 a-kassa paid by the state
            ("public_finance", "state", "payroll_fees", 100.0),
            ("public_finance", "state", "net", -80.0),
            ("public_finance", "region", "cost", -300.0),
            ("public_finance", "region", "regional_income_tax", 40.0),
            ("public_finance", "region", "net", -260.0),
        ],
        columns=["perspective", "financier", "item", "pv_sek_per_participant"],
    )
    parts = dict(waterfall_parts(cb, "state"))
    assert parts == {
        "cost|FK": -500.0,
        "cost|AF": -100.0,
        "savings_sickness|FK": 300.0,
        "savings_labour_market|AF": 50.0,
        "state_other_benefit_savings": 70.0,
        "payroll_fees": 100.0,
    }
    assert sum(parts.values()) == pytest.approx(-80.0)  # the bars add up to the state's net
    summary = pd.DataFrame(
        {
            "perspective": "public_finance",
            "financier": ["state", "region"],
            "pv_cost": [600.0, 300.0],
            "pv_gains": [520.0, 40.0],
            "pv_net": [-80.0, -260.0],
            "ci_lower": [-1500.0, -400.0],
            "ci_upper": [1200.0, -100.0],
            "p_net_positive": [0.33, 0.0],
            "interval_level": 0.9,
            "benefit_cost_ratio": [0.8667, 0.1333],
            "break_even_years": [3.25, float("inf")],
            "break_even_effect_scale": [1.2, 7.5],
            "n_treated": 120,
            "n_control": 240,
        }
    )
    c = _content()
    c.tables.update(
        {
            "cost_benefit": cb.assign(ci_lower=np.nan, ci_upper=np.nan, n_treated=120, n_control=240),
            "cost_benefit_summary": summary,
        }
    )
    c.facts = {"cost_horizon_years": 5.0, "cost_discount_rate": 0.035, "cost_persistence": "constant",
               "cost_interval": 0.9, "cost_price_year": 2024, "cost_effects_months": 12}  # fmt: skip
    write_outputs(c, tmp_path, lang="sv", threshold=5)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    first = page[: page.index("<nav class='toc'>")]
    glance = first[first.index("Lönar det sig?") :]
    assert f"<th>90{NBSP}% intervall (kr)</th>" in glance and "<th>P(netto &gt; 0)</th>" in glance
    assert (
        f"<td class='t'>Staten</td><td>{MINUS}80</td><td>{MINUS}1{NNBSP}500 till 1{NNBSP}200</td><td>33{NBSP}%</td>"
        in glance
    )
    assert (
        f"över 5 år med 3,5{NBSP}% real diskonteringsränta; efter månad 12 antas effekten bestå oförändrad"
        in glance
    )
    section = page[page.index("<section id='cost-benefit'>") :]
    assert "<td>3,2 år</td>" in section and "<td>inte inom 5 år</td>" in section  # break-even, never reached
    assert section.count("<figure>") == 2  # one waterfall per financier present (state, region)
    assert "Staten: Staplarna visar" in section and "Regionen: Staplarna visar" in section


def test_workbook_keeps_numbers_with_formats_labels_widths_and_a_filter(tmp_path):
    c = _content()
    c.tables["effects"] = pd.concat([_headline_effects(), _effects().iloc[3:]], ignore_index=True)
    write_outputs(c, tmp_path, lang="sv", threshold=5)
    wb = load_workbook(tmp_path / "results.xlsx")
    ws = wb["Effekter"]
    head = [x.value for x in ws[1]]
    assert head[:13] == [
        "Utfall", "Horisont (månader)", "Mått", "Delgrupp", "Skattare", "Skattning", "Medelfel", "KI nedre",
        "KI övre", "p-värde", "Antal deltagare", "Antal jämförelsepersoner", "Undertryckt",
    ]  # fmt: skip
    assert "Utfall (benämning)" in head and "Delgrupp (benämning)" in head
    row = {h: ws.cell(row=2, column=i + 1) for i, h in enumerate(head)}
    assert (
        row["Utfall"].value == "public_support"
        and row["Utfall (benämning)"].value == "Andel med offentlig försörjning"
    )
    assert isinstance(row["Skattning"].value, float) and row["Skattning"].value == pytest.approx(-0.013)
    assert row["Skattning"].number_format.startswith("0.0%") and MINUS in row["Skattning"].number_format
    assert "< 0,001".replace(" ", NBSP) in row["p-värde"].number_format
    assert row["Antal deltagare"].number_format == "#,##0"
    sek = {h: ws.cell(row=8, column=i + 1) for i, h in enumerate(head)}  # benefit_sek at 3 months
    assert sek["Utfall"].value == "benefit_sek" and sek["Skattning"].number_format.startswith("#,##0")
    assert ws.auto_filter.ref == ws.dimensions and ws.freeze_panes == "A2"
    assert ws.column_dimensions["A"].width >= len("public_support") and ws.column_dimensions["N"].width > 8
    assert wb["Effekter"]["F1"].value == "Skattning"
