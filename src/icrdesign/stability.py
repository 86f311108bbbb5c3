"""Thermodynamic stability of candidates: the energy above a reference convex hull.

A candidate is stable when its formation energy per atom lies at most :data:`STABLE_E_HULL` above the
convex hull of the reference phases of its chemical system (MatterGen's criterion, Zeni et al.,
Nature 2025), and strictly stable at :data:`STRICT_E_HULL`. Energies are formation energies per atom
on the Materials Project's MP2020 scale (eV/atom), the elements at 0 by definition, so the hull is
built from :class:`~pymatgen.analysis.phase_diagram.PDEntry` objects whose energy is the formation
energy of their composition.

Where the reference phases come from (:func:`build_reference_hull`, by ``data.source`` and
``stability.hull``):

* ``data``: the Materials Project's stable GGA_GGA+U phases of every chemical system the candidates
  touch and all its sub-systems (:func:`materials_project_hull`), or the dataset table of the other
  sources, the demo's and a user's own file (:func:`hull_from_table`);
* ``mlip``: the same phases relaxed with the configured potential, their formation energies computed
  exactly as the candidates' (:func:`mlip_hull`), for a hull on the potential's own scale.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pandas as pd
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition, Element, Structure

from icrdesign.artefacts.tables import require_columns
from icrdesign.checks import as_number, property_problem
from icrdesign.errors import ConfigError, InputError
from icrdesign.io import read_json, write_json

if TYPE_CHECKING:
    from icrdesign.validation.batch_relax import BatchPredictor

log = logging.getLogger(__name__)

#: E_hull (eV/atom) at or below which a candidate counts as stable: MatterGen's threshold
#: (Zeni et al., Nature 2025), which absorbs the potential's and the functional's errors.
STABLE_E_HULL: Final[float] = 0.1
#: E_hull (eV/atom) of a strictly stable candidate: on or below the reference hull.
STRICT_E_HULL: Final[float] = 0.0
#: Slack (eV/atom) of the comparisons with a threshold: the hull's own rounding (pymatgen's
#: ``PhaseDiagram.numerical_tol``), so that a hull vertex is never judged above the hull.
HULL_TOLERANCE: Final[float] = 1e-8

#: The property column the hull reads, as every source names it.
ENERGY_COLUMN: Final[str] = "formation_energy_per_atom"
#: Folder of the per-crystal MLIP relaxations inside the hull's cache folder.
MLIP_PHASES_FOLDER: Final[str] = "mlip_phases"


def is_stable(e_above_hull: float, threshold: float = STABLE_E_HULL) -> bool:
    """Whether ``e_above_hull`` (eV/atom) is at most ``threshold`` (default :data:`STABLE_E_HULL`)."""
    return e_above_hull <= threshold + HULL_TOLERANCE


def chemical_system(composition: Composition | str) -> str:
    """The chemical system of a composition or formula, as ``"Cl-Na"`` (symbols sorted).

    Raises:
        InputError: ``composition`` is not a formula pymatgen can read.
    """
    return _composition(composition).chemical_system


def sub_systems(chemical_systems: Iterable[str], min_elements: int = 1) -> list[str]:
    """Every chemical system of ``chemical_systems`` and all their sub-systems of at least
    ``min_elements`` elements, sorted; ``"Cl-Na"`` gives ``["Cl", "Cl-Na", "Na"]``."""
    found: set[str] = set()
    for system in chemical_systems:
        elements = _normalised(system).split("-")
        for size in range(min_elements, len(elements) + 1):
            found.update("-".join(subset) for subset in itertools.combinations(elements, size))
    return sorted(found)


@dataclass(frozen=True)
class ReferenceHull:
    """The reference phases of the stability check and the energy above their convex hull.

    Attributes:
        source: which hull this is, in words (source, number of phases and chemical systems), for
            logs and reports.
        entries: the phases, each a ``PDEntry`` whose energy is the formation energy (eV) of its
            composition, the elements at 0; ``attribute`` holds the phase's id where it has one.
    """

    source: str
    entries: tuple[PDEntry, ...]
    # Entries per element set, and one PhaseDiagram per chemical system asked about (built once:
    # thousands of candidates share a few hundred systems).
    _by_elements: dict[frozenset[str], list[PDEntry]] = field(init=False, repr=False, compare=False)
    _diagrams: dict[frozenset[str], PhaseDiagram] = field(default_factory=dict, init=False, repr=False,
                                                          compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", tuple(self.entries))
        by_elements: dict[frozenset[str], list[PDEntry]] = {}
        for entry in self.entries:
            by_elements.setdefault(_element_set(entry.composition), []).append(entry)
        object.__setattr__(self, "_by_elements", by_elements)

    def phase_diagram(self, elements: Collection[str]) -> PhaseDiagram:
        """The convex hull of the chemical system of ``elements``: the entries of it and of all its
        sub-systems, and every element at 0 eV/atom (also one no phase contains)."""
        key = frozenset(elements)
        if key not in self._diagrams:
            members = [PDEntry(Composition(element), 0.0, name=element) for element in sorted(key)]
            for size in range(1, len(key) + 1):
                for subset in itertools.combinations(sorted(key), size):
                    members.extend(self._by_elements.get(frozenset(subset), ()))
            self._diagrams[key] = PhaseDiagram(members)
        return self._diagrams[key]

    def e_above_hull(self, composition: Composition | str, formation_energy_per_atom: float) -> float:
        """Energy (eV/atom) of ``composition`` at ``formation_energy_per_atom`` above the hull of its
        chemical system; negative when it lies below the hull (it would be a new hull vertex).

        Raises:
            InputError: the formula cannot be read.
            ValueError: the formation energy is not a finite number.
        """
        energy = as_number(formation_energy_per_atom)
        if energy is None or not math.isfinite(energy):
            raise ValueError(f"formation energy {formation_energy_per_atom!r} of {composition} is not a finite number")
        composition = _composition(composition)
        diagram = self.phase_diagram(_element_set(composition))
        candidate = PDEntry(composition, energy * composition.num_atoms)
        # check_stable=False: the candidate is never one of the diagram's own entries.
        return float(diagram.get_e_above_hull(candidate, allow_negative=True, check_stable=False))

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (``from_dict`` reads it back)."""
        return {"source": self.source, "entries": [entry.as_dict() for entry in self.entries]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceHull:
        return cls(str(data["source"]), tuple(PDEntry.from_dict(entry) for entry in data["entries"]))


def write_hull(path: str | os.PathLike[str], hull: ReferenceHull) -> None:
    """Write ``hull`` as JSON, atomically."""
    write_json(path, hull.as_dict())


def read_hull(path: str | os.PathLike[str]) -> ReferenceHull:
    """The hull :func:`write_hull` wrote.

    Raises:
        InputError: the file is missing or does not hold a hull.
    """
    try:
        return ReferenceHull.from_dict(read_json(path))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise InputError(f"{path}: not a reference hull ({type(error).__name__}: {error})") from None


def hull_from_table(frame: pd.DataFrame, source_name: str,
                    chemical_systems: Iterable[str] | None = None) -> ReferenceHull:
    """The hull of a dataset table's crystals (``formula`` and ``formation_energy_per_atom``).

    A row without a usable formation energy (missing, not a number or implausible, by
    :func:`icrdesign.checks.property_problem`) is skipped and counted. Single-element rows are left
    out: the elements are at 0 eV/atom by the definition of the formation energy.

    Args:
        frame: the dataset table (:func:`icrdesign.artefacts.dataset.read_dataset`).
        source_name: the table in words, e.g. ``"demo training table"``.
        chemical_systems: keep only the phases of these systems and their sub-systems (the hull of
            those systems is the same); None keeps every phase.

    Raises:
        InputError: the table lacks ``formula`` or ``formation_energy_per_atom``.
    """
    require_columns(frame, ("formula", ENERGY_COLUMN), source_name)
    scope = _scope(chemical_systems)
    ids = frame["material_id"] if "material_id" in frame.columns else pd.Series([None] * len(frame))
    entries, skipped = [], 0
    for material_id, formula, energy in zip(ids, frame["formula"], frame[ENERGY_COLUMN]):
        composition = _composition(formula)
        if len(composition.elements) < 2 or not _in_scope(composition, scope):
            continue
        if property_problem(ENERGY_COLUMN, energy):
            skipped += 1
            continue
        entries.append(_entry(composition, float(as_number(energy)), material_id))
    notes = [f"{skipped} rows without a usable formation energy skipped"] if skipped else []
    if skipped:
        log.warning("hull: %s: %d rows without a usable formation energy skipped", source_name, skipped)
    return _hull(source_name, entries, _elements(entries, chemical_systems), notes)


def materials_project_hull(chemical_systems: Iterable[str], settings: Mapping[str, Any],
                           cache_dir: Path) -> ReferenceHull:
    """The Materials Project's stable GGA_GGA+U phases (MP2020-corrected formation energies) of the
    chemical systems and all their sub-systems.

    Queried directly, not taken from the dataset, whose filters (sites, elements, E_hull) would
    leave phases of the hull out; downloaded through the dataset's mp-api path and cached per
    chemical system in ``cache_dir`` (:func:`icrdesign.data.materials_project.fetch_thermo`).

    Args:
        chemical_systems: the candidates' systems, e.g. ``["Cl-Cs-Na", "O-Sr-Ti"]``.
        settings: the config's ``data.materials_project`` (chunk_size, max_retries, retry_backoff).
        cache_dir: the cache folder (a rerun or a candidate in a known system downloads nothing).
    """
    phases, name = _materials_project_phases(chemical_systems, settings, cache_dir, with_structures=False)
    entries = [_entry(composition, energy, material_id) for material_id, composition, energy, _ in phases]
    return _hull(name, entries, _elements(entries, chemical_systems), [])


def mlip_hull(phases: Sequence[tuple[str, Structure]], source_name: str, relaxation: Mapping[str, Any],
              cache_dir: Path, references_dir: Path, elements: Iterable[str] = (),
              predictor: BatchPredictor | None = None) -> ReferenceHull:
    """The hull of ``phases`` relaxed with the configured potential, on the candidates' scale.

    Each crystal is relaxed by :func:`icrdesign.validation.batch_relax.relax_batch` and cached in
    ``cache_dir/mlip_phases/<hash of the structure and the potential's settings>.json``, so a rerun
    relaxes only new crystals. Its formation energy is computed as the candidates' is: the energy
    MP2020-corrected unless the potential predicts corrected energies, minus the elemental references
    of the same potential (``references_dir``, shared with the candidates'). A phase whose
    relaxation failed is left out, one that did not converge kept with its last energy (an upper
    bound); both are counted in ``source``.

    Args:
        phases: (id, structure) of each phase.
        source_name: the phases in words.
        relaxation: the config's ``relaxation`` section.
        cache_dir: the hull's cache folder.
        references_dir: the elemental references' cache of this potential and these settings.
        elements: elements to put at 0 besides the phases' own (the candidates' systems).
        predictor: the potential (default: the configured one; tests pass a stand-in).
    """
    from icrdesign.artefacts.validation import STATUS_FAILED, STATUS_UNCONVERGED
    from icrdesign.validation.references import WORK_FOLDER, formation_energy_per_atom
    from icrdesign.validation.mlip import mlip_references

    records = _relaxed_phases(phases, relaxation, Path(cache_dir) / MLIP_PHASES_FOLDER, predictor)
    used = [record for record in records if record["status"] != STATUS_FAILED]
    needed = sorted({element for record in used for element in record["composition"]})
    references = mlip_references(needed, dict(relaxation), Path(references_dir), Path(references_dir) / WORK_FOLDER)
    entries = []
    for record in used:
        composition = Composition(record["composition"])
        energy = _mp2020_scale(composition, record["energy"], relaxation)
        entries.append(_entry(composition, formation_energy_per_atom(composition, energy, references), record["id"]))
    failed = len(records) - len(used)
    unconverged = sum(record["status"] == STATUS_UNCONVERGED for record in used)
    notes = [f"relaxed with {relaxation['force_field']}"]
    notes += [f"{unconverged} unconverged kept with their last energy"] if unconverged else []
    notes += [f"{failed} failed relaxations left out"] if failed else []
    return _hull(source_name, entries, {*needed, *elements}, notes)


def build_reference_hull(config: Mapping[str, Any], chemical_systems: Iterable[str] | None, cache_dir: Path,
                         table: pd.DataFrame | None = None, references_dir: Path | None = None,
                         predictor: BatchPredictor | None = None) -> ReferenceHull:
    """The hull ``config`` asks for: by ``data.source`` and ``stability.hull``.

    Args:
        config: the validated config.
        chemical_systems: the candidates' chemical systems; None: every phase of the table (only
            for the data hull of a table source).
        cache_dir: where downloads and MLIP relaxations are cached.
        table: the dataset table (sources other than materials_project).
        references_dir: the MLIP's elemental references (default:
            ``cache_dir/references/<engine>-<settings hash>``), for ``stability.hull: mlip``.
        predictor: the potential for ``stability.hull: mlip`` (default: the configured one).

    Raises:
        ConfigError: the hull cannot be built with what was given (no chemical systems where they
            are needed, no table for a table source).
    """
    source, kind = config["data"]["source"], config["stability"]["hull"]
    systems = None if chemical_systems is None else sorted({_normalised(system) for system in chemical_systems})
    if systems is None and (source == "materials_project" or kind == "mlip"):
        raise ConfigError(f"config keys 'data.source: {source}', 'stability.hull: {kind}': the hull needs the "
                          "candidates' chemical systems (the candidates tables)")
    if kind == "mlip":
        from icrdesign.validation.mlip import mlip_reference_settings
        from icrdesign.validation.references import REFERENCES_FOLDER, cache_name

        relaxation = config["relaxation"]
        references_dir = references_dir or (Path(cache_dir) / REFERENCES_FOLDER
                                            / cache_name(mlip_reference_settings(dict(relaxation))))
    if source == "materials_project":
        settings = config["data"]["materials_project"]
        if kind == "data":
            return materials_project_hull(systems, settings, cache_dir)
        found, name = _materials_project_phases(systems, settings, cache_dir, with_structures=True)
        phases = [(material_id, structure) for material_id, _, _, structure in found]
        return mlip_hull(phases, name, relaxation, cache_dir, references_dir, _elements([], systems), predictor)
    if table is None:
        raise ConfigError(f"config key 'data.source: {source}': the hull is built from the dataset table; none given")
    name = f"{source} training table"
    if kind == "data":
        return hull_from_table(table, name, systems)
    return mlip_hull(_table_phases(table, systems), name, relaxation, cache_dir, references_dir,
                     _elements([], systems), predictor)


def _normalised(system: str) -> str:
    """``system`` with its symbols checked, deduplicated and sorted (``"Na-Cl"`` -> ``"Cl-Na"``)."""
    try:
        return "-".join(sorted({Element(symbol.strip()).symbol for symbol in system.split("-")}))
    except ValueError:
        raise InputError(f"chemical system {system!r} is not element symbols joined by '-'") from None


def _composition(formula: Composition | str) -> Composition:
    try:
        composition = formula if isinstance(formula, Composition) else Composition(str(formula))
    except (ValueError, KeyError) as error:
        raise InputError(f"formula {formula!r} cannot be read: {error}") from None
    if not composition.num_atoms > 0:
        raise InputError(f"formula {formula!r} has no atoms")
    # pymatgen reads an unknown symbol as a dummy species; a hull has no place for it.
    unknown = [str(species) for species in composition.elements if not isinstance(species, Element)]
    if unknown:
        raise InputError(f"formula {formula!r}: {unknown} not chemical elements")
    return composition


def _element_set(composition: Composition) -> frozenset[str]:
    return frozenset(element.symbol for element in composition.elements)


def _entry(composition: Composition, formation_energy_per_atom: float, phase_id: Any) -> PDEntry:
    """A hull phase: its formation energy per atom as the total of the composition."""
    return PDEntry(composition, formation_energy_per_atom * composition.num_atoms,
                   name=composition.reduced_formula, attribute=None if phase_id is None else str(phase_id))


def _scope(chemical_systems: Iterable[str] | None) -> set[frozenset[str]] | None:
    """The element sets of the systems and all their sub-systems (None: no restriction)."""
    if chemical_systems is None:
        return None
    return {frozenset(system.split("-")) for system in sub_systems(chemical_systems)}


def _in_scope(composition: Composition, scope: set[frozenset[str]] | None) -> bool:
    return scope is None or _element_set(composition) in scope


def _elements(entries: Iterable[PDEntry], chemical_systems: Iterable[str] | None) -> set[str]:
    """The elements to put at 0: the phases' and the systems'."""
    found = {element for entry in entries for element in _element_set(entry.composition)}
    for system in chemical_systems or ():
        found.update(system.split("-"))
    return found


def _hull(source_name: str, entries: list[PDEntry], elements: Iterable[str], notes: list[str]) -> ReferenceHull:
    """The hull of ``entries`` and ``elements`` at 0, with ``source`` saying what it holds."""
    symbols = sorted({Element(symbol).symbol for symbol in elements})
    systems = {_element_set(entry.composition) for entry in entries}
    text = (f"{source_name}: {len(entries)} phases in {len(systems)} chemical systems "
            f"+ {len(symbols)} elements at 0 eV/atom")
    if notes:
        text += f" ({'; '.join(notes)})"
    log.info("hull: %s", text)
    elemental = [PDEntry(Composition(symbol), 0.0, name=symbol) for symbol in symbols]
    return ReferenceHull(text, (*elemental, *entries))


def _materials_project_phases(chemical_systems: Iterable[str], settings: Mapping[str, Any], cache_dir: Path,
                              with_structures: bool) -> tuple[list[tuple[str, Composition, float, Structure | None]], str]:
    """(id, composition, formation energy per atom, structure) of the stable MP phases of the systems
    and their sub-systems, and the hull's source in words.

    Raises:
        InputError: ``with_structures`` and a phase came without a structure (an MLIP cannot relax it).
    """
    from icrdesign.data.materials_project import THERMO_TYPE, fetch_thermo, thermo_structure

    # Single elements are at 0 by definition: their phases are not needed.
    systems = sub_systems(chemical_systems, min_elements=2)
    documents, provenance = fetch_thermo(systems, dict(settings), Path(cache_dir), with_structures=with_structures)
    phases, skipped = [], 0
    for system_docs in documents.values():
        for doc in system_docs:
            energy = as_number(doc.get(ENERGY_COLUMN))
            if property_problem(ENERGY_COLUMN, energy) or not doc.get("formula_pretty"):
                skipped += 1
                continue
            structure = thermo_structure(doc) if with_structures else None
            if with_structures and structure is None:
                raise InputError(f"Materials Project thermo document {doc.get('material_id')} has no structure: "
                                 "stability.hull: mlip needs the structures to relax (use stability.hull: data)")
            phases.append((str(doc.get("material_id")), _composition(doc["formula_pretty"]), float(energy), structure))
    versions = ", ".join(provenance["database_versions"]) or "none downloaded"
    name = f"materials_project thermo {THERMO_TYPE} (database {versions}, {len(systems)} chemical systems queried)"
    if skipped:
        name += f", {skipped} phases without a usable formation energy skipped"
    return phases, name


def _table_phases(table: pd.DataFrame, chemical_systems: Iterable[str] | None) -> list[tuple[str, Structure]]:
    """(material_id, structure) of the table's compounds in the systems and their sub-systems."""
    require_columns(table, ("material_id", "formula", "structure"), "dataset table")
    scope = _scope(chemical_systems)
    phases = []
    for material_id, formula, text in zip(table["material_id"], table["formula"], table["structure"]):
        composition = _composition(formula)
        if len(composition.elements) >= 2 and _in_scope(composition, scope):
            phases.append((str(material_id), Structure.from_dict(json.loads(text))))
    return phases


def _mp2020_scale(composition: Composition, energy: float, relaxation: Mapping[str, Any]) -> float:
    """The total energy on the MP2020 scale, as the candidates' (``icrdesign.validation.mlip``)."""
    from icrdesign.validation.mlip import PREDICTS_MP2020_CORRECTED
    from icrdesign.validation.mp_scale import mp2020_corrected_energy

    if relaxation["force_field"] in PREDICTS_MP2020_CORRECTED:
        return float(energy)
    return mp2020_corrected_energy(composition, float(energy))


def _phase_settings(relaxation: Mapping[str, Any]) -> dict[str, Any]:
    """The relaxation settings that change a phase's relaxed energy (its cache key)."""
    return {"engine": relaxation["force_field"], "fmax": float(relaxation["fmax"]), "steps": int(relaxation["steps"]),
            "relax_cell": bool(relaxation["relax_cell"])}


def _relaxed_phases(phases: Sequence[tuple[str, Structure]], relaxation: Mapping[str, Any], folder: Path,
                    predictor: BatchPredictor | None) -> list[dict[str, Any]]:
    """One record per phase (id, composition, energy, status, reason), relaxing only the uncached."""
    from icrdesign.config import config_hash
    from icrdesign.validation.batch_relax import relax_batch

    settings = _phase_settings(relaxation)
    paths = [folder / f"{config_hash({'structure': structure.as_dict(), 'settings': settings})}.json"
             for _, structure in phases]
    records: list[dict[str, Any] | None] = [read_json(path) if path.is_file() else None for path in paths]
    todo = [index for index, record in enumerate(records) if record is None or record.get("settings") != settings]
    log.info("hull: %d phases, %d relaxed before, %d to relax with %s", len(phases), len(phases) - len(todo),
             len(todo), settings["engine"])
    if todo:
        outcomes = relax_batch([phases[index][1] for index in todo], relaxation, predictor=predictor)
        for index, outcome in zip(todo, outcomes, strict=True):
            record = {"id": phases[index][0], "composition": outcome.structure.composition.as_dict(),
                      # JSON has no NaN: a failed relaxation may have no energy.
                      "energy": outcome.energy if math.isfinite(outcome.energy) else None,
                      "status": outcome.status, "reason": outcome.reason,
                      "structure": outcome.structure.as_dict(), "settings": settings}
            write_json(paths[index], record)
            records[index] = record
    return [record for record in records if record is not None]
