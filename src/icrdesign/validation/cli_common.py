"""Shared command-line plumbing of ``icrdesign relax`` / ``dft`` / ``export-flows``."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, TextIO

from pymatgen.core import Structure

from icrdesign.config import load_config
from icrdesign.io import write_json
from icrdesign.validation.references import ReferenceFailed


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("structure", type=Path, nargs="?", help="CIF (or any pymatgen-readable structure file)")
    parser.add_argument("--reference-elements", nargs="+", default=None, metavar="ELEMENT",
                        help="compute (or reuse) only these elements' references, one JSON line each")
    parser.add_argument("--index", type=Path, default=None,
                        help="with --reference-elements: also write each element's status to this JSON file")
    parser.add_argument("--out", type=Path, required=True,
                        help="output directory (with --reference-elements: the work directory)")
    parser.add_argument("--config", type=Path, default=None, help="config file layered over config.yaml")
    parser.add_argument("--references", type=Path, default=None,
                        help="elemental reference cache (default: results/validation/references/<engine>)")
    parser.add_argument("--case", default="", help="design case (recorded in the result)")
    parser.add_argument("--candidate-id", default="", help="candidate id (default: the file stem)")


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if (args.structure is None) == (args.reference_elements is None):
        parser.error("give either STRUCTURE or --reference-elements")
    if args.index is not None and args.reference_elements is None:
        parser.error("--index needs --reference-elements")


def read_structure(path: Path) -> Structure:
    return Structure.from_file(str(path))


def settings(args: argparse.Namespace) -> dict[str, Any]:
    return load_config(args.config)


@contextlib.contextmanager
def results_only_on_stdout() -> Iterator[TextIO]:
    """Send what the enclosed code prints (CHGNet and GPAW print progress on stdout) to stderr, so that a
    command's stdout holds only its JSON results; yields the real stdout to print those on."""
    stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        yield stdout


def print_summary(row: dict[str, Any], keys: list[str], stream: TextIO | None = None) -> None:
    """The one JSON object the commands print on stdout (NaN as null)."""
    print(json.dumps({key: (None if isinstance(row.get(key), float) and math.isnan(row[key]) else row.get(key))
                      for key in keys}), file=stream or sys.stdout, flush=True)


def print_references(elements: list[str], compute: Callable[[list[str]], dict[str, dict[str, Any]]],
                     index: Path | None, stream: TextIO | None = None) -> int:
    """Compute (or reuse) each element's reference in this one process (the imports and the model load
    are paid once) and print one JSON line per element. A failure is recorded on disk and printed,
    not raised, so the other elements and the workflow go on and the candidates needing it fail
    with the reason. ``index`` gets every element's status, and status 'failed' if any failed, so
    that a rerun deletes it with the failed records (``results.failed_results``) and retries them."""
    statuses = {}
    for element in sorted(set(elements)):
        try:
            record = {"status": "ok", **compute([element])[element]}
        except ReferenceFailed as failure:
            record = {"element": element, "status": "failed", "reason": failure.reason}
        statuses[element] = record["status"]
        print_summary(record, ["element", "kind", "energy_per_atom", "status", "reason"], stream)
    if index is not None:
        failed = sorted(element for element, status in statuses.items() if status != "ok")
        write_json(index, {"elements": statuses, "status": "failed" if failed else "ok",
                           "reason": f"failed references: {failed}" if failed else ""})
    return 0
