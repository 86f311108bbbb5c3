"""Structural fingerprints and dissimilarity, as in the paper (Zimmermann & Jain site fingerprints).

The fingerprint of a crystal is matminer's ``SiteStatsFingerprint`` over ``CrystalNNFingerprint``
order parameters (mean, std, min, max over sites); the dissimilarity of two crystals is the
Euclidean distance between their fingerprints. The fingerprint ignores species (x_diff_weight=0),
so it compares structure types, not chemistries.

Fingerprints are computed by ``icrdesign fingerprints`` in jobs of their own (the training split in
shards beside training, the candidates beside DFT) and cached per crystal in a folder
(:class:`FingerprintCache`), keyed by the crystal's geometry (see ``geometry_key``): a rerun, or a
dataset that grew, computes only crystals it has not seen. The report only reads the files.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from pymatgen.core import Structure
from tqdm import tqdm

from icrdesign.artefacts.dataset import id_rejections, id_texts
from icrdesign.io import atomic_path
from icrdesign.parallel import process_pool
from icrdesign.split import dataset_split, given_split

FINGERPRINT_STATS = ("mean", "std_dev", "minimum", "maximum")
# Candidates per block in the nearest-neighbour search: bounds memory at block x n_train floats.
_NN_BLOCK = 256
_MIN_PARALLEL = 64
# New fingerprints per cache batch: a killed job loses at most this many (~4 minutes on one core).
_FLUSH_EVERY = 500
_BATCH_PREFIX = "batch-"
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
    """Fingerprints computed so far, in a folder of immutable npz batches.

    Each batch maps geometry keys (``geometry_key``) to fingerprints (or the reason one failed) and
    structure texts (``cache_key``) to their geometry key, so that a warm cache needs no parsing at
    all. A job adds batches and never rewrites one, so shard jobs running at once on one folder
    never clash (the same crystal computed twice gives the same row), and a killed job keeps every
    batch it flushed. ``folder`` None: an in-memory cache.
    """

    def __init__(self, folder: str | os.PathLike[str] | None):
        self.folder = None if folder is None else Path(folder)
        self.entries: dict[str, tuple[np.ndarray | None, str | None]] = {}
        self.aliases: dict[str, str] = {}
        self._new_entries: list[str] = []
        self._new_aliases: list[str] = []
        if self.folder is None or not self.folder.is_dir():
            return
        for path in sorted(self.folder.glob(f"{_BATCH_PREFIX}*.npz")):
            with np.load(path, allow_pickle=False) as data:
                for key, row, error in zip(data["key"], data["fingerprint"], data["error"], strict=True):
                    self.entries.setdefault(str(key), (None, str(error)) if error else (row, None))
                for text, geometry in zip(data["alias_text"], data["alias_geometry"], strict=True):
                    self.aliases.setdefault(str(text), str(geometry))

    def add_alias(self, text_key: str, geometry: str) -> None:
        self.aliases[text_key] = geometry
        self._new_aliases.append(text_key)

    def add_entry(self, geometry: str, result: tuple[np.ndarray | None, str | None]) -> None:
        self.entries[geometry] = result
        self._new_entries.append(geometry)

    def flush(self) -> None:
        """Write what was added since the last flush as one new batch (nothing when nothing was added)."""
        if self.folder is None or not (self._new_entries or self._new_aliases):
            return
        keys = sorted(set(self._new_entries))
        width = max((len(self.entries[k][0]) for k in keys if self.entries[k][0] is not None), default=0)
        matrix = np.full((len(keys), width), np.nan)
        for i, key in enumerate(keys):
            if self.entries[key][0] is not None:
                matrix[i] = self.entries[key][0]
        alias_text = sorted(set(self._new_aliases))
        digest = hashlib.sha1("\0".join([*keys, "", *alias_text]).encode()).hexdigest()
        with atomic_path(self.folder / f"{_BATCH_PREFIX}{digest}.npz") as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(
                handle, key=np.array(keys, dtype=str), fingerprint=matrix,
                error=np.array([self.entries[key][1] or "" for key in keys], dtype=str),
                alias_text=np.array(alias_text, dtype=str),
                alias_geometry=np.array([self.aliases[k] for k in alias_text], dtype=str),
            )
        self._new_entries, self._new_aliases = [], []


def _map(function: Callable[[Item], Result], items: list[Item], n_jobs: int, description: str) -> Iterator[Result]:
    """``function`` over ``items`` in order, with a progress bar, in ``n_jobs`` processes when worth it."""
    progress = dict(total=len(items), desc=description, unit="crystal", mininterval=2.0)
    # A worker pays seconds importing pymatgen/matminer: small batches run in this process.
    if n_jobs > 1 and len(items) >= _MIN_PARALLEL:
        with process_pool(n_jobs) as pool:
            chunksize = max(1, min(64, len(items) // (4 * n_jobs)))
            yield from tqdm(pool.map(function, items, chunksize=chunksize), **progress)
        return
    yield from tqdm(map(function, items), **progress)


@dataclass(frozen=True)
class FingerprintRun:
    """What :func:`compute_fingerprints` gives: rows in input order and how many were computed."""

    matrix: np.ndarray
    errors: list[str | None]
    n_computed: int  # fingerprints computed (distinct new geometries); the rest came from the cache


def compute_fingerprints(
    items: Sequence[tuple[str, str]],
    cache: str | os.PathLike[str] | None = None,
    n_jobs: int = 1,
    description: str = "fingerprints",
    flush_every: int = _FLUSH_EVERY,
) -> FingerprintRun:
    """Fingerprints of serialised structures ``(format, text)``, computing only what ``cache`` lacks.

    Rows that fail are NaN with their reason. One fingerprint is computed per distinct geometry
    (``geometry_key``); new ones are computed in ``n_jobs`` processes and added to the cache folder
    every ``flush_every`` fingerprints, so a killed job keeps most of its work.
    """
    store = FingerprintCache(cache)
    text_keys = [cache_key(*item) for item in items]
    unknown = sorted({key: i for i, key in enumerate(text_keys) if key not in store.aliases}.values())
    parsed = _map(_geometry_key_of_text, [items[i] for i in unknown], n_jobs, f"{description} (parse)")
    for i, (geometry, error) in zip(unknown, parsed, strict=True):
        if geometry is None:
            geometry = "unparsable:" + text_keys[i]
            store.add_entry(geometry, (None, error))
        store.add_alias(text_keys[i], geometry)
    geometries = [store.aliases[key] for key in text_keys]
    missing = sorted({g: i for i, g in enumerate(geometries) if g not in store.entries}.values())
    for n_done, (i, result) in enumerate(
        zip(missing, _map(_fingerprint_text, [items[i] for i in missing], n_jobs, description), strict=True), 1
    ):
        store.add_entry(geometries[i], result)
        if n_done % flush_every == 0:
            store.flush()
    store.flush()
    width = max((len(store.entries[g][0]) for g in geometries if store.entries[g][0] is not None), default=0)
    matrix = np.full((len(items), width), np.nan)
    errors: list[str | None] = []
    for i, geometry in enumerate(geometries):
        row, error = store.entries[geometry]
        if row is not None:
            matrix[i] = row
        errors.append(error)
    return FingerprintRun(matrix, errors, len(missing))


def fingerprints_from_text(
    items: Sequence[tuple[str, str]],
    cache: str | os.PathLike[str] | None = None,
    n_jobs: int = 1,
    description: str = "fingerprints",
) -> tuple[np.ndarray, list[str | None]]:
    """(N x D matrix, per-row error or None) of serialised structures (see :func:`compute_fingerprints`)."""
    run = compute_fingerprints(items, cache, n_jobs, description)
    return run.matrix, run.errors


def fingerprints(
    structures: Sequence[Structure], cache: str | os.PathLike[str] | None = None, n_jobs: int = 1
) -> tuple[np.ndarray, list[str | None]]:
    """Fingerprints of pymatgen structures (see :func:`compute_fingerprints`)."""
    return fingerprints_from_text([serialise(s) for s in structures], cache, n_jobs)


def structure_file_item(path: str | os.PathLike[str]) -> tuple[str, str]:
    """(format, text) of a structure file: pymatgen JSON for ``.json``, CIF otherwise."""
    path = Path(path)
    return ("json" if path.suffix == ".json" else "cif"), path.read_text(encoding="utf-8")


def training_crystals(table: pd.DataFrame, config: Mapping[str, Any]) -> pd.DataFrame:
    """The dataset rows of the training split (``icrdesign.split.dataset_split``), in table order.

    Rows whose ``material_id`` is missing or repeated are left out, as every stage refuses them;
    the split is the one encode and train compute from the same ids, config and given split column.
    """
    usable = np.array([rejection is None for rejection in id_rejections(table["material_id"])], dtype=bool)
    rows = table.loc[usable]
    split = dataset_split(np.array(id_texts(rows["material_id"]), dtype=str), config, given_split(rows))
    return rows.loc[split == "train"].reset_index(drop=True)


def shard_rows(n_train: int, shard_size: int, shard: int) -> slice:
    """The rows of shard ``shard`` among ``n_train`` training crystals cut into ``shard_size`` pieces."""
    return slice(min(shard * shard_size, n_train), min((shard + 1) * shard_size, n_train))


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
