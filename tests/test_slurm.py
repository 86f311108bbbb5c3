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

import numpy as np
import pandas as pd
import pytest

from workflow_runner import REPO, job_counts, snakemake

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
    """The same targets run locally and through the SLURM profile."""
    local, slurm = tmp_path_factory.mktemp("local"), tmp_path_factory.mktemp("slurm")
    snakemake(local, "--cores", "2", *TARGETS)
    # First status check after 5 s (the profile's 20 s suits real clusters); MinJobAge is 600 s.
    result = snakemake(slurm, "--slurm-init-seconds-before-status-checks", "5", *TARGETS,
                       profile="slurm", env=cluster, timeout=600)
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
                     "memory": fields.get("MinMemoryNode", "")})
    return pd.DataFrame(rows)


def test_every_job_went_through_sbatch_with_its_resources(runs, cluster):
    _, _, result = runs
    planned = job_counts(result.stdout + result.stderr)
    assert CLUSTER_RULES <= set(planned), planned
    jobs = _slurm_jobs(cluster)
    submitted = jobs[jobs["rule"].isin(CLUSTER_RULES)]
    assert sorted(submitted["rule"]) == sorted(CLUSTER_RULES)
    assert (submitted["state"] == "COMPLETED").all(), submitted
    # tests/e2e_config.yaml: threads 1, mem_mb 2000, runtime 10 minutes for these rules.
    assert (submitted["cpus"] == 1).all()
    assert (submitted["time_limit"] == "00:10:00").all()
    assert (submitted["memory"] == "2000M").all()
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
    local_metrics = json.loads((local / "results/model/metrics.json").read_text())
    slurm_metrics = json.loads((slurm / "results/model/metrics.json").read_text())
    assert local_metrics.keys() == slurm_metrics.keys()
    np.testing.assert_allclose(pd.json_normalize(local_metrics).select_dtypes("number").to_numpy(),
                               pd.json_normalize(slurm_metrics).select_dtypes("number").to_numpy(),
                               rtol=1e-5, atol=1e-6)
