"""The DFT tier's energy scale against experiment: formation enthalpies of simple compounds.

pymatgen ships the experimental formation enthalpies that MP2020's corrections were fitted to
(``pymatgen/analysis/compatibility/exp_compounds.json.gz``: formula, enthalpy in eV per formula unit,
uncertainty, MP id). Each compound here is built from its prototype with a literature lattice constant,
computed by the DFT tier exactly as a candidate is (:func:`icrdesign.validation.validate_dft`:
MP's U values and moments, MP2020 corrections, elemental references with the same settings), and its
formation energy per atom is compared with experiment.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final

import numpy as np
from pymatgen.core import Composition, Lattice, Structure
from pymatgen.symmetry.groups import SpaceGroup
from tqdm import tqdm

from icrdesign.artefacts.validation import STATUS_OK
from icrdesign.errors import InputError
from icrdesign.validation.mp_scale import mp_hubbards, mp_magmoms

#: Where pymatgen keeps the experimental enthalpies (relative to its package folder).
EXPERIMENT_FILE: Final[str] = "analysis/compatibility/exp_compounds.json.gz"
#: The check's target: mean absolute error of the formation energy against experiment (eV/atom).
TARGET_MAE: Final[float] = 0.10


@dataclass(frozen=True)
class Prototype:
    """A compound built from its prototype: space group, conventional lattice (a of a cubic cell, a and c
    of a hexagonal or tetragonal one; angstrom, at room temperature) and Wyckoff sites.

    ``antiferromagnetic_planes``: the Miller indices (of the conventional cell) of the lattice planes
    across which the magnetic sites' moments alternate, for a compound whose Materials Project ground
    state is antiferromagnetic (NiO, MnO: AFM-II, (1, 1, 1); rutile NiF2, MnF2: corner against body
    centre, (0, 0, 2)); None starts ferromagnetic, with MP's moments.
    """

    formula: str
    prototype: str
    spacegroup: str
    lattice: tuple[float, ...]
    species: tuple[str, ...]
    coords: tuple[tuple[float, float, float], ...]
    antiferromagnetic_planes: tuple[int, int, int] | None = None

    def structure(self) -> Structure:
        """The primitive cell of the compound; the magnetic one (site property ``magmom``, MP's moment
        sizes) for an antiferromagnet."""
        system = SpaceGroup(self.spacegroup).crystal_system
        lattice = {"cubic": Lattice.cubic, "hexagonal": Lattice.hexagonal, "tetragonal": Lattice.tetragonal}[system](
            *self.lattice)
        conventional = Structure.from_spacegroup(self.spacegroup, lattice, list(self.species),
                                                 [list(c) for c in self.coords])
        if self.antiferromagnetic_planes is None:
            return conventional.get_primitive_structure()
        # Alternating planes repeat after two conventional cells; the primitive cell of that supercell
        # that keeps the moments is the magnetic cell.
        magnetic = conventional.make_supercell(2, in_place=False)
        moments = mp_magmoms()
        plane_index = [round(float(np.dot(self.antiferromagnetic_planes, lattice.get_fractional_coords(site.coords))))
                       for site in magnetic]
        # A non-magnetic site keeps +0.0: a -0.0 would tell it apart from its periodic images.
        magnetic.add_site_property("magmom", [moments.get(site.specie.symbol, 0.0) * (-1) ** index + 0.0
                                              for site, index in zip(magnetic, plane_index, strict=True)])
        return magnetic.get_primitive_structure(use_site_props=True)


_ORIGIN = (0.0, 0.0, 0.0)
_BODY_CENTRE = (0.5, 0.5, 0.5)
#: The compounds of the check: two oxides of metals MP treats with +U, a fluoride, a chloride, a
#: sulfide, a nitride, an intermetallic and a carbide, all with cells of 2-4 atoms. Lattice constants
#: from experiment (Wyckoff, Crystal Structures; ICSD); the oxides antiferromagnetic, as MP's ground states.
COMPOUNDS: Final[tuple[Prototype, ...]] = (
    Prototype("NiO", "rocksalt", "Fm-3m", (4.177,), ("Ni", "O"), (_ORIGIN, _BODY_CENTRE), (1, 1, 1)),
    Prototype("MnO", "rocksalt", "Fm-3m", (4.445,), ("Mn", "O"), (_ORIGIN, _BODY_CENTRE), (1, 1, 1)),
    Prototype("ScF3", "ReO3", "Pm-3m", (4.013,), ("Sc", "F"), (_ORIGIN, (0.5, 0.0, 0.0))),
    Prototype("NaCl", "rocksalt", "Fm-3m", (5.640,), ("Na", "Cl"), (_ORIGIN, _BODY_CENTRE)),
    Prototype("ZnS", "zincblende", "F-43m", (5.409,), ("Zn", "S"), (_ORIGIN, (0.25, 0.25, 0.25))),
    Prototype("TiN", "rocksalt", "Fm-3m", (4.242,), ("Ti", "N"), (_ORIGIN, _BODY_CENTRE)),
    Prototype("AlNi", "CsCl", "Pm-3m", (2.887,), ("Al", "Ni"), (_ORIGIN, _BODY_CENTRE)),
    Prototype("TiC", "rocksalt", "Fm-3m", (4.328,), ("Ti", "C"), (_ORIGIN, _BODY_CENTRE)),
)
#: The fit set of GPAW's GGA/GGA+U mixing refit (:func:`fit_mixing_refit`): one fluoride per +U metal
#: of the check, so that the check's oxides stay out of sample (MP2020 gives a metal one mixing
#: correction for its oxides and fluorides alike). Rutile, antiferromagnetic as MP's ground states;
#: cells and the F parameter x from Baur and Khan, Acta Cryst. B 27, 2133 (1971).
MIXING_FIT_COMPOUNDS: Final[tuple[Prototype, ...]] = (
    Prototype("NiF2", "rutile", "P4_2/mnm", (4.6506, 3.0836), ("Ni", "F"), (_ORIGIN, (0.3024, 0.3024, 0.0)), (0, 0, 2)),
    Prototype("MnF2", "rutile", "P4_2/mnm", (4.8734, 3.3099), ("Mn", "F"), (_ORIGIN, (0.3053, 0.3053, 0.0)), (0, 0, 2)),
)


@dataclass(frozen=True)
class Experiment:
    """An experimental formation enthalpy as pymatgen ships it, per atom."""

    formula: str
    enthalpy_per_atom: float
    uncertainty_per_atom: float | None
    mpid: str | None


@cache
def _experimental_rows() -> dict[str, dict[str, Any]]:
    """pymatgen's experimental table, one row per formula (enthalpy in eV per formula unit)."""
    import pymatgen.core

    # pymatgen is a namespace package: its folder is the one above pymatgen.core's.
    path = Path(pymatgen.core.__file__).parent.parent / EXPERIMENT_FILE
    with gzip.open(path, "rt") as handle:
        return {row["formula"]: row for row in json.load(handle)}


