"""The workflow follows the Snakemake catalog's conventions: `snakemake --lint` finds nothing."""

from __future__ import annotations

import subprocess

from workflow_runner import REPO, SNAKEMAKE


def test_snakemake_lint_is_clean(tmp_path) -> None:
    result = subprocess.run([SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path), "--lint"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()
