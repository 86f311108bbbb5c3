"""The whole pipeline on a tiny config through the real rules and `--profile profiles/local`:
dataset -> encode -> train -> sample -> relax -> DFT -> report, then the resumability promises
(nothing to do on a rerun; one deleted DFT result reruns one DFT job; a report option reruns only
the report; a run killed during training resumes from its checkpoint).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from pymatgen.core import Composition

from workflow_runner import E2E_CONFIG, REPO, SNAKEMAKE, job_counts, snakemake

FILE_AUDIT = REPO / "tests" / "helpers" / "file_audit"

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

UPSTREAM_OF_DFT = {"dataset", "encode", "train", "sample", "mlip_references", "dft_reference_cache", "relax", "hull",
                   "funnel"}
# `all` is what users run; `report` names the end of the chain explicitly as well.
TARGETS = ("all", "report")


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("e2e")
    audit = workdir / "file_audit"
    audit.mkdir()
    # Every icrdesign command of the run records the files it reads (tests/helpers/file_audit).
    python_path = os.pathsep.join(filter(None, [str(FILE_AUDIT), os.environ.get("PYTHONPATH")]))
    snakemake(workdir, "--cores", "2", *TARGETS, env={"PYTHONPATH": python_path, "ICRDESIGN_FILE_AUDIT": str(audit)})
    return workdir


def _declared_files_by_command(workdir: Path) -> dict[tuple[str, ...], set[str]]:
    """Snakemake's record of every job that ran: its command line -> its inputs, outputs and log."""
    jobs: dict[str, dict] = {}
    for path in (workdir / ".snakemake" / "metadata").iterdir():
        record = json.loads(path.read_text())
        output = base64.urlsafe_b64decode(path.name.encode()).decode()
        job = jobs.setdefault(record["job_hash"], {"shellcmd": record.get("shellcmd") or "", "files": set()})
        job["files"] |= {output, *record.get("input", []), *record.get("log", [])}
    return {tuple(job["shellcmd"].split(" > ")[0].split()): job["files"] for job in jobs.values()
            if "icrdesign.cli" in job["shellcmd"]}


def test_every_file_a_command_reads_is_declared_by_its_rule(pipeline):
    """A rule that reads a file it does not declare (and so that Snakemake does not order or rerun
    for) is caught: each command's reads under results/ are the rule's inputs, outputs, log, inside a
    declared folder, or a file the command itself wrote earlier (its own resume state)."""
    declared = _declared_files_by_command(pipeline)
    audits = [json.loads(path.read_text()) for path in (pipeline / "file_audit").glob("*.json")]
    assert len(audits) >= len(declared) > 5
    for audit in audits:
        command = tuple(audit["argv"])
        assert command in declared, f"no Snakemake job ran {command}"
        allowed = declared[command]
        own = {os.path.relpath(path, pipeline) for path in audit["writes"]}
        reads = {os.path.relpath(path, pipeline) for path in audit["reads"]}
        undeclared = sorted(
            path for path in reads
            if path.startswith("results/") and path not in allowed | own
            and not any(path.startswith(folder.rstrip("/") + "/") for folder in allowed)
        )
        assert not undeclared, f"{' '.join(command[2:5])} reads undeclared files {undeclared}"


def _layered_config(tmp_path: Path, **sections) -> Path:
    """tests/helpers/e2e_config.yaml with some sections' keys replaced."""
    config = yaml.safe_load(E2E_CONFIG.read_text())
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_every_stage_wrote_its_outputs(pipeline):
    results = pipeline / "results"
    dataset = pd.read_parquet(results / "data/dataset.parquet")
    assert 0 < len(dataset) <= 60 and dataset["material_id"].is_unique
    encoded = json.loads((results / "encoded/summary.json").read_text())
    assert encoded["n_total"] == len(dataset) and encoded["n_encoded"] > 0
    history = pd.read_csv(results / "model/history.csv")
    assert 1 <= len(history) <= 80
    candidates = pd.read_csv(results / "design/Ef_-0.5/candidates.csv")
    assert len(candidates) > 0 and set(candidates["case"]) == {"Ef_-0.5"}
    validation = pd.read_csv(results / "validation/validation.csv")
    dft = validation[validation["tier"] == "dft"]
    assert len(dft) == 1, validation
    # The DFT job computed the references of its candidate's elements into the shared cache, and left no lock.
    (references,) = (results / "validation/references").glob("gpaw-*/")
    elements = {element.symbol for element in Composition(dft["formula"].iloc[0]).elements}
    assert sorted(path.name for path in references.glob("*.json")) == sorted(f"{el}.json" for el in elements)
    assert not [path.name for path in references.iterdir() if path.name.endswith(".lock")]
    assert {json.loads((references / f"{el}.json").read_text())["status"] for el in elements} == {"ok"}
    # Every valid candidate is relaxed, the random baseline's too.
    assert (validation["tier"] == "mlip").sum() == candidates["valid"].sum()
    funnel = pd.read_csv(results / "validation/Ef_-0.5/funnel.csv")
    assert len(funnel) == candidates["valid"].sum() and set(funnel["strategy"]) == set(candidates["strategy"])
    summary = json.loads((results / "report/summary.json").read_text())
    for name, strategy in summary["cases"]["Ef_-0.5"]["strategies"].items():
        sun = strategy["sun"]
        assert sun["n_valid"] + sun["n_single_element"] == (funnel["strategy"] == name).sum()
        assert sun["n_sun_on_target"] <= sun["n_sun"] <= sun["n_novel"] <= sun["n_unique"] <= sun["n_relaxed"]
        assert sun["hull"].startswith("demo"), sun["hull"]
    for figure in ("S1_latent", "S3_boxplots"):
        assert (results / f"report/{figure}.png").stat().st_size > 0
    # Every job left a Snakemake benchmark file.
    benchmarks = {path.stem for path in (results / "benchmarks").glob("*.tsv")}
    assert {"dataset", "encode", "train", "report"} <= benchmarks


