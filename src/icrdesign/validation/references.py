"""Elemental reference states, the formation energy against them, and the per-element cache on disk.

Gaseous elements (and the molecular halogens) are diatomic molecules in a box, O2 as a triplet;
noble gases are single atoms in a box; sulfur is an S8 crown ring in a box: alpha-sulfur, MP's ground
state, is a crystal of these rings, held together by dispersion that PBE barely describes, so the ring
stands for the crystal (a simple prototype sits about 1 eV/atom above it; README, the experiment check).
Other elements take ASE's tabulated crystal structure, or, where ASE has none that it can build
(B, P, Mn, Ga, Se, ...), the lowest-energy of a few simple prototypes after a machine-learned-potential
relaxation. The structure's ``kind`` says which.

One cache folder holds the references of one engine with one set of energy-changing settings
(:func:`cache_name`): ``<El>.json`` per element, and ``work/``, where a references job computes.
Beside it, ``<cache folder>.index.json`` holds the status of every element that job was asked for.
The MLIP tier fills its cache in one references job; the DFT jobs fill theirs themselves, each
element once (:func:`cached_references` locks it while computing).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from monty.json import jsanitize
from pymatgen.core import Composition, Element, Lattice, Structure

from icrdesign.artefacts.validation import STATUS_FAILED, STATUS_OK
from icrdesign.config import config_hash
from icrdesign.io import file_lock, read_json, write_json
from icrdesign.parallel import fork_each

#: Folder of the reference caches inside the validation folder, one subfolder per engine and settings.
REFERENCES_FOLDER: Final[str] = "references"
#: The suffix of a references job's index beside its cache folder, and the folder inside a cache
#: folder that the job computes in.
INDEX_SUFFIX: Final[str] = ".index.json"
WORK_FOLDER: Final[str] = "work"
#: The lock a process holds in a cache folder while it computes an element's reference.
LOCK_FILE_PATTERN: Final[str] = ".{element}.lock"

# Bond lengths (angstrom) of the diatomic reference molecules.
DIATOMIC_BOND_LENGTHS: dict[str, float] = {
    "H": 0.74, "N": 1.10, "O": 1.21, "F": 1.42, "Cl": 1.99, "Br": 2.28, "I": 2.67,
}
# Crown rings (D4d) of the ring-molecule references: (atoms, bond length in angstrom, bond angle in
# degrees); S8 as in alpha-sulfur (S-S 2.05 A, S-S-S 108 deg).
CROWN_RINGS: dict[str, tuple[int, float, float]] = {"S": (8, 2.05, 108.0)}
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


def crown_ring_in_box(element: str, box: float) -> Structure:
    """A crown ring (:data:`CROWN_RINGS`) centred in a box whose edges exceed the ring's extent by
    ``box`` angstrom, so its images are as far apart as a point atom's in a cubic box of edge ``box``.

    Its n atoms sit on a circle of radius r, alternately at heights +h and -h; a ring of bond length d
    and bond angle t has r = d sin(t / 2) / sin(2 pi / n) and (2h)^2 = d^2 - 2 r^2 (1 - cos(2 pi / n)).
    """
    size, bond, angle = CROWN_RINGS[element]
    radius = bond * math.sin(math.radians(angle) / 2) / math.sin(2 * math.pi / size)
    half_height = math.sqrt(bond**2 - 2 * radius**2 * (1 - math.cos(2 * math.pi / size))) / 2
    edges = (box + 2 * radius, box + 2 * radius, box + 2 * half_height)
    coords = [[edges[0] / 2 + radius * math.cos(2 * math.pi * k / size),
               edges[1] / 2 + radius * math.sin(2 * math.pi * k / size),
               edges[2] / 2 + half_height * (-1) ** k] for k in range(size)]
    return Structure(Lattice.orthorhombic(*edges), [element] * size, coords, coords_are_cartesian=True)


def is_molecular(element: str) -> bool:
    return element in DIATOMIC_BOND_LENGTHS or element in NOBLE_GASES or element in CROWN_RINGS


def molecular_references() -> dict[str, Any]:
    """Every molecule-in-a-box reference's definition, part of the reference settings so that changing
    one recomputes the cached references (as JSON reads it back, lists for tuples, so that a cached
    record's settings compare equal)."""
    return {"diatomic_bond_lengths": DIATOMIC_BOND_LENGTHS,
            "crown_rings": {element: list(ring) for element, ring in CROWN_RINGS.items()},
            "magmoms": MOLECULE_MAGMOMS, "noble_gases": sorted(NOBLE_GASES)}


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

    if element in CROWN_RINGS:
        return "molecule", [crown_ring_in_box(element, box)]
    if is_molecular(element):
        return "molecule", [molecule_in_box(element, box)]
    try:
        return "solid", [AseAtomsAdaptor.get_structure(bulk(element))]
    except (ValueError, KeyError, RuntimeError, NotImplementedError):
        return "prototype", [prototype_structure(element, name) for name in PROTOTYPES]


def index_path(cache_dir: Path) -> Path:
    """The index of the references job that fills ``cache_dir`` (beside it, not inside: the cache
    folder is a whole output of that job)."""
    return cache_dir.with_name(cache_dir.name + INDEX_SUFFIX)


def cache_name(settings: Mapping[str, Any]) -> str:
    """``<engine>-<hash of the settings>``: the cache folder of one engine with these settings, so that
    references computed with other settings are never mixed in."""
    return f"{settings['engine']}-{config_hash(dict(settings))}"


def formation_energy_per_atom(composition: Composition, energy: float,
                              references: Mapping[str, Mapping[str, Any]]) -> float:
    """(E - sum_i n_i mu_i) / N for a total energy E of ``composition`` and references' energies per atom mu_i."""
    reference = sum(amount * references[element.symbol]["energy_per_atom"] for element, amount in composition.items())
    return float((energy - reference) / composition.num_atoms)


class ReferenceFailed(RuntimeError):
    """An elemental reference could not be computed; its record on disk keeps the reason."""

    def __init__(self, element: str, reason: str) -> None:
        super().__init__(f"reference {element} failed: {reason}")
        self.element = element
        self.reason = reason


def cached_references(elements: list[str], cache_dir: Path, settings: Mapping[str, Any],
                      compute: Callable[[str], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Reference records per element from CACHE_DIR/<El>.json, computing (and caching) missing ones.

    A cached record computed with other settings is recomputed: references must share the
    compound's settings exactly. ``compute(element)`` returns a dict with at least energy_per_atom.
    A failed computation is cached too, as a record with status 'failed' and the reason, so every
    candidate that needs the element fails at once with that reason (``ReferenceFailed``) instead
    of repeating the calculation; ``icrdesign retry-failed`` forgets it so that the next run retries it.

    Processes may share CACHE_DIR (the DFT jobs of a run do): an element is computed under a lock of
    its own, so once; a process computes the elements no other is computing first, then waits for
    the others' and reads their records.
    """
    records = {}
    elements = sorted(set(elements))
    busy = [element for element in elements
            if not _take_record(records, element, cache_dir, settings, compute, wait=False)]
    for element in busy:
        _take_record(records, element, cache_dir, settings, compute, wait=True)
    return {element: records[element] for element in elements}


def _take_record(records: dict[str, dict[str, Any]], element: str, cache_dir: Path, settings: Mapping[str, Any],
                 compute: Callable[[str], dict[str, Any]], wait: bool) -> bool:
    """Put ``element``'s record, cached or computed under its lock, into RECORDS; False (nothing put)
    when another process holds the lock and not ``wait``. Raises ReferenceFailed for a failed record."""
    path = cache_dir / f"{element}.json"
    record = _matching_record(path, settings)
    if record is None:
        with file_lock(cache_dir / LOCK_FILE_PATTERN.format(element=element), wait=wait) as held:
            if not held:
                return False
            # Another process may have written it while this one waited.
            record = _matching_record(path, settings)
            if record is None:
                try:
                    record = jsanitize({"element": element, **compute(element), "status": STATUS_OK,
                                        "settings": settings})
                except Exception as error:  # noqa: BLE001 - recorded; the candidates needing it fail with the reason
                    record = {"element": element, "status": STATUS_FAILED,
                              "reason": f"{type(error).__name__}: {error}"[:500], "settings": settings}
                write_json(path, record)
    if record.get("status") == STATUS_FAILED:
        raise ReferenceFailed(element, record["reason"])
    records[element] = record
    return True


def _matching_record(path: Path, settings: Mapping[str, Any]) -> dict[str, Any] | None:
    """The cached record at ``path`` when it was computed with ``settings``, else None."""
    record = read_json(path) if path.exists() else None
    return record if record is not None and record.get("settings") == settings else None


def reference_records(elements: list[str], compute: Callable[[list[str]], dict[str, dict[str, Any]]],
                      workers: int = 1) -> list[dict[str, Any]]:
    """Each element's reference record, computed (or reused) one element at a time, in element order;
    with ``workers`` > 1, that many elements at once in forked processes (:func:`~icrdesign.parallel.fork_each`;
    each writes only its own element's cache file).

    A failure gives a record with status 'failed' and the reason instead of an exception, so the
    other elements go on and the candidates needing the failed one fail with that reason.
    """
    def record(element: str) -> dict[str, Any]:
        try:
            return {**compute([element])[element], "status": STATUS_OK}
        except ReferenceFailed as failure:
            return {"element": element, "status": STATUS_FAILED, "reason": failure.reason}

    return fork_each(record, sorted(set(elements)), workers)


def write_index(path: Path, records: list[dict[str, Any]]) -> None:
    """A references job's index: every element's status, and status 'failed' when any failed,
    so that ``icrdesign retry-failed`` forgets it with the failed records and the job runs again."""
    failed = sorted(record["element"] for record in records if record["status"] != STATUS_OK)
    write_json(path, {"elements": {record["element"]: record["status"] for record in records},
                      "status": STATUS_FAILED if failed else STATUS_OK,
                      "reason": f"failed references: {failed}" if failed else ""})
