"""Which candidates the DFT tier takes: where DFT tells something.

Per case, from the post-relaxation funnel (:mod:`icrdesign.validation.funnel`): the designed
strategies' candidates ranked S.U.N. and on target first, then S.U.N., then on target, then the other
relaxed ones; within a rank the strategies take turns and the smallest cells (cheapest) go first. Up to
``dft.max_candidates_per_case`` of them, plus ``dft.baseline_candidates_per_case`` relaxed candidates
of the random baseline, so that DFT has its own baseline. Candidates with more than ``dft.max_sites``
sites or an element of ``dft.exclude_elements`` are never sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import zip_longest
from typing import Any

import pandas as pd
from pymatgen.core import Composition

from icrdesign.cases import RANDOM_BASELINE
from icrdesign.validation.chunks import split_chunks

#: The ranks of relaxed designed candidates, best first (a candidate takes the first it meets).
DFT_RANKS: tuple[str, ...] = ("sun_on_target", "sun", "on_target", "relaxed")


def _sendable(funnel: pd.DataFrame, dft: Mapping[str, Any]) -> pd.DataFrame:
    chosen = funnel[funnel["relaxed"] & (funnel["nsites"] <= int(dft["max_sites"]))]
    excluded = set(dft.get("exclude_elements", []))
    if excluded and len(chosen):
        elements = chosen["formula"].map(lambda formula: {el.symbol for el in Composition(formula)})
        chosen = chosen[[not (found & excluded) for found in elements]]
    return chosen


def _rank(row: pd.Series) -> int:
    return next(position for position, column in enumerate(DFT_RANKS) if bool(row[column]))


def _interleaved(frame: pd.DataFrame) -> list[str]:
    """Ids rank by rank; within a rank the strategies take turns, each smallest cell first."""
    ordered: list[str] = []
    for _, rank in frame.groupby("rank", sort=True):
        queues = [group.sort_values(["nsites", "candidate_id"], kind="stable")["candidate_id"].tolist()
                  for _, group in rank.groupby("strategy", sort=True)]
        ordered += [candidate for turn in zip_longest(*queues) for candidate in turn if candidate is not None]
    return ordered


def dft_limit(config: Mapping[str, Any], case: str) -> int:
    """How many designed candidates of ``case`` go to DFT: its ``dft_candidates``, else ``dft.max_candidates_per_case``."""
    return int(config["sampling"]["cases"][case].get("dft_candidates", config["dft"]["max_candidates_per_case"]))


def select_for_dft(funnel: pd.DataFrame, dft: Mapping[str, Any], limit: int | None = None) -> list[str]:
    """The ids of one case's DFT candidates: up to LIMIT (default ``dft.max_candidates_per_case``)
    designed ones in rank order, then ``dft.baseline_candidates_per_case`` of the random baseline."""
    sendable = _sendable(funnel, dft)
    if sendable.empty:
        return []
    sendable = sendable.assign(rank=sendable.apply(_rank, axis=1))
    limit = int(dft["max_candidates_per_case"]) if limit is None else limit
    designed = _interleaved(sendable[~sendable["baseline"]])[:limit]
    baseline = _interleaved(sendable[sendable["strategy"] == RANDOM_BASELINE])[
        :int(dft["baseline_candidates_per_case"])]
    return designed + baseline


def dft_batches(funnel: pd.DataFrame, dft: Mapping[str, Any], limit: int | None = None) -> list[list[str]]:
    """The DFT jobs of one case: ``dft.candidates_per_job`` candidates each (None: one job)."""
    return split_chunks(select_for_dft(funnel, dft, limit), dft["candidates_per_job"])
