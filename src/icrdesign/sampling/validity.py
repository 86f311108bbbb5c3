"""Validity of decoded crystals: structural (distances, volume per atom) and compositional (charge balance)."""

from __future__ import annotations

from dataclasses import dataclass
import warnings
from functools import lru_cache

from pymatgen.core import Composition, Structure
from smact.screening import smact_validity

from icrdesign.structure_checks import OVERLAP_DISTANCE, cell_problem, closest_pair


@dataclass(frozen=True)
class ValidityCriteria:
    """Thresholds from the ``sampling`` config section."""

    min_distance: float = OVERLAP_DISTANCE
    min_volume_per_atom: float = 5.0
    max_volume_per_atom: float = 80.0

    @classmethod
    def from_config(cls, sampling: dict) -> ValidityCriteria:
        return cls(sampling["min_distance"], sampling["min_volume_per_atom"], sampling["max_volume_per_atom"])


def structural_problem(structure: Structure, criteria: ValidityCriteria) -> tuple[str, str] | None:
    """Return ``(reason, detail)`` if the structure is physically implausible, else None.

    The distance test is :func:`icrdesign.structure_checks.closest_pair`, the one the validation
    commands refuse overlapping atoms with; it includes periodic images, so a site too close to its
    own image (a tiny cell) is caught as well.
    """
    if (problem := cell_problem(structure)) is not None:
        return problem
    volume_per_atom = structure.volume / len(structure)
    if not criteria.min_volume_per_atom <= volume_per_atom <= criteria.max_volume_per_atom:
        return "volume_per_atom", (
            f"{volume_per_atom:.3g} A^3/atom outside [{criteria.min_volume_per_atom}, {criteria.max_volume_per_atom}]"
        )
    if (pair := closest_pair(structure, criteria.min_distance)) is not None:
        return "min_distance", f"{pair} (closer than {criteria.min_distance} Å)"
    return None


def composition_problem(composition: Composition) -> tuple[str, str] | None:
    """Return ``("not_charge_neutral", detail)`` unless SMACT finds a charge-balanced assignment."""
    formula = composition.reduced_formula
    if _charge_neutral(formula):
        return None
    return "not_charge_neutral", f"{formula}: no charge-balanced assignment of common oxidation states"


@lru_cache(maxsize=65536)
def _charge_neutral(reduced_formula: str) -> bool:
    # SMACT's screen: charge neutrality over common oxidation states plus the Pauling electronegativity
    # test; all-metal compositions count as alloys, mixed valence (e.g. Fe3O4) is allowed. SMACT warns
    # and skips the mixed-valence expansion for large cells; that outcome is the intended answer here.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Mixed-valence expansion", category=UserWarning)
        return bool(smact_validity(Composition(reduced_formula), mixed_valence=True))
