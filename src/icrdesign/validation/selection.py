"""Which sampled candidates each validation tier takes."""

from __future__ import annotations

from typing import Any

import pandas as pd
from pymatgen.core import Composition


def _truthy(column: pd.Series) -> pd.Series:
    return column.astype(str).str.lower().isin({"true", "1", "1.0"})


def select_for_relaxation(candidates: pd.DataFrame, max_candidates: int | None = None) -> list[str]:
    """Ids of the valid, unique, novel candidates with a CIF, baseline strategies excluded.

    The random baselines (``baseline`` column: prior draws and perturbed random training crystals)
    measure chance; they are not design output and are not validated. With ``max_candidates`` set,
    surrogate-confirmed candidates go first, then the smallest cells (cheapest to validate).
    """
    if candidates.empty:
        return []
    keep = (_truthy(candidates["valid"]) & _truthy(candidates["unique"]) & _truthy(candidates["novel"])
            & ~_truthy(candidates["baseline"])
            & candidates["cif"].fillna("").astype(str).str.len().gt(0))
    chosen = candidates.loc[keep]
    if max_candidates is not None and len(chosen) > max_candidates:
        ranked = chosen.assign(_confirmed=_truthy(chosen["surrogate_success"]), _id=chosen["id"].astype(str))
        ranked = ranked.sort_values(["_confirmed", "nsites", "_id"], ascending=[False, True, True], kind="stable")
        chosen = chosen.loc[sorted(ranked.index[:max_candidates])]
    return chosen["id"].astype(str).tolist()


def select_for_dft(candidates: pd.DataFrame, dft_settings: dict[str, Any], max_relaxed: int | None = None) -> list[str]:
    """The ``max_candidates_per_case`` smallest relaxation candidates with at most ``max_sites`` sites
    and none of ``exclude_elements``."""
    chosen = candidates[candidates["id"].astype(str).isin(select_for_relaxation(candidates, max_relaxed))]
    chosen = chosen[chosen["nsites"].astype(int) <= int(dft_settings["max_sites"])]
    excluded = set(dft_settings.get("exclude_elements", []))
    if excluded:
        elements = chosen["formula"].astype(str).map(lambda formula: {el.symbol for el in Composition(formula)})
        chosen = chosen[[not (found & excluded) for found in elements]]
    chosen = chosen.sort_values(["nsites", "id"], kind="stable")
    return chosen["id"].astype(str).head(int(dft_settings["max_candidates_per_case"])).tolist()
