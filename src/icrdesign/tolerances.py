"""Symmetry and structure-matching tolerances, each named by purpose and by the work it follows.

Every module that finds a space group or compares two crystals imports its tolerance from here, so
that one quantity is never judged with two different settings in one run.
"""

from __future__ import annotations

from typing import Final

#: spglib tolerance (Å) for space groups of dataset, candidate and DFT-start crystals: the Materials
#: Project's own setting (``SpacegroupAnalyzer`` in emmet-core builds).
SYMPREC: Final[float] = 0.1

#: spglib tolerance (Å) for re-symmetrising a DFT-relaxed cell: atomate2's relaxation setting. It removes
#: the optimiser's numerical noise; ``SYMPREC`` could snap a genuinely distorted cell back to higher symmetry.
RELAXED_SYMPREC: Final[float] = 0.01

#: ``StructureMatcher`` tolerances for "is this the same crystal" in uniqueness and novelty:
#: pymatgen's defaults, as MatterGen (Zeni et al., Nature 2025) and DiffCSP use them.
NOVELTY_MATCHER: Final[dict[str, float]] = {"ltol": 0.2, "stol": 0.3, "angle_tol": 5.0}

#: ``StructureMatcher`` tolerances for the reconstruction match rate and RMSE of a VAE: CDVAE's
#: protocol (Xie et al., ICLR 2022), which later generators report against.
RECONSTRUCTION_MATCHER: Final[dict[str, float]] = {"stol": 0.5, "ltol": 0.3, "angle_tol": 10.0}

#: ``StructureMatcher`` tolerances for the ICR's exact round trip: decode(encode(s)) must give s back
#: to floating-point noise, so these are two orders tighter than the novelty tolerances.
ROUNDTRIP_MATCHER: Final[dict[str, float]] = {"ltol": 0.01, "stol": 0.01, "angle_tol": 0.1}

#: ``StructureMatcher`` tolerances for the RMSD between a generated and its relaxed structure:
#: MatterGen's evaluation (Zeni et al., Nature 2025), loose enough to pair a distorted cell with its
#: relaxed self.
RMSD_MATCHER: Final[dict[str, float]] = {"ltol": 0.5, "stol": 0.5, "angle_tol": 10.0}

#: How far (eV/atom) a DFT relaxation's last energy may lie above its first before it is refused: a
#: relaxation that climbs followed a stress that disagrees with the energy.
RELAXATION_UPHILL_EV_PER_ATOM: Final[float] = 1e-3
