"""The sampling funnel's distance test is the validation commands' overlap check (issue 21): one rule,
one wording, naming the atoms and their distance."""

from __future__ import annotations

import time

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from icrdesign.sampling import ValidityCriteria, structural_problem
from icrdesign.structure_checks import closest_pair, shortest_distance, structure_problem

CRITERIA = ValidityCriteria(min_distance=0.5, min_volume_per_atom=5.0, max_volume_per_atom=80.0)


def test_min_distance_names_the_closest_pair_and_its_distance() -> None:
    overlapping = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.05, 0, 0]])
    assert structural_problem(overlapping, CRITERIA) == (
        "min_distance", "atoms 0 (Na) and 1 (Cl) are 0.20 Å apart (closer than 0.5 Å)")
    # The validation commands refuse the same structure with the same words.
    assert structure_problem(overlapping).detail == structural_problem(overlapping, CRITERIA)[1]


def test_a_site_too_close_to_its_own_image_is_named() -> None:
    # 0.4 Å along a: every atom sits 0.4 Å from its own periodic image (volume 32.4 Å^3 passes).
    one_atom = Structure(Lattice.orthorhombic(0.4, 9.0, 9.0), ["Cu"], [[0, 0, 0]])
    assert structural_problem(one_atom, CRITERIA) == (
        "min_distance", "atom 0 (Cu) is 0.40 Å from its own periodic image (closer than 0.5 Å)")


def test_non_finite_coordinates_are_invalid_not_valid() -> None:
    # A NaN distance compares False with every threshold: the old test let this crystal through.
    broken = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [np.nan, 0.5, 0.5]])
    assert structural_problem(broken, CRITERIA) == (
        "non_finite", "atom 1 (Cl) has non-finite coordinates [nan, 0.5, 0.5]")


def test_closest_pair_is_the_shortest_distance_and_stays_cheap_on_large_cells() -> None:
    rng = np.random.default_rng(3)
    structure = Structure(Lattice.cubic(4.2), ["Na", "Cl"] * 4, rng.random((8, 3)))
    pair = closest_pair(structure, shortest_distance(structure) + 1e-6)
    assert pair is not None and pair.distance == pytest.approx(shortest_distance(structure))
    assert closest_pair(structure, 0.999 * shortest_distance(structure)) is None
    # A neighbour list within the threshold: 4,000 sites (a full distance matrix would hold 16 million
    # entries per periodic image) are checked in well under a second.
    big = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.69), ["Na", "Cl"], [[0, 0, 0], [0.5] * 3])
    big.make_supercell([10, 10, 5])
    start = time.perf_counter()
    assert closest_pair(big, 0.5) is None
    assert time.perf_counter() - start < 5.0
