"""Validation funnel: selection, VASP inputs, records and table, retrying failures, custodian handler,
CHGNet via atomate2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from jobflow import Flow, job
from pymatgen.core import Lattice, Structure

from workflow_runner import E2E_CONFIG, REPO
from icrdesign.artefacts.candidates import CANDIDATE_COLUMNS, write_candidates
from icrdesign.artefacts.validation import (VALIDATION_COLUMNS, read_validation_table, validation_table,
                                            write_record, write_validation_table)
from icrdesign.cli.common import run_command
from icrdesign.validation import (GpawErrorHandler, failed_records, relax_candidates, relaxation_ids,
                                  write_vasp_inputs)
from icrdesign.validation.flows import job_error, run_flow
from icrdesign.validation.gpaw_worker import INPUT_FILE, STATUS_FILE
from icrdesign.validation.references import index_path

# The default config's relaxation settings with a short optimisation.
RELAXATION = {"force_field": "CHGNet", "fmax": 0.05, "steps": 300, "relax_cell": True, "molecule_box": 9.0,
              "store_uri": None, "batch_size": 8, "candidate_timeout_s": 300}


@job
def double(value: float) -> float:
    return 2 * value


@job
def explode(value: float) -> float:
    raise ValueError(f"cannot take {value}")


def candidates_frame(nsites: list[int], strategies: list[str], valid: list[bool]) -> pd.DataFrame:
    """A candidates.csv table (every fixed column) as ``read_candidates`` gives it."""
    n = len(nsites)
    frame = pd.DataFrame({"id": [f"c-{strategies[i]}-{i:05d}" for i in range(n)], "case": ["c"] * n,
                          "strategy": strategies, "baseline": [s in ("random", "random_training") for s in strategies],
                          "seed": ["7"] * n, "sigma": [0.6] * n, "formula": ["NaCl"] * n, "spacegroup": ["Fm-3m"] * n,
                          "nsites": nsites, "valid_structure": valid, "valid_composition": valid, "valid": valid,
                          "unique": [True] * n, "novel": [True] * n, "surrogate_success": [False] * n,
                          "cif": [f"cifs/{i}.cif" for i in range(n)]})
    return frame[list(CANDIDATE_COLUMNS)]


def test_every_valid_candidate_is_relaxed_baselines_included():
    frame = candidates_frame([5, 3, 12, 2, 4, 1], ["local_perturbation", "random", "gradient_ascent",
                                                   "local_perturbation", "gradient_ascent", "random_training"],
                             [True, True, True, False, True, True])
    assert relaxation_ids(frame) == [frame.id[i] for i in (0, 1, 2, 4, 5)]
    frame.loc[4, "cif"] = ""
    assert relaxation_ids(frame) == [frame.id[i] for i in (0, 1, 2, 5)]


def test_vasp_inputs_for_a_ternary(tmp_path, monkeypatch):
    monkeypatch.delenv("PMG_VASP_PSP_DIR", raising=False)
    structure = Structure.from_spacegroup("Pm-3m", Lattice.cubic(3.9), ["Sr", "Ti", "O"],
                                          [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]])
    files = write_vasp_inputs(structure, tmp_path)
    assert set(files) == {"INCAR", "KPOINTS", "POSCAR", "POTCAR.spec"}
    incar = (tmp_path / "INCAR").read_text()
    assert "ENCUT = 520" in incar and "ISIF = 3" in incar
    assert (tmp_path / "POTCAR.spec").read_text().split() == ["Sr_sv", "Ti_pv", "O"]
    assert Structure.from_file(str(tmp_path / "POSCAR")).composition.reduced_formula == "SrTiO3"


def test_scf_handler_ladder_is_bounded_and_recorded(tmp_path):
    spec = {"calculator": {"max_scf_iterations": 10, "smearing_width": 0.05,
                           "mixer": {"beta": 0.05, "nmaxold": 5, "weight": 50.0}}}
    (tmp_path / INPUT_FILE).write_text(json.dumps(spec))
    (tmp_path / STATUS_FILE).write_text(json.dumps({"status": "error", "error": "scf_not_converged"}))
    handler = GpawErrorHandler()
    assert handler.check(str(tmp_path))
    actions = [handler.correct(str(tmp_path))["actions"] for _ in range(4)]
    assert all(actions[:3]) and actions[3] is None
    final = json.loads((tmp_path / INPUT_FILE).read_text())["calculator"]
    assert final["max_scf_iterations"] == 40 and final["smearing_width"] == 0.1 and final["mixer"]["beta"] == 0.025
    assert len(json.loads((tmp_path / "gpaw_corrections.json").read_text())) == 3
    (tmp_path / STATUS_FILE).write_text(json.dumps({"status": "error", "error": "walltime", "detail": "x"}))
    assert handler.correct(str(tmp_path))["actions"] is None


def _reference_computation_failing_for_sr(calls: list[str]):
    """A reference computation that records each element it is asked for and fails for Sr, as GPAW's
    band-gap step once did ("Too few bands!")."""
    def compute(element):
        calls.append(element)
        if element == "Sr":
            raise ValueError("Too few bands!")
        return {"kind": "solid", "energy_per_atom": -1.5}
    return compute


def test_failed_reference_is_recorded_reused_and_retried(tmp_path):
    from icrdesign.validation.references import ReferenceFailed, cached_references

    calls: list[str] = []
    compute = _reference_computation_failing_for_sr(calls)

    cache = tmp_path / "references" / "gpaw"
    with pytest.raises(ReferenceFailed, match="reference Sr failed: ValueError: Too few bands!"):
        cached_references(["Na", "Sr"], cache, {"ecut": 400}, compute)
    assert json.loads((cache / "Sr.json").read_text())["status"] == "failed"
    # Every later candidate needing Sr fails at once with the recorded reason, without recomputing.
    with pytest.raises(ReferenceFailed):
        cached_references(["Sr"], cache, {"ecut": 400}, compute)
    assert calls == ["Na", "Sr"] and cached_references(["Na"], cache, {"ecut": 400}, compute)["Na"]["status"] == "ok"
    assert failed_records(tmp_path) == [cache / "Sr.json"]  # retry-failed forgets it


def test_references_job_computes_each_element_once_and_indexes_failures(tmp_path, capsys):
    from icrdesign.cli.validation_common import print_references
    from icrdesign.validation.references import cached_references

    calls: list[str] = []
    compute = _reference_computation_failing_for_sr(calls)

    cache = tmp_path / "references" / "gpaw"
    index = index_path(cache)
    assert print_references(["Na", "Sr", "Cl", "Na"], lambda els: cached_references(els, cache, {}, compute), index) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["element"], line["status"]) for line in lines] == [("Cl", "ok"), ("Na", "ok"), ("Sr", "failed")]
    assert "Too few bands!" in lines[2]["reason"] and calls == ["Cl", "Na", "Sr"]
    recorded = json.loads(index.read_text())
    assert recorded["elements"] == {"Cl": "ok", "Na": "ok", "Sr": "failed"} and recorded["status"] == "failed"
    # retry-failed forgets the index with the failed record, so the references job runs again, for Sr only.
    assert set(failed_records(tmp_path)) == {cache / "Sr.json", index}
    for path in failed_records(tmp_path):
        path.unlink()
    print_references(["Na", "Sr", "Cl"], lambda els: cached_references(els, cache, {}, compute), index)
    assert calls == ["Cl", "Na", "Sr", "Sr"]


def test_jobs_sharing_a_reference_cache_compute_each_element_once(tmp_path):
    """Two DFT jobs need Na: the second computes its other element (Cl) while the first holds Na's lock,
    then waits and reads the first's Na record instead of computing it again."""
    import multiprocessing
    import time

    from icrdesign.validation.references import cached_references

    cache, calls, release = tmp_path / "references" / "gpaw", tmp_path / "calls.txt", tmp_path / "release"

    def compute(element: str) -> dict:
        with calls.open("a") as log:
            log.write(f"{element}\n")
        while element == "Na" and not release.exists():
            time.sleep(0.05)
        return {"kind": "solid", "energy_per_atom": {"Na": -1.3, "Cl": -1.8}[element]}

    def job(elements: list[str], out: Path) -> None:
        out.write_text(json.dumps({el: r["energy_per_atom"] for el, r in cached_references(elements, cache, {},
                                                                                           compute).items()}))

    def wait_for(path: Path) -> None:
        deadline = time.monotonic() + 60
        while not path.exists():
            assert time.monotonic() < deadline, f"{path} never appeared"
            time.sleep(0.05)

    context = multiprocessing.get_context("fork")
    first = context.Process(target=job, args=(["Na"], tmp_path / "first.json"))
    first.start()
    wait_for(calls)  # the first job is computing Na, holding its lock
    second = context.Process(target=job, args=(["Cl", "Na"], tmp_path / "second.json"))
    second.start()
    wait_for(cache / "Cl.json")  # the second went on with Cl; now it waits for Na
    release.touch()
    for process in (first, second):
        process.join(60)
        assert process.exitcode == 0
    assert calls.read_text().split() == ["Na", "Cl"]
    assert json.loads((tmp_path / "second.json").read_text()) == {"Cl": -1.8, "Na": -1.3}
    assert sorted(path.name for path in cache.iterdir()) == ["Cl.json", "Na.json"]  # the locks are gone


