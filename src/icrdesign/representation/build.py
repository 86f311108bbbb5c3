"""Fast construction of many pymatgen Structures from checked arrays (the decoding bottleneck).

``Structure(Lattice(matrix), species, coords)`` validates and copies every site; decoded arrays are
already checked, so the objects are filled directly. benchmarks/decode_build.py (5,000 demo-like
crystals, pymatgen 2026.10.16, two runs on 2 shared cores): the public constructors build 4.5-5.4x
slower and make ``ICR.decode`` 2.4-2.7x slower. ``fast_construction_supported`` verifies once per process that the direct fill gives
objects equal, attribute for attribute, to the public constructors' (a pymatgen upgrade that changes
their internals switches decoding back to the public path, and fails a test that checks the objects'
public behaviour).
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Sequence

import numpy as np
from pymatgen.core import Composition, Lattice, PeriodicSite, Structure


def _fast_structure(matrix: np.ndarray, species: Sequence[Composition], frac: Sequence[np.ndarray]) -> Structure:
    """``matrix`` read-only (3, 3) float64; ``frac`` float64 (3,) arrays in [0, 1) (one per site, not shared)."""
    lattice = object.__new__(Lattice)
    lattice.__dict__ = {
        "_matrix": matrix,
        "_inv_matrix": None,
        "_diags": None,
        "_lll_matrix_mappings": {},
        "_lll_inverse": None,
        "_pbc": (True, True, True),
    }
    sites = []
    for composition, coords in zip(species, frac):
        site = object.__new__(PeriodicSite)
        # Site overrides __setattr__ (assigning __dict__ would go through it); update the dict in place.
        site.__dict__.update(
            {"_lattice": lattice, "_frac_coords": coords, "_species": composition, "_coords": None, "properties": {}, "_label": None}
        )
        sites.append(site)
    structure = object.__new__(Structure)
    structure.__dict__ = {"_lattice": lattice, "_sites": sites, "_charge": None, "_properties": {}}
    return structure


def _public_structure(matrix: np.ndarray, species: Sequence[Composition], frac: Sequence[np.ndarray]) -> Structure:
    return Structure(Lattice(matrix), list(species), np.array(frac).reshape(-1, 3))


def _state(obj: object) -> dict[str, object]:
    return {key: (value.tolist() if isinstance(value, np.ndarray) else value) for key, value in vars(obj).items() if key != "_lattice"}


@functools.cache
def fast_construction_supported() -> bool:
    """Whether the direct fill reproduces the public constructors in this pymatgen version."""
    matrix = np.array([[3.0, 0.0, 0.0], [0.5, 3.5, 0.0], [0.2, 0.3, 4.0]])
    matrix.setflags(write=False)
    species = [Composition({"Na": 1}), Composition({"Cl": 1})]
    frac = [np.array([0.0, 0.0, 0.0]), np.array([0.5, 0.25, 0.125])]
    fast, public = _fast_structure(matrix, species, frac), _public_structure(matrix, species, frac)
    return (
        _state(fast).keys() == _state(public).keys()
        and _state(fast.lattice) == _state(public.lattice)
        and all(_state(a) == _state(b) for a, b in zip(fast, public))
        and fast.as_dict() == public.as_dict()
    )


def structures_from_arrays(
    matrices: np.ndarray, species: Sequence[Composition], frac: np.ndarray, n_sites: Sequence[int]
) -> list[Structure]:
    """One Structure per (3, 3) matrix; structure i takes the next n_sites[i] species / coordinate rows."""
    build = _fast_structure if fast_construction_supported() else _public_structure
    matrices = np.array(matrices, dtype=np.float64)  # private copy: lattices hold read-only views of it
    matrices.setflags(write=False)
    rows = list(np.array(frac, dtype=np.float64))  # each site gets its own row (a view of one private copy)
    structures, start = [], 0
    # The new objects form no reference cycles; without this the cyclic collector would rescan every
    # live object (the whole dataset) many times while they are created, several times the build cost.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for matrix, count in zip(matrices, n_sites):
            structures.append(build(matrix, species[start : start + count], rows[start : start + count]))
            start += count
    finally:
        if collecting:
            gc.enable()
    return structures
