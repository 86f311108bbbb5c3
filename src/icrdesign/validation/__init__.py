"""Validation funnel: MLIP relaxation (atomate2 + CHGNet) then DFT (atomate2 + custodian; GPAW or VASP).

Public API::

    relaxation_ids(candidates) -> list[str]                       (every valid candidate, baselines included)
    judge_case(...) -> funnel table                                (unique, novel, stable, S.U.N.; validation.funnel)
    select_for_dft(funnel, dft_settings) -> list[str]              (S.U.N. on target first, then the baseline's)
    relax_batch(structures, relaxation) -> [RelaxOutcome]          (batched FIRE, atomate2's path)
    BatchForceFieldRelaxMaker                                      (the same as an atomate2-style Maker)
    relax_candidates(structures, relaxation, references_dir, work_dir) -> {id: MlipResult}
    run_mlip_chunk(rows, case, config, references_dir, chunk_dir)  (one chunk of a case's candidates)
    validate_dft(structure, dft, relaxation, out_dir, references_dir, mlip_references_dir, relax=None)
        -> (record, task documents by role)
    mlip_references(...), dft_references(...)                      (elemental references, cached)
    dft_flow(structure, dft, relax) -> Flow                        (its output is the static's)
    GpawRelaxStaticMaker, GpawRelaxMaker, GpawStaticMaker, GpawJob, GpawErrorHandler
                                                                   (atomate2 / custodian plumbing)
    write_vasp_inputs(structure, directory)                        (INCAR, KPOINTS, POSCAR, POTCAR[.spec])
    check_input(structure, source, tier, config, force=False)      (refusals before any calculation:
                                                                   size limit, the engine's elements)
    ValidationPlan                                                 (what the workflow's rules ask)
    failed_records(validation_dir), forget_failed(validation_dir, dry_run)   (retrying failures)
    export_flows(design_dir, config, out_dir)                      (flows as JSON for other queues)

The records and validation.csv are read and written by :mod:`icrdesign.artefacts.validation`.
"""

from icrdesign.validation.dft import dft_flow, dft_references, validate_dft
from icrdesign.validation.export import export_flows
from icrdesign.validation.gpaw import (GpawErrorHandler, GpawJob, GpawRelaxMaker, GpawRelaxStaticMaker,
                                       GpawStaticMaker)
from icrdesign.validation.inputs import check_input
from icrdesign.validation.batch_relax import relax_batch
from icrdesign.validation.chunks import relaxation_ids, run_mlip_chunk
from icrdesign.validation.mlip import BatchForceFieldRelaxMaker, mlip_references, relax_candidates
from icrdesign.validation.plan import ValidationPlan
from icrdesign.validation.retry import failed_records, forget_failed
from icrdesign.validation.funnel import judge_case
from icrdesign.validation.selection import select_for_dft
from icrdesign.validation.vasp import write_vasp_inputs

__all__ = [
    "BatchForceFieldRelaxMaker", "GpawErrorHandler", "GpawJob", "GpawRelaxMaker", "GpawRelaxStaticMaker", "GpawStaticMaker", "ValidationPlan",
    "check_input", "dft_flow", "dft_references", "export_flows", "failed_records", "forget_failed", "mlip_references",
    "judge_case", "relax_batch", "relax_candidates", "relaxation_ids", "run_mlip_chunk", "select_for_dft", "validate_dft",
    "write_vasp_inputs",
]
