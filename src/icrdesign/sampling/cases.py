"""Design cases: property windows parsed from ``sampling.cases`` and tested against predictions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from icrdesign.config import ConfigError


@dataclass(frozen=True)
class Window:
    """Closed interval ``[low, high]`` of one property (either side may be infinite)."""

    low: float
    high: float

    @classmethod
    def from_constraint(cls, constraint: Mapping[str, float]) -> Window:
        low = float(constraint.get("min", -np.inf))
        high = float(constraint.get("max", np.inf))
        if "target" in constraint:
            low = max(low, constraint["target"] - constraint["tolerance"])
            high = min(high, constraint["target"] + constraint["tolerance"])
        return cls(low, high)

    def contains(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        return (values >= self.low) & (values <= self.high)

    def tightened(self, margin: float) -> Window:
        """The window shrunk by ``margin`` on each finite side (never past its centre)."""
        if np.isfinite(self.low) and np.isfinite(self.high):
            margin = min(margin, 0.5 * (self.high - self.low))
        return Window(self.low + margin, self.high - margin)


@dataclass(frozen=True)
class DesignCase:
    """A named design case: one window per constrained property and the number of candidates wanted."""

    name: str
    n_candidates: int
    windows: dict[str, Window]

    @classmethod
    def from_config(cls, name: str, sampling: Mapping[str, Any], property_names: Sequence[str]) -> DesignCase:
        """Build case ``name`` of ``sampling.cases``; unknown cases or untrained properties raise ConfigError."""
        cases = sampling["cases"]
        if name not in cases:
            raise ConfigError(f"unknown design case {name!r}; allowed values: {sorted(cases)} (sampling.cases)")
        spec = cases[name]
        unknown = sorted(set(spec["constraints"]) - set(property_names))
        if unknown:
            raise ConfigError(
                f"config key 'sampling.cases.{name}.constraints': properties {unknown} are not predicted by "
                f"the trained model; allowed values: {list(property_names)}"
            )
        windows = {prop: Window.from_constraint(c) for prop, c in spec["constraints"].items()}
        return cls(name=name, n_candidates=int(spec["n_candidates"]), windows=windows)

    def meets(self, properties: Mapping[str, np.ndarray]) -> np.ndarray:
        """Boolean mask: every constrained property present in ``properties`` lies in its window.

        Constrained properties absent from ``properties`` (e.g. not predicted by the surrogate) are
        not tested; NaN values never meet a window.
        """
        tested = [self.windows[prop].contains(properties[prop]) for prop in self.windows if prop in properties]
        if not tested:
            raise ValueError(f"case {self.name!r}: none of {sorted(self.windows)} is among {sorted(properties)}")
        return np.logical_and.reduce(tested)

    def window_distance(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        """Sum over properties of the distance to each window, zero inside (for seed ranking)."""
        total = np.zeros(len(next(iter(values.values()))), dtype=float)
        for prop, window in self.windows.items():
            v = np.asarray(values[prop], dtype=float)
            total += np.clip(window.low - v, 0, None) + np.clip(v - window.high, 0, None)
        return total

    def window_loss(self, predictions: torch.Tensor, property_names: Sequence[str], scales: Mapping[str, float],
                    margin_fraction: float) -> torch.Tensor:
        """Differentiable per-row loss: squared hinge distance to the tightened windows, in units of ``scales``.

        Tightening each side by ``margin_fraction`` of the property's scale pushes points well inside the
        window rather than onto its edge, where model error would put half of them outside.
        """
        loss = predictions.new_zeros(predictions.shape[0])
        for prop, window in self.windows.items():
            column = predictions[:, list(property_names).index(prop)]
            inner = window.tightened(margin_fraction * scales[prop])
            loss = loss + (torch.relu(inner.low - column) ** 2 + torch.relu(column - inner.high) ** 2) / scales[prop] ** 2
        return loss
