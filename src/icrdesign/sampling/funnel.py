"""Post-processing of latent proposals: property filter, decode, validity, uniqueness, novelty.

Every dropped proposal is recorded with its stage and reason; a strategy stops consuming proposals
once it holds ``n_candidates`` valid, unique and novel candidates.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from tqdm import tqdm

from icrdesign.artefacts.candidates import SURROGATE_PROPERTIES
from icrdesign.cases import DesignCase
from icrdesign.sampling.matching import CompositionIndex
from icrdesign.sampling.strategies import LatentProposals, TrainedModelLike
from icrdesign.sampling.validity import ValidityCriteria, composition_problem, structural_problem
from icrdesign.tolerances import SYMPREC

log = logging.getLogger(__name__)

#: Predicts each crystal's ``SURROGATE_PROPERTIES`` (one column each, NaN where it fails), as
#: :func:`icrdesign.surrogate.predict_properties` does.
Surrogate = Callable[[list[Structure]], pd.DataFrame]


@dataclass
class StrategyOutcome:
    """Candidates (one row per decoded structure), drops, and the decoded structures by candidate id."""

    name: str
    generated: int = 0
    novel: int = 0
    rows: list[dict] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    structures: dict[str, Structure] = field(default_factory=dict)

    def drop(self, candidate_id: str, seed: str, stage: str, reason: str, detail: str) -> None:
        self.rejected.append(
            {"id": candidate_id, "strategy": self.name, "seed": seed, "stage": stage, "reason": reason, "detail": detail}
        )


def spacegroup_symbol(structure: Structure) -> str:
    """The international symbol of ``structure`` at :data:`~icrdesign.tolerances.SYMPREC`, or "" if spglib fails."""
    try:
        return SpacegroupAnalyzer(structure, symprec=SYMPREC).get_space_group_symbol()
    except Exception:  # spglib gives up on some distorted cells; the symbol is informative only
        return ""


def process_strategy(
    name: str,
    proposals: LatentProposals,
    model: TrainedModelLike,
    case: DesignCase,
    criteria: ValidityCriteria,
    training_index: CompositionIndex,
    guided: bool,
    batch_size: int = 256,
) -> StrategyOutcome:
    """Run proposals through the funnel in order until ``case.n_candidates`` survivors (or none left).

    ``guided`` strategies drop proposals whose property-branch prediction misses the case before decoding.
    """
    outcome = StrategyOutcome(name)
    unique_index = training_index.like()
    n_total = len(proposals.z)
    progress = tqdm(total=case.n_candidates, desc=f"{case.name}/{name}", unit="cand", leave=False)
    for start in range(0, n_total, batch_size):
        if outcome.novel >= case.n_candidates:
            break
        batch = slice(start, min(start + batch_size, n_total))
        z = proposals.z[batch]
        predicted = model.predict_properties(z)
        meets = case.meets(predicted) if guided else np.ones(len(z), dtype=bool)
        decoded: dict[int, tuple[Structure | None, str | None]] = {}
        if meets.any():
            structures, reasons = model.icr.decode_with_reasons(model.decode(z[meets]))
            decoded = dict(zip(np.flatnonzero(meets).tolist(), zip(structures, reasons)))
        for offset in range(len(z)):
            if outcome.novel >= case.n_candidates:
                break
            outcome.generated += 1
            index = start + offset
            candidate_id = f"{case.name}-{name}-{index + 1:05d}"
            seed = str(proposals.seed_ids[index])
            if not meets[offset]:
                detail = ", ".join(f"{p}={predicted[p][offset]:.3g}" for p in case.windows)
                outcome.drop(candidate_id, seed, "property_filter", "vae_property_miss", detail)
                continue
            structure, reason = decoded[offset]
            if structure is None:
                outcome.drop(candidate_id, seed, "decode", "decode_failed", reason or "")
                continue
            row = _candidate_row(candidate_id, case, name, guided, seed, proposals.sigma[index], structure,
                                 {p: predicted[p][offset] for p in predicted})
            outcome.rows.append(row)
            outcome.structures[candidate_id] = structure
            _judge(row, structure, outcome, criteria, unique_index, training_index)
            progress.update(int(row["novel"]))
    progress.close()
    return outcome


def _candidate_row(candidate_id: str, case: DesignCase, strategy: str, guided: bool, seed: str, sigma: float,
                   structure: Structure, predicted: dict[str, float]) -> dict:
    row = {"id": candidate_id, "case": case.name, "strategy": strategy, "baseline": not guided, "seed": seed,
           "sigma": None if math.isnan(sigma) else float(sigma),
           "formula": structure.composition.reduced_formula, "spacegroup": "", "nsites": len(structure)}
    row.update({f"vae_{prop}": float(value) for prop, value in predicted.items()})
    row.update(valid_structure=False, valid_composition=False, valid=False, unique=False, novel=False,
               surrogate_success=False, cif="")
    return row


def _judge(row: dict, structure: Structure, outcome: StrategyOutcome, criteria: ValidityCriteria,
           unique_index: CompositionIndex, training_index: CompositionIndex) -> None:
    """Fill the validity / uniqueness / novelty flags of ``row``; record the first failing check."""
    candidate_id, seed = row["id"], row["seed"]
    try:
        structural = structural_problem(structure, criteria)
        compositional = composition_problem(structure.composition)
    except Exception as error:  # a pathological decoded cell must not stop the run
        outcome.drop(candidate_id, seed, "validity", "validity_error", f"{type(error).__name__}: {error}")
        return
    row["valid_structure"] = structural is None
    row["valid_composition"] = compositional is None
    problem = structural or compositional
    if problem is not None:
        outcome.drop(candidate_id, seed, "validity", *problem)
        return
    row["valid"] = True
    row["spacegroup"] = spacegroup_symbol(structure)
    duplicate_of = unique_index.find_match(structure)
    if duplicate_of is not None:
        outcome.drop(candidate_id, seed, "uniqueness", "duplicate", f"matches candidate {duplicate_of}")
        return
    row["unique"] = True
    unique_index.add(candidate_id, structure)
    known_as = training_index.find_match(structure)
    if known_as is not None:
        outcome.drop(candidate_id, seed, "novelty", "in_training_set", f"matches training crystal {known_as}")
        return
    row["novel"] = True
    outcome.novel += 1


def apply_surrogate(candidates: pd.DataFrame, structures: dict[str, Structure], case: DesignCase,
                    surrogate: Surrogate) -> pd.DataFrame:
    """Predict E_f / E_g of the valid, unique, novel candidates and flag those meeting the case."""
    candidates = candidates.copy()
    checked = candidates.index[candidates["novel"].astype(bool)]
    if len(checked) == 0:
        return candidates
    predictions = surrogate([structures[cid] for cid in candidates.loc[checked, "id"]])
    predicted = {prop: predictions[prop].to_numpy(dtype=float) for prop in SURROGATE_PROPERTIES}
    for prop, values in predicted.items():
        candidates.loc[checked, f"surrogate_{prop}"] = values
    if any(prop in case.windows for prop in SURROGATE_PROPERTIES):
        candidates.loc[checked, "surrogate_success"] = case.meets(predicted)
    else:
        log.warning("case %s constrains no surrogate property %s; no surrogate successes", case.name,
                    SURROGATE_PROPERTIES)
    return candidates


def drop_counts(rejected: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Per strategy, the number of proposals dropped for each reason."""
    counts: dict[str, Counter] = {}
    for strategy, reason in zip(rejected.get("strategy", []), rejected.get("reason", [])):
        counts.setdefault(strategy, Counter())[reason] += 1
    return {strategy: dict(sorted(counter.items())) for strategy, counter in counts.items()}
