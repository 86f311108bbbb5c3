"""Tier 2: DFT through atomate2 (GPAW here, VASP on clusters): relax, symmetrise, static.

Formation energies are taken against elemental references computed with identical settings
(``references/<engine>/<El>.json``); the band gap comes from the static.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from jobflow import Flow, Job
from pymatgen.core import Structure

from icrdesign.validation.flows import job_error, recorded_failures, run_flow
from icrdesign.validation.gpaw import (GpawRelaxMaker, GpawStaticMaker, calculator_settings,
                                       symmetrize_structure)
from icrdesign.validation.references import cached_references, reference_candidates


# Tolerance (angstrom) for snapping a DFT start structure onto its near space group.
START_SYMPREC = 0.1


def gpaw_makers(dft: dict[str, Any], molecule: bool = False) -> tuple[GpawRelaxMaker, GpawStaticMaker]:
    """Relax and static makers for the config's ``dft`` section (walltime = ``dft.runtime``)."""
    gpaw = dft["gpaw"]
    common = {"calculator_kwargs": {**calculator_settings(gpaw), **({"molecule": True} if molecule else {})},
              "max_corrections": int(dft["max_corrections"]), "mpi_procs": int(gpaw["mpi_procs"]),
              "walltime_s": 60.0 * float(dft["runtime"])}
    relax = GpawRelaxMaker(steps=int(gpaw["relax_steps"]), relax_kwargs={"fmax": float(gpaw["fmax"])}, **common)
    return relax, GpawStaticMaker(**common)


def dft_flow(structure: Structure, dft: dict[str, Any], relax: bool, molecule: bool = False) -> tuple[Flow, Job]:
    """The atomate2 flow (relax -> symmetrise -> static, or static only) and its static job."""
    if dft["engine"] == "vasp":
        from icrdesign.validation.vasp import vasp_flow

        return vasp_flow(structure, relax)
    relax_maker, static_maker = gpaw_makers(dft, molecule)
    jobs: list[Job] = []
    if relax:
        # Snap the start (typically a decoded, MLIP-relaxed cell) onto the space group it nearly has:
        # GPAW keeps that symmetry while relaxing and reduces the k-points by it (a P1 cell uses all).
        start = symmetrize_structure(structure, symprec=START_SYMPREC)
        relax_job = relax_maker.make(start.output)
        symmetrized = symmetrize_structure(relax_job.output.structure)
        jobs += [start, relax_job, symmetrized]
        structure = symmetrized.output
    static_job = static_maker.make(structure)
    return Flow([*jobs, static_job], name=f"{dft['engine']} relax-static"), static_job


def engine_settings(dft: dict[str, Any]) -> dict[str, Any]:
    """The settings a reference must share with a compound to be comparable."""
    return {"engine": dft["engine"], **({k: v for k, v in dft["gpaw"].items() if k != "mpi_procs"}
                                         if dft["engine"] == "gpaw" else {})}


def _static_results(outputs: dict[str, Any], static_job: Job) -> tuple[Any, float, float]:
    """(task document, total energy, band gap) of a finished static."""
    doc = outputs[static_job.uuid]
    gap = doc.entry.data["band_gap"] if getattr(doc, "entry", None) is not None and "band_gap" in doc.entry.data \
        else doc.output.bandgap
    return doc, float(doc.output.energy), float(gap)


def _failure_reason(work_dir: Path) -> tuple[str, str]:
    failures = recorded_failures(work_dir)
    if not failures:
        return f"crashed: {job_error(work_dir) or 'a job of the flow failed without a failure record'}"[:500], ""
    last = failures[-1]
    corrections = "; ".join(f"{c['error']}->{c['changes']}" for c in last["corrections"])
    return f"{last['reason']}: {last['detail']}"[:500], corrections


def dft_references(elements: list[str], dft: dict[str, Any], cache_dir: Path, work_dir: Path,
                   store_uri: str | None = None) -> dict[str, dict[str, Any]]:
    """Elemental references with the compound's settings, cached per element.

    Solids are relaxed (cell and positions) then computed statically; molecules in a box are
    computed at their tabulated bond length; prototype elements start from the MLIP's best prototype.
    """
    def compute(element: str) -> dict[str, Any]:
        kind, starts = reference_candidates(element, float(dft["gpaw"]["molecule_box"]))
        start = starts[0]
        if kind == "prototype":
            from icrdesign.validation.mlip import mlip_references

            mlip = mlip_references([element], {"force_field": "CHGNet", "fmax": 0.1, "steps": 300,
                                               "relax_cell": True}, cache_dir.parent / "mlip",
                                   work_dir / element / "mlip_start")
            start = Structure.from_dict(mlip[element]["structure"])
        molecule = kind == "molecule"
        flow, static_job = dft_flow(start, dft, relax=bool(dft["relax"]) and not molecule, molecule=molecule)
        element_dir = work_dir / element / "dft"
        outputs = run_flow(flow, element_dir, store_uri)
        if static_job.uuid not in outputs:
            raise RuntimeError(_failure_reason(element_dir)[0])
        doc, energy, _ = _static_results(outputs, static_job)
        return {"kind": kind, "energy_per_atom": energy / len(doc.structure), "structure": doc.structure.as_dict()}

    return cached_references(elements, cache_dir, engine_settings(dft), compute)


def validate_dft(structure: Structure, dft: dict[str, Any], out_dir: Path, references_dir: Path,
                 relax: bool | None = None, store_uri: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Relax (optional) + static + formation energy for one structure.

    Returns (validation row, task documents by name). Any fault gives status 'failed' and the reason.
    """
    relax = dft["relax"] if relax is None else relax
    start = time.perf_counter()
    row: dict[str, Any] = {"formula": structure.composition.reduced_formula, "nsites": len(structure), "tier": "dft",
                           "engine": dft["engine"], "energy_per_atom": np.nan, "formation_energy_per_atom": np.nan,
                           "band_gap": np.nan, "status": "failed", "reason": "", "corrections": ""}
    task_docs: dict[str, Any] = {}
    work_dir = out_dir / "dft_work"
    try:
        if dft["engine"] == "vasp":
            from icrdesign.validation.vasp import vasp_binary_missing

            if missing := vasp_binary_missing():
                raise RuntimeError(missing)
        flow, static_job = dft_flow(structure, dft, relax)
        outputs = run_flow(flow, work_dir, store_uri)
        task_docs = {("relax" if "relax" in job.name.lower() else "static"): outputs[job.uuid]
                     for job in flow.jobs if job.uuid in outputs and "symmetri" not in job.name}
        if static_job.uuid not in outputs:
            row["reason"], row["corrections"] = _failure_reason(work_dir)
        else:
            doc, energy, gap = _static_results(outputs, static_job)
            corrections = [c for d in task_docs.values() for c in d.entry.data.get("corrections", [])] \
                if dft["engine"] == "gpaw" else []
            references = dft_references([el.symbol for el in doc.structure.composition], dft,
                                        references_dir, out_dir / "references_work", store_uri)
            reference = sum(n * references[el.symbol]["energy_per_atom"] for el, n in doc.structure.composition.items())
            row.update(energy_per_atom=energy / len(doc.structure), band_gap=gap, status="ok",
                       formation_energy_per_atom=(energy - reference) / len(doc.structure),
                       corrections="; ".join(f"{c['error']}->{c['changes']}" for c in corrections))
    except Exception as error:  # noqa: BLE001 - a failed candidate is recorded, the others go on
        row["reason"] = f"{type(error).__name__}: {error}"[:500]
    row["wall_s"] = time.perf_counter() - start
    return row, task_docs
