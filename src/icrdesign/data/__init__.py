"""Dataset stage: one table format for every source (embedded demo, Materials Project or the user's own
crystals from a file, :mod:`icrdesign.data.file_source`).

``build_dataset(config, out_dir)`` writes ``out_dir/dataset.parquet`` and ``out_dir/rejected.csv`` (rows
a source refused, with a typed reason: each source's own, and the shared ones of
:mod:`icrdesign.artefacts.dataset`, e.g. ``duplicate_material_id``, ``invalid_property``);
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
    DATASET_FILE,
    REJECTED_COLUMNS,
    REJECTED_FILE,
    TABLE_COLUMNS,
    check_table,
    read_dataset as load_dataset,
    structures_from_table,
    write_dataset,
    write_rejected,
)
from icrdesign.errors import ConfigError, InputError
from icrdesign.io import exclusive_lock

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


def build_dataset(config: dict[str, Any], out_dir: str | Path, n_jobs: int | None = None) -> DatasetResult:
    """Build the dataset for ``config['data']['source']`` and write it under ``out_dir``.

    ``n_jobs`` processes read a user's data file (``data.source: file``; None: all cores); the demo
    takes its own from ``data.demo.n_jobs``. Holds ``out_dir``'s lock while it writes. A source that
    leaves no usable row stops with InputError naming the rejected.csv that says why (and the data
    file of the file source); no dataset is written then.
    """
    out_dir = Path(out_dir)
    source = config["data"]["source"]
    started = time.perf_counter()
    with exclusive_lock(out_dir):
        if source == "demo":
            from icrdesign.data.demo import build_demo_dataset

            table, rejected, provenance = build_demo_dataset(config["data"]["demo"], config["seed"])
        elif source == "materials_project":
            from icrdesign.data.materials_project import fetch_materials_project

            table, rejected, provenance = fetch_materials_project(
                config["data"]["materials_project"], out_dir / "cache", config["seed"]
            )
        elif source == "file":
            from icrdesign.data.file_source import read_file_source

            table, rejected, provenance = read_file_source(config["data"]["file"], config["representation"], n_jobs)
        else:  # the schema's enum makes this unreachable for validated configs
            raise ConfigError(f"config key 'data.source': unknown source {source!r}; "
                              "allowed values: ['demo', 'materials_project', 'file']")
        provenance = {"data_source": source, **provenance, "build_seconds": round(time.perf_counter() - started, 1)}
        rejected_path = out_dir / REJECTED_FILE
        write_rejected(rejected_path, rejected)
        if table.empty:
            by_reason = rejected["reason"].value_counts().to_dict()
            origin = f"data file {config['data']['file']['path']}" if source == "file" else f"the {source} source"
            raise InputError(f"{rejected_path}: {origin} gave no usable row ({len(rejected)} rejected: "
                             f"{by_reason}); no dataset written")
        write_dataset(out_dir / DATASET_FILE, table)
    log.info("dataset: %d structures, %d rejected -> %s", len(table), len(rejected), out_dir)
    return DatasetResult(table, rejected, provenance)
