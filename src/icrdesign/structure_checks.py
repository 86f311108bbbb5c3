"""Physical plausibility of a crystal structure, in one place for every reader of structures.

``relax``, ``dft`` and ``export-flows`` read their structure files with :func:`read_structure`, which
refuses a file it cannot read or a structure no engine can compute — non-finite numbers, a degenerate
cell, overlapping atoms, disordered sites — with a message naming the file and the cause. The sampling
funnel words its minimum-distance test with the same :func:`closest_pair`, so a too-short distance
reads the same wherever it was found.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NamedTuple

import numpy as np
from pymatgen.core import Structure

from icrdesign.errors import InputError

#: Two atoms closer than this (Å) overlap: no bond in any crystal is this short (H2 is 0.74 Å), so
#: such a structure is a parsing or generation error, and every engine fails on it obscurely.
OVERLAP_DISTANCE: Final[float] = 0.5
#: A cell whose volume is below this fraction of the product of its edge lengths is degenerate: its
#: lattice vectors are (numerically) linearly dependent.
DEGENERATE_VOLUME_FRACTION: Final[float] = 1e-6
#: How far a site's total occupancy may stray from 1 and still count as one whole atom.
OCCUPANCY_TOLERANCE: Final[float] = 1e-3


class StructureProblem(NamedTuple):
    """Why a structure cannot be computed: a short machine-readable ``reason`` and a ``detail`` that
    names the atoms, sites or numbers at fault."""

    reason: str
    detail: str


class StructureRefused(InputError):
    """An input structure refused before any calculation: ``reason`` is machine-readable (a failed
    record starts with it), the message names the file and the cause, and ``structure`` is what was
    read (None when the file could not be read)."""

    def __init__(self, source: str | os.PathLike[str], problem: StructureProblem,
                 structure: Structure | None = None) -> None:
        super().__init__(f"{source}: {problem.detail}")
        self.reason = problem.reason
        self.detail = problem.detail
        self.structure = structure

    @property
    def record_reason(self) -> str:
        """``<reason>: <detail>``, as a failed record states it."""
        return f"{self.reason}: {self.detail}"


@dataclass(frozen=True)
class SitePair:
    """Two sites and their distance, periodic images included; ``first == second`` is a site and its own
    periodic image (a cell vector that short)."""

    first: int
    second: int
    distance: float
    first_species: str
    second_species: str

    def __str__(self) -> str:
        if self.first == self.second:
            return f"atom {self.first} ({self.first_species}) is {self.distance:.2f} Å from its own periodic image"
        return (f"atoms {self.first} ({self.first_species}) and {self.second} ({self.second_species}) "
                f"are {self.distance:.2f} Å apart")


def closest_pair(structure: Structure, within: float) -> SitePair | None:
    """The two closest sites less than ``within`` Å apart, periodic images included, or None.

    A neighbour list within ``within`` costs about the same for any cell size, where a full distance
    matrix grows with the square of the number of sites.
    """
    centres, neighbours, _, distances = structure.get_neighbor_list(within)
    if len(distances) == 0:
        return None
    closest = int(np.argmin(distances))
    first, second = sorted((int(centres[closest]), int(neighbours[closest])))
    return SitePair(first, second, float(distances[closest]), structure[first].species_string,
                    structure[second].species_string)


def shortest_distance(structure: Structure) -> float:
    """Shortest distance between two sites, periodic images (and a site's own images) included."""
    # A site's own nearest image lies one shortest lattice vector away (LLL-reduced basis), so every
    # shorter distance is within that radius.
    own_image = float(np.linalg.norm(structure.lattice.get_lll_reduced_lattice().matrix, axis=1).min())
    pair = closest_pair(structure, own_image * (1 + 1e-9))
    return own_image if pair is None else min(pair.distance, own_image)


def cell_problem(structure: Structure) -> StructureProblem | None:
    """Non-finite lattice or coordinates, or a degenerate cell; None when the numbers describe a cell."""
    matrix = structure.lattice.matrix
    if not np.isfinite(matrix).all():
        return StructureProblem("non_finite", f"the lattice holds non-finite numbers: {matrix.tolist()}")
    frac = structure.frac_coords
    bad = np.flatnonzero(~np.isfinite(frac).all(axis=1))
    if len(bad):
        site = int(bad[0])
        return StructureProblem("non_finite", f"atom {site} ({structure[site].species_string}) has non-finite "
                                              f"coordinates {frac[site].tolist()}")
    edges = math.prod(structure.lattice.abc)
    if not structure.volume > DEGENERATE_VOLUME_FRACTION * edges:
        return StructureProblem("degenerate_cell", f"degenerate cell: volume {structure.volume:.3g} Å³ for edges "
                                                   f"{', '.join(f'{x:.3g}' for x in structure.lattice.abc)} Å "
                                                   "(the lattice vectors are linearly dependent)")
    return None


def structure_problem(structure: Structure) -> StructureProblem | None:
    """Why no engine can compute ``structure``, or None: a :func:`cell_problem`, atoms closer than
    :data:`OVERLAP_DISTANCE` (including atoms a reader merged into one site), or a disordered site."""
    if not len(structure):
        return StructureProblem("empty", "the structure holds no atoms")
    if (problem := cell_problem(structure)) is not None:
        return problem
    for index, site in enumerate(structure):
        # A CIF reader merges atoms at one position into one site: a total occupancy above 1.
        if site.species.num_atoms > 1 + OCCUPANCY_TOLERANCE:
            atoms = " and ".join(element.symbol for element, amount in site.species.items()
                                 for _ in range(max(1, round(amount))))
            return StructureProblem("overlapping_atoms", f"atoms {atoms} are 0.00 Å apart (merged into site {index}, "
                                                         f"fractional {np.round(site.frac_coords, 4).tolist()})")
    if (pair := closest_pair(structure, OVERLAP_DISTANCE)) is not None:
        return StructureProblem("overlapping_atoms", f"{pair} (closer than {OVERLAP_DISTANCE} Å)")
    for index, site in enumerate(structure):
        if not site.is_ordered or abs(site.species.num_atoms - 1) > OCCUPANCY_TOLERANCE:
            return StructureProblem("disordered", f"site {index} is disordered ({site.species_string}); only "
                                                  "ordered structures (one whole atom per site) can be computed")
    return None


def _cif_without_occupancy_check(path: Path) -> Structure | None:
    """The structure of a CIF as pymatgen reads it without its occupancy check, or None for any other
    file: the check drops a structure whose atoms share a position (pymatgen merges them into one site
    of occupancy above 1), which :func:`structure_problem` then names."""
    from pymatgen.io.cif import CifParser
    from pymatgen.io.registry import get_structure_format

    try:
        if get_structure_format(filename=str(path)).name != "cif":
            return None
        return CifParser(str(path)).parse_structures(primitive=False, check_occu=False)[0]
    except Exception:  # noqa: BLE001 - nothing readable even so: the first error stands
        return None


def read_structure(path: str | os.PathLike[str]) -> Structure:
    """The structure in ``path`` (any format pymatgen reads), refused unless an engine can compute it.

    Raises:
        InputError: the file does not exist.
        StructureRefused: the file holds no readable structure (reason ``unreadable_structure``), or the
            structure has a :func:`structure_problem` (its reason).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    with warnings.catch_warnings():
        # pymatgen warns about every CIF oddity; a refusal below says what matters.
        warnings.simplefilter("ignore")
        try:
            structure = Structure.from_file(str(path))
        except Exception as error:  # noqa: BLE001 - any parser failure is the file's fault
            structure = _cif_without_occupancy_check(path)
            problem = structure_problem(structure) if structure is not None else None
            if problem is None:
                raise StructureRefused(path, StructureProblem(
                    "unreadable_structure", f"cannot read a structure ({type(error).__name__}: {error})")) from error
            raise StructureRefused(path, problem, structure) from error
    if (problem := structure_problem(structure)) is not None:
        raise StructureRefused(path, problem, structure)
    return structure
