"""Elemental reference states for formation energies, and the per-element cache on disk.

Gaseous elements (and the molecular halogens) are diatomic molecules in a box, O2 as a triplet;
noble gases are single atoms in a box; other elements take ASE's tabulated crystal structure, or,
where ASE has none that it can build (B, P, S, Mn, Ga, Se, ...), the lowest-energy of a few simple
prototypes after a machine-learned-potential relaxation. The structure's ``kind`` says which.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from monty.json import jsanitize
from pymatgen.core import Element, Lattice, Structure

from icrdesign.io import read_json, write_json

# Bond lengths (angstrom) of the diatomic reference molecules.
DIATOMIC_BOND_LENGTHS: dict[str, float] = {
    "H": 0.74, "N": 1.10, "O": 1.21, "F": 1.42, "Cl": 1.99, "Br": 2.28, "I": 2.67,
}
# Ground-state spin (mu_B per atom) of the molecules that are not singlets.
MOLECULE_MAGMOMS: dict[str, float] = {"O": 1.0}
NOBLE_GASES = frozenset({"He", "Ne", "Ar", "Kr", "Xe", "Rn"})
PROTOTYPES = ("fcc", "bcc", "hcp", "sc", "diamond")


def molecule_in_box(element: str, box: float) -> Structure:
    """A diatomic molecule (or a noble-gas atom) centred in a cubic box of edge ``box`` angstrom."""
    centre = box / 2
    if element in NOBLE_GASES:
        return Structure(Lattice.cubic(box), [element], [[centre] * 3], coords_are_cartesian=True)
    half = DIATOMIC_BOND_LENGTHS[element] / 2
    coords = [[centre, centre, centre - half], [centre, centre, centre + half]]
    magmom = MOLECULE_MAGMOMS.get(element, 0.0)
    return Structure(Lattice.cubic(box), [element, element], coords, coords_are_cartesian=True,
                     site_properties={"magmom": [magmom, magmom]})


def is_molecular(element: str) -> bool:
    return element in DIATOMIC_BOND_LENGTHS or element in NOBLE_GASES


def prototype_structure(element: str, prototype: str) -> Structure:
    """A simple prototype crystal of ``element`` at the volume predicted from atomic radii."""
    from ase.build import bulk
    from pymatgen.io.ase import AseAtomsAdaptor

    radius = Element(element).atomic_radius or Element(element).average_ionic_radius or 1.5
    scale = {"fcc": 2 * 2**0.5, "bcc": 4 / 3**0.5, "hcp": 2.0, "sc": 2.0, "diamond": 8 / 3**0.5}[prototype]
    if prototype == "hcp":
        atoms = bulk(element, "hcp", a=2 * float(radius), c=2 * float(radius) * (8 / 3) ** 0.5)
    else:
        atoms = bulk(element, prototype, a=scale * float(radius))
    return AseAtomsAdaptor.get_structure(atoms)


def reference_candidates(element: str, box: float) -> tuple[str, list[Structure]]:
    """(kind, starting structures) for one element; a caller relaxes them and keeps the lowest."""
    from ase.build import bulk
    from pymatgen.io.ase import AseAtomsAdaptor

    if is_molecular(element):
        return "molecule", [molecule_in_box(element, box)]
    try:
        return "solid", [AseAtomsAdaptor.get_structure(bulk(element))]
    except (ValueError, KeyError, RuntimeError, NotImplementedError):
        return "prototype", [prototype_structure(element, name) for name in PROTOTYPES]


def settings_match(cached: dict[str, Any], settings: dict[str, Any]) -> bool:
    return cached.get("settings") == settings


class ReferenceFailed(RuntimeError):
    """An elemental reference could not be computed; its record on disk keeps the reason."""

    def __init__(self, element: str, reason: str) -> None:
        super().__init__(f"reference {element} failed: {reason}")
        self.element = element
        self.reason = reason


def cached_references(elements: list[str], cache_dir: Path, settings: dict[str, Any],
                      compute: Callable[[str], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Reference records per element from CACHE_DIR/<El>.json, computing (and caching) missing ones.

    A cached record computed with other settings is recomputed: references must share the
    compound's settings exactly. ``compute(element)`` returns a dict with at least energy_per_atom.
    A failed computation is cached too, as a record with status 'failed' and the reason, so every
    candidate that needs the element fails at once with that reason (``ReferenceFailed``) instead
    of repeating the calculation; a rerun retries it (``results.failed_results``).
    """
    records = {}
    for element in sorted(set(elements)):
        path = cache_dir / f"{element}.json"
        record = read_json(path) if path.exists() else None
        if record is None or not settings_match(record, settings):
            try:
                record = jsanitize({"element": element, **compute(element), "status": "ok", "settings": settings})
            except Exception as error:  # noqa: BLE001 - recorded; the candidates needing it fail with the reason
                record = {"element": element, "status": "failed", "reason": f"{type(error).__name__}: {error}"[:500],
                          "settings": settings}
            write_json(path, record)
        if record.get("status") == "failed":
            raise ReferenceFailed(element, record["reason"])
        records[element] = record
    return records
