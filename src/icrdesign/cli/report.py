"""The paper's figures, success rates and dissimilarity from one command.

Reads RESULTS (the workflow's results folder: model/latent.npz, design/<case>/, validation/,
data/dataset.parquet; an absent input is reported as absent) and, with --validation, a CSV of
externally computed results (columns case, id, E_f[, E_g, structure]; tier 'external'). Writes the
figures, summary.json/.md/.html, evaluations.csv, dissimilarity.csv and rejected.csv to OUT. Reads the
config's ``sampling.cases`` and ``report``.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from icrdesign.cli.common import add_config_argument
from icrdesign.config import load_config
from icrdesign.errors import InputError
from icrdesign.report.build import FIGURES, build_report

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--out", type=Path, required=True, help="output folder (figures, summary.json, ...)")
    parser.add_argument("--results", type=Path, default=Path("results"), help="the workflow's results folder")
    parser.add_argument("--validation", type=Path, default=None,
                        help="CSV of externally computed results (case, id, E_f, E_g[, structure]); tier 'external'")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes for fingerprints")
    parser.add_argument("--figures", nargs="+", choices=FIGURES, default=list(FIGURES), help="figures to draw")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.validation is not None and not args.validation.is_file():
        raise InputError(f"--validation {args.validation}: no such file")
    summary = build_report(config, args.results, args.out, args.validation, max(1, args.jobs), args.figures)
    absent = summary["absent_inputs"]
    log.info("report written to %s (%d cases; absent inputs: %s)", args.out, len(summary["cases"]),
             ", ".join(absent) or "none")
    return 0
