"""The post-relaxation funnel: batched relaxation, chunks, uniqueness, novelty, stability, S.U.N., RMSD,
and the DFT tier's selection from it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymatgen.core import Composition, Lattice, Structure
from pymatgen.analysis.phase_diagram import PDEntry
from pymatgen.io.ase import AseAtomsAdaptor

from icrdesign.artefacts.validation import MLIP, chunk_records, read_record
from icrdesign.cases import Window
from icrdesign.config import validate_config
from icrdesign.sampling.matching import CompositionIndex
from icrdesign.stability import ReferenceHull
from icrdesign.validation.batch_relax import relax_batch, voigt_stress
from icrdesign.validation.chunks import split_chunks
from icrdesign.validation.funnel import DROP_REASONS, funnel_summary, judge_case, rmsd_angstrom, sun_block
from icrdesign.validation.selection import dft_batches, dft_cost, select_for_dft

RELAXATION = {"force_field": "CHGNet", "fmax": 0.1, "steps": 60, "relax_cell": True, "batch_size": 8,
              "candidate_timeout_s": 300, "molecule_box": 6.0, "store_uri": None}


def rocksalt(a: float, cation: str = "Na", anion: str = "Cl") -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [cation, anion], [[0, 0, 0], [0.5, 0.5, 0.5]])


def rattled(structure: Structure, seed: int, amplitude: float = 0.1, strain: float = 0.04) -> Structure:
    copy = structure.get_primitive_structure()
    copy.perturb(amplitude, min_distance=amplitude / 2, seed=seed)
    copy.apply_strain(np.random.default_rng(seed).uniform(-strain, strain, 3))
    return copy


# ---- batched relaxation ---------------------------------------------------------------------------------

def test_batched_relaxation_equals_atomate2_per_structure_relaxation(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # atomate2's relaxer writes final_atoms_object.xyz into the working folder
    from atomate2.forcefields.jobs import ForceFieldRelaxMaker
    from jobflow import run_locally

    starts = [rattled(rocksalt(5.5), 1), rattled(rocksalt(4.3, "Mg", "O"), 2), rattled(rocksalt(4.5, "Li", "F"), 3)]
    batched = relax_batch(starts, RELAXATION, progress=False)
    maker = ForceFieldRelaxMaker(force_field_name="CHGNet", steps=RELAXATION["steps"], relax_cell=True,
                                 relax_kwargs={"fmax": RELAXATION["fmax"]})
    for start, outcome in zip(starts, batched, strict=True):
        responses = run_locally(maker.make(start), log=False, ensure_success=True)
        doc = next(iter(responses.values()))[1].output
        assert outcome.status == "ok"
        assert outcome.energy / len(outcome.structure) == pytest.approx(doc.output.energy / len(doc.structure),
                                                                        abs=5e-4)
        assert outcome.structure.lattice.abc == pytest.approx(doc.structure.lattice.abc, abs=1e-3)


def test_chgnet_single_backward_pass_equals_chgnet_own_prediction():
    from ase import units
    from chgnet.model import CHGNet

    from icrdesign.validation.batch_relax import predictor_for

    structures = [rattled(rocksalt(5.5), 5), rattled(rocksalt(4.3, "Mg", "O"), 6),
                  rattled(Structure.from_spacegroup("P6_3mc", Lattice.hexagonal(3.25, 5.2), ["Zn", "O"],
                                                    [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.38]]), 7)]
    ours = predictor_for("CHGNet").predict([AseAtomsAdaptor.get_atoms(s) for s in structures])
    model = CHGNet.load(verbose=False)
    theirs = model.predict_graph([model.graph_converter(s) for s in structures], task="efs")
    for structure, mine, reference in zip(structures, ours, theirs, strict=True):
        assert mine["energy"] == pytest.approx(float(reference["e"]) * len(structure), abs=1e-5)
        assert np.abs(mine["forces"]).max() > 0.05  # rattled: the comparison is not between zeros
        assert mine["forces"] == pytest.approx(np.asarray(reference["f"]), abs=1e-3)
        assert mine["stress"] == pytest.approx(voigt_stress(np.asarray(reference["s"]) * units.GPa), abs=1e-5)


def test_step_cap_leaves_a_candidate_unconverged_with_its_last_structure():
    start = rattled(rocksalt(6.2), 4, amplitude=0.3, strain=0.1)
    (outcome,) = relax_batch([start], {**RELAXATION, "steps": 2}, progress=False)
    assert outcome.status == "unconverged" and "2 steps" in outcome.reason
    assert outcome.steps == 2 and len(outcome.frames) == 3
    assert not np.allclose(outcome.structure.cart_coords, start.cart_coords)


def test_a_structure_the_potential_cannot_evaluate_fails_alone():
    class Flaky:
        def predict(self, atoms):
            if any(len(item) == 1 for item in atoms):
                raise ValueError("no neighbours")
            return [{"energy": -1.0 * len(item), "forces": np.zeros((len(item), 3)), "stress": np.zeros(6)}
                    for item in atoms]

    lone = Structure(Lattice.cubic(10), ["Li"], [[0, 0, 0]])
    outcomes = relax_batch([rocksalt(5.6), lone], RELAXATION, predictor=Flaky(), progress=False)
    assert [outcome.status for outcome in outcomes] == ["ok", "failed"]
    assert "no neighbours" in outcomes[1].reason


# ---- the funnel ------------------------------------------------------------------------------------------

def _candidates(rows: list[tuple[str, str, str, bool]]) -> pd.DataFrame:
    return pd.DataFrame([{"id": i, "strategy": strategy, "baseline": baseline, "formula": formula, "nsites": 2,
                          "valid": True} for i, strategy, formula, baseline in rows])


def _hull(*phases: tuple[str, float]) -> ReferenceHull:
    return ReferenceHull("test hull", tuple(PDEntry(Composition(f), e * Composition(f).num_atoms) for f, e in phases))


def test_funnel_counts_each_drop_and_adds_up():
    nacl, kcl, licl = rocksalt(5.6), rocksalt(6.3, "K"), rocksalt(5.1, "Li")
    training = CompositionIndex()
    training.add("mp-nacl", nacl)
    candidates = _candidates([("a", "local_perturbation", "NaCl", False), ("b", "local_perturbation", "KCl", False),
                              ("c", "local_perturbation", "KCl", False), ("d", "local_perturbation", "LiCl", False),
                              ("e", "random", "Cl2", True), ("f", "random", "LiCl", True)])
    relaxed = {"a": nacl, "b": kcl, "c": kcl.copy(), "d": licl, "f": licl}
    records = pd.DataFrame([{"candidate_id": i, "status": "ok", "formation_energy_per_atom": e}
                            for i, e in (("a", -2.0), ("b", -2.2), ("c", -2.2), ("d", -1.0), ("f", -1.9))]
                           + [{"candidate_id": "e", "status": "ok", "formation_energy_per_atom": 0.0}])
    hull = _hull(("LiCl", -1.9), ("KCl", -2.2))
    window = Window.from_constraint({"min": -2.5, "max": -2.1})
    table = judge_case(candidates, records, relaxed, relaxed, training, hull, window)
    reasons = dict(zip(table["candidate_id"], table["drop_reason"], strict=True))
    assert reasons == {"a": "not_novel", "b": "", "c": "duplicate", "d": "unstable", "e": "single_element",
                       "f": "off_target"}
    assert table.set_index("candidate_id").loc["d", "e_hull"] == pytest.approx(0.9)
    summary = funnel_summary(table, hull.source)
    for block in summary["strategies"].values():
        assert sum(block["drops"].values()) + block["n_sun_on_target"] == block["n_valid"] + block["n_single_element"]
        assert block["n_relaxed"] - block["n_unique"] == block["drops"]["duplicate"]
        assert block["n_unique"] - block["n_novel"] == block["drops"]["not_novel"]
        assert block["n_novel"] - block["n_stable"] == block["drops"]["unstable"]
    random = summary["strategies"]["random"]
    assert random["n_single_element"] == 1 and random["n_valid"] == 1 and random["n_sun"] == 1
    assert summary["strategies"]["local_perturbation"]["rate_sun_on_target"] == pytest.approx(1 / 4)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans(), st.booleans()),
                min_size=1, max_size=30))
def test_sun_block_counts_add_up_for_any_funnel(flags):
    rows = []
    for single, relaxed, unique, novel, stable in flags:
        relaxed = relaxed and not single
        unique, novel = unique and relaxed, novel and unique and relaxed
        stable = stable and novel
        rows.append({"single_element": single, "relaxed": relaxed, "unique": unique, "novel": novel,
                     "stable": stable, "stable_strict": stable, "sun": stable, "on_target": relaxed,
                     "sun_on_target": stable, "rmsd_angstrom": 0.1 if relaxed else np.nan,
                     "drop_reason": ("single_element" if single else "not_relaxed" if not relaxed else
                                     "duplicate" if not unique else "not_novel" if not novel else
                                     "unstable" if not stable else "")})
    block = sun_block(pd.DataFrame(rows))
    assert set(block["drops"]) == set(DROP_REASONS)
    assert sum(block["drops"].values()) + block["n_sun_on_target"] == len(rows)
    assert block["n_valid"] + block["n_single_element"] == len(rows)
    assert block["n_sun"] <= block["n_novel"] <= block["n_unique"] <= block["n_relaxed"] <= block["n_valid"]
    if block["n_valid"]:
        low, high = block["ci95_sun_on_target"]
        assert low <= block["rate_sun_on_target"] <= high


def test_a_rattled_training_crystal_relaxes_back_and_is_not_novel():
    training_crystal = rocksalt(5.6)
    training = CompositionIndex()
    training.add("mp-22862", training_crystal)
    start = training_crystal.get_primitive_structure()
    start.perturb(0.2, min_distance=0.1, seed=3)  # seeded: the RMSD below depends on the draw
    start.apply_strain([0.3, -0.1, 0.05])  # beyond the matcher's length tolerance
    assert training.find_match(start) is None  # the decoded cell alone would count as novel
    (outcome,) = relax_batch([start], {**RELAXATION, "steps": 200}, progress=False)
    candidates = _candidates([("x", "local_perturbation", "NaCl", False)])
    records = pd.DataFrame([{"candidate_id": "x", "status": outcome.status, "formation_energy_per_atom": -2.1}])
    table = judge_case(candidates, records, {"x": outcome.structure}, {"x": start}, training,
                       _hull(("NaCl", -2.1)), None)
    assert table.loc[0, "relaxed"] and table.loc[0, "unique"]
    assert not table.loc[0, "novel"] and table.loc[0, "drop_reason"] == "not_novel"
    # Atoms were displaced by 0.1-0.2 A before the strain: the RMSD is that order, not the strain.
    assert 0.02 < table.loc[0, "rmsd_angstrom"] < 0.2


def test_rmsd_is_in_angstrom():
    cell = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    moved = cell.copy()
    moved.translate_sites([1], [0.1 / 4.0, 0, 0])
    assert rmsd_angstrom(cell, cell) == pytest.approx(0.0, abs=1e-8)
    # The matcher's best translation splits the 0.1 Å move between the two atoms: 0.05 Å each.
    assert rmsd_angstrom(cell, moved) == pytest.approx(0.05, abs=1e-4)
    stretched = Structure(Lattice.tetragonal(4.0, 16.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert np.isnan(rmsd_angstrom(cell, stretched))  # beyond ltol: counted as unmatched, not dropped


# ---- DFT selection ---------------------------------------------------------------------------------------

def _funnel(rows: list[dict]) -> pd.DataFrame:
    base = {"baseline": False, "formula": "NaCl", "nsites": 2, "relaxed": True, "sun": False, "on_target": False,
            "sun_on_target": False, "relaxed_cif": ""}
    return pd.DataFrame([{**base, **row} for row in rows])


def test_dft_takes_sun_on_target_candidates_first_spread_over_strategies_then_the_baseline():
    funnel = _funnel([
        {"candidate_id": "p1", "strategy": "local_perturbation", "nsites": 4},
        {"candidate_id": "p2", "strategy": "local_perturbation", "sun": True, "on_target": True,
         "sun_on_target": True, "nsites": 6},
        {"candidate_id": "p3", "strategy": "local_perturbation", "sun": True, "on_target": True,
         "sun_on_target": True, "nsites": 3},
        {"candidate_id": "g1", "strategy": "gradient_ascent", "sun": True, "on_target": True,
         "sun_on_target": True, "nsites": 8},
        {"candidate_id": "r1", "strategy": "random", "baseline": True, "nsites": 2},
        {"candidate_id": "r2", "strategy": "random", "baseline": True, "relaxed": False},
        {"candidate_id": "big", "strategy": "gradient_ascent", "sun_on_target": True, "nsites": 30},
        {"candidate_id": "ce", "strategy": "gradient_ascent", "sun_on_target": True, "formula": "CeO2"},
    ])
    dft = {"max_sites": 8, "exclude_elements": ["Ce"], "max_candidates_per_case": 3,
           "baseline_candidates_per_case": 1, "candidates_per_job": None}
    # The first turn takes each strategy's cheapest, the cheaper of the two first.
    assert select_for_dft(funnel, dft) == ["p3", "g1", "p2", "r1"]
    assert dft_batches(funnel, {**dft, "candidates_per_job": 1}) == [["p3"], ["g1"], ["p2"], ["r1"]]
    assert dft_batches(funnel, dft) == [["p3", "g1", "p2", "r1"]]
    assert select_for_dft(funnel, {**dft, "max_candidates_per_case": 4})[3] == "p1"


def test_dft_takes_the_cheaper_calculation_first_a_spin_polarised_one_costing_double():
    assert dft_cost("NaCl", 2) == 2 and dft_cost("FeS2", 3) == 6 and dft_cost("MnB2N", 4) == 8
    funnel = _funnel([
        {"candidate_id": "fe", "strategy": "local_perturbation", "sun_on_target": True, "formula": "FeS2", "nsites": 3},
        {"candidate_id": "li", "strategy": "local_perturbation", "sun_on_target": True, "formula": "Li3P", "nsites": 4},
        {"candidate_id": "mn", "strategy": "random", "baseline": True, "formula": "MnO", "nsites": 2},
        {"candidate_id": "k", "strategy": "random", "baseline": True, "formula": "K2Cl", "nsites": 3},
    ])
    dft = {"max_sites": 8, "exclude_elements": [], "max_candidates_per_case": 1,
           "baseline_candidates_per_case": 1, "candidates_per_job": None}
    assert select_for_dft(funnel, dft) == ["li", "k"]


def test_chunks_split_in_order_and_cover_every_candidate():
    assert split_chunks(list("abcde"), 2) == [["a", "b"], ["c", "d"], ["e"]]
    assert split_chunks(list("abc"), None) == [["a", "b", "c"]]
    assert split_chunks([], 3) == []


# ---- one chunk through the command line ------------------------------------------------------------------

@pytest.mark.slow
def test_a_chunk_records_a_failing_candidate_and_a_rerun_recomputes_only_it(tmp_path):
    design = tmp_path / "design"
    (design / "cifs").mkdir(parents=True)
    good = [rattled(rocksalt(5.6), 6), rattled(rocksalt(4.5, "Li", "F"), 7)]
    overlapping = Structure(Lattice.cubic(5.0), ["Na", "Cl"], [[0, 0, 0], [0.01, 0, 0]])
    rows = []
    for i, structure in enumerate([*good, overlapping]):
        cif = design / "cifs" / f"c{i}.cif"
        cif.write_text(structure.to(fmt="cif"))
        rows.append({"id": f"c{i}", "case": "case", "strategy": "local_perturbation", "baseline": False, "seed": "",
                     "sigma": 0.6, "formula": structure.composition.reduced_formula, "spacegroup": "P1",
                     "nsites": len(structure), "valid_structure": True, "valid_composition": True, "valid": True,
                     "unique": True, "novel": True, "surrogate_success": False, "cif": f"cifs/c{i}.cif"})
    pd.DataFrame(rows).to_csv(design / "candidates.csv", index=False)
    config = validate_config({"relaxation": {**{k: RELAXATION[k] for k in ("steps", "fmax", "batch_size")},
                                             "chunk_size": 8, "molecule_box": 6.0}})
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    chunk, index = tmp_path / "v" / "case" / "mlip" / "chunk-000", tmp_path / "v" / "case" / "mlip" / "chunk-000.json"

    def run() -> str:
        done = subprocess.run([sys.executable, "-m", "icrdesign.cli", "relax", "--candidates",
                               str(design / "candidates.csv"), "--chunk", "0", "--case", "case", "--config",
                               str(config_path), "--references", str(tmp_path / "refs"), "--out", str(chunk),
                               "--index", str(index), "--threads", "1"], capture_output=True, text=True, check=True)
        return done.stdout

    assert "3 computed" in run()
    statuses = {path.parent.name: read_record(path)["status"] for path in chunk_records(chunk, MLIP)}
    assert statuses == {"c0": "ok", "c1": "ok", "c2": "failed"}
    assert "overlapping" in read_record(chunk / "c2" / "mlip.json")["reason"]
    assert (chunk / "c0" / "mlip_taskdoc.json").exists() and (chunk / "c0" / "mlip_structure.cif").exists()
    assert json.loads(index.read_text())["counts"] == {"ok": 2, "failed": 1}
    from icrdesign.validation.retry import forget_failed

    forgotten = forget_failed(tmp_path / "v")
    assert sorted(path.name for path in forgotten) == ["chunk-000.json", "mlip.json"]
    assert "1 computed" in run()
    assert read_record(chunk / "c0" / "mlip.json")["status"] == "ok"


def test_failed_and_missing_relaxations_leave_the_funnel_as_not_relaxed():
    candidates = _candidates([("a", "local_perturbation", "NaCl", False), ("b", "local_perturbation", "KCl", False)])
    records = pd.DataFrame([{"candidate_id": "a", "status": "failed", "formation_energy_per_atom": None}])
    table = judge_case(candidates, records, {}, {}, CompositionIndex(), _hull(), None)
    assert table["mlip_status"].tolist() == ["failed", "missing"]
    assert table["drop_reason"].tolist() == ["not_relaxed", "not_relaxed"]
