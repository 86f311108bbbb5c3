"""Validation benchmarks (prints JSON): CHGNet relaxations per minute, GPAW wall time per candidate versus
number of atoms, and the orchestration overhead around the DFT as a share of the DFT time.

The DFT runs use the default config's ``dft`` section (a static on the given cell; relax +
symmetrise + static with ``dft.relax: true``). Every GPAW
calculation records the seconds it spent inside GPAW (``entry.data.calc_seconds`` of its task
document), so the overhead is measured in the same run: wall time of the candidate minus the time
inside GPAW. The same cell runs three ways, each wrapping the one before: ``validate_dft`` in this
process (atomate2/jobflow, custodian, the worker fork), the ``icrdesign dft`` command (adding the
interpreter start and the imports), and a one-job Snakemake workflow running that command (adding
Snakemake's job start); the JSON splits the overhead into those layers. Elemental references are
computed first (cached per element, as in the workflow) and timed on their own.
Run: .venv/bin/python benchmarks/validation.py
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import yaml  # noqa: E402
from pymatgen.core import Lattice, Structure  # noqa: E402

from icrdesign.artefacts.validation import DFT, RECORD_FILES, read_record  # noqa: E402
from icrdesign.cli.validation_common import results_only_on_stdout  # noqa: E402
from icrdesign.config import load_config  # noqa: E402
from icrdesign.validation import validate_dft  # noqa: E402
from icrdesign.validation.dft import dft_references  # noqa: E402
from icrdesign.validation.batch_relax import relax_batch  # noqa: E402


def structures() -> dict[str, Structure]:
    si = Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.47), ["Si"], [[0, 0, 0]])
    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.69), ["Na", "Cl"], [[0, 0, 0], [0.5] * 3])
    return {"Si2": si.get_primitive_structure(), "NaCl2": nacl.get_primitive_structure(), "Si8": si}


def command_outcome(out: Path) -> tuple[float, str]:
    """Seconds inside GPAW (over the task documents) and the status an ``icrdesign dft --out OUT`` run wrote."""
    docs = [json.loads(path.read_text()) for path in sorted(out.glob("dft_*_taskdoc.json"))]
    return (float(sum(doc["entry"]["data"]["calc_seconds"] for doc in docs)),
            read_record(out / RECORD_FILES[DFT])["status"])


def chgnet_rate(relaxation: dict[str, Any]) -> float:
    """CHGNet relaxations per minute of slightly perturbed cells, with the config's relaxation settings."""
    start = time.perf_counter()
    cells = [structure.copy() for structure in structures().values()]
    for cell in cells:
        cell.perturb(0.1)
    relax_batch(cells, relaxation, progress=False)
    return len(cells) / ((time.perf_counter() - start) / 60)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cli-structure", default="Si8", choices=list(structures()),
                        help="cell also run as the `icrdesign dft` command and as a Snakemake job")
    parser.add_argument("--mlip-only", action="store_true",
                        help="instead: the MLIP tier's throughput, no DFT (benchmarks/mlip_throughput.py; "
                             "arguments this script does not know go to it)")
    parser.add_argument("--experiment", action="store_true",
                        help="instead: DFT formation energies against experiment (benchmarks/experiment.py; "
                             "arguments this script does not know go to it)")
    parser.add_argument("--orchestration", action="store_true",
                        help="instead: the DFT jobs' share of time outside GPAW, grouped demo statics and one "
                             "production-size job (benchmarks/dft_orchestration.py; arguments this script "
                             "does not know go to it)")
    args, rest = parser.parse_known_args(argv)
    if args.orchestration:
        import dft_orchestration  # benchmarks/dft_orchestration.py, beside this script

        dft_orchestration.main(rest)
        return
    if args.mlip_only:
        import mlip_throughput  # benchmarks/mlip_throughput.py, beside this script

        mlip_throughput.main(rest)
        return
    if args.experiment:
        import experiment  # benchmarks/experiment.py, beside this script

        experiment.main(rest)
        return
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    work = Path(tempfile.mkdtemp(prefix="icrdesign-bench-"))
    config = load_config(None)
    dft, relaxation = config["dft"], config["relaxation"]
    references, mlip_references = work / "references", work / "mlip_references"

    # CHGNet prints its banner on stdout: keep stdout for the JSON.
    with results_only_on_stdout():
        chgnet_per_min = chgnet_rate(relaxation)
        start = time.perf_counter()
        dft_references(["Si", "Na", "Cl"], dft, relaxation, references, mlip_references, work / "references_work")
        reference_wall = time.perf_counter() - start

        rows = []
        for name, structure in structures().items():
            row, docs = validate_dft(structure, dft, relaxation, work / name, references, mlip_references)
            inside = float(sum(doc.entry.data["calc_seconds"] for doc in docs.values()))
            rows.append({"cell": name, "nsites": row["nsites"], "status": row["status"], "how": "validate_dft",
                         "wall_s": row["wall_s"], "gpaw_s": inside, "overhead_s": row["wall_s"] - inside})
        in_process = next(row for row in rows if row["cell"] == args.cli_structure)

        # The same cell as the `icrdesign dft` command and as a Snakemake job running that command; each
        # layer's overhead is the difference to the one inside it.
        cell = structures()[args.cli_structure]
        cif = work / f"{args.cli_structure}.cif"
        cell.to(filename=str(cif))
        config_file = work / "config.yaml"
        config_file.write_text(yaml.safe_dump({"dft": dft}))
        command = [sys.executable, "-m", "icrdesign.cli", "dft", str(cif), "--config", str(config_file),
                   "--references", str(references), "--mlip-references", str(mlip_references)]
        start = time.perf_counter()
        subprocess.run([*command, "--out", str(work / "cli")], check=True, capture_output=True)
        wall = time.perf_counter() - start
        inside, status = command_outcome(work / "cli")
        rows.append({"cell": args.cli_structure, "nsites": len(cell), "status": status,
                     "how": "icrdesign dft (subprocess)", "wall_s": wall, "gpaw_s": inside, "overhead_s": wall - inside})
        snakemake = snakemake_job(work, [*command, "--out", str(work / "snakemake")])
        inside, status = command_outcome(work / "snakemake")
        rows.append({"cell": args.cli_structure, "nsites": len(cell), "status": status, "how": "Snakemake job",
                     "wall_s": snakemake["job_s"], "gpaw_s": inside, "overhead_s": snakemake["job_s"] - inside,
                     "snakemake_wall_s": snakemake["wall_s"]})
        command_row, job_row = rows[-2:]
    print(json.dumps({
        "chgnet_relaxations_per_min": chgnet_per_min,
        "dft_settings": {k: dft["gpaw"][k] for k in ("xc", "ecut", "kpoint_density")} | {"relax": dft["relax"]},
        "reference_wall_s": {"Si+Na+Cl": reference_wall},
        "dft_wall_time_vs_nsites": rows,
        "overhead_shares": {
            # jobflow + atomate2 + custodian around GPAW, in one process
            "jobflow_atomate2_in_process": in_process["overhead_s"] / in_process["gpaw_s"],
            # plus a fresh interpreter importing atomate2 (what every job process pays)
            "icrdesign_dft_command": command_row["overhead_s"] / command_row["gpaw_s"],
            # plus Snakemake's job start and bookkeeping (the job's time as its benchmark file records it)
            "snakemake_job": job_row["overhead_s"] / job_row["gpaw_s"],
        },
        "overhead_seconds": {
            "jobflow_atomate2_in_process": in_process["overhead_s"],
            "process_start_and_imports": command_row["wall_s"] - command_row["gpaw_s"] - in_process["overhead_s"],
            "snakemake_job_start": job_row["wall_s"] - job_row["gpaw_s"] - command_row["overhead_s"],
            "snakemake_whole_run": snakemake["wall_s"] - job_row["wall_s"],
        },
        "note": "overhead = wall time minus the time inside GPAW, for the same cell run in this process, as the "
                "`icrdesign dft` command, and as a one-job Snakemake workflow running that command; "
                "snakemake_whole_run is Snakemake's own start, DAG and exit around its only job",
    }, indent=2))


def snakemake_job(work: Path, command: list[str]) -> dict[str, float]:
    """Run ``command`` as the only job of a Snakemake workflow; its wall time and the job's own time."""
    directory = work / "snakemake_run"
    directory.mkdir()
    (directory / "Snakefile").write_text(
        "rule dft:\n"
        "    output: 'done.txt'\n"
        "    benchmark: 'job.tsv'\n"
        f"    shell: {' '.join(shlex.quote(part) for part in command)!r} + ' && touch {{output}}'\n"
    )
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "--quiet", "all"], cwd=directory,
                   check=True, capture_output=True)
    wall = time.perf_counter() - start
    with open(directory / "job.tsv") as handle:
        header, values = handle.readline().split("\t"), handle.readline().split("\t")
    return {"wall_s": wall, "job_s": float(values[header.index("s")])}


if __name__ == "__main__":
    main()