def experimental_enthalpy(formula: str) -> Experiment:
    """The experimental formation enthalpy of ``formula`` per atom; InputError when pymatgen has none."""
    row = _experimental_rows().get(formula)
    if row is None:
        raise InputError(f"no experimental formation enthalpy of {formula!r} in pymatgen's {EXPERIMENT_FILE}")
    atoms = Composition(formula).num_atoms
    uncertainty = row.get("uncertainty")
    return Experiment(formula, float(row["exp energy"]) / atoms,
                      None if uncertainty is None or math.isnan(uncertainty) else float(uncertainty) / atoms,
                      row.get("mpid"))


def select(formulas: Iterable[str] | None) -> list[Prototype]:
    """The compounds named, from the check and the fit set (all of :data:`COMPOUNDS` for None); an
    unknown one raises InputError."""
    if formulas is None:
        return list(COMPOUNDS)
    known = {compound.formula: compound for compound in (*COMPOUNDS, *MIXING_FIT_COMPOUNDS)}
    unknown = sorted(set(formulas) - set(known))
    if unknown:
        raise InputError(f"unknown compounds {unknown}; known: {sorted(known)}")
    return [known[formula] for formula in formulas]


def compare(compounds: Iterable[Prototype], dft: dict[str, Any], relaxation: dict[str, Any], work_dir: Path,
            ) -> list[dict[str, Any]]:
    """Compute each compound with the DFT tier (``dft`` and ``relaxation`` sections) in WORK_DIR/<formula>,
    with references cached in WORK_DIR/references; one row per compound: DFT and experimental formation
    energies (eV/atom), their difference, the corrections applied, status and reason.

    Every compound is a static at its experimental cell: no prototype here has free coordinates, and a
    GPAW cell relaxation cannot be trusted (its stress disagrees with its energy, see
    ``gpaw.uphill``); PBE's lattice constants differ from experiment by 1-2%, worth about 0.01 eV/atom.
    Band gaps are not compared: the statics skip their non-self-consistent calculations.
    """
    from icrdesign.validation.dft import validate_dft

    rows = []
    for compound in tqdm(list(compounds), desc="experiment check", unit="compound"):
        experiment = experimental_enthalpy(compound.formula)
        structure = compound.structure()
        record, _ = validate_dft(structure, dft, relaxation, work_dir / compound.formula, work_dir / "references",
                                 work_dir / "mlip_references", relax=False, band_gap=False)
        ok = record["status"] == STATUS_OK
        rows.append({"formula": compound.formula, "prototype": compound.prototype, "mpid": experiment.mpid,
                     "nsites": len(structure), "magnetic_order": "AFM" if compound.antiferromagnetic_planes else "",
                     "dft_formation_energy_per_atom": record["formation_energy_per_atom"],
                     "exp_formation_energy_per_atom": experiment.enthalpy_per_atom,
                     "exp_uncertainty_per_atom": experiment.uncertainty_per_atom,
                     "error": record["formation_energy_per_atom"] - experiment.enthalpy_per_atom if ok else math.nan,
                     "corrections": record["corrections"],
                     "status": record["status"], "reason": record["reason"], "wall_s": record["wall_s"]})
    return rows


