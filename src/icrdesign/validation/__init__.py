"""Validation funnel: MLIP relaxation (atomate2 + CHGNet) then DFT (atomate2 + custodian; GPAW or VASP).

Public API::

    select_for_relaxation(candidates) -> list[str]
    select_for_dft(candidates, dft_settings) -> list[str]
    validate_mlip(structure, relaxation, out_dir, references_dir) -> (record, task_doc)
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
from icrdesign.validation.mlip import mlip_references, validate_mlip
from icrdesign.validation.plan import ValidationPlan
from icrdesign.validation.retry import failed_records, forget_failed
from icrdesign.validation.selection import select_for_dft, select_for_relaxation
from icrdesign.validation.vasp import write_vasp_inputs

__all__ = [
    "GpawErrorHandler", "GpawJob", "GpawRelaxMaker", "GpawRelaxStaticMaker", "GpawStaticMaker", "ValidationPlan",
    "check_input", "dft_flow", "dft_references", "export_flows", "failed_records", "forget_failed", "mlip_references",
    "select_for_dft", "select_for_relaxation", "validate_dft", "validate_mlip", "write_vasp_inputs",
]
