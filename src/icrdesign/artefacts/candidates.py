"""``results/design/<case>/candidates.csv`` and its CIFs: one row per decoded candidate of a design case.

The fixed columns are the same for every run; between ``nsites`` and the flags come the property
columns, which depend on the trained model (see :func:`property_columns`). The ``cif`` column holds
the CIF's path relative to the folder of ``candidates.csv`` (empty when the candidate has none);
:func:`read_candidates` adds ``cif_path``, the absolute path, so no reader guesses where a CIF lies.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import pandas as pd

from icrdesign.artefacts.tables import read_table, write_table
from icrdesign.errors import InputError

#: File name of the table inside a case folder, and the folder (beside it) that holds the CIFs.
CANDIDATES_FILE: Final[str] = "candidates.csv"
CIF_FOLDER: Final[str] = "cifs"

#: Properties the surrogate predicts; candidates.csv always carries their ``vae_`` and ``surrogate_`` columns.
SURROGATE_PROPERTIES: Final[tuple[str, ...]] = ("formation_energy_per_atom", "band_gap")

#: Columns before the property columns, in file order.
HEAD_COLUMNS: Final[tuple[str, ...]] = (
    "id", "case", "strategy", "baseline", "seed", "sigma", "formula", "spacegroup", "nsites",
)
#: The funnel's flags, in file order: each is True or False for every row.
FLAG_COLUMNS: Final[tuple[str, ...]] = (
    "valid_structure", "valid_composition", "valid", "unique", "novel", "surrogate_success",
)
#: Every fixed column of candidates.csv, in file order (the property columns sit between head and flags).
CANDIDATE_COLUMNS: Final[tuple[str, ...]] = (*HEAD_COLUMNS, *FLAG_COLUMNS, "cif")
#: Boolean columns: ``baseline`` (the strategy is a random baseline) and the funnel's flags.
BOOLEAN_COLUMNS: Final[tuple[str, ...]] = ("baseline", *FLAG_COLUMNS)
#: Text columns; a missing value reads as the empty string.
TEXT_COLUMNS: Final[tuple[str, ...]] = ("id", "case", "strategy", "seed", "formula", "spacegroup", "cif")
#: The derived column :func:`read_candidates` adds (never written).
CIF_PATH_COLUMN: Final[str] = "cif_path"

_PROPERTY_PREFIXES: Final[tuple[str, ...]] = ("vae_", "surrogate_")


def property_columns(property_names: Sequence[str]) -> list[str]:
    """The property columns for a model trained on ``property_names``, in file order.

    A ``vae_`` column (the property branch's prediction) for each surrogate property and each trained
    property, then a ``surrogate_`` column for each surrogate property.
    """
    vae = [f"vae_{prop}" for prop in dict.fromkeys([*SURROGATE_PROPERTIES, *property_names])]
    return [*vae, *(f"surrogate_{prop}" for prop in SURROGATE_PROPERTIES)]


def candidate_columns(property_names: Sequence[str]) -> list[str]:
    """All columns of candidates.csv for a model trained on ``property_names``, in file order."""
    return [*HEAD_COLUMNS, *property_columns(property_names), *FLAG_COLUMNS, "cif"]


def cif_relative_path(candidate_id: str) -> str:
    """The ``cif`` cell of a candidate whose CIF is written: relative to the folder of candidates.csv."""
    return f"{CIF_FOLDER}/{candidate_id}.cif"


def _is_property_column(column: str) -> bool:
    # surrogate_success shares the prefix but is a fixed flag
    return column.startswith(_PROPERTY_PREFIXES) and column not in CANDIDATE_COLUMNS


def write_candidates(path: str | os.PathLike[str], frame: pd.DataFrame) -> None:
    """Write ``frame`` atomically as candidates.csv: head, property, flag columns, ``cif``, then extras.

    The derived ``cif_path`` column of :func:`read_candidates` is not written, so a table read and
    written again stays the same file.

    Raises:
        InputError: a fixed column is missing from ``frame``.
    """
    frame = frame.drop(columns=[CIF_PATH_COLUMN], errors="ignore")
    properties = [column for column in frame.columns if _is_property_column(column)]
    ordered = [*HEAD_COLUMNS, *properties, *FLAG_COLUMNS, "cif"]
    write_table(path, frame, ordered)


def read_candidates(path: str | os.PathLike[str]) -> pd.DataFrame:
    """candidates.csv, typed: text as ``str`` (missing as ``""``), flags as bool, properties as float.

    Adds ``cif_path``: the absolute path of each row's CIF, resolved against the folder of ``path``
    (``""`` where the row has no CIF).

    Raises:
        InputError: the file is missing or unreadable, lacks a fixed column, or a flag is not a boolean.
    """
    path = Path(path)
    dtypes = {"sigma": "float64", "nsites": "int64"}
    frame = read_table(path, CANDIDATE_COLUMNS, dtypes, booleans=BOOLEAN_COLUMNS)
    for column in TEXT_COLUMNS:
        frame[column] = frame[column].astype("string").fillna("").astype(str)
    for column in [column for column in frame.columns if _is_property_column(column)]:
        try:
            frame[column] = pd.to_numeric(frame[column]).astype("float64")
        except ValueError as error:
            raise InputError(f"{path}: column {column!r}: {error}") from None
    folder = path.parent.resolve()
    frame[CIF_PATH_COLUMN] = [str(folder / cif) if cif else "" for cif in frame["cif"]]
    return frame


def candidate_cif(candidates_csv: str | os.PathLike[str], candidate_id: str) -> Path:
    """The absolute path of the CIF of ``candidate_id`` listed in ``candidates_csv``.

    Raises:
        InputError: the table has no such candidate, or the candidate has no CIF.
    """
    frame = read_candidates(candidates_csv)
    rows = frame.loc[frame["id"] == candidate_id, CIF_PATH_COLUMN]
    if rows.empty:
        raise InputError(f"{candidates_csv}: no candidate {candidate_id!r}")
    if not rows.iloc[0]:
        raise InputError(f"{candidates_csv}: candidate {candidate_id!r} has no CIF (it did not pass validity)")
    return Path(rows.iloc[0])