def summary(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean absolute and mean signed error (eV/atom) over the rows that finished, their count, and
    whether the MAE meets :data:`TARGET_MAE`."""
    errors = [float(row["error"]) for row in rows if row["status"] == STATUS_OK]
    mae = sum(abs(error) for error in errors) / len(errors) if errors else math.nan
    return {"mae": mae, "mean_signed_error": sum(errors) / len(errors) if errors else math.nan,
            "n": len(errors), "target_mae": TARGET_MAE, "meets_target": bool(errors) and mae <= TARGET_MAE}


def fit_mixing_refit(rows: Iterable[Mapping[str, Any]], current: Mapping[str, float]) -> dict[str, float]:
    """GPAW's mixing refit per +U metal (eV per metal atom) that puts the fit rows on experiment.

    Each finished row (a compound with one metal that MP treats with +U) was computed with the refit
    ``current``; its error e (eV/atom) over N atoms with N_M of the metal moves that metal's refit by
    -e N / N_M, averaged over the metal's rows. Metals without rows keep their ``current`` value.
    """
    shifts: dict[str, list[float]] = {}
    for row in rows:
        if row["status"] != STATUS_OK:
            continue
        composition = Composition(row["formula"])
        metals = sorted(mp_hubbards(composition))
        if len(metals) != 1:
            raise InputError(f"{row['formula']} has {len(metals)} metals with +U ({metals}); "
                             "a mixing fit needs exactly one")
        shifts.setdefault(metals[0], []).append(
            -float(row["error"]) * composition.num_atoms / composition[metals[0]])
    return {**current, **{metal: float(current.get(metal, 0.0)) + sum(values) / len(values)
                          for metal, values in shifts.items()}}
