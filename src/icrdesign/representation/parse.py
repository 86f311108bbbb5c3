"""Parsing for encoding: pymatgen Structures -> dense per-batch arrays (checks, canonical form, site order).

Only two steps work one structure at a time: ``extract_sites`` (a structure's coordinate array and
one Python pass over its site compositions) and, for ``niggli_primitive``, ``canonical_sites`` (spglib's
primitive cell, its Niggli reduction and the canonical basis, hand and origin). Every check, wrap,
site-to-column link and reciprocal-point search runs on whole-batch numpy arrays.

The cells the ICR holds are those :func:`representable` accepts; encoding refuses every other cell
and decoding clips into the same set, so whatever a cell's angles, encode -> decode gives it back.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import spglib
from pymatgen.core import Lattice, Structure

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
from icrdesign.tolerances import SYMPREC

# Tolerance (angstrom) of the pure-translation search for the primitive cell. Not SYMPREC (0.1):
# sites merged by a pseudo-translation move by up to half the tolerance, and the round trip
# (ROUNDTRIP_MATCHER, about 0.03 A for typical cells) must still match; exact conventional cells
# reduce at any tolerance.
PRIMITIVE_TOLERANCE = 0.05
# Fractional coordinates closer than this count as equal when the canonical form orders sites and
# chooses its basis and origin: far above floating-point and refinement noise, far below real gaps.
ORDER_TOLERANCE = 1e-4
# A wrapped fractional coordinate this close below 1 is the site at 0 (floating-point noise).
WRAP_EPSILON = 1e-6
# The cells the ICR holds: lattice lengths (angstrom) in LENGTH_RANGE and a volume of at least
# MIN_VOLUME_FRACTION * a*b*c (below it the vectors are nearly coplanar). Encoding refuses any other
# cell and decoding clips model outputs into the same set, so every encoded cell decodes as it was.
LENGTH_RANGE = (1.0, 200.0)
MIN_VOLUME_FRACTION = 1e-3
# Integer coefficients searched for the lattice vectors of the alternative reduced bases: a
# Niggli-reduced basis spans every vector about as long as its own with coefficients in [-2, 2].
BASIS_SEARCH_RANGE = 2
_BASIS_COEFFICIENTS = np.array(
    [n for n in itertools.product(range(-BASIS_SEARCH_RANGE, BASIS_SEARCH_RANGE + 1), repeat=3) if any(n)], dtype=np.int64
)
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
    wrapped[wrapped >= 1.0 - WRAP_EPSILON] = 0.0
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
        parameters = lattice_parameters(matrices)
        fraction = volume_fractions(parameters)
    # Too long a vector is no defect of the crystal: the canonical cell may hold it (checked in dense_chunk).
    degenerate = (parameters[:, :3].min(axis=1) < LENGTH_RANGE[0]) | ~(fraction >= MIN_VOLUME_FRACTION)
    _reject(
        reasons,
        degenerate,
        lambda i: DegenerateLatticeError(
            f"lattice lengths {np.round(parameters[i, :3], 4).tolist()}, volume fraction V/abc {fraction[i]:.4g} "
            f"(needs lengths >= {LENGTH_RANGE[0]} Å and V/abc >= {MIN_VOLUME_FRACTION})"
        ),
    )
    for i, detail in disordered.items():
        if reasons[i] is None:
            reasons[i] = DisorderedStructureError(detail).reason
    vocabulary = np.array(sorted(settings.vocabulary_z), dtype=np.int64)
    unknown = np.bincount(owner, weights=~np.isin(sites.z, vocabulary), minlength=n) > 0
    _reject(reasons, unknown, lambda i: UnknownElementError(f"{_unknown_symbols(structures[i], settings)} not in the element vocabulary"))


def _unknown_symbols(structure: Structure, settings: ParseSettings) -> list[str]:
    return sorted({str(sp) for site in structure for sp in site.species if getattr(sp, "Z", 0) not in settings.vocabulary_z})


def equivalent_bases(matrix: np.ndarray) -> np.ndarray:
    """Integer matrices S (det +1, identity included) for which S @ ``matrix`` is a basis of the same
    lattice whose metric tensor matches ``matrix``'s to within SYMPREC.

    For a reduced cell these are the bases a reduction could equally have returned: those related by
    the lattice's own symmetry (a Niggli cell of a C-centred or pseudo-symmetric lattice has several,
    and which one pymatgen returns depends on the input cell), and, on a boundary of the Niggli
    conditions, the variants across it. Two vectors within SYMPREC of each other change a dot
    product u.v by at most SYMPREC * (|u| + |v|).
    """
    metric = matrix @ matrix.T
    lengths = np.sqrt(np.diag(metric))
    tolerance = SYMPREC * (lengths[:, None] + lengths[None, :])
    vectors = _BASIS_COEFFICIENTS @ matrix
    squared = (vectors * vectors).sum(axis=1)
    axes = [np.flatnonzero(np.abs(squared - metric[i, i]) <= tolerance[i, i]) for i in range(3)]

    def fits(i: int, j: int) -> np.ndarray:
        return np.abs(vectors[axes[i]] @ vectors[axes[j]].T - metric[i, j]) <= tolerance[i, j]

    first, second, third = np.nonzero(fits(0, 1)[:, :, None] & fits(0, 2)[:, None, :] & fits(1, 2)[None, :, :])
    bases = np.stack([_BASIS_COEFFICIENTS[axes[0][first]], _BASIS_COEFFICIENTS[axes[1][second]],
                      _BASIS_COEFFICIENTS[axes[2][third]]], axis=1)
    return bases[np.round(np.linalg.det(bases)).astype(np.int64) == 1]


def _tolerant_ranks(values: np.ndarray) -> np.ndarray:
    """Rank of each value along the last axis, where values within ORDER_TOLERANCE of their sorted
    neighbour share a rank: an order that noise below the tolerance cannot change (rounding to a grid
    can, for a value next to a grid boundary)."""
    order = np.argsort(values, axis=-1, kind="stable")
    steps = np.diff(np.take_along_axis(values, order, axis=-1), axis=-1) > ORDER_TOLERANCE
    sorted_ranks = np.concatenate([np.zeros(steps.shape[:-1] + (1,), dtype=np.int64), np.cumsum(steps, axis=-1)], axis=-1)
    ranks = np.empty_like(sorted_ranks)
    np.put_along_axis(ranks, order, sorted_ranks, axis=-1)
    return ranks


def _smallest_row(keys: np.ndarray) -> int:
    """Index of the lexicographically smallest row of ``keys``, entries within ORDER_TOLERANCE counting
    as equal; the first of equal rows."""
    remaining = np.arange(len(keys))
    for column in keys.T:
        values = column[remaining]
        remaining = remaining[values <= values.min() + ORDER_TOLERANCE]
        if len(remaining) == 1:
            break
    return int(remaining[0])


def _canonical_choice(columns: np.ndarray, frac: np.ndarray, bases: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """The (basis, hand, origin, site order) whose sorted coordinate list is lexicographically smallest.

    Each candidate re-expresses the sites in one of ``bases`` (integer matrices, rows = new vectors in
    the old basis), as given or inverted (x -> -x: the mirror image, which StructureMatcher, and so
    every "same crystal" test of the project, counts as the same crystal), shifts one site of the least
    frequent element column to the origin and sorts the sites by column, then x, y, z. Coordinates are
    compared with ORDER_TOLERANCE, so noise does not change the choice; symmetry-equivalent candidates
    give equal lists, so the choice among them does not matter.

    Returns (index of the chosen basis, the sites' (n, 3) coordinates in that basis, hand and origin
    in the given site order, and the canonical site order).
    """
    counts = np.bincount(columns)
    anchors = np.flatnonzero(columns == int(np.argmin(np.where(counts > 0, counts, np.iinfo(np.int64).max))))
    # Coordinates in basis S @ M: f @ inv(S); inv(S) is an integer matrix as det(S) = 1.
    in_basis = np.einsum("nj,bjk->bnk", frac, np.round(np.linalg.inv(bases)))
    in_basis = _wrap(np.concatenate([in_basis, -in_basis]))  # (2B, n, 3): each basis as given and inverted
    shifted = _wrap(in_basis[:, None, :, :] - in_basis[:, anchors, None, :])  # (2B, anchors, n, 3)
    # A coordinate within the tolerance below 1 is the 0 that noise pushed below zero.
    shifted[shifted > 1.0 - ORDER_TOLERANCE] = 0.0
    ranks = [_tolerant_ranks(shifted[..., axis]) for axis in range(3)]
    orders = np.lexsort((ranks[2], ranks[1], ranks[0], np.broadcast_to(columns, shifted.shape[:-1])), axis=-1)
    sorted_coordinates = np.take_along_axis(shifted, orders[..., None], axis=2).reshape(-1, 3 * len(columns))
    candidate, anchor = divmod(_smallest_row(sorted_coordinates), len(anchors))
    return candidate % len(bases), shifted[candidate, anchor], orders[candidate, anchor]


def _lattice_basis(generators: np.ndarray) -> np.ndarray:
    """A basis (3 integer rows) of the lattice that integer ``generators`` (k >= 3 rows, full rank) span:
    Euclid's algorithm down each column (a row Hermite form)."""
    rows = [row for row in generators.astype(np.int64)]
    basis = []
    for column in range(3):
        while len(nonzero := [row for row in rows if row[column]]) > 1:
            pivot = min(nonzero, key=lambda row: abs(row[column]))
            rows = [row if row is pivot or not row[column] else row - (row[column] // pivot[column]) * pivot for row in rows]
        basis.extend(nonzero)
        rows = [row for row in rows if row[column] == 0]
    return np.array(basis)


def primitive_cell(structure: Structure) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lattice matrix, fractional coordinates, atomic numbers) of the structure's primitive cell.

    Pure translations are those moving the first site of the least frequent element onto another
    site of it that map every site onto a site of its element within PRIMITIVE_TOLERANCE (Cartesian,
    in the Delaunay-reduced cell, where the nearest image is the wrapped difference); sites they map
    onto each other are merged at their mean position. The test is intrinsic, so every cell of one
    crystal gives the same primitive lattice: pymatgen's ``get_primitive_structure`` can stop at a
    supercell of it for some cells and not for others (seen for a pseudo-centred Ama2 crystal), and
    spglib's standardisation gives the same cell as this at 20-40 times the cost.
    """
    numbers = np.array([site.specie.Z for site in structure], dtype=np.int64)
    delaunay = spglib.delaunay_reduce(structure.lattice.matrix)
    if delaunay is None:  # older spglib reports failure by returning None
        raise CanonicalizationError("spglib could not Delaunay-reduce the lattice")
    reduced = np.asarray(delaunay, dtype=np.float64)
    to_reduced = np.round(reduced @ np.linalg.inv(structure.lattice.matrix))  # reduced = T @ given, T unimodular
    frac = _wrap(structure.frac_coords @ np.linalg.inv(to_reduced))
    elements, counts = np.unique(numbers, return_counts=True)
    anchors = np.flatnonzero(numbers == elements[np.argmin(counts)])
    same_element = numbers[:, None] == numbers[None, :]

    def images(shifts: np.ndarray, matrix: np.ndarray, coords: np.ndarray) -> np.ndarray:
        """(T, n, n): whether site j lies within the tolerance of site i moved by shift t."""
        offset = coords[None, :, None, :] + shifts[:, None, None, :] - coords[None, None, :, :]
        offset -= np.round(offset)
        return (np.linalg.norm(offset @ matrix, axis=-1) < PRIMITIVE_TOLERANCE) & same_element

    shifts = frac[anchors[1:]] - frac[anchors[0]]
    translations = shifts[images(shifts, reduced, frac).any(axis=2).all(axis=1)]
    index = len(translations) + 1  # the number of primitive cells in the given one
    if index == 1:
        return reduced, frac, numbers
    # Translations of a primitive cell index times smaller have denominators dividing index.
    generators = np.round(np.concatenate([index * np.eye(3), index * translations]))
    basis = _lattice_basis(generators) / index
    primitive = basis @ reduced
    coords = _wrap(frac @ np.linalg.inv(basis))
    copies = images(np.zeros((1, 3)), primitive, coords)[0]  # (n, n) sites that are one primitive site
    if len(numbers) % index or round(1 / abs(np.linalg.det(basis))) != index or (copies.sum(axis=1) != index).any():
        raise CanonicalizationError(f"pure translations within {PRIMITIVE_TOLERANCE} Å do not form a group (pseudo-symmetry)")
    keep = np.flatnonzero(copies.argmax(axis=1) == np.arange(len(numbers)))  # the first site of each set
    offsets = coords[None, :, :] - coords[keep, None, :]
    offsets -= np.round(offsets)
    mean = (offsets * copies[keep, :, None]).sum(axis=1) / index
    return primitive, _wrap(coords[keep] + mean), numbers[keep]


def canonical_sites(structure: Structure) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lattice matrix, fractional coordinates, atomic numbers) of the canonical cell: the
    Niggli-reduced primitive cell in the basis (among :func:`equivalent_bases`), hand and origin (a
    site of the least frequent element) that give the smallest sorted coordinate list
    (:func:`_canonical_choice`); sites ordered by atomic number then coordinates.

    Every cell of one crystal (conventional, primitive, supercell, permuted, shifted, any basis, its
    mirror image) gives the same result up to floating-point noise.
    """
    matrix, frac, numbers = primitive_cell(structure)
    try:
        reduced = Lattice(matrix).get_niggli_reduced_lattice().matrix
    except ValueError as error:  # "can't find niggli" on pathological cells
        raise CanonicalizationError(f"Niggli reduction failed: {error}") from error
    # reduced = S @ matrix with S integer (det 1): the same sites have coordinates frac @ inv(S).
    to_reduced = np.round(np.linalg.inv(np.round(reduced @ np.linalg.inv(matrix))))
    columns = np.unique(numbers, return_inverse=True)[1].ravel()  # by atomic number, independent of site order
    bases = equivalent_bases(reduced)
    basis, frac, order = _canonical_choice(columns, _wrap(frac @ to_reduced), bases)
    # Drop the ~1e-16 noise the basis change and origin shift leave, so equivalent inputs give equal arrays.
    return bases[basis] @ reduced, _wrap(np.round(frac[order], 12)), numbers[order]


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
    """Cell and size limits, element columns (first appearance order), wrapping and padding for the whole batch.

    A left-handed cell (det < 0) is stored as (-a, -b, -c) with coordinates -x: the same lattice
    parameters and atoms, in the right-handed basis that decoding builds (as given, decoding would
    return the mirror image).
    """
    n, max_sites, max_elements = len(sites.n_sites), settings.max_sites, settings.max_elements
    accepted = np.array([reason is None for reason in reasons], dtype=bool)
    parameters = np.zeros((n, 6))
    parameters[accepted] = lattice_parameters(sites.matrices[accepted])
    # Judged on the float32 values the array will hold, exactly as decoding judges them.
    stored = parameters.astype(np.float32).astype(np.float64)
    _reject(reasons, accepted & ~representable(stored), lambda i: DegenerateLatticeError(
        f"lattice lengths {np.round(parameters[i, :3], 4).tolist()} Å, volume fraction V/abc "
        f"{volume_fractions(stored[i : i + 1])[0]:.4g}: the ICR holds lengths in {list(LENGTH_RANGE)} Å and V/abc >= "
        f"{MIN_VOLUME_FRACTION}"
    ))
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
    handedness = np.where(np.linalg.det(sites.matrices) < 0, -1.0, 1.0)
    chunk.frac_coords[site_owner, site_position] = _wrap(handedness[site_owner, None] * sites.frac[keep][filled])
    chunk.site_column[site_owner, site_position] = key_column[inverse.ravel()][filled]
    chunk.column_z[key_owner[kept_keys], key_column[kept_keys]] = unique_keys[kept_keys] % Z_KEY
    chunk.lattice_parameters[accepted] = parameters[accepted]
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


def volume_fractions(parameters: np.ndarray) -> np.ndarray:
    """V / (a b c) of (N, 6) lattice parameters (a function of the angles alone); 0 where they describe no cell."""
    cosines = np.cos(np.radians(parameters[:, 3:6]))
    squared = 1.0 - (cosines * cosines).sum(axis=1) + 2.0 * cosines.prod(axis=1)
    return np.sqrt(np.maximum(squared, 0.0))


def representable(parameters: np.ndarray) -> np.ndarray:
    """Bool per row of (N, 6) lattice parameters: a cell the ICR holds (lengths in LENGTH_RANGE,
    V/abc >= MIN_VOLUME_FRACTION); encoding refuses, and decoding rejects, every other cell."""
    lengths = parameters[:, :3]
    in_range = ((lengths >= LENGTH_RANGE[0]) & (lengths <= LENGTH_RANGE[1])).all(axis=1)
    return in_range & (volume_fractions(parameters) >= MIN_VOLUME_FRACTION)


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