def test_references_job_with_two_workers_writes_every_element(tmp_path, capsys):
    """Forked workers compute the elements two at a time: the same records, in element order, each
    element's cache file written by the worker that computed it, the failure indexed."""
    from icrdesign.cli.validation_common import print_references
    from icrdesign.validation.references import cached_references

    compute = _reference_computation_failing_for_sr([])
    cache = tmp_path / "references" / "gpaw"
    index = index_path(cache)
    assert print_references(["Na", "Sr", "Cl", "K"], lambda els: cached_references(els, cache, {}, compute), index,
                            workers=2) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["element"], line["status"]) for line in lines] == [("Cl", "ok"), ("K", "ok"), ("Na", "ok"),
                                                                     ("Sr", "failed")]
    assert sorted(path.name for path in cache.iterdir()) == ["Cl.json", "K.json", "Na.json", "Sr.json"]
    assert json.loads(index.read_text())["elements"] == {"Cl": "ok", "K": "ok", "Na": "ok", "Sr": "failed"}


def test_mlip_references_job_covers_the_representation_vocabulary(tmp_path, capsys):
    """The MLIP's references job reads the encode stage's vocabulary, every element a candidate can
    hold, so it needs no candidate; an icr.json without one is refused by name."""
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"relaxation": {"steps": 50}}))
    icr, cache = tmp_path / "icr.json", tmp_path / "references" / "CHGNet"
    icr.write_text(json.dumps({"max_sites": 4, "elements": ["Cl", "Na"]}))
    arguments = ["--vocabulary", str(icr), "--references", str(cache), "--index", str(index_path(cache)),
                 "--config", str(tmp_path / "config.yaml"), "--out", str(tmp_path / "work")]
    assert run_command("relax", "icrdesign.cli.relax", arguments) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["element"], line["kind"], line["status"]) for line in lines] == [("Cl", "molecule", "ok"),
                                                                                    ("Na", "solid", "ok")]
    assert json.loads(index_path(cache).read_text())["elements"] == {"Cl": "ok", "Na": "ok"}
    icr.write_text(json.dumps({"max_sites": 4}))
    assert run_command("relax", "icrdesign.cli.relax", arguments) == 2
    assert f"{icr}: no element vocabulary ('elements'); re-run the encode stage" in capsys.readouterr().err


