"""Real GPAW calculations through atomate2 + custodian (small settings, shared by compound and references)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from pymatgen.core import Lattice, Structure

from icrdesign.validation import validate_dft

pytestmark = [pytest.mark.dft, pytest.mark.slow]

FAST_GPAW = {"xc": "PBE", "ecut": 300, "kpoint_density": 2.5, "smearing_width": 0.05, "max_scf_iterations": 300,
             "fmax": 0.05, "relax_steps": 20, "mpi_procs": 1}
DFT = {"engine": "gpaw", "max_candidates_per_case": 2, "max_sites": 8, "relax": False, "gpaw": FAST_GPAW,
       "max_corrections": 0, "threads": 1, "runtime": 10, "mem_mb": 2000}
RELAXATION = {"force_field": "CHGNet", "fmax": 0.1, "steps": 500, "relax_cell": True, "molecule_box": 7.0,
              "store_uri": None}


def silicon() -> Structure:
    return Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.43), ["Si"], [[0, 0, 0]]).get_primitive_structure()


def test_silicon_gap_and_injected_scf_failure_recorded(tmp_path):
    failing = {**DFT, "gpaw": {**FAST_GPAW, "max_scf_iterations": 1}}
    bad, _ = validate_dft(silicon(), failing, RELAXATION, tmp_path / "bad", tmp_path / "refs_bad", tmp_path / "mlip")
    good, docs = validate_dft(silicon(), DFT, RELAXATION, tmp_path / "good", tmp_path / "refs", tmp_path / "mlip")
    assert bad["status"] == "failed" and bad["reason"].startswith("scf_not_converged")
    assert good["status"] == "ok", good["reason"]
    assert 0.4 <= good["band_gap"] <= 0.8
    assert abs(good["formation_energy_per_atom"]) < 1e-6  # Si against itself
    assert docs["static"].entry.data["band_gap"] == good["band_gap"]


def test_nacl_gap_and_formation_energy_via_cli(tmp_path):
    cif = tmp_path / "NaCl.cif"
    Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.69), ["Na", "Cl"],
                              [[0, 0, 0], [0.5, 0.5, 0.5]]).get_primitive_structure().to(filename=str(cif))
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"dft": DFT, "relaxation": {"molecule_box": RELAXATION["molecule_box"]}}))
    done = subprocess.run([sys.executable, "-m", "icrdesign.cli", "dft", str(cif), "--engine", "gpaw", "--no-relax",
                           "--config", str(config), "--out", str(tmp_path / "out"),
                           "--references", str(tmp_path / "refs"), "--mlip-references", str(tmp_path / "mlip")],
                          capture_output=True, text=True, check=True)
    summary = json.loads(done.stdout)  # stdout holds the summary alone
    assert set(summary) == {"formula", "nsites", "energy_per_atom", "band_gap", "formation_energy_per_atom",
                            "engine", "status", "wall_s"}
    assert summary["status"] == "ok" and summary["formula"] == "NaCl"
    assert 4.5 <= summary["band_gap"] <= 5.5
    assert -2.3 <= summary["formation_energy_per_atom"] <= -1.6
    cl = json.loads((tmp_path / "refs" / "Cl.json").read_text())
    assert cl["kind"] == "molecule" and cl["settings"]["ecut"] == 300
    assert (tmp_path / "out" / "dft_static_taskdoc.json").exists()
