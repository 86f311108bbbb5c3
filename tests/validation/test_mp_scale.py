"""The Materials Project scale without running DFT: U values, moments, MP2020 corrections, the GPAW and
VASP inputs that carry them, the band gap's k-sets, and the experiment check's data."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from pymatgen.core import Composition, Lattice, Structure
from pymatgen.io.vasp import Incar, Poscar
from pymatgen.io.vasp.sets import MPRelaxSet
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from icrdesign.errors import InputError
from icrdesign.validation.dft import dft_reference_settings, gpaw_maker
from icrdesign.validation.experiment import (COMPOUNDS, MIXING_FIT_COMPOUNDS, experimental_enthalpy, fit_mixing_refit,
                                            select, summary)
from icrdesign.validation.gpaw import GpawRelaxMaker, GpawStaticMaker, calculator_settings, line_kpoints
from icrdesign.validation.mlip import mlip_reference_settings
from icrdesign.validation.mlip import mp2020_corrected_energy as mlip_corrected_energy
from icrdesign.validation.mp_scale import (corrections_summary, initial_magmoms, mp2020_corrected_energy,
                                           mp2020_entry, mp_hubbards, mp_magmoms)
from icrdesign.validation.references import CROWN_RINGS, cache_name, crown_ring_in_box, reference_candidates

INCAR = MPRelaxSet.CONFIG["INCAR"]
GPAW_SETTINGS = {"xc": "PBE", "ecut": 300, "kpoint_density": 2.5, "smearing_width": 0.05, "max_scf_iterations": 300,
                 "fmax": 0.05, "relax_steps": 20, "mpi_procs": 1}
DFT = {"engine": "gpaw", "relax": False, "gpaw": GPAW_SETTINGS, "max_corrections": 0, "runtime": 10}
RELAXATION = {"force_field": "CHGNet", "fmax": 0.1, "steps": 500, "relax_cell": True, "molecule_box": 7.0}


def rocksalt(a: float, cation: str, anion: str) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [cation, anion],
                                     [[0, 0, 0], [0.5, 0.5, 0.5]]).get_primitive_structure()


def scf3() -> Structure:
    return Structure.from_spacegroup("Pm-3m", Lattice.cubic(4.013), ["Sc", "F"], [[0, 0, 0], [0.5, 0, 0]])


def fe2o3() -> Structure:
    return Structure.from_spacegroup("R-3c", Lattice.hexagonal(5.035, 13.75), ["Fe", "O"],
                                     [[0, 0, 0.3553], [0.3059, 0, 0.25]]).get_primitive_structure()


def alni() -> Structure:
    return Structure.from_spacegroup("Pm-3m", Lattice.cubic(2.887), ["Al", "Ni"], [[0, 0, 0], [0.5, 0.5, 0.5]])


@pytest.mark.parametrize(("formula", "expected"), [
    ("Fe2O3", {"Fe": INCAR["LDAUU"]["O"]["Fe"]}), ("NiF2", {"Ni": INCAR["LDAUU"]["F"]["Ni"]}),
    ("MnOF", {"Mn": INCAR["LDAUU"]["F"]["Mn"]}), ("LiCoO2", {"Co": INCAR["LDAUU"]["O"]["Co"]}),
    ("ScF3", {}), ("TiO2", {}), ("FeS", {}), ("AlNi", {}), ("Fe", {}), ("O2", {}),
])
def test_hubbards_are_mps(formula, expected):
    assert mp_hubbards(Composition(formula)) == expected


def test_known_u_values_and_moments_come_from_pymatgens_config():
    assert mp_hubbards(Composition("Fe2O3")) == {"Fe": 5.3} and mp_hubbards(Composition("NiO")) == {"Ni": 6.2}
    magmoms = mp_magmoms()
    assert magmoms["Fe"] == INCAR["MAGMOM"]["Fe"] == 5 and magmoms["Co"] == INCAR["MAGMOM"]["Co"]
    assert "Fe3+" not in magmoms and "O" not in magmoms  # ions and the 0.6 default are not elements' moments
    assert initial_magmoms(alni()) == [0.0, magmoms["Ni"]]
    given = alni()
    given.add_site_property("magmom", [0.0, -1.0])
    assert initial_magmoms(given) == [0.0, -1.0]


def test_fluoride_and_oxide_get_their_corrections_intermetallic_none():
    fluoride = mp2020_entry(Composition("ScF3"), -30.0, {})
    assert math.isclose(fluoride.energy, -30.0 + 3 * -0.462, abs_tol=1e-9)
    assert corrections_summary(fluoride) == "MP2020: F -0.462 eV/F"
    oxide = mp2020_entry(Composition("NiO"), -20.0, mp_hubbards(Composition("NiO")))
    assert math.isclose(oxide.energy, -20.0 - 0.687 - 2.541, abs_tol=1e-9)
    assert corrections_summary(oxide) == "MP2020: oxide -0.687 eV/O, GGA/GGA+U mixing -2.541 eV/Ni; U(Ni)=6.2"
    metal = mp2020_entry(Composition("AlNi"), -10.0, {})
    assert metal.energy == -10.0 and corrections_summary(metal) == ""
    # The MLIP tier's correction is the same function (MP's U values by default).
    assert mlip_corrected_energy is mp2020_corrected_energy
    assert mp2020_corrected_energy(Composition("NiO"), -20.0) == oxide.energy


def test_oxide_without_mps_u_is_refused():
    with pytest.raises(ValueError, match="refused NiO with U values none"):
        mp2020_entry(Composition("NiO"), -20.0, {})


def test_peroxide_is_read_from_the_structure():
    # Na2O2 (P-62m): the O-O pair of 1.49 A is a peroxide, which MP2020 corrects as such.
    na2o2 = Structure.from_spacegroup("P-62m", Lattice.hexagonal(6.21, 4.47), ["Na", "Na", "O", "O"],
                                      [[0.631, 0, 0], [0.285, 0, 0.5], [0, 0, 0.333], [1 / 3, 2 / 3, 0.167]])
    assert "peroxide" in corrections_summary(mp2020_entry(na2o2.composition, -50.0, {}, na2o2))


def test_gpaw_spec_carries_mps_u_and_moments_and_the_entry_parameters_say_so():
    maker = GpawStaticMaker(calculator_kwargs=calculator_settings(GPAW_SETTINGS))
    nio = rocksalt(4.177, "Ni", "O")
    spec = maker.calculation_spec(nio)
    assert spec["calculator"]["setups"] == {"Ni": ":d,6.2,0"} and spec["magmoms"] == [5.0, 0.0]
    from gpaw.hubbard import parse_hubbard_string
    from ase.units import Ha

    _, hubbard = parse_hubbard_string(spec["calculator"]["setups"]["Ni"])
    # d states, U_eff in eV, occupations inside the PAW sphere (VASP's)
    assert hubbard.l == [2] and math.isclose(hubbard.U[0] * Ha, 6.2) and hubbard.scale == [False]
    assert "setups" not in maker.calculation_spec(scf3())["calculator"]
    assert "setups" not in GpawStaticMaker(calculator_kwargs=calculator_settings(GPAW_SETTINGS),
                                           mp_hubbard_u=False).calculation_spec(nio)["calculator"]
    assert set(spec["band_gap_kpts"]) == {"uniform", "line"}
    assert spec["band_gap_kpts"]["uniform"]["size"] >= spec["calculator"]["kpts"]
    relax = GpawRelaxMaker(calculator_kwargs=calculator_settings(GPAW_SETTINGS))
    assert relax.calculation_spec(nio)["band_gap_kpts"] == {}
    # GPAW's stress misses the +U term: a +U compound relaxes its positions only.
    assert relax.calculation_spec(nio)["relax_cell"] is False and relax.calculation_spec(scf3())["relax_cell"] is True
    molecule = GpawStaticMaker(calculator_kwargs={**calculator_settings(GPAW_SETTINGS), "molecule": True})
    assert molecule.calculation_spec(nio)["band_gap_kpts"] == {}


def test_reference_cache_key_follows_the_mp_scale_settings(monkeypatch):
    settings = dft_reference_settings(DFT, RELAXATION)
    assert settings["initial_magmoms"] == mp_magmoms() and settings["hubbard_u"]["LDAUU"] == INCAR["LDAUU"]
    assert gpaw_maker(DFT, relax=False).static_maker.scale_settings() != GpawStaticMaker(
        mp_hubbard_u=False).scale_settings()
    before = cache_name(settings)
    monkeypatch.setitem(INCAR["LDAUU"]["O"], "Ni", 5.0)
    assert cache_name(dft_reference_settings(DFT, RELAXATION)) != before


def test_references_skip_the_band_gap_but_candidates_do_not():
    assert gpaw_maker(DFT, relax=False, band_gap=False).static_maker.band_gap_line_density is None
    assert gpaw_maker(DFT, relax=False).static_maker.band_gap_line_density == 20.0


@pytest.mark.parametrize("cell", ["primitive", "conventional", "skewed"])
def test_line_path_is_mapped_onto_any_cell_of_the_crystal(cell):
    si = Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.43), ["Si"], [[0, 0, 0]])
    structure = {"primitive": si.get_primitive_structure(), "conventional": si,
                 "skewed": si.get_primitive_structure()}[cell]
    if cell == "skewed":
        # Another basis of the same lattice, turned in space: a "triclinic-looking" cell of fcc Si.
        rotation = np.array([[0.8, -0.6, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 1.0]])
        basis = np.array([[1, 1, 0], [0, 1, 0], [0, 1, 1]]) @ structure.lattice.matrix @ rotation.T
        structure = Structure(Lattice(basis), structure.species, structure.cart_coords @ rotation.T,
                              coords_are_cartesian=True)
    kpoints = np.array(line_kpoints(structure, 20.0))
    assert len(kpoints) > 100
    cartesian = structure.lattice.reciprocal_lattice.get_cartesian_coords(kpoints)
    primitive_reciprocal = si.get_primitive_structure().lattice.reciprocal_lattice
    if cell == "skewed":
        primitive_reciprocal = Lattice(primitive_reciprocal.matrix @ rotation.T)
    # Every path end (Gamma, X, L, W, K, U) sits at 0, 1/2, 1/4, 3/8, 5/8 or 3/4 of the primitive
    # reciprocal vectors: the path is the crystal's, not one turned off it.
    ends = primitive_reciprocal.get_fractional_coords(cartesian[[0, -1]])
    assert np.allclose(ends * 8, np.round(ends * 8), atol=1e-6)
    assert np.allclose(np.linalg.norm(cartesian[-1]), 2 * np.pi / 5.43, atol=1e-6)  # ... ends at X


def test_line_path_of_a_triclinic_cell_exists():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        structure = Structure(Lattice.from_parameters(3.1, 4.2, 5.3, 81, 95, 101), ["Si", "Si"],
                              [[0, 0, 0], [0.3, 0.4, 0.5]])
        assert len(line_kpoints(structure, 20.0)) > 50


def test_vasp_inputs_put_mps_u_and_moments_and_correct_alike(tmp_path):
    from icrdesign.validation.vasp import incar_hubbards, write_vasp_inputs

    for structure, hubbards in [(fe2o3(), {"Fe": 5.3}), (scf3(), {})]:
        for relax in (True, False):
            files = write_vasp_inputs(structure, tmp_path / f"{structure.formula}-{relax}", relax=relax)
            incar, poscar = Incar.from_file(files["INCAR"]), Poscar.from_file(files["POSCAR"])
            read = incar_hubbards(incar, poscar)
            assert read == hubbards == mp_hubbards(structure.composition)
            assert bool(incar.get("LDAU", False)) == bool(hubbards)
            magnetic = [m for site, m in zip(poscar.structure, incar["MAGMOM"], strict=True)
                        if site.specie.symbol in mp_magmoms()]
            assert magnetic == [mp_magmoms()[s.specie.symbol] for s in poscar.structure
                                if s.specie.symbol in mp_magmoms()]
            # The U values a VASP task document records give the same corrected energy as MP's own.
            assert (mp2020_entry(structure.composition, -100.0, read).energy
                    == mp2020_corrected_energy(structure.composition, -100.0))


def test_experimental_table_and_compounds():
    assert math.isclose(experimental_enthalpy("NaCl").enthalpy_per_atom, -4.262824109620632 / 2)
    assert experimental_enthalpy("NiO").mpid == "mp-19009"
    with pytest.raises(InputError, match="no experimental formation enthalpy of 'XeF9'"):
        experimental_enthalpy("XeF9")
    kinds = {compound.formula: compound.structure() for compound in COMPOUNDS}
    assert len(kinds) >= 8 and all(experimental_enthalpy(formula).enthalpy_per_atom < 0 for formula in kinds)
    assert {formula: structure.composition.reduced_formula for formula, structure in kinds.items()} == {
        formula: Composition(formula).reduced_formula for formula in kinds}
    assert all(len(structure) <= 4 for structure in kinds.values())
    # The +U oxides start antiferromagnetic (AFM-II), as MP's ground states: two metal sites of MP's
    # moment with opposite signs, in a cell of two formula units that stays rocksalt.
    for formula, metal in (("NiO", "Ni"), ("MnO", "Mn")):
        moments = {symbol: sorted(m for site, m in zip(kinds[formula], kinds[formula].site_properties["magmom"],
                                                       strict=True) if site.specie.symbol == symbol)
                   for symbol in (metal, "O")}
        assert moments == {metal: [-mp_magmoms()[metal], mp_magmoms()[metal]], "O": [0.0, 0.0]}
        assert SpacegroupAnalyzer(kinds[formula]).get_space_group_symbol() == "Fm-3m"
    assert "magmom" not in kinds["ScF3"].site_properties
    assert sum(bool(mp_hubbards(structure.composition)) for structure in kinds.values()) >= 2
    assert [compound.formula for compound in select(["ScF3", "NiO"])] == ["ScF3", "NiO"]
    with pytest.raises(InputError, match=r"unknown compounds \['XeF9'\]"):
        select(["XeF9"])


def test_fit_set_fluorides_are_antiferromagnetic_rutile():
    for compound, metal in zip(MIXING_FIT_COMPOUNDS, ("Ni", "Mn"), strict=True):
        structure = compound.structure()
        assert len(structure) == 6 and SpacegroupAnalyzer(structure).get_space_group_symbol() == "P4_2/mnm"
        assert experimental_enthalpy(compound.formula).enthalpy_per_atom < 0
        moments = sorted(m for site, m in zip(structure, structure.site_properties["magmom"], strict=True)
                         if site.specie.symbol == metal)
        # Corner and body centre antiparallel; each metal has six F neighbours at 1.98-2.16 A.
        assert moments == [-mp_magmoms()[metal], mp_magmoms()[metal]]
        for site in structure:
            if site.specie.symbol == metal:
                neighbours = structure.get_neighbors(site, 2.2)
                assert len(neighbours) == 6 and all(n.specie.symbol == "F" and n.nn_distance > 1.95 for n in neighbours)
    assert [compound.formula for compound in select(["NiF2"])] == ["NiF2"]


def test_mixing_refit_puts_each_fit_fluoride_on_experiment():
    rows = [{"formula": "NiF2", "status": "ok", "error": 0.1},
            {"formula": "MnF2", "status": "ok", "error": -0.05},
            {"formula": "MnF2", "status": "ok", "error": -0.15},
            {"formula": "CoF2", "status": "failed", "error": math.nan}]
    # NiF2: 3 atoms per Ni, 0.1 eV/atom too high -> -0.3 eV/Ni more; MnF2: the mean of +0.15 and +0.45.
    refit = fit_mixing_refit(rows, {"Ni": -0.2, "Co": 0.05})
    assert refit.keys() == {"Ni", "Mn", "Co"}
    assert math.isclose(refit["Ni"], -0.5) and math.isclose(refit["Mn"], 0.3) and refit["Co"] == 0.05
    with pytest.raises(InputError, match=r"NaCl has 0 metals with \+U"):
        fit_mixing_refit([{"formula": "NaCl", "status": "ok", "error": 0.0}], {})


def test_gpaw_refit_is_added_to_gpaw_energies_of_u_metals_only(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from icrdesign.validation import mp_scale

    path = tmp_path / "refit.yaml"
    mp_scale.write_gpaw_mixing_refit({"Ni": -0.4}, ["NiF2"], {"ecut": 400}, path)
    monkeypatch.setattr(mp_scale, "GPAW_MIXING_REFIT_PATH", path)
    mp_scale.gpaw_mixing_refit.cache_clear()
    try:
        assert mp_scale.gpaw_mixing_refit() == {"corrections": {"Ni": -0.4}, "fit_set": ["NiF2"], "settings": {"ecut": 400}}
        nio = Structure(Lattice.cubic(4.177), ["Ni", "Ni", "O", "O"],
                        [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0], [0, 0.5, 0]])

        def task_doc(structure: Structure, energy: float, hubbards: dict) -> SimpleNamespace:
            return SimpleNamespace(structure=structure, output=SimpleNamespace(energy=energy),
                                   entry=SimpleNamespace(parameters={"hubbards": hubbards}))

        oxide = task_doc(nio, -40.0, mp_hubbards(nio.composition))
        gpaw, vasp = mp_scale.mp2020_task_entry(oxide, "gpaw"), mp_scale.mp2020_task_entry(oxide, "vasp")
        assert math.isclose(gpaw.energy - vasp.energy, 2 * -0.4)
        assert corrections_summary(gpaw) == ("MP2020: oxide -0.687 eV/O, GGA/GGA+U mixing -2.541 eV/Ni; "
                                             "GPAW refit: GGA/GGA+U mixing -0.400 eV/Ni; U(Ni)=6.2")
        # An intermetallic (no U) and a fluoride of a metal without a refit get none.
        alni = Structure(Lattice.cubic(2.887), ["Al", "Ni"], [[0, 0, 0], [0.5, 0.5, 0.5]])
        assert mp_scale.mp2020_task_entry(task_doc(alni, -10.0, {}), "gpaw").energy == -10.0
        cof2 = MIXING_FIT_COMPOUNDS[0].structure().copy()
        cof2.replace_species({"Ni": "Co"})
        doc = task_doc(cof2, -30.0, mp_hubbards(cof2.composition))
        assert mp_scale.mp2020_task_entry(doc, "gpaw").energy == mp_scale.mp2020_task_entry(doc, "vasp").energy
    finally:
        mp_scale.gpaw_mixing_refit.cache_clear()


def test_reference_settings_read_back_equal_so_cached_references_are_reused(tmp_path):
    """A cached reference is reused only when its recorded settings equal the current ones; both tiers'
    settings must survive the JSON round trip of the cache file (a tuple would come back a list)."""
    from icrdesign.validation.references import cached_references

    calls: list[str] = []

    def compute(element: str) -> dict:
        calls.append(element)
        return {"kind": "molecule", "energy_per_atom": -1.0}

    for settings in (dft_reference_settings(DFT, RELAXATION), mlip_reference_settings(RELAXATION)):
        assert "crown_rings" in json.dumps(settings)
        cache = tmp_path / settings["engine"]
        cached_references(["S"], cache, settings, compute)
        cached_references(["S"], cache, settings, compute)
    assert calls == ["S", "S"]


def test_sulfur_reference_is_an_s8_crown_ring():
    """Bond lengths and angles as in alpha-sulfur, and the ring's images as far apart as the box says."""
    kind, (ring,) = reference_candidates("S", 9.0)
    size, bond, angle = CROWN_RINGS["S"]
    assert kind == "molecule" and ring.composition.reduced_formula == "S" and len(ring) == size == 8
    distances = ring.distance_matrix
    for k in range(size):
        assert math.isclose(distances[k, (k + 1) % size], bond, abs_tol=1e-9)
        left, right = ring.cart_coords[(k - 1) % size] - ring.cart_coords[k], ring.cart_coords[(k + 1) % size] - ring.cart_coords[k]
        assert math.isclose(math.degrees(math.acos(left @ right / bond**2)), angle, abs_tol=1e-6)
    # The nearest image atom is at least the box edge away along each axis.
    assert min(neighbour.nn_distance for site in ring for neighbour in ring.get_neighbors(site, 9.0)
               if neighbour.image != (0, 0, 0)) >= 9.0 - 1e-9
    assert crown_ring_in_box("S", 6.0).lattice.abc[0] < ring.lattice.abc[0]


