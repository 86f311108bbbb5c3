"""What survives relaxation: MatterGen's post-relaxation protocol on one design case's candidates.

Every valid candidate is relaxed with the potential (:mod:`icrdesign.validation.chunks`); the relaxed
structures are then judged, in this order, per strategy (the random baseline included):

relaxed -> unique among the relaxed -> novel (the relaxed structure matches no training crystal, so a
candidate that relaxes back into a training crystal is not novel) -> stable (E_hull <= 0.1 eV/atom
against the reference hull, :mod:`icrdesign.stability`) -> S.U.N. -> S.U.N. and on target (the
potential's E_f inside the case's formation-energy window).

Each candidate that leaves the funnel is counted by its reason (:data:`DROP_REASONS`). Single-element
candidates (the random baseline decodes N2, Cl2, Li, ...) are counted apart: they cannot meet a
formation-energy window and must not pad a strategy's rates. Stability is also reported at the
strict threshold E_hull <= 0.0. The RMSD between the decoded and the relaxed structure (Å) measures
how far relaxation moved a candidate (MatterGen's RMSD).

Identity (uniqueness, novelty) uses pymatgen's StructureMatcher defaults
(:data:`icrdesign.tolerances.NOVELTY_MATCHER`, as MatterGen); the RMSD uses
:data:`icrdesign.tolerances.RMSD_MATCHER`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition, Structure
from tqdm import tqdm

from icrdesign.artefacts.tables import read_table, write_table
from icrdesign.artefacts.validation import STATUS_OK
from icrdesign.cases import RANDOM_BASELINE, Window, wilson_interval
from icrdesign.io import read_json, write_json
from icrdesign.sampling.matching import CompositionIndex
from icrdesign.stability import STABLE_E_HULL, STRICT_E_HULL, ReferenceHull
from icrdesign.tolerances import RMSD_MATCHER

FUNNEL_TABLE: Final[str] = "funnel.csv"
#: The MLIP status of a valid candidate without a record (its chunk has not been run).
STATUS_MISSING: Final[str] = "missing"
FUNNEL_SUMMARY: Final[str] = "funnel.json"
#: The folder beside funnel.csv holding each relaxed candidate's CIF.
RELAXED_FOLDER: Final[str] = "relaxed"

#: Why a candidate leaves the funnel, in the funnel's order ('' for a S.U.N. candidate on target).
DROP_REASONS: Final[tuple[str, ...]] = ("single_element", "not_relaxed", "duplicate", "not_novel", "unstable",
                                        "off_target")

#: The columns of funnel.csv, one row per valid candidate.
FUNNEL_COLUMNS: Final[tuple[str, ...]] = (
    "candidate_id", "strategy", "baseline", "formula", "nsites", "single_element", "mlip_status", "relaxed",
    "relaxed_cif", "formation_energy_per_atom", "e_hull", "unique", "novel", "stable", "stable_strict", "sun",
    "on_target", "sun_on_target", "rmsd_angstrom", "drop_reason",
)
FUNNEL_BOOLEANS: Final[tuple[str, ...]] = ("baseline", "single_element", "relaxed", "unique", "novel", "stable",
                                           "stable_strict", "sun", "on_target", "sun_on_target")
FUNNEL_NUMBERS: Final[dict[str, str]] = {"nsites": "int64", "formation_energy_per_atom": "float64",
                                         "e_hull": "float64", "rmsd_angstrom": "float64"}

#: The keys of a strategy's ``sun`` block (summary.json and funnel.json), in this order.
SUN_KEYS: Final[tuple[str, ...]] = (
    "n_valid", "n_single_element", "n_relaxed", "n_unique", "n_novel", "n_stable", "n_stable_strict", "n_sun",
    "n_sun_on_target", "rate_sun", "rate_sun_on_target", "ci95_sun_on_target", "rmsd_median_angstrom",
    "n_rmsd_unmatched", "drops",
)


def rmsd_angstrom(decoded: Structure, relaxed: Structure) -> float:
    """RMS displacement (Å) from the decoded to the relaxed structure; NaN when they do not match.

    StructureMatcher's ``get_rms_dist`` normalises by (V/N)^(1/3) of the volume-averaged lattice (the
    geometric mean of the two structures' volumes per site); the result is multiplied back.
    """
    matcher = StructureMatcher(**RMSD_MATCHER)
    found = matcher.get_rms_dist(decoded, relaxed)
    if found is None:
        return float("nan")
    volume_per_site = np.sqrt(decoded.volume / len(decoded) * relaxed.volume / len(relaxed))
    return float(found[0] * volume_per_site ** (1 / 3))


def _unique_flags(structures: Sequence[Structure | None], eligible: Sequence[bool]) -> list[bool]:
    """True for the first of each group of equivalent structures among the eligible ones."""
    seen = CompositionIndex()
    flags = []
    for position, (structure, ok) in enumerate(zip(structures, eligible, strict=True)):
        if not ok or structure is None:
            flags.append(False)
            continue
        flags.append(seen.find_match(structure) is None)
        if flags[-1]:
            seen.add(str(position), structure)
    return flags


def judge_case(candidates: pd.DataFrame, records: pd.DataFrame, relaxed: Mapping[str, Structure],
               decoded: Mapping[str, Structure], training: CompositionIndex, hull: ReferenceHull,
               formation_window: Window | None, relaxed_cifs: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The funnel table of one case.

    Args:
        candidates: candidates.csv of the case (``read_candidates``); its valid rows are judged.
        records: the MLIP records of the case (one row per candidate: candidate_id, status,
            formation_energy_per_atom).
        relaxed: the last structure of each relaxed candidate, by id.
        decoded: the decoded structure of each candidate, by id (for the RMSD).
        training: the training crystals, indexed for novelty.
        hull: the reference hull.
        formation_window: the case's formation-energy window (None: every E_f is on target).
        relaxed_cifs: each relaxed candidate's CIF, as the table records it (relative to its folder).

    Returns:
        One row per valid candidate with :data:`FUNNEL_COLUMNS`.
    """
    valid = candidates[candidates["valid"]].reset_index(drop=True)
    # A record of a failed relaxation holds null energies: read them as NaN.
    by_id = (records.assign(formation_energy_per_atom=pd.to_numeric(records["formation_energy_per_atom"],
                                                                    errors="coerce")).set_index("candidate_id")
             if len(records) else pd.DataFrame(columns=["status"]))
    rows = []
    for row in tqdm(valid.itertuples(index=False), total=len(valid), desc="funnel", unit="candidate"):
        candidate = row.id
        record = by_id.loc[candidate] if candidate in by_id.index else None
        status = str(record["status"]) if record is not None else STATUS_MISSING
        structure = relaxed.get(candidate)
        energy = float(record["formation_energy_per_atom"]) if record is not None else float("nan")
        single = len(Composition(row.formula).elements) == 1
        is_relaxed = status == STATUS_OK and structure is not None and np.isfinite(energy)
        rows.append({
            "candidate_id": candidate, "strategy": row.strategy, "baseline": bool(row.baseline),
            "formula": structure.composition.reduced_formula if structure is not None else row.formula,
            "nsites": len(structure) if structure is not None else int(row.nsites), "single_element": single,
            "mlip_status": status, "relaxed": is_relaxed and not single,
            "relaxed_cif": (relaxed_cifs or {}).get(candidate, "") if status == STATUS_OK else "",
            "formation_energy_per_atom": energy,
            "rmsd_angstrom": (rmsd_angstrom(decoded[candidate], structure)
                              if structure is not None and candidate in decoded and status == STATUS_OK else np.nan),
        })
    if not rows:
        return pd.DataFrame({column: pd.Series(dtype=object) for column in FUNNEL_COLUMNS})
    table = pd.DataFrame(rows)
    structures = [relaxed.get(candidate) for candidate in table["candidate_id"]]
    table["unique"] = False
    for _, group in table.groupby("strategy", sort=False):
        flags = _unique_flags([structures[i] for i in group.index], group["relaxed"].tolist())
        table.loc[group.index, "unique"] = flags
    table["novel"] = [bool(unique) and training.find_match(structures[i]) is None
                      for i, unique in zip(table.index, table["unique"], strict=True)]
    table["e_hull"] = [hull.e_above_hull(structures[i].composition, energy) if relaxed_ok else np.nan
                       for i, relaxed_ok, energy in zip(table.index, table["relaxed"],
                                                        table["formation_energy_per_atom"], strict=True)]
    table["stable"] = table["novel"] & (table["e_hull"] <= STABLE_E_HULL)
    table["stable_strict"] = table["novel"] & (table["e_hull"] <= STRICT_E_HULL)
    table["sun"] = table["stable"]
    table["on_target"] = table["relaxed"] & (
        formation_window.contains(table["formation_energy_per_atom"]) if formation_window is not None else True)
    table["sun_on_target"] = table["sun"] & table["on_target"]
    table["drop_reason"] = [_drop_reason(row) for row in table.itertuples(index=False)]
    return table[list(FUNNEL_COLUMNS)]


