"""What the validation rules ask of the library: which candidates each tier takes, which elemental
references it needs, where every file lies, and how long a references job may run.

The rule files only wire: they build one :class:`ValidationPlan` and call its methods from input
functions and parameters. ``candidates_table(case)`` gives the path of a case's candidates.csv; in
the workflow it waits for the sampling checkpoint, so a plan is only asked about candidates once
they exist.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pymatgen.core import Composition

from icrdesign.artefacts.candidates import read_candidates
from icrdesign.artefacts.validation import DFT, MLIP, TABLE_FILE, TIERS, record_path
from icrdesign.validation.dft import dft_reference_settings
from icrdesign.validation.mlip import mlip_reference_settings
from icrdesign.validation.references import REFERENCES_FOLDER, WORK_FOLDER, cache_name, index_path
from icrdesign.validation.selection import select_for_tier


def reference_settings(config: Mapping[str, Any], tier: str) -> dict[str, Any]:
    """The settings that key a tier's reference cache (see ``references.cache_name``)."""
    if tier == MLIP:
        return mlip_reference_settings(config["relaxation"])
    if tier == DFT:
        return dft_reference_settings(config["dft"], config["relaxation"])
    raise ValueError(f"unknown validation tier {tier!r}")


@dataclass(frozen=True)
class ValidationPlan:
    """The validation tiers of one workflow run: a config, its validation folder and the candidates."""

    config: Mapping[str, Any]
    validation_dir: Path
    candidates_table: Callable[[str], str | os.PathLike[str]]

    @property
    def cases(self) -> list[str]:
        return list(self.config["sampling"]["cases"])

    def candidates_tables(self) -> list[str]:
        """Every case's candidates.csv."""
        return [str(self.candidates_table(case)) for case in self.cases]

    def selected(self, case: str, tier: str) -> pd.DataFrame:
        """The rows of the candidates of ``case`` that ``tier`` validates."""
        candidates = read_candidates(self.candidates_table(case))
        return candidates[candidates["id"].isin(select_for_tier(candidates, self.config, tier))]

    def result_paths(self) -> list[str]:
        """Every record the run produces: mlip.json of each relaxed candidate, dft.json of each DFT one."""
        return [str(record_path(self.validation_dir, case, candidate_id, tier))
                for case in self.cases for tier in TIERS for candidate_id in self.selected(case, tier)["id"]]

    def table_path(self) -> str:
        return str(self.validation_dir / TABLE_FILE)

    def reference_elements(self, tier: str) -> list[str]:
        """Every element of the candidates ``tier`` validates, over all cases."""
        return sorted({element.symbol for case in self.cases for formula in self.selected(case, tier)["formula"]
                       for element in Composition(formula).elements})

    def reference_dir(self, tier: str) -> str:
        """The reference cache of the tier's engine and settings."""
        return str(self.validation_dir / REFERENCES_FOLDER / cache_name(reference_settings(self.config, tier)))

    def reference_index(self, tier: str) -> str:
        """The references job's index: every element's status (see ``references.write_index``)."""
        return str(index_path(Path(self.reference_dir(tier))))

    def reference_work_dir(self, tier: str) -> str:
        return str(Path(self.reference_dir(tier)) / WORK_FOLDER)

    def dft_references_runtime(self) -> int:
        """Minutes for the DFT references job (every element of the DFT tier is a DFT calculation)."""
        return int(self.config["dft"]["runtime"]) * max(1, len(self.reference_elements(DFT)))
