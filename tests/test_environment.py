"""The two descriptions of the software environment agree: the pip pins CI installs and the conda
environment every rule names (`conda:`), and the Python version of both."""

from __future__ import annotations

import re

import yaml

from workflow_runner import REPO


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.lower()] = version
    return pins


def test_conda_environment_pins_the_requirements() -> None:
    conda = yaml.safe_load((REPO / "envs/icrdesign.yaml").read_text())
    pip_section = next(item["pip"] for item in conda["dependencies"] if isinstance(item, dict))
    requirements = (REPO / "envs/requirements.txt").read_text().splitlines()
    assert _pins(pip_section) == _pins(requirements)


def test_conda_python_is_the_setup_python() -> None:
    conda = yaml.safe_load((REPO / "envs/icrdesign.yaml").read_text())
    python = next(item for item in conda["dependencies"] if isinstance(item, str) and item.startswith("python="))
    setup = (REPO / "scripts/setup.sh").read_text()
    assert re.search(r"PYTHON:-python(\d+\.\d+)", setup).group(1) == python.split("=")[1]


def test_every_rule_names_the_conda_environment() -> None:
    rules = sorted((REPO / "workflow/rules").glob("*.smk"))
    for path in rules:
        text = path.read_text()
        n_rules = len(re.findall(r"^(?:rule|checkpoint) \w+:", text, flags=re.M))
        n_runs = len(re.findall(r"^    (?:shell|script):", text, flags=re.M))
        assert text.count("conda:\n        CONDA_ENV") == n_runs, path.name
        assert n_runs <= n_rules, path.name
