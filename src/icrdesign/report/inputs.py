"""Reading the other stages' outputs for the report; a missing file is recorded as absent, never fatal.

Everything is gathered into one long table of evaluations (one row per candidate and tier:
surrogate, mlip, dft, external) so the success rates, boxplots and lifts are computed one way.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from icrdesign.artefacts.candidates import CANDIDATES_FILE, read_candidates
from icrdesign.artefacts.dataset import DATA_FOLDER, DATASET_FILE, read_dataset
from icrdesign.artefacts.design import DESIGN_FOLDER, METRICS_FILE, DesignMetrics, read_metrics
from icrdesign.artefacts.fingerprints import (
    CANDIDATES_FOLDER,
    FINGERPRINTS_FOLDER,
    PLAN_FILE,
    TRAIN_FOLDER,
    Fingerprints,
    read_fingerprints,
    shard_files,
)
from icrdesign.artefacts.model import LATENT_FILE, MODEL_FOLDER, LatentMeans, read_latent
from icrdesign.artefacts.model import METRICS_FILE as MODEL_METRICS_FILE
from icrdesign.artefacts.tables import read_table
from icrdesign.artefacts.validation import TABLE_FILE as VALIDATION_TABLE_FILE
from icrdesign.artefacts.validation import VALIDATION_FOLDER, read_validation_table
from icrdesign.cases import training_rows
from icrdesign.checks import as_number, is_missing, property_problem
from icrdesign.errors import InputError
from icrdesign.io import read_json
from icrdesign.validation.funnel import FUNNEL_SUMMARY, FUNNEL_TABLE, read_funnel, read_funnel_summary

log = logging.getLogger(__name__)
T = TypeVar("T")

TIERS = ("surrogate", "mlip", "dft", "external")
EVALUATION_COLUMNS = ["case", "id", "strategy", "tier", "formation_energy_per_atom", "band_gap", "status"]
#: Required columns of an external-results CSV (``--validation``).
EXTERNAL_REQUIRED = ("case", "id", "E_f")
#: Its optional columns (``structure``: a file path relative to the CSV); an absent one is empty on every row.
EXTERNAL_OPTIONAL = ("E_g", "structure")


@dataclass(frozen=True)
class ReportPaths:
    """Where the report reads each stage's output (the workflow passes each one explicitly).

    Attributes:
        latent: The training set's latent means (``model/latent.npz``).
        model_metrics: The model's test metrics (``model/metrics.json``).
        design: The folder holding one folder per design case (``design/``).
        validation: The validation table (``validation/validation.csv``).
        dataset: The dataset table (``data/dataset.parquet``).
        train_fingerprints: Every shard of the training split's fingerprints (``fingerprints/train/``).
        candidate_fingerprints: The candidates' fingerprints, one file per case (``fingerprints/candidates/``).
        external_fingerprints: Fingerprints of the ``--validation`` CSV's structures, keyed by its ``id``.
        funnels: Each case's post-relaxation funnel table (``validation/<case>/funnel.csv``, its
            ``funnel.json`` beside it).
    """

    latent: Path
    model_metrics: Path
    design: Path
    validation: Path
    dataset: Path
    train_fingerprints: tuple[Path, ...] = ()
    candidate_fingerprints: tuple[Path, ...] = ()
    external_fingerprints: Path | None = None
    funnels: tuple[Path, ...] = ()

    @classmethod
    def under(cls, results: str | os.PathLike[str]) -> ReportPaths:
        """The workflow's layout of a results folder (the training shards its ``plan.json`` names)."""
        results = Path(results)
        fingerprints = results / FINGERPRINTS_FOLDER
        plan = fingerprints / TRAIN_FOLDER / PLAN_FILE
        return cls(latent=results / MODEL_FOLDER / LATENT_FILE, model_metrics=results / MODEL_FOLDER / MODEL_METRICS_FILE,
                   design=results / DESIGN_FOLDER, validation=results / VALIDATION_FOLDER / VALIDATION_TABLE_FILE,
                   dataset=results / DATA_FOLDER / DATASET_FILE,
                   train_fingerprints=tuple(shard_files(plan)) if plan.is_file() else (),
                   candidate_fingerprints=tuple(sorted((fingerprints / CANDIDATES_FOLDER).glob("*.npz"))),
                   funnels=tuple(sorted((results / VALIDATION_FOLDER).glob(f"*/{FUNNEL_TABLE}"))))

    def label(self, path: Path) -> str:
        """``path`` relative to the folder holding every input (``model/latent.npz`` in a results folder)."""
        root = os.path.commonpath([self.latent, self.model_metrics, self.design, self.validation, self.dataset])
        return os.path.relpath(path, root)


