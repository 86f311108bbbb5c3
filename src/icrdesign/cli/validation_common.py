"""What ``icrdesign relax`` and ``icrdesign dft`` share: their arguments, reading and checking STRUCTURE,
the one JSON object (or one JSON line per elemental reference) they print on stdout, and keeping
everything else off stdout.

STRUCTURE is refused before any calculation when it cannot be read, is implausible
(:func:`icrdesign.structure_checks.read_structure`), holds more sites than the tier's configured
limit (unless ``--force``) or an element the engine lacks (:mod:`icrdesign.validation.inputs`): by
hand, the command ends with the reason and exit code 2 and records nothing; with
``--record-refusal`` (the workflow's rules) the refusal is the candidate's failed record.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final, TextIO

from pymatgen.core import Structure

from icrdesign.artefacts.validation import WORK_FOLDERS
from icrdesign.cli.common import add_config_argument
from icrdesign.errors import InputError
from icrdesign.structure_checks import StructureRefused, read_structure
from icrdesign.validation.inputs import check_input, refused_record
from icrdesign.validation.references import reference_records, write_index

#: The keys of the summary a command prints for one structure.
SUMMARY_KEYS: Final[tuple[str, ...]] = ("formula", "nsites", "energy_per_atom", "band_gap",
                                        "formation_energy_per_atom", "engine", "status", "wall_s")
#: The keys of the line printed for one elemental reference.
REFERENCE_KEYS: Final[tuple[str, ...]] = ("element", "kind", "energy_per_atom", "status", "reason")


def add_validation_arguments(parser: argparse.ArgumentParser, vocabulary: bool = False) -> None:
    """STRUCTURE, --reference-elements (or, with ``vocabulary``, --vocabulary) or --candidates, the
    reference cache, the output folder, the record's ids."""
    add_config_argument(parser)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("structure", type=Path, nargs="?", help="CIF (or any pymatgen-readable structure file)")
    target.add_argument("--reference-elements", nargs="+", default=None, metavar="ELEMENT",
                        help="compute (or reuse) only these elements' references, one JSON line each")
    if vocabulary:
        target.add_argument("--vocabulary", type=Path, default=None, metavar="ICR_JSON",
                            help="as --reference-elements, for every element of this representation's vocabulary "
                                 "(the encode stage's icr.json): every element a candidate can hold")
    else:
        parser.set_defaults(vocabulary=None)
    target.add_argument("--candidates", type=Path, default=None,
                        help="a case's candidates.csv: compute one chunk of it (see --chunk)")
    parser.add_argument("--index", type=Path, default=None,
                        help="with --reference-elements: also write each element's status to this JSON file; with "
             "--candidates: the chunk's index, written last")
    parser.add_argument("--references", type=Path, required=True,
                        help="elemental reference cache of this engine and settings")
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder (with --reference-elements: the folder to compute in)")
    parser.add_argument("--case", default="", help="design case (recorded in the record)")
    parser.add_argument("--candidate-id", default="", help="candidate id (default: the structure file's stem)")
    parser.add_argument("--force", action="store_true",
                        help="compute STRUCTURE even when it has more sites than the configured limit "
                             "(relax: representation.max_sites, dft: dft.max_sites)")
    parser.add_argument("--record-refusal", action="store_true",
                        help="record a refused STRUCTURE (unreadable, implausible, too large, an element the engine "
                             "lacks) as the candidate's failed result and exit 0, instead of exit code 2: the "
                             "workflow's rules pass it, so that one bad candidate never stops a run")


def check_index_argument(args: argparse.Namespace) -> None:
    """--index describes a references run or a chunk."""
    if args.index is not None and not (args.reference_elements or args.vocabulary or args.candidates):
        raise InputError("--index needs --reference-elements, --vocabulary or --candidates")


def candidate_id(args: argparse.Namespace) -> str:
    return args.candidate_id or args.structure.stem


def checked_structure(args: argparse.Namespace, tier: str, config: dict[str, Any]) -> Structure:
    """STRUCTURE, read and checked for ``tier`` (``--force`` lifts the size limit only).

    Raises:
        StructureRefused: see the module's docstring.
    """
    structure = read_structure(args.structure)
    check_input(structure, args.structure, tier, config, force=args.force)
    return structure


def record_refusal(args: argparse.Namespace, refusal: StructureRefused, tier: str,
                   config: dict[str, Any]) -> dict[str, Any]:
    """The failed record of a refused STRUCTURE under ``--record-refusal``; re-raises the refusal without it.

    The tier's work folder exists afterwards, as after any run (the workflow declares it).
    """
    if not args.record_refusal:
        raise refusal
    (args.out / WORK_FOLDERS[tier]).mkdir(parents=True, exist_ok=True)
    return refused_record(refusal, tier, config)


@contextlib.contextmanager
def results_only_on_stdout() -> Iterator[TextIO]:
    """Send what the enclosed code prints (CHGNet and GPAW print progress on stdout) to stderr, so that a
    command's stdout holds only its JSON results; yields the real stdout to print those on."""
    stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        yield stdout


def print_summary(row: dict[str, Any], keys: tuple[str, ...], stream: TextIO | None = None) -> None:
    """The one JSON object the commands print on stdout (NaN as null)."""
    print(json.dumps({key: (None if isinstance(row.get(key), float) and math.isnan(row[key]) else row.get(key))
                      for key in keys}), file=stream or sys.stdout, flush=True)


def print_references(elements: list[str], compute: Callable[[list[str]], dict[str, dict[str, Any]]],
                     index: Path | None, stream: TextIO | None = None, workers: int = 1) -> int:
    """Compute (or reuse) each element's reference in this one process (the imports and the model load
    are paid once; ``workers`` > 1 computes that many elements at once in forked processes) and print
    one JSON line per element; ``index`` gets every element's status
    (``references.write_index``). A failure is recorded and printed, not raised, so the other
    elements and the workflow go on and the candidates needing it fail with the reason."""
    records = []
    for record in reference_records(elements, compute, workers):
        print_summary(record, REFERENCE_KEYS, stream)
        records.append(record)
    if index is not None:
        write_index(index, records)
    return 0
