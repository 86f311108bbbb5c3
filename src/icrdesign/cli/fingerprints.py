"""Structural fingerprints (matminer site statistics) of a table's structures or of the training split.

Three uses, each writing atomically:

  --structures TABLE --id-column id --cif-column cif --out X.npz
      every row of a CSV with a structure file (CIF, or pymatgen JSON for .json; a relative path is
      taken from the table's folder, a row with an empty path is skipped) -> X.npz keyed by id;
  --dataset dataset.parquet --config C --plan plan.json
      how many shards of --shard-size (default: the config's report.fingerprint_shard_size) the
      training split (the config's split and seed) is cut into;
  --dataset dataset.parquet --config C --shard I --out shard-I.npz
      the fingerprints of shard I of the training split, keyed by material_id.

With --cache DIR every fingerprint computed is kept there, per crystal, and reused: a rerun or a
grown dataset computes only the crystals not fingerprinted before.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from icrdesign.artefacts.dataset import read_dataset
from icrdesign.artefacts.fingerprints import Fingerprints, shard_plan, write_fingerprints, write_plan
from icrdesign.artefacts.tables import read_table
from icrdesign.checks import is_missing
from icrdesign.cli.common import add_config_argument
from icrdesign.config import load_config
from icrdesign.errors import InputError
from icrdesign.report.similarity import compute_fingerprints, shard_rows, structure_file_item, training_crystals

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--structures", type=Path, help="CSV with an id column and a structure-file column")
    source.add_argument("--dataset", type=Path, help="dataset.parquet: fingerprint its training split")
    parser.add_argument("--id-column", default="id", help="--structures: the id column (default: id)")
    parser.add_argument("--cif-column", default="cif", help="--structures: the structure-file column (default: cif)")
    add_config_argument(parser)
    parser.add_argument("--shard-size", type=int, default=None,
                        help="--dataset: crystals per shard (default: the config's report.fingerprint_shard_size)")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--plan", type=Path, help="--dataset: write the shard plan (JSON) here")
    action.add_argument("--shard", type=int, help="--dataset: the shard to fingerprint (0-based)")
    parser.add_argument("--out", type=Path, help="fingerprints file (.npz) to write")
    parser.add_argument("--cache", type=Path, default=None, help="folder of fingerprints to reuse and extend")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes for fingerprints")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)  # checked even where only --dataset reads it: a bad one stops every use
    if args.structures is not None:
        if args.out is None or args.plan is not None or args.shard is not None:
            raise InputError("--structures takes --out (and neither --plan nor --shard)")
        ids, items, errors = _table_items(args.structures, args.id_column, args.cif_column)
        description = f"fingerprints of {args.structures.name}"
    elif args.plan is not None:
        _write_plan(args, config)
        return 0
    else:
        ids, items, errors = _shard_items(args, config)
        description = f"training fingerprints, shard {args.shard}"
    result = compute_fingerprints([item for item in items if item is not None], args.cache, max(1, args.jobs),
                                  description)
    matrix = np.full((len(ids), result.matrix.shape[1]), np.nan)
    read = [i for i, item in enumerate(items) if item is not None]
    matrix[read] = result.matrix
    for i, error in zip(read, result.errors, strict=True):
        errors[i] = error
    write_fingerprints(args.out, Fingerprints(np.array(ids, dtype=str), matrix, errors))
    log.info("%d fingerprints written to %s: %d computed, %d from the cache, %d failed", len(ids), args.out,
             result.n_computed, len(read) - result.n_computed, sum(error is not None for error in errors))
    return 0


def _table_items(path: Path, id_column: str, cif_column: str) -> tuple[list[str], list, list[str | None]]:
    """Ids, (format, text) per row (None where the file is unreadable) and each row's error."""
    table = read_table(path, [id_column, cif_column], {id_column: "string", cif_column: "string"})
    ids: list[str] = []
    items: list[tuple[str, str] | None] = []
    errors: list[str | None] = []
    seen: dict[str, Path] = {}
    for line, (identifier, given) in enumerate(zip(table[id_column], table[cif_column]), start=2):
        if is_missing(given):
            continue
        if is_missing(identifier):
            raise InputError(f"{path}: line {line}: empty {id_column!r}")
        file = path.parent / str(given).strip()
        identifier = str(identifier)
        if identifier in seen:
            if seen[identifier] != file:
                raise InputError(f"{path}: line {line}: {id_column} {identifier!r} names two structures, "
                                 f"{seen[identifier]} and {file}")
            continue
        seen[identifier] = file
        ids.append(identifier)
        try:
            items.append(structure_file_item(file))
            errors.append(None)
        except OSError as error:  # a missing structure is this row's result, not the table's failure
            items.append(None)
            errors.append(f"{type(error).__name__}: {error}")
    log.info("%s: %d structures (rows without a %r were skipped)", path, len(ids), cif_column)
    return ids, items, errors


def _training_split(args: argparse.Namespace, config: dict[str, Any]) -> tuple[pd.DataFrame, int]:
    """The training crystals of --dataset (in table order) and the shard size."""
    size = args.shard_size or config["report"]["fingerprint_shard_size"]
    if size < 1:
        raise InputError(f"--shard-size {size}: must be at least 1")
    return training_crystals(read_dataset(args.dataset), config), size


def _write_plan(args: argparse.Namespace, config: dict[str, Any]) -> None:
    """--plan: the shard plan; the shards' shared --cache folder exists once the plan does."""
    train, size = _training_split(args, config)
    plan = shard_plan(len(train), size)
    write_plan(args.plan, plan)
    if args.cache is not None:
        args.cache.mkdir(parents=True, exist_ok=True)
    log.info("%d training crystals in %d shards of at most %d", len(train), plan["n_shards"], size)


def _shard_items(args: argparse.Namespace, config: dict[str, Any]) -> tuple[list[str], list, list[str | None]]:
    """--shard: the material ids and (format, text) of shard --shard of the training split."""
    if args.shard is None or args.out is None:
        raise InputError("--dataset takes --plan FILE, or --shard I with --out FILE")
    train, size = _training_split(args, config)
    n_shards = shard_plan(len(train), size)["n_shards"]
    if not 0 <= args.shard < n_shards:
        raise InputError(f"--shard {args.shard}: the training split has shards 0 to {n_shards - 1}")
    shard = train.iloc[shard_rows(len(train), size, args.shard)]
    return list(shard["material_id"].astype(str)), [("json", text) for text in shard["structure"]], [None] * len(shard)
