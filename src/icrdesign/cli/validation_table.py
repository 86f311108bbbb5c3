"""Collect the candidates' validation records (mlip.json, dft.json) into one table, validation.csv.

Takes record files, or chunk folders (every record inside them, MLIP then DFT)."""

from __future__ import annotations

import argparse
from pathlib import Path

from icrdesign.artefacts.validation import TIERS, chunk_records, validation_table, write_validation_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("records", type=Path, nargs="*",
                        help="the records (one row each) or chunk folders, in this order")
    parser.add_argument("--out", type=Path, required=True, help="the table to write (validation.csv)")


def run(args: argparse.Namespace) -> int:
    records = [record for path in args.records
               for record in ([r for tier in TIERS for r in chunk_records(path, tier)] if path.is_dir() else [path])]
    table = validation_table(records)
    write_validation_table(args.out, table)
    print(f"validation-table: {len(table)} records -> {args.out}; status {table['status'].value_counts().to_dict()}")
    return 0
