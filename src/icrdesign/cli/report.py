"""The paper's figures, success rates and dissimilarity from one command.

Reads RESULTS (the workflow's results folder: model/latent.npz, design/<case>/, validation/,
data/dataset.parquet, fingerprints/; an absent input is reported as absent) and, with --validation, a
CSV of externally computed results (columns case, id, E_f[, E_g, structure]; tier 'external'). Writes
the figures, summary.json/.md/.html, evaluations.csv, dissimilarity.csv and rejected.csv to OUT. Reads
the config's ``sampling.cases`` and ``report``.

Fingerprints are read, never computed: `icrdesign fingerprints` writes them (the training split's
shards, each case's candidates and, for --validation's structures,
`icrdesign fingerprints --structures FILE.csv --cif-column structure --out X.npz`).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from icrdesign.cli.common import add_config_argument
from icrdesign.config import load_config
from icrdesign.errors import InputError
from icrdesign.report.build import FIGURES, build_report
from icrdesign.report.inputs import ReportPaths

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--out", type=Path, required=True, help="output folder (figures, summary.json, ...)")
    parser.add_argument("--results", type=Path, default=Path("results"),
                        help="a results folder in the workflow's layout; the options below override its parts")
    parser.add_argument("--latent", type=Path, default=None, help="latent means (default: RESULTS/model/latent.npz)")
    parser.add_argument("--model-metrics", type=Path, default=None,
                        help="model test metrics (default: RESULTS/model/metrics.json)")
    parser.add_argument("--design", type=Path, default=None,
                        help="folder with one folder per design case (default: RESULTS/design)")
    parser.add_argument("--validation-table", type=Path, default=None,
                        help="relax/DFT results table (default: RESULTS/validation/validation.csv)")
    parser.add_argument("--dataset", type=Path, default=None, help="dataset table (default: RESULTS/data/dataset.parquet)")
    parser.add_argument("--validation", type=Path, default=None,
                        help="CSV of externally computed results (case, id, E_f[, E_g, structure]); tier 'external'; "
                             "rows that cannot be trusted go to rejected.csv")
    parser.add_argument("--train-fingerprints", type=Path, nargs="+", default=None,
                        help="every shard of the training split's fingerprints "
                             "(default: the shards RESULTS/fingerprints/train/plan.json names)")
    parser.add_argument("--candidate-fingerprints", type=Path, nargs="+", default=None,
                        help="the candidates' fingerprints (default: RESULTS/fingerprints/candidates/*.npz)")
    parser.add_argument("--external-fingerprints", type=Path, default=None,
                        help="fingerprints of the --validation CSV's structures, keyed by its id")
    parser.add_argument("--funnels", type=Path, nargs="+", default=None,
                        help="each case's post-relaxation funnel.csv, funnel.json beside it "
                             "(default: RESULTS/validation/*/funnel.csv)")
    parser.add_argument("--figures", nargs="+", choices=FIGURES, default=list(FIGURES), help="figures to draw")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.validation is not None and not args.validation.is_file():
        raise InputError(f"--validation {args.validation}: no such file")
    given = (args.latent, args.model_metrics, args.design, args.validation_table, args.dataset, args.train_fingerprints,
             args.candidate_fingerprints, args.funnels)
    # The results folder's layout fills only what is not given (reading it opens the fingerprint plan).
    layout = ReportPaths.under(args.results) if not all(value is not None for value in given) else None
    paths = ReportPaths(latent=args.latent or layout.latent, model_metrics=args.model_metrics or layout.model_metrics,
                        design=args.design or layout.design, validation=args.validation_table or layout.validation,
                        dataset=args.dataset or layout.dataset,
                        train_fingerprints=tuple(args.train_fingerprints or layout.train_fingerprints),
                        candidate_fingerprints=tuple(args.candidate_fingerprints or layout.candidate_fingerprints),
                        external_fingerprints=args.external_fingerprints,
                        funnels=tuple(args.funnels or layout.funnels))
    summary = build_report(config, paths, args.out, args.validation, args.figures)
    absent = summary["absent_inputs"]
    log.info("report written to %s (%d cases; absent inputs: %s)", args.out, len(summary["cases"]),
             ", ".join(absent) or "none")
    return 0
