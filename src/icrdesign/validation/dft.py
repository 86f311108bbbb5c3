"""Tier 2: DFT through atomate2 (GPAW here, VASP on clusters): relax (optional), symmetrise, static.

Formation energies are on the Materials Project's scale: the static's energy with MP2020's corrections
at the U values the calculation used (:mod:`icrdesign.validation.mp_scale`), against elemental
references computed with identical settings, cached per engine and settings
(:func:`dft_reference_settings`); the band gap comes from the static. Takes
the config's ``dft`` section, and its ``relaxation`` section for what DFT shares with the MLIP tier:
the gaseous references' box, the MLIP relaxation that prototype references start from, the job store.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Final

import numpy as np
from jobflow import Flow
from pymatgen.core import Structure

from icrdesign.artefacts.validation import DFT, REFERENCES_WORK_FOLDER, STATUS_FAILED, STATUS_OK, WORK_FOLDERS
from icrdesign.validation.flows import job_error, recorded_failures, run_flow
from icrdesign.validation.gpaw import GpawRelaxMaker, GpawRelaxStaticMaker, GpawStaticMaker, calculator_settings
from icrdesign.validation.mlip import mlip_reference_settings, mlip_references
from icrdesign.validation.mp_scale import corrections_summary, mp2020_task_entry
from icrdesign.validation.references import cached_references, formation_energy_per_atom, reference_candidates

#: GPAW settings that say how a calculation is parallelised, not what it computes.
PARALLEL_SETTINGS: Final[frozenset[str]] = frozenset({"mpi_procs"})


def gpaw_maker(dft: dict[str, Any], relax: bool, molecule: bool = False, band_gap: bool = True) -> GpawRelaxStaticMaker:
    """The GPAW relax-and-static maker for the config's ``dft`` section (walltime = ``dft.runtime``);
    without ``band_gap`` the static skips the band gap's non-self-consistent calculations."""
    gpaw = dft["gpaw"]
    common = {"calculator_kwargs": {**calculator_settings(gpaw), **({"molecule": True} if molecule else {})},
              "max_corrections": int(dft["max_corrections"]), "mpi_procs": int(gpaw["mpi_procs"]),
              "walltime_s": 60.0 * float(dft["runtime"])}
    relax_maker = (GpawRelaxMaker(steps=int(gpaw["relax_steps"]), relax_kwargs={"fmax": float(gpaw["fmax"])}, **common)
                   if relax else None)
    static_maker = (GpawStaticMaker(**common) if band_gap
                    else GpawStaticMaker(band_gap_kpoint_density=None, band_gap_line_density=None, **common))
    return GpawRelaxStaticMaker(relax_maker=relax_maker, static_maker=static_maker)


def dft_flow(structure: Structure, dft: dict[str, Any], relax: bool, molecule: bool = False,
             band_gap: bool = True) -> Flow:
    """The engine's relax-and-static flow (the static alone when not ``relax``); its output is the
    static's task document (GPAW: with the band gap as MP computes it unless not ``band_gap``)."""
    if dft["engine"] == "vasp":
        from icrdesign.validation.vasp import vasp_maker

        made = vasp_maker(relax).make(structure)
        # atomate2's VASP static maker makes a Job: wrap it so that every flow's output is the static's.
        return made if isinstance(made, Flow) else Flow([made], output=made.output, name=made.name)
    return gpaw_maker(dft, relax, molecule, band_gap).make(structure)


def task_documents(flow: Flow, outputs: dict[str, Any]) -> dict[str, Any]:
    """The finished calculations' task documents by role: 'relax' ('relax_1', 'relax_2', ... when the
    flow relaxes more than once, as VASP's double relaxation does) and 'static' (the flow's output).

    The calculations are the jobs a Maker made; symmetrisation steps are plain functions.
    """
    static_uuid = flow.output.uuid
    relaxations = [outputs[job.uuid] for job, _ in flow.iterflow()
                   if job.maker is not None and job.uuid != static_uuid and job.uuid in outputs]
    names = ["relax"] if len(relaxations) == 1 else [f"relax_{number}" for number in range(1, len(relaxations) + 1)]
    docs = dict(zip(names, relaxations))
    if static_uuid in outputs:
        docs["static"] = outputs[static_uuid]
    return docs


def dft_reference_settings(dft: dict[str, Any], relaxation: dict[str, Any]) -> dict[str, Any]:
    """The settings that change a DFT reference's energy: the engine's calculation settings (not their
    parallelisation) with the MP-scale settings of its makers (initial moments, U values), whether
    references relax, the gaseous references' box, and the MLIP relaxation prototype references start from."""
    calculation = ({**{key: value for key, value in dft["gpaw"].items() if key not in PARALLEL_SETTINGS},
                    **gpaw_maker(dft, relax=False).static_maker.scale_settings()}
                   if dft["engine"] == "gpaw" else {})
    return {"engine": dft["engine"], **calculation, "relax": bool(dft["relax"]),
            "molecule_box": float(relaxation["molecule_box"]), "prototype_start": mlip_reference_settings(relaxation)}


