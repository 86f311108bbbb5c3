"""Encode the dataset table to the invertible crystal representation.

Writes the encoded dataset to OUT (arrays, index, representation, the per-row scaler fitted on the
training split, rejected rows, summary); reads the config's ``representation``, ``split`` and ``seed``.
A row without a material_id or repeating an earlier row's id is a rejected row (the first is encoded);
a table with no usable row, or an output folder another run holds, stops with exit code 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from icrdesign.artefacts.tables import read_table
from icrdesign.cli.common import add_config_argument
from icrdesign.config import load_config
from icrdesign.representation.pipeline import INPUT_COLUMNS, encode_dataset


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", type=Path, required=True, help="dataset.parquet from the dataset stage")
    add_config_argument(parser)
    parser.add_argument("--out", type=Path, required=True, help="output directory (results/encoded)")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    table = read_table(args.dataset, INPUT_COLUMNS)
    encode_dataset(table, config, args.out, n_jobs=args.jobs, source=args.dataset)
    return 0
