"""Min-max scaling to [0, 1], fitted on the training split only: the one scaler of the project.

The encode stage scales each ICR row ((N, rows, channels) arrays) and the train stage each target
property ((N, properties) arrays) with it: a feature is an index along axis 1, and its minimum and
maximum run over every other axis. numpy only, so a bare GPU machine imports it without pymatgen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class MinMaxScaler:
    """Maps each feature (index along axis 1) to [0, 1] by its min and max over the fitted data.

    Statistics and arithmetic are float64: ``transform`` gives the network's float32 inputs and
    ``inverse_transform`` float64 values, so it undoes ``transform`` up to float32 rounding. A feature
    that is constant in the fitted data gets span 1.
    """

    def __init__(self, low: np.ndarray | None = None, high: np.ndarray | None = None,
                 names: Sequence[str] | None = None) -> None:
        """``low`` / ``high``: per-feature minimum and maximum; ``names``: the features' names, if any."""
        self.low = None if low is None else np.asarray(low, dtype=np.float64)
        self.high = None if high is None else np.asarray(high, dtype=np.float64)
        self.names = None if names is None else list(names)

    def fit(self, array: np.ndarray, names: Sequence[str] | None = None) -> MinMaxScaler:
        """Fit on an (N, features, ...) array of training samples (N >= 1); ``names`` label the features."""
        array = np.asarray(array)
        if array.ndim < 2 or array.shape[0] == 0:
            raise ValueError(f"fit needs a non-empty (N, features, ...) array, got shape {array.shape}")
        others = tuple(axis for axis in range(array.ndim) if axis != 1)
        self.low = array.min(axis=others).astype(np.float64)
        self.high = array.max(axis=others).astype(np.float64)
        self.names = None if names is None else list(names)
        return self

    def _fitted(self) -> tuple[np.ndarray, np.ndarray]:
        if self.low is None or self.high is None:
            raise RuntimeError("MinMaxScaler is not fitted")
        return self.low, self.high

    @property
    def span(self) -> np.ndarray:
        """high - low per feature; 1 where the feature was constant."""
        low, high = self._fitted()
        return np.where(high > low, high - low, 1.0)

    def _broadcast(self, array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """low and span shaped to broadcast along axis 1 of ``array``."""
        shape = (1, -1) + (1,) * (array.ndim - 2)
        return self._fitted()[0].reshape(shape), self.span.reshape(shape)

    def transform(self, array: np.ndarray) -> np.ndarray:
        """Data -> float32 values in [0, 1] over the fitted range."""
        values = np.asarray(array, dtype=np.float64)
        low, span = self._broadcast(values)
        return ((values - low) / span).astype(np.float32)

    def inverse_transform(self, array: np.ndarray) -> np.ndarray:
        """Scaled values -> float64 data."""
        values = np.asarray(array, dtype=np.float64)
        low, span = self._broadcast(values)
        return values * span + low

    def to_dict(self) -> dict[str, Any]:
        low, high = self._fitted()
        return {"names": self.names, "low": low.tolist(), "high": high.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MinMaxScaler:
        return cls(np.array(data["low"], dtype=np.float64), np.array(data["high"], dtype=np.float64), data["names"])
