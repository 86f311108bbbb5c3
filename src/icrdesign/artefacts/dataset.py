"""``results/data/dataset.parquet``: one crystal per row, the same columns for every data source;
the ``rejected.csv`` rows of the dataset-reading stages; and the row checks they all share.

Every stage that reads dataset rows (the demo and Materials Project sources, encode, train) refuses
the same rows for the same reasons, through :func:`id_rejections` (a missing or repeated
``material_id``; the first row of an id is the one used) and :func:`property_values` /
:func:`property_rejection` (a property that is missing, not a number, not finite or outside its
plausible range, by :func:`icrdesign.checks.property_problem`; a numeric string counts as a number).
A refused row is a :class:`Rejection` that goes to the stage's ``rejected.csv``; the run goes on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd
from pymatgen.core import Structure

from icrdesign.artefacts.tables import read_table, require_columns, write_table
from icrdesign.checks import as_number, is_missing, property_problem
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
#: The labels every source gives each crystal (the train stage learns the configured subset).
PROPERTY_COLUMNS: Final[tuple[str, ...]] = ("formation_energy_per_atom", "band_gap")
#: A row a stage could not use: its id, a typed reason and a human-readable detail.
REJECTED_COLUMNS: Final[tuple[str, ...]] = ("material_id", "reason", "detail")

#: The reasons (rejected.csv ``reason``) of the shared row checks; each stage adds its own.
MISSING_MATERIAL_ID: Final[str] = "missing_material_id"
DUPLICATE_MATERIAL_ID: Final[str] = "duplicate_material_id"
MISSING_PROPERTY: Final[str] = "missing_property"
INVALID_PROPERTY: Final[str] = "invalid_property"


@dataclass(frozen=True)
class Rejection:
    """Why a row cannot be used: a typed ``reason`` code and a ``detail`` naming the value."""

    reason: str
    detail: str


def id_rejections(material_ids: Iterable[Any]) -> list[Rejection | None]:
    """Per row, in order: a missing ``material_id``, one an earlier row already has, or None.

    The first row of an id is the one kept, whatever else is wrong with it, so every stage reading
    the same table keeps the same row.
    """
    first_row: dict[str, int] = {}
    rejections: list[Rejection | None] = []
    for row, material_id in enumerate(material_ids):
        if is_missing(material_id):
            rejections.append(Rejection(MISSING_MATERIAL_ID, f"row {row} has no material_id"))
        elif str(material_id) in first_row:
            rejections.append(Rejection(
                DUPLICATE_MATERIAL_ID, f"row {row} repeats the material_id of row {first_row[str(material_id)]}, "
                                       "which is the one kept"))
        else:
            first_row[str(material_id)] = row
            rejections.append(None)
    return rejections


def property_rejection(values: Mapping[str, Any]) -> Rejection | None:
    """Why a row with these property ``values`` (name -> value) cannot be used, or None.

    Only absent values: ``missing_property`` naming the properties; any other problem:
    ``invalid_property`` with every problem worded by :func:`icrdesign.checks.property_problem`.
    """
    problems = {name: problem for name, value in values.items() if (problem := property_problem(name, value))}
    if not problems:
        return None
    # An absent value gets the same wording however it is absent (None, NaN, empty text).
    if all(problem == property_problem(name, None) for name, problem in problems.items()):
        return Rejection(MISSING_PROPERTY, ", ".join(problems))
    return Rejection(INVALID_PROPERTY, "; ".join(problems.values()))


def property_values(table: pd.DataFrame, names: Sequence[str]) -> tuple[np.ndarray, list[Rejection | None]]:
    """The ``names`` columns as float64 (numeric text parsed; NaN where a value is missing or
    implausible) and, per row, why the row cannot be used (None: every value is usable)."""
    values = np.full((len(table), len(names)), np.nan)
    rejections: list[Rejection | None] = []
    for row, cells in enumerate(table[list(names)].itertuples(index=False, name=None)):
        row_values = dict(zip(names, cells))
        rejection = property_rejection(row_values)
        rejections.append(rejection)
        for column, (name, value) in enumerate(row_values.items()):
            # A refused row's good values stay: they still label its crystal (e.g. in the latent plot).
            if rejection is None or property_problem(name, value) is None:
                values[row, column] = as_number(value)
    return values, rejections


def id_texts(material_ids: Iterable[Any]) -> list[str]:
    """The ids as text, a missing one as the empty text (not ``"None"`` or ``"nan"``)."""
    return ["" if is_missing(material_id) else str(material_id) for material_id in material_ids]


def rejected_table(material_ids: Sequence[Any], rejections: Sequence[Rejection | None]) -> pd.DataFrame:
    """The rejected.csv rows (:data:`REJECTED_COLUMNS`) of the rows with a rejection."""
    rows = [{"material_id": material_id, "reason": rejection.reason, "detail": rejection.detail}
            for material_id, rejection in zip(id_texts(material_ids), rejections) if rejection is not None]
    return pd.DataFrame(rows, columns=list(REJECTED_COLUMNS))


def screen_rows(table: pd.DataFrame, properties: Sequence[str] = PROPERTY_COLUMNS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a table into its usable rows (``properties`` as float64) and its rejected rows.

    A row is refused for its id first (:func:`id_rejections`), then for its properties
    (:func:`property_values`).
    """
    id_problems = id_rejections(table["material_id"])
    values, property_problems = property_values(table, properties)
    rejections = [by_id or by_property for by_id, by_property in zip(id_problems, property_problems)]
    usable = np.array([rejection is None for rejection in rejections], dtype=bool)
    kept = table.loc[usable].copy()
    for column, name in enumerate(properties):
        kept[name] = values[usable, column]
    return kept.reset_index(drop=True), rejected_table(table["material_id"].tolist(), rejections)


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
