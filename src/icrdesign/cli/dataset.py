"""Build the dataset table (demo, Materials Project or a data file), its rejected rows and its provenance.

Rows a source cannot use (a repeated id, a missing or implausible property, an unreadable
structure) are listed with their reason in OUT/rejected.csv. A source that leaves no usable row, a
Materials Project that cannot be read, or an output folder another run holds stops with exit code 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from icrdesign.cli.common import add_config_argument
from icrdesign.config import load_config
from icrdesign.data import build_dataset
from icrdesign.provenance import write_provenance


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--out", type=Path, required=True, help="output directory (dataset.parquet, rejected.csv)")
    parser.add_argument("--provenance", type=Path, default=None, help="provenance JSON (default: OUT/../provenance.json)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="processes reading a data file (data.source file; default: all cores)")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    result = build_dataset(config, args.out, n_jobs=args.jobs)
    write_provenance(args.provenance or args.out.parent / "provenance.json", config, **result.provenance)
    by_reason = result.rejected["reason"].value_counts().to_dict()
    print(f"dataset: {len(result.table)} structures -> {args.out / 'dataset.parquet'}; rejected {by_reason}")
    return 0
