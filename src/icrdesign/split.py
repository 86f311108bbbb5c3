"""Deterministic train / validation / test split by material_id, or the split given with the data.

Each id is placed by a seeded hash of the id itself, so the split of a crystal does not depend on
the table's row order or size. A dataset table may instead carry its own split in the
:data:`SPLIT_COLUMN` column (the file source's ``data.file.splits``, as benchmark datasets such as
CDVAE's ship it), which then wins over the hash. The encode stage (scaler fitted on train only) and
the training stage obtain the same split independently, both through :func:`dataset_split`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import numpy as np
import pandas as pd

from icrdesign.errors import InputError

SPLIT_NAMES = ("train", "val", "test")
#: The dataset table column holding a split given with the data; absent when the hash decides.
SPLIT_COLUMN: Final[str] = "split"


def _unit_interval(material_id: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{material_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_ids(material_ids: Iterable[str], fractions: Sequence[float], seed: int) -> np.ndarray:
    """Return an array of 'train' / 'val' / 'test' labels, one per id, in input order."""
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"split fractions must be three numbers summing to 1, got {list(fractions)}")
    edges = np.cumsum(fractions)[:2]
    draws = np.array([_unit_interval(str(mid), seed) for mid in material_ids])
    labels = np.full(draws.shape, "test", dtype=object)
    labels[draws < edges[1]] = "val"
    labels[draws < edges[0]] = "train"
    return labels.astype(str)


def given_split(table: pd.DataFrame) -> np.ndarray | None:
    """The split a dataset table carries (its :data:`SPLIT_COLUMN`, in row order), or None."""
    return table[SPLIT_COLUMN].to_numpy(dtype=object) if SPLIT_COLUMN in table.columns else None


def dataset_split(material_ids: Iterable[str], config: Mapping[str, Any],
                  given: Sequence[Any] | np.ndarray | None = None) -> np.ndarray:
    """The split of ``material_ids``: ``given`` (one label per id, from :func:`given_split`) when the
    dataset carries one, else the configured hash split (top-level ``split`` fractions, master ``seed``).

    Raises:
        InputError: a given label is not one of :data:`SPLIT_NAMES`.
    """
    if given is None:
        return split_ids(material_ids, config["split"], config["seed"])
    labels = np.asarray([str(label) for label in given], dtype=str)
    unknown = sorted(set(labels.tolist()) - set(SPLIT_NAMES))
    if unknown:
        raise InputError(f"dataset table column {SPLIT_COLUMN!r}: labels {unknown[:5]} are not one of "
                         f"{list(SPLIT_NAMES)}")
    return labels
