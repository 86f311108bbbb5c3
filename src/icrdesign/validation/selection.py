"""Which sampled candidates each validation tier takes.

The tables are candidates.csv as :func:`icrdesign.artefacts.candidates.read_candidates` reads it:
flags as booleans, ``cif`` empty where a candidate has no CIF.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
from pymatgen.core import Composition

from icrdesign.artefacts.validation import DFT, MLIP


def select_for_relaxation(candidates: pd.DataFrame, max_candidates: int | None = None) -> list[str]:
    """Ids of the valid, unique, novel candidates with a CIF, baseline strategies excluded.

    The random baselines (``baseline`` column: prior draws and perturbed random training crystals)
    measure chance; they are not design output and are not validated. With ``max_candidates`` set,
    surrogate-confirmed candidates go first, then the smallest cells (cheapest to validate).
    """
    if candidates.empty:
        return []
    keep = (candidates["valid"] & candidates["unique"] & candidates["novel"] & ~candidates["baseline"]
            & (candidates["cif"] != ""))
    chosen = candidates.loc[keep]
    if max_candidates is not None and len(chosen) > max_candidates:
        ranked = chosen.sort_values(["surrogate_success", "nsites", "id"], ascending=[False, True, True], kind="stable")
        chosen = chosen.loc[sorted(ranked.index[:max_candidates])]
    return chosen["id"].tolist()


def select_for_dft(candidates: pd.DataFrame, dft_settings: Mapping[str, Any],
                   max_relaxed: int | None = None) -> list[str]:
    """The ``max_candidates_per_case`` smallest relaxation candidates with at most ``max_sites`` sites
    and none of ``exclude_elements``."""
    chosen = candidates[candidates["id"].isin(select_for_relaxation(candidates, max_relaxed))]
    chosen = chosen[chosen["nsites"] <= int(dft_settings["max_sites"])]
    excluded = set(dft_settings.get("exclude_elements", []))
    if excluded:
        elements = chosen["formula"].map(lambda formula: {el.symbol for el in Composition(formula)})
        chosen = chosen[[not (found & excluded) for found in elements]]
    chosen = chosen.sort_values(["nsites", "id"], kind="stable")
    return chosen["id"].head(int(dft_settings["max_candidates_per_case"])).tolist()


def select_for_tier(candidates: pd.DataFrame, config: Mapping[str, Any], tier: str) -> list[str]:
    """The ids one tier (``mlip`` or ``dft``) validates, with the config's caps and filters."""
    max_relaxed = config["relaxation"]["max_candidates_per_case"]
    if tier == MLIP:
        return select_for_relaxation(candidates, max_relaxed)
    if tier == DFT:
        return select_for_dft(candidates, config["dft"], max_relaxed)
    raise ValueError(f"unknown validation tier {tier!r}")
