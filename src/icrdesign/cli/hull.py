"""Build the reference convex hull of the stability check and write it as JSON.

Which hull follows data.source and stability.hull: with `data`, the Materials Project's stable
GGA_GGA+U phases of the candidates' chemical systems and all their sub-systems (downloaded once per
system into --cache; MP_API_KEY from the environment), or the dataset table of the other sources,
with the elements at 0 eV/atom; with `mlip`, the same phases relaxed with the configured potential
(cached per crystal in --cache). The candidates' chemical systems come from the valid rows of the
--candidates tables. The file names the hull's source; `icrdesign.stability.read_hull` reads it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from icrdesign.cli.common import add_config_argument
from icrdesign.config import load_config
from icrdesign.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--dataset", type=Path, default=None,
                        help="dataset.parquet (needed unless data.source is materials_project)")
    parser.add_argument("--candidates", type=Path, nargs="+", default=None, metavar="CSV",
                        help="candidates.csv of the design cases: the hull covers their chemical systems "
                             "(needed for data.source materials_project and for stability.hull mlip)")
    parser.add_argument("--cache", type=Path, required=True,
                        help="cache folder of the Materials Project downloads and the MLIP relaxations")
    parser.add_argument("--references", type=Path, default=None,
                        help="stability.hull mlip: the potential's elemental reference cache, shared with the "
                             "candidates' (default: CACHE/references/<engine>-<settings hash>)")
    parser.add_argument("--out", type=Path, required=True, help="hull JSON to write")


def run(args: argparse.Namespace) -> int:
    from icrdesign.artefacts.candidates import read_candidates
    from icrdesign.artefacts.dataset import read_dataset
    from icrdesign.stability import build_reference_hull, chemical_system, write_hull

    config = load_config(args.config)
    # The cache folder is the rule's output whatever the hull needs from it (the data hull caches nothing).
    args.cache.mkdir(parents=True, exist_ok=True)
    systems = None
    if args.candidates:
        systems = set()
        for path in args.candidates:
            frame = read_candidates(path)
            formulas = frame.loc[frame["valid"] & (frame["formula"] != ""), "formula"]
            try:
                systems.update(chemical_system(formula) for formula in formulas)
            except InputError as error:
                raise InputError(f"{path}: {error}") from None
    source = config["data"]["source"]
    table = None
    if source != "materials_project":
        if args.dataset is None:
            raise InputError(f"data.source is {source}: the hull is built from the dataset table; give --dataset")
        table = read_dataset(args.dataset)
    hull = build_reference_hull(config, None if systems is None else sorted(systems), args.cache, table,
                                args.references)
    write_hull(args.out, hull)
    print(f"hull: {hull.source} -> {args.out}")
    return 0