@dataclass
class ReportInputs:
    """Every input of the report; an absent one is None (or empty) and named in ``absent``."""

    cases: dict[str, dict[str, Any]]
    latent: LatentMeans | None = None
    model_metrics: dict[str, Any] | None = None
    candidates: pd.DataFrame = field(default_factory=pd.DataFrame)
    design_metrics: dict[str, DesignMetrics] = field(default_factory=dict)
    validation: pd.DataFrame | None = None
    external: pd.DataFrame | None = None
    dataset: pd.DataFrame | None = None
    train_fingerprints: Fingerprints | None = None
    candidate_fingerprints: Fingerprints | None = None
    external_fingerprints: Fingerprints | None = None
    #: Each case's funnel.json (per strategy: the S.U.N. counts), and every case's funnel.csv rows.
    funnels: dict[str, dict[str, Any]] = field(default_factory=dict)
    funnel_table: pd.DataFrame = field(default_factory=pd.DataFrame)
    absent: list[str] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)

    def evaluations(self) -> pd.DataFrame:
        """One row per (candidate, tier) with the properties that tier measured."""
        parts = [self._surrogate_rows()]
        if self.validation is not None and len(self.validation):
            parts.append(self._validation_rows())
        if self.external is not None and len(self.external):
            external = self.external.rename(columns={"E_f": "formation_energy_per_atom", "E_g": "band_gap"})
            parts.append(external.assign(tier="external", strategy="external", status="ok"))
        parts = [p.reindex(columns=EVALUATION_COLUMNS) for p in parts if len(p)]
        if not parts:
            return pd.DataFrame(columns=EVALUATION_COLUMNS)
        return pd.concat(parts, ignore_index=True)

    def training_properties(self) -> dict[str, np.ndarray] | None:
        """Each trained property's labels over the training split (as sampling's seed pool reads them)."""
        if self.latent is None:
            return None
        train = training_rows(self.latent)
        return {prop: values[train] for prop, values in self.latent.properties.items()}

    def novel_candidates(self) -> pd.DataFrame:
        """Valid, unique and novel candidates: the generated crystals the paper evaluates."""
        if self.candidates.empty:
            return self.candidates
        keep = self.candidates["valid"] & self.candidates["unique"] & self.candidates["novel"]
        return self.candidates[keep]

    def _surrogate_rows(self) -> pd.DataFrame:
        novel = self.novel_candidates()
        if novel.empty:
            return pd.DataFrame(columns=EVALUATION_COLUMNS)
        return pd.DataFrame(
            {
                "case": novel["case"],
                "id": novel["id"],
                "strategy": novel["strategy"],
                "tier": "surrogate",
                "formation_energy_per_atom": novel.get("surrogate_formation_energy_per_atom"),
                "band_gap": novel.get("surrogate_band_gap"),
                "status": "ok",
            }
        )

    def _validation_rows(self) -> pd.DataFrame:
        rows = self.validation.rename(columns={"candidate_id": "id"}).copy()
        strategy = (
            self.candidates.set_index("id")["strategy"] if not self.candidates.empty else pd.Series(dtype=str)
        )
        rows["strategy"] = rows["id"].map(strategy).fillna("unknown")
        return rows


def load_design(design_dir: Path, cases: list[str]) -> tuple[pd.DataFrame, dict[str, DesignMetrics], list[Path]]:
    """Concatenated candidates.csv of every case (with ``cif_path``), each case's metrics, absent files."""
    frames, metrics, absent = [], {}, []
    for case in cases:
        case_dir = design_dir / case
        if not (case_dir / CANDIDATES_FILE).exists():
            absent.append(case_dir / CANDIDATES_FILE)
            continue
        frames.append(read_candidates(case_dir / CANDIDATES_FILE))
        if (case_dir / METRICS_FILE).exists():
            metrics[case] = read_metrics(case_dir / METRICS_FILE)
    candidates = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return candidates, metrics, absent


def load_external(path: Path, cases: Mapping[str, Any]) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """External results (case, id, E_f[, E_g, structure]); rows that cannot be counted come back with a reason.

    A row is rejected (listed in ``rejected.csv``, not counted) when its case is not in the config,
    its id is empty, its ``(case, id)`` appears on more than one row (every such row is rejected:
    which of two disagreeing results is right cannot be told, and counting both would weigh one
    crystal twice), ``E_f`` is missing, not a finite number or outside
    :data:`icrdesign.checks.PROPERTY_RANGES`, ``E_g`` is given but not a finite number in range
    (an empty ``E_g`` only leaves the row out of band-gap rates), or ``structure`` names a file that
    does not exist. Each reason starts with the row's line in the file.

    Raises:
        InputError: the file is missing, unreadable, empty or lacks a required column (naming the file).
    """
    if path.is_file() and not path.read_text(encoding="utf-8", errors="replace").strip():
        raise InputError(f"{path}: empty file; expected the columns {list(EXTERNAL_REQUIRED)} "
                         f"(optional: {list(EXTERNAL_OPTIONAL)})")
    frame = read_table(path, EXTERNAL_REQUIRED)
    if frame.empty:
        raise InputError(f"{path}: no rows under the header {list(frame.columns)}")
    for column in EXTERNAL_OPTIONAL:
        if column not in frame:
            frame[column] = None
    repeats = frame.groupby(["case", "id"], dropna=False)["id"].transform("size")
    rejected = []
    keep = np.ones(len(frame), dtype=bool)
    for position, (index, row) in enumerate(frame.iterrows()):
        reason = _external_row_problem(row, cases, path.parent, int(repeats.iloc[position]))
        if reason:
            keep[position] = False
            rejected.append({"source": str(path), "id": str(row["id"]), "reason": f"line {index + 2}: {reason}"})
    frame = frame[keep].copy()
    # Every kept E_f, and every kept E_g that is not blank, passed property_problem: as_number parses it.
    frame["E_f"] = frame["E_f"].map(as_number).astype(float)
    frame["E_g"] = frame["E_g"].map(lambda value: np.nan if is_missing(value) else as_number(value)).astype(float)
    frame["structure"] = [_structure_path(path.parent, given) for given in frame["structure"]]
    return frame, rejected


