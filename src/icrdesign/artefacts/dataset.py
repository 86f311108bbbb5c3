"""``results/data/dataset.parquet``: one crystal per row, the same columns for every data source;
and the ``rejected.csv`` rows of the dataset stage."""

from __future__ import annotations

import json
import os
from typing import Final

import pandas as pd
from pymatgen.core import Structure

from icrdesign.artefacts.tables import read_table, require_columns, write_table
from icrdesign.errors import InputError
from icrdesign.io import write_parquet

#: Where the dataset stage writes, under the results folder.
DATA_FOLDER: Final[str] = "data"
DATASET_FILE: Final[str] = "dataset.parquet"
REJECTED_FILE: Final[str] = "rejected.csv"

#: The columns every data source writes, in this order (a source may append its own, e.g. the demo's
#: ``prototype``). ``structure`` holds the pymatgen ``Structure.as_dict()`` as JSON text.
TABLE_COLUMNS: Final[tuple[str, ...]] = (
    "material_id", "formula", "structure", "nsites", "nelements", "spacegroup",
    "formation_energy_per_atom", "band_gap", "energy_above_hull", "source", "label_source",
)
TABLE_DTYPES: Final[dict[str, str]] = {
    "nsites": "int64", "nelements": "int64", "formation_energy_per_atom": "float64",
    "band_gap": "float64", "energy_above_hull": "float64",
}
#: A row the dataset stage could not use: its id, a typed reason and a human-readable detail.
REJECTED_COLUMNS: Final[tuple[str, ...]] = ("material_id", "reason", "detail")


def check_table(table: pd.DataFrame, path: str | os.PathLike[str] = "dataset table") -> None:
    """Raise InputError when ``table`` breaks the shared format (missing columns, duplicate ids)."""
    require_columns(table, TABLE_COLUMNS, path)
    if not table["material_id"].is_unique:
        duplicated = sorted(table.loc[table["material_id"].duplicated(), "material_id"].astype(str))[:5]
        raise InputError(f"{path}: duplicate material_id values, e.g. {duplicated}")


def write_dataset(path: str | os.PathLike[str], table: pd.DataFrame) -> None:
    check_table(table, path)
    ordered = list(TABLE_COLUMNS) + [column for column in table.columns if column not in TABLE_COLUMNS]
    write_parquet(path, table[ordered].astype(TABLE_DTYPES))


def read_dataset(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The dataset table written by :func:`write_dataset`, checked."""
    table = read_table(path, TABLE_COLUMNS, TABLE_DTYPES)
    check_table(table, path)
    return table


def write_rejected(path: str | os.PathLike[str], rejected: pd.DataFrame) -> None:
    write_table(path, rejected.reindex(columns=list(REJECTED_COLUMNS)), REJECTED_COLUMNS)


def read_rejected(path: str | os.PathLike[str]) -> pd.DataFrame:
    return read_table(path, REJECTED_COLUMNS)


def structures_from_table(table: pd.DataFrame) -> list[Structure]:
    """The pymatgen Structures of a dataset table, in row order."""
    return [Structure.from_dict(json.loads(text)) for text in table["structure"]]
