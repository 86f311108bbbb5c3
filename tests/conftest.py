"""Shared fixtures (``demo_table`` builds one small demo dataset per test session), and the test
helpers in tests/helpers/ made importable by every test module (``from workflow_runner import REPO``).

The tests mirror the package: tests/<stage>/ holds the tests of ``icrdesign.<stage>``, tests/workflow/
those of the Snakemake workflow as a whole.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from icrdesign.config import load_config

sys.path.insert(0, str(Path(__file__).resolve().parent / "helpers"))

DEMO_FIXTURE_SIZE = 300
DEMO_FIXTURE_SEED = 7


@pytest.fixture(scope="session")
def demo_dataset_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """results/data/dataset.parquet of a ~300-structure demo set (one process; ~10-20 s once)."""
    from icrdesign.data import build_dataset

    config = load_config(
        overrides={"seed": DEMO_FIXTURE_SEED, "data": {"demo": {"n_structures": DEMO_FIXTURE_SIZE, "n_jobs": 1}}}
    )
    out_dir = tmp_path_factory.mktemp("demo_dataset") / "data"
    build_dataset(config, out_dir)
    return out_dir / "dataset.parquet"


@pytest.fixture(scope="session")
def demo_table(demo_dataset_path: Path) -> pd.DataFrame:
    """The demo dataset table (dataset schema). Treat it as read-only: it is shared."""
    from icrdesign.data import load_dataset

    return load_dataset(demo_dataset_path)