def test_result_files_table_and_failed_detection(tmp_path):
    ok = {"case": "a", "candidate_id": "c1", "formula": "NaCl", "nsites": 2, "tier": "mlip", "engine": "CHGNet",
          "energy_per_atom": -3.0, "formation_energy_per_atom": -2.0, "band_gap": float("nan"), "status": "ok",
          "reason": "", "corrections": "", "wall_s": 1.0}
    write_record(tmp_path / "a" / "mlip" / "chunk-000" / "c1" / "mlip.json", ok, {})
    write_record(tmp_path / "a" / "mlip" / "chunk-000" / "c3" / "mlip.json",
                 {**ok, "candidate_id": "c3", "status": "unconverged"}, {})
    write_record(tmp_path / "a" / "dft" / "chunk-000" / "c2" / "dft.json",
                 {**ok, "candidate_id": "c2", "tier": "dft", "status": "failed", "reason": "scf_not_converged"}, {})
    (tmp_path / "a" / "dft" / "chunk-000.json").write_text("{}")
    # An unconverged relaxation is a result; a failed DFT is forgotten with its batch's index.
    assert failed_records(tmp_path) == [tmp_path / "a" / "dft" / "chunk-000" / "c2" / "dft.json",
                                        tmp_path / "a" / "dft" / "chunk-000.json"]
    table = validation_table([tmp_path / "a" / "mlip" / "chunk-000" / "c1" / "mlip.json",
                              tmp_path / "a" / "dft" / "chunk-000" / "c2" / "dft.json"])
    write_validation_table(tmp_path / "validation.csv", table)
    assert tuple(table.columns) == VALIDATION_COLUMNS
    read = pd.read_csv(tmp_path / "validation.csv")
    assert read["status"].tolist() == ["ok", "failed"] and np.isnan(read["band_gap"]).all()
    typed = read_validation_table(tmp_path / "validation.csv")
    assert typed["candidate_id"].tolist() == ["c1", "c2"] and typed["corrections"].tolist() == ["", ""]
    assert typed["nsites"].dtype == np.int64 and np.isnan(typed["band_gap"]).all()


