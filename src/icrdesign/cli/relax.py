"""Relax a structure with a machine-learned potential (atomate2 + CHGNet) and compute its formation energy.

Writes OUT/mlip.json (the validation record), OUT/mlip_taskdoc.json and OUT/mlip_structure.cif (the
structure the DFT tier starts from: the relaxed one, or the input when the relaxation failed); prints
the record's summary as one JSON object on stdout. A failed relaxation is recorded (status 'failed',
reason) and the command still exits 0, so a workflow goes on. With --reference-elements instead of
STRUCTURE: compute (or reuse) those elements' references in the --references cache, one JSON line each.

STRUCTURE is refused (exit code 2, nothing recorded) when it cannot be read, has non-finite numbers, a
degenerate cell, overlapping atoms or disordered sites, holds more sites than representation.max_sites
(the largest cell the pipeline generates; --force relaxes it anyway) or an element the potential has
no parameters for; with --record-refusal the refusal is recorded as the failed result instead.
"""

from __future__ import annotations

import argparse
import shutil

from icrdesign.artefacts.validation import MLIP, MLIP_STRUCTURE_FILE, RECORD_FILES, write_mlip_structure, write_record
from icrdesign.cli.validation_common import (SUMMARY_KEYS, add_validation_arguments, candidate_id,
                                             check_index_argument, checked_structure, print_references,
                                             print_summary, record_refusal, results_only_on_stdout)
from icrdesign.config import load_config
from icrdesign.structure_checks import StructureRefused
from icrdesign.validation.mlip import mlip_references, validate_mlip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_validation_arguments(parser)


def run(args: argparse.Namespace) -> int:
    check_index_argument(args)
    config = load_config(args.config)
    relaxation = config["relaxation"]
    with results_only_on_stdout() as stdout:
        if args.reference_elements:
            return print_references(args.reference_elements, lambda elements: mlip_references(
                elements, relaxation, args.references, args.out), args.index, stdout)
        try:
            structure = checked_structure(args, MLIP, config)
        except StructureRefused as refusal:
            row, task_doc, structure = record_refusal(args, refusal, MLIP, config), None, refusal.structure
        else:
            row, task_doc = validate_mlip(structure, relaxation, args.out, args.references)
    row = {"case": args.case, "candidate_id": candidate_id(args), **row}
    # The DFT tier starts from this structure: the MLIP has done the bulk of the relaxation. A refused
    # input is passed on as it was, so that the DFT tier records the same refusal.
    start = task_doc.structure if task_doc is not None else structure
    if start is not None:
        write_mlip_structure(args.out / MLIP_STRUCTURE_FILE, start)
    else:
        shutil.copyfile(args.structure, args.out / MLIP_STRUCTURE_FILE)
    write_record(args.out / RECORD_FILES[MLIP], row, {"mlip_taskdoc": task_doc} if task_doc is not None else {})
    print_summary(row, SUMMARY_KEYS)
    return 0
