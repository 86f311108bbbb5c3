"""Latent sampling strategies: where in the VAE's latent space candidates are drawn from.

Every strategy returns ``n`` latent vectors plus, per vector, the training crystal it started from
(empty for the prior) and the noise scale used; decoding and filtering happen in the funnel.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from icrdesign.artefacts.model import read_latent
from icrdesign.cases import DesignCase, training_rows

log = logging.getLogger(__name__)

#: Seeds used when no training crystal meets a case: the closest ones to its window.
MIN_SEEDS = 32
#: Gradient strategy: each window side is tightened by this fraction of the property's spread, so
#: optimised points land inside the window rather than on its edge.
WINDOW_MARGIN = 0.25


class TrainedModelLike(Protocol):
    """The part of ``icrdesign.model.TrainedModel`` sampling uses."""

    icr: Any
    property_names: list[str]
    latent_dim: int

    def decode(self, z: np.ndarray) -> np.ndarray: ...
    def predict_properties(self, z: np.ndarray) -> dict[str, np.ndarray]: ...
    def property_tensor(self, z: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class SeedPool:
    """Latent means and labelled properties of the training crystals."""

    material_ids: np.ndarray
    z_mean: np.ndarray
    properties: dict[str, np.ndarray]

    @classmethod
    def from_latent_file(cls, path: Path, property_names: Sequence[str]) -> SeedPool:
        """Read the training-split rows of the model's ``latent.npz``."""
        latent = read_latent(path)
        train = training_rows(latent)
        return cls(
            material_ids=latent.material_ids[train],
            z_mean=latent.z_mean[train].astype(np.float32),
            properties={prop: latent.properties[prop][train].astype(float) for prop in property_names},
        )

    def __len__(self) -> int:
        return len(self.material_ids)

    def seeds_for(self, case: DesignCase) -> np.ndarray:
        """Indices of crystals meeting the case; the MIN_SEEDS closest ones if none does."""
        meets = np.flatnonzero(case.meets(self.properties))
        if len(meets):
            return meets
        closest = np.argsort(case.window_distance(self.properties), kind="stable")[:MIN_SEEDS]
        log.warning("case %s: no training crystal meets it; seeding from the %d closest", case.name, len(closest))
        return closest


@dataclass(frozen=True)
class LatentProposals:
    z: np.ndarray
    seed_ids: np.ndarray
    sigma: np.ndarray


@dataclass(frozen=True)
class StrategySettings:
    sigma: tuple[float, ...]
    gradient_steps: int
    gradient_learning_rate: float

    @classmethod
    def from_config(cls, sampling: Mapping[str, Any]) -> StrategySettings:
        return cls(tuple(sampling["sigma"]), sampling["gradient_steps"], sampling["gradient_learning_rate"])


Strategy = Callable[[TrainedModelLike, SeedPool, DesignCase, StrategySettings, int, np.random.Generator], LatentProposals]


def _perturb(pool: SeedPool, seeds: np.ndarray, settings: StrategySettings, n: int,
             rng: np.random.Generator) -> LatentProposals:
    """``n`` draws spread evenly over ``seeds`` (several per seed), each mean + N(0, sigma^2 I)."""
    chosen = rng.permutation(np.resize(seeds, n))
    sigma = rng.choice(np.asarray(settings.sigma, dtype=float), size=n)
    noise = rng.standard_normal((n, pool.z_mean.shape[1])) * sigma[:, None]
    return LatentProposals((pool.z_mean[chosen] + noise).astype(np.float32), pool.material_ids[chosen], sigma)


def local_perturbation(model: TrainedModelLike, pool: SeedPool, case: DesignCase, settings: StrategySettings,
                       n: int, rng: np.random.Generator) -> LatentProposals:
    """The published method: Gaussian noise around the latent means of training crystals meeting the case."""
    return _perturb(pool, pool.seeds_for(case), settings, n, rng)


def random_prior(model: TrainedModelLike, pool: SeedPool, case: DesignCase, settings: StrategySettings,
                 n: int, rng: np.random.Generator) -> LatentProposals:
    """Baseline: latent vectors from the prior N(0, I), ignoring the case."""
    z = rng.standard_normal((n, model.latent_dim)).astype(np.float32)
    return LatentProposals(z, np.full(n, "", dtype=object), np.full(n, np.nan))


def random_training(model: TrainedModelLike, pool: SeedPool, case: DesignCase, settings: StrategySettings,
                    n: int, rng: np.random.Generator) -> LatentProposals:
    """Baseline: perturbations of uniformly chosen training crystals, ignoring the case."""
    return _perturb(pool, rng.integers(0, len(pool), size=n), settings, n, rng)


def window_loss(case: DesignCase, predictions: torch.Tensor, property_names: Sequence[str],
                scales: Mapping[str, float], margin_fraction: float) -> torch.Tensor:
    """Differentiable per-row loss: squared hinge distance to the case's tightened windows, in units of ``scales``.

    Tightening each side by ``margin_fraction`` of the property's scale pushes points well inside the
    window rather than onto its edge, where model error would put half of them outside.

    Args:
        case: The design case.
        predictions: Property-branch predictions, one column per name in ``property_names``.
        property_names: The model's properties, in column order.
        scales: Each constrained property's spread (the unit of the loss).
        margin_fraction: How far inside each window side to aim, as a fraction of the scale.
    """
    loss = predictions.new_zeros(predictions.shape[0])
    for prop, window in case.windows.items():
        column = predictions[:, list(property_names).index(prop)]
        inner = window.tightened(margin_fraction * scales[prop])
        loss = loss + (torch.relu(inner.low - column) ** 2 + torch.relu(column - inner.high) ** 2) / scales[prop] ** 2
    return loss


def gradient_ascent(model: TrainedModelLike, pool: SeedPool, case: DesignCase, settings: StrategySettings,
                    n: int, rng: np.random.Generator) -> LatentProposals:
    """Perturbed seeds (as local_perturbation) moved by gradient descent on their distance to the window.

    The loss is the property branch's squared distance to the (tightened) case window. Each step moves
    a point by ``gradient_learning_rate`` (latent units) along its normalised gradient, and points whose
    loss is zero stop, so the walk stays short and near the training seed it started from.
    """
    start = _perturb(pool, pool.seeds_for(case), settings, n, rng)
    scales = {prop: float(np.std(values)) or 1.0 for prop, values in pool.properties.items()}
    z = torch.tensor(start.z)
    for _ in range(settings.gradient_steps):
        z.requires_grad_(True)
        loss = window_loss(case, model.property_tensor(z), model.property_names, scales, WINDOW_MARGIN)
        (gradient,) = torch.autograd.grad(loss.sum(), z)
        active = loss.detach() > 0
        if not bool(active.any()):
            break
        norms = gradient.norm(dim=1, keepdim=True).clamp_min(1e-12)
        step = settings.gradient_learning_rate * gradient / norms * active[:, None]
        z = (z.detach() - step).detach()
    return LatentProposals(z.detach().numpy().astype(np.float32), start.seed_ids, start.sigma)


STRATEGIES: dict[str, Strategy] = {
    "local_perturbation": local_perturbation,
    "random": random_prior,
    "random_training": random_training,
    "gradient_ascent": gradient_ascent,
}


def expand_strategies(configured: Sequence[str]) -> list[str]:
    """Configured strategies in order; the `random` baseline also runs its training-crystal variant."""
    names = list(configured)
    if "random" in names:
        names.insert(names.index("random") + 1, "random_training")
    return names