@pytest.mark.slow
def test_chgnet_relax_through_atomate2_lowers_energy_and_forces(tmp_path):
    structure = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.9), ["Na", "Cl"],
                                          [[0, 0, 0], [0.5, 0.5, 0.5]]).get_primitive_structure()
    structure.perturb(0.15, min_distance=0.05, seed=3)
    result = relax_candidates({"nacl": structure}, RELAXATION, tmp_path / "refs", tmp_path / "cand")["nacl"]
    row, doc = result.row, result.task_document
    assert row["status"] == "ok", row["reason"]
    # The task document keeps each step's energy (forces only for the last, to keep 64-candidate chunks small).
    steps = doc.output.ionic_steps
    assert steps[-1].energy < steps[0].energy and len(steps) == row["steps"] + 1
    assert np.abs(doc.output.forces).max() < 0.05
    # CHGNet predicts MP2020-corrected energies; MP's NaCl is -2.08 eV/atom.
    assert -2.4 < row["formation_energy_per_atom"] < -1.8
    assert {p.name for p in (tmp_path / "refs").iterdir()} == {"Na.json", "Cl.json"}
    assert (tmp_path / "cand" / "jobflow_outputs.json").exists()


def test_export_flows_writes_loadable_atomate2_flows(tmp_path, capsys):
    from jobflow import Flow
    from pymatgen.analysis.structure_matcher import StructureMatcher

    from icrdesign.cli import main as cli_main

    case_dir = tmp_path / "design" / "Ef_-1"
    (case_dir / "cifs").mkdir(parents=True)
    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.69), ["Na", "Cl"], [[0, 0, 0], [0.5] * 3])
    structures = {"Ef_-1-local_perturbation-00001": nacl.get_primitive_structure(),
                  "Ef_-1-local_perturbation-00002": nacl,
                  "Ef_-1-random-00003": nacl.get_primitive_structure()}
    for candidate_id, structure in structures.items():
        structure.to(filename=str(case_dir / "cifs" / f"{candidate_id}.cif"))
    candidates = candidates_frame([2, 8, 2], ["local_perturbation", "local_perturbation", "random"], [True] * 3)
    candidates["id"] = list(structures)
    candidates["cif"] = [f"cifs/{candidate_id}.cif" for candidate_id in structures]
    candidates["formula"] = [s.composition.reduced_formula for s in structures.values()]
    write_candidates(case_dir / "candidates.csv", candidates)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"dft": {"max_candidates_per_case": 1, "baseline_candidates_per_case": 0,
                                          "max_sites": 8, "relax": True},
                                  "sampling": {"cases": {"Ef_-1": {"n_candidates": 3, "constraints": {
                                      "formation_energy_per_atom": {"target": -1.0, "tolerance": 0.1}}}}}}))
    from icrdesign.validation.funnel import FUNNEL_COLUMNS

    funnel = pd.DataFrame({column: [""] * 3 for column in FUNNEL_COLUMNS}).assign(
        candidate_id=list(structures), strategy=candidates["strategy"], baseline=candidates["baseline"],
        formula="NaCl", nsites=[2, 8, 2], relaxed=True, single_element=False, sun=[False, True, False],
        on_target=[False, True, False], sun_on_target=[False, True, False])
    (tmp_path / "validation" / "Ef_-1").mkdir(parents=True)
    funnel.to_csv(tmp_path / "validation" / "Ef_-1" / "funnel.csv", index=False)

    out = tmp_path / "flows"
    assert cli_main(["export-flows", "--out", str(out), "--design", str(tmp_path / "design"),
                     "--config", str(config), "--validation", str(tmp_path / "validation")]) == 0
    assert json.loads(capsys.readouterr().out) == {"flows": 4, "out": str(out)}
    # Every valid candidate gets a relaxation flow, the baseline's too; the funnel's S.U.N.-on-target
    # candidate gets the DFT flow.
    assert sorted(path.name for path in (out / "Ef_-1").iterdir()) == [
        "Ef_-1-local_perturbation-00001.mlip.json", "Ef_-1-local_perturbation-00002.dft.json",
        "Ef_-1-local_perturbation-00002.mlip.json", "Ef_-1-random-00003.mlip.json"]

    mlip = Flow.from_dict(json.loads((out / "Ef_-1" / "Ef_-1-local_perturbation-00002.mlip.json").read_text()))
    assert mlip.name == "Ef_-1-local_perturbation-00002"
    assert [job.name for job in mlip.jobs] == ["Force field relax"]
    matcher = StructureMatcher()
    assert matcher.fit(mlip.jobs[0].function_args[0], nacl)

    data = json.loads((out / "Ef_-1" / "Ef_-1-local_perturbation-00002.dft.json").read_text())
    dft = Flow.from_dict(data)
    assert [job.name for job in dft.jobs] == ["symmetrize_structure", "GPAW relax", "symmetrize_structure",
                                              "GPAW static"]
    start_job, relax_job, symmetrize_job, static_job = dft.jobs
    # The start is snapped onto its near space group (symprec 0.1) before the relaxation reads it.
    assert start_job.function_kwargs["symprec"] == 0.1 and relax_job.function_args[0].uuid == start_job.uuid
    assert len(start_job.function_args[0]) == 8 and matcher.fit(start_job.function_args[0], nacl)
    # The makers come back as the project's GPAW makers with the config's settings, wired relax -> static.
    assert type(relax_job.maker).__name__ == "GpawRelaxMaker" and relax_job.maker.relax_cell
    assert type(static_job.maker).__name__ == "GpawStaticMaker" and static_job.maker.steps == 1
    assert static_job.function_args[0].uuid == symmetrize_job.uuid
    assert symmetrize_job.function_args[0].uuid == relax_job.uuid
    assert Flow.from_dict(json.loads(dft.to_json())).as_dict() == dft.as_dict()


