"""benchmarks/dft_orchestration.py: the case funnel it writes is read and batched as the workflow does."""

from __future__ import annotations

import importlib.util
import sys

import yaml
from pymatgen.analysis.structure_matcher import StructureMatcher

from icrdesign.cases import RANDOM_BASELINE
from icrdesign.config import load_config
from icrdesign.validation.funnel import read_funnel
from icrdesign.validation.selection import dft_batches
from workflow_runner import REPO

_spec = importlib.util.spec_from_file_location("dft_orchestration", REPO / "benchmarks" / "dft_orchestration.py")
dft_orchestration = importlib.util.module_from_spec(_spec)
sys.modules["dft_orchestration"] = dft_orchestration
_spec.loader.exec_module(dft_orchestration)


def test_demo_funnel_batches_grouped_and_one_per_job(tmp_path):
    cells = dft_orchestration.demo_cells()
    funnel = read_funnel(dft_orchestration.write_case_funnel(tmp_path / "Ef_-0.5", cells))
    assert funnel["candidate_id"].tolist() == list(cells)
    assert funnel["sun_on_target"].all() and funnel["baseline"].tolist() == [False, False, True]
    assert funnel.loc[2, "strategy"] == RANDOM_BASELINE
    # The relaxed CIFs the DFT command reads are the cells themselves (to the CIF's precision).
    for name, path in zip(funnel["candidate_id"], funnel["relaxed_cif_path"], strict=True):
        read = dft_orchestration.Structure.from_file(path)
        assert len(read) == len(cells[name])
        assert StructureMatcher(primitive_cell=False, scale=False).fit(read, cells[name])
    dft = {**load_config(None)["dft"], "max_candidates_per_case": 2, "baseline_candidates_per_case": 1}
    assert dft_batches(funnel, {**dft, "candidates_per_job": None}) == [["NaCl2", "Si2", "Si8"]]
    assert dft_batches(funnel, {**dft, "candidates_per_job": 1}) == [["NaCl2"], ["Si2"], ["Si8"]]


def test_production_settings_are_the_paper_configs():
    paper = yaml.safe_load(dft_orchestration.PAPER_CONFIG.read_text())["dft"]
    production = dft_orchestration.production_dft(load_config(None)["dft"])
    assert production["engine"] == "gpaw" and production["relax"] is True
    assert {key: production["gpaw"][key] for key in paper["gpaw"]} == paper["gpaw"]
    assert len(dft_orchestration.production_cell()) == 8
