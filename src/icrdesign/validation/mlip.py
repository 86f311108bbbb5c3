"""Tier 1: relaxation with a machine-learned potential (CHGNet by default) through atomate2.

Formation energies: the relaxed energy as a Materials Project GGA(+U) entry corrected with
``MaterialsProject2020Compatibility`` (CHGNet is trained on MP energies), minus elemental
references relaxed with the same potential (cached per element). Takes the config's ``relaxation``
section: force_field, fmax, steps, relax_cell, molecule_box (the gaseous references' box) and store_uri.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from atomate2.forcefields.jobs import ForceFieldRelaxMaker
from jobflow import Flow
from pymatgen.core import Composition, Structure
from pymatgen.entries.computed_entries import ComputedEntry

from icrdesign.artefacts.validation import MLIP, REFERENCES_WORK_FOLDER, STATUS_FAILED, STATUS_OK, WORK_FOLDERS
from icrdesign.validation.flows import job_error, run_flow
from icrdesign.validation.references import cached_references, formation_energy_per_atom, reference_candidates

# Potentials trained on MPtrj's MP2020-corrected energies already predict corrected energies;
# correcting again would double-count the anion corrections (NaCl: -2.41 instead of -2.10 eV/atom).
PREDICTS_MP2020_CORRECTED = frozenset({"CHGNet"})


def force_field_maker(relaxation: dict[str, Any]) -> ForceFieldRelaxMaker:
    """atomate2's force-field relaxation maker for the config's ``relaxation`` section."""
    return ForceFieldRelaxMaker(
        force_field_name=relaxation["force_field"],
        steps=int(relaxation["steps"]),
        relax_cell=bool(relaxation["relax_cell"]),
        relax_kwargs={"fmax": float(relaxation["fmax"])},
    )


def mlip_reference_settings(relaxation: dict[str, Any]) -> dict[str, Any]:
    """The settings that change an MLIP reference's energy (solids always relax their cell)."""
    return {"engine": relaxation["force_field"], "fmax": float(relaxation["fmax"]), "steps": int(relaxation["steps"]),
            "molecule_box": float(relaxation["molecule_box"])}


def mlip_references(elements: list[str], relaxation: dict[str, Any], cache_dir: Path,
                    work_dir: Path) -> dict[str, dict[str, Any]]:
    """Elemental references relaxed with the potential, cached in CACHE_DIR/<El>.json.

    Each element's starting structures relax as one jobflow Flow in WORK_DIR/<El>; the lowest
    energy per atom wins.
    """
    def compute(element: str) -> dict[str, Any]:
        kind, starts = reference_candidates(element, float(relaxation["molecule_box"]))
        # Molecules keep their box: relaxing the cell of a box would collapse it.
        maker = force_field_maker({**relaxation, "relax_cell": kind != "molecule"})
        jobs = [maker.make(start) for start in starts]
        outputs = run_flow(Flow(jobs, name=f"{element} reference"), work_dir / element,
                           relaxation.get("store_uri"))
        docs = [outputs[job.uuid] for job in jobs if job.uuid in outputs]
        if not docs:
            raise RuntimeError(f"{relaxation['force_field']} reference {element} failed: "
                               f"{job_error(work_dir / element) or 'no relaxation finished'}")
        best = min(docs, key=lambda doc: doc.output.energy / len(doc.structure))
        return {"kind": kind, "energy_per_atom": float(best.output.energy) / len(best.structure),
                "structure": best.structure.as_dict()}

    return cached_references(elements, cache_dir, mlip_reference_settings(relaxation), compute)


def _mp_hubbards(composition: Composition) -> dict[str, float]:
    """MP's U values for this composition (oxides and fluorides of 3d/4d metals), else {}."""
    from pymatgen.io.vasp.sets import MPRelaxSet

    u_table = MPRelaxSet.CONFIG["INCAR"]["LDAUU"]
    symbols = {element.symbol for element in composition}
    anion = "F" if "F" in symbols else "O" if "O" in symbols else None
    if anion is None:
        return {}
    return {symbol: float(u_table[anion][symbol]) for symbol in symbols if u_table[anion].get(symbol, 0) > 0}


def mp2020_corrected_energy(composition: Composition, energy: float) -> float:
    """Total energy with MP2020 anion and GGA/GGA+U mixing corrections applied."""
    from pymatgen.entries.compatibility import MaterialsProject2020Compatibility

    hubbards = _mp_hubbards(composition)
    entry = ComputedEntry(composition, energy, parameters={
        "run_type": "GGA+U" if hubbards else "GGA", "is_hubbard": bool(hubbards), "hubbards": hubbards})
    processed = MaterialsProject2020Compatibility(check_potcar=False).process_entry(entry)
    if processed is None:
        raise ValueError(f"MaterialsProject2020Compatibility rejected {composition.reduced_formula}")
    return float(processed.energy)


def relax_structure(structure: Structure, relaxation: dict[str, Any], work_dir: Path) -> Any:
    """Relax through a jobflow Flow with a JSON store in WORK_DIR; returns the AseStructureTaskDoc."""
    relax_job = force_field_maker(relaxation).make(structure)
    relax_job.name = f"{relaxation['force_field']} relax"
    outputs = run_flow(Flow([relax_job]), work_dir, relaxation.get("store_uri"))
    if relax_job.uuid not in outputs:
        raise RuntimeError(f"{relaxation['force_field']} relaxation failed: "
                           f"{job_error(work_dir) or 'no output'} (see {work_dir})")
    return outputs[relax_job.uuid]


def validate_mlip(structure: Structure, relaxation: dict[str, Any], out_dir: Path,
                  references_dir: Path) -> tuple[dict[str, Any], Any]:
    """Relax STRUCTURE and compute its corrected formation energy; returns (row, task document).

    Failures (the potential crashing, a reference failing) give a row with status 'failed'.
    """
    start = time.perf_counter()
    row: dict[str, Any] = {"formula": structure.composition.reduced_formula, "nsites": len(structure),
                           "tier": MLIP, "engine": relaxation["force_field"], "corrections": ""}
    task_doc = None
    # The work folder exists whatever happens (a workflow declares it), even when no flow starts.
    (out_dir / WORK_FOLDERS[MLIP]).mkdir(parents=True, exist_ok=True)
    try:
        task_doc = relax_structure(structure, relaxation, out_dir / WORK_FOLDERS[MLIP])
        energy = float(task_doc.output.energy)
        composition = task_doc.structure.composition
        references = mlip_references([el.symbol for el in composition], relaxation, references_dir,
                                     out_dir / REFERENCES_WORK_FOLDER)
        corrected = (energy if relaxation["force_field"] in PREDICTS_MP2020_CORRECTED
                     else mp2020_corrected_energy(composition, energy))
        row.update(energy_per_atom=energy / len(task_doc.structure),
                   formation_energy_per_atom=formation_energy_per_atom(composition, corrected, references),
                   band_gap=np.nan, status=STATUS_OK, reason="")
    except Exception as error:  # noqa: BLE001 - a failed candidate is recorded, the others go on
        row.update(energy_per_atom=np.nan, formation_energy_per_atom=np.nan, band_gap=np.nan,
                   status=STATUS_FAILED, reason=f"{type(error).__name__}: {error}"[:500])
    row["wall_s"] = time.perf_counter() - start
    return row, task_doc