def test_task_documents_are_picked_by_the_flow_structure_for_both_engines():
    from icrdesign.validation.dft import dft_flow, task_documents

    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.69), ["Na", "Cl"], [[0, 0, 0], [0.5] * 3])
    gpaw = {"engine": "gpaw", "relax": True, "max_corrections": 1, "runtime": 10,
            "gpaw": {"xc": "PBE", "ecut": 300, "kpoint_density": 2.0, "smearing_width": 0.05,
                     "max_scf_iterations": 50, "fmax": 0.05, "relax_steps": 5, "mpi_procs": 1}}
    for dft, relaxations in ((gpaw, ["relax"]), ({"engine": "vasp"}, ["relax_1", "relax_2"])):
        flow = dft_flow(nacl, dft, relax=True)
        # Every job "finished", each output naming its job: the roles follow the flow, not the job names.
        outputs = {job.uuid: job.uuid for job, _ in flow.iterflow()}
        docs = task_documents(flow, outputs)
        assert list(docs) == [*relaxations, "static"] and docs["static"] == flow.output.uuid
        calculations = [job for job, _ in flow.iterflow() if job.maker is not None]
        assert [docs[name] for name in relaxations] == [job.uuid for job in calculations[:-1]]
        assert task_documents(flow, {uuid: doc for uuid, doc in outputs.items() if uuid != flow.output.uuid}).keys() \
            == set(relaxations)
    static_only = dft_flow(nacl, {"engine": "vasp"}, relax=False)
    assert list(task_documents(static_only, {static_only.output.uuid: "doc"})) == ["static"]