def _structure_path(folder: Path, given: Any) -> str | None:
    """The absolute path of a ``structure`` cell (relative to the CSV's folder), or None when empty."""
    return None if is_missing(given) else str((folder / str(given).strip()).resolve())


def _external_row_problem(row: pd.Series, cases: Mapping[str, Any], folder: Path, repeats: int) -> str | None:
    """Why one external row cannot be counted (see :func:`load_external`), or None."""
    if is_missing(row["case"]) or row["case"] not in cases:
        return f"unknown case {row['case']!r}; config cases: {sorted(cases)}"
    if is_missing(row["id"]):
        return "id is missing"
    if repeats > 1:
        return f"duplicate (case, id) ({row['case']!r}, {row['id']!r}) on {repeats} rows: none of them is counted"
    problem = property_problem("formation_energy_per_atom", row["E_f"])
    if problem:
        return f"E_f: {problem}"
    if not is_missing(row["E_g"]):
        problem = property_problem("band_gap", row["E_g"])
        if problem:
            return f"E_g: {problem}"
    structure = _structure_path(folder, row["structure"])
    if structure is not None and not Path(structure).is_file():
        return f"structure file not found: {row['structure']!r} ({structure})"
    return None


def load_inputs(paths: ReportPaths, cases: dict[str, Any], external: Path | None = None) -> ReportInputs:
    """Everything the report reads; an absent input is listed in ``absent``, never fatal."""
    inputs = ReportInputs(cases=cases)

    def read_if_present(path: Path, reader: Callable[[Path], T]) -> T | None:
        if path.exists():
            return reader(path)
        inputs.absent.append(paths.label(path))
        return None

    inputs.latent = read_if_present(paths.latent, read_latent)
    if paths.model_metrics.exists():  # optional: its absence is not reported
        inputs.model_metrics = read_json(paths.model_metrics)
    inputs.candidates, inputs.design_metrics, absent = load_design(paths.design, list(cases))
    inputs.absent += [paths.label(path) for path in absent]
    inputs.validation = read_if_present(paths.validation, read_validation_table)
    inputs.dataset = read_if_present(paths.dataset, read_dataset)
    # Only whole: a training set missing a shard would overstate every candidate's dissimilarity.
    missing_shards = [path for path in paths.train_fingerprints if not path.exists()]
    if not paths.train_fingerprints:
        inputs.absent.append(f"{FINGERPRINTS_FOLDER}/{TRAIN_FOLDER} (run `icrdesign fingerprints --dataset ...`)")
    elif missing_shards:
        inputs.absent += [paths.label(path) for path in missing_shards]
    else:
        inputs.train_fingerprints = read_fingerprints(paths.train_fingerprints)
    # One case's missing file leaves only that case's candidates without a dissimilarity.
    present = [path for path in paths.candidate_fingerprints if path.exists()]
    inputs.absent += [paths.label(path) for path in paths.candidate_fingerprints if not path.exists()]
    if present:
        inputs.candidate_fingerprints = read_fingerprints(present)
    if paths.external_fingerprints is not None:
        inputs.external_fingerprints = read_if_present(paths.external_fingerprints, read_fingerprints)
    tables = []
    for path in paths.funnels:
        table = read_if_present(path, read_funnel)
        summary = read_if_present(path.with_name(FUNNEL_SUMMARY), read_funnel_summary)
        if table is not None and summary is not None:
            inputs.funnels[summary["case"]] = summary
            tables.append(table.assign(case=summary["case"]))
    if tables:
        inputs.funnel_table = pd.concat(tables, ignore_index=True)
    if external is not None:
        inputs.external, inputs.rejected = load_external(external, cases)
    for item in inputs.absent:
        log.warning("report input absent: %s", item)
    return inputs
