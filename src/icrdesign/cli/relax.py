"""Relax candidates with a machine-learned potential (atomate2 + CHGNet) and compute their formation energies.

Three forms:

- ``relax --candidates CSV --chunk K --out CHUNK_DIR --index CHUNK.json``: the workflow's form. Relaxes
  chunk K of the case's valid candidates (``relaxation.chunk_size`` each, see
  :mod:`icrdesign.validation.chunks`) in one batched flow; each candidate gets CHUNK_DIR/<id>/mlip.json
  (its record), mlip_taskdoc.json and mlip_structure.cif (its last structure: relaxed, unconverged, or
  the input when it failed). Candidates that already have a kept record are not recomputed. A refused
  or failed candidate is recorded with its reason and the others go on. The index is written last.
- ``relax STRUCTURE --out DIR``: one structure, recorded in DIR the same way; the summary is printed as
  one JSON object on stdout. STRUCTURE is refused (exit code 2, nothing recorded) when it cannot be
  read, has non-finite numbers, a degenerate cell, overlapping atoms or disordered sites, holds more
  sites than representation.max_sites (--force relaxes it anyway) or an element the potential has no
  parameters for; with --record-refusal the refusal is recorded as the failed result instead.
- ``relax --reference-elements El ...``: compute (or reuse) those elements' references in the
  --references cache, one JSON line each.
"""

from __future__ import annotations

import argparse
from typing import TextIO

from icrdesign.artefacts.candidates import read_candidates
from icrdesign.artefacts.encoded import read_vocabulary
from icrdesign.artefacts.validation import MLIP
from icrdesign.cli.common import add_threads_argument, limit_torch_threads
from icrdesign.cli.validation_common import (SUMMARY_KEYS, add_validation_arguments, candidate_id,
                                             check_index_argument, checked_structure, print_references,
                                             print_summary, record_refusal, results_only_on_stdout)
from icrdesign.config import load_config
from icrdesign.errors import InputError
from icrdesign.structure_checks import StructureRefused
from icrdesign.validation.chunks import mlip_chunks, run_mlip_chunk, write_chunk_index, write_mlip_candidate
from icrdesign.validation.mlip import mlip_references, relax_candidates


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_validation_arguments(parser, vocabulary=True)
    parser.add_argument("--chunk", type=int, default=None,
                        help="with --candidates: the chunk to relax (0-based, relaxation.chunk_size candidates each)")
    add_threads_argument(parser, "torch CPU threads (the rule's threads; more threads than free cores slow every step)")


def run(args: argparse.Namespace) -> int:
    check_index_argument(args)
    config = load_config(args.config)
    relaxation = config["relaxation"]
    limit_torch_threads(args.threads)
    with results_only_on_stdout() as stdout:
        if args.reference_elements or args.vocabulary:
            elements = args.reference_elements or read_vocabulary(args.vocabulary)
            return print_references(elements, lambda elements: mlip_references(
                elements, relaxation, args.references, args.out), args.index, stdout)
        if args.candidates is not None:
            return _run_chunk(args, config, stdout)
        try:
            structure = checked_structure(args, MLIP, config)
        except StructureRefused as refusal:
            row = {"case": args.case, "candidate_id": candidate_id(args), **record_refusal(args, refusal, MLIP, config)}
            write_mlip_candidate(args.out, row, None, refusal.structure, args.structure)
        else:
            result = relax_candidates({candidate_id(args): structure}, relaxation, args.references,
                                      args.out / "work")[candidate_id(args)]
            row = {"case": args.case, "candidate_id": candidate_id(args), **result.row}
            write_mlip_candidate(args.out, row, result.task_document, result.structure, None)
    print_summary(row, SUMMARY_KEYS)
    return 0


def _run_chunk(args: argparse.Namespace, config: dict, stdout: TextIO) -> int:
    if args.chunk is None or args.index is None:
        raise InputError("--candidates needs --chunk and --index")
    candidates = read_candidates(args.candidates)
    chunks = mlip_chunks(candidates, config["relaxation"])
    if not 0 <= args.chunk < len(chunks):
        raise InputError(f"{args.candidates}: no chunk {args.chunk} (the case has {len(chunks)} chunks of "
                         f"relaxation.chunk_size={config['relaxation']['chunk_size']})")
    rows = candidates[candidates["id"].isin(chunks[args.chunk])]
    written = run_mlip_chunk(rows, args.case, config, args.references, args.out, force=args.force)
    counts = write_chunk_index(args.index, args.out, chunks[args.chunk], MLIP)
    print(f"relax: chunk {args.chunk} of {args.case}: {len(written)} computed, statuses {counts}", file=stdout, flush=True)
    return 0
