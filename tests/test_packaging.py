"""The package installs and runs without the checkout: config, schema and commands ship in the wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pandas as pd
import pytest
import yaml

from workflow_runner import REPO

pytestmark = pytest.mark.slow


def test_wheel_installed_into_a_prefix_runs_dataset_outside_the_checkout(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheels), str(REPO)], check=True, timeout=600, cwd=tmp_path)
    (wheel,) = wheels.glob("icrdesign-*.whl")
    prefix = tmp_path / "prefix"
    # --ignore-installed: otherwise pip uninstalls this environment's own (editable) icrdesign first.
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", "-q", "--prefix", str(prefix),
                    str(wheel)], check=True, timeout=600, cwd=tmp_path)
    site_packages = sysconfig.get_path("purelib", vars={"base": str(prefix), "platbase": str(prefix)})
    # The installed copy comes first; the dependencies come from this interpreter's environment.
    env = {**os.environ, "PYTHONPATH": site_packages}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    command = [str(prefix / "bin" / "icrdesign")]

    located = subprocess.run([sys.executable, "-c", "import icrdesign; print(icrdesign.__file__)"], env=env,
                             cwd=elsewhere, capture_output=True, text=True, check=True)
    assert Path(located.stdout.strip()).is_relative_to(prefix)
    shown = subprocess.run([*command, "dataset", "--help"], env=env, cwd=elsewhere, capture_output=True, text=True)
    assert shown.returncode == 0 and "--config" in shown.stdout

    config = elsewhere / "tiny.yaml"
    config.write_text(yaml.safe_dump({"data": {"demo": {"n_structures": 12, "max_sites": 6, "n_jobs": 1}}}))
    ran = subprocess.run([*command, "dataset", "--config", str(config), "--out", "out/data"], env=env,
                         cwd=elsewhere, capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert len(pd.read_parquet(elsewhere / "out/data/dataset.parquet")) == 12
    assert (elsewhere / "out/provenance.json").is_file()
