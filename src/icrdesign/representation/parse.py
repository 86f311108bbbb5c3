"""Per-structure part of encoding: validation, canonical form, site order, reciprocal points.

This is the only part that touches pymatgen objects one at a time; it runs in forked worker
processes for large batches and hands back dense per-chunk numpy arrays.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Structure

from icrdesign.representation.errors import (
    CanonicalizationError,
    DegenerateLatticeError,
    DisorderedStructureError,
    EncodingError,
    NonFiniteValueError,
    NotAStructureError,
    TooManyElementsError,
    TooManySitesError,
    UnknownElementError,
)
from icrdesign.representation.fourier import batch_nearest_reciprocal_points

# Tolerance (angstrom) for finding the primitive cell: small, so near-supercells of random
# structures are not symmetrised away, while exact conventional cells still reduce.
PRIMITIVE_TOLERANCE = 0.05
# Coordinates are compared at this resolution when choosing the canonical site order and origin.
ORDER_DECIMALS = 4
# A cell whose volume is below this fraction of a*b*c is degenerate (vectors nearly coplanar).
MIN_VOLUME_FRACTION = 1e-3
MIN_LENGTH = 0.1


@dataclass(frozen=True)
class ParseSettings:
    max_sites: int
    max_elements: int
    canonical: str
    n_reciprocal_points: int | None  # None: no Fourier block
    vocabulary_z: frozenset[int]


@dataclass
class ParsedChunk:
    """Dense arrays for a run of structures; rows of rejected structures stay zero."""

    lattice_parameters: np.ndarray  # (n, 6) a, b, c, alpha, beta, gamma
    frac_coords: np.ndarray  # (n, max_sites, 3) in [0, 1)
    site_column: np.ndarray  # (n, max_sites) element column of each site, -1 = padding
    column_z: np.ndarray  # (n, max_elements) atomic number of each element column, 0 = empty
    miller: np.ndarray | None  # (n, K, 3) reciprocal points, or None without Fourier block
    g_norm: np.ndarray | None  # (n, K)
    reasons: list[str | None]


def _wrap(frac: np.ndarray) -> np.ndarray:
    wrapped = np.mod(frac, 1.0)
    wrapped[wrapped >= 1.0 - 10.0 ** (-ORDER_DECIMALS - 2)] = 0.0  # 0.9999999 is the same site as 0
    return wrapped


def _site_order(columns: np.ndarray, frac: np.ndarray) -> np.ndarray:
    rounded = np.round(frac, ORDER_DECIMALS)
    return np.lexsort((rounded[:, 2], rounded[:, 1], rounded[:, 0], columns))


def _canonical_origin_and_order(columns: np.ndarray, frac: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shift one site of the least frequent element column to the origin, choosing the shift that
    gives the lexicographically smallest sorted coordinate list; return (coords, order)."""
    counts = np.bincount(columns)
    anchor_column = int(np.argmin(np.where(counts > 0, counts, np.iinfo(np.int64).max)))
    best_key: bytes | None = None
    best: tuple[np.ndarray, np.ndarray] = (frac, _site_order(columns, frac))
    for anchor in np.flatnonzero(columns == anchor_column):
        shifted = _wrap(frac - frac[anchor])
        order = _site_order(columns, shifted)
        key = np.round(shifted[order], ORDER_DECIMALS).tobytes()
        if best_key is None or key < best_key:
            best_key, best = key, (shifted, order)
    return best