def _band_gap(static_doc: Any) -> float:
    """The static's band gap: GPAW's from the entry data, VASP's from the task document's output."""
    entry = getattr(static_doc, "entry", None)
    return float(entry.data["band_gap"] if entry is not None and "band_gap" in entry.data
                 else static_doc.output.bandgap)


def _failure_reason(work_dir: Path) -> tuple[str, str]:
    """(reason, corrections) of a flow whose static did not finish."""
    failures = recorded_failures(work_dir)
    if not failures:
        return f"crashed: {job_error(work_dir) or 'a job of the flow failed without a failure record'}"[:500], ""
    last = failures[-1]
    corrections = "; ".join(f"{c['error']}->{c['changes']}" for c in last["corrections"])
    return f"{last['reason']}: {last['detail']}"[:500], corrections


def dft_references(elements: list[str], dft: dict[str, Any], relaxation: dict[str, Any], cache_dir: Path,
                   mlip_cache_dir: Path, work_dir: Path) -> dict[str, dict[str, Any]]:
    """Elemental references with the compound's settings, cached per element in CACHE_DIR.

    Solids are relaxed (cell and positions, with ``dft.relax``) then computed statically; molecules in
    a box are computed at their tabulated bond length; prototype elements start from the MLIP's best
    prototype, taken from (or added to) the MLIP tier's cache MLIP_CACHE_DIR.
    """
    def compute(element: str) -> dict[str, Any]:
        kind, starts = reference_candidates(element, float(relaxation["molecule_box"]))
        start = starts[0]
        if kind == "prototype":
            prototype = mlip_references([element], relaxation, mlip_cache_dir, work_dir / element / "mlip_start")
            start = Structure.from_dict(prototype[element]["structure"])
        molecule = kind == "molecule"
        # A reference's band gap is never reported: its static skips the gap's extra calculations.
        flow = dft_flow(start, dft, relax=bool(dft["relax"]) and not molecule, molecule=molecule, band_gap=False)
        element_dir = work_dir / element / "dft"
        static = task_documents(flow, run_flow(flow, element_dir, relaxation.get("store_uri"))).get("static")
        if static is None:
            raise RuntimeError(_failure_reason(element_dir)[0])
        return {"kind": kind, "energy_per_atom": float(static.output.energy) / len(static.structure),
                "structure": static.structure.as_dict()}

    return cached_references(elements, cache_dir, dft_reference_settings(dft, relaxation), compute)


def validate_dft(structure: Structure, dft: dict[str, Any], relaxation: dict[str, Any], out_dir: Path,
                 references_dir: Path, mlip_references_dir: Path,
                 relax: bool | None = None, band_gap: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """Relax (``dft.relax`` unless ``relax`` says otherwise) + static + formation energy for one structure;
    without ``band_gap`` the static skips the band gap's non-self-consistent calculations (its gap is
    then the self-consistent grid's, k-set 'scf').

    Returns (validation record, task documents by role, see :func:`task_documents`). Any fault gives
    status 'failed' and the reason.
    """
    relax = dft["relax"] if relax is None else relax
    start = time.perf_counter()
    row: dict[str, Any] = {"formula": structure.composition.reduced_formula, "nsites": len(structure), "tier": DFT,
                           "engine": dft["engine"], "energy_per_atom": np.nan, "formation_energy_per_atom": np.nan,
                           "band_gap": np.nan, "status": STATUS_FAILED, "reason": "", "corrections": ""}
    task_docs: dict[str, Any] = {}
    work_dir = out_dir / WORK_FOLDERS[DFT]
    # The work folder exists whatever happens (a workflow declares it), even when no flow starts.
    work_dir.mkdir(parents=True, exist_ok=True)
    try:
        if dft["engine"] == "vasp":
            from icrdesign.validation.vasp import vasp_binary_missing

            if missing := vasp_binary_missing():
                raise RuntimeError(missing)
        flow = dft_flow(structure, dft, relax, band_gap=band_gap)
        task_docs = task_documents(flow, run_flow(flow, work_dir, relaxation.get("store_uri")))
        static = task_docs.get("static")
        if static is None:
            row["reason"], row["corrections"] = _failure_reason(work_dir)
        else:
            energy = float(static.output.energy)
            composition = static.structure.composition
            corrections = ([c for doc in task_docs.values() for c in doc.entry.data.get("corrections", [])]
                           if dft["engine"] == "gpaw" else [])
            corrected = mp2020_task_entry(static, dft["engine"])
            references = dft_references([el.symbol for el in composition], dft, relaxation, references_dir,
                                        mlip_references_dir, out_dir / REFERENCES_WORK_FOLDER)
            row.update(energy_per_atom=energy / len(static.structure), band_gap=_band_gap(static), status=STATUS_OK,
                       formation_energy_per_atom=formation_energy_per_atom(composition, corrected.energy, references),
                       corrections="; ".join([*filter(None, [corrections_summary(corrected)]),
                                              *(f"{c['error']}->{c['changes']}" for c in corrections)]),
                       band_gap_kset=static.entry.data.get("band_gap_kset", "") if static.entry else "")
    except Exception as error:  # noqa: BLE001 - a failed candidate is recorded, the others go on
        row["reason"] = f"{type(error).__name__}: {error}"[:500]
    row["wall_s"] = time.perf_counter() - start
    return row, task_docs
