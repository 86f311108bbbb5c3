"""Forget the failed validation results so that the next workflow run redoes them.

A failed MLIP relaxation or DFT calculation is recorded as a result (status 'failed', with the reason):
the workflow goes on, the report counts it, and rerunning the workflow does not repeat it. This
command removes every candidate record that is not 'ok', every elemental reference recorded as
failed and the index of each references job that had a failure; the next `snakemake` run then redoes
exactly those jobs (and the table and report after them). --dry-run lists them and changes nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from icrdesign.artefacts.validation import validation_dir
from icrdesign.errors import InputError
from icrdesign.validation.retry import forget_failed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", type=Path, required=True, help="the workflow's results folder")
    parser.add_argument("--dry-run", action="store_true", help="list the failed results, remove nothing")


def run(args: argparse.Namespace) -> int:
    if not args.results.is_dir():
        raise InputError(f"--results {args.results}: no such folder")
    failed = forget_failed(validation_dir(args.results), dry_run=args.dry_run)
    for path in failed:
        print(f"{'would forget' if args.dry_run else 'forgot'} {path}")
    print(f"retry-failed: {len(failed)} failed results {'found' if args.dry_run else 'forgotten'}")
    return 0
