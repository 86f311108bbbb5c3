"""The post-relaxation funnel of one design case: relaxed -> unique -> novel -> stable -> S.U.N. -> on target.

Reads the case's candidates.csv, its MLIP chunk folders (records and last structures), the dataset
(the crystals a relaxed candidate must not match) and the reference hull; writes OUT/funnel.csv (one
row per valid candidate), OUT/funnel.json (each strategy's counts, rates and RMSD) and OUT/relaxed/<id>.cif
(every candidate's relaxed structure). See
:mod:`icrdesign.validation.funnel`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd
from pymatgen.core import Structure

from icrdesign.artefacts.candidates import read_candidates
from icrdesign.artefacts.dataset import read_dataset
from icrdesign.artefacts.validation import MLIP, MLIP_STRUCTURE_FILE, chunk_records, read_record
from icrdesign.cases import DesignCase
from icrdesign.cli.common import add_config_argument
from icrdesign.config import load_config
from icrdesign.sampling.matching import CompositionIndex
from icrdesign.stability import read_hull
from icrdesign.structure_checks import StructureRefused, read_structure
from icrdesign.io import write_text
from icrdesign.validation.funnel import RELAXED_FOLDER, funnel_summary, judge_case, write_funnel


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument("--case", required=True, help="the design case")
    parser.add_argument("--candidates", type=Path, required=True, help="the case's candidates.csv")
    parser.add_argument("--mlip-chunks", type=Path, nargs="*", default=[], metavar="DIR",
                        help="the case's MLIP chunk folders")
    parser.add_argument("--dataset", type=Path, required=True, help="the dataset table (novelty reference)")
    parser.add_argument("--hull", type=Path, required=True, help="the reference hull (icrdesign hull)")
    parser.add_argument("--out", type=Path, required=True, help="folder for funnel.csv and funnel.json")


def _structure_or_none(path: Path) -> Structure | None:
    try:
        return read_structure(path)
    except StructureRefused:
        return None


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    candidates = read_candidates(args.candidates)
    record_paths = [path for folder in args.mlip_chunks for path in chunk_records(folder, MLIP)]
    records = pd.DataFrame([read_record(path) for path in record_paths])
    structure_files = {path.parent.name: path.parent / MLIP_STRUCTURE_FILE for path in record_paths}
    relaxed = {candidate: structure for candidate, cif in structure_files.items()
               if (structure := _structure_or_none(cif)) is not None}
    # The relaxed CIFs go beside funnel.csv (named relative to it, so the results folder can move): the
    # DFT tier, the fingerprints and the report read them from there.
    relaxed_folder = args.out / RELAXED_FOLDER
    relaxed_folder.mkdir(parents=True, exist_ok=True)
    relaxed_cifs = {}
    for candidate, structure in relaxed.items():
        write_text(relaxed_folder / f"{candidate}.cif", structure.to(fmt="cif"))
        relaxed_cifs[candidate] = os.path.relpath(relaxed_folder / f"{candidate}.cif", args.out)
    decoded = {candidate: structure for candidate, cif in zip(candidates["id"], candidates["cif_path"], strict=True)
               if cif and (structure := _structure_or_none(Path(cif))) is not None}
    case = DesignCase.from_config(args.case, config["sampling"])
    hull = read_hull(args.hull)
    table = judge_case(candidates, records, relaxed, decoded, CompositionIndex.from_table(read_dataset(args.dataset)),
                       hull, case.windows.get("formation_energy_per_atom"), relaxed_cifs)
    summary = {"case": args.case, **funnel_summary(table, hull.source)}
    write_funnel(args.out, table, summary)
    for strategy, block in summary["strategies"].items():
        print(f"funnel {args.case} {strategy}: valid {block['n_valid']}, relaxed {block['n_relaxed']}, "
              f"unique {block['n_unique']}, novel {block['n_novel']}, stable {block['n_stable']}, "
              f"S.U.N. {block['n_sun']}, on target {block['n_sun_on_target']}", flush=True)
    return 0
