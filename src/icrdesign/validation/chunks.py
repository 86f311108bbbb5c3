"""Candidates in chunks: which candidates each job of a tier takes, and one MLIP chunk's run.

Every valid candidate of a case with a CIF is relaxed, the random baselines included (the funnel
judges them the same way). They are split, in candidates.csv order, into chunks of
``relaxation.chunk_size``: one Snakemake job each, so that a job's start (imports, the model load) is
paid once per chunk. A chunk's folder keeps every record written so far; a rerun (after
``icrdesign retry-failed``) recomputes only the candidates without a record that is not failed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from pymatgen.core import Structure

from icrdesign.artefacts.validation import (DFT, MLIP, MLIP_STRUCTURE_FILE, RECORD_FILES, STATUS_OK,
                                            STATUS_UNCONVERGED, chunk_work_path, record_path, record_status,
                                            write_mlip_structure, write_record)
from icrdesign.io import write_json, write_text
from icrdesign.structure_checks import StructureRefused, read_structure
from icrdesign.validation.inputs import check_input, refused_record
from icrdesign.validation.mlip import relax_candidates


def relaxation_ids(candidates: pd.DataFrame) -> list[str]:
    """Every valid candidate with a CIF, baselines included, in table order."""
    if candidates.empty:
        return []
    return candidates.loc[candidates["valid"] & (candidates["cif"] != ""), "id"].tolist()


def split_chunks(ids: Sequence[str], size: int | None) -> list[list[str]]:
    """IDS in consecutive chunks of SIZE (None: one chunk); no chunk when there is no id."""
    if not ids:
        return []
    size = len(ids) if size is None else max(1, int(size))
    return [list(ids[start:start + size]) for start in range(0, len(ids), size)]


def mlip_chunks(candidates: pd.DataFrame, relaxation: Mapping[str, Any]) -> list[list[str]]:
    """The MLIP tier's chunks of one case's candidates."""
    return split_chunks(relaxation_ids(candidates), relaxation["chunk_size"])


def pending(chunk_folder: str | os.PathLike[str], ids: Sequence[str], tier: str) -> list[str]:
    """The ids of a chunk without a record, or with a failed or unreadable one: what a run must compute."""
    return [candidate for candidate in ids
            if not record_path(chunk_folder, candidate, tier).exists()
            or record_status(record_path(chunk_folder, candidate, tier)) not in KEPT_STATUSES[tier]]


#: The statuses a rerun keeps: an unconverged relaxation is a result (the same caps give the same end).
KEPT_STATUSES: dict[str, frozenset[str]] = {MLIP: frozenset({STATUS_OK, STATUS_UNCONVERGED}), DFT: frozenset({STATUS_OK})}


def write_chunk_index(path: str | os.PathLike[str], chunk_folder: str | os.PathLike[str], ids: Sequence[str],
                      tier: str) -> dict[str, int]:
    """The chunk's index: every candidate's status (written last: it marks the chunk done); returns the counts."""
    statuses = {candidate: record_status(record_path(chunk_folder, candidate, tier)) for candidate in ids}
    counts: dict[str, int] = {}
    for status in statuses.values():
        counts[status] = counts.get(status, 0) + 1
    write_json(path, {"tier": tier, "candidates": statuses, "counts": counts})
    return counts


def run_mlip_chunk(rows: pd.DataFrame, case: str, config: Mapping[str, Any], references_dir: Path,
                   chunk_folder: Path, force: bool = False) -> list[dict[str, Any]]:
    """Relax the chunk's candidates (ROWS of candidates.csv as ``read_candidates`` gives them) that have
    no kept record yet, and write each one's record, task document and last structure.

    A candidate the input checks refuse (unreadable, implausible, too large, an element the potential
    lacks) gets a failed record with the refusal as reason; the others relax in one batched flow.
    """
    relaxation = config["relaxation"]
    todo = set(pending(chunk_folder, rows["id"].tolist(), MLIP))
    structures, written = {}, []
    for candidate, cif in zip(rows["id"], rows["cif_path"], strict=True):
        if candidate not in todo:
            continue
        try:
            structure = read_structure(cif)
            check_input(structure, cif, MLIP, config, force=force)
        except StructureRefused as refusal:
            row = {"case": case, "candidate_id": candidate, **refused_record(refusal, MLIP, dict(config))}
            write_mlip_candidate(chunk_folder / candidate, row, None, refusal.structure, cif)
            written.append(row)
        else:
            structures[candidate] = structure
    results = relax_candidates(structures, dict(relaxation), references_dir, chunk_work_path(chunk_folder))
    for candidate, result in results.items():
        row = {"case": case, "candidate_id": candidate, **result.row}
        write_mlip_candidate(chunk_folder / candidate, row, result.task_document, result.structure, None)
        written.append(row)
    return written


def write_mlip_candidate(folder: Path, row: dict[str, Any], task_document: Any, structure: Structure | None,
                         source_cif: str | os.PathLike[str] | None) -> None:
    """A candidate's last structure and task document first, its record last (the record marks completion)."""
    structure_path = folder / MLIP_STRUCTURE_FILE
    if structure is not None:
        write_mlip_structure(structure_path, structure)
    else:
        # An unreadable input is passed on as it was, so that every later stage records the same refusal.
        write_text(structure_path, Path(source_cif).read_text(errors="replace") if source_cif else "")
    docs = {"mlip_taskdoc": task_document} if task_document is not None else {}
    write_record(folder / RECORD_FILES[MLIP], row, docs)


def run_dft_chunk(rows: pd.DataFrame, case: str, config: Mapping[str, Any], references_dir: Path,
                  mlip_references_dir: Path, chunk_folder: Path, force: bool = False) -> list[dict[str, Any]]:
    """DFT of the batch's candidates (ROWS of the case's funnel.csv as ``read_funnel`` gives them)
    that have no ok record yet, each from the structure its MLIP relaxation left; one record each.

    A candidate the input checks refuse (too large for ``dft.max_sites``, an element without a PAW
    dataset or POTCAR) gets a failed record with the refusal as reason; the others go on. The band
    gap's non-self-consistent calculations run only for a case that judges the gap (its constraints
    name ``band_gap``); elsewhere the gap recorded is the static's own (k-set 'scf').
    """
    from icrdesign.validation.dft import validate_dft
    from icrdesign.validation.funnel import RELAXED_CIF_PATH

    dft, relaxation = dict(config["dft"]), dict(config["relaxation"])
    judges_band_gap = "band_gap" in config["sampling"]["cases"][case]["constraints"]
    todo = set(pending(chunk_folder, rows["candidate_id"].tolist(), DFT))
    written = []
    for candidate, cif in zip(rows["candidate_id"], rows[RELAXED_CIF_PATH], strict=True):
        if candidate not in todo:
            continue
        folder = chunk_folder / candidate
        try:
            structure = read_structure(cif)
            check_input(structure, cif, DFT, config, force=force)
        except StructureRefused as refusal:
            result, task_docs = refused_record(refusal, DFT, dict(config)), {}
        else:
            result, task_docs = validate_dft(structure, dft, relaxation, folder, references_dir, mlip_references_dir,
                                             band_gap=judges_band_gap)
        row = {"case": case, "candidate_id": candidate, **result, "start_structure": str(cif)}
        write_record(record_path(chunk_folder, candidate, DFT), row,
                     {f"dft_{role}_taskdoc": doc for role, doc in task_docs.items()})
        written.append(row)
    return written