def test_flows_run_in_their_work_dir_and_failures_keep_their_reason(tmp_path, monkeypatch):
    # A relative work directory, as the rules pass it: jobflow enters each job's folder, the store must not.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results" / "work").mkdir(parents=True)
    (tmp_path / "results" / "work" / "stale_from_an_earlier_attempt.json").write_text("{}")
    ok, failing = double(3.0), explode(1.0)
    outputs = run_flow(Flow([ok, failing]), Path("results/work"))
    assert outputs == {ok.uuid: 6.0}
    assert job_error(Path("results/work")) == "explode failed with exception: ValueError: cannot take 1.0"
    assert [path.name for path in tmp_path.iterdir()] == ["results"]
    # The stale file of an earlier attempt is gone; one folder per job.
    work = {path.name for path in (tmp_path / "results" / "work").iterdir()}
    job_folders = {name for name in work if name.startswith("job_")}
    assert work - job_folders == {"jobflow.log", "jobflow_data.json", "jobflow_outputs.json"}
    assert len(job_folders) == 2
    stored = json.loads((tmp_path / "results" / "work" / "jobflow_outputs.json").read_text())
    assert [doc["output"] for doc in stored] == [6.0]


@pytest.mark.slow
def test_one_atom_metal_relaxes_with_relative_paths_and_nothing_lands_in_the_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # fcc Pb, one atom per cell, strained 4 %: CHGNet must bring it back to its own fcc reference.
    pb = Structure(Lattice([[0, 2.475, 2.475], [2.475, 0, 2.475], [2.475, 2.475, 0]]), ["Pb"], [[0, 0, 0]])
    pb.apply_strain([0.04, 0.0, -0.02])
    result = relax_candidates({"Pb": pb}, {**RELAXATION, "steps": 200}, Path("results/references"),
                              Path("results/Pb"))["Pb"]
    row, doc = result.row, result.task_document
    assert row["status"] == "ok", row["reason"]
    steps = doc.output.ionic_steps
    assert len(doc.structure) == 1 and steps[-1].energy < steps[0].energy
    assert abs(row["formation_energy_per_atom"]) < 0.01
    assert [path.name for path in tmp_path.iterdir()] == ["results"]
    assert list((tmp_path / "results" / "Pb").glob("job_*"))


@pytest.mark.slow
def test_relax_command_prints_only_its_summary_json_on_stdout(tmp_path):
    # CHGNet prints its model banner on stdout; the command must keep stdout for its one JSON object.
    cif = tmp_path / "Pb.cif"
    Structure(Lattice([[0, 2.5, 2.5], [2.5, 0, 2.5], [2.5, 2.5, 0]]), ["Pb"], [[0, 0, 0]]).to(filename=str(cif))
    done = subprocess.run([sys.executable, "-m", "icrdesign.cli", "relax", str(cif), "--out", str(tmp_path / "out"),
                           "--references", str(tmp_path / "refs")], capture_output=True, text=True, check=True)
    assert (tmp_path / "out" / "mlip.json").exists() and (tmp_path / "out" / "mlip_structure.cif").exists()
    summary = json.loads(done.stdout)
    assert summary["status"] == "ok" and summary["formula"] == "Pb" and summary["engine"] == "CHGNet"
    assert abs(summary["formation_energy_per_atom"]) < 0.01
    assert "CHGNet" in done.stderr


