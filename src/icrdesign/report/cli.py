"""``icrdesign report``: the paper's figures, success rates and dissimilarity from one command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from icrdesign.config import ConfigError, load_config
from icrdesign.report.build import FIGURES, build_report


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="icrdesign report", description=__doc__)
    parser.add_argument("--config", type=Path, default=None,
                        help="config YAML/JSON layered over config.yaml (design cases, report section)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (figures, summary.json, ...)")
    parser.add_argument("--results", type=Path, default=Path("results"), help="the workflow's results folder")
    parser.add_argument("--validation", type=Path, default=None,
                        help="CSV of externally computed results (case, id, E_f, E_g[, structure]); tier 'external'")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes for fingerprints")
    parser.add_argument("--figures", nargs="+", choices=FIGURES, default=list(FIGURES), help="figures to draw")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    if args.validation is not None and not args.validation.is_file():
        print(f"icrdesign report: --validation {args.validation}: no such file", file=sys.stderr)
        return 2
    try:
        summary = build_report(config, args.results, args.out, args.validation, max(1, args.jobs), args.figures)
    except ValueError as error:
        print(f"icrdesign report: {error}", file=sys.stderr)
        return 2
    absent = summary["absent_inputs"]
    logging.getLogger(__name__).info(
        "report written to %s (%d cases; absent inputs: %s)", args.out, len(summary["cases"]), ", ".join(absent) or "none"
    )
    return 0
