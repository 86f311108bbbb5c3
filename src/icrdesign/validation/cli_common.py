"""Shared command-line plumbing of ``icrdesign relax`` / ``dft`` / ``export-flows``."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any, Callable

from pymatgen.core import Structure

from icrdesign.config import load_config
from icrdesign.validation.references import ReferenceFailed


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("structure", type=Path, nargs="?", help="CIF (or any pymatgen-readable structure file)")
    parser.add_argument("--reference-element", default=None,
                        help="compute (or reuse) only this element's reference and print it")
    parser.add_argument("--out", type=Path, required=True,
                        help="output directory (with --reference-element: the work directory)")
    parser.add_argument("--config", type=Path, default=None, help="config file layered over config.yaml")
    parser.add_argument("--references", type=Path, default=None,
                        help="elemental reference cache (default: results/validation/references/<engine>)")
    parser.add_argument("--case", default="", help="design case (recorded in the result)")
    parser.add_argument("--candidate-id", default="", help="candidate id (default: the file stem)")


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if (args.structure is None) == (args.reference_element is None):
        parser.error("give either STRUCTURE or --reference-element")


def read_structure(path: Path) -> Structure:
    return Structure.from_file(str(path))


def settings(args: argparse.Namespace) -> dict[str, Any]:
    return load_config(args.config)


def print_summary(row: dict[str, Any], keys: list[str]) -> None:
    """The one JSON object the commands print on stdout (NaN as null)."""
    print(json.dumps({key: (None if isinstance(row.get(key), float) and math.isnan(row[key]) else row.get(key))
                      for key in keys}))


def print_reference(element: str, compute: Callable[[list[str]], dict[str, dict[str, Any]]]) -> int:
    """Compute (or reuse) one element's reference and print it; a failure is recorded on disk and
    printed, not raised, so the workflow goes on and the candidates needing it fail with the reason."""
    try:
        record = {"status": "ok", **compute([element])[element]}
    except ReferenceFailed as failure:
        record = {"element": element, "status": "failed", "reason": failure.reason}
    print_summary(record, ["element", "kind", "energy_per_atom", "status", "reason"])
    return 0
