"""``results/validation/``: one record per candidate and tier, and the table of all of them.

Layout under the validation folder::

    <case>/<candidate_id>/mlip.json            the MLIP tier's record (one row of the table)
    <case>/<candidate_id>/mlip_structure.cif   the structure the DFT tier starts from
    <case>/<candidate_id>/dft.json             the DFT tier's record
    <case>/<candidate_id>/<name>_taskdoc.json  the atomate2 task documents behind a record
    <case>/<candidate_id>/mlip_work/           where each tier's flow ran (job folders, job store);
    <case>/<candidate_id>/dft_work/            failure records are looked for there
    <case>/<candidate_id>/references_work/     where a missing elemental reference was computed
    references/                                the elemental-reference caches (``validation.references``)
    validation.csv                             every record, one row each

A record is a JSON object with at least :data:`VALIDATION_COLUMNS`; ``status`` is :data:`STATUS_OK` or
:data:`STATUS_FAILED` (then ``reason`` says why). A failed calculation is a result, not an error: it
is recorded so that the workflow goes on and the report counts it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import pandas as pd
from monty.json import jsanitize
from pymatgen.core import Structure

from icrdesign.artefacts.tables import read_table, write_table
from icrdesign.errors import InputError
from icrdesign.io import read_json, write_json, write_text

#: The two validation tiers: a machine-learned-potential relaxation, then DFT.
MLIP: Final[str] = "mlip"
DFT: Final[str] = "dft"
TIERS: Final[tuple[str, ...]] = (MLIP, DFT)

#: Folder of the validation results inside the results folder.
VALIDATION_FOLDER: Final[str] = "validation"
#: The record file of each tier inside a candidate's folder.
RECORD_FILES: Final[dict[str, str]] = {MLIP: "mlip.json", DFT: "dft.json"}
#: The structure the MLIP tier ends with (relaxed, or the input when the relaxation failed).
MLIP_STRUCTURE_FILE: Final[str] = "mlip_structure.cif"
#: The folder each tier's flow runs in, and the one a candidate computes missing references in.
WORK_FOLDERS: Final[dict[str, str]] = {MLIP: "mlip_work", DFT: "dft_work"}
REFERENCES_WORK_FOLDER: Final[str] = "references_work"
TABLE_FILE: Final[str] = "validation.csv"

STATUS_OK: Final[str] = "ok"
STATUS_FAILED: Final[str] = "failed"
#: The status :func:`record_status` gives a record that cannot be read (a corrupt file counts as failed).
STATUS_UNREADABLE: Final[str] = "unreadable"

#: The columns of every record and of validation.csv, in this order (a record may add its own after
#: them, e.g. the DFT tier's ``start_structure``).
VALIDATION_COLUMNS: Final[tuple[str, ...]] = (
    "case", "candidate_id", "formula", "nsites", "tier", "engine", "energy_per_atom",
    "formation_energy_per_atom", "band_gap", "status", "reason", "corrections", "wall_s",
)
#: Text columns; a missing value reads as the empty string.
TEXT_COLUMNS: Final[tuple[str, ...]] = ("case", "candidate_id", "formula", "tier", "engine", "status", "reason",
                                        "corrections")
#: Numeric columns; a quantity a failed calculation did not produce is NaN (null in a record).
NUMERIC_DTYPES: Final[dict[str, str]] = {
    "nsites": "int64", "energy_per_atom": "float64", "formation_energy_per_atom": "float64",
    "band_gap": "float64", "wall_s": "float64",
}


def validation_dir(results_dir: str | os.PathLike[str]) -> Path:
    """The validation folder inside the results folder."""
    return Path(results_dir) / VALIDATION_FOLDER


def candidate_dir(validation_folder: str | os.PathLike[str], case: str, candidate_id: str) -> Path:
    """The folder of one candidate's records, structures and task documents."""
    return Path(validation_folder) / case / candidate_id


def record_path(validation_folder: str | os.PathLike[str], case: str, candidate_id: str, tier: str) -> Path:
    """Where the record of ``tier`` for one candidate lies (``{case}``-style wildcards pass through)."""
    return candidate_dir(validation_folder, case, candidate_id) / RECORD_FILES[tier]


def mlip_structure_path(validation_folder: str | os.PathLike[str], case: str, candidate_id: str) -> Path:
    """Where the MLIP tier leaves the structure the DFT tier starts from."""
    return candidate_dir(validation_folder, case, candidate_id) / MLIP_STRUCTURE_FILE


def work_path(validation_folder: str | os.PathLike[str], case: str, candidate_id: str, tier: str) -> Path:
    """The folder the flow of ``tier`` runs in for one candidate."""
    return candidate_dir(validation_folder, case, candidate_id) / WORK_FOLDERS[tier]


def write_record(path: str | os.PathLike[str], record: Mapping[str, Any], task_docs: Mapping[str, Any]) -> None:
    """Write the task documents beside ``path`` first, the record last (the record marks completion).

    ``task_docs`` maps a file stem (``dft_static_taskdoc``) to an atomate2 task document; NaN in the
    record is written as null.
    """
    path = Path(path)
    for stem, doc in task_docs.items():
        write_json(path.parent / f"{stem}.json", jsanitize(doc, strict=True, allow_bson=False, enum_values=True))
    write_json(path, {key: None if isinstance(value, float) and math.isnan(value) else value
                      for key, value in record.items()})


def write_mlip_structure(path: str | os.PathLike[str], structure: Structure) -> None:
    """Write the structure the DFT tier starts from, as CIF."""
    write_text(path, structure.to(fmt="cif"))


def read_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """One record as written by :func:`write_record`; a missing or corrupt file raises InputError naming it."""
    try:
        record = read_json(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not a JSON record ({error})") from None
    if not isinstance(record, dict):
        raise InputError(f"{path}: not a JSON record (a {type(record).__name__}, not an object)")
    return record


def record_status(path: str | os.PathLike[str]) -> str:
    """The ``status`` a record (or an elemental-reference record) holds; :data:`STATUS_UNREADABLE` for a
    corrupt or vanished file."""
    try:
        return str(read_json(path).get("status"))
    except (json.JSONDecodeError, OSError, AttributeError):
        return STATUS_UNREADABLE


def validation_table(record_paths: Iterable[str | os.PathLike[str]]) -> pd.DataFrame:
    """The records as one table: :data:`VALIDATION_COLUMNS` first, a record's extra keys after them."""
    table = pd.DataFrame([read_record(path) for path in record_paths])
    for column in VALIDATION_COLUMNS:
        if column not in table:
            table[column] = pd.Series(dtype=object)
    extra = [column for column in table.columns if column not in VALIDATION_COLUMNS]
    return table[[*VALIDATION_COLUMNS, *extra]]


def write_validation_table(path: str | os.PathLike[str], table: pd.DataFrame) -> None:
    """Write validation.csv atomically, :data:`VALIDATION_COLUMNS` first."""
    write_table(path, table, VALIDATION_COLUMNS)


def read_validation_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """validation.csv, typed: text as ``str`` (missing as ``""``), quantities as float (NaN where a
    failed calculation produced none), ``nsites`` as int.

    Raises:
        InputError: the file is missing or unreadable, or lacks one of :data:`VALIDATION_COLUMNS`.
    """
    table = read_table(path, VALIDATION_COLUMNS, NUMERIC_DTYPES)
    for column in TEXT_COLUMNS:
        table[column] = table[column].astype("string").fillna("").astype(str)
    return table
