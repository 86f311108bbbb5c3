"""Structural fingerprints and dissimilarity, as in the paper (Zimmermann & Jain site fingerprints).

The fingerprint of a crystal is matminer's ``SiteStatsFingerprint`` over ``CrystalNNFingerprint``
order parameters (mean, std, min, max over sites); the dissimilarity of two crystals is the
Euclidean distance between their fingerprints. The fingerprint ignores species (x_diff_weight=0),
so it compares structure types, not chemistries.

Fingerprints are cached on disk keyed by a hash of the serialised structure, so the training set
is fingerprinted once; missing entries are computed in parallel worker processes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np
from pymatgen.core import Structure
from tqdm import tqdm

from icrdesign.io import atomic_path


FINGERPRINT_STATS = ("mean", "std_dev", "minimum", "maximum")
# Candidates per block in the nearest-neighbour search: bounds memory at block x n_train floats.
_NN_BLOCK = 256
_MIN_PARALLEL = 64


@lru_cache(maxsize=1)
def _featurizer():
    # matminer is slow to import; only processes that fingerprint pay for it.
    from matminer.featurizers.site import CrystalNNFingerprint
    from matminer.featurizers.structure import SiteStatsFingerprint

    return SiteStatsFingerprint(
        CrystalNNFingerprint.from_preset("ops", distance_cutoffs=None, x_diff_weight=0),
        stats=FINGERPRINT_STATS,
    )


def fingerprint(structure: Structure) -> np.ndarray:
    """The site-statistics fingerprint of one crystal (float vector)."""
    return np.asarray(_featurizer().featurize(structure), dtype=float)


def dissimilarity(a: Structure, b: Structure) -> float:
    """Euclidean distance between the fingerprints of two crystals (0 for the same structure type)."""
    return float(np.linalg.norm(fingerprint(a) - fingerprint(b)))


def serialise(structure: Structure) -> tuple[str, str]:
    """(format, text) of a structure, the form the cache and worker processes take."""
    return "json", structure.to_json()


def _parse(fmt: str, text: str) -> Structure:
    if fmt == "json":
        return Structure.from_str(text, fmt="json")
    if fmt == "cif":
        return Structure.from_str(text, fmt="cif")
    raise ValueError(f"unknown structure format {fmt!r} (allowed: json, cif)")


def cache_key(fmt: str, text: str) -> str:
    return hashlib.sha1(f"{fmt}\0{text}".encode()).hexdigest()


def _fingerprint_text(item: tuple[str, str]) -> tuple[np.ndarray | None, str | None]:
    """Worker: parse and fingerprint; a failure is returned as its reason, never raised."""
    try:
        return fingerprint(_parse(*item)), None
    except Exception as error:  # noqa: BLE001 - any bad structure becomes a recorded reason
        return None, f"{type(error).__name__}: {error}"


class FingerprintCache:
    """Fingerprints on disk (npz: key, fingerprint, error), keyed by ``cache_key``."""

    def __init__(self, path: str | os.PathLike[str] | None):
        self.path = None if path is None else Path(path)
        self.entries: dict[str, tuple[np.ndarray | None, str | None]] = {}
        if self.path is not None and self.path.exists():
            with np.load(self.path, allow_pickle=False) as data:
                for key, row, error in zip(data["key"], data["fingerprint"], data["error"], strict=True):
                    self.entries[str(key)] = (None, str(error)) if error else (row, None)

    def save(self) -> None:
        if self.path is None:
            return
        keys = sorted(self.entries)
        width = max((len(v[0]) for v in self.entries.values() if v[0] is not None), default=0)
        matrix = np.full((len(keys), width), np.nan)
        for i, key in enumerate(keys):
            if self.entries[key][0] is not None:
                matrix[i] = self.entries[key][0]
        errors = np.array([self.entries[key][1] or "" for key in keys], dtype=str)
        with atomic_path(self.path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, key=np.array(keys, dtype=str), fingerprint=matrix, error=errors)


def fingerprints_from_text(
    items: Sequence[tuple[str, str]],
    cache_path: str | os.PathLike[str] | None = None,
    n_jobs: int = 1,
    description: str = "fingerprints",
) -> tuple[np.ndarray, list[str | None]]:
    """Fingerprints of serialised structures ``(format, text)``: (N x D matrix, per-row error or None).

    Rows that fail are NaN with their reason. Cached entries are reused; new ones are computed in
    ``n_jobs`` processes and written back to the cache.
    """
    cache = FingerprintCache(cache_path)
    keys = [cache_key(*item) for item in items]
    missing = sorted({key: i for i, key in enumerate(keys) if key not in cache.entries}.values())
    if missing:
        todo = [items[i] for i in missing]
        progress = dict(total=len(todo), desc=description, unit="crystal", mininterval=2.0)
        # A worker pays several seconds importing matminer: small batches run in this process.
        if n_jobs > 1 and len(todo) >= _MIN_PARALLEL:
            with ProcessPoolExecutor(max_workers=n_jobs) as pool:
                chunksize = max(1, min(64, len(todo) // (4 * n_jobs)))
                results = list(tqdm(pool.map(_fingerprint_text, todo, chunksize=chunksize), **progress))
        else:
            results = [_fingerprint_text(item) for item in tqdm(todo, **progress)]
        for i, result in zip(missing, results, strict=True):
            cache.entries[keys[i]] = result
        cache.save()
    width = max((len(cache.entries[k][0]) for k in keys if cache.entries[k][0] is not None), default=0)
    matrix = np.full((len(items), width), np.nan)
    errors: list[str | None] = []
    for i, key in enumerate(keys):
        row, error = cache.entries[key]
        if row is not None:
            matrix[i] = row
        errors.append(error)
    return matrix, errors


def fingerprints(
    structures: Sequence[Structure], cache_path: str | os.PathLike[str] | None = None, n_jobs: int = 1
) -> tuple[np.ndarray, list[str | None]]:
    """Fingerprints of pymatgen structures (see ``fingerprints_from_text``)."""
    return fingerprints_from_text([serialise(s) for s in structures], cache_path, n_jobs)


def nearest_neighbours(queries: np.ndarray, references: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each query row, the Euclidean distance to its nearest reference row and that row's index.

    NaN reference rows (failed fingerprints) are never chosen; NaN query rows give NaN and -1.
    Vectorised as |q|^2 + |r|^2 - 2 q.r in blocks of queries.
    """
    distances = np.full(len(queries), np.nan)
    indices = np.full(len(queries), -1, dtype=np.int64)
    ref_ok = np.flatnonzero(np.isfinite(references).all(axis=1)) if references.size else np.array([], int)
    query_ok = np.flatnonzero(np.isfinite(queries).all(axis=1)) if queries.size else np.array([], int)
    if not len(ref_ok) or not len(query_ok):
        return distances, indices
    refs = references[ref_ok]
    ref_sq = np.einsum("ij,ij->i", refs, refs)
    for start in range(0, len(query_ok), _NN_BLOCK):
        block = query_ok[start : start + _NN_BLOCK]
        q = queries[block]
        squared = np.einsum("ij,ij->i", q, q)[:, None] + ref_sq[None, :] - 2.0 * q @ refs.T
        best = np.argmin(squared, axis=1)
        # The expansion loses precision for near-identical vectors: recompute the winner exactly.
        distances[block] = np.linalg.norm(q - refs[best], axis=1)
        indices[block] = ref_ok[best]
    return distances, indices
