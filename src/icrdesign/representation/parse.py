"""Parsing for encoding: pymatgen Structures -> dense per-batch arrays (checks, canonical form, site order).

Only two steps touch pymatgen objects one structure at a time: ``extract_sites`` (a structure's
coordinate array and one Python pass over its site compositions) and, for ``niggli_primitive``, the primitive + Niggli
reduction and canonical origin choice. Every check, wrap, site-to-column link and reciprocal-point
search runs on whole-batch numpy arrays.
"""

from __future__ import annotations

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
# Site keys are owner * Z_KEY + Z; larger than any atomic number.
Z_KEY = 256


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


@dataclass
class SiteArrays:
    """The sites of a batch, flattened: structure i owns rows offsets[i]:offsets[i + 1]."""

    matrices: np.ndarray  # (n, 3, 3) lattice matrices (zero for unreadable structures)
    frac: np.ndarray  # (total, 3) fractional coordinates as given
    z: np.ndarray  # (total,) atomic numbers; 0 for a disordered site
    n_sites: np.ndarray  # (n,)

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.n_sites)])

    @property
    def owner(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.n_sites)), self.n_sites)


def _wrap(frac: np.ndarray) -> np.ndarray:
    wrapped = np.mod(frac, 1.0)
    wrapped[wrapped >= 1.0 - 10.0 ** (-ORDER_DECIMALS - 2)] = 0.0  # 0.9999999 is the same site as 0
    return wrapped


def extract_sites(structures: Sequence[object], reasons: list[str | None]) -> tuple[SiteArrays, dict[int, str]]:
    """One pass over all sites; unreadable inputs get their reason in ``reasons`` (in place).

    Returns the flat site arrays and, per structure with a partly occupied or mixed site, the
    disorder reason (applied later, after the lattice checks, as the per-structure order was).
    """
    n = len(structures)
    matrices = np.zeros((n, 3, 3))
    n_sites = np.zeros(n, dtype=np.int64)
    coords: list[np.ndarray] = [np.zeros((0, 3))]
    numbers: list[int] = []
    disordered: dict[int, str] = {}
    for i, structure in enumerate(structures):
        if not isinstance(structure, Structure):
            reasons[i] = NotAStructureError(f"expected a pymatgen Structure, got {type(structure).__name__}").reason
            continue
        if not len(structure):
            reasons[i] = NotAStructureError("structure has no sites").reason
            continue
        matrices[i] = structure.lattice.matrix
        sites = structure.sites
        n_sites[i] = len(sites)
        coords.append(np.array([site.frac_coords for site in sites]))
        # A site's composition, read through len / num_atoms / elements: far cheaper than
        # Site.is_ordered / .specie or Composition.items() (which re-parses every key).
        for site in sites:
            composition = site.species
            if len(composition) == 1 and abs(composition.num_atoms - 1.0) <= 1e-8:
                numbers.append(getattr(composition.elements[0], "Z", 0))
                continue
            numbers.append(0)
            disordered.setdefault(i, f"partial occupancy or mixed species on a site: {composition}")
    frac = np.concatenate(coords).astype(np.float64, copy=False)
    return SiteArrays(matrices, frac, np.array(numbers, dtype=np.int64), n_sites), disordered


def _reject(reasons: list[str | None], failed: np.ndarray, message: object) -> None:
    """Give every still-accepted row where ``failed`` holds the reason ``message(i)``."""
    for i in np.flatnonzero(failed).tolist():
        if reasons[i] is None:
            reasons[i] = message(i).reason  # type: ignore[operator]


def check_sites(
    structures: Sequence[object], sites: SiteArrays, disordered: dict[int, str], settings: ParseSettings, reasons: list[str | None]
) -> None:
    """Whole-batch validity checks, in priority order: finite values, lattice, order, vocabulary."""
    owner = sites.owner
    n = len(sites.n_sites)
    with np.errstate(invalid="ignore", over="ignore"):
        bad_coords = np.bincount(owner, weights=~np.isfinite(sites.frac).all(axis=1), minlength=n) > 0
        non_finite = bad_coords | ~np.isfinite(sites.matrices).all(axis=(1, 2))
        _reject(reasons, non_finite, lambda i: NonFiniteValueError("lattice or coordinates contain NaN or infinity"))
        matrices = np.where(non_finite[:, None, None], np.eye(3), sites.matrices)
        lengths = np.linalg.norm(matrices, axis=2)
        volume = np.abs(np.linalg.det(matrices))
    degenerate = (lengths.min(axis=1) < MIN_LENGTH) | (volume < MIN_VOLUME_FRACTION * lengths.prod(axis=1))
    _reject(
        reasons,
        degenerate,
        lambda i: DegenerateLatticeError(f"lattice lengths {np.round(lengths[i], 4).tolist()}, volume {volume[i]:.4g}"),
    )
    for i, detail in disordered.items():
        if reasons[i] is None:
            reasons[i] = DisorderedStructureError(detail).reason
    vocabulary = np.array(sorted(settings.vocabulary_z), dtype=np.int64)
    unknown = np.bincount(owner, weights=~np.isin(sites.z, vocabulary), minlength=n) > 0
    _reject(reasons, unknown, lambda i: UnknownElementError(f"{_unknown_symbols(structures[i], settings)} not in the element vocabulary"))


def _unknown_symbols(structure: Structure, settings: ParseSettings) -> list[str]:
    return sorted({str(sp) for site in structure for sp in site.species if getattr(sp, "Z", 0) not in settings.vocabulary_z})


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


