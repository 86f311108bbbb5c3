"""The reference convex hull of the stability check: E_hull of known phases and compositions, the
Materials Project thermo download against the local fake API, the MLIP hull with a stand-in
potential, the JSON file and the ``icrdesign hull`` command."""

from __future__ import annotations

import json
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from ase import Atoms
from hypothesis import given, settings as hyp_settings, strategies as st
from mp_server import files_holding, DB_VERSION, THERMO_PATH, MPTestServer
from pymatgen.core import Lattice, Structure

from icrdesign.artefacts.candidates import candidate_columns, write_candidates
from icrdesign.artefacts.dataset import TABLE_COLUMNS, write_dataset
from icrdesign.cli import main
from icrdesign.config import load_config
from icrdesign.data.materials_project import API_KEY_ENV, ENDPOINT_ENV, THERMO_STRUCTURE_FIELD
from icrdesign.errors import ConfigError, InputError
from icrdesign.io import write_json
from icrdesign.stability import (STABLE_E_HULL, STRICT_E_HULL, ReferenceHull, build_reference_hull,
                                 hull_from_table, is_stable, materials_project_hull, read_hull, sub_systems,
                                 write_hull)
from icrdesign.validation.mlip import mlip_reference_settings

API_KEY = "Zq4TESTkeyNotReal0123456789abcdE"  # 32 letters and digits, as a real key

# A small Na-Cl-O world: NaCl and Na2O on the hull, NaCl2 above it, NaO2 on it, ClO2 above zero.
PHASES = {"NaCl": -2.0, "Na2O": -1.4, "NaCl2": -1.0, "NaO2": -1.2, "ClO2": 0.3}
# What pymatgen's hull says of the unstable ones: NaCl2 -> 2/3 NaCl + 1/3 Cl at -4/3 eV/atom.
NACL2_E_HULL = -1.0 - (-2.0 * 2 / 3)


def table(phases: dict[str, float | None]) -> pd.DataFrame:
    """A dataset-like table of formulas and formation energies (None: missing)."""
    return pd.DataFrame({"material_id": [f"t-{i}" for i in range(len(phases))], "formula": list(phases),
                         "formation_energy_per_atom": list(phases.values())})


@pytest.fixture(scope="module")
def hull() -> ReferenceHull:
    return hull_from_table(table(PHASES), "test table")


def test_stable_compound_and_element_are_on_the_hull(hull: ReferenceHull) -> None:
    for formula in ("NaCl", "Na2O", "NaO2"):
        assert hull.e_above_hull(formula, PHASES[formula]) == pytest.approx(0.0, abs=1e-9)
    for element in ("Na", "Cl", "O"):
        assert hull.e_above_hull(element, 0.0) == pytest.approx(0.0, abs=1e-12)
    assert is_stable(hull.e_above_hull("NaCl", -2.0), STRICT_E_HULL)


def test_composition_above_the_hull_is_not_stable(hull: ReferenceHull) -> None:
    pushed = hull.e_above_hull("NaCl", -2.0 + 0.2)
    assert pushed == pytest.approx(0.2)
    assert not is_stable(pushed) and not is_stable(pushed, STRICT_E_HULL)
    near = hull.e_above_hull("Na2O", -1.4 + 0.05)
    assert is_stable(near, STABLE_E_HULL) and not is_stable(near, STRICT_E_HULL)
    assert hull.e_above_hull("NaCl2", -1.0) == pytest.approx(NACL2_E_HULL)
    # A ternary composition decomposes into the binaries: Na3ClO -> NaCl + Na2O at -1.5 eV/atom.
    assert hull.e_above_hull("Na3ClO", -1.5) == pytest.approx(-1.5 - (2 * -2.0 + 3 * -1.4) / 5)


def test_below_the_hull_is_negative(hull: ReferenceHull) -> None:
    assert hull.e_above_hull("NaCl", -2.3) == pytest.approx(-0.3)


@pytest.mark.parametrize("formation_energy", [0.25, -0.4])
def test_system_without_compound_measures_against_the_elements(hull: ReferenceHull, formation_energy: float) -> None:
    # K-Na has no phase, and K none at all: the hull of K-Na is the elements at 0.
    assert hull.e_above_hull("KNa2", formation_energy) == pytest.approx(formation_energy)


def test_table_hull_skips_and_counts_missing_energies_and_leaves_elements_at_zero() -> None:
    built = hull_from_table(table({**PHASES, "NaCl3": None, "Na3Cl": "not a number", "Na": -0.3}), "test table")
    assert "5 phases" in built.source and "3 elements at 0 eV/atom" in built.source
    assert "2 rows without a usable formation energy skipped" in built.source
    # The elemental row (-0.3) is not used: the elements are at 0 by definition.
    assert built.e_above_hull("Na", 0.0) == pytest.approx(0.0)
    assert {entry.attribute for entry in built.entries if len(entry.composition) > 1} == {
        "t-0", "t-1", "t-2", "t-3", "t-4"}