def _drop_reason(row: Any) -> str:
    if row.single_element:
        return "single_element"
    for passed, reason in ((row.relaxed, "not_relaxed"), (row.unique, "duplicate"), (row.novel, "not_novel"),
                           (row.stable, "unstable"), (row.sun_on_target, "off_target")):
        if not passed:
            return reason
    return ""


def _count(table: pd.DataFrame, column: str) -> int:
    return int(table[column].astype(bool).sum())


def sun_block(table: pd.DataFrame) -> dict[str, Any]:
    """A strategy's funnel counts (:data:`SUN_KEYS`): rates over its valid candidates that are not single elements."""
    n_valid = int((~table["single_element"].astype(bool)).sum())
    n_sun, n_on_target = _count(table, "sun"), _count(table, "sun_on_target")
    rmsd = table["rmsd_angstrom"][table["relaxed"].astype(bool)]
    low, high = wilson_interval(n_on_target, n_valid) if n_valid else (float("nan"), float("nan"))
    drops = table["drop_reason"][table["drop_reason"] != ""].value_counts()
    return {
        "n_valid": n_valid, "n_single_element": _count(table, "single_element"), "n_relaxed": _count(table, "relaxed"),
        "n_unique": _count(table, "unique"), "n_novel": _count(table, "novel"), "n_stable": _count(table, "stable"),
        "n_stable_strict": _count(table, "stable_strict"), "n_sun": n_sun, "n_sun_on_target": n_on_target,
        "rate_sun": n_sun / n_valid if n_valid else None,
        "rate_sun_on_target": n_on_target / n_valid if n_valid else None,
        "ci95_sun_on_target": [low, high] if n_valid else None,
        "rmsd_median_angstrom": float(rmsd.median()) if rmsd.notna().any() else None,
        "n_rmsd_unmatched": int(rmsd.isna().sum()),
        "drops": {reason: int(drops.get(reason, 0)) for reason in DROP_REASONS},
    }