def test_report_and_sampling_agree_on_base_rate_and_lift(pipeline):
    """One definition (icrdesign.cases) on one training split: the report's numbers are sampling's."""
    results = pipeline / "results"
    summary = json.loads((results / "report/summary.json").read_text())
    assert summary["cases"]
    for case, entry in summary["cases"].items():
        metrics = json.loads((results / "design" / case / "metrics.json").read_text())
        base = entry["training_base_rate"]
        assert (None if base is None else base["rate"]) == metrics["training_base_rate"], case
        assert entry["lift_over_random"] == metrics["lift_over_random"], case


def test_rerun_with_nothing_changed_does_nothing(pipeline):
    result = snakemake(pipeline, "--cores", "2", "--dry-run", *TARGETS)
    assert "Nothing to be done" in result.stdout + result.stderr
    assert job_counts(result.stdout + result.stderr) == {}


def test_dry_run_with_another_config_changes_nothing(pipeline, tmp_path):
    """Parsing the workflow writes nothing: a dry run with another config leaves every file as it was,
    and a plain dry run afterwards still has nothing to do. A model setting retrains without
    re-encoding (the split has its own section)."""
    files = sorted(path for path in (pipeline / "results").rglob("*") if path.is_file())
    before = {path: path.stat().st_mtime_ns for path in files}
    config = _layered_config(tmp_path, model={"learning_rate": 0.001})
    result = snakemake(pipeline, "--cores", "2", "--dry-run", *TARGETS, configfile=config)
    counts = job_counts(result.stdout + result.stderr)
    assert "train" in counts and not {"dataset", "encode"} & set(counts), counts
    after = sorted(path for path in (pipeline / "results").rglob("*") if path.is_file())
    assert after == files and {path: path.stat().st_mtime_ns for path in after} == before
    result = snakemake(pipeline, "--cores", "2", "--dry-run", *TARGETS)
    assert job_counts(result.stdout + result.stderr) == {}


def test_forgetting_one_dft_result_reruns_only_that_job(pipeline):
    """What `retry-failed` does to a failed DFT candidate: its record and its batch's index go."""
    dft_results = sorted((pipeline / "results/validation").glob("*/dft/chunk-*/*/dft.json"))
    assert dft_results
    dft_results[0].unlink()
    dft_results[0].parent.parent.with_suffix(".json").unlink()
    result = snakemake(pipeline, "--cores", "2", "--dry-run", *TARGETS)
    counts = job_counts(result.stdout + result.stderr)
    assert counts.get("dft") == 1, counts
    assert not UPSTREAM_OF_DFT & set(counts), counts


def test_changing_a_report_option_reruns_only_the_report(pipeline, tmp_path):
    before = (pipeline / "results/report/summary.json").stat().st_mtime
    # The previous test deleted a DFT result: restore it first so only the report option differs.
    snakemake(pipeline, "--cores", "2", *TARGETS)
    config = _layered_config(tmp_path, report={"dpi": 72})
    result = snakemake(pipeline, "--cores", "2", *TARGETS, configfile=config)
    counts = job_counts(result.stdout + result.stderr)
    # stage_config rewrites the sampling+report config file the report reads.
    assert set(counts) <= {"stage_config", "report", "paper_figures", "all"} and "report" in counts, counts
    assert (pipeline / "results/report/summary.json").stat().st_mtime > before


def test_run_killed_during_training_resumes_from_checkpoint(pipeline, tmp_path):
    workdir = tmp_path / "killed"
    shutil.copytree(pipeline, workdir, symlinks=True)
    model_dir = workdir / "results/model"
    shutil.rmtree(model_dir)
    target = "results/model/metrics.json"
    command = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--configfile",
               str(E2E_CONFIG), "--profile", str(REPO / "profiles/local"), "--cores", "2", target]
    # A shell without job control starts background commands with SIGINT ignored, and an ignored
    # signal stays ignored across exec: give Snakemake the default disposition, as in a terminal.
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    checkpoint = model_dir / "checkpoint.pt"
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert checkpoint.exists(), "training never wrote a checkpoint"
    # Like Ctrl-C in the terminal: Snakemake and the training process get the signal.
    os.killpg(process.pid, signal.SIGINT)
    process.wait(timeout=60)
    assert process.returncode != 0 and not (model_dir / "metrics.json").exists()
    killed_after = torch.load(checkpoint, weights_only=True)["epoch"]
    assert 1 <= killed_after < 80

    snakemake(workdir, "--cores", "2", target)
    resumed = re.search(r"resuming from \S+ after epoch (\d+)", (workdir / "results/logs/train.log").read_text())
    assert resumed and int(resumed.group(1)) >= killed_after
    # The resumed run ends where the uninterrupted one did: same epochs, same losses.
    history = pd.read_csv(model_dir / "history.csv").drop(columns="seconds")
    uninterrupted = pd.read_csv(pipeline / "results/model/history.csv").drop(columns="seconds")
    pd.testing.assert_frame_equal(history, uninterrupted, rtol=1e-6)
