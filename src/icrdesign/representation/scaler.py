"""Per-row min-max scaling of ICR arrays (fitted on the training split only)."""

from __future__ import annotations

from typing import Any

import numpy as np


class MinMaxScaler:
    """Maps each representation row to [0, 1] using that row's min and max over the fitted crystals.

    Statistics are kept in float64 and the arithmetic runs in float64, so inverse_transform undoes
    transform up to float32 rounding. Rows that are constant in the training data get range 1.
    """

    def __init__(self, row_min: np.ndarray | None = None, row_max: np.ndarray | None = None) -> None:
        self.row_min = None if row_min is None else np.asarray(row_min, dtype=np.float64)
        self.row_max = None if row_max is None else np.asarray(row_max, dtype=np.float64)

    @property
    def fitted(self) -> bool:
        return self.row_min is not None

    def fit(self, array: np.ndarray) -> MinMaxScaler:
        """Fit on an (N, rows, channels) array of training crystals (N >= 1)."""
        array = np.asarray(array)
        if array.ndim != 3 or array.shape[0] == 0:
            raise ValueError(f"fit needs a non-empty (N, rows, channels) array, got shape {array.shape}")
        self.row_min = array.min(axis=(0, 2)).astype(np.float64)
        self.row_max = array.max(axis=(0, 2)).astype(np.float64)
        return self

    def _stats(self) -> tuple[np.ndarray, np.ndarray]:
        if self.row_min is None or self.row_max is None:
            raise RuntimeError("MinMaxScaler is not fitted")
        span = self.row_max - self.row_min
        span = np.where(span > 0, span, 1.0)
        return self.row_min[None, :, None], span[None, :, None]

    def transform(self, array: np.ndarray) -> np.ndarray:
        low, span = self._stats()
        return ((np.asarray(array, dtype=np.float64) - low) / span).astype(np.float32)

    def inverse_transform(self, array: np.ndarray) -> np.ndarray:
        low, span = self._stats()
        return (np.asarray(array, dtype=np.float64) * span + low).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        if self.row_min is None or self.row_max is None:
            raise RuntimeError("MinMaxScaler is not fitted")
        return {"kind": "per_row_min_max", "row_min": self.row_min.tolist(), "row_max": self.row_max.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MinMaxScaler:
        return cls(np.array(data["row_min"], dtype=np.float64), np.array(data["row_max"], dtype=np.float64))
