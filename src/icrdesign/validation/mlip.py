"""Tier 1: relaxation with a machine-learned potential (CHGNet by default) through atomate2.

Every candidate of a chunk relaxes in one batched job (:class:`BatchForceFieldRelaxMaker`, see
:mod:`icrdesign.validation.batch_relax`); each still gets its own atomate2 force-field task document.
Formation energies: the relaxed energy as a Materials Project GGA(+U) entry corrected with
``MaterialsProject2020Compatibility`` (CHGNet is trained on MP energies), minus elemental
references relaxed with the same potential (cached per element). Takes the config's ``relaxation``
section: force_field, fmax, steps, relax_cell, batch_size, candidate_timeout_s, molecule_box (the gaseous
references' box) and store_uri.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from atomate2.ase.schemas import AseResult
from atomate2.forcefields import MLFF
from atomate2.forcefields.jobs import ForceFieldRelaxMaker
from atomate2.forcefields.schemas import ForceFieldTaskDocument
from jobflow import Flow, Maker, Response, job
from pydantic import BaseModel, Field
from pymatgen.core import Structure
from pymatgen.core.trajectory import Trajectory

from icrdesign.artefacts.validation import MLIP, STATUS_FAILED, STATUS_OK
from icrdesign.validation.batch_relax import RelaxOutcome, relax_batch
from icrdesign.validation.flows import job_error, run_flow
from icrdesign.validation.mp_scale import mp2020_corrected_energy
from icrdesign.validation.references import (
    cached_references,
    formation_energy_per_atom,
    molecular_references,
    reference_candidates,
)

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
            "molecule_box": float(relaxation["molecule_box"]), "molecules": molecular_references()}


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


class BatchRelaxDocument(BaseModel):
    """One structure's outcome in a batched relaxation: its status and atomate2 task document."""

    status: str = Field(description="ok, unconverged (step cap or time limit: last structure kept) or failed")
    reason: str = Field("", description="why the relaxation is unconverged or failed")
    steps: int = Field(0, description="optimiser steps taken")
    wall_s: float = Field(0.0, description="seconds from the structure's first to its last evaluation")
    task_document: ForceFieldTaskDocument | None = Field(
        None, description="atomate2's force-field task document (None when the potential failed at the start)")


def _task_document(outcome: RelaxOutcome, maker: BatchForceFieldRelaxMaker) -> ForceFieldTaskDocument | None:
    """The outcome as atomate2's ``ForceFieldRelaxMaker`` would have documented it (energies per step)."""
    frames = [frame for frame in outcome.frames if "positions" in frame]
    if not frames:
        return None
    species = [site.species_string for site in outcome.structure]
    trajectory = Trajectory(
        lattice=np.array([frame["cell"] for frame in frames]), species=species,
        coords=np.array([frame["positions"] for frame in frames]), coords_are_displacement=False,
        constant_lattice=False, frame_properties=[
            {"energy": frame["energy"], "forces": np.asarray(frame["forces"]).tolist(),
             "stress": np.asarray(frame["stress"]).tolist()} for frame in frames])
    forces = np.asarray(frames[-1]["forces"])
    result = AseResult(final_mol_or_struct=outcome.structure, final_energy=frames[-1]["energy"],
                       trajectory=trajectory, converged=outcome.status == STATUS_OK,
                       is_force_converged=bool(np.all(np.linalg.norm(forces, axis=1) < maker.fmax)),
                       energy_downhill=frames[-1]["energy"] < frames[0]["energy"], elapsed_time=outcome.wall_s)
    potential = MLFF(maker.force_field_name)
    return ForceFieldTaskDocument.from_ase_compatible_result(
        str(potential), result, maker.steps, calculator_meta=potential,
        relax_kwargs={"fmax": maker.fmax}, relax_cell=maker.relax_cell, ionic_step_data=("energy",))


