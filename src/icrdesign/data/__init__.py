"""Dataset stage: one table format for every source (embedded demo or Materials Project).

``build_dataset(config, out_dir)`` writes ``out_dir/dataset.parquet`` and ``out_dir/rejected.csv``;
``icrdesign dataset --config CFG --out DIR`` does the same from the command line and records
provenance (package versions, git commit, config hash, data source and its version, seed).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pymatgen.core import Structure

from icrdesign.config import ConfigError, load_config
from icrdesign.io import write_csv, write_parquet
from icrdesign.provenance import write_provenance

log = logging.getLogger(__name__)

TABLE_COLUMNS = (
    "material_id", "formula", "structure", "nsites", "nelements", "spacegroup",
    "formation_energy_per_atom", "band_gap", "energy_above_hull", "source", "label_source",
)
REJECTED_COLUMNS = ("material_id", "reason", "detail")


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
    check_table(table)
    rejected = rejected.reindex(columns=list(REJECTED_COLUMNS))
    provenance = {"data_source": source, **provenance, "build_seconds": round(time.perf_counter() - started, 1)}
    write_parquet(out_dir / "dataset.parquet", table)
    write_csv(out_dir / "rejected.csv", rejected)
    log.info("dataset: %d structures, %d rejected -> %s", len(table), len(rejected), out_dir)
    return DatasetResult(table, rejected, provenance)


def check_table(table: pd.DataFrame) -> None:
    """Fail loudly if a source broke the shared table format (a programming error, not bad data)."""
    missing = [c for c in TABLE_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"dataset table lacks columns {missing}")
    if not table["material_id"].is_unique:
        raise ValueError("dataset table has duplicate material_id values")


def load_dataset(path: str | Path) -> pd.DataFrame:
    """Read a dataset table written by ``build_dataset``."""
    table = pd.read_parquet(path)
    check_table(table)
    return table


def structures_from_table(table: pd.DataFrame) -> list[Structure]:
    """The pymatgen Structures of a dataset table, in row order."""
    return [Structure.from_dict(json.loads(text)) for text in table["structure"]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="icrdesign dataset", description="Build the dataset table.")
    parser.add_argument("--config", type=Path, default=None, help="config YAML/JSON layered over config.yaml")
    parser.add_argument("--out", type=Path, required=True, help="output directory (dataset.parquet, rejected.csv)")
    parser.add_argument("--provenance", type=Path, default=None, help="provenance JSON (default: OUT/../provenance.json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
    except ConfigError as err:
        print(f"icrdesign dataset: {err}", file=sys.stderr)
        return 2
    result = build_dataset(config, args.out)
    provenance_path = args.provenance or args.out.parent / "provenance.json"
    write_provenance(provenance_path, config, **result.provenance)
    by_reason = result.rejected["reason"].value_counts().to_dict()
    print(f"dataset: {len(result.table)} structures -> {args.out / 'dataset.parquet'}; rejected {by_reason}")
    return 0
