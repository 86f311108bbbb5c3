"""Design-case windows, success tests and binomial confidence intervals.

A candidate succeeds in a case when every constrained property lies in the case's window
(target +- tolerance intersected with min / max). Boundaries are inclusive. A candidate lacking a
constrained property (a tier that does not compute band gaps, an empty E_g cell) is not evaluable:
it is left out of that tier's denominator rather than counted as a failure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

# Short names used in figure labels and the external-results CSV.
PROPERTY_LABELS = {
    "formation_energy_per_atom": ("E_f", "eV/atom"),
    "band_gap": ("E_g", "eV"),
}
# Floating-point slack so that e.g. -0.5 + 0.1 counts as inside the window [-0.6, -0.4].
_EDGE = 1e-9


@dataclass(frozen=True)
class Window:
    """Closed interval a property must fall in; infinite ends mean unbounded."""

    low: float = -math.inf
    high: float = math.inf
    target: float | None = None

    def contains(self, values: np.ndarray | pd.Series) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        return (values >= self.low - _EDGE) & (values <= self.high + _EDGE)

    def label(self) -> str:
        if self.target is not None and math.isfinite(self.low) and math.isfinite(self.high):
            return f"{self.target:g} ± {(self.high - self.low) / 2:g}"
        if math.isfinite(self.low) and math.isfinite(self.high):
            return f"[{self.low:g}, {self.high:g}]"
        return f"≥ {self.low:g}" if math.isfinite(self.low) else f"≤ {self.high:g}"


def case_windows(constraints: dict[str, dict[str, float]]) -> dict[str, Window]:
    """Windows per property from a case's ``constraints`` mapping (config ``sampling.cases.<case>``)."""
    windows = {}
    for prop, bounds in constraints.items():
        low = bounds.get("min", -math.inf)
        high = bounds.get("max", math.inf)
        target = bounds.get("target")
        if target is not None:
            low = max(low, target - bounds["tolerance"])
            high = min(high, target + bounds["tolerance"])
        windows[prop] = Window(float(low), float(high), None if target is None else float(target))
    return windows


def is_target_case(constraints: dict[str, dict[str, float]], prop: str = "formation_energy_per_atom") -> bool:
    """True for a case that targets ``prop`` alone (the paper's E_f cases)."""
    return set(constraints) == {prop} and "target" in constraints[prop]


def evaluate(frame: pd.DataFrame, windows: dict[str, Window]) -> pd.Series:
    """Per row: True (meets every window), False, or <NA> (a constrained property is missing)."""
    success = np.ones(len(frame), dtype=bool)
    evaluable = np.ones(len(frame), dtype=bool)
    for prop, window in windows.items():
        values = pd.to_numeric(frame[prop], errors="coerce").to_numpy(dtype=float) if prop in frame else np.full(
            len(frame), np.nan
        )
        evaluable &= np.isfinite(values)
        success &= window.contains(values)
    result = pd.Series(success, index=frame.index, dtype="boolean")
    result[~evaluable] = pd.NA
    return result


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (good coverage even for small n or p near 0/1)."""
    if n <= 0:
        return (0.0, 1.0)
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie in [0, n={n}], got {successes}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # At k = 0 (k = n) the bound is exactly 0 (1); rounding would otherwise leave it off by 1e-17.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return (low, high)


def success_rate(outcomes: pd.Series) -> dict[str, Any] | None:
    """``{"n", "n_success", "rate", "ci95"}`` over the evaluable outcomes; None when none is evaluable."""
    known = outcomes.dropna().astype(bool)
    n = int(len(known))
    if n == 0:
        return None
    k = int(known.sum())
    low, high = wilson_interval(k, n)
    return {"n": n, "n_success": k, "rate": k / n, "ci95": [low, high]}


def lift(rate: float | None, baseline: float | None) -> float | None:
    """rate / baseline, or None when either is unknown or the baseline is zero."""
    if rate is None or baseline is None or baseline <= 0:
        return None
    return rate / baseline
