"""Deterministic train / validation / test split by material_id.

Each id is placed by a seeded hash of the id itself, so the split of a crystal does not depend on
the table's row order or size; the encode stage (scaler fitted on train only) and the training
stage obtain the same split independently, both through :func:`dataset_split`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

SPLIT_NAMES = ("train", "val", "test")


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


def dataset_split(material_ids: Iterable[str], config: Mapping[str, Any]) -> np.ndarray:
    """The configured split (top-level ``split`` fractions, master ``seed``) of ``material_ids``."""
    return split_ids(material_ids, config["split"], config["seed"])
