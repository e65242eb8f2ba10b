"""The analysis config model: strict keys and types, messages naming file and key path, path resolution."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from finsam_effekt.config import AnalysisConfig, load_config, parse_config
from finsam_effekt.errors import ConfigError
from finsam_effekt.schema import DEFAULT_DISCLOSURE_THRESHOLD, OUTCOMES

BASE = {
    "inputs": {"tables": {"population": {"path": "data/population.parquet"}}},
    "window": {"start": "2018-01", "end": "2019-12"},
}


def _write(tmp_path: Path, data: dict, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_defaults_and_relative_paths_resolve_against_config_file(tmp_path):
    cfg = load_config(_write(tmp_path, BASE))
    assert cfg.input_spec.tables["population"].path == (tmp_path / "data" / "population.parquet").resolve()
    assert cfg.disclosure_threshold == DEFAULT_DISCLOSURE_THRESHOLD
    assert cfg.language == "sv"
    assert cfg.outcomes.horizons == [3, 6, 12]
    assert list(cfg.outcomes.names) == list(OUTCOMES)
    assert cfg.matching.exact == ["ref_month"]  # the calendar month is always an exact stratum
    assert cfg.matching.caliper == 0.2 and cfg.matching.std_caliper


def test_inputs_as_path_to_input_spec(tmp_path):
    (tmp_path / "in").mkdir()
    _write(tmp_path / "in", {"base_dir": ".", "tables": {"earnings": {"path": "e.csv"}}}, "mapping.yaml")
    cfg = load_config(_write(tmp_path, {**BASE, "inputs": "in/mapping.yaml"}))
    assert cfg.input_spec.tables["earnings"].path == (tmp_path / "in" / "e.csv").resolve()


def test_language_override_and_month_stratum_kept_once(tmp_path):
    data = {**BASE, "matching": {"exact": ["kommun", "ref_month"]}}
    cfg = load_config(_write(tmp_path, data), language="en")
    assert cfg.language == "en"
    assert cfg.matching.exact == ["kommun", "ref_month"]


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"foo": 1}, "config.yaml: foo: unknown key"),
        ({"matching": {"ratoi": 2}}, "config.yaml: matching.ratoi: unknown key"),
        ({"matching": {"ratio": "2"}}, "config.yaml: matching.ratio: Input should be a valid integer"),
        ({"matching": {"replace": "yes"}}, "config.yaml: matching.replace: Input should be a valid boolean"),
        (
            {"matching": {"ratio": 0}},
            "config.yaml: matching.ratio: Input should be greater than or equal to 1",
        ),
        ({"window": {"start": "2018-13", "end": "2019-12"}}, "window.start: expected a month as YYYY-MM"),
        (
            {"window": {"start": "2019-01", "end": "2018-12"}},
            "window.end 2018-12 is before window.start 2019-01",
        ),
        ({"outcomes": {"names": ["foo"]}}, "outcomes.names: unknown outcome(s) ['foo']"),
        ({"outcomes": {"horizons": [0]}}, "outcomes.horizons: horizons must be"),
        ({"language": "de"}, "config.yaml: language: Input should be 'sv' or 'en'"),
        ({"disclosure_threshold": 2.5}, "disclosure_threshold: Input should be a valid integer"),
        ({"inputs": {"tables": {"popx": {"path": "a"}}}}, "config.yaml: inputs: unknown table(s) ['popx']"),
        (
            {"inputs": {"tables": {"population": {"path": "a", "colums": {}}}}},
            "config.yaml: inputs.tables.population.colums: unknown key",
        ),
        ({"inputs": "missing.yaml"}, "config.yaml: inputs: input spec file not found"),
        ({"cost_benefit": {"parameters": "nope.yaml"}}, "cost_benefit.parameters: file not found"),
        ({"estimators": ["magic"]}, "config.yaml: estimators.0: Input should be"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path, patch, expected):
    path = _write(tmp_path, {**BASE, **patch})
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert expected in str(info.value)
    assert str(path) in str(info.value)


def test_missing_required_key_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="window: Field required"):
        load_config(_write(tmp_path, {"inputs": BASE["inputs"]}))
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "none.yaml")


def test_config_hash_is_stable_and_sensitive():
    a = parse_config(BASE, Path("/r"))
    b = parse_config(dict(BASE), Path("/r"))
    c = parse_config({**BASE, "seed": 1}, Path("/r"))
    assert a.config_hash() == b.config_hash() != c.config_hash()
    assert len(a.config_hash()) == 64


def test_every_field_is_documented():
    def walk(model: type) -> list[str]:
        missing = []
        for name, field in model.model_fields.items():
            if not field.description:
                missing.append(f"{model.__name__}.{name}")
            ann = field.annotation
            if (
                isinstance(ann, type)
                and issubclass(ann, AnalysisConfig.__mro__[1])
                and ann.__module__.endswith("config")
            ):
                missing += walk(ann)
        return missing

    # InputSpec/InputTable (shared, owned by io) are checked by their own tests
    missing = [m for m in walk(AnalysisConfig) if not m.startswith(("InputSpec", "InputTable"))]
    assert missing == []


def test_template_and_shipped_configs_are_valid():
    root = Path(__file__).resolve().parent.parent
    template = yaml.safe_load((root / "configs" / "analysis_template.yaml").read_text(encoding="utf-8"))
    template["inputs"] = BASE["inputs"]  # the template points at the io engineer's agency spec
    cfg = parse_config(template, root / "configs", "analysis_template.yaml")
    assert cfg.cost_benefit.parameters == (root / "configs" / "cost_benefit_parameters.yaml").resolve()
    # the template shows every default: it equals the defaults apart from inputs, title and question
    defaults = parse_config({"inputs": BASE["inputs"], "window": template["window"]}, root / "configs")
    diff = {k for k, v in cfg.to_dict().items() if defaults.to_dict()[k] != v}
    assert diff == {"title", "question", "cost_benefit"}


def test_yaml_key_given_twice_is_an_error_naming_both_lines(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("disclosure_threshold: 5\nseed: 1\ndisclosure_threshold: 3\n", encoding="utf-8")
    with pytest.raises(
        ConfigError, match=r"c.yaml: key 'disclosure_threshold' is given twice \(lines 1 and 3\)"
    ):
        load_config(p)


def test_config_not_utf8_names_the_byte_line_and_fix(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_bytes("seed: 1\ntitle: Göteborg\n".encode("latin-1"))
    with pytest.raises(
        ConfigError,
        match=r"c.yaml: not UTF-8 text: byte 0xF6 on line 2 \(it looks like Latin-1.*save the file as UTF-8",
    ):
        load_config(p)
    p.write_bytes(
        "\ufeffseed: 1\n".encode()
    )  # a byte-order mark is fine: the error is about the missing keys
    with pytest.raises(ConfigError, match="inputs: Field required"):
        load_config(p)
    p.write_text("  \n", encoding="utf-8")
    with pytest.raises(ConfigError, match="c.yaml: the file is empty"):
        load_config(p)
