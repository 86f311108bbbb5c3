"""Each selected candidate's atomate2 Flows as JSON, for users who submit flows to their own FireWorks or
jobflow-remote queue instead of running the workflow's validation rules."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jobflow import Flow

from icrdesign.artefacts.candidates import CANDIDATES_FILE, CIF_PATH_COLUMN, read_candidates
from icrdesign.artefacts.validation import DFT, MLIP
from icrdesign.errors import InputError
from icrdesign.io import write_json
from icrdesign.structure_checks import read_structure
from icrdesign.validation.dft import dft_flow
from icrdesign.validation.chunks import relaxation_ids
from icrdesign.validation.funnel import FUNNEL_TABLE, read_funnel
from icrdesign.validation.mlip import force_field_maker
from icrdesign.validation.selection import dft_limit, select_for_dft


def export_flows(design_dir: Path, config: Mapping[str, Any], out_dir: Path,
                 validation_dir: Path | None = None) -> list[Path]:
    """Write OUT_DIR/<case>/<candidate_id>.mlip.json (force-field relaxation) for every valid candidate
    (what the MLIP tier relaxes) and .dft.json (``dft.engine``, from the candidate's own cell) for every
    one the DFT tier takes from the case's post-relaxation funnel (VALIDATION_DIR/<case>/funnel.csv,
    when given and present), over every case folder under DESIGN_DIR; returns the written paths.

    Raises:
        InputError: DESIGN_DIR is not a folder, or a candidate's CIF is missing, unreadable or refused by
            :func:`~icrdesign.structure_checks.read_structure` (the message names the file and the cause).
    """
    if not design_dir.is_dir():
        raise InputError(f"{design_dir}: no such folder (the sampling results, one folder per case)")
    written = []
    for case_dir in sorted(path for path in design_dir.iterdir() if (path / CANDIDATES_FILE).exists()):
        candidates = read_candidates(case_dir / CANDIDATES_FILE)
        cif_of = dict(zip(candidates["id"], candidates[CIF_PATH_COLUMN]))
        funnel = validation_dir / case_dir.name / FUNNEL_TABLE if validation_dir is not None else None
        dft_ids = (set(select_for_dft(read_funnel(funnel), config["dft"], dft_limit(config, case_dir.name)))
                   if funnel and funnel.exists() else set())
        for candidate_id in relaxation_ids(candidates):
            structure = read_structure(cif_of[candidate_id])
            flows = {MLIP: Flow([force_field_maker(config["relaxation"]).make(structure)], name=candidate_id)}
            if candidate_id in dft_ids:
                flows[DFT] = dft_flow(structure, config["dft"], bool(config["dft"]["relax"]))
            for tier, flow in flows.items():
                path = out_dir / case_dir.name / f"{candidate_id}.{tier}.json"
                write_json(path, json.loads(flow.to_json()))
                written.append(path)
    return written
