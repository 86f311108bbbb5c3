"""The repository's paths, and the real Snakemake workflow run from tests (workflow/test_e2e.py, test_slurm.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
E2E_CONFIG = REPO / "tests" / "helpers" / "e2e_config.yaml"
JOB_STATS_ROW = re.compile(r"^(\w+)\s+(\d+)$")


def snakemake(
    workdir: Path,
    *args: str,
    configfile: Path = E2E_CONFIG,
    profile: str = "local",
    check: bool = True,
    env: dict[str, str] | None = None,
    timeout: float = 900,
) -> subprocess.CompletedProcess:
    """`snakemake --profile profiles/<profile>` on the repository's Snakefile with results under workdir."""
    command = [
        SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
        "--configfile", str(configfile), "--profile", str(REPO / "profiles" / profile), *args,
    ]
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )
    if check and completed.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({completed.returncode}): {' '.join(command)}\n"
            f"{completed.stdout[-6000:]}\n{completed.stderr[-6000:]}"
        )
    return completed


def job_counts(output: str) -> dict[str, int]:
    """Jobs per rule from the 'Job stats' table Snakemake prints before running (or dry-running)."""
    counts: dict[str, int] = {}
    lines = output.splitlines()
    if "Job stats:" not in lines:
        return counts
    for line in lines[lines.index("Job stats:") + 1 :]:
        match = JOB_STATS_ROW.match(line.strip())
        if match is None:
            if counts:
                break
            continue
        if match.group(1) == "total":
            break
        counts[match.group(1)] = int(match.group(2))
    return counts
