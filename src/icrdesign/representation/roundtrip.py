"""Round-trip check: does decode(encode(s)) reproduce s?"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure

from icrdesign.parallel import fork_map, n_workers
from icrdesign.representation.icr import ICR
from icrdesign.tolerances import ROUNDTRIP_MATCHER

MIN_PARALLEL_PAIRS = 64


def structures_match(original: Structure, decoded: Structure | None) -> bool:
    """Same (reduced) composition and a StructureMatcher match at the tight round-trip tolerances.

    Reduced, because the niggli_primitive form returns the primitive cell of a conventional one.
    Cells with equal site counts are first compared as given (primitive_cell=False, the stricter
    test): the matcher's own primitive reduction (0.25 A tolerance) can reduce a slightly perturbed
    near-supercell but not the same crystal with a shifted origin, a false mismatch.
    """
    if decoded is None or original.composition.reduced_composition != decoded.composition.reduced_composition:
        return False
    if len(original) == len(decoded) and StructureMatcher(**ROUNDTRIP_MATCHER, scale=False, primitive_cell=False).fit(original, decoded):
        return True
    return bool(StructureMatcher(**ROUNDTRIP_MATCHER, scale=False).fit(original, decoded))


def roundtrip_matches(
    icr: ICR, structures: Sequence[Structure], array: np.ndarray, n_jobs: int | None = None
) -> np.ndarray:
    """Bool per structure: whether decoding its encoded ``array`` row reproduces it."""
    pairs = list(zip(structures, icr.decode(array)))
    jobs = n_workers(n_jobs)
    n_ranges = 4 * jobs if len(pairs) >= MIN_PARALLEL_PAIRS else 1  # StructureMatcher: ~ms a pair

    def match_range(start: int, stop: int) -> list[bool]:
        return [structures_match(a, b) for a, b in pairs[start:stop]]

    parts = fork_map(match_range, len(pairs), jobs, n_ranges)
    return np.array([match for part in parts for match in part], dtype=bool)