def test_table_hull_restricted_to_the_candidates_systems_gives_the_same_e_hull(hull: ReferenceHull) -> None:
    restricted = hull_from_table(table(PHASES), "test table", ["Cl-Na"])
    assert {entry.name for entry in restricted.entries} == {"Na", "Cl", "NaCl", "NaCl2"}
    for formula, energy in (("NaCl", -1.9), ("NaCl2", -1.0), ("Na3Cl", -0.5)):
        assert restricted.e_above_hull(formula, energy) == pytest.approx(hull.e_above_hull(formula, energy))


def test_non_finite_energy_and_bad_formula_are_refused(hull: ReferenceHull) -> None:
    with pytest.raises(ValueError, match="NaCl"):
        hull.e_above_hull("NaCl", float("nan"))
    with pytest.raises(InputError, match="Qq"):
        hull.e_above_hull("Qq2", -1.0)


def test_sub_systems() -> None:
    assert sub_systems(["Na-Cl"]) == ["Cl", "Cl-Na", "Na"]
    assert sub_systems(["O-Sr-Ti", "Na-Cl"], min_elements=2) == ["Cl-Na", "O-Sr", "O-Sr-Ti", "O-Ti", "Sr-Ti"]


def _lower_hull(points: list[tuple[Fraction, float]]) -> list[tuple[Fraction, float]]:
    """Andrew's monotone chain, lower half: the vertices of the lower convex hull of (x, y) points."""
    chain: list[tuple[Fraction, float]] = []
    for point in sorted(set(points)):
        while len(chain) >= 2:
            (x1, y1), (x2, y2) = chain[-2], chain[-1]
            if (x2 - x1) * (point[1] - y1) - (y2 - y1) * (point[0] - x1) <= 0:
                chain.pop()
            else:
                break
        chain.append(point)
    return chain


def _hull_energy(chain: list[tuple[Fraction, float]], x: Fraction) -> float:
    for (x1, y1), (x2, y2) in zip(chain, chain[1:]):
        if x1 <= x <= x2:
            return y1 + (y2 - y1) * float((x - x1) / (x2 - x1))
    raise AssertionError(f"{x} outside the hull")


# Binary Li-Si compositions Li_a Si_b, as the fraction of Si.
RATIOS = [(3, 1), (2, 1), (3, 2), (1, 1), (2, 3), (1, 2), (1, 3), (4, 1), (1, 4)]


@given(energies=st.lists(st.floats(-3.0, 1.0), min_size=len(RATIOS), max_size=len(RATIOS)),
       probe=st.floats(-3.0, 1.0))
@hyp_settings(max_examples=60, deadline=None)
def test_binary_hull_matches_an_independent_lower_hull(energies: list[float], probe: float) -> None:
    """E_hull >= 0 for every phase of the hull, 0 for its vertices, and it equals the distance to
    the lower convex hull of (x, E_f) computed independently."""
    formulas = [f"Li{a}Si{b}" for a, b in RATIOS]
    built = hull_from_table(table(dict(zip(formulas, energies))), "random table")
    points = [(Fraction(0), 0.0), (Fraction(1), 0.0)] + [
        (Fraction(b, a + b), energy) for (a, b), energy in zip(RATIOS, energies)]
    chain = _lower_hull(points)
    for (a, b), formula, energy in zip(RATIOS, formulas, energies):
        x = Fraction(b, a + b)
        e_hull = built.e_above_hull(formula, energy)
        assert e_hull >= -1e-9
        assert e_hull == pytest.approx(energy - _hull_energy(chain, x), abs=1e-9)
        if (x, energy) in chain:
            assert e_hull == pytest.approx(0.0, abs=1e-9)
        # Any other energy of the same composition: its distance to the hull, negative below it.
        assert built.e_above_hull(formula, probe) == pytest.approx(probe - _hull_energy(chain, x), abs=1e-9)


def test_hull_json_round_trips(hull: ReferenceHull, tmp_path: Path) -> None:
    path = tmp_path / "hull.json"
    write_hull(path, hull)
    again = read_hull(path)
    assert again == hull and again.source == hull.source
    assert [entry.attribute for entry in again.entries] == [entry.attribute for entry in hull.entries]
    for formula, energy in (("NaCl2", -1.0), ("Na3ClO", -1.5), ("KNa2", 0.25)):
        assert again.e_above_hull(formula, energy) == hull.e_above_hull(formula, energy)
    assert [p.name for p in tmp_path.iterdir()] == ["hull.json"]  # no temporary file left


