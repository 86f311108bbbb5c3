"""The property-structured VAE (FTCP supplementary S6): 1D-convolutional encoder and decoder over
the rows of the crystal representation, plus a regression branch on the latent mean.

Input arrays are ``N x rows x channels`` (the ICR layout); the convolutions run along the rows with
the ICR's channels as input channels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class Architecture:
    """Every size of the network; stored in the checkpoint so a model can be rebuilt from it."""

    n_rows: int
    n_channels: int
    n_properties: int
    latent_dim: int = 256
    encoder_channels: tuple[int, ...] = (32, 64, 128)
    kernel_sizes: tuple[int, ...] = (5, 3, 3)
    strides: tuple[int, ...] = (2, 2, 1)
    dense_units: int = 1024
    property_hidden: tuple[int, ...] = field(default=(128, 32))
    property_dropout: float = 0.0
    # What the property branch reads while training: the latent mean (paper) or the sampled latent
    # vector (the branch then learns properties that hold in each mean's neighbourhood, which is
    # where local-perturbation sampling looks). Predictions always read the mean.
    property_input: str = "mean"

    @classmethod
    def from_settings(cls, model_section: dict[str, Any], n_rows: int, n_channels: int) -> Architecture:
        return cls(
            n_rows=n_rows,
            n_channels=n_channels,
            n_properties=len(model_section["properties"]),
            latent_dim=model_section["latent_dim"],
            encoder_channels=tuple(model_section["encoder_channels"]),
            kernel_sizes=tuple(model_section["kernel_sizes"]),
            strides=tuple(model_section["strides"]),
            dense_units=model_section["dense_units"],
            property_hidden=tuple(model_section["property_hidden"]),
            property_dropout=model_section["property_dropout"],
            property_input=model_section["property_input"],
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Architecture:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def encoded_length(self) -> int:
        """Row count after the strided convolutions ('same' padding: ceil(length / stride))."""
        length = self.n_rows
        for stride in self.strides:
            length = -(-length // stride)
        return length


def _act() -> nn.Module:
    return nn.LeakyReLU(0.2)


class PropertyVAE(nn.Module):
    """Encoder -> (mean, log-variance) -> decoder, and mean -> normalised properties."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.arch = arch
        layers: list[nn.Module] = []
        in_ch = arch.n_channels
        for out_ch, kernel, stride in zip(arch.encoder_channels, arch.kernel_sizes, arch.strides, strict=True):
            layers += [nn.Conv1d(in_ch, out_ch, kernel, stride, padding=kernel // 2), nn.BatchNorm1d(out_ch), _act()]
            in_ch = out_ch
        self.encoder_conv = nn.Sequential(*layers)
        self._enc_len = arch.encoded_length()
        flat = arch.encoder_channels[-1] * self._enc_len
        self.encoder_dense = nn.Sequential(nn.Flatten(), nn.Linear(flat, arch.dense_units), _act())
        self.to_mean = nn.Linear(arch.dense_units, arch.latent_dim)
        self.to_logvar = nn.Linear(arch.dense_units, arch.latent_dim)

        # As in FTCP, one Dense layer maps the latent vector to the innermost feature map.
        self.decoder_dense = nn.Sequential(nn.Linear(arch.latent_dim, flat), _act())
        layers = []
        in_ch = arch.encoder_channels[-1]
        for out_ch, kernel, stride in reversed(
            list(zip(arch.encoder_channels, arch.kernel_sizes, arch.strides, strict=True))
        ):
            layers += [
                nn.ConvTranspose1d(in_ch, out_ch, kernel, stride, padding=kernel // 2, output_padding=stride - 1),
                nn.BatchNorm1d(out_ch),
                _act(),
            ]
            in_ch = out_ch
        # A last (stride-1) convolution maps back to the representation's channels.
        layers.append(nn.Conv1d(in_ch, arch.n_channels, 3, padding=1))
        self.decoder_conv = nn.Sequential(*layers)

        hidden: list[nn.Module] = []
        in_units = arch.latent_dim
        for units in arch.property_hidden:
            hidden += [nn.Linear(in_units, units), _act()]
            if arch.property_dropout > 0:
                hidden.append(nn.Dropout(arch.property_dropout))
            in_units = units
        hidden.append(nn.Linear(in_units, arch.n_properties))
        self.property_head = nn.Sequential(*hidden)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x``: N x rows x channels (min-max scaled) -> latent mean and log-variance."""
        hidden = self.encoder_dense(self.encoder_conv(x.transpose(1, 2)))
        return self.to_mean(hidden), self.to_logvar(hidden)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent vectors -> N x rows x channels in [0, 1] (scaled representation)."""
        hidden = self.decoder_dense(z).view(z.shape[0], self.arch.encoder_channels[-1], self._enc_len)
        logits = self.decoder_conv(hidden)[:, :, : self.arch.n_rows]
        return torch.sigmoid(logits).transpose(1, 2)

    def predict(self, z_mean: torch.Tensor) -> torch.Tensor:
        """Latent means -> min-max normalised properties in [0, 1]."""
        return torch.sigmoid(self.property_head(z_mean))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        mean, logvar = self.encode(x)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar) if self.training else mean
        return self.decode(z), mean, logvar, self.predict(z if self.arch.property_input == "sample" else mean)


@dataclass(frozen=True)
class LossTerms:
    total: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor
    property: torch.Tensor


def vae_loss(
    x: torch.Tensor,
    reconstruction: torch.Tensor,
    mean: torch.Tensor,
    logvar: torch.Tensor,
    predicted: torch.Tensor,
    target: torch.Tensor,
    beta: float,
    property_weight: float,
    row_weights: torch.Tensor | None = None,
) -> LossTerms:
    """Per-crystal SSE reconstruction + beta * KL + property_weight * property MSE, averaged over the batch.

    ``row_weights`` (one per representation row) weight each row's squared errors in the SSE.
    """
    mean, logvar = mean.float(), logvar.float()
    squared = (reconstruction.float() - x).pow(2)
    if row_weights is not None:
        squared = squared * row_weights[None, :, None]
    recon = squared.flatten(1).sum(1).mean()
    kl = (-0.5 * (1 + logvar - mean.pow(2) - logvar.exp())).sum(1).mean()
    prop = F.mse_loss(predicted.float(), target)
    return LossTerms(recon + beta * kl + property_weight * prop, recon, kl, prop)
