"""MLIP tier throughput (prints JSON): the relax stage as the workflow runs it against one job per candidate,
batched against per-structure relaxation in one process, and agreement with atomate2.

- ``pipeline_relaxations_per_min``: every candidate through ``icrdesign relax --candidates ... --chunk K``,
  one process per ``relaxation.chunk_size`` candidates, process starts and model loads included.
- ``per_candidate_job_relaxations_per_min``: the former design, one ``icrdesign relax CIF`` process per
  candidate (measured on ``--per-candidate-sample`` of them).
- ``speedup``: their ratio.
- ``batched_relaxations_per_min`` / ``per_structure_relaxations_per_min`` / ``batch_speedup``: in one
  process, ``relax_batch`` at ``relaxation.batch_size`` against one structure at a time.
- ``energy_agreement_share``: final energies within 5 meV/atom of atomate2's per-structure
  ``ForceFieldRelaxMaker`` at the same fmax and step cap.

The candidates are the valid candidates of ``--candidates`` tables (a demo run's design/<case>/
candidates.csv), or, without them, ``--n`` rattled and strained demo-like crystals.
Run: .venv/bin/python benchmarks/validation.py --mlip-only [--candidates results/design/*/candidates.csv]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pymatgen.core import Lattice, Structure

from icrdesign.artefacts.candidates import read_candidates
from icrdesign.config import load_config
from icrdesign.validation.batch_relax import relax_batch
from icrdesign.validation.chunks import relaxation_ids, split_chunks

#: Final energies closer than this (eV/atom) to atomate2's count as agreeing.
AGREEMENT_EV_PER_ATOM = 0.005

_PROTOTYPES = (("Fm-3m", [[0, 0, 0], [0.5, 0.5, 0.5]]), ("Pm-3m", [[0, 0, 0], [0.5, 0.5, 0.5]]),
               ("F-43m", [[0, 0, 0], [0.25, 0.25, 0.25]]))
_PAIRS = (("Na", "Cl", 5.6), ("K", "Br", 6.6), ("Mg", "O", 4.2), ("Li", "F", 4.0), ("Ca", "S", 5.7),
          ("Zn", "S", 5.4), ("Ga", "As", 5.65), ("Cs", "Cl", 4.1), ("Ag", "Cl", 5.5), ("Sr", "O", 5.2),
          ("Ba", "Se", 6.6), ("Rb", "I", 7.3))


def synthetic_candidates(n: int, seed: int = 0) -> list[Structure]:
    """N rattled, strained binary crystals of demo-like prototypes (each its own geometry)."""
    rng = np.random.default_rng(seed)
    structures = []
    for i in range(n):
        group, coords = _PROTOTYPES[i % len(_PROTOTYPES)]
        cation, anion, a = _PAIRS[(i // len(_PROTOTYPES)) % len(_PAIRS)]
        scale = a if group != "Pm-3m" else a * 0.72
        structure = Structure.from_spacegroup(group, Lattice.cubic(scale), [cation, anion], coords)
        structure = structure.get_primitive_structure()
        structure.perturb(0.15, min_distance=0.05)
        structure.apply_strain(rng.uniform(-0.06, 0.06, 3))
        structures.append(structure)
    return structures


def load_candidates(tables: list[Path], limit: int) -> list[Structure]:
    """The valid candidates of the tables (every case and strategy), up to LIMIT."""
    structures = []
    for table in tables:
        candidates = read_candidates(table)
        paths = candidates.set_index("id").loc[relaxation_ids(candidates), "cif_path"]
        structures += [Structure.from_file(path) for path in paths]
    return structures[:limit]


def write_candidate_table(structures: list[Structure], folder: Path) -> Path:
    """A candidates.csv holding STRUCTURES, as the sampling stage writes one."""
    (folder / "cifs").mkdir(parents=True)
    rows = []
    for i, structure in enumerate(structures):
        (folder / "cifs" / f"c{i:04d}.cif").write_text(structure.to(fmt="cif"))
        rows.append({"id": f"c{i:04d}", "case": "bench", "strategy": "local_perturbation", "baseline": False,
                     "seed": "", "sigma": 0.0, "formula": structure.composition.reduced_formula, "spacegroup": "",
                     "nsites": len(structure), "valid_structure": True, "valid_composition": True, "valid": True,
                     "unique": True, "novel": True, "surrogate_success": False, "cif": f"cifs/c{i:04d}.cif"})
    pd.DataFrame(rows).to_csv(folder / "candidates.csv", index=False)
    return folder / "candidates.csv"


def _command(config_file: Path, references: Path) -> list[str]:
    return [sys.executable, "-m", "icrdesign.cli", "relax", "--config", str(config_file), "--references",
            str(references), "--threads", "1"]


def pipeline_rate(table: Path, n: int, config: dict[str, Any], config_file: Path, work: Path) -> float:
    """Relaxations per minute through the chunk command, one process per chunk, as the workflow runs it."""
    references = work / "pipeline_refs"
    chunks = split_chunks([str(i) for i in range(n)], config["relaxation"]["chunk_size"])
    start = time.perf_counter()
    for k in range(len(chunks)):
        subprocess.run([*_command(config_file, references), "--candidates", str(table), "--chunk", str(k),
                        "--case", "bench", "--out", str(work / f"chunk-{k}"), "--index",
                        str(work / f"chunk-{k}.json")], check=True, capture_output=True)
    return n / ((time.perf_counter() - start) / 60)


def per_candidate_rate(table: Path, sample: int, config_file: Path, work: Path) -> float:
    """Relaxations per minute with one ``icrdesign relax CIF`` process per candidate (the former design)."""
    references = work / "per_candidate_refs"
    cifs = sorted((table.parent / "cifs").glob("*.cif"))[:sample]
    start = time.perf_counter()
    for cif in cifs:
        subprocess.run([*_command(config_file, references), str(cif), "--out", str(work / "single" / cif.stem)],
                       check=True, capture_output=True)
    return len(cifs) / ((time.perf_counter() - start) / 60)


def atomate2_energies(structures: list[Structure], relaxation: dict[str, Any], work: Path) -> list[float]:
    """Final energies per atom of atomate2's ForceFieldRelaxMaker, one structure at a time."""
    import os

    from jobflow import run_locally

    from icrdesign.validation.mlip import force_field_maker

    maker = force_field_maker(relaxation)
    energies = []
    os.chdir(work)  # atomate2 writes final_atoms_object.xyz into the working folder
    for structure in structures:
        responses = run_locally(maker.make(structure), log=False, ensure_success=True)
        doc = next(iter(responses.values()))[1].output
        energies.append(float(doc.output.energy) / len(doc.structure))
    return energies


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=Path, nargs="*", default=[], help="candidates.csv tables")
    parser.add_argument("--n", type=int, default=64, help="candidates measured (at least 64 for the issue's figure)")
    parser.add_argument("--per-candidate-sample", type=int, default=16,
                        help="candidates run as one process each (the slow former design)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    config = load_config(None)
    relaxation = config["relaxation"]
    structures = load_candidates(args.candidates, args.n) if args.candidates else synthetic_candidates(args.n)
    work = Path(tempfile.mkdtemp(prefix="icrdesign-mlip-bench-"))
    config_file = work / "config.json"
    config_file.write_text(json.dumps(config))
    table = write_candidate_table(structures, work / "design")

    start = time.perf_counter()
    batched = relax_batch(structures, relaxation, progress=False)
    batched_rate = len(structures) / ((time.perf_counter() - start) / 60)
    start = time.perf_counter()
    single = relax_batch(structures, {**relaxation, "batch_size": 1}, progress=False)
    single_rate = len(structures) / ((time.perf_counter() - start) / 60)
    reference = atomate2_energies(structures, relaxation, work)
    ours = [outcome.energy / len(outcome.structure) for outcome in batched]
    agree = [abs(a - b) <= AGREEMENT_EV_PER_ATOM for a, b in zip(ours, reference, strict=True)]
    pipeline = pipeline_rate(table, len(structures), config, config_file, work)
    per_candidate = per_candidate_rate(table, args.per_candidate_sample, config_file, work)
    print(json.dumps({
        "n_candidates": len(structures),
        "source": [str(path) for path in args.candidates] or "synthetic rattled demo-like crystals",
        "relaxation": {key: relaxation[key] for key in ("force_field", "fmax", "steps", "chunk_size", "batch_size")},
        "pipeline_relaxations_per_min": pipeline,
        "per_candidate_job_relaxations_per_min": per_candidate,
        "speedup": pipeline / per_candidate,
        "batched_relaxations_per_min": batched_rate,
        "per_structure_relaxations_per_min": single_rate,
        "batch_speedup": batched_rate / single_rate,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "energy_agreement_share": float(np.mean(agree)),
        "max_energy_difference_ev_per_atom": float(np.max(np.abs(np.array(ours) - np.array(reference)))),
        "statuses": pd.Series([outcome.status for outcome in batched]).value_counts().to_dict(),
        "steps_median": float(np.median([outcome.steps for outcome in batched])),
        "single_statuses_agree": all(a.status == b.status for a, b in zip(batched, single, strict=True)),
    }, indent=2))


if __name__ == "__main__":
    main()
