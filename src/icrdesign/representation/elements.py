"""Element vocabulary and the project's elemental descriptor table (built from pymatgen data).

Descriptors are physical values in their natural units (the per-row scaler normalises them);
values pymatgen lacks for an element are filled with the mean of that descriptor over Z <= 94.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
from pymatgen.core.periodic_table import Element

MAX_Z = 94  # Pu: the heaviest element the representation accepts
ALL_SYMBOLS: tuple[str, ...] = tuple(Element.from_Z(z).symbol for z in range(1, MAX_Z + 1))
BLOCK_INDEX = {"s": 0.0, "p": 1.0, "d": 2.0, "f": 3.0}

DESCRIPTOR_NAMES: tuple[str, ...] = (
    "atomic_number",
    "atomic_mass",
    "group",
    "period",
    "block",
    "mendeleev_number",
    "electronegativity",
    "atomic_radius",
    "average_ionic_radius",
    "van_der_waals_radius",
    "valence_electrons",
    "first_ionization_energy",
    "electron_affinity",
)


def _valence_electrons(element: Element) -> float:
    """Outer-shell s + p electrons plus those in a partly filled (n-1)d or (n-2)f subshell."""
    shells = element.full_electronic_structure
    outer = max(n for n, _, _ in shells)
    count = 0
    for n, orbital, electrons in shells:
        partly_filled_d = orbital == "d" and n == outer - 1 and electrons < 10
        partly_filled_f = orbital == "f" and n == outer - 2 and electrons < 14
        if n == outer or partly_filled_d or partly_filled_f:
            count += electrons
    return float(count)


def _raw_descriptors(element: Element) -> list[float]:
    def number(value: object) -> float:
        try:
            result = float(value)  # pymatgen returns FloatWithUnit, None or NaN for missing data
        except (TypeError, ValueError):
            return float("nan")
        return result if np.isfinite(result) else float("nan")

    ionic = number(element.average_ionic_radius)
    return [
        float(element.Z),
        number(element.atomic_mass),
        number(element.group),
        number(element.row),
        BLOCK_INDEX[element.block],
        number(element.mendeleev_no),
        number(element.X),
        number(element.atomic_radius),
        ionic if ionic > 0 else float("nan"),  # pymatgen reports 0 when no ionic radius is known
        number(element.van_der_waals_radius),
        _valence_electrons(element),
        number(element.ionization_energy),
        number(element.electron_affinity),
    ]


@functools.cache
def descriptor_table() -> np.ndarray:
    """(n_descriptors, MAX_Z + 1) float64 array; column Z describes element Z, column 0 is zero."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen warns for every missing value, which we fill below
        rows = np.array([_raw_descriptors(Element.from_Z(z)) for z in range(1, MAX_Z + 1)]).T
    fill = np.nanmean(rows, axis=1, keepdims=True)
    rows = np.where(np.isnan(rows), fill, rows)
    table = np.zeros((len(DESCRIPTOR_NAMES), MAX_Z + 1))
    table[:, 1:] = rows
    table.setflags(write=False)
    return table


def normalize_vocabulary(elements: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Vocabulary sorted by atomic number; None means every element up to Pu."""
    if elements is None:
        return ALL_SYMBOLS
    unknown = sorted(set(elements) - set(ALL_SYMBOLS))
    if unknown:
        raise ValueError(f"elements outside H..Pu cannot be in the vocabulary: {unknown}")
    if len(set(elements)) != len(elements):
        raise ValueError("duplicate symbols in the element vocabulary")
    return tuple(sorted(elements, key=lambda symbol: Element(symbol).Z))
