"""Typed CSV / parquet plumbing shared by the artefact modules: one way to parse a boolean, one way
to check a file's columns, one way to name a bad file."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from icrdesign.errors import InputError
from icrdesign.io import write_csv

_TRUE = frozenset({"true", "1", "yes", "t", "y"})
_FALSE = frozenset({"false", "0", "no", "f", "n", ""})


def parse_bool(value: object) -> bool:
    """``True``/``False`` from a CSV cell written by pandas (``True``), by hand (``yes``) or left empty (False)."""
    if isinstance(value, bool):
        return value
    if value is None or (isinstance(value, float) and value != value):
        return False
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def bool_column(series: pd.Series, path: str | os.PathLike[str], column: str) -> pd.Series:
    """A column of booleans; a cell that is not one raises InputError naming the file and column."""
    try:
        return series.map(parse_bool).astype(bool)
    except ValueError as error:
        raise InputError(f"{path}: column {column!r}: {error}") from None


def require_columns(frame: pd.DataFrame, columns: Sequence[str], path: str | os.PathLike[str]) -> None:
    """Raise InputError naming ``path`` when any of ``columns`` is absent from ``frame``."""
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing columns {missing} (has {list(frame.columns)})")


def read_table(path: str | os.PathLike[str], columns: Sequence[str],
               dtypes: Mapping[str, str] | None = None, booleans: Sequence[str] = ()) -> pd.DataFrame:
    """Read a CSV (or parquet) artefact: checked columns, ``dtypes`` applied, ``booleans`` parsed."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(
            path, dtype={column: "string" for column in ("id", "candidate_id", "material_id", "case") if column in columns},
            # Only an empty cell is missing: "NaN" is sodium nitride's formula, "NA" an id.
            keep_default_na=False, na_values=[""], float_precision="round_trip")
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise InputError(f"{path}: unreadable ({error})") from None
    require_columns(frame, columns, path)
    for column in booleans:
        frame[column] = bool_column(frame[column], path, column)
    if dtypes:
        try:
            frame = frame.astype({column: dtype for column, dtype in dtypes.items() if column in frame})
        except (TypeError, ValueError) as error:
            raise InputError(f"{path}: {error}") from None
    return frame


def write_table(path: str | os.PathLike[str], frame: pd.DataFrame, columns: Sequence[str]) -> None:
    """Write ``frame`` atomically with ``columns`` first, in that order (extra columns follow)."""
    require_columns(frame, columns, path)
    ordered = list(columns) + [column for column in frame.columns if column not in columns]
    write_csv(path, frame[ordered])
