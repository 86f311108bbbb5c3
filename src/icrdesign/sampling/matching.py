"""Structure identity for uniqueness and novelty: StructureMatcher behind a reduced-formula index.

Two crystals can only match if their reduced formulas agree, so each query is compared with the
indexed structures of its own formula only; building the index and querying it grow linearly with
the number of indexed crystals instead of comparing every pair.
"""

from __future__ import annotations

import json
from collections import defaultdict
from functools import lru_cache

import pandas as pd
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition, Structure


@lru_cache(maxsize=None)
def _reduced_formula(formula: str) -> str:
    return Composition(formula).reduced_formula


class CompositionIndex:
    """Structures grouped by reduced formula; ``find_match`` returns the id of an equivalent entry.

    Entries may be given as JSON strings (the dataset table's ``structure`` column); they are parsed
    only when a query of the same formula first needs them.
    """

    def __init__(self, matcher: StructureMatcher | None = None) -> None:
        self.matcher = matcher or StructureMatcher()
        self._entries: dict[str, list[tuple[str, Structure | str]]] = defaultdict(list)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @classmethod
    def from_table(cls, table: pd.DataFrame, matcher: StructureMatcher | None = None) -> CompositionIndex:
        """Index a dataset table (columns material_id, formula, structure as JSON)."""
        index = cls(matcher)
        for material_id, formula, structure in zip(table["material_id"], table["formula"], table["structure"]):
            index._entries[_reduced_formula(formula)].append((str(material_id), structure))
            index._size += 1
        return index

    def add(self, identifier: str, structure: Structure) -> None:
        self._entries[structure.composition.reduced_formula].append((identifier, structure))
        self._size += 1

    def find_match(self, structure: Structure) -> str | None:
        """Identifier of the first indexed structure equivalent to ``structure``, or None."""
        bucket = self._entries.get(structure.composition.reduced_formula, [])
        for position, (identifier, entry) in enumerate(bucket):
            if isinstance(entry, str):
                entry = Structure.from_dict(json.loads(entry))
                bucket[position] = (identifier, entry)
            if self.matcher.fit(structure, entry):
                return identifier
        return None
