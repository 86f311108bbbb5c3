"""Config validation: a bad key or value stops at once, naming the key and what is allowed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from icrdesign.config import DEFAULT_CONFIG_PATH, ConfigError, load_config, load_schema, validate_config
from workflow_runner import REPO as REPO_ROOT

SNAKEMAKE = Path(sys.executable).with_name("snakemake")

# (override, key named in the message, what the message must say is allowed)
BAD_CONFIGS = [
    pytest.param({"data": {"demo": {"n_structure": 100}}}, "data.demo.n_structure", "'n_structures'",
                 id="unknown-key"),
    pytest.param({"colour": "blue"}, "colour", "'data'", id="unknown-top-level-key"),
    pytest.param({"data": {"demo": {"n_structures": "many"}}}, "data.demo.n_structures", "type integer",
                 id="wrong-type"),
    pytest.param({"seed": 1.5}, "seed", "type integer", id="wrong-type-seed"),
    pytest.param({"data": {"demo": {"n_structures": 5}}}, "data.demo.n_structures", "minimum 10", id="too-small"),
    pytest.param({"model": {"learning_rate": 2.0}}, "model.learning_rate", "maximum 1", id="too-large"),
    pytest.param({"data": {"source": "icsd"}}, "data.source", "['demo', 'materials_project', 'file']", id="bad-enum"),
    pytest.param({"data": {"demo": {"volume_predictor": "guess"}}}, "data.demo.volume_predictor",
                 "['dls', 'chgnet']", id="bad-enum-volume"),
    pytest.param({"split": [0.5, 0.5]}, "split", "minItems 3", id="short-list"),
]


@pytest.mark.parametrize(("override", "key", "allowed"), BAD_CONFIGS)
def test_bad_config_names_key_and_allowed_values(override: dict, key: str, allowed: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(overrides=override)
    message = str(info.value)
    assert f"config key '{key}'" in message
    assert allowed in message


def test_default_config_is_valid_and_filled() -> None:
    config = load_config()
    assert config["data"]["source"] == "demo"
    assert config["data"]["demo"] == {"n_structures": 5000, "max_sites": 20, "volume_predictor": "dls", "n_jobs": 2}


def test_defaults_fill_missing_demo_keys() -> None:
    config = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())
    del config["data"]["demo"]
    assert validate_config(config)["data"]["demo"]["volume_predictor"] == "dls"


# Maps whose keys are the user's to choose (design cases, rules, ICR blocks weighted other than 1, a
# data file's property columns).
FREE_FORM = {"cases", "resources", "reconstruction_weights", "properties"}


def _schema_keys(schema: dict, root: dict, prefix: str = "") -> set[str]:
    """Every key path the schema names under fixed `properties` (not inside the FREE_FORM maps)."""
    if "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    keys = set()
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        keys.add(path)
        if name not in FREE_FORM:
            keys |= _schema_keys(sub, root, path + ".")
    return keys


def _config_keys(config: dict, prefix: str = "") -> set[str]:
    keys = set()
    for name, value in config.items():
        keys.add(f"{prefix}{name}")
        if isinstance(value, dict) and name not in FREE_FORM:
            keys |= _config_keys(value, f"{prefix}{name}.")
    return keys


def test_config_yaml_is_the_one_source_of_defaults() -> None:
    """The schema states types and ranges only; every value it knows has its default in config.yaml."""
    schema = load_schema()
    assert not re.search(r"\bdefault:", DEFAULT_CONFIG_PATH.with_name("config.schema.yaml").read_text())
    defaults = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    assert _schema_keys(schema, schema) == _config_keys(defaults)
    assert (REPO_ROOT / "config.yaml").resolve() == DEFAULT_CONFIG_PATH
    assert (REPO_ROOT / "workflow/schemas/config.schema.yaml").resolve() == DEFAULT_CONFIG_PATH.with_name(
        "config.schema.yaml")


@pytest.mark.parametrize(("text", "message"), [
    ("data: [unclosed", "not valid YAML"),
    ("- a\n- b\n", "top level must be a mapping"),
])
def test_bad_config_file_names_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_semantic_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"'split'.*sum to 1"):
        load_config(overrides={"split": [0.5, 0.3, 0.3]})


NAN_TARGET_KEY = "sampling.cases.Ef_-0.5.constraints.formation_energy_per_atom.target"
NAN_TARGET_CASES = {"Ef_-0.5": {"n_candidates": 5, "constraints": {
    "formation_energy_per_atom": {"target": float("nan"), "tolerance": 0.1}}}}

# (YAML text, the key path named, the value as YAML spells it): NaN passed every bound before
NON_FINITE = [
    pytest.param("sampling:\n  cases:\n    Ef_-0.5:\n      n_candidates: 5\n      constraints:\n"
                 "        formation_energy_per_atom: {target: .nan, tolerance: 0.1}\n",
                 NAN_TARGET_KEY, ".nan", id="case-target"),
    pytest.param("sampling:\n  cases:\n    low:\n      n_candidates: 5\n      constraints:\n"
                 "        band_gap: {min: -.inf, max: 1.0}\n",
                 "sampling.cases.low.constraints.band_gap.min", "-.inf", id="constraint-min"),
    pytest.param("sampling: {min_distance: .nan}\n", "sampling.min_distance", ".nan", id="min-distance"),
    pytest.param("sampling: {sigma: [0.3, .inf]}\n", "sampling.sigma.1", ".inf", id="list-item"),
    pytest.param("split: [.nan, 0.5, 0.5]\n", "split.0", ".nan", id="split"),
    pytest.param("model: {learning_rate: .inf}\n", "model.learning_rate", ".inf", id="also-above-maximum"),
    pytest.param("dft: {gpaw: {ecut: .nan}}\n", "dft.gpaw.ecut", ".nan", id="nested-section"),
]


@pytest.mark.parametrize(("text", "key", "spelling"), NON_FINITE)
def test_non_finite_number_names_the_key(tmp_path: Path, text: str, key: str, spelling: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    lines = str(info.value).splitlines()
    assert f"  config key '{key}': {spelling} is not a finite number" in lines
    # One line per bad key: a bound the value also breaks is not reported a second time.
    assert sum(f"'{key}'" in line for line in lines) == 1


def test_unknown_key_holding_nan_is_named_unknown(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("sampling: {min_distanse: .nan}\n")
    with pytest.raises(ConfigError, match=r"config key 'sampling.min_distanse': Additional properties"):
        load_config(path)


def _contradiction(override: dict) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(overrides=override)
    return str(info.value)


MP_SOURCE = {"source": "materials_project"}
# (override, the two keys the message must name): values that each pass the schema but not together
CONTRADICTIONS = [
    pytest.param({"sampling": {"min_volume_per_atom": 30.0, "max_volume_per_atom": 20.0}},
                 ("sampling.min_volume_per_atom", "sampling.max_volume_per_atom"), id="volume-min-above-max"),
    pytest.param({"sampling": {"min_volume_per_atom": 20.0, "max_volume_per_atom": 20.0}},
                 ("sampling.min_volume_per_atom", "sampling.max_volume_per_atom"), id="volume-min-equals-max"),
    # 3.0^3 / sqrt(2) = 19.1 A^3/atom: atoms 3 A apart cannot fit in 15 A^3 each
    pytest.param({"sampling": {"min_distance": 3.0, "min_volume_per_atom": 1.0, "max_volume_per_atom": 15.0}},
                 ("sampling.min_distance", "sampling.max_volume_per_atom"), id="distance-against-volume"),
    pytest.param({"sampling": {"n_samples": 3}},
                 ("sampling.cases.Ef_-0.3.n_candidates", "sampling.n_samples"), id="candidates-above-samples"),
    pytest.param({"data": {"materials_project": {"min_elements": 3, "max_elements": 2}}},
                 ("data.materials_project.min_elements", "data.materials_project.max_elements"),
                 id="mp-min-above-max-elements"),
    pytest.param({"data": {"materials_project": {"include_elements": ["O", "Fe"], "exclude_elements": ["Fe"]}}},
                 ("data.materials_project.include_elements", "data.materials_project.exclude_elements"),
                 id="mp-included-and-excluded"),
    pytest.param({"data": {"materials_project": {"include_elements": ["O", "Fe", "Li"], "max_elements": 2}}},
                 ("data.materials_project.include_elements", "data.materials_project.max_elements"),
                 id="mp-more-included-than-max-elements"),
    pytest.param({"data": {**MP_SOURCE, "materials_project": {"min_elements": 3, "max_elements": 4}},
                  "representation": {"max_elements": 2}},
                 ("data.materials_project.min_elements", "representation.max_elements"),
                 id="mp-min-elements-above-representation"),
    pytest.param({"data": {**MP_SOURCE, "materials_project": {"include_elements": ["O"]}},
                  "representation": {"elements": ["Na", "Cl"]}},
                 ("data.materials_project.include_elements", "representation.elements"),
                 id="mp-included-not-encodable"),
]


@pytest.mark.parametrize(("override", "keys"), CONTRADICTIONS)
def test_contradicting_keys_are_both_named(override: dict, keys: tuple[str, str]) -> None:
    message = _contradiction(override)
    first, second = keys
    assert re.search(rf"config keys '{re.escape(first)}' \(.+\) and '{re.escape(second)}' \(.+\) contradict: ",
                     message), message


def test_materials_project_settings_do_not_bind_the_demo_source() -> None:
    """The query's settings against the representation matter only when the query runs."""
    override = {"data": {"materials_project": {"min_elements": 3, "max_elements": 4}},
                "representation": {"max_elements": 2}}
    assert load_config(overrides=override)["representation"]["max_elements"] == 2
    with pytest.raises(ConfigError, match="representation.max_elements"):
        load_config(overrides={**override, "data": {**override["data"], **MP_SOURCE}})


