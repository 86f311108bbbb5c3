"""Loading and validating the workflow configuration against the JSON schema.

The same schema guards `snakemake` runs (through ``snakemake.utils.validate`` in the Snakefile)
and the ``icrdesign`` command line, so a bad value stops either at once, naming the key.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from icrdesign.errors import ConfigError

#: The default configuration and its schema ship inside the package (the repository's ``config.yaml``
#: and ``workflow/schemas/config.schema.yaml`` link to them), so an installed package finds both.
DEFAULTS_DIR = Path(__file__).resolve().parent / "defaults"
SCHEMA_PATH = DEFAULTS_DIR / "config.schema.yaml"
DEFAULT_CONFIG_PATH = DEFAULTS_DIR / "config.yaml"


def load_schema() -> dict[str, Any]:
    return yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = [str(part) for part in error.absolute_path]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        unexpected = sorted(key for key in error.instance if key not in known)
        parts.append("|".join(unexpected))
    return ".".join(parts) or "<top level>"


def _allowed(error: jsonschema.ValidationError) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        return f"allowed keys: {allowed}" if allowed else "no further keys are allowed"
    if "enum" in schema:
        return f"allowed values: {schema['enum']}"
    bounds = [
        f"{name} {schema[name]}"
        for name in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum", "minItems", "maxItems")
        if name in schema
    ]
    if "type" in schema:
        bounds.insert(0, f"type {schema['type']}")
    return "allowed: " + ", ".join(bounds) if bounds else ""


def default_config() -> dict[str, Any]:
    """The default configuration (``config.yaml``): the one source of every default value."""
    return yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))


def validate_config(user: dict[str, Any]) -> dict[str, Any]:
    """Layer ``user`` over the default configuration and validate the result against the schema.

    Three layers, each naming every bad key: the schema (types, ranges, known keys), finiteness
    (YAML ``.nan`` / ``.inf`` pass JSON Schema's ``type: number`` and every bound, since NaN compares
    False with all of them) and the semantic checks (pairs of keys that contradict each other).

    Returns the complete configuration; raises ConfigError naming every bad key and what it allows.
    """
    if not isinstance(user, dict):
        raise ConfigError(f"the configuration must be a mapping of sections, got {type(user).__name__}")
    schema = load_schema()
    config = deep_update(default_config(), user)
    non_finite = dict(_non_finite_numbers(config))
    problems = [f"config key '{key}': {_yaml_spelling(value)} is not a finite number"
                for key, value in non_finite.items()]
    validator = jsonschema.Draft202012Validator(schema)
    for error in sorted(validator.iter_errors(config), key=lambda e: [str(part) for part in e.absolute_path]):
        if ".".join(str(part) for part in error.absolute_path) in non_finite:
            continue  # an error about the value itself: already named as not finite, its bounds add nothing
        allowed = _allowed(error)
        problems.append(f"config key '{_key_path(error)}': {error.message}" + (f" ({allowed})" if allowed else ""))
    _raise_if_any(problems)
    _raise_if_any(_semantic_problems(config))
    return config


def _raise_if_any(problems: list[str]) -> None:
    """One ConfigError listing every problem, one per line."""
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))


def _non_finite_numbers(value: Any, path: str = "") -> Iterator[tuple[str, float]]:
    """Every NaN or infinite number under ``value`` with its key path (list items by index: ``split.1``)."""
    if isinstance(value, float) and not math.isfinite(value):
        yield path or "<top level>", value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _non_finite_numbers(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _non_finite_numbers(item, f"{path}.{index}" if path else str(index))


def _yaml_spelling(value: float) -> str:
    """How YAML writes a non-finite number (``.nan``, ``.inf``, ``-.inf``), as the user typed it."""
    if math.isnan(value):
        return ".nan"
    return ".inf" if value > 0 else "-.inf"


def _contradiction(first: str, first_value: Any, second: str, second_value: Any, why: str) -> str:
    """The message for two keys whose values cannot hold together; it names both."""
    return f"config keys '{first}' ({first_value}) and '{second}' ({second_value}) contradict: {why}"


def _semantic_problems(config: dict[str, Any]) -> list[str]:
    """Rules the schema cannot express: sums, equal lengths, design windows and contradicting pairs.

    Every number is finite and in its schema range by now. The pairs (each refused naming both keys):

    * ``sampling.min_volume_per_atom`` >= ``sampling.max_volume_per_atom``: no volume lies between.
    * ``sampling.min_distance`` d against ``sampling.max_volume_per_atom``: atoms at least d apart
      take at least the volume per atom of the densest sphere packing, d^3/sqrt(2); a smaller
      maximum admits no crystal.
    * ``sampling.cases.<case>.n_candidates`` > ``sampling.n_samples``: a strategy makes one candidate
      at most per proposal and stops after n_samples proposals, so the count can never be reached.
    * a constraint whose window (``target`` ± ``tolerance`` within ``min`` / ``max``) is empty.
    * ``data.materials_project.min_elements`` > ``max_elements``; an element both in
      ``include_elements`` and ``exclude_elements``; more ``include_elements`` than ``max_elements``
      (a material holds every included element).
    * with ``data.source: materials_project``, the data against the representation that encodes it:
      ``min_elements`` > ``representation.max_elements``, or an ``include_elements`` entry missing
      from ``representation.elements``, would leave every downloaded crystal unencodable.
    * with ``data.source: file``, no ``data.file.path``: there is nothing to read.
    """
    from icrdesign.cases import Window  # the design-case window; imported here, as cases imports errors only

    problems = []
    split = config["split"]
    if abs(sum(split) - 1.0) > 1e-6:
        problems.append(f"config key 'split': fractions must sum to 1, got {split} (sum {sum(split)})")
    encoder = config["model"]
    if not len(encoder["encoder_channels"]) == len(encoder["kernel_sizes"]) == len(encoder["strides"]):
        problems.append(
            "config keys 'model.encoder_channels', 'model.kernel_sizes', 'model.strides' must have equal lengths"
        )
    sampling = config["sampling"]
    problems += _sampling_problems(sampling)
    trained = set(config["model"]["properties"])
    for case, spec in sampling["cases"].items():
        if spec["n_candidates"] > sampling["n_samples"]:
            problems.append(_contradiction(
                f"sampling.cases.{case}.n_candidates", spec["n_candidates"], "sampling.n_samples",
                sampling["n_samples"], "each strategy makes at most one candidate per proposal"))
        for prop, bounds in spec["constraints"].items():
            if prop not in trained:
                problems.append(
                    f"config key 'sampling.cases.{case}.constraints.{prop}': unknown property; "
                    f"allowed values: {sorted(trained)} (model.properties)"
                )
                continue
            window = Window.from_constraint(bounds)
            if window.empty:
                problems.append(
                    f"config key 'sampling.cases.{case}.constraints.{prop}': impossible constraint, "
                    f"the allowed window [{window.low}, {window.high}] is empty"
                )
    problems += _materials_project_problems(config)
    problems += _file_source_problems(config)
    return problems


def _sampling_problems(sampling: dict[str, Any]) -> list[str]:
    """The validity filter's bounds against each other (see :func:`_semantic_problems`)."""
    problems = []
    low, high = sampling["min_volume_per_atom"], sampling["max_volume_per_atom"]
    if low >= high:
        problems.append(_contradiction("sampling.min_volume_per_atom", low, "sampling.max_volume_per_atom", high,
                                       "the minimum must be below the maximum"))
    distance = sampling["min_distance"]
    densest = distance**3 / math.sqrt(2)
    if high < densest:
        problems.append(_contradiction(
            "sampling.min_distance", distance, "sampling.max_volume_per_atom", high,
            f"atoms {distance} A apart need at least {densest:.3g} A^3/atom (d^3/sqrt(2), the densest packing)"))
    return problems


