"""``icrdesign export-flows --out DIR``: each selected candidate's atomate2 Flow as JSON.

For users who submit flows to their own FireWorks / jobflow-remote queue instead of Snakemake's:
DIR/<case>/<candidate_id>.mlip.json (force-field relaxation) and .dft.json (config dft.engine).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from jobflow import Flow
from pymatgen.core import Structure

from icrdesign.config import load_config
from icrdesign.io import write_json
from icrdesign.validation.dft import dft_flow
from icrdesign.validation.mlip import force_field_maker
from icrdesign.validation.selection import select_for_dft, select_for_relaxation


def export_flows(design_dir: Path, config: dict, out_dir: Path) -> list[Path]:
    """Write the flows of every case under DESIGN_DIR; returns the written paths."""
    import pandas as pd

    written = []
    for case_dir in sorted(path for path in design_dir.iterdir() if (path / "candidates.csv").exists()):
        candidates = pd.read_csv(case_dir / "candidates.csv")
        cif_of = dict(zip(candidates["id"].astype(str), candidates["cif"].astype(str)))
        cap = config["relaxation"]["max_candidates_per_case"]
        dft_ids = set(select_for_dft(candidates, config["dft"], cap))
        for candidate_id in select_for_relaxation(candidates, cap):
            structure = Structure.from_file(str(case_dir / cif_of[candidate_id]))
            flows = {"mlip": Flow([force_field_maker(config["relaxation"]).make(structure)], name=candidate_id)}
            if candidate_id in dft_ids:
                flows["dft"] = dft_flow(structure, config["dft"], bool(config["dft"]["relax"]))[0]
            for tier, flow in flows.items():
                path = out_dir / case_dir.name / f"{candidate_id}.{tier}.json"
                write_json(path, json.loads(flow.to_json()))
                written.append(path)
    return written


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="icrdesign export-flows", description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--design", type=Path, default=Path("results/design"), help="sampling results")
    parser.add_argument("--config", type=Path, default=None)
    args = parser.parse_args(argv)
    written = export_flows(args.design, load_config(args.config), args.out)
    print(json.dumps({"flows": len(written), "out": str(args.out)}))
    return 0
