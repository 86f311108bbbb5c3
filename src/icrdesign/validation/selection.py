"""Which candidates the DFT tier takes: where DFT tells something.

Per case, from the post-relaxation funnel (:mod:`icrdesign.validation.funnel`): the designed
strategies' candidates ranked S.U.N. and on target first, then S.U.N., then on target, then the other
relaxed ones; within a rank the strategies take turns and the cheapest calculations go first
(:func:`dft_cost`: the cell's sites, doubled for a spin-polarised start). Up to
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
from icrdesign.validation.mp_scale import mp_magmoms

#: The ranks of relaxed designed candidates, best first (a candidate takes the first it meets).
DFT_RANKS: tuple[str, ...] = ("sun_on_target", "sun", "on_target", "relaxed")


def dft_cost(formula: str, nsites: int) -> int:
    """A relative cost of one candidate's DFT static: its sites, twice over when it holds an element MP
    starts with a magnetic moment (:func:`~icrdesign.validation.mp_scale.mp_magmoms`), whose
    spin-polarised calculation about doubles the work (a demo run: 4-6-site Fe and Mn compounds took
    147-184 s, non-magnetic 4-5-site ones 22-42 s)."""
    moments = mp_magmoms()
    magnetic = any(moments.get(element.symbol, 0.0) for element in Composition(formula).elements)
    return int(nsites) * (2 if magnetic else 1)


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
    """Ids rank by rank; within a rank the strategies take turns, each turn and each strategy's queue
    cheapest calculation first."""
    ordered: list[str] = []
    frame = frame.assign(cost=[dft_cost(formula, nsites) for formula, nsites in zip(frame["formula"], frame["nsites"])])
    for _, rank in frame.groupby("rank", sort=True):
        queues = [group.sort_values(["cost", "nsites", "candidate_id"], kind="stable")[["cost", "candidate_id"]]
                  .itertuples(index=False, name=None) for _, group in rank.groupby("strategy", sort=True)]
        # Each turn takes one candidate of every strategy, cheapest first.
        ordered += [candidate for turn in zip_longest(*queues) for _, candidate in sorted(filter(None, turn))]
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
