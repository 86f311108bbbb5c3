"""``results/encoded/``: the encode stage's ICR arrays, their index, the representation and the
scaler; its rejected rows and summary. The one writer (the encode stage) and reader (the train
stage) of the folder."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from icrdesign.artefacts.dataset import write_rejected
from icrdesign.artefacts.tables import read_table, write_table
from icrdesign.errors import InputError
from icrdesign.io import atomic_open, read_json, write_json
from icrdesign.representation.icr import ICR
from icrdesign.representation.scaler import MinMaxScaler

ARRAY_FILE: Final[str] = "icr.npy"
INDEX_FILE: Final[str] = "index.csv"
ICR_FILE: Final[str] = "icr.json"
SCALER_FILE: Final[str] = "scaler.json"
REJECTED_FILE: Final[str] = "rejected.csv"
SUMMARY_FILE: Final[str] = "summary.json"
#: Every file the encode stage writes, in writing order (summary.json last: it marks a finished run).
FILES: Final[tuple[str, ...]] = (ARRAY_FILE, INDEX_FILE, ICR_FILE, SCALER_FILE, REJECTED_FILE, SUMMARY_FILE)

#: One row per dataset row and array row, in dataset order: whether it was encoded, the
#: ``code: detail`` reason when not (empty when it was), and its train / val / test split.
INDEX_COLUMNS: Final[tuple[str, ...]] = ("material_id", "encoded", "reason", "split")


@dataclass
class EncodedArrays:
    """The encoded dataset: ``array`` row i is index row i (zero where that row was not encoded)."""

    icr: ICR
    scaler: MinMaxScaler  # per ICR row, fitted on the encoded training-split rows
    array: np.ndarray  # float32 (N, icr.n_rows, icr.n_channels), unscaled
    index: pd.DataFrame  # INDEX_COLUMNS

    @property
    def encoded(self) -> np.ndarray:
        """Bool (N,): the rows that hold an encoded crystal."""
        return self.index["encoded"].to_numpy(dtype=bool)


def write_encoded(out_dir: str | os.PathLike[str], encoded: EncodedArrays, rejected: pd.DataFrame,
                  summary: dict[str, Any]) -> None:
    """Write every file of :data:`FILES` into ``out_dir``, each atomically, summary.json last."""
    out_dir = Path(out_dir)
    with atomic_open(out_dir / ARRAY_FILE, "wb") as handle:
        np.save(handle, encoded.array)
    write_table(out_dir / INDEX_FILE, encoded.index, INDEX_COLUMNS)
    write_json(out_dir / ICR_FILE, encoded.icr.to_dict())
    write_json(out_dir / SCALER_FILE, encoded.scaler.to_dict())
    write_rejected(out_dir / REJECTED_FILE, rejected)
    write_json(out_dir / SUMMARY_FILE, summary)


def _read_description(path: Path) -> dict[str, Any]:
    """A JSON object written by the encode stage; absent or malformed: InputError naming the file."""
    if not path.is_file():
        raise InputError(f"{path}: no such file; run the encode stage")
    try:
        data = read_json(path)
    except (OSError, ValueError) as error:  # JSONDecodeError is a ValueError (empty or truncated file)
        raise InputError(f"{path}: unreadable ({error})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def read_vocabulary(icr_path: str | os.PathLike[str]) -> list[str]:
    """The element vocabulary of the encode stage's representation (icr.json): every element a decoded
    crystal can hold. Absent, malformed or without it: InputError naming the file."""
    elements = _read_description(Path(icr_path)).get("elements")
    if not isinstance(elements, list) or not all(isinstance(symbol, str) for symbol in elements):
        raise InputError(f"{icr_path}: no element vocabulary ('elements'); re-run the encode stage")
    return elements


def read_encoded(encoded_dir: str | os.PathLike[str]) -> EncodedArrays:
    """The encode stage's outputs, checked against each other; any defect raises InputError naming the file."""
    encoded_dir = Path(encoded_dir)
    icr_path, scaler_path, array_path = encoded_dir / ICR_FILE, encoded_dir / SCALER_FILE, encoded_dir / ARRAY_FILE
    icr_description, scaler_description = _read_description(icr_path), _read_description(scaler_path)
    try:
        icr = ICR.from_dict(icr_description)
    except (KeyError, TypeError, ValueError) as error:
        raise InputError(f"{icr_path}: not a representation description of this version ({error!r}); "
                         "re-run the encode stage") from None
    try:
        scaler = MinMaxScaler.from_dict(scaler_description)
    except (KeyError, TypeError, ValueError) as error:
        raise InputError(f"{scaler_path}: not a scaler description ({error!r}); re-run the encode stage") from None
    if not array_path.is_file():
        raise InputError(f"{array_path}: no such file; run the encode stage")
    try:
        array = np.load(array_path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:  # a truncated .npy raises ValueError or EOFError
        raise InputError(f"{array_path}: unreadable ({error})") from None
    expected = (icr.n_rows, icr.n_channels)
    if array.ndim != 3 or array.shape[1:] != expected:
        raise InputError(f"{array_path}: shape {array.shape}, expected (N, {expected[0]}, {expected[1]}) from {icr_path}")
    index_path = encoded_dir / INDEX_FILE
    index = read_table(index_path, INDEX_COLUMNS, booleans=("encoded",))
    if len(index) != len(array):
        raise InputError(f"{index_path}: {len(index)} rows, but {array_path} holds {len(array)} arrays")
    return EncodedArrays(icr=icr, scaler=scaler, array=array, index=index)
