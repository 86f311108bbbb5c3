"""Round-trip check: does decode(encode(s)) reproduce s?"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence

import numpy as np
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure

from icrdesign.representation.icr import ICR

# The tolerances the representation promises to reproduce a structure within.
MATCH_TOLERANCES = {"ltol": 0.01, "stol": 0.01, "angle_tol": 0.1}


def structures_match(original: Structure, decoded: Structure | None) -> bool:
    """Same (reduced) composition and a StructureMatcher match at the tight round-trip tolerances.

    Reduced, because the niggli_primitive form returns the primitive cell of a conventional one.
    """
    if decoded is None or original.composition.reduced_composition != decoded.composition.reduced_composition:
        return False
    return bool(StructureMatcher(**MATCH_TOLERANCES, scale=False).fit(original, decoded))


_FORK_PAIRS: Sequence[tuple[Structure, Structure | None]] = ()


def _match_range(bounds: tuple[int, int]) -> list[bool]:
    return [structures_match(a, b) for a, b in _FORK_PAIRS[bounds[0] : bounds[1]]]


def roundtrip_matches(
    icr: ICR, structures: Sequence[Structure], array: np.ndarray, n_jobs: int | None = None
) -> np.ndarray:
    """Bool per structure: whether decoding its encoded ``array`` row reproduces it."""
    global _FORK_PAIRS
    pairs = list(zip(structures, icr.decode(array)))
    jobs = n_jobs if n_jobs is not None else (os.cpu_count() or 1)
    if jobs <= 1 or len(pairs) < 64 or "fork" not in multiprocessing.get_all_start_methods():
        return np.array([structures_match(a, b) for a, b in pairs], dtype=bool)
    edges = np.linspace(0, len(pairs), 4 * jobs + 1).astype(int)
    _FORK_PAIRS = pairs
    try:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            parts = pool.map(_match_range, list(zip(edges[:-1].tolist(), edges[1:].tolist())))
    finally:
        _FORK_PAIRS = ()
    return np.array([match for part in parts for match in part], dtype=bool)
