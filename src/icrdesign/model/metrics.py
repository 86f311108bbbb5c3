"""Reconstruction and property metrics on held-out crystals.

Layout metrics read the reconstructed representation block by block (canonical cell and site
order); the match rate decodes the reconstruction and compares it with the original structure
under StructureMatcher at the tolerances generative-model papers use on MP-20.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure
from tqdm.auto import tqdm

from icrdesign.representation import ICR
from icrdesign.tolerances import RECONSTRUCTION_MATCHER


def reconstruction_metrics(
    icr: ICR, true_raw: np.ndarray, reconstructed_raw: np.ndarray
) -> tuple[dict[str, float | None], list[float | None]]:
    """Layout metrics from raw (unscaled) arrays: element columns by argmax over the vocabulary rows,
    sites by occupancy, lattice parameters and coordinates read directly from their rows.

    Returns the summary and the element accuracy of each element column (None for a column no
    crystal uses). MAPEs are in percent; coordinate errors are periodic (0.99 and 0.01 are 0.02 apart).
    """
    n_columns = icr.max_elements
    true_elements = icr.block(true_raw, "elements")[:, :, :n_columns]
    real_column = true_elements.max(axis=1) > 0.5  # (N, E)
    element_right = true_elements.argmax(axis=1) == icr.block(reconstructed_raw, "elements")[:, :, :n_columns].argmax(
        axis=1
    )
    per_column = [float(element_right[real_column[:, j], j].mean()) if real_column[:, j].any() else None
                  for j in range(n_columns)]

    true_sites = icr.block(true_raw, "occupancy")[:, :, :n_columns].max(axis=2) >= 0.5  # (N, S)
    guess_sites = icr.block(reconstructed_raw, "occupancy")[:, :, :n_columns].max(axis=2) >= icr.occupancy_threshold
    true_lattice = icr.block(true_raw, "lattice")[:, :, :3].astype(np.float64)
    guess_lattice = icr.block(reconstructed_raw, "lattice")[:, :, :3].astype(np.float64)
    lattice_ape = np.abs(guess_lattice - true_lattice) / np.abs(true_lattice) * 100.0
    delta = (icr.block(reconstructed_raw, "coords") - icr.block(true_raw, "coords"))[:, :, :3].astype(np.float64)
    coord_error = np.abs(delta - np.round(delta))
    summary = {
        "element_accuracy": float(element_right[real_column].mean()) if real_column.any() else None,
        "site_count_accuracy": float((true_sites.sum(axis=1) == guess_sites.sum(axis=1)).mean()),
        "lattice_abc_mape": float(lattice_ape[:, 0].mean()),
        "angle_mape": float(lattice_ape[:, 1].mean()),
        "coord_mae": float(coord_error[true_sites].mean()) if true_sites.any() else None,
    }
    return summary, per_column


def match_table(
    material_ids: list[str], originals: list[Structure], reconstructed: list[Structure | None]
) -> pd.DataFrame:
    """Per crystal: whether the decoded reconstruction matches the original, and the RMS distance."""
    matcher = StructureMatcher(**RECONSTRUCTION_MATCHER)
    rows = []
    pairs = list(zip(material_ids, originals, reconstructed, strict=True))
    for material_id, original, guess in tqdm(pairs, desc="structure matching", unit="crystal"):
        rms = matcher.get_rms_dist(original, guess) if guess is not None else None
        rows.append({
            "material_id": material_id,
            "decoded": guess is not None,
            "matched": rms is not None,
            "rms": float(rms[0]) if rms is not None else np.nan,
        })
    return pd.DataFrame(rows, columns=["material_id", "decoded", "matched", "rms"])


def match_summary(table: pd.DataFrame) -> dict[str, float | None]:
    matched = table["rms"].dropna()
    return {
        "match_rate": float(table["matched"].mean()) if len(table) else None,
        "match_rmse": float(matched.mean()) if len(matched) else None,
    }


def property_metrics(true: dict[str, np.ndarray], predicted: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """MAE and R^2 per property (physical units), over crystals with a known value."""
    mae, r2 = {}, {}
    for name, values in true.items():
        known = np.isfinite(values)
        y, p = values[known], predicted[name][known]
        mae[name] = float(np.mean(np.abs(y - p))) if len(y) else float("nan")
        total = float(np.sum((y - y.mean()) ** 2)) if len(y) else 0.0
        r2[name] = 1.0 - float(np.sum((y - p) ** 2)) / total if total > 0 else float("nan")
    return {"property_mae": mae, "property_r2": r2}