@dataclass
class BatchForceFieldRelaxMaker(Maker):
    """Relax a list of structures with a potential in batches (one job, one model load).

    Each structure follows atomate2's ``ForceFieldRelaxMaker`` path (FIRE, FrechetCellFilter, the same
    fmax and step cap); the potential evaluates ``batch_size`` structures per optimiser step. A
    structure past ``candidate_timeout_s`` or ``steps`` is unconverged with its last structure.
    """

    name: str = "batched force field relax"
    force_field_name: str = "CHGNet"
    fmax: float = 0.1
    steps: int = 500
    relax_cell: bool = True
    batch_size: int = 32
    candidate_timeout_s: float = 300.0

    @classmethod
    def from_relaxation(cls, relaxation: Mapping[str, Any]) -> BatchForceFieldRelaxMaker:
        """The maker of the config's ``relaxation`` section."""
        return cls(name=f"{relaxation['force_field']} batched relax", force_field_name=relaxation["force_field"],
                   fmax=float(relaxation["fmax"]), steps=int(relaxation["steps"]),
                   relax_cell=bool(relaxation["relax_cell"]), batch_size=int(relaxation["batch_size"]),
                   candidate_timeout_s=float(relaxation["candidate_timeout_s"]))

    @job
    def make(self, structures: list[Structure]) -> Response:
        outcomes = relax_batch(structures, {
            "force_field": self.force_field_name, "fmax": self.fmax, "steps": self.steps,
            "relax_cell": self.relax_cell, "batch_size": self.batch_size,
            "candidate_timeout_s": self.candidate_timeout_s})
        return Response(output=[BatchRelaxDocument(
            status=outcome.status, reason=outcome.reason, steps=outcome.steps, wall_s=outcome.wall_s,
            task_document=_task_document(outcome, self)) for outcome in outcomes])


@dataclass(frozen=True)
class MlipResult:
    """One candidate's MLIP tier: its record row, task document and last structure."""

    row: dict[str, Any]
    task_document: ForceFieldTaskDocument | None
    structure: Structure


def mlip_row(structure: Structure, relaxation: Mapping[str, Any]) -> dict[str, Any]:
    """A record's columns before its results: formula, nsites, tier, engine, no corrections."""
    return {"formula": structure.composition.reduced_formula, "nsites": len(structure), "tier": MLIP,
            "engine": relaxation["force_field"], "corrections": "", "energy_per_atom": np.nan,
            "formation_energy_per_atom": np.nan, "band_gap": np.nan, "steps": 0}


def relax_candidates(structures: Mapping[str, Structure], relaxation: dict[str, Any], references_dir: Path,
                     work_dir: Path) -> dict[str, MlipResult]:
    """Relax every structure (keyed by candidate id) in one batched flow in WORK_DIR and compute each one's
    corrected formation energy against the potential's elemental references (cached in REFERENCES_DIR).

    A structure that fails (the potential, a reference) gets a failed row with the reason; an
    unconverged one keeps its last energy and structure, with status 'unconverged'.
    """
    ids = list(structures)
    work_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, MlipResult] = {}
    if not ids:
        return results
    relax_job = BatchForceFieldRelaxMaker.from_relaxation(relaxation).make([structures[i] for i in ids])
    outputs = run_flow(Flow([relax_job], name=f"{relaxation['force_field']} chunk"), work_dir,
                       relaxation.get("store_uri"))
    documents = outputs.get(relax_job.uuid)
    for position, candidate in enumerate(ids):
        row = mlip_row(structures[candidate], relaxation)
        if documents is None:
            row.update(status=STATUS_FAILED, reason=f"relaxation job failed: {job_error(work_dir) or 'no output'}"[:500],
                       wall_s=np.nan)
            results[candidate] = MlipResult(row, None, structures[candidate])
            continue
        document = documents[position]
        doc = document.task_document
        row.update(status=document.status, reason=document.reason, wall_s=document.wall_s, steps=document.steps)
        if doc is None:
            results[candidate] = MlipResult(row, None, structures[candidate])
            continue
        if document.status != STATUS_FAILED:
            try:
                energy = float(doc.output.energy)
                composition = doc.structure.composition
                references = mlip_references([el.symbol for el in composition], relaxation, references_dir,
                                             work_dir / "references")
                corrected = (energy if relaxation["force_field"] in PREDICTS_MP2020_CORRECTED
                             else mp2020_corrected_energy(composition, energy))
                row.update(energy_per_atom=energy / len(doc.structure),
                           formation_energy_per_atom=formation_energy_per_atom(composition, corrected, references))
            except Exception as error:  # noqa: BLE001 - a failed candidate is recorded, the others go on
                row.update(status=STATUS_FAILED, reason=f"{type(error).__name__}: {error}"[:500])
        results[candidate] = MlipResult(row, doc, doc.structure)
    return results
