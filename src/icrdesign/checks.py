"""Physical plausibility of a property value, in one place for every source that reads properties.

The dataset sources and the report's external results both refuse a value that is missing,
non-numeric, non-finite or outside the range a real crystal can have, with the reason this
module words, so a refused row reads the same wherever it was refused.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

#: The closed range of plausible values of each property (eV/atom for the formation energy, eV
#: for the band gap). No known compound lies beyond ±10 eV/atom of its elements (the most stable
#: oxides and fluorides sit near -4.5), so a value outside is a unit or parsing error; a band gap
#: is never negative.
PROPERTY_RANGES: dict[str, tuple[float, float]] = {
    "formation_energy_per_atom": (-10.0, 10.0),
    "band_gap": (0.0, math.inf),
}


def is_missing(value: Any) -> bool:
    """True for an empty cell: None, NaN, ``pd.NA``, ``NaT`` or a blank string."""
    if isinstance(value, str):
        return not value.strip()
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # a list or array is a value, not a missing one
        return False


def as_number(value: Any) -> float | None:
    """``value`` as a float (numeric strings such as ``"1.5"`` included), or None when it is not one.

    Booleans are not numbers here: ``True`` in a property column is a data error, not 1.0.
    """
    if isinstance(value, (bool, np.bool_)) or value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def property_problem(name: str, value: Any) -> str | None:
    """Why ``value`` is not a plausible value of property ``name``, or None when it is.

    The reason names the property and the offending value: missing (:func:`is_missing`, or the
    string ``"nan"``), not a number, not finite, or outside ``PROPERTY_RANGES[name]`` (a property
    without a range only has to be a finite number).
    """
    number = None if is_missing(value) else as_number(value)
    if is_missing(value) or (number is not None and math.isnan(number)):
        return f"{name} is missing"
    if number is None:
        return f"{name} is not a number: {value!r}"
    if math.isinf(number):
        return f"{name} is not finite: {number}"
    low, high = PROPERTY_RANGES.get(name, (-math.inf, math.inf))
    if not low <= number <= high:
        return f"{name} = {number:g} is outside the plausible range [{low:g}, {high:g}]"
    return None