def test_summary_counts_finished_rows_only():
    rows = [{"status": "ok", "error": 0.1}, {"status": "ok", "error": -0.05}, {"status": "failed", "error": math.nan}]
    result = summary(rows)
    assert result["n"] == 2 and math.isclose(result["mae"], 0.075) and math.isclose(result["mean_signed_error"], 0.025)
    assert result["meets_target"] is True
    assert summary([])["meets_target"] is False


def test_a_relaxation_whose_energy_climbs_is_refused():
    from atomate2.ase.schemas import AseResult
    from pymatgen.core.trajectory import Trajectory

    from icrdesign.tolerances import RELAXATION_UPHILL_EV_PER_ATOM
    from icrdesign.validation.gpaw import uphill

    cell = Structure(Lattice.cubic(4.0), ["Sc", "F"], [[0, 0, 0], [0.5, 0, 0]])

    def result(*energies: float) -> AseResult:
        return AseResult(trajectory=Trajectory.from_structures([cell] * len(energies),
                                                               frame_properties=[{"energy": e} for e in energies]))

    # ScF3 at 400 eV: the cell shrank by 9% while the energy rose from -22.64 to -19.90 eV.
    assert uphill(result(-22.641, -22.543, -19.905), 2) == (
        "energy rose from -22.6410 to -19.9050 eV over 3 steps (the stress disagrees with the energy)")
    assert uphill(result(-10.0, -10.5, -10.4), 2) is None
    # A relaxation that starts at its minimum may end a hair above it.
    assert uphill(result(-10.0, -10.0 + RELAXATION_UPHILL_EV_PER_ATOM), 2) is None
    assert uphill(result(-10.0), 2) is None
