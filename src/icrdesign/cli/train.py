"""Train the property-structured VAE on the encoded dataset and evaluate it on the test split.

Writes the model, metrics, split, latent means, Fig. S1, history, test reconstructions and rejected
rows to OUT; OUT/checkpoint.pt is rewritten every epoch, and restarting a killed run with the same
command resumes from it. A model in OUT that the run cannot resume (other settings or data) is moved
to OUT.replaced-<UTC time>/ beside it first. Reads the config's ``model``, ``split`` and ``seed``.
A second run on the same OUT, an unreadable checkpoint or a dataset without usable labels stops with
exit code 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from icrdesign.cli.common import add_config_argument, add_threads_argument, limit_torch_threads
from icrdesign.config import load_config
from icrdesign.model.pipeline import train_model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--encoded", type=Path, required=True, help="output directory of the encode stage")
    parser.add_argument("--dataset", type=Path, required=True, help="dataset.parquet (property labels, structures)")
    add_config_argument(parser)
    parser.add_argument("--out", type=Path, required=True, help="output directory (results/model)")
    add_threads_argument(parser, "CPU threads when model.num_threads is null")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bars (log lines only)")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if not config["model"]["num_threads"]:
        limit_torch_threads(args.threads)
    train_model(args.encoded, args.dataset, config, args.out, show_progress=not args.no_progress)
    return 0
