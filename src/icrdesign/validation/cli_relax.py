"""``icrdesign relax STRUCTURE.cif --out DIR``: machine-learned-potential relaxation + formation energy.

Writes DIR/mlip.json (one validation row) and DIR/mlip_taskdoc.json; prints the summary JSON.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from icrdesign.validation.cli_common import (add_common_arguments, check_arguments, print_references, print_summary,
                                             read_structure, results_only_on_stdout, settings)
from icrdesign.validation.mlip import mlip_references, validate_mlip
from icrdesign.io import write_text
from icrdesign.validation.results import write_result

RELAXED_CIF = "mlip_relaxed.cif"
SUMMARY_KEYS = ["formula", "nsites", "energy_per_atom", "band_gap", "formation_energy_per_atom", "engine",
                "status", "wall_s"]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="icrdesign relax", description=__doc__)
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    check_arguments(parser, args)
    relaxation = settings(args)["relaxation"]
    references = args.references or Path("results/validation/references") / relaxation["force_field"]
    with results_only_on_stdout() as stdout:
        if args.reference_elements:
            return print_references(args.reference_elements,
                                    lambda elements: mlip_references(elements, relaxation, references, args.out),
                                    args.index, stdout)
        row, task_doc = validate_mlip(read_structure(args.structure), relaxation, args.out, references)
    row = {"case": args.case, "candidate_id": args.candidate_id or args.structure.stem, **row}
    if task_doc is not None:
        # The DFT tier starts from this structure: the MLIP has done the bulk of the relaxation.
        write_text(args.out / RELAXED_CIF, task_doc.structure.to(fmt="cif"))
    write_result(args.out / "mlip.json", row, {"mlip_taskdoc": task_doc} if task_doc is not None else {})
    print_summary(row, SUMMARY_KEYS)
    return 0
