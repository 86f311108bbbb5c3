"""``results/validation/``: one record per candidate and tier, and the table of all of them.

Each tier computes its candidates in chunks (one Snakemake job each: the imports and the model load
are paid once per chunk). Layout under the validation folder::

    <case>/<tier>/chunk-<k>/<candidate_id>/<tier>.json   the tier's record (one row of the table)
    <case>/<tier>/chunk-<k>/<candidate_id>/mlip_structure.cif
                                                  the MLIP's last structure (relaxed, unconverged or the
                                                  input when it failed): what the funnel judges and
                                                  the DFT tier starts from
    <case>/<tier>/chunk-<k>/<candidate_id>/<name>_taskdoc.json
                                                  the atomate2 task documents behind a record
    <case>/<tier>/chunk-<k>/work/                 where the chunk's flows ran (job folders, job store)
    <case>/<tier>/chunk-<k>.json                  the chunk's index: every candidate's status; written
                                                  last, so a chunk without it is redone
    <case>/funnel.csv, funnel.json                the post-relaxation funnel (``validation.funnel``)
    hull.json                                     the reference convex hull (``icrdesign.stability``)
    references/                                   the elemental-reference caches (``validation.references``)
    validation.csv                                every record, one row each

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
#: The folder inside a chunk's folder its flows run in (missing references are computed there too).
CHUNK_WORK_FOLDER: Final[str] = "work"
WORK_FOLDERS: Final[dict[str, str]] = {MLIP: "mlip_work", DFT: "dft_work"}
REFERENCES_WORK_FOLDER: Final[str] = "references_work"
TABLE_FILE: Final[str] = "validation.csv"
#: The reference hull of the stability check, and the folder its downloads and relaxations are cached in.
HULL_FILE: Final[str] = "hull.json"
HULL_CACHE_FOLDER: Final[str] = "hull_cache"

STATUS_OK: Final[str] = "ok"
STATUS_FAILED: Final[str] = "failed"
#: A relaxation that reached its step cap or time limit: recorded with its last structure and energy.
STATUS_UNCONVERGED: Final[str] = "unconverged"
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


def chunk_name(chunk: int | str) -> str:
    """The name of chunk ``chunk`` (an int, or a ``{chunk}`` wildcard passed through)."""
    return f"chunk-{chunk:03d}" if isinstance(chunk, int) else f"chunk-{chunk}"


def chunk_dir(validation_folder: str | os.PathLike[str], case: str, tier: str, chunk: int | str) -> Path:
    """The folder of one chunk's candidates (``{case}``-style wildcards pass through)."""
    return Path(validation_folder) / case / tier / chunk_name(chunk)


def chunk_index_path(validation_folder: str | os.PathLike[str], case: str, tier: str, chunk: int | str) -> Path:
    """The chunk's index, written when every candidate of the chunk has its record."""
    return Path(validation_folder) / case / tier / f"{chunk_name(chunk)}.json"


def record_path(chunk_folder: str | os.PathLike[str], candidate_id: str, tier: str) -> Path:
    """Where the record of ``tier`` for one candidate lies inside its chunk's folder."""
    return Path(chunk_folder) / candidate_id / RECORD_FILES[tier]


def mlip_structure_path(chunk_folder: str | os.PathLike[str], candidate_id: str) -> Path:
    """Where the MLIP tier leaves a candidate's last structure, inside its chunk's folder."""
    return Path(chunk_folder) / candidate_id / MLIP_STRUCTURE_FILE


def chunk_work_path(chunk_folder: str | os.PathLike[str]) -> Path:
    """The folder a chunk's flows run in."""
    return Path(chunk_folder) / CHUNK_WORK_FOLDER


def chunk_records(chunk_folder: str | os.PathLike[str], tier: str) -> list[Path]:
    """Every record of ``tier`` in a chunk's folder, sorted."""
    return sorted(Path(chunk_folder).glob(f"*/{RECORD_FILES[tier]}"))


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
