"""``icrdesign train``: train the property-structured VAE on the encoded dataset.

Restarting a killed run with the same command resumes from OUT/checkpoint.pt.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from icrdesign.config import load_config
from icrdesign.model.pipeline import train_model


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="icrdesign train", description=__doc__)
    parser.add_argument("--encoded", type=Path, required=True, help="output directory of the encode stage")
    parser.add_argument("--dataset", type=Path, required=True, help="dataset.parquet (property labels, structures)")
    parser.add_argument("--config", type=Path, default=None, help="config YAML/JSON layered over config.yaml")
    parser.add_argument("--out", type=Path, required=True, help="output directory (results/model)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads when model.num_threads is null")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bars (log lines only)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = load_config(args.config)
    if args.threads and not config["model"]["num_threads"]:
        torch.set_num_threads(args.threads)
    train_model(args.encoded, args.dataset, config, args.out, show_progress=not args.no_progress)
    return 0