def funnel_summary(table: pd.DataFrame, hull_source: str) -> dict[str, Any]:
    """Per strategy (in table order) the :func:`sun_block`, the hull's source and the random baseline's name."""
    strategies = list(dict.fromkeys(table["strategy"])) if len(table) else []
    return {"hull": hull_source, "baseline": RANDOM_BASELINE, "stable_e_hull": STABLE_E_HULL,
            "strict_e_hull": STRICT_E_HULL,
            "strategies": {name: sun_block(table[table["strategy"] == name]) for name in strategies}}


def write_funnel(folder: str | os.PathLike[str], table: pd.DataFrame, summary: Mapping[str, Any]) -> None:
    """funnel.csv, then funnel.json, atomically."""
    write_table(Path(folder) / FUNNEL_TABLE, table, FUNNEL_COLUMNS)
    write_json(Path(folder) / FUNNEL_SUMMARY, dict(summary))


#: The derived column :func:`read_funnel` adds: the absolute path of ``relaxed_cif`` (never written).
RELAXED_CIF_PATH: Final[str] = "relaxed_cif_path"


def read_funnel(path: str | os.PathLike[str]) -> pd.DataFrame:
    """funnel.csv, typed: flags as bool, quantities as float; adds :data:`RELAXED_CIF_PATH`, the relaxed
    CIF resolved against the table's folder ("" where the candidate did not relax)."""
    table = read_table(path, FUNNEL_COLUMNS, FUNNEL_NUMBERS, booleans=FUNNEL_BOOLEANS)
    for column in ("candidate_id", "strategy", "formula", "mlip_status", "relaxed_cif", "drop_reason"):
        table[column] = table[column].astype("string").fillna("").astype(str)
    folder = Path(path).resolve().parent
    table[RELAXED_CIF_PATH] = [str(folder / cif) if cif else "" for cif in table["relaxed_cif"]]
    return table


def read_funnel_summary(path: str | os.PathLike[str]) -> dict[str, Any]:
    return read_json(path)
