"""Bad input to ``icrdesign relax`` / ``dft`` / ``export-flows`` (issue 21): every refusal is one line
naming the file and the cause, exit code 2, nothing recorded; with --record-refusal (the workflow's
rules) the refusal is the candidate's failed record instead. No refusal here runs a calculation."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from pymatgen.core import Lattice, Structure

from icrdesign.artefacts.validation import DFT, MLIP
from icrdesign.cli import main as cli_main
from icrdesign.config import load_config
from icrdesign.structure_checks import StructureRefused, read_structure
from icrdesign.validation.inputs import check_input, force_field_elements

CIF_HEADER = """data_test
_cell_length_a 4
_cell_length_b 4
_cell_length_c 4
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
_symmetry_equiv_pos_as_xyz
 'x, y, z'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
"""


def write_cif(path: Path, sites: list[str]) -> Path:
    """A P1 CIF of a 4 Å cube with the given ``_atom_site`` rows (label, symbol, x, y, z, occupancy)."""
    path.write_text(CIF_HEADER + "\n".join(sites) + "\n")
    return path


def write_poscar(path: Path, lattice: str, positions: list[str]) -> Path:
    """A POSCAR of one Na and one Cl: ``lattice`` is its three vector lines, positions fractional."""
    path.write_text(f"NaCl\n1.0\n{lattice}\nNa Cl\n1 1\ndirect\n" + "\n".join(positions) + "\n")
    return path


CUBE = "4 0 0\n0 4 0\n0 0 4"


def run(command: str, structure: Path, out: Path, *options: str) -> int:
    """``icrdesign COMMAND STRUCTURE`` with throwaway reference caches."""
    extra = ["--mlip-references", str(out.parent / "mlip_refs")] if command == "dft" else []
    return cli_main([command, str(structure), "--out", str(out), "--references", str(out.parent / "refs"),
                     *extra, *options])


def refusal(capsys: pytest.CaptureFixture[str]) -> str:
    """The one message a refused command printed, its last line on stderr (before it, only what a loaded
    model prints about itself); stdout stays empty: nothing was computed."""
    captured = capsys.readouterr()
    assert captured.out == ""
    messages = [line for line in captured.err.splitlines() if line.startswith("icrdesign ")]
    assert len(messages) == 1 and captured.err.rstrip().endswith(messages[0]), captured.err
    return messages[0]


def nacl_supercell(n_sites: int) -> Structure:
    """Rock-salt NaCl of ``n_sites`` sites (a multiple of 8)."""
    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.69), ["Na", "Cl"], [[0, 0, 0], [0.5] * 3])
    nacl.make_supercell([n_sites // 8, 1, 1])
    return nacl


@pytest.mark.parametrize("command", ["relax", "dft"])
def test_atoms_at_one_position_in_a_cif_are_refused_by_name(tmp_path, capsys, command):
    # pymatgen's own parser drops this structure ("Invalid CIF file with no structures!").
    cif = write_cif(tmp_path / "overlap.cif", ["Na1 Na 0 0 0 1", "Cl1 Cl 0 0 0 1"])
    assert run(command, cif, tmp_path / "out") == 2
    assert refusal(capsys) == (f"icrdesign {command}: {cif}: atoms Na and Cl are 0.00 Å apart "
                               "(merged into site 0, fractional [0.0, 0.0, 0.0])")
    assert not (tmp_path / "out").exists()  # by hand, a refusal is not a result


def test_close_atoms_in_a_cif_name_the_pair_and_distance(tmp_path, capsys):
    cif = write_cif(tmp_path / "close.cif", ["Na1 Na 0 0 0 1", "Cl1 Cl 0.05 0 0 1"])
    assert run("relax", cif, tmp_path / "out") == 2
    assert refusal(capsys) == f"icrdesign relax: {cif}: atoms 0 (Na) and 1 (Cl) are 0.20 Å apart (closer than 0.5 Å)"


@pytest.mark.parametrize("command", ["relax", "dft"])
def test_atoms_at_one_position_in_a_poscar_are_refused_by_name(tmp_path, capsys, command):
    poscar = write_poscar(tmp_path / "POSCAR", CUBE, ["0 0 0", "0 0 0"])
    assert run(command, poscar, tmp_path / "out") == 2
    assert refusal(capsys) == (f"icrdesign {command}: {poscar}: atoms 0 (Na) and 1 (Cl) are 0.00 Å apart "
                               "(closer than 0.5 Å)")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("lattice, positions, message", [
    (CUBE, ["0 0 0", "nan 0.5 0.5"], "atom 1 (Cl) has non-finite coordinates [nan, 0.5, 0.5]"),
    ("4 0 0\n0 inf 0\n0 0 4", ["0 0 0", "0.5 0.5 0.5"], "the lattice holds non-finite numbers"),
    ("4 0 0\n8 0 0\n0 0 4", ["0 0 0", "0.5 0.5 0.5"], "degenerate cell: volume 0 Å³ for edges 4, 8, 4 Å"),
])
def test_non_finite_numbers_and_degenerate_cells_are_refused(tmp_path, capsys, lattice, positions, message):
    # NaN coordinates reached GPAW, which failed with "Mismatch of Atoms objects".
    poscar = write_poscar(tmp_path / "POSCAR", lattice, positions)
    assert run("dft", poscar, tmp_path / "out") == 2
    assert refusal(capsys).startswith(f"icrdesign dft: {poscar}: {message}")


def test_unreadable_and_missing_files_are_named(tmp_path, capsys):
    garbage = tmp_path / "garbage.cif"
    garbage.write_text("not a crystal\n")
    assert run("relax", garbage, tmp_path / "out") == 2
    assert refusal(capsys).startswith(f"icrdesign relax: {garbage}: cannot read a structure (")
    assert run("relax", tmp_path / "missing.cif", tmp_path / "out") == 2
    assert refusal(capsys) == f"icrdesign relax: {tmp_path / 'missing.cif'}: no such file"


def test_disordered_sites_are_refused(tmp_path, capsys):
    cif = write_cif(tmp_path / "disordered.cif", ["Na1 Na 0 0 0 0.5", "K1 K 0 0 0 0.5", "Cl1 Cl 0.5 0.5 0.5 1"])
    assert run("dft", cif, tmp_path / "out") == 2
    assert refusal(capsys) == (f"icrdesign dft: {cif}: site 0 is disordered (K:0.5, Na:0.5); only ordered "
                               "structures (one whole atom per site) can be computed")


def test_an_element_outside_chgnet_is_refused_before_relaxing(tmp_path, capsys):
    # CHGNet failed inside the relaxation with "mat1 and mat2 shapes cannot be multiplied".
    cif = write_cif(tmp_path / "og.cif", ["Na1 Na 0 0 0 1", "Og1 Og 0.5 0.5 0.5 1"])
    assert run("relax", cif, tmp_path / "out") == 2
    assert refusal(capsys) == f"icrdesign relax: {cif}: Og not in CHGNet's elements (its 94: H to Pu)"
    assert not (tmp_path / "out").exists()
    # The list is the model's own: its atom embedding has one row per element, H (Z = 1) first.
    assert len(force_field_elements("CHGNet")) == 94 and {"H", "Pu"} <= force_field_elements("CHGNet")


def test_an_element_without_a_gpaw_dataset_is_refused_before_any_calculation(tmp_path, capsys):
    cif = write_cif(tmp_path / "tc.cif", ["Tc1 Tc 0 0 0 1", "C1 C 0.5 0.5 0.5 1"])
    assert run("dft", cif, tmp_path / "out") == 2
    from gpaw import setup_paths

    assert refusal(capsys) == (f"icrdesign dft: {cif}: Tc: no GPAW PAW dataset for PBE "
                               f"(searched {', '.join(str(path) for path in setup_paths)})")
    assert not (tmp_path / "out").exists()


def test_an_element_without_an_mp_potcar_is_refused_for_vasp(tmp_path, capsys):
    cif = write_cif(tmp_path / "og.cif", ["Na1 Na 0 0 0 1", "Og1 Og 0.5 0.5 0.5 1"])
    assert run("dft", cif, tmp_path / "out", "--engine", "vasp") == 2
    assert refusal(capsys) == (f"icrdesign dft: {cif}: Og not among VASP's POTCARs of the Materials Project "
                               "input set")


@pytest.mark.parametrize("command, key, limit", [("relax", "representation.max_sites", 20),
                                                 ("dft", "dft.max_sites", 8)])
def test_a_cell_above_the_configured_limit_needs_force(tmp_path, capsys, command, key, limit):
    cif = tmp_path / "big.cif"
    nacl_supercell(200).to(filename=str(cif))
    assert run(command, cif, tmp_path / "out") == 2
    assert refusal(capsys) == (f"icrdesign {command}: {cif}: 200 sites, above {key} = {limit}; "
                               "pass --force to compute it anyway")
    assert not (tmp_path / "out").exists()


def test_force_lifts_the_size_limit_and_nothing_else(tmp_path):
    config = load_config()
    big = nacl_supercell(200)
    with pytest.raises(StructureRefused, match="above dft.max_sites"):
        check_input(big, "big.cif", DFT, config)
    check_input(big, "big.cif", DFT, config, force=True)  # NaCl: GPAW has both datasets
    tc = Structure(Lattice.cubic(3.2), ["Tc", "C"], [[0, 0, 0], [0.5] * 3])
    with pytest.raises(StructureRefused, match="Tc: no GPAW PAW dataset") as refused:
        check_input(tc, "tc.cif", DFT, config, force=True)
    assert refused.value.reason == "unknown_element"


@pytest.mark.parametrize("sites, formula, reason, dft_reason", [
    (["Na1 Na 0 0 0 1", "Og1 Og 0.5 0.5 0.5 1"], "NaOg",
     "unknown_element: Og not in CHGNet's elements (its 94: H to Pu)", "unknown_element: Og: no GPAW PAW dataset"),
    (["Na1 Na 0 0 0 1", "Cl1 Cl 0 0 0 1"], "NaCl",
     "overlapping_atoms: atoms Na and Cl are 0.00 Å apart", "overlapping_atoms: atoms Na and Cl are 0.00 Å apart"),
])
def test_the_workflow_records_a_refused_candidate_and_goes_on(tmp_path, capsys, sites, formula, reason, dft_reason):
    """With --record-refusal a refused candidate is a failed result: its record, the start structure the
    DFT tier reads and the work folder all exist, and the DFT tier records its own refusal."""
    cif = write_cif(tmp_path / "candidate.cif", sites)
    out = tmp_path / "case" / "c-1"
    assert run("relax", cif, out, "--record-refusal", "--case", "case", "--candidate-id", "c-1") == 0
    assert json.loads(capsys.readouterr().out)["status"] == "failed"
    record = json.loads((out / "mlip.json").read_text())
    assert record["reason"].startswith(reason) and record["status"] == "failed"
    assert (record["case"], record["candidate_id"], record["tier"], record["engine"]) == ("case", "c-1", MLIP, "CHGNet")
    assert (record["formula"], record["nsites"]) == (formula, 2 if formula == "NaOg" else 1)
    assert record["energy_per_atom"] is None and (out / "mlip_work").is_dir()

    assert run("dft", out / "mlip_structure.cif", out, "--record-refusal", "--case", "case",
               "--candidate-id", "c-1") == 0
    capsys.readouterr()
    dft = json.loads((out / "dft.json").read_text())
    assert dft["status"] == "failed" and (out / "dft_work").is_dir()
    # Og has no GPAW dataset either; the overlapping atoms are refused again from the start structure.
    assert dft["reason"].startswith(dft_reason) and dft["start_structure"] == str(out / "mlip_structure.cif")


def test_the_workflow_records_an_unreadable_candidate(tmp_path, capsys):
    garbage = tmp_path / "candidate.cif"
    garbage.write_text("not a crystal\n")
    out = tmp_path / "out"
    assert run("relax", garbage, out, "--record-refusal") == 0
    record = json.loads((out / "mlip.json").read_text())
    assert record["reason"].startswith("unreadable_structure: cannot read a structure (")
    assert (record["formula"], record["nsites"], record["status"]) == ("", 0, "failed")
    # The DFT tier gets the file as it was, and refuses it the same way.
    assert (out / "mlip_structure.cif").read_text() == "not a crystal\n"


def test_read_structure_accepts_a_good_structure_unchanged(tmp_path):
    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.69), ["Na", "Cl"], [[0, 0, 0], [0.5] * 3])
    nacl.to(filename=str(tmp_path / "NaCl.cif"))
    assert read_structure(tmp_path / "NaCl.cif") == Structure.from_file(str(tmp_path / "NaCl.cif"))


def test_export_flows_names_a_bad_candidate_file_and_a_missing_design_folder(tmp_path, capsys):
    import pandas as pd

    from icrdesign.artefacts.candidates import CANDIDATE_COLUMNS, write_candidates

    case_dir = tmp_path / "design" / "Ef"
    case_dir.mkdir(parents=True)
    cif = write_cif(case_dir / "c.cif", ["Na1 Na 0 0 0 1", "Cl1 Cl 0 0 0 1"])
    candidate = {"id": "Ef-local_perturbation-00001", "case": "Ef", "strategy": "local_perturbation",
                 "baseline": False, "seed": "7", "sigma": 0.6, "formula": "NaCl", "spacegroup": "P1", "nsites": 2,
                 "valid_structure": True, "valid_composition": True, "valid": True, "unique": True, "novel": True,
                 "surrogate_success": False, "cif": "c.cif"}
    write_candidates(case_dir / "candidates.csv", pd.DataFrame([candidate])[list(CANDIDATE_COLUMNS)])
    assert cli_main(["export-flows", "--out", str(tmp_path / "flows"), "--design", str(tmp_path / "design")]) == 2
    assert refusal(capsys) == f"icrdesign export-flows: {cif}: atoms Na and Cl are 0.00 Å apart " \
                              "(merged into site 0, fractional [0.0, 0.0, 0.0])"
    assert cli_main(["export-flows", "--out", str(tmp_path / "flows"), "--design", str(tmp_path / "nowhere")]) == 2
    assert refusal(capsys) == (f"icrdesign export-flows: {tmp_path / 'nowhere'}: no such folder "
                               "(the sampling results, one folder per case)")


def test_an_element_outside_sevennet_is_refused_from_the_models_own_species(tmp_path, capsys):
    pytest.importorskip("sevenn.sevennet_calculator")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"relaxation": {"force_field": "SevenNet"}}))
    # SevenNet-0 (atomate2's default model) has no Ra among its 89 species.
    cif = write_cif(tmp_path / "ra.cif", ["Ra1 Ra 0 0 0 1", "O1 O 0.5 0.5 0.5 1"])
    assert run("relax", cif, tmp_path / "out", "--config", str(config)) == 2
    assert refusal(capsys) == f"icrdesign relax: {cif}: Ra not in SevenNet's elements (its 89: H to Pu)"


def test_a_potential_without_its_package_is_a_config_error(tmp_path, capsys, monkeypatch):
    # As on a machine without sevenn: a None entry in sys.modules makes its import fail, and the element
    # list an earlier test read from the installed package must not be reused.
    for module in ("sevenn", "sevenn.sevennet_calculator", "sevenn.calculator"):
        monkeypatch.setitem(sys.modules, module, None)
    force_field_elements.cache_clear()
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"relaxation": {"force_field": "SevenNet"}}))
    cif = write_cif(tmp_path / "nacl.cif", ["Na1 Na 0 0 0 1", "Cl1 Cl 0.5 0.5 0.5 1"])
    assert run("relax", cif, tmp_path / "out", "--config", str(config), "--record-refusal") == 2
    assert refusal(capsys).startswith("icrdesign relax: relaxation.force_field: SevenNet needs its package (")
    assert not (tmp_path / "out").exists()  # not a candidate's fault: nothing is recorded
