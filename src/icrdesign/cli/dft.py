"""DFT validation of a structure: relax (optional) + symmetrise + static + any missing elemental references.

Writes OUT/dft.json (the validation record) and the task documents beside it; prints the record's
summary as one JSON object on stdout. A failed calculation is recorded (status 'failed', reason) and
the command still exits 0, so a workflow goes on. With --reference-elements instead of STRUCTURE:
compute (or reuse) those elements' references in the --references cache, one JSON line each.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pymatgen.core import Structure

from icrdesign.artefacts.validation import DFT, RECORD_FILES, write_record
from icrdesign.cli.validation_common import (SUMMARY_KEYS, add_validation_arguments, candidate_id,
                                             check_index_argument, print_references, print_summary,
                                             results_only_on_stdout)
from icrdesign.config import load_config
from icrdesign.validation.dft import dft_references, validate_dft


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_validation_arguments(parser)
    parser.add_argument("--mlip-references", type=Path, required=True,
                        help="the MLIP tier's reference cache (prototype elements start from its structures)")
    parser.add_argument("--engine", choices=["gpaw", "vasp"], default=None, help="default: config dft.engine")
    parser.add_argument("--relax", action=argparse.BooleanOptionalAction, default=None,
                        help="relax before the static (default: config dft.relax)")


def run(args: argparse.Namespace) -> int:
    check_index_argument(args)
    config = load_config(args.config)
    dft = {**config["dft"], "engine": args.engine or config["dft"]["engine"]}
    relaxation = config["relaxation"]
    with results_only_on_stdout() as stdout:
        if args.reference_elements:
            return print_references(args.reference_elements, lambda elements: dft_references(
                elements, dft, relaxation, args.references, args.mlip_references, args.out), args.index, stdout)
        row, task_docs = validate_dft(Structure.from_file(str(args.structure)), dft, relaxation, args.out,
                                      args.references, args.mlip_references, relax=args.relax)
    row = {"case": args.case, "candidate_id": candidate_id(args), **row, "start_structure": str(args.structure)}
    write_record(args.out / RECORD_FILES[DFT], row, {f"dft_{role}_taskdoc": doc for role, doc in task_docs.items()})
    print_summary(row, SUMMARY_KEYS)
    return 0
