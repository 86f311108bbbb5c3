"""The SLURM profile on a real single-node SLURM cluster (scripts/slurm/start.sh).

Runs the tiny config's dataset -> encode -> train chain through `--profile profiles/slurm`, checks
that every job went through sbatch with the resources of config.yaml `resources`, and that the
outputs equal a local run with the same seed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import yaml

from workflow_runner import E2E_CONFIG, REPO, job_counts, snakemake

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("slurmctld") is None or shutil.which("munged") is None or os.geteuid() != 0,
        reason="needs root and Debian's slurmctld, slurmd, slurm-client and munge (scripts/setup.sh)",
    ),
]

TARGETS = ["results/model/metrics.json"]
CLUSTER_RULES = {"dataset", "encode", "train"}
TIMING_KEYS = {"train_seconds"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    state = tmp_path_factory.mktemp("slurm-state")
    env = {**os.environ, "ICRDESIGN_SLURM_DIR": str(state)}
    try:
        subprocess.run(["bash", str(REPO / "scripts/slurm/start.sh")], env=env, check=True,
                       capture_output=True, text=True, timeout=60)
        yield {**env, "SLURM_CONF": str(state / "slurm.conf")}
    finally:
        subprocess.run(["bash", str(REPO / "scripts/slurm/stop.sh")], env=env, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    """The same targets run through the SLURM profile and locally (side by side: the SLURM run mostly waits)."""
    config = yaml.safe_load(E2E_CONFIG.read_text())
    # Training asks for one GPU: the test cluster has one (a /dev/null GRES), the job still trains on CPU.
    config["resources"]["train"]["gpus"] = 1
    configfile = tmp_path_factory.mktemp("config") / "slurm_config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    local, slurm = tmp_path_factory.mktemp("local"), tmp_path_factory.mktemp("slurm")
    with ThreadPoolExecutor(max_workers=1) as pool:
        # First status check after 5 s (the profile's 20 s suits real clusters); MinJobAge is 600 s.
        slurm_run = pool.submit(snakemake, slurm, "--slurm-init-seconds-before-status-checks", "5", *TARGETS,
                                configfile=configfile, profile="slurm", env=cluster, timeout=600)
        snakemake(local, "--cores", "1", *TARGETS, configfile=configfile)
        result = slurm_run.result()
    return local, slurm, result


def _slurm_jobs(env: dict[str, str]) -> pd.DataFrame:
    """Every job slurmctld still remembers (MinJobAge), with the options sbatch received."""
    listing = subprocess.run(["squeue", "--states=all", "--noheader", "--format=%i|%T|%k"],
                             env=env, check=True, capture_output=True, text=True).stdout
    rows = []
    for line in listing.splitlines():
        job_id, state, comment = line.split("|", 2)
        details = subprocess.run(["scontrol", "show", "job", "--oneliner", job_id],
                                 env=env, check=True, capture_output=True, text=True).stdout
        fields = dict(item.split("=", 1) for item in details.split() if "=" in item)
        rows.append({"job_id": int(job_id), "state": state, "rule": comment.removeprefix("rule_"),
                     "cpus": int(fields["NumCPUs"]), "time_limit": fields["TimeLimit"],
                     "memory": fields.get("MinMemoryNode", ""), "gpus": fields.get("TresPerJob", "")})
    return pd.DataFrame(rows)


def test_every_job_went_through_sbatch_with_its_resources(runs, cluster):
    _, _, result = runs
    planned = job_counts(result.stdout + result.stderr)
    assert CLUSTER_RULES <= set(planned), planned
    jobs = _slurm_jobs(cluster)
    submitted = jobs[jobs["rule"].isin(CLUSTER_RULES)]
    assert sorted(submitted["rule"]) == sorted(CLUSTER_RULES)
    assert (submitted["state"] == "COMPLETED").all(), submitted
    # tests/helpers/e2e_config.yaml: threads 1, mem_mb 2000, runtime 10 minutes for these rules.
    cpus = dict(zip(submitted["rule"], submitted["cpus"]))
    # A GPU job (--gpus, no --ntasks) may be given more than its --cpus-per-task by slurmctld.
    assert cpus["dataset"] == cpus["encode"] == 1 and cpus["train"] >= 1, cpus
    assert (submitted["time_limit"] == "00:10:00").all()
    memory = dict(zip(submitted["rule"], submitted["memory"]))
    assert memory == {"dataset": "2000M", "encode": "1000M", "train": "2000M"}
    gpus = dict(zip(submitted["rule"], submitted["gpus"]))
    assert gpus["train"] == "gres:gpu:1" and gpus["dataset"] == gpus["encode"] == ""
    # slurmctld logged the batch submissions too.
    ctld_log = (cluster["ICRDESIGN_SLURM_DIR"] + "/slurmctld.log")
    with open(ctld_log) as handle:
        submissions = [line for line in handle if "_slurm_rpc_submit_batch_job" in line]
    assert len(submissions) >= len(CLUSTER_RULES)


def test_results_equal_a_local_run_with_the_same_seed(runs):
    local, slurm, _ = runs
    pd.testing.assert_frame_equal(pd.read_parquet(local / "results/data/dataset.parquet"),
                                  pd.read_parquet(slurm / "results/data/dataset.parquet"))
    np.testing.assert_array_equal(np.load(local / "results/encoded/icr.npy"),
                                  np.load(slurm / "results/encoded/icr.npy"))
    pd.testing.assert_frame_equal(pd.read_csv(local / "results/model/split.csv"),
                                  pd.read_csv(slurm / "results/model/split.csv"))
    # Seeded single-threaded CPU training: the same numbers, bit for bit, apart from timings.
    local_metrics, slurm_metrics = (
        {key: value for key, value in json.loads((run / "results/model/metrics.json").read_text()).items()
         if key not in TIMING_KEYS}
        for run in (local, slurm)
    )
    assert slurm_metrics == local_metrics
    local_history, slurm_history = (pd.read_csv(run / "results/model/history.csv").drop(columns="seconds")
                                    for run in (local, slurm))
    pd.testing.assert_frame_equal(slurm_history, local_history, check_exact=True)
