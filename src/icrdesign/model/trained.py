"""A trained model for the downstream stages: latent means, decoding and property predictions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from icrdesign.artefacts.model import MODEL_FILE
from icrdesign.errors import InputError
from icrdesign.model.network import Architecture, PropertyVAE
from icrdesign.model.training import load_checkpoint
from icrdesign.representation.icr import ICR
from icrdesign.representation.scaler import MinMaxScaler

INFERENCE_BATCH = 1024


@dataclass
class TrainedModel:
    """The VAE with the scalers and representation it was trained with."""

    icr: ICR
    scaler: MinMaxScaler  # per ICR row
    property_scaler: MinMaxScaler  # per target property, named
    vae: PropertyVAE
    device: torch.device

    @property
    def property_names(self) -> list[str]:
        if self.property_scaler.names is None:
            raise ValueError("the property scaler carries no property names")
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
        return self.scaler.inverse_transform(scaled).astype(np.float32)

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


def trained_from_checkpoint(state: dict[str, Any], device: str | torch.device = "cpu") -> TrainedModel:
    """Rebuild a TrainedModel from a checkpoint dictionary (see training.fit)."""
    device = torch.device(device)
    vae = PropertyVAE(Architecture.from_dict(state["architecture"]))
    vae.load_state_dict(state["model"])
    vae.to(device).eval()
    meta = state["metadata"]
    return TrainedModel(
        icr=ICR.from_dict(meta["icr"]),
        scaler=MinMaxScaler.from_dict(meta["scaler"]),
        property_scaler=MinMaxScaler.from_dict(meta["property_scaler"]),
        vae=vae,
        device=device,
    )


def load_trained(model_dir: Path, device: str = "cpu") -> TrainedModel:
    """Load the model file the train stage wrote into ``model_dir``; absent or unreadable: InputError."""
    path = Path(model_dir) / MODEL_FILE
    if not path.is_file():
        raise InputError(f"{path}: no trained model; run the train stage first")
    return trained_from_checkpoint(load_checkpoint(path, device), device)
