"""config/paper.yaml: the paper's DFT budget on Materials Project data, on the SLURM profile."""

from __future__ import annotations

import pandas as pd
import yaml

from icrdesign.config import deep_update, validate_config
from icrdesign.validation import ValidationPlan
from icrdesign.validation.funnel import FUNNEL_COLUMNS
from workflow_runner import REPO


def paper_config() -> dict:
    """What `--profile profiles/slurm --configfile profiles/slurm/cluster.yaml config/paper.yaml` layers."""
    layered: dict = {}
    for path in ("profiles/slurm/cluster.yaml", "config/paper.yaml"):
        deep_update(layered, yaml.safe_load((REPO / path).read_text()))
    return validate_config(layered)


def test_paper_config_submits_the_papers_dft_budget_one_job_per_candidate(tmp_path):
    config = paper_config()
    assert config["data"]["source"] == "materials_project" and config["dft"]["engine"] == "vasp"
    assert config["dft"]["candidates_per_job"] == 1
    # Every case's funnel holds more S.U.N.-on-target candidates of each strategy than DFT takes.
    for case in config["sampling"]["cases"]:
        rows = [{"candidate_id": f"{case}-{strategy}-{i}", "strategy": strategy, "baseline": strategy == "random",
                 "formula": "NaCl", "nsites": 4, "relaxed": True, "single_element": False, "sun": True,
                 "on_target": True, "sun_on_target": True}
                for strategy in config["sampling"]["strategies"] for i in range(30)]
        funnel = pd.DataFrame(rows).reindex(columns=FUNNEL_COLUMNS)
        (tmp_path / case).mkdir()
        funnel.to_csv(tmp_path / case / "funnel.csv", index=False)
    plan = ValidationPlan(config, tmp_path, lambda case: tmp_path / "unused.csv",
                          lambda case: tmp_path / case / "funnel.csv")
    jobs = {case: plan.chunks(case, "dft") for case in plan.cases}
    assert all(len(batch) == 1 for batches in jobs.values() for batch in batches)
    designed = {case: sum(1 for [candidate] in batches if "-random-" not in candidate) for case, batches in jobs.items()}
    assert designed == {"Ef_-0.3": 20, "Ef_-0.5": 20, "Ef_-0.6": 20, "Ef_-0.7": 20, "Eg_1.5": 16}
    baseline = sum(1 for batches in jobs.values() for [candidate] in batches if "-random-" in candidate)
    assert baseline == 5 * config["dft"]["baseline_candidates_per_case"]
    # Designed candidates alternate between the designed strategies.
    first = [batch[0] for batch in jobs["Ef_-0.5"][:2]]
    assert {candidate.split("-")[2] for candidate in first} == {"gradient_ascent", "local_perturbation"}
