"""Validation benchmarks (prints JSON): CHGNet relaxations per minute, GPAW wall time per candidate versus
number of atoms, and the orchestration overhead around the DFT as a share of the DFT time.

The DFT runs use the default config's ``dft`` section (relax + symmetrise + static). Every GPAW
calculation records the seconds it spent inside GPAW (``entry.data.calc_seconds`` of its task
document), so the overhead is measured in the same run: wall time of the candidate minus the time
inside GPAW. It is reported twice: for ``validate_dft`` called in this process (atomate2/jobflow,
custodian, the worker fork) and for the ``icrdesign dft`` command a Snakemake job runs (adding the
interpreter start and imports). Elemental references are computed first (cached per element, as in
the workflow) and timed on their own.
Run: .venv/bin/python benchmarks/validation.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import yaml  # noqa: E402
from pymatgen.core import Lattice, Structure  # noqa: E402

from icrdesign.config import load_config  # noqa: E402
from icrdesign.validation import validate_dft  # noqa: E402
from icrdesign.validation.dft import dft_references  # noqa: E402
from icrdesign.validation.mlip import relax_structure  # noqa: E402


def structures() -> dict[str, Structure]:
    si = Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.47), ["Si"], [[0, 0, 0]])
    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.69), ["Na", "Cl"], [[0, 0, 0], [0.5] * 3])
    return {"Si2": si.get_primitive_structure(), "NaCl2": nacl.get_primitive_structure(), "Si8": si}


def seconds_in_gpaw(task_docs: list[dict]) -> float:
    """Seconds inside GPAW over task documents read back from JSON."""
    return float(sum(doc["entry"]["data"]["calc_seconds"] for doc in task_docs))


def chgnet_rate(work: Path) -> float:
    relaxation = {"force_field": "CHGNet", "fmax": 0.1, "steps": 300, "relax_cell": True, "store_uri": None}
    start = time.perf_counter()
    cells = list(structures().values())
    for i, structure in enumerate(cells):
        perturbed = structure.copy()
        perturbed.perturb(0.1)
        relax_structure(perturbed, relaxation, work / f"mlip{i}")
    return len(cells) / ((time.perf_counter() - start) / 60)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cli-structure", default="Si8", choices=list(structures()),
                        help="cell run through the `icrdesign dft` command")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="icrdesign-bench-"))
    config = load_config(None)
    dft = config["dft"]
    references = work / "references"

    chgnet_per_min = chgnet_rate(work)
    start = time.perf_counter()
    dft_references(["Si", "Na", "Cl"], dft, references, work / "references_work")
    reference_wall = time.perf_counter() - start

    rows = []
    for name, structure in structures().items():
        if name == args.cli_structure:
            continue
        row, docs = validate_dft(structure, dft, work / name, references)
        inside = float(sum(doc.entry.data["calc_seconds"] for doc in docs.values()))
        rows.append({"cell": name, "nsites": row["nsites"], "status": row["status"], "how": "validate_dft",
                     "wall_s": row["wall_s"], "gpaw_s": inside, "overhead_s": row["wall_s"] - inside})

    cif = work / f"{args.cli_structure}.cif"
    structures()[args.cli_structure].to(filename=str(cif))
    config_file = work / "config.yaml"
    config_file.write_text(yaml.safe_dump({"dft": dft}))
    out = work / "cli"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "icrdesign.cli", "dft", str(cif), "--config", str(config_file),
                    "--references", str(references), "--out", str(out)], check=True, capture_output=True)
    wall = time.perf_counter() - start
    docs = [json.loads(path.read_text()) for path in sorted(out.glob("dft_*_taskdoc.json"))]
    inside = seconds_in_gpaw(docs)
    status = json.loads((out / "dft.json").read_text())["status"]
    rows.append({"cell": args.cli_structure, "nsites": len(structures()[args.cli_structure]), "status": status,
                 "how": "icrdesign dft (subprocess)", "wall_s": wall, "gpaw_s": inside, "overhead_s": wall - inside})
    cli_row = rows[-1]
    print(json.dumps({
        "chgnet_relaxations_per_min": chgnet_per_min,
        "dft_settings": {k: dft["gpaw"][k] for k in ("xc", "ecut", "kpoint_density")} | {"relax": dft["relax"]},
        "reference_wall_s": {"Si+Na+Cl": reference_wall},
        "dft_wall_time_vs_nsites": rows,
        "orchestration_overhead_share": cli_row["overhead_s"] / cli_row["gpaw_s"],
        "orchestration_overhead_share_in_process": sum(r["overhead_s"] for r in rows[:-1])
        / sum(r["gpaw_s"] for r in rows[:-1]),
        "note": "overhead = wall time of the candidate minus the time inside GPAW; the headline share is the "
                "`icrdesign dft` command a Snakemake job runs; Snakemake's own job start comes on top "
                "(benchmarks/pipeline.py reports it as overhead_share)",
    }, indent=2))


if __name__ == "__main__":
    main()
