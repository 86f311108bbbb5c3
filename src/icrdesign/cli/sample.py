"""Sample candidates for one design case: latent strategies -> decode -> validity, uniqueness, novelty
-> surrogate check.

Writes OUT/candidates.csv, OUT/cifs/, OUT/rejected.csv, OUT/funnel.json and OUT/metrics.json. Reads
the config's ``sampling``, ``model.device`` and ``seed``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from icrdesign.cases import DesignCase
from icrdesign.cli.common import add_config_argument, add_threads_argument, limit_torch_threads
from icrdesign.config import load_config
from icrdesign.model.training import resolve_device
from icrdesign.sampling.run import sample_case

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, required=True, help="trained model folder (results/model)")
    parser.add_argument("--dataset", type=Path, required=True, help="dataset table (results/data/dataset.parquet)")
    add_config_argument(parser)
    parser.add_argument("--case", required=True, help="design case name from sampling.cases")
    parser.add_argument("--out", type=Path, required=True, help="output folder (results/design/CASE)")
    add_threads_argument(parser, "torch CPU threads (the rule's threads)")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    DesignCase.from_config(args.case, config["sampling"])  # an unknown case fails before the model loads
    limit_torch_threads(args.threads)
    device = resolve_device(config["model"]["device"])
    result = sample_case(args.model, args.dataset, config, args.case, args.out, device=str(device))
    for name, counts in result.metrics["strategies"].items():
        log.info("%s: %s", name, counts)
    log.info("lift over random: %s; training base rate: %s", result.metrics["lift_over_random"],
             result.metrics["training_base_rate"])
    return 0