def _materials_project_problems(config: dict[str, Any]) -> list[str]:
    """The Materials Project query against itself and the representation (see :func:`_semantic_problems`)."""
    prefix = "data.materials_project"
    mp = config["data"]["materials_project"]
    problems = []
    if mp["min_elements"] > mp["max_elements"]:
        problems.append(_contradiction(f"{prefix}.min_elements", mp["min_elements"], f"{prefix}.max_elements",
                                       mp["max_elements"], "the minimum must not exceed the maximum"))
    both = sorted(set(mp["include_elements"]) & set(mp["exclude_elements"]))
    if both:
        problems.append(_contradiction(f"{prefix}.include_elements", mp["include_elements"],
                                       f"{prefix}.exclude_elements", mp["exclude_elements"],
                                       f"{both} both required and excluded"))
    if len(mp["include_elements"]) > mp["max_elements"]:
        problems.append(_contradiction(f"{prefix}.include_elements", mp["include_elements"], f"{prefix}.max_elements",
                                       mp["max_elements"], "a material holds every included element"))
    if config["data"]["source"] != "materials_project":
        return problems  # the query is not run: its settings cannot contradict the representation
    representation = config["representation"]
    if mp["min_elements"] > representation["max_elements"]:
        problems.append(_contradiction(f"{prefix}.min_elements", mp["min_elements"], "representation.max_elements",
                                       representation["max_elements"], "no downloaded crystal could be encoded"))
    vocabulary = representation["elements"]
    unencodable = sorted(set(mp["include_elements"]) - set(vocabulary or mp["include_elements"]))
    if unencodable:
        problems.append(_contradiction(
            f"{prefix}.include_elements", mp["include_elements"], "representation.elements", vocabulary,
            f"every downloaded crystal holds {unencodable}, which the representation cannot encode"))
    return problems



def _file_source_problems(config: dict[str, Any]) -> list[str]:
    """The file source's data file (see :func:`_semantic_problems`)."""
    if config["data"]["source"] == "file" and not config["data"]["file"]["path"]:
        return ["config key 'data.file.path': required with data.source 'file' (a .csv / .parquet / .json table, "
                "an .extxyz file or a folder of CIF / POSCAR files)"]
    return []


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Load the default config with the file ``path`` layered over it, apply ``overrides``, validate."""
    user: dict[str, Any] = {}
    if path is not None:
        user = read_config_file(path)
    if overrides:
        deep_update(user, overrides)
    return validate_config(user)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A user's YAML/JSON config file; an unreadable or malformed file raises ConfigError naming it."""
    try:
        user = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"config file {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path}: not valid YAML ({' '.join(str(error).split())})") from None
    if user is None:
        return {}
    if not isinstance(user, dict):
        raise ConfigError(f"config file {path}: the top level must be a mapping of sections, got {type(user).__name__}")
    return user


def deep_update(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Merge ``update`` into ``base`` recursively, as Snakemake merges ``--configfile`` files.

    ``sampling.cases`` is replaced, not merged, so a config can define its own set of cases.
    """
    for key, value in update.items():
        if key == "cases" or not (isinstance(value, dict) and isinstance(base.get(key), dict)):
            base[key] = copy.deepcopy(value)
        else:
            deep_update(base[key], value)
    return base


def config_hash(config: dict[str, Any], section: str | None = None) -> str:
    """Stable short hash of the whole config or of one section (for provenance and caching)."""
    payload = config if section is None else config.get(section)
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]