def test_every_problem_is_listed_at_once() -> None:
    message = _contradiction({"split": [0.5, 0.3, 0.3],
                              "sampling": {"min_volume_per_atom": 30.0, "max_volume_per_atom": 20.0}})
    assert message.startswith("invalid configuration:\n")
    assert "'split': fractions must sum to 1" in message
    assert "'sampling.min_volume_per_atom' (30.0) and 'sampling.max_volume_per_atom' (20.0)" in message


def test_densest_packing_bound_is_admitted() -> None:
    """d^3/sqrt(2) is reachable (fcc): a maximum just above it is not a contradiction."""
    sampling = {"min_distance": 3.0, "min_volume_per_atom": 1.0, "max_volume_per_atom": 19.1}
    assert load_config(overrides={"sampling": sampling})["sampling"]["max_volume_per_atom"] == 19.1


def _dry_run(tmp_path: Path, config: dict) -> subprocess.CompletedProcess[str]:
    configfile = tmp_path / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    return subprocess.run(
        [str(SNAKEMAKE), "-s", str(REPO_ROOT / "Snakefile"), "--directory", str(tmp_path), "--configfile",
         str(configfile), "--cores", "1", "-n", "results/data/dataset.parquet"],
        capture_output=True, text=True, timeout=300,
    )


@pytest.mark.parametrize(
    ("config", "key"),
    [
        pytest.param({"data": {"demo": {"n_structurs": 100}}}, "data.demo.n_structurs", id="unknown-key"),
        pytest.param({"data": {"source": "icsd"}}, "data.source", id="bad-enum"),
        pytest.param({"sampling": {"cases": NAN_TARGET_CASES}}, NAN_TARGET_KEY, id="nan-target"),
    ],
)
def test_snakemake_stops_on_bad_configfile(tmp_path: Path, config: dict, key: str) -> None:
    result = _dry_run(tmp_path, config)
    assert result.returncode != 0
    # Snakemake 9 reports errors raised while parsing the Snakefile on stdout, not stderr.
    assert f"config key '{key}'" in result.stdout + result.stderr
    assert not (tmp_path / "results" / "data").exists()


def test_snakemake_dry_run_accepts_good_configfile(tmp_path: Path) -> None:
    result = _dry_run(tmp_path, {"data": {"demo": {"n_structures": 100}}})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "dataset" in result.stdout + result.stderr
