"""Validation funnel: MLIP relaxation (atomate2 + CHGNet) then DFT (atomate2 + custodian; GPAW or VASP).

Public API::

    select_for_relaxation(candidates) -> list[str]
    select_for_dft(candidates, dft_settings) -> list[str]
    validate_mlip(structure, relaxation_settings, out_dir, references_dir) -> (row, task_doc)
    validate_dft(structure, dft_settings, out_dir, references_dir, relax=None) -> (row, task_docs)
    dft_flow(structure, dft_settings, relax) -> (Flow, static Job)
    GpawRelaxMaker, GpawStaticMaker, GpawJob, GpawErrorHandler    (atomate2 / custodian plumbing)
    write_vasp_inputs(structure, directory)                        (INCAR, KPOINTS, POSCAR, POTCAR[.spec])
    write_validation_table(result_paths, out_path), failed_results(validation_dir)
"""

from icrdesign.validation.dft import dft_flow, dft_references, validate_dft
from icrdesign.validation.gpaw import GpawErrorHandler, GpawJob, GpawRelaxMaker, GpawStaticMaker
from icrdesign.validation.mlip import mlip_references, validate_mlip
from icrdesign.validation.results import VALIDATION_COLUMNS, failed_results, write_validation_table
from icrdesign.validation.selection import select_for_dft, select_for_relaxation
from icrdesign.validation.vasp import write_vasp_inputs

__all__ = [
    "VALIDATION_COLUMNS", "GpawErrorHandler", "GpawJob", "GpawRelaxMaker", "GpawStaticMaker", "dft_flow",
    "dft_references", "failed_results", "mlip_references", "select_for_dft", "select_for_relaxation",
    "validate_dft", "validate_mlip", "write_validation_table", "write_vasp_inputs",
]
