"""Structure identity for uniqueness and novelty: StructureMatcher behind a reduced-formula index.

Two crystals can only match if their reduced formulas agree, and (as the matcher compares primitive
cells) only if their primitive cells hold the same number of sites. Each query is therefore compared
with the indexed structures of its own formula only, and fully matched only against those of equal
primitive size; building the index and querying it grow linearly with the number of indexed crystals
instead of comparing every pair. Primitive cells are computed once per structure, not once per
comparison.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition, Structure

from icrdesign.tolerances import NOVELTY_MATCHER


@lru_cache(maxsize=None)
def _reduced_formula(formula: str) -> str:
    return Composition(formula).reduced_formula


@dataclass
class _Entry:
    identifier: str
    source: Structure | str  # a Structure, or its JSON until a query of the same formula needs it
    primitive: Structure | None = None

    def primitive_cell(self) -> Structure:
        if self.primitive is None:
            structure = self.source if isinstance(self.source, Structure) else Structure.from_dict(json.loads(self.source))
            self.primitive = structure.get_primitive_structure()
        return self.primitive


class CompositionIndex:
    """Structures grouped by reduced formula; ``find_match`` returns the id of an equivalent entry.

    Matching is pymatgen's StructureMatcher (:data:`~icrdesign.tolerances.NOVELTY_MATCHER` by default)
    applied to primitive cells, which is what ``StructureMatcher()`` does itself on every call.
    """

    def __init__(self, ltol: float = NOVELTY_MATCHER["ltol"], stol: float = NOVELTY_MATCHER["stol"],
                 angle_tol: float = NOVELTY_MATCHER["angle_tol"]) -> None:
        self.matcher = StructureMatcher(ltol=ltol, stol=stol, angle_tol=angle_tol, primitive_cell=False)
        self._entries: dict[str, list[_Entry]] = defaultdict(list)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @classmethod
    def from_table(cls, table: pd.DataFrame) -> CompositionIndex:
        """Index a dataset table (columns material_id, formula, structure as JSON)."""
        index = cls()
        for material_id, formula, structure in zip(table["material_id"], table["formula"], table["structure"]):
            index._entries[_reduced_formula(formula)].append(_Entry(str(material_id), structure))
            index._size += 1
        return index

    def like(self) -> CompositionIndex:
        """An empty index with the same matcher tolerances."""
        return CompositionIndex(self.matcher.ltol, self.matcher.stol, self.matcher.angle_tol)

    def add(self, identifier: str, structure: Structure) -> None:
        self._entries[structure.composition.reduced_formula].append(_Entry(identifier, structure))
        self._size += 1

    def find_match(self, structure: Structure) -> str | None:
        """Identifier of the first indexed structure equivalent to ``structure``, or None."""
        bucket = self._entries.get(structure.composition.reduced_formula)
        if not bucket:
            return None
        query = structure.get_primitive_structure()
        for entry in bucket:
            candidate = entry.primitive_cell()
            if len(candidate) == len(query) and self.matcher.fit(query, candidate):
                return entry.identifier
        return None
