"""Dataset stage: one table format for every source (embedded demo or Materials Project).

``build_dataset(config, out_dir)`` writes ``out_dir/dataset.parquet`` and ``out_dir/rejected.csv``;
``icrdesign dataset --config CFG --out DIR`` (``icrdesign.cli.dataset``) does the same from the command
line and records provenance (package versions, git commit, config hash, data source and its version, seed).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from icrdesign.artefacts.dataset import (
    REJECTED_COLUMNS,
    TABLE_COLUMNS,
    check_table,
    read_dataset,
    structures_from_table,
    write_dataset,
    write_rejected,
)
from icrdesign.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = [
    "REJECTED_COLUMNS", "TABLE_COLUMNS", "DatasetResult", "build_dataset", "check_table", "load_dataset",
    "structures_from_table",
]


@dataclass
class DatasetResult:
    table: pd.DataFrame
    rejected: pd.DataFrame
    provenance: dict[str, Any] = field(default_factory=dict)


def build_dataset(config: dict[str, Any], out_dir: str | Path) -> DatasetResult:
    """Build the dataset for ``config['data']['source']`` and write it under ``out_dir``."""
    out_dir = Path(out_dir)
    source = config["data"]["source"]
    started = time.perf_counter()
    if source == "demo":
        from icrdesign.data.demo import build_demo_dataset

        table, rejected, provenance = build_demo_dataset(config["data"]["demo"], config["seed"])
    elif source == "materials_project":
        from icrdesign.data.materials_project import fetch_materials_project

        table, rejected, provenance = fetch_materials_project(
            config["data"]["materials_project"], out_dir / "cache", config["seed"]
        )
    else:  # the schema's enum makes this unreachable for validated configs
        raise ConfigError(f"config key 'data.source': unknown source {source!r}; allowed values: ['demo', 'materials_project']")
    provenance = {"data_source": source, **provenance, "build_seconds": round(time.perf_counter() - started, 1)}
    write_dataset(out_dir / "dataset.parquet", table)
    write_rejected(out_dir / "rejected.csv", rejected)
    log.info("dataset: %d structures, %d rejected -> %s", len(table), len(rejected), out_dir)
    return DatasetResult(table, rejected, provenance)


def load_dataset(path: str | Path) -> pd.DataFrame:
    """Read a dataset table written by ``build_dataset``."""
    return read_dataset(path)