def test_validation_plan_chunks_each_tier_and_keys_reference_caches_by_settings(tmp_path):
    from icrdesign.config import validate_config
    from icrdesign.validation import ValidationPlan
    from icrdesign.validation.funnel import FUNNEL_COLUMNS

    frame = candidates_frame([2, 8, 2, 3], ["local_perturbation", "gradient_ascent", "random", "local_perturbation"],
                             [True] * 4)
    frame["formula"] = ["NaCl", "SrTiO3", "KBr", "MgO"]
    write_candidates(tmp_path / "design" / "a" / "candidates.csv", frame)
    ids = frame["id"]
    funnel = pd.DataFrame({column: [""] * 4 for column in FUNNEL_COLUMNS})
    funnel = funnel.assign(candidate_id=ids, strategy=frame["strategy"], baseline=frame["baseline"],
                           formula=frame["formula"], nsites=frame["nsites"], relaxed=True, sun=False, on_target=False,
                           sun_on_target=[True, True, False, False], single_element=False)
    (tmp_path / "validation" / "a").mkdir(parents=True)
    funnel.to_csv(tmp_path / "validation" / "a" / "funnel.csv", index=False)
    dft = {**validate_config({})["dft"], "max_candidates_per_case": 1, "baseline_candidates_per_case": 1,
           "candidates_per_job": None, "max_sites": 4, "exclude_elements": ["Pr"], "runtime": 30}
    energy_case = {"constraints": {"formation_energy_per_atom": {"target": -0.5, "tolerance": 0.1}}}
    config = {"sampling": {"cases": {"a": energy_case}}, "relaxation": {**RELAXATION, "chunk_size": 3}, "dft": dft}

    def plan(config: dict) -> ValidationPlan:
        return ValidationPlan(config, tmp_path / "validation", lambda case: tmp_path / "design" / case / "candidates.csv",
                              lambda case: tmp_path / "validation" / case / "funnel.csv")

    assert plan(config).chunks("a", "mlip") == [list(ids[:3]), [ids[3]]]
    # S.U.N. on target first (the 8-site one is too large), then the random baseline's.
    assert plan(config).chunks("a", "dft") == [[ids[0], ids[2]]]
    assert plan({**config, "dft": {**dft, "candidates_per_job": 1}}).chunks("a", "dft") == [[ids[0]], [ids[2]]]
    validation = tmp_path / "validation" / "a"
    assert plan(config).result_paths("a") == [str(validation / "mlip" / "chunk-000.json"),
                                           str(validation / "mlip" / "chunk-001.json"),
                                           str(validation / "dft" / "chunk-000.json"), str(validation / "funnel.json")]
    assert plan(config).dft_reference_elements("a", 0) == ["Br", "Cl", "K", "Na"]
    # The scheduler starts the costliest DFT job first: its sites (2 + 2), doubled in a band-gap case.
    assert plan(config).dft_job_cost("a", 0) == 4
    gap_case = {"constraints": {"band_gap": {"target": 1.5, "tolerance": 0.25}}}
    assert plan({**config, "sampling": {"cases": {"a": gap_case}}}).dft_job_cost("a", 0) == 8
    # A DFT job may compute its candidates' references as well: 2 candidates and 4 elements, 30 minutes each.
    assert plan(config).dft_runtime("a", 0) == 6 * 30
    # One cache per engine and energy-changing settings: the MLIP's steps key both tiers (prototype
    # references start from the MLIP's), the parallelisation keys none.
    mlip_dir, dft_dir = plan(config).reference_dir("mlip"), plan(config).reference_dir("dft")
    assert Path(mlip_dir).name.startswith("CHGNet-") and Path(dft_dir).name.startswith("gpaw-")
    more_steps = {**config, "relaxation": {**config["relaxation"], "steps": 500}}
    assert plan(more_steps).reference_dir("mlip") != mlip_dir and plan(more_steps).reference_dir("dft") != dft_dir
    more_procs = {**config, "dft": {**dft, "gpaw": {**dft["gpaw"], "mpi_procs": 4}}}
    assert plan(more_procs).reference_dir("dft") == dft_dir
    assert plan(config).reference_index("dft") == dft_dir + ".index.json"