def canonical_sites(structure: Structure) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lattice matrix, fractional coordinates, atomic numbers) of the Niggli-reduced primitive cell,
    sites ordered by atomic number then coordinates, with the canonical origin."""
    try:
        reduced = structure.get_primitive_structure(tolerance=PRIMITIVE_TOLERANCE).get_reduced_structure("niggli")
    except Exception as error:  # pymatgen raises assorted errors on pathological cells
        raise CanonicalizationError(f"{type(error).__name__}: {error}") from error
    numbers = np.array([site.specie.Z for site in reduced], dtype=np.int64)
    columns = np.unique(numbers, return_inverse=True)[1].ravel()  # by atomic number, independent of site order
    frac, order = _canonical_origin_and_order(columns, _wrap(reduced.frac_coords))
    # Drop the ~1e-16 noise the origin shift leaves, so equivalent inputs give equal arrays.
    return reduced.lattice.matrix, _wrap(np.round(frac[order], 12)), numbers[order]


def canonicalize(structures: Sequence[object], sites: SiteArrays, reasons: list[str | None]) -> SiteArrays:
    """Replace every accepted structure's sites by its canonical cell's (per structure: pymatgen)."""
    n = len(structures)
    matrices = np.zeros((n, 3, 3))
    n_sites = np.zeros(n, dtype=np.int64)
    coords: list[np.ndarray] = [np.zeros((0, 3))]
    numbers: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
    for i, structure in enumerate(structures):
        if reasons[i] is not None:
            continue
        try:
            matrices[i], frac, z = canonical_sites(structure)  # type: ignore[arg-type]
        except EncodingError as error:
            reasons[i] = error.reason
            continue
        n_sites[i] = len(z)
        coords.append(frac)
        numbers.append(z)
    return SiteArrays(matrices, np.concatenate(coords), np.concatenate(numbers), n_sites)


def dense_chunk(sites: SiteArrays, settings: ParseSettings, reasons: list[str | None]) -> ParsedChunk:
    """Size limits, element columns (first appearance order), wrapping and padding for the whole batch."""
    n, max_sites, max_elements = len(sites.n_sites), settings.max_sites, settings.max_elements
    accepted = np.array([reason is None for reason in reasons], dtype=bool)
    _reject(reasons, accepted & (sites.n_sites > max_sites), lambda i: TooManySitesError(f"{sites.n_sites[i]} sites > max_sites {max_sites}"))
    accepted = np.array([reason is None for reason in reasons], dtype=bool)

    owner = sites.owner
    keep = accepted[owner]
    keys = owner[keep] * Z_KEY + sites.z[keep]
    unique_keys, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    key_owner = unique_keys // Z_KEY
    # Rank of each distinct element within its structure by first appearance (sites are grouped by owner).
    by_appearance = np.argsort(first, kind="stable")
    owner_sorted = key_owner[by_appearance]
    key_column = np.empty(len(unique_keys), dtype=np.int64)
    key_column[by_appearance] = np.arange(len(unique_keys)) - np.searchsorted(owner_sorted, owner_sorted)
    n_elements = np.bincount(key_owner, minlength=n)
    _reject(reasons, n_elements > max_elements, lambda i: TooManyElementsError(f"{n_elements[i]} elements > max_elements {max_elements}"))
    accepted = np.array([reason is None for reason in reasons], dtype=bool)

    site_owner = owner[keep]
    site_position = (np.arange(len(owner)) - sites.offsets[owner])[keep]
    filled = accepted[site_owner]
    site_owner, site_position = site_owner[filled], site_position[filled]
    kept_keys = accepted[key_owner]

    chunk = ParsedChunk(
        lattice_parameters=np.zeros((n, 6)),
        frac_coords=np.zeros((n, max_sites, 3)),
        site_column=np.full((n, max_sites), -1, dtype=np.int64),
        column_z=np.zeros((n, max_elements), dtype=np.int64),
        miller=None,
        g_norm=None,
        reasons=reasons,
    )
    chunk.frac_coords[site_owner, site_position] = _wrap(sites.frac[keep][filled])
    chunk.site_column[site_owner, site_position] = key_column[inverse.ravel()][filled]
    chunk.column_z[key_owner[kept_keys], key_column[kept_keys]] = unique_keys[kept_keys] % Z_KEY
    chunk.lattice_parameters[accepted] = lattice_parameters(sites.matrices[accepted])
    k = settings.n_reciprocal_points
    if k is not None:
        chunk.miller = np.zeros((n, k, 3), dtype=np.int64)
        chunk.g_norm = np.zeros((n, k))
        chunk.miller[accepted], chunk.g_norm[accepted] = batch_nearest_reciprocal_points(
            lattice_matrices(chunk.lattice_parameters[accepted]), k
        )
    return chunk


def parse_chunk(structures: Sequence[object], settings: ParseSettings) -> ParsedChunk:
    reasons: list[str | None] = [None] * len(structures)
    sites, disordered = extract_sites(structures, reasons)
    check_sites(structures, sites, disordered, settings, reasons)
    if settings.canonical != "as_given":
        sites = canonicalize(structures, sites, reasons)
    return dense_chunk(sites, settings, reasons)


def lattice_parameters(matrices: np.ndarray) -> np.ndarray:
    """(N, 6) (a, b, c, alpha, beta, gamma) of (N, 3, 3) lattice matrices, as pymatgen's Lattice.abc / .angles."""
    lengths = np.sqrt((matrices * matrices).sum(axis=2))
    angles = np.empty_like(lengths)
    for axis, (j, k) in enumerate(((1, 2), (2, 0), (0, 1))):
        cosine = (matrices[:, j] * matrices[:, k]).sum(axis=1) / (lengths[:, j] * lengths[:, k])
        angles[:, axis] = np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))
    return np.concatenate([lengths, angles], axis=1)


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
