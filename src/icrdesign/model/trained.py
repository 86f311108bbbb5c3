"""A trained model for the downstream stages: latent means, decoding and property predictions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from icrdesign.model.network import Architecture, PropertyVAE
from icrdesign.model.training import load_checkpoint
from icrdesign.representation import ICR, MinMaxScaler

INFERENCE_BATCH = 1024


@dataclass
class PropertyScaler:
    """Min-max normalisation of the target properties (fitted on the training split)."""

    names: list[str]
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def fit(cls, names: list[str], values: np.ndarray) -> PropertyScaler:
        return cls(list(names), values.min(axis=0).astype(np.float64), values.max(axis=0).astype(np.float64))

    @property
    def span(self) -> np.ndarray:
        return np.where(self.high > self.low, self.high - self.low, 1.0)

    def transform(self, values: np.ndarray) -> np.ndarray:
        return ((values - self.low) / self.span).astype(np.float32)

    def inverse_transform(self, values: np.ndarray) -> np.ndarray:
        return values * self.span + self.low

    def to_dict(self) -> dict[str, list]:
        return {"names": self.names, "low": self.low.tolist(), "high": self.high.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, list]) -> PropertyScaler:
        return cls(list(data["names"]), np.array(data["low"], dtype=np.float64), np.array(data["high"]))


@dataclass
class TrainedModel:
    """The VAE with the scalers and representation it was trained with."""

    icr: ICR
    scaler: MinMaxScaler
    property_scaler: PropertyScaler
    vae: PropertyVAE
    device: torch.device

    @property
    def property_names(self) -> list[str]:
        return self.property_scaler.names

    @property
    def latent_dim(self) -> int:
        return self.vae.arch.latent_dim

    def _batched(self, array: np.ndarray, function: Callable[[torch.Tensor], torch.Tensor]) -> np.ndarray:
        outputs = []
        with torch.no_grad():
            for start in range(0, len(array), INFERENCE_BATCH):
                chunk = torch.as_tensor(np.asarray(array[start : start + INFERENCE_BATCH]), dtype=torch.float32)
                outputs.append(function(chunk.to(self.device)).float().cpu().numpy())
        if not outputs:
            return np.zeros((0,), dtype=np.float32)
        return np.concatenate(outputs)

    def encode_mean(self, raw_icr: np.ndarray) -> np.ndarray:
        """Unscaled ICR arrays (N x rows x channels) -> latent means (N x latent)."""
        scaled = self.scaler.transform(raw_icr)
        return self._batched(scaled, lambda x: self.vae.encode(x)[0]).reshape(len(scaled), self.latent_dim)

    def decode(self, z: np.ndarray) -> np.ndarray:
        """Latent vectors -> unscaled ICR arrays (feed to ``icr.decode``)."""
        arch = self.vae.arch
        scaled = self._batched(z, self.vae.decode).reshape(len(z), arch.n_rows, arch.n_channels)
        return self.scaler.inverse_transform(scaled)

    def predict_properties(self, z: np.ndarray) -> dict[str, np.ndarray]:
        """Latent vectors -> properties in physical units, one array per property name."""
        normalised = self._batched(z, self.vae.predict).reshape(len(z), len(self.property_names))
        physical = self.property_scaler.inverse_transform(normalised)
        return {name: physical[:, i] for i, name in enumerate(self.property_names)}

    def property_tensor(self, z: torch.Tensor) -> torch.Tensor:
        """Differentiable N x n_properties prediction in physical units (for gradient-based search)."""
        low = torch.as_tensor(self.property_scaler.low, dtype=z.dtype, device=z.device)
        span = torch.as_tensor(self.property_scaler.span, dtype=z.dtype, device=z.device)
        return self.vae.predict(z) * span + low


def trained_from_checkpoint(state: dict, device: str | torch.device = "cpu") -> TrainedModel:
    """Rebuild a TrainedModel from a checkpoint dictionary (see training.fit)."""
    device = torch.device(device)
    vae = PropertyVAE(Architecture.from_dict(state["architecture"]))
    vae.load_state_dict(state["model"])
    vae.to(device).eval()
    meta = state["metadata"]
    return TrainedModel(
        icr=ICR.from_dict(meta["icr"]),
        scaler=MinMaxScaler.from_dict(meta["scaler"]),
        property_scaler=PropertyScaler.from_dict(meta["property_scaler"]),
        vae=vae,
        device=device,
    )


def load_trained(model_dir: Path, device: str = "cpu") -> TrainedModel:
    """Load ``model_dir/model.pt`` written by the train stage."""
    path = Path(model_dir) / "model.pt"
    if not path.exists():
        raise FileNotFoundError(f"no trained model at {path}; run the 'train' rule first")
    return trained_from_checkpoint(load_checkpoint(path, device), device)
