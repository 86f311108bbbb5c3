"""Reading the other stages' outputs for the report; a missing file is recorded as absent, never fatal.

Everything is gathered into one long table of evaluations (one row per candidate and tier:
surrogate, mlip, dft, external) so the success rates, boxplots and lifts are computed one way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from icrdesign.io import read_json

log = logging.getLogger(__name__)

TIERS = ("surrogate", "mlip", "dft", "external")
# The lift denominator is the prior baseline; every baseline (icrdesign.sampling's BASELINES, named here
# so the report does not import torch) is kept out of the designed candidates' rates.
BASELINE_STRATEGY = "random"
BASELINE_STRATEGIES = ("random", "random_training")
EVALUATION_COLUMNS = ["case", "id", "strategy", "tier", "formation_energy_per_atom", "band_gap", "status"]
EXTERNAL_COLUMNS = ["case", "id", "E_f", "E_g"]


@dataclass
class ReportInputs:
    cases: dict[str, dict[str, Any]]
    latent: dict[str, np.ndarray] | None = None
    model_metrics: dict[str, Any] | None = None
    candidates: pd.DataFrame = field(default_factory=pd.DataFrame)
    design_metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    validation: pd.DataFrame | None = None
    external: pd.DataFrame | None = None
    dataset: pd.DataFrame | None = None
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


def _as_bool(series: pd.Series) -> pd.Series:
    if series.dtype == bool:
        return series
    text = series.astype(str).str.strip().str.lower()
    return text.isin({"true", "1", "yes"})


def load_latent(model_dir: Path) -> dict[str, np.ndarray] | None:
    path = model_dir / "latent.npz"
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def load_design(design_dir: Path, cases: list[str]) -> tuple[pd.DataFrame, dict[str, dict[str, Any]], list[str]]:
    """Concatenated candidates.csv of every case (with a ``case_dir`` column), metrics, absent cases."""
    frames, metrics, absent = [], {}, []
    for case in cases:
        case_dir = design_dir / case
        table = case_dir / "candidates.csv"
        if not table.exists():
            absent.append(f"design/{case}/candidates.csv")
            continue
        frame = pd.read_csv(table, dtype={"id": str, "cif": str})
        frame["case"] = case
        frame["case_dir"] = str(case_dir)
        for column in ("valid", "unique", "novel"):
            frame[column] = _as_bool(frame[column]) if column in frame else False
        frames.append(frame)
        if (case_dir / "metrics.json").exists():
            metrics[case] = read_json(case_dir / "metrics.json")
    candidates = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return candidates, metrics, absent


def candidate_cif(row: pd.Series) -> Path | None:
    """The CIF of a candidate: its ``cif`` column relative to the case folder or to the run folder
    (results/design/<case>/../../..), else cifs/<id>.cif."""
    case_dir = Path(row["case_dir"]).resolve()
    options = []
    cif = row.get("cif")
    if isinstance(cif, str) and cif.strip():
        options += [case_dir / cif, case_dir.parents[2] / cif]
    options.append(case_dir / "cifs" / f"{row['id']}.cif")
    return next((p for p in options if p.is_file()), None)


def load_external(path: Path, cases: dict[str, Any]) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """External results (case, id, E_f, E_g[, structure]); bad rows are returned with a reason."""
    frame = pd.read_csv(path, dtype={"case": str, "id": str})
    missing = [c for c in EXTERNAL_COLUMNS if c not in frame.columns and c != "E_g"]
    if missing:
        raise ValueError(f"{path}: missing columns {missing} (required: case, id, E_f; optional: E_g, structure)")
    if "E_g" not in frame:
        frame["E_g"] = np.nan
    rejected = []
    keep = np.ones(len(frame), dtype=bool)
    for i, row in frame.iterrows():
        reason = None
        if row["case"] not in cases:
            reason = f"unknown case {row['case']!r}; config cases: {sorted(cases)}"
        elif not np.isfinite(pd.to_numeric(pd.Series([row["E_f"]]), errors="coerce")).all():
            reason = f"E_f is not a number: {row['E_f']!r}"
        elif pd.notna(row["E_g"]) and pd.isna(pd.to_numeric(row["E_g"], errors="coerce")):
            reason = f"E_g is not a number: {row['E_g']!r}"
        if reason:
            keep[i] = False
            rejected.append({"source": str(path), "id": str(row["id"]), "reason": reason})
    frame = frame[keep].copy()
    frame["E_f"] = pd.to_numeric(frame["E_f"])
    frame["E_g"] = pd.to_numeric(frame["E_g"], errors="coerce")
    if "structure" in frame:
        frame["structure"] = [
            str((path.parent / s).resolve()) if isinstance(s, str) and s.strip() else None for s in frame["structure"]
        ]
    return frame, rejected


def load_inputs(results: Path, cases: dict[str, Any], external: Path | None = None) -> ReportInputs:
    """Everything the report reads from a results folder; absent inputs are listed in ``absent``."""
    inputs = ReportInputs(cases=cases)
    inputs.latent = load_latent(results / "model")
    if inputs.latent is None:
        inputs.absent.append("model/latent.npz")
    if (results / "model" / "metrics.json").exists():
        inputs.model_metrics = read_json(results / "model" / "metrics.json")
    inputs.candidates, inputs.design_metrics, absent = load_design(results / "design", list(cases))
    inputs.absent += absent
    validation = results / "validation" / "validation.csv"
    if validation.exists():
        inputs.validation = pd.read_csv(validation, dtype={"candidate_id": str, "case": str})
        inputs.validation["tier"] = inputs.validation["tier"].str.lower()
    else:
        inputs.absent.append("validation/validation.csv")
    dataset = results / "data" / "dataset.parquet"
    if dataset.exists():
        inputs.dataset = pd.read_parquet(dataset)
    else:
        inputs.absent.append("data/dataset.parquet")
    if external is not None:
        inputs.external, inputs.rejected = load_external(external, cases)
    for item in inputs.absent:
        log.warning("report input absent: %s", item)
    return inputs
