"""Relax a structure with a machine-learned potential (atomate2 + CHGNet) and compute its formation energy.

Writes OUT/mlip.json (the validation record), OUT/mlip_taskdoc.json and OUT/mlip_structure.cif (the
structure the DFT tier starts from: the relaxed one, or the input when the relaxation failed); prints
the record's summary as one JSON object on stdout. A failed relaxation is recorded (status 'failed',
reason) and the command still exits 0, so a workflow goes on. With --reference-elements instead of
STRUCTURE: compute (or reuse) those elements' references in the --references cache, one JSON line each.
"""

from __future__ import annotations

import argparse

from pymatgen.core import Structure

from icrdesign.artefacts.validation import MLIP, MLIP_STRUCTURE_FILE, RECORD_FILES, write_mlip_structure, write_record
from icrdesign.cli.validation_common import (SUMMARY_KEYS, add_validation_arguments, candidate_id,
                                             check_index_argument, print_references, print_summary,
                                             results_only_on_stdout)
from icrdesign.config import load_config
from icrdesign.validation.mlip import mlip_references, validate_mlip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_validation_arguments(parser)


def run(args: argparse.Namespace) -> int:
    check_index_argument(args)
    relaxation = load_config(args.config)["relaxation"]
    with results_only_on_stdout() as stdout:
        if args.reference_elements:
            return print_references(args.reference_elements, lambda elements: mlip_references(
                elements, relaxation, args.references, args.out), args.index, stdout)
        structure = Structure.from_file(str(args.structure))
        row, task_doc = validate_mlip(structure, relaxation, args.out, args.references)
    row = {"case": args.case, "candidate_id": candidate_id(args), **row}
    # The DFT tier starts from this structure: the MLIP has done the bulk of the relaxation.
    write_mlip_structure(args.out / MLIP_STRUCTURE_FILE, task_doc.structure if task_doc is not None else structure)
    write_record(args.out / RECORD_FILES[MLIP], row, {"mlip_taskdoc": task_doc} if task_doc is not None else {})
    print_summary(row, SUMMARY_KEYS)
    return 0