def _validation_with_failures(results: Path) -> dict[str, Path]:
    """A validation folder with an ok and a failed candidate record, and a failed reference in its index."""
    ok = {"status": "ok", "reason": ""}
    failed = {"status": "failed", "reason": "scf_not_converged: 60 iterations"}
    paths = {"failed": results / "validation/Ef/dft/chunk-000/c1/dft.json",
             "failed_batch_index": results / "validation/Ef/dft/chunk-000.json",
             "ok": results / "validation/Ef/mlip/chunk-000/c2/mlip.json",
             "failed_reference": results / "validation/references/gpaw-0/Sr.json",
             "ok_reference": results / "validation/references/gpaw-0/Na.json",
             "failed_index": results / "validation/references/gpaw-0.index.json"}
    for name, path in paths.items():
        write_record(path, failed if name.startswith("failed") else ok, {})
    return paths


def test_retry_failed_forgets_failed_results_and_a_dry_run_changes_nothing(tmp_path, capsys):
    paths = _validation_with_failures(tmp_path / "results")
    forgotten = {paths["failed"], paths["failed_batch_index"], paths["failed_reference"], paths["failed_index"]}
    assert run_command("retry-failed", "icrdesign.cli.retry_failed",
                       ["--results", str(tmp_path / "results"), "--dry-run"]) == 0
    assert all(path.exists() for path in paths.values())
    assert {Path(line.split()[-1]) for line in capsys.readouterr().out.splitlines()[:-1]} == forgotten
    assert run_command("retry-failed", "icrdesign.cli.retry_failed", ["--results", str(tmp_path / "results")]) == 0
    assert {path for path in paths.values() if not path.exists()} == forgotten
    assert failed_records(tmp_path / "results/validation") == []


@pytest.mark.slow
def test_running_the_workflow_never_forgets_failed_results(tmp_path):
    """Retrying is explicit (icrdesign retry-failed): neither a dry run nor a real run of the workflow
    deletes a failed result while it is parsed."""
    import os
    import time

    from icrdesign.config import validate_config
    from icrdesign.wiring import stage_config_text

    paths = _validation_with_failures(tmp_path / "results")
    config = yaml.safe_load(E2E_CONFIG.read_text())
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    # An up-to-date target (every output newer than its input, judged by modification time only): nothing to run.
    (tmp_path / "results/config").mkdir(parents=True)
    (tmp_path / "results/config/data.json").write_text(stage_config_text(validate_config(config), "data"))
    target = "results/data/dataset.parquet"
    for output in (target, "results/data/rejected.csv", "results/provenance.json"):
        (tmp_path / output).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / output).write_text("up to date")
        os.utime(tmp_path / output, (time.time() + 3600, time.time() + 3600))

    def snakemake(*args: str) -> None:
        done = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "-s", str(REPO / "Snakefile"),
                               "--directory", str(tmp_path), "--configfile", str(tmp_path / "config.yaml"),
                               "--rerun-triggers", "mtime", "--cores", "1", *args, target],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0 and "Nothing to be done" in done.stdout + done.stderr, done.stderr[-3000:]

    snakemake("--dry-run")
    snakemake()
    assert all(path.exists() for path in paths.values())
    assert set(failed_records(tmp_path / "results/validation")) == {
        paths["failed"], paths["failed_batch_index"], paths["failed_reference"], paths["failed_index"]}


def test_sodium_nitride_keeps_its_formula_through_candidates_csv(tmp_path):
    """pandas reads the text "NaN" as missing by default: NaN (Na + N) must stay a formula."""
    from icrdesign.artefacts.candidates import read_candidates

    frame = candidates_frame([2, 2], ["local_perturbation", "random"], [True, True])
    frame["formula"] = ["NaN", "NaCl"]
    write_candidates(tmp_path / "candidates.csv", frame)
    read = read_candidates(tmp_path / "candidates.csv")
    assert read["formula"].tolist() == ["NaN", "NaCl"]
    assert relaxation_ids(read) == frame["id"].tolist()
