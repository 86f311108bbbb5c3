"""Loading and validating the workflow configuration against the JSON schema.

The same schema guards `snakemake` runs (through ``snakemake.utils.validate`` in the Snakefile)
and the ``icrdesign`` command line, so a bad value stops either at once, naming the key.
"""

from __future__ import annotations

import copy
import hashlib
import json
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

    Returns the complete configuration; raises ConfigError naming every bad key and what it allows.
    """
    if not isinstance(user, dict):
        raise ConfigError(f"the configuration must be a mapping of sections, got {type(user).__name__}")
    schema = load_schema()
    config = deep_update(default_config(), user)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for error in errors:
            allowed = _allowed(error)
            lines.append(f"config key '{_key_path(error)}': {error.message}" + (f" ({allowed})" if allowed else ""))
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines))
    _check_semantics(config)
    return config


def _check_semantics(config: dict[str, Any]) -> None:
    """Rules the schema cannot express."""
    from icrdesign.cases import Window  # the design-case window; imported here, as cases imports errors only

    split = config["split"]
    if abs(sum(split) - 1.0) > 1e-6:
        raise ConfigError(f"config key 'split': fractions must sum to 1, got {split} (sum {sum(split)})")
    encoder = config["model"]
    if not len(encoder["encoder_channels"]) == len(encoder["kernel_sizes"]) == len(encoder["strides"]):
        raise ConfigError(
            "config keys 'model.encoder_channels', 'model.kernel_sizes', 'model.strides' must have equal lengths"
        )
    trained = set(config["model"]["properties"])
    for case, spec in config["sampling"]["cases"].items():
        for prop, bounds in spec["constraints"].items():
            if prop not in trained:
                raise ConfigError(
                    f"config key 'sampling.cases.{case}.constraints.{prop}': unknown property; "
                    f"allowed values: {sorted(trained)} (model.properties)"
                )
            window = Window.from_constraint(bounds)
            if window.empty:
                raise ConfigError(
                    f"config key 'sampling.cases.{case}.constraints.{prop}': impossible constraint, "
                    f"the allowed window [{window.low}, {window.high}] is empty"
                )
    mp = config["data"]["materials_project"]
    if mp["min_elements"] > mp["max_elements"]:
        raise ConfigError("config key 'data.materials_project.min_elements': must not exceed max_elements")


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