def _checked_arrays(structure: object, settings: ParseSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate a structure; return its lattice matrix, fractional coordinates and site atomic numbers."""
    if not isinstance(structure, Structure):
        raise NotAStructureError(f"expected a pymatgen Structure, got {type(structure).__name__}")
    if len(structure) == 0:
        raise NotAStructureError("structure has no sites")
    matrix = structure.lattice.matrix
    frac = structure.frac_coords
    if not np.all(np.isfinite(matrix)) or not np.all(np.isfinite(frac)):
        raise NonFiniteValueError("lattice or coordinates contain NaN or infinity")
    lengths = np.linalg.norm(matrix, axis=1)
    volume = abs(np.linalg.det(matrix))
    if lengths.min() < MIN_LENGTH or volume < MIN_VOLUME_FRACTION * np.prod(lengths):
        raise DegenerateLatticeError(f"lattice lengths {np.round(lengths, 4).tolist()}, volume {volume:.4g}")
    return matrix, frac, site_z(structure, settings)


def site_z(structure: Structure, settings: ParseSettings) -> np.ndarray:
    """Atomic number of every site, in one pass that also checks order and the vocabulary."""
    numbers = []
    for site in structure:
        species = site.species  # Composition; cheaper to inspect than Site.is_ordered / Site.specie
        if len(species) != 1 or abs(species.num_atoms - 1.0) > 1e-8:
            raise DisorderedStructureError(f"partial occupancy or mixed species on a site: {species}")
        numbers.append(getattr(next(iter(species)), "Z", 0))
    if not settings.vocabulary_z.issuperset(numbers):
        symbols = sorted({str(next(iter(site.species))) for site, z in zip(structure, numbers) if z not in settings.vocabulary_z})
        raise UnknownElementError(f"{symbols} not in the element vocabulary")
    return np.array(numbers, dtype=np.int64)


def _canonical_structure(structure: Structure, settings: ParseSettings) -> Structure:
    try:
        primitive = structure.get_primitive_structure(tolerance=PRIMITIVE_TOLERANCE)
        return primitive.get_reduced_structure("niggli")
    except Exception as error:  # pymatgen raises assorted errors on pathological cells
        raise CanonicalizationError(f"{type(error).__name__}: {error}") from error


def parse_structure(structure: object, settings: ParseSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (lattice parameters (6,), coords (n, 3), site columns (n,), column atomic numbers).

    Raises an EncodingError subclass when the structure cannot be represented.
    """
    matrix, frac, numbers = _checked_arrays(structure, settings)
    if settings.canonical != "as_given":
        structure = _canonical_structure(structure, settings)
        matrix, frac = structure.lattice.matrix, structure.frac_coords
        numbers = np.array([site.specie.Z for site in structure], dtype=np.int64)
    n_sites = len(structure)
    if n_sites > settings.max_sites:
        raise TooManySitesError(f"{n_sites} sites > max_sites {settings.max_sites}")
    if settings.canonical == "as_given":
        column_z = np.array(list(dict.fromkeys(numbers.tolist())), dtype=np.int64)  # first appearance
    else:
        column_z = np.unique(numbers)  # by atomic number, independent of the site order
    if len(column_z) > settings.max_elements:
        raise TooManyElementsError(f"{len(column_z)} elements > max_elements {settings.max_elements}")
    column_of = {z: i for i, z in enumerate(column_z.tolist())}
    columns = np.array([column_of[z] for z in numbers.tolist()], dtype=np.int64)
    frac = _wrap(frac)
    if settings.canonical != "as_given":
        frac, order = _canonical_origin_and_order(columns, frac)
        # Drop the ~1e-16 noise the origin shift leaves, so equivalent inputs give equal arrays.
        frac, columns = _wrap(np.round(frac[order], 12)), columns[order]
    return lattice_parameters(matrix), frac, columns, column_z


def parse_chunk(structures: Sequence[object], settings: ParseSettings) -> ParsedChunk:
    n, sites, elements = len(structures), settings.max_sites, settings.max_elements
    k = settings.n_reciprocal_points
    chunk = ParsedChunk(
        lattice_parameters=np.zeros((n, 6)),
        frac_coords=np.zeros((n, sites, 3)),
        site_column=np.full((n, sites), -1, dtype=np.int64),
        column_z=np.zeros((n, elements), dtype=np.int64),
        miller=None if k is None else np.zeros((n, k, 3), dtype=np.int64),
        g_norm=None if k is None else np.zeros((n, k)),
        reasons=[None] * n,
    )
    for i, structure in enumerate(structures):
        try:
            parameters, frac, columns, column_z = parse_structure(structure, settings)
        except EncodingError as error:
            chunk.reasons[i] = error.reason
            continue
        chunk.lattice_parameters[i] = parameters
        chunk.frac_coords[i, : len(frac)] = frac
        chunk.site_column[i, : len(columns)] = columns
        chunk.column_z[i, : len(column_z)] = column_z
    if k is not None:
        assert chunk.miller is not None and chunk.g_norm is not None
        ok = np.array([reason is None for reason in chunk.reasons], dtype=bool)
        chunk.miller[ok], chunk.g_norm[ok] = batch_nearest_reciprocal_points(
            lattice_matrices(chunk.lattice_parameters[ok]), k
        )
    return chunk


def lattice_parameters(matrix: np.ndarray) -> np.ndarray:
    """(a, b, c, alpha, beta, gamma) of a lattice matrix, as pymatgen's Lattice.abc / .angles."""
    lengths = np.sqrt((matrix * matrix).sum(axis=1))
    cosines = [
        np.dot(matrix[j], matrix[k]) / (lengths[j] * lengths[k]) for j, k in ((1, 2), (2, 0), (0, 1))
    ]
    angles = np.degrees(np.arccos(np.clip(cosines, -1.0, 1.0)))
    return np.concatenate([lengths, angles])


def lattice_matrices(parameters: np.ndarray) -> np.ndarray:
    """Vectorised Lattice.from_parameters for (N, 6) parameters -> (N, 3, 3)."""
    a, b, c = parameters[:, 0], parameters[:, 1], parameters[:, 2]
    alpha, beta, gamma = np.radians(parameters[:, 3:6]).T
    cos_a, cos_b, cos_g = np.cos(alpha), np.cos(beta), np.cos(gamma)
    sin_a, sin_b = np.sin(alpha), np.sin(beta)
    gamma_star = np.arccos(np.clip((cos_a * cos_b - cos_g) / (sin_a * sin_b), -1.0, 1.0))
    matrices = np.zeros((len(parameters), 3, 3))
    matrices[:, 0, 0], matrices[:, 0, 2] = a * sin_b, a * cos_b
    matrices[:, 1, 0] = -b * sin_a * np.cos(gamma_star)
    matrices[:, 1, 1] = b * sin_a * np.sin(gamma_star)
    matrices[:, 1, 2] = b * cos_a
    matrices[:, 2, 2] = c
    return matrices


# Structures handed to forked workers by inheritance, so they are never pickled.
_FORK_STRUCTURES: Sequence[object] = ()


def _parse_range(args: tuple[int, int, ParseSettings]) -> ParsedChunk:
    start, stop, settings = args
    return parse_chunk(_FORK_STRUCTURES[start:stop], settings)


def parse_parallel(structures: Sequence[object], settings: ParseSettings, n_jobs: int | None) -> list[ParsedChunk]:
    """Parse in forked worker processes (structures inherited, arrays returned) when worthwhile."""
    global _FORK_STRUCTURES
    jobs = n_jobs if n_jobs is not None else (os.cpu_count() or 1)
    n = len(structures)
    min_per_job = 64 if settings.canonical == "as_given" else 8
    if jobs <= 1 or n < 2 * min_per_job or "fork" not in multiprocessing.get_all_start_methods():
        return [parse_chunk(structures, settings)]
    n_chunks = min(4 * jobs, n // min_per_job)
    edges = np.linspace(0, n, n_chunks + 1).astype(int)
    _FORK_STRUCTURES = structures
    try:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            return pool.map(_parse_range, [(int(lo), int(hi), settings) for lo, hi in zip(edges[:-1], edges[1:])])
    finally:
        _FORK_STRUCTURES = ()
