"""DFT validation of structures: relax (optional) + symmetrise + static + any missing elemental references.

``dft --candidates FUNNEL_CSV --chunk K --out BATCH_DIR --index BATCH.json`` is the workflow's form: it
computes batch K of the case's DFT selection (:mod:`icrdesign.validation.selection`,
``dft.candidates_per_job`` candidates each), one record per candidate in BATCH_DIR/<id>/dft.json,
skipping those with an ok record; the index is written last.

``dft STRUCTURE --out DIR`` writes OUT/dft.json (the validation record) and the task documents beside it; prints the record's
summary as one JSON object on stdout. A failed calculation is recorded (status 'failed', reason) and
the command still exits 0, so a workflow goes on. With --reference-elements instead of STRUCTURE:
compute (or reuse) those elements' references in the --references cache, one JSON line each.

STRUCTURE is refused (exit code 2, nothing recorded) when it cannot be read, has non-finite numbers, a
degenerate cell, overlapping atoms or disordered sites, holds more sites than dft.max_sites (--force
computes it anyway) or an element the engine has no PAW dataset (GPAW) or POTCAR (VASP) for; with
--record-refusal the refusal is recorded as the failed result instead.
"""

from __future__ import annotations

import argparse
from typing import TextIO
from pathlib import Path

from icrdesign.artefacts.validation import DFT, RECORD_FILES, write_record
from icrdesign.errors import InputError
from icrdesign.validation.chunks import run_dft_chunk, write_chunk_index
from icrdesign.validation.funnel import read_funnel
from icrdesign.validation.selection import dft_batches, dft_limit
from icrdesign.cli.validation_common import (SUMMARY_KEYS, add_validation_arguments, candidate_id,
                                             check_index_argument, checked_structure, print_references,
                                             print_summary, record_refusal, results_only_on_stdout)
from icrdesign.config import load_config
from icrdesign.structure_checks import StructureRefused
from icrdesign.validation.dft import dft_references, validate_dft


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_validation_arguments(parser)
    parser.add_argument("--mlip-references", type=Path, required=True,
                        help="the MLIP tier's reference cache (prototype elements start from its structures)")
    parser.add_argument("--engine", choices=["gpaw", "vasp"], default=None, help="default: config dft.engine")
    parser.add_argument("--relax", action=argparse.BooleanOptionalAction, default=None,
                        help="relax before the static (default: config dft.relax)")
    parser.add_argument("--workers", type=int, default=1,
                        help="with --reference-elements: elements computed at once, in forked workers")
    parser.add_argument("--chunk", type=int, default=None,
                        help="with --candidates (a case's funnel.csv): the DFT batch to compute (0-based)")


def run(args: argparse.Namespace) -> int:
    check_index_argument(args)
    config = load_config(args.config)
    dft = {**config["dft"], "engine": args.engine or config["dft"]["engine"]}
    config = {**config, "dft": dft}
    relaxation = config["relaxation"]
    with results_only_on_stdout() as stdout:
        if args.reference_elements:
            return print_references(args.reference_elements, lambda elements: dft_references(
                elements, dft, relaxation, args.references, args.mlip_references, args.out), args.index, stdout,
                workers=args.workers)
        if args.candidates is not None:
            return _run_batch(args, config, stdout)
        try:
            structure = checked_structure(args, DFT, config)
        except StructureRefused as refusal:
            row, task_docs = record_refusal(args, refusal, DFT, config), {}
        else:
            row, task_docs = validate_dft(structure, dft, relaxation, args.out, args.references, args.mlip_references,
                                          relax=args.relax)
    row = {"case": args.case, "candidate_id": candidate_id(args), **row, "start_structure": str(args.structure)}
    write_record(args.out / RECORD_FILES[DFT], row, {f"dft_{role}_taskdoc": doc for role, doc in task_docs.items()})
    print_summary(row, SUMMARY_KEYS)
    return 0


def _run_batch(args: argparse.Namespace, config: dict, stdout: TextIO) -> int:
    if args.chunk is None or args.index is None:
        raise InputError("--candidates needs --chunk and --index")
    funnel = read_funnel(args.candidates)
    batches = dft_batches(funnel, config["dft"], dft_limit(config, args.case))
    if not 0 <= args.chunk < len(batches):
        raise InputError(f"{args.candidates}: no DFT batch {args.chunk} (the case has {len(batches)})")
    rows = funnel.set_index("candidate_id").loc[batches[args.chunk]].reset_index()
    written = run_dft_chunk(rows, args.case, config, args.references, args.mlip_references, args.out,
                            force=args.force)
    counts = write_chunk_index(args.index, args.out, batches[args.chunk], DFT)
    print(f"dft: batch {args.chunk} of {args.case}: {len(written)} computed, statuses {counts}", file=stdout, flush=True)
    return 0
