"""What the Snakemake rules ask of the library that is not a stage: per-rule resources and the
per-stage config files, so that the rule files only wire files to commands."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

#: Separator of section names in a stage config file's name (``results/config/model+split.json``).
SECTION_SEPARATOR = "+"


def resources_for(config: Mapping[str, Any], rule: str) -> dict[str, Any]:
    """Threads, memory and runtime of ``rule``: ``resources.<rule>`` over ``resources.default``."""
    return {**config["resources"]["default"], **config["resources"].get(rule, {})}


def stage_config_name(sections: Sequence[str]) -> str:
    """The file stem of the config file holding ``sections`` (``model+split``)."""
    return SECTION_SEPARATOR.join(sections)


def stage_config_text(config: Mapping[str, Any], name: str) -> str:
    """The content of stage config file ``name``: the seed and the named sections, as sorted JSON.

    A rule takes this file as input, so editing one section reruns only the rules that read it.
    """
    sections = name.split(SECTION_SEPARATOR)
    unknown = [section for section in sections if section not in config]
    if unknown:
        raise KeyError(f"stage config {name!r}: no config section {unknown}")
    payload = {"seed": config["seed"], **{section: config[section] for section in sections}}
    return json.dumps(payload, indent=2, sort_keys=True) + "\n"


def dataset_sections(config: Mapping[str, Any]) -> tuple[str, ...]:
    """The config sections of the dataset rule: ``data``, and with ``data.source: file`` also
    ``representation``, whose site and element limits screen the user's crystals (the other sources
    have their own limits, so a representation setting does not rebuild their dataset)."""
    return ("data", "representation") if config["data"]["source"] == "file" else ("data",)


def dataset_input_files(config: Mapping[str, Any]) -> list[str]:
    """The user's files the dataset rule reads (``data.source: file``; none for the other sources), so
    that Snakemake reruns it when one changes."""
    if config["data"]["source"] != "file":
        return []
    from icrdesign.data.file_source import input_files  # pandas and pymatgen: only for this source

    return [str(path) for path in input_files(config["data"]["file"])]