@pytest.mark.parametrize("content", [None, "{}", '{"source": "x", "entries": [{"energy": 1}]}', "not json"])
def test_unreadable_hull_file_is_an_input_error(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "hull.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match="hull.json"):
        read_hull(path)


# --- Materials Project ---------------------------------------------------------------------------

@pytest.fixture()
def mp_env(monkeypatch: pytest.MonkeyPatch) -> MPTestServer:
    with MPTestServer(api_key=API_KEY) as server:
        monkeypatch.setenv(API_KEY_ENV, API_KEY)
        monkeypatch.setenv(ENDPOINT_ENV, server.url)
        yield server


@pytest.fixture()
def mp_settings() -> dict[str, Any]:
    section = load_config()["data"]["materials_project"]
    return {**section, "chunk_size": 2, "retry_backoff": 0.0, "max_retries": 2}


def _asked_systems(server: MPTestServer) -> set[str]:
    return {system for request in server.thermo_requests() for system in request.params["chemsys"].split(",")}


def test_materials_project_hull_queries_sub_systems_and_caches_them(
    mp_env: MPTestServer, mp_settings: dict, tmp_path: Path
) -> None:
    built = materials_project_hull(["Cl-Cs-Na", "O-Sr-Ti"], mp_settings, tmp_path / "cache")

    # Every sub-system of two or more elements, in GGA_GGA+U, stable phases only; the key as a header.
    assert _asked_systems(mp_env) == {"Cl-Cs", "Cl-Na", "Cs-Na", "Cl-Cs-Na", "O-Sr", "O-Ti", "Sr-Ti", "O-Sr-Ti"}
    for request in mp_env.thermo_requests():
        assert request.params["thermo_types"] == "GGA_GGA+U" and request.params["is_stable"].lower() == "true"
        assert THERMO_STRUCTURE_FIELD not in request.params["_fields"].split(",")
        assert request.headers.get("x-api-key") == API_KEY
    assert "materials_project thermo GGA_GGA+U" in built.source and DB_VERSION in built.source
    assert "4 phases in 4 chemical systems + 6 elements at 0 eV/atom" in built.source
    assert {entry.attribute for entry in built.entries if entry.attribute} == {
        "mp-22862", "mp-573697", "mp-5229", "mp-2472"}

    # On the GGA_GGA+U scale (the r2SCAN NaCl at -2.30 is not used), the unstable polymorph left out.
    assert built.e_above_hull("NaCl", -2.10) == pytest.approx(0.0, abs=1e-9)
    assert built.e_above_hull("NaCl", -2.00) == pytest.approx(0.10)
    assert built.e_above_hull("SrTiO3", -3.56) == pytest.approx(0.0, abs=1e-9)
    assert built.e_above_hull("CsNa", 0.05) == pytest.approx(0.05)

    # A rerun, and a new candidate in known systems, download nothing.
    mp_env.requests.clear()
    again = materials_project_hull(["Cl-Cs-Na", "O-Sr-Ti"], mp_settings, tmp_path / "cache")
    materials_project_hull(["Cl-Na", "Sr-Ti"], mp_settings, tmp_path / "cache")
    assert mp_env.requests == []
    assert again == built

    # A new system downloads only its unknown sub-systems.
    materials_project_hull(["Na-O-Sr"], mp_settings, tmp_path / "cache")
    assert _asked_systems(mp_env) == {"Na-O", "Na-Sr", "Na-O-Sr"}
    assert files_holding(tmp_path, API_KEY) == []


def test_materials_project_hull_failure_names_endpoint_not_key(
    mp_env: MPTestServer, mp_settings: dict, tmp_path: Path
) -> None:
    from icrdesign.data.materials_project import MaterialsProjectError

    mp_env.fail_next(THERMO_PATH, 503, times=10)
    with pytest.raises(MaterialsProjectError, match="503") as info:
        materials_project_hull(["Cl-Na"], mp_settings, tmp_path)
    assert API_KEY not in str(info.value) and mp_env.url in str(info.value)
    assert len(mp_env.thermo_requests()) == 3  # one try + two retries
    assert not list(tmp_path.rglob("*.json.gz"))


def test_materials_project_hull_needs_the_candidates_systems(tmp_path: Path) -> None:
    config = load_config(overrides={"data": {"source": "materials_project"}})
    with pytest.raises(ConfigError, match="chemical systems"):
        build_reference_hull(config, None, tmp_path)


# --- MLIP hull -----------------------------------------------------------------------------------

# The stand-in potential: per-atom energies of the elements, and a formation energy per formula.
MU = {"Na": -1.3, "Cl": -1.8, "O": -4.9, "Cs": -0.9}
BONUS = {"NaCl": -2.05, "Na2O": -1.5, "CsCl": -2.2}


class StandInPotential:
    """Energies from MU and BONUS, zero forces and stress (relaxed at once); counts structures seen."""

    def __init__(self, fail: Sequence[str] = ()) -> None:
        self.fail = set(fail)
        self.seen: list[str] = []

    def predict(self, atoms: Sequence[Atoms]) -> list[dict[str, Any]]:
        results = []
        for item in atoms:
            formula = Structure.from_ase_atoms(item).composition.reduced_formula
            self.seen.append(formula)
            if formula in self.fail:
                raise RuntimeError(f"cannot evaluate {formula}")
            symbols = item.get_chemical_symbols()
            energy = sum(MU[s] for s in symbols) + BONUS.get(formula, 0.0) * len(symbols)
            results.append({"energy": energy, "forces": np.zeros((len(item), 3)), "stress": np.zeros(6)})
        return results


def _write_references(folder: Path, relaxation: dict[str, Any]) -> None:
    """The elemental references the candidates' relaxations would have cached (energy MU per atom)."""
    settings = mlip_reference_settings(relaxation)
    for element, energy in MU.items():
        write_json(folder / f"{element}.json", {"element": element, "kind": "solid", "energy_per_atom": energy,
                                                "status": "ok", "settings": settings})


def _rocksalt(a: float, cation: str, anion: str) -> Structure:
    half = a / 2
    lattice = Lattice([[0, half, half], [half, 0, half], [half, half, 0]])
    return Structure(lattice, [cation, anion], [[0, 0, 0], [0.5, 0.5, 0.5]])


def _dataset(rows: list[tuple[str, Structure, float]]) -> pd.DataFrame:
    frame = pd.DataFrame([{
        "material_id": material_id, "formula": structure.composition.reduced_formula,
        "structure": json.dumps(structure.as_dict()), "nsites": len(structure),
        "nelements": len(structure.composition.elements), "spacegroup": "Fm-3m",
        "formation_energy_per_atom": energy, "band_gap": 1.0, "energy_above_hull": 0.0, "source": "test",
        "label_source": "test"} for material_id, structure, energy in rows])
    return frame[list(TABLE_COLUMNS)]


NA2O = Structure(Lattice.cubic(5.55), ["O", "Na", "Na"], [[0, 0, 0], [0.25, 0.25, 0.25], [0.75, 0.75, 0.75]])
DATASET_ROWS = [("d-1", _rocksalt(5.64, "Na", "Cl"), -2.0), ("d-2", NA2O, -1.4),
                ("d-3", _rocksalt(6.9, "Cs", "Cl"), -2.1), ("d-4", _rocksalt(4.2, "Cs", "O"), -1.0)]


def test_mlip_hull_of_the_table_relaxes_each_phase_once(tmp_path: Path) -> None:
    config = load_config(overrides={"stability": {"hull": "mlip"}})
    references = tmp_path / "references"
    _write_references(references, config["relaxation"])
    potential = StandInPotential(fail=["CsCl"])

    built = build_reference_hull(config, ["Cl-Na-O", "Cl-Cs"], tmp_path / "cache", _dataset(DATASET_ROWS),
                                 references, predictor=potential)

    # The phases of the candidates' systems (CsO is in none), the failed one left out and counted.
    assert sorted(set(potential.seen)) == ["CsCl", "Na2O", "NaCl"]
    assert "demo training table" in built.source and "relaxed with CHGNet" in built.source
    assert "1 failed relaxations left out" in built.source
    assert {entry.attribute for entry in built.entries if entry.attribute} == {"d-1", "d-2"}
    # Formation energies on the potential's scale (the BONUS), not the table's labels.
    assert built.e_above_hull("NaCl", -2.05) == pytest.approx(0.0, abs=1e-9)
    assert built.e_above_hull("NaCl", -2.0) == pytest.approx(0.05)
    assert built.e_above_hull("CsCl", -0.5) == pytest.approx(-0.5)

    # A rerun relaxes nothing: every crystal is cached, the failed one included.
    again_potential = StandInPotential()
    again = build_reference_hull(config, ["Cl-Na-O", "Cl-Cs"], tmp_path / "cache", _dataset(DATASET_ROWS),
                                 references, predictor=again_potential)
    assert again_potential.seen == [] and again == built
    # Other potential settings are another cache entry.
    changed = {**config, "relaxation": {**config["relaxation"], "fmax": 0.05}}
    _write_references(references, changed["relaxation"])
    build_reference_hull(changed, ["Cl-Na"], tmp_path / "cache", _dataset(DATASET_ROWS), references,
                         predictor=again_potential)
    assert again_potential.seen == ["NaCl"]


def test_mlip_hull_of_materials_project_relaxes_the_thermo_structures(
    mp_env: MPTestServer, tmp_path: Path
) -> None:
    config = load_config(overrides={"data": {"source": "materials_project",
                                             "materials_project": {"retry_backoff": 0.0}},
                                    "stability": {"hull": "mlip"}})
    references = tmp_path / "references"
    _write_references(references, config["relaxation"])
    potential = StandInPotential()
    built = build_reference_hull(config, ["Cl-Cs-Na"], tmp_path / "cache", None, references, predictor=potential)
    assert sorted(potential.seen) == ["CsCl", "NaCl"]
    assert all(THERMO_STRUCTURE_FIELD in request.params["_fields"].split(",") for request in mp_env.thermo_requests())
    assert "materials_project thermo GGA_GGA+U" in built.source and "relaxed with CHGNet" in built.source
    assert built.e_above_hull("CsCl", -2.2) == pytest.approx(0.0, abs=1e-9)
    assert files_holding(tmp_path, API_KEY) == []


# --- the command ---------------------------------------------------------------------------------

def _candidates_csv(path: Path, formulas: list[str], valid: list[bool]) -> Path:
    n = len(formulas)
    columns = candidate_columns(["formation_energy_per_atom", "band_gap"])
    frame = pd.DataFrame({column: [np.nan] * n for column in columns})
    frame = frame.assign(id=[f"c-{i}" for i in range(n)], case="Ef_-0.5", strategy="local_perturbation",
                         baseline=False, seed="7", sigma=0.6, formula=formulas, spacegroup="Fm-3m", nsites=2,
                         valid_structure=valid, valid_composition=valid, valid=valid, unique=True, novel=True,
                         surrogate_success=False, cif="")
    write_candidates(path, frame)
    return path


def test_cli_writes_the_table_hull_and_names_its_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dataset = tmp_path / "dataset.parquet"
    write_dataset(dataset, _dataset(DATASET_ROWS))
    candidates = _candidates_csv(tmp_path / "candidates.csv", ["NaCl", "Cs2O", "XeF"], [True, True, False])
    out = tmp_path / "validation" / "hull.json"
    assert main(["hull", "--dataset", str(dataset), "--candidates", str(candidates), "--cache", str(tmp_path / "c"),
                 "--out", str(out)]) == 0
    written = read_hull(out)
    assert written.source.startswith("demo training table: 2 phases in 2 chemical systems + 4 elements")
    assert written.source in capsys.readouterr().out
    # The candidates' systems Cl-Na and Cs-O: NaCl and CsO; Na2O and CsCl are in neither; XeF is not valid.
    assert {entry.attribute for entry in written.entries if entry.attribute} == {"d-1", "d-4"}
    assert written.e_above_hull("NaCl", -1.8) == pytest.approx(0.2)


def test_cli_writes_the_materials_project_hull_without_the_key(
    mp_env: MPTestServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump({"data": {"source": "materials_project",
                                               "materials_project": {"retry_backoff": 0.0}}}))
    first = _candidates_csv(tmp_path / "a.csv", ["NaCl", "SrTiO3"], [True, True])
    second = _candidates_csv(tmp_path / "b.csv", ["CsCl"], [True])
    out = tmp_path / "results" / "hull.json"
    argv = ["hull", "--config", str(config), "--candidates", str(first), str(second),
            "--cache", str(tmp_path / "results" / "cache"), "--out", str(out)]
    assert main(argv) == 0
    written = read_hull(out)
    assert "materials_project thermo GGA_GGA+U" in written.source
    assert written.source in capsys.readouterr().out
    assert _asked_systems(mp_env) == {"Cl-Na", "Cl-Cs", "O-Sr", "O-Ti", "Sr-Ti", "O-Sr-Ti"}
    assert written.e_above_hull("SrTiO3", -3.46) == pytest.approx(0.1)
    mp_env.requests.clear()
    assert main(argv) == 0
    assert mp_env.requests == []
    assert files_holding(tmp_path, API_KEY) == []


def test_cli_without_dataset_for_a_table_source_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hull", "--cache", str(tmp_path / "c"), "--out", str(tmp_path / "hull.json")]) == 2
    assert "--dataset" in capsys.readouterr().err
    assert not (tmp_path / "hull.json").exists()
