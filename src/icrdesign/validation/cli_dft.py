"""``icrdesign dft STRUCTURE.cif --engine gpaw --out DIR [--relax/--no-relax]``: DFT validation.

Runs relax (optional) + symmetrise + static + any missing elemental references; writes DIR/dft.json
(one validation row) and the task documents beside it; prints one JSON object on stdout. A failed
calculation is recorded (status 'failed', reason) and the command still exits 0 so a workflow goes on.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from icrdesign.validation.cli_common import (add_common_arguments, check_arguments, print_references, print_summary,
                                             read_structure, results_only_on_stdout, settings)
from icrdesign.validation.cli_relax import SUMMARY_KEYS
from icrdesign.validation.dft import dft_references, validate_dft
from icrdesign.validation.results import write_result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="icrdesign dft", description=__doc__)
    add_common_arguments(parser)
    parser.add_argument("--engine", choices=["gpaw", "vasp"], default=None, help="default: config dft.engine")
    parser.add_argument("--relax", action=argparse.BooleanOptionalAction, default=None,
                        help="relax before the static (default: config dft.relax)")
    parser.add_argument("--prerelaxed", type=Path, default=None,
                        help="start from this MLIP-relaxed structure when it exists (else from STRUCTURE)")
    args = parser.parse_args(argv)
    check_arguments(parser, args)
    config = settings(args)
    dft = {**config["dft"], "engine": args.engine or config["dft"]["engine"]}
    references = args.references or Path("results/validation/references") / dft["engine"]
    with results_only_on_stdout() as stdout:
        if args.reference_elements:
            return print_references(args.reference_elements, lambda elements: dft_references(
                elements, dft, references, args.out, config["relaxation"]["store_uri"]), args.index, stdout)
        start = args.prerelaxed if args.prerelaxed is not None and args.prerelaxed.exists() else args.structure
        row, task_docs = validate_dft(read_structure(start), dft, args.out, references, relax=args.relax,
                                      store_uri=config["relaxation"]["store_uri"])
    row = {"case": args.case, "candidate_id": args.candidate_id or args.structure.stem, **row,
           "start_structure": str(start)}
    write_result(args.out / "dft.json", row, {f"dft_{name}_taskdoc": doc for name, doc in task_docs.items()})
    print_summary(row, SUMMARY_KEYS)
    return 0
