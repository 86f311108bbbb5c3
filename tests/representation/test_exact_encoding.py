"""Exact encoding of real cells (issue #20): ``as_given`` round-trips every cell the ICR holds, whatever
its angles or hand; ``niggli_primitive`` gives one array per crystal, whichever cell describes it."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from icrdesign.representation import ICR, MinMaxScaler, reason_code
from icrdesign.representation.parse import LENGTH_RANGE, MIN_VOLUME_FRACTION
from icrdesign.representation.roundtrip import structures_match
from icrdesign.tolerances import ROUNDTRIP_MATCHER, SYMPREC

# Low-symmetry intermetallic-like crystals with 24-site conventional and 12-site primitive cells:
# (space group, lattice parameters, species, coordinates); C-, A- and I-centred, monoclinic and
# orthorhombic, centrosymmetric, polar and chiral (C2).
INTERMETALLICS = (
    ("C2/m", (11.7, 4.7, 8.4, 90.0, 108.0, 90.0), ["Al", "Ni", "Ti"],
     [[0.316, 0.25, 0.86], [0.501, 0.264, 0.321], [0.25, 0.75, 0.65]]),
    ("C2", (11.0, 4.9, 7.9, 90.0, 104.0, 90.0), ["Al", "Ni", "Ti", "Al", "Ni", "Ti"],
     [[0.735, 0.188, 0.63], [0.436, 0.867, 0.593], [0.303, 0.245, 0.7], [0.25, 0.609, 0.909], [0.918, 0.141, 0.102],
      [0.635, 0.5, 0.413]]),
    ("Cmce", (8.7, 9.5, 7.0, 90.0, 90.0, 90.0), ["Al", "Ni", "Ti"],
     [[0.0, 0.956, 0.222], [0.0, 0.199, 0.742], [0.5, 0.118, 0.299]]),
    ("Amm2", (4.7, 10.2, 10.8, 90.0, 90.0, 90.0), ["Al", "Ni", "Ti"],
     [[0.314, 0.084, 0.92], [0.694, 0.659, 0.766], [0.75, 0.634, 0.574]]),
    ("Imm2", (4.6, 8.2, 10.4, 90.0, 90.0, 90.0), ["Al", "Ni", "Ti"],
     [[0.335, 0.408, 0.189], [0.25, 0.608, 0.549], [0.21, 0.671, 0.372]]),
)
ROCKSALT_SHEAR = np.array([[1, 0, 0], [0, 1, 0], [5, 0, 1]])
HYPOTHESIS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@functools.cache
def _intermetallic(group: str) -> tuple[Structure, Structure]:
    """(conventional, primitive) standard cells, built once (from_spacegroup costs ~1 s)."""
    symbol, parameters, species, coords = next(entry for entry in INTERMETALLICS if entry[0] == group)
    analyzer = SpacegroupAnalyzer(Structure.from_spacegroup(symbol, Lattice.from_parameters(*parameters), species, coords),
                                  symprec=SYMPREC)
    return analyzer.get_conventional_standard_structure(), analyzer.get_primitive_standard_structure()


@functools.cache
def _base_crystals() -> tuple[Structure, ...]:
    """Primitive cells the unimodular transformations start from: rocksalt, wurtzite, a polar intermetallic."""
    rocksalt = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    wurtzite = Structure.from_spacegroup("P6_3mc", Lattice.hexagonal(3.25, 5.21), ["Zn", "O"],
                                         [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.382]])
    return rocksalt.get_primitive_structure(), wurtzite, _intermetallic("Amm2")[1]


def transformed(structure: Structure, matrix: np.ndarray) -> Structure:
    """The same crystal in the basis ``matrix @ lattice`` (``matrix`` integer, det +-1), sites in the same order."""
    matrix = np.asarray(matrix, dtype=float)
    return Structure(Lattice(matrix @ structure.lattice.matrix), structure.species,
                     structure.frac_coords @ np.linalg.inv(matrix))


def mirror_image(structure: Structure) -> Structure:
    """The structure inverted through the origin (the other enantiomer of a chiral crystal)."""
    return Structure(structure.lattice, structure.species, -structure.frac_coords)


@st.composite
def unimodular_matrices(draw: st.DrawFn) -> np.ndarray:
    """Integer 3x3 matrices of determinant +-1: up to three shears (multiples up to 5), then a signed permutation."""
    matrix = np.eye(3, dtype=np.int64)
    for _ in range(draw(st.integers(1, 3))):
        row, column = draw(st.permutations(range(3)))[:2]
        shear = np.eye(3, dtype=np.int64)
        shear[row, column] = draw(st.integers(-5, 5))
        matrix = shear @ matrix
    permutation = np.eye(3, dtype=np.int64)[draw(st.permutations(range(3)))]
    signs = np.diag(draw(st.lists(st.sampled_from([-1, 1]), min_size=3, max_size=3)))
    return signs @ permutation @ matrix


def volume_fraction(structure: Structure) -> float:
    return structure.volume / float(np.prod(structure.lattice.abc))


def assert_exact_roundtrip(icr: ICR, structure: Structure) -> Structure:
    """Encode -> decode as given: same lattice parameters, the same sites in the same order, a tight match."""
    batch = icr.encode([structure], n_jobs=1)
    assert batch.mask[0], batch.reasons
    (decoded,) = icr.decode(batch.array)
    assert decoded is not None
    np.testing.assert_allclose(decoded.lattice.abc, structure.lattice.abc, rtol=1e-6)
    np.testing.assert_allclose(decoded.lattice.angles, structure.lattice.angles, atol=1e-4)
    assert [site.specie for site in decoded] == [site.specie for site in structure]
    # A left-handed cell is stored in the right-handed basis (-a, -b, -c): the coordinates change sign.
    hand = np.sign(np.linalg.det(structure.lattice.matrix))
    offset = decoded.frac_coords - hand * structure.frac_coords
    assert np.abs(offset - np.round(offset)).max() < 1e-5
    assert StructureMatcher(**ROUNDTRIP_MATCHER, scale=False, primitive_cell=False).fit(structure, decoded)
    return decoded


def canonical_arrays(structures: list[Structure], max_sites: int = 24) -> np.ndarray:
    batch = ICR(max_sites=max_sites, max_elements=3).encode(structures, n_jobs=1)
    assert batch.mask.all(), batch.reasons
    return batch.array


# ---------------------------------------------------------------- as_given: any angle, any hand
@pytest.mark.parametrize(
    "lattice",
    [
        Lattice.rhombohedral(7.9, 16.9),  # a primitive rhombohedral cell MP stores
        Lattice.from_parameters(4.1, 19.3, 5.2, 90.0, 90.0, 11.5),
        Lattice.from_parameters(5.0, 5.6, 6.1, 84.0, 95.0, 164.7),
        Lattice.from_parameters(3.1, 3.2, 30.5, 172.0, 8.5, 179.0 - 8.5 - 0.4),
    ],
    ids=["alpha=16.9", "gamma=11.5", "gamma=164.7", "two-extreme"],
)
def test_as_given_roundtrips_extreme_angles(lattice: Lattice) -> None:
    assert volume_fraction(Structure(lattice, ["Si"], [[0, 0, 0]])) >= MIN_VOLUME_FRACTION
    structure = Structure(lattice, ["Si", "Ge", "Si"], [[0, 0, 0], [0.31, 0.52, 0.27], [0.7, 0.1, 0.9]])
    assert_exact_roundtrip(ICR(max_sites=4, max_elements=2, canonical="as_given"), structure)


def test_sheared_rocksalt_roundtrips_as_given_and_encodes_as_the_original() -> None:
    rocksalt = _base_crystals()[0]
    sheared = transformed(rocksalt, ROCKSALT_SHEAR)
    assert min(sheared.lattice.angles) < 20.0  # the cell the old clipping to [20, 160] degrees moved
    assert_exact_roundtrip(ICR(max_sites=4, max_elements=2, canonical="as_given"), sheared)
    arrays = canonical_arrays([rocksalt, sheared])
    np.testing.assert_allclose(arrays[0], arrays[1], atol=1e-5)


@HYPOTHESIS
@given(crystal=st.sampled_from(range(3)), matrix=unimodular_matrices())
def test_unimodular_transforms_roundtrip_as_given_and_share_the_canonical_array(crystal: int, matrix: np.ndarray) -> None:
    original = _base_crystals()[crystal]
    cell = transformed(original, matrix)
    fraction, longest = volume_fraction(cell), max(cell.lattice.abc)
    as_given = ICR(max_sites=12, max_elements=3, canonical="as_given")
    if fraction < MIN_VOLUME_FRACTION or longest > LENGTH_RANGE[1]:
        (reason,) = as_given.encode([cell], n_jobs=1).reasons
        assert reason_code(reason) == "degenerate_lattice"
    elif fraction > 1.001 * MIN_VOLUME_FRACTION and longest < 0.999 * LENGTH_RANGE[1]:  # clear of float32 rounding
        assert_exact_roundtrip(as_given, cell)
    if fraction >= MIN_VOLUME_FRACTION:  # the input check of the canonical form
        arrays = canonical_arrays([original, cell], max_sites=12)
        np.testing.assert_allclose(arrays[0], arrays[1], atol=1e-5)


def test_left_handed_cell_keeps_its_hand() -> None:
    """As given, a left-handed cell of a chiral crystal decodes to that crystal, not to its mirror image."""
    quartz_like = Structure.from_spacegroup("P3_121", Lattice.hexagonal(4.91, 5.40), ["Si", "O"],
                                            [[0.47, 0.0, 1 / 3], [0.41, 0.27, 0.45]])
    left_handed = Structure(Lattice(-quartz_like.lattice.matrix), quartz_like.species, -quartz_like.frac_coords)
    assert np.linalg.det(left_handed.lattice.matrix) < 0
    decoded = assert_exact_roundtrip(ICR(max_sites=12, max_elements=2, canonical="as_given"), left_handed)
    symbol = SpacegroupAnalyzer(decoded, symprec=SYMPREC).get_space_group_symbol()
    assert symbol == "P3_121"
    assert SpacegroupAnalyzer(mirror_image(quartz_like), symprec=SYMPREC).get_space_group_symbol() == "P3_221"


def test_cells_outside_the_representable_set_are_refused_with_the_limits() -> None:
    icr = ICR(max_sites=4, max_elements=2, canonical="as_given")
    long_cell = transformed(_base_crystals()[0], [[1, 0, 0], [0, 1, 0], [60, 0, 1]])  # c about 240 A
    flat_cell = Structure(Lattice.from_parameters(4.0, 4.0, 4.0, 90.0, 90.0, 0.05), ["Si"], [[0, 0, 0]])
    batch = icr.encode([long_cell, flat_cell], n_jobs=1)
    assert [reason_code(reason) for reason in batch.reasons] == ["degenerate_lattice"] * 2
    assert "[1.0, 200.0] Å" in batch.reasons[0] and "V/abc" in batch.reasons[1]
    # The canonical form holds the long cell's crystal: its reduced cell is short.
    assert ICR(max_sites=4, max_elements=2).encode([long_cell], n_jobs=1).mask[0]


def test_scaled_roundtrip_and_model_like_outputs_give_valid_cells() -> None:
    """The trained-model contract: min-max scaling keeps extreme cells exact, and any [0, 1] output
    decodes to a representable cell or to None with a reason."""
    icr = ICR(max_sites=12, max_elements=3, canonical="as_given")
    cells = [transformed(crystal, ROCKSALT_SHEAR) for crystal in _base_crystals()] + list(_base_crystals())
    batch = icr.encode(cells, n_jobs=1)
    assert batch.mask.all(), batch.reasons
    scaler = MinMaxScaler().fit(batch.array)
    for cell, decoded in zip(cells, icr.decode(scaler.inverse_transform(scaler.transform(batch.array)))):
        assert decoded is not None
        np.testing.assert_allclose(decoded.lattice.angles, cell.lattice.angles, atol=1e-3)
        assert structures_match(cell, decoded)
    outputs = np.random.default_rng(0).uniform(0, 1, (200, icr.n_rows, icr.n_channels))
    structures, reasons = icr.decode_with_reasons(scaler.inverse_transform(outputs))
    assert sum(structure is not None for structure in structures) > 0
    for structure, reason in zip(structures, reasons):
        assert (structure is None) != (reason is None)
        if structure is not None:
            assert volume_fraction(structure) >= MIN_VOLUME_FRACTION * (1 - 1e-9)
            assert LENGTH_RANGE[0] <= min(structure.lattice.abc) and max(structure.lattice.abc) <= LENGTH_RANGE[1]


# ---------------------------------------------------------------- niggli_primitive: one array per crystal
@pytest.mark.parametrize("group", [entry[0] for entry in INTERMETALLICS])
def test_cells_of_one_intermetallic_encode_identically(group: str) -> None:
    conventional, primitive = _intermetallic(group)
    assert (len(conventional), len(primitive)) == (24, 12)
    rng = np.random.default_rng(1)
    supercell = primitive.copy()
    supercell.make_supercell([[1, 1, 0], [0, 1, 0], [0, 0, 2]])
    shifted = conventional.copy()
    shifted.translate_sites(list(range(len(shifted))), [0.137, 0.271, 0.319])
    permuted = Structure.from_sites([primitive[i] for i in rng.permutation(len(primitive))])
    noisy = Structure(primitive.lattice, primitive.species,
                      primitive.cart_coords + rng.normal(0, 1e-6, (len(primitive), 3)), coords_are_cartesian=True)
    variants = [
        conventional, primitive, supercell, shifted, permuted, noisy, mirror_image(conventional),
        transformed(primitive, ROCKSALT_SHEAR), transformed(conventional, [[0, 1, 0], [1, 0, 0], [0, 1, -1]]),
    ]
    arrays = canonical_arrays(variants)
    for array in arrays[1:]:
        np.testing.assert_allclose(array, arrays[0], atol=1e-5)
    icr = ICR(max_sites=24, max_elements=3)
    assert icr.block(arrays, "occupancy")[0].sum() == 12
    assert structures_match(conventional, icr.decode(arrays[:1])[0])
