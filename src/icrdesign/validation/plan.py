"""What the validation rules ask of the library: which candidates each job of a tier takes, which
elemental references a tier needs, where every file lies, and how long a job may run.

The rule files only wire: they build one :class:`ValidationPlan` and call its methods from input
functions and parameters.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymatgen.core import Composition

from icrdesign.artefacts.candidates import read_candidates
from icrdesign.artefacts.validation import (DFT, HULL_CACHE_FOLDER, HULL_FILE, MLIP, TABLE_FILE, TIERS, chunk_dir,
                                            chunk_index_path)
from icrdesign.validation.chunks import mlip_chunks
from icrdesign.validation.dft import dft_reference_settings
from icrdesign.validation.funnel import FUNNEL_SUMMARY, read_funnel
from icrdesign.validation.mlip import mlip_reference_settings
from icrdesign.validation.references import REFERENCES_FOLDER, WORK_FOLDER, cache_name, index_path
from icrdesign.validation.selection import dft_batches, dft_cost, dft_limit


def reference_settings(config: Mapping[str, Any], tier: str) -> dict[str, Any]:
    """The settings that key a tier's reference cache (see ``references.cache_name``)."""
    if tier == MLIP:
        return mlip_reference_settings(config["relaxation"])
    if tier == DFT:
        return dft_reference_settings(config["dft"], config["relaxation"])
    raise ValueError(f"unknown validation tier {tier!r}")


@dataclass(frozen=True)
class ValidationPlan:
    """The validation tiers of one workflow run: a config, its validation folder, the candidates and funnels.

    ``candidates_table(case)`` and ``funnel_table(case)`` give the paths of a case's candidates.csv and
    funnel.csv; in the workflow they wait for the sampling and funnel checkpoints.
    """

    config: Mapping[str, Any]
    validation_dir: Path
    candidates_table: Callable[[str], str | os.PathLike[str]]
    funnel_table: Callable[[str], str | os.PathLike[str]]

    @property
    def cases(self) -> list[str]:
        return list(self.config["sampling"]["cases"])

    def candidates_tables(self) -> list[str]:
        """Every case's candidates.csv."""
        return [str(self.candidates_table(case)) for case in self.cases]

    def chunks(self, case: str, tier: str) -> list[list[str]]:
        """The candidate ids of each job of ``tier`` in ``case``."""
        if tier == MLIP:
            return mlip_chunks(read_candidates(self.candidates_table(case)), self.config["relaxation"])
        if tier == DFT:
            return dft_batches(read_funnel(self.funnel_table(case)), self.config["dft"], dft_limit(self.config, case))
        raise ValueError(f"unknown validation tier {tier!r}")

    def chunk_dirs(self, case: str, tier: str) -> list[str]:
        return [str(chunk_dir(self.validation_dir, case, tier, k)) for k in range(len(self.chunks(case, tier)))]

    def chunk_indexes(self, case: str, tier: str) -> list[str]:
        return [str(chunk_index_path(self.validation_dir, case, tier, k))
                for k in range(len(self.chunks(case, tier)))]

    def funnel_dir(self, case: str) -> str:
        return str(self.validation_dir / case)

    def hull_path(self) -> str:
        return str(self.validation_dir / HULL_FILE)

    def hull_cache(self) -> str:
        return str(self.validation_dir / HULL_CACHE_FOLDER)

    def result_paths(self, case: str) -> list[str]:
        """What a run produces for ``case``: every chunk's index of both tiers and the case's funnel."""
        return [*(path for tier in TIERS for path in self.chunk_indexes(case, tier)),
                str(Path(self.funnel_dir(case)) / FUNNEL_SUMMARY)]

    def table_inputs(self, case: str) -> list[str]:
        """What validation.csv reads of ``case``: every chunk's folder and index, both tiers."""
        return [path for tier in TIERS for path in (*self.chunk_dirs(case, tier), *self.chunk_indexes(case, tier))]

    def per_case(self, paths: Callable[[str], list[str]]) -> dict[str, Callable[[Any], list[str]]]:
        """``paths`` of every case as one input function per case, for a rule that gathers all cases, so
        that one case's unfinished checkpoint does not hold back the paths of the others (one function
        for all cases raises until every case's checkpoint is done)."""
        return {f"case_{number}": (lambda wildcards, case=case: paths(case)) for number, case in enumerate(self.cases)}

    def table_path(self) -> str:
        return str(self.validation_dir / TABLE_FILE)

    def dft_reference_elements(self, case: str, batch: int) -> list[str]:
        """The elements of one DFT batch's candidates: the references that job computes unless another
        job has (each is a DFT calculation; the MLIP's references cover the representation's vocabulary)."""
        candidates = read_candidates(self.candidates_table(case))
        formulas = candidates.loc[candidates["id"].isin(self.chunks(case, DFT)[batch]), "formula"]
        return sorted({element.symbol for formula in formulas for element in Composition(formula).elements})

    def reference_dir(self, tier: str) -> str:
        """The reference cache of the tier's engine and settings."""
        return str(self.validation_dir / REFERENCES_FOLDER / cache_name(reference_settings(self.config, tier)))

    def reference_index(self, tier: str) -> str:
        """The references job's index: every element's status (see ``references.write_index``)."""
        return str(index_path(Path(self.reference_dir(tier))))

    def reference_work_dir(self, tier: str) -> str:
        return str(Path(self.reference_dir(tier)) / WORK_FOLDER)

    def dft_job_cost(self, case: str, batch: int) -> int:
        """A relative cost of one DFT job, to start the costliest first (the scheduler's priority): its
        candidates' :func:`~icrdesign.validation.selection.dft_cost`, twice over in a case that
        constrains the band gap, whose gapped candidates add the gap's non-self-consistent calculations
        (a demo run: 214 of a 250 s static)."""
        band_gap_case = "band_gap" in self.config["sampling"]["cases"][case]["constraints"]
        batch_rows = read_funnel(self.funnel_table(case)).set_index("candidate_id").loc[self.chunks(case, DFT)[batch]]
        cost = sum(dft_cost(formula, nsites) for formula, nsites in zip(batch_rows["formula"], batch_rows["nsites"]))
        return cost * (2 if band_gap_case else 1)

    def dft_runtime(self, case: str, batch: int) -> int:
        """Minutes for one DFT job: ``dft.runtime`` per candidate of the batch and per reference it may compute."""
        calculations = len(self.chunks(case, DFT)[batch]) + len(self.dft_reference_elements(case, batch))
        return int(self.config["dft"]["runtime"]) * max(1, calculations)
