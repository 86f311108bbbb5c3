"""Structural fingerprints and dissimilarity, as in the paper (Zimmermann & Jain site fingerprints).

The fingerprint of a crystal is matminer's ``SiteStatsFingerprint`` over ``CrystalNNFingerprint``
order parameters (mean, std, min, max over sites); the dissimilarity of two crystals is the
Euclidean distance between their fingerprints. The fingerprint ignores species (x_diff_weight=0),
so it compares structure types, not chemistries.

Fingerprints are cached on disk keyed by the crystal's geometry (see ``geometry_key``), so the
training set is fingerprinted once and every structure type only once; missing entries are
computed in parallel worker processes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

import numpy as np
from pymatgen.core import Structure
from tqdm import tqdm

from icrdesign.io import atomic_path
from icrdesign.parallel import process_pool

FINGERPRINT_STATS = ("mean", "std_dev", "minimum", "maximum")
# Candidates per block in the nearest-neighbour search: bounds memory at block x n_train floats.
_NN_BLOCK = 256
_MIN_PARALLEL = 64
Item = TypeVar("Item")
Result = TypeVar("Result")


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
    """Hash of a serialised structure: finds a known text again without parsing it."""
    return hashlib.sha1(f"{fmt}\0{text}".encode()).hexdigest()


def geometry_key(structure: Structure) -> str:
    """Hash of the cell shape at unit volume per atom, the fractional coordinates and the pattern of
    which sites share a species.

    The fingerprint depends on nothing else: CrystalNN's solid-angle weights and the order
    parameters are scale-free, and species enter only through electronegativity differences,
    which the paper's preset switches off (x_diff_weight=0). Crystals of one structure type that
    differ by substitution and a uniform strain (most of a prototype-built dataset) therefore share
    one fingerprint computation. Rounded to 1e-5 so float noise in the scaling does not split keys.
    """
    scale = (len(structure) / structure.volume) ** (1.0 / 3.0)
    lattice = np.round(structure.lattice.matrix * scale, 5) + 0.0  # + 0.0 turns -0.0 into 0.0
    coords = np.round(np.mod(structure.frac_coords, 1.0), 5) % 1.0 + 0.0
    labels: dict[str, int] = {}
    pattern = np.array([labels.setdefault(site.species_string, len(labels)) for site in structure], dtype=np.int64)
    digest = hashlib.sha1()
    for part in (lattice, coords, pattern):
        digest.update(np.ascontiguousarray(part).tobytes())
    return "geometry:" + digest.hexdigest()


def _geometry_key_of_text(item: tuple[str, str]) -> tuple[str | None, str | None]:
    """Worker: (geometry key, None) or (None, reason) for a structure that does not parse."""
    try:
        return geometry_key(_parse(*item)), None
    except Exception as error:  # noqa: BLE001 - any bad structure becomes a recorded reason
        return None, f"{type(error).__name__}: {error}"


def _fingerprint_text(item: tuple[str, str]) -> tuple[np.ndarray | None, str | None]:
    """Worker: parse and fingerprint; a failure is returned as its reason, never raised."""
    try:
        return fingerprint(_parse(*item)), None
    except Exception as error:  # noqa: BLE001 - any bad structure becomes a recorded reason
        return None, f"{type(error).__name__}: {error}"


class FingerprintCache:
    """Fingerprints on disk (npz), keyed by ``geometry_key``, plus the geometry key of every text
    seen (``cache_key`` -> geometry key) so that a warm cache needs no parsing at all."""

    def __init__(self, path: str | os.PathLike[str] | None):
        self.path = None if path is None else Path(path)
        self.entries: dict[str, tuple[np.ndarray | None, str | None]] = {}
        self.aliases: dict[str, str] = {}
        if self.path is not None and self.path.exists():
            with np.load(self.path, allow_pickle=False) as data:
                if "alias_text" not in data:  # a cache from before geometry keys: start afresh
                    return
                for key, row, error in zip(data["key"], data["fingerprint"], data["error"], strict=True):
                    self.entries[str(key)] = (None, str(error)) if error else (row, None)
                self.aliases = dict(zip(map(str, data["alias_text"]), map(str, data["alias_geometry"]), strict=True))

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
        alias_text = sorted(self.aliases)
        with atomic_path(self.path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez_compressed(
                    handle, key=np.array(keys, dtype=str), fingerprint=matrix, error=errors,
                    alias_text=np.array(alias_text, dtype=str),
                    alias_geometry=np.array([self.aliases[k] for k in alias_text], dtype=str),
                )


def _map(function: Callable[[Item], Result], items: list[Item], n_jobs: int, description: str) -> list[Result]:
    """``function`` over ``items`` with a progress bar, in ``n_jobs`` processes when worth it."""
    progress = dict(total=len(items), desc=description, unit="crystal", mininterval=2.0)
    # A worker pays seconds importing pymatgen/matminer: small batches run in this process.
    if n_jobs > 1 and len(items) >= _MIN_PARALLEL:
        with process_pool(n_jobs) as pool:
            chunksize = max(1, min(64, len(items) // (4 * n_jobs)))
            return list(tqdm(pool.map(function, items, chunksize=chunksize), **progress))
    return [function(item) for item in tqdm(items, **progress)]


def fingerprints_from_text(
    items: Sequence[tuple[str, str]],
    cache_path: str | os.PathLike[str] | None = None,
    n_jobs: int = 1,
    description: str = "fingerprints",
) -> tuple[np.ndarray, list[str | None]]:
    """Fingerprints of serialised structures ``(format, text)``: (N x D matrix, per-row error or None).

    Rows that fail are NaN with their reason. One fingerprint is computed per distinct geometry
    (``geometry_key``); cached entries are reused, new ones are computed in ``n_jobs`` processes
    and written back to the cache.
    """
    cache = FingerprintCache(cache_path)
    text_keys = [cache_key(*item) for item in items]
    unknown = sorted({key: i for i, key in enumerate(text_keys) if key not in cache.aliases}.values())
    changed = bool(unknown)
    for i, (geometry, error) in zip(unknown, _map(_geometry_key_of_text, [items[i] for i in unknown], n_jobs,
                                                  f"{description} (parse)"), strict=True):
        if geometry is None:
            geometry = "unparsable:" + text_keys[i]
            cache.entries[geometry] = (None, error)
        cache.aliases[text_keys[i]] = geometry
    geometries = [cache.aliases[key] for key in text_keys]
    missing = sorted({g: i for i, g in enumerate(geometries) if g not in cache.entries}.values())
    if missing:
        results = _map(_fingerprint_text, [items[i] for i in missing], n_jobs, description)
        for i, result in zip(missing, results, strict=True):
            cache.entries[geometries[i]] = result
        changed = True
    if changed:
        cache.save()
    width = max((len(cache.entries[g][0]) for g in geometries if cache.entries[g][0] is not None), default=0)
    matrix = np.full((len(items), width), np.nan)
    errors: list[str | None] = []
    for i, geometry in enumerate(geometries):
        row, error = cache.entries[geometry]
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
